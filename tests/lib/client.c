/*
 * client.c - the one-request clients of sff's integration tests: raw sockets, HTTP/1.1 with an
 * incremental response parser (which the load client shares), and h2c with prior knowledge and h2
 * over TLS with ALPN, both on libnghttp2's client session.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "lib/client.h"

/* How long one request may take, and how long a line of a response head may be. */
#define TIMEOUT_MS 10000
#define MAX_LINE (1024 * 1024)
/* The flow-control windows the HTTP/2 client opens, so that large responses need no WINDOW_UPDATE round trips. */
#define H2_WINDOW (16 * 1024 * 1024)

/* What res->headers and res->body point to while they are empty: tc_response_free() does not free it. */
static char empty_[1];

/* The parser's states; ST_STATUS .. ST_TRAILER read lines, the others bytes. */
enum {
    ST_STATUS,
    ST_HEADER,
    ST_CHUNK_SIZE,
    ST_CHUNK_END,
    ST_TRAILER,
    ST_BODY_LENGTH,
    ST_CHUNK_DATA,
    ST_BODY_EOF,
    ST_DONE,
    ST_ERROR,
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends n bytes to the string *s of *len bytes in a buffer of *cap bytes (0: *s is not malloc()ed yet), keeping it
 * NUL-terminated. Returns 0, or -1 when out of memory. */
static int append(char **s, size_t *len, size_t *cap, const void *src, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = *cap < 256 ? 256 : *cap;
        while (ncap < *len + n + 1)
            ncap *= 2;
        char *p = realloc(*cap == 0 ? NULL : *s, ncap);
        if (p == NULL)
            return -1;
        if (*cap == 0)
            p[0] = '\0';
        *s = p;
        *cap = ncap;
    }
    memcpy(*s + *len, src, n);
    *len += n;
    (*s)[*len] = '\0';
    return 0;
}

static int append_str(char **s, size_t *len, size_t *cap, const char *src)
{
    return append(s, len, cap, src, strlen(src));
}

/* Makes res an empty response: no status, empty headers and body. */
static void response_init(tc_response_t *res)
{
    memset(res, 0, sizeof(*res));
    res->headers = empty_;
    res->body = empty_;
}

/* Frees what res holds and makes it empty. */
static void response_reset(tc_response_t *res)
{
    tc_response_free(res);
    response_init(res);
}

/* Nonzero when the "Name: value\r\n" block has a header of that (case-insensitive) name. */
static int has_header(const char *block, const char *name)
{
    size_t name_len = strlen(name);
    for (const char *line = block; line != NULL && *line != '\0';) {
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':')
            return 1;
        if ((line = strchr(line, '\n')) != NULL)
            ++line;
    }
    return 0;
}

/* ---- raw sockets -------------------------------------------------------------------------------- */

int tc_free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    int fd, port = -1;

    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

int tc_connect(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = TIMEOUT_MS / 1000};
    int fd, one = 1;

    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Writes without SIGPIPE on sockets; when fd is non-blocking (or its send timeout expires) it waits up to the request
 * timeout for room. */
int tc_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                if (poll(&pfd, 1, TIMEOUT_MS) > 0)
                    continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- responses ---------------------------------------------------------------------------------- */

/* Looks at the first occurrence only; the buffer is per thread so that concurrent tests do not clobber each other. */
const char *tc_header(const tc_response_t *res, const char *name)
{
    static _Thread_local char buf[8192];
    size_t name_len = strlen(name);

    if (res == NULL || res->headers == NULL)
        return NULL;
    for (const char *line = res->headers; *line != '\0';) {
        const char *end = strchr(line, '\n');
        if (end == NULL)
            end = line + strlen(line);
        if ((size_t)(end - line) > name_len && line[name_len] == ':' && strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                ++v;
            size_t n = (size_t)(end - v);
            if (n >= sizeof(buf))
                n = sizeof(buf) - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return buf;
        }
        line = *end != '\0' ? end + 1 : end;
    }
    return NULL;
}

/* Leaves res zeroed; calling it twice is harmless. */
void tc_response_free(tc_response_t *res)
{
    if (res->headers != empty_)
        free(res->headers);
    if (res->body != empty_)
        free(res->body);
    memset(res, 0, sizeof(*res));
}

