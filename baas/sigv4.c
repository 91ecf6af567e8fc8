/*
 * sigv4.c - AWS Signature Version 4, as described in sigv4.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include "sff.h"
#include "sigv4.h"
#include "strbuf.h"

static void sb_add_encoded(sff_strbuf_t *b, const char *s, size_t n, int keep_slash)
{
    if (sff_strbuf_reserve(b, 3 * n) != 0)
        return;
    b->len += sff_sigv4_uri_encode(b->s + b->len, s, n, keep_slash);
}

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void sff_sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    hex(md, sizeof(md), out);
}

static int hmac(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[32])
{
    unsigned int outlen = 32;
    return HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen) != NULL && outlen == 32 ? 0 : SFF_EINTERNAL;
}

void sff_sigv4_format_date(time_t t, char out[17])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        memcpy(out, "19700101T000000Z", 17);
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

size_t sff_sigv4_uri_encode(char *dst, const char *src, size_t len, int keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '%';
            dst[o++] = digits[c >> 4];
            dst[o++] = digits[c & 15];
        }
    }
    dst[o] = '\0';
    return o;
}

typedef struct {
    char *name, *value; /* encoded */
} qparam_t;

static int cmp_qparam(const void *a, const void *b)
{
    const qparam_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->value, y->value);
}

static char *encode_dup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(3 * n + 1);
    if (d != NULL)
        sff_sigv4_uri_encode(d, s, n, 0);
    return d;
}

/* The canonical query of a then b (either may be empty). */
static char *canonical_query2(const sff_sigv4_kv_t *a, size_t na, const sff_sigv4_kv_t *b, size_t nb)
{
    size_t n = na + nb;
    qparam_t *q = calloc(n != 0 ? n : 1, sizeof(*q));
    sff_strbuf_t out = {0};
    int failed = q == NULL;
    for (size_t i = 0; i < n && !failed; i++) {
        const sff_sigv4_kv_t *kv = i < na ? &a[i] : &b[i - na];
        q[i].name = encode_dup(kv->name);
        q[i].value = encode_dup(kv->value != NULL ? kv->value : "");
        failed = q[i].name == NULL || q[i].value == NULL;
    }
    if (!failed) {
        qsort(q, n, sizeof(*q), cmp_qparam);
        for (size_t i = 0; i < n; i++) {
            if (i != 0)
                sff_strbuf_addc(&out, '&');
            sff_strbuf_add(&out, q[i].name);
            sff_strbuf_addc(&out, '=');
            sff_strbuf_add(&out, q[i].value);
        }
    }
    for (size_t i = 0; q != NULL && i < n; i++) {
        free(q[i].name);
        free(q[i].value);
    }
    free(q);
    if (failed) {
        free(out.s);
        return NULL;
    }
    return sff_strbuf_take(&out, NULL);
}

char *sff_sigv4_canonical_query(const sff_sigv4_kv_t *params, size_t n)
{
    return canonical_query2(params, n, NULL, 0);
}

/* The generic (non-S3) canonical URI: normalised, then encoded with "/" kept. */
static void canonical_path_generic(sff_strbuf_t *b, const char *path)
{
    size_t len = strlen(path), nseg = 0;
    const char **seg = malloc((len / 2 + 2) * sizeof(*seg));
    size_t *seglen = malloc((len / 2 + 2) * sizeof(*seglen));
    if (seg == NULL || seglen == NULL) {
        b->failed = 1;
        goto Exit;
    }
    for (const char *p = path, *end = path + len; p <= end;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash != NULL ? slash : end;
        size_t n = (size_t)(e - p);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* skipped */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (nseg != 0)
                nseg--;
        } else {
            seg[nseg] = p;
            seglen[nseg++] = n;
        }
        p = e + 1;
    }
    if (path[0] == '/')
        sff_strbuf_addc(b, '/');
    for (size_t i = 0; i < nseg; i++) {
        if (i != 0)
            sff_strbuf_addc(b, '/');
        sb_add_encoded(b, seg[i], seglen[i], 0);
    }
    if (nseg != 0 && len != 0 && path[len - 1] == '/')
        sff_strbuf_addc(b, '/');
Exit:
    free(seg);
    free(seglen);
}

typedef struct {
    char *name; /* lower-cased copy */
    const char *value;
    size_t order;
} hdr_t;

static int cmp_hdr(const void *a, const void *b)
{
    const hdr_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Appends a header value: CR and LF become spaces, runs of spaces and tabs one space, trimmed. */
static void add_header_value(sff_strbuf_t *b, const char *v)
{
    size_t start = b->len;
    int pending_space = 0;
    for (; *v != '\0'; v++) {
        char c = *v;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            pending_space = 1;
            continue;
        }
        if (pending_space && b->len != start)
            sff_strbuf_addc(b, ' ');
        pending_space = 0;
        sff_strbuf_addc(b, c);
    }
}

