/*
 * redis.c - unit tests of baas/redis*.c against real redis-servers (tests/lib/redis.h): URLs,
 * every reply type, binary-safe arguments, a 10,000-command pipeline, deadlines and a stuck
 * connection, kill -9 and restart, the JSON cache with tag invalidation, the rate limiter, PUBLISH,
 * cancellation, destroy with calls pending, AUTH and SELECT over TCP and a unix socket, host name
 * lookup, a connect deadline, and a reply too deep for hiredis 0.14.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <h2o.h>
#include "test.h"
#include "lib/client.h"
#include "lib/redis.h"
#include "redis.h"
#include "sff.h"
#include "timer.h"

static h2o_evloop_t *loop;
static tc_redis_t srv; /* shared by the tests that do not kill it */

/* ---- driving the loop ------------------------------------------------------------------------- */

static void step(void)
{
    h2o_evloop_run(loop, sff_timers_next_wait(sff_now_ms(), 10));
    sff_timers_run(sff_now_ms());
}

static void run_for(uint32_t ms)
{
    uint64_t end = sff_now_ms() + ms;
    while (sff_now_ms() < end)
        step();
}

/* Runs until *flag is nonzero or ms pass; returns *flag. */
static int run_until(const int *flag, uint32_t ms)
{
    uint64_t end = sff_now_ms() + ms;
    while (!*flag && sff_now_ms() < end)
        step();
    return *flag;
}

static int run_until_connected(sff_redis_t *r, uint32_t ms)
{
    uint64_t end = sff_now_ms() + ms;
    while (!sff_redis_connected(r) && sff_now_ms() < end)
        step();
    return sff_redis_connected(r);
}

/* ---- results ---------------------------------------------------------------------------------- */

typedef struct st_result_t {
    int fired;
    int err;
    json_t *reply;
    char msg[512];
    uint64_t at_ms;
    /* for the helpers */
    char stamp[128];
    int has_stamp;
    sff_redis_limit_t limit;
} result_t;

static void result_dispose(result_t *res)
{
    json_decref(res->reply);
    memset(res, 0, sizeof(*res));
}

static void on_command(void *data, int err, json_t *reply, const char *errmsg)
{
    result_t *res = data;
    res->fired++;
    res->err = err;
    json_decref(res->reply);
    res->reply = reply;
    snprintf(res->msg, sizeof(res->msg), "%s", errmsg != NULL ? errmsg : "");
    res->at_ms = sff_now_ms();
}

static void on_cache_get(void *data, json_t *value, const char *stamp, int err)
{
    result_t *res = data;
    res->fired++;
    res->err = err;
    json_decref(res->reply);
    res->reply = value;
    res->has_stamp = stamp != NULL;
    snprintf(res->stamp, sizeof(res->stamp), "%s", stamp != NULL ? stamp : "");
}

static void on_cache_text(void *data, const char *text, size_t len, const char *stamp, int err)
{
    result_t *res = data;
    res->fired++;
    res->err = err;
    json_decref(res->reply);
    /* the text as a JSON string, to compare byte for byte */
    res->reply = text != NULL ? json_stringn(text, len) : NULL;
    res->has_stamp = stamp != NULL;
    snprintf(res->stamp, sizeof(res->stamp), "%s", stamp != NULL ? stamp : "");
}

static void on_cache_set(void *data, int err)
{
    result_t *res = data;
    res->fired++;
    res->err = err;
}

static void on_limit(void *data, const sff_redis_limit_t *limit, int err)
{
    result_t *res = data;
    res->fired++;
    res->err = err;
    res->limit = *limit;
}

/* Runs argv (up to 16 NUL-terminated arguments, NULL-terminated) and waits for the answer. */
static int cmdv(sff_redis_t *r, result_t *res, uint32_t timeout_ms, const char *first, ...)
{
    const char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 16; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    result_dispose(res);
    int ret = sff_redis_command(r, argc, argv, NULL, timeout_ms, on_command, res, NULL);
    if (ret != 0)
        return ret;
    run_until(&res->fired, 5000);
    return 0;
}

static char *dump(const json_t *v)
{
    static char buf[4096];
    char *s = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(buf, sizeof(buf), "%s", s != NULL ? s : "(none)");
    free(s);
    return buf;
}

#define CHECK_REPLY(res, text)                                                                                                     \
    do {                                                                                                                           \
        CHECK_INT((res)->err, 0);                                                                                                  \
        CHECK_STR(dump((res)->reply), text);                                                                                       \
    } while (0)

static sff_redis_t *client(const char *url, sff_redis_config_t *conf)
{
    sff_redis_config_t defaults = {0};
    char err[256];
    if (conf == NULL)
        conf = &defaults;
    conf->url = url;
    sff_redis_t *r = sff_redis_create(loop, conf, err, sizeof(err));
    if (r == NULL) {
        fprintf(stderr, "  sff_redis_create: %s\n", err);
        return NULL;
    }
    if (!run_until_connected(r, 5000))
        fprintf(stderr, "  not connected to %s within 5 s\n", url);
    return r;
}

/* Captures what sff logs (stderr) between capture_start() and capture_end() (malloc()ed). */
static int saved_stderr = -1;
static char capture_path[300];

static void capture_start(void)
{
    snprintf(capture_path, sizeof(capture_path), "%s/stderr.txt", srv.dir);
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    dup2(fd, 2);
    close(fd);
}

static char *capture_end(void)
{
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    FILE *f = fopen(capture_path, "r");
    char *text = calloc(1, 65536);
    if (f != NULL) {
        size_t n = fread(text, 1, 65535, f);
        text[n] = '\0';
        fclose(f);
    }
    unlink(capture_path);
    return text;
}

/* ---- URLs ------------------------------------------------------------------------------------- */

TEST(url_good)
{
    sff_redis_url_t u;
    char err[256], desc[512];

    CHECK_INT(sff_redis_url_parse("redis://127.0.0.1:6379/0", &u, err, sizeof(err)), 0);
    CHECK_STR(u.host, "127.0.0.1");
    CHECK_INT(u.port, 6379);
    CHECK_INT(u.db, 0);
    CHECK_INT(u.unix_socket, 0);
    CHECK_STR(u.password, "");

    CHECK_INT(sff_redis_url_parse("redis://localhost", &u, err, sizeof(err)), 0);
    CHECK_STR(u.host, "localhost");
    CHECK_INT(u.port, 6379);
    CHECK_INT(u.db, 0);

    CHECK_INT(sff_redis_url_parse("redis://:s3cret@cache.example:6380/3", &u, err, sizeof(err)), 0);
    CHECK_STR(u.host, "cache.example");
    CHECK_INT(u.port, 6380);
    CHECK_INT(u.db, 3);
    CHECK_STR(u.username, "");
    CHECK_STR(u.password, "s3cret");
    sff_redis_url_describe(&u, desc, sizeof(desc));
    CHECK_STR(desc, "redis://:***@cache.example:6380/3");
    sff_redis_url_wipe(&u);
    CHECK_STR(u.password, "");

    CHECK_INT(sff_redis_url_parse("redis://app:p%40ss%2Fw0rd%3A@10.0.0.1:1/15", &u, err, sizeof(err)), 0);
    CHECK_STR(u.username, "app");
    CHECK_STR(u.password, "p@ss/w0rd:");
    CHECK_INT(u.port, 1);
    CHECK_INT(u.db, 15);
    sff_redis_url_describe(&u, desc, sizeof(desc));
    CHECK_STR(desc, "redis://app:***@10.0.0.1:1/15");

    CHECK_INT(sff_redis_url_parse("redis://:p@ss@h:7", &u, err, sizeof(err)), 0); /* the last '@' ends the user info */
    CHECK_STR(u.password, "p@ss");
    CHECK_STR(u.host, "h");

    CHECK_INT(sff_redis_url_parse("redis://[::1]:7000/2", &u, err, sizeof(err)), 0);
    CHECK_STR(u.host, "::1");
    CHECK_INT(u.port, 7000);
    CHECK_INT(u.db, 2);
    sff_redis_url_describe(&u, desc, sizeof(desc));
    CHECK_STR(desc, "redis://[::1]:7000/2");

    CHECK_INT(sff_redis_url_parse("REDIS://h/", &u, err, sizeof(err)), 0);
    CHECK_INT(u.db, 0);

    CHECK_INT(sff_redis_url_parse("unix:///run/redis/redis.sock?db=4", &u, err, sizeof(err)), 0);
    CHECK_INT(u.unix_socket, 1);
    CHECK_STR(u.path, "/run/redis/redis.sock");
    CHECK_INT(u.db, 4);
    sff_redis_url_describe(&u, desc, sizeof(desc));
    CHECK_STR(desc, "unix:///run/redis/redis.sock?db=4");

    CHECK_INT(sff_redis_url_parse("unix://:pw@/tmp/r.sock", &u, err, sizeof(err)), 0);
    CHECK_STR(u.password, "pw");
    CHECK_STR(u.path, "/tmp/r.sock");
    CHECK_INT(u.db, 0);

    CHECK_INT(sff_redis_url_parse("unix:///tmp/a%20b.sock", &u, err, sizeof(err)), 0);
    CHECK_STR(u.path, "/tmp/a b.sock");
    sff_redis_url_wipe(&u);
}

