/*
 * redis.c - the connection (connect, handshake, backoff, stuck detection) and the life of a call
 * (deadline, reply, detach, dispatch), and plain commands. The cache and rate-limit helpers are in
 * redis_helpers.c.
 *
 * Two rules keep hiredis 0.14 safe to drive:
 *  - Nothing of ours frees the context from inside one of its callbacks (it would be used after
 *    the free): a handshake error arms drop_timer instead, and a dying context is only forgotten
 *    (r->ac = NULL) in on_connect()/on_disconnect(), which hiredis calls right before freeing it.
 *  - No caller's callback runs inside hiredis: answers are queued (r->done) and dispatched from a
 *    zero-delay timer, after hiredis has returned. Only a deadline calls its caller directly, from
 *    its own timer.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "sff.h"
#include "log.h"
#include "redis_adapter.h"
#include "redis_internal.h"

#define FAIL_LOG_INTERVAL_MS 60000
#define SFF_REDIS_MAX_PREFIX 64

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);
static void start_connect(sff_redis_t *r);

/* ---- requests --------------------------------------------------------------------------------- */

const char *sff_redis__default_msg(int err)
{
    switch (err) {
    case SFF_EUNAVAILABLE:
        return "Redis is unavailable";
    case SFF_ETIMEDOUT:
        return "Redis did not answer in time";
    case SFF_ECANCELED:
        return "the Redis client was destroyed";
    case SFF_ENOMEM:
        return "out of memory";
    case SFF_ECONFLICT:
        return "a tag changed since the stamp was handed out";
    default:
        return "Redis answered with an error";
    }
}

static void on_deadline(sff_timer_t *timer);

sff_redis_req_t *sff_redis__req_new(sff_redis_t *r, const sff_redis_ops_t *ops, int argc, size_t bytes)
{
    size_t head = (sizeof(sff_redis_req_t) + 15) & ~(size_t)15;
    size_t arrays = (size_t)argc * (sizeof(char *) + sizeof(size_t));
    sff_redis_req_t *req = calloc(1, head + arrays + bytes);
    if (req == NULL)
        return NULL;
    req->redis = r;
    req->ops = ops;
    req->state = SFF_REDIS_REQ_NEW;
    req->argv = (const char **)((char *)req + head);
    req->argvlen = (size_t *)((char *)req->argv + (size_t)argc * sizeof(char *));
    req->bytes = (char *)req + head + arrays;
    sff_timer_init(&req->deadline, on_deadline, req);
    return req;
}

void sff_redis__req_arg(sff_redis_req_t *req, const char *a, size_t alen, const char *b, size_t blen, const char *c, size_t clen)
{
    const char *piece[3] = {a, b, c};
    size_t len[3] = {alen, blen, clen}, n = 0;
    char *dst = req->bytes;
    for (size_t i = 0; i < 3; i++) {
        if (piece[i] != NULL) {
            memcpy(dst + n, piece[i], len[i]);
            n += len[i];
        }
    }
    dst[n] = '\0';
    req->argv[req->argc] = dst;
    req->argvlen[req->argc] = n;
    req->argc++;
    req->bytes = dst + n + 1;
}

void sff_redis__req_free(sff_redis_req_t *req)
{
    sff_timer_stop(&req->deadline);
    json_decref(req->value);
    free(req->text);
    free(req->stamp);
    free(req->msg_buf);
    free(req);
}

void sff_redis__req_error(sff_redis_req_t *req, int err, const char *msg, size_t len)
{
    req->err = err;
    free(req->msg_buf);
    if ((req->msg_buf = malloc(len + 1)) != NULL) {
        memcpy(req->msg_buf, msg, len);
        req->msg_buf[len] = '\0';
        req->msg = req->msg_buf;
    } else {
        req->msg = sff_redis__default_msg(err);
    }
}

static void schedule_dispatch(sff_redis_t *r)
{
    if (!sff_timer_armed(&r->dispatch_timer))
        sff_timer_start(&r->dispatch_timer, 0);
}

