/*
 * httpc.h - a small asynchronous HTTP/1.1 client on the worker's h2o event loop, for the S3 driver.
 *
 * Why not h2o 2.2.5's h2o_http1client (see docs/decisions/0041-own-http-client.md): it takes the
 * whole request at connect time (no streamed request body), reports a chunked body cut at a chunk
 * boundary as a complete response, and has one fixed I/O timeout per context instead of a deadline
 * per call. This client keeps what it reuses from h2o: sockets (h2o_socket_connect, TLS through
 * h2o_socket_ssl_handshake), buffers and the threaded resolver (h2o_hostinfo_getaddr).
 *
 * What it does: non-blocking connect, optional TLS (peer verified), one request per connection at
 * a time, keep-alive reuse of idle connections per host and port (closed after idle_timeout_ms or
 * when the server closes them), Content-Length, chunked and until-close response bodies, a
 * deadline per request on our timers (gateway/timer.h). A request on a reused connection that the
 * server had closed meanwhile is sent again once on a new connection when its body is buffered.
 * Names "localhost" and "*.localhost" resolve to 127.0.0.1 without DNS (RFC 6761); numeric hosts
 * need no resolver either.
 *
 * Callbacks follow libuv's rule: if sff_httpc_start() fails, no callback fires; after
 * sff_httpc_cancel(), none fires either. No callback runs inside sff_httpc_start(). The process
 * must ignore SIGPIPE (the worker does).
 */
#ifndef SFF_HTTPC_H
#define SFF_HTTPC_H

#include <stddef.h>
#include <stdint.h>
#include "h2o.h"

typedef struct st_sff_httpc_t sff_httpc_t;
typedef struct st_sff_httpc_req_t sff_httpc_req_t;

typedef struct st_sff_httpc_config_t {
    size_t max_idle;          /* idle connections kept, all hosts together (default 16) */
    uint32_t idle_timeout_ms; /* an idle connection is closed after this (default 10000) */
    const char *ca_file;      /* PEM file of trusted CAs for TLS, or NULL for the system's */
} sff_httpc_config_t;

/* A response header: name lower-cased. Borrowed for the callback. */
typedef struct st_sff_httpc_header_t {
    h2o_iovec_t name;
    h2o_iovec_t value;
} sff_httpc_header_t;

typedef struct st_sff_httpc_response_t {
    int status;
    const sff_httpc_header_t *headers;
    size_t nheaders;
    int64_t content_length; /* the Content-Length header (for HEAD: what a GET would get), or -1 */
} sff_httpc_response_t;

/* on_body's return value that stops delivery until sff_httpc_resume(). */
#define SFF_HTTPC_PAUSE 1

typedef struct st_sff_httpc_callbacks_t {
    /* The final response's head. Return 0 to read its body, or a negative SFF_E* code to stop:
     * the connection is closed and on_done gets that code. */
    int (*on_head)(sff_httpc_req_t *req, const sff_httpc_response_t *res);
    /* A piece of the response body, borrowed for the call. Return 0 for more, SFF_HTTPC_PAUSE to
     * hold delivery until sff_httpc_resume() (the deadline still runs), or a negative SFF_E* code to
     * stop as from on_head. May be NULL to drop the body. */
    int (*on_body)(sff_httpc_req_t *req, const char *bytes, size_t len);
    /* A streamed request body wants its next piece: answer with sff_httpc_write(), now or later. */
    void (*on_pull)(sff_httpc_req_t *req);
    /* The end, called once: err 0 when the whole response arrived (whatever its status), else
     * SFF_ETIMEDOUT (deadline), SFF_EUNAVAILABLE (resolve, connect, TLS, I/O, a cut or malformed
     * response) or the code on_head/on_body returned; msg says what happened (never NULL, no
     * secrets). The request is freed when on_done returns. */
    void (*on_done)(sff_httpc_req_t *req, int err, const char *msg);
} sff_httpc_callbacks_t;

/* One request. Everything is borrowed for the call except body, which must stay valid until
 * on_done (or the cancel). */
typedef struct st_sff_httpc_request_t {
    const char *host; /* to connect to, and for TLS's SNI and certificate check */
    uint16_t port;
    int tls;
    h2o_iovec_t head; /* the request head, up to and including the empty line; copied */
    h2o_iovec_t body; /* a buffered body, or {NULL, 0} */
    int stream;       /* nonzero: the body is stream_len bytes given with sff_httpc_write() instead */
    uint64_t stream_len;
    int is_head;         /* a HEAD request: the response carries no body */
    uint32_t timeout_ms; /* the deadline of the whole exchange; 0 means 30 s */
} sff_httpc_request_t;

/* A client for loop. Returns NULL when memory runs out. */
sff_httpc_t *sff_httpc_create(h2o_loop_t *loop, const sff_httpc_config_t *config);
/* Cancels every request in flight (no callback fires), closes the idle connections, frees c.
 * Call it from outside c's callbacks. */
void sff_httpc_destroy(sff_httpc_t *c);

/* Starts a request; *req (may be NULL) receives its handle. Returns 0, SFF_EBADREQ for a bad
 * request, SFF_ENOMEM, or SFF_EINTERNAL when TLS cannot be set up. */
int sff_httpc_start(sff_httpc_t *c, const sff_httpc_request_t *r, const sff_httpc_callbacks_t *cb, void *data,
                    sff_httpc_req_t **req);
/* The data given to sff_httpc_start(). */
void *sff_httpc_data(sff_httpc_req_t *req);
/* Gives the next piece of a streamed body, once per on_pull: len bytes, 0 < len <= what remains.
 * The bytes are borrowed until the next on_pull or on_done. Returns 0, or SFF_EBADREQ (not asked
 * for, empty, too long) which changes nothing. */
int sff_httpc_write(sff_httpc_req_t *req, const void *bytes, size_t len);
/* Resumes delivery paused by SFF_HTTPC_PAUSE (from the next loop iteration). */
void sff_httpc_resume(sff_httpc_req_t *req);
/* Stops the request and frees it; no callback fires afterwards. Allowed inside its callbacks
 * except on_done. */
void sff_httpc_cancel(sff_httpc_req_t *req);

/* Idle connections held now, for tests. */
size_t sff_httpc_idle_count(sff_httpc_t *c);
/* Connections opened so far, for tests and metrics. */
uint64_t sff_httpc_connects(sff_httpc_t *c);

#endif