TEST(url_bad)
{
    static const struct {
        const char *url, *expect;
    } cases[] = {
        {"", "empty"},
        {"http://h", "scheme"},
        {"rediss://h", "TLS"},
        {"redis://", "host is missing"},
        {"redis://:hunter2@", "host is missing"},
        {"redis://h:", "port is empty"},
        {"redis://h:0", "port"},
        {"redis://h:65536", "port"},
        {"redis://h:12ab", "port"},
        {"redis://h/x", "database"},
        {"redis://h/-1", "database"},
        {"redis://h/99999999999", "database"},
        {"redis://h/1/2", "database number alone"},
        {"redis://h/1?db=2", "no query"},
        {"redis://h?db=1", "no query"},
        {"redis://h#x", "fragment"},
        {"redis://hunter2@h", "user info"},
        {"redis://:hunter2@h:99999", "port"},
        {"redis://:hunter2@h/hunter2", "database"},
        {"redis://:hun%2ter2@h", "percent"},
        {"redis://:hunter2%@h", "percent"},
        {"redis://:%00hunter2@h", "percent"},
        {"redis://user:@h", "needs a password"},
        {"redis://h o", "space"},
        {"redis://:hunter2\n@h", "control"},
        {"redis://[::1", "bracket"},
        {"redis://[zz]:1", "IPv6"},
        {"redis://[::1]x", "after the IPv6"},
        {"redis://ho$t", "host may hold only"},
        {"unix://", "path is missing"},
        {"unix:///", "path is missing"},
        {"unix://host/tmp/s", "no host"},
        {"unix://:hunter2@host/tmp/s", "no host"},
        {"unix:///tmp/s?db=x", "database"},
        {"unix:///tmp/s?foo=1", "unknown query"},
        {"unix:///tmp/s?db=1&db=2", "twice"},
        {"unix:///tmp/s?", "query is empty"},
        {"unix:///tmp/s?db=1&", "ends with"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sff_redis_url_t u;
        char err[256] = "";
        int ret = sff_redis_url_parse(cases[i].url, &u, err, sizeof(err));
        if (ret != SFF_EBADREQ || strstr(err, cases[i].expect) == NULL || strstr(err, "hunter2") != NULL) {
            fprintf(stderr, "  url case %zu: ret %d, message \"%s\", expected \"%s\"\n", i, ret, err, cases[i].expect);
            test_cur_failed_ = 1;
        }
    }
    /* too long a socket path */
    char url[400] = "unix:///";
    memset(url + 8, 'a', 200);
    url[208] = '\0';
    sff_redis_url_t u;
    char err[256];
    CHECK_INT(sff_redis_url_parse(url, &u, err, sizeof(err)), SFF_EBADREQ);
    CHECK(strstr(err, "longer than 107") != NULL);

    /* the client refuses a bad URL with the parser's message */
    sff_redis_config_t conf = {.url = "redis://:hunter2@h:0"};
    CHECK(sff_redis_create(loop, &conf, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "port") != NULL && strstr(err, "hunter2") == NULL);
}

/* ---- commands --------------------------------------------------------------------------------- */

TEST(reply_types)
{
    sff_redis_t *r = client(srv.url, NULL);
    CHECK(r != NULL && sff_redis_connected(r));
    result_t res = {0};

    CHECK_INT(cmdv(r, &res, 0, "SET", "rt:k", "v", NULL), 0);
    CHECK_REPLY(&res, "\"OK\""); /* status */
    CHECK_INT(cmdv(r, &res, 0, "GET", "rt:k", NULL), 0);
    CHECK_REPLY(&res, "\"v\""); /* bulk */
    CHECK_INT(cmdv(r, &res, 0, "GET", "rt:missing", NULL), 0);
    CHECK_REPLY(&res, "null"); /* nil */
    CHECK_INT(cmdv(r, &res, 0, "INCRBY", "rt:n", "-5", NULL), 0);
    CHECK_REPLY(&res, "-5"); /* integer */
    CHECK_INT(cmdv(r, &res, 0, "SET", "rt:e", "", NULL), 0);
    CHECK_INT(cmdv(r, &res, 0, "GET", "rt:e", NULL), 0);
    CHECK_REPLY(&res, "\"\"");
    CHECK_INT(cmdv(r, &res, 0, "RPUSH", "rt:l", "a", "b", NULL), 0);
    CHECK_INT(cmdv(r, &res, 0, "LRANGE", "rt:l", "0", "-1", NULL), 0);
    CHECK_REPLY(&res, "[\"a\",\"b\"]"); /* array */
    CHECK_INT(cmdv(r, &res, 0, "LRANGE", "rt:none", "0", "-1", NULL), 0);
    CHECK_REPLY(&res, "[]");
    CHECK_INT(cmdv(r, &res, 0, "EVAL", "return {1, 'x', {2, false, {}}, redis.error_reply('boom'), 'caf\xc3\xa9'}", "0", NULL), 0);
    CHECK_REPLY(&res, "[1,\"x\",[2,null,[]],{\"error\":\"ERR boom\"},\"caf\xc3\xa9\"]"); /* nested, nil and an error inside */
    CHECK_INT(cmdv(r, &res, 0, "EVAL", "return 'x' .. nil", "0", NULL), 0);
    CHECK_INT(res.err, SFF_EINTERNAL); /* a script error */

    /* not UTF-8: {"base64": ...} */
    const char *argv[] = {"SET", "rt:bin", "\xff\x00\x01\xfe"};
    size_t argvlen[] = {3, 6, 4};
    result_dispose(&res);
    CHECK_INT(sff_redis_command(r, 3, argv, argvlen, 0, on_command, &res, NULL), 0);
    run_until(&res.fired, 5000);
    CHECK_INT(cmdv(r, &res, 0, "GET", "rt:bin", NULL), 0);
    CHECK_REPLY(&res, "{\"base64\":\"/wAB/g==\"}");
    const char *argv2[] = {"SET", "rt:bin", "\xc3"};
    size_t argvlen2[] = {3, 6, 1};
    result_dispose(&res);
    CHECK_INT(sff_redis_command(r, 3, argv2, argvlen2, 0, on_command, &res, NULL), 0);
    run_until(&res.fired, 5000);
    CHECK_INT(cmdv(r, &res, 0, "GET", "rt:bin", NULL), 0);
    CHECK_REPLY(&res, "{\"base64\":\"ww==\"}");

    /* error replies */
    CHECK_INT(cmdv(r, &res, 0, "INCR", "rt:k", NULL), 0);
    CHECK_INT(res.err, SFF_EINTERNAL);
    CHECK(res.reply == NULL);
    CHECK(strstr(res.msg, "not an integer") != NULL);
    CHECK_INT(cmdv(r, &res, 0, "LPUSH", "rt:k", "x", NULL), 0);
    CHECK_INT(res.err, SFF_EINTERNAL);
    CHECK(strncmp(res.msg, "WRONGTYPE", 9) == 0);
    CHECK_INT(cmdv(r, &res, 0, "NOSUCHCOMMAND", NULL), 0);
    CHECK_INT(res.err, SFF_EINTERNAL);
    CHECK_INT(sff_redis_error_code("LOADING Redis is loading", 24), SFF_EUNAVAILABLE);
    CHECK_INT(sff_redis_error_code("READONLY You can't write", 24), SFF_EUNAVAILABLE);
    CHECK_INT(sff_redis_error_code("OOM command not allowed", 23), SFF_EOVERLOADED);
    CHECK_INT(sff_redis_error_code("BUSYKEY Target key name", 23), SFF_EINTERNAL);

    sff_redis_stats_t st;
    sff_redis_stats(r, &st);
    CHECK(st.commands >= 17);
    CHECK(st.errors >= 4);
    CHECK_INT(st.connected, 1);
    result_dispose(&res);
    sff_redis_destroy(r);
}

TEST(binary_args)
{
    sff_redis_t *r = client(srv.url, NULL);
    result_t res = {0};
    const char key[] = "bin\0key", val[] = "a\0b\xc3\xa9";
    const char *argv[] = {"SET", key, val};
    size_t argvlen[] = {3, sizeof(key) - 1, sizeof(val) - 1};
    CHECK_INT(sff_redis_command(r, 3, argv, argvlen, 0, on_command, &res, NULL), 0);
    run_until(&res.fired, 5000);
    CHECK_REPLY(&res, "\"OK\"");

    const char *get[] = {"GET", key};
    size_t getlen[] = {3, sizeof(key) - 1};
    result_dispose(&res);
    CHECK_INT(sff_redis_command(r, 2, get, getlen, 0, on_command, &res, NULL), 0);
    run_until(&res.fired, 5000);
    CHECK_INT(res.err, 0);
    CHECK(json_is_string(res.reply)); /* valid UTF-8, NUL included: a string of 5 bytes */
    CHECK_INT(json_string_length(res.reply), 5);
    CHECK(json_string_length(res.reply) == 5 && memcmp(json_string_value(res.reply), val, 5) == 0);
    CHECK_INT(cmdv(r, &res, 0, "EXISTS", "bin", NULL), 0); /* the NUL did not cut the key */
    CHECK_REPLY(&res, "0");
    CHECK_INT(cmdv(r, &res, 0, "STRLEN", "bin", NULL), 0);
    CHECK_REPLY(&res, "0");

    /* checked from outside: the server holds the exact bytes */
    int fd = tc_redis_connect(&srv);
    char out[64];
    CHECK(fd >= 0 && tc_redis_send(fd, 2, get, getlen) == 0);
    CHECK_INT(tc_redis_read(fd, out, sizeof(out)), 5);
    CHECK(memcmp(out, val, 5) == 0);
    close(fd);
    result_dispose(&res);
    sff_redis_destroy(r);
}

/* A command larger than the socket buffer: the kernel takes it in parts, the rest waits for write
 * events; the value comes back whole. */
TEST(value_larger_than_the_socket_buffer)
{
    sff_redis_t *r = client(srv.url, NULL);
    enum { SIZE = 24 * 1024 * 1024 };
    char *value = malloc(SIZE);
    CHECK(value != NULL);
    if (value == NULL)
        return;
    for (size_t i = 0; i < SIZE; i++)
        value[i] = (char)('a' + (i * 7919) % 26);
    const char *set[] = {"SET", "huge", value};
    size_t setlen[] = {3, 4, SIZE};
    result_t res = {0};
    CHECK_INT(sff_redis_command(r, 3, set, setlen, 20000, on_command, &res, NULL), 0);
    run_until(&res.fired, 20000);
    CHECK_INT(res.err, 0);
    CHECK_REPLY(&res, "\"OK\"");
    CHECK_INT(cmdv(r, &res, 20000, "GET", "huge", NULL), 0);
    CHECK_INT(res.err, 0);
    CHECK(json_is_string(res.reply) && json_string_length(res.reply) == SIZE &&
          memcmp(json_string_value(res.reply), value, SIZE) == 0);
    CHECK_INT(cmdv(r, &res, 0, "DEL", "huge", NULL), 0);
    free(value);
    result_dispose(&res);
    sff_redis_destroy(r);
}

typedef struct st_pipeline_t {
    int done, bad, out_of_order;
    long long last;
} pipeline_t;

static void on_pipelined(void *data, int err, json_t *reply, const char *errmsg)
{
    (void)errmsg;
    pipeline_t *p = data;
    if (err != 0 || !json_is_integer(reply))
        p->bad++;
    else if (json_integer_value(reply) != p->last + 1)
        p->out_of_order++;
    else
        p->last = json_integer_value(reply);
    json_decref(reply);
    p->done++;
}

static void on_ignored(void *data, int err, json_t *reply, const char *errmsg)
{
    (void)err, (void)errmsg;
    ++*(int *)data;
    json_decref(reply);
}

TEST(pipeline_10000)
{
    sff_redis_t *r = client(srv.url, NULL);
    enum { N = 10000 };
    pipeline_t p = {0};
    const char *argv[] = {"INCR", "pl:counter"};
    uint64_t t0 = sff_now_us();
    int refused = 0;
    for (int i = 0; i < N; i++)
        if (sff_redis_command(r, 2, argv, NULL, 10000, on_pipelined, &p, NULL) != 0)
            refused++;
    CHECK_INT(refused, 0);
    uint64_t end = sff_now_ms() + 20000;
    while (p.done < N && sff_now_ms() < end)
        step();
    uint64_t us = sff_now_us() - t0;
    CHECK_INT(p.done, N);
    CHECK_INT(p.bad, 0);
    CHECK_INT(p.out_of_order, 0);
    CHECK_INT(p.last, N);
    printf("# %d pipelined INCR on one connection: %.1f ms, %.0f commands/s\n", N, us / 1000.0, N * 1e6 / (double)us);

    /* a larger batch of SET with a 100-byte value, for the figure */
    enum { M = 100000 };
    char value[101];
    memset(value, 'x', 100);
    value[100] = '\0';
    const char *set[] = {"SET", "pl:k", value};
    int done = 0;
    t0 = sff_now_us();
    for (int i = 0; i < M; i++)
        sff_redis_command(r, 3, set, NULL, 30000, on_ignored, &done, NULL);
    end = sff_now_ms() + 30000;
    while (done < M && sff_now_ms() < end)
        step();
    us = sff_now_us() - t0;
    CHECK_INT(done, M);
    printf("# %d pipelined SET (100-byte values) on one connection: %.1f ms, %.0f commands/s\n", M, us / 1000.0,
           M * 1e6 / (double)us);
    sff_redis_stats_t st;
    sff_redis_stats(r, &st);
    CHECK_INT(st.timeouts, 0);
    CHECK_INT(st.errors, 0);
    sff_redis_destroy(r);
}

/* ---- deadlines -------------------------------------------------------------------------------- */

TEST(timeout)
{
    sff_redis_t *r = client(srv.url, NULL);
    result_t res = {0}, ping = {0};
    const char *sleep[] = {"DEBUG", "SLEEP", "1"};
    uint64_t t0 = sff_now_ms();
    CHECK_INT(sff_redis_command(r, 3, sleep, NULL, 100, on_command, &res, NULL), 0);
    run_until(&res.fired, 3000);
    uint64_t took = res.at_ms - t0;
    CHECK_INT(res.err, SFF_ETIMEDOUT);
    CHECK(res.reply == NULL);
    CHECK(took >= 95 && took <= 300);
    printf("# DEBUG SLEEP 1 with a 100 ms deadline: SFF_ETIMEDOUT after %llu ms\n", (unsigned long long)took);
    /* the connection still works: this PING waits behind the sleep, then answers */
    const char *argv[] = {"PING"};
    CHECK_INT(sff_redis_command(r, 1, argv, NULL, 3000, on_command, &ping, NULL), 0);
    run_until(&ping.fired, 4000);
    CHECK_REPLY(&ping, "\"PONG\"");
    CHECK_INT(res.fired, 1); /* the late reply was discarded */
    sff_redis_stats_t st;
    sff_redis_stats(r, &st);
    CHECK_INT(st.timeouts, 1);
    CHECK_INT(st.reconnects, 0);
    CHECK_INT(st.connected, 1);
    result_dispose(&res);
    result_dispose(&ping);
    sff_redis_destroy(r);
}

TEST(stuck_connection_is_replaced)
{
    sff_redis_config_t conf = {.max_timeouts = 3};
    sff_redis_t *r = client(srv.url, &conf);
    result_t res[3] = {{0}};
    const char *sleep[] = {"DEBUG", "SLEEP", "1"}, *ping[] = {"PING"};
    CHECK_INT(sff_redis_command(r, 3, sleep, NULL, 100, on_command, &res[0], NULL), 0);
    CHECK_INT(sff_redis_command(r, 1, ping, NULL, 150, on_command, &res[1], NULL), 0);
    CHECK_INT(sff_redis_command(r, 1, ping, NULL, 200, on_command, &res[2], NULL), 0);
    run_until(&res[2].fired, 2000);
    for (int i = 0; i < 3; i++)
        CHECK_INT(res[i].err, SFF_ETIMEDOUT);
    CHECK(!sff_redis_connected(r)); /* dropped after the third timeout */
    CHECK(run_until_connected(r, 5000));
    sff_redis_stats_t st;
    sff_redis_stats(r, &st);
    CHECK_INT(st.timeouts, 3);
    CHECK_INT(st.reconnects, 1);
    result_t ok = {0};
    CHECK_INT(cmdv(r, &ok, 0, "PING", NULL), 0);
    CHECK_REPLY(&ok, "\"PONG\"");
    for (int i = 0; i < 3; i++)
        CHECK_INT(res[i].fired, 1);
    result_dispose(&ok);
    sff_redis_destroy(r);
}

/* ---- kill -9 and restart ---------------------------------------------------------------------- */

static int states[8], nstates;

static void on_state(void *data, int connected)
{
    (void)data;
    if (nstates < 8)
        states[nstates++] = connected;
}

TEST(kill_and_restart)
{
    tc_redis_t own;
    CHECK_INT(tc_redis_start(&own, NULL), 0);
    nstates = 0;
    sff_redis_config_t conf = {.on_state = on_state};
    sff_redis_t *r = client(own.url, &conf);
    CHECK(r != NULL && sff_redis_connected(r));
    run_for(5); /* on_state(1) */
    CHECK_INT(nstates, 1);

    /* in flight when the server dies */
    result_t sleep = {0}, get = {0};
    const char *argv_sleep[] = {"DEBUG", "SLEEP", "5"}, *argv_get[] = {"GET", "x"};
    CHECK_INT(sff_redis_command(r, 3, argv_sleep, NULL, 10000, on_command, &sleep, NULL), 0);
    CHECK_INT(sff_redis_command(r, 2, argv_get, NULL, 10000, on_command, &get, NULL), 0);
    run_for(50);
    uint64_t t0 = sff_now_ms();
    CHECK_INT(tc_redis_kill(&own), 0);
    run_until(&get.fired, 3000);
    CHECK_INT(sleep.err, SFF_EUNAVAILABLE);
    CHECK_INT(get.err, SFF_EUNAVAILABLE);
    CHECK(strstr(get.msg, "lost") != NULL);
    printf("# kill -9: calls in flight failed after %llu ms\n", (unsigned long long)(get.at_ms - t0));
    CHECK(get.at_ms - t0 < 500);
    CHECK(!sff_redis_connected(r));

    /* while down: explicit commands fail at once, the helpers degrade */
    result_t res = {0};
    uint64_t t1 = sff_now_us();
    CHECK_INT(sff_redis_command(r, 2, argv_get, NULL, 0, on_command, &res, NULL), SFF_EUNAVAILABLE);
    CHECK(sff_now_us() - t1 < 1000);
    CHECK_INT(sff_redis_publish(r, "ch", "m", 1, 0, on_command, &res, NULL), SFF_EUNAVAILABLE);
    result_t cget = {0}, cset = {0}, inval = {0}, lim = {0};
    const char *tags[] = {"t1"};
    json_t *v = json_integer(1);
    CHECK_INT(sff_redis_cache_get(r, "k", NULL, 0, 0, on_cache_get, &cget, NULL), 0);
    CHECK_INT(sff_redis_cache_set(r, "k", NULL, 0, NULL, v, 10, 0, on_cache_set, &cset, NULL), 0);
    CHECK_INT(sff_redis_cache_invalidate(r, tags, 1, 0, on_cache_set, &inval, NULL), 0);
    CHECK_INT(sff_redis_ratelimit(r, "ip", 10, 1000, 0, on_limit, &lim, NULL), 0);
    json_decref(v);
    CHECK_INT(cget.fired + cset.fired + inval.fired + lim.fired, 0); /* never inside the call */
    run_until(&lim.fired, 1000);
    CHECK_INT(cget.fired, 1);
    CHECK(cget.reply == NULL);
    CHECK_INT(cget.err, SFF_EUNAVAILABLE);
    CHECK_INT(cset.err, SFF_EUNAVAILABLE);
    CHECK_INT(inval.err, SFF_EUNAVAILABLE);
    CHECK_INT(lim.err, SFF_EUNAVAILABLE);
    CHECK_INT(lim.limit.status, SFF_REDIS_LIMIT_UNKNOWN);
    CHECK_INT(res.fired, 0);
    sff_redis_stats_t st;
    sff_redis_stats(r, &st);
    CHECK_INT(st.connected, 0);
    CHECK_INT(st.cache_misses, 1);
    CHECK_INT(st.cache_degraded, 2);
    CHECK_INT(st.limit_unknown, 1);
    CHECK_INT(nstates, 2);
    CHECK_INT(states[1], 0);

    /* a while down, then back on the same port: the client reconnects by itself */
    run_for(700);
    CHECK_INT(tc_redis_restart(&own), 0);
    uint64_t t2 = sff_now_ms();
    CHECK(run_until_connected(r, 8000));
    printf("# reconnected %llu ms after the restart\n", (unsigned long long)(sff_now_ms() - t2));
    sff_redis_stats(r, &st);
    CHECK_INT(st.reconnects, 1);
    CHECK(st.connect_failures >= 1);
    run_for(5);
    CHECK_INT(nstates, 3);
    CHECK_INT(states[2], 1);
    CHECK_INT(cmdv(r, &res, 0, "PING", NULL), 0);
    CHECK_REPLY(&res, "\"PONG\"");
    /* the lost invalidation bumped the epoch in the handshake */
    CHECK_INT(cmdv(r, &res, 0, "GET", "sff:epoch", NULL), 0);
    CHECK_REPLY(&res, "\"1\"");
    result_dispose(&res);
    result_dispose(&sleep);
    result_dispose(&get);
    result_dispose(&cget);
    sff_redis_destroy(r);
    tc_redis_stop(&own);
}

/* ---- the cache -------------------------------------------------------------------------------- */

static int cache_get(sff_redis_t *r, result_t *res, const char *key, const char *const *tags, size_t ntags)
{
    result_dispose(res);
    int ret = sff_redis_cache_get(r, key, tags, ntags, 0, on_cache_get, res, NULL);
    if (ret == 0)
        run_until(&res->fired, 5000);
    return ret;
}

static int cache_set(sff_redis_t *r, result_t *res, const char *key, const char *const *tags, size_t ntags, const char *stamp,
                     const char *json, uint32_t ttl)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    result_dispose(res);
    int ret = sff_redis_cache_set(r, key, tags, ntags, stamp, v, ttl, 0, on_cache_set, res, NULL);
    json_decref(v);
    if (ret == 0)
        run_until(&res->fired, 5000);
    return ret;
}

