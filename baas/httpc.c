/*
 * httpc.c - the asynchronous HTTP/1.1 client of httpc.h.
 *
 * A request goes through: resolve (numeric, localhost, cache or h2o's threaded getaddrinfo) ->
 * connect (or an idle connection) -> TLS handshake -> send the head and body while reading -> parse
 * the head -> deliver the body -> keep the connection if it can serve another request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "h2o/hostinfo.h"
#include "h2o/multithread.h"
#include "h2o/version.h"
#include "sff.h"
#include "timer.h"
#include "httpc.h"

#define MAX_HEAD 65536 /* response head bytes */
#define MAX_HEADERS 100
#define DNS_TTL_MS 60000
#define DNS_CACHE 8

typedef struct st_conn_t {
    sff_httpc_t *c;
    h2o_socket_t *sock;
    char *key; /* "tls:host:port" */
    sff_timer_t idle_timer;
    h2o_linklist_t link; /* in c->idle */
} conn_t;

typedef struct {
    char *host;
    struct sockaddr_storage addr;
    socklen_t len;
    uint64_t expires_ms;
} dns_entry_t;

struct st_sff_httpc_t {
    h2o_loop_t *loop;
    sff_httpc_config_t config;
    SSL_CTX *ssl_ctx;
    struct st_resolver_t *resolver; /* created on the first name that needs DNS */
    dns_entry_t dns[DNS_CACHE];
    h2o_linklist_t idle; /* conn_t, most recently used last */
    size_t nidle;
    h2o_linklist_t reqs; /* live requests */
    uint64_t connects;
};

enum { ST_RESOLVE, ST_CONNECT, ST_HANDSHAKE, ST_HEAD, ST_BODY, ST_DONE };
enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };
enum { CH_SIZE, CH_DATA, CH_DATA_CRLF, CH_TRAILER };

/*
 * h2o's threaded getaddrinfo answers through a queue watched by the loop. A lookup runs to its end
 * even when its request goes away (owner NULL): h2o's cancel frees some lookups without an answer
 * and not others, so we never cancel and always get the answer. The resolver outlives its client
 * while answers are due (orphaned), and is freed from a timer, outside the queue's own callback.
 */
typedef struct st_resolver_t {
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    size_t in_flight;
    int orphaned;
    sff_timer_t free_timer;
} resolver_t;

typedef struct {
    sff_httpc_req_t *owner;
    resolver_t *resolver;
} lookup_t;

struct st_sff_httpc_req_t {
    sff_httpc_t *c;
    h2o_linklist_t link;
    sff_httpc_callbacks_t cb;
    void *data;
    char *host;
    char *key;
    uint16_t port;
    int tls, is_head, stream;
    h2o_iovec_t head; /* owned */
    h2o_iovec_t body; /* borrowed */
    uint64_t stream_len, stream_sent;
    int state;
    lookup_t *lookup;
    h2o_socket_t *sock;
    int reused, resent;
    sff_timer_t deadline;
    sff_timer_t kick; /* deferred work: a failure found in start, or a resume */
    int kick_err;
    const char *kick_msg;
    /* writing */
    int writing, want_pull, sent_all, write_failed;
    /* response */
    int status, framing, close_after, paused, got_bytes;
    uint64_t left; /* BODY_LENGTH: bytes; BODY_CHUNKED: bytes of the current chunk */
    int chunk_state;
    /* callbacks in progress, and a cancel asked for meanwhile */
    int in_cb, canceled;
    char msg[160];
};

static void req_free(sff_httpc_req_t *req);
static void req_fail(sff_httpc_req_t *req, int err, const char *msg);
static int process_input(sff_httpc_req_t *req);
static void start_connect(sff_httpc_req_t *req, struct sockaddr *addr, socklen_t len);
static void do_send(sff_httpc_req_t *req);

/* ---- idle connections ---------------------------------------------------------------------------- */

static void conn_close(conn_t *conn)
{
    sff_timer_stop(&conn->idle_timer);
    if (h2o_linklist_is_linked(&conn->link)) {
        h2o_linklist_unlink(&conn->link);
        conn->c->nidle--;
    }
    h2o_socket_close(conn->sock);
    free(conn->key);
    free(conn);
}

static void on_idle_timeout(sff_timer_t *t)
{
    conn_close(t->data);
}

