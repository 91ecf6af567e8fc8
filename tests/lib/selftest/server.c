/*
 * server.c - a throwaway h2o server that stands in for sff while the client library tests itself. Run as
 * `server serve`: it listens on SFF_LISTEN in cleartext (HTTP/1.1 and h2c) and, when SELFTEST_TLS_PORT, SELFTEST_CERT
 * and SELFTEST_KEY are set, on 127.0.0.1:SELFTEST_TLS_PORT over TLS (h2 and http/1.1 by ALPN). SELFTEST_IGNORE_TERM=1
 * makes it ignore SIGTERM; SELFTEST_FORK=1 makes it fork a child that sleeps in its process group; SELFTEST_EXIT=1
 * makes it exit at once. It prints the SFF_ and SELFTEST_ variables of its environment at start.
 *
 * Paths: /_health, /echo (the request body back), /headers (the request headers as text), /chunked (five chunks),
 * /big (1 MiB with a content-length), /big-chunked (1 MiB in 64 KiB chunks), /status/NNN, /hang (never answers),
 * and anything else "hello\n".
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "h2o.h"
#include "h2o/http1.h"
#include "h2o/http2.h"

extern char **environ;

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t plain_accept, tls_accept;

/* A response sent in `left` pieces of `size` bytes, one per proceed callback: a chunk each in HTTP/1.1. */
struct pieces {
    h2o_generator_t super;
    int left;
    size_t size;
    int n;
};

static void send_piece(struct pieces *g, h2o_req_t *req)
{
    h2o_iovec_t buf;
    if (g->size == 0) {
        char line[32];
        int len = snprintf(line, sizeof(line), "chunk %d\n", g->n);
        buf = h2o_strdup(&req->pool, line, (size_t)len);
    } else {
        buf.base = h2o_mem_alloc_pool(&req->pool, g->size);
        buf.len = g->size;
        for (size_t i = 0; i < g->size; ++i)
            buf.base[i] = (char)('a' + (g->n * g->size + i) % 26);
    }
    ++g->n;
    --g->left;
    h2o_send(req, &buf, 1, g->left == 0 ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    send_piece((struct pieces *)self, req);
}

static void start_pieces(h2o_req_t *req, int count, size_t size)
{
    struct pieces *g = h2o_mem_alloc_pool(&req->pool, sizeof(*g));
    g->super.proceed = on_proceed;
    g->super.stop = NULL;
    g->left = count;
    g->size = size;
    g->n = 0;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_start_response(req, &g->super);
    send_piece(g, req);
}

static int path_is(h2o_req_t *req, const char *p)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, p, strlen(p));
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    req->res.status = 200;
    req->res.reason = "OK";
    if (path_is(req, "/")) {
        req->res.content_length = 6;
        h2o_send_inline(req, H2O_STRLIT("hello\n"));
    } else if (path_is(req, "/_health")) {
        h2o_send_inline(req, H2O_STRLIT("ok\n"));
    } else if (path_is(req, "/echo")) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/octet-stream"));
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-method"), 0, NULL, req->method.base, req->method.len);
        if (req->entity.base != NULL)
            h2o_send_inline(req, req->entity.base, req->entity.len);
        else
            h2o_send_inline(req, "", 0);
    } else if (path_is(req, "/headers")) {
        size_t cap = req->authority.len + 64;
        for (size_t i = 0; i != req->headers.size; ++i)
            cap += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
        char *buf = h2o_mem_alloc_pool(&req->pool, cap);
        size_t len =
            (size_t)sprintf(buf, "authority: %.*s\nversion: %x\n", (int)req->authority.len, req->authority.base, req->version);
        for (size_t i = 0; i != req->headers.size; ++i) {
            const h2o_header_t *h = req->headers.entries + i;
            len += (size_t)sprintf(buf + len, "%.*s: %.*s\n", (int)h->name->len, h->name->base, (int)h->value.len, h->value.base);
        }
        h2o_send_inline(req, buf, len);
    } else if (path_is(req, "/chunked")) {
        start_pieces(req, 5, 0);
    } else if (path_is(req, "/big")) {
        char *buf = h2o_mem_alloc_pool(&req->pool, 1 << 20);
        for (size_t i = 0; i < 1 << 20; ++i)
            buf[i] = (char)('a' + i % 26);
        req->res.content_length = 1 << 20;
        h2o_send_inline(req, buf, 1 << 20);
    } else if (path_is(req, "/big-chunked")) {
        start_pieces(req, 16, 65536);
    } else if (req->path_normalized.len == 11 && memcmp(req->path_normalized.base, "/status/", 8) == 0) {
        req->res.status = atoi(req->path_normalized.base + 8);
        req->res.reason = "Test";
        h2o_send_inline(req, H2O_STRLIT("status\n"));
    } else if (path_is(req, "/hang")) {
        /* never answers */
    } else {
        h2o_send_inline(req, H2O_STRLIT("hello\n"));
    }
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;
    if (err != NULL || (sock = h2o_evloop_socket_accept(listener)) == NULL)
        return;
    h2o_accept(listener->data, sock);
}

