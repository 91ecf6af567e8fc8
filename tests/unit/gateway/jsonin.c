/*
 * Unit tests of gateway/jsonin.c: depth scan, strict JSON parsing and form decoding.
 */
#include <jansson.h>
#include "test.h"
#include "jsonin.h"

/* Parses a literal (its length taken from sizeof, so embedded NULs count) with limit 64. */
#define PARSE(lit, err) sff_jsonin_parse((lit), sizeof(lit) - 1, 64, (err), sizeof(err))

/* Whether parsing lit fails with exactly message msg. */
static int refuses(const char *text, size_t len, int depth, const char *msg)
{
    char err[256] = "";
    json_t *v = sff_jsonin_parse(text, len, depth, err, sizeof(err));
    if (v != NULL) {
        fprintf(stderr, "  accepted: %.*s\n", (int)len, text);
        json_decref(v);
        return 0;
    }
    if (msg != NULL && strcmp(err, msg) != 0) {
        fprintf(stderr, "  message \"%s\", expected \"%s\"\n", err, msg);
        return 0;
    }
    return 1;
}
#define REFUSES(lit, msg) refuses((lit), sizeof(lit) - 1, 64, (msg))

TEST(depth_counts_nesting)
{
    CHECK_INT(sff_jsonin_depth("1", 1, 64), 0);
    CHECK_INT(sff_jsonin_depth("[]", 2, 64), 1);
    CHECK_INT(sff_jsonin_depth("[[1],{\"a\":{}}]", 14, 64), 3);
    CHECK_INT(sff_jsonin_depth("[1][2][3]", 9, 64), 1);
    CHECK_INT(sff_jsonin_depth("", 0, 64), 0);
}

TEST(depth_ignores_brackets_in_strings)
{
    const char *s = "[\"[[[{{{\",\"\\\"[[[\",\"\\\\\",[1]]";
    CHECK_INT(sff_jsonin_depth(s, strlen(s), 64), 2);
    /* An escaped backslash ends the escape: the quote after it closes the string. */
    s = "[\"\\\\\"[[]]]";
    CHECK_INT(sff_jsonin_depth(s, strlen(s), 64), 3);
    /* An unterminated string hides everything after it. */
    s = "[\"[[[[";
    CHECK_INT(sff_jsonin_depth(s, strlen(s), 64), 1);
    /* A backslash as the very last byte does not read past the end. */
    s = "\"\\";
    CHECK_INT(sff_jsonin_depth(s, strlen(s), 64), 0);
}

TEST(depth_stops_at_limit)
{
    static char deep[100001];
    memset(deep, '[', sizeof(deep) - 1);
    CHECK_INT(sff_jsonin_depth(deep, sizeof(deep) - 1, 64), 65);
    CHECK_INT(sff_jsonin_depth(deep, 64, 64), 64);
    CHECK_INT(sff_jsonin_depth(deep, 65, 64), 65);
    CHECK_INT(sff_jsonin_depth("]]]][", 5, 64), 1);
}

TEST(parses_values_of_any_type)
{
    char err[128];
    json_t *v;

    CHECK((v = PARSE("{\"a\":[1,2.5,\"x\",null,true]}", err)) != NULL && json_is_object(v));
    json_decref(v);
    CHECK((v = PARSE(" 42 ", err)) != NULL && json_integer_value(v) == 42);
    json_decref(v);
    CHECK((v = PARSE("\"h\\u00e9\"", err)) != NULL && strcmp(json_string_value(v), "h\xc3\xa9") == 0);
    json_decref(v);
    CHECK((v = PARSE("null", err)) != NULL && json_is_null(v));
    json_decref(v);
    /* A surrogate pair escape is one character. */
    CHECK((v = PARSE("\"\\ud83d\\ude00\"", err)) != NULL && strcmp(json_string_value(v), "\xf0\x9f\x98\x80") == 0);
    json_decref(v);
}

TEST(refuses_depth_before_parsing)
{
    static char deep[200001];
    for (size_t i = 0; i < 100000; i++) {
        deep[i] = '[';
        deep[200000 - 1 - i] = ']';
    }
    CHECK(refuses(deep, 200000, 64, "nesting deeper than 64"));
    CHECK(refuses("[[[1]]]", 7, 2, "nesting deeper than 2"));
    char err[64];
    json_t *v = sff_jsonin_parse("[[[1]]]", 7, 3, err, sizeof(err));
    CHECK(v != NULL);
    json_decref(v);
}

