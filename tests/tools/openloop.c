/*
 * openloop - the load client of the Express comparison (bench/compare.sh), and the small measuring
 * helpers it needs. Prints `key value` lines.
 *
 * Load (HTTP/1.1, one thread, epoll, keep-alive connections, no pipelining):
 *
 *     openloop -p PORT -f REQUESTS [-r RATE] [-d SECONDS] [-c CONNECTIONS] [-g GRACE_S]
 *              [-a bearer|cookie] [-e EXPECT] [-H 'Name: value'] [-s SRC_BASE -n SRC_COUNT] [--host IP]
 *
 *   REQUESTS has one request per line, `METHOD<TAB>PATH<TAB>TOKEN<TAB>BODY` ("-" for no token or no
 *   body); the requests are sent in that order, round and round. A token goes in
 *   `Authorization: Bearer` (-a cookie: in the cookie jwtToken); a body is sent as JSON.
 *
 *   With -r RATE (requests/s) the load is open-loop: request i is due at t0 + i/RATE whatever the
 *   answers do, goes out on the first free connection, and its latency runs from that scheduled
 *   time, not from when it could be sent, so a server that stalls is charged for every request that
 *   waited behind the stall (no coordinated omission). Requests still unanswered GRACE_S (2) after
 *   the end count as errors ("unfinished"). Without -r, each connection sends its next request
 *   when the previous one is answered (closed loop; latency from the send).
 *   -e EXPECT: an answer whose body does not contain EXPECT counts as an error ("unexpected").
 *   -s/-n: connection i binds the source address SRC_BASE + (i mod SRC_COUNT) (127.x.y.z), for
 *   servers that limit per client address.
 *
 *   Latencies go into a log-bucketed histogram (64 buckets per power of two: within 1.6 %).
 *   Output: requests, ok, errors (= socket + non2xx + unexpected + unfinished, each also printed),
 *   connect_errors (failed connects, retried: not requests), rate (answers per second),
 *   target_rate, duration_s, connections, mean_ms, p50_ms, p90_ms, p99_ms, p999_ms, max_ms.
 *
 * Helpers:
 *
 *     openloop --wait200 -p PORT [-u PATH] [-t TIMEOUT_S]
 *         polls GET PATH (/_health) every 200 us until a 200; prints first200_us (CLOCK_REALTIME,
 *         microseconds: compare with bash's $EPOCHREALTIME) and attempts.
 *     openloop --procs PID
 *         PID and all its descendants now: procs, cpu_s (utime+stime), cpu_children_s (cutime+cstime:
 *         the CPU of their children that ended and were waited for), rss_kib (sum of VmRSS),
 *         hwm_kib (sum of VmHWM), pss_kib (sum of Pss: shared pages divided among their users).
 *     openloop --sample PID [-i INTERVAL_MS]
 *         samples PID's process tree every INTERVAL_MS (100) until SIGTERM, SIGINT or PID exits;
 *         prints peak_rss_kib (the largest sum of VmRSS over the tree), peak_pss_kib (the same for
 *         Pss), cpu_s (CPU-seconds the tree used meanwhile, processes that came or went included),
 *         max_procs, samples.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- time ----------------------------------------------------------------------------------- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the histogram -------------------------------------------------------------------------- */

#define SUB_BITS 6
#define SUB (1 << SUB_BITS)
#define NBUCKETS (2 * SUB + 58 * SUB)

typedef struct {
    uint64_t counts[NBUCKETS];
    uint64_t n, max;
    double sum;
} hist_t;

static int bucket_of(uint64_t v)
{
    if (v < 2 * SUB)
        return (int)v;
    int msb = 63 - __builtin_clzll(v), shift = msb - SUB_BITS;
    int idx = 2 * SUB + (shift - 1) * SUB + (int)((v >> shift) - SUB);
    return idx < NBUCKETS ? idx : NBUCKETS - 1;
}

static uint64_t value_of(int idx)
{
    if (idx < 2 * SUB)
        return (uint64_t)idx;
    int shift = (idx - 2 * SUB) / SUB + 1;
    uint64_t sub = (uint64_t)((idx - 2 * SUB) % SUB + SUB), lo = sub << shift, hi = ((sub + 1) << shift) - 1;
    return lo + (hi - lo) / 2;
}

