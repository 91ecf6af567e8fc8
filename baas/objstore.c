/*
 * objstore.c - the object storage interface: key checks, SFF_STORAGE_URL, the life of a call
 * (deadline, cancel, callback exactly once), statistics. The drivers do the I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define SFF_OBJSTORE_DRIVER
#include "sff.h"
#include "objstore.h"
#include "utf8.h"

sff_objstore_stats_t sff_objstore_stats;

const char *sff_objstore_opname(sff_objstore_opcode_t op)
{
    static const char *names[SFF_OBJSTORE_NOPS] = {"put", "get", "head", "delete", "list", "presign"};
    return (unsigned)op < SFF_OBJSTORE_NOPS ? names[op] : "?";
}

/* ---- keys ---------------------------------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (at most n bytes), or 0 when it is invalid or a control
 * character (C0, DEL, C1). */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x20 || c == 0x7f)
        return 0;
    uint32_t cp;
    size_t len = sff_utf8_seq(s, n, &cp);
    return len == 0 || (cp >= 0x80 && cp <= 0x9f) ? 0 : len; /* no C1 controls either */
}

/* Checks UTF-8 and segments; a prefix may be empty and its last segment empty (a trailing "/"). */
static int check_path(const char *key, size_t len, int prefix)
{
    if (key == NULL || len > SFF_OBJSTORE_MAX_KEY || (len == 0 && !prefix) || (len != 0 && key[0] == '/'))
        return SFF_EBADREQ;
    const unsigned char *s = (const unsigned char *)key;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(s + i, len - i);
        if (n == 0)
            return SFF_EBADREQ;
        i += n;
    }
    for (size_t start = 0; start <= len;) {
        const char *slash = memchr(key + start, '/', len - start);
        size_t end = slash != NULL ? (size_t)(slash - key) : len, n = end - start;
        int last = slash == NULL;
        if (n == 0 && !(prefix && last))
            return SFF_EBADREQ; /* "a//b", a trailing "/" in a key */
        if ((n == 1 && key[start] == '.') || (n == 2 && key[start] == '.' && key[start + 1] == '.'))
            return SFF_EBADREQ;
        start = end + 1;
    }
    return 0;
}

int sff_objstore_check_key(const char *key, size_t len)
{
    return check_path(key, len, 0);
}

int sff_objstore_check_prefix(const char *prefix, size_t len)
{
    return check_path(prefix, len, 1);
}

/* ---- the store ----------------------------------------------------------------------------------- */

int sff_objstore_create(h2o_loop_t *loop, const sff_objstore_config_t *config, sff_objstore_t **out, char *err, size_t errsize)
{
    *out = NULL;
    snprintf(err, errsize, "%s", "");
    sff_objstore_config_t c = *config;
    if (c.max_upload == 0)
        c.max_upload = 100 * 1024 * 1024;
    if (c.timeout_ms == 0)
        c.timeout_ms = 30000;
    if (c.url == NULL || c.url[0] == '\0') {
        snprintf(err, errsize, "SFF_STORAGE_URL is empty");
        return SFF_EBADREQ;
    }
    int ret;
    if (strncmp(c.url, "file://", 7) == 0) {
        ret = sff_objstore_file_create(loop, &c, c.url + 7, out, err, errsize);
    } else if (strncmp(c.url, "s3://", 5) == 0) {
        ret = sff_objstore_s3_create(loop, &c, c.url + 5, out, err, errsize);
    } else {
        snprintf(err, errsize, "SFF_STORAGE_URL must start with file:// or s3://");
        return SFF_EBADREQ;
    }
    if (ret != 0)
        return ret;
    (*out)->loop = loop;
    (*out)->max_upload = c.max_upload;
    (*out)->timeout_ms = c.timeout_ms;
    h2o_linklist_init_anchor(&(*out)->ops);
    return 0;
}

const char *sff_objstore_driver(sff_objstore_t *st)
{
    return st->driver->name;
}