/* An idle connection became readable: the server closed it (or sent what it should not have). */
static void on_idle_read(h2o_socket_t *sock, const char *err)
{
    (void)err;
    conn_close(sock->data);
}

static void pool_put(sff_httpc_t *c, h2o_socket_t *sock, const char *key)
{
    conn_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL || (conn->key = strdup(key)) == NULL || c->config.max_idle == 0) {
        if (conn != NULL)
            free(conn->key);
        free(conn);
        h2o_socket_close(sock);
        return;
    }
    if (c->nidle >= c->config.max_idle) /* the least recently used goes */
        conn_close(H2O_STRUCT_FROM_MEMBER(conn_t, link, c->idle.next));
    conn->c = c;
    conn->sock = sock;
    sock->data = conn;
    sff_timer_init(&conn->idle_timer, on_idle_timeout, conn);
    if (sff_timer_start(&conn->idle_timer, c->config.idle_timeout_ms) != 0) {
        free(conn->key);
        free(conn);
        h2o_socket_close(sock);
        return;
    }
    h2o_linklist_insert(&c->idle, &conn->link);
    c->nidle++;
    h2o_socket_read_start(sock, on_idle_read);
}

/* The most recently used idle connection to key, detached from the pool, or NULL. */
static h2o_socket_t *pool_take(sff_httpc_t *c, const char *key)
{
    for (h2o_linklist_t *l = c->idle.prev; l != &c->idle; l = l->prev) {
        conn_t *conn = H2O_STRUCT_FROM_MEMBER(conn_t, link, l);
        if (strcmp(conn->key, key) != 0)
            continue;
        h2o_socket_t *sock = conn->sock;
        h2o_socket_read_stop(sock);
        sff_timer_stop(&conn->idle_timer);
        h2o_linklist_unlink(&conn->link);
        c->nidle--;
        free(conn->key);
        free(conn);
        return sock;
    }
    return NULL;
}

/* ---- the client ---------------------------------------------------------------------------------- */

static void resolver_free(resolver_t *r)
{
    sff_timer_stop(&r->free_timer);
    h2o_multithread_unregister_receiver(r->queue, &r->receiver);
    h2o_multithread_destroy_queue(r->queue);
#if H2O_VERSION_MAJOR == 2 && H2O_VERSION_MINOR == 2
    free(r->queue); /* h2o 2.2's evloop build closes the queue's pipe but never frees the queue */
#endif
    free(r);
}

static void on_resolver_free(sff_timer_t *t)
{
    resolver_free(t->data);
}

static resolver_t *resolver_create(h2o_loop_t *loop)
{
    resolver_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->queue = h2o_multithread_create_queue(loop)) == NULL) {
        free(r);
        return NULL;
    }
    h2o_multithread_register_receiver(r->queue, &r->receiver, h2o_hostinfo_getaddr_receiver);
    sff_timer_init(&r->free_timer, on_resolver_free, r);
    return r;
}

sff_httpc_t *sff_httpc_create(h2o_loop_t *loop, const sff_httpc_config_t *config)
{
    sff_httpc_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->loop = loop;
    if (config != NULL)
        c->config = *config;
    if (c->config.max_idle == 0)
        c->config.max_idle = 16;
    if (c->config.idle_timeout_ms == 0)
        c->config.idle_timeout_ms = 10000;
    if (c->config.ca_file != NULL && (c->config.ca_file = strdup(c->config.ca_file)) == NULL) {
        free(c);
        return NULL;
    }
    h2o_linklist_init_anchor(&c->idle);
    h2o_linklist_init_anchor(&c->reqs);
    return c;
}

void sff_httpc_destroy(sff_httpc_t *c)
{
    if (c == NULL)
        return;
    while (!h2o_linklist_is_empty(&c->reqs))
        sff_httpc_cancel(H2O_STRUCT_FROM_MEMBER(sff_httpc_req_t, link, c->reqs.next));
    while (!h2o_linklist_is_empty(&c->idle))
        conn_close(H2O_STRUCT_FROM_MEMBER(conn_t, link, c->idle.next));
    if (c->resolver != NULL) {
        /* freed from a timer: this may run inside the resolver queue's callback (an on_done) */
        c->resolver->orphaned = 1;
        if (c->resolver->in_flight == 0 && sff_timer_start(&c->resolver->free_timer, 0) != 0)
            resolver_free(c->resolver);
    }
    for (size_t i = 0; i < DNS_CACHE; i++)
        free(c->dns[i].host);
    if (c->ssl_ctx != NULL)
        SSL_CTX_free(c->ssl_ctx);
    free((char *)c->config.ca_file);
    free(c);
}

