/* The server: HTTP/1.1, h2c, h2 over TLS, routing, the envelope, request ids, CORS, gzip, the
 * process model (workers, respawn, drain), and the CLI. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/setup.h"
#include "test.h"

static tc_server_t srv;
static char fdir[512];

static const char *error_code(const tc_response_t *res)
{
    static char code[64];
    json_t *j = tc_json(res->body);
    snprintf(code, sizeof(code), "%s", json_string_value(json_object_get(json_object_get(j, "error"), "code")) ?: "(none)");
    json_decref(j);
    return code;
}

TEST(hello_over_http1)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/examples/hello", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.http_version, 11);
    CHECK_STR(res.body, "{\"hello\":\"world\"}");
    CHECK(tc_header(&res, "content-type") != NULL && strstr(tc_header(&res, "content-type"), "application/json") != NULL);
    CHECK(tc_header(&res, "x-request-id") != NULL);
    tc_response_free(&res);
}

TEST(hello_over_h2c)
{
    tc_response_t res;
    CHECK(tc_request(TC_H2C, srv.port, "GET", "/examples/hello", NULL, NULL, 0, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.http_version, 20);
    CHECK_STR(res.body, "{\"hello\":\"world\"}");
    CHECK(tc_header(&res, "x-request-id") != NULL);
    tc_response_free(&res);
}

TEST(head_has_no_body)
{
    tc_response_t res;
    CHECK(tc_request(TC_HTTP1, srv.port, "HEAD", "/examples/hello", NULL, NULL, 0, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.body_len, 0);
    CHECK_STR(tc_header(&res, "content-length"), "17");
    tc_response_free(&res);
    /* on one keep-alive connection, a HEAD's response must not carry the body (or the next
     * response would be read from the middle of it) */
    const char *paths[] = {"/examples/hello", "/nope", "/_metrics"};
    for (size_t i = 0; i < 3; i++) {
        int fd = tc_connect(srv.port);
        char req[512], buf[65536];
        snprintf(req, sizeof(req),
                 "HEAD %s HTTP/1.1\r\nHost: x\r\n\r\nGET /examples/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 paths[i]);
        CHECK(fd >= 0 && tc_write_all(fd, req, strlen(req)) == 0);
        size_t n = 0;
        ssize_t r;
        while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
            n += (size_t)r;
        buf[n] = '\0';
        close(fd);
        char *second = strstr(buf + 1, "HTTP/1.1 200");
        CHECK(strncmp(buf, "HTTP/1.1 ", 9) == 0 && second != NULL);
        /* the HEAD's part ends with its headers */
        CHECK(second != NULL && second - buf >= 4 && memcmp(second - 4, "\r\n\r\n", 4) == 0);
        CHECK(n >= 17 && strcmp(buf + n - 17, "{\"hello\":\"world\"}") == 0);
    }
    CHECK(tc_request(TC_H2C, srv.port, "HEAD", "/examples/hello", NULL, NULL, 0, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.body_len, 0);
    tc_response_free(&res);
}

TEST(not_found_is_an_envelope)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/nope", "X-Request-Id: abc-123\r\n", &res) == 0);
    CHECK_INT(res.status, 404);
    CHECK_STR(error_code(&res), "not_found");
    /* a safe incoming id is kept, in the header and in the envelope */
    CHECK_STR(tc_header(&res, "x-request-id"), "abc-123");
    CHECK(strstr(res.body, "\"request_id\":\"abc-123\"") != NULL);
    tc_response_free(&res);
}

TEST(unsafe_request_id_is_replaced)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/examples/hello", "X-Request-Id: a\"b<script>\r\n", &res) == 0);
    const char *id = tc_header(&res, "x-request-id");
    CHECK(id != NULL && strchr(id, '"') == NULL && strchr(id, '<') == NULL && strlen(id) > 8);
    tc_response_free(&res);
}

TEST(wrong_method_is_405_with_allow)
{
    tc_response_t res;
    CHECK(tc_request(TC_HTTP1, srv.port, "DELETE", "/examples/hello", NULL, NULL, 0, &res) == 0);
    CHECK_INT(res.status, 405);
    CHECK_STR(error_code(&res), "method_not_allowed");
    CHECK_STR(tc_header(&res, "allow"), "GET, HEAD, OPTIONS");
    tc_response_free(&res);
}

