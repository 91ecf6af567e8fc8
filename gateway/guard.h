/*
 * guard.h - per-connection budgets against abusive clients, for what Debian's h2o 2.2.5 does not
 * stop by itself:
 *  - rapid reset: h2o starts every request of a HEADERS frame even when the stream is reset at once.
 *    HTTP/2 requests start their function one loop iteration later (after the rest of the read is
 *    parsed), so a stream reset in the same read never runs a handler; a connection whose streams
 *    are reset before their response more than SFF_H2_MAX_RESETS times in 10 s is closed at its
 *    next request.
 *  - header bombs: h2o's HPACK decoder has no cap on decoded header size (a 400 KB header block
 *    can decode to ~45 MB). A request over SFF_MAX_HEADER_BYTES gets 431 and, on HTTP/2, its
 *    connection is closed; so is a connection whose unfinished requests hold 32 times that.
 *  - slow requests: h2o's idle timeout restarts on every byte. A connection with nothing in flight
 *    that keeps receiving bytes it does not answer in kind, at under 1 KiB/s, for
 *    SFF_BODY_TIMEOUT_MS, is closed (checked once a second).
 * Closing shuts the socket down, discards what the kernel already received and, inside h2o's HTTP/2
 * parser, what h2o read but has not parsed yet: nothing more of the connection is decoded or
 * started, and requests h2o had decoded before get a 503 without running anything. The memory is
 * handed back to the system once h2o has freed the connection. Legitimate clients stay far below
 * every budget.
 */
#ifndef SFF_GUARD_H
#define SFF_GUARD_H

#include <h2o.h>
#include "worker.h"

/* Starts tracking an accepted connection's socket, before h2o_accept(): takes sock->on_close, which
 * h2o 2.2.5 leaves to the application for accepted sockets. */
void sff_guard_on_accept(sff_worker_t *w, h2o_socket_t *sock);
/* Checks a request against its connection's budgets; the first thing done with every request.
 * Returns 0 to go on, or nonzero when it has answered the request itself (431, or 503 on a
 * connection being closed). */
int sff_guard_on_request(sff_worker_t *w, h2o_req_t *req);
/* Accounts for a finished request (from the access logger, which h2o calls when it frees every
 * request sff_guard_on_request() saw): releases its header bytes, counts an early reset when no
 * response was started. */
void sff_guard_on_complete(sff_worker_t *w, h2o_req_t *req);
/* Starts the once-a-second sweep for slow requests. */
void sff_guard_start(sff_worker_t *w);
/* While draining: closes the connections that have no request in flight and received nothing since
 * the previous call (call it every ~100 ms), so that idle keep-alive connections do not hold the
 * worker until the drain deadline. Returns the connections still open. */
size_t sff_guard_close_idle(void);
/* Connections tracked now. */
size_t sff_guard_connections(void);

#endif
