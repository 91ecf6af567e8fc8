/*
 * selftest.c - exercises the client library (tests/lib/ the .c files) against the throwaway h2o server in server.c. Built and
 * run by hand with tests/lib/selftest/run.sh; not part of the project's build. SELFTEST_QUICK=1 skips the tests that
 * wait for timeouts.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "test.h"
#include "lib/client.h"

static const char *cert, *key, *server_bin;
static tc_server_t srv;
static int tls_port;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int big_ok(const char *body, size_t len)
{
    if (len != 1 << 20)
        return 0;
    for (size_t i = 0; i < len; ++i)
        if (body[i] != (char)('a' + i % 26))
            return 0;
    return 1;
}

/* Nonzero when a process of the process group pgid is alive (zombies waiting for PID 1 to reap them do not count). */
static int group_alive(pid_t pgid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int alive = 0;
    while (d != NULL && (e = readdir(d)) != NULL && !alive) {
        char path[300], buf[512], state;
        int pg;
        FILE *fp;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || (fp = fopen(path, "r")) == NULL)
            continue;
        /* pid (comm) state ppid pgrp ... */
        if (fgets(buf, sizeof(buf), fp) != NULL && strrchr(buf, ')') != NULL &&
            sscanf(strrchr(buf, ')') + 1, " %c %*d %d", &state, &pg) == 2)
            alive = pg == pgid && state != 'Z';
        fclose(fp);
    }
    if (d != NULL)
        closedir(d);
    return alive;
}

/* ---- the parser, fed by hand ---- */

/* Feeds s in pieces of step bytes (then EOF when eof); returns what the last feed returned. */
static ssize_t feed(const char *method, const char *s, size_t step, int eof, tc_response_t *res, int *close_)
{
    tc_http1_parser_t p;
    size_t len = strlen(s), off = 0;
    ssize_t r = -2;
    tc_http1_parser_init(&p, method, res, 1);
    while (off < len && r == -2) {
        size_t n = len - off < step ? len - off : step;
        r = tc_http1_parser_feed(&p, s + off, n);
        if (r >= 0)
            r += off;
        off += n;
    }
    if (r == -2 && eof)
        r = tc_http1_parser_feed(&p, "", 0);
    *close_ = p.close;
    tc_http1_parser_dispose(&p);
    return r;
}

TEST(parser_chunked_interim_trailers)
{
    const char *s = "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nX-Name:  Value  \r\n\r\n"
                    "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
    for (size_t step = 1; step <= strlen(s); step += step < 8 ? 1 : 13) {
        tc_response_t res;
        int close_;
        ssize_t r = feed("GET", s, step, 0, &res, &close_);
        CHECK_INT(r, strlen(s) - 4);
        CHECK_INT(res.status, 200);
        CHECK_INT(res.http_version, 11);
        CHECK_STR(res.body, "helloabcdefghijklmnopqrstuvwxyz");
        CHECK_INT(res.body_len, 31);
        CHECK_STR(res.headers, "transfer-encoding: gzip, chunked\nx-name: Value\nx-trailer: t\n");
        CHECK_STR(tc_header(&res, "X-NAME"), "Value");
        CHECK(tc_header(&res, "x-interim") == NULL);
        CHECK_INT(close_, 0);
        tc_response_free(&res);
    }
}