static int invalidate(sff_redis_t *r, result_t *res, const char *const *tags, size_t ntags)
{
    result_dispose(res);
    int ret = sff_redis_cache_invalidate(r, tags, ntags, 0, on_cache_set, res, NULL);
    if (ret == 0)
        run_until(&res->fired, 5000);
    return ret;
}

TEST(cache)
{
    sff_redis_config_t conf = {.key_prefix = "t1:"};
    sff_redis_t *r = client(srv.url, &conf);
    result_t res = {0}, raw = {0};
    CHECK_INT(cache_get(r, &res, "todo:1", NULL, 0), 0);
    CHECK_INT(res.fired, 1);
    CHECK(res.reply == NULL);
    CHECK_INT(res.err, 0);
    CHECK_INT(res.has_stamp, 0);

    CHECK_INT(cache_set(r, &res, "todo:1", NULL, 0, NULL, "{\"id\":1,\"done\":[true,null,\"x\\u0000y\"]}", 2), 0);
    CHECK_INT(res.err, 0);
    CHECK_INT(cache_get(r, &res, "todo:1", NULL, 0), 0);
    CHECK_STR(dump(res.reply), "{\"id\":1,\"done\":[true,null,\"x\\u0000y\"]}");
    /* stored as SET key json EX ttl */
    CHECK_INT(cmdv(r, &raw, 0, "GET", "t1:c:todo:1", NULL), 0);
    CHECK_REPLY(&raw, "\"{\\\"id\\\":1,\\\"done\\\":[true,null,\\\"x\\\\u0000y\\\"]}\"");
    CHECK_INT(cmdv(r, &raw, 0, "PTTL", "t1:c:todo:1", NULL), 0);
    CHECK(json_integer_value(raw.reply) > 1000 && json_integer_value(raw.reply) <= 2000);
    /* past its TTL: a miss */
    CHECK_INT(cmdv(r, &raw, 0, "PEXPIRE", "t1:c:todo:1", "20", NULL), 0);
    run_for(40);
    CHECK_INT(cache_get(r, &res, "todo:1", NULL, 0), 0);
    CHECK(res.reply == NULL);
    CHECK_INT(res.err, 0);
    /* a scalar value */
    CHECK_INT(cache_set(r, &res, "n", NULL, 0, NULL, "42", 10), 0);
    CHECK_INT(cache_get(r, &res, "n", NULL, 0), 0);
    CHECK_STR(dump(res.reply), "42");
    /* an entry that is not JSON: a degraded miss */
    CHECK_INT(cmdv(r, &raw, 0, "SET", "t1:c:bad", "not json", NULL), 0);
    CHECK_INT(cache_get(r, &res, "bad", NULL, 0), 0);
    CHECK(res.reply == NULL);
    CHECK_INT(res.err, SFF_EINTERNAL);
    /* bad arguments */
    CHECK_INT(sff_redis_cache_get(r, "", NULL, 0, 0, on_cache_get, &res, NULL), SFF_EBADREQ);
    CHECK_INT(sff_redis_cache_set(r, "k", NULL, 0, NULL, json_null(), 0, 0, on_cache_set, &res, NULL), SFF_EBADREQ);

    sff_redis_stats_t st;
    sff_redis_stats(r, &st);
    CHECK_INT(st.cache_hits, 2);
    CHECK_INT(st.cache_misses, 3);
    CHECK_INT(st.cache_degraded, 1);
    result_dispose(&res);
    result_dispose(&raw);
    sff_redis_destroy(r);
}

