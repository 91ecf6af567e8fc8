/*
 * redis_helpers.c - the JSON cache (with tag versions and an epoch for invalidation) and the
 * fixed-window rate limiter, each one call of one command or Lua script
 * (docs/decisions/0034-redis-cache-invalidation.md, 0035-redis-rate-limiter.md).
 */
#include <stdio.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include "sff.h"
#include "jsonout.h"
#include "redis_internal.h"

/* KEYS: the entry, the epoch, the tags. Returns {1, json} when the entry's stamp is current, else
 * {0, current stamp}. */
static sff_redis_script_t get_script = {
    .text = "local s = {}\n"
            "for i = 2, #KEYS do s[#s + 1] = redis.call('GET', KEYS[i]) or '0' end\n"
            "local stamp = table.concat(s, ',')\n"
            "local v = redis.call('GET', KEYS[1])\n"
            "if v then\n"
            "  local n = string.find(v, '\\n', 1, true)\n"
            "  if n and string.sub(v, 1, n - 1) == stamp then return {1, string.sub(v, n + 1)} end\n"
            "end\n"
            "return {0, stamp}\n"};

/* KEYS: the entry, the epoch, the tags; ARGV: json, ttl (s), the stamp of the get ('' for the
 * current one). Returns 1 when stored, 0 when the stamp is no longer current. */
static sff_redis_script_t set_script = {.text = "local s = {}\n"
                                                "for i = 2, #KEYS do s[#s + 1] = redis.call('GET', KEYS[i]) or '0' end\n"
                                                "local stamp = table.concat(s, ',')\n"
                                                "if ARGV[3] ~= '' and ARGV[3] ~= stamp then return 0 end\n"
                                                "redis.call('SET', KEYS[1], stamp .. '\\n' .. ARGV[1], 'EX', ARGV[2])\n"
                                                "return 1\n"};

/* KEYS: the tags. */
static sff_redis_script_t invalidate_script = {.text = "for i = 1, #KEYS do redis.call('INCR', KEYS[i]) end\n"
                                                       "return #KEYS\n"};

/* KEYS: the counter; ARGV: the window (ms). Returns {hits, ms until the window ends}. A counter
 * without a TTL (the first hit, or one PERSISTed by hand) gets the window. */
static sff_redis_script_t limit_script = {.text = "local n = redis.call('INCR', KEYS[1])\n"
                                                  "local ttl = redis.call('PTTL', KEYS[1])\n"
                                                  "if ttl < 0 then\n"
                                                  "  redis.call('PEXPIRE', KEYS[1], ARGV[1])\n"
                                                  "  ttl = tonumber(ARGV[1])\n"
                                                  "end\n"
                                                  "return {n, ttl}\n"};

static const sff_redis_script_t *script(sff_redis_script_t *s)
{
    if (s->sha[0] == '\0') {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        EVP_Digest(s->text, strlen(s->text), md, &len, EVP_sha1(), NULL);
        for (unsigned i = 0; i < len && i < 20; i++)
            snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
    }
    return s;
}

/* ---- argument building: each helper lists its arguments twice, once to measure, once to copy -- */

typedef struct st_args_t {
    sff_redis_req_t *req; /* NULL while measuring */
    int argc;
    size_t bytes;
} args_t;

static void arg3(args_t *a, const char *x, size_t xlen, const char *y, size_t ylen, const char *z, size_t zlen)
{
    if (a->req != NULL) {
        sff_redis__req_arg(a->req, x, xlen, y, ylen, z, zlen);
    } else {
        a->argc++;
        a->bytes += xlen + ylen + zlen + 1;
    }
}

static void arg(args_t *a, const char *s)
{
    arg3(a, s, strlen(s), NULL, 0, NULL, 0);
}

/* "<prefix><kind><name>" */
static void key(args_t *a, sff_redis_t *r, const char *kind, const char *name)
{
    arg3(a, r->prefix, r->prefix_len, kind, strlen(kind), name, strlen(name));
}

static void evalsha(args_t *a, const sff_redis_script_t *s, size_t numkeys)
{
    char n[24];
    snprintf(n, sizeof(n), "%zu", numkeys);
    arg(a, "EVALSHA");
    arg(a, s->sha);
    arg(a, n);
}

