/*
 * pg.h - the Postgres client of a worker: a pool of non-blocking libpq connections on the worker's
 * h2o event loop, with pipelining, prepared statements, rows as JSON, transactions and the caller's
 * JWT claims visible to SQL.
 *
 *     sff_pg_config_t cfg = {.conninfo = getenv("SFF_PG_URL"), .size = 4};
 *     sff_pg_pool_t *pool = sff_pg_pool_create(loop, &cfg, err, sizeof(err));
 *
 *     static void on_todos(void *data, int err, json_t *rows, const char *message) { ... json_decref(rows); }
 *
 *     const char *params[] = {"42"};
 *     sff_pg_query_t q = {.sql = "select id, title from todos where id = $1", .params = params, .nparams = 1,
 *                         .shape = SFF_PG_ROWS, .claims = claims_json, .idempotent = 1};
 *     int ret = sff_pg_query(pool, &q, on_todos, data, &req);
 *
 * Conventions (libuv's):
 *  - A call that takes a callback returns 0 and later calls the callback exactly once, or returns a
 *    negative SFF_E* code and never calls it. A callback never runs inside the call that was given
 *    it: it runs from the event loop (a socket event or a timer).
 *  - sff_pg_cancel() withdraws a pending call: its callback never fires, and every pointer it was
 *    given may go away at once. A call already sent to the server still runs there.
 *  - The callback gets err 0 and a result, or a negative SFF_E* code, a NULL result and a message.
 *    The message comes from Postgres or libpq: log it, but never send it to a client verbatim (it
 *    can name tables, columns, constraint names and values); send the code's own envelope instead.
 *  - Postgres errors map to codes: unique, foreign key and exclusion violations -> SFF_ECONFLICT;
 *    data exceptions (22xxx), not-null (23502) and check (23514) violations -> SFF_EINVALID;
 *    statement timeout (57014) -> SFF_ETIMEDOUT; insufficient privilege, including row-level
 *    security refusals (42501) -> SFF_EFORBIDDEN; connection failures (08xxx), a lost connection,
 *    server shutdown (57P01-57P03) -> SFF_EUNAVAILABLE; anything else -> SFF_EINTERNAL.
 *  - Calls and callbacks belong to the loop's thread. Nothing is logged that could hold a secret: the
 *    conninfo (which may carry a password) never is.
 *
 * Design notes: docs/decisions/0020-0026.
 */
#ifndef SFF_PG_H
#define SFF_PG_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct st_h2o_evloop_t;
struct pg_result;

typedef struct st_sff_pg_pool_t sff_pg_pool_t; /* the connections of one worker */
typedef struct st_sff_pg_tx_t sff_pg_tx_t;     /* a transaction: one pinned connection */
typedef struct st_sff_pg_req_t sff_pg_req_t;   /* a pending call, for sff_pg_cancel() */

/* The pool's settings. Zero fields take the defaults given. */
typedef struct st_sff_pg_config_t {
    const char *conninfo;          /* SFF_PG_URL: "host=... dbname=..." or "postgresql://..."; copied */
    size_t size;                   /* SFF_PG_POOL: connections (default 4) */
    uint32_t statement_timeout_ms; /* SFF_PG_STATEMENT_TIMEOUT_MS: the server's statement_timeout, set at
                                      connect (0: the server's own setting) */
    uint32_t query_timeout_ms;     /* our deadline of a call that gives none (30000) */
    uint32_t connect_timeout_ms;   /* connect and session setup (5000) */
    uint32_t queue_timeout_ms;     /* how long a call waits for a free connection (2000) */
    uint32_t max_pipeline;         /* calls in flight per connection (64); 1: one query per connection */
    uint32_t backoff_min_ms;       /* reconnect backoff: first delay (50), doubling to... */
    uint32_t backoff_max_ms;       /* ...at most this (5000), each jittered down to half */
} sff_pg_config_t;

/* What the callback of a query gets. */
typedef enum {
    SFF_PG_ROWS, /* an array of objects keyed by column name (later duplicates of a name win) */
    SFF_PG_ROW,  /* the first row as an object, or JSON null when there is none */
    SFF_PG_EXEC, /* the number of rows affected (PQcmdTuples), as a JSON integer */
} sff_pg_shape_t;

/*
 * One statement and how to run it. Everything is copied by the call: the caller's strings may go
 * away when it returns.
 *  sql:        one statement with $1, $2... placeholders; each distinct text is prepared once per
 *              connection and then executed by name.
 *  params:     nparams values in Postgres's text format, bound to $1...; a NULL entry is SQL NULL.
 *              Values are never interpolated into the SQL.
 *  claims:     the caller's JWT claims as JSON text, or NULL. The statement then runs in the same
 *              transaction as set_config('request.jwt.claims', claims, true) and
 *              set_config('request.jwt.claim.sub', sub, true), so that row-level security policies can
 *              use current_setting('request.jwt.claim.sub', true).
 *  sub:        the claims' "sub"; NULL takes it from claims ("" when claims has none).
 *  timeout_ms: our deadline from the call to its callback (0: the pool's query_timeout_ms). Past it the
 *              callback gets SFF_ETIMEDOUT at once; the connection it was on is closed and replaced
 *              (the calls pipelined on it fail with SFF_EUNAVAILABLE, or are retried, see below).
 *  idempotent: nonzero when running the statement twice is harmless (a read): when its connection is
 *              lost it is retried once, on another connection. Other statements are never retried.
 */