/* The call is answered (or failed with err, unless convert() already set an error): queue it. */
static void finish(sff_redis_req_t *req, int err, const char *msg)
{
    sff_redis_t *r = req->redis;
    sff_timer_stop(&req->deadline);
    if (err != 0 && req->err == 0) {
        req->err = err;
        req->msg = msg != NULL ? msg : sff_redis__default_msg(err);
    }
    if (req->err != 0 && req->err != SFF_ETIMEDOUT && req->err != SFF_ECANCELED && req->err != SFF_ECONFLICT)
        r->stats.errors++;
    req->state = SFF_REDIS_REQ_QUEUED;
    h2o_linklist_insert(&r->done, &req->link);
    schedule_dispatch(r);
}

static void free_client(sff_redis_t *r)
{
    sff_timer_stop(&r->connect_timer);
    sff_timer_stop(&r->retry_timer);
    sff_timer_stop(&r->drop_timer);
    sff_timer_stop(&r->dispatch_timer);
    sff_redis_url_wipe(&r->url);
    free(r->prefix);
    free(r);
}

/* Leaves a callback section; frees the client when it was destroyed meanwhile and this was the
 * outermost section. */
static void leave(sff_redis_t *r)
{
    if (--r->busy == 0 && r->closed)
        free_client(r);
}

static void fire_and_free(sff_redis_req_t *req)
{
    req->ops->fire(req);
    sff_redis__req_free(req);
}

static void on_dispatch(sff_timer_t *timer)
{
    sff_redis_t *r = timer->data;
    r->busy++;
    int connected = r->state == SFF_REDIS_READY;
    if (connected != r->reported && !r->closed) {
        r->reported = connected;
        if (r->on_state != NULL)
            r->on_state(r->state_data, connected);
    }
    while (!r->closed && !h2o_linklist_is_empty(&r->done)) {
        sff_redis_req_t *req = H2O_STRUCT_FROM_MEMBER(sff_redis_req_t, link, r->done.next);
        h2o_linklist_unlink(&req->link);
        fire_and_free(req);
    }
    leave(r);
}

int sff_redis__submit(sff_redis_req_t *req, int argc, const char *const *argv, const size_t *argvlen, uint32_t timeout_ms,
                      int degrade, sff_redis_req_t **out)
{
    sff_redis_t *r = req->redis;
    if (argv == NULL) {
        argc = req->argc;
        argv = req->argv;
        argvlen = req->argvlen;
    }
    if (r->closed) {
        sff_redis__req_free(req);
        return SFF_ECANCELED;
    }
    if (r->state != SFF_REDIS_READY) {
        if (!degrade) {
            r->stats.errors++;
            sff_redis__req_free(req);
            return SFF_EUNAVAILABLE;
        }
        finish(req, SFF_EUNAVAILABLE, "not connected to Redis");
    } else {
        if (sff_timer_start(&req->deadline, timeout_ms != 0 ? timeout_ms : r->command_timeout_ms) != 0) {
            sff_redis__req_free(req);
            return SFF_ENOMEM;
        }
        if (redisAsyncCommandArgv(r->ac, on_reply, req, argc, (const char **)argv, argvlen) != REDIS_OK) {
            r->stats.errors++;
            sff_redis__req_free(req);
            return SFF_EUNAVAILABLE;
        }
        req->state = SFF_REDIS_REQ_SENT;
        r->stats.commands++;
    }
    if (out != NULL)
        *out = req;
    return 0;
}

static int is_noscript(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && reply->len >= 8 && memcmp(reply->str, "NOSCRIPT", 8) == 0;
}

/* hiredis's callback for every call; reply is NULL when the context is going away. */
static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    sff_redis_req_t *req = privdata;
    sff_redis_t *r = req->redis;
    redisReply *reply = reply_;
    if (reply != NULL)
        r->timeouts_in_row = 0;
    if (req->state == SFF_REDIS_REQ_DETACHED) {
        sff_redis__req_free(req);
        return;
    }
    if (reply == NULL) {
        finish(req, r->closed ? SFF_ECANCELED : SFF_EUNAVAILABLE, r->closed ? NULL : "the connection to Redis was lost");
        return;
    }
    if (req->script != NULL && !req->resent && is_noscript(reply)) {
        /* the script cache was flushed (or this server never saw it): send the text, which loads it */
        req->resent = 1;
        req->argv[0] = "EVAL";
        req->argvlen[0] = 4;
        req->argv[1] = req->script->text;
        req->argvlen[1] = strlen(req->script->text);
        if (redisAsyncCommandArgv(ac, on_reply, req, req->argc, req->argv, req->argvlen) != REDIS_OK)
            finish(req, SFF_EUNAVAILABLE, "the connection to Redis was lost");
        return;
    }
    req->ops->convert(req, reply);
    finish(req, 0, NULL);
}

