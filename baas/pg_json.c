/*
 * pg_json.c - Postgres values and results as JSON, and SQLSTATEs as SFF_E* codes.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libpq-fe.h>
#include "text.h"
#include "pg.h"
#include "sff.h"

/* Type OIDs of pg_type.dat (stable across Postgres versions). */
enum {
    OID_BOOL = 16,
    OID_BYTEA = 17,
    OID_CHAR = 18,
    OID_NAME = 19,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_TEXT = 25,
    OID_OID = 26,
    OID_JSON = 114,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_BPCHAR = 1042,
    OID_VARCHAR = 1043,
    OID_DATE = 1082,
    OID_TIMESTAMP = 1114,
    OID_TIMESTAMPTZ = 1184,
    OID_NUMERIC = 1700,
    OID_UUID = 2950,
    OID_JSONB = 3802,
};

/* The element type of the array types converted to JSON arrays, or 0. */
static uint32_t array_element(uint32_t oid)
{
    switch (oid) {
    case 1000:
        return OID_BOOL;
    case 1002:
        return OID_CHAR;
    case 1003:
        return OID_NAME;
    case 1005:
        return OID_INT2;
    case 1007:
        return OID_INT4;
    case 1009:
        return OID_TEXT;
    case 1014:
        return OID_BPCHAR;
    case 1015:
        return OID_VARCHAR;
    case 1016:
        return OID_INT8;
    case 1021:
        return OID_FLOAT4;
    case 1022:
        return OID_FLOAT8;
    case 1028:
        return OID_OID;
    case 1115:
        return OID_TIMESTAMP;
    case 1182:
        return OID_DATE;
    case 1185:
        return OID_TIMESTAMPTZ;
    case 1231:
        return OID_NUMERIC;
    case 199:
        return OID_JSON;
    case 2951:
        return OID_UUID;
    case 3807:
        return OID_JSONB;
    default:
        return 0;
    }
}

int sff_pg_error_code(const char *s)
{
    if (s == NULL || strlen(s) != 5)
        return SFF_EUNAVAILABLE;
    if (strcmp(s, "23505") == 0 || strcmp(s, "23503") == 0 || strcmp(s, "23P01") == 0)
        return SFF_ECONFLICT;
    if (strncmp(s, "22", 2) == 0 || strcmp(s, "23502") == 0 || strcmp(s, "23514") == 0)
        return SFF_EINVALID;
    if (strcmp(s, "57014") == 0)
        return SFF_ETIMEDOUT;
    if (strcmp(s, "42501") == 0)
        return SFF_EFORBIDDEN;
    if (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0)
        return SFF_EUNAVAILABLE;
    return SFF_EINTERNAL;
}

static json_t *text(const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);
    /* client_encoding is UTF8, so this only fails for lack of memory or a NUL a type let through */
    return v;
}

/* Copies a number's text into buf, NUL-terminated: the caller's text need not be. */
static const char *number_text(const char *s, size_t len, char *buf, size_t size)
{
    if (len == 0 || len >= size)
        return NULL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

static json_t *integer(const char *s, size_t len, int may_be_large)
{
    char buf[32], *end;
    const char *t = number_text(s, len, buf, sizeof(buf));
    if (t == NULL)
        return text(s, len);
    errno = 0;
    long long v = strtoll(t, &end, 10);
    if (errno != 0 || end != t + len)
        return text(s, len);
    if (may_be_large && (v > (1LL << 53) || v < -(1LL << 53)))
        return text(s, len); /* beyond a double's exact integers: JavaScript would round it */
    return json_integer(v);
}

static json_t *real(const char *s, size_t len)
{
    char buf[64], *end;
    const char *t = number_text(s, len, buf, sizeof(buf));
    if (t == NULL)
        return text(s, len);
    double v = strtod(t, &end);
    if (end != t + len || isnan(v) || isinf(v))
        return text(s, len); /* "NaN", "Infinity", "-Infinity" have no JSON number */
    return json_real(v);
}

/* "2026-11-21 06:40:00.123456+00" -> "2026-11-21T06:40:00.123456Z"; an offset other than +00 is kept
 * as "+05:30"; BC dates and infinities stay as Postgres writes them. */
static json_t *timestamp(const char *s, size_t len, int with_zone)
{
    char buf[64];
    const char *sp = memchr(s, ' ', len);
    if (sp == NULL || len >= sizeof(buf) - 4 || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s)) != NULL)
        return text(s, len);
    size_t n = (size_t)(sp - s);
    memcpy(buf, s, n);
    buf[n++] = 'T';
    const char *t = sp + 1, *end = s + len;
    if (!with_zone) {
        memcpy(buf + n, t, (size_t)(end - t));
        n += (size_t)(end - t);
        return json_stringn(buf, n);
    }
    const char *zone = NULL;
    for (const char *p = t; p < end; p++)
        if (*p == '+' || *p == '-')
            zone = p;
    if (zone == NULL)
        return text(s, len);
    memcpy(buf + n, t, (size_t)(zone - t));
    n += (size_t)(zone - t);
    size_t zlen = (size_t)(end - zone);
    if (zlen == 3 && memcmp(zone, "+00", 3) == 0) {
        buf[n++] = 'Z';
    } else {
        memcpy(buf + n, zone, zlen);
        n += zlen;
        if (zlen == 3) {
            memcpy(buf + n, ":00", 3);
            n += 3;
        }
    }
    return json_stringn(buf, n);
}

