/*
 * objstore_s3.c - the S3 driver (s3://bucket?endpoint=...&region=...&style=path|virtual&public=...).
 *
 * Requests are signed with Signature V4 in headers (sigv4.c) and sent with httpc.c. Payloads: a
 * request without a body signs the SHA-256 of the empty string; a PUT signs UNSIGNED-PAYLOAD, so
 * that a body is never read twice (a streamed body cannot be hashed before its headers go out) and
 * hashing 10 MB never blocks the loop; TLS protects the bytes in transit (see
 * docs/decisions/0042-s3-unsigned-payload.md).
 *
 * Retries: an idempotent call (GET, HEAD, DELETE, LIST, and a PUT of a buffered body, which S3
 * stores whole or not at all) is sent again after a 500, 502, 503 or 504, or a connection lost
 * before the response, up to max_retries times, with "full jitter" backoff (a random delay below
 * retry_base_ms * 2^attempt, at most 2 s) as long as the deadline allows. A streamed PUT is never
 * sent again: its bytes are gone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#define SFF_OBJSTORE_DRIVER
#include "sff.h"
#include "objstore.h"
#include "strbuf.h"

#define MAX_ERROR_BODY (64 * 1024)
#define MAX_LIST_BODY (8 * 1024 * 1024)
#define MAX_BACKOFF_MS 2000

typedef struct st_s3store_t {
    sff_objstore_t super;
    sff_httpc_t *httpc;
    char *bucket, *region, *access_key, *secret_key, *session_token;
    char *host;             /* the endpoint's host */
    char *authority;        /* the Host header: [bucket.]host[:port] */
    char *connect;          /* where to connect: [bucket.]host */
    char *public_authority; /* the Host of presigned URLs when browsers reach storage elsewhere, or NULL */
    int public_tls;
    uint16_t port;
    int tls, virtual_style;
    uint32_t max_retries, retry_base_ms;
} s3store_t;

typedef struct st_s3op_t {
    sff_objstore_op_t super;
    sff_httpc_req_t *hreq;
    sff_timer_t retry_timer;
    unsigned attempt;
    int status;
    int last_err;
    char *buf; /* a collected body: the object, the listing, an error document */
    size_t len, cap, limit;
    int info_sent;
    sff_objstore_info_t info;
    char etag[130], content_type[130];
    char msg[256];
} s3op_t;

static s3store_t *store_of(s3op_t *op)
{
    return (s3store_t *)op->super.store;
}

/* ---- requests ------------------------------------------------------------------------------------ */

/* The request path: /bucket/key (path style) or /key (virtual), encoded once with "/" kept. */
static char *request_path(s3store_t *s3, const char *key)
{
    size_t klen = key != NULL ? strlen(key) : 0;
    char *p = malloc(strlen(s3->bucket) + 3 * klen + 4), *o = p;
    if (p == NULL)
        return NULL;
    if (!s3->virtual_style)
        o += sprintf(o, "/%s", s3->bucket);
    if (key != NULL) {
        *o++ = '/';
        sff_sigv4_uri_encode(o, key, klen, 1);
    } else if (s3->virtual_style) {
        strcpy(o, "/");
    }
    return p;
}

/* Builds the signed request head. extra is "Name: value\r\n" lines (unsigned) or NULL. */
static int build_head(s3store_t *s3, const char *method, const char *key, const sff_sigv4_kv_t *query, size_t nquery,
                      const char *payload_hash, time_t now, const char *extra, char **out, size_t *outlen)
{
    char date[17];
    sff_sigv4_format_date(now, date);
    char *path = request_path(s3, key), *qs = sff_sigv4_canonical_query(query, nquery);
    int ret = SFF_ENOMEM;
    if (path == NULL || qs == NULL)
        goto Exit;
    sff_sigv4_kv_t headers[4] = {{"host", s3->authority},
                                 {"x-amz-content-sha256", payload_hash},
                                 {"x-amz-date", date},
                                 {"x-amz-security-token", s3->session_token}};
    sff_sigv4_credentials_t cred = {s3->access_key, s3->secret_key, s3->session_token, s3->region, "s3"};
    sff_sigv4_request_t req = {SFF_SIGV4_S3, method, path, query, nquery, headers, s3->session_token != NULL ? 4 : 3,
                               payload_hash, date};
    sff_sigv4_result_t sig;
    if ((ret = sff_sigv4_sign(&cred, &req, &sig)) != 0)
        goto Exit;
    sff_strbuf_t b = {0};
    sff_strbuf_add(&b, method);
    sff_strbuf_add(&b, " ");
    sff_strbuf_add(&b, path);
    if (qs[0] != '\0') {
        sff_strbuf_add(&b, "?");
        sff_strbuf_add(&b, qs);
    }
    sff_strbuf_add(&b, " HTTP/1.1\r\nHost: ");
    sff_strbuf_add(&b, s3->authority);
    sff_strbuf_add(&b, "\r\nx-amz-content-sha256: ");
    sff_strbuf_add(&b, payload_hash);
    sff_strbuf_add(&b, "\r\nx-amz-date: ");
    sff_strbuf_add(&b, date);
    if (s3->session_token != NULL) {
        sff_strbuf_add(&b, "\r\nx-amz-security-token: ");
        sff_strbuf_add(&b, s3->session_token);
    }
    sff_strbuf_add(&b, "\r\nAuthorization: ");
    sff_strbuf_add(&b, sig.authorization);
    sff_strbuf_add(&b, "\r\nUser-Agent: sff\r\n");
    if (extra != NULL)
        sff_strbuf_add(&b, extra);
    sff_strbuf_add(&b, "\r\n");
    sff_sigv4_result_dispose(&sig);
    *out = sff_strbuf_take(&b, outlen);
    ret = *out != NULL ? 0 : SFF_ENOMEM;
Exit:
    free(path);
    free(qs);
    return ret;
}

