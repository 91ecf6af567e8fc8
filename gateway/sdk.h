/*
 * sdk.h - the functions of the SDK's API table (functions/sff.h) that live outside call.c: the
 * backend calls. Each has the contract of its sff.h counterpart.
 */
#ifndef SFF_SDK_H
#define SFF_SDK_H

#include <stddef.h>
#include <stdint.h>
#include "sff.h"

/* What is left of the call's deadline, at least 1 ms: a backend call never outlives its function. */
uint32_t sff_sdk_remaining_ms(sff_req_t *r);

sff_future_t *sff_sdk_redis_send(sff_req_t *r, size_t argc, const char *const *argv, const size_t *argvlen);
int sff_sdk_cache_get(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, sff_json_t **value);
int sff_sdk_cache_get_text(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, const char **text, size_t *len);
int sff_sdk_cache_set(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, sff_json_t *value, uint32_t ttl_s);
int sff_sdk_cache_invalidate(sff_req_t *r, const char *const *tags, size_t ntags);
int sff_sdk_publish(sff_req_t *r, const char *channel, const char *message, size_t len);
int sff_sdk_rate_limit(sff_req_t *r, const char *key, uint32_t limit, uint32_t window_s);

sff_future_t *sff_sdk_db_send(sff_req_t *r, int shape, const char *sql, sff_json_t *params);
int sff_sdk_db_begin(sff_req_t *r);
int sff_sdk_db_end(sff_req_t *r, int commit);

sff_future_t *sff_sdk_storage_send(sff_req_t *r, int op, const char *key, const char *content_type, const void *data, size_t len,
                                   size_t limit);
const void *sff_sdk_future_bytes(const sff_future_t *f, size_t *len);
int sff_sdk_storage_presign(sff_req_t *r, const char *method, const char *key, uint32_t expires_s, const char **url);
const void *sff_sdk_body(sff_req_t *r, size_t *len, const char **content_type);

int sff_sdk_password_hash(sff_req_t *r, const char *password, const char **hash);
int sff_sdk_password_verify(sff_req_t *r, const char *hash, const char *password, int *match);

#endif
