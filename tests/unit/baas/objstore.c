/*
 * objstore.c - unit tests of baas/objstore*.c and baas/httpc.c on a real h2o event loop driven here
 * the way the worker drives it (h2o_evloop_run bounded by our timers, then sff_timers_run):
 *  - key and URL validation tables;
 *  - the file driver: put/get/head/delete/list with continuation, streamed bodies with pause and
 *    resume, atomicity under concurrent readers and writers, a crash's temp file never listed,
 *    traversal and symbolic links refused, the bounded queue, cancellation;
 *  - the S3 driver against s3rver (tests/lib/s3.h): the same operations with odd keys, a 10 MB
 *    object, list pagination, keep-alive reuse, virtual-host style, a presigned GET and PUT used
 *    with curl, TLS, 403, a closed port;
 *  - faults through the proxy: 503 then success (retried), 503 for a streamed PUT (not retried), a
 *    stall (SFF_ETIMEDOUT at the deadline), a body cut mid-way (an error, not a short success);
 *  - cancellation: the callback never fires.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include "test.h"
#include "h2o.h"
#include "sff.h"
#include "timer.h"
#include "httpc.h"
#include "objstore.h"
#include "lib/client.h"
#include "lib/s3.h"

static h2o_loop_t *loop;
static tc_s3_t s3;
static int s3_up;
static tc_proxy_t *proxy;
static char tmpdir[256];

/* ---- driving the loop ------------------------------------------------------------------------- */

static void turn(void)
{
    h2o_evloop_run(loop, sff_timers_next_wait(sff_now_ms(), 100));
    sff_timers_run(sff_now_ms());
}

/* Runs the loop until *flag is nonzero or timeout_ms passed; returns *flag. */
static int run_until(volatile int *flag, int timeout_ms)
{
    uint64_t deadline = sff_now_ms() + (uint64_t)timeout_ms;
    while (!*flag && sff_now_ms() < deadline)
        turn();
    return *flag;
}

/* Runs the loop for ms milliseconds. */
static void run_for(int ms)
{
    uint64_t deadline = sff_now_ms() + (uint64_t)ms;
    while (sff_now_ms() < deadline)
        turn();
}

/* ---- capturing results ------------------------------------------------------------------------ */

typedef struct {
    int done, calls;
    int err;
    char msg[300];
    char *body;
    size_t len;
    uint64_t size;
    int64_t mtime;
    char etag[128], content_type[128];
    char **keys;
    uint64_t *sizes;
    size_t nkeys;
    char *next;
    uint64_t ended_ms;
} result_t;

static void result_free(result_t *r)
{
    free(r->body);
    for (size_t i = 0; i < r->nkeys; i++)
        free(r->keys[i]);
    free(r->keys);
    free(r->sizes);
    free(r->next);
    memset(r, 0, sizeof(*r));
}

static void on_result(void *data, sff_objstore_result_t *res)
{
    result_t *r = data;
    r->calls++;
    r->done = 1;
    r->ended_ms = sff_now_ms();
    r->err = res->err;
    snprintf(r->msg, sizeof(r->msg), "%s", res->message);
    r->size = res->info.size;
    r->mtime = res->info.mtime;
    snprintf(r->etag, sizeof(r->etag), "%s", res->info.etag != NULL ? res->info.etag : "");
    snprintf(r->content_type, sizeof(r->content_type), "%s", res->info.content_type != NULL ? res->info.content_type : "");
    if (res->body != NULL) {
        r->body = res->body; /* taken */
        r->len = res->len;
        res->body = NULL;
    }
    if (res->nentries != 0) {
        r->keys = calloc(res->nentries, sizeof(*r->keys));
        r->sizes = calloc(res->nentries, sizeof(*r->sizes));
        for (size_t i = 0; i < res->nentries; i++) {
            r->keys[i] = strdup(res->entries[i].key);
            r->sizes[i] = res->entries[i].size;
        }
        r->nkeys = res->nentries;
    }
    r->next = res->next_token != NULL ? strdup(res->next_token) : NULL;
}

static int wait_result(result_t *r, int timeout_ms)
{
    if (!run_until(&r->done, timeout_ms)) {
        fprintf(stderr, "  no callback within %d ms\n", timeout_ms);
        return -1;
    }
    return r->err;
}

static int put(sff_objstore_t *st, const char *key, const void *body, size_t len)
{
    result_t r = {0};
    sff_objstore_put_t p = {.body = body, .len = len, .content_type = "text/plain"};
    int ret = sff_objstore_put(st, key, &p, on_result, &r, NULL);
    if (ret == 0)
        ret = wait_result(&r, 30000);
    result_free(&r);
    return ret;
}

/* Gets key into r (collect); returns the error. */
static int get(sff_objstore_t *st, const char *key, result_t *r)
{
    memset(r, 0, sizeof(*r));
    int ret = sff_objstore_get(st, key, NULL, on_result, r, NULL);
    return ret != 0 ? ret : wait_result(r, 30000);
}

static int simple(sff_objstore_t *st,
                  int (*fn)(sff_objstore_t *, const char *, uint32_t, sff_objstore_cb, void *, sff_objstore_op_t **),
                  const char *key, result_t *r)
{
    memset(r, 0, sizeof(*r));
    int ret = fn(st, key, 0, on_result, r, NULL);
    return ret != 0 ? ret : wait_result(r, 30000);
}

static int list(sff_objstore_t *st, const char *prefix, const char *token, size_t max, result_t *r)
{
    memset(r, 0, sizeof(*r));
    sff_objstore_list_t o = {.prefix = prefix, .token = token, .max_keys = max};
    int ret = sff_objstore_list(st, &o, on_result, r, NULL);
    return ret != 0 ? ret : wait_result(r, 30000);
}

/* Lists everything under prefix page by page; returns the keys joined with "|" (malloc()ed). */
static char *list_all(sff_objstore_t *st, const char *prefix, size_t page, size_t *pages)
{
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap), *token = NULL;
    *pages = 0;
    for (;;) {
        result_t r;
        if (list(st, prefix, token, page, &r) != 0) {
            fprintf(stderr, "  list: %d %s\n", r.err, r.msg);
            result_free(&r);
            break;
        }
        (*pages)++;
        for (size_t i = 0; i < r.nkeys; i++)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len != 0 ? "|" : "", r.keys[i]);
        free(token);
        token = r.next != NULL ? strdup(r.next) : NULL;
        if (r.nkeys > page)
            fprintf(stderr, "  list: %zu keys for a page of %zu\n", r.nkeys, page);
        result_free(&r);
        if (token == NULL || *pages > 1000)
            break;
    }
    free(token);
    return out;
}

static char *pattern(size_t len, unsigned seed)
{
    char *p = malloc(len + 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (char)(x >> 24);
    }
    p[len] = '\0';
    return p;
}

static sff_objstore_t *file_store(const char *name, uint32_t queue_size, char *root, size_t rootsize)
{
    char url[600], err[256];
    snprintf(root, rootsize, "%s/%s", tmpdir, name);
    snprintf(url, sizeof(url), "file://%s", root);
    sff_objstore_config_t cfg = {.url = url, .queue_size = queue_size, .max_upload = 64 * 1024 * 1024};
    sff_objstore_t *st = NULL;
    if (sff_objstore_create(loop, &cfg, &st, err, sizeof(err)) != 0)
        fprintf(stderr, "  file store: %s\n", err);
    return st;
}

static sff_objstore_t *s3_store(const char *url_fmt, int port, const char *access, const char *ca_file)
{
    char url[600], err[256];
    snprintf(url, sizeof(url), url_fmt, port);
    sff_objstore_config_t cfg = {.url = url,
                                 .access_key = access != NULL ? access : TC_S3_ACCESS_KEY,
                                 .secret_key = TC_S3_SECRET_KEY,
                                 .ca_file = ca_file,
                                 .max_upload = 64 * 1024 * 1024,
                                 .timeout_ms = 20000,
                                 .retry_base_ms = 20};
    sff_objstore_t *st = NULL;
    if (sff_objstore_create(loop, &cfg, &st, err, sizeof(err)) != 0)
        fprintf(stderr, "  s3 store %s: %s\n", url, err);
    return st;
}

/* ---- tables ----------------------------------------------------------------------------------- */

