/* sdk_redis.c - the SDK's Redis calls (functions/sff.h): commands, the JSON cache, publish and rate
 * limits, as futures over the worker's Redis client. */
#include <stdio.h>
#include <string.h>
#include "call.h"
#include "future.h"
#include "sdk.h"
#include "timer.h"
#include "worker.h"

/* A cache stamp handed out by a miss, kept for the set of the same key in the same request. */
typedef struct st_sff_cache_stamp_t {
    struct st_sff_cache_stamp_t *next;
    const char *key;
    const char *stamp;
} cache_stamp_t;

static sff_redis_t *client(void)
{
    return sff_worker != NULL ? sff_worker->backends.redis : NULL;
}

/* What is left of the call's deadline: a backend call never outlives the function. */
uint32_t sff_sdk_remaining_ms(sff_req_t *r)
{
    uint64_t now = sff_now_ms(), at = r->root->deadline.at_ms;
    return at > now ? (uint32_t)(at - now) : 1;
}

static void cancel_redis(void *handle)
{
    sff_redis_cancel(handle);
}

/* Completes f at once when Redis is not configured; returns nonzero then. */
static int not_configured(sff_future_t *f)
{
    if (client() != NULL)
        return 0;
    sff_future_complete(f, SFF_EUNAVAILABLE, NULL, "Redis is not configured (SFF_REDIS_URL)");
    return 1;
}

/* Call as two statements: in started(f, sff_redis_command(..., &req), req) the compiler may read
 * req before the call sets it, and a future without its handle cannot cancel its Redis request. */
static void started(sff_future_t *f, int ret, sff_redis_req_t *req)
{
    if (ret != 0)
        sff_future_complete(f, ret, NULL, "the Redis call could not start");
    else
        sff_future_set_cancel(f, req, cancel_redis);
}

static void on_command(void *data, int err, json_t *reply, const char *errmsg)
{
    sff_future_complete(data, err, reply, err != 0 ? errmsg : NULL);
}

sff_future_t *sff_sdk_redis_send(sff_req_t *r, size_t argc, const char *const *argv, const size_t *argvlen)
{
    sff_future_t *f = sff_future_new(r);
    sff_redis_req_t *req = NULL;
    if (not_configured(f))
        return f;
    if (argc == 0 || argc > 1024 * 1024 || argv == NULL) {
        sff_future_complete(f, SFF_EBADREQ, NULL, "a Redis command needs 1 to 1048576 arguments");
        return f;
    }
    if (argvlen == NULL) {
        size_t *lens = h2o_mem_alloc_pool(&r->root->pool, argc * sizeof(*lens));
        for (size_t i = 0; i < argc; i++)
            lens[i] = argv[i] != NULL ? strlen(argv[i]) : 0;
        argvlen = lens;
    }
    int ret = sff_redis_command(client(), (int)argc, argv, argvlen, sff_sdk_remaining_ms(r), on_command, f, &req);
    started(f, ret, req);
    return f;
}

static void on_cache_get(void *data, json_t *value, const char *stamp, int err)
{
    sff_future_t *f = data;
    (void)err; /* a degraded read is a miss */
    if (stamp != NULL)
        f->extra = h2o_strdup(&f->root->pool, stamp, SIZE_MAX).base;
    sff_future_complete(f, 0, value, NULL);
}

/* A hit's text goes to the request's pool, in f->bytes. */
static void on_cache_text(void *data, const char *text, size_t len, const char *stamp, int err)
{
    sff_future_t *f = data;
    (void)err;
    if (stamp != NULL)
        f->extra = h2o_strdup(&f->root->pool, stamp, SIZE_MAX).base;
    if (text != NULL) {
        f->bytes = h2o_strdup(&f->root->pool, text, len).base;
        f->nbytes = len;
    }
    sff_future_complete(f, 0, NULL, NULL);
}

/* A cache lookup, parsed (text NULL) or as stored; *out is the settled future on success. */
static int cache_lookup(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, int text, sff_future_t **out)
{
    sff_redis_req_t *req = NULL;
    sff_future_t *f = sff_future_new(r);
    uint32_t ms = sff_sdk_remaining_ms(r);
    int ret = text ? sff_redis_cache_get_text(client(), key, tags, ntags, ms, on_cache_text, f, &req)
                   : sff_redis_cache_get(client(), key, tags, ntags, ms, on_cache_get, f, &req);
    if (ret != 0)
        return ret;
    sff_future_set_cancel(f, req, cancel_redis);
    if ((ret = sff_future_await_all(r, &f, 1, 0)) != 0)
        return ret;
    if (f->extra != NULL) {
        sff_req_t *root = r->root;
        cache_stamp_t *s = h2o_mem_alloc_pool(&root->pool, sizeof(*s));
        s->key = h2o_strdup(&root->pool, key, SIZE_MAX).base;
        s->stamp = f->extra;
        s->next = root->stamps;
        root->stamps = s;
    }
    *out = f;
    return 0;
}

