/*
 * error.h - the one error convention: 0 ok, a negative SFF_E* code from functions/sff.h's
 * SFF_ERRNO_MAP, which also gives each code its HTTP status, envelope code and default message.
 */
#ifndef SFF_ERROR_H
#define SFF_ERROR_H

#include "sff.h"

/* The default message of code ("unknown error" for an unknown code). Static. */
const char *sff_strerror(int code);
/* The HTTP status of code (500 for an unknown code). */
int sff_error_status(int code);
/* The envelope's "code" string of code ("internal_error" for an unknown code). Static. */
const char *sff_error_code(int code);

#endif