/* ---- the HTTP/1.1 response parser ----------------------------------------------------------------- */

void tc_http1_parser_init(tc_http1_parser_t *p, const char *method, tc_response_t *res, int store)
{
    memset(p, 0, sizeof(*p));
    response_init(res);
    p->res = res;
    p->store = store;
    p->no_body = method != NULL && strcasecmp(method, "HEAD") == 0;
    p->state = ST_STATUS;
    p->content_length = -1;
}

void tc_http1_parser_dispose(tc_http1_parser_t *p)
{
    free(p->line);
    p->line = NULL;
    p->line_len = p->line_cap = 0;
}

static int store_body(tc_http1_parser_t *p, const char *s, size_t n)
{
    if (!p->store || n == 0)
        return 0;
    return append(&p->res->body, &p->res->body_len, &p->body_cap, s, n);
}

/* Parses "HTTP/1.x SSS reason". Empty lines before it are skipped, as RFC 9112 asks of a robust client. */
static int on_status_line(tc_http1_parser_t *p, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ' || (n > 12 && s[12] != ' '))
        return -1;
    int status = 0;
    for (int i = 9; i < 12; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        status = status * 10 + (s[i] - '0');
    }
    if (status < 100)
        return -1;
    p->res->status = status;
    p->res->http_version = s[7] == '1' ? 11 : 10;
    p->close = s[7] == '0';
    p->state = ST_HEADER;
    return 0;
}

/* Nonzero when the comma-separated list s[0..n) has the token tok (case-insensitive). */
static int has_token(const char *s, size_t n, const char *tok, int last_only)
{
    size_t tok_len = strlen(tok);
    int found = 0;

    for (size_t i = 0; i < n;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            ++i;
        size_t start = i;
        while (i < n && s[i] != ',')
            ++i;
        size_t end = i;
        while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
            --end;
        if (end == start)
            continue;
        found = end - start == tok_len && strncasecmp(s + start, tok, tok_len) == 0;
        if (found && !last_only)
            return 1;
    }
    return found;
}

/* Decides how the body is framed once the head is complete; skips an interim response. */
static int on_head_end(tc_http1_parser_t *p)
{
    int status = p->res->status;

    if (status < 200 && status != 101) {
        p->res->status = 0;
        p->headers_len = 0;
        if (p->headers_cap != 0)
            p->res->headers[0] = '\0';
        p->content_length = -1;
        p->chunked = 0;
        p->close = 0;
        p->state = ST_STATUS;
        return 0;
    }
    if (p->no_body || status == 101 || status == 204 || status == 304) {
        p->state = ST_DONE;
    } else if (p->chunked > 0) {
        p->state = ST_CHUNK_SIZE;
    } else if (p->chunked < 0 || p->content_length < 0) {
        p->state = ST_BODY_EOF;
        p->close = 1;
    } else {
        p->remaining = (uint64_t)p->content_length;
        p->state = p->remaining != 0 ? ST_BODY_LENGTH : ST_DONE;
    }
    return 0;
}

