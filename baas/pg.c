/*
 * pg.c - the Postgres pool: connections on the worker's loop, pipelining, prepared statements,
 * transactions, deadlines, reconnection. Values become JSON in pg_json.c.
 *
 * A connection's libpq socket is watched through an h2o socket made on a dup() of it (flag
 * DONT_READ: h2o reports readability and never reads; h2o_socket_notify_write() reports
 * writability). h2o closes its descriptor when the h2o socket closes, and libpq closes its own when
 * it drops a connection, so each keeps its own descriptor of the one socket (docs/decisions/0020).
 *
 * Every call becomes one pipeline segment on a connection: [BEGIN] [claims] [PREPARE] statement
 * SYNC. The connection keeps a FIFO of the results it expects (one entry per command, one per SYNC);
 * a call completes when its SYNC arrives, so that a standalone statement's implicit transaction has
 * committed before its callback runs.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <h2o.h>
#include <libpq-fe.h>
#include "error.h"
#include "log.h"
#include "pg.h"
#include "sff.h"
#include "timer.h"

#define MAX_STATEMENTS 256 /* prepared per connection; beyond, statements run unnamed */
#define STMT_BUCKETS 128

static const char claims_sql[] = "select set_config('request.jwt.claims', $1, true), set_config('request.jwt.claim.sub', $2, true)";

enum { CONN_DOWN, CONN_CONNECTING, CONN_SETUP, CONN_UP };
enum { REQ_QUERY, REQ_BEGIN, REQ_COMMIT, REQ_ROLLBACK };
enum { EXP_PREPARE, EXP_CLAIMS, EXP_QUERY, EXP_CONTROL, EXP_SYNC };
enum { TX_BEGINNING, TX_OPEN, TX_ENDED, TX_BROKEN };

/* A statement prepared on one connection. */
typedef struct st_stmt_t {
    struct st_stmt_t *next; /* in its hash bucket */
    uint32_t hash;
    unsigned refs; /* one while cached, one per expected result that names it */
    int cached;
    int failed; /* its PREPARE failed: calls that named it report that error */
    int err;
    char *errmsg;
    char name[16];
    char sql[];
} stmt_t;

/* A result a connection expects, in the order the commands were sent. */
typedef struct st_exp_t {
    int kind;
    sff_pg_req_t *req;
    stmt_t *stmt;
} exp_t;

typedef struct st_conn_t {
    sff_pg_pool_t *pool;
    unsigned id;
    int state;
    PGconn *pg;
    sff_pg_lookup_t *lookup; /* the host names being looked up before PQconnectStartParams() */
    h2o_socket_t *sock;      /* watches a dup() of PQsocket() */
    dev_t sock_dev;
    ino_t sock_ino;
    int connect_want;  /* PGRES_POLLING_READING or _WRITING while connecting */
    sff_timer_t timer; /* DOWN: reconnect; CONNECTING/SETUP: connect deadline; UP: deferred close */
    unsigned failures; /* attempts failed in a row */
    int ever_up;
    char setup_error[256]; /* why the session settings failed, when they did */
    int want_flush;
    int tcp;      /* over TCP: batches of calls are corked (see conn_send()) */
    int sent_now; /* a call went out in this loop iteration */
    int corked;   /* TCP_CORK is on until the end of the iteration */
    int close_pending;
    uint64_t epoch; /* bumped when closed: a loop over its results stops */
    exp_t *ring;
    size_t ring_head, ring_len, ring_cap;
    size_t depth;       /* calls in flight (SYNCs expected) */
    int after_result;   /* the last thing PQgetResult() returned was a result: a NULL now ends a command */
    uint64_t alive_seq; /* pool->seq when it last came up or completed a segment */
    sff_pg_tx_t *tx;    /* the transaction pinning it */
    stmt_t **buckets;
    size_t nstmts;
    unsigned next_stmt;
} conn_t;

struct st_sff_pg_req_t {
    sff_pg_pool_t *pool;
    sff_pg_tx_t *tx;
    conn_t *conn; /* the connection it is in flight on; NULL while queued */
    int kind;
    sff_pg_shape_t shape;
    int idempotent;
    int retried;
    int fail_soon;     /* could not be sent for lack of memory: fails from its timer */
    uint64_t lost_seq; /* a retry: pool->seq when its connection was lost */
    int canceled;
    sff_pg_cb cb;
    sff_pg_begin_cb begin_cb;
    void *data;
    char *sql;
    char **params;
    size_t nparams;
    char *claims;
    char *sub;
    uint64_t start_us;
    uint64_t deadline_ms; /* absolute, on sff_now_ms() */
    sff_timer_t timer;
    h2o_linklist_t queued;               /* in pool->queue */
    h2o_linklist_t in_tx;                /* in tx->reqs */
    struct st_sff_pg_req_t *next_failed; /* while conn_close() fails the calls of a connection */
    int err;                             /* the first error of its segment */
    char *errmsg;
    json_t *result;
};

struct st_sff_pg_tx_t {
    sff_pg_pool_t *pool;
    conn_t *conn;
    int state;
    h2o_linklist_t reqs; /* its calls in flight */
};

struct st_sff_pg_pool_t {
    h2o_evloop_t *loop;
    sff_pg_config_t config;
    char *conninfo;
    int lookup; /* conninfo names hosts to look up on a thread before each attempt */
    char *setup_sql;
    conn_t *conns;
    size_t nconns;
    h2o_linklist_t queue;
    size_t nqueued;
    int failing; /* the last connection attempt failed and none has come up since */
    int destroyed;
    size_t ntx; /* transaction handles not yet released */
    int pumping;
    uint64_t seq;   /* orders losses and signs of life of connections, for retries */
    int in_destroy; /* sff_pg_pool_destroy() is running: the last tx_free() must not free the pool */
    uint64_t rng;
    sff_timer_t batch_timer; /* the end of a loop iteration in which calls were sent */
    sff_pg_stats_t stats;
};

static void on_readable(h2o_socket_t *sock, const char *err);
static void on_writable(h2o_socket_t *sock, const char *err);
static void conn_close(conn_t *conn, sff_pg_req_t *victim, const char *why, uint64_t reconnect_ms);
static void pump(sff_pg_pool_t *pool);
static void silent_rollback(conn_t *conn);

/* ---- small helpers ---------------------------------------------------------------------------- */

/* A libpq message on one line, without its trailing newline. */
static const char *oneline(const char *msg, char *buf, size_t size)
{
    size_t n = 0;
    if (msg == NULL || *msg == '\0')
        msg = "unknown error";
    for (; *msg != '\0' && n + 1 < size; msg++)
        buf[n++] = *msg == '\n' || *msg == '\t' ? ' ' : *msg;
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return buf;
}