int sff_objstore_s3_request_head(sff_objstore_t *st, const char *method, const char *key, const sff_sigv4_kv_t *query,
                                 size_t nquery, const char *payload_hash, time_t now, char **head)
{
    size_t len;
    if (st->driver != &sff_objstore_s3_driver)
        return SFF_EINTERNAL;
    return build_head((s3store_t *)st, method, key, query, nquery, payload_hash, now, NULL, head, &len);
}

sff_httpc_t *sff_objstore_s3_httpc(sff_objstore_t *st)
{
    return st->driver == &sff_objstore_s3_driver ? ((s3store_t *)st)->httpc : NULL;
}

/* ---- minimal XML: what ListObjectsV2 and error documents need ----------------------------------- */

/* Finds the element <name> (with or without attributes) in [p, end): sets its content's bounds and
 * returns the position after its end tag, or NULL. Elements of the same name are never nested in
 * S3's documents; text never holds '<' (it is escaped). */
static const char *xml_find(const char *p, const char *end, const char *name, const char **cs, const char **ce)
{
    size_t nl = strlen(name);
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (lt == NULL || (size_t)(end - lt) < nl + 2)
            return NULL;
        const char *q = lt + 1;
        if (strncmp(q, name, nl) == 0 && (q[nl] == '>' || q[nl] == ' ' || q[nl] == '/')) {
            const char *gt = memchr(q + nl, '>', (size_t)(end - (q + nl)));
            if (gt == NULL)
                return NULL;
            if (gt[-1] == '/') { /* <name/> */
                *cs = *ce = gt + 1;
                return gt + 1;
            }
            const char *c = gt + 1;
            for (const char *s = c; s < end;) {
                const char *l2 = memchr(s, '<', (size_t)(end - s));
                if (l2 == NULL || (size_t)(end - l2) < nl + 3)
                    return NULL;
                if (l2[1] == '/' && strncmp(l2 + 2, name, nl) == 0 && l2[2 + nl] == '>') {
                    *cs = c;
                    *ce = l2;
                    return l2 + nl + 3;
                }
                s = l2 + 1;
            }
            return NULL;
        }
        p = lt + 1;
    }
    return NULL;
}

/* Decodes the text [s, e) (entities) into a new string, or NULL when it is malformed. */
static char *xml_text(const char *s, const char *e)
{
    char *out = malloc((size_t)(e - s) + 1), *o = out;
    if (out == NULL)
        return NULL;
    while (s < e) {
        if (*s != '&') {
            *o++ = *s++;
            continue;
        }
        const char *semi = memchr(s, ';', (size_t)(e - s));
        if (semi == NULL || semi - s > 10)
            goto Bad;
        size_t n = (size_t)(semi - s - 1);
        const char *ent = s + 1;
        if (n == 3 && memcmp(ent, "amp", 3) == 0) {
            *o++ = '&';
        } else if (n == 2 && memcmp(ent, "lt", 2) == 0) {
            *o++ = '<';
        } else if (n == 2 && memcmp(ent, "gt", 2) == 0) {
            *o++ = '>';
        } else if (n == 4 && memcmp(ent, "quot", 4) == 0) {
            *o++ = '"';
        } else if (n == 4 && memcmp(ent, "apos", 4) == 0) {
            *o++ = '\'';
        } else if (n >= 2 && ent[0] == '#') {
            unsigned long cp = 0;
            int hex = ent[1] == 'x' || ent[1] == 'X';
            const char *d = ent + 1 + hex;
            if (d == semi)
                goto Bad;
            for (; d < semi; d++) {
                int v = *d >= '0' && *d <= '9'          ? *d - '0'
                        : hex && *d >= 'a' && *d <= 'f' ? *d - 'a' + 10
                        : hex && *d >= 'A' && *d <= 'F' ? *d - 'A' + 10
                                                        : -1;
                if (v < 0)
                    goto Bad;
                cp = cp * (hex ? 16 : 10) + (unsigned long)v;
                if (cp > 0x10ffff)
                    goto Bad;
            }
            if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                goto Bad;
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) { /* every encoding is shorter than its entity ("&#128;" is 6) */
                *o++ = (char)(0xc0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xe0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char)(0x80 | (cp & 0x3f));
            } else {
                *o++ = (char)(0xf0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char)(0x80 | (cp & 0x3f));
            }
        } else {
            goto Bad;
        }
        s = semi + 1;
    }
    *o = '\0';
    return out;
