#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include "call.h"
#include "coro.h"
#include "guard.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pwhash.h"
#include "timer.h"
#include "worker.h"

#define EXIT_CONFIG 78 /* EX_CONFIG: the master does not respawn a worker that cannot start */

sff_worker_t *sff_worker;

static void on_accept(h2o_socket_t *listener, const char *err)
{
    sff_worker_t *w = listener->data;
    if (err != NULL)
        return;
    /* a few at a time, so one busy listener cannot starve the connections already accepted */
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        sff_guard_on_accept(w, sock);
        h2o_accept(&w->accept_ctx, sock);
    }
}

static int open_listener(sff_worker_t *w, const sff_listen_t *l)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res;
    int gai = getaddrinfo(l->host[0] != '\0' ? l->host : NULL, l->port, &hints, &res);
    if (gai != 0) {
        sff_log_error("SFF_LISTEN %s:%s: %s", l->host, l->port, gai_strerror(gai));
        return -1;
    }
    int fd = -1, on = 1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == 0 &&
            (ai->ai_family != AF_INET6 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == 0) &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
            break;
        }
        sff_log_error("cannot listen on %s:%s: %s", l->host, l->port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    h2o_socket_t *sock = h2o_evloop_socket_create(w->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    sock->data = w;
    h2o_socket_read_start(sock, on_accept);
    w->listeners[w->nlisteners++] = sock;
    return 0;
}

static int setup_tls(sff_worker_t *w)
{
    const sff_config_t *c = w->config;
    SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
    if (ssl == NULL)
        return -1;
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ssl, c->tls_cert) != 1) {
        sff_log_error("SFF_TLS_CERT %s: cannot load the certificate chain", c->tls_cert);
        goto Error;
    }
    if (SSL_CTX_use_PrivateKey_file(ssl, c->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ssl) != 1) {
        sff_log_error("SFF_TLS_KEY %s: cannot load the key, or it does not match the certificate", c->tls_key);
        goto Error;
    }
    h2o_ssl_register_alpn_protocols(ssl, h2o_http2_alpn_protocols);
    w->accept_ctx.ssl_ctx = ssl;
    w->tls = 1;
    return 0;
Error:
    ERR_clear_error();
    SSL_CTX_free(ssl);
    return -1;
}

void sff_worker_reload(sff_worker_t *w)
{
    char err[512];
    uint64_t t0 = sff_now_us();
    sff_generation_t *gen = sff_generation_load(w->config, w->gen, err, sizeof(err));
    if (gen == NULL) {
        sff_log_error("reload failed: %s; the running functions keep serving", err);
    } else {
        sff_generation_t *old = w->gen;
        w->gen = gen; /* between loop iterations: no request is in the middle of routing */
        sff_generation_release(old);
        sff_module_stats.reloads++;
        sff_log_info("reloaded functions: generation %llu, %zu modules, %zu routes (%llu us)", (unsigned long long)gen->id,
                     gen->nmods, gen->nroutes, (unsigned long long)(sff_now_us() - t0));
    }
    if (w->config->jwt_keys_file != NULL && sff_jwt_reload(w->jwt, err, sizeof(err)) != 0)
        sff_log_error("JWT keys reload failed: %s; the previous keys stay", err);
    sff_metrics_modules(sff_module_stats.loads, sff_module_stats.load_errors, sff_module_stats.reloads, sff_module_stats.unloads);
}

static void start_drain(sff_worker_t *w)
{
    if (w->draining)
        return;
    w->draining = 1;
    w->drain_deadline_ms = sff_now_ms() + w->config->drain_timeout_ms;
    for (size_t i = 0; i < w->nlisteners; i++) {
        h2o_socket_read_stop(w->listeners[i]);
        h2o_socket_close(w->listeners[i]);
    }
    w->nlisteners = 0;
    h2o_context_request_shutdown(&w->ctx);
    sff_log_info("draining: %zu calls in flight, %zu connections", sff_call_alive, sff_guard_connections());
}

static void on_signal(h2o_socket_t *sock, const char *err)
{
    sff_worker_t *w = sock->data;
    if (err != NULL)
        return;
    while (sock->input->size >= sizeof(struct signalfd_siginfo)) {
        struct signalfd_siginfo si;
        memcpy(&si, sock->input->bytes, sizeof(si));
        h2o_buffer_consume(&sock->input, sizeof(si));
        if (si.ssi_signo == SIGHUP)
            w->reload_requested = 1;
        else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            start_drain(w);
    }
}

static int setup_signals(sff_worker_t *w)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -1;
    w->signals = h2o_evloop_socket_create(w->ctx.loop, fd, 0);
    w->signals->data = w;
    h2o_socket_read_start(w->signals, on_signal);
    return 0;
}

