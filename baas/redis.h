/*
 * redis.h - the worker's Redis client: one connection per worker on the worker's h2o event loop
 * (hiredis 0.14 async through baas/redis_adapter.c), callback-based, libuv style:
 *
 *   - A call that takes a callback returns 0 and then calls it exactly once, or returns a negative
 *     SFF_E* code and never calls it.
 *   - sff_redis_cancel() withdraws a pending call: its callback never fires.
 *   - A callback never runs inside the call that started it, nor inside hiredis: completions are
 *     queued and run from a zero-delay timer (gateway/timer.h) after the loop iteration that
 *     produced them, so a callback may start calls, cancel calls or destroy the client. Answers
 *     come in the order of the calls, but for deadlines and a script resent after NOSCRIPT
 *     (docs/decisions/0035-redis-rate-limiter.md).
 *
 *     sff_redis_config_t conf = {.url = getenv("SFF_REDIS_URL")};
 *     sff_redis_t *redis = sff_redis_create(loop, &conf, err, sizeof(err));
 *     const char *argv[] = {"GET", "k"};
 *     sff_redis_command(redis, 2, argv, NULL, 0, on_reply, data, NULL);
 *
 * Connection: the client connects at once, then AUTHs, SELECTs and PINGs before it accepts calls.
 * A lost connection is re-established by itself: the first attempt at once, then after 50 ms
 * doubling to 5 s, each delay jittered to [d/2, d]. Connecting (including a host name lookup, which
 * runs on a thread) and the handshake share one deadline (connect_timeout_ms).
 *
 * Deadlines: every call has one (timeout_ms, 0 for the client's default). hiredis cannot withdraw a
 * command it has sent, so a call past its deadline completes with SFF_ETIMEDOUT and its reply is
 * discarded when it arrives. After max_timeouts timeouts with no reply in between, the connection
 * is taken for stuck: it is dropped (every call in flight fails with SFF_EUNAVAILABLE) and
 * re-established.
 *
 * Degraded mode, while Redis is down (no connection), slow or failing:
 *   - explicit commands (sff_redis_command, sff_redis_publish) fail at once with
 *     SFF_EUNAVAILABLE (no queueing); calls in flight when the connection drops fail with it too;
 *   - the cache answers: a get is a miss, a set is skipped, both through their callback with the
 *     reason in err, and counted (cache_degraded); an invalidation that may not have reached Redis
 *     makes the client bump the cache epoch on its next connection (see sff_redis_cache_invalidate);
 *   - a rate-limit check answers SFF_REDIS_LIMIT_UNKNOWN, so the caller can fail open or closed.
 *
 * Secrets: the password never appears in a log line, an error message or the stats.
 * Not for this connection: commands that change its state or block it (see sff_redis_command).
 */
#ifndef SFF_REDIS_H
#define SFF_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct st_h2o_evloop_t;
struct redisReply;

/* ---- URLs ------------------------------------------------------------------------------------- */

/*
 * A parsed SFF_REDIS_URL:
 *   redis://[[user]:password@]host[:port][/db]   host is a name, an IPv4 address or [IPv6];
 *                                                port defaults to 6379, db to 0
 *   unix://[[user]:password@]/path/to/socket[?db=N]
 * User, password and path are percent-decoded ("%40" for "@"; '/', '?', '#' and '%' must be
 * encoded). Not supported, and refused with a message: rediss:// (TLS), query parameters on
 * redis:// URLs, a user without a password.
 */
typedef struct st_sff_redis_url_t {
    int unix_socket;    /* nonzero: path is set, host and port are not */
    char host[256];     /* without brackets */
    uint16_t port;      /* TCP port */
    char path[108];     /* unix socket path (sun_path's size) */
    int db;             /* SELECT this after connecting when nonzero */
    char username[256]; /* empty: AUTH with the password only */
    char password[512]; /* empty: no AUTH */
} sff_redis_url_t;

/*
 * Parses text into url strictly. Returns 0, or SFF_EBADREQ with a message in err (capacity
 * errsize) that names the problem ("the port is not a number from 1 to 65535"); the
 * message never quotes the URL, so it never contains the password. url is filled in on success
 * only; wipe it with sff_redis_url_wipe() when done.
 */
int sff_redis_url_parse(const char *text, sff_redis_url_t *url, char *err, size_t errsize);
/* Writes a form fit for logs into buf: "redis://user:***@host:6379/2", "unix:///run/redis.sock?db=1". */
void sff_redis_url_describe(const sff_redis_url_t *url, char *buf, size_t size);
/* Zeroes url, password included. */
void sff_redis_url_wipe(sff_redis_url_t *url);