TEST(key_validation)
{
    static const struct {
        const char *key;
        int ok;
    } keys[] = {
        {"a", 1},
        {"a/b/c.txt", 1},
        {"with space and +", 1},
        {"\xc3\xa9t\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80", 1},
        {"!'()*;,=&$@", 1},
        {"a..b/.hidden/..x/x..", 1},
        {"", 0},
        {"/a", 0},
        {"a/", 0},
        {"a//b", 0},
        {"..", 0},
        {"../a", 0},
        {"a/../b", 0},
        {"a/..", 0},
        {".", 0},
        {"a/./b", 0},
        {"a\tb", 0},
        {"a\nb", 0},
        {"a\x7f", 0},
        {"a\xc2\x85", 0},        /* U+0085, a C1 control */
        {"\xc0\xaf", 0},         /* overlong "/" */
        {"\xed\xa0\x80", 0},     /* a surrogate */
        {"\xf4\x90\x80\x80", 0}, /* past U+10FFFF */
        {"\xe2\x82", 0},         /* cut */
        {"\xff", 0},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int ret = sff_objstore_check_key(keys[i].key, strlen(keys[i].key));
        if ((ret == 0) != keys[i].ok) {
            fprintf(stderr, "  key #%zu \"%s\": %d\n", i, keys[i].key, ret);
            CHECK(0);
        }
    }
    char big[SFF_OBJSTORE_MAX_KEY + 2];
    memset(big, 'k', sizeof(big));
    CHECK_INT(sff_objstore_check_key(big, SFF_OBJSTORE_MAX_KEY), 0);
    CHECK_INT(sff_objstore_check_key(big, SFF_OBJSTORE_MAX_KEY + 1), SFF_EBADREQ);
    CHECK_INT(sff_objstore_check_key("a\0b", 3), SFF_EBADREQ);
    /* prefixes: may be empty or end with "/", nothing else changes */
    CHECK_INT(sff_objstore_check_prefix("", 0), 0);
    CHECK_INT(sff_objstore_check_prefix("a/", 2), 0);
    CHECK_INT(sff_objstore_check_prefix("a/b", 3), 0);
    CHECK_INT(sff_objstore_check_prefix("/", 1), SFF_EBADREQ);
    CHECK_INT(sff_objstore_check_prefix("a//", 3), SFF_EBADREQ);
    CHECK_INT(sff_objstore_check_prefix("../", 3), SFF_EBADREQ);
}

