/*
 * future.h - backend calls in flight for a function call, and waiting for one or several of them.
 *
 * A backend driver (Redis, Postgres, storage) starts its operation with a callback; the SDK wraps
 * it in a future owned by the request. sff_future_complete() is what the callback calls. A handler
 * suspends in sff_future_await_all() until every future it names is done, one fails, the timeout
 * passes or the call is cancelled; the futures still pending then are cancelled (their drivers
 * guarantee that a cancelled callback never fires). A call that ends cancels whatever it left
 * pending.
 */
#ifndef SFF_FUTURE_H
#define SFF_FUTURE_H

#include <h2o.h>
#include <jansson.h>
#include "sff.h"

struct st_sff_future_t {
    sff_req_t *root;     /* the call that owns it */
    h2o_linklist_t link; /* in the call's pending list while pending */
    int pending;
    int awaited;
    int result;    /* 0 or SFF_E*, once done */
    json_t *value; /* owned by the request once done */
    char *error;   /* the backend's message (for logs, never for clients), or NULL */
    void *handle;  /* the driver's request, to cancel */
    void (*cancel)(void *handle);
    void *extra;       /* driver-specific data living in the request's pool */
    const char *bytes; /* the bytes a storage GET brought, freed with the request */
    size_t nbytes;
};

/* A new pending future of the call r belongs to (allocated in the request's pool), or NULL when
 * memory runs out. */
sff_future_t *sff_future_new(sff_req_t *r);
/* Records what the driver needs to cancel the operation. */
void sff_future_set_cancel(sff_future_t *f, void *handle, void (*cancel)(void *handle));
/* Completes f: result 0 or SFF_E*, value a new reference (stolen; may be NULL), msg copied (may be
 * NULL). Wakes the handler when it waits for f. Call from the loop, never from the handler. */
void sff_future_complete(sff_future_t *f, int result, json_t *value, const char *msg);
/* Waits for the futures (NULL entries count as SFF_ENOMEM); timeout_ms 0 means the route's
 * deadline only. Returns 0 when all succeeded, else the first failure's code; pending ones are then
 * cancelled. */
int sff_future_await_all(sff_req_t *r, sff_future_t *const *fs, size_t n, uint32_t timeout_ms);
/* Cancels every pending future of the call (when it ends). */
void sff_future_cancel_all(sff_req_t *r);

#endif