static uint32_t hash_sql(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static uint64_t next_random(sff_pg_pool_t *pool)
{
    uint64_t x = pool->rng; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return pool->rng = x;
}

/* The delay before attempt n + 1 after n failed ones: min * 2^n up to max, jittered down to half. */
static uint64_t backoff_ms(sff_pg_pool_t *pool, unsigned failures)
{
    uint64_t d = pool->config.backoff_min_ms;
    for (unsigned i = 0; i < failures && d < pool->config.backoff_max_ms; i++)
        d *= 2;
    if (d > pool->config.backoff_max_ms)
        d = pool->config.backoff_max_ms;
    return d / 2 + next_random(pool) % (d / 2 + 1);
}

static int any_up(const sff_pg_pool_t *pool)
{
    for (size_t i = 0; i < pool->nconns; i++)
        if (pool->conns[i].state == CONN_UP && !pool->conns[i].close_pending)
            return 1;
    return 0;
}

static void on_notice(void *arg, const PGresult *res)
{
    (void)arg;
    (void)res; /* notices and warnings (e.g. a rollback outside a transaction) are not ours to print */
}

/* ---- prepared statements ---------------------------------------------------------------------- */

static void stmt_unref(stmt_t *st)
{
    if (st != NULL && --st->refs == 0) {
        free(st->errmsg);
        free(st);
    }
}

static stmt_t *stmt_find(conn_t *conn, const char *sql, uint32_t h)
{
    if (conn->buckets == NULL)
        return NULL;
    for (stmt_t *st = conn->buckets[h % STMT_BUCKETS]; st != NULL; st = st->next)
        if (st->hash == h && strcmp(st->sql, sql) == 0)
            return st;
    return NULL;
}

static void stmt_uncache(conn_t *conn, stmt_t *st)
{
    stmt_t **slot = &conn->buckets[st->hash % STMT_BUCKETS];
    while (*slot != st)
        slot = &(*slot)->next;
    *slot = st->next;
    st->cached = 0;
    conn->nstmts--;
    stmt_unref(st);
}

/* A new cached statement for sql, or NULL when the cache is full or memory runs out. */
static stmt_t *stmt_add(conn_t *conn, const char *sql, uint32_t h)
{
    if (conn->nstmts >= MAX_STATEMENTS)
        return NULL;
    if (conn->buckets == NULL && (conn->buckets = calloc(STMT_BUCKETS, sizeof(*conn->buckets))) == NULL)
        return NULL;
    size_t len = strlen(sql);
    stmt_t *st = calloc(1, sizeof(*st) + len + 1);
    if (st == NULL)
        return NULL;
    memcpy(st->sql, sql, len + 1);
    st->hash = h;
    st->refs = 1;
    st->cached = 1;
    snprintf(st->name, sizeof(st->name), "sff_%u", ++conn->next_stmt);
    st->next = conn->buckets[h % STMT_BUCKETS];
    conn->buckets[h % STMT_BUCKETS] = st;
    conn->nstmts++;
    return st;
}

static void stmt_clear(conn_t *conn)
{
    if (conn->buckets == NULL)
        return;
    for (size_t b = 0; b < STMT_BUCKETS; b++)
        while (conn->buckets[b] != NULL)
            stmt_uncache(conn, conn->buckets[b]);
    free(conn->buckets);
    conn->buckets = NULL;
    conn->next_stmt = 0;
}

/* ---- the expected results --------------------------------------------------------------------- */

/* Makes room for n more entries. Returns 0 or -1. */
static int ring_reserve(conn_t *conn, size_t n)
{
    if (conn->ring_len + n > conn->ring_cap) {
        size_t cap = conn->ring_cap != 0 ? conn->ring_cap * 2 : 64;
        while (cap < conn->ring_len + n)
            cap *= 2;
        exp_t *r = malloc(cap * sizeof(*r));
        if (r == NULL)
            return -1;
        for (size_t i = 0; i < conn->ring_len; i++)
            r[i] = conn->ring[(conn->ring_head + i) % conn->ring_cap];
        free(conn->ring);
        conn->ring = r;
        conn->ring_cap = cap;
        conn->ring_head = 0;
    }
    return 0;
}

/* Appends an entry; room was reserved. */
static void ring_push(conn_t *conn, int kind, sff_pg_req_t *req, stmt_t *st)
{
    if (st != NULL)
        st->refs++;
    conn->ring[(conn->ring_head + conn->ring_len++) % conn->ring_cap] = (exp_t){kind, req, st};
}

static exp_t *ring_front(conn_t *conn)
{
    return &conn->ring[conn->ring_head];
}

static void ring_pop(conn_t *conn)
{
    stmt_unref(conn->ring[conn->ring_head].stmt);
    conn->ring_head = (conn->ring_head + 1) % conn->ring_cap;
    conn->ring_len--;
}

/* ---- calls ------------------------------------------------------------------------------------ */

static void on_req_timer(sff_timer_t *t);

static void req_free(sff_pg_req_t *req)
{
    sff_timer_stop(&req->timer);
    if (h2o_linklist_is_linked(&req->queued)) {
        h2o_linklist_unlink(&req->queued);
        req->pool->nqueued--;
    }
    if (h2o_linklist_is_linked(&req->in_tx))
        h2o_linklist_unlink(&req->in_tx);
    for (size_t i = 0; i < req->nparams; i++)
        free(req->params[i]);
    free(req->params);
    free(req->sql);
    free(req->claims);
    free(req->sub);
    free(req->errmsg);
    json_decref(req->result);
    free(req);
}

/* A new call; *err is set when it returns NULL. */
static sff_pg_req_t *req_create(sff_pg_pool_t *pool, int kind, const sff_pg_query_t *q, const char *claims, const char *sub,
                                uint32_t timeout_ms, int *err)
{
    sff_pg_req_t *req = calloc(1, sizeof(*req));
    *err = SFF_ENOMEM;
    if (req == NULL)
        return NULL;
    req->pool = pool;
    req->kind = kind;
    sff_timer_init(&req->timer, on_req_timer, req);
    if (q != NULL) {
        req->shape = q->shape;
        req->idempotent = q->idempotent;
        if ((req->sql = strdup(q->sql)) == NULL)
            goto Fail;
        if (q->nparams != 0) {
            if ((req->params = calloc(q->nparams, sizeof(*req->params))) == NULL)
                goto Fail;
            req->nparams = q->nparams;
            for (size_t i = 0; i < q->nparams; i++)
                if (q->params[i] != NULL && (req->params[i] = strdup(q->params[i])) == NULL)
                    goto Fail;
        }
    }
    if (claims != NULL) {
        if ((req->claims = strdup(claims)) == NULL)
            goto Fail;
        if (sub == NULL) {
            json_t *c = json_loads(claims, JSON_DECODE_ANY, NULL);
            if (c == NULL) {
                *err = SFF_EINVALID;
                goto Fail;
            }
            const char *s = json_string_value(json_object_get(c, "sub"));
            req->sub = strdup(s != NULL ? s : "");
            json_decref(c);
        } else {
            req->sub = strdup(sub);
        }
        if (req->sub == NULL)
            goto Fail;
    }
    req->start_us = sff_now_us();
    req->deadline_ms = sff_now_ms() + (timeout_ms != 0 ? timeout_ms : pool->config.query_timeout_ms);
    *err = 0;
    return req;
Fail:
    req_free(req);
    return NULL;
}

static void tx_free(sff_pg_tx_t *tx);

/*
 * Ends a call: detaches it from everything, counts it, runs its callback (unless cancelled) and
 * frees it. result is stolen. The callback may call into the pool.
 */
static void req_complete(sff_pg_req_t *req, int err, json_t *result, const char *msg)
{
    sff_pg_pool_t *pool = req->pool;
    sff_timer_stop(&req->timer);
    if (h2o_linklist_is_linked(&req->queued)) {
        h2o_linklist_unlink(&req->queued);
        pool->nqueued--;
    }
    if (h2o_linklist_is_linked(&req->in_tx))
        h2o_linklist_unlink(&req->in_tx);
    req->conn = NULL;
    if (!req->canceled) {
        pool->stats.queries++;
        pool->stats.latency_us_sum += sff_now_us() - req->start_us;
        pool->stats.latency_count++;
        if (err != 0) {
            pool->stats.errors++;
            if (err == SFF_ETIMEDOUT)
                pool->stats.timeouts++;
        }
    }
    if (err != 0) {
        json_decref(result);
        result = NULL;
        if (msg == NULL)
            msg = sff_strerror(err);
    }
    if (req->kind == REQ_BEGIN) {
        sff_pg_tx_t *tx = req->tx;
        if (err == 0 && tx->state == TX_BEGINNING && tx->conn != NULL) {
            tx->state = TX_OPEN;
            if (req->canceled) { /* nobody owns it: end it at once */
                silent_rollback(tx->conn);
                tx->conn->tx = NULL;
                tx->conn = NULL;
                tx_free(tx);
                pump(pool);
            } else {
                req->begin_cb(req->data, 0, tx, NULL);
            }
        } else {
            if (err == 0) {
                err = SFF_EUNAVAILABLE;
                msg = "the connection was lost";
            }
            if (tx->conn != NULL && !pool->destroyed) {
                silent_rollback(tx->conn); /* BEGIN may have run while the claims failed */
                tx->conn->tx = NULL;
                tx->conn = NULL;
                pump(pool);
            }
            tx_free(tx);
            if (!req->canceled)
                req->begin_cb(req->data, err, NULL, msg);
        }
    } else if (!req->canceled && req->cb != NULL) {
        req->cb(req->data, err, result, msg);
        result = NULL;
    }
    json_decref(result);
    req->result = NULL;
    req_free(req);
}

static void set_error(sff_pg_req_t *req, int err, const char *msg)
{
    if (req->err != 0)
        return;
    req->err = err;
    free(req->errmsg);
    char buf[1024];
    req->errmsg = strdup(oneline(msg, buf, sizeof(buf)));
}

/* Queues a call for a connection, at the front for a retry. */
static void enqueue(sff_pg_pool_t *pool, sff_pg_req_t *req, int front)
{
    uint64_t now = sff_now_ms(), until = now + pool->config.queue_timeout_ms;
    if (until > req->deadline_ms)
        until = req->deadline_ms;
    h2o_linklist_insert(front ? pool->queue.next : &pool->queue, &req->queued);
    pool->nqueued++;
    sff_timer_start(&req->timer, until > now ? until - now : 0);
}

/* Queues a retry right behind an earlier one. */
static void enqueue_after(sff_pg_pool_t *pool, sff_pg_req_t *req, sff_pg_req_t *prev)
{
    uint64_t now = sff_now_ms(), until = now + pool->config.queue_timeout_ms;
    if (until > req->deadline_ms)
        until = req->deadline_ms;
    h2o_linklist_insert(prev->queued.next, &req->queued);
    pool->nqueued++;
    sff_timer_start(&req->timer, until > now ? until - now : 0);
}

static void fail_queue(sff_pg_pool_t *pool, int err, const char *msg)
{
    while (!h2o_linklist_is_empty(&pool->queue)) {
        sff_pg_req_t *req = H2O_STRUCT_FROM_MEMBER(sff_pg_req_t, queued, pool->queue.next);
        req_complete(req, err, NULL, msg);
    }
}

/* ---- sending ---------------------------------------------------------------------------------- */

/* Defers the close of a connection found broken while sending: callbacks never run inside a call. */
static void conn_fail_soon(conn_t *conn)
{
    if (conn->state != CONN_UP || conn->close_pending)
        return;
    conn->close_pending = 1;
    sff_timer_start(&conn->timer, 0);
}

static void conn_flush(conn_t *conn)
{
    int r = PQflush(conn->pg);
    if (r < 0) {
        conn_fail_soon(conn);
        return;
    }
    conn->want_flush = r == 1;
    if (r == 1 && conn->sock != NULL && !h2o_socket_is_writing(conn->sock))
        h2o_socket_notify_write(conn->sock, on_writable);
}

/* Sends one statement, prepared (once per connection) unless the cache is full. Returns 0 or -1. */
static int send_statement(conn_t *conn, sff_pg_req_t *req, int kind, const char *sql, int nparams, const char *const *params)
{
    uint32_t h = hash_sql(sql);
    stmt_t *st = stmt_find(conn, sql, h);
    if (st == NULL && (st = stmt_add(conn, sql, h)) != NULL) {
        if (!PQsendPrepare(conn->pg, st->name, sql, 0, NULL))
            return -1;
        ring_push(conn, EXP_PREPARE, req, st);
    }
    if (st != NULL) {
        if (!PQsendQueryPrepared(conn->pg, st->name, nparams, params, NULL, NULL, 0))
            return -1;
    } else if (!PQsendQueryParams(conn->pg, sql, nparams, NULL, params, NULL, NULL, 0)) {
        return -1;
    }
    ring_push(conn, kind, req, st);
    return 0;
}

static int send_control(conn_t *conn, sff_pg_req_t *req, const char *sql)
{
    if (!PQsendQueryParams(conn->pg, sql, 0, NULL, NULL, NULL, NULL, 0))
        return -1;
    ring_push(conn, EXP_CONTROL, req, NULL);
    return 0;
}

static void set_cork(conn_t *conn, int on)
{
    int fd = PQsocket(conn->pg);
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) == 0)
        conn->corked = on;
}

