/* Inputs at the edge: body limit, content types, strict JSON, forms, merged input and schema
 * validation with details, over HTTP/1.1 and h2c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/setup.h"
#include "test.h"

static tc_server_t srv;

static int post(tc_proto_t proto, const char *path, const char *ctype, const char *body, size_t len, tc_response_t *res)
{
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "Content-Type: %s\r\n", ctype);
    return tc_request(proto, srv.port, "POST", path, ctype != NULL ? hdr : NULL, body, len, res);
}

static const char *code_of(const tc_response_t *res)
{
    static char code[64];
    json_t *j = tc_json(res->body);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(code, sizeof(code), "%s", c != NULL ? c : "(none)");
    json_decref(j);
    return code;
}

static void expect(tc_proto_t proto, const char *path, const char *ctype, const char *body, size_t len, int status,
                   const char *code)
{
    tc_response_t res;
    CHECK(post(proto, path, ctype, body, len, &res) == 0);
    if (res.status != status || (code != NULL && strcmp(code_of(&res), code) != 0))
        fprintf(stderr, "  body %.60s -> %d %s\n", body, res.status, res.body);
    CHECK_INT(res.status, status);
    if (code != NULL)
        CHECK_STR(code_of(&res), code);
    tc_response_free(&res);
}

TEST(valid_json_is_echoed)
{
    tc_response_t res;
    const char *b = "{\"message\":\"hi\",\"tags\":[\"a-1\"],\"priority\":3,\"email\":\"a@b.example\"}";
    CHECK(post(TC_HTTP1, "/examples/echo", "application/json; charset=utf-8", b, strlen(b), &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_STR(res.body, b);
    tc_response_free(&res);
    CHECK(post(TC_H2C, "/examples/echo", "application/json", b, strlen(b), &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_STR(res.body, b);
    tc_response_free(&res);
}

TEST(schema_failures_list_every_path)
{
    tc_response_t res;
    const char *b = "{\"tags\":[\"ok\",\"NOT OK\"],\"priority\":9,\"email\":\"nope\",\"extra\":1}";
    CHECK(post(TC_HTTP1, "/examples/echo", "application/json", b, strlen(b), &res) == 0);
    CHECK_INT(res.status, 400);
    CHECK_STR(code_of(&res), "validation_failed");
    json_t *j = tc_json(res.body), *details = json_object_get(json_object_get(j, "error"), "details");
    const char *want[] = {"/message", "/tags/1", "/priority", "/email", "/extra"};
    for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        int found = 0;
        size_t i;
        json_t *d;
        json_array_foreach(details, i, d)
        {
            const char *p = json_string_value(json_object_get(d, "path"));
            if (p != NULL && strcmp(p, want[w]) == 0 && json_string_length(json_object_get(d, "message")) > 0)
                found = 1;
        }
        if (!found)
            fprintf(stderr, "  no detail for %s in %s\n", want[w], res.body);
        CHECK(found);
    }
    json_decref(j);
    tc_response_free(&res);
}

TEST(details_are_capped)
{
    char body[8192] = "{\"message\":\"m\",\"tags\":[";
    for (int i = 0; i < 80; i++)
        strcat(body, i ? ",\"BAD\"" : "\"BAD\"");
    strcat(body, "]}");
    tc_response_t res;
    CHECK(post(TC_HTTP1, "/examples/echo", "application/json", body, strlen(body), &res) == 0);
    CHECK_INT(res.status, 400);
    json_t *j = tc_json(res.body), *details = json_object_get(json_object_get(j, "error"), "details");
    CHECK_INT(json_array_size(details), 51);
    const char *last = json_string_value(json_object_get(json_array_get(details, 50), "message"));
    CHECK(last != NULL && strstr(last, "more failures") != NULL);
    json_decref(j);
    tc_response_free(&res);
}

TEST(query_parameters_are_coerced_by_the_schema)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/examples/sleep?ms=5", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_STR(res.body, "{\"slept_ms\":5}");
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/examples/sleep?ms=five", NULL, &res) == 0);
    CHECK_INT(res.status, 400);
    CHECK(strstr(res.body, "\"/ms\"") != NULL);
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/examples/sleep?ms=99999", NULL, &res) == 0);
    CHECK_INT(res.status, 400);
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/examples/sleep", NULL, &res) == 0);
    CHECK_INT(res.status, 400);
    CHECK(strstr(res.body, "is required") != NULL);
    tc_response_free(&res);
}

TEST(body_members_override_query_and_path)
{
    tc_response_t res;
    const char *b = "{\"q\":\"from-body\",\"n\":1}";
    CHECK(post(TC_HTTP1, "/fx/echo?q=from-query&k=v", "application/json", b, strlen(b), &res) == 0);
    CHECK_INT(res.status, 200);
    json_t *j = tc_json(res.body), *in = json_object_get(j, "input");
    CHECK_STR(json_string_value(json_object_get(in, "q")), "from-body");
    CHECK_STR(json_string_value(json_object_get(in, "k")), "v");
    CHECK_INT(json_integer_value(json_object_get(in, "n")), 1);
    json_decref(j);
    tc_response_free(&res);
}

TEST(forms_are_input_too)
{
    tc_response_t res;
    const char *b = "name=Ada+Lovelace&city=L%C3%B6ndon&empty=";
    CHECK(post(TC_HTTP1, "/fx/echo", "application/x-www-form-urlencoded", b, strlen(b), &res) == 0);
    CHECK_INT(res.status, 200);
    json_t *j = tc_json(res.body), *in = json_object_get(j, "input");
    CHECK_STR(json_string_value(json_object_get(in, "name")), "Ada Lovelace");
    CHECK_STR(json_string_value(json_object_get(in, "city")), "L\xc3\xb6ndon");
    CHECK_STR(json_string_value(json_object_get(in, "empty")), "");
    json_decref(j);
    tc_response_free(&res);
    expect(TC_HTTP1, "/fx/echo", "application/x-www-form-urlencoded", "a=%zz", 5, 400, "bad_request");
}

TEST(bad_json_is_400)
{
    expect(TC_HTTP1, "/fx/echo", "application/json", "{\"a\":", 5, 400, "invalid_json");
    expect(TC_HTTP1, "/fx/echo", "application/json", "{\"a\":1,\"a\":2}", 13, 400, "invalid_json");
    expect(TC_HTTP1, "/fx/echo", "application/json", "{\"a\":\"\xc3\x28\"}", 10, 400, "invalid_json");
    expect(TC_HTTP1, "/fx/echo", "application/json", "{\"a\":\"\xed\xa0\x80\"}", 11, 400, "invalid_json");
    expect(TC_HTTP1, "/fx/echo", "application/json", "{\"a\":\"\\u0000\"}", 14, 400, "invalid_json");
    expect(TC_HTTP1, "/fx/echo", "application/json", "[1,2]", 5, 400, "invalid_json");
    expect(TC_H2C, "/fx/echo", "application/json", "{\"a\":1} x", 9, 400, "invalid_json");
}

TEST(nesting_limit)
{
    char deep[4096];
    size_t n = 0;
    for (int i = 0; i < 64; i++)
        deep[n++] = '[';
    for (int i = 0; i < 64; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    char body[4200];
    snprintf(body, sizeof(body), "{\"a\":%s}", deep); /* 65 levels */
    expect(TC_HTTP1, "/fx/echo", "application/json", body, strlen(body), 400, "invalid_json");
    snprintf(body, sizeof(body), "{\"a\":%.*s%.*s}", 62, deep, 62, deep + 64); /* 63 levels */
    expect(TC_HTTP1, "/fx/echo", "application/json", body, strlen(body), 200, NULL);
    /* jansson's own maximum (2048) would crash a coroutine stack: refused before parsing */
    char *huge = malloc(60001);
    memset(huge, '[', 30000);
    memset(huge + 30000, ']', 30000);
    huge[60000] = '\0';
    expect(TC_HTTP1, "/fx/echo", "application/json", huge, 60000, 400, "invalid_json");
    free(huge);
}