/* ---- the client ------------------------------------------------------------------------------- */

typedef struct st_sff_redis_t sff_redis_t;
/* A pending call, for sff_redis_cancel(). Valid until its callback starts or it is cancelled. */
typedef struct st_sff_redis_req_t sff_redis_req_t;

typedef struct st_sff_redis_config_t {
    const char *url;             /* required; parsed and copied by sff_redis_create() */
    uint32_t connect_timeout_ms; /* lookup + connect + AUTH/SELECT/PING; default 2000 */
    uint32_t command_timeout_ms; /* a call's deadline when it passes 0; default 1000 */
    uint32_t max_timeouts;       /* timeouts in a row, with no reply between, that drop the connection; default 5 */
    uint32_t backoff_min_ms;     /* default 50 */
    uint32_t backoff_max_ms;     /* default 5000 */
    const char *key_prefix;      /* of the cache and rate-limit keys; default "sff:", at most 64 bytes; copied */
    /* Called (from a completion, never inside a call) when the client becomes connected (1) or
     * disconnected (0); optional. */
    void (*on_state)(void *data, int connected);
    void *data;
} sff_redis_config_t;

/*
 * Creates a client on loop and starts connecting. Returns the client, or NULL with a message in
 * err (a bad URL, out of memory). Whether Redis is up does not matter: a client that cannot connect
 * keeps trying (see above). Destroy with sff_redis_destroy().
 */
sff_redis_t *sff_redis_create(struct st_h2o_evloop_t *loop, const sff_redis_config_t *config, char *err, size_t errsize);

/*
 * Closes the connection and frees the client. Before it returns, every pending call's callback
 * fires: those still waiting for Redis with SFF_ECANCELED, those already answered with their
 * answer. A call started from one of those callbacks fails with SFF_ECANCELED, and a destroy from
 * one of them is a no-op. May be called from any callback of this client.
 */
void sff_redis_destroy(sff_redis_t *redis);

/* Withdraws a pending call: its callback will not fire. The reply, if Redis sends one, is
 * discarded. req must be pending (its callback has not started). */
void sff_redis_cancel(sff_redis_req_t *req);

/* Nonzero when connected and past the handshake (calls are accepted). */
int sff_redis_connected(const sff_redis_t *redis);

/* ---- commands --------------------------------------------------------------------------------- */

/*
 * A command's answer. On success err is 0 and reply is a new reference (the callback owns it):
 *   status "+OK"        -> "OK"                 integer         -> number
 *   nil                 -> null                 array           -> array (nested)
 *   bulk string         -> string when it is valid UTF-8 (NUL bytes included: jansson keeps the
 *                          length), else {"base64": "<standard base64 with padding>"}
 *   an error in an array (e.g. from EVAL) -> {"error": "<message>"}
 * and errmsg is NULL. On failure reply is NULL, err is negative and errmsg (borrowed, valid during
 * the callback, never NULL) says why. An error reply gives its message, which may quote the
 * command's arguments: keep it out of responses. Codes:
 *   SFF_EINTERNAL    an error reply (ERR, WRONGTYPE, NOSCRIPT, NOAUTH, ...)
 *   SFF_EUNAVAILABLE the connection dropped with the command in flight, or an error reply that
 *                    says Redis cannot serve now (LOADING, BUSY, READONLY, MASTERDOWN, TRYAGAIN,
 *                    CLUSTERDOWN)
 *   SFF_EOVERLOADED  an OOM error reply (maxmemory reached)
 *   SFF_ETIMEDOUT    the deadline passed
 *   SFF_ECANCELED    the client was destroyed
 */
typedef void (*sff_redis_command_cb)(void *data, int err, json_t *reply, const char *errmsg);

/*
 * Sends one command, binary-safe: argv[i] has argvlen[i] bytes (argvlen NULL: NUL-terminated
 * strings). The arguments are copied before it returns. timeout_ms 0 means the client's default.
 * req, when not NULL, receives the handle for sff_redis_cancel().
 * Returns 0, or without calling cb:
 *   SFF_EUNAVAILABLE not connected (fail fast, nothing is queued)
 *   SFF_EBADREQ      argc < 1, or a command this shared, pipelined connection must not carry:
 *                    SUBSCRIBE and the other pub/sub subscriptions, MONITOR (the connection would
 *                    stop answering commands); SELECT, AUTH, HELLO (RESP3 breaks hiredis 0.14),
 *                    RESET, QUIT, CLIENT REPLY (replies would go to the wrong callbacks); MULTI, EXEC,
 *                    DISCARD, WATCH, UNWATCH (other calls' commands would land inside the
 *                    transaction: use EVAL); the blocking BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP,
 *                    BZPOPMIN, BZPOPMAX, BZMPOP, WAIT, WAITAOF, and XREAD/XREADGROUP with BLOCK (they
 *                    would hold up every call behind them); SYNC, PSYNC
 *   SFF_ECANCELED    the client is being destroyed
 *   SFF_ENOMEM
 * A reply nested deeper than 7 arrays is beyond hiredis 0.14's parser: it drops the connection
 * and the call fails with SFF_EUNAVAILABLE (the client reconnects).
 */
