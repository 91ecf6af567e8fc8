/* Static files through h2o's file handler, the SPA fallback, and every traversal form refused
 * before h2o sees it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/setup.h"
#include "test.h"

static tc_server_t srv;
static char base[64];

TEST(files_with_etag_range_and_types)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/app.js", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_STR(res.body, "console.log('app');\n");
    const char *etag = tc_header(&res, "etag");
    char saved[128] = "";
    if (etag != NULL)
        snprintf(saved, sizeof(saved), "%s", etag);
    CHECK(saved[0] != '\0');
    CHECK(strstr(tc_header(&res, "content-type"), "javascript") != NULL);
    CHECK(tc_header(&res, "x-request-id") != NULL);
    tc_response_free(&res);

    char hdr[256];
    snprintf(hdr, sizeof(hdr), "If-None-Match: %s\r\n", saved);
    CHECK(tc_get(srv.port, "/app.js", hdr, &res) == 0);
    CHECK_INT(res.status, 304);
    tc_response_free(&res);

    CHECK(tc_get(srv.port, "/app.js", "Range: bytes=0-6\r\n", &res) == 0);
    CHECK_INT(res.status, 206);
    CHECK_STR(res.body, "console");
    tc_response_free(&res);

    CHECK(tc_request(TC_H2C, srv.port, "GET", "/css/site.css", NULL, NULL, 0, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK(strstr(tc_header(&res, "content-type"), "text/css") != NULL);
    tc_response_free(&res);
}

TEST(root_serves_index)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK(strstr(res.body, "<title>spa</title>") != NULL);
    tc_response_free(&res);
}

TEST(spa_history_fallback)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/todos/42/edit", "Accept: text/html,application/xhtml+xml\r\n", &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK(strstr(res.body, "<title>spa</title>") != NULL);
    tc_response_free(&res);
    /* not for API clients that want JSON, nor for missing assets */
    CHECK(tc_get(srv.port, "/todos/42/edit", "Accept: application/json\r\n", &res) == 0);
    CHECK_INT(res.status, 404);
    CHECK(strstr(res.body, "\"code\":\"not_found\"") != NULL);
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/missing.js", NULL, &res) == 0);
    CHECK_INT(res.status, 404);
    tc_response_free(&res);
    /* a page that shares its path with an API route of another method (POST /fx/echo) */
    CHECK(tc_get(srv.port, "/fx/echo", "Accept: text/html\r\n", &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK(strstr(res.body, "<title>spa</title>") != NULL);
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/fx/echo", "Accept: application/json\r\n", &res) == 0);
    CHECK_INT(res.status, 405);
    tc_response_free(&res);
    /* routes still win over files and the fallback */
    CHECK(tc_get(srv.port, "/examples/hello", "Accept: text/html\r\n", &res) == 0);
    CHECK_STR(res.body, "{\"hello\":\"world\"}");
    tc_response_free(&res);
}

TEST(traversal_is_refused)
{
    const char *bad[] = {"/index.html%00.txt",
                         "/%00",
                         "/../secret.txt",
                         "/css/../../secret.txt",
                         "/%2e%2e/secret.txt",
                         "/%2E%2e/secret.txt",
                         "/.%2e/secret.txt",
                         "/%252e%252e/secret.txt",
                         "/css/%2e%2e%2f%2e%2e%2fsecret.txt",
                         "/css%2f..%2f..%2fsecret.txt",
                         "/..%5csecret.txt",
                         "/css/./site.css",
                         "/.."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tc_response_t res;
        CHECK(tc_get(srv.port, bad[i], NULL, &res) == 0);
        if (res.status != 400)
            fprintf(stderr, "  %s -> %d\n", bad[i], res.status);
        CHECK_INT(res.status, 400);
        CHECK(res.body == NULL || strstr(res.body, "top secret") == NULL);
        tc_response_free(&res);
    }
    /* a raw socket request too, in case a client library normalises */
    int fd = tc_connect(srv.port);
    const char *req = "GET /../../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK(fd >= 0 && tc_write_all(fd, req, strlen(req)) == 0);
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    CHECK(strncmp(buf, "HTTP/1.1 400", 12) == 0);
    CHECK(strstr(buf, "top secret") == NULL);
    close(fd);
}

TEST(dotfiles_and_names_with_dots_still_work)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/a..b.txt", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    tc_response_free(&res);
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

int main(void)
{
    char fdir[512], www[600], env_fn[700], env_static[700];
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0)
        return 1;
    snprintf(base, sizeof(base), "/tmp/sff-it50-XXXXXX");
    if (mkdtemp(base) == NULL || tc_functions_dir(base, fdir, sizeof(fdir)) != 0)
        return 1;
    snprintf(www, sizeof(www), "%s/www", base);
    if (tc_sh("mkdir -p '%s/css'", www) != 0 ||
        write_file(www, "index.html", "<!doctype html><html><head><title>spa</title></head><body></body></html>\n") != 0 ||
        write_file(www, "app.js", "console.log('app');\n") != 0 || write_file(www, "css/site.css", "body{margin:0}\n") != 0 ||
        write_file(www, "a..b.txt", "dots\n") != 0 || write_file(base, "secret.txt", "top secret\n") != 0)
        return 1;
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    snprintf(env_static, sizeof(env_static), "SFF_STATIC_DIR=%s", www);
    const char *env[] = {env_fn, env_static, "SFF_WORKERS=1", "SFF_SCHEMAS_DIR=schemas", NULL};
    if (tc_server_start(&srv, env) != 0)
        return 1;
    RUN(files_with_etag_range_and_types);
    RUN(root_serves_index);
    RUN(spa_history_fallback);
    RUN(traversal_is_refused);
    RUN(dotfiles_and_names_with_dots_still_work);
    tc_server_stop(&srv);
    tc_sh("rm -rf '%s'", base);
    return test_done();
}