TEST(options_lists_methods)
{
    tc_response_t res;
    CHECK(tc_request(TC_HTTP1, srv.port, "OPTIONS", "/fx/echo", NULL, NULL, 0, &res) == 0);
    CHECK_INT(res.status, 204);
    CHECK_STR(tc_header(&res, "allow"), "POST, PUT, OPTIONS");
    tc_response_free(&res);
}

TEST(path_params_and_wildcard)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/fx/params/one/t%C3%A9/rest/of/it?q=1", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    json_t *j = tc_json(res.body), *in = json_object_get(j, "input");
    CHECK_STR(json_string_value(json_object_get(in, "a")), "one");
    CHECK_STR(json_string_value(json_object_get(in, "b")), "t\xc3\xa9");
    CHECK_STR(json_string_value(json_object_get(in, "*")), "rest/of/it");
    CHECK_STR(json_string_value(json_object_get(in, "q")), "1");
    CHECK_STR(json_string_value(json_object_get(j, "a")), "one");
    json_decref(j);
    tc_response_free(&res);
}

TEST(function_errors_use_the_envelope)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/fx/fail", NULL, &res) == 0);
    CHECK_INT(res.status, 409);
    json_t *j = tc_json(res.body), *e = json_object_get(j, "error");
    CHECK_STR(json_string_value(json_object_get(e, "code")), "conflict");
    CHECK_STR(json_string_value(json_object_get(e, "message")), "that name is taken");
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(e, "details"), 0), "path")), "/name");
    CHECK_STR(json_string_value(json_object_get(e, "request_id")), tc_header(&res, "x-request-id"));
    json_decref(j);
    tc_response_free(&res);
}

TEST(cookies_headers_status)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/fx/cookie", NULL, &res) == 0);
    CHECK_INT(res.status, 201);
    CHECK_STR(tc_header(&res, "x-fixture"), "yes");
    const char *c = tc_header(&res, "set-cookie");
    CHECK(c != NULL && strstr(c, "session=abc123") != NULL && strstr(c, "HttpOnly") != NULL && strstr(c, "Max-Age=60") != NULL &&
          strstr(c, "SameSite=Lax") != NULL);
    tc_response_free(&res);
}

TEST(raw_response)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/fx/raw", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_STR(res.body, "plain text\n");
    CHECK(strncmp(tc_header(&res, "content-type"), "text/plain", 10) == 0);
    tc_response_free(&res);
}

TEST(no_response_is_204)
{
    tc_response_t res;
    char *tok = tc_token("u1", NULL, 60), hdr[2048];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok);
    CHECK(tc_request(TC_HTTP1, srv.port, "DELETE", "/fx/nothing", hdr, NULL, 0, &res) == 0);
    CHECK_INT(res.status, 204);
    free(tok);
    tc_response_free(&res);
}

TEST(in_process_calls)
{
    tc_response_t res;
    char *tok = tc_token("caller", NULL, 60), hdr[2048];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", tok);
    CHECK(tc_get(srv.port, "/examples/compose", hdr, &res) == 0);
    CHECK_INT(res.status, 200);
    json_t *j = tc_json(res.body);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "hello"), "hello")), "world");
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "me"), "sub")), "caller");
    json_decref(j);
    tc_response_free(&res);
    /* unbounded recursion stops at the depth limit with an error, not a crash */
    CHECK(tc_get(srv.port, "/fx/recurse", NULL, &res) == 0);
    CHECK_INT(res.status, 500);
    CHECK(strstr(res.body, "nested deeper") != NULL);
    tc_response_free(&res);
    free(tok);
}

TEST(gzip_when_accepted)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/fx/big", "Accept-Encoding: gzip\r\n", &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_STR(tc_header(&res, "content-encoding"), "gzip");
    CHECK(res.body_len > 0 && res.body_len < 20000);
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/fx/big", NULL, &res) == 0);
    CHECK(tc_header(&res, "content-encoding") == NULL);
    CHECK(res.body_len > 50000);
    tc_response_free(&res);
}

