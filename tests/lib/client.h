/*
 * client.h - what sff's integration tests use to start a real sff and talk to it over real sockets:
 * HTTP/1.1, h2c (prior knowledge) and h2 over TLS (ALPN) clients, and a small concurrent load client.
 */
#ifndef SFF_TEST_CLIENT_H
#define SFF_TEST_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- a running sff ---------------------------------------------------------------------------- */

typedef struct st_tc_server_t {
    pid_t pid;
    int port;
    char dir[256]; /* a fresh temp dir, removed by tc_server_stop() */
    char log[300]; /* dir/sff.log: stdout and stderr of sff */
    char url[64];  /* "http://127.0.0.1:PORT" */
} tc_server_t;

/*
 * Starts `$SFF_BIN serve` (default build/sff) on a free loopback port with the environment of the
 * test plus env (a NULL-terminated list of "NAME=value"; SFF_LISTEN is set unless env sets it;
 * SFF_FUNCTIONS_DIR defaults to build/functions next to SFF_BIN unless the environment has it).
 * Waits up to 10 s for GET /_health to answer 200 (over TLS when env sets SFF_TLS_CERT). Returns
 * 0, or -1 (printing the log) when it does not come up. The environment variable SFF_TEST_SERVE_ARGS,
 * if set, is passed as one more argument of `sff serve` (e.g. "--watch").
 * sff runs in its own process group and gets SIGTERM when the thread that started it exits, so
 * start it from the main thread (or one that outlives it).
 */
int tc_server_start(tc_server_t *srv, const char *const *env);
/* Sends SIGTERM and waits (up to 15 s, then SIGKILL), kills what is left of sff's process group
 * and removes srv->dir. Returns the exit status as from waitpid, or -1 when sff was not running. */
int tc_server_stop(tc_server_t *srv);
/* Sends a signal to the sff master. */
int tc_server_signal(tc_server_t *srv, int sig);
/* Nonzero when the log file contains needle. */
int tc_server_log_contains(tc_server_t *srv, const char *needle);
/* Reads the whole log (malloc()ed, caller frees). */
char *tc_server_log(tc_server_t *srv);

/* A free TCP port on 127.0.0.1. */
int tc_free_port(void);

/* ---- one request ------------------------------------------------------------------------------ */

typedef struct st_tc_response_t {
    int status;    /* 0 when no response arrived (connection closed, timeout) */
    char *headers; /* "name: value\n" lines, names lower-cased */
    char *body;    /* NUL-terminated (body_len excludes the NUL) */
    size_t body_len;
    int http_version; /* 11 or 20 (10 when an HTTP/1.0 server answers) */
} tc_response_t;

/* A header of the response by lower-case name, in a static buffer overwritten by the next call,
 * or NULL. */
const char *tc_header(const tc_response_t *res, const char *name);
void tc_response_free(tc_response_t *res);

typedef enum { TC_HTTP1, TC_H2C, TC_H2_TLS } tc_proto_t;

/*
 * Sends one request on a new connection and reads the whole response (10 s timeout). headers is a
 * "Name: value\r\n" block or NULL; body may be NULL. For TC_H2_TLS the certificate is not checked.
 * Returns 0 when a response arrived, else -1 (res->status is 0). res->headers and res->body are
 * never NULL afterwards; free them with tc_response_free() either way. A Host, Content-Length (or
 * Transfer-Encoding) or Connection header in headers replaces the one HTTP/1.1 would add; in
 * HTTP/2 names are lower-cased, Host becomes :authority and connection-specific headers are dropped.
 */
int tc_request(tc_proto_t proto, int port, const char *method, const char *path, const char *headers, const void *body,
               size_t body_len, tc_response_t *res);

/* Shorthand: HTTP/1.1 GET on 127.0.0.1:port. */
int tc_get(int port, const char *path, const char *headers, tc_response_t *res);

/* ---- raw sockets ------------------------------------------------------------------------------ */

/* A blocking TCP connection to 127.0.0.1:port with a 10 s receive timeout, or -1. */
int tc_connect(int port);
/* Writes all of buf; returns 0 or -1. */
int tc_write_all(int fd, const void *buf, size_t len);

/* ---- HTTP/1.1 responses on a raw socket -------------------------------------------------------- */

/*
 * An incremental HTTP/1.1 response parser: feed it the bytes of a response as they arrive. It
 * knows the framing (Content-Length, chunked, until close; none for HEAD, 1xx, 204 and 304), skips
 * interim 1xx responses (but 101) and appends trailers to the headers. All fields are private
 * except close.
 */
typedef struct st_tc_http1_parser_t {
    tc_response_t *res;
    int store;   /* keep headers and body in res */
    int no_body; /* the request was HEAD */
    int state;
    int close; /* set once the head is parsed: the server closes the connection after this response */
    int chunked;
    int64_t content_length;
    uint64_t remaining;
    char *line; /* a line split across feeds */
    size_t line_len, line_cap;
    size_t headers_len, headers_cap, body_cap;
} tc_http1_parser_t;

/* Starts parsing the response to a request of method into res, which it zeroes. With store 0 only
 * res->status and res->http_version are filled in; headers and body are skipped. */
void tc_http1_parser_init(tc_http1_parser_t *p, const char *method, tc_response_t *res, int store);
/* Feeds len bytes; len 0 tells that the peer closed the connection. Returns how many bytes the
 * response used once it is complete (the rest belongs to whatever follows), -2 when it needs more
 * bytes, or -1 when the response is malformed or was cut off. With store, res->headers and
 * res->body are NUL-terminated strings once it is complete. */
ssize_t tc_http1_parser_feed(tc_http1_parser_t *p, const char *buf, size_t len);
/* Frees what the parser holds, but not what it put in res. */
void tc_http1_parser_dispose(tc_http1_parser_t *p);

/* Reads one response to a request of method from fd, waiting at most timeout_ms in all. Bytes after
 * the response are dropped, so use it when one response at a time is outstanding. Returns 0, or -1
 * (res->status is 0). Free res with tc_response_free() either way. */
int tc_read_response(int fd, const char *method, int timeout_ms, tc_response_t *res);

/* ---- load ------------------------------------------------------------------------------------- */

typedef struct st_tc_load_t {
    int port;
    int connections;   /* concurrent HTTP/1.1 keep-alive connections */
    uint64_t requests; /* total requests to send (across connections) */
    double seconds;    /* or: stop after this long (0 = no limit); whichever comes first */
    const char *method;
    const char *path;
    const char *headers; /* extra "Name: value\r\n" lines or NULL */
    const char *body;    /* or NULL */
    /* results */
    uint64_t ok;               /* 2xx responses */
    uint64_t failed;           /* non-2xx responses, connection errors and timeouts */
    uint64_t status_counts[6]; /* by hundreds: [2] = 2xx, [5] = 5xx, [0] = no response */
    double elapsed_s;
    double latency_max_ms;
} tc_load_t;

/* Runs the load on one thread with epoll; returns 0 when it ran (look at ok/failed). */
int tc_load_run(tc_load_t *load);

/* Runs tc_load_run() on a thread; tc_load_join() waits for it. */
int tc_load_start(tc_load_t *load);
int tc_load_join(tc_load_t *load);

#endif