TEST(url_validation)
{
    static const struct {
        const char *url;
        const char *access;
        int ret;
    } cases[] = {
        {"", "k", SFF_EBADREQ},
        {"ftp://x", "k", SFF_EBADREQ},
        {"file://relative/path", NULL, SFF_EBADREQ},
        {"file:///tmp/x?y", NULL, SFF_EBADREQ},
        {"s3://", "k", SFF_EBADREQ},
        {"s3://UPPER", "k", SFF_EBADREQ},
        {"s3://ab", "k", SFF_EBADREQ},
        {"s3://bucket/path", "k", SFF_EBADREQ},
        {"s3://bucket?endpoint=ftp://x", "k", SFF_EBADREQ},
        {"s3://bucket?endpoint=http://h:0", "k", SFF_EBADREQ},
        {"s3://bucket?endpoint=http://h:1/p", "k", SFF_EBADREQ},
        {"s3://bucket?style=sideways", "k", SFF_EBADREQ},
        {"s3://bucket?colour=blue", "k", SFF_EBADREQ},
        {"s3://bucket?region=US_EAST", "k", SFF_EBADREQ},
        {"s3://bucket?endpoint=http://127.0.0.1:9000&style=virtual", "k", SFF_EBADREQ},
        {"s3://bucket", NULL, SFF_EBADREQ},
        {"s3://bucket", "k", 0},
        {"s3://bucket?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1", "k", 0},
        {"s3://bucket?endpoint=https://[::1]:9000/", "k", 0},
        {"s3://bucket?endpoint=http://minio:9000&style=virtual", "k", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sff_objstore_config_t cfg = {.url = cases[i].url, .access_key = cases[i].access, .secret_key = "secret"};
        sff_objstore_t *st = NULL;
        char err[256];
        int ret = sff_objstore_create(loop, &cfg, &st, err, sizeof(err));
        if (ret != cases[i].ret) {
            fprintf(stderr, "  %s: %d (%s)\n", cases[i].url, ret, err);
            CHECK(0);
        }
        if (ret != 0) {
            CHECK(st == NULL);
            CHECK(err[0] != '\0' && strstr(err, "secret") == NULL);
        }
        sff_objstore_destroy(st);
    }
}

/* ---- the file driver ---------------------------------------------------------------------------- */

TEST(file_basic)
{
    char root[512];
    sff_objstore_t *st = file_store("basic", 0, root, sizeof(root));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    CHECK_STR(sff_objstore_driver(st), "file");
    const char *keys[] = {"hello.txt", "dir/sub/deep.json", "with space+plus", "\xc3\xa9t\xc3\xa9/\xf0\x9f\x98\x80"};
    for (size_t i = 0; i < 4; i++) {
        char body[64];
        snprintf(body, sizeof(body), "body of %zu", i);
        CHECK_INT(put(st, keys[i], body, strlen(body)), 0);
        result_t r;
        CHECK_INT(get(st, keys[i], &r), 0);
        CHECK_INT(r.len, strlen(body));
        CHECK(r.body != NULL && memcmp(r.body, body, r.len) == 0);
        CHECK(r.etag[0] != '\0');
        result_free(&r);
        CHECK_INT(simple(st, sff_objstore_head, keys[i], &r), 0);
        CHECK_INT(r.size, strlen(body));
        CHECK(r.mtime > 1600000000);
        result_free(&r);
    }
    /* the content type rides in an extended attribute where the file system has them */
    char probe[600];
    snprintf(probe, sizeof(probe), "%s/hello.txt", root);
    int xattrs = getxattr(probe, "user.sff.content_type", NULL, 0) > 0;
    result_t r;
    CHECK_INT(get(st, "hello.txt", &r), 0);
    if (xattrs)
        CHECK_STR(r.content_type, "text/plain");
    result_free(&r);
    /* replace, empty object */
    CHECK_INT(put(st, "hello.txt", "", 0), 0);
    CHECK_INT(get(st, "hello.txt", &r), 0);
    CHECK_INT(r.len, 0);
    CHECK(r.body != NULL);
    result_free(&r);
    /* missing */
    CHECK_INT(get(st, "nope", &r), SFF_ENOTFOUND);
    CHECK_STR(r.msg, "no such object");
    result_free(&r);
    CHECK_INT(get(st, "dir/sub", &r), SFF_ENOTFOUND); /* a directory is no object */
    result_free(&r);
    CHECK_INT(simple(st, sff_objstore_head, "dir/nope/x", &r), SFF_ENOTFOUND);
    result_free(&r);
    /* delete, twice */
    CHECK_INT(simple(st, sff_objstore_delete, "dir/sub/deep.json", &r), 0);
    result_free(&r);
    CHECK_INT(simple(st, sff_objstore_delete, "dir/sub/deep.json", &r), 0);
    result_free(&r);
    CHECK_INT(get(st, "dir/sub/deep.json", &r), SFF_ENOTFOUND);
    result_free(&r);
    /* conflicts of a file system */
    CHECK_INT(put(st, "hello.txt/child", "x", 1), SFF_ECONFLICT);
    CHECK_INT(put(st, "dir", "x", 1), SFF_ECONFLICT);
    /* too large, bad keys: refused at once, no callback */
    result_t never = {0};
    sff_objstore_put_t big = {.body = "x", .len = 64 * 1024 * 1024 + 1};
    CHECK_INT(sff_objstore_put(st, "big", &big, on_result, &never, NULL), SFF_ETOOLARGE);
    CHECK_INT(sff_objstore_get(st, "../etc/passwd", NULL, on_result, &never, NULL), SFF_EBADREQ);
    CHECK_INT(sff_objstore_head(st, "/abs", 0, on_result, &never, NULL), SFF_EBADREQ);
    CHECK_INT(sff_objstore_delete(st, "a//b", 0, on_result, &never, NULL), SFF_EBADREQ);
    char *url = NULL;
    CHECK_INT(sff_objstore_presign(st, "GET", "hello.txt", 60, 0, &url), SFF_EINTERNAL);
    run_for(50);
    CHECK_INT(never.calls, 0);
    sff_objstore_destroy(st);
}

TEST(file_list_pagination)
{
    char root[512];
    sff_objstore_t *st = file_store("list", 0, root, sizeof(root));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    /* byte order across directories: "a" < "a-b" < "a.b" < "a/..." < "a0" < "b" */
    const char *keys[] = {"b", "a0", "a/z", "a/c/d", "a/c", "a.b", "a-b", "a", "a/c-", "\xc3\xa9", "Z", "a/b/c/d/e"};
    size_t nkeys = sizeof(keys) / sizeof(keys[0]);
    int ok = 1;
    for (size_t i = 0; i < nkeys; i++) {
        if (strcmp(keys[i], "a/c") == 0 || strcmp(keys[i], "a") == 0)
            continue; /* a file system cannot hold "a" and "a/z" at once */
        ok &= put(st, keys[i], keys[i], strlen(keys[i])) == 0;
    }
    CHECK(ok);
    for (int i = 0; i < 25; i++) {
        char k[32];
        snprintf(k, sizeof(k), "many/%02d", i);
        ok &= put(st, k, k, strlen(k)) == 0;
    }
    CHECK(ok);
    const char *want = "Z|a-b|a.b|a/b/c/d/e|a/c-|a/c/d|a/z|a0|b";
    size_t pages;
    char *all = list_all(st, NULL, 1000, &pages);
    CHECK(strncmp(all, want, strlen(want)) == 0);
    CHECK(strstr(all, "many/00|many/01") != NULL);
    CHECK(strstr(all, "\xc3\xa9") != NULL && strcmp(all + strlen(all) - 2, "\xc3\xa9") == 0);
    CHECK_INT(pages, 1);
    for (size_t page = 1; page <= 7; page += 3) {
        char *paged = list_all(st, NULL, page, &pages);
        CHECK_STR(paged, all);
        free(paged);
    }
    free(all);
    char *many = list_all(st, "many/", 10, &pages);
    CHECK_INT(pages, 3);
    CHECK(strncmp(many, "many/00|many/01|", 16) == 0 && strstr(many, "many/24") != NULL && strstr(many, "a/") == NULL);
    free(many);
    char *a = list_all(st, "a", 2, &pages);
    CHECK_STR(a, "a-b|a.b|a/b/c/d/e|a/c-|a/c/d|a/z|a0");
    free(a);
    char *ac = list_all(st, "a/c", 1, &pages);
    CHECK_STR(ac, "a/c-|a/c/d");
    free(ac);
    result_t r;
    CHECK_INT(list(st, "zzz", NULL, 10, &r), 0);
    CHECK_INT(r.nkeys, 0);
    CHECK(r.next == NULL);
    result_free(&r);
    CHECK_INT(list(st, "../", NULL, 10, &r), SFF_EBADREQ);
    CHECK_INT(list(st, NULL, NULL, 1001, &r), SFF_EBADREQ);
    sff_objstore_destroy(st);
}

/* A streamed put: on_pull hands out the next piece of src. */
typedef struct {
    result_t r;
    const char *src;
    size_t size, off, piece, pulls;
    int cancel_at; /* cancel in the nth pull (0: never) */
    sff_objstore_op_t *op;
} streamer_t;

static void on_pull(void *data, sff_objstore_op_t *op)
{
    streamer_t *s = data;
    s->pulls++;
    if (s->cancel_at != 0 && (int)s->pulls == s->cancel_at) {
        sff_objstore_cancel(op);
        return;
    }
    size_t n = s->size - s->off < s->piece ? s->size - s->off : s->piece;
    if (sff_objstore_write(op, s->src + s->off, n) != 0)
        fprintf(stderr, "  write refused\n");
    /* a second write for the same pull is refused and changes nothing */
    if (sff_objstore_write(op, s->src, 1) != SFF_EBADREQ)
        fprintf(stderr, "  a second write was taken\n");
    s->off += n;
}

static int put_stream(sff_objstore_t *st, const char *key, const char *src, size_t size, size_t piece, streamer_t *s)
{
    memset(s, 0, sizeof(*s));
    s->src = src;
    s->size = size;
    s->piece = piece;
    sff_objstore_put_t p = {.size = size, .on_pull = on_pull};
    int ret = sff_objstore_put(st, key, &p, on_result, s, &s->op);
    return ret != 0 ? ret : wait_result(&s->r, 30000);
}

/* A streamed get: checks every byte against want, pauses now and then. */
typedef struct {
    result_t r;
    const char *want;
    size_t got, chunks, infos;
    uint64_t info_size;
    int mismatch, paused, pause_every, cancel_after;
    sff_objstore_op_t *op;
} reader_t;

static void on_info(void *data, const sff_objstore_info_t *info)
{
    reader_t *rd = data;
    rd->infos++;
    rd->info_size = info->size;
}

static int on_chunk(void *data, const char *bytes, size_t len)
{
    reader_t *rd = data;
    if (rd->want != NULL && memcmp(rd->want + rd->got, bytes, len) != 0)
        rd->mismatch = 1;
    rd->got += len;
    rd->chunks++;
    if (rd->cancel_after != 0 && (int)rd->chunks == rd->cancel_after) {
        sff_objstore_cancel(rd->op);
        return 0;
    }
    if (rd->pause_every != 0 && rd->chunks % (size_t)rd->pause_every == 0) {
        rd->paused = 1;
        return SFF_OBJSTORE_PAUSE;
    }
    return 0;
}

static int get_stream(sff_objstore_t *st, const char *key, const char *want, int pause_every, reader_t *rd)
{
    memset(rd, 0, sizeof(*rd));
    rd->want = want;
    rd->pause_every = pause_every;
    sff_objstore_get_t g = {.on_info = on_info, .on_chunk = on_chunk};
    int ret = sff_objstore_get(st, key, &g, on_result, rd, &rd->op);
    if (ret != 0)
        return ret;
    uint64_t deadline = sff_now_ms() + 30000;
    while (!rd->r.done && sff_now_ms() < deadline) {
        turn();
        if (rd->paused && !rd->r.done) {
            rd->paused = 0;
            sff_objstore_resume(rd->op);
        }
    }
    return rd->r.done ? rd->r.err : -1;
}

TEST(file_streams)
{
    char root[512];
    sff_objstore_t *st = file_store("streams", 0, root, sizeof(root));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    size_t size = 10 * 1024 * 1024 + 123;
    char *src = pattern(size, 1);
    streamer_t s;
    CHECK_INT(put_stream(st, "big/object.bin", src, size, 64 * 1024 + 7, &s), 0);
    CHECK_INT(s.r.size, size);
    CHECK_INT(s.off, size);
    result_free(&s.r);
    result_t r;
    CHECK_INT(get(st, "big/object.bin", &r), 0);
    CHECK(r.len == size && memcmp(r.body, src, size) == 0);
    result_free(&r);
    reader_t rd;
    CHECK_INT(get_stream(st, "big/object.bin", src, 3, &rd), 0);
    CHECK_INT(rd.got, size);
    CHECK_INT(rd.infos, 1);
    CHECK_INT(rd.info_size, size);
    CHECK(!rd.mismatch && rd.chunks > 10);
    result_free(&rd.r);
    /* collecting more than allowed */
    memset(&r, 0, sizeof(r));
    sff_objstore_get_t small = {.max_bytes = 1024};
    CHECK_INT(sff_objstore_get(st, "big/object.bin", &small, on_result, &r, NULL), 0);
    CHECK_INT(wait_result(&r, 10000), SFF_ETOOLARGE);
    CHECK(r.body == NULL);
    result_free(&r);
    /* a stream must be exactly its size */
    memset(&r, 0, sizeof(r));
    sff_objstore_put_t bad = {.size = 0, .on_pull = on_pull};
    CHECK_INT(sff_objstore_put(st, "x", &bad, on_result, &r, NULL), SFF_EBADREQ);
    free(src);
    sff_objstore_destroy(st);
}

/* Writers replace one key with objects made of one repeated letter while readers read it: every
 * read sees one whole object. */
TEST(file_atomicity)
{
    char root[512];
    sff_objstore_t *st = file_store("atomic", 0, root, sizeof(root));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    size_t size = 2 * 1024 * 1024;
    char *objs[4];
    for (int i = 0; i < 4; i++) {
        objs[i] = malloc(size);
        memset(objs[i], 'A' + i, size);
    }
    CHECK_INT(put(st, "shared/obj", objs[0], size), 0);
    enum { N = 24 };
    result_t w[N], rr[N];
    memset(w, 0, sizeof(w));
    memset(rr, 0, sizeof(rr));
    for (int i = 0; i < N; i++) {
        sff_objstore_put_t p = {.body = objs[i % 4], .len = size};
        CHECK_INT(sff_objstore_put(st, "shared/obj", &p, on_result, &w[i], NULL), 0);
        CHECK_INT(sff_objstore_get(st, "shared/obj", NULL, on_result, &rr[i], NULL), 0);
    }
    int all = 0;
    uint64_t deadline = sff_now_ms() + 60000;
    while (!all && sff_now_ms() < deadline) {
        turn();
        all = 1;
        for (int i = 0; i < N; i++)
            all &= w[i].done && rr[i].done;
    }
    CHECK(all);
    int torn = 0;
    for (int i = 0; i < N; i++) {
        CHECK_INT(w[i].err, 0);
        CHECK_INT(rr[i].err, 0);
        if (rr[i].len != size || rr[i].body == NULL) {
            torn++;
        } else {
            for (size_t j = 1; j < size; j++)
                if (rr[i].body[j] != rr[i].body[0]) {
                    torn++;
                    break;
                }
        }
        result_free(&w[i]);
        result_free(&rr[i]);
    }
    CHECK_INT(torn, 0);
    /* what a crash leaves: a temp file (and an empty directory) that nobody lists */
    char path[700];
    snprintf(path, sizeof(path), "%s/.sff-tmp/12345.deadbeefdeadbeef", root);
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp != NULL) {
        fputs("half an object", fp);
        fclose(fp);
    }
    snprintf(path, sizeof(path), "%s/empty-dir", root);
    mkdir(path, 0755);
    size_t pages;
    char *keys = list_all(st, NULL, 100, &pages);
    CHECK_STR(keys, "shared/obj");
    free(keys);
    result_t r;
    CHECK_INT(get(st, ".sff-tmp/12345.deadbeefdeadbeef", &r), SFF_EBADREQ);
    CHECK_INT(put(st, ".sff-tmp/x", "x", 1), SFF_EBADREQ);
    CHECK_INT(list(st, ".sff-tmp/", NULL, 10, &r), 0);
    CHECK_INT(r.nkeys, 0);
    result_free(&r);
    for (int i = 0; i < 4; i++)
        free(objs[i]);
    sff_objstore_destroy(st);
}