/* bytea_output hex ("\x0aff") -> base64 with padding. */
static json_t *bytea(const char *s, size_t len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len < 2 || s[0] != '\\' || s[1] != 'x' || len % 2 != 0)
        return text(s, len); /* the escape format: only when a session changed bytea_output */
    size_t nbytes = (len - 2) / 2;
    unsigned char *bytes = malloc(nbytes + 1);
    char *out = malloc(4 * ((nbytes + 2) / 3) + 1);
    json_t *v = NULL;
    if (bytes == NULL || out == NULL)
        goto Exit;
    for (size_t i = 0; i < nbytes; i++) {
        int hi = sff_text_hexval(s[2 + 2 * i]), lo = sff_text_hexval(s[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            v = text(s, len);
            goto Exit;
        }
        bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    size_t o = 0;
    for (size_t i = 0; i < nbytes; i += 3) {
        uint32_t w = (uint32_t)bytes[i] << 16;
        if (i + 1 < nbytes)
            w |= (uint32_t)bytes[i + 1] << 8;
        if (i + 2 < nbytes)
            w |= bytes[i + 2];
        out[o++] = b64[w >> 18 & 63];
        out[o++] = b64[w >> 12 & 63];
        out[o++] = i + 1 < nbytes ? b64[w >> 6 & 63] : '=';
        out[o++] = i + 2 < nbytes ? b64[w & 63] : '=';
    }
    v = json_stringn(out, o);
Exit:
    free(bytes);
    free(out);
    return v;
}

static json_t *json_value(const char *s, size_t len)
{
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    /* jansson refuses integers beyond 64 bits, which json (not jsonb) keeps verbatim */
    return v != NULL ? v : text(s, len);
}

/* ---- arrays ----------------------------------------------------------------------------------- */

typedef struct st_array_parser_t {
    const char *p, *end;
    uint32_t elem;
    char *buf; /* one element, unescaped */
    size_t cap;
} array_parser_t;

static json_t *parse_array(array_parser_t *ap, int depth);

static int push_char(array_parser_t *ap, size_t *n, char c)
{
    if (*n + 1 >= ap->cap) {
        size_t cap = ap->cap != 0 ? ap->cap * 2 : 64;
        char *b = realloc(ap->buf, cap);
        if (b == NULL)
            return -1;
        ap->buf = b;
        ap->cap = cap;
    }
    ap->buf[(*n)++] = c;
    return 0;
}

/* One element at ap->p: a nested array, a quoted string or a bare word (NULL is SQL NULL). Returns a
 * new reference, or NULL when the text is not an array literal (or memory runs out). */
static json_t *parse_element(array_parser_t *ap, int depth)
{
    size_t n = 0;
    if (ap->p < ap->end && *ap->p == '{')
        return parse_array(ap, depth + 1);
    if (ap->p < ap->end && *ap->p == '"') {
        ap->p++;
        for (;;) {
            if (ap->p >= ap->end)
                return NULL;
            char c = *ap->p++;
            if (c == '"')
                break;
            if (c == '\\') {
                if (ap->p >= ap->end)
                    return NULL;
                c = *ap->p++;
            }
            if (push_char(ap, &n, c) != 0)
                return NULL;
        }
        return sff_pg_value_json(ap->elem, ap->buf != NULL ? ap->buf : "", n);
    }
    while (ap->p < ap->end && *ap->p != ',' && *ap->p != '}') {
        if (*ap->p == '{' || *ap->p == '"' || *ap->p == '\\')
            return NULL;
        if (push_char(ap, &n, *ap->p++) != 0)
            return NULL;
    }
    if (n == 0)
        return NULL;
    if (n == 4 && strncasecmp(ap->buf, "NULL", 4) == 0)
        return json_null();
    return sff_pg_value_json(ap->elem, ap->buf, n);
}

static json_t *parse_array(array_parser_t *ap, int depth)
{
    if (depth > 6 || ap->p >= ap->end || *ap->p != '{') /* Postgres allows 6 dimensions */
        return NULL;
    ap->p++;
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    if (ap->p < ap->end && *ap->p == '}') {
        ap->p++;
        return arr;
    }
    for (;;) {
        json_t *v = parse_element(ap, depth);
        if (v == NULL || json_array_append_new(arr, v) != 0)
            goto Fail;
        if (ap->p >= ap->end)
            goto Fail;
        char c = *ap->p++;
        if (c == '}')
            return arr;
        if (c != ',')
            goto Fail;
    }
Fail:
    json_decref(arr);
    return NULL;
}

static json_t *array(uint32_t elem, const char *s, size_t len)
{
    array_parser_t ap = {.p = s, .end = s + len, .elem = elem};
    json_t *v = parse_array(&ap, 1);
    if (v != NULL && ap.p != ap.end) {
        json_decref(v);
        v = NULL;
    }
    free(ap.buf);
    /* "[0:1]={...}" (bounds other than 1) and anything unexpected stay as Postgres's text */
    return v != NULL ? v : text(s, len);
}

/* ---- values and results ----------------------------------------------------------------------- */

json_t *sff_pg_value_json(uint32_t oid, const char *s, size_t len)
{
    uint32_t elem;
    switch (oid) {
    case OID_INT2:
    case OID_INT4:
    case OID_OID:
        return integer(s, len, 0);
    case OID_INT8:
        return integer(s, len, 1);
    case OID_BOOL:
        return json_boolean(len > 0 && s[0] == 't');
    case OID_FLOAT4:
    case OID_FLOAT8:
        return real(s, len);
    case OID_JSON:
    case OID_JSONB:
        return json_value(s, len);
    case OID_TIMESTAMPTZ:
        return timestamp(s, len, 1);
    case OID_TIMESTAMP:
        return timestamp(s, len, 0);
    case OID_BYTEA:
        return bytea(s, len);
    default:
        if ((elem = array_element(oid)) != 0)
            return array(elem, s, len);
        return text(s, len);
    }
}

static json_t *row_json(const PGresult *res, int row, int nfields)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    for (int f = 0; f < nfields; f++) {
        json_t *v = PQgetisnull(res, row, f)
                        ? json_null()
                        : sff_pg_value_json(PQftype(res, f), PQgetvalue(res, row, f), (size_t)PQgetlength(res, row, f));
        if (v == NULL || json_object_set_new(obj, PQfname(res, f), v) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *sff_pg_result_json(const PGresult *res, sff_pg_shape_t shape)
{
    int nrows = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0, nfields = PQnfields(res);
    switch (shape) {
    case SFF_PG_EXEC: {
        const char *n = PQcmdTuples((PGresult *)res);
        return json_integer(n != NULL && *n != '\0' ? strtoll(n, NULL, 10) : 0);
    }
    case SFF_PG_ROW:
        return nrows > 0 ? row_json(res, 0, nfields) : json_null();
    case SFF_PG_ROWS:
    default: {
        json_t *arr = json_array();
        for (int r = 0; arr != NULL && r < nrows; r++) {
            json_t *row = row_json(res, r, nfields);
            if (row == NULL || json_array_append_new(arr, row) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        return arr;
    }
    }
}