/*
 * Batches: PQpipelineSync() sends each call as it is made, and on loopback a send costs its
 * receiver's work too (the TCP stack runs in the sender's system call) and wakes Postgres once per
 * call. The first call of a loop iteration on a connection goes out at once; from the second one
 * on, TCP_CORK holds the bytes until the end of the iteration (batch_timer), when they go out in
 * as few segments as fit. A lone call per iteration costs nothing more.
 */
static void on_batch_end(sff_timer_t *timer)
{
    sff_pg_pool_t *pool = timer->data;
    for (size_t i = 0; i < pool->nconns; i++) {
        conn_t *conn = &pool->conns[i];
        if (conn->corked && conn->pg != NULL)
            set_cork(conn, 0);
        conn->corked = conn->sent_now = 0;
    }
}

static void batch_before_send(conn_t *conn)
{
    if (conn->sent_now && conn->tcp && !conn->corked)
        set_cork(conn, 1);
    if (conn->corked)
        conn->pool->stats.batched++;
}

static void batch_after_send(conn_t *conn)
{
    conn->sent_now = 1;
    if (!sff_timer_armed(&conn->pool->batch_timer))
        sff_timer_start(&conn->pool->batch_timer, 0);
}

/* Puts the call in flight on conn as one pipeline segment. A failure to send closes the connection
 * from a timer, which then fails (or retries) the call like the others in flight on it. */