static void hist_add(hist_t *h, uint64_t v)
{
    h->counts[bucket_of(v)]++;
    h->n++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
}

static double hist_pct_ms(const hist_t *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->n), seen = 0; /* the rank, rounded up (no libm) */
    if ((double)want < q * (double)h->n)
        want++;
    if (want == 0)
        want = 1;
    for (int i = 0; i < NBUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t v = value_of(i);
            return (double)(v < h->max ? v : h->max) / 1e6;
        }
    }
    return (double)h->max / 1e6;
}

/* ---- requests ------------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
} request_t;

static request_t *requests;
static size_t nrequests;

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap)
            *cap = *cap ? *cap * 2 : 256;
        if ((*buf = realloc(*buf, *cap)) == NULL) {
            perror("realloc");
            exit(2);
        }
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void appends(char **buf, size_t *len, size_t *cap, const char *s)
{
    append(buf, len, cap, s, strlen(s));
}

static int load_requests(const char *path, const char *host, int port, int cookie, char **headers, int nheaders)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        char *field[4] = {line, NULL, NULL, NULL};
        for (int i = 1; i < 4; i++) {
            char *tab = field[i - 1] != NULL ? strchr(field[i - 1], '\t') : NULL;
            if (tab != NULL) {
                *tab = '\0';
                field[i] = tab + 1;
            }
        }
        if (field[1] == NULL) {
            fprintf(stderr, "%s: a line without a path\n", path);
            fclose(f);
            free(line);
            return -1;
        }
        const char *token = field[2] != NULL && strcmp(field[2], "-") != 0 ? field[2] : NULL;
        const char *body = field[3] != NULL && strcmp(field[3], "-") != 0 ? field[3] : NULL;
        char *b = NULL, tmp[128];
        size_t bl = 0, bc = 0;
        appends(&b, &bl, &bc, field[0]);
        appends(&b, &bl, &bc, " ");
        appends(&b, &bl, &bc, field[1]);
        snprintf(tmp, sizeof(tmp), " HTTP/1.1\r\nHost: %s:%d\r\n", host, port);
        appends(&b, &bl, &bc, tmp);
        for (int i = 0; i < nheaders; i++) {
            appends(&b, &bl, &bc, headers[i]);
            appends(&b, &bl, &bc, "\r\n");
        }
        if (token != NULL) {
            appends(&b, &bl, &bc, cookie ? "Cookie: jwtToken=" : "Authorization: Bearer ");
            appends(&b, &bl, &bc, token);
            appends(&b, &bl, &bc, "\r\n");
        }
        if (body != NULL) {
            snprintf(tmp, sizeof(tmp), "Content-Type: application/json\r\nContent-Length: %zu\r\n", strlen(body));
            appends(&b, &bl, &bc, tmp);
        }
        appends(&b, &bl, &bc, "\r\n");
        if (body != NULL)
            appends(&b, &bl, &bc, body);
        if (nrequests == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            if ((requests = realloc(requests, alloc * sizeof(*requests))) == NULL) {
                perror("realloc");
                exit(2);
            }
        }
        requests[nrequests].data = b;
        requests[nrequests].len = bl;
        nrequests++;
    }
    free(line);
    fclose(f);
    if (nrequests == 0) {
        fprintf(stderr, "%s: no requests\n", path);
        return -1;
    }
    return 0;
}

/* ---- responses ------------------------------------------------------------------------------ */