int sff_worker_main(const sff_config_t *config, int id)
{
    static sff_worker_t worker;
    sff_worker_t *w = &worker;
    char err[512], rundir[512];
    sff_worker = w;
    w->id = id;
    w->config = config;
    sff_log_set_process("worker", id);
    sff_metrics_set_worker(id);
    signal(SIGPIPE, SIG_IGN);
    sff_coro_configure(config->coro_stack, 1024);
    if (sodium_init() < 0) {
        sff_log_error("libsodium cannot start");
        return EXIT_CONFIG;
    }

    h2o_config_init(&w->globalconf);
    /* h2o refuses bodies over its limit by itself (a text page on HTTP/1.1, a stream reset on
     * HTTP/2); up to twice SFF_MAX_BODY the gateway answers with the 413 envelope on both. */
    w->globalconf.max_request_entity_size = config->max_body * 2 > config->max_upload ? config->max_body * 2 : config->max_upload;
    w->globalconf.http1.req_timeout = config->idle_timeout_ms;
    w->globalconf.http2.idle_timeout = config->idle_timeout_ms;
    w->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("sff"));
    h2o_hostconf_t *hostconf = h2o_config_register_host(&w->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    sff_http_register(w, hostconf);
    h2o_context_init(&w->ctx, h2o_evloop_create(), &w->globalconf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = w->globalconf.hosts;
    if (setup_signals(w) != 0) {
        sff_log_error("signalfd: %s", strerror(errno));
        return EXIT_CONFIG;
    }
    if (config->tls_cert != NULL && setup_tls(w) != 0)
        return EXIT_CONFIG;

    sff_jwt_config_t jcfg = {.secret = config->jwt_secret,
                             .keys_file = config->jwt_keys_file,
                             .issuer = config->jwt_issuer,
                             .audience = config->jwt_audience,
                             .leeway_s = config->jwt_leeway_s,
                             .cache_size = 10000};
    if ((w->jwt = sff_jwt_create(&jcfg, err, sizeof(err))) == NULL) {
        sff_log_error("JWT keys: %s", err);
        return EXIT_CONFIG;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(rundir, sizeof(rundir), "%s/sff-%d", tmp != NULL && *tmp != '\0' ? tmp : "/tmp", (int)getpid());
    if (sff_module_setup(rundir, &sff_call_api) != 0) {
        sff_log_error("cannot create %s: %s", rundir, strerror(errno));
        return EXIT_CONFIG;
    }
    if ((w->gen = sff_generation_load(config, NULL, err, sizeof(err))) == NULL) {
        sff_log_error("cannot load functions: %s", err);
        sff_module_cleanup();
        return EXIT_CONFIG;
    }
    sff_metrics_modules(sff_module_stats.loads, sff_module_stats.load_errors, sff_module_stats.reloads, sff_module_stats.unloads);
    for (size_t i = 0; i < config->nlisten; i++) {
        if (open_listener(w, &config->listen[i]) != 0) {
            sff_module_cleanup();
            return EXIT_CONFIG;
        }
    }
    /* forked now, while the worker has no other threads; without it password calls answer 503 */
    if (sff_pwhash_setup(w->ctx.loop, NULL, err, sizeof(err)) != 0)
        sff_log_error("password hashing is unavailable: %s", err);
    if (sff_backends_start(w, err, sizeof(err)) != 0) {
        sff_log_error("%s", err);
        sff_module_cleanup();
        return EXIT_CONFIG;
    }
    sff_guard_start(w);
    sff_log_info("worker ready: %zu modules, %zu routes", w->gen->nmods, w->gen->nroutes);

    for (;;) {
        int32_t wait = sff_timers_next_wait(sff_now_ms(), w->draining ? 100 : 1000);
        /* Work our timers gave h2o (a response, a backend write) waits in h2o's pending lists, which
         * it only runs after polling: do not let that poll sleep. */
        if (w->ctx.loop->_pending_as_client != NULL || w->ctx.loop->_pending_as_server != NULL)
            wait = 0;
        h2o_evloop_run(w->ctx.loop, wait);
        sff_timers_run(sff_now_ms());
        sff_log_flush();
        if (w->reload_requested) {
            w->reload_requested = 0;
            sff_worker_reload(w);
        }
        if (w->draining) {
            if (sff_call_alive == 0 && sff_guard_close_idle() == 0)
                break;
            if (sff_now_ms() >= w->drain_deadline_ms) {
                sff_log_warn("drain deadline passed with %zu calls in flight: exiting", sff_call_alive);
                break;
            }
        }
    }
    sff_backends_stop(w);
    sff_pwhash_shutdown();
    sff_log_info("worker stopped");
    sff_log_flush();
    sff_module_cleanup();
    return 0;
}