static void conn_send(conn_t *conn, sff_pg_req_t *req)
{
    sff_pg_pool_t *pool = conn->pool;
    uint64_t now = sff_now_ms();
    int ok = 1;
    if (ring_reserve(conn, 6) != 0) { /* BEGIN, PREPARE, claims, PREPARE, statement, SYNC at most */
        if (req->kind == REQ_BEGIN) {
            conn->tx = NULL;
            req->tx->conn = NULL;
        }
        req->conn = NULL;
        req->fail_soon = 1;
        sff_timer_start(&req->timer, 0);
        conn_fail_soon(conn); /* a COMMIT not sent leaves a transaction open on it */
        return;
    }
    req->conn = conn;
    sff_timer_start(&req->timer, req->deadline_ms > now ? req->deadline_ms - now : 0);
    if (req->kind == REQ_BEGIN)
        ok = send_control(conn, req, "begin") == 0;
    if (ok && req->claims != NULL) {
        const char *cp[2] = {req->claims, req->sub};
        ok = send_statement(conn, req, EXP_CLAIMS, claims_sql, 2, cp) == 0;
    }
    if (ok) {
        switch (req->kind) {
        case REQ_QUERY:
            ok = send_statement(conn, req, EXP_QUERY, req->sql, (int)req->nparams, (const char *const *)req->params) == 0;
            break;
        case REQ_COMMIT:
            ok = send_control(conn, req, "commit") == 0;
            break;
        case REQ_ROLLBACK:
            ok = send_control(conn, req, "rollback") == 0;
            break;
        }
    }
    if (ok) {
        batch_before_send(conn);
        ok = PQpipelineSync(conn->pg) == 1;
        batch_after_send(conn);
    }
    /* the SYNC entry is what marks the call as in flight here, even when sending failed */
    ring_push(conn, EXP_SYNC, req, NULL);
    conn->depth++;
    if (conn->depth > pool->stats.pipeline_depth_max)
        pool->stats.pipeline_depth_max = conn->depth;
    if (!ok)
        conn_fail_soon(conn);
    else
        conn_flush(conn);
}

/* A ROLLBACK nobody waits for (a transaction whose owner went away, or whose BEGIN failed). */
static void silent_rollback(conn_t *conn)
{
    int err;
    sff_pg_req_t *req = req_create(conn->pool, REQ_ROLLBACK, NULL, NULL, NULL, 0, &err);
    if (req == NULL) {
        conn_fail_soon(conn); /* closing the connection rolls back too */
        return;
    }
    req->canceled = 1;
    conn_send(conn, req);
}

/* The least busy connection that takes req, or NULL. A retry only goes to a connection that showed
 * life after the loss: when one connection is lost, its siblings often are too (a restart), and a
 * retry sent to one of them before its loss is noticed would fail for good. */
static conn_t *pick_conn(sff_pg_pool_t *pool, const sff_pg_req_t *req)
{
    conn_t *best = NULL;
    for (size_t i = 0; i < pool->nconns; i++) {
        conn_t *c = &pool->conns[i];
        if (c->state != CONN_UP || c->close_pending || c->tx != NULL || c->depth >= pool->config.max_pipeline)
            continue;
        if (req->retried && c->alive_seq < req->lost_seq)
            continue;
        if (best == NULL || c->depth < best->depth)
            best = c;
    }
    return best;
}

/* Moves queued calls to connections while some take them. Never runs a callback. */
static void pump(sff_pg_pool_t *pool)
{
    if (pool->pumping || pool->destroyed)
        return;
    pool->pumping = 1;
    for (h2o_linklist_t *node = pool->queue.next, *next; node != &pool->queue; node = next) {
        next = node->next;
        sff_pg_req_t *req = H2O_STRUCT_FROM_MEMBER(sff_pg_req_t, queued, node);
        conn_t *conn = pick_conn(pool, req);
        if (conn == NULL) {
            if (req->retried)
                continue; /* a retry waits for a live connection; the calls behind it need not */
            break;
        }
        h2o_linklist_unlink(&req->queued);
        pool->nqueued--;
        if (req->kind == REQ_BEGIN) {
            conn->tx = req->tx;
            req->tx->conn = conn;
        }
        conn_send(conn, req);
    }
    pool->pumping = 0;
}

/* ---- results ---------------------------------------------------------------------------------- */

static void handle_result(conn_t *conn, exp_t *e, PGresult *res)
{
    sff_pg_req_t *req = e->req;
    const char *state;
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
        if (e->kind == EXP_QUERY && req->err == 0 && req->result == NULL && !req->canceled) {
            if ((req->result = sff_pg_result_json(res, req->shape)) == NULL)
                set_error(req, SFF_ENOMEM, "out of memory converting a result");
        }
        break;
    case PGRES_PIPELINE_ABORTED:
        if (e->stmt != NULL && e->stmt->failed)
            set_error(req, e->stmt->err, e->stmt->errmsg);
        set_error(req, SFF_EINTERNAL, "the statement was not run: an earlier one failed");
        break;
    case PGRES_FATAL_ERROR:
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (e->kind == EXP_PREPARE && e->stmt != NULL && !e->stmt->failed) {
            e->stmt->failed = 1;
            e->stmt->err = sff_pg_error_code(state);
            char buf[1024];
            e->stmt->errmsg = strdup(oneline(PQresultErrorMessage(res), buf, sizeof(buf)));
            if (e->stmt->cached)
                stmt_uncache(conn, e->stmt); /* the next call of this text prepares it again */
        }
        if (e->stmt != NULL && e->stmt->failed && state != NULL && strcmp(state, "26000") == 0)
            set_error(req, e->stmt->err, e->stmt->errmsg); /* named a statement whose PREPARE failed */
        set_error(req, sff_pg_error_code(state), PQresultErrorMessage(res));
        break;
    default: /* COPY and the like: the connection is in a mode we do not drive */
        set_error(req, SFF_EINTERNAL, "unsupported statement (COPY?)");
        conn_fail_soon(conn);
        break;
    }
}

