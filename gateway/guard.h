/*
 * guard.h - per-connection budgets against abusive clients, for what Debian's h2o 2.2.5 does not
 * stop by itself:
 *  - rapid reset: h2o runs the handler for every HEADERS frame even when the stream is reset at
 *    once. HTTP/2 requests start their function one loop iteration later (after the rest of the
 *    read is parsed), so a stream reset in the same read never runs a handler; a connection whose
 *    streams are reset before their response more than SFF_H2_MAX_RESETS times in 10 s is closed.
 *  - header bombs: h2o's HPACK decoder has no cap on decoded header size. A request over
 *    SFF_MAX_HEADER_BYTES gets 431 and, on HTTP/2, its connection is closed (with the memory of its
 *    streams); so does a connection whose unfinished requests hold 8 times that.
 *  - slow bodies: h2o's idle timeout restarts on every byte. A connection that has sent part of a
 *    request but completed none for SFF_BODY_TIMEOUT_MS, at under 1 KiB/s, is closed.
 * Legitimate clients stay far below every budget.
 */
#ifndef SFF_GUARD_H
#define SFF_GUARD_H

#include <h2o.h>
#include "worker.h"

/* Starts tracking an accepted connection's socket. */
void sff_guard_on_accept(sff_worker_t *w, h2o_socket_t *sock);
/* Checks a request against its connection's budgets. Returns 0 to go on, or nonzero when it has
 * answered the request itself (431, or 503 on a connection being closed). */
int sff_guard_on_request(sff_worker_t *w, h2o_req_t *req);
/* Accounts for a finished request (from the access logger): releases its header bytes, counts an
 * early reset when no response was started. */
void sff_guard_on_complete(sff_worker_t *w, h2o_req_t *req);
/* Starts the once-a-second sweep for slow requests. */
void sff_guard_start(sff_worker_t *w);
/* Connections tracked now. */
size_t sff_guard_connections(void);

#endif
