/*
 * load.c - the load client of sff's integration tests: one thread, epoll, and a number of keep-alive HTTP/1.1
 * connections each sending the same request again as soon as the response to the previous one is in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "lib/client.h"

/* How long one request may take; how long a connection waits before it connects again after a failure; how often
 * the deadlines are checked. */
#define REQUEST_TIMEOUT_US 10000000
#define BACKOFF_US 10000
#define TICK_MS 10

enum {
    C_IDLE,       /* nothing to do: no connection and no request */
    C_BACKOFF,    /* waiting until wake_at to start the next request */
    C_CONNECTING, /* the connection for the current request is being set up */
    C_WRITING,    /* the request is being written */
    C_READING,    /* the response is being read */
};

struct conn {
    struct loader *loader;
    int fd; /* -1 when there is no connection */
    int state;
    uint32_t events;    /* what fd is registered for in epoll */
    size_t written;     /* bytes of the request written */
    uint64_t served;    /* responses read on this connection (fd) */
    int retried;        /* the current request was sent again after a stale keep-alive connection closed */
    int got_bytes;      /* bytes of the current response have arrived */
    int64_t started_us; /* when the current request was issued */
    int64_t wake_at_us; /* the deadline of the current request, or the end of the back-off */
    tc_http1_parser_t parser;
    tc_response_t res;
};

struct loader {
    tc_load_t *load;
    int ep;
    char *req;
    size_t req_len;
    int head; /* the method is HEAD */
    struct conn *conns;
    int nconns;
    uint64_t issued, completed;
    char *buf;
    size_t buf_size;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Nonzero when no more requests are to be issued. */
static int all_issued(struct loader *l)
{
    return l->load->requests != 0 && l->issued >= l->load->requests;
}

/* Registers fd for exactly events, changing the registration only when it differs. */
static int watch(struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    if (c->events == events)
        return 0;
    if (epoll_ctl(c->loader->ep, c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev) != 0)
        return -1;
    c->events = events;
    return 0;
}

static void close_conn(struct conn *c)
{
    if (c->fd >= 0) {
        close(c->fd); /* also removes it from epoll */
        c->fd = -1;
    }
    c->events = 0;
    c->served = 0;
    tc_http1_parser_dispose(&c->parser);
}

static void start_request(struct conn *c);
static void send_request(struct conn *c);

/* Counts the current request as failed (no response) and backs off before the next one. */
static void fail_request(struct conn *c)
{
    struct loader *l = c->loader;

    close_conn(c);
    ++l->load->failed;
    ++l->load->status_counts[0];
    ++l->completed;
    c->state = C_BACKOFF;
    c->wake_at_us = now_us() + BACKOFF_US;
}

/* The connection broke. When it was a reused keep-alive connection that the server closed before answering at all,
 * the server never saw the request (it closed an idle connection as the request went out): it is sent once more on a
 * new connection. Anything else fails the request. */
static void on_conn_error(struct conn *c)
{
    if (c->served != 0 && !c->got_bytes && !c->retried) {
        close_conn(c);
        c->retried = 1;
        send_request(c);
    } else {
        fail_request(c);
    }
}

/* A response is complete; extra bytes after it (a response nobody asked for) close the connection. */
static void on_response(struct conn *c, int extra)
{
    struct loader *l = c->loader;
    tc_load_t *load = l->load;
    int status = c->res.status, cls = status / 100;
    double ms = (double)(now_us() - c->started_us) / 1000.0;

    if (ms > load->latency_max_ms)
        load->latency_max_ms = ms;
    if (cls < 1 || cls > 5)
        cls = 0;
    ++load->status_counts[cls];
    if (cls == 2)
        ++load->ok;
    else
        ++load->failed;
    ++l->completed;
    ++c->served;
    if (c->parser.close || extra) {
        close_conn(c);
    } else {
        tc_http1_parser_dispose(&c->parser);
    }
    start_request(c);
}

/* Issues the next request on c, or leaves c idle when all have been issued. */
static void start_request(struct conn *c)
{
    struct loader *l = c->loader;

    if (all_issued(l)) {
        close_conn(c);
        c->state = C_IDLE;
        return;
    }
    ++l->issued;
    c->started_us = now_us();
    c->wake_at_us = c->started_us + REQUEST_TIMEOUT_US;
    c->retried = 0;
    send_request(c);
}

static void try_write(struct conn *c)
{
    struct loader *l = c->loader;

    while (c->written < l->req_len) {
        ssize_t n = send(c->fd, l->req + c->written, l->req_len - c->written, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (watch(c, EPOLLIN | EPOLLOUT) != 0)
                    on_conn_error(c);
                return;
            }
            on_conn_error(c);
            return;
        }
        c->written += (size_t)n;
    }
    c->state = C_READING;
    if (watch(c, EPOLLIN) != 0)
        on_conn_error(c);
}