size_t sff_httpc_idle_count(sff_httpc_t *c)
{
    return c->nidle;
}

uint64_t sff_httpc_connects(sff_httpc_t *c)
{
    return c->connects;
}

static int setup_tls(sff_httpc_t *c)
{
    if (c->ssl_ctx != NULL)
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return SFF_EINTERNAL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    int ok = c->config.ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, c->config.ca_file, NULL) == 1
                                       : SSL_CTX_set_default_verify_paths(ctx) == 1;
    if (!ok) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return SFF_EINTERNAL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    c->ssl_ctx = ctx;
    return 0;
}

/* ---- request lifecycle --------------------------------------------------------------------------- */

void *sff_httpc_data(sff_httpc_req_t *req)
{
    return req->data;
}

static void close_sock(sff_httpc_req_t *req)
{
    if (req->sock != NULL) {
        h2o_socket_close(req->sock);
        req->sock = NULL;
    }
}

/* Releases everything; no callback. */
static void req_free(sff_httpc_req_t *req)
{
    sff_timer_stop(&req->deadline);
    sff_timer_stop(&req->kick);
    if (req->lookup != NULL) {
        req->lookup->owner = NULL; /* freed when its answer comes back (see on_getaddr) */
        req->lookup = NULL;
    }
    close_sock(req);
    if (h2o_linklist_is_linked(&req->link))
        h2o_linklist_unlink(&req->link);
    free(req->head.base);
    free(req->host);
    free(req->key);
    free(req);
}

/* Calls on_done and frees req. */
static void req_finish(sff_httpc_req_t *req, int err, const char *msg)
{
    req->state = ST_DONE;
    sff_timer_stop(&req->deadline);
    sff_timer_stop(&req->kick);
    if (err == 0 && req->sock != NULL && !req->close_after && req->sent_all && !req->write_failed && req->sock->input->size == 0 &&
        !h2o_socket_is_writing(req->sock)) {
        h2o_socket_read_stop(req->sock);
        pool_put(req->c, req->sock, req->key);
        req->sock = NULL;
    }
    close_sock(req);
    req->in_cb++;
    req->cb.on_done(req, err, msg);
    req->in_cb--;
    req_free(req);
}

static void req_fail(sff_httpc_req_t *req, int err, const char *msg)
{
    close_sock(req);
    req_finish(req, err, msg);
}

void sff_httpc_cancel(sff_httpc_req_t *req)
{
    if (req == NULL || req->canceled)
        return;
    req->canceled = 1;
    if (req->in_cb == 0)
        req_free(req);
    /* else: whoever called the callback frees it when it returns (see the callers of in_cb) */
}

/* Returns nonzero when req was cancelled in a callback that just returned (and frees it then). */
static int gone(sff_httpc_req_t *req)
{
    if (!req->canceled)
        return 0;
    if (req->in_cb == 0)
        req_free(req);
    return 1;
}

static void on_deadline(sff_timer_t *t)
{
    sff_httpc_req_t *req = t->data;
    req_fail(req, SFF_ETIMEDOUT, "timed out");
}

static void on_read(h2o_socket_t *sock, const char *err);

static void on_kick(sff_timer_t *t)
{
    sff_httpc_req_t *req = t->data;
    if (req->kick_err != 0) {
        req_fail(req, req->kick_err, req->kick_msg);
        return;
    }
    /* a resume: first what the input holds, then read again (which also sees a close) */
    if (process_input(req) == 0 && !req->paused)
        h2o_socket_read_start(req->sock, on_read);
}

/* Fails req from the next loop iteration: used where no callback may run yet. */
static void fail_later(sff_httpc_req_t *req, int err, const char *msg)
{
    req->kick_err = err;
    req->kick_msg = msg;
    if (sff_timer_start(&req->kick, 0) != 0)
        req_fail(req, err, msg); /* out of memory for the heap: nothing better to do */
}

/* ---- resolve and connect ------------------------------------------------------------------------- */