void sff_objstore_destroy(sff_objstore_t *st)
{
    if (st == NULL)
        return;
    while (!h2o_linklist_is_empty(&st->ops))
        sff_objstore_cancel(H2O_STRUCT_FROM_MEMBER(sff_objstore_op_t, link, st->ops.next));
    st->driver->destroy(st);
}

/* ---- the life of a call -------------------------------------------------------------------------- */

static void count(sff_objstore_op_t *op, int err)
{
    sff_objstore_stats.latency_us_sum[op->opcode] += sff_now_us() - op->started_us;
    sff_objstore_stats.latency_count[op->opcode]++;
    if (err != 0)
        sff_objstore_stats.errors[op->opcode]++;
}

/* Marks op ended and takes it off the live list. */
static void end(sff_objstore_op_t *op)
{
    op->ended = 1;
    sff_timer_stop(&op->deadline);
    if (h2o_linklist_is_linked(&op->link))
        h2o_linklist_unlink(&op->link);
}

void sff_objstore__done(sff_objstore_op_t *op, sff_objstore_result_t *res)
{
    if (op->ended)
        return;
    end(op);
    if (res->message == NULL)
        res->message = "";
    count(op, res->err);
    op->in_cb++;
    op->cb(op->data, res);
    op->in_cb--;
}

void sff_objstore__fail(sff_objstore_op_t *op, int err, const char *msg)
{
    sff_objstore_result_t res = {.err = err, .message = msg};
    sff_objstore__done(op, &res);
}

void sff_objstore__op_free(sff_objstore_op_t *op)
{
    if (op->in_cb != 0) {
        op->free_pending = 1;
        return;
    }
    end(op);
    free(op->key);
    free((char *)op->list.prefix);
    free((char *)op->list.token);
    free(op);
}

/* After a user callback: frees op if it was freed meanwhile; SFF_ECANCELED when it was cancelled. */
static int after_cb(sff_objstore_op_t *op, int ret)
{
    op->in_cb--;
    int canceled = op->canceled;
    if (op->free_pending && op->in_cb == 0) {
        op->free_pending = 0;
        sff_objstore__op_free(op);
    }
    return canceled ? SFF_ECANCELED : ret;
}

int sff_objstore__on_info(sff_objstore_op_t *op, const sff_objstore_info_t *info)
{
    if (op->get.on_info == NULL)
        return 0;
    op->in_cb++;
    op->get.on_info(op->data, info);
    return after_cb(op, 0);
}

int sff_objstore__on_chunk(sff_objstore_op_t *op, const char *bytes, size_t len)
{
    op->in_cb++;
    int ret = op->get.on_chunk(op->data, bytes, len);
    return after_cb(op, ret == SFF_OBJSTORE_PAUSE ? SFF_OBJSTORE_PAUSE : 0);
}

int sff_objstore__on_pull(sff_objstore_op_t *op)
{
    op->in_cb++;
    op->put.on_pull(op->data, op);
    return after_cb(op, 0);
}

void sff_objstore_cancel(sff_objstore_op_t *op)
{
    if (op == NULL || op->ended)
        return;
    end(op);
    op->canceled = 1;
    op->store->driver->abort(op);
}

static void on_deadline(sff_timer_t *t)
{
    sff_objstore_op_t *op = t->data;
    /* the driver stops first, so that nothing of the call is still running when its callback does
     * (which may start the same call again); the op stays allocated until the callback returned */
    op->in_cb++;
    op->canceled = 1;
    op->store->driver->abort(op);
    sff_objstore__fail(op, SFF_ETIMEDOUT, "the storage call timed out");
    after_cb(op, 0);
}

