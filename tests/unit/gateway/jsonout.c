/*
 * Unit tests of gateway/jsonout.c: its text is json_dumps(JSON_COMPACT | JSON_ENCODE_ANY)'s, byte
 * for byte, on chosen values and on many random ones; and it fails where jansson fails.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "test.h"
#include "jsonout.h"

/* Whether v holds a key that is not UTF-8 (jansson's own check decides). */
static int has_bad_key(const json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (has_bad_key(json_array_get(v, i)))
                return 1;
    } else if (json_is_object(v)) {
        for (void *it = json_object_iter((json_t *)v); it != NULL; it = json_object_iter_next((json_t *)v, it)) {
            json_t *k = json_stringn(json_object_iter_key(it), json_object_iter_key_len(it));
            json_decref(k);
            if (k == NULL || has_bad_key(json_object_iter_value(it)))
                return 1;
        }
    }
    return 0;
}

/* Whether both serializers agree on v: the same text, or both fail. jansson 2.14 ignores a key that
 * is not UTF-8 and writes broken text (the key cut, no closing quote): there ours must fail. */
static int same(const json_t *v)
{
    size_t len = 0;
    char *ours = sff_jsonout_dump(v, &len), *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    int ok = has_bad_key(v)
                 ? ours == NULL
                 : (ours == NULL) == (theirs == NULL) && (ours == NULL || (strcmp(ours, theirs) == 0 && len == strlen(theirs)));
    if (!ok)
        fprintf(stderr, "  ours:    %s\n  jansson: %s\n", ours != NULL ? ours : "(failed)", theirs != NULL ? theirs : "(failed)");
    free(ours);
    free(theirs);
    return ok;
}

static json_t *str(const char *s, size_t n)
{
    return json_stringn_nocheck(s, n);
}
#define STR(lit) str((lit), sizeof(lit) - 1)

TEST(scalars_and_containers)
{
    const char *texts[] = {"null",
                           "true",
                           "false",
                           "0",
                           "-1",
                           "9223372036854775807",
                           "-9223372036854775808",
                           "{}",
                           "[]",
                           "[[],{},[[]]]",
                           "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
                           "1.5",
                           "-0.0",
                           "1e300",
                           "0.1",
                           "123456789.123456789",
                           "[1.0,2.5e-8,3e+20]",
                           NULL};
    for (int i = 0; texts[i] != NULL; i++) {
        json_t *v = json_loads(texts[i], JSON_DECODE_ANY, NULL);
        CHECK(v != NULL && same(v));
        json_decref(v);
    }
    size_t len;
    json_t *v = json_pack("{s:i,s:[s,n]}", "z", 1, "a", "x");
    char *t = sff_jsonout_dump(v, &len);
    CHECK_STR(t, "{\"z\":1,\"a\":[\"x\",null]}"); /* insertion order, like jansson */
    CHECK_INT(len, 22);
    free(t);
    json_decref(v);
    CHECK(sff_jsonout_dump(NULL, &len) == NULL);
}

TEST(string_escapes)
{
    json_t *v[] = {STR(""),
                   STR("plain"),
                   STR("quote \" backslash \\ slash /"),
                   STR("\b\f\n\r\t"),
                   STR("\x01\x1f\x7f"),
                   STR("nul \0 inside"),
                   STR("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                   STR("\xe2\x80\xa8 \xe2\x80\xa9"),
                   STR("\xef\xbf\xbf"),
                   STR("\xf4\x8f\xbf\xbf")};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        CHECK(same(v[i]));
        json_decref(v[i]);
    }
    json_t *s = STR("\x01 \x1f");
    char *t = sff_jsonout_dump(s, NULL);
    CHECK_STR(t, "\"\\u0001 \\u001F\"");
    free(t);
    json_decref(s);
}