enum { BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

/* The end of a chunked body starting at p (its length), or 0 while incomplete, -1 when malformed. */
static long chunked_end(const char *p, size_t len)
{
    size_t off = 0;
    for (;;) {
        const char *eol = memmem(p + off, len - off, "\r\n", 2);
        if (eol == NULL)
            return 0;
        char *endp;
        unsigned long size = strtoul(p + off, &endp, 16);
        if (endp == p + off)
            return -1;
        off = (size_t)(eol - p) + 2;
        if (size == 0) {
            /* trailers, then an empty line */
            for (;;) {
                const char *e = memmem(p + off, len - off, "\r\n", 2);
                if (e == NULL)
                    return 0;
                if (e == p + off)
                    return (long)(off + 2);
                off = (size_t)(e - p) + 2;
            }
        }
        if (len - off < size + 2)
            return 0;
        off += size + 2;
    }
}

/* ---- connections ---------------------------------------------------------------------------- */

enum { C_DOWN, C_CONNECTING, C_IDLE, C_BUSY };

typedef struct {
    int fd, state, want_out;
    int64_t retry_at;     /* C_DOWN: when to connect again */
    const request_t *req; /* C_BUSY */
    size_t woff;
    int64_t start; /* the scheduled (open loop) or actual (closed loop) send time */
    char *rbuf;
    size_t rlen, rcap;
    /* the response being read */
    size_t head_len;
    int status, body_mode, close_after;
    size_t body_len;
} conn_t;

static struct {
    int epfd, port, nconns, open_loop, cookie;
    struct in_addr host, src_base;
    int src_count;
    double rate;
    const char *expect;
    conn_t *conns;
    int *idle, nidle;
    size_t next_req;
    hist_t hist;
    uint64_t ok, socket_errors, connect_errors, non2xx, unexpected, completed;
    int64_t last_done;
} L;

static void conn_events(conn_t *c)
{
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(L.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_close(conn_t *c, int64_t now, int64_t retry_delay)
{
    if (c->state == C_IDLE) { /* off the free list */
        for (int i = 0; i < L.nidle; i++) {
            if (L.idle[i] == (int)(c - L.conns)) {
                L.idle[i] = L.idle[--L.nidle];
                break;
            }
        }
    }
    if (c->fd >= 0) {
        epoll_ctl(L.epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_DOWN;
    c->retry_at = now + retry_delay;
    c->rlen = 0;
    c->req = NULL;
}

static void conn_open(conn_t *c, int64_t now)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        L.connect_errors++;
        c->state = C_DOWN;
        c->retry_at = now + 100000000;
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (L.src_count > 0) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(ntohl(L.src_base.s_addr) + (uint32_t)((c - L.conns) % L.src_count));
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            perror("bind");
            exit(2);
        }
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)L.port), .sin_addr = L.host};
    c->fd = fd;
    c->rlen = 0;
    int ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    c->state = C_CONNECTING;
    c->want_out = 1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(L.epfd, EPOLL_CTL_ADD, fd, &ev);
    if (ret != 0 && errno != EINPROGRESS) {
        L.connect_errors++;
        conn_close(c, now, 10000000);
    }
}

static void conn_write(conn_t *c, int64_t now)
{
    while (c->woff < c->req->len) {
        ssize_t n = write(c->fd, c->req->data + c->woff, c->req->len - c->woff);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!c->want_out) {
                c->want_out = 1;
                conn_events(c);
            }
            return;
        }
        L.socket_errors++;
        L.completed++;
        conn_close(c, now, 1000000);
        return;
    }
    if (c->want_out) {
        c->want_out = 0;
        conn_events(c);
    }
}

static void conn_send(conn_t *c, int64_t start, int64_t now)
{
    c->req = &requests[L.next_req++ % nrequests];
    c->woff = 0;
    c->start = start;
    c->state = C_BUSY;
    c->head_len = 0;
    conn_write(c, now);
}

static void make_idle(conn_t *c)
{
    c->state = C_IDLE;
    L.idle[L.nidle++] = (int)(c - L.conns);
}

/* A non-blocking connect finished: the connection is idle, or down until its retry. */
static void connect_done(conn_t *c, int64_t now)
{
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        L.connect_errors++;
        conn_close(c, now, 10000000);
        return;
    }
    c->want_out = 0;
    conn_events(c);
    make_idle(c);
}