Bad:
    free(out);
    return NULL;
}

/* The decoded text of the first <name> in [p, end) into out (truncated to size), or "" . */
static void xml_get(const char *p, const char *end, const char *name, char *out, size_t size)
{
    const char *cs, *ce;
    out[0] = '\0';
    if (xml_find(p, end, name, &cs, &ce) == NULL)
        return;
    char *t = xml_text(cs, ce);
    if (t != NULL)
        snprintf(out, size, "%s", t);
    free(t);
}

static int64_t parse_iso8601(const char *s)
{
    struct tm tm = {0};
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static int64_t parse_http_date(const char *s, size_t n)
{
    char buf[64];
    struct tm tm = {0};
    snprintf(buf, sizeof(buf), "%.*s", (int)n, s);
    const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return end != NULL ? (int64_t)timegm(&tm) : 0;
}

/* Copies a header value without surrounding quotes. */
static void copy_unquoted(char *out, size_t size, h2o_iovec_t v)
{
    if (v.len >= 2 && v.base[0] == '"' && v.base[v.len - 1] == '"') {
        v.base++;
        v.len -= 2;
    }
    snprintf(out, size, "%.*s", (int)v.len, v.base);
}

/* ---- the life of a call -------------------------------------------------------------------------- */

static int idempotent(s3op_t *op)
{
    return op->super.opcode != SFF_OBJSTORE_OP_PUT || op->super.put.on_pull == NULL;
}

static int send_request(s3op_t *op);

static void free_op(s3op_t *op)
{
    sff_timer_stop(&op->retry_timer);
    free(op->buf);
    op->buf = NULL;
    sff_objstore__op_free(&op->super);
}

static void fail(s3op_t *op, int err, const char *msg)
{
    sff_objstore__fail(&op->super, err, msg);
    free_op(op);
}

static void on_retry(sff_timer_t *t)
{
    s3op_t *op = t->data;
    int ret = send_request(op);
    if (ret != 0)
        fail(op, ret, "cannot send the request");
}

/* Sends op again after a backoff if it may be and the deadline allows; returns 1 when it will. */
static int retry(s3op_t *op)
{
    s3store_t *s3 = store_of(op);
    if (!idempotent(op) || op->attempt >= s3->max_retries || op->info_sent)
        return 0;
    uint64_t ceiling = (uint64_t)s3->retry_base_ms << op->attempt, r = 0;
    if (ceiling > MAX_BACKOFF_MS)
        ceiling = MAX_BACKOFF_MS;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
        r = sff_now_us();
    uint64_t delay = ceiling != 0 ? r % ceiling : 0, now = sff_now_ms();
    if (now + delay + 1 >= op->super.deadline.at_ms)
        return 0; /* no time left for another attempt */
    op->attempt++;
    sff_objstore_stats.retries++;
    op->status = 0;
    op->len = 0;
    sff_timer_start(&op->retry_timer, delay);
    return 1;
}

static int grow(s3op_t *op, size_t need)
{
    if (need <= op->cap)
        return 0;
    size_t cap = op->cap != 0 ? op->cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > op->limit + 1)
        cap = op->limit + 1;
    char *p = realloc(op->buf, cap);
    if (p == NULL)
        return SFF_ENOMEM;
    op->buf = p;
    op->cap = cap;
    return 0;
}