TEST(refuses_duplicate_keys)
{
    CHECK(REFUSES("{\"a\":1,\"a\":2}", "duplicate key \"a\""));
    CHECK(REFUSES("{\"x\":{\"b\\\"c\":1, \"b\\\"c\" : 2}}", "duplicate key \"b\\\"c\""));
    /* The same key written with different escapes is the same key. */
    CHECK(REFUSES("{\"\xc3\xa9\":1,\"\\u00e9\":2}", "duplicate key \"\xc3\xa9\""));
    CHECK(REFUSES("{\"\\\\\":1,\"\\\\\":2}", "duplicate key \"\\\\\""));
    /* A long key is shortened in the message. */
    CHECK(REFUSES("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1,\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":2}",
                  "duplicate key \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\""));
    /* Keys in different objects do not clash. */
    char err[64];
    json_t *v = PARSE("[{\"a\":1},{\"a\":2}]", err);
    CHECK(v != NULL);
    json_decref(v);
}

TEST(refuses_invalid_utf8)
{
    CHECK(REFUSES("\"\xc0\xaf\"", "invalid UTF-8"));         /* overlong "/" */
    CHECK(REFUSES("\"\xe0\x80\xaf\"", "invalid UTF-8"));     /* overlong, 3 bytes */
    CHECK(REFUSES("\"\xf0\x80\x80\xaf\"", "invalid UTF-8")); /* overlong, 4 bytes */
    CHECK(REFUSES("\"\xed\xa0\x80\"", "invalid UTF-8"));     /* U+D800 encoded */
    CHECK(REFUSES("\"\xed\xbf\xbf\"", "invalid UTF-8"));     /* U+DFFF encoded */
    CHECK(REFUSES("\"\xf4\x90\x80\x80\"", "invalid UTF-8")); /* above U+10FFFF */
    CHECK(REFUSES("\"\xf5\x80\x80\x80\"", "invalid UTF-8"));
    CHECK(REFUSES("\"\xff\"", "invalid UTF-8"));
    CHECK(REFUSES("\"\xfe\"", "invalid UTF-8"));
    CHECK(REFUSES("\"\x80\"", "invalid UTF-8")); /* lone continuation byte */
    CHECK(REFUSES("\"\xe2\x82\"", "invalid UTF-8"));
    CHECK(REFUSES("\"\xe2\x82", "invalid UTF-8"));
    CHECK(REFUSES("{\"\xc3\":1}", "invalid UTF-8"));
    /* The largest code points of each length are fine. */
    char err[64];
    json_t *v = PARSE("\"\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", err);
    CHECK(v != NULL);
    json_decref(v);
}

TEST(refuses_bad_escapes_and_nul)
{
    CHECK(REFUSES("\"\\ud800\"", "invalid Unicode escape at line 1 column 8"));
    CHECK(REFUSES("\"\\udc00\"", "invalid Unicode escape at line 1 column 8"));
    CHECK(REFUSES("\"\\ud800\\u0041\"", NULL));
    CHECK(REFUSES("\"\\u0000\"", "\\u0000 is not allowed at line 1 column 8"));
    CHECK(REFUSES("{\"a\\u0000\":1}", NULL));
    CHECK(REFUSES("\"a\0b\"", "NUL byte in input"));
    CHECK(REFUSES("1\0", "NUL byte in input"));
    CHECK(REFUSES("\"a\tb\"", "unescaped control character at line 1 column 2"));
    CHECK(REFUSES("\"\\x\"", "syntax error at line 1 column 3"));
}