/* A header or trailer line; an empty line ends the head or the trailers. Obsolete line folding is rejected. */
static int on_header_line(tc_http1_parser_t *p, const char *s, size_t n)
{
    if (n == 0) {
        if (p->state == ST_TRAILER) {
            p->state = ST_DONE;
            return 0;
        }
        return on_head_end(p);
    }

    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon == s)
        return -1;
    size_t name_len = (size_t)(colon - s);
    for (size_t i = 0; i < name_len; ++i)
        if (s[i] <= ' ' || s[i] >= 0x7f)
            return -1;
    const char *v = colon + 1, *end = s + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        ++v;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        --end;
    size_t v_len = (size_t)(end - v);

    if (p->state == ST_HEADER) {
        if (name_len == 14 && strncasecmp(s, "content-length", 14) == 0) {
            int64_t cl = 0;
            if (v_len == 0 || v_len > 18)
                return -1;
            for (size_t i = 0; i < v_len; ++i) {
                if (v[i] < '0' || v[i] > '9')
                    return -1;
                cl = cl * 10 + (v[i] - '0');
            }
            if (p->content_length >= 0 && p->content_length != cl)
                return -1;
            p->content_length = cl;
        } else if (name_len == 17 && strncasecmp(s, "transfer-encoding", 17) == 0) {
            p->chunked = has_token(v, v_len, "chunked", 1) ? 1 : -1;
        } else if (name_len == 10 && strncasecmp(s, "connection", 10) == 0) {
            if (has_token(v, v_len, "close", 0))
                p->close = 1;
            else if (has_token(v, v_len, "keep-alive", 0))
                p->close = 0;
        }
    }

    if (p->store) {
        size_t start = p->headers_len;
        if (append(&p->res->headers, &p->headers_len, &p->headers_cap, s, name_len) != 0 ||
            append(&p->res->headers, &p->headers_len, &p->headers_cap, ": ", 2) != 0 ||
            append(&p->res->headers, &p->headers_len, &p->headers_cap, v, v_len) != 0 ||
            append(&p->res->headers, &p->headers_len, &p->headers_cap, "\n", 1) != 0)
            return -1;
        for (size_t i = start; i < start + name_len; ++i)
            if (p->res->headers[i] >= 'A' && p->res->headers[i] <= 'Z')
                p->res->headers[i] += 'a' - 'A';
    }
    return 0;
}

/* "SIZE[;ext]" in hex; size 0 starts the trailers. */
static int on_chunk_size_line(tc_http1_parser_t *p, const char *s, size_t n)
{
    uint64_t size = 0;
    size_t i = 0;

    for (; i < n; ++i) {
        int d;
        if (s[i] >= '0' && s[i] <= '9')
            d = s[i] - '0';
        else if (s[i] >= 'a' && s[i] <= 'f')
            d = s[i] - 'a' + 10;
        else if (s[i] >= 'A' && s[i] <= 'F')
            d = s[i] - 'A' + 10;
        else
            break;
        if (size > (UINT64_MAX >> 4))
            return -1;
        size = size << 4 | (uint64_t)d;
    }
    if (i == 0)
        return -1;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        ++i;
    if (i < n && s[i] != ';')
        return -1;
    p->remaining = size;
    p->state = size != 0 ? ST_CHUNK_DATA : ST_TRAILER;
    return 0;
}

/* One line of the head or of the chunked framing, without its CRLF. */
static int on_line(tc_http1_parser_t *p, const char *s, size_t n)
{
    switch (p->state) {
    case ST_STATUS:
        return on_status_line(p, s, n);
    case ST_HEADER:
    case ST_TRAILER:
        return on_header_line(p, s, n);
    case ST_CHUNK_SIZE:
        return on_chunk_size_line(p, s, n);
    case ST_CHUNK_END:
        if (n != 0)
            return -1;
        p->state = ST_CHUNK_SIZE;
        return 0;
    default:
        return -1;
    }
}

ssize_t tc_http1_parser_feed(tc_http1_parser_t *p, const char *buf, size_t len)
{
    size_t off = 0;

    if (p->state == ST_DONE || p->state == ST_ERROR)
        return -1;
    if (len == 0) {
        if (p->state != ST_BODY_EOF)
            goto Error;
        p->state = ST_DONE;
        return 0;
    }

    while (off < len) {
        switch (p->state) {
        case ST_BODY_LENGTH:
        case ST_CHUNK_DATA: {
            size_t n = len - off;
            if (n > p->remaining)
                n = (size_t)p->remaining;
            if (store_body(p, buf + off, n) != 0)
                goto Error;
            off += n;
            p->remaining -= n;
            if (p->remaining == 0)
                p->state = p->state == ST_BODY_LENGTH ? ST_DONE : ST_CHUNK_END;
        } break;
        case ST_BODY_EOF:
            if (store_body(p, buf + off, len - off) != 0)
                goto Error;
            off = len;
            break;
        default: {
            /* A line: parsed in place when it is whole in buf, else gathered in p->line first. */
            const char *nl = memchr(buf + off, '\n', len - off), *line;
            size_t n = nl != NULL ? (size_t)(nl - (buf + off)) : len - off, line_len;
            if (p->line_len + n > MAX_LINE)
                goto Error;
            if (nl == NULL || p->line_len != 0) {
                if (append(&p->line, &p->line_len, &p->line_cap, buf + off, n) != 0)
                    goto Error;
                if (nl == NULL)
                    return -2;
                line = p->line;
                line_len = p->line_len;
            } else {
                line = buf + off;
                line_len = n;
            }
            off += n + 1;
            if (line_len != 0 && line[line_len - 1] == '\r')
                --line_len;
            int r = on_line(p, line, line_len);
            p->line_len = 0;
            if (r != 0)
                goto Error;
        } break;
        }
        if (p->state == ST_DONE)
            return (ssize_t)off;
    }
    return -2;

Error:
    p->state = ST_ERROR;
    return -1;
}