/* The call's SYNC arrived: its segment is over. */
static void segment_done(sff_pg_req_t *req)
{
    json_t *result = req->result;
    int err = req->err;
    req->result = NULL;
    if (err == 0 && result == NULL) {
        if (req->kind == REQ_QUERY && !req->canceled) {
            err = SFF_EINTERNAL;
            req->errmsg = strdup("no result");
        } else {
            result = json_null();
        }
    }
    req_complete(req, err, result, req->errmsg);
}

/*
 * Takes every result libpq has parsed. In pipeline mode each command's results end with a NULL,
 * and a SYNC's result has none after it; a NULL that follows no result means "nothing more yet".
 */
static void conn_process(conn_t *conn)
{
    uint64_t epoch = conn->epoch;
    while (conn->epoch == epoch && conn->ring_len != 0 && !PQisBusy(conn->pg)) {
        PGresult *res = PQgetResult(conn->pg);
        exp_t *e = ring_front(conn);
        if (res == NULL) {
            if (!conn->after_result)
                break;
            conn->after_result = 0;
            if (e->kind != EXP_SYNC)
                ring_pop(conn);
            continue;
        }
        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            conn->after_result = 0;
            if (e->kind != EXP_SYNC) {
                conn_close(conn, NULL, "the pipeline got out of step", backoff_ms(conn->pool, 0));
                return;
            }
            sff_pg_req_t *req = e->req;
            ring_pop(conn);
            conn->depth--;
            conn->alive_seq = ++conn->pool->seq;
            segment_done(req);
            continue;
        }
        conn->after_result = 1;
        if (e->kind == EXP_SYNC) /* an error of the implicit commit, e.g. a deferred constraint */
            set_error(e->req, sff_pg_error_code(PQresultErrorField(res, PG_DIAG_SQLSTATE)), PQresultErrorMessage(res));
        else
            handle_result(conn, e, res);
        PQclear(res);
    }
}

/* ---- connections ------------------------------------------------------------------------------ */

/* Watches PQsocket() for reading and/or writing, re-registering when libpq's socket changed
 * (another host or address of the conninfo, a retry without SSL...). Returns 0 or -1. */
static int conn_watch(conn_t *conn, int rd, int wr)
{
    int fd = PQsocket(conn->pg);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return -1;
    if (conn->sock != NULL && (conn->sock_dev != st.st_dev || conn->sock_ino != st.st_ino)) {
        sff_log_debug("postgres connection %u: libpq changed its socket; watching the new one", conn->id);
        h2o_socket_close(conn->sock);
        conn->sock = NULL;
    }
    if (conn->sock == NULL) {
        int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* plain dup() would drop close-on-exec */
        if (dupfd < 0)
            return -1;
        conn->sock = h2o_evloop_socket_create(conn->pool->loop, dupfd, H2O_SOCKET_FLAG_DONT_READ);
        conn->sock->data = conn;
        conn->sock_dev = st.st_dev;
        conn->sock_ino = st.st_ino;
    }
    if (rd && !h2o_socket_is_reading(conn->sock))
        h2o_socket_read_start(conn->sock, on_readable);
    else if (!rd && h2o_socket_is_reading(conn->sock))
        h2o_socket_read_stop(conn->sock);
    if (wr && !h2o_socket_is_writing(conn->sock))
        h2o_socket_notify_write(conn->sock, on_writable);
    return 0;
}

static void conn_teardown(conn_t *conn)
{
    conn->epoch++;
    if (conn->lookup != NULL) {
        sff_pg_lookup_cancel(conn->lookup);
        conn->lookup = NULL;
    }
    if (conn->sock != NULL) {
        h2o_socket_close(conn->sock);
        conn->sock = NULL;
    }
    if (conn->pg != NULL) {
        PQfinish(conn->pg);
        conn->pg = NULL;
    }
    sff_timer_stop(&conn->timer);
    conn->want_flush = 0;
    conn->after_result = 0;
    conn->close_pending = 0;
    conn->setup_error[0] = '\0';
    stmt_clear(conn);
}

static void schedule_connect(conn_t *conn, uint64_t ms)
{
    conn->state = CONN_DOWN;
    if (!conn->pool->destroyed)
        sff_timer_start(&conn->timer, ms);
}

static void attempt_failed(conn_t *conn, const char *why)
{
    sff_pg_pool_t *pool = conn->pool;
    char buf[512];
    oneline(why, buf, sizeof(buf)); /* why may be libpq's, freed with the connection */
    conn_teardown(conn);
    conn->failures++;
    pool->stats.connect_failures++;
    pool->failing = 1;
    if (conn->failures == 1)
        sff_log_warn("postgres connection %u: cannot connect: %s (retrying with backoff)", conn->id, buf);
    schedule_connect(conn, backoff_ms(pool, conn->failures));
    if (!any_up(pool))
        fail_queue(pool, SFF_EUNAVAILABLE, "no database connection is up");
}

static void conn_ready(conn_t *conn)
{
    sff_pg_pool_t *pool = conn->pool;
    sff_timer_stop(&conn->timer);
    conn->state = CONN_UP;
    struct sockaddr_storage addr;
    socklen_t alen = sizeof(addr);
    conn->tcp = getsockname(PQsocket(conn->pg), (struct sockaddr *)&addr, &alen) == 0 &&
                (addr.ss_family == AF_INET || addr.ss_family == AF_INET6);
    conn->corked = conn->sent_now = 0;
    if (conn->ever_up || conn->failures != 0) {
        pool->stats.reconnects++;
        if (conn->failures != 0)
            sff_log_info("postgres connection %u: up again after %u failed attempts", conn->id, conn->failures);
    }
    conn->ever_up = 1;
    conn->failures = 0;
    conn->alive_seq = ++pool->seq;
    pool->failing = 0;
    pump(pool);
}

static void setup_step(conn_t *conn)
{
    if (!PQconsumeInput(conn->pg)) {
        attempt_failed(conn, PQerrorMessage(conn->pg));
        return;
    }
    while (!PQisBusy(conn->pg)) {
        PGresult *res = PQgetResult(conn->pg);
        if (res == NULL) {
            if (conn->setup_error[0] != '\0') {
                attempt_failed(conn, conn->setup_error);
            } else if (!PQenterPipelineMode(conn->pg)) {
                attempt_failed(conn, PQerrorMessage(conn->pg));
            } else {
                conn_ready(conn);
            }
            return;
        }
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK && conn->setup_error[0] == '\0')
            oneline(PQresultErrorMessage(res), conn->setup_error, sizeof(conn->setup_error));
        PQclear(res);
    }
}

static void setup_start(conn_t *conn)
{
    conn->state = CONN_SETUP;
    if (!PQsendQuery(conn->pg, conn->pool->setup_sql) || conn_watch(conn, 1, 0) != 0) {
        attempt_failed(conn, PQerrorMessage(conn->pg));
        return;
    }
    int r = PQflush(conn->pg);
    if (r < 0) {
        attempt_failed(conn, PQerrorMessage(conn->pg));
        return;
    }
    conn->want_flush = r == 1;
    if (r == 1)
        conn_watch(conn, 1, 1);
}