static int on_head(sff_httpc_req_t *hreq, const sff_httpc_response_t *res)
{
    s3op_t *op = sff_httpc_data(hreq);
    op->status = res->status;
    op->len = 0;
    int ok = res->status >= 200 && res->status < 300;
    op->info = (sff_objstore_info_t){0, 0, op->etag, op->content_type};
    op->etag[0] = op->content_type[0] = '\0';
    for (size_t i = 0; i < res->nheaders; i++) {
        const sff_httpc_header_t *h = &res->headers[i];
        if (h2o_memis(h->name.base, h->name.len, H2O_STRLIT("etag")))
            copy_unquoted(op->etag, sizeof(op->etag), h->value);
        else if (h2o_memis(h->name.base, h->name.len, H2O_STRLIT("content-type")))
            copy_unquoted(op->content_type, sizeof(op->content_type), h->value);
        else if (h2o_memis(h->name.base, h->name.len, H2O_STRLIT("last-modified")))
            op->info.mtime = parse_http_date(h->value.base, h->value.len);
    }
    if (res->content_length >= 0)
        op->info.size = (uint64_t)res->content_length;
    if (!ok) {
        op->limit = MAX_ERROR_BODY;
        return 0;
    }
    switch (op->super.opcode) {
    case SFF_OBJSTORE_OP_GET:
        if (op->super.get.on_chunk != NULL) {
            op->info_sent = 1;
            if (sff_objstore__on_info(&op->super, &op->info) == SFF_ECANCELED)
                return 0; /* the client request is cancelled too */
            return 0;
        }
        op->limit = op->super.get.max_bytes;
        if (res->content_length > (int64_t)op->limit) {
            snprintf(op->msg, sizeof(op->msg), "the object is larger than %zu bytes", op->limit);
            return SFF_ETOOLARGE;
        }
        if (res->content_length >= 0 && grow(op, (size_t)res->content_length + 1) != 0)
            return SFF_ENOMEM;
        return 0;
    case SFF_OBJSTORE_OP_LIST:
        op->limit = MAX_LIST_BODY;
        return 0;
    default:
        op->limit = MAX_ERROR_BODY; /* nothing expected */
        return 0;
    }
}

static int on_body(sff_httpc_req_t *hreq, const char *bytes, size_t len)
{
    s3op_t *op = sff_httpc_data(hreq);
    int ok = op->status >= 200 && op->status < 300;
    if (ok && op->super.opcode == SFF_OBJSTORE_OP_GET) {
        sff_objstore_stats.bytes_in += len;
        if (op->super.get.on_chunk != NULL) {
            int ret = sff_objstore__on_chunk(&op->super, bytes, len);
            return ret == SFF_OBJSTORE_PAUSE ? SFF_HTTPC_PAUSE : 0; /* a cancel is seen by httpc itself */
        }
    }
    if (op->len + len > op->limit) {
        if (ok && op->super.opcode == SFF_OBJSTORE_OP_GET) {
            snprintf(op->msg, sizeof(op->msg), "the object is larger than %zu bytes", op->limit);
            return SFF_ETOOLARGE;
        }
        if (!ok)
            return 0; /* the start of an error document is enough */
        snprintf(op->msg, sizeof(op->msg), "the response is too large");
        return SFF_EUNAVAILABLE;
    }
    if (grow(op, op->len + len + 1) != 0)
        return SFF_ENOMEM;
    memcpy(op->buf + op->len, bytes, len);
    op->len += len;
    op->buf[op->len] = '\0';
    return 0;
}

static void on_pull(sff_httpc_req_t *hreq)
{
    s3op_t *op = sff_httpc_data(hreq);
    sff_objstore__on_pull(&op->super);
}

/* The S3 error code of the error document, or "". */
static void error_code(s3op_t *op, char *code, size_t size)
{
    code[0] = '\0';
    if (op->buf != NULL && op->len != 0)
        xml_get(op->buf, op->buf + op->len, "Code", code, size);
    for (char *p = code; *p != '\0'; p++) /* it goes into messages: keep it plain */
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
            *p = '?';
}

static void done_list(s3op_t *op)
{
    const char *p = op->buf != NULL ? op->buf : "", *end = p + op->len;
    const char *rs, *re;
    if (xml_find(p, end, "ListBucketResult", &rs, &re) == NULL) {
        fail(op, SFF_EUNAVAILABLE, "S3 LIST: the response is not a listing");
        return;
    }
    size_t n = 0, cap = 0;
    sff_objstore_entry_t *entries = NULL;
    char **keys = NULL, (*etags)[80] = NULL;
    char truncated[16], token[2048];
    int bad = 0;
    for (const char *q = rs, *cs, *ce; !bad && (q = xml_find(q, re, "Contents", &cs, &ce)) != NULL;) {
        if (n == cap) {
            cap = cap != 0 ? cap * 2 : 64;
            sff_objstore_entry_t *e = realloc(entries, cap * sizeof(*e));
            char **k = e != NULL ? realloc(keys, cap * sizeof(*k)) : NULL;
            char(*t)[80] = k != NULL ? realloc(etags, cap * sizeof(*t)) : NULL;
            if (e != NULL)
                entries = e;
            if (k != NULL)
                keys = k;
            if (t == NULL) {
                bad = SFF_ENOMEM;
                break;
            }
            etags = t;
        }
        const char *ks, *ke;
        if (xml_find(cs, ce, "Key", &ks, &ke) == NULL || (keys[n] = xml_text(ks, ke)) == NULL) {
            bad = SFF_EUNAVAILABLE;
            break;
        }
        char size[32], mtime[64], etag[80];
        xml_get(cs, ce, "Size", size, sizeof(size));
        xml_get(cs, ce, "LastModified", mtime, sizeof(mtime));
        xml_get(cs, ce, "ETag", etag, sizeof(etag));
        size_t el = strlen(etag);
        if (el >= 2 && etag[0] == '"' && etag[el - 1] == '"')
            snprintf(etags[n], sizeof(etags[n]), "%.*s", (int)(el - 2), etag + 1);
        else
            snprintf(etags[n], sizeof(etags[n]), "%s", etag);
        entries[n] = (sff_objstore_entry_t){keys[n], strtoull(size, NULL, 10), parse_iso8601(mtime), etags[n]};
        n++;
    }
    if (!bad) {
        xml_get(rs, re, "IsTruncated", truncated, sizeof(truncated));
        xml_get(rs, re, "NextContinuationToken", token, sizeof(token));
        sff_objstore_result_t res = {.entries = entries, .nentries = n};
        if (strcmp(truncated, "true") == 0 && token[0] != '\0')
            res.next_token = token;
        sff_objstore__done(&op->super, &res);
        free_op(op);
    } else {
        fail(op, bad, bad == SFF_ENOMEM ? "out of memory" : "S3 LIST: a malformed listing");
    }
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(entries);
    free(etags);
}