static int is_localhost(const char *host)
{
    size_t n = strlen(host);
    if (n > 0 && host[n - 1] == '.')
        n--;
    return (n == 9 && strncasecmp(host, "localhost", 9) == 0) || (n > 10 && strncasecmp(host + n - 10, ".localhost", 10) == 0);
}

/* Fills addr for a numeric host or a localhost name; returns 0, or -1 when DNS is needed. */
static int resolve_now(const char *host, uint16_t port, struct sockaddr_storage *addr, socklen_t *len)
{
    memset(addr, 0, sizeof(*addr));
    struct sockaddr_in *sin = (void *)addr;
    struct sockaddr_in6 *sin6 = (void *)addr;
    if (is_localhost(host)) {
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
    } else {
        return -1;
    }
    if (addr->ss_family == AF_INET) {
        sin->sin_port = htons(port);
        *len = sizeof(*sin);
    } else {
        sin6->sin6_port = htons(port);
        *len = sizeof(*sin6);
    }
    return 0;
}

static void set_port(struct sockaddr_storage *addr, uint16_t port)
{
    if (addr->ss_family == AF_INET)
        ((struct sockaddr_in *)addr)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)addr)->sin6_port = htons(port);
}

static dns_entry_t *dns_find(sff_httpc_t *c, const char *host)
{
    uint64_t now = sff_now_ms();
    for (size_t i = 0; i < DNS_CACHE; i++)
        if (c->dns[i].host != NULL && c->dns[i].expires_ms > now && strcasecmp(c->dns[i].host, host) == 0)
            return &c->dns[i];
    return NULL;
}

static void dns_store(sff_httpc_t *c, const char *host, const struct sockaddr *sa, socklen_t len)
{
    if (len > sizeof(struct sockaddr_storage))
        return;
    dns_entry_t *slot = &c->dns[0];
    for (size_t i = 0; i < DNS_CACHE; i++) {
        if (c->dns[i].host == NULL || strcasecmp(c->dns[i].host, host) == 0) {
            slot = &c->dns[i];
            break;
        }
        if (c->dns[i].expires_ms < slot->expires_ms)
            slot = &c->dns[i];
    }
    char *h = strdup(host);
    if (h == NULL)
        return;
    free(slot->host);
    slot->host = h;
    memcpy(&slot->addr, sa, len);
    slot->len = len;
    slot->expires_ms = sff_now_ms() + DNS_TTL_MS;
}

static void on_getaddr(h2o_hostinfo_getaddr_req_t *getaddr, const char *errstr, struct addrinfo *res, void *data)
{
    (void)getaddr;
    lookup_t *lookup = data;
    sff_httpc_req_t *req = lookup->owner;
    resolver_t *resolver = lookup->resolver;
    free(lookup);
    if (--resolver->in_flight == 0 && resolver->orphaned && sff_timer_start(&resolver->free_timer, 0) != 0)
        resolver->orphaned = 0; /* cannot free it later: keep it (a few bytes) rather than free it under the queue */
    if (req == NULL)
        return; /* the request went away meanwhile */
    req->lookup = NULL;
    if (errstr != NULL || res == NULL) {
        snprintf(req->msg, sizeof(req->msg), "cannot resolve %s: %s", req->host, errstr != NULL ? errstr : "no address");
        req_fail(req, SFF_EUNAVAILABLE, req->msg);
        return;
    }
    struct addrinfo *ai = h2o_hostinfo_select_one(res);
    dns_store(req->c, req->host, ai->ai_addr, ai->ai_addrlen);
    struct sockaddr_storage addr;
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    set_port(&addr, req->port);
    start_connect(req, (struct sockaddr *)&addr, ai->ai_addrlen);
}