TEST(cache_invalidation)
{
    sff_redis_config_t conf = {.key_prefix = "t2:"};
    sff_redis_t *r = client(srv.url, &conf);
    result_t res = {0}, raw = {0};
    const char *tags[] = {"todos:u1"};
    char s1[128], s2[128];

    CHECK_INT(cache_get(r, &res, "list:u1", tags, 1), 0);
    CHECK(res.reply == NULL);
    CHECK_INT(res.err, 0);
    CHECK_INT(res.has_stamp, 1);
    CHECK_STR(res.stamp, "0,0"); /* epoch, todos:u1 */
    snprintf(s1, sizeof(s1), "%s", res.stamp);
    CHECK_INT(cache_set(r, &res, "list:u1", tags, 1, s1, "[\"a\"]", 60), 0);
    CHECK_INT(res.err, 0);
    CHECK_INT(cache_get(r, &res, "list:u1", tags, 1), 0);
    CHECK_STR(dump(res.reply), "[\"a\"]");
    CHECK_INT(res.has_stamp, 0);

    /* a write, then its invalidation: the next read misses */
    CHECK_INT(invalidate(r, &res, tags, 1), 0);
    CHECK_INT(res.err, 0);
    CHECK_INT(cache_get(r, &res, "list:u1", tags, 1), 0);
    CHECK(res.reply == NULL);
    CHECK_STR(res.stamp, "0,1");
    snprintf(s2, sizeof(s2), "%s", res.stamp);

    /* a reader that read the source before the write sets with its old stamp: skipped */
    CHECK_INT(cache_set(r, &res, "list:u1", tags, 1, s1, "[\"stale\"]", 60), 0);
    CHECK_INT(res.err, SFF_ECONFLICT);
    CHECK_INT(cache_get(r, &res, "list:u1", tags, 1), 0);
    CHECK(res.reply == NULL);
    /* the reader after the write stores the fresh value */
    CHECK_INT(cache_set(r, &res, "list:u1", tags, 1, s2, "[\"a\",\"b\"]", 60), 0);
    CHECK_INT(res.err, 0);
    CHECK_INT(cache_get(r, &res, "list:u1", tags, 1), 0);
    CHECK_STR(dump(res.reply), "[\"a\",\"b\"]");

    /* two tags: either one invalidates */
    const char *two[] = {"todos:u1", "lists:7"};
    CHECK_INT(cache_get(r, &res, "list:7", two, 2), 0);
    CHECK_STR(res.stamp, "0,1,0");
    snprintf(s1, sizeof(s1), "%s", res.stamp);
    CHECK_INT(cache_set(r, &res, "list:7", two, 2, s1, "{\"n\":7}", 60), 0);
    CHECK_INT(cache_get(r, &res, "list:7", two, 2), 0);
    CHECK_STR(dump(res.reply), "{\"n\":7}");
    const char *other[] = {"lists:7"};
    CHECK_INT(invalidate(r, &res, other, 1), 0);
    CHECK_INT(cache_get(r, &res, "list:7", two, 2), 0);
    CHECK(res.reply == NULL);
    CHECK_STR(res.stamp, "0,1,1");

    /* no stamp: the current one */
    CHECK_INT(cache_set(r, &res, "list:7", two, 2, NULL, "{\"n\":8}", 60), 0);
    CHECK_INT(cache_get(r, &res, "list:7", two, 2), 0);
    CHECK_STR(dump(res.reply), "{\"n\":8}");

    /* the epoch (no tags) invalidates every tagged entry */
    CHECK_INT(invalidate(r, &res, NULL, 0), 0);
    CHECK_INT(cache_get(r, &res, "list:7", two, 2), 0);
    CHECK(res.reply == NULL);
    CHECK_STR(res.stamp, "1,1,1");
    CHECK_INT(cache_get(r, &res, "list:u1", tags, 1), 0);
    CHECK(res.reply == NULL);

    /* the script cache flushed: EVALSHA gets NOSCRIPT, the call resends the script */
    CHECK_INT(cache_set(r, &res, "list:u1", tags, 1, NULL, "1", 60), 0);
    CHECK_INT(cmdv(r, &raw, 0, "SCRIPT", "FLUSH", NULL), 0);
    CHECK_REPLY(&raw, "\"OK\"");
    CHECK_INT(cache_get(r, &res, "list:u1", tags, 1), 0);
    CHECK_INT(res.err, 0);
    CHECK_STR(dump(res.reply), "1");
    CHECK_INT(cmdv(r, &raw, 0, "GET", "t2:c:list:u1", NULL), 0);
    CHECK_REPLY(&raw, "\"1,1\\n1\"");
    CHECK_INT(sff_redis_cache_get(r, "k", (const char *const[]){""}, 1, 0, on_cache_get, &res, NULL), SFF_EBADREQ);
    result_dispose(&res);
    result_dispose(&raw);
    sff_redis_destroy(r);
}