TEST(parser_framing)
{
    tc_response_t res;
    int close_;

    CHECK_INT(feed("GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef", 4, 0, &res, &close_), 41);
    CHECK_STR(res.body, "abc");
    tc_response_free(&res);
    /* Until close, and HTTP/1.0. */
    CHECK_INT(feed("GET", "HTTP/1.0 200 OK\r\n\r\nall of it", 3, 1, &res, &close_), 0);
    CHECK_STR(res.body, "all of it");
    CHECK_INT(res.http_version, 10);
    CHECK_INT(close_, 1);
    tc_response_free(&res);
    /* Cut off. */
    CHECK_INT(feed("GET", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100, 1, &res, &close_), -1);
    tc_response_free(&res);
    CHECK_INT(feed("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 100, 1, &res, &close_), -1);
    tc_response_free(&res);
    /* HEAD, 204 and 304 have no body whatever the headers say. */
    CHECK_INT(feed("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 7, 0, &res, &close_), 39);
    CHECK_INT(res.body_len, 0);
    CHECK_STR(tc_header(&res, "content-length"), "10");
    tc_response_free(&res);
    CHECK_INT(feed("GET", "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", 100, 0, &res, &close_), 46);
    CHECK_INT(close_, 1);
    tc_response_free(&res);
    CHECK_INT(feed("GET", "HTTP/1.1 304 Not Modified\r\n\n", 100, 0, &res, &close_), 28);
    tc_response_free(&res);
    /* Malformed. */
    CHECK_INT(feed("GET", "HTTP/2 200 OK\r\n\r\n", 100, 0, &res, &close_), -1);
    tc_response_free(&res);
    CHECK_INT(feed("GET", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 100, 0, &res, &close_), -1);
    tc_response_free(&res);
    CHECK_INT(feed("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100, 0, &res, &close_), -1);
    tc_response_free(&res);
    CHECK_INT(feed("GET", "HTTP/1.1 200 OK\r\n folded\r\n\r\n", 100, 0, &res, &close_), -1);
    tc_response_free(&res);
}

/* ---- one request ---- */

TEST(http1_get)
{
    tc_response_t res;
    CHECK_INT(tc_get(srv.port, "/", NULL, &res), 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.http_version, 11);
    CHECK_STR(res.body, "hello\n");
    CHECK_STR(tc_header(&res, "server"), "h2o/2.2.5");
    CHECK_STR(tc_header(&res, "connection"), "close");
    CHECK_STR(tc_header(&res, "Content-Length"), "6");
    tc_response_free(&res);
}

TEST(http1_echo_and_headers)
{
    tc_response_t res;
    size_t len = 300000;
    char *body = malloc(len);
    for (size_t i = 0; i < len; ++i)
        body[i] = (char)(i * 7);
    CHECK_INT(tc_request(TC_HTTP1, srv.port, "POST", "/echo", "X-A: 1\r\nX-B: 2", body, len, &res), 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.body_len, len);
    CHECK(res.body_len == len && memcmp(res.body, body, len) == 0);
    CHECK_STR(tc_header(&res, "x-method"), "POST");
    tc_response_free(&res);
    /* An empty body still gets a Content-Length. */
    CHECK_INT(tc_request(TC_HTTP1, srv.port, "PUT", "/echo", NULL, "", 0, &res), 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.body_len, 0);
    tc_response_free(&res);
    CHECK_INT(tc_request(TC_HTTP1, srv.port, "GET", "/headers", "X-Foo: Bar\r\n", NULL, 0, &res), 0);
    CHECK(strstr(res.body, "authority: 127.0.0.1:") != NULL);
    CHECK(strstr(res.body, "x-foo: Bar\n") != NULL);
    CHECK(strstr(res.body, "version: 101\n") != NULL);
    tc_response_free(&res);
    /* A Host of the test replaces ours. */
    CHECK_INT(tc_request(TC_HTTP1, srv.port, "GET", "/headers", "host: example.com\r\n", NULL, 0, &res), 0);
    CHECK(strstr(res.body, "authority: example.com\n") != NULL);
    tc_response_free(&res);
    free(body);
}

TEST(http1_chunked_head_status)
{
    tc_response_t res;
    CHECK_INT(tc_get(srv.port, "/chunked", NULL, &res), 0);
    CHECK_STR(res.body, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    CHECK_STR(tc_header(&res, "transfer-encoding"), "chunked");
    tc_response_free(&res);
    CHECK_INT(tc_get(srv.port, "/big-chunked", NULL, &res), 0);
    CHECK(big_ok(res.body, res.body_len));
    tc_response_free(&res);
    CHECK_INT(tc_get(srv.port, "/big", NULL, &res), 0);
    CHECK(big_ok(res.body, res.body_len));
    tc_response_free(&res);
    CHECK_INT(tc_request(TC_HTTP1, srv.port, "HEAD", "/big", NULL, NULL, 0, &res), 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.body_len, 0);
    CHECK_STR(tc_header(&res, "content-length"), "1048576");
    tc_response_free(&res);
    CHECK_INT(tc_get(srv.port, "/status/204", NULL, &res), 0);
    CHECK_INT(res.status, 204);
    CHECK_INT(res.body_len, 0);
    tc_response_free(&res);
    CHECK_INT(tc_get(srv.port, "/status/304", NULL, &res), 0);
    CHECK_INT(res.status, 304);
    tc_response_free(&res);
    CHECK_INT(tc_get(srv.port, "/status/404", NULL, &res), 0);
    CHECK_INT(res.status, 404);
    CHECK_STR(res.body, "status\n");
    tc_response_free(&res);
}

static void h2_common(tc_proto_t proto, int port)
{
    tc_response_t res;
    size_t len = 1 << 20;
    char *body = malloc(len);
    for (size_t i = 0; i < len; ++i)
        body[i] = (char)(i * 13);

    CHECK_INT(tc_request(proto, port, "GET", "/", NULL, NULL, 0, &res), 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.http_version, 20);
    CHECK_STR(res.body, "hello\n");
    CHECK_STR(tc_header(&res, "Content-Length"), "6");
    tc_response_free(&res);

    CHECK_INT(tc_request(proto, port, "GET", "/headers", "X-Foo: Bar\r\nConnection: keep-alive\r\n", NULL, 0, &res), 0);
    CHECK(strstr(res.body, "x-foo: Bar\n") != NULL);
    CHECK(strstr(res.body, "version: 200\n") != NULL);
    CHECK(strstr(res.body, "authority: 127.0.0.1:") != NULL);
    CHECK(strstr(res.body, "connection") == NULL);
    tc_response_free(&res);

    CHECK_INT(tc_request(proto, port, "GET", "/headers", "Host: example.org\r\n", NULL, 0, &res), 0);
    CHECK(strstr(res.body, "authority: example.org\n") != NULL);
    tc_response_free(&res);

    CHECK_INT(tc_request(proto, port, "POST", "/echo", NULL, body, len, &res), 0);
    CHECK_INT(res.status, 200);
    CHECK(res.body_len == len && memcmp(res.body, body, len) == 0);
    CHECK_STR(tc_header(&res, "x-method"), "POST");
    tc_response_free(&res);

    CHECK_INT(tc_request(proto, port, "GET", "/big", NULL, NULL, 0, &res), 0);
    CHECK(big_ok(res.body, res.body_len));
    tc_response_free(&res);
    CHECK_INT(tc_request(proto, port, "GET", "/big-chunked", NULL, NULL, 0, &res), 0);
    CHECK(big_ok(res.body, res.body_len));
    tc_response_free(&res);
    CHECK_INT(tc_request(proto, port, "GET", "/chunked", NULL, NULL, 0, &res), 0);
    CHECK_STR(res.body, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    tc_response_free(&res);

    CHECK_INT(tc_request(proto, port, "HEAD", "/big", NULL, NULL, 0, &res), 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.body_len, 0);
    tc_response_free(&res);
    CHECK_INT(tc_request(proto, port, "GET", "/status/503", NULL, NULL, 0, &res), 0);
    CHECK_INT(res.status, 503);
    tc_response_free(&res);
    free(body);
}

TEST(h2c)
{
    h2_common(TC_H2C, srv.port);
}

TEST(h2_tls)
{
    h2_common(TC_H2_TLS, tls_port);
}

TEST(tls_without_h2_fails)
{
    char tls_env[64], cert_env[512], key_env[512];
    const char *env[] = {tls_env, cert_env, key_env, "SELFTEST_NO_H2=1", NULL};
    int port = tc_free_port();
    tc_server_t s2;
    tc_response_t res;
    snprintf(tls_env, sizeof(tls_env), "SELFTEST_TLS_PORT=%d", port);
    snprintf(cert_env, sizeof(cert_env), "SELFTEST_CERT=%s", cert);
    snprintf(key_env, sizeof(key_env), "SELFTEST_KEY=%s", key);
    CHECK_INT(tc_server_start(&s2, env), 0);
    CHECK_INT(tc_request(TC_H2_TLS, port, "GET", "/", NULL, NULL, 0, &res), -1);
    CHECK_INT(res.status, 0);
    CHECK(res.body != NULL && res.headers != NULL);
    tc_response_free(&res);
    CHECK_INT(tc_server_stop(&s2), 0);
}

TEST(refused)
{
    tc_response_t res;
    int port = tc_free_port();
    for (int proto = TC_HTTP1; proto <= TC_H2_TLS; ++proto) {
        CHECK_INT(tc_request(proto, port, "GET", "/", NULL, NULL, 0, &res), -1);
        CHECK_INT(res.status, 0);
        CHECK_STR(res.body, "");
        CHECK(tc_header(&res, "x") == NULL);
        tc_response_free(&res);
    }
    CHECK_INT(tc_connect(port), -1);
}

TEST(raw_keep_alive)
{
    tc_response_t res;
    int fd = tc_connect(srv.port);
    char req[128];
    snprintf(req, sizeof(req), "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(fd >= 0);
    for (int i = 0; i < 3; ++i) {
        CHECK_INT(tc_write_all(fd, req, strlen(req)), 0);
        CHECK_INT(tc_read_response(fd, "GET", 5000, &res), 0);
        CHECK_INT(res.status, 200);
        CHECK_STR(res.body, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
        tc_response_free(&res);
    }
    close(fd);
}

TEST(request_timeout)
{
    tc_response_t res;
    for (int proto = TC_HTTP1; proto <= TC_H2C; ++proto) {
        double t = now_s();
        CHECK_INT(tc_request(proto, srv.port, "GET", "/hang", NULL, NULL, 0, &res), -1);
        t = now_s() - t;
        CHECK(t > 9.5 && t < 11);
        CHECK_INT(res.status, 0);
        tc_response_free(&res);
    }
}

/* ---- load ---- */

static void print_load(const char *what, tc_load_t *l)
{
    printf("# load %s: %d connections, %llu ok, %llu failed [0]=%llu [2]=%llu [4]=%llu [5]=%llu in %.3f s = %.0f req/s, "
           "max latency %.2f ms\n",
           what, l->connections, (unsigned long long)l->ok, (unsigned long long)l->failed, (unsigned long long)l->status_counts[0],
           (unsigned long long)l->status_counts[2], (unsigned long long)l->status_counts[4],
           (unsigned long long)l->status_counts[5], l->elapsed_s, (l->ok + l->failed) / l->elapsed_s, l->latency_max_ms);
}

TEST(load_requests)
{
    tc_load_t l = {.port = srv.port, .connections = 50, .requests = 20000, .method = "GET", .path = "/"};
    CHECK_INT(tc_load_run(&l), 0);
    print_load("GET /", &l);
    CHECK_INT(l.ok, 20000);
    CHECK_INT(l.failed, 0);
    CHECK_INT(l.status_counts[2], 20000);
    CHECK(l.elapsed_s > 0 && l.latency_max_ms > 0);

    tc_load_t c = {.port = srv.port, .connections = 50, .requests = 20000, .method = "GET", .path = "/chunked"};
    CHECK_INT(tc_load_run(&c), 0);
    print_load("GET /chunked", &c);
    CHECK_INT(c.ok, 20000);
    CHECK_INT(c.failed, 0);

    tc_load_t p = {.port = srv.port,
                   .connections = 50,
                   .requests = 20000,
                   .method = "POST",
                   .path = "/echo",
                   .headers = "Content-Type: text/plain\r\n",
                   .body = "{\"hello\": \"world\"}"};
    CHECK_INT(tc_load_run(&p), 0);
    print_load("POST /echo", &p);
    CHECK_INT(p.ok, 20000);

    tc_load_t s = {.port = srv.port, .connections = 10, .requests = 5000, .method = "GET", .path = "/status/404"};
    CHECK_INT(tc_load_run(&s), 0);
    CHECK_INT(s.ok, 0);
    CHECK_INT(s.failed, 5000);
    CHECK_INT(s.status_counts[4], 5000);

    tc_load_t h = {.port = srv.port, .connections = 4, .requests = 1000, .method = "HEAD", .path = "/big"};
    CHECK_INT(tc_load_run(&h), 0);
    CHECK_INT(h.ok, 1000);

    tc_load_t b = {.port = srv.port, .connections = 8, .requests = 200, .method = "GET", .path = "/big-chunked"};
    CHECK_INT(tc_load_run(&b), 0);
    CHECK_INT(b.ok, 200);
    print_load("GET /big-chunked (1 MiB)", &b);

    tc_load_t few = {.port = srv.port, .connections = 50, .requests = 3, .path = "/"};
    CHECK_INT(tc_load_run(&few), 0);
    CHECK_INT(few.ok, 3);

    tc_load_t bad = {.port = srv.port, .connections = 0, .requests = 3};
    CHECK_INT(tc_load_run(&bad), -1);
}

TEST(load_seconds_and_thread)
{
    tc_load_t l = {.port = srv.port, .connections = 50, .seconds = 1.0, .method = "GET", .path = "/"};
    tc_load_t m = {.port = srv.port, .connections = 20, .requests = 10000, .seconds = 30, .path = "/chunked"};
    CHECK_INT(tc_load_start(&l), 0);
    CHECK_INT(tc_load_start(&m), 0);
    CHECK_INT(tc_load_join(&m), 0);
    CHECK_INT(tc_load_join(&l), 0);
    CHECK_INT(tc_load_join(&l), -1);
    print_load("GET / for 1 s on a thread", &l);
    CHECK(l.elapsed_s >= 1.0 && l.elapsed_s < 1.2);
    CHECK(l.ok > 1000);
    CHECK_INT(l.failed, 0);
    CHECK_INT(m.ok, 10000);
}

TEST(load_refused)
{
    tc_load_t l = {.port = tc_free_port(), .connections = 5, .requests = 100, .path = "/"};
    CHECK_INT(tc_load_run(&l), 0);
    CHECK_INT(l.ok, 0);
    CHECK_INT(l.failed, 100);
    CHECK_INT(l.status_counts[0], 100);
    CHECK(l.elapsed_s < 2);
}

TEST(load_timeout)
{
    tc_load_t l = {.port = srv.port, .connections = 3, .requests = 3, .path = "/hang"};
    CHECK_INT(tc_load_run(&l), 0);
    CHECK_INT(l.failed, 3);
    CHECK_INT(l.status_counts[0], 3);
    CHECK(l.elapsed_s > 9.9 && l.elapsed_s < 10.5);
}

/* The load goes on while the server restarts: requests fail while it is down and succeed again after. */
TEST(load_across_restart)
{
    char listen_env[64];
    const char *env[] = {listen_env, NULL};
    tc_server_t s2;
    int port = tc_free_port();
    snprintf(listen_env, sizeof(listen_env), "SFF_LISTEN=127.0.0.1:%d", port);
    CHECK_INT(tc_server_start(&s2, env), 0);
    CHECK_INT(s2.port, port);
    tc_load_t l = {.port = port, .connections = 10, .seconds = 1.5, .path = "/"};
    CHECK_INT(tc_load_start(&l), 0);
    usleep(300000);
    CHECK_INT(tc_server_stop(&s2), 0);
    usleep(200000);
    CHECK_INT(tc_server_start(&s2, env), 0);
    CHECK_INT(tc_load_join(&l), 0);
    print_load("GET / across a restart", &l);
    CHECK(l.ok > 1000);
    CHECK(l.failed > 0);
    CHECK_INT(l.failed, l.status_counts[0]);
    CHECK_INT(tc_server_stop(&s2), 0);
}

/* ---- the server ---- */

TEST(server_env_and_log)
{
    const char *env[] = {"SELFTEST_X=1", "SELFTEST_Y=y", "SELFTEST_X=2", NULL};
    tc_server_t s2;
    char expect[600], *log;
    char dir[256];
    CHECK_INT(tc_server_start(&s2, env), 0);
    CHECK(s2.pid > 0 && s2.port > 0);
    CHECK(is_dir(s2.dir));
    CHECK(strstr(s2.dir, "/sff-test-") != NULL);
    CHECK(tc_server_log_contains(&s2, "env SELFTEST_X=2\n"));
    CHECK(!tc_server_log_contains(&s2, "SELFTEST_X=1"));
    CHECK(tc_server_log_contains(&s2, "env SELFTEST_Y=y\n"));
    snprintf(expect, sizeof(expect), "env SFF_LISTEN=127.0.0.1:%d\n", s2.port);
    CHECK(tc_server_log_contains(&s2, expect));
    char bin_dir[256];
    snprintf(bin_dir, sizeof(bin_dir), "%s", server_bin);
    *strrchr(bin_dir, '/') = '\0';
    snprintf(expect, sizeof(expect), "env SFF_FUNCTIONS_DIR=%s/functions\n", bin_dir);
    CHECK(tc_server_log_contains(&s2, expect));
    CHECK((log = tc_server_log(&s2)) != NULL && strstr(log, "listening on") != NULL);
    free(log);
    snprintf(expect, sizeof(expect), "http://127.0.0.1:%d", s2.port);
    CHECK_STR(s2.url, expect);
    snprintf(dir, sizeof(dir), "%s", s2.dir);
    CHECK_INT(tc_server_stop(&s2), 0);
    CHECK(!is_dir(dir));
    CHECK_INT(tc_server_stop(&s2), -1);
}

TEST(server_start_failures)
{
    const char *exit_env[] = {"SELFTEST_EXIT=1", NULL};
    tc_server_t s2;
    double t = now_s();
    CHECK_INT(tc_server_start(&s2, exit_env), -1);
    CHECK(now_s() - t < 2);
    CHECK_INT(s2.pid, 0);

    setenv("SFF_BIN", "/nonexistent/sff", 1);
    CHECK_INT(tc_server_start(&s2, NULL), -1);
    setenv("SFF_BIN", server_bin, 1);
}

TEST(server_never_healthy)
{
    char script[] = "/tmp/sff-selftest-XXXXXX";
    int fd = mkstemp(script);
    const char *text = "#!/bin/sh\necho \"sleepy $1\"\nexec sleep 100\n";
    CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    fchmod(fd, 0755);
    close(fd);
    setenv("SFF_BIN", script, 1);
    tc_server_t s2;
    double t = now_s();
    CHECK_INT(tc_server_start(&s2, NULL), -1);
    t = now_s() - t;
    CHECK(t > 9.9 && t < 11.5);
    setenv("SFF_BIN", server_bin, 1);
    unlink(script);
}

TEST(server_stop_kills_group)
{
    const char *env[] = {"SELFTEST_FORK=1", NULL};
    tc_server_t s2;
    CHECK_INT(tc_server_start(&s2, env), 0);
    pid_t pgid = s2.pid;
    CHECK_INT(tc_server_signal(&s2, 0), 0);
    CHECK(group_alive(pgid));
    int status = tc_server_stop(&s2);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(!group_alive(pgid));
}

TEST(server_stop_kills_stubborn)
{
    const char *env[] = {"SELFTEST_IGNORE_TERM=1", "SELFTEST_FORK=1", NULL};
    tc_server_t s2;
    CHECK_INT(tc_server_start(&s2, env), 0);
    pid_t pgid = s2.pid;
    double t = now_s();
    int status = tc_server_stop(&s2);
    t = now_s() - t;
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(t > 14.9 && t < 16);
    CHECK(!group_alive(pgid));
}

TEST(server_signal)
{
    tc_server_t s2;
    CHECK_INT(tc_server_start(&s2, NULL), 0);
    CHECK_INT(tc_server_signal(&s2, SIGUSR1), 0);
    int status = tc_server_stop(&s2);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1);
    CHECK_INT(tc_server_signal(&s2, SIGUSR1), -1);
}

/* A test process that dies without stopping sff takes sff with it (its temp dir stays: it is removed here). */
TEST(server_dies_with_test)
{
    int fds[2];
    pid_t child;
    tc_server_t s2 = {0};
    CHECK_INT(pipe(fds), 0);
    if ((child = fork()) == 0) {
        close(fds[0]);
        if (tc_server_start(&s2, NULL) == 0 && write(fds[1], &s2, sizeof(s2)) == sizeof(s2))
            raise(SIGKILL);
        _exit(1);
    }
    close(fds[1]);
    CHECK(read(fds[0], &s2, sizeof(s2)) == sizeof(s2));
    close(fds[0]);
    waitpid(child, NULL, 0);
    int gone = 0;
    for (int i = 0; i < 200 && !gone; ++i) {
        gone = kill(s2.pid, 0) != 0 && errno == ESRCH;
        usleep(10000);
    }
    CHECK(s2.pid > 0 && gone);
    if (!gone && s2.pid > 0)
        kill(s2.pid, SIGKILL);
    if (s2.dir[0] != '\0') {
        unlink(s2.log);
        CHECK_INT(rmdir(s2.dir), 0);
    }
}

int main(int argc, char **argv)
{
    char tls_env[64], cert_env[512], key_env[512];
    const char *env[] = {tls_env, cert_env, key_env, NULL};
    int quick = getenv("SELFTEST_QUICK") != NULL;

    if (argc != 4) {
        fprintf(stderr, "usage: %s SERVER-BIN CERT KEY\n", argv[0]);
        return 2;
    }
    server_bin = argv[1];
    cert = argv[2];
    key = argv[3];
    setenv("SFF_BIN", server_bin, 1);
    tls_port = tc_free_port();
    snprintf(tls_env, sizeof(tls_env), "SELFTEST_TLS_PORT=%d", tls_port);
    snprintf(cert_env, sizeof(cert_env), "SELFTEST_CERT=%s", cert);
    snprintf(key_env, sizeof(key_env), "SELFTEST_KEY=%s", key);
    if (tc_server_start(&srv, env) != 0)
        return 1;

    RUN(parser_chunked_interim_trailers);
    RUN(parser_framing);
    RUN(http1_get);
    RUN(http1_echo_and_headers);
    RUN(http1_chunked_head_status);
    RUN(h2c);
    RUN(h2_tls);
    RUN(tls_without_h2_fails);
    RUN(refused);
    RUN(raw_keep_alive);
    RUN(load_requests);
    RUN(load_seconds_and_thread);
    RUN(load_refused);
    RUN(load_across_restart);
    RUN(server_env_and_log);
    RUN(server_start_failures);
    RUN(server_stop_kills_group);
    RUN(server_signal);
    RUN(server_dies_with_test);
    if (!quick) {
        RUN(request_timeout);
        RUN(load_timeout);
        RUN(server_never_healthy);
        RUN(server_stop_kills_stubborn);
    }
    CHECK_INT(tc_server_stop(&srv), 0);
    return test_done();
}