/* ---- the connection --------------------------------------------------------------------------- */

static void log_failure(sff_redis_t *r, const char *what, const char *why, uint32_t next_ms)
{
    uint64_t now = sff_now_ms();
    if (r->attempt > 1 && now - r->last_fail_log_ms < FAIL_LOG_INTERVAL_MS)
        return;
    r->last_fail_log_ms = now;
    sff_log_warn("redis %s: %s: %s (attempt %u, next in %u ms; further failures are logged once a minute)", r->where, what, why,
                 r->attempt, next_ms);
}

static uint32_t backoff(sff_redis_t *r)
{
    if (r->attempt == 0)
        return 0;
    uint64_t d = r->backoff_min_ms;
    for (uint32_t i = 1; i < r->attempt && d < r->backoff_max_ms; i++)
        d *= 2;
    if (d > r->backoff_max_ms)
        d = r->backoff_max_ms;
    /* "equal jitter": somewhere in [d/2, d], so that workers do not reconnect in step */
    return (uint32_t)(d / 2 + arc4random_uniform((uint32_t)(d - d / 2) + 1));
}

static void schedule_retry(sff_redis_t *r)
{
    sff_timer_start(&r->retry_timer, backoff(r));
}

/* The connection is gone (r->ac is already NULL or forgotten). Never frees anything: safe inside
 * hiredis's callbacks. */
static void connection_gone(sff_redis_t *r, const char *what, const char *why)
{
    int was_ready = r->state == SFF_REDIS_READY;
    r->state = SFF_REDIS_DOWN;
    r->drop_pending = 0;
    r->timeouts_in_row = 0;
    sff_timer_stop(&r->connect_timer);
    sff_timer_stop(&r->drop_timer);
    if (r->closed)
        return;
    if (was_ready) {
        r->attempt = 0;
        sff_log_warn("redis %s: connection lost: %s; reconnecting", r->where, why);
        schedule_dispatch(r); /* tells on_state */
    } else {
        r->attempt++;
        r->stats.connect_failures++;
        uint32_t delay = backoff(r);
        log_failure(r, what, why, delay);
        sff_timer_start(&r->retry_timer, delay);
        return;
    }
    schedule_retry(r);
}

/* Frees the context (never from inside one of its callbacks); calls in flight fail. */
static void drop(sff_redis_t *r, const char *what, const char *why)
{
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    if (ac != NULL)
        redisAsyncFree(ac); /* calls on_reply(NULL) for each call in flight */
    connection_gone(r, what, why);
}

static void on_drop_timer(sff_timer_t *timer)
{
    sff_redis_t *r = timer->data;
    if (r->drop_pending)
        drop(r, "handshake failed", r->fail_msg);
}

static void on_connect_timeout(sff_timer_t *timer)
{
    sff_redis_t *r = timer->data;
    char why[64];
    snprintf(why, sizeof(why), "no answer within %u ms", r->connect_timeout_ms);
    if (r->state == SFF_REDIS_RESOLVING) {
        sff_redis_resolve_cancel(r->resolve);
        r->resolve = NULL;
        connection_gone(r, "host name lookup", why);
    } else if (r->state == SFF_REDIS_CONNECTING) {
        drop(r, "connect", why);
    }
}

static void on_retry(sff_timer_t *timer)
{
    start_connect(timer->data);
}

static void ready(sff_redis_t *r)
{
    sff_timer_stop(&r->connect_timer);
    r->state = SFF_REDIS_READY;
    if (r->ever_connected)
        r->stats.reconnects++;
    r->ever_connected = 1;
    r->attempt = 0;
    r->timeouts_in_row = 0;
    sff_log_info("redis %s: connected", r->where);
    schedule_dispatch(r); /* tells on_state */
}