TEST(file_traversal_and_symlinks)
{
    char root[512], outside[600], path[700], link[700];
    sff_objstore_t *st = file_store("links", 0, root, sizeof(root));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
    mkdir(outside, 0755);
    snprintf(path, sizeof(path), "%s/secret", outside);
    FILE *fp = fopen(path, "w");
    if (fp != NULL) {
        fputs("secret", fp);
        fclose(fp);
    }
    /* root/escape -> outside (a directory), root/evil -> outside/secret (a file) */
    snprintf(link, sizeof(link), "%s/escape", root);
    CHECK_INT(symlink(outside, link), 0);
    snprintf(link, sizeof(link), "%s/evil", root);
    CHECK_INT(symlink(path, link), 0);
    CHECK_INT(put(st, "ok", "fine", 4), 0);
    result_t r;
    CHECK_INT(get(st, "escape/secret", &r), SFF_EBADREQ);
    CHECK(r.body == NULL);
    result_free(&r);
    CHECK_INT(get(st, "evil", &r), SFF_EBADREQ);
    CHECK(r.body == NULL);
    result_free(&r);
    CHECK_INT(simple(st, sff_objstore_head, "escape/secret", &r), SFF_EBADREQ);
    result_free(&r);
    CHECK_INT(put(st, "escape/new", "x", 1), SFF_EBADREQ);
    snprintf(path, sizeof(path), "%s/new", outside);
    CHECK(access(path, F_OK) != 0);
    CHECK_INT(put(st, "escape/deeper/new", "x", 1), SFF_EBADREQ);
    CHECK_INT(simple(st, sff_objstore_delete, "escape/secret", &r), SFF_EBADREQ);
    result_free(&r);
    snprintf(path, sizeof(path), "%s/secret", outside);
    CHECK(access(path, F_OK) == 0);
    /* replacing a symbolic link with an object replaces the link, never its target */
    CHECK_INT(put(st, "evil", "overwritten", 11), 0);
    char buf[32] = "";
    fp = fopen(path, "r");
    if (fp != NULL) {
        CHECK(fgets(buf, sizeof(buf), fp) != NULL);
        fclose(fp);
    }
    CHECK_STR(buf, "secret");
    /* a listing does not follow links either */
    size_t pages;
    char *keys = list_all(st, NULL, 100, &pages);
    CHECK_STR(keys, "evil|ok");
    free(keys);
    /* traversal in keys never reaches the driver */
    const char *bad[] = {"../outside/secret", "a/../../outside/secret", "/etc/passwd", "a/./b", "a\\..\\b/..", ".."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int ret = get(st, bad[i], &r);
        if (strcmp(bad[i], "a\\..\\b/..") == 0 || ret != SFF_EBADREQ)
            CHECK_INT(ret, SFF_EBADREQ);
        result_free(&r);
    }
    sff_objstore_destroy(st);
}

TEST(file_overload_and_cancel)
{
    char root[512];
    sff_objstore_t *st = file_store("overload", 2, root, sizeof(root));
    CHECK(st != NULL);
    if (st == NULL)
        return;
    CHECK_INT(put(st, "k", "v", 1), 0);
    result_t a = {0}, b = {0}, c = {0};
    CHECK_INT(sff_objstore_get(st, "k", NULL, on_result, &a, NULL), 0);
    CHECK_INT(sff_objstore_get(st, "k", NULL, on_result, &b, NULL), 0);
    CHECK_INT(sff_objstore_get(st, "k", NULL, on_result, &c, NULL), SFF_EOVERLOADED);
    CHECK_INT(wait_result(&a, 5000), 0);
    CHECK_INT(wait_result(&b, 5000), 0);
    run_for(20);
    CHECK_INT(c.calls, 0);
    result_free(&a);
    result_free(&b);
    /* cancel right after the start: no callback, and the slot is given back */
    for (int i = 0; i < 10; i++) {
        result_t x = {0};
        sff_objstore_op_t *op;
        CHECK_INT(sff_objstore_get(st, "k", NULL, on_result, &x, &op), 0);
        sff_objstore_cancel(op);
        run_for(5);
        CHECK_INT(x.calls, 0);
    }
    run_for(50);
    CHECK_INT(sff_objstore_get(st, "k", NULL, on_result, &a, NULL), 0);
    CHECK_INT(wait_result(&a, 5000), 0);
    result_free(&a);
    /* a streamed put cancelled in the middle: no callback, no object, no temp file left */
    size_t size = 1024 * 1024;
    char *src = pattern(size, 2);
    streamer_t s;
    memset(&s, 0, sizeof(s));
    s.src = src;
    s.size = size;
    s.piece = 64 * 1024;
    s.cancel_at = 5;
    sff_objstore_put_t p = {.size = size, .on_pull = on_pull};
    CHECK_INT(sff_objstore_put(st, "cancelled", &p, on_result, &s, &s.op), 0);
    run_for(300);
    CHECK_INT(s.r.calls, 0);
    CHECK_INT(s.pulls, 5);
    result_t r;
    CHECK_INT(get(st, "cancelled", &r), SFF_ENOTFOUND);
    result_free(&r);
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s/.sff-tmp", root);
    size_t pages;
    (void)pages;
    int leftovers = 0;
    DIR *d = opendir(tmp);
    for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
        leftovers += de->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    CHECK_INT(leftovers, 0);
    /* a streamed get cancelled inside its chunk callback */
    CHECK_INT(put(st, "big", src, size), 0);
    reader_t rd;
    memset(&rd, 0, sizeof(rd));
    rd.cancel_after = 2;
    sff_objstore_get_t g = {.on_chunk = on_chunk};
    CHECK_INT(sff_objstore_get(st, "big", &g, on_result, &rd, &rd.op), 0);
    run_for(200);
    CHECK_INT(rd.chunks, 2);
    CHECK_INT(rd.r.calls, 0);
    /* ops in flight at destroy: cancelled, no callback */
    result_t late = {0};
    CHECK_INT(sff_objstore_get(st, "big", NULL, on_result, &late, NULL), 0);
    sff_objstore_destroy(st);
    CHECK_INT(late.calls, 0);
    free(src);
}

/* ---- the S3 driver ------------------------------------------------------------------------------ */

#define PATH_URL "s3://sff-test?endpoint=http://127.0.0.1:%d"

static const char *odd_keys[] = {
    "plain.txt", "photos/2024/a b+c.jpg", "a+b=c&d;e,f:g@h$i", "\xc3\xbcn\xc3\xaf/\xe1\x88\xb4/\xf0\x9f\x98\x80.bin",
    "!'()*[]{}", "100%/%41%2F",
};