TEST(refuses_bad_syntax)
{
    CHECK(REFUSES("", "empty input"));
    CHECK(REFUSES(" \n\t", "empty input"));
    CHECK(REFUSES("[1,2,]", "syntax error at line 1 column 6"));
    CHECK(REFUSES("[1,\n 2,\n x]", "syntax error at line 3 column 2"));
    CHECK(REFUSES("{\"a\":1", "unexpected end of input"));
    CHECK(REFUSES("\"abc", "unexpected end of input"));
    CHECK(REFUSES("1 2", "unexpected data after the value at line 1 column 3"));
    CHECK(REFUSES("{} {}", "unexpected data after the value at line 1 column 4"));
    CHECK(REFUSES("01", NULL));
    CHECK(REFUSES("NaN", NULL));
    CHECK(REFUSES("123456789012345678901234567890", "number out of range at line 1 column 30"));
    CHECK(REFUSES("1e400", "number out of range at line 1 column 5"));
    CHECK(refuses(NULL, 0, 64, "empty input"));
}

TEST(messages_do_not_echo_input)
{
    char err[256];
    json_t *v = PARSE("{\"secret-token-value\" 1}", err);
    CHECK(v == NULL);
    CHECK(strstr(err, "secret") == NULL);
    v = PARSE("[\"secret-token-value\" x]", err);
    CHECK(v == NULL);
    CHECK(strstr(err, "secret") == NULL);
}

TEST(truncates_messages_to_errlen)
{
    char err[8];
    json_t *v = sff_jsonin_parse("[1,2,]", 6, 64, err, sizeof(err));
    CHECK(v == NULL);
    CHECK_STR(err, "syntax ");
    CHECK(sff_jsonin_parse("[", 1, 64, NULL, 0) == NULL);
}