/* A connection reset counts as the end of the stream: whatever arrived before it may still be a whole response. */
int tc_read_response(int fd, const char *method, int timeout_ms, tc_response_t *res)
{
    tc_http1_parser_t p;
    char buf[16384];
    int64_t deadline = now_ms() + timeout_ms;
    ssize_t r = -2;

    tc_http1_parser_init(&p, method, res, 1);
    while (r == -2) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            if (errno != ECONNRESET)
                break;
            n = 0;
        }
        r = tc_http1_parser_feed(&p, buf, (size_t)n);
    }
    tc_http1_parser_dispose(&p);
    if (r < 0) {
        response_reset(res);
        return -1;
    }
    return 0;
}

/* ---- HTTP/1.1 ----------------------------------------------------------------------------------- */

/*
 * Host, Content-Length (when body is given) and "Connection: close" are added unless headers has its own Host,
 * Content-Length or Transfer-Encoding, or Connection, so that a test can send those its own way. A failed write does
 * not end it: the server may have answered early (413) and closed.
 */
static int http1_request(int port, const char *method, const char *path, const char *headers, const void *body, size_t body_len,
                         tc_response_t *res)
{
    char *req = NULL, line[128];
    size_t len = 0, cap = 0;
    int fd, fail = 0, ret = -1;

    response_init(res);
    fail |= append_str(&req, &len, &cap, method) | append_str(&req, &len, &cap, " ") | append_str(&req, &len, &cap, path) |
            append_str(&req, &len, &cap, " HTTP/1.1\r\n");
    if (!has_header(headers, "host")) {
        snprintf(line, sizeof(line), "Host: 127.0.0.1:%d\r\n", port);
        fail |= append_str(&req, &len, &cap, line);
    }
    if (headers != NULL && *headers != '\0') {
        fail |= append_str(&req, &len, &cap, headers);
        if (headers[strlen(headers) - 1] != '\n')
            fail |= append_str(&req, &len, &cap, "\r\n");
    }
    if (body != NULL && !has_header(headers, "content-length") && !has_header(headers, "transfer-encoding")) {
        snprintf(line, sizeof(line), "Content-Length: %zu\r\n", body_len);
        fail |= append_str(&req, &len, &cap, line);
    }
    if (!has_header(headers, "connection"))
        fail |= append_str(&req, &len, &cap, "Connection: close\r\n");
    fail |= append_str(&req, &len, &cap, "\r\n");
    if (body != NULL)
        fail |= append(&req, &len, &cap, body, body_len);
    if (fail)
        goto Exit;

    if ((fd = tc_connect(port)) < 0)
        goto Exit;
    tc_write_all(fd, req, len);
    ret = tc_read_response(fd, method, TIMEOUT_MS, res);
    close(fd);

Exit:
    free(req);
    return ret;
}

/* ---- HTTP/2 ------------------------------------------------------------------------------------- */

/* One request on one HTTP/2 connection, in cleartext or over TLS. */
struct h2_client {
    int fd;
    SSL *ssl; /* with memory BIOs: this file moves the bytes between them and fd; NULL for h2c */
    int64_t deadline;
    int32_t stream_id;
    const uint8_t *body;
    size_t body_len, body_off;
    tc_response_t *res;
    size_t headers_len, headers_cap, body_cap;
    int interim;    /* the headers being received are those of a 1xx response */
    int end_stream; /* the response ended with END_STREAM */
    int closed;     /* the stream is closed */
};