/* privdata names the handshake step. */
static void on_handshake(redisAsyncContext *ac, void *reply_, void *privdata)
{
    sff_redis_t *r = ac->data;
    redisReply *reply = reply_;
    const char *step = privdata;
    if (ac != r->ac || r->state != SFF_REDIS_CONNECTING || r->drop_pending || reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        /* AUTH's errors (WRONGPASS, NOAUTH...) never quote the password */
        snprintf(r->fail_msg, sizeof(r->fail_msg), "%s: %.*s", step, (int)reply->len, reply->str);
        r->drop_pending = 1;
        sff_timer_start(&r->drop_timer, 0);
        return;
    }
    if (strcmp(step, "INCR") == 0)
        r->lost_invalidation = 0;
    else if (strcmp(step, "PING") == 0)
        ready(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    sff_redis_t *r = ac->data;
    if (ac != r->ac || status == REDIS_OK)
        return;
    /* hiredis frees ac when this returns */
    r->ac = NULL;
    snprintf(r->fail_msg, sizeof(r->fail_msg), "%s", ac->errstr);
    connection_gone(r, "connect", r->fail_msg);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    sff_redis_t *r = ac->data;
    if (ac != r->ac)
        return; /* dropped by us */
    /* hiredis frees ac when this returns */
    r->ac = NULL;
    snprintf(r->fail_msg, sizeof(r->fail_msg), "%s", ac->errstr[0] != '\0' ? ac->errstr : "closed");
    connection_gone(r, "handshake", r->fail_msg);
}

static int handshake(sff_redis_t *r)
{
    redisAsyncContext *ac = r->ac;
    int ret = REDIS_OK;
    if (r->url.password[0] != '\0') {
        const char *argv[3] = {"AUTH"};
        int argc = 1;
        if (r->url.username[0] != '\0')
            argv[argc++] = r->url.username;
        argv[argc++] = r->url.password;
        ret |= redisAsyncCommandArgv(ac, on_handshake, "AUTH", argc, argv, NULL);
    }
    if (r->url.db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", r->url.db);
        const char *argv[2] = {"SELECT", db};
        ret |= redisAsyncCommandArgv(ac, on_handshake, "SELECT", 2, argv, NULL);
    }
    if (r->lost_invalidation) {
        char key[SFF_REDIS_MAX_PREFIX + sizeof("epoch")];
        memcpy(key, r->prefix, r->prefix_len);
        memcpy(key + r->prefix_len, "epoch", sizeof("epoch"));
        const char *argv[2] = {"INCR", key};
        size_t argvlen[2] = {4, r->prefix_len + 5};
        ret |= redisAsyncCommandArgv(ac, on_handshake, "INCR", 2, argv, argvlen);
    }
    const char *ping[1] = {"PING"};
    ret |= redisAsyncCommandArgv(ac, on_handshake, "PING", 1, ping, NULL);
    return ret;
}

static int is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void connect_to(sff_redis_t *r, const char *addr)
{
    redisAsyncContext *ac = r->url.unix_socket ? redisAsyncConnectUnix(r->url.path) : redisAsyncConnect(addr, r->url.port);
    if (ac == NULL) {
        connection_gone(r, "connect", "out of memory");
        return;
    }
    if (ac->err != 0) {
        snprintf(r->fail_msg, sizeof(r->fail_msg), "%s", ac->errstr);
        redisAsyncFree(ac); /* nothing attached, nothing pending: no callback */
        connection_gone(r, "connect", r->fail_msg);
        return;
    }
    if (sff_redis_adapter_attach(ac, r->loop) != 0) {
        redisAsyncFree(ac);
        connection_gone(r, "connect", "cannot watch the socket");
        return;
    }
    ac->data = r;
    /* (hiredis 0.14 arms the first write event, which completes the connect, in here: the adapter
     * must be attached first) */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (!r->url.unix_socket)
        redisEnableKeepAlive(&ac->c);
    r->ac = ac;
    r->state = SFF_REDIS_CONNECTING;
    /* queued before the connection is up: the first writable event sends them */
    if (handshake(r) != REDIS_OK)
        drop(r, "connect", "cannot queue the handshake");
}

static void on_resolved(void *data, const char *addr, const char *errmsg)
{
    sff_redis_t *r = data;
    r->resolve = NULL;
    if (addr == NULL) {
        snprintf(r->fail_msg, sizeof(r->fail_msg), "%s", errmsg);
        connection_gone(r, "host name lookup", r->fail_msg);
        return;
    }
    connect_to(r, addr);
}

static void start_connect(sff_redis_t *r)
{
    sff_timer_start(&r->connect_timer, r->connect_timeout_ms);
    if (!r->url.unix_socket && !is_numeric(r->url.host)) {
        r->state = SFF_REDIS_RESOLVING;
        if ((r->resolve = sff_redis_resolve_start(r->loop, r->url.host, on_resolved, r)) == NULL)
            connection_gone(r, "host name lookup", "cannot start a lookup thread");
        return;
    }
    connect_to(r, r->url.host);
}

/* ---- the API ---------------------------------------------------------------------------------- */

sff_redis_t *sff_redis_create(h2o_loop_t *loop, const sff_redis_config_t *config, char *err, size_t errsize)
{
    sff_redis_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    if (config->url == NULL || sff_redis_url_parse(config->url, &r->url, err, errsize) != 0) {
        if (config->url == NULL)
            snprintf(err, errsize, "no URL");
        free(r);
        return NULL;
    }
    const char *prefix = config->key_prefix != NULL ? config->key_prefix : "sff:";
    if (strlen(prefix) > SFF_REDIS_MAX_PREFIX) {
        sff_redis_url_wipe(&r->url);
        free(r);
        snprintf(err, errsize, "the key prefix is longer than %d bytes", SFF_REDIS_MAX_PREFIX);
        return NULL;
    }
    if ((r->prefix = strdup(prefix)) == NULL) {
        sff_redis_url_wipe(&r->url);
        free(r);
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    r->prefix_len = strlen(prefix);
    sff_redis_url_describe(&r->url, r->where, sizeof(r->where));
    r->loop = loop;
    r->connect_timeout_ms = config->connect_timeout_ms != 0 ? config->connect_timeout_ms : 2000;
    r->command_timeout_ms = config->command_timeout_ms != 0 ? config->command_timeout_ms : 1000;
    r->max_timeouts = config->max_timeouts != 0 ? config->max_timeouts : 5;
    r->backoff_min_ms = config->backoff_min_ms != 0 ? config->backoff_min_ms : 50;
    r->backoff_max_ms = config->backoff_max_ms != 0 ? config->backoff_max_ms : 5000;
    if (r->backoff_max_ms < r->backoff_min_ms)
        r->backoff_max_ms = r->backoff_min_ms;
    r->on_state = config->on_state;
    r->state_data = config->data;
    sff_timer_init(&r->connect_timer, on_connect_timeout, r);
    sff_timer_init(&r->retry_timer, on_retry, r);
    sff_timer_init(&r->drop_timer, on_drop_timer, r);
    sff_timer_init(&r->dispatch_timer, on_dispatch, r);
    h2o_linklist_init_anchor(&r->done);
    start_connect(r);
    return r;
}

void sff_redis_destroy(sff_redis_t *r)
{
    if (r->closed)
        return;
    r->closed = 1;
    r->busy++;
    sff_timer_stop(&r->connect_timer);
    sff_timer_stop(&r->retry_timer);
    sff_timer_stop(&r->drop_timer);
    sff_timer_stop(&r->dispatch_timer);
    if (r->resolve != NULL) {
        sff_redis_resolve_cancel(r->resolve);
        r->resolve = NULL;
    }
    drop(r, "close", "destroyed"); /* calls in flight are queued with SFF_ECANCELED */
    while (!h2o_linklist_is_empty(&r->done)) {
        sff_redis_req_t *req = H2O_STRUCT_FROM_MEMBER(sff_redis_req_t, link, r->done.next);
        h2o_linklist_unlink(&req->link);
        fire_and_free(req);
    }
    leave(r);
}

void sff_redis_cancel(sff_redis_req_t *req)
{
    switch (req->state) {
    case SFF_REDIS_REQ_SENT:
        /* hiredis still holds it: on_reply() frees it when the reply (or the end) comes */
        sff_timer_stop(&req->deadline);
        req->state = SFF_REDIS_REQ_DETACHED;
        break;
    case SFF_REDIS_REQ_QUEUED:
        h2o_linklist_unlink(&req->link);
        sff_redis__req_free(req);
        break;
    default:
        break;
    }
}

/* A call passed its deadline: its caller hears SFF_ETIMEDOUT now, hiredis keeps the request until
 * the reply comes. */
static void on_deadline(sff_timer_t *timer)
{
    sff_redis_req_t *req = timer->data;
    sff_redis_t *r = req->redis;
    r->stats.timeouts++;
    r->timeouts_in_row++;
    req->state = SFF_REDIS_REQ_DETACHED;
    req->err = SFF_ETIMEDOUT;
    req->msg = sff_redis__default_msg(SFF_ETIMEDOUT);
    r->busy++;
    req->ops->fire(req); /* req may be freed from here on (a destroy from the callback) */
    if (!r->closed && r->state == SFF_REDIS_READY && r->timeouts_in_row >= r->max_timeouts) {
        char why[96];
        snprintf(why, sizeof(why), "%u commands in a row timed out with no reply between", r->timeouts_in_row);
        drop(r, "stuck", why);
    }
    leave(r);
}

/* ---- commands -------------------------------------------------------------------------------- */

static void command_convert(sff_redis_req_t *req, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        sff_redis__req_error(req, sff_redis_error_code(reply->str, reply->len), reply->str, reply->len);
    } else if ((req->value = sff_redis_reply_json(reply)) == NULL) {
        req->err = SFF_ENOMEM;
        req->msg = sff_redis__default_msg(SFF_ENOMEM);
    }
}

static void command_fire(sff_redis_req_t *req)
{
    json_t *value = req->value;
    req->value = NULL;
    if (req->err != 0) {
        json_decref(value);
        req->cb.command(req->data, req->err, NULL, req->msg);
    } else {
        req->cb.command(req->data, 0, value, NULL);
    }
}

static const sff_redis_ops_t command_ops = {command_convert, command_fire};

static int arg_is(const char *arg, size_t len, const char *name)
{
    return strlen(name) == len && strncasecmp(arg, name, len) == 0;
}

/* Commands that would break a connection shared by every call of the worker (see redis.h). */
static int refused(int argc, const char *const *argv, const size_t *argvlen)
{
    static const char *const names[] = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
                                        "MONITOR",   "SELECT",     "AUTH",       "HELLO",       "RESET",        "QUIT",
                                        "MULTI",     "EXEC",       "DISCARD",    "WATCH",       "UNWATCH",      "BLPOP",
                                        "BRPOP",     "BRPOPLPUSH", "BLMOVE",     "BLMPOP",      "BZPOPMIN",     "BZPOPMAX",
                                        "BZMPOP",    "WAIT",       "WAITAOF",    "SYNC",        "PSYNC",        NULL};
#define LEN(i) (argvlen != NULL ? argvlen[i] : strlen(argv[i]))
    size_t len = LEN(0);
    for (size_t i = 0; names[i] != NULL; i++)
        if (arg_is(argv[0], len, names[i]))
            return 1;
    if (arg_is(argv[0], len, "CLIENT") && argc >= 2 && arg_is(argv[1], LEN(1), "REPLY"))
        return 1;
    if (arg_is(argv[0], len, "XREAD") || arg_is(argv[0], len, "XREADGROUP")) {
        for (int i = 1; i < argc && !arg_is(argv[i], LEN(i), "STREAMS"); i++)
            if (arg_is(argv[i], LEN(i), "BLOCK"))
                return 1;
    }
#undef LEN
    return 0;
}