/* ---- cache get -------------------------------------------------------------------------------- */

static const sff_redis_ops_t cache_text_ops;

/* A hit: parsed into req->value, or for sff_redis_cache_get_text() kept as text. */
static void hit(sff_redis_req_t *req, const char *s, size_t len)
{
    json_error_t jerr;
    if (req->ops == &cache_text_ops) {
        if ((req->text = malloc(len + 1)) == NULL) {
            req->err = SFF_ENOMEM;
            req->msg = sff_redis__default_msg(SFF_ENOMEM);
            return;
        }
        memcpy(req->text, s, len);
        req->text[len] = '\0';
        req->text_len = len;
    } else if ((req->value = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr)) == NULL) {
        req->err = SFF_EINTERNAL;
        req->msg = "the cached value is not JSON";
    }
}

static void cache_get_convert(sff_redis_req_t *req, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        sff_redis__req_error(req, sff_redis_error_code(reply->str, reply->len), reply->str, reply->len);
    } else if (reply->type == REDIS_REPLY_NIL) {
        /* a plain miss */
    } else if (reply->type == REDIS_REPLY_STRING && req->script == NULL) {
        hit(req, reply->str, reply->len);
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_INTEGER &&
               reply->element[1]->type == REDIS_REPLY_STRING) {
        const redisReply *v = reply->element[1];
        if (reply->element[0]->integer == 1)
            hit(req, v->str, v->len);
        else if ((req->stamp = strndup(v->str, v->len)) == NULL)
            req->err = SFF_ENOMEM, req->msg = sff_redis__default_msg(SFF_ENOMEM);
    } else {
        req->err = SFF_EINTERNAL;
        req->msg = "unexpected reply to a cache get";
    }
}

static void count(sff_redis_req_t *req, int is_hit)
{
    sff_redis_stats_t *st = &req->redis->stats;
    if (is_hit) {
        st->cache_hits++;
    } else {
        st->cache_misses++;
        if (req->err != 0)
            st->cache_degraded++;
    }
}

static void cache_get_fire(sff_redis_req_t *req)
{
    json_t *value = req->value;
    req->value = NULL;
    count(req, value != NULL);
    req->cb.cache_get(req->data, value, req->err == 0 ? req->stamp : NULL, req->err);
}

static void cache_text_fire(sff_redis_req_t *req)
{
    count(req, req->text != NULL);
    req->cb.cache_text(req->data, req->text, req->text_len, req->err == 0 ? req->stamp : NULL, req->err);
}

static const sff_redis_ops_t cache_get_ops = {cache_get_convert, cache_get_fire};
static const sff_redis_ops_t cache_text_ops = {cache_get_convert, cache_text_fire};

static int check_tags(const char *const *tags, size_t ntags)
{
    for (size_t i = 0; i < ntags; i++)
        if (tags[i] == NULL || tags[i][0] == '\0')
            return -1;
    return 0;
}

static void cache_get_args(args_t *a, sff_redis_t *r, const char *k, const char *const *tags, size_t ntags)
{
    if (ntags == 0) {
        arg(a, "GET");
        key(a, r, "c:", k);
        return;
    }
    evalsha(a, script(&get_script), ntags + 2);
    key(a, r, "c:", k);
    key(a, r, "epoch", "");
    for (size_t i = 0; i < ntags; i++)
        key(a, r, "t:", tags[i]);
}

/* A get's request, not yet submitted: the caller sets its callback first. */
static int cache_lookup(sff_redis_t *r, const sff_redis_ops_t *ops, const char *k, const char *const *tags, size_t ntags,
                        void *data, sff_redis_req_t **req)
{
    if (k == NULL || k[0] == '\0' || check_tags(tags, ntags) != 0)
        return SFF_EBADREQ;
    args_t a = {NULL};
    cache_get_args(&a, r, k, tags, ntags);
    if ((a.req = sff_redis__req_new(r, ops, a.argc, a.bytes)) == NULL)
        return SFF_ENOMEM;
    cache_get_args(&a, r, k, tags, ntags);
    a.req->script = ntags != 0 ? &get_script : NULL;
    a.req->data = data;
    *req = a.req;
    return 0;
}