/* sff_redis_cache_get_text(): the entry as stored, with the same misses, stamps and counters. */
TEST(cache_text)
{
    sff_redis_config_t conf = {.key_prefix = "t5:"};
    sff_redis_t *r = client(srv.url, &conf);
    result_t res = {0};
    const char *tags[] = {"todos:u9"};
    CHECK_INT(sff_redis_cache_get_text(r, "page", tags, 1, 0, on_cache_text, &res, NULL), 0);
    run_until(&res.fired, 5000);
    CHECK(res.reply == NULL);
    CHECK_INT(res.err, 0);
    CHECK_INT(res.has_stamp, 1);
    char stamp[128];
    snprintf(stamp, sizeof(stamp), "%s", res.stamp);
    CHECK_INT(cache_set(r, &res, "page", tags, 1, stamp, "{\"items\":[{\"name\":\"x\\u0000y \\u00e9\"}],\"n\":1.5}", 60), 0);
    CHECK_INT(res.err, 0);
    result_dispose(&res);
    CHECK_INT(sff_redis_cache_get_text(r, "page", tags, 1, 0, on_cache_text, &res, NULL), 0);
    run_until(&res.fired, 5000);
    CHECK_INT(res.err, 0);
    CHECK_INT(res.has_stamp, 0);
    /* exactly what json_dumps(JSON_COMPACT) made of the value: what sff_respond() would send */
    CHECK_STR(json_string_value(res.reply), "{\"items\":[{\"name\":\"x\\u0000y \xc3\xa9\"}],\"n\":1.5}");
    CHECK_INT(json_string_length(res.reply), 42);
    /* an invalidation makes it miss like the parsed get */
    result_t inv = {0};
    CHECK_INT(invalidate(r, &inv, tags, 1), 0);
    result_dispose(&res);
    CHECK_INT(sff_redis_cache_get_text(r, "page", tags, 1, 0, on_cache_text, &res, NULL), 0);
    run_until(&res.fired, 5000);
    CHECK(res.reply == NULL);
    CHECK_INT(res.has_stamp, 1);
    CHECK_INT(sff_redis_cache_get_text(r, "", tags, 1, 0, on_cache_text, &res, NULL), SFF_EBADREQ);
    sff_redis_stats_t st;
    sff_redis_stats(r, &st);
    CHECK_INT(st.cache_hits, 1);
    CHECK_INT(st.cache_misses, 2);
    result_dispose(&res);
    result_dispose(&inv);
    sff_redis_destroy(r);
}

