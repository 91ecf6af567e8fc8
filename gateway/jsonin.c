/*
 * jsonin.c - strict parsing of what clients send: JSON bodies, forms and query strings.
 *
 * JSON goes to jansson only after a linear scan has bounded its nesting, because jansson's parser
 * recurses once per level and the gateway runs handlers on small coroutine stacks. jansson then
 * refuses duplicate keys, invalid UTF-8 (overlong forms, encoded surrogates, bytes F5-FF, truncated
 * sequences), lone surrogate escapes, "\u0000" and trailing data. Its own error texts quote up to
 * 20 bytes of the input, so they are never passed on: each error code gets a message of our own
 * that only quotes a position (and, for a duplicate key, a shortened copy of that key).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonin.h"
#include "router.h"

/* The longest part of a duplicate key quoted in an error message, in bytes. */
#define DUP_KEY_QUOTE_MAX 32

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int sff_jsonin_depth(const char *text, size_t len, int limit)
{
    int depth = 0, max = 0, in_string = 0;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') {
                i++; /* the escaped character can neither end the string nor open a level */
            } else if (c == '"') {
                in_string = 0;
            }
            continue;
        }
        switch (c) {
        case '"':
            in_string = 1;
            break;
        case '[':
        case '{':
            if (++depth > max) {
                max = depth;
                if (max > limit)
                    return limit + 1;
            }
            break;
        case ']':
        case '}':
            /* Unbalanced closers are jansson's to report; they never make the depth negative. */
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
    }
    return max;
}

/* Copies at most max bytes of s to dst (size > max + 3), cutting at a UTF-8 character boundary and
 * appending "..." when something was cut. */
static void shorten_utf8(char *dst, const char *s, size_t len, size_t max)
{
    if (len <= max) {
        memcpy(dst, s, len);
        dst[len] = '\0';
        return;
    }
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    memcpy(dst, s, n);
    memcpy(dst + n, "...", 4);
}

/* Writes "duplicate key \"k\"" for the key that ends (closing quote included) just before byte end
 * of text, which is where jansson stops when it finds a duplicate. Falls back to a message without
 * the key when the bytes there do not look like a key. */
static void duplicate_key_message(const char *text, size_t len, size_t end, char *err, size_t errlen)
{
    char shortened[DUP_KEY_QUOTE_MAX + 4];
    json_t *key = NULL;
    char *quoted = NULL;

    if (end < 2 || end > len || text[end - 1] != '"')
        goto fallback;
    /* The opening quote is the nearest '"' before the closing one that is not escaped, i.e. that
     * follows an even number of backslashes (an unescaped '"' cannot occur inside the key). */
    size_t start = end - 1;
    for (;;) {
        if (start == 0)
            goto fallback;
        start--;
        if (text[start] != '"')
            continue;
        size_t backslashes = 0;
        while (backslashes < start && text[start - 1 - backslashes] == '\\')
            backslashes++;
        if (backslashes % 2 == 0)
            break;
    }
    if ((key = json_loadb(text + start, end - start, JSON_DECODE_ANY, NULL)) == NULL || !json_is_string(key))
        goto fallback;
    shorten_utf8(shortened, json_string_value(key), json_string_length(key), DUP_KEY_QUOTE_MAX);
    json_decref(key);
    key = json_string(shortened);
    if (key == NULL || (quoted = json_dumps(key, JSON_ENCODE_ANY)) == NULL)
        goto fallback;
    set_err(err, errlen, "duplicate key %s", quoted);
    free(quoted);
    json_decref(key);
    return;

fallback:
    json_decref(key);
    set_err(err, errlen, "duplicate key");
}

json_t *sff_jsonin_parse(const char *text, size_t len, int max_depth, char *err, size_t errlen)
{
    json_error_t error;
    json_t *value;
    size_t i;

    if (text == NULL)
        len = 0;
    if (len != 0 && memchr(text, '\0', len) != NULL) {
        set_err(err, errlen, "NUL byte in input");
        return NULL;
    }
    for (i = 0; i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'); i++)
        ;
    if (i == len) {
        set_err(err, errlen, "empty input");
        return NULL;
    }
    if (sff_jsonin_depth(text, len, max_depth) > max_depth) {
        set_err(err, errlen, "nesting deeper than %d", max_depth);
        return NULL;
    }
    if ((value = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error)) != NULL)
        return value;

    switch (json_error_code(&error)) {
    case json_error_out_of_memory:
        set_err(err, errlen, "out of memory");
        break;
    case json_error_stack_overflow:
        set_err(err, errlen, "nesting too deep");
        break;
    case json_error_invalid_utf8:
        set_err(err, errlen, "invalid UTF-8");
        break;
    case json_error_premature_end_of_input:
        set_err(err, errlen, "unexpected end of input");
        break;
    case json_error_end_of_input_expected:
        set_err(err, errlen, "unexpected data after the value at line %d column %d", error.line, error.column);
        break;
    case json_error_null_character:
    case json_error_null_byte_in_key:
        set_err(err, errlen, "\\u0000 is not allowed at line %d column %d", error.line, error.column);
        break;
    case json_error_duplicate_key:
        duplicate_key_message(text, len, error.position < 0 ? 0 : (size_t)error.position, err, errlen);
        break;
    case json_error_numeric_overflow:
        set_err(err, errlen, "number out of range at line %d column %d", error.line, error.column);
        break;
    case json_error_invalid_syntax:
        if (strncmp(error.text, "invalid Unicode", 15) == 0) {
            set_err(err, errlen, "invalid Unicode escape at line %d column %d", error.line, error.column);
        } else if (strncmp(error.text, "control character", 17) == 0) {
            set_err(err, errlen, "unescaped control character at line %d column %d", error.line, error.column);
        } else {
            set_err(err, errlen, "syntax error at line %d column %d", error.line, error.column);
        }
        break;
    default:
        set_err(err, errlen, "invalid JSON at line %d column %d", error.line, error.column);
        break;
    }
    return NULL;
}

