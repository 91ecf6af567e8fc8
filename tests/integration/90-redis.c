/* Functions using Redis through the SDK, against a real redis-server: commands, several at once,
 * the cache with invalidation, publish, route rate limits, readiness, and Redis going away. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/redis.h"
#include "lib/setup.h"
#include "test.h"

static tc_server_t srv;
static tc_redis_t rs;

static double now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec * 1000 + (double)tv.tv_usec / 1000;
}

static json_t *get_json(const char *path, int *status)
{
    tc_response_t res;
    tc_get(srv.port, path, NULL, &res);
    *status = res.status;
    json_t *j = tc_json(res.body);
    tc_response_free(&res);
    return j;
}

TEST(commands_and_several_at_once)
{
    int status;
    json_t *j = get_json("/fx/redis/incr?key=it90", &status);
    CHECK_INT(status, 200);
    CHECK_INT(json_integer_value(json_object_get(j, "value")), 1);
    json_decref(j);
    j = get_json("/fx/redis/incr?key=it90", &status);
    CHECK_INT(json_integer_value(json_object_get(j, "value")), 2);
    json_decref(j);
    j = get_json("/fx/redis/many", &status);
    CHECK_INT(status, 200);
    CHECK_INT(json_array_size(j), 3);
    CHECK_STR(json_string_value(json_array_get(j, 2)), "PONG");
    json_decref(j);
}

TEST(cache_and_invalidation)
{
    int status;
    json_t *a = get_json("/fx/cache?key=k1&tag=t1", &status);
    CHECK_INT(status, 200);
    CHECK(json_is_false(json_object_get(a, "hit")));
    json_t *b = get_json("/fx/cache?key=k1&tag=t1", &status);
    CHECK(json_is_true(json_object_get(b, "hit")));
    CHECK(json_equal(json_object_get(a, "value"), json_object_get(b, "value")));
    /* a write invalidates: the very next read misses and sees the new source */
    tc_response_t res;
    CHECK(tc_request(TC_HTTP1, srv.port, "POST", "/fx/cache/invalidate?tag=t1", NULL, "", 0, &res) == 0);
    CHECK_INT(res.status, 204);
    tc_response_free(&res);
    json_t *c = get_json("/fx/cache?key=k1&tag=t1", &status);
    CHECK(json_is_false(json_object_get(c, "hit")));
    CHECK(!json_equal(json_object_get(a, "value"), json_object_get(c, "value")));
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

/* A hit of sff_cache_get_text() answered with sff_respond_json_text(): the same bytes and headers
 * as the miss that stored it. */
TEST(cache_hit_as_stored)
{
    tc_response_t miss, hit, again;
    CHECK(tc_get(srv.port, "/fx/cache/text?key=k9&tag=t9", NULL, &miss) == 0);
    CHECK(tc_get(srv.port, "/fx/cache/text?key=k9&tag=t9", NULL, &hit) == 0);
    CHECK_INT(miss.status, 200);
    CHECK_INT(hit.status, 200);
    CHECK_STR(tc_header(&miss, "x-cache"), "miss");
    CHECK_STR(tc_header(&hit, "x-cache"), "hit");
    CHECK_STR(hit.body, miss.body);
    CHECK_INT(hit.body_len, miss.body_len);
    CHECK_STR(tc_header(&hit, "content-type"), "application/json; charset=utf-8");
    CHECK_STR(tc_header(&hit, "content-type"), tc_header(&miss, "content-type"));
    CHECK(strstr(hit.body, "caf\xc3\xa9 \\\"quoted\\\" <tag>") != NULL);
    /* invalidated: a miss again, with a new read of the source */
    tc_response_t res;
    CHECK(tc_request(TC_HTTP1, srv.port, "POST", "/fx/cache/invalidate?tag=t9", NULL, "", 0, &res) == 0);
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/fx/cache/text?key=k9&tag=t9", NULL, &again) == 0);
    CHECK_STR(tc_header(&again, "x-cache"), "miss");
    CHECK(strcmp(again.body, miss.body) != 0);
    tc_response_free(&miss);
    tc_response_free(&hit);
    tc_response_free(&again);
}

