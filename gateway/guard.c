#include <malloc.h>
#include <stdlib.h>
#include <sys/socket.h>
#include "error.h"
#include "guard.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "timer.h"

#define RESET_WINDOW_MS 10000
#define SLOW_FLOOR_BYTES_PER_S 1024

typedef struct st_guard_conn_t {
    h2o_socket_t *sock;
    h2o_linklist_t link;
    uint64_t window_start_ms;
    uint32_t early_resets;
    size_t header_bytes; /* of requests not finished */
    uint64_t last_dispatch_ms;
    size_t bytes_at_dispatch;
    uint64_t pending_since_ms; /* 0 when no partial request is seen */
    size_t pending_bytes_start;
    int condemned;
} guard_conn_t;

static h2o_linklist_t conns = {&conns, &conns};
static size_t nconns;
static sff_timer_t sweep_timer;

static void on_sock_close(void *data)
{
    guard_conn_t *c = data;
    h2o_linklist_unlink(&c->link);
    nconns--;
    sff_metrics_connections_add(-1);
    if (c->condemned)
        malloc_trim(0); /* hand the memory an abusive client made us allocate back to the system */
    free(c);
}

void sff_guard_on_accept(sff_worker_t *w, h2o_socket_t *sock)
{
    (void)w;
    guard_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->sock = sock;
    c->window_start_ms = c->last_dispatch_ms = sff_now_ms();
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

/* Closes the connection: h2o sees end-of-stream on its next read and frees its streams. */
static void condemn(guard_conn_t *c, sff_metric_h2_t why)
{
    static const char *names[] = {"too many streams reset before their response", "too many decoded header bytes",
                                  "a request that did not progress"};
    if (c->condemned)
        return;
    c->condemned = 1;
    sff_metrics_h2_abuse(why);
    sff_log_warn("closing an abusive connection: %s", names[why]);
    shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
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
    if (c->condemned) {
        sff_http_send_error(req, SFF_EOVERLOADED, "the connection is being closed", NULL);
        return 1;
    }
    uint64_t now = sff_now_ms();
    c->last_dispatch_ms = now;
    c->bytes_at_dispatch = c->sock->bytes_read;
    c->pending_since_ms = 0;
    size_t hb = header_bytes(req);
    if (hb > w->config->max_header_bytes) {
        if (req->version >= 0x200)
            condemn(c, SFF_METRIC_H2_HEADERS);
        sff_http_send_error(req, SFF_EHEADERS, NULL, NULL);
        return 1;
    }
    c->header_bytes += hb;
    if (c->header_bytes > 8 * w->config->max_header_bytes) {
        condemn(c, SFF_METRIC_H2_HEADERS);
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
    size_t hb = header_bytes(req);
    if (hb <= w->config->max_header_bytes)
        c->header_bytes = c->header_bytes > hb ? c->header_bytes - hb : 0;
    if (req->version < 0x200 || req->res.status != 0)
        return;
    uint64_t now = sff_now_ms();
    if (now - c->window_start_ms > RESET_WINDOW_MS) {
        c->window_start_ms = now;
        c->early_resets = 0;
    }
    if (++c->early_resets > w->config->h2_max_resets)
        condemn(c, SFF_METRIC_H2_RESETS);
}

static void on_sweep(sff_timer_t *t)
{
    sff_worker_t *w = t->data;
    uint64_t now = sff_now_ms();
    for (h2o_linklist_t *l = conns.next; l != &conns; l = l->next) {
        guard_conn_t *c = H2O_STRUCT_FROM_MEMBER(guard_conn_t, link, l);
        if (c->condemned)
            continue;
        size_t read = c->sock->bytes_read;
        if (read <= c->bytes_at_dispatch) {
            c->pending_since_ms = 0;
            continue;
        }
        if (c->pending_since_ms == 0) {
            c->pending_since_ms = now;
            c->pending_bytes_start = c->bytes_at_dispatch;
            continue;
        }
        uint64_t age = now - c->pending_since_ms;
        if (age >= w->config->body_timeout_ms && read - c->pending_bytes_start < age * SLOW_FLOOR_BYTES_PER_S / 1000)
            condemn(c, SFF_METRIC_H2_SLOW_BODY);
    }
    sff_timer_start(t, 1000);
}

void sff_guard_start(sff_worker_t *w)
{
    sff_timer_init(&sweep_timer, on_sweep, w);
    sff_timer_start(&sweep_timer, 1000);
}
