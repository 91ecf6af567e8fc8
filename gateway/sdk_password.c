/* sdk_password.c - the SDK's password hashing (argon2id in the worker's hasher process, see
 * pwhash.h), as waits of the calling function. */
#include <stdio.h>
#include <string.h>
#include "call.h"
#include "future.h"
#include "pwhash.h"
#include "sdk.h"

static void cancel_hash(void *handle)
{
    sff_pwhash_cancel(handle);
}

static void on_hash(void *data, int err, const char *hash)
{
    sff_future_complete(data, err, err == 0 ? json_string(hash) : NULL, err != 0 ? "password hashing failed" : NULL);
}

static void on_verify(void *data, int err, int match)
{
    sff_future_complete(data, err, err == 0 ? json_boolean(match) : NULL, err != 0 ? "password check failed" : NULL);
}

/* A refusal of the hashing pool says when to come back. */
static int refused(sff_req_t *r, int ret)
{
    if (ret == SFF_EOVERLOADED || ret == SFF_ERATELIMIT || ret == SFF_EUNAVAILABLE || ret == SFF_ENOTREADY) {
        char retry[16];
        snprintf(retry, sizeof(retry), "%u", sff_pwhash_retry_after_s());
        sff_call_api.set_header(r, "retry-after", retry);
        return sff_call_set_error(r, ret == SFF_ENOTREADY ? SFF_EUNAVAILABLE : ret,
                                  ret == SFF_ERATELIMIT ? "too many password checks from this client, retry later"
                                                        : "password checks are unavailable or busy, retry later");
    }
    return ret;
}

int sff_sdk_password_hash(sff_req_t *r, const char *password, const char **hash)
{
    sff_pwhash_req_t *req = NULL;
    const char *ip = r->root->client_ip;
    *hash = NULL;
    if (password == NULL)
        return SFF_EBADREQ;
    sff_future_t *f = sff_future_new(r);
    int ret = sff_pwhash_hash_as(ip, strlen(ip), password, strlen(password), on_hash, f, &req);
    if (ret != 0) {
        sff_future_complete(f, ret, NULL, NULL);
        return refused(r, ret);
    }
    sff_future_set_cancel(f, req, cancel_hash);
    if ((ret = sff_future_await_all(r, &f, 1, 0)) != 0)
        return ret;
    *hash = json_string_value(f->value);
    return 0;
}

int sff_sdk_password_verify(sff_req_t *r, const char *hash, const char *password, int *match)
{
    sff_pwhash_req_t *req = NULL;
    const char *ip = r->root->client_ip;
    *match = 0;
    if (password == NULL)
        return SFF_EBADREQ;
    sff_future_t *f = sff_future_new(r);
    int ret = sff_pwhash_verify_as(ip, strlen(ip), hash, password, strlen(password), on_verify, f, &req);
    if (ret != 0) {
        sff_future_complete(f, ret, NULL, NULL);
        return ret == SFF_EINTERNAL ? 0 : refused(r, ret); /* an unreadable stored hash matches nothing */
    }
    sff_future_set_cancel(f, req, cancel_hash);
    if ((ret = sff_future_await_all(r, &f, 1, 0)) != 0)
        return ret;
    *match = json_is_true(f->value);
    return 0;
}