TEST(s3_basic)
{
    CHECK(s3_up);
    if (!s3_up)
        return;
    sff_objstore_t *st = s3_store(PATH_URL, s3.port, NULL, NULL);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    CHECK_STR(sff_objstore_driver(st), "s3");
    for (size_t i = 0; i < sizeof(odd_keys) / sizeof(odd_keys[0]); i++) {
        char body[128];
        snprintf(body, sizeof(body), "the object %s", odd_keys[i]);
        CHECK_INT(put(st, odd_keys[i], body, strlen(body)), 0);
        result_t r;
        CHECK_INT(get(st, odd_keys[i], &r), 0);
        CHECK(r.len == strlen(body) && r.body != NULL && memcmp(r.body, body, r.len) == 0);
        CHECK(strlen(r.etag) == 32); /* s3rver: the MD5, without quotes */
        CHECK_STR(r.content_type, "text/plain");
        result_free(&r);
        CHECK_INT(simple(st, sff_objstore_head, odd_keys[i], &r), 0);
        CHECK_INT(r.size, strlen(body));
        CHECK(r.mtime > 1600000000);
        result_free(&r);
    }
    result_t r;
    CHECK_INT(list(st, "photos/", NULL, 10, &r), 0);
    CHECK_INT(r.nkeys, 1);
    if (r.nkeys == 1)
        CHECK_STR(r.keys[0], "photos/2024/a b+c.jpg");
    result_free(&r);
    CHECK_INT(get(st, "missing/key", &r), SFF_ENOTFOUND);
    result_free(&r);
    CHECK_INT(simple(st, sff_objstore_head, "missing/key", &r), SFF_ENOTFOUND);
    result_free(&r);
    CHECK_INT(simple(st, sff_objstore_delete, "plain.txt", &r), 0);
    result_free(&r);
    CHECK_INT(simple(st, sff_objstore_delete, "plain.txt", &r), 0); /* S3: deleting nothing succeeds */
    result_free(&r);
    CHECK_INT(get(st, "plain.txt", &r), SFF_ENOTFOUND);
    result_free(&r);
    /* keep-alive: all of this went over few connections */
    sff_httpc_t *hc = sff_objstore_s3_httpc(st);
    uint64_t before = sff_httpc_connects(hc);
    for (int i = 0; i < 20; i++) {
        CHECK_INT(simple(st, sff_objstore_head, "a+b=c&d;e,f:g@h$i", &r), 0);
        result_free(&r);
    }
    CHECK_INT(sff_httpc_connects(hc) - before, 0);
    CHECK_INT(sff_httpc_idle_count(hc), 1);
    sff_objstore_destroy(st);
}

TEST(s3_large_objects)
{
    CHECK(s3_up);
    if (!s3_up)
        return;
    sff_objstore_t *st = s3_store(PATH_URL, s3.port, NULL, NULL);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    size_t size = 10 * 1024 * 1024;
    char *src = pattern(size, 3);
    uint64_t out0 = sff_objstore_stats.bytes_out, in0 = sff_objstore_stats.bytes_in;
    CHECK_INT(put(st, "big/buffered.bin", src, size), 0);
    result_t r;
    CHECK_INT(get(st, "big/buffered.bin", &r), 0);
    CHECK(r.len == size && memcmp(r.body, src, size) == 0);
    result_free(&r);
    streamer_t s;
    CHECK_INT(put_stream(st, "big/streamed.bin", src, size, 256 * 1024 + 3, &s), 0);
    result_free(&s.r);
    reader_t rd;
    CHECK_INT(get_stream(st, "big/streamed.bin", src, 5, &rd), 0);
    CHECK_INT(rd.got, size);
    CHECK_INT(rd.info_size, size);
    CHECK(!rd.mismatch);
    result_free(&rd.r);
    CHECK(sff_objstore_stats.bytes_out - out0 >= 2 * size);
    CHECK(sff_objstore_stats.bytes_in - in0 >= 2 * size);
    /* too large to collect: refused from the Content-Length, before reading the body */
    memset(&r, 0, sizeof(r));
    sff_objstore_get_t small = {.max_bytes = 1000};
    CHECK_INT(sff_objstore_get(st, "big/buffered.bin", &small, on_result, &r, NULL), 0);
    CHECK_INT(wait_result(&r, 10000), SFF_ETOOLARGE);
    result_free(&r);
    free(src);
    sff_objstore_destroy(st);
}

TEST(s3_list_pagination)
{
    CHECK(s3_up);
    if (!s3_up)
        return;
    sff_objstore_t *st = s3_store(PATH_URL, s3.port, NULL, NULL);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    char want[4096] = "";
    size_t wl = 0;
    for (int i = 0; i < 25; i++) {
        char k[64];
        snprintf(k, sizeof(k), "pages/%02d %s", i, i % 2 ? "odd+" : "even&");
        CHECK_INT(put(st, k, k, strlen(k)), 0);
        wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s%s", wl != 0 ? "|" : "", k);
    }
    size_t pages;
    char *got = list_all(st, "pages/", 10, &pages);
    CHECK_STR(got, want);
    CHECK_INT(pages, 3);
    free(got);
    got = list_all(st, "pages/", 1000, &pages);
    CHECK_STR(got, want);
    CHECK_INT(pages, 1);
    free(got);
    got = list_all(st, "pages/1", 4, &pages);
    CHECK(strncmp(got, "pages/10 even&|pages/11 odd+|", 29) == 0);
    free(got);
    sff_objstore_destroy(st);
}

