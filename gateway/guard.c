#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/tcp.h> /* the struct tcp_info of glibc lacks tcpi_bytes_received */
#include "error.h"
#include "guard.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "timer.h"

/* Early resets are counted in fixed windows of this length. */
#define RESET_WINDOW_MS 10000
/* A connection whose unanswered client bytes arrive slower than this is not sending a request. */
#define SLOW_FLOOR_BYTES_PER_S 1024
/* The header bytes of all unfinished requests of a connection may reach this many times
 * SFF_MAX_HEADER_BYTES: h2o runs up to 100 requests of an HTTP/2 connection at once, and 100 browser
 * requests with 8 KB of cookies each must pass. */
#define UNFINISHED_HEADER_FACTOR 32
/* At most this much of what the kernel already received is dropped when a connection is closed. */
#define MAX_DISCARD_BYTES (64 * 1024 * 1024)
#define SWEEP_INTERVAL_MS 1000

typedef struct st_guard_conn_t {
    h2o_socket_t *sock;
    h2o_linklist_t link;
    /* early resets (streams reset before their response started) in the current window */
    uint64_t reset_window_start_ms;
    uint32_t early_resets;
    /* requests started and not finished, and their header bytes */
    uint32_t in_flight;
    size_t header_bytes;
    /* set when a request starts or finishes; cleared by the sweep */
    int activity;
    /* While nothing is in flight and nothing happened for a sweep, the connection is watched:
     * since when (0 when not watched), the bytes received and sent then, and the bytes received by
     * the previous sweep. */
    uint64_t watch_since_ms;
    uint64_t watch_received, watch_sent, prev_received;
    /* while draining: the bytes received at the previous look (UINT64_MAX before the first) */
    uint64_t drain_received;
    /* the budget exceeded by early resets, closed at the next request; -1 when none */
    int over_budget;
    int condemned;
} guard_conn_t;

static h2o_linklist_t conns = {&conns, &conns};
static size_t nconns;
static sff_timer_t sweep_timer;
/* An abusive connection was freed since the previous sweep. */
static int trim_wanted;

static void on_sock_close(void *data)
{
    guard_conn_t *c = data;
    h2o_linklist_unlink(&c->link);
    nconns--;
    sff_metrics_connections_add(-1);
    /* h2o has freed the connection's streams by now; the sweep hands the memory an abusive client
     * made us allocate back to the system (glibc keeps freed memory otherwise), at most once a
     * second however many such connections close. */
    if (c->condemned)
        trim_wanted = 1;
    free(c);
}

void sff_guard_on_accept(sff_worker_t *w, h2o_socket_t *sock)
{
    (void)w;
    guard_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->sock = sock;
    c->reset_window_start_ms = sff_now_ms();
    c->activity = 1; /* not watched before the preface (or the TLS handshake) has had a sweep to arrive */
    c->over_budget = -1;
    c->drain_received = UINT64_MAX;
    h2o_linklist_insert(&conns, &c->link);
    nconns++;
    sff_metrics_connections_add(1);
    sock->on_close.cb = on_sock_close;
    sock->on_close.data = c;
}

size_t sff_guard_connections(void)
{
    return nconns;
}

static guard_conn_t *find(h2o_req_t *req)
{
    if (req->conn->callbacks->get_socket == NULL)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->on_close.cb != on_sock_close)
        return NULL;
    return sock->on_close.data;
}

/* Stops h2o from parsing anything more of an HTTP/2 connection. h2o reads everything the kernel
 * holds before it parses, and parses all of it even after the socket is shut down: without this, a
 * condemned connection's already-read HEADERS frames would still be decoded (megabytes each for an
 * HPACK bomb) and started. h2o consumes the frame it is parsing (at the front of the input buffer)
 * after this call returns, so the input is cut right after that frame. Outside the parser the front
 * of the buffer is an incomplete frame, which is left alone; the next read then reports the end of
 * the stream and h2o closes the connection without parsing further. */
static void drop_parsed_input(h2o_socket_t *sock)
{
    h2o_buffer_t *in = sock->input;
    if (in->size < 9)
        return;
    const uint8_t *p = (const uint8_t *)in->bytes;
    size_t frame = 9 + ((size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2]);
    if (frame < in->size)
        in->size = frame;
}

/* Closes the connection: h2o sees the end of the stream on its next read and frees its streams.
 * http2 is nonzero when the connection speaks HTTP/2. */
static void condemn(guard_conn_t *c, sff_metric_h2_t why, int http2)
{
    static const char *names[] = {"too many streams reset before their response", "too many decoded header bytes",
                                  "a request that did not progress"};
    if (c->condemned)
        return;
    c->condemned = 1;
    sff_metrics_h2_abuse(why);
    sff_log_warn("closing an abusive connection: %s", names[why]);
    int fd = h2o_socket_get_fd(c->sock);
    shutdown(fd, SHUT_RDWR);
    /* The kernel would still hand over what it received before the shutdown (data arriving after it
     * resets the connection): discard it without copying. */
    size_t dropped = 0;
    ssize_t n;
    while (dropped < MAX_DISCARD_BYTES && (n = recv(fd, NULL, 1024 * 1024, MSG_TRUNC | MSG_DONTWAIT)) > 0)
        dropped += (size_t)n;
    if (http2)
        drop_parsed_input(c->sock);
}

static size_t header_bytes(h2o_req_t *req)
{
    /* as HPACK counts them: name + value + 32 per field */
    size_t n = req->input.path.len + req->input.authority.len + req->method.len + 3 * 32;
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 32;
    return n;
}