/* ---- rate limits ------------------------------------------------------------------------------ */

static int limit(sff_redis_t *r, result_t *res, const char *key, uint64_t n, uint32_t window_ms)
{
    memset(res, 0, sizeof(*res));
    int ret = sff_redis_ratelimit(r, key, n, window_ms, 0, on_limit, res, NULL);
    if (ret == 0)
        run_until(&res->fired, 5000);
    return ret;
}

TEST(rate_limit)
{
    sff_redis_config_t conf = {.key_prefix = "t3:"};
    sff_redis_t *r = client(srv.url, &conf);
    result_t res;
    for (uint64_t i = 1; i <= 3; i++) {
        CHECK_INT(limit(r, &res, "login:ada", 3, 2000), 0);
        CHECK_INT(res.err, 0);
        CHECK_INT(res.limit.status, SFF_REDIS_LIMIT_ALLOWED);
        CHECK_INT(res.limit.count, i);
        CHECK_INT(res.limit.remaining, 3 - i);
        CHECK(res.limit.reset_ms > 1500 && res.limit.reset_ms <= 2000);
    }
    CHECK_INT(limit(r, &res, "login:ada", 3, 2000), 0);
    CHECK_INT(res.limit.status, SFF_REDIS_LIMIT_DENIED);
    CHECK_INT(res.limit.count, 4);
    CHECK_INT(res.limit.remaining, 0);
    CHECK(res.limit.reset_ms > 1500 && res.limit.reset_ms <= 2000);
    CHECK_INT(res.limit.retry_after_s, 2);
    /* the window ends: allowed again */
    CHECK_INT(limit(r, &res, "fast", 1, 150), 0);
    CHECK_INT(res.limit.status, SFF_REDIS_LIMIT_ALLOWED);
    CHECK_INT(limit(r, &res, "fast", 1, 150), 0);
    CHECK_INT(res.limit.status, SFF_REDIS_LIMIT_DENIED);
    CHECK(res.limit.reset_ms > 0 && res.limit.reset_ms <= 150);
    CHECK_INT(res.limit.retry_after_s, 1);
    run_for(res.limit.reset_ms + 20);
    CHECK_INT(limit(r, &res, "fast", 1, 150), 0);
    CHECK_INT(res.limit.status, SFF_REDIS_LIMIT_ALLOWED);
    CHECK_INT(res.limit.count, 1);
    /* the key is the prefix's */
    result_t raw = {0};
    CHECK_INT(cmdv(r, &raw, 0, "GET", "t3:rl:login:ada", NULL), 0);
    CHECK_REPLY(&raw, "\"4\"");
    CHECK_INT(sff_redis_ratelimit(r, "k", 0, 1000, 0, on_limit, &res, NULL), SFF_EBADREQ);
    CHECK_INT(sff_redis_ratelimit(r, "k", 1, 0, 0, on_limit, &res, NULL), SFF_EBADREQ);
    result_dispose(&raw);
    sff_redis_destroy(r);
}

/* ---- PUBLISH ---------------------------------------------------------------------------------- */

TEST(publish)
{
    sff_redis_t *r = client(srv.url, NULL);
    int sub = tc_redis_connect(&srv);
    char out[256];
    const char *argv[] = {"SUBSCRIBE", "news"};
    CHECK(sub >= 0 && tc_redis_send(sub, 2, argv, NULL) == 0);
    CHECK(tc_redis_read(sub, out, sizeof(out)) > 0);
    CHECK_STR(out, "subscribe\nnews\n:1");
    result_t res = {0};
    CHECK_INT(sff_redis_publish(r, "news", "hi\0there", 8, 0, on_command, &res, NULL), 0);
    run_until(&res.fired, 5000);
    CHECK_REPLY(&res, "1"); /* one subscriber got it */
    long n = tc_redis_read(sub, out, sizeof(out));
    CHECK_INT(n, 21);
    CHECK(n == 21 && memcmp(out, "message\nnews\nhi\0there", 21) == 0);
    close(sub);
    result_dispose(&res);
    sff_redis_destroy(r);
}

/* ---- cancel, refusals, destroy ---------------------------------------------------------------- */

typedef struct st_canceller_t {
    sff_redis_req_t *victim;
    int fired;
} canceller_t;

static void on_cancel_other(void *data, int err, json_t *reply, const char *errmsg)
{
    (void)err, (void)errmsg;
    canceller_t *c = data;
    c->fired++;
    sff_redis_cancel(c->victim);
    json_decref(reply);
}