int sff_redis_cache_get(sff_redis_t *r, const char *k, const char *const *tags, size_t ntags, uint32_t timeout_ms,
                        sff_redis_cache_get_cb cb, void *data, sff_redis_req_t **out)
{
    sff_redis_req_t *req;
    int ret = cache_lookup(r, &cache_get_ops, k, tags, ntags, data, &req);
    if (ret != 0)
        return ret;
    req->cb.cache_get = cb;
    return sff_redis__submit(req, 0, NULL, NULL, timeout_ms, 1, out);
}

int sff_redis_cache_get_text(sff_redis_t *r, const char *k, const char *const *tags, size_t ntags, uint32_t timeout_ms,
                             sff_redis_cache_text_cb cb, void *data, sff_redis_req_t **out)
{
    sff_redis_req_t *req;
    int ret = cache_lookup(r, &cache_text_ops, k, tags, ntags, data, &req);
    if (ret != 0)
        return ret;
    req->cb.cache_text = cb;
    return sff_redis__submit(req, 0, NULL, NULL, timeout_ms, 1, out);
}

/* ---- cache set -------------------------------------------------------------------------------- */

static void cache_set_convert(sff_redis_req_t *req, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        sff_redis__req_error(req, sff_redis_error_code(reply->str, reply->len), reply->str, reply->len);
    } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        req->err = SFF_ECONFLICT;
        req->msg = sff_redis__default_msg(SFF_ECONFLICT);
    }
}

static void cache_set_fire(sff_redis_req_t *req)
{
    if (req->err != 0 && req->err != SFF_ECONFLICT)
        req->redis->stats.cache_degraded++;
    req->cb.cache_set(req->data, req->err);
}

static const sff_redis_ops_t cache_set_ops = {cache_set_convert, cache_set_fire};

static void cache_set_args(args_t *a, sff_redis_t *r, const char *k, const char *const *tags, size_t ntags, const char *stamp,
                           const char *json, size_t jlen, const char *ttl)
{
    if (ntags == 0) {
        arg(a, "SET");
        key(a, r, "c:", k);
        arg3(a, json, jlen, NULL, 0, NULL, 0);
        arg(a, "EX");
        arg(a, ttl);
        return;
    }
    evalsha(a, script(&set_script), ntags + 2);
    key(a, r, "c:", k);
    key(a, r, "epoch", "");
    for (size_t i = 0; i < ntags; i++)
        key(a, r, "t:", tags[i]);
    arg3(a, json, jlen, NULL, 0, NULL, 0);
    arg(a, ttl);
    arg(a, stamp != NULL ? stamp : "");
}

int sff_redis_cache_set(sff_redis_t *r, const char *k, const char *const *tags, size_t ntags, const char *stamp,
                        const json_t *value, uint32_t ttl_s, uint32_t timeout_ms, sff_redis_cache_set_cb cb, void *data,
                        sff_redis_req_t **out)
{
    if (k == NULL || k[0] == '\0' || check_tags(tags, ntags) != 0 || value == NULL || ttl_s == 0)
        return SFF_EBADREQ;
    size_t jlen;
    char *json = sff_jsonout_dump(value, &jlen);
    if (json == NULL)
        return SFF_EBADREQ;
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%u", ttl_s);
    args_t a = {NULL};
    cache_set_args(&a, r, k, tags, ntags, stamp, json, jlen, ttl);
    if ((a.req = sff_redis__req_new(r, &cache_set_ops, a.argc, a.bytes)) == NULL) {
        free(json);
        return SFF_ENOMEM;
    }
    cache_set_args(&a, r, k, tags, ntags, stamp, json, jlen, ttl);
    free(json);
    a.req->script = ntags != 0 ? &set_script : NULL;
    a.req->cb.cache_set = cb;
    a.req->data = data;
    return sff_redis__submit(a.req, 0, NULL, NULL, timeout_ms, 1, out);
}

/* ---- invalidation ----------------------------------------------------------------------------- */

static void invalidate_convert(sff_redis_req_t *req, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR)
        sff_redis__req_error(req, sff_redis_error_code(reply->str, reply->len), reply->str, reply->len);
}

