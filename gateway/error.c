#include "error.h"

const char *sff_strerror(int code)
{
    switch (code) {
#define X(name, num, status, ecode, msg)                                                                                           \
    case num:                                                                                                                      \
        return msg;
        SFF_ERRNO_MAP(X)
#undef X
    case 0:
        return "ok";
    }
    return "unknown error";
}

int sff_error_status(int code)
{
    switch (code) {
#define X(name, num, status, ecode, msg)                                                                                           \
    case num:                                                                                                                      \
        return status;
        SFF_ERRNO_MAP(X)
#undef X
    }
    return 500;
}

const char *sff_error_code(int code)
{
    switch (code) {
#define X(name, num, status, ecode, msg)                                                                                           \
    case num:                                                                                                                      \
        return ecode;
        SFF_ERRNO_MAP(X)
#undef X
    }
    return "internal_error";
}