int sff_redis_command(sff_redis_t *redis, int argc, const char *const *argv, const size_t *argvlen, uint32_t timeout_ms,
                      sff_redis_command_cb cb, void *data, sff_redis_req_t **req);

/* PUBLISH channel message (binary-safe message). On success reply is the number of subscribers
 * that received it. An explicit command: fails at once with SFF_EUNAVAILABLE while down. */
int sff_redis_publish(sff_redis_t *redis, const char *channel, const void *message, size_t len, uint32_t timeout_ms,
                      sff_redis_command_cb cb, void *data, sff_redis_req_t **req);

/* ---- JSON cache ------------------------------------------------------------------------------- */
/*
 * A JSON value per key, with a TTL, under "<prefix>c:<key>". Without tags it is plain GET and
 * SET key json EX ttl (the stored value is the compact JSON text).
 *
 * With tags, writes become visible on the next read (docs/decisions/0034-redis-cache-invalidation.md):
 * every tag has a version counter ("<prefix>t:<tag>", no TTL) and the cache has an epoch
 * ("<prefix>epoch"); an entry is stored as "<stamp>\n<json>", where the stamp lists the epoch and
 * the versions of its tags. A get (one Lua script) returns the value only when its stamp is
 * current; on a miss it hands out the current stamp. The caller reads the source of truth, then
 * sets with that stamp: if a tag was invalidated in between, the set is skipped (SFF_ECONFLICT), so
 * a value read before a write can never be cached as if read after it. The writer invalidates its
 * tags after committing and before answering. Pass the same tags, in the same order, to a key's
 * get and set. Tag keys have no TTL: with maxmemory, use a volatile-* eviction policy (or
 * noeviction) so they are never evicted.
 */

/*
 * A get's answer. value: a new reference on a hit, NULL on a miss. err: 0 on a hit or a plain
 * miss; for a degraded miss, why (SFF_EUNAVAILABLE, SFF_ETIMEDOUT, SFF_EINTERNAL for an entry that
 * is not JSON or an error reply, SFF_ECANCELED). stamp: on a miss with tags and err 0, the stamp to
 * pass to sff_redis_cache_set() (borrowed, valid during the callback; copy it), else NULL.
 */
typedef void (*sff_redis_cache_get_cb)(void *data, json_t *value, const char *stamp, int err);
/* The same answer as stored: text (len bytes and a NUL, borrowed, valid during the callback) on a
 * hit, NULL on a miss. The text is not parsed, so not checked: the cache holds what
 * sff_redis_cache_set() wrote, JSON, unless something else wrote under the client's key prefix. */
typedef void (*sff_redis_cache_text_cb)(void *data, const char *text, size_t len, const char *stamp, int err);
/* A set's answer: 0 when stored; SFF_ECONFLICT when skipped because a tag changed since the stamp
 * was handed out; else why it was skipped (the degraded codes above). Callers may ignore it. */
typedef void (*sff_redis_cache_set_cb)(void *data, int err);
/* An invalidation's answer: 0, or why it may not have reached Redis. */
typedef void (*sff_redis_invalidate_cb)(void *data, int err);

/* Looks key up; tags (ntags of them, NUL-terminated strings) as given when it was set. Returns 0
 * (also while Redis is down: the callback reports a degraded miss), or SFF_EBADREQ (empty key or
 * tag), SFF_ECANCELED, SFF_ENOMEM without calling cb. */
int sff_redis_cache_get(sff_redis_t *redis, const char *key, const char *const *tags, size_t ntags, uint32_t timeout_ms,
                        sff_redis_cache_get_cb cb, void *data, sff_redis_req_t **req);
/* sff_redis_cache_get() without the parse: a hit can go out as it is, without parsing the value
 * and serializing it again. */
int sff_redis_cache_get_text(sff_redis_t *redis, const char *key, const char *const *tags, size_t ntags, uint32_t timeout_ms,
                             sff_redis_cache_text_cb cb, void *data, sff_redis_req_t **req);