/* Waits for fd to be readable until the deadline and reads. Returns the bytes read, 0 at EOF (or reset), -1. */
static ssize_t h2_sock_read(struct h2_client *c, void *buf, size_t len)
{
    for (;;) {
        int64_t left = c->deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == ECONNRESET)
            return 0;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
    }
}

/* Sends what OpenSSL has queued in its write BIO. Returns 0 or -1. */
static int h2_tls_flush(struct h2_client *c)
{
    BIO *wbio = SSL_get_wbio(c->ssl);
    char buf[16384];
    int n;

    while ((n = BIO_read(wbio, buf, sizeof(buf))) > 0)
        if (tc_write_all(c->fd, buf, (size_t)n) != 0)
            return -1;
    return 0;
}

/* Feeds the TLS engine bytes from the socket. Returns 0, or -1 at EOF, error or timeout. */
static int h2_tls_fill(struct h2_client *c)
{
    char buf[16384];
    ssize_t n = h2_sock_read(c, buf, sizeof(buf));

    if (n <= 0)
        return -1;
    return BIO_write(SSL_get_rbio(c->ssl), buf, (int)n) == (int)n ? 0 : -1;
}

/* Reads HTTP/2 bytes (plaintext after TLS). Returns the bytes read, 0 at EOF, -1. */
static ssize_t h2_read(struct h2_client *c, void *buf, size_t len)
{
    if (c->ssl == NULL)
        return h2_sock_read(c, buf, len);
    for (;;) {
        int n = SSL_read(c->ssl, buf, (int)len);
        if (n > 0)
            return n;
        int err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_ZERO_RETURN)
            return 0;
        if (err != SSL_ERROR_WANT_READ || h2_tls_flush(c) != 0)
            return -1;
        if (h2_tls_fill(c) != 0)
            return 0;
    }
}

static int h2_write(struct h2_client *c, const void *buf, size_t len)
{
    if (c->ssl == NULL)
        return tc_write_all(c->fd, buf, len);
    /* A memory BIO takes everything at once. */
    if (SSL_write(c->ssl, buf, (int)len) != (int)len)
        return -1;
    return h2_tls_flush(c);
}

/* Runs the TLS handshake, offering only "h2" by ALPN and checking no certificate. Returns 0, or -1 (saying why on
 * stderr) when it fails or the server did not pick h2. */
static int h2_tls_handshake(struct h2_client *c)
{
    static const unsigned char alpn[] = "\x02h2";
    const unsigned char *selected = NULL;
    unsigned selected_len = 0;
    SSL_CTX *ctx;
    BIO *rbio, *wbio;
    int ok = 0;

    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
        return -1;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) == 0)
        c->ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    if (c->ssl == NULL)
        goto Exit;
    rbio = BIO_new(BIO_s_mem());
    wbio = BIO_new(BIO_s_mem());
    if (rbio == NULL || wbio == NULL) {
        BIO_free(rbio);
        BIO_free(wbio);
        goto Exit;
    }
    SSL_set_bio(c->ssl, rbio, wbio);
    SSL_set_connect_state(c->ssl);
    for (;;) {
        int r = SSL_do_handshake(c->ssl);
        if (h2_tls_flush(c) != 0)
            goto Exit;
        if (r == 1)
            break;
        if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ || h2_tls_fill(c) != 0)
            goto Exit;
    }
    SSL_get0_alpn_selected(c->ssl, &selected, &selected_len);
    if (selected_len != 2 || memcmp(selected, "h2", 2) != 0) {
        fprintf(stderr, "tc_request: the server did not select h2 by ALPN\n");
        goto Exit;
    }
    ok = 1;

Exit:
    if (!ok) {
        unsigned long e = ERR_get_error();
        if (e != 0)
            fprintf(stderr, "tc_request: TLS handshake failed: %s\n", ERR_error_string(e, NULL));
    }
    ERR_clear_error();
    return ok ? 0 : -1;
}