static int valid_date(const char *d)
{
    if (d == NULL || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return 0;
    return 1;
}

/* Builds the canonical request of req with the extra query parameters into out; sets *signed_headers. */
static int canonical_request(const sff_sigv4_request_t *req, const sff_sigv4_kv_t *extra, size_t nextra, char **creq,
                             char **signed_headers)
{
    int ret = SFF_ENOMEM;
    sff_strbuf_t b = {0}, sh = {0};
    char *query = NULL;
    hdr_t *h = calloc(req->nheaders != 0 ? req->nheaders : 1, sizeof(*h));
    if (h == NULL)
        return SFF_ENOMEM;
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *name = req->headers[i].name, *value = req->headers[i].value;
        if (name == NULL || value == NULL || name[0] == '\0' || strpbrk(name, "\r\n: \t") != NULL ||
            strpbrk(value, "\r\n") != NULL) {
            ret = SFF_EBADREQ;
            goto Exit;
        }
        if ((h[i].name = strdup(name)) == NULL)
            goto Exit;
        for (char *p = h[i].name; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        h[i].value = value;
        h[i].order = i;
    }
    qsort(h, req->nheaders, sizeof(*h), cmp_hdr);
    if ((query = canonical_query2(req->query, req->nquery, extra, nextra)) == NULL)
        goto Exit;

    sff_strbuf_add(&b, req->method);
    sff_strbuf_addc(&b, '\n');
    if (req->mode == SFF_SIGV4_GENERIC)
        canonical_path_generic(&b, req->path);
    else
        sff_strbuf_add(&b, req->path);
    sff_strbuf_addc(&b, '\n');
    sff_strbuf_add(&b, query);
    sff_strbuf_addc(&b, '\n');
    for (size_t i = 0; i < req->nheaders; i++) {
        int first = i == 0 || strcmp(h[i - 1].name, h[i].name) != 0;
        if (first) {
            if (i != 0) {
                sff_strbuf_addc(&b, '\n');
                sff_strbuf_addc(&sh, ';');
            }
            sff_strbuf_add(&b, h[i].name);
            sff_strbuf_addc(&b, ':');
            sff_strbuf_add(&sh, h[i].name);
        } else {
            sff_strbuf_addc(&b, ',');
        }
        add_header_value(&b, h[i].value);
    }
    sff_strbuf_add(&b, "\n\n");
    sff_strbuf_add(&b, sh.s != NULL ? sh.s : "");
    sff_strbuf_addc(&b, '\n');
    sff_strbuf_add(&b, req->payload_hash);
    if (b.failed || sh.failed)
        goto Exit;
    *creq = sff_strbuf_take(&b, NULL);
    *signed_headers = sff_strbuf_take(&sh, NULL);
    ret = *creq != NULL && *signed_headers != NULL ? 0 : SFF_ENOMEM;
Exit:
    for (size_t i = 0; i < req->nheaders; i++)
        free(h[i].name);
    free(h);
    free(query);
    free(b.s);
    free(sh.s);
    return ret;
}

int sff_sigv4_signing_key(const char *secret_key, const char *date8, const char *region, const char *service, uint8_t out[32])
{
    size_t slen = strlen(secret_key);
    char *k = malloc(slen + 5);
    if (k == NULL)
        return SFF_ENOMEM;
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret_key, slen + 1);
    uint8_t a[32], b[32];
    int ret = hmac(k, slen + 4, date8, 8, a);
    if (ret == 0)
        ret = hmac(a, 32, region, strlen(region), b);
    if (ret == 0)
        ret = hmac(b, 32, service, strlen(service), a);
    if (ret == 0)
        ret = hmac(a, 32, "aws4_request", 12, out);
    OPENSSL_cleanse(k, slen + 4);
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
    free(k);
    return ret;
}

/* The credential scope "YYYYMMDD/region/service/aws4_request" into buf. */
static void scope(const sff_sigv4_credentials_t *cred, const char *amz_date, char *buf, size_t size)
{
    snprintf(buf, size, "%.8s/%s/%s/aws4_request", amz_date, cred->region, cred->service);
}

/* String to sign and signature of out->canonical_request. */
static int finish(const sff_sigv4_credentials_t *cred, const sff_sigv4_request_t *req, const char *scope_s, sff_sigv4_result_t *out)
{
    char crhash[65];
    sff_sigv4_sha256_hex(out->canonical_request, strlen(out->canonical_request), crhash);
    sff_strbuf_t b = {0};
    sff_strbuf_add(&b, "AWS4-HMAC-SHA256\n");
    sff_strbuf_add(&b, req->amz_date);
    sff_strbuf_addc(&b, '\n');
    sff_strbuf_add(&b, scope_s);
    sff_strbuf_addc(&b, '\n');
    sff_strbuf_add(&b, crhash);
    if ((out->string_to_sign = sff_strbuf_take(&b, NULL)) == NULL)
        return SFF_ENOMEM;
    uint8_t key[32], sig[32];
    int ret = sff_sigv4_signing_key(cred->secret_key, req->amz_date, cred->region, cred->service, key);
    if (ret == 0)
        ret = hmac(key, sizeof(key), out->string_to_sign, strlen(out->string_to_sign), sig);
    OPENSSL_cleanse(key, sizeof(key));
    if (ret != 0)
        return ret;
    hex(sig, sizeof(sig), out->signature);
    return 0;
}