static int start_resolve(sff_httpc_req_t *req)
{
    struct sockaddr_storage addr;
    socklen_t len;
    if (resolve_now(req->host, req->port, &addr, &len) == 0) {
        start_connect(req, (struct sockaddr *)&addr, len);
        return 0;
    }
    dns_entry_t *e = dns_find(req->c, req->host);
    if (e != NULL) {
        memcpy(&addr, &e->addr, e->len);
        set_port(&addr, req->port);
        start_connect(req, (struct sockaddr *)&addr, e->len);
        return 0;
    }
    sff_httpc_t *c = req->c;
    if (c->resolver == NULL && (c->resolver = resolver_create(c->loop)) == NULL)
        return SFF_ENOMEM;
    lookup_t *lookup = calloc(1, sizeof(*lookup));
    if (lookup == NULL)
        return SFF_ENOMEM;
    lookup->owner = req;
    lookup->resolver = c->resolver;
    req->lookup = lookup;
    req->state = ST_RESOLVE;
    c->resolver->in_flight++;
    h2o_hostinfo_getaddr(&c->resolver->receiver, h2o_iovec_init(req->host, strlen(req->host)), h2o_iovec_init(H2O_STRLIT("0")),
                         AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP, AI_ADDRCONFIG | AI_NUMERICSERV, on_getaddr, lookup);
    return 0;
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    sff_httpc_req_t *req = sock->data;
    if (err != NULL) {
        snprintf(req->msg, sizeof(req->msg), "TLS handshake with %s failed: %s", req->host, err);
        req_fail(req, SFF_EUNAVAILABLE, req->msg);
        return;
    }
    do_send(req);
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
    sff_httpc_req_t *req = sock->data;
    if (err != NULL) {
        snprintf(req->msg, sizeof(req->msg), "cannot connect to %s:%u: %s", req->host, (unsigned)req->port, err);
        req_fail(req, SFF_EUNAVAILABLE, req->msg);
        return;
    }
    int on = 1;
    setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (req->tls) {
        req->state = ST_HANDSHAKE;
        h2o_socket_ssl_handshake(sock, req->c->ssl_ctx, req->host, on_handshake);
        return;
    }
    do_send(req);
}

static void start_connect(sff_httpc_req_t *req, struct sockaddr *addr, socklen_t len)
{
    req->state = ST_CONNECT;
    req->c->connects++;
    h2o_socket_t *sock = h2o_socket_connect(req->c->loop, addr, len, on_connect);
    if (sock == NULL) {
        snprintf(req->msg, sizeof(req->msg), "cannot connect to %s:%u: %s", req->host, (unsigned)req->port, strerror(errno));
        fail_later(req, SFF_EUNAVAILABLE, req->msg);
        return;
    }
    sock->data = req;
    req->sock = sock;
}

/* ---- sending ------------------------------------------------------------------------------------- */

static void pull(sff_httpc_req_t *req)
{
    req->want_pull = 1;
    req->in_cb++;
    req->cb.on_pull(req);
    req->in_cb--;
    gone(req);
}

static void on_written(h2o_socket_t *sock, const char *err)
{
    sff_httpc_req_t *req = sock->data;
    req->writing = 0;
    if (err != NULL) {
        /* The server may have answered already (an early 503, 413...): let the reading side decide. */
        req->write_failed = 1;
        req->close_after = 1;
        return;
    }
    if (req->stream && req->stream_sent < req->stream_len) {
        if (req->state == ST_HEAD || req->state == ST_BODY)
            pull(req);
        return;
    }
    req->sent_all = 1;
}

int sff_httpc_write(sff_httpc_req_t *req, const void *bytes, size_t len)
{
    if (!req->stream || !req->want_pull || len == 0 || len > req->stream_len - req->stream_sent || req->canceled)
        return SFF_EBADREQ;
    req->want_pull = 0;
    req->stream_sent += len;
    if (req->write_failed || req->sock == NULL) {
        /* the server stopped listening: drop it, the response (or the close) ends the request */
        return 0;
    }
    h2o_iovec_t buf = h2o_iovec_init(bytes, len);
    req->writing = 1;
    h2o_socket_write(req->sock, &buf, 1, on_written);
    return 0;
}

static void do_send(sff_httpc_req_t *req)
{
    req->state = ST_HEAD;
    req->sock->data = req;
    h2o_iovec_t bufs[2] = {req->head, req->body};
    size_t n = !req->stream && req->body.len != 0 ? 2 : 1;
    req->writing = 1;
    h2o_socket_write(req->sock, bufs, n, on_written);
    h2o_socket_read_start(req->sock, on_read);
}

/* A reused connection failed before any response byte: send again on a new one, once. */
static int try_resend(sff_httpc_req_t *req)
{
    if (!req->reused || req->resent || req->got_bytes || req->stream)
        return 0;
    req->resent = 1;
    req->reused = 0;
    close_sock(req);
    req->writing = req->write_failed = req->sent_all = req->close_after = 0;
    int ret = start_resolve(req);
    if (ret != 0)
        fail_later(req, ret, "out of memory");
    return 1;
}