static ssize_t h2_on_send(nghttp2_session *session, const uint8_t *data, size_t len, int flags, void *user_data)
{
    (void)session;
    (void)flags;
    return h2_write(user_data, data, len) == 0 ? (ssize_t)len : NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* Keeps :status and the regular headers (and trailers) of the final response; those of 1xx responses are dropped. */
static int h2_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    struct h2_client *c = user_data;
    (void)session;
    (void)flags;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != c->stream_id)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int status = 0;
        for (size_t i = 0; i < valuelen && i < 3; ++i)
            status = status * 10 + (value[i] - '0');
        c->interim = status < 200;
        if (!c->interim)
            c->res->status = status;
        return 0;
    }
    if (c->interim || (namelen != 0 && name[0] == ':'))
        return 0;
    if (append(&c->res->headers, &c->headers_len, &c->headers_cap, name, namelen) != 0 ||
        append(&c->res->headers, &c->headers_len, &c->headers_cap, ": ", 2) != 0 ||
        append(&c->res->headers, &c->headers_len, &c->headers_cap, value, valuelen) != 0 ||
        append(&c->res->headers, &c->headers_len, &c->headers_cap, "\n", 1) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int h2_on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len, void *user_data)
{
    struct h2_client *c = user_data;
    (void)session;
    (void)flags;

    if (stream_id != c->stream_id)
        return 0;
    return append(&c->res->body, &c->res->body_len, &c->body_cap, data, len) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int h2_on_frame(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct h2_client *c = user_data;
    (void)session;

    if (frame->hd.stream_id == c->stream_id && (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0)
        c->end_stream = 1;
    return 0;
}

static int h2_on_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    struct h2_client *c = user_data;
    (void)session;
    (void)error_code;

    if (stream_id == c->stream_id)
        c->closed = 1;
    return 0;
}

static ssize_t h2_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
                            nghttp2_data_source *source, void *user_data)
{
    struct h2_client *c = user_data;
    size_t n = c->body_len - c->body_off;
    (void)session;
    (void)stream_id;
    (void)source;

    if (n > length)
        n = length;
    memcpy(buf, c->body + c->body_off, n);
    c->body_off += n;
    if (c->body_off == c->body_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static nghttp2_nv make_nv(const char *name, size_t namelen, const char *value, size_t valuelen)
{
    return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, namelen, valuelen, NGHTTP2_NV_FLAG_NONE};
}

/*
 * Turns the "Name: value\r\n" block into header fields after the four pseudo-headers, in nva (room for a field per line
 * plus five), with names lower-cased in copy, a writable copy of the block. A Host header becomes :authority;
 * connection-specific headers, which HTTP/2 forbids, are dropped; content-length is added when there is a body and no
 * such header. Returns the number of fields.
 */
static size_t h2_make_headers(nghttp2_nv *nva, char *copy, const char *method, const char *path, int tls, const char *authority,
                              const void *body, const char *content_length)
{
    size_t n = 4;
    int has_length = 0;

    for (char *line = copy; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n'), *colon, *v, *end;
        if (next != NULL)
            *next++ = '\0';
        end = line + strlen(line);
        if ((colon = strchr(line, ':')) != NULL && colon != line) {
            for (char *s = line; s < colon; ++s)
                if (*s >= 'A' && *s <= 'Z')
                    *s += 'a' - 'A';
            for (v = colon + 1; *v == ' ' || *v == '\t'; ++v)
                ;
            while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
                --end;
            size_t name_len = (size_t)(colon - line), v_len = (size_t)(end - v);
#define NAME_IS(s) (name_len == sizeof(s) - 1 && memcmp(line, s, name_len) == 0)
            if (NAME_IS("host")) {
                *end = '\0';
                authority = v;
            } else if (!(NAME_IS("connection") || NAME_IS("keep-alive") || NAME_IS("proxy-connection") ||
                         NAME_IS("transfer-encoding") || NAME_IS("upgrade"))) {
                has_length |= NAME_IS("content-length");
                nva[n++] = make_nv(line, name_len, v, v_len);
            }
#undef NAME_IS
        }
        line = next;
    }
    if (body != NULL && !has_length)
        nva[n++] = make_nv("content-length", 14, content_length, strlen(content_length));

    nva[0] = make_nv(":method", 7, method, strlen(method));
    nva[1] = make_nv(":path", 5, path, strlen(path));
    nva[2] = tls ? make_nv(":scheme", 7, "https", 5) : make_nv(":scheme", 7, "http", 4);
    nva[3] = make_nv(":authority", 10, authority, strlen(authority));
    return n;
}

/* The response counts when its stream ended normally with END_STREAM; a reset or a GOAWAY that cut it off does not. */
static int h2_request(int tls, int port, const char *method, const char *path, const char *headers, const void *body,
                      size_t body_len, tc_response_t *res)
{
    struct h2_client c = {.fd = -1, .deadline = now_ms() + TIMEOUT_MS, .body = body, .body_len = body_len, .res = res};
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_session *session = NULL;
    nghttp2_nv *nva = NULL;
    char *copy = NULL, authority[32], content_length[32];
    size_t lines = 0;
    int ret = -1;

    response_init(res);
    snprintf(authority, sizeof(authority), "127.0.0.1:%d", port);
    snprintf(content_length, sizeof(content_length), "%zu", body_len);
    if (headers == NULL)
        headers = "";
    for (const char *s = headers; *s != '\0'; ++s)
        lines += *s == '\n';
    if ((copy = strdup(headers)) == NULL || (nva = calloc(lines + 6, sizeof(*nva))) == NULL)
        goto Exit;
    size_t nvlen = h2_make_headers(nva, copy, method, path, tls, authority, body, content_length);

    if ((c.fd = tc_connect(port)) < 0)
        goto Exit;
    if (tls && h2_tls_handshake(&c) != 0)
        goto Exit;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        goto Exit;
    nghttp2_session_callbacks_set_send_callback(cbs, h2_on_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_on_close);
    if (nghttp2_session_client_new(&session, cbs, &c) != 0)
        goto Exit;

    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}, {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW}};
    nghttp2_data_provider provider = {.read_callback = h2_read_body};
    if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings, sizeof(settings) / sizeof(settings[0])) != 0 ||
        nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0, H2_WINDOW) != 0)
        goto Exit;
    if ((c.stream_id = nghttp2_submit_request(session, NULL, nva, nvlen, body != NULL && body_len != 0 ? &provider : NULL, NULL)) <
        0)
        goto Exit;

    while (!c.closed) {
        uint8_t buf[16384];
        if (nghttp2_session_send(session) != 0)
            break;
        if (!nghttp2_session_want_read(session) && !nghttp2_session_want_write(session))
            break;
        ssize_t n = h2_read(&c, buf, sizeof(buf));
        if (n <= 0 || nghttp2_session_mem_recv(session, buf, (size_t)n) < 0)
            break;
    }
    if (c.closed && c.end_stream && res->status != 0) {
        res->http_version = 20;
        ret = 0;
    }
    /* Says goodbye (GOAWAY, then close_notify) so that the server sees a clean close. */
    if (nghttp2_session_terminate_session(session, NGHTTP2_NO_ERROR) == 0)
        nghttp2_session_send(session);
    if (c.ssl != NULL && SSL_shutdown(c.ssl) >= 0)
        h2_tls_flush(&c);

Exit:
    nghttp2_session_del(session);
    nghttp2_session_callbacks_del(cbs);
    if (c.ssl != NULL)
        SSL_free(c.ssl);
    if (c.fd >= 0)
        close(c.fd);
    free(nva);
    free(copy);
    if (ret != 0)
        response_reset(res);
    return ret;
}

/* ---- one request -------------------------------------------------------------------------------- */

int tc_request(tc_proto_t proto, int port, const char *method, const char *path, const char *headers, const void *body,
               size_t body_len, tc_response_t *res)
{
    switch (proto) {
    case TC_HTTP1:
        return http1_request(port, method, path, headers, body, body_len, res);
    case TC_H2C:
        return h2_request(0, port, method, path, headers, body, body_len, res);
    case TC_H2_TLS:
        return h2_request(1, port, method, path, headers, body, body_len, res);
    }
    response_init(res);
    return -1;
}

int tc_get(int port, const char *path, const char *headers, tc_response_t *res)
{
    return tc_request(TC_HTTP1, port, "GET", path, headers, NULL, 0, res);
}