static int check(const sff_sigv4_credentials_t *cred, const sff_sigv4_request_t *req)
{
    if (cred == NULL || cred->access_key == NULL || cred->secret_key == NULL || cred->region == NULL || cred->service == NULL ||
        req->method == NULL || req->path == NULL || req->path[0] != '/' || req->payload_hash == NULL || !valid_date(req->amz_date))
        return SFF_EBADREQ;
    return 0;
}

int sff_sigv4_sign(const sff_sigv4_credentials_t *cred, const sff_sigv4_request_t *req, sff_sigv4_result_t *out)
{
    *out = (sff_sigv4_result_t){0};
    int ret = check(cred, req);
    if (ret != 0)
        return ret;
    char scope_s[256];
    scope(cred, req->amz_date, scope_s, sizeof(scope_s));
    if ((ret = canonical_request(req, NULL, 0, &out->canonical_request, &out->signed_headers)) != 0 ||
        (ret = finish(cred, req, scope_s, out)) != 0)
        goto Error;
    sff_strbuf_t b = {0};
    sff_strbuf_add(&b, "AWS4-HMAC-SHA256 Credential=");
    sff_strbuf_add(&b, cred->access_key);
    sff_strbuf_addc(&b, '/');
    sff_strbuf_add(&b, scope_s);
    sff_strbuf_add(&b, ", SignedHeaders=");
    sff_strbuf_add(&b, out->signed_headers);
    sff_strbuf_add(&b, ", Signature=");
    sff_strbuf_add(&b, out->signature);
    if ((out->authorization = sff_strbuf_take(&b, NULL)) == NULL) {
        ret = SFF_ENOMEM;
        goto Error;
    }
    return 0;
Error:
    sff_sigv4_result_dispose(out);
    return ret;
}

int sff_sigv4_presign(const sff_sigv4_credentials_t *cred, const sff_sigv4_request_t *req, uint32_t expires_s,
                      sff_sigv4_result_t *out)
{
    *out = (sff_sigv4_result_t){0};
    int ret = check(cred, req);
    if (ret != 0)
        return ret;
    if (expires_s == 0 || expires_s > SFF_SIGV4_MAX_EXPIRES)
        return SFF_EBADREQ;
    char scope_s[256], credential[512], expires[16];
    scope(cred, req->amz_date, scope_s, sizeof(scope_s));
    snprintf(credential, sizeof(credential), "%s/%s", cred->access_key, scope_s);
    snprintf(expires, sizeof(expires), "%u", (unsigned)expires_s);

    /* The signed header list is part of what is signed: compute it first. */
    char *signed_headers = NULL, *creq = NULL;
    if ((ret = canonical_request(req, NULL, 0, &creq, &signed_headers)) != 0)
        return ret;
    free(creq);
    sff_sigv4_kv_t extra[6] = {
        {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"}, {"X-Amz-Credential", credential},
        {"X-Amz-Date", req->amz_date},           {"X-Amz-Expires", expires},
        {"X-Amz-SignedHeaders", signed_headers}, {"X-Amz-Security-Token", cred->session_token},
    };
    size_t nextra = cred->session_token != NULL ? 6 : 5;
    char *query = NULL;
    if ((ret = canonical_request(req, extra, nextra, &out->canonical_request, &out->signed_headers)) != 0 ||
        (ret = finish(cred, req, scope_s, out)) != 0)
        goto Error;
    ret = SFF_ENOMEM;
    if ((query = canonical_query2(req->query, req->nquery, extra, nextra)) == NULL)
        goto Error;
    sff_strbuf_t b = {0};
    sff_strbuf_add(&b, query);
    sff_strbuf_add(&b, "&X-Amz-Signature=");
    sff_strbuf_add(&b, out->signature);
    if ((out->query = sff_strbuf_take(&b, NULL)) == NULL)
        goto Error;
    free(query);
    free(signed_headers);
    return 0;
Error:
    free(query);
    free(signed_headers);
    sff_sigv4_result_dispose(out);
    return ret;
}

void sff_sigv4_result_dispose(sff_sigv4_result_t *out)
{
    free(out->canonical_request);
    free(out->string_to_sign);
    free(out->signed_headers);
    free(out->authorization);
    free(out->query);
    *out = (sff_sigv4_result_t){0};
}