TEST(invalid_utf8_fails_like_jansson)
{
    json_t *v[] = {STR("\x80"),
                   STR("a\xc0\x80"),
                   STR("\xc1\xbf"),
                   STR("\xe0\x80\x80"),
                   STR("\xed\xa0\x80"),
                   STR("\xf4\x90\x80\x80"),
                   STR("\xf5\x80\x80\x80"),
                   STR("\xff"),
                   STR("cut \xe2\x82"),
                   STR("\xc3"),
                   STR("\xc3("),
                   STR("\xf0\x8f\xbf\xbf")};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        CHECK(sff_jsonout_dump(v[i], NULL) == NULL);
        CHECK(same(v[i]));
        json_decref(v[i]);
    }
    /* a bad key too (jansson writes "{\"" there) */
    json_t *o = json_object();
    json_object_setn_nocheck(o, "\xff", 1, json_true());
    CHECK(sff_jsonout_dump(o, NULL) == NULL && same(o));
    json_decref(o);
    /* and a key with a NUL in it is written whole */
    o = json_object();
    json_object_setn_new(o, "a\0b", 3, json_integer(1));
    CHECK(same(o));
    json_decref(o);
}

TEST(depth_limit_and_cycles)
{
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < SFF_JSONOUT_MAX_DEPTH; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    char *t = sff_jsonout_dump(root, NULL); /* SFF_JSONOUT_MAX_DEPTH + 1 levels: fine */
    CHECK(t != NULL && same(root));
    free(t);
    json_array_append_new(cur, json_array());
    CHECK(sff_jsonout_dump(root, NULL) == NULL);
    json_decref(root);
    /* a cycle fails (jansson's too) instead of recursing for ever */
    json_t *a = json_array(), *b = json_array();
    json_array_append(a, b);
    json_array_append(b, a);
    CHECK(sff_jsonout_dump(a, NULL) == NULL);
    json_array_clear(b);
    json_decref(a);
    json_decref(b);
}

/* ---- random values -------------------------------------------------------------------------- */

static uint64_t seed = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(uint32_t n)
{
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    return (uint32_t)(seed % n);
}

static json_t *random_string(void)
{
    /* bytes from a small alphabet of troublemakers, sometimes invalid UTF-8 */
    static const char *const pieces[] = {"a",
                                         "Z",
                                         " ",
                                         "\"",
                                         "\\",
                                         "/",
                                         "\n",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "\0",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\xe2\x80\xa8",
                                         "\xed\x9f\xbf",
                                         "\xff",
                                         "\xc3",
                                         "\xed\xa0\x80"};
    static const size_t lens[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 3, 3, 1, 1, 3};
    char buf[256];
    size_t n = 0, parts = rnd(12);
    int valid_only = rnd(4) != 0;
    for (size_t i = 0; i < parts; i++) {
        size_t k = rnd(valid_only ? 16 : 19);
        memcpy(buf + n, pieces[k], lens[k]);
        n += lens[k];
    }
    return json_stringn_nocheck(buf, n);
}

static json_t *random_value(int depth)
{
    switch (rnd(depth > 5 ? 6 : 8)) {
    case 0:
        return json_null();
    case 1:
        return rnd(2) ? json_true() : json_false();
    case 2:
        /* small, large and negative ones, INT64_MIN among them (the conversion wraps, as in gcc) */
        return json_integer((json_int_t)(((uint64_t)rnd(UINT32_MAX) << (rnd(3) ? 0 : 32)) ^ (rnd(2) ? 0 : UINT64_C(1) << 63)));
    case 3:
        return json_real((double)rnd(1000000) / (double)(rnd(999) + 1) * (rnd(2) ? 1 : -1e-30));
    case 4:
    case 5:
        return random_string();
    case 6: {
        json_t *a = json_array();
        for (uint32_t i = rnd(5); i > 0; i--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (uint32_t i = rnd(5); i > 0; i--) {
            json_t *k = random_string();
            json_object_setn_new_nocheck(o, json_string_value(k), json_string_length(k), random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

TEST(random_values_as_jansson_writes_them)
{
    int differ = 0, failed = 0;
    for (int i = 0; i < 20000; i++) {
        json_t *v = random_value(0);
        if (!same(v) && ++differ > 5)
            break;
        char *t = sff_jsonout_dump(v, NULL);
        failed += t == NULL;
        free(t);
        json_decref(v);
    }
    CHECK_INT(differ, 0);
    CHECK(failed > 100 && failed < 19000); /* both outcomes were tried */
}

int main(void)
{
    RUN(scalars_and_containers);
    RUN(string_escapes);
    RUN(invalid_utf8_fails_like_jansson);
    RUN(depth_limit_and_cycles);
    RUN(random_values_as_jansson_writes_them);
    return test_done();
}