static void on_done(sff_httpc_req_t *hreq, int err, const char *msg)
{
    s3op_t *op = sff_httpc_data(hreq);
    const char *opname = sff_objstore_opname(op->super.opcode);
    op->hreq = NULL;
    if (err != 0) {
        if (err == SFF_EUNAVAILABLE && op->status == 0 && retry(op))
            return;
        if (op->msg[0] == '\0') /* else our own callbacks said why they stopped */
            snprintf(op->msg, sizeof(op->msg), "S3 %s: %s", opname, msg);
        fail(op, err, op->msg);
        return;
    }
    int status = op->status;
    if (status >= 200 && status < 300) {
        sff_objstore_result_t res = {.info = op->info};
        switch (op->super.opcode) {
        case SFF_OBJSTORE_OP_PUT:
            res.info.size = op->super.put.size;
            if (op->super.put.on_pull == NULL)
                sff_objstore_stats.bytes_out += op->super.put.len;
            break;
        case SFF_OBJSTORE_OP_GET:
            if (op->super.get.on_chunk == NULL) {
                if (grow(op, op->len + 1) != 0) {
                    fail(op, SFF_ENOMEM, "out of memory");
                    return;
                }
                op->buf[op->len] = '\0';
                res.body = op->buf;
                res.len = op->len;
                res.info.size = op->len;
                op->buf = NULL;
            }
            break;
        case SFF_OBJSTORE_OP_LIST:
            done_list(op);
            return;
        default:
            break;
        }
        sff_objstore__done(&op->super, &res);
        free(res.body); /* unless the callback took it */
        free_op(op);
        return;
    }
    if ((status == 500 || status == 502 || status == 503 || status == 504) && retry(op))
        return;
    char code[64];
    error_code(op, code, sizeof(code));
    int e;
    const char *what;
    if (status == 404 && strcmp(code, "NoSuchBucket") == 0) {
        e = SFF_EINTERNAL;
        what = "the bucket does not exist";
    } else if (status == 404) {
        e = SFF_ENOTFOUND;
        what = "no such object";
    } else if (status == 403 || status == 401) {
        e = SFF_EINTERNAL;
        what = "access denied: check the credentials, the region and the clock";
    } else if (status == 413 || strcmp(code, "EntityTooLarge") == 0) {
        e = SFF_ETOOLARGE;
        what = "the object is too large";
    } else if (status == 409 || status == 412) {
        e = SFF_ECONFLICT;
        what = "conflict";
    } else if (status >= 500 || status == 429) {
        e = SFF_EUNAVAILABLE;
        what = op->attempt != 0 ? "the storage is unavailable (after retries)" : "the storage is unavailable";
    } else {
        e = SFF_EINTERNAL;
        what = "the request was refused";
    }
    snprintf(op->msg, sizeof(op->msg), "S3 %s: %s (%d%s%s)", opname, what, status, code[0] != '\0' ? " " : "", code);
    fail(op, e, op->msg);
}

static const sff_httpc_callbacks_t callbacks = {on_head, on_body, on_pull, on_done};

