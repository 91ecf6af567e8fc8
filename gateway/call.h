/*
 * call.h - one call of a function: its coroutine, its input and claims, the response it builds,
 * and the SDK (the API table of functions/sff.h) that handlers use.
 *
 * A call outlives its h2o request when the client goes away: h2o frees the request (and its pool)
 * at once, so everything a handler can reach lives in the call, which h2o never frees. The
 * request's pool holds a disposer that detaches the call; the call is cancelled at its next
 * suspension (the waiting SDK call returns SFF_ECANCELED) and freed when its handler returns.
 */
#ifndef SFF_CALL_H
#define SFF_CALL_H

#include <h2o.h>
#include <jansson.h>
#include "coro.h"
#include "module.h"
#include "sff.h"
#include "timer.h"

struct st_sff_req_t {
    h2o_req_t *req;              /* NULL once h2o has freed the request, and for in-process calls */
    struct st_sff_req_t *parent; /* the caller of an in-process call, else NULL */
    struct st_sff_req_t *root;   /* the outermost call (itself for a request) */
    sff_generation_t *gen;       /* held (one reference) by the root call */
    const sff_route_entry_t *route;
    sff_coro_t *co; /* root only */
    json_t *input;  /* merged input */
    json_t *params; /* path parameters, decoded */
    json_t *claims; /* verified claims or NULL */
    const char *sub;
    char request_id[64];
    const char *method; /* NUL-terminated copies in pool */
    const char *path;

    /* the response */
    int status;
    int responded; /* a handler set a response */
    json_t *body;
    char *raw_body;
    size_t raw_len;
    const char *raw_type;
    H2O_VECTOR(h2o_iovec_t) res_headers; /* name, value pairs, in pool */
    int err_code;
    char *err_msg;
    json_t *details;

    /* what the request owns: JSON values and memory freed when it ends (root only) */
    H2O_VECTOR(json_t *) owned;
    h2o_mem_pool_t pool;

    /* backend calls in flight (sff_future_t.link) and how many the handler waits for */
    h2o_linklist_t futures;
    size_t awaiting;
    struct st_sff_cache_stamp_t *stamps; /* cache stamps handed out by misses (sdk_redis.c) */
    struct st_sff_pg_tx_t *tx;           /* the request's open transaction (sdk_db.c), or NULL */
    const char *claims_text;             /* the claims as JSON, made once for SQL (sdk_db.c) */
    const char *raw_in;                  /* the body of a raw_body route (copied into pool) */
    size_t raw_in_len;
    const char *raw_in_type;
    char client_ip[48]; /* the peer's address, for rate limits of anonymous calls */

    /* waiting */
    int waiting;
    int wake_result;
    void (*cancel_wait)(struct st_sff_req_t *r); /* detaches the pending wait, set by the waiter */
    sff_timer_t wait_timer;
    sff_timer_t deadline;
    sff_timer_t resume_soon;
    int canceled; /* 0, SFF_ECANCELED or SFF_ETIMEDOUT */
    int started;  /* the handler has begun */
    int finished; /* the handler returned */
    int sent;     /* a response went to the client */
    int detached; /* h2o freed the request */
    uint64_t start_us;
    h2o_req_t **disposer_slot;
};

/* The SDK table handed to modules. */
extern const sff_api_t sff_call_api;

/* Calls of this worker alive now (including detached ones finishing), for drain and metrics. */
extern size_t sff_call_alive;

/*
 * Starts a function call for req: takes ownership of input, params and claims (new references,
 * whatever the outcome) and runs the route's handler in a new coroutine until it finishes or first
 * waits; with defer, one loop iteration later, and not at all if the request is gone by then. The
 * response is sent when the handler returns (or a 504 at the route's deadline). Returns 0, or a
 * negative code when the call could not start (the caller then answers with an error).
 */
int sff_call_start(h2o_req_t *req, sff_generation_t *gen, const sff_route_entry_t *route, json_t *input, json_t *params,
                   json_t *claims, const char *request_id, int defer);

/* Records the error the envelope will carry (as sff_error()) and returns code. */
int sff_call_set_error(sff_req_t *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Suspends the current call until sff_call_wake(); returns its result, or SFF_ECANCELED /
 * SFF_ETIMEDOUT when the call was cancelled. Must run inside the call's coroutine. */
int sff_call_wait(sff_req_t *r);
/* Resumes a waiting call with result (from the loop's stack, never from inside a coroutine). */
void sff_call_wake(sff_req_t *r, int result);

#endif