/* ---- receiving ----------------------------------------------------------------------------------- */

static int parse_status_line(const char *p, size_t n, int *status, int *minor)
{
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return -1;
    if (n > 12 && p[12] != ' ')
        return -1;
    *minor = p[7] - '0';
    *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    return *status >= 100 ? 0 : -1;
}

static int parse_u64(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 0;
}

static int has_token(h2o_iovec_t v, const char *token)
{
    size_t tl = strlen(token);
    const char *p = v.base, *end = v.base + v.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
            return 1;
    }
    return 0;
}

/* Parses the head at the start of the input. Returns its length, 0 when more bytes are needed, or
 * -1 when it is malformed. Calls on_head for a final response. */
static ssize_t parse_head(sff_httpc_req_t *req, int *stop)
{
    h2o_buffer_t *in = req->sock->input;
    const char *base = in->bytes;
    size_t avail = in->size;
    const char *end = NULL;
    for (size_t i = 3; i < avail; i++) {
        if (base[i] == '\n' && base[i - 1] == '\r' && base[i - 2] == '\n' && base[i - 3] == '\r') {
            end = base + i + 1;
            break;
        }
    }
    if (end == NULL)
        return avail > MAX_HEAD ? -1 : 0;
    size_t headlen = (size_t)(end - base);
    const char *line = base, *eol = memchr(line, '\r', headlen);
    int status, minor;
    if (eol == NULL || parse_status_line(line, (size_t)(eol - line), &status, &minor) != 0)
        return -1;
    sff_httpc_header_t headers[MAX_HEADERS];
    size_t nheaders = 0;
    int64_t content_length = -1;
    int chunked = 0, close_after = minor == 0;
    for (line = eol + 2; line < end - 2; line = eol + 2) {
        eol = memchr(line, '\r', (size_t)(end - line));
        if (eol == NULL || eol[1] != '\n')
            return -1;
        if (line[0] == ' ' || line[0] == '\t' || nheaders == MAX_HEADERS)
            return -1; /* obsolete line folding, or too many */
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL || colon == line)
            return -1;
        for (const char *p = line; p < colon; p++)
            if (*p <= ' ' || *p >= 127)
                return -1;
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        char *name = (char *)line;
        for (char *p = name; p < colon; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        sff_httpc_header_t *h = &headers[nheaders++];
        h->name = h2o_iovec_init(name, (size_t)(colon - line));
        h->value = h2o_iovec_init(v, (size_t)(ve - v));
        if (h2o_memis(h->name.base, h->name.len, H2O_STRLIT("content-length"))) {
            uint64_t cl;
            if (parse_u64(h->value.base, h->value.len, &cl) != 0 || (content_length >= 0 && (uint64_t)content_length != cl))
                return -1;
            content_length = (int64_t)cl;
        } else if (h2o_memis(h->name.base, h->name.len, H2O_STRLIT("transfer-encoding"))) {
            if (!has_token(h->value, "chunked"))
                return -1; /* codings other than chunked are not asked for */
            chunked = 1;
        } else if (h2o_memis(h->name.base, h->name.len, H2O_STRLIT("connection"))) {
            if (has_token(h->value, "close"))
                close_after = 1;
            else if (minor == 0 && has_token(h->value, "keep-alive"))
                close_after = 0;
        }
    }
    if (status < 200 && status != 101)
        return (ssize_t)headlen; /* an interim response: skip it */
    if (status == 101)
        return -1;
    req->status = status;
    req->close_after |= close_after;
    if (req->is_head || status == 204 || status == 304) {
        req->framing = BODY_NONE; /* content_length stays what the header says (for HEAD, a GET's size) */
    } else if (chunked) {
        req->framing = BODY_CHUNKED;
        req->chunk_state = CH_SIZE;
        content_length = -1;
    } else if (content_length >= 0) {
        req->framing = BODY_LENGTH;
        req->left = (uint64_t)content_length;
    } else {
        req->framing = BODY_CLOSE;
        req->close_after = 1;
    }
    sff_httpc_response_t res = {status, headers, nheaders, content_length};
    req->in_cb++;
    int ret = req->cb.on_head != NULL ? req->cb.on_head(req, &res) : 0;
    req->in_cb--;
    if (gone(req)) {
        *stop = 1;
        return 0;
    }
    if (ret != 0) {
        *stop = 1;
        req_fail(req, ret, "stopped by the caller");
        return 0;
    }
    req->state = ST_BODY;
    return (ssize_t)headlen;
}