static int send_request(s3op_t *op)
{
    s3store_t *s3 = store_of(op);
    const char *method = "GET", *payload = SFF_SIGV4_EMPTY_SHA256;
    char extra[256] = "", maxkeys[16];
    sff_sigv4_kv_t q[4];
    size_t nq = 0;
    sff_httpc_request_t r = {.host = s3->connect, .port = s3->port, .tls = s3->tls};
    switch (op->super.opcode) {
    case SFF_OBJSTORE_OP_PUT: {
        const char *type = op->super.put.content_type != NULL ? op->super.put.content_type : "application/octet-stream";
        method = "PUT";
        payload = SFF_SIGV4_UNSIGNED_PAYLOAD;
        snprintf(extra, sizeof(extra), "Content-Length: %llu\r\nContent-Type: %.150s\r\n", (unsigned long long)op->super.put.size,
                 type);
        if (op->super.put.on_pull != NULL) {
            r.stream = 1;
            r.stream_len = op->super.put.size;
        } else {
            r.body = h2o_iovec_init(op->super.put.body, op->super.put.len);
        }
        break;
    }
    case SFF_OBJSTORE_OP_HEAD:
        method = "HEAD";
        r.is_head = 1;
        break;
    case SFF_OBJSTORE_OP_DELETE:
        method = "DELETE";
        break;
    case SFF_OBJSTORE_OP_LIST:
        snprintf(maxkeys, sizeof(maxkeys), "%zu", op->super.list.max_keys);
        q[nq++] = (sff_sigv4_kv_t){"list-type", "2"};
        q[nq++] = (sff_sigv4_kv_t){"max-keys", maxkeys};
        if (op->super.list.prefix != NULL)
            q[nq++] = (sff_sigv4_kv_t){"prefix", op->super.list.prefix};
        if (op->super.list.token != NULL)
            q[nq++] = (sff_sigv4_kv_t){"continuation-token", op->super.list.token};
        break;
    default:
        break;
    }
    char *head;
    size_t headlen;
    int ret = build_head(s3, method, op->super.key, q, nq, payload, time(NULL), extra[0] != '\0' ? extra : NULL, &head, &headlen);
    if (ret != 0)
        return ret;
    r.head = h2o_iovec_init(head, headlen);
    uint64_t now = sff_now_ms(), at = op->super.deadline.at_ms;
    /* the op's deadline (objstore.c) is the one that fires: the client's is a little later */
    r.timeout_ms = (uint32_t)(at > now ? at - now + 1000 : 1000);
    op->msg[0] = '\0';
    ret = sff_httpc_start(s3->httpc, &r, &callbacks, op, &op->hreq);
    free(head);
    return ret;
}

/* ---- the driver ---------------------------------------------------------------------------------- */

static int s3_start(sff_objstore_op_t *sop)
{
    s3op_t *op = (s3op_t *)sop;
    sff_timer_init(&op->retry_timer, on_retry, op);
    return send_request(op);
}

static void s3_abort(sff_objstore_op_t *sop)
{
    s3op_t *op = (s3op_t *)sop;
    if (op->hreq != NULL) {
        sff_httpc_cancel(op->hreq);
        op->hreq = NULL;
    }
    free_op(op);
}

static int s3_write(sff_objstore_op_t *sop, const void *bytes, size_t len)
{
    s3op_t *op = (s3op_t *)sop;
    if (op->hreq == NULL)
        return SFF_EBADREQ;
    int ret = sff_httpc_write(op->hreq, bytes, len);
    if (ret == 0)
        sff_objstore_stats.bytes_out += len;
    return ret;
}

static void s3_resume(sff_objstore_op_t *sop)
{
    s3op_t *op = (s3op_t *)sop;
    if (op->hreq != NULL)
        sff_httpc_resume(op->hreq);
}

static int s3_presign(sff_objstore_t *st, const char *method, const char *key, uint32_t expires_s, time_t now, char **url)
{
    s3store_t *s3 = (s3store_t *)st;
    char date[17];
    sff_sigv4_format_date(now, date);
    char *path = request_path(s3, key);
    if (path == NULL)
        return SFF_ENOMEM;
    const char *authority = s3->public_authority != NULL ? s3->public_authority : s3->authority;
    int tls = s3->public_authority != NULL ? s3->public_tls : s3->tls;
    sff_sigv4_kv_t headers[1] = {{"host", authority}};
    sff_sigv4_credentials_t cred = {s3->access_key, s3->secret_key, s3->session_token, s3->region, "s3"};
    sff_sigv4_request_t req = {SFF_SIGV4_S3, method, path, NULL, 0, headers, 1, SFF_SIGV4_UNSIGNED_PAYLOAD, date};
    sff_sigv4_result_t sig;
    int ret = sff_sigv4_presign(&cred, &req, expires_s, &sig);
    if (ret == 0) {
        size_t n = strlen(authority) + strlen(path) + strlen(sig.query) + 16;
        if ((*url = malloc(n)) == NULL)
            ret = SFF_ENOMEM;
        else
            snprintf(*url, n, "%s://%s%s?%s", tls ? "https" : "http", authority, path, sig.query);
        sff_sigv4_result_dispose(&sig);
    }
    free(path);
    return ret;
}