TEST(cors_preflight_and_credentials)
{
    tc_response_t res;
    CHECK(tc_request(TC_HTTP1, srv.port, "OPTIONS", "/fx/echo",
                     "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n"
                     "Access-Control-Request-Headers: content-type, authorization\r\n",
                     NULL, 0, &res) == 0);
    CHECK_INT(res.status, 204);
    CHECK_STR(tc_header(&res, "access-control-allow-origin"), "https://app.example");
    CHECK_STR(tc_header(&res, "access-control-allow-credentials"), "true");
    CHECK_STR(tc_header(&res, "access-control-allow-methods"), "POST, PUT, OPTIONS");
    CHECK_STR(tc_header(&res, "access-control-allow-headers"), "content-type, authorization");
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/examples/hello", "Origin: https://evil.example\r\n", &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK(tc_header(&res, "access-control-allow-origin") == NULL);
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/examples/hello", "Origin: https://app.example\r\n", &res) == 0);
    CHECK_STR(tc_header(&res, "access-control-allow-origin"), "https://app.example");
    CHECK_STR(tc_header(&res, "vary"), "Origin");
    tc_response_free(&res);
}

TEST(route_timeout_is_504)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/fx/slow?ms=5000", NULL, &res) == 0);
    CHECK_INT(res.status, 504);
    CHECK_STR(error_code(&res), "timeout");
    tc_response_free(&res);
}

TEST(worker_crash_is_respawned_and_logged)
{
    tc_response_t res;
    tc_get(srv.port, "/fx/crash", NULL, &res); /* the connection dies with the worker */
    tc_response_free(&res);
    int up = 0;
    for (int i = 0; i < 100 && !up; i++) {
        usleep(50000);
        up = tc_get(srv.port, "/examples/hello", NULL, &res) == 0 && res.status == 200;
        tc_response_free(&res);
    }
    CHECK(up);
    CHECK(tc_server_log_contains(&srv, "respawning"));
}

TEST(tls_h2_with_alpn)
{
    tc_server_t tls;
    char cert[600], key[600], env_cert[700], env_key[700], env_fn[700];
    snprintf(cert, sizeof(cert), "%s/cert.pem", srv.dir);
    snprintf(key, sizeof(key), "%s/key.pem", srv.dir);
    CHECK(tc_sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost "
                "-keyout '%s' -out '%s' >/dev/null 2>&1",
                key, cert) == 0);
    snprintf(env_cert, sizeof(env_cert), "SFF_TLS_CERT=%s", cert);
    snprintf(env_key, sizeof(env_key), "SFF_TLS_KEY=%s", key);
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    const char *env[] = {env_cert, env_key, env_fn, "SFF_WORKERS=1", "SFF_SCHEMAS_DIR=schemas", NULL};
    if (tc_server_start(&tls, env) != 0) {
        CHECK(!"the TLS server starts");
        return;
    }
    tc_response_t res;
    CHECK(tc_request(TC_H2_TLS, tls.port, "GET", "/examples/hello", NULL, NULL, 0, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.http_version, 20);
    CHECK_STR(res.body, "{\"hello\":\"world\"}");
    tc_response_free(&res);
    /* TLS 1.1 is refused, TLS 1.2 accepted */
    CHECK(tc_sh("echo | openssl s_client -connect 127.0.0.1:%d -tls1_1 >/dev/null 2>&1", tls.port) != 0);
    CHECK(tc_sh("echo | openssl s_client -connect 127.0.0.1:%d -tls1_2 >/dev/null 2>&1", tls.port) == 0);
    /* cookies set under TLS are Secure */
    CHECK(tc_sh("curl -sk -D - https://127.0.0.1:%d/fx/cookie | grep -qi 'set-cookie:.*; Secure'", tls.port) == 0);
    tc_server_stop(&tls);
}

TEST(several_workers_share_the_port)
{
    tc_server_t multi;
    char env_fn[700];
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    const char *env[] = {env_fn, "SFF_WORKERS=3", "SFF_SCHEMAS_DIR=schemas", NULL};
    if (tc_server_start(&multi, env) != 0) {
        CHECK(!"the server starts");
        return;
    }
    int workers = tc_sh("test $(pgrep -P %d | wc -l) -eq 3", (int)multi.pid);
    CHECK_INT(workers, 0);
    tc_load_t load = {.port = multi.port, .connections = 12, .requests = 3000, .method = "GET", .path = "/examples/hello"};
    CHECK(tc_load_run(&load) == 0);
    CHECK_INT(load.ok, 3000);
    CHECK_INT(load.failed, 0);
    tc_server_stop(&multi);
}