/* One answer is complete: record it; the connection becomes free (or is closed). */
static void conn_done(conn_t *c, size_t used, int64_t now, int eof)
{
    L.completed++;
    hist_add(&L.hist, (uint64_t)(now - c->start));
    L.last_done = now;
    int good = c->status >= 200 && c->status < 300;
    if (!good) {
        L.non2xx++;
    } else if (L.expect != NULL && memmem(c->rbuf + c->head_len, used - c->head_len, L.expect, strlen(L.expect)) == NULL) {
        L.unexpected++;
        good = 0;
    }
    if (good)
        L.ok++;
    if (used < c->rlen)
        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
    c->rlen -= used;
    c->req = NULL;
    if (eof || c->close_after)
        conn_close(c, now, 0);
    else
        make_idle(c);
}

/* Parses what has been read; completes the answer when it is all there. */
static void conn_parse(conn_t *c, int64_t now, int eof)
{
    if (c->state != C_BUSY) {
        if (c->rlen > 0) { /* bytes nobody asked for */
            L.socket_errors++;
            conn_close(c, now, 1000000);
        } else if (eof) { /* the server closed an idle connection: not an error */
            conn_close(c, now, 0);
        }
        return;
    }
    if (c->head_len == 0) {
        char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        if (end == NULL) {
            if (eof) {
                L.socket_errors++;
                L.completed++;
                conn_close(c, now, 1000000);
            }
            return;
        }
        c->head_len = (size_t)(end - c->rbuf) + 4;
        c->status = 0;
        if (c->rlen >= 12 && strncmp(c->rbuf, "HTTP/1.", 7) == 0)
            c->status = atoi(c->rbuf + 9);
        c->body_mode = BODY_CLOSE;
        c->body_len = 0;
        c->close_after = strncmp(c->rbuf, "HTTP/1.0", 8) == 0;
        for (char *p = memmem(c->rbuf, c->head_len, "\r\n", 2); p != NULL && p + 2 < end + 2;) {
            p += 2;
            char *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
            if (eol == NULL)
                break;
            size_t n = (size_t)(eol - p);
            if (n > 15 && strncasecmp(p, "content-length:", 15) == 0) {
                c->body_mode = BODY_LENGTH;
                c->body_len = strtoul(p + 15, NULL, 10);
            } else if (n > 18 && strncasecmp(p, "transfer-encoding:", 18) == 0 && memmem(p, n, "chunked", 7) != NULL) {
                c->body_mode = BODY_CHUNKED;
            } else if (n > 11 && strncasecmp(p, "connection:", 11) == 0) {
                if (memmem(p, n, "close", 5) != NULL)
                    c->close_after = 1;
                else if (memmem(p, n, "keep-alive", 10) != NULL)
                    c->close_after = 0;
            }
            p = eol;
        }
        if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200)) {
            c->body_mode = BODY_LENGTH;
            c->body_len = 0;
        }
    }
    switch (c->body_mode) {
    case BODY_LENGTH:
        if (c->rlen - c->head_len >= c->body_len)
            conn_done(c, c->head_len + c->body_len, now, 0);
        else if (eof) {
            L.socket_errors++;
            L.completed++;
            conn_close(c, now, 1000000);
        }
        break;
    case BODY_CHUNKED: {
        long n = chunked_end(c->rbuf + c->head_len, c->rlen - c->head_len);
        if (n > 0)
            conn_done(c, c->head_len + (size_t)n, now, 0);
        else if (n < 0 || eof) {
            L.socket_errors++;
            L.completed++;
            conn_close(c, now, 1000000);
        }
        break;
    }
    default:
        if (eof)
            conn_done(c, c->rlen, now, 1);
        break;
    }
}