/* Runs a shell command, returns its exit status. */
static int sh(const char *cmd)
{
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(s3_presigned_with_curl)
{
    CHECK(s3_up);
    if (!s3_up)
        return;
    sff_objstore_t *st = s3_store(PATH_URL, s3.port, NULL, NULL);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    const char *key = "shared/report 2024+final.txt";
    CHECK_INT(put(st, key, "presigned body", 14), 0);
    char *url = NULL, cmd[4096], out[600];
    CHECK_INT(sff_objstore_presign(st, "GET", key, 300, 0, &url), 0);
    snprintf(out, sizeof(out), "%s/curl-get.out", tmpdir);
    snprintf(cmd, sizeof(cmd), "curl -sf -o '%s' '%s'", out, url);
    CHECK_INT(sh(cmd), 0);
    char buf[64] = "";
    FILE *fp = fopen(out, "r");
    if (fp != NULL) {
        CHECK(fgets(buf, sizeof(buf), fp) != NULL);
        fclose(fp);
    }
    CHECK_STR(buf, "presigned body");
    free(url);
    /* an expired URL is refused */
    CHECK_INT(sff_objstore_presign(st, "GET", key, 60, time(NULL) - 3600, &url), 0);
    snprintf(cmd, sizeof(cmd), "curl -sf -o /dev/null '%s'", url);
    CHECK(sh(cmd) != 0);
    free(url);
    /* a presigned PUT, then read back through the driver */
    CHECK_INT(sff_objstore_presign(st, "PUT", "uploads/from curl.bin", 300, 0, &url), 0);
    snprintf(cmd, sizeof(cmd), "printf 'uploaded by curl' | curl -sf -X PUT --data-binary @- '%s'", url);
    CHECK_INT(sh(cmd), 0);
    free(url);
    result_t r;
    CHECK_INT(get(st, "uploads/from curl.bin", &r), 0);
    CHECK(r.body != NULL && strcmp(r.body, "uploaded by curl") == 0);
    result_free(&r);
    sff_objstore_destroy(st);
}

TEST(s3_virtual_host_style)
{
    CHECK(s3_up);
    if (!s3_up)
        return;
    /* s3.localhost resolves to 127.0.0.1 (RFC 6761); s3rver maps Host sff-test.s3.localhost to the bucket */
    sff_objstore_t *st = s3_store("s3://sff-test?endpoint=http://s3.localhost:%d&style=virtual", s3.port, NULL, NULL);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    CHECK_INT(put(st, "vhost/a b.txt", "virtual", 7), 0);
    result_t r;
    CHECK_INT(get(st, "vhost/a b.txt", &r), 0);
    CHECK(r.body != NULL && strcmp(r.body, "virtual") == 0);
    result_free(&r);
    CHECK_INT(list(st, "vhost/", NULL, 10, &r), 0);
    CHECK_INT(r.nkeys, 1);
    result_free(&r);
    char *url = NULL, cmd[4096];
    CHECK_INT(sff_objstore_presign(st, "GET", "vhost/a b.txt", 60, 0, &url), 0);
    CHECK(url != NULL && strncmp(url, "http://sff-test.s3.localhost:", 29) == 0);
    snprintf(cmd, sizeof(cmd), "curl -sf --resolve 'sff-test.s3.localhost:%d:127.0.0.1' -o /dev/null '%s'", s3.port, url);
    CHECK_INT(sh(cmd), 0);
    free(url);
    sff_objstore_destroy(st);
    /* the same object path-style */
    st = s3_store(PATH_URL, s3.port, NULL, NULL);
    CHECK_INT(get(st, "vhost/a b.txt", &r), 0);
    result_free(&r);
    sff_objstore_destroy(st);
}

TEST(s3_errors)
{
    CHECK(s3_up);
    if (!s3_up)
        return;
    /* 403: a misconfiguration, and the message holds no credentials */
    sff_objstore_t *st = s3_store(PATH_URL, s3.port, "WRONGKEYID", NULL);
    CHECK(st != NULL);
    if (st != NULL) {
        result_t r;
        CHECK_INT(get(st, "plain", &r), SFF_EINTERNAL);
        CHECK(strstr(r.msg, "403") != NULL && strstr(r.msg, "WRONGKEYID") == NULL && strstr(r.msg, TC_S3_SECRET_KEY) == NULL);
        result_free(&r);
        CHECK_INT(put(st, "plain", "x", 1), SFF_EINTERNAL);
        sff_objstore_destroy(st);
    }
    /* a bucket that does not exist */
    st = s3_store("s3://no-such-bucket?endpoint=http://127.0.0.1:%d", s3.port, NULL, NULL);
    if (st != NULL) {
        result_t r;
        CHECK_INT(get(st, "plain", &r), SFF_EINTERNAL);
        CHECK(strstr(r.msg, "NoSuchBucket") != NULL);
        result_free(&r);
        sff_objstore_destroy(st);
    }
    /* nobody listening: unavailable after the retries, quickly */
    int port = tc_free_port();
    st = s3_store(PATH_URL, port, NULL, NULL);
    if (st != NULL) {
        result_t r;
        uint64_t retries = sff_objstore_stats.retries, t0 = sff_now_ms();
        CHECK_INT(get(st, "plain", &r), SFF_EUNAVAILABLE);
        CHECK(sff_now_ms() - t0 < 5000);
        CHECK_INT(sff_objstore_stats.retries - retries, 3);
        result_free(&r);
        sff_objstore_destroy(st);
    }
}

TEST(s3_faults)
{
    CHECK(s3_up && proxy != NULL);
    if (!s3_up || proxy == NULL)
        return;
    sff_objstore_t *st = s3_store(PATH_URL, tc_proxy_port(proxy), NULL, NULL);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    size_t size = 1024 * 1024;
    char *src = pattern(size, 4);
    CHECK_INT(put(st, "faults/object", src, size), 0);
    result_t r;

    /* 503, 503, then success: a GET is retried */
    uint64_t retries = sff_objstore_stats.retries;
    size_t reqs = tc_proxy_requests(proxy);
    tc_proxy_fault(proxy, TC_FAULT_503, 0, 2);
    CHECK_INT(get(st, "faults/object", &r), 0);
    CHECK(r.len == size && memcmp(r.body, src, size) == 0);
    result_free(&r);
    CHECK_INT(sff_objstore_stats.retries - retries, 2);
    CHECK_INT(tc_proxy_requests(proxy) - reqs, 3);

    /* a buffered PUT is retried too (idempotent) */
    reqs = tc_proxy_requests(proxy);
    tc_proxy_fault(proxy, TC_FAULT_503, 0, 1);
    CHECK_INT(put(st, "faults/buffered", src, size), 0);
    CHECK_INT(tc_proxy_requests(proxy) - reqs, 2);

    /* a streamed PUT is not: its bytes are gone */
    reqs = tc_proxy_requests(proxy);
    retries = sff_objstore_stats.retries;
    tc_proxy_fault(proxy, TC_FAULT_503, 0, 1);
    streamer_t s;
    CHECK_INT(put_stream(st, "faults/streamed", src, size, 64 * 1024, &s), SFF_EUNAVAILABLE);
    CHECK(strstr(s.r.msg, "503") != NULL);
    result_free(&s.r);
    CHECK_INT(tc_proxy_requests(proxy) - reqs, 1);
    CHECK_INT(sff_objstore_stats.retries - retries, 0);
    CHECK_INT(get(st, "faults/streamed", &r), SFF_ENOTFOUND);
    result_free(&r);

    /* 503 every time: unavailable after max_retries */
    reqs = tc_proxy_requests(proxy);
    tc_proxy_fault(proxy, TC_FAULT_503, 0, 4);
    CHECK_INT(simple(st, sff_objstore_head, "faults/object", &r), SFF_EUNAVAILABLE);
    CHECK(strstr(r.msg, "after retries") != NULL);
    result_free(&r);
    CHECK_INT(tc_proxy_requests(proxy) - reqs, 4);

    /* a stall: SFF_ETIMEDOUT at the call's deadline */
    tc_proxy_fault(proxy, TC_FAULT_STALL, 0, 1);
    memset(&r, 0, sizeof(r));
    sff_objstore_get_t g = {.timeout_ms = 400};
    uint64_t t0 = sff_now_ms();
    CHECK_INT(sff_objstore_get(st, "faults/object", &g, on_result, &r, NULL), 0);
    CHECK_INT(wait_result(&r, 5000), SFF_ETIMEDOUT);
    CHECK(r.ended_ms - t0 >= 400 && r.ended_ms - t0 < 1500); /* at the deadline, give or take a loaded machine */
    CHECK_INT(r.calls, 1);
    result_free(&r);
    run_for(1500); /* the client's own, later, deadline never fires a second callback */
    CHECK_INT(r.calls, 0);

    /* a body cut mid-way: an error, not a short success; collected or streamed */
    tc_proxy_fault(proxy, TC_FAULT_CUT, 100000, 1);
    CHECK_INT(get(st, "faults/object", &r), SFF_EUNAVAILABLE);
    CHECK(r.body == NULL);
    CHECK(strstr(r.msg, "mid-body") != NULL);
    result_free(&r);
    tc_proxy_fault(proxy, TC_FAULT_CUT, 300000, 1);
    reader_t rd;
    CHECK_INT(get_stream(st, "faults/object", src, 0, &rd), SFF_EUNAVAILABLE);
    CHECK(rd.got <= 300000 && !rd.mismatch);
    result_free(&rd.r);

    /* and everything works again afterwards */
    CHECK_INT(get(st, "faults/object", &r), 0);
    CHECK(r.len == size);
    result_free(&r);
    free(src);
    sff_objstore_destroy(st);
}

TEST(s3_cancel)
{
    CHECK(s3_up && proxy != NULL);
    if (!s3_up || proxy == NULL)
        return;
    sff_objstore_t *st = s3_store(PATH_URL, tc_proxy_port(proxy), NULL, NULL);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    size_t size = 4 * 1024 * 1024;
    char *src = pattern(size, 5);
    CHECK_INT(put(st, "cancel/object", src, size), 0);
    /* right after the start */
    result_t r = {0};
    sff_objstore_op_t *op;
    CHECK_INT(sff_objstore_get(st, "cancel/object", NULL, on_result, &r, &op), 0);
    sff_objstore_cancel(op);
    run_for(300);
    CHECK_INT(r.calls, 0);
    /* inside the chunk callback */
    reader_t rd;
    memset(&rd, 0, sizeof(rd));
    rd.cancel_after = 1;
    sff_objstore_get_t g = {.on_chunk = on_chunk};
    CHECK_INT(sff_objstore_get(st, "cancel/object", &g, on_result, &rd, &rd.op), 0);
    run_for(300);
    CHECK_INT(rd.chunks, 1);
    CHECK_INT(rd.r.calls, 0);
    /* during the backoff before a retry */
    tc_proxy_fault(proxy, TC_FAULT_503, 0, 1);
    memset(&r, 0, sizeof(r));
    CHECK_INT(sff_objstore_get(st, "cancel/object", NULL, on_result, &r, &op), 0);
    uint64_t retries = sff_objstore_stats.retries, deadline = sff_now_ms() + 5000;
    while (sff_objstore_stats.retries == retries && sff_now_ms() < deadline)
        turn();
    CHECK(sff_objstore_stats.retries == retries + 1);
    sff_objstore_cancel(op);
    run_for(300);
    CHECK_INT(r.calls, 0);
    /* during a stall, then at destroy */
    tc_proxy_fault(proxy, TC_FAULT_STALL, 0, 2);
    CHECK_INT(sff_objstore_get(st, "cancel/object", NULL, on_result, &r, &op), 0);
    run_for(100);
    sff_objstore_cancel(op);
    result_t late = {0};
    CHECK_INT(sff_objstore_head(st, "cancel/object", 0, on_result, &late, NULL), 0);
    run_for(100);
    sff_objstore_destroy(st);
    run_for(100);
    CHECK_INT(r.calls, 0);
    CHECK_INT(late.calls, 0);
    tc_proxy_clear(proxy);
    free(src);
}

TEST(s3_tls)
{
    char cert[600], key[600], cmd[2048];
    snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
    snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost "
             "-keyout '%s' -out '%s' >/dev/null 2>&1",
             key, cert);
    CHECK_INT(sh(cmd), 0);
    tc_s3_t tls;
    tc_s3_tls_t files = {cert, key};
    CHECK_INT(tc_s3_start(&tls, "sff-tls", &files), 0);
    if (tls.pid == 0)
        return;
    sff_objstore_t *st = s3_store("s3://sff-tls?endpoint=https://localhost:%d", tls.port, NULL, cert);
    CHECK(st != NULL);
    if (st != NULL) {
        CHECK_INT(put(st, "secure/a b", "over TLS", 8), 0);
        result_t r;
        CHECK_INT(get(st, "secure/a b", &r), 0);
        CHECK(r.body != NULL && strcmp(r.body, "over TLS") == 0);
        result_free(&r);
        sff_objstore_destroy(st);
    }
    /* the certificate is checked: the system's CAs do not know it */
    st = s3_store("s3://sff-tls?endpoint=https://localhost:%d", tls.port, NULL, NULL);
    if (st != NULL) {
        result_t r;
        CHECK_INT(get(st, "secure/a b", &r), SFF_EUNAVAILABLE);
        CHECK(strstr(r.msg, "TLS") != NULL);
        result_free(&r);
        sff_objstore_destroy(st);
    }
    tc_s3_stop(&tls);
}