int sff_sdk_cache_get(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, sff_json_t **value)
{
    sff_future_t *f;
    *value = NULL;
    if (client() == NULL)
        return 0; /* no cache: always a miss */
    int ret = cache_lookup(r, key, tags, ntags, 0, &f);
    if (ret == 0)
        *value = (sff_json_t *)f->value;
    return ret;
}

int sff_sdk_cache_get_text(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, const char **text, size_t *len)
{
    sff_future_t *f;
    *text = NULL;
    *len = 0;
    if (client() == NULL)
        return 0;
    int ret = cache_lookup(r, key, tags, ntags, 1, &f);
    if (ret == 0) {
        *text = f->bytes;
        *len = f->nbytes;
    }
    return ret;
}

static void on_cache_done(void *data, int err)
{
    sff_future_complete(data, err, NULL, NULL);
}

int sff_sdk_cache_set(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, sff_json_t *value, uint32_t ttl_s)
{
    sff_redis_req_t *req = NULL;
    const char *stamp = NULL;
    if (client() == NULL)
        return 0;
    for (cache_stamp_t *s = r->root->stamps; s != NULL && stamp == NULL; s = s->next)
        if (strcmp(s->key, key) == 0)
            stamp = s->stamp;
    sff_future_t *f = sff_future_new(r);
    int ret = sff_redis_cache_set(client(), key, tags, ntags, stamp, (const json_t *)value, ttl_s, sff_sdk_remaining_ms(r),
                                  on_cache_done, f, &req);
    if (ret != 0)
        return ret;
    sff_future_set_cancel(f, req, cancel_redis);
    ret = sff_future_await_all(r, &f, 1, 0);
    /* a skipped or degraded set is not the handler's problem: the next read misses */
    return ret == SFF_ECANCELED || ret == SFF_ETIMEDOUT ? ret : 0;
}

int sff_sdk_cache_invalidate(sff_req_t *r, const char *const *tags, size_t ntags)
{
    sff_redis_req_t *req = NULL;
    if (client() == NULL)
        return 0;
    sff_future_t *f = sff_future_new(r);
    int ret = sff_redis_cache_invalidate(client(), tags, ntags, sff_sdk_remaining_ms(r), on_cache_done, f, &req);
    if (ret != 0)
        return ret;
    sff_future_set_cancel(f, req, cancel_redis);
    return sff_future_await_all(r, &f, 1, 0);
}

int sff_sdk_publish(sff_req_t *r, const char *channel, const char *message, size_t len)
{
    sff_future_t *f = sff_future_new(r);
    sff_redis_req_t *req = NULL;
    if (not_configured(f))
        return f->result;
    int ret = sff_redis_publish(client(), channel, message, len, sff_sdk_remaining_ms(r), on_command, f, &req);
    started(f, ret, req);
    return sff_future_await_all(r, &f, 1, 0);
}

/* A denied hit leaves its Retry-After seconds in f->extra; an unknown outcome (Redis down) leaves
 * UNKNOWN_LIMIT there, which SFF_RATE_LIMIT_FAIL decides. */
#define UNKNOWN_LIMIT ((void *)((uintptr_t)UINT32_MAX + 1))

static void on_limit(void *data, const sff_redis_limit_t *result, int err)
{
    sff_future_t *f = data;
    (void)err;
    if (result != NULL && result->status == SFF_REDIS_LIMIT_DENIED)
        f->extra = (void *)(uintptr_t)(result->retry_after_s != 0 ? result->retry_after_s : 1);
    else if (result == NULL || result->status == SFF_REDIS_LIMIT_UNKNOWN)
        f->extra = UNKNOWN_LIMIT;
    sff_future_complete(f, 0, NULL, NULL);
}

int sff_sdk_rate_limit(sff_req_t *r, const char *key, uint32_t limit, uint32_t window_s)
{
    sff_redis_req_t *req = NULL;
    if (client() == NULL || limit == 0 || window_s == 0)
        return 0;
    sff_future_t *f = sff_future_new(r);
    int ret = sff_redis_ratelimit(client(), key, limit, window_s * 1000, sff_sdk_remaining_ms(r), on_limit, f, &req);
    if (ret != 0)
        return ret == SFF_EBADREQ ? ret : 0;
    sff_future_set_cancel(f, req, cancel_redis);
    if ((ret = sff_future_await_all(r, &f, 1, 0)) != 0)
        return ret;
    if (f->extra == NULL)
        return 0;
    if (f->extra == UNKNOWN_LIMIT)
        return sff_worker->config->rate_limit_fail_closed
                   ? sff_call_set_error(r, SFF_EUNAVAILABLE, "the rate limit cannot be checked while Redis is down")
                   : 0;
    char retry[16];
    snprintf(retry, sizeof(retry), "%u", (unsigned)(uintptr_t)f->extra);
    sff_call_api.set_header(r, "retry-after", retry);
    return sff_call_set_error(r, SFF_ERATELIMIT, "too many requests, retry in %s s", retry);
}