static void conn_read(conn_t *c, int64_t now)
{
    for (;;) {
        if (c->rcap - c->rlen < 16384) {
            c->rcap = c->rcap ? c->rcap * 2 : 32768;
            if ((c->rbuf = realloc(c->rbuf, c->rcap)) == NULL) {
                perror("realloc");
                exit(2);
            }
        }
        size_t room = c->rcap - c->rlen - 1;
        ssize_t n = read(c->fd, c->rbuf + c->rlen, room);
        if (n > 0) {
            c->rlen += (size_t)n;
            if ((size_t)n < room) /* drained */
                break;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        conn_parse(c, now, 1); /* EOF or an error: a read-to-close body ends, anything else failed */
        if (c->state != C_DOWN)
            conn_close(c, now, n == 0 ? 0 : 1000000);
        return;
    }
    conn_parse(c, now, 0);
}

static int64_t sched_at(int64_t t0, size_t i)
{
    return t0 + (int64_t)((double)i * 1e9 / L.rate);
}

static int run_load(int argc, char **argv)
{
    const char *file = NULL, *host = "127.0.0.1", *src = NULL;
    double duration = 10, grace = 2;
    char *headers[32];
    int nheaders = 0, opt;
    L.nconns = 64;
    static const struct option longopts[] = {{"host", required_argument, NULL, 'h'}, {0, 0, 0, 0}};
    while ((opt = getopt_long(argc, argv, "p:f:r:d:c:g:a:e:H:s:n:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            L.port = atoi(optarg);
            break;
        case 'f':
            file = optarg;
            break;
        case 'r':
            L.rate = atof(optarg);
            break;
        case 'd':
            duration = atof(optarg);
            break;
        case 'c':
            L.nconns = atoi(optarg);
            break;
        case 'g':
            grace = atof(optarg);
            break;
        case 'a':
            L.cookie = strcmp(optarg, "cookie") == 0;
            break;
        case 'e':
            L.expect = optarg;
            break;
        case 'H':
            if (nheaders < 32)
                headers[nheaders++] = optarg;
            break;
        case 's':
            src = optarg;
            break;
        case 'n':
            L.src_count = atoi(optarg);
            break;
        case 'h':
            host = optarg;
            break;
        default:
            return 2;
        }
    }
    if (L.port <= 0 || file == NULL || L.nconns <= 0 || duration <= 0 || inet_pton(AF_INET, host, &L.host) != 1) {
        fprintf(stderr, "usage: openloop -p PORT -f REQUESTS [-r RATE] [-d S] [-c CONNS] ... (see the source)\n");
        return 2;
    }
    if (src != NULL && (inet_pton(AF_INET, src, &L.src_base) != 1 || L.src_count <= 0)) {
        fprintf(stderr, "openloop: -s needs an IPv4 address and -n a count\n");
        return 2;
    }
    if (src == NULL)
        L.src_count = 0;
    if (load_requests(file, host, L.port, L.cookie, headers, nheaders) != 0)
        return 2;
    L.open_loop = L.rate > 0;
    L.epfd = epoll_create1(EPOLL_CLOEXEC);
    L.conns = calloc((size_t)L.nconns, sizeof(conn_t));
    L.idle = calloc((size_t)L.nconns, sizeof(int));
    int64_t now = mono_ns();
    for (int i = 0; i < L.nconns; i++) {
        L.conns[i].fd = -1;
        conn_open(&L.conns[i], now);
    }
    /* connect everything first (up to a second): the schedule starts on warm connections */
    struct epoll_event evs[256];
    int64_t connect_deadline = now + 1000000000;
    while (L.nidle < L.nconns && (now = mono_ns()) < connect_deadline) {
        int n = epoll_wait(L.epfd, evs, 256, 10);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->state != C_CONNECTING)
                continue;
            connect_done(c, now);
        }
        for (int i = 0; i < L.nconns; i++)
            if (L.conns[i].state == C_DOWN && L.conns[i].retry_at <= now)
                conn_open(&L.conns[i], now);
    }
    L.connect_errors = 0; /* refused while the server was starting does not count */
    int64_t t0 = mono_ns(), end = t0 + (int64_t)(duration * 1e9), hard_end = end + (int64_t)(grace * 1e9);
    size_t total = L.open_loop ? (size_t)(L.rate * duration) : SIZE_MAX, issued = 0;
    L.next_req = 0;
    for (;;) {
        now = mono_ns();
        /* reconnect what is down */
        int64_t next_retry = INT64_MAX;
        for (int i = 0; i < L.nconns; i++) {
            conn_t *c = &L.conns[i];
            if (c->state == C_DOWN) {
                if (c->retry_at <= now && now < (L.open_loop ? hard_end : end))
                    conn_open(c, now);
                else if (c->retry_at < next_retry)
                    next_retry = c->retry_at;
            }
        }
        /* send what is due */
        if (L.open_loop) {
            size_t due = now >= t0 ? (size_t)((double)(now - t0) * L.rate / 1e9) + 1 : 0;
            if (due > total)
                due = total;
            while (issued < due && L.nidle > 0) {
                conn_t *c = &L.conns[L.idle[--L.nidle]];
                conn_send(c, sched_at(t0, issued), now);
                issued++;
            }
        } else if (now < end) {
            while (L.nidle > 0) {
                conn_t *c = &L.conns[L.idle[--L.nidle]];
                conn_send(c, now, now);
                issued++;
            }
        }
        int busy = 0;
        for (int i = 0; i < L.nconns; i++)
            busy += L.conns[i].state == C_BUSY;
        if (L.open_loop ? (issued == total && busy == 0) : (now >= end && busy == 0))
            break;
        if (now >= hard_end)
            break;
        /* wait for the next event, the next due request, a reconnect or the end */
        int64_t wake = hard_end;
        if (L.open_loop && issued < total && L.nidle > 0)
            wake = sched_at(t0, issued);
        else if (!L.open_loop && now < end)
            wake = end;
        if (next_retry < wake)
            wake = next_retry;
        int64_t wait_ns = wake > now ? wake - now : 0;
        struct timespec ts = {.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
        int n = epoll_pwait2(L.epfd, evs, 256, &ts, NULL);
        if (n < 0 && errno == ENOSYS) {
            int ms = (int)((wait_ns + 999999) / 1000000);
            n = epoll_wait(L.epfd, evs, 256, ms);
        }
        now = mono_ns();
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->state == C_CONNECTING) {
                connect_done(c, now);
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && c->state == C_BUSY)
                conn_write(c, now);
            if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                conn_read(c, now);
        }
    }
    now = mono_ns();
    uint64_t unfinished = 0;
    if (L.open_loop)
        unfinished = issued < total ? total - issued : 0;
    for (int i = 0; i < L.nconns; i++)
        if (L.conns[i].state == C_BUSY)
            unfinished++;
    double elapsed = (double)((L.last_done > end ? L.last_done : end) - t0) / 1e9;
    uint64_t errors = L.socket_errors + L.non2xx + L.unexpected + unfinished;
    printf("requests %llu\nok %llu\nerrors %llu\nsocket_errors %llu\nnon2xx %llu\nunexpected %llu\nunfinished %llu\n"
           "connect_errors %llu\n",
           (unsigned long long)(L.completed + unfinished), (unsigned long long)L.ok, (unsigned long long)errors,
           (unsigned long long)L.socket_errors, (unsigned long long)L.non2xx, (unsigned long long)L.unexpected,
           (unsigned long long)unfinished, (unsigned long long)L.connect_errors);
    printf("rate %.1f\ntarget_rate %.1f\nduration_s %.3f\nconnections %d\n", (double)L.hist.n / elapsed, L.rate, elapsed, L.nconns);
    printf("mean_ms %.3f\np50_ms %.3f\np90_ms %.3f\np99_ms %.3f\np999_ms %.3f\nmax_ms %.3f\n",
           L.hist.n ? L.hist.sum / (double)L.hist.n / 1e6 : 0.0, hist_pct_ms(&L.hist, 0.50), hist_pct_ms(&L.hist, 0.90),
           hist_pct_ms(&L.hist, 0.99), hist_pct_ms(&L.hist, 0.999), (double)L.hist.max / 1e6);
    return 0;
}