TEST(content_types)
{
    expect(TC_HTTP1, "/fx/echo", "text/plain", "hello", 5, 415, "unsupported_media_type");
    expect(TC_HTTP1, "/fx/echo", NULL, "{}", 2, 415, "unsupported_media_type");
    expect(TC_HTTP1, "/fx/echo", "application/merge-patch+json", "{\"x\":1}", 7, 200, NULL);
    /* an empty body needs no content type */
    expect(TC_HTTP1, "/fx/echo", NULL, "", 0, 200, NULL);
}

TEST(body_limit_is_413)
{
    size_t big = 64 * 1024 + 10;
    char *b = malloc(big + 1);
    b[0] = '{';
    b[1] = '"';
    b[2] = 'a';
    b[3] = '"';
    b[4] = ':';
    b[5] = '"';
    memset(b + 6, 'x', big - 8);
    b[big - 2] = '"';
    b[big - 1] = '}';
    b[big] = '\0';
    tc_response_t res;
    CHECK(post(TC_HTTP1, "/fx/echo", "application/json", b, big, &res) == 0);
    CHECK_INT(res.status, 413);
    tc_response_free(&res);
    CHECK(post(TC_H2C, "/fx/echo", "application/json", b, big, &res) == 0);
    CHECK_INT(res.status, 413);
    tc_response_free(&res);
    /* over twice the limit h2o refuses it by itself: still the envelope on HTTP/1.1 */
    char *huge = malloc(200 * 1024);
    memset(huge, 'x', 200 * 1024);
    CHECK(post(TC_HTTP1, "/fx/echo", "application/json", huge, 200 * 1024, &res) == 0);
    CHECK_INT(res.status, 413);
    CHECK_STR(code_of(&res), "payload_too_large");
    CHECK(tc_header(&res, "x-request-id") != NULL);
    tc_response_free(&res);
    free(huge);
    /* just under the limit is fine */
    size_t ok = 64 * 1024 - 100;
    b[ok - 2] = '"';
    b[ok - 1] = '}';
    CHECK(post(TC_HTTP1, "/fx/echo", "application/json", b, ok, &res) == 0);
    CHECK_INT(res.status, 200);
    tc_response_free(&res);
    free(b);
}