static void connect_step(conn_t *conn)
{
    PostgresPollingStatusType r = PQconnectPoll(conn->pg);
    conn->connect_want = r;
    switch (r) {
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING:
        if (conn_watch(conn, r == PGRES_POLLING_READING, r == PGRES_POLLING_WRITING) != 0)
            attempt_failed(conn, "libpq has no socket");
        break;
    case PGRES_POLLING_OK:
        setup_start(conn);
        break;
    default:
        attempt_failed(conn, PQerrorMessage(conn->pg));
        break;
    }
}

/* Starts libpq's connect with the conninfo and the keywords keys/vals (NULL or NULL-terminated) added. */
static void conn_start(conn_t *conn, const char *const *keys, const char *const *vals)
{
    sff_pg_pool_t *pool = conn->pool;
    const char *k[8] = {"dbname", "client_encoding", "fallback_application_name"};
    const char *v[8] = {pool->conninfo, "UTF8", "sff"};
    size_t n = 3;
    for (size_t i = 0; keys != NULL && keys[i] != NULL && n < 7; i++, n++) {
        k[n] = keys[i];
        v[n] = vals[i];
    }
    k[n] = v[n] = NULL;
    if ((conn->pg = PQconnectStartParams(k, v, 1)) == NULL) {
        attempt_failed(conn, "out of memory");
        return;
    }
    PQsetNoticeReceiver(conn->pg, on_notice, NULL);
    if (PQstatus(conn->pg) == CONNECTION_BAD) {
        attempt_failed(conn, PQerrorMessage(conn->pg));
        return;
    }
    PQsetnonblocking(conn->pg, 1);
    conn->connect_want = PGRES_POLLING_WRITING;
    if (conn_watch(conn, 0, 1) != 0)
        attempt_failed(conn, "libpq has no socket");
}

static void on_lookup(void *data, const char *const *keys, const char *const *vals, const char *err)
{
    conn_t *conn = data;
    conn->lookup = NULL;
    if (keys == NULL)
        attempt_failed(conn, err);
    else
        conn_start(conn, keys, vals);
}

static void conn_connect(conn_t *conn)
{
    sff_pg_pool_t *pool = conn->pool;
    conn->state = CONN_CONNECTING;
    sff_timer_start(&conn->timer, pool->config.connect_timeout_ms); /* libpq ignores connect_timeout here */
    if (!pool->lookup) {
        conn_start(conn, NULL, NULL);
    } else if ((conn->lookup = sff_pg_lookup_start(pool->loop, pool->conninfo, on_lookup, conn)) == NULL) {
        attempt_failed(conn, "cannot start a host name lookup");
    }
}

/*
 * Closes an up connection and fails what was in flight on it: victim (the call whose deadline
 * passed) with SFF_ETIMEDOUT first, idempotent calls go back to the front of the queue (once), the
 * others fail with SFF_EUNAVAILABLE (SFF_ECANCELED when the pool is destroyed). A transaction pinning
 * it is broken. The connection is attempted again after reconnect_ms.
 */
static void conn_close(conn_t *conn, sff_pg_req_t *victim, const char *why, uint64_t reconnect_ms)
{
    sff_pg_pool_t *pool = conn->pool;
    char msg[512];
    int code = pool->destroyed ? SFF_ECANCELED : SFF_EUNAVAILABLE;
    oneline(why, msg, sizeof(msg)); /* why may be libpq's, freed with the connection */
    if (!pool->destroyed)
        sff_log_warn("postgres connection %u closed: %s (%zu calls in flight)", conn->id, msg, conn->depth);
    /* Take the calls in flight, in order, and put the connection in its new state before any
     * callback runs, so that a callback sees a consistent pool. */
    sff_pg_req_t *failed = NULL, **tail = &failed;
    while (conn->ring_len != 0) {
        exp_t *e = ring_front(conn);
        if (e->kind == EXP_SYNC) {
            e->req->conn = NULL;
            e->req->next_failed = NULL;
            *tail = e->req;
            tail = &e->req->next_failed;
        }
        ring_pop(conn);
    }
    conn->depth = 0;
    conn_teardown(conn);
    if (conn->tx != NULL) {
        conn->tx->conn = NULL;
        if (conn->tx->state == TX_OPEN)
            conn->tx->state = TX_BROKEN;
        conn->tx = NULL;
    }
    schedule_connect(conn, reconnect_ms);
    /* The call past its deadline is answered first; idempotent calls go back to the front of the
     * queue, in their order; the others fail. */
    sff_pg_req_t *retry = NULL, **retry_tail = &retry;
    for (sff_pg_req_t **p = &failed; *p != NULL;) {
        sff_pg_req_t *req = *p;
        if (req == victim ||
            (!pool->destroyed && req->kind == REQ_QUERY && req->tx == NULL && req->idempotent && !req->retried && !req->canceled)) {
            *p = req->next_failed;
            if (req != victim) {
                req->next_failed = NULL;
                *retry_tail = req;
                retry_tail = &req->next_failed;
            }
        } else {
            p = &req->next_failed;
        }
    }
    if (victim != NULL)
        req_complete(victim, SFF_ETIMEDOUT, NULL, "the query passed its deadline; its connection was closed");
    /* requeue before any other callback runs: a callback's own calls queue behind them */
    sff_pg_req_t *last_front = NULL;
    uint64_t lost_seq = ++pool->seq;
    for (sff_pg_req_t *req = retry, *next; req != NULL; req = next) {
        next = req->next_failed;
        if (req->canceled) { /* by the victim's callback */
            req_complete(req, code, NULL, msg);
            continue;
        }
        req->retried = 1;
        req->lost_seq = lost_seq;
        req->err = 0;
        free(req->errmsg);
        req->errmsg = NULL;
        json_decref(req->result);
        req->result = NULL;
        pool->stats.retries++;
        if (last_front == NULL)
            enqueue(pool, req, 1);
        else
            enqueue_after(pool, req, last_front);
        last_front = req;
    }
    for (sff_pg_req_t *req = failed, *next; req != NULL; req = next) {
        next = req->next_failed;
        req_complete(req, code, NULL, msg);
    }
    if (pool->destroyed)
        return;
    if (!any_up(pool) && pool->failing)
        fail_queue(pool, SFF_EUNAVAILABLE, "no database connection is up");
    pump(pool);
}

static void conn_lost(conn_t *conn, const char *why)
{
    conn_close(conn, NULL, why, backoff_ms(conn->pool, 0));
}