static int op_start(sff_objstore_t *st, sff_objstore_opcode_t opcode, const char *key, uint32_t timeout_ms, sff_objstore_cb cb,
                    void *data, sff_objstore_op_t *tmpl, sff_objstore_op_t **out)
{
    sff_objstore_stats.calls[opcode]++;
    int ret = SFF_ENOMEM;
    if (cb == NULL) {
        ret = SFF_EBADREQ;
        goto Error;
    }
    sff_objstore_op_t *op = calloc(1, st->driver->op_size);
    if (op == NULL)
        goto Error;
    *op = *tmpl;
    op->store = st;
    op->opcode = opcode;
    op->cb = cb;
    op->data = data;
    op->started_us = sff_now_us();
    op->link = (h2o_linklist_t){NULL, NULL};
    op->key = NULL;
    if (key != NULL && (op->key = strdup(key)) == NULL) {
        free(op);
        goto Error;
    }
    if (tmpl->list.prefix != NULL || tmpl->list.token != NULL) {
        op->list.prefix = tmpl->list.prefix != NULL ? strdup(tmpl->list.prefix) : NULL;
        op->list.token = tmpl->list.token != NULL ? strdup(tmpl->list.token) : NULL;
        if ((tmpl->list.prefix != NULL && op->list.prefix == NULL) || (tmpl->list.token != NULL && op->list.token == NULL)) {
            sff_objstore__op_free(op);
            goto Error;
        }
    }
    sff_timer_init(&op->deadline, on_deadline, op);
    if (sff_timer_start(&op->deadline, timeout_ms != 0 ? timeout_ms : st->timeout_ms) != 0) {
        sff_objstore__op_free(op);
        goto Error;
    }
    h2o_linklist_insert(&st->ops, &op->link);
    if ((ret = st->driver->start(op)) != 0) {
        sff_objstore__op_free(op);
        goto Error;
    }
    if (out != NULL)
        *out = op;
    return 0;
Error:
    sff_objstore_stats.errors[opcode]++;
    return ret;
}

/* ---- the calls ----------------------------------------------------------------------------------- */

int sff_objstore_put(sff_objstore_t *st, const char *key, const sff_objstore_put_t *put, sff_objstore_cb cb, void *data,
                     sff_objstore_op_t **op)
{
    sff_objstore_op_t tmpl = {0};
    int ret = 0;
    if (key == NULL || put == NULL || sff_objstore_check_key(key, strlen(key)) != 0)
        ret = SFF_EBADREQ;
    else if (put->on_pull != NULL ? put->size == 0 || put->body != NULL : put->body == NULL && put->len != 0)
        ret = SFF_EBADREQ;
    else if ((put->on_pull != NULL ? put->size : put->len) > st->max_upload)
        ret = SFF_ETOOLARGE;
    else if (put->content_type != NULL && strpbrk(put->content_type, "\r\n") != NULL)
        ret = SFF_EBADREQ;
    if (ret != 0) {
        sff_objstore_stats.calls[SFF_OBJSTORE_OP_PUT]++;
        sff_objstore_stats.errors[SFF_OBJSTORE_OP_PUT]++;
        return ret;
    }
    tmpl.put = *put;
    if (put->on_pull == NULL)
        tmpl.put.size = put->len;
    return op_start(st, SFF_OBJSTORE_OP_PUT, key, put->timeout_ms, cb, data, &tmpl, op);
}

int sff_objstore_write(sff_objstore_op_t *op, const void *bytes, size_t len)
{
    if (op == NULL || op->ended || op->opcode != SFF_OBJSTORE_OP_PUT || op->put.on_pull == NULL || bytes == NULL || len == 0)
        return SFF_EBADREQ;
    return op->store->driver->write(op, bytes, len);
}

int sff_objstore_get(sff_objstore_t *st, const char *key, const sff_objstore_get_t *opts, sff_objstore_cb cb, void *data,
                     sff_objstore_op_t **op)
{
    sff_objstore_op_t tmpl = {0};
    if (opts != NULL)
        tmpl.get = *opts;
    if (tmpl.get.max_bytes == 0 || tmpl.get.max_bytes > st->max_upload)
        tmpl.get.max_bytes = st->max_upload;
    if (key == NULL || sff_objstore_check_key(key, strlen(key)) != 0) {
        sff_objstore_stats.calls[SFF_OBJSTORE_OP_GET]++;
        sff_objstore_stats.errors[SFF_OBJSTORE_OP_GET]++;
        return SFF_EBADREQ;
    }
    return op_start(st, SFF_OBJSTORE_OP_GET, key, tmpl.get.timeout_ms, cb, data, &tmpl, op);
}

