/* jsonout.c - JSON text from jansson values, byte for byte as json_dumps(JSON_COMPACT |
 * JSON_ENCODE_ANY) writes it (see jsonout.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "jsonout.h"
#include "strbuf.h"
#include "utf8.h"

/* Bytes that end a run of plain string bytes: '"', '\\', control characters, and the first byte
 * of a multi-byte sequence (to be checked as UTF-8). */
static inline int special(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

static void put_string(sff_strbuf_t *o, const char *str, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str, *end = s + n;
    sff_strbuf_addc(o, '"');
    while (s < end && !o->failed) {
        const unsigned char *run = s;
        while (s < end && !special(*s))
            s++;
        sff_strbuf_addn(o, (const char *)run, (size_t)(s - run));
        if (s == end)
            break;
        unsigned char c = *s;
        if (c >= 0x80) {
            uint32_t cp;
            size_t len = sff_utf8_seq(s, (size_t)(end - s), &cp);
            if (len == 0) {
                o->failed = 1;
                return;
            }
            sff_strbuf_addn(o, (const char *)s, len);
            s += len;
            continue;
        }
        char esc[6] = {'\\', 0};
        size_t elen = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default: /* "\u00XX", upper-case hex like jansson */
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            elen = 6;
        }
        sff_strbuf_addn(o, esc, elen);
        s++;
    }
    sff_strbuf_addc(o, '"');
}

static void put_integer(sff_strbuf_t *o, json_int_t v)
{
    char buf[24], *p = buf + sizeof(buf);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    sff_strbuf_addn(o, p, (size_t)(buf + sizeof(buf) - p));
}

/* Reals are rare in responses, and jansson's shortest-round-trip formatting has its own rules:
 * they are left to it. */
static void put_real(sff_strbuf_t *o, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        o->failed = 1;
        return;
    }
    sff_strbuf_addn(o, s, strlen(s));
    free(s);
}

static void put_value(sff_strbuf_t *o, const json_t *v, int depth)
{
    if (depth > SFF_JSONOUT_MAX_DEPTH) {
        o->failed = 1;
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        sff_strbuf_addc(o, '{');
        int first = 1;
        for (void *it = json_object_iter((json_t *)v); it != NULL && !o->failed; it = json_object_iter_next((json_t *)v, it)) {
            if (!first)
                sff_strbuf_addc(o, ',');
            first = 0;
            put_string(o, json_object_iter_key(it), json_object_iter_key_len(it));
            sff_strbuf_addc(o, ':');
            put_value(o, json_object_iter_value(it), depth + 1);
        }
        sff_strbuf_addc(o, '}');
        break;
    }
    case JSON_ARRAY: {
        sff_strbuf_addc(o, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n && !o->failed; i++) {
            if (i != 0)
                sff_strbuf_addc(o, ',');
            put_value(o, json_array_get(v, i), depth + 1);
        }
        sff_strbuf_addc(o, ']');
        break;
    }
    case JSON_STRING:
        put_string(o, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        put_integer(o, json_integer_value(v));
        break;
    case JSON_REAL:
        put_real(o, v);
        break;
    case JSON_TRUE:
        sff_strbuf_addn(o, "true", 4);
        break;
    case JSON_FALSE:
        sff_strbuf_addn(o, "false", 5);
        break;
    default:
        sff_strbuf_addn(o, "null", 4);
    }
}

char *sff_jsonout_dump(const json_t *v, size_t *len)
{
    sff_strbuf_t o = {0};
    if (v == NULL)
        return NULL;
    put_value(&o, v, 0);
    return sff_strbuf_take(&o, len);
}