TEST(cancel)
{
    sff_redis_t *r = client(srv.url, NULL);
    result_t a = {0}, b = {0}, ping = {0};
    sff_redis_req_t *req = NULL;
    const char *get[] = {"GET", "x"}, *sleep[] = {"DEBUG", "SLEEP", "0.2"}, *p[] = {"PING"};

    /* cancelled at once */
    CHECK_INT(sff_redis_command(r, 2, get, NULL, 0, on_command, &a, &req), 0);
    CHECK(req != NULL);
    sff_redis_cancel(req);
    /* cancelled while the server works on it */
    CHECK_INT(sff_redis_command(r, 3, sleep, NULL, 0, on_command, &b, &req), 0);
    run_for(50);
    sff_redis_cancel(req);
    CHECK_INT(sff_redis_command(r, 1, p, NULL, 2000, on_command, &ping, NULL), 0);
    run_until(&ping.fired, 3000);
    CHECK_REPLY(&ping, "\"PONG\"");
    run_for(20);
    CHECK_INT(a.fired, 0);
    CHECK_INT(b.fired, 0);

    /* cancelled by the callback of the call before it, answered in the same batch */
    canceller_t c = {0};
    result_dispose(&ping);
    CHECK_INT(sff_redis_command(r, 1, p, NULL, 0, on_cancel_other, &c, NULL), 0);
    CHECK_INT(sff_redis_command(r, 1, p, NULL, 0, on_command, &a, &c.victim), 0);
    CHECK_INT(sff_redis_command(r, 1, p, NULL, 0, on_command, &ping, NULL), 0);
    run_until(&ping.fired, 3000);
    CHECK_INT(c.fired, 1);
    CHECK_INT(a.fired, 0);

    /* a degraded answer waiting for dispatch */
    sff_redis_config_t conf = {.url = "redis://127.0.0.1:1"};
    char err[128];
    sff_redis_t *down = sff_redis_create(loop, &conf, err, sizeof(err));
    CHECK(down != NULL);
    CHECK_INT(sff_redis_command(down, 1, p, NULL, 0, on_command, &a, NULL), SFF_EUNAVAILABLE); /* fails fast */
    result_t g = {0};
    CHECK_INT(sff_redis_cache_get(down, "k", NULL, 0, 0, on_cache_get, &g, &req), 0);
    sff_redis_cancel(req);
    run_for(30);
    CHECK_INT(g.fired, 0);
    CHECK_INT(a.fired, 0);
    sff_redis_destroy(down);
    result_dispose(&ping);
    sff_redis_destroy(r);
}

TEST(refused_commands)
{
    sff_redis_t *r = client(srv.url, NULL);
    result_t res = {0};
    CHECK_INT(cmdv(r, &res, 0, "SUBSCRIBE", "ch", NULL), SFF_EBADREQ);
    CHECK_INT(cmdv(r, &res, 0, "psubscribe", "c*", NULL), SFF_EBADREQ);
    CHECK_INT(cmdv(r, &res, 0, "MONITOR", NULL), SFF_EBADREQ);
    CHECK_INT(cmdv(r, &res, 0, "multi", NULL), SFF_EBADREQ);
    CHECK_INT(cmdv(r, &res, 0, "SELECT", "1", NULL), SFF_EBADREQ);
    CHECK_INT(cmdv(r, &res, 0, "HELLO", "3", NULL), SFF_EBADREQ);
    CHECK_INT(cmdv(r, &res, 0, "CLIENT", "REPLY", "OFF", NULL), SFF_EBADREQ);
    CHECK_INT(cmdv(r, &res, 0, "BLPOP", "l", "0", NULL), SFF_EBADREQ);
    CHECK_INT(cmdv(r, &res, 0, "XREAD", "BLOCK", "0", "STREAMS", "s", "0", NULL), SFF_EBADREQ);
    CHECK_INT(sff_redis_command(r, 0, NULL, NULL, 0, on_command, &res, NULL), SFF_EBADREQ);
    CHECK_INT(res.fired, 0);
    /* a stream named "block" is fine, and so is CLIENT INFO */
    CHECK_INT(cmdv(r, &res, 0, "XREAD", "COUNT", "1", "STREAMS", "block", "0", NULL), 0);
    CHECK_REPLY(&res, "null");
    CHECK_INT(cmdv(r, &res, 0, "CLIENT", "ID", NULL), 0);
    CHECK_INT(res.err, 0);
    result_dispose(&res);
    sff_redis_destroy(r);
}

typedef struct st_destroyer_t {
    sff_redis_t *redis;
    int fired;
    result_t *inflight;
} destroyer_t;

static void on_destroy_client(void *data, int err, json_t *reply, const char *errmsg)
{
    (void)err, (void)errmsg;
    destroyer_t *d = data;
    d->fired++;
    json_decref(reply);
    /* (Redis answers a pipeline read at once after running all of it: this one is sent now so that
     * it is surely in flight when the client goes) */
    const char *sleep[] = {"DEBUG", "SLEEP", "0.2"};
    if (sff_redis_command(d->redis, 3, sleep, NULL, 0, on_command, d->inflight, NULL) != 0)
        d->inflight->err = 1;
    sff_redis_destroy(d->redis);
    sff_redis_destroy(d->redis); /* a no-op while the first is on the stack */
}

typedef struct st_during_t {
    destroyer_t *d;
    int fired, err, call_ret;
} during_t;

static void on_call_during_destroy(void *data, int err, json_t *reply, const char *errmsg)
{
    (void)errmsg;
    during_t *x = data;
    x->fired++;
    x->err = err;
    json_decref(reply);
    /* a call from a callback fired by destroy fails without a callback */
    const char *p[] = {"PING"};
    x->call_ret = sff_redis_command(x->d->redis, 1, p, NULL, 0, on_command, NULL, NULL);
}

TEST(destroy_with_calls_pending)
{
    sff_redis_t *r = client(srv.url, NULL);
    result_t a = {0}, b = {0}, g = {0};
    const char *sleep[] = {"DEBUG", "SLEEP", "0.2"}, *p[] = {"PING"};
    CHECK_INT(sff_redis_command(r, 3, sleep, NULL, 0, on_command, &a, NULL), 0);
    CHECK_INT(sff_redis_command(r, 1, p, NULL, 0, on_command, &b, NULL), 0);
    CHECK_INT(sff_redis_cache_get(r, "k", NULL, 0, 0, on_cache_get, &g, NULL), 0);
    run_for(20);
    sff_redis_destroy(r);
    CHECK_INT(a.fired, 1);
    CHECK_INT(a.err, SFF_ECANCELED);
    CHECK_INT(b.fired, 1);
    CHECK_INT(b.err, SFF_ECANCELED);
    CHECK_INT(g.fired, 1);
    CHECK_INT(g.err, SFF_ECANCELED);
    CHECK(g.reply == NULL);
    run_for(250); /* the server answers the sleep to a closed connection */

    /* destroyed from a callback, with another answer in the same batch and a call in flight */
    result_t e = {0};
    destroyer_t d = {client(srv.url, NULL), 0, &e};
    during_t c = {&d};
    CHECK_INT(sff_redis_command(d.redis, 1, p, NULL, 0, on_destroy_client, &d, NULL), 0);
    CHECK_INT(sff_redis_command(d.redis, 1, p, NULL, 0, on_call_during_destroy, &c, NULL), 0);
    run_until(&d.fired, 3000);
    CHECK_INT(d.fired, 1);
    CHECK_INT(c.fired, 1); /* answered in the same batch: it gets its answer */
    CHECK_INT(c.err, 0);
    CHECK_INT(c.call_ret, SFF_ECANCELED);
    CHECK_INT(e.fired, 1);
    CHECK_INT(e.err, SFF_ECANCELED);
    run_for(250);
    result_dispose(&b);
}

static void on_timeout_destroy(void *data, int err, json_t *reply, const char *errmsg)
{
    (void)errmsg;
    destroyer_t *d = data;
    d->fired++;
    d->inflight->err = err;
    json_decref(reply);
    sff_redis_destroy(d->redis);
}