static void on_conn_timer(sff_timer_t *t)
{
    conn_t *conn = t->data;
    switch (conn->state) {
    case CONN_DOWN:
        conn_connect(conn);
        break;
    case CONN_CONNECTING:
    case CONN_SETUP:
        attempt_failed(conn, "connect timed out");
        break;
    case CONN_UP:
        if (conn->close_pending)
            conn_lost(conn, conn->pg != NULL ? PQerrorMessage(conn->pg) : "lost");
        break;
    }
}

static void conn_input(conn_t *conn)
{
    uint64_t epoch = conn->epoch;
    int ok = PQconsumeInput(conn->pg);
    conn_process(conn); /* what arrived before a loss is still delivered */
    if (conn->epoch != epoch)
        return;
    if (!ok || PQstatus(conn->pg) == CONNECTION_BAD) {
        conn_lost(conn, PQerrorMessage(conn->pg));
        return;
    }
    if (conn->want_flush)
        conn_flush(conn);
    pump(conn->pool);
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    conn_t *conn = sock->data;
    (void)err; /* with H2O_SOCKET_FLAG_DONT_READ, h2o reports readiness only */
    switch (conn->state) {
    case CONN_CONNECTING:
        if (conn->connect_want == PGRES_POLLING_READING)
            connect_step(conn);
        break;
    case CONN_SETUP:
        setup_step(conn);
        break;
    case CONN_UP:
        conn_input(conn);
        break;
    }
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    conn_t *conn = sock->data;
    (void)err;
    switch (conn->state) {
    case CONN_CONNECTING:
        if (conn->connect_want == PGRES_POLLING_WRITING)
            connect_step(conn);
        break;
    case CONN_SETUP:
        if (conn->want_flush) {
            int r = PQflush(conn->pg);
            conn->want_flush = r == 1;
            if (r < 0)
                attempt_failed(conn, PQerrorMessage(conn->pg));
            else if (r == 1)
                conn_watch(conn, 1, 1);
        }
        break;
    case CONN_UP:
        if (conn->want_flush)
            conn_flush(conn);
        break;
    }
}

/* ---- deadlines -------------------------------------------------------------------------------- */

static void on_req_timer(sff_timer_t *t)
{
    sff_pg_req_t *req = t->data;
    if (req->fail_soon) {
        req_complete(req, SFF_ENOMEM, NULL, "out of memory");
        return;
    }
    if (req->conn == NULL) {
        int late = sff_now_ms() >= req->deadline_ms;
        req_complete(req, late ? SFF_ETIMEDOUT : SFF_EUNAVAILABLE, NULL,
                     late ? "the query passed its deadline waiting for a connection"
                          : "no database connection was free within the queue timeout");
        return;
    }
    /* In flight: the server may be stuck, or just slow; the connection's state is unknown either way.
     * Closing it is the one thing that never blocks (PQcancel() does). */
    conn_close(req->conn, req, "a query passed its deadline", 0);
}

/* ---- the API ---------------------------------------------------------------------------------- */

sff_pg_pool_t *sff_pg_pool_create(h2o_evloop_t *loop, const sff_pg_config_t *config, char *err, size_t errsize)
{
    char *perr = NULL;
    if (config->conninfo == NULL || config->conninfo[0] == '\0') {
        snprintf(err, errsize, "no Postgres conninfo or URL");
        return NULL;
    }
    PQconninfoOption *opts = PQconninfoParse(config->conninfo, &perr);
    if (opts == NULL) {
        /* libpq's message may quote part of the string, which may hold a password */
        snprintf(err, errsize, "the Postgres conninfo or URL is malformed");
        PQfreemem(perr);
        return NULL;
    }
    PQconninfoFree(opts);

    sff_pg_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        goto NoMem;
    pool->loop = loop;
    pool->config = *config;
    sff_pg_config_t *c = &pool->config;
    if (c->size == 0)
        c->size = 4;
    if (c->query_timeout_ms == 0)
        c->query_timeout_ms = 30000;
    if (c->connect_timeout_ms == 0)
        c->connect_timeout_ms = 5000;
    if (c->queue_timeout_ms == 0)
        c->queue_timeout_ms = 2000;
    if (c->max_pipeline == 0)
        c->max_pipeline = 64;
    if (c->backoff_min_ms == 0)
        c->backoff_min_ms = 50;
    if (c->backoff_max_ms < c->backoff_min_ms)
        c->backoff_max_ms = c->backoff_min_ms > 5000 ? c->backoff_min_ms : 5000;
    pool->rng = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ sff_now_us();
    if (pool->rng == 0)
        pool->rng = 1;
    h2o_linklist_init_anchor(&pool->queue);
    sff_timer_init(&pool->batch_timer, on_batch_end, pool);
    if ((pool->conninfo = strdup(config->conninfo)) == NULL)
        goto NoMem;
    pool->lookup = sff_pg_lookup_needed(pool->conninfo);
    c->conninfo = NULL; /* only pool->conninfo holds it */
    char setup[512];
    /* client_connection_check_interval (Postgres 14+) ends a query whose client went away, such as
     * one we stopped waiting for. */
    snprintf(setup, sizeof(setup),
             "set statement_timeout = %u; set TimeZone = 'UTC'; set DateStyle = 'ISO, MDY'; set bytea_output = 'hex'; "
             "set extra_float_digits = 1; select set_config('client_connection_check_interval', '1000', false) "
             "where current_setting('server_version_num')::int >= 140000",
             c->statement_timeout_ms);
    if ((pool->setup_sql = strdup(setup)) == NULL)
        goto NoMem;
    pool->nconns = c->size;
    if ((pool->conns = calloc(pool->nconns, sizeof(*pool->conns))) == NULL)
        goto NoMem;
    for (size_t i = 0; i < pool->nconns; i++) {
        conn_t *conn = &pool->conns[i];
        conn->pool = pool;
        conn->id = (unsigned)i;
        sff_timer_init(&conn->timer, on_conn_timer, conn);
    }
    for (size_t i = 0; i < pool->nconns; i++)
        conn_connect(&pool->conns[i]);
    return pool;
NoMem:
    if (pool != NULL) {
        free(pool->conninfo);
        free(pool->setup_sql);
        free(pool->conns);
        free(pool);
    }
    snprintf(err, errsize, "out of memory");
    return NULL;
}

static void pool_free(sff_pg_pool_t *pool)
{
    sff_timer_stop(&pool->batch_timer);
    for (size_t i = 0; i < pool->nconns; i++)
        free(pool->conns[i].ring);
    free(pool->conns);
    free(pool->conninfo);
    free(pool->setup_sql);
    free(pool);
}

void sff_pg_pool_destroy(sff_pg_pool_t *pool)
{
    if (pool == NULL || pool->destroyed)
        return;
    pool->destroyed = 1;
    pool->in_destroy = 1;
    fail_queue(pool, SFF_ECANCELED, "the pool was destroyed");
    for (size_t i = 0; i < pool->nconns; i++) {
        conn_t *conn = &pool->conns[i];
        if (conn->state == CONN_UP)
            conn_close(conn, NULL, "the pool was destroyed", 0);
        conn_teardown(conn);
        conn->state = CONN_DOWN;
    }
    pool->in_destroy = 0;
    if (pool->ntx == 0)
        pool_free(pool);
}