int sff_redis_command(sff_redis_t *r, int argc, const char *const *argv, const size_t *argvlen, uint32_t timeout_ms,
                      sff_redis_command_cb cb, void *data, sff_redis_req_t **out)
{
    if (r->closed)
        return SFF_ECANCELED;
    if (argc < 1 || refused(argc, argv, argvlen))
        return SFF_EBADREQ;
    sff_redis_req_t *req = sff_redis__req_new(r, &command_ops, 0, 0);
    if (req == NULL)
        return SFF_ENOMEM;
    req->cb.command = cb;
    req->data = data;
    return sff_redis__submit(req, argc, argv, argvlen, timeout_ms, 0, out);
}

int sff_redis_publish(sff_redis_t *r, const char *channel, const void *message, size_t len, uint32_t timeout_ms,
                      sff_redis_command_cb cb, void *data, sff_redis_req_t **out)
{
    const char *argv[3] = {"PUBLISH", channel, message};
    size_t argvlen[3] = {7, strlen(channel), len};
    return sff_redis_command(r, 3, argv, argvlen, timeout_ms, cb, data, out);
}

/* ---- state ------------------------------------------------------------------------------------ */

int sff_redis_connected(const sff_redis_t *r)
{
    return r->state == SFF_REDIS_READY;
}

void sff_redis_stats(const sff_redis_t *r, sff_redis_stats_t *stats)
{
    *stats = r->stats;
    stats->connected = r->state == SFF_REDIS_READY;
}