TEST(destroy_from_a_deadline)
{
    result_t res = {0}, other = {0};
    destroyer_t d = {client(srv.url, NULL), 0, &res};
    const char *sleep[] = {"DEBUG", "SLEEP", "0.3"}, *p[] = {"PING"};
    CHECK_INT(sff_redis_command(d.redis, 3, sleep, NULL, 50, on_timeout_destroy, &d, NULL), 0);
    CHECK_INT(sff_redis_command(d.redis, 1, p, NULL, 5000, on_command, &other, NULL), 0);
    run_until(&d.fired, 1000);
    CHECK_INT(d.fired, 1);
    CHECK_INT(res.err, SFF_ETIMEDOUT);
    CHECK_INT(other.fired, 1); /* in flight when its client went */
    CHECK_INT(other.err, SFF_ECANCELED);
    run_for(350);
    CHECK_INT(d.fired, 1);
}

/* ---- connecting ------------------------------------------------------------------------------- */

static void percent_encode(const char *s, char *out, size_t size)
{
    size_t n = 0;
    for (; *s != '\0' && n + 4 < size; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9'))
            out[n++] = *s;
        else
            n += (size_t)snprintf(out + n, size - n, "%%%02X", (unsigned char)*s);
    }
    out[n] = '\0';
}

TEST(auth_select_and_unix_socket)
{
    const char *password = "s3cr:et@/x#y";
    tc_redis_t own;
    CHECK_INT(tc_redis_start(&own, password), 0);
    char enc[128], url[600];
    percent_encode(password, enc, sizeof(enc));
    result_t res = {0};

    snprintf(url, sizeof(url), "redis://:%s@127.0.0.1:%d/3", enc, own.port);
    sff_redis_t *r = client(url, NULL);
    CHECK(r != NULL && sff_redis_connected(r));
    CHECK_INT(cmdv(r, &res, 0, "CLIENT", "INFO", NULL), 0);
    CHECK(json_is_string(res.reply) && strstr(json_string_value(res.reply), " db=3 ") != NULL);
    sff_redis_destroy(r);

    snprintf(url, sizeof(url), "unix://default:%s@%s?db=2", enc, own.socket);
    r = client(url, NULL);
    CHECK(r != NULL && sff_redis_connected(r));
    CHECK_INT(cmdv(r, &res, 0, "CLIENT", "INFO", NULL), 0);
    CHECK(json_is_string(res.reply) && strstr(json_string_value(res.reply), " db=2 ") != NULL);
    CHECK(json_is_string(res.reply) && strstr(json_string_value(res.reply), "addr=/") != NULL);
    sff_redis_destroy(r);

    /* a wrong password: never connected, logged without the password */
    capture_start();
    sff_redis_config_t conf = {.url = NULL};
    snprintf(url, sizeof(url), "redis://:wr0ngpassw0rd@127.0.0.1:%d", own.port);
    conf.url = url;
    char err[128];
    r = sff_redis_create(loop, &conf, err, sizeof(err));
    run_for(300);
    CHECK(!sff_redis_connected(r));
    sff_redis_stats_t st;
    sff_redis_stats(r, &st);
    CHECK(st.connect_failures >= 1);
    sff_redis_destroy(r);
    /* without a password */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", own.port);
    r = sff_redis_create(loop, &conf, err, sizeof(err));
    run_for(100);
    CHECK(!sff_redis_connected(r));
    sff_redis_destroy(r);
    char *log = capture_end();
    CHECK(strstr(log, "WRONGPASS") != NULL);
    CHECK(strstr(log, "NOAUTH") != NULL);
    CHECK(strstr(log, "wr0ngpassw0rd") == NULL);
    CHECK(strstr(log, "s3cr") == NULL);
    free(log);
    result_dispose(&res);
    tc_redis_stop(&own);
}

TEST(host_name_lookup)
{
    char url[128];
    snprintf(url, sizeof(url), "redis://localhost:%d", srv.port);
    sff_redis_t *r = client(url, NULL); /* resolved on a thread */
    CHECK(r != NULL && sff_redis_connected(r));
    result_t res = {0};
    CHECK_INT(cmdv(r, &res, 0, "PING", NULL), 0);
    CHECK_REPLY(&res, "\"PONG\"");
    sff_redis_destroy(r);
    /* a name that does not resolve: a connect failure, retried */
    sff_redis_config_t conf = {.url = "redis://no-such-host.invalid:6379"};
    char err[128];
    r = sff_redis_create(loop, &conf, err, sizeof(err));
    capture_start();
    run_for(300);
    char *log = capture_end();
    sff_redis_stats_t st;
    sff_redis_stats(r, &st);
    CHECK(st.connect_failures >= 1);
    CHECK(strstr(log, "host name lookup") != NULL);
    free(log);
    sff_redis_destroy(r); /* possibly with a lookup on its thread */
    result_dispose(&res);
}

TEST(connect_timeout)
{
    /* a listener that never answers: the TCP connect succeeds, the handshake never does */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    CHECK(bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && listen(fd, 16) == 0 &&
          getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    char url[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(addr.sin_port));
    sff_redis_config_t conf = {.url = url, .connect_timeout_ms = 100, .backoff_min_ms = 1000};
    char err[128];
    capture_start();
    sff_redis_t *r = sff_redis_create(loop, &conf, err, sizeof(err));
    const char *p[] = {"PING"};
    result_t res = {0};
    CHECK_INT(sff_redis_command(r, 1, p, NULL, 0, on_command, &res, NULL), SFF_EUNAVAILABLE); /* connecting */
    run_for(150);
    char *log = capture_end();
    sff_redis_stats_t st;
    sff_redis_stats(r, &st);
    CHECK_INT(st.connect_failures, 1);
    CHECK_INT(st.connected, 0);
    CHECK(strstr(log, "no answer within 100 ms") != NULL);
    free(log);
    sff_redis_destroy(r);
    close(fd);
}

TEST(reply_too_deep_for_hiredis)
{
    sff_redis_t *r = client(srv.url, NULL);
    result_t res = {0};
    capture_start();
    CHECK_INT(cmdv(r, &res, 0, "EVAL", "return {{{{{{{{{1}}}}}}}}}", "0", NULL), 0);
    char *log = capture_end();
    CHECK_INT(res.err, SFF_EUNAVAILABLE); /* hiredis 0.14 drops the connection */
    CHECK(strstr(log, "depth") != NULL);
    free(log);
    CHECK(run_until_connected(r, 3000));
    CHECK_INT(cmdv(r, &res, 0, "EVAL", "return {{{{{{{{1}}}}}}}}", "0", NULL), 0); /* 8 levels pass */
    CHECK_REPLY(&res, "[[[[[[[[1]]]]]]]]");
    result_dispose(&res);
    sff_redis_destroy(r);
}

TEST(no_timers_left)
{
    run_for(20);
    CHECK_INT(sff_timers_count(), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    loop = h2o_evloop_create();
    RUN(url_good);
    RUN(url_bad);
    if (tc_redis_start(&srv, NULL) != 0) {
        printf("not ok - redis_server_starts\n");
        return 1;
    }
    RUN(reply_types);
    RUN(binary_args);
    RUN(value_larger_than_the_socket_buffer);
    RUN(pipeline_10000);
    RUN(timeout);
    RUN(stuck_connection_is_replaced);
    RUN(kill_and_restart);
    RUN(cache);
    RUN(cache_invalidation);
    RUN(cache_text);
    RUN(rate_limit);
    RUN(publish);
    RUN(cancel);
    RUN(refused_commands);
    RUN(destroy_with_calls_pending);
    RUN(destroy_from_a_deadline);
    RUN(auth_select_and_unix_socket);
    RUN(host_name_lookup);
    RUN(connect_timeout);
    RUN(reply_too_deep_for_hiredis);
    RUN(no_timers_left);
    tc_redis_stop(&srv);
    run_for(20);
    h2o_evloop_destroy(loop);
    return test_done();
}