/* (Re)sends the current request, connecting first when there is no connection. */
static void send_request(struct conn *c)
{
    c->written = 0;
    c->got_bytes = 0;
    tc_http1_parser_init(&c->parser, c->loader->head ? "HEAD" : "GET", &c->res, 0);

    if (c->fd < 0) {
        struct sockaddr_in addr = {
            .sin_family = AF_INET, .sin_port = htons(c->loader->load->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int one = 1;
        if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
            fail_request(c);
            return;
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
            if (errno != EINPROGRESS) {
                fail_request(c);
                return;
            }
            c->state = C_CONNECTING;
            if (watch(c, EPOLLOUT) != 0)
                fail_request(c);
            return;
        }
    }
    c->state = C_WRITING;
    try_write(c);
}

static void on_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        fail_request(c);
        return;
    }
    c->state = C_WRITING;
    try_write(c);
}

/* Reads while the request is being written too: the server may answer early, or close. */
static void on_readable(struct conn *c)
{
    struct loader *l = c->loader;

    for (;;) {
        ssize_t n = recv(c->fd, l->buf, l->buf_size, 0), r;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            n = 0; /* a reset: whatever arrived may still be a whole response */
        }
        if (n > 0)
            c->got_bytes = 1;
        r = tc_http1_parser_feed(&c->parser, l->buf, (size_t)n);
        if (r >= 0) {
            /* An answer before the whole request went out (say, a 413) leaves the connection unusable. */
            on_response(c, n == 0 || r < n || c->written < l->req_len);
            return;
        }
        if (r == -1 || n == 0) {
            on_conn_error(c);
            return;
        }
    }
}

/* Fails the requests that are past their deadline and starts those whose back-off is over. */
static void check_deadlines(struct loader *l)
{
    int64_t now = now_us();

    for (int i = 0; i < l->nconns; ++i) {
        struct conn *c = l->conns + i;
        if (c->state == C_IDLE || now < c->wake_at_us)
            continue;
        if (c->state == C_BACKOFF)
            start_request(c);
        else
            fail_request(c);
    }
}