TEST(publish_reaches_a_subscriber)
{
    int fd = tc_redis_connect(&rs);
    const char *sub[] = {"SUBSCRIBE", "news"};
    char buf[4096];
    CHECK(fd >= 0 && tc_redis_send(fd, 2, sub, NULL) == 0);
    CHECK(tc_redis_read(fd, buf, sizeof(buf)) > 0); /* the subscription's confirmation */
    int status;
    json_t *j = get_json("/fx/publish?channel=news&message=hello-subscribers", &status);
    CHECK_INT(status, 204);
    json_decref(j);
    long n = tc_redis_read(fd, buf, sizeof(buf));
    CHECK(n > 0 && strstr(buf, "hello-subscribers") != NULL);
    close(fd);
}

/* An HTTP/2 request for path on a new h2c connection (prior knowledge), sent and left: the caller
 * closes the returned socket to hang up with the request in flight. */
static int h2c_send(const char *path)
{
    unsigned char buf[256];
    size_t n = 0, plen = strlen(path);
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    memcpy(buf, preface, sizeof(preface) - 1);
    n = sizeof(preface) - 1;
    static const unsigned char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    memcpy(buf + n, settings, 9);
    n += 9;
    /* HEADERS, END_STREAM | END_HEADERS, stream 1: :method GET, :scheme http, :path, :authority x */
    size_t block = 2 + 2 + plen + 3;
    unsigned char head[9] = {0, 0, (unsigned char)block, 1, 5, 0, 0, 0, 1};
    memcpy(buf + n, head, 9);
    n += 9;
    buf[n++] = 0x82;
    buf[n++] = 0x86;
    buf[n++] = 0x04; /* literal without indexing, name :path */
    buf[n++] = (unsigned char)plen;
    memcpy(buf + n, path, plen);
    n += plen;
    buf[n++] = 0x01; /* literal without indexing, name :authority */
    buf[n++] = 1;
    buf[n++] = 'x';
    int fd = tc_connect(srv.port);
    if (fd >= 0 && tc_write_all(fd, buf, n) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Calls cancelled while their Redis commands wait: by the client hanging up (HTTP/2) and by the
 * route's timeout (HTTP/1.1). The replies that come later are dropped, never handed to the freed
 * request: sff_redis_send()'s future lost its Redis request to an unspecified evaluation order, and
 * such replies crashed the worker. Redis is paused so that every reply comes after the cancel; 64 calls, as
 * h2o keeps up to 16 freed pool chunks for reuse, where ASan cannot see a late write. */
TEST(calls_cancelled_while_commands_wait)
{
    int ctl = tc_redis_connect(&rs);
    const char *pause[] = {"CLIENT", "PAUSE", "500"};
    char buf[256];
    CHECK(ctl >= 0 && tc_redis_send(ctl, 3, pause, NULL) == 0);
    CHECK(tc_redis_read(ctl, buf, sizeof(buf)) > 0 && strncmp(buf, "+OK", 3) == 0);
    int fds[64];
    for (int i = 0; i < 64; i++)
        CHECK((fds[i] = h2c_send("/fx/redis/many")) >= 0);
    usleep(100000); /* the calls wait for the paused Redis */
    for (int i = 0; i < 64; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    int status;
    json_t *j = get_json("/fx/redis/many/short", &status); /* its 100 ms pass while Redis is paused */
    CHECK_INT(status, 504);
    json_decref(j);
    usleep(600000); /* the pause ends, the replies come */
    close(ctl);
    j = get_json("/fx/redis/many", &status);
    CHECK_INT(status, 200);
    json_decref(j);
    CHECK(!tc_server_log_contains(&srv, "respawning"));
}

TEST(route_rate_limit)
{
    int codes[5];
    for (int i = 0; i < 5; i++) {
        tc_response_t res;
        tc_get(srv.port, "/fx/limited", NULL, &res);
        codes[i] = res.status;
        if (i == 4) {
            CHECK(strstr(res.body, "\"code\":\"rate_limited\"") != NULL);
            const char *retry = tc_header(&res, "retry-after");
            CHECK(retry != NULL && atoi(retry) >= 1 && atoi(retry) <= 30);
        }
        tc_response_free(&res);
    }
    CHECK_INT(codes[0], 200);
    CHECK_INT(codes[2], 200);
    CHECK_INT(codes[3], 429);
    CHECK_INT(codes[4], 429);
}

TEST(ready_and_metrics_report_redis)
{
    int status;
    json_t *j = get_json("/_ready", &status);
    CHECK_INT(status, 200);
    CHECK(json_is_true(json_object_get(json_object_get(json_object_get(j, "checks"), "redis"), "ok")));
    json_decref(j);
    usleep(1100000); /* the counters are copied once a second */
    tc_response_t res;
    CHECK(tc_get(srv.port, "/_metrics", NULL, &res) == 0);
    CHECK(strstr(res.body, "sff_redis_up 1\n") != NULL);
    CHECK(strstr(res.body, "sff_cache_hits_total 2\n") != NULL); /* cache_and_invalidation, cache_hit_as_stored */
    CHECK(strstr(res.body, "sff_redis_commands_total 0\n") == NULL);
    tc_response_free(&res);
}

TEST(redis_down_fails_fast_and_recovers)
{
    /* a second gateway whose rate limits fail closed */
    tc_server_t closed;
    char env_redis[500], env_fn[700];
    snprintf(env_redis, sizeof(env_redis), "SFF_REDIS_URL=%s", rs.url);
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", getenv("IT90_FUNCTIONS"));
    const char *env[] = {env_fn, env_redis, "SFF_WORKERS=1", "SFF_SCHEMAS_DIR=schemas", "SFF_RATE_LIMIT_FAIL=closed", NULL};
    int have_closed = tc_server_start(&closed, env) == 0;
    CHECK(have_closed);
    CHECK(tc_redis_kill(&rs) == 0);
    usleep(100000);
    int status;
    double t0 = now_ms();
    json_t *j = get_json("/fx/redis/incr?key=down", &status);
    double took = now_ms() - t0;
    CHECK_INT(status, 503);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "backend_unavailable");
    CHECK(took < 500);
    json_decref(j);
    /* the cache is a miss, the rate limit fails open, /_ready says not ready */
    j = get_json("/fx/cache?key=k2&tag=t2", &status);
    CHECK_INT(status, 200);
    CHECK(json_is_false(json_object_get(j, "hit")));
    json_decref(j);
    j = get_json("/_ready", &status);
    CHECK_INT(status, 503);
    json_decref(j);
    tc_response_t res;
    CHECK(tc_get(srv.port, "/fx/limited", NULL, &res) == 0);
    CHECK_INT(res.status, 200); /* fails open by default... */
    tc_response_free(&res);
    if (have_closed) {
        CHECK(tc_get(closed.port, "/fx/limited", NULL, &res) == 0);
        CHECK_INT(res.status, 503); /* ...closed when configured so */
        tc_response_free(&res);
        tc_server_stop(&closed);
    }
    CHECK(tc_redis_restart(&rs) == 0);
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        usleep(100000);
        json_decref(get_json("/fx/redis/incr?key=back", &status));
        ok = status == 200;
    }
    CHECK(ok);
    j = get_json("/_ready", &status);
    CHECK_INT(status, 200);
    json_decref(j);
}

int main(void)
{
    char base[] = "/tmp/sff-it90-XXXXXX", fdir[512], env_fn[700], env_redis[500];
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0)
        return 1;
    if (mkdtemp(base) == NULL || tc_functions_dir(base, fdir, sizeof(fdir)) != 0)
        return 1;
    if (tc_redis_start(&rs, NULL) != 0) {
        printf("not ok - redis_starts\n");
        return 1;
    }
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    setenv("IT90_FUNCTIONS", fdir, 1);
    snprintf(env_redis, sizeof(env_redis), "SFF_REDIS_URL=%s", rs.url);
    const char *env[] = {env_fn, env_redis, "SFF_WORKERS=1", "SFF_SCHEMAS_DIR=schemas", NULL};
    if (tc_server_start(&srv, env) != 0)
        return 1;
    RUN(commands_and_several_at_once);
    RUN(cache_and_invalidation);
    RUN(cache_hit_as_stored);
    RUN(publish_reaches_a_subscriber);
    RUN(calls_cancelled_while_commands_wait);
    RUN(route_rate_limit);
    RUN(ready_and_metrics_report_redis);
    RUN(redis_down_fails_fast_and_recovers);
    tc_server_stop(&srv);
    tc_redis_stop(&rs);
    tc_sh("rm -rf '%s'", base);
    return test_done();
}
