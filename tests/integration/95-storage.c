/* Functions using object storage through the SDK: the file driver, and S3 (s3rver behind a fault
 * proxy): uploads as raw bodies, downloads, listing, presigned URLs, key checks, storage failing,
 * and Postgres + Redis + storage asked at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/pg.h"
#include "lib/redis.h"
#include "lib/s3.h"
#include "lib/setup.h"
#include "test.h"

static tc_server_t file_srv, s3_srv;
static tc_s3_t s3;
static tc_proxy_t *proxy;
static tc_pg_t pg;
static tc_redis_t rs;
static char base[] = "/tmp/sff-it95-XXXXXX";

static double now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec * 1000 + (double)tv.tv_usec / 1000;
}

static int put(tc_server_t *srv, const char *path, const char *type, const char *body, size_t len, tc_response_t *res)
{
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "Content-Type: %s\r\n", type);
    return tc_request(TC_HTTP1, srv->port, "PUT", path, hdr, body, len, res);
}

/* The same behaviour from both drivers. */
static void exercise(tc_server_t *srv)
{
    tc_response_t res;
    CHECK(put(srv, "/fx/files/avatars/ada%20lovelace%2B1.png", "image/png", "\x89PNG\r\n\x1a\n-bytes", 14, &res) == 0);
    CHECK_INT(res.status, 201);
    json_t *info = tc_json(res.body);
    CHECK_INT(json_integer_value(json_object_get(info, "size")), 14);
    CHECK_STR(json_string_value(json_object_get(info, "content_type")), "image/png");
    json_decref(info);
    tc_response_free(&res);

    CHECK(tc_get(srv->port, "/fx/files/avatars/ada%20lovelace%2B1.png", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_INT(res.body_len, 14);
    CHECK(memcmp(res.body, "\x89PNG\r\n\x1a\n-bytes", 14) == 0);
    CHECK_STR(tc_header(&res, "content-type"), "image/png");
    tc_response_free(&res);

    /* a large object round-trips */
    size_t big = 3 * 1024 * 1024;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)(i * 7 + i / 1024);
    CHECK(put(srv, "/fx/files/big.bin", "application/octet-stream", data, big, &res) == 0);
    CHECK_INT(res.status, 201);
    tc_response_free(&res);
    CHECK(tc_get(srv->port, "/fx/files/big.bin", NULL, &res) == 0);
    CHECK_INT(res.body_len, big);
    CHECK(res.body_len == big && memcmp(res.body, data, big) == 0);
    tc_response_free(&res);
    free(data);

    /* list with pages */
    for (int i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/fx/files/list/item-%d", i);
        put(srv, path, "text/plain", "x", 1, &res);
        tc_response_free(&res);
    }
    CHECK(tc_get(srv->port, "/fx/files?prefix=list/&limit=3", NULL, &res) == 0);
    json_t *page = tc_json(res.body);
    CHECK_INT(json_array_size(json_object_get(page, "items")), 3);
    const char *next = json_string_value(json_object_get(page, "next"));
    CHECK(next != NULL);
    char path[2048];
    tc_response_free(&res);
    /* the token is opaque: pass it percent-encoded */
    char enc[1024];
    size_t e = 0;
    for (const char *p = next != NULL ? next : ""; *p && e + 4 < sizeof(enc); p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.')
            enc[e++] = *p;
        else
            e += (size_t)snprintf(enc + e, sizeof(enc) - e, "%%%02X", (unsigned char)*p);
    }
    enc[e] = '\0';
    snprintf(path, sizeof(path), "/fx/files?prefix=list/&limit=3&next=%s", enc);
    json_decref(page);
    CHECK(tc_get(srv->port, path, NULL, &res) == 0);
    page = tc_json(res.body);
    CHECK_INT(json_array_size(json_object_get(page, "items")), 2);
    CHECK(json_is_null(json_object_get(page, "next")));
    json_decref(page);
    tc_response_free(&res);

    /* delete, then it is gone */
    CHECK(tc_request(TC_HTTP1, srv->port, "DELETE", "/fx/files/big.bin", NULL, NULL, 0, &res) == 0);
    CHECK_INT(res.status, 204);
    tc_response_free(&res);
    CHECK(tc_get(srv->port, "/fx/files/big.bin", NULL, &res) == 0);
    CHECK_INT(res.status, 404);
    tc_response_free(&res);

    /* bad keys are refused before any storage is touched */
    CHECK(tc_get(srv->port, "/fx/files/a//b", NULL, &res) == 0);
    CHECK_INT(res.status, 400);
    tc_response_free(&res);
    CHECK(tc_get(srv->port, "/fx/files/%01control", NULL, &res) == 0);
    CHECK_INT(res.status, 400);
    tc_response_free(&res);
}

TEST(file_driver)
{
    exercise(&file_srv);
    tc_response_t res;
    CHECK(tc_get(file_srv.port, "/fx/presign/avatars/x.png", NULL, &res) == 0);
    CHECK_INT(res.status, 500); /* the file driver has no presigned URLs */
    tc_response_free(&res);
}

TEST(s3_driver)
{
    exercise(&s3_srv);
    tc_response_t res;
    CHECK(tc_get(s3_srv.port, "/fx/presign/avatars/ada%20lovelace%2B1.png", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    json_t *j = tc_json(res.body);
    const char *url = json_string_value(json_object_get(j, "url"));
    CHECK(url != NULL && strstr(url, "X-Amz-Signature=") != NULL);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "http://localhost:%d/sff-test/", s3.port);
    CHECK(url != NULL && strncmp(url, prefix, strlen(prefix)) == 0);
    /* the presigned URL fetches the object without sff */
    char out[128], got[64] = "";
    snprintf(out, sizeof(out), "%s/presigned.out", base);
    CHECK(url != NULL && tc_sh("curl -sf -o '%s' '%s'", out, url) == 0);
    FILE *f = fopen(out, "rb");
    size_t n = f != NULL ? fread(got, 1, sizeof(got), f) : 0;
    if (f != NULL)
        fclose(f);
    CHECK(n == 14 && memcmp(got, "\x89PNG\r\n\x1a\n-bytes", 14) == 0);
    json_decref(j);
    tc_response_free(&res);
}

TEST(s3_failures)
{
    tc_response_t res;
    /* 503 twice: a read is retried and succeeds */
    tc_proxy_fault(proxy, TC_FAULT_503, 0, 2);
    CHECK(tc_get(s3_srv.port, "/fx/files/avatars/ada%20lovelace%2B1.png", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    tc_response_free(&res);
    /* storage that keeps failing: 503 in the envelope */
    tc_proxy_fault(proxy, TC_FAULT_503, 0, 50);
    CHECK(tc_get(s3_srv.port, "/fx/files/avatars/ada%20lovelace%2B1.png", NULL, &res) == 0);
    CHECK_INT(res.status, 503);
    CHECK(strstr(res.body, "backend_unavailable") != NULL);
    tc_response_free(&res);
    tc_proxy_clear(proxy);
    /* a body cut midway is an error, never a truncated success */
    tc_proxy_fault(proxy, TC_FAULT_CUT, 5, 10);
    CHECK(tc_get(s3_srv.port, "/fx/files/avatars/ada%20lovelace%2B1.png", NULL, &res) == 0);
    CHECK(res.status >= 500);
    tc_response_free(&res);
    tc_proxy_clear(proxy);
}

TEST(three_backends_at_once)
{
    tc_response_t res;
    put(&s3_srv, "/fx/files/fan", "text/plain", "x", 1, &res);
    tc_response_free(&res);
    double best = 1e9;
    for (int i = 0; i < 4; i++) {
        tc_proxy_fault(proxy, TC_FAULT_DELAY, 50, 1);
        double t0 = now_ms();
        CHECK(tc_get(s3_srv.port, "/fx/fanout3?key=fan", NULL, &res) == 0);
        double took = now_ms() - t0;
        CHECK_INT(res.status, 200);
        json_t *j = tc_json(res.body);
        CHECK(json_object_get(j, "postgres") && json_object_get(j, "redis") && json_object_get(j, "storage"));
        json_decref(j);
        tc_response_free(&res);
        if (i > 0 && took < best)
            best = took;
    }
    fprintf(stderr, "  Postgres, Redis and storage, 50 ms each, at once: %.1f ms (one after another: >= 150 ms)\n", best);
    CHECK(best < 120);
}

/* storage's ok in GET /_ready, and its status */
static int storage_ready(tc_server_t *srv, int *status)
{
    tc_response_t res;
    tc_get(srv->port, "/_ready", NULL, &res);
    json_t *j = tc_json(res.body);
    int ok = json_is_true(json_object_get(json_object_get(json_object_get(j, "checks"), "storage"), "ok"));
    *status = res.status;
    json_decref(j);
    tc_response_free(&res);
    return ok;
}

/* /_ready follows storage: a probe lists a key every SFF_STORAGE_PROBE_MS (100 here). */
TEST(ready_follows_storage)
{
    int status, ok = 0;
    CHECK(storage_ready(&file_srv, &status) && status == 200);
    CHECK(storage_ready(&s3_srv, &status) && status == 200);
    tc_proxy_fault(proxy, TC_FAULT_503, 0, 1000000); /* storage answers 503 to everything */
    for (int i = 0; i < 100 && !ok; i++) {
        usleep(50000);
        ok = !storage_ready(&s3_srv, &status) && status == 503;
    }
    CHECK(ok);
    CHECK(tc_server_log_contains(&s3_srv, "storage does not answer"));
    tc_proxy_clear(proxy);
    ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        usleep(50000);
        ok = storage_ready(&s3_srv, &status) && status == 200;
    }
    CHECK(ok);
    CHECK(tc_server_log_contains(&s3_srv, "storage answers again"));
}

int main(void)
{
    char fdir[512], env_fn[700], env_file[700], env_s3[600], env_pg[600], env_redis[500];
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0)
        return 1;
    if (mkdtemp(base) == NULL || tc_functions_dir(base, fdir, sizeof(fdir)) != 0)
        return 1;
    if (tc_s3_start(&s3, "sff-test", NULL) != 0 || (proxy = tc_proxy_start(s3.port)) == NULL || tc_pg_start(&pg) != 0 ||
        tc_redis_start(&rs, NULL) != 0) {
        printf("not ok - backends_start\n");
        return 1;
    }
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    snprintf(env_file, sizeof(env_file), "SFF_STORAGE_URL=file://%s/objects", base);
    tc_sh("mkdir -p '%s/objects'", base);
    const char *env_f[] = {env_fn, env_file, "SFF_WORKERS=1", "SFF_SCHEMAS_DIR=schemas", "SFF_MAX_UPLOAD=8m", NULL};
    /* presigned URLs name another endpoint than sff's own way to storage (as browsers outside a
     * container network would see it) */
    snprintf(env_s3, sizeof(env_s3),
             "SFF_STORAGE_URL=s3://sff-test?endpoint=http://127.0.0.1:%d&region=us-east-1&public=http://localhost:%d",
             tc_proxy_port(proxy), s3.port);
    snprintf(env_pg, sizeof(env_pg), "SFF_PG_URL=%s", pg.url);
    snprintf(env_redis, sizeof(env_redis), "SFF_REDIS_URL=%s", rs.url);
    const char *env_s[] = {env_fn,
                           env_s3,
                           env_pg,
                           env_redis,
                           "SFF_S3_ACCESS_KEY=" TC_S3_ACCESS_KEY,
                           "SFF_S3_SECRET_KEY=" TC_S3_SECRET_KEY,
                           "SFF_WORKERS=1",
                           "SFF_SCHEMAS_DIR=schemas",
                           "SFF_MAX_UPLOAD=8m",
                           "SFF_MIGRATE=off",
                           "SFF_STORAGE_PROBE_MS=100",
                           NULL};
    if (tc_server_start(&file_srv, env_f) != 0 || tc_server_start(&s3_srv, env_s) != 0)
        return 1;
    RUN(file_driver);
    RUN(s3_driver);
    RUN(s3_failures);
    RUN(three_backends_at_once);
    RUN(ready_follows_storage);
    tc_server_stop(&file_srv);
    tc_server_stop(&s3_srv);
    CHECK(!tc_server_log_contains(&s3_srv, TC_S3_SECRET_KEY "X")); /* (the test key is public; secrets are never logged) */
    tc_proxy_stop(proxy);
    tc_s3_stop(&s3);
    tc_pg_stop(&pg);
    tc_redis_stop(&rs);
    tc_sh("rm -rf '%s'", base);
    return test_done();
}