/* Delivers n body bytes; returns 0 to go on, 1 when req is gone or finished. */
static int deliver(sff_httpc_req_t *req, const char *p, size_t n)
{
    if (req->cb.on_body == NULL || n == 0)
        return 0;
    req->in_cb++;
    int ret = req->cb.on_body(req, p, n);
    req->in_cb--;
    if (gone(req))
        return 1;
    if (ret == SFF_HTTPC_PAUSE) {
        req->paused = 1;
        return 0;
    }
    if (ret != 0) {
        req_fail(req, ret, "stopped by the caller");
        return 1;
    }
    return 0;
}

static void body_done(sff_httpc_req_t *req)
{
    if (!req->sent_all)
        req->close_after = 1; /* answered before the request body was all sent */
    req_finish(req, 0, "");
}

/* Decodes what can be of a chunked body; returns 0 to go on, 1 when req is gone or finished. */
static int process_chunked(sff_httpc_req_t *req)
{
    h2o_buffer_t **in = &req->sock->input;
    while ((*in)->size != 0 && !req->paused) {
        const char *p = (*in)->bytes;
        size_t n = (*in)->size;
        if (req->chunk_state == CH_DATA) {
            size_t take = n < req->left ? n : (size_t)req->left;
            req->left -= take;
            if (req->left == 0)
                req->chunk_state = CH_DATA_CRLF;
            /* deliver from a stable copy of the bounds: the callback must not touch the buffer */
            int r = deliver(req, p, take);
            if (r != 0)
                return 1;
            h2o_buffer_consume(in, take);
            continue;
        }
        const char *nl = memchr(p, '\n', n);
        if (nl == NULL) {
            if (n > 4096)
                goto Bad;
            return 0;
        }
        size_t linelen = (size_t)(nl - p);
        if (linelen == 0 || p[linelen - 1] != '\r')
            goto Bad;
        linelen--;
        if (req->chunk_state == CH_DATA_CRLF) {
            if (linelen != 0)
                goto Bad;
            req->chunk_state = CH_SIZE;
        } else if (req->chunk_state == CH_SIZE) {
            uint64_t size = 0;
            size_t i = 0;
            for (; i < linelen; i++) {
                int d = p[i] >= '0' && p[i] <= '9'   ? p[i] - '0'
                        : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10
                        : p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 10
                                                     : -1;
                if (d < 0)
                    break;
                if (size >> 56)
                    goto Bad;
                size = size * 16 + (uint64_t)d;
            }
            if (i == 0 || (i < linelen && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
                goto Bad;
            req->left = size;
            req->chunk_state = size == 0 ? CH_TRAILER : CH_DATA;
        } else { /* CH_TRAILER: lines until an empty one */
            if (linelen == 0) {
                h2o_buffer_consume(in, linelen + 2);
                if ((*in)->size != 0)
                    req->close_after = 1; /* more than the response: do not reuse */
                body_done(req);
                return 1;
            }
        }
        h2o_buffer_consume(in, linelen + 2);
    }
    return 0;
Bad:
    req_fail(req, SFF_EUNAVAILABLE, "malformed chunked response body");
    return 1;
}

/* Handles what the input holds in the current state. Returns 1 when req is gone or finished. */
static int process_input(sff_httpc_req_t *req)
{
    if (req->state == ST_HEAD) {
        for (;;) {
            int stop = 0;
            ssize_t used = parse_head(req, &stop);
            if (stop)
                return 1;
            if (used < 0) {
                req_fail(req, SFF_EUNAVAILABLE, "malformed response head");
                return 1;
            }
            if (used == 0)
                return 0;
            h2o_buffer_consume(&req->sock->input, (size_t)used);
            if (req->state == ST_BODY)
                break;
        }
    }
    if (req->state != ST_BODY || req->paused)
        return 0;
    h2o_buffer_t **in = &req->sock->input;
    switch (req->framing) {
    case BODY_NONE:
        if ((*in)->size != 0)
            req->close_after = 1;
        body_done(req);
        return 1;
    case BODY_LENGTH: {
        size_t take = (*in)->size < req->left ? (*in)->size : (size_t)req->left;
        req->left -= take;
        if (deliver(req, (*in)->bytes, take))
            return 1;
        h2o_buffer_consume(in, take);
        if (req->left == 0) {
            if ((*in)->size != 0)
                req->close_after = 1;
            body_done(req);
            return 1;
        }
        return 0;
    }
    case BODY_CHUNKED:
        return process_chunked(req);
    default: { /* BODY_CLOSE */
        size_t take = (*in)->size;
        if (deliver(req, (*in)->bytes, take))
            return 1;
        h2o_buffer_consume(in, take);
        return 0;
    }
    }
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    sff_httpc_req_t *req = sock->data;
    if (sock->input->size != 0)
        req->got_bytes = 1;
    if (err == NULL) {
        if (!req->paused && process_input(req) != 0)
            return;
        if (req->paused)
            h2o_socket_read_stop(sock);
        return;
    }
    /* the connection ended: first what it still holds */
    if (sock->input->size != 0 && !req->paused && process_input(req) != 0)
        return;
    if (req->paused) {
        /* deliver the rest after resume; the end is seen again then */
        h2o_socket_read_stop(sock);
        return;
    }
    if (req->state == ST_BODY && req->framing == BODY_CLOSE) {
        body_done(req);
        return;
    }
    if (req->state == ST_HEAD && try_resend(req))
        return;
    req_fail(req, SFF_EUNAVAILABLE, req->state == ST_HEAD ? "connection closed before the response" : "connection closed mid-body");
}

void sff_httpc_resume(sff_httpc_req_t *req)
{
    if (!req->paused || req->canceled)
        return;
    req->paused = 0;
    req->kick_err = 0;
    sff_timer_start(&req->kick, 0);
}

/* ---- start --------------------------------------------------------------------------------------- */

int sff_httpc_start(sff_httpc_t *c, const sff_httpc_request_t *r, const sff_httpc_callbacks_t *cb, void *data,
                    sff_httpc_req_t **out)
{
    if (r->host == NULL || r->host[0] == '\0' || r->port == 0 || r->head.len < 4 || cb == NULL || cb->on_done == NULL ||
        (r->stream && (cb->on_pull == NULL || r->stream_len == 0)))
        return SFF_EBADREQ;
    if (r->tls && setup_tls(c) != 0)
        return SFF_EINTERNAL;
    sff_httpc_req_t *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return SFF_ENOMEM;
    req->c = c;
    req->cb = *cb;
    req->data = data;
    req->port = r->port;
    req->tls = r->tls;
    req->is_head = r->is_head;
    req->stream = r->stream;
    req->stream_len = r->stream_len;
    req->body = r->stream ? h2o_iovec_init(NULL, 0) : r->body;
    size_t keylen = strlen(r->host) + 16;
    req->host = strdup(r->host);
    req->key = malloc(keylen);
    req->head.base = malloc(r->head.len);
    if (req->host == NULL || req->key == NULL || req->head.base == NULL) {
        req_free(req);
        return SFF_ENOMEM;
    }
    snprintf(req->key, keylen, "%d:%s:%u", r->tls, r->host, (unsigned)r->port);
    memcpy(req->head.base, r->head.base, r->head.len);
    req->head.len = r->head.len;
    sff_timer_init(&req->deadline, on_deadline, req);
    sff_timer_init(&req->kick, on_kick, req);
    if (sff_timer_start(&req->deadline, r->timeout_ms != 0 ? r->timeout_ms : 30000) != 0) {
        req_free(req);
        return SFF_ENOMEM;
    }
    h2o_linklist_insert(&c->reqs, &req->link);
    /* A streamed body cannot be sent twice, so it never takes a connection that may be stale. */
    h2o_socket_t *sock = r->stream ? NULL : pool_take(c, req->key);
    if (sock != NULL) {
        req->reused = 1;
        req->sock = sock;
        sock->data = req;
        do_send(req);
    } else {
        int ret = start_resolve(req);
        if (ret != 0) {
            req_free(req);
            return ret;
        }
    }
    if (out != NULL)
        *out = req;
    return 0;
}