typedef struct st_sff_pg_query_t {
    const char *sql;
    const char *const *params;
    size_t nparams;
    sff_pg_shape_t shape;
    const char *claims;
    const char *sub;
    uint32_t timeout_ms;
    int idempotent;
} sff_pg_query_t;

/*
 * The callback of a query, commit or rollback. data is the caller's pointer. On success err is 0
 * and result is a new reference the callback owns (json_decref() it): for a query its shape, for
 * commit and rollback JSON null; message is NULL. On failure err is a negative SFF_E* code, result
 * is NULL and message is never NULL (valid during the callback only; for logs only, see above).
 */
typedef void (*sff_pg_cb)(void *data, int err, json_t *result, const char *message);

/*
 * The callback of sff_pg_begin(). On success err is 0 and tx is the transaction, which the callback's
 * owner must end with sff_pg_tx_release() (after a commit, or to roll back). On failure tx is NULL
 * and message as above.
 */
typedef void (*sff_pg_begin_cb)(void *data, int err, sff_pg_tx_t *tx, const char *message);

/* ---- the pool --------------------------------------------------------------------------------- */

/*
 * Creates the pool on loop and starts connecting its connections in the background. Returns the
 * pool (caller destroys it with sff_pg_pool_destroy()), or NULL with a reason in err (which never
 * holds the conninfo). Calls made before a connection is up wait for it; while no connection is up
 * and the last attempt failed, calls fail at once with SFF_EUNAVAILABLE.
 */
sff_pg_pool_t *sff_pg_pool_create(struct st_h2o_evloop_t *loop, const sff_pg_config_t *config, char *err, size_t errsize);

/*
 * Closes every connection. The callbacks of pending calls fire with SFF_ECANCELED before it returns;
 * later calls return SFF_ECANCELED. Transactions not yet released stay valid handles (their calls
 * return SFF_EUNAVAILABLE) and the pool's memory lives until the last is released. Must not be
 * called from one of the pool's callbacks.
 */
void sff_pg_pool_destroy(sff_pg_pool_t *pool);

/* ---- calls ------------------------------------------------------------------------------------ */

/*
 * Runs q on a connection of the pool: pipelined behind other calls on the least busy connection,
 * or queued (up to queue_timeout_ms, then SFF_EUNAVAILABLE) when every connection has max_pipeline
 * calls in flight or is pinned by a transaction. When req is not NULL, *req is set to a handle for
 * sff_pg_cancel(), valid until the callback fires. Returns 0, SFF_EINVALID (no sql or callback,
 * params missing, claims not JSON), SFF_ENOMEM, SFF_EUNAVAILABLE (no connection up and the last
 * attempt failed) or SFF_ECANCELED (pool destroyed).
 */
int sff_pg_query(sff_pg_pool_t *pool, const sff_pg_query_t *q, sff_pg_cb cb, void *data, sff_pg_req_t **req);

/*
 * Starts a transaction on a connection of its own: BEGIN and, when claims is not NULL, the claims'
 * set_config() as for a query (claims and sub as in sff_pg_query_t; they hold until the end of the
 * transaction). timeout_ms bounds the BEGIN (0: the pool's). Queued like a query when no connection
 * is free. Returns as sff_pg_query().
 */
int sff_pg_begin(sff_pg_pool_t *pool, const char *claims, const char *sub, uint32_t timeout_ms, sff_pg_begin_cb cb, void *data,
                 sff_pg_req_t **req);

/*
 * Runs q in the transaction (q->claims, when given, is set for the rest of the transaction;
 * q->idempotent is ignored: nothing in a transaction is retried). Calls of one transaction run in
 * the order made and may be pipelined. After an error the server refuses everything but a rollback.
 * Returns as sff_pg_query(), plus SFF_EINVALID after commit or rollback was called and
 * SFF_EUNAVAILABLE when the transaction's connection was lost.
 */
int sff_pg_tx_query(sff_pg_tx_t *tx, const sff_pg_query_t *q, sff_pg_cb cb, void *data, sff_pg_req_t **req);

/*
 * Commits or rolls back; the callback gets JSON null on success. The connection returns to the pool
 * at once (later calls pipeline behind the COMMIT); the handle stays valid until
 * sff_pg_tx_release(). When the connection is lost before the server answers a COMMIT, the callback
 * gets SFF_EUNAVAILABLE and whether it committed is unknown. Returns as sff_pg_tx_query().
 */