static int listen_on(int port, h2o_accept_ctx_t *accept_ctx)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    int fd, on = 1;
    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, SOMAXCONN) != 0)
        return -1;
    h2o_socket_t *sock = h2o_evloop_socket_create(ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    sock->data = accept_ctx;
    h2o_socket_read_start(sock, on_accept);
    return 0;
}

static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *listen = getenv("SFF_LISTEN"), *tls_port = getenv("SELFTEST_TLS_PORT");

    if (argc != 2 || strcmp(argv[1], "serve") != 0) {
        fprintf(stderr, "usage: %s serve\n", argv[0]);
        return 2;
    }
    for (char **e = environ; *e != NULL; ++e)
        if (strncmp(*e, "SFF_", 4) == 0 || strncmp(*e, "SELFTEST_", 9) == 0)
            printf("env %s\n", *e);
    fflush(stdout);
    if (getenv("SELFTEST_EXIT") != NULL) {
        fprintf(stderr, "exiting as asked\n");
        return 3;
    }
    if (listen == NULL || strrchr(listen, ':') == NULL) {
        fprintf(stderr, "SFF_LISTEN is not host:port\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, getenv("SELFTEST_IGNORE_TERM") != NULL ? SIG_IGN : on_term);
    if (getenv("SELFTEST_FORK") != NULL && fork() == 0) {
        for (;;)
            pause();
    }

    h2o_config_init(&config);
    h2o_hostconf_t *hostconf = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_create_handler(pathconf, sizeof(h2o_handler_t))->on_req = on_req;
    h2o_context_init(&ctx, h2o_evloop_create(), &config);

    plain_accept.ctx = &ctx;
    plain_accept.hosts = config.hosts;
    if (listen_on(atoi(strrchr(listen, ':') + 1), &plain_accept) != 0) {
        fprintf(stderr, "cannot listen on %s: %s\n", listen, strerror(errno));
        return 1;
    }
    if (tls_port != NULL) {
        tls_accept.ctx = &ctx;
        tls_accept.hosts = config.hosts;
        tls_accept.ssl_ctx = SSL_CTX_new(TLS_server_method());
        if (SSL_CTX_use_certificate_file(tls_accept.ssl_ctx, getenv("SELFTEST_CERT"), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls_accept.ssl_ctx, getenv("SELFTEST_KEY"), SSL_FILETYPE_PEM) != 1) {
            fprintf(stderr, "cannot load the certificate or key\n");
            return 1;
        }
        if (getenv("SELFTEST_NO_H2") == NULL)
            h2o_ssl_register_alpn_protocols(tls_accept.ssl_ctx, h2o_http2_alpn_protocols);
        if (listen_on(atoi(tls_port), &tls_accept) != 0) {
            fprintf(stderr, "cannot listen on TLS port %s: %s\n", tls_port, strerror(errno));
            return 1;
        }
    }
    printf("listening on %s\n", listen);
    fflush(stdout);
    while (h2o_evloop_run(ctx.loop, INT32_MAX) == 0)
        ;
    return 1;
}
