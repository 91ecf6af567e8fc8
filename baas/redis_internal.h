/*
 * redis_internal.h - what baas/redis.c (the connection and the life of a call) shares with
 * baas/redis_helpers.c (the cache and rate-limit helpers built on calls). Not for use outside
 * baas/redis*.c.
 */
#ifndef SFF_REDIS_INTERNAL_H
#define SFF_REDIS_INTERNAL_H

#include <h2o.h>
#include <hiredis/async.h>
#include "redis.h"
#include "redis_resolve.h"
#include "timer.h"

typedef enum { SFF_REDIS_DOWN, SFF_REDIS_RESOLVING, SFF_REDIS_CONNECTING, SFF_REDIS_READY } sff_redis_state_t;

/* Where a call is: with hiredis (deadline armed), answered and waiting for dispatch, or
 * abandoned by its caller (timed out or cancelled) while hiredis still holds it. */
typedef enum { SFF_REDIS_REQ_NEW, SFF_REDIS_REQ_SENT, SFF_REDIS_REQ_QUEUED, SFF_REDIS_REQ_DETACHED } sff_redis_req_state_t;

/* A Lua script: sent with EVALSHA, resent once with EVAL after NOSCRIPT. */
typedef struct st_sff_redis_script_t {
    const char *text;
    char sha[41];
} sff_redis_script_t;

/* What a kind of call does with a reply and how it calls its caller back. */
typedef struct st_sff_redis_ops_t {
    /* Sets req->err (and msg) or its result from reply (never an error reply's NOSCRIPT for a
     * script). Runs inside hiredis: no callback, no freeing of the context. */
    void (*convert)(sff_redis_req_t *req, const struct redisReply *reply);
    /* Calls the caller back with req's result (err set for failures) and hands over what it owns. */
    void (*fire)(sff_redis_req_t *req);
} sff_redis_ops_t;

struct st_sff_redis_req_t {
    sff_redis_t *redis;
    const sff_redis_ops_t *ops;
    h2o_linklist_t link; /* in redis->done while QUEUED */
    sff_timer_t deadline;
    sff_redis_req_state_t state;
    int err;
    const char *msg; /* with err: a static string or msg_buf */
    char *msg_buf;
    /* results, owned until fire() hands them over */
    json_t *value;
    char *text; /* a cache hit's text, for sff_redis_cache_get_text() */
    size_t text_len;
    char *stamp;
    int64_t num[2];
    /* the caller */
    union {
        sff_redis_command_cb command;
        sff_redis_cache_get_cb cache_get;
        sff_redis_cache_text_cb cache_text;
        sff_redis_cache_set_cb cache_set;
        sff_redis_invalidate_cb invalidate;
        sff_redis_limit_cb limit;
    } cb;
    void *data;
    uint64_t limit;
    /* the command, kept for a resend when script is set; storage follows the struct */
    const sff_redis_script_t *script;
    int resent;
    int argc;
    const char **argv;
    size_t *argvlen;
    char *bytes; /* where the next argument's bytes go */
};

struct st_sff_redis_t {
    h2o_loop_t *loop;
    sff_redis_url_t url;
    char where[400]; /* sff_redis_url_describe(): for logs */
    char *prefix;
    size_t prefix_len;
    uint32_t connect_timeout_ms, command_timeout_ms, max_timeouts, backoff_min_ms, backoff_max_ms;
    void (*on_state)(void *data, int connected);
    void *state_data;

    sff_redis_state_t state;
    redisAsyncContext *ac; /* NULL without a connection */
    sff_redis_resolve_t *resolve;
    uint32_t attempt;         /* failed attempts since the last good connection */
    uint32_t timeouts_in_row; /* timeouts with no reply in between */
    int ever_connected;
    int lost_invalidation; /* an invalidation's outcome is unknown: bump the epoch on connecting */
    int drop_pending;      /* the handshake failed: drop_timer will drop the connection */
    int reported;          /* the connected state last told to on_state */
    uint64_t last_fail_log_ms;
    const char *drop_reason;
    char fail_msg[256];

    sff_timer_t connect_timer; /* the connect deadline */
    sff_timer_t retry_timer;   /* the backoff */
    sff_timer_t drop_timer;    /* drops the connection outside hiredis's callbacks */
    sff_timer_t dispatch_timer;
    h2o_linklist_t done; /* answered calls waiting for dispatch, in order */

    size_t busy; /* callbacks of ours on the stack: the client is freed when it drops to 0 */
    int closed;
    sff_redis_stats_t stats;
};

/* A new request of ops for the caller's cb (one member of the union, set by the caller) with
 * room for argc arguments of bytes bytes in all (their NULs included). NULL when out of memory. */
sff_redis_req_t *sff_redis__req_new(sff_redis_t *redis, const sff_redis_ops_t *ops, int argc, size_t bytes);
/* Appends an argument made of up to three pieces (NULL pieces are skipped). */
void sff_redis__req_arg(sff_redis_req_t *req, const char *a, size_t alen, const char *b, size_t blen, const char *c, size_t clen);
/* Frees a request that was never submitted or is over. */
void sff_redis__req_free(sff_redis_req_t *req);
/*
 * Sends req's arguments (or argc/argv/argvlen when argv is not NULL). When not connected: with
 * degrade, queues req with SFF_EUNAVAILABLE and returns 0 (its callback reports the degraded
 * answer); without, frees req and returns SFF_EUNAVAILABLE. Frees req on every other failure
 * (SFF_ECANCELED, SFF_ENOMEM). On success *out (when out is not NULL) is req.
 */
int sff_redis__submit(sff_redis_req_t *req, int argc, const char *const *argv, const size_t *argvlen, uint32_t timeout_ms,
                      int degrade, sff_redis_req_t **out);
/* Copies msg into req as its error message, with code err. */
void sff_redis__req_error(sff_redis_req_t *req, int err, const char *msg, size_t len);
/* A static message for an SFF_E* code a call can end with. */
const char *sff_redis__default_msg(int err);

#endif