int sff_pg_query(sff_pg_pool_t *pool, const sff_pg_query_t *q, sff_pg_cb cb, void *data, sff_pg_req_t **reqp)
{
    int err;
    if (pool->destroyed)
        return SFF_ECANCELED;
    if (q == NULL || q->sql == NULL || q->sql[0] == '\0' || cb == NULL || (q->nparams != 0 && q->params == NULL))
        return SFF_EINVALID;
    if (!any_up(pool) && pool->failing)
        return SFF_EUNAVAILABLE; /* fail fast: do not queue behind a database that is down */
    sff_pg_req_t *req = req_create(pool, REQ_QUERY, q, q->claims, q->sub, q->timeout_ms, &err);
    if (req == NULL)
        return err;
    req->cb = cb;
    req->data = data;
    enqueue(pool, req, 0);
    if (reqp != NULL)
        *reqp = req;
    pump(pool);
    return 0;
}

int sff_pg_begin(sff_pg_pool_t *pool, const char *claims, const char *sub, uint32_t timeout_ms, sff_pg_begin_cb cb, void *data,
                 sff_pg_req_t **reqp)
{
    int err;
    if (pool->destroyed)
        return SFF_ECANCELED;
    if (cb == NULL)
        return SFF_EINVALID;
    if (!any_up(pool) && pool->failing)
        return SFF_EUNAVAILABLE;
    sff_pg_tx_t *tx = calloc(1, sizeof(*tx));
    if (tx == NULL)
        return SFF_ENOMEM;
    sff_pg_req_t *req = req_create(pool, REQ_BEGIN, NULL, claims, sub, timeout_ms, &err);
    if (req == NULL) {
        free(tx);
        return err;
    }
    tx->pool = pool;
    tx->state = TX_BEGINNING;
    h2o_linklist_init_anchor(&tx->reqs);
    pool->ntx++;
    req->tx = tx;
    req->begin_cb = cb;
    req->data = data;
    enqueue(pool, req, 0);
    if (reqp != NULL)
        *reqp = req;
    pump(pool);
    return 0;
}

static int tx_check(sff_pg_tx_t *tx)
{
    if (tx->state == TX_ENDED)
        return SFF_EINVALID;
    if (tx->state != TX_OPEN || tx->conn == NULL || tx->pool->destroyed)
        return SFF_EUNAVAILABLE;
    return 0;
}

static int tx_call(sff_pg_tx_t *tx, int kind, const sff_pg_query_t *q, sff_pg_cb cb, void *data, sff_pg_req_t **reqp)
{
    int err = tx_check(tx);
    if (err != 0)
        return err;
    if (cb == NULL ||
        (kind == REQ_QUERY && (q == NULL || q->sql == NULL || q->sql[0] == '\0' || (q->nparams != 0 && q->params == NULL))))
        return SFF_EINVALID;
    sff_pg_req_t *req =
        req_create(tx->pool, kind, q, q != NULL ? q->claims : NULL, q != NULL ? q->sub : NULL, q != NULL ? q->timeout_ms : 0, &err);
    if (req == NULL)
        return err;
    req->idempotent = 0;
    req->tx = tx;
    req->cb = cb;
    req->data = data;
    h2o_linklist_insert(&tx->reqs, &req->in_tx);
    conn_t *conn = tx->conn;
    if (kind != REQ_QUERY) {
        /* the connection goes back to the pool now: what follows in its pipeline runs after the end */
        tx->state = TX_ENDED;
        tx->conn = NULL;
        conn->tx = NULL;
    }
    conn_send(conn, req);
    if (reqp != NULL)
        *reqp = req;
    if (kind != REQ_QUERY)
        pump(tx->pool);
    return 0;
}

int sff_pg_tx_query(sff_pg_tx_t *tx, const sff_pg_query_t *q, sff_pg_cb cb, void *data, sff_pg_req_t **reqp)
{
    return tx_call(tx, REQ_QUERY, q, cb, data, reqp);
}

int sff_pg_commit(sff_pg_tx_t *tx, sff_pg_cb cb, void *data, sff_pg_req_t **reqp)
{
    return tx_call(tx, REQ_COMMIT, NULL, cb, data, reqp);
}

int sff_pg_rollback(sff_pg_tx_t *tx, sff_pg_cb cb, void *data, sff_pg_req_t **reqp)
{
    return tx_call(tx, REQ_ROLLBACK, NULL, cb, data, reqp);
}

static void tx_free(sff_pg_tx_t *tx)
{
    sff_pg_pool_t *pool = tx->pool;
    free(tx);
    if (--pool->ntx == 0 && pool->destroyed && !pool->in_destroy)
        pool_free(pool);
}

void sff_pg_tx_release(sff_pg_tx_t *tx)
{
    if (tx == NULL)
        return;
    while (!h2o_linklist_is_empty(&tx->reqs)) {
        sff_pg_req_t *req = H2O_STRUCT_FROM_MEMBER(sff_pg_req_t, in_tx, tx->reqs.next);
        h2o_linklist_unlink(&req->in_tx);
        req->canceled = 1; /* still in flight: its result is dropped when it arrives */
        req->tx = NULL;
    }
    sff_pg_pool_t *pool = tx->pool;
    conn_t *conn = tx->conn;
    if (tx->state == TX_OPEN && conn != NULL && !pool->destroyed) {
        silent_rollback(conn);
        conn->tx = NULL;
        tx->conn = NULL;
        tx_free(tx);
        pump(pool);
        return;
    }
    tx_free(tx);
}

void sff_pg_cancel(sff_pg_req_t *req)
{
    if (req->conn == NULL && h2o_linklist_is_linked(&req->queued)) {
        if (req->kind == REQ_BEGIN)
            tx_free(req->tx);
        req_free(req);
        return;
    }
    /* In flight: the server runs it anyway. Its deadline timer stays armed, so that a connection
     * stuck on it is still closed in time. */
    req->canceled = 1;
    if (h2o_linklist_is_linked(&req->in_tx))
        h2o_linklist_unlink(&req->in_tx);
    if (req->kind != REQ_BEGIN)
        req->tx = NULL;
}

void sff_pg_stats(const sff_pg_pool_t *pool, sff_pg_stats_t *out)
{
    *out = pool->stats;
    out->size = pool->nconns;
    out->up = out->in_use = out->transactions = out->pipeline_depth = 0;
    for (size_t i = 0; i < pool->nconns; i++) {
        const conn_t *c = &pool->conns[i];
        if (c->state == CONN_UP)
            out->up++;
        if (c->depth != 0 || c->tx != NULL)
            out->in_use++;
        if (c->tx != NULL)
            out->transactions++;
        out->pipeline_depth += c->depth;
    }
    out->waiting = pool->nqueued;
}