void sff_objstore_resume(sff_objstore_op_t *op)
{
    if (op != NULL && !op->ended && op->opcode == SFF_OBJSTORE_OP_GET && op->get.on_chunk != NULL)
        op->store->driver->resume(op);
}

static int keyed(sff_objstore_t *st, sff_objstore_opcode_t opcode, const char *key, uint32_t timeout_ms, sff_objstore_cb cb,
                 void *data, sff_objstore_op_t **op)
{
    sff_objstore_op_t tmpl = {0};
    if (key == NULL || sff_objstore_check_key(key, strlen(key)) != 0) {
        sff_objstore_stats.calls[opcode]++;
        sff_objstore_stats.errors[opcode]++;
        return SFF_EBADREQ;
    }
    return op_start(st, opcode, key, timeout_ms, cb, data, &tmpl, op);
}

int sff_objstore_head(sff_objstore_t *st, const char *key, uint32_t timeout_ms, sff_objstore_cb cb, void *data,
                      sff_objstore_op_t **op)
{
    return keyed(st, SFF_OBJSTORE_OP_HEAD, key, timeout_ms, cb, data, op);
}

int sff_objstore_delete(sff_objstore_t *st, const char *key, uint32_t timeout_ms, sff_objstore_cb cb, void *data,
                        sff_objstore_op_t **op)
{
    return keyed(st, SFF_OBJSTORE_OP_DELETE, key, timeout_ms, cb, data, op);
}

int sff_objstore_list(sff_objstore_t *st, const sff_objstore_list_t *opts, sff_objstore_cb cb, void *data, sff_objstore_op_t **op)
{
    sff_objstore_op_t tmpl = {0};
    if (opts != NULL)
        tmpl.list = *opts;
    const char *prefix = tmpl.list.prefix != NULL ? tmpl.list.prefix : "";
    int bad = sff_objstore_check_prefix(prefix, strlen(prefix)) != 0 || tmpl.list.max_keys > SFF_OBJSTORE_MAX_LIST ||
              (tmpl.list.token != NULL && (tmpl.list.token[0] == '\0' || strlen(tmpl.list.token) > 4096));
    if (bad) {
        sff_objstore_stats.calls[SFF_OBJSTORE_OP_LIST]++;
        sff_objstore_stats.errors[SFF_OBJSTORE_OP_LIST]++;
        return SFF_EBADREQ;
    }
    if (tmpl.list.max_keys == 0)
        tmpl.list.max_keys = SFF_OBJSTORE_MAX_LIST;
    if (tmpl.list.prefix != NULL && tmpl.list.prefix[0] == '\0')
        tmpl.list.prefix = NULL;
    return op_start(st, SFF_OBJSTORE_OP_LIST, NULL, tmpl.list.timeout_ms, cb, data, &tmpl, op);
}

int sff_objstore_presign(sff_objstore_t *st, const char *method, const char *key, uint32_t expires_s, time_t now, char **url)
{
    sff_objstore_stats.calls[SFF_OBJSTORE_OP_PRESIGN]++;
    *url = NULL;
    int ret;
    if (method == NULL || (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0) || key == NULL ||
        sff_objstore_check_key(key, strlen(key)) != 0 || expires_s == 0 || expires_s > SFF_SIGV4_MAX_EXPIRES)
        ret = SFF_EBADREQ;
    else
        ret = st->driver->presign(st, method, key, expires_s, now != 0 ? now : time(NULL), url);
    if (ret != 0)
        sff_objstore_stats.errors[SFF_OBJSTORE_OP_PRESIGN]++;
    return ret;
}
