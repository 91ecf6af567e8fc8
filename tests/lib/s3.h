/*
 * s3.h - S3 for tests: s3rver (from tests/node/node_modules, installed by `npm ci --prefix
 * tests/node`) on a free loopback port with a temp directory and one bucket, and a small
 * fault-injecting HTTP/1.1 proxy to put in front of it.
 *
 *     tc_s3_t s3;
 *     if (tc_s3_start(&s3, "sff-test", NULL) != 0) ... a failure, never a skip
 *     ... SFF_STORAGE_URL s3://sff-test?endpoint=<s3.endpoint> with access key and secret "S3RVER" ...
 *     tc_s3_stop(&s3);
 *
 * s3rver accepts any Signature V4 with its access key id "S3RVER" (it does not check signatures);
 * another key id gets 403 InvalidAccessKeyId. It is started with --service-endpoint localhost, so
 * that Host "BUCKET.s3.localhost:PORT" reaches the bucket virtual-host style.
 *
 * The proxy answers each request (in order) as the next queued fault says, or forwards it:
 *  - TC_FAULT_503: reads the request and answers 503 SlowDown (Connection: close);
 *  - TC_FAULT_STALL: reads the request and never answers (until the client or the proxy closes);
 *  - TC_FAULT_CUT: forwards the request, and of the response only the head and arg body bytes,
 *    then closes the connection.
 */
#ifndef SFF_TEST_S3_H
#define SFF_TEST_S3_H

#include <stddef.h>
#include <sys/types.h>

#define TC_S3_ACCESS_KEY "S3RVER"
#define TC_S3_SECRET_KEY "S3RVER"

typedef struct st_tc_s3_t {
    pid_t pid;
    int port;
    char dir[256]; /* the temp dir: data/ (the objects), s3rver.log */
    char bucket[64];
    char endpoint[96]; /* "http://127.0.0.1:PORT" (https with TLS) */
} tc_s3_t;

/* TLS for s3rver: PEM files of its certificate and key; NULL for plain HTTP. */
typedef struct st_tc_s3_tls_t {
    const char *cert;
    const char *key;
} tc_s3_tls_t;

/* Starts s3rver and waits (up to 20 s) until the bucket answers. Returns 0, or -1 after printing why
 * (and s3rver's log) to stderr. Needs node and tests/node/node_modules ($SFF_TOP or the current
 * directory is the repository's top). */
int tc_s3_start(tc_s3_t *s3, const char *bucket, const tc_s3_tls_t *tls);
/* Stops s3rver (SIGTERM, then SIGKILL) and removes s3->dir. Harmless twice. */
void tc_s3_stop(tc_s3_t *s3);

/* The path of a file under tests/node (static buffer). */
const char *tc_node_path(const char *rel);

/* ---- the fault proxy ---------------------------------------------------------------------------- */

typedef enum { TC_FAULT_PASS, TC_FAULT_503, TC_FAULT_STALL, TC_FAULT_CUT, TC_FAULT_DELAY } tc_fault_t;

typedef struct st_tc_proxy_t tc_proxy_t;

/* Starts a proxy on a free loopback port forwarding to 127.0.0.1:upstream_port; NULL on failure. */
tc_proxy_t *tc_proxy_start(int upstream_port);
int tc_proxy_port(tc_proxy_t *p);
/* Queues count faults of a kind for the next requests (arg: TC_FAULT_CUT's body bytes,
 * TC_FAULT_DELAY's milliseconds before the request is forwarded). */
void tc_proxy_fault(tc_proxy_t *p, tc_fault_t kind, size_t arg, int count);
/* Forgets the queued faults. */
void tc_proxy_clear(tc_proxy_t *p);
/* Requests and connections seen so far. */
size_t tc_proxy_requests(tc_proxy_t *p);
size_t tc_proxy_connections(tc_proxy_t *p);
/* Closes every connection, stops the threads, frees p. */
void tc_proxy_stop(tc_proxy_t *p);

#endif