int sff_pg_commit(sff_pg_tx_t *tx, sff_pg_cb cb, void *data, sff_pg_req_t **req);
int sff_pg_rollback(sff_pg_tx_t *tx, sff_pg_cb cb, void *data, sff_pg_req_t **req);

/*
 * Frees the handle. A transaction neither committed nor rolled back is rolled back (its owner went
 * away). Pending calls of the transaction are cancelled: their callbacks never fire.
 */
void sff_pg_tx_release(sff_pg_tx_t *tx);

/* Withdraws a pending call (see the conventions above). req must be a handle whose callback has not
 * fired yet. Cancelling a begin rolls the transaction back once it has started. */
void sff_pg_cancel(sff_pg_req_t *req);

/* ---- metrics ---------------------------------------------------------------------------------- */

typedef struct st_sff_pg_stats_t {
    size_t size;               /* connections configured */
    size_t up;                 /* connections ready for calls */
    size_t in_use;             /* connections with calls in flight or pinned by a transaction */
    size_t transactions;       /* connections pinned by a transaction */
    size_t waiting;            /* calls queued for a connection */
    size_t pipeline_depth;     /* calls in flight on all connections now */
    size_t pipeline_depth_max; /* the most calls seen in flight on one connection */
    uint64_t queries;          /* calls completed, whatever their outcome (cancelled ones excluded) */
    uint64_t errors;           /* of which failed */
    uint64_t timeouts;         /* of which failed with SFF_ETIMEDOUT */
    uint64_t retries;          /* idempotent calls retried after their connection was lost */
    uint64_t reconnects;       /* connections established again after a loss or a failed attempt */
    uint64_t connect_failures; /* connection attempts that failed or timed out */
    uint64_t batched;          /* calls held back (TCP_CORK) to go out with others of their loop iteration */
    uint64_t latency_us_sum;   /* call to callback, over the completed calls... */
    uint64_t latency_count;    /* ...of which there are this many */
} sff_pg_stats_t;

/* Fills *out with the pool's figures. */
void sff_pg_stats(const sff_pg_pool_t *pool, sff_pg_stats_t *out);

/* ---- building blocks (baas/pg_json.c, baas/pg_lookup.c), exposed for tests --------------------- */

/* The SFF_E* code of a SQLSTATE (five characters; NULL gives SFF_EUNAVAILABLE: libpq reports a lost
 * connection without one). */
int sff_pg_error_code(const char *sqlstate);

/*
 * The JSON of one non-NULL value in Postgres's text output (DateStyle ISO, TimeZone UTC, bytea_output
 * hex, as the pool sets them) of the type type_oid: int2, int4, oid and int8 within +-2^53 as
 * numbers (larger int8 as strings); bool; float4/float8 as numbers (NaN, Infinity, -Infinity as
 * strings); numeric as a string (exact); json/jsonb parsed inline; timestamptz as
 * "2026-11-21T06:40:00.123456Z", timestamp without the Z, date as "YYYY-MM-DD"; bytea as a base64
 * string (RFC 4648, with padding); arrays of int2, int4, int8, oid, bool, float4/8, numeric, text,
 * varchar, char, name, uuid, date, timestamp(tz), json(b) as JSON arrays (nested for several
 * dimensions, NULL elements as null); everything else (uuid, text, varchar, time, interval, other
 * arrays...) as its text. New reference; NULL only when memory runs out.
 */
json_t *sff_pg_value_json(uint32_t type_oid, const char *text, size_t len);

/* The JSON of a PGresult of status TUPLES_OK or COMMAND_OK in shape (see sff_pg_shape_t). New
 * reference; NULL only when memory runs out. */
json_t *sff_pg_result_json(const struct pg_result *res, sff_pg_shape_t shape);

/*
 * Host names looked up on a thread (baas/pg_lookup.c): libpq would call a blocking getaddrinfo() on
 * the loop. sff_pg_lookup_needed() tells whether conninfo names a host that is neither an address
 * nor a socket directory, and has no hostaddr. sff_pg_lookup_start() looks the names up on a thread
 * of its own and calls cb from the loop, either with keys/vals (NULL-terminated, valid during the
 * callback): the host, hostaddr and, when needed, port keywords that list every address found as a
 * host of its own; or with keys NULL and err (a message naming the host, never the conninfo). It
 * returns NULL when it cannot start (cb never fires). After sff_pg_lookup_cancel() cb never fires.
 */
typedef struct st_sff_pg_lookup_t sff_pg_lookup_t;
typedef void (*sff_pg_lookup_cb)(void *data, const char *const *keys, const char *const *vals, const char *err);
int sff_pg_lookup_needed(const char *conninfo);
sff_pg_lookup_t *sff_pg_lookup_start(struct st_h2o_evloop_t *loop, const char *conninfo, sff_pg_lookup_cb cb, void *data);
void sff_pg_lookup_cancel(sff_pg_lookup_t *lookup);

#endif