static void invalidate_fire(sff_redis_req_t *req)
{
    /* the INCR may or may not have happened: bump the epoch on the next connection */
    if (req->err == SFF_EUNAVAILABLE || req->err == SFF_ETIMEDOUT || req->err == SFF_ECANCELED)
        req->redis->lost_invalidation = 1;
    req->cb.invalidate(req->data, req->err);
}

static const sff_redis_ops_t invalidate_ops = {invalidate_convert, invalidate_fire};

static void invalidate_args(args_t *a, sff_redis_t *r, const char *const *tags, size_t ntags)
{
    if (ntags == 0) {
        arg(a, "INCR");
        key(a, r, "epoch", "");
        return;
    }
    evalsha(a, script(&invalidate_script), ntags);
    for (size_t i = 0; i < ntags; i++)
        key(a, r, "t:", tags[i]);
}

int sff_redis_cache_invalidate(sff_redis_t *r, const char *const *tags, size_t ntags, uint32_t timeout_ms,
                               sff_redis_invalidate_cb cb, void *data, sff_redis_req_t **out)
{
    if (check_tags(tags, ntags) != 0)
        return SFF_EBADREQ;
    args_t a = {NULL};
    invalidate_args(&a, r, tags, ntags);
    if ((a.req = sff_redis__req_new(r, &invalidate_ops, a.argc, a.bytes)) == NULL)
        return SFF_ENOMEM;
    invalidate_args(&a, r, tags, ntags);
    a.req->script = ntags != 0 ? &invalidate_script : NULL;
    a.req->cb.invalidate = cb;
    a.req->data = data;
    return sff_redis__submit(a.req, 0, NULL, NULL, timeout_ms, 1, out);
}

/* ---- rate limits ------------------------------------------------------------------------------ */

static void limit_convert(sff_redis_req_t *req, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        sff_redis__req_error(req, sff_redis_error_code(reply->str, reply->len), reply->str, reply->len);
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_INTEGER &&
               reply->element[1]->type == REDIS_REPLY_INTEGER) {
        req->num[0] = reply->element[0]->integer;
        req->num[1] = reply->element[1]->integer;
    } else {
        req->err = SFF_EINTERNAL;
        req->msg = "unexpected reply to a rate-limit check";
    }
}

static void limit_fire(sff_redis_req_t *req)
{
    sff_redis_limit_t res = {.status = SFF_REDIS_LIMIT_UNKNOWN};
    if (req->err != 0) {
        req->redis->stats.limit_unknown++;
    } else {
        uint64_t count = req->num[0] > 0 ? (uint64_t)req->num[0] : 0, ttl = req->num[1] > 0 ? (uint64_t)req->num[1] : 0;
        res.status = count <= req->limit ? SFF_REDIS_LIMIT_ALLOWED : SFF_REDIS_LIMIT_DENIED;
        res.count = count;
        res.remaining = count < req->limit ? req->limit - count : 0;
        res.reset_ms = ttl;
        res.retry_after_s = ttl > 0 ? (uint32_t)((ttl + 999) / 1000) : 1;
    }
    req->cb.limit(req->data, &res, req->err);
}

static const sff_redis_ops_t limit_ops = {limit_convert, limit_fire};

static void limit_args(args_t *a, sff_redis_t *r, const char *k, const char *window)
{
    evalsha(a, script(&limit_script), 1);
    key(a, r, "rl:", k);
    arg(a, window);
}

int sff_redis_ratelimit(sff_redis_t *r, const char *k, uint64_t limit, uint32_t window_ms, uint32_t timeout_ms,
                        sff_redis_limit_cb cb, void *data, sff_redis_req_t **out)
{
    if (k == NULL || k[0] == '\0' || limit == 0 || window_ms == 0)
        return SFF_EBADREQ;
    char window[16];
    snprintf(window, sizeof(window), "%u", window_ms);
    args_t a = {NULL};
    limit_args(&a, r, k, window);
    if ((a.req = sff_redis__req_new(r, &limit_ops, a.argc, a.bytes)) == NULL)
        return SFF_ENOMEM;
    limit_args(&a, r, k, window);
    a.req->script = &limit_script;
    a.req->limit = limit;
    a.req->cb.limit = cb;
    a.req->data = data;
    return sff_redis__submit(a.req, 0, NULL, NULL, timeout_ms, 1, out);
}