static void s3_destroy(sff_objstore_t *st)
{
    s3store_t *s3 = (s3store_t *)st;
    sff_httpc_destroy(s3->httpc);
    free(s3->bucket);
    free(s3->region);
    if (s3->secret_key != NULL)
        OPENSSL_cleanse(s3->secret_key, strlen(s3->secret_key));
    free(s3->access_key);
    free(s3->secret_key);
    free(s3->session_token);
    free(s3->host);
    free(s3->public_authority);
    free(s3->authority);
    free(s3->connect);
    free(s3);
}

const sff_objstore_driver_t sff_objstore_s3_driver = {
    "s3", sizeof(s3op_t), s3_start, s3_abort, s3_write, s3_resume, s3_presign, s3_destroy,
};

/* ---- the URL ------------------------------------------------------------------------------------- */

static int valid_bucket(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return 0;
    }
    return b[0] != '-' && b[0] != '.' && b[n - 1] != '-' && b[n - 1] != '.';
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static char *pct_decode(const char *s, size_t n)
{
    char *d = malloc(n + 1), *o = d;
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 && (l = hexval(s[i + 2])) >= 0) {
            *o++ = (char)(h * 16 + l);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return d;
}

/* Parses "http[s]://host[:port][/]" into s3. */
static int parse_endpoint(s3store_t *s3, const char *ep, char *err, size_t errsize)
{
    const char *p;
    if (strncmp(ep, "http://", 7) == 0) {
        p = ep + 7;
        s3->tls = 0;
        s3->port = 80;
    } else if (strncmp(ep, "https://", 8) == 0) {
        p = ep + 8;
        s3->tls = 1;
        s3->port = 443;
    } else {
        snprintf(err, errsize, "SFF_STORAGE_URL: endpoint must start with http:// or https://");
        return SFF_EBADREQ;
    }
    const char *hs = p, *he;
    if (*p == '[') {
        if ((he = strchr(p, ']')) == NULL)
            goto Bad;
        hs = p + 1;
        p = he + 1;
    } else {
        p += strcspn(p, ":/");
        he = p;
    }
    if (he == hs)
        goto Bad;
    if (*p == ':') {
        char *e;
        unsigned long port = strtoul(p + 1, &e, 10);
        if (e == p + 1 || port == 0 || port > 65535)
            goto Bad;
        s3->port = (uint16_t)port;
        p = e;
    }
    if (!(*p == '\0' || (p[0] == '/' && p[1] == '\0')))
        goto Bad;
    for (const char *c = hs; c < he; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' ||
              *c == ':'))
            goto Bad;
    if ((s3->host = h2o_strdup(NULL, hs, (size_t)(he - hs)).base) == NULL)
        return SFF_ENOMEM;
    return 0;
Bad:
    snprintf(err, errsize, "SFF_STORAGE_URL: endpoint must be http[s]://host[:port]");
    return SFF_EBADREQ;
}