/* Parses a form into a new object; NULL (with err) on failure. */
static json_t *form(const char *text, char *err, size_t errlen)
{
    json_t *obj = json_object();
    if (sff_jsonin_parse_form(obj, text, strlen(text), err, errlen) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

TEST(form_decodes_pairs)
{
    char err[128];
    json_t *obj = form("a=1&b=hello+world&c=%41%42%2b%26%3D&&d&e=&=v&f=x=y", err, sizeof(err));
    CHECK(obj != NULL);
    if (obj == NULL)
        return;
    CHECK_STR(json_string_value(json_object_get(obj, "a")), "1");
    CHECK_STR(json_string_value(json_object_get(obj, "b")), "hello world");
    CHECK_STR(json_string_value(json_object_get(obj, "c")), "AB+&=");
    CHECK_STR(json_string_value(json_object_get(obj, "d")), "");
    CHECK_STR(json_string_value(json_object_get(obj, "e")), "");
    CHECK_STR(json_string_value(json_object_get(obj, "")), "v");
    CHECK_STR(json_string_value(json_object_get(obj, "f")), "x=y");
    CHECK_INT(json_object_size(obj), 7);
    json_decref(obj);
}

TEST(form_keys_are_decoded_and_last_wins)
{
    char err[128];
    json_t *obj = form("a%20b=1&x=first&x=second&a+b=2&%C3%A9=%E2%82%AC", err, sizeof(err));
    CHECK(obj != NULL);
    if (obj == NULL)
        return;
    CHECK_STR(json_string_value(json_object_get(obj, "a b")), "2");
    CHECK_STR(json_string_value(json_object_get(obj, "x")), "second");
    CHECK_STR(json_string_value(json_object_get(obj, "\xc3\xa9")), "\xe2\x82\xac");
    CHECK_INT(json_object_size(obj), 3);
    json_decref(obj);
}

TEST(form_only_splits_on_ampersand)
{
    char err[128];
    json_t *obj = form("a=1;b=2", err, sizeof(err));
    CHECK(obj != NULL);
    if (obj == NULL)
        return;
    CHECK_STR(json_string_value(json_object_get(obj, "a")), "1;b=2");
    CHECK_INT(json_object_size(obj), 1);
    json_decref(obj);
}

TEST(form_empty_and_existing_members)
{
    char err[128];
    json_t *obj = json_object();
    json_object_set_new(obj, "id", json_string("7"));
    json_object_set_new(obj, "keep", json_true());
    CHECK_INT(sff_jsonin_parse_form(obj, "", 0, err, sizeof(err)), 0);
    CHECK_INT(sff_jsonin_parse_form(obj, NULL, 0, err, sizeof(err)), 0);
    CHECK_INT(sff_jsonin_parse_form(obj, "&&&", 3, err, sizeof(err)), 0);
    CHECK_INT(json_object_size(obj), 2);
    CHECK_INT(sff_jsonin_parse_form(obj, "id=8", 4, err, sizeof(err)), 0);
    CHECK_STR(json_string_value(json_object_get(obj, "id")), "8");
    /* Only len bytes are read. */
    CHECK_INT(sff_jsonin_parse_form(obj, "n=12345", 4, err, sizeof(err)), 0);
    CHECK_STR(json_string_value(json_object_get(obj, "n")), "12");
    /* A failed parse leaves obj as it was. */
    CHECK_INT(sff_jsonin_parse_form(obj, "new=1&bad=%zz", 13, err, sizeof(err)), -1);
    CHECK(json_object_get(obj, "new") == NULL);
    CHECK_INT(json_object_size(obj), 3);
    json_decref(obj);
}

static int form_refuses(const char *text, const char *msg)
{
    char err[128] = "";
    json_t *obj = form(text, err, sizeof(err));
    if (obj != NULL) {
        fprintf(stderr, "  accepted form: %s\n", text);
        json_decref(obj);
        return 0;
    }
    if (strcmp(err, msg) != 0) {
        fprintf(stderr, "  message \"%s\", expected \"%s\"\n", err, msg);
        return 0;
    }
    return 1;
}

TEST(form_refuses_malformed)
{
    CHECK(form_refuses("a=%", "malformed percent escape in form data"));
    CHECK(form_refuses("a=%4", "malformed percent escape in form data"));
    CHECK(form_refuses("a=%4g", "malformed percent escape in form data"));
    CHECK(form_refuses("a=%g4", "malformed percent escape in form data"));
    CHECK(form_refuses("%=1", "malformed percent escape in form data"));
    CHECK(form_refuses("a=%00", "NUL in form data"));
    CHECK(form_refuses("%00=1", "NUL in form data"));
    CHECK(form_refuses("a=%C3", "invalid UTF-8 in form data"));
    CHECK(form_refuses("a=%C0%AF", "invalid UTF-8 in form data"));
    CHECK(form_refuses("a=%ED%A0%80", "invalid UTF-8 in form data"));
    CHECK(form_refuses("a=%F4%90%80%80", "invalid UTF-8 in form data"));
    CHECK(form_refuses("a=%F5%80%80%80", "invalid UTF-8 in form data"));
    CHECK(form_refuses("a=%FF", "invalid UTF-8 in form data"));
    CHECK(form_refuses("a=\xff", "invalid UTF-8 in form data"));
    CHECK(form_refuses("%E9=1", "invalid UTF-8 in form data"));
    /* A multi-byte character split across escapes and raw bytes is still one character. */
    char err[64];
    json_t *obj = form("a=%C3\xa9", err, sizeof(err));
    CHECK(obj != NULL && strcmp(json_string_value(json_object_get(obj, "a")), "\xc3\xa9") == 0);
    json_decref(obj);
}

TEST(form_embedded_nul_byte_is_refused)
{
    char err[64];
    json_t *obj = json_object();
    CHECK_INT(sff_jsonin_parse_form(obj, "a=b\0c", 5, err, sizeof(err)), -1);
    CHECK_STR(err, "NUL in form data");
    json_decref(obj);
    json_t *arr = json_array();
    CHECK_INT(sff_jsonin_parse_form(arr, "a=b", 3, err, sizeof(err)), -1);
    json_decref(arr);
}

int main(void)
{
    RUN(depth_counts_nesting);
    RUN(depth_ignores_brackets_in_strings);
    RUN(depth_stops_at_limit);
    RUN(parses_values_of_any_type);
    RUN(refuses_depth_before_parsing);
    RUN(refuses_duplicate_keys);
    RUN(refuses_invalid_utf8);
    RUN(refuses_bad_escapes_and_nul);
    RUN(refuses_bad_syntax);
    RUN(messages_do_not_echo_input);
    RUN(truncates_messages_to_errlen);
    RUN(form_decodes_pairs);
    RUN(form_keys_are_decoded_and_last_wins);
    RUN(form_only_splits_on_ampersand);
    RUN(form_empty_and_existing_members);
    RUN(form_refuses_malformed);
    RUN(form_embedded_nul_byte_is_refused);
    return test_done();
}