/* Stores value (borrowed; serialized before it returns) under key for ttl_s seconds (>= 1). stamp:
 * from the get's miss, or NULL to stamp the entry with the current versions (which races with
 * writers: only for values not read from a source a writer may change meanwhile). Same return
 * codes as sff_redis_cache_get(), and SFF_EBADREQ for ttl_s 0 or a value jansson cannot encode. */
int sff_redis_cache_set(sff_redis_t *redis, const char *key, const char *const *tags, size_t ntags, const char *stamp,
                        const json_t *value, uint32_t ttl_s, uint32_t timeout_ms, sff_redis_cache_set_cb cb, void *data,
                        sff_redis_req_t **req);

/*
 * Increments the version of every tag, so every entry stamped with an older one misses; ntags 0
 * bumps the epoch instead, which invalidates every tagged entry. When the outcome is unknown (Redis
 * down, timeout, connection lost), the client bumps the epoch as part of its next handshake, before
 * it accepts calls again: a write whose invalidation was lost is visible on the first read after
 * the connection is back. (Another worker's connection may stay up meanwhile and serve the entry.)
 * Returns like sff_redis_cache_get(); while down, cb gets SFF_EUNAVAILABLE.
 */
int sff_redis_cache_invalidate(sff_redis_t *redis, const char *const *tags, size_t ntags, uint32_t timeout_ms,
                               sff_redis_invalidate_cb cb, void *data, sff_redis_req_t **req);

/* ---- rate limits ------------------------------------------------------------------------------ */

typedef enum { SFF_REDIS_LIMIT_ALLOWED, SFF_REDIS_LIMIT_DENIED, SFF_REDIS_LIMIT_UNKNOWN } sff_redis_limit_status_t;

typedef struct st_sff_redis_limit_t {
    sff_redis_limit_status_t status;
    uint64_t count;         /* hits in the current window, this one included (0 when unknown) */
    uint64_t remaining;     /* hits still allowed in the window */
    uint64_t reset_ms;      /* until the window ends */
    uint32_t retry_after_s; /* reset_ms rounded up to whole seconds (>= 1), for Retry-After */
} sff_redis_limit_t;

/* result is borrowed (valid during the callback); err is 0, or why the status is unknown. */
typedef void (*sff_redis_limit_cb)(void *data, const sff_redis_limit_t *result, int err);

/*
 * Counts one hit of key ("<prefix>rl:<key>") in a fixed window of window_ms that starts with the
 * window's first hit (INCR, and PEXPIRE on the first hit, in one Lua script); allowed while the
 * count is at most limit. Denied hits count too. Returns 0 (also while Redis is down: the callback
 * reports SFF_REDIS_LIMIT_UNKNOWN), or SFF_EBADREQ (empty key, limit or window 0), SFF_ECANCELED,
 * SFF_ENOMEM without calling cb.
 */
int sff_redis_ratelimit(sff_redis_t *redis, const char *key, uint64_t limit, uint32_t window_ms, uint32_t timeout_ms,
                        sff_redis_limit_cb cb, void *data, sff_redis_req_t **req);

/* ---- stats ------------------------------------------------------------------------------------ */

typedef struct st_sff_redis_stats_t {
    uint64_t commands;         /* commands sent (handshakes excluded; a script resent after NOSCRIPT counts once) */
    uint64_t errors;           /* calls that ended with an error but a timeout or a cancel, including
                                  calls refused at once with SFF_EUNAVAILABLE and degraded helper answers */
    uint64_t timeouts;         /* calls that passed their deadline */
    uint64_t reconnects;       /* connections established after the first */
    uint64_t connect_failures; /* attempts that failed (refused, timed out, handshake error) */
    uint64_t cache_hits;
    uint64_t cache_misses;   /* plain and degraded misses */
    uint64_t cache_degraded; /* gets answered with a miss and sets skipped because of an error */
    uint64_t limit_unknown;  /* rate-limit checks answered SFF_REDIS_LIMIT_UNKNOWN */
    int connected;
} sff_redis_stats_t;

void sff_redis_stats(const sff_redis_t *redis, sff_redis_stats_t *stats);

/* ---- replies (used by the client; exposed for tests) ------------------------------------------ */

/* The JSON form of a reply (see sff_redis_command_cb); an error reply at the top gives
 * {"error": msg} too. New reference, or NULL when out of memory. */
json_t *sff_redis_reply_json(const struct redisReply *reply);
/* The SFF_E* code of an error reply's message (see sff_redis_command_cb). */
int sff_redis_error_code(const char *msg, size_t len);

#endif