TEST(sigterm_drains_in_flight_requests)
{
    tc_server_t d;
    char env_fn[700];
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    const char *env[] = {env_fn, "SFF_WORKERS=1", "SFF_SCHEMAS_DIR=schemas", NULL};
    if (tc_server_start(&d, env) != 0) {
        CHECK(!"the server starts");
        return;
    }
    tc_load_t load = {.port = d.port, .connections = 5, .requests = 5, .method = "GET", .path = "/fx/nap?ms=700"};
    /* an idle keep-alive connection must not hold the worker until the drain deadline (10 s) */
    int idle = tc_connect(d.port);
    const char *req = "GET /examples/hello HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[1024];
    CHECK(idle >= 0 && tc_write_all(idle, req, strlen(req)) == 0 && read(idle, buf, sizeof(buf)) > 0);
    tc_load_start(&load);
    usleep(200000);
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    tc_server_signal(&d, SIGTERM);
    tc_load_join(&load);
    CHECK_INT(load.ok, 5);
    int status = tc_server_stop(&d);
    gettimeofday(&t1, NULL);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_usec - t0.tv_usec) / 1e6;
    if (took >= 5)
        fprintf(stderr, "  stopping took %.1f s\n", took);
    CHECK(took < 5);
    close(idle);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* new connections are refused once draining began */
    CHECK(tc_connect(d.port) < 0);
}

TEST(cli)
{
    CHECK(tc_sh("'%s' version | grep -q '^sff '", tc_build_path("sff")) == 0);
    CHECK(tc_sh("'%s' help | grep -q 'sff serve'", tc_build_path("sff")) == 0);
    CHECK(tc_sh("'%s' bogus >/dev/null 2>&1", tc_build_path("sff")) == 2);
    CHECK(tc_sh("SFF_JWT_SECRET= '%s' token --sub x >/dev/null 2>&1", tc_build_path("sff")) == 2);
    CHECK(tc_sh("SFF_JWT_SECRET=x '%s' token >/dev/null 2>&1", tc_build_path("sff")) == 2);
    CHECK(tc_sh("SFF_LISTEN=nonsense '%s' serve >/dev/null 2>&1", tc_build_path("sff")) == 78);
    /* a port another server listens on is refused, even though workers use SO_REUSEPORT */
    CHECK(tc_sh("SFF_LISTEN=127.0.0.1:%d timeout 5 '%s' serve 2>&1 | grep -q 'in use by another process'", srv.port,
                tc_build_path("sff")) == 0);
    char *tok = tc_token("someone", "admin", 60);
    CHECK(tok != NULL && strchr(tok, '.') != NULL);
    free(tok);
}

int main(void)
{
    char env_fn[700];
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0)
        return 1;
    char base[] = "/tmp/sff-it10-XXXXXX";
    if (mkdtemp(base) == NULL || tc_functions_dir(base, fdir, sizeof(fdir)) != 0)
        return 1;
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    const char *env[] = {
        env_fn, "SFF_WORKERS=1", "SFF_SCHEMAS_DIR=schemas", "SFF_JWT_SECRET=" TC_SECRET, "SFF_CORS_ORIGINS=https://app.example",
        NULL};
    if (tc_server_start(&srv, env) != 0)
        return 1;
    RUN(hello_over_http1);
    RUN(hello_over_h2c);
    RUN(head_has_no_body);
    RUN(not_found_is_an_envelope);
    RUN(unsafe_request_id_is_replaced);
    RUN(wrong_method_is_405_with_allow);
    RUN(options_lists_methods);
    RUN(path_params_and_wildcard);
    RUN(function_errors_use_the_envelope);
    RUN(cookies_headers_status);
    RUN(raw_response);
    RUN(no_response_is_204);
    RUN(in_process_calls);
    RUN(gzip_when_accepted);
    RUN(cors_preflight_and_credentials);
    RUN(route_timeout_is_504);
    RUN(worker_crash_is_respawned_and_logged);
    RUN(tls_h2_with_alpn);
    RUN(several_workers_share_the_port);
    RUN(sigterm_drains_in_flight_requests);
    RUN(cli);
    tc_server_stop(&srv);
    tc_sh("rm -rf '%s'", base);
    return test_done();
}