/* The length of the well-formed UTF-8 character at s (at most n bytes), or 0 when it is not one:
 * overlong forms, surrogates (U+D800-U+DFFF), code points above U+10FFFF and truncated sequences are
 * refused. */
static size_t utf8_char_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0) /* overlong */
            return 0;
        if (c == 0xed && s[1] >= 0xa0) /* surrogate */
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xf4 && s[1] >= 0x90) /* above U+10FFFF */
            return 0;
        return 4;
    }
    return 0; /* a continuation byte, C0, C1 or F5-FF */
}

static int utf8_valid(const char *s, size_t len)
{
    size_t i = 0, n;

    while (i < len) {
        if ((n = utf8_char_len((const unsigned char *)s + i, len - i)) == 0)
            return 0;
        i += n;
    }
    return 1;
}

/* Decodes one form component (a key or a value) into dst, which has room for len + 1 bytes; '+'
 * becomes a space. Returns the decoded length, or -1 with a message for a malformed escape, a NUL or
 * invalid UTF-8. */
static long form_decode(char *dst, const char *src, size_t len, char *err, size_t errlen)
{
    long o = sff_url_decode_form(dst, src, len);
    if (o < 0) {
        int nul = memchr(src, '\0', len) != NULL;
        for (size_t i = 0; i + 2 < len && !nul; i++)
            nul = src[i] == '%' && src[i + 1] == '0' && src[i + 2] == '0';
        set_err(err, errlen, nul ? "NUL in form data" : "malformed percent escape in form data");
        return -1;
    }
    if (!utf8_valid(dst, (size_t)o)) {
        set_err(err, errlen, "invalid UTF-8 in form data");
        return -1;
    }
    return o;
}

int sff_jsonin_parse_form(json_t *obj, const char *text, size_t len, char *err, size_t errlen)
{
    json_t *pairs = NULL;
    char *key = NULL, *value;
    int ret = -1;

    if (!json_is_object(obj)) {
        set_err(err, errlen, "internal error: form target is not an object");
        return -1;
    }
    if (text == NULL)
        len = 0;
    /* Pairs are collected apart and merged at the end, so obj is left untouched on error. A decoded
     * component is never longer than the text, so one buffer of twice its size holds a key (with
     * its NUL) and a value. */
    if ((pairs = json_object()) == NULL || (key = malloc(2 * len + 2)) == NULL) {
        set_err(err, errlen, "out of memory");
        goto exit;
    }
    value = key + len + 1;
    size_t pos = 0;
    while (pos < len) {
        const char *pair = text + pos, *amp = memchr(pair, '&', len - pos);
        size_t pair_len = amp != NULL ? (size_t)(amp - pair) : len - pos;
        pos += pair_len + 1;
        if (pair_len == 0)
            continue;
        const char *eq = memchr(pair, '=', pair_len);
        size_t key_len = eq != NULL ? (size_t)(eq - pair) : pair_len;
        long key_dec, value_dec = 0;
        if ((key_dec = form_decode(key, pair, key_len, err, errlen)) < 0)
            goto exit;
        key[key_dec] = '\0';
        if (eq != NULL && (value_dec = form_decode(value, eq + 1, pair_len - key_len - 1, err, errlen)) < 0)
            goto exit;
        if (json_object_set_new(pairs, key, json_stringn(value, (size_t)value_dec)) != 0) {
            set_err(err, errlen, "out of memory");
            goto exit;
        }
    }
    if (json_object_update(obj, pairs) != 0) {
        set_err(err, errlen, "out of memory");
        goto exit;
    }
    ret = 0;

exit:
    free(key);
    json_decref(pairs);
    return ret;
}