TEST(stats)
{
    /* every call above was counted; latency of every ended call too */
    uint64_t calls = 0, counted = 0, errors = 0;
    for (int i = 0; i < SFF_OBJSTORE_NOPS; i++) {
        calls += sff_objstore_stats.calls[i];
        counted += sff_objstore_stats.latency_count[i];
        errors += sff_objstore_stats.errors[i];
        CHECK(sff_objstore_stats.latency_count[i] == 0 || sff_objstore_stats.latency_us_sum[i] > 0);
    }
    CHECK(sff_objstore_stats.calls[SFF_OBJSTORE_OP_PUT] > 50);
    CHECK(sff_objstore_stats.calls[SFF_OBJSTORE_OP_PRESIGN] > 0);
    CHECK(counted <= calls);
    CHECK(errors > 0 && errors < calls);
    CHECK(sff_objstore_stats.retries >= 8);
    CHECK_STR(sff_objstore_opname(SFF_OBJSTORE_OP_LIST), "list");
}

/* ---- the HTTP client against canned responses -------------------------------------------------- */

/* A server thread: for each connection in turn, reads its requests one by one and writes the
 * canned answer of each (NULL: close without answering; "STALL": never answer), then closes. */
typedef struct {
    const char *answers[3];
    int nreq;
} canned_conn_t;

typedef struct {
    int lfd, port;
    canned_conn_t conns[4];
    int nconns;
    volatile int stop;
    pthread_t thread;
} canned_t;

static int canned_wait(canned_t *c, int fd)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    while (!c->stop) {
        int r = poll(&pfd, 1, 20);
        if (r > 0)
            return 1;
    }
    return 0;
}

static void *canned_main(void *arg)
{
    canned_t *c = arg;
    for (int i = 0; i < c->nconns && !c->stop; i++) {
        if (!canned_wait(c, c->lfd))
            break;
        int fd = accept(c->lfd, NULL, NULL);
        if (fd < 0)
            break;
        for (int r = 0; r < c->conns[i].nreq; r++) {
            char buf[4096];
            size_t have = 0;
            while (memmem(buf, have, "\r\n\r\n", 4) == NULL && have < sizeof(buf) && canned_wait(c, fd)) {
                ssize_t n = read(fd, buf + have, sizeof(buf) - have);
                if (n <= 0)
                    break;
                have += (size_t)n;
            }
            const char *answer = c->conns[i].answers[r];
            if (answer == NULL)
                break;
            if (strcmp(answer, "STALL") == 0) {
                while (canned_wait(c, fd) && read(fd, buf, sizeof(buf)) > 0)
                    ;
                break;
            }
            if (send(fd, answer, strlen(answer), MSG_NOSIGNAL) < 0)
                break;
        }
        close(fd);
    }
    return NULL;
}

static void canned_start(canned_t *c)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    c->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bind(c->lfd, (struct sockaddr *)&sin, sizeof(sin));
    listen(c->lfd, 16);
    getsockname(c->lfd, (struct sockaddr *)&sin, &len);
    c->port = ntohs(sin.sin_port);
    pthread_create(&c->thread, NULL, canned_main, c);
}

static void canned_stop(canned_t *c)
{
    c->stop = 1;
    pthread_join(c->thread, NULL);
    close(c->lfd);
}

typedef struct {
    int done, calls, err, status, pause, paused, cancel_in_body;
    int64_t content_length;
    char body[4096];
    size_t len;
    char msg[200];
    sff_httpc_req_t *req;
} hresult_t;

static int h_on_head(sff_httpc_req_t *req, const sff_httpc_response_t *res)
{
    hresult_t *h = sff_httpc_data(req);
    h->status = res->status;
    h->content_length = res->content_length;
    return res->status == 418 ? SFF_ECONFLICT : 0;
}

static int h_on_body(sff_httpc_req_t *req, const char *bytes, size_t len)
{
    hresult_t *h = sff_httpc_data(req);
    if (h->len + len < sizeof(h->body)) {
        memcpy(h->body + h->len, bytes, len);
        h->len += len;
        h->body[h->len] = '\0';
    }
    if (h->cancel_in_body) {
        sff_httpc_cancel(req);
        return 0;
    }
    if (h->pause) {
        h->paused = 1;
        return SFF_HTTPC_PAUSE;
    }
    return 0;
}

static void h_on_done(sff_httpc_req_t *req, int err, const char *msg)
{
    hresult_t *h = sff_httpc_data(req);
    h->done = 1;
    h->calls++;
    h->err = err;
    snprintf(h->msg, sizeof(h->msg), "%s", msg);
}

static const sff_httpc_callbacks_t hcb = {h_on_head, h_on_body, NULL, h_on_done};

/* One GET to port on c; waits for on_done (resuming paused deliveries). */
static int hget(sff_httpc_t *c, int port, hresult_t *h, uint32_t timeout_ms)
{
    static const char head[] = "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    sff_httpc_request_t r = {
        .host = "127.0.0.1", .port = (uint16_t)port, .head = {(char *)head, sizeof(head) - 1}, .timeout_ms = timeout_ms};
    int ret = sff_httpc_start(c, &r, &hcb, h, &h->req);
    if (ret != 0)
        return ret;
    uint64_t deadline = sff_now_ms() + 10000;
    while (!h->done && sff_now_ms() < deadline) {
        turn();
        if (h->paused && !h->done) {
            h->paused = 0;
            sff_httpc_resume(h->req);
        }
    }
    return h->done ? h->err : -1;
}

TEST(httpc_framing)
{
    static const struct {
        const char *answer;
        int err;
        const char *body;
    } cases[] = {
        /* chunked, with an extension and a trailer */
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n", 0,
         "Wikipedia"},
        /* chunked, cut right after a whole chunk: h2o 2.2.5's http1client calls this a success */
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n", SFF_EUNAVAILABLE, "Wiki"},
        /* Content-Length, cut */
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", SFF_EUNAVAILABLE, "abc"},
        /* until the close */
        {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello", 0, "hello"},
        /* an interim response first */
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 0, "ok"},
        /* malformed: status, chunk size, header folding, two lengths */
        {"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", SFF_EUNAVAILABLE, ""},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", SFF_EUNAVAILABLE, ""},
        {"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", SFF_EUNAVAILABLE, ""},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", SFF_EUNAVAILABLE, ""},
        /* on_head may stop the request */
        {"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n", SFF_ECONFLICT, ""},
        /* no answer at all */
        {NULL, SFF_EUNAVAILABLE, ""},
    };
    sff_httpc_t *c = sff_httpc_create(loop, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int pause = 0; pause < 2; pause++) {
            canned_t srv = {.nconns = 1, .conns = {{{cases[i].answer}, 1}}};
            canned_start(&srv);
            hresult_t h = {.pause = pause};
            int ret = hget(c, srv.port, &h, 5000);
            if (ret != cases[i].err || strcmp(h.body, cases[i].body) != 0 || h.calls != 1) {
                fprintf(stderr, "  case %zu (pause %d): %d \"%s\" (%s)\n", i, pause, ret, h.body, h.msg);
                CHECK(0);
            }
            canned_stop(&srv);
        }
    }
    sff_httpc_destroy(c);
}