int sff_objstore_s3_create(h2o_loop_t *loop, const sff_objstore_config_t *config, const char *rest, sff_objstore_t **out, char *err,
                           size_t errsize)
{
    s3store_t *s3 = calloc(1, sizeof(*s3));
    if (s3 == NULL)
        return SFF_ENOMEM;
    s3->super.driver = &sff_objstore_s3_driver;
    int ret = SFF_EBADREQ, style = -1;
    char *endpoint = NULL, *public_ep = NULL;
    size_t blen = strcspn(rest, "?/");
    if ((s3->bucket = h2o_strdup(NULL, rest, blen).base) == NULL)
        goto NoMem;
    if (!valid_bucket(s3->bucket)) {
        snprintf(err, errsize, "SFF_STORAGE_URL: s3://BUCKET needs a bucket name of 3-63 characters a-z 0-9 . -");
        goto Error;
    }
    const char *q = rest + blen;
    if (*q == '/')
        q++;
    if (*q != '\0' && *q != '?') {
        snprintf(err, errsize, "SFF_STORAGE_URL: s3://bucket takes no path");
        goto Error;
    }
    if (*q == '?')
        q++;
    while (*q != '\0') {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        if (eq == NULL) {
            snprintf(err, errsize, "SFF_STORAGE_URL: option %.*s needs a value", (int)n, q);
            goto Error;
        }
        size_t nl = (size_t)(eq - q);
        char *v = pct_decode(eq + 1, n - nl - 1);
        if (v == NULL)
            goto NoMem;
        if (nl == 8 && memcmp(q, "endpoint", 8) == 0) {
            free(endpoint);
            endpoint = v;
        } else if (nl == 6 && memcmp(q, "public", 6) == 0) {
            free(public_ep);
            public_ep = v;
        } else if (nl == 6 && memcmp(q, "region", 6) == 0) {
            free(s3->region);
            s3->region = v;
        } else if (nl == 5 && memcmp(q, "style", 5) == 0) {
            style = strcmp(v, "virtual") == 0 ? 1 : strcmp(v, "path") == 0 ? 0 : -2;
            free(v);
            if (style == -2) {
                snprintf(err, errsize, "SFF_STORAGE_URL: style is path or virtual");
                goto Error;
            }
        } else {
            free(v);
            snprintf(err, errsize, "SFF_STORAGE_URL: unknown option %.*s (endpoint, region, style, public)", (int)nl, q);
            goto Error;
        }
        q += n;
        if (*q == '&')
            q++;
    }
    if (s3->region == NULL && (s3->region = strdup("us-east-1")) == NULL)
        goto NoMem;
    for (const char *c = s3->region; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) {
            snprintf(err, errsize, "SFF_STORAGE_URL: region must be like us-east-1");
            goto Error;
        }
    }
    if (endpoint != NULL) {
        if ((ret = parse_endpoint(s3, endpoint, err, errsize)) != 0)
            goto Error;
        s3->virtual_style = style == 1;
    } else {
        char host[128];
        snprintf(host, sizeof(host), "s3.%s.amazonaws.com", s3->region);
        if ((s3->host = strdup(host)) == NULL)
            goto NoMem;
        s3->tls = 1;
        s3->port = 443;
        s3->virtual_style = style != 0;
    }
    ret = SFF_EBADREQ;
    struct in6_addr a6;
    if (s3->virtual_style && (inet_pton(AF_INET, s3->host, &a6) == 1 || inet_pton(AF_INET6, s3->host, &a6) == 1)) {
        snprintf(err, errsize, "SFF_STORAGE_URL: style=virtual needs an endpoint with a host name, not an address");
        goto Error;
    }
    if (config->access_key == NULL || config->access_key[0] == '\0' || config->secret_key == NULL ||
        config->secret_key[0] == '\0') {
        snprintf(err, errsize, "S3 storage needs SFF_S3_ACCESS_KEY and SFF_S3_SECRET_KEY");
        goto Error;
    }
    if (strpbrk(config->access_key, "\r\n/ ") != NULL ||
        (config->session_token != NULL && strpbrk(config->session_token, "\r\n") != NULL)) {
        snprintf(err, errsize, "SFF_S3_ACCESS_KEY or the session token holds an invalid character");
        goto Error;
    }
    ret = SFF_ENOMEM;
    size_t n = strlen(s3->bucket) + strlen(s3->host) + 16;
    int v6 = strchr(s3->host, ':') != NULL, default_port = s3->port == (s3->tls ? 443 : 80);
    if ((s3->authority = malloc(n)) == NULL || (s3->connect = malloc(n)) == NULL)
        goto NoMem;
    snprintf(s3->connect, n, "%s%s%s", s3->virtual_style ? s3->bucket : "", s3->virtual_style ? "." : "", s3->host);
    int w = snprintf(s3->authority, n, v6 ? "[%s]" : "%s", s3->connect);
    if (!default_port)
        snprintf(s3->authority + w, n - (size_t)w, ":%u", (unsigned)s3->port);
    if (public_ep != NULL) {
        /* presigned URLs name the endpoint browsers reach (e.g. localhost:9000 for a container's minio:9000) */
        s3store_t pub = {0};
        if ((ret = parse_endpoint(&pub, public_ep, err, errsize)) != 0) {
            free(pub.host);
            goto Error;
        }
        size_t pn = strlen(s3->bucket) + strlen(pub.host) + 16;
        int pv6 = strchr(pub.host, ':') != NULL;
        if ((s3->public_authority = malloc(pn)) == NULL) {
            free(pub.host);
            goto NoMem;
        }
        int pw = snprintf(s3->public_authority, pn, pv6 ? "[%s%s%s]" : "%s%s%s", s3->virtual_style ? s3->bucket : "",
                          s3->virtual_style ? "." : "", pub.host);
        if (pub.port != (pub.tls ? 443 : 80))
            snprintf(s3->public_authority + pw, pn - (size_t)pw, ":%u", (unsigned)pub.port);
        s3->public_tls = pub.tls;
        free(pub.host);
        ret = SFF_ENOMEM;
    }
    if ((s3->access_key = strdup(config->access_key)) == NULL || (s3->secret_key = strdup(config->secret_key)) == NULL ||
        (config->session_token != NULL && (s3->session_token = strdup(config->session_token)) == NULL))
        goto NoMem;
    s3->max_retries = config->max_retries != 0 ? config->max_retries : 3;
    s3->retry_base_ms = config->retry_base_ms != 0 ? config->retry_base_ms : 50;
    sff_httpc_config_t hc = {.ca_file = config->ca_file};
    if ((s3->httpc = sff_httpc_create(loop, &hc)) == NULL)
        goto NoMem;
    free(endpoint);
    free(public_ep);
    *out = &s3->super;
    return 0;
NoMem:
    ret = SFF_ENOMEM;
    snprintf(err, errsize, "out of memory");
Error:
    free(endpoint);
    free(public_ep);
    s3_destroy(&s3->super);
    return ret;
}