int sff_guard_on_request(sff_worker_t *w, h2o_req_t *req)
{
    guard_conn_t *c = find(req);
    if (c == NULL)
        return 0;
    int http2 = req->version >= 0x200;
    c->in_flight++;
    c->activity = 1;
    if (!c->condemned && c->over_budget >= 0)
        condemn(c, (sff_metric_h2_t)c->over_budget, http2);
    if (c->condemned) {
        /* h2o had decoded this request before the connection was condemned; it goes no further */
        sff_http_send_error(req, SFF_EOVERLOADED, "the connection is being closed", NULL);
        return 1;
    }
    size_t hb = header_bytes(req);
    if (hb > w->config->max_header_bytes) {
        if (http2)
            condemn(c, SFF_METRIC_H2_HEADERS, http2);
        sff_http_send_error(req, SFF_EHEADERS, NULL, NULL);
        return 1;
    }
    c->header_bytes += hb;
    if (c->header_bytes > UNFINISHED_HEADER_FACTOR * w->config->max_header_bytes) {
        condemn(c, SFF_METRIC_H2_HEADERS, http2);
        sff_http_send_error(req, SFF_EHEADERS, NULL, NULL);
        return 1;
    }
    return 0;
}

void sff_guard_on_complete(sff_worker_t *w, h2o_req_t *req)
{
    guard_conn_t *c = find(req);
    if (c == NULL)
        return;
    if (c->in_flight > 0)
        c->in_flight--;
    c->activity = 1;
    size_t hb = header_bytes(req);
    if (hb <= w->config->max_header_bytes)
        c->header_bytes = c->header_bytes > hb ? c->header_bytes - hb : 0;
    if (req->version < 0x200 || req->res.status != 0 || c->condemned)
        return;
    /* A stream reset before its response. h2o may be closing the whole connection right now (and
     * resetting its streams), so the connection is closed at its next request, not here. */
    uint64_t now = sff_now_ms();
    if (now - c->reset_window_start_ms > RESET_WINDOW_MS) {
        c->reset_window_start_ms = now;
        c->early_resets = 0;
    }
    if (++c->early_resets > w->config->h2_max_resets)
        c->over_budget = SFF_METRIC_H2_RESETS;
}

/* The bytes the kernel received from the peer and sent to it since the connection was made, both
 * counted below TLS (h2o 2.2.5's sock->bytes_read only holds the size of the last read). Returns -1
 * when the kernel does not tell (before Linux 4.1; before 4.19 what the peer acknowledged stands
 * for what was sent). */
static int tcp_bytes(h2o_socket_t *sock, uint64_t *received, uint64_t *sent)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return -1;
    *received = ti.tcpi_bytes_received;
    *sent =
        len >= offsetof(struct tcp_info, tcpi_bytes_sent) + sizeof(ti.tcpi_bytes_sent) ? ti.tcpi_bytes_sent : ti.tcpi_bytes_acked;
    return 0;
}

/* The slow-request check. h2o restarts its idle timeout on every byte received, so a client can hold
 * a partial request (head or body) open for ever by trickling bytes. A connection with no request in
 * flight and none started or finished since the previous sweep is watched; it is closed once, for
 * SFF_BODY_TIMEOUT_MS, bytes kept arriving at under SLOW_FLOOR_BYTES_PER_S that the server had not
 * answered in kind a sweep later. A PING is answered by a PING of the same size at once; an idle
 * connection sends nothing and is left to h2o's idle timeout. */
static void check_slow(sff_worker_t *w, guard_conn_t *c, uint64_t now)
{
    uint64_t received, sent;
    if (c->in_flight != 0 || c->activity || tcp_bytes(c->sock, &received, &sent) != 0) {
        c->activity = 0;
        c->watch_since_ms = 0;
        return;
    }
    if (c->watch_since_ms == 0) {
        c->watch_since_ms = now;
        c->watch_received = c->prev_received = received;
        c->watch_sent = sent;
        return;
    }
    /* what arrived up to the previous sweep has had a sweep's time to be answered */
    uint64_t arrived = c->prev_received - c->watch_received, answered = sent - c->watch_sent, age = now - c->watch_since_ms;
    c->prev_received = received;
    if (arrived > answered && age >= w->config->body_timeout_ms && arrived < age * SLOW_FLOOR_BYTES_PER_S / 1000)
        condemn(c, SFF_METRIC_H2_SLOW_BODY, 0);
}

static void on_sweep(sff_timer_t *t)
{
    sff_worker_t *w = t->data;
    uint64_t now = sff_now_ms();
    if (trim_wanted) {
        trim_wanted = 0;
        malloc_trim(0);
    }
    for (h2o_linklist_t *l = conns.next; l != &conns; l = l->next) {
        guard_conn_t *c = H2O_STRUCT_FROM_MEMBER(guard_conn_t, link, l);
        if (!c->condemned)
            check_slow(w, c, now);
    }
    sff_timer_start(t, SWEEP_INTERVAL_MS);
}

size_t sff_guard_close_idle(void)
{
    for (h2o_linklist_t *l = conns.next; l != &conns; l = l->next) {
        guard_conn_t *c = H2O_STRUCT_FROM_MEMBER(guard_conn_t, link, l);
        uint64_t received, sent;
        if (c->in_flight != 0 || tcp_bytes(c->sock, &received, &sent) != 0) {
            c->drain_received = UINT64_MAX;
            continue;
        }
        /* nothing in flight, and nothing received since the previous look: no request is arriving */
        if (received == c->drain_received)
            shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
        c->drain_received = received;
    }
    return nconns;
}

void sff_guard_start(sff_worker_t *w)
{
    sff_timer_init(&sweep_timer, on_sweep, w);
    sff_timer_start(&sweep_timer, SWEEP_INTERVAL_MS);
}