TEST(httpc_keepalive_and_stale)
{
    /* connection 1 answers a request, then takes the next one and closes without answering: the
     * client sends it again on a new connection */
    canned_t srv = {
        .nconns = 2,
        .conns = {{{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none", NULL}, 2},
                  {{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthree"}, 2}}};
    canned_start(&srv);
    sff_httpc_t *c = sff_httpc_create(loop, NULL);
    hresult_t a = {0}, b = {0}, d = {0};
    CHECK_INT(hget(c, srv.port, &a, 5000), 0);
    CHECK_STR(a.body, "one");
    CHECK_INT(sff_httpc_idle_count(c), 1);
    CHECK_INT(hget(c, srv.port, &b, 5000), 0);
    CHECK_STR(b.body, "two");
    CHECK_INT(hget(c, srv.port, &d, 5000), 0);
    CHECK_STR(d.body, "three");
    CHECK_INT(sff_httpc_connects(c), 2);
    sff_httpc_destroy(c);
    canned_stop(&srv);
}

TEST(httpc_deadline_and_cancel)
{
    canned_t srv = {.nconns = 2, .conns = {{{"STALL"}, 1}, {{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"}, 1}}};
    canned_start(&srv);
    sff_httpc_t *c = sff_httpc_create(loop, NULL);
    hresult_t a = {0};
    uint64_t t0 = sff_now_ms();
    CHECK_INT(hget(c, srv.port, &a, 300), SFF_ETIMEDOUT);
    CHECK(sff_now_ms() - t0 >= 300 && sff_now_ms() - t0 < 1500);
    hresult_t b = {.cancel_in_body = 1};
    static const char head[] = "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    sff_httpc_request_t r = {.host = "127.0.0.1", .port = (uint16_t)srv.port, .head = {(char *)head, sizeof(head) - 1}};
    CHECK_INT(sff_httpc_start(c, &r, &hcb, &b, &b.req), 0);
    run_for(300);
    CHECK_STR(b.body, "hello");
    CHECK_INT(b.calls, 0);
    /* refused at once: no callback */
    sff_httpc_request_t bad = {.host = "", .port = 1, .head = {(char *)head, sizeof(head) - 1}};
    CHECK_INT(sff_httpc_start(c, &bad, &hcb, &b, NULL), SFF_EBADREQ);
    /* names: *.localhost without DNS, a name through h2o's resolver, a name that does not exist */
    hresult_t d = {0};
    sff_httpc_request_t dns = {.host = "nonexistent.invalid", .port = 80, .head = {(char *)head, sizeof(head) - 1}};
    CHECK_INT(sff_httpc_start(c, &dns, &hcb, &d, NULL), 0);
    run_until(&d.done, 10000);
    CHECK_INT(d.err, SFF_EUNAVAILABLE);
    CHECK(strstr(d.msg, "cannot resolve") != NULL);
    sff_httpc_destroy(c);
    canned_stop(&srv);
}

TEST(s3_through_dns)
{
    CHECK(s3_up);
    if (!s3_up)
        return;
    /* the machine's own name, when /etc/hosts maps it to 127.0.0.1, goes through h2o's resolver */
    char name[256];
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    gethostname(name, sizeof(name));
    int loopback = getaddrinfo(name, NULL, &hints, &res) == 0 &&
                   ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    if (res != NULL)
        freeaddrinfo(res);
    if (!loopback) {
        printf("# s3_through_dns: %s does not resolve to 127.0.0.1 here; only the failure path was checked\n", name);
        return;
    }
    char url[512];
    snprintf(url, sizeof(url), "s3://sff-test?endpoint=http://%s:%%d", name);
    sff_objstore_t *st = s3_store(url, s3.port, NULL, NULL);
    CHECK(st != NULL);
    if (st == NULL)
        return;
    CHECK_INT(put(st, "dns/x", "resolved", 8), 0);
    result_t r;
    CHECK_INT(get(st, "dns/x", &r), 0);
    CHECK(r.body != NULL && strcmp(r.body, "resolved") == 0);
    result_free(&r);
    sff_objstore_destroy(st);
}

/* ---- figures: `build/tests/unit/baas/objstore bench` (not part of the test run) -------------------- */

typedef struct {
    sff_objstore_t *st;
    int put;
    const char *buf;
    size_t size;
    int total, started, finished, errors, conc;
} bench_t;

static void bench_next(bench_t *b);

static void bench_done(void *data, sff_objstore_result_t *res)
{
    bench_t *b = data;
    b->finished++;
    b->errors += res->err != 0;
    bench_next(b);
}

static void bench_next(bench_t *b)
{
    while (b->started < b->total && b->started - b->finished < b->conc) {
        char key[64];
        snprintf(key, sizeof(key), "bench/%zu/%d", b->size, b->started % 64);
        b->started++;
        int ret;
        if (b->put) {
            sff_objstore_put_t p = {.body = b->buf, .len = b->size};
            ret = sff_objstore_put(b->st, key, &p, bench_done, b, NULL);
        } else {
            ret = sff_objstore_get(b->st, key, NULL, bench_done, b, NULL);
        }
        if (ret != 0) {
            b->finished++;
            b->errors++;
        }
    }
}

static void bench_one(const char *driver, sff_objstore_t *st, size_t size, int total, int conc)
{
    char *buf = pattern(size, 9);
    for (int put = 1; put >= 0; put--) {
        bench_t b = {st, put, buf, size, total, 0, 0, 0, conc};
        uint64_t t0 = sff_now_us();
        bench_next(&b);
        while (b.finished < b.total)
            turn();
        double s = (double)(sff_now_us() - t0) / 1e6;
        printf("%-5s %-3s %7zu B x %5d, %2d in flight: %8.0f ops/s %8.1f MB/s %5.2f ms/op (%d errors)\n", driver,
               put ? "put" : "get", size, total, conc, total / s, (double)size * total / s / 1e6, s * 1000 / total * conc,
               b.errors);
    }
    free(buf);
}

static int bench(void)
{
    char root[512];
    sff_objstore_t *fs = file_store("bench", 0, root, sizeof(root));
    sff_objstore_t *ss = s3_up ? s3_store(PATH_URL, s3.port, NULL, NULL) : NULL;
    if (fs == NULL || ss == NULL) {
        fprintf(stderr, "bench: no store (s3rver up: %d)\n", s3_up);
        return 1;
    }
    printf("# %s; file driver on %s (fsync per put), S3 driver against s3rver 3.7.1 on 127.0.0.1\n", "one loop, 2 I/O threads",
           tmpdir);
    bench_one("file", fs, 1024, 4000, 16);
    bench_one("file", fs, 1024 * 1024, 300, 8);
    bench_one("s3", ss, 1024, 2000, 16);
    bench_one("s3", ss, 1024 * 1024, 200, 8);
    bench_one("file", fs, 1024, 2000, 1);
    bench_one("s3", ss, 1024, 1000, 1);
    sff_objstore_destroy(fs);
    sff_objstore_destroy(ss);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/sff-objstore-XXXXXX", t != NULL && *t != '\0' ? t : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    loop = h2o_evloop_create();
    s3_up = tc_s3_start(&s3, "sff-test", NULL) == 0;
    if (s3_up)
        proxy = tc_proxy_start(s3.port);
    if (argc > 1 && strcmp(argv[1], "bench") == 0) {
        int ret = bench();
        tc_proxy_stop(proxy);
        tc_s3_stop(&s3);
        nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        return ret;
    }

    RUN(key_validation);
    RUN(url_validation);
    RUN(file_basic);
    RUN(file_list_pagination);
    RUN(file_streams);
    RUN(file_atomicity);
    RUN(file_traversal_and_symlinks);
    RUN(file_overload_and_cancel);
    RUN(s3_basic);
    RUN(s3_large_objects);
    RUN(s3_list_pagination);
    RUN(s3_presigned_with_curl);
    RUN(s3_virtual_host_style);
    RUN(s3_errors);
    RUN(s3_faults);
    RUN(s3_cancel);
    RUN(s3_tls);
    RUN(s3_through_dns);
    RUN(httpc_framing);
    RUN(httpc_keepalive_and_stale);
    RUN(httpc_deadline_and_cancel);
    RUN(stats);

    tc_proxy_stop(proxy);
    if (s3_up)
        tc_s3_stop(&s3);
    /* whatever is left on the loop (closed sockets, a resolver freed from a timer) goes in a last turn */
    run_for(50);
    h2o_evloop_destroy(loop);
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return test_done();
}