/* ---- --wait200 ------------------------------------------------------------------------------ */

static int run_wait200(int port, const char *path, double timeout_s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[512], buf[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path, port);
    int64_t deadline = mono_ns() + (int64_t)(timeout_s * 1e9);
    long attempts = 0;
    while (mono_ns() < deadline) {
        attempts++;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
            size_t got = 0;
            ssize_t n;
            while (got < 12 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
                got += (size_t)n;
            buf[got] = '\0';
            if (got >= 12 && strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 9, "200", 3) == 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                printf("first200_us %lld\nattempts %ld\n", (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, attempts);
                close(fd);
                return 0;
            }
        }
        if (fd >= 0)
            close(fd);
        struct timespec pause = {0, 200000};
        nanosleep(&pause, NULL);
    }
    printf("first200_us 0\nattempts %ld\n", attempts);
    return 1;
}

/* ---- --procs and --sample ------------------------------------------------------------------- */

typedef struct {
    int pid, ppid;
    uint64_t ticks;       /* utime + stime */
    uint64_t child_ticks; /* cutime + cstime: its children that ended and were waited for */
    uint64_t rss_kib, hwm_kib;
} proc_t;

/* Pss of a process (its private pages, plus its share of the pages it shares), in KiB. */
static uint64_t pss_kib(int pid);