/* The request as bytes: Host and, with a body, Content-Length are added. */
static int build_request(struct loader *l)
{
    tc_load_t *load = l->load;
    const char *method = load->method != NULL ? load->method : "GET", *path = load->path != NULL ? load->path : "/";
    const char *headers = load->headers != NULL ? load->headers : "";
    size_t body_len = load->body != NULL ? strlen(load->body) : 0, hlen = strlen(headers);
    const char *crlf = hlen != 0 && headers[hlen - 1] != '\n' ? "\r\n" : "";
    char length[48] = "";
    int n;

    if (load->body != NULL)
        snprintf(length, sizeof(length), "Content-Length: %zu\r\n", body_len);
    n = snprintf(NULL, 0, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s%s\r\n", method, path, load->port, headers, crlf, length);
    if (n < 0 || (l->req = malloc((size_t)n + body_len + 1)) == NULL)
        return -1;
    snprintf(l->req, (size_t)n + 1, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s%s\r\n", method, path, load->port, headers, crlf,
             length);
    memcpy(l->req + n, load->body != NULL ? load->body : "", body_len);
    l->req_len = (size_t)n + body_len;
    l->head = strcasecmp(method, "HEAD") == 0;
    return 0;
}

/* Fewer connections than requests are opened when requests is the smaller. Requests still in flight when the time
 * is up are not counted. */
int tc_load_run(tc_load_t *load)
{
    struct loader l = {.load = load, .ep = -1, .buf_size = 65536};
    struct epoll_event events[256];
    int ret = -1;

    load->ok = load->failed = 0;
    memset(load->status_counts, 0, sizeof(load->status_counts));
    load->elapsed_s = load->latency_max_ms = 0;
    if (load->connections <= 0 || (load->requests == 0 && load->seconds <= 0))
        return -1;
    l.nconns = load->connections;
    if (load->requests != 0 && (uint64_t)l.nconns > load->requests)
        l.nconns = (int)load->requests;
    if (build_request(&l) != 0 || (l.buf = malloc(l.buf_size)) == NULL ||
        (l.conns = calloc((size_t)l.nconns, sizeof(*l.conns))) == NULL || (l.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        goto Exit;

    int64_t start = now_us(), last_check = start, end = load->seconds > 0 ? start + (int64_t)(load->seconds * 1e6) : 0;
    for (int i = 0; i < l.nconns; ++i) {
        l.conns[i].loader = &l;
        l.conns[i].fd = -1;
        start_request(l.conns + i);
    }
    while (!(load->requests != 0 && l.completed >= load->requests)) {
        int n = epoll_wait(l.ep, events, sizeof(events) / sizeof(events[0]), TICK_MS);
        if (n < 0 && errno != EINTR)
            goto Exit;
        for (int i = 0; i < n; ++i) {
            struct conn *c = events[i].data.ptr;
            /* One handler per event: a read drains the socket, so a pending write gets its turn at the next wait. */
            if (c->state == C_CONNECTING)
                on_connected(c);
            else if ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
                on_readable(c);
            else if (c->state == C_WRITING)
                try_write(c);
        }
        int64_t now = now_us();
        if (end != 0 && now >= end)
            break;
        if (now - last_check >= TICK_MS * 1000) {
            check_deadlines(&l);
            last_check = now;
        }
    }
    load->elapsed_s = (double)(now_us() - start) / 1e6;
    ret = 0;

Exit:
    if (l.conns != NULL)
        for (int i = 0; i < l.nconns; ++i)
            close_conn(l.conns + i);
    if (l.ep >= 0)
        close(l.ep);
    free(l.conns);
    free(l.buf);
    free(l.req);
    return ret;
}

/* ---- on a thread -------------------------------------------------------------------------------- */

/* The loads running on threads, so that tc_load_join() finds the thread of a load. */
struct load_thread {
    tc_load_t *load;
    pthread_t tid;
    int ret;
    struct load_thread *next;
};

static pthread_mutex_t threads_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct load_thread *threads;

static void *load_main(void *arg)
{
    struct load_thread *t = arg;
    t->ret = tc_load_run(t->load);
    return NULL;
}

int tc_load_start(tc_load_t *load)
{
    struct load_thread *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return -1;
    t->load = load;
    pthread_mutex_lock(&threads_mutex);
    if (pthread_create(&t->tid, NULL, load_main, t) != 0) {
        pthread_mutex_unlock(&threads_mutex);
        free(t);
        return -1;
    }
    t->next = threads;
    threads = t;
    pthread_mutex_unlock(&threads_mutex);
    return 0;
}

/* Returns what tc_load_run() returned, or -1 when load was not started. */
int tc_load_join(tc_load_t *load)
{
    struct load_thread **p, *t = NULL;
    int ret;

    pthread_mutex_lock(&threads_mutex);
    for (p = &threads; *p != NULL; p = &(*p)->next) {
        if ((*p)->load == load) {
            t = *p;
            *p = t->next;
            break;
        }
    }
    pthread_mutex_unlock(&threads_mutex);
    if (t == NULL)
        return -1;
    pthread_join(t->tid, NULL);
    ret = t->ret;
    free(t);
    return ret;
}