TEST(bad_path_parameters_are_400)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/fx/params/%FF%FE/b/c", NULL, &res) == 0);
    CHECK_INT(res.status, 400);
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/fx/params/a/b/c?x=%ZZ", NULL, &res) == 0);
    CHECK_INT(res.status, 400);
    tc_response_free(&res);
}

int main(void)
{
    char base[] = "/tmp/sff-it30-XXXXXX", fdir[512], env_fn[700];
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0)
        return 1;
    if (mkdtemp(base) == NULL || tc_functions_dir(base, fdir, sizeof(fdir)) != 0)
        return 1;
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    const char *env[] = {env_fn, "SFF_WORKERS=1", "SFF_SCHEMAS_DIR=schemas", "SFF_MAX_BODY=64k", NULL};
    if (tc_server_start(&srv, env) != 0)
        return 1;
    RUN(valid_json_is_echoed);
    RUN(schema_failures_list_every_path);
    RUN(details_are_capped);
    RUN(query_parameters_are_coerced_by_the_schema);
    RUN(body_members_override_query_and_path);
    RUN(forms_are_input_too);
    RUN(bad_json_is_400);
    RUN(nesting_limit);
    RUN(content_types);
    RUN(body_limit_is_413);
    RUN(bad_path_parameters_are_400);
    tc_server_stop(&srv);
    tc_sh("rm -rf '%s'", base);
    return test_done();
}