static int read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return (int)n;
}

static long page_kib;

static uint64_t pss_kib(int pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
    if (read_file(path, buf, sizeof(buf)) < 0)
        return 0;
    char *p = strstr(buf, "\nPss:");
    return p != NULL ? strtoull(p + 5, NULL, 10) : 0;
}

/* Every process: pid, ppid, ticks, RSS. Returns how many (at most max). */
static int scan_procs(proc_t *out, int max, int with_hwm)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    struct dirent *e;
    int n = 0;
    char path[300], buf[1024];
    while ((e = readdir(d)) != NULL && n < max) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        if (read_file(path, buf, sizeof(buf)) < 0)
            continue;
        char *p = strrchr(buf, ')');
        if (p == NULL)
            continue;
        /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
         * cutime cstime */
        char state;
        int ppid;
        unsigned long skip, utime, stime;
        long cutime, cstime;
        if (sscanf(p + 2, "%c %d %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %ld %ld", &state, &ppid, &skip, &skip, &skip, &skip,
                   &skip, &skip, &skip, &skip, &skip, &utime, &stime, &cutime, &cstime) != 15)
            continue;
        proc_t *pr = &out[n];
        pr->pid = atoi(e->d_name);
        pr->ppid = ppid;
        pr->ticks = utime + stime;
        pr->child_ticks = (uint64_t)(cutime + cstime);
        pr->rss_kib = pr->hwm_kib = 0;
        snprintf(path, sizeof(path), "/proc/%s/statm", e->d_name);
        unsigned long size, resident;
        if (read_file(path, buf, sizeof(buf)) > 0 && sscanf(buf, "%lu %lu", &size, &resident) == 2)
            pr->rss_kib = resident * (uint64_t)page_kib;
        if (with_hwm) {
            snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
            if (read_file(path, buf, sizeof(buf)) > 0) {
                char *h = strstr(buf, "VmHWM:");
                if (h != NULL)
                    pr->hwm_kib = strtoull(h + 6, NULL, 10);
            }
        }
        n++;
    }
    closedir(d);
    return n;
}

/* Keeps root and its descendants, in place. Returns how many. */
static int keep_tree(proc_t *p, int n, int root)
{
    char *in = calloc((size_t)n, 1);
    int found = 0;
    for (int i = 0; i < n; i++)
        if (p[i].pid == root)
            in[i] = 1, found = 1;
    if (!found) {
        free(in);
        return 0;
    }
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < n; i++) {
            if (in[i])
                continue;
            for (int j = 0; j < n; j++) {
                if (in[j] && p[j].pid == p[i].ppid) {
                    in[i] = 1;
                    changed = 1;
                    break;
                }
            }
        }
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (in[i])
            p[k++] = p[i];
    free(in);
    return k;
}

#define MAX_PROCS 65536

static int run_procs(int root)
{
    proc_t *p = calloc(MAX_PROCS, sizeof(proc_t));
    int n = keep_tree(p, scan_procs(p, MAX_PROCS, 1), root);
    uint64_t ticks = 0, child_ticks = 0, rss = 0, hwm = 0, pss = 0;
    for (int i = 0; i < n; i++)
        ticks += p[i].ticks, child_ticks += p[i].child_ticks, rss += p[i].rss_kib, hwm += p[i].hwm_kib, pss += pss_kib(p[i].pid);
    double hz = (double)sysconf(_SC_CLK_TCK);
    printf("procs %d\ncpu_s %.2f\ncpu_children_s %.2f\nrss_kib %llu\nhwm_kib %llu\npss_kib %llu\n", n, (double)ticks / hz,
           (double)child_ticks / hz, (unsigned long long)rss, (unsigned long long)hwm, (unsigned long long)pss);
    free(p);
    return n > 0 ? 0 : 1;
}

static volatile sig_atomic_t stop_sampling;

static void on_stop(int sig)
{
    (void)sig;
    stop_sampling = 1;
}

typedef struct {
    int pid;
    uint64_t first, last; /* ticks when first and last seen */
} seen_t;

static int run_sample(int root, int interval_ms)
{
    struct sigaction sa = {.sa_handler = on_stop};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    proc_t *p = calloc(MAX_PROCS, sizeof(proc_t));
    seen_t *seen = NULL;
    size_t nseen = 0, cap = 0;
    uint64_t peak = 0, peak_pss = 0;
    int max_procs = 0, samples = 0;
    for (int first = 1;; first = 0) {
        int n = keep_tree(p, scan_procs(p, MAX_PROCS, 0), root);
        if (n == 0)
            break;
        uint64_t rss = 0, pss = 0;
        for (int i = 0; i < n; i++) {
            rss += p[i].rss_kib;
            pss += pss_kib(p[i].pid);
            size_t j = 0;
            while (j < nseen && seen[j].pid != p[i].pid)
                j++;
            if (j == nseen) {
                if (nseen == cap) {
                    cap = cap ? cap * 2 : 64;
                    seen = realloc(seen, cap * sizeof(*seen));
                }
                /* a process born meanwhile used all its ticks meanwhile */
                seen[nseen].pid = p[i].pid;
                seen[nseen].first = first ? p[i].ticks : 0;
                nseen++;
            }
            seen[j].last = p[i].ticks;
        }
        samples++;
        if (rss > peak)
            peak = rss;
        if (pss > peak_pss)
            peak_pss = pss;
        if (n > max_procs)
            max_procs = n;
        if (stop_sampling)
            break;
        struct timespec ts = {interval_ms / 1000, (long)(interval_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    uint64_t ticks = 0;
    for (size_t j = 0; j < nseen; j++)
        ticks += seen[j].last - seen[j].first;
    printf("peak_rss_kib %llu\npeak_pss_kib %llu\ncpu_s %.2f\nmax_procs %d\nsamples %d\n", (unsigned long long)peak,
           (unsigned long long)peak_pss, (double)ticks / (double)sysconf(_SC_CLK_TCK), max_procs, samples);
    free(seen);
    free(p);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    page_kib = sysconf(_SC_PAGESIZE) / 1024;
    if (argc >= 3 && strcmp(argv[1], "--procs") == 0)
        return run_procs(atoi(argv[2]));
    if (argc >= 3 && strcmp(argv[1], "--sample") == 0) {
        int interval = 100;
        if (argc >= 5 && strcmp(argv[3], "-i") == 0)
            interval = atoi(argv[4]);
        return run_sample(atoi(argv[2]), interval > 0 ? interval : 100);
    }
    if (argc >= 2 && strcmp(argv[1], "--wait200") == 0) {
        int port = 0, opt;
        const char *path = "/_health";
        double timeout = 10;
        optind = 2;
        while ((opt = getopt(argc, argv, "p:u:t:")) != -1) {
            switch (opt) {
            case 'p':
                port = atoi(optarg);
                break;
            case 'u':
                path = optarg;
                break;
            case 't':
                timeout = atof(optarg);
                break;
            default:
                return 2;
            }
        }
        if (port <= 0) {
            fprintf(stderr, "usage: openloop --wait200 -p PORT [-u PATH] [-t TIMEOUT_S]\n");
            return 2;
        }
        return run_wait200(port, path, timeout);
    }
    return run_load(argc, argv);
}
