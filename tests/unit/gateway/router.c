#include <stdio.h>
#include <string.h>
#include "test.h"
#include "router.h"

static char err[256];

/* Distinct data pointers for routes. */
static int d[64];

static sff_route_params_t params;
static unsigned allowed;

static void *match(const sff_router_t *r, const char *method, const char *path)
{
    return sff_router_match(r, method, strlen(method), path, strlen(path), &params, &allowed);
}

static int add(sff_router_t *r, const char *method, const char *tmpl, void *data)
{
    err[0] = '\0';
    return sff_router_add(r, method, tmpl, data, err, sizeof(err));
}

/* The value of the parameter named name in the last match, as a string in a static buffer, or NULL. */
static const char *param(const char *name)
{
    static char buf[256];
    for (size_t i = 0; i < params.n; ++i) {
        if (params.p[i].name_len == strlen(name) && memcmp(params.p[i].name, name, params.p[i].name_len) == 0) {
            snprintf(buf, sizeof(buf), "%.*s", (int)params.p[i].value_len, params.p[i].value);
            return buf;
        }
    }
    return NULL;
}

static const char *allow_str(unsigned bits)
{
    static char buf[128];
    sff_router_allow_string(bits, buf, sizeof(buf));
    return buf;
}

TEST(method_bits)
{
    CHECK_INT(sff_router_method_bit("GET", 3), SFF_M_GET);
    CHECK_INT(sff_router_method_bit("HEAD", 4), SFF_M_HEAD);
    CHECK_INT(sff_router_method_bit("POST", 4), SFF_M_POST);
    CHECK_INT(sff_router_method_bit("PUT", 3), SFF_M_PUT);
    CHECK_INT(sff_router_method_bit("PATCH", 5), SFF_M_PATCH);
    CHECK_INT(sff_router_method_bit("DELETE", 6), SFF_M_DELETE);
    CHECK_INT(sff_router_method_bit("OPTIONS", 7), SFF_M_OPTIONS);
    CHECK_INT(sff_router_method_bit("get", 3), 0);
    CHECK_INT(sff_router_method_bit("GETX", 4), 0);
    CHECK_INT(sff_router_method_bit("GETX", 3), SFF_M_GET);
    CHECK_INT(sff_router_method_bit("TRACE", 5), 0);
    CHECK_INT(sff_router_method_bit("", 0), 0);
}

TEST(allow_string)
{
    char buf[64];
    CHECK_INT(sff_router_allow_string(0, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "");
    CHECK_STR(allow_str(SFF_M_GET), "GET");
    CHECK_STR(allow_str(SFF_M_OPTIONS | SFF_M_POST | SFF_M_GET | SFF_M_HEAD), "GET, HEAD, POST, OPTIONS");
    CHECK_INT(sff_router_allow_string(0x7f, buf, sizeof(buf)), strlen("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"));
    CHECK_STR(buf, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    CHECK_STR(allow_str(SFF_M_DELETE | SFF_M_PATCH | SFF_M_PUT), "PUT, PATCH, DELETE");
    CHECK_STR(allow_str(0x80 | SFF_M_GET), "GET");
    /* A small buffer gets a truncated, NUL-terminated string. */
    CHECK_INT(sff_router_allow_string(SFF_M_GET | SFF_M_HEAD, buf, 6), 5);
    CHECK_STR(buf, "GET, ");
    CHECK_INT(sff_router_allow_string(SFF_M_GET, buf, 0), 0);
}

TEST(literal_routes)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/", &d[0]) == 0);
    CHECK(add(r, "GET", "/todos", &d[1]) == 0);
    CHECK(add(r, "GET", "/todos/done", &d[2]) == 0);
    CHECK(add(r, "POST", "/todos", &d[3]) == 0);
    CHECK(add(r, "GET", "/users", &d[4]) == 0);
    CHECK(match(r, "GET", "/") == &d[0]);
    CHECK_INT(params.n, 0);
    CHECK(match(r, "GET", "/todos") == &d[1]);
    CHECK(match(r, "GET", "/todos/done") == &d[2]);
    CHECK(match(r, "POST", "/todos") == &d[3]);
    CHECK(match(r, "GET", "/users") == &d[4]);
    CHECK(match(r, "GET", "/todo") == NULL);
    CHECK_INT(allowed, 0);
    CHECK(match(r, "GET", "/todoss") == NULL);
    CHECK(match(r, "GET", "/todos/done/x") == NULL);
    CHECK(match(r, "GET", "/TODOS") == NULL);
    CHECK(match(r, "GET", "") == NULL);
    CHECK(match(r, "GET", "todos") == NULL);
    /* The path length is honoured; the bytes after it are not looked at. */
    CHECK(sff_router_match(r, "GET", 3, "/todos/done", 6, &params, &allowed) == &d[1]);
    /* NULL params and allowed are allowed. */
    CHECK(sff_router_match(r, "GET", 3, "/todos", 6, NULL, NULL) == &d[1]);
    sff_router_destroy(r);
}

TEST(many_literals_sorted)
{
    sff_router_t *r = sff_router_create();
    char tmpl[32];
    for (int i = 0; i < 50; ++i) {
        snprintf(tmpl, sizeof(tmpl), "/r%d", (i * 37) % 50);
        CHECK(add(r, "GET", tmpl, &d[(i * 37) % 50]) == 0);
    }
    for (int i = 0; i < 50; ++i) {
        snprintf(tmpl, sizeof(tmpl), "/r%d", i);
        CHECK(match(r, "GET", tmpl) == &d[i]);
    }
    CHECK(match(r, "GET", "/r50") == NULL);
    CHECK(match(r, "GET", "/r") == NULL);
    sff_router_destroy(r);
}

TEST(single_param)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/todos/:id", &d[0]) == 0);
    CHECK(match(r, "GET", "/todos/42") == &d[0]);
    CHECK_INT(params.n, 1);
    CHECK_STR(param("id"), "42");
    CHECK_INT(params.p[0].name_len, 2);
    /* Values are raw and point into the path. */
    const char *path = "/todos/a%20b";
    CHECK(sff_router_match(r, "GET", 3, path, strlen(path), &params, &allowed) == &d[0]);
    CHECK(params.p[0].value == path + 7);
    CHECK_INT(params.p[0].value_len, 5);
    CHECK(match(r, "GET", "/todos") == NULL);
    CHECK(match(r, "GET", "/todos/") == NULL);
    CHECK(match(r, "GET", "/todos/42/x") == NULL);
    sff_router_destroy(r);
}

TEST(multiple_params)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/users/:user/posts/:post/comments/:c", &d[0]) == 0);
    CHECK(add(r, "PUT", "/users/:u/posts/:p/comments/:comment_id", &d[1]) == 0);
    CHECK(match(r, "GET", "/users/ann/posts/7/comments/99") == &d[0]);
    CHECK_INT(params.n, 3);
    CHECK_STR(param("user"), "ann");
    CHECK_STR(param("post"), "7");
    CHECK_STR(param("c"), "99");
    /* Each route keeps its own names for the same positions. */
    CHECK(match(r, "PUT", "/users/ann/posts/7/comments/99") == &d[1]);
    CHECK_INT(params.n, 3);
    CHECK_STR(param("u"), "ann");
    CHECK_STR(param("p"), "7");
    CHECK_STR(param("comment_id"), "99");
    CHECK(param("user") == NULL);
    sff_router_destroy(r);
}

TEST(wildcard)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/static/*", &d[0]) == 0);
    CHECK(add(r, "GET", "/files/:bucket/*", &d[1]) == 0);
    CHECK(match(r, "GET", "/static/a/b/c.css") == &d[0]);
    CHECK_INT(params.n, 1);
    CHECK_STR(params.p[0].name, "*");
    CHECK_STR(param("*"), "a/b/c.css");
    CHECK(match(r, "GET", "/static/x") == &d[0]);
    CHECK_STR(param("*"), "x");
    /* The rest may be empty, or hold empty segments. */
    CHECK(match(r, "GET", "/static/") == &d[0]);
    CHECK_STR(param("*"), "");
    CHECK(match(r, "GET", "/static//x//") == &d[0]);
    CHECK_STR(param("*"), "/x//");
    /* "*" needs the "/" after the segment before it. */
    CHECK(match(r, "GET", "/static") == NULL);
    CHECK(match(r, "GET", "/staticx") == NULL);
    CHECK(match(r, "GET", "/files/b1/dir/f.txt") == &d[1]);
    CHECK_INT(params.n, 2);
    CHECK_STR(param("bucket"), "b1");
    CHECK_STR(param("*"), "dir/f.txt");
    CHECK(match(r, "GET", "/files/b1/") == &d[1]);
    CHECK_STR(param("*"), "");
    CHECK(match(r, "GET", "/files/b1") == NULL);
    CHECK(match(r, "GET", "/files//x") == NULL);
    sff_router_destroy(r);
}

TEST(root_wildcard)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/*", &d[0]) == 0);
    CHECK(match(r, "GET", "/") == &d[0]);
    CHECK_STR(param("*"), "");
    CHECK(match(r, "GET", "/index.html") == &d[0]);
    CHECK_STR(param("*"), "index.html");
    CHECK(match(r, "GET", "//") == &d[0]);
    CHECK_STR(param("*"), "/");
    /* The root template wins over the root "*" for "/". */
    CHECK(add(r, "GET", "/", &d[1]) == 0);
    CHECK(match(r, "GET", "/") == &d[1]);
    CHECK_INT(params.n, 0);
    CHECK(match(r, "GET", "/a") == &d[0]);
    sff_router_destroy(r);
}

TEST(precedence)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/todos/*", &d[0]) == 0);
    CHECK(add(r, "GET", "/todos/:id", &d[1]) == 0);
    CHECK(add(r, "GET", "/todos/new", &d[2]) == 0);
    CHECK(match(r, "GET", "/todos/new") == &d[2]);
    CHECK_INT(params.n, 0);
    CHECK(match(r, "GET", "/todos/7") == &d[1]);
    CHECK_STR(param("id"), "7");
    CHECK(match(r, "GET", "/todos/7/x") == &d[0]);
    CHECK_STR(param("*"), "7/x");
    CHECK(match(r, "GET", "/todos/") == &d[0]);
    CHECK(match(r, "GET", "/todos/new/") == &d[0]);
    CHECK_STR(param("*"), "new/");
    sff_router_destroy(r);
}

TEST(backtracking)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/a/b/c", &d[0]) == 0);
    CHECK(add(r, "GET", "/a/:x/d", &d[1]) == 0);
    CHECK(add(r, "GET", "/a/:x/:y/e", &d[2]) == 0);
    CHECK(add(r, "GET", "/a/*", &d[3]) == 0);
    CHECK(add(r, "GET", "/a/b/:z/f", &d[4]) == 0);
    CHECK(match(r, "GET", "/a/b/c") == &d[0]);
    CHECK_INT(params.n, 0);
    CHECK(match(r, "GET", "/a/b/d") == &d[1]);
    CHECK_INT(params.n, 1);
    CHECK_STR(param("x"), "b");
    CHECK(match(r, "GET", "/a/q/d") == &d[1]);
    CHECK_STR(param("x"), "q");
    /* Down /a/b/:z, back out, and on through /a/:x/:y. */
    CHECK(match(r, "GET", "/a/b/c/e") == &d[2]);
    CHECK_INT(params.n, 2);
    CHECK_STR(param("x"), "b");
    CHECK_STR(param("y"), "c");
    CHECK(match(r, "GET", "/a/b/c/f") == &d[4]);
    CHECK_INT(params.n, 1);
    CHECK_STR(param("z"), "c");
    /* Nothing deeper matches: back to the "*" at /a. */
    CHECK(match(r, "GET", "/a/b/c/g") == &d[3]);
    CHECK_INT(params.n, 1);
    CHECK_STR(param("*"), "b/c/g");
    CHECK(match(r, "GET", "/a/b") == &d[3]);
    CHECK_STR(param("*"), "b");
    CHECK(match(r, "GET", "/b") == NULL);
    CHECK_INT(allowed, 0);
    sff_router_destroy(r);
}

TEST(head_falls_back_to_get)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/a", &d[0]) == 0);
    CHECK(add(r, "GET", "/b", &d[1]) == 0);
    CHECK(add(r, "HEAD", "/b", &d[2]) == 0);
    CHECK(add(r, "POST", "/c", &d[3]) == 0);
    CHECK(match(r, "HEAD", "/a") == &d[0]);
    CHECK(match(r, "HEAD", "/b") == &d[2]);
    CHECK(match(r, "GET", "/b") == &d[1]);
    CHECK(match(r, "HEAD", "/c") == NULL);
    CHECK_INT(allowed, SFF_M_POST | SFF_M_OPTIONS);
    sff_router_destroy(r);
}

TEST(not_found_vs_method_not_allowed)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/todos", &d[0]) == 0);
    CHECK(add(r, "POST", "/todos", &d[1]) == 0);
    CHECK(add(r, "DELETE", "/todos/:id", &d[2]) == 0);
    CHECK(add(r, "PATCH", "/todos/:id", &d[3]) == 0);
    CHECK(match(r, "PUT", "/todos") == NULL);
    CHECK_INT(allowed, SFF_M_GET | SFF_M_HEAD | SFF_M_POST | SFF_M_OPTIONS);
    CHECK_STR(allow_str(allowed), "GET, HEAD, POST, OPTIONS");
    CHECK(match(r, "GET", "/todos/3") == NULL);
    CHECK_INT(allowed, SFF_M_PATCH | SFF_M_DELETE | SFF_M_OPTIONS);
    CHECK_STR(allow_str(allowed), "PATCH, DELETE, OPTIONS");
    /* OPTIONS has no route here: the gateway answers it with the Allow bits. */
    CHECK(match(r, "OPTIONS", "/todos") == NULL);
    CHECK_INT(allowed, SFF_M_GET | SFF_M_HEAD | SFF_M_POST | SFF_M_OPTIONS);
    /* An unknown method is a 405 on a known path, a 404 elsewhere. */
    CHECK(match(r, "BREW", "/todos") == NULL);
    CHECK_INT(allowed, SFF_M_GET | SFF_M_HEAD | SFF_M_POST | SFF_M_OPTIONS);
    CHECK(match(r, "BREW", "/nope") == NULL);
    CHECK_INT(allowed, 0);
    CHECK(match(r, "GET", "/nope") == NULL);
    CHECK_INT(allowed, 0);
    /* A node on the way that no template ends at is a 404. */
    CHECK(add(r, "GET", "/x/y", &d[4]) == 0);
    CHECK(match(r, "GET", "/x") == NULL);
    CHECK_INT(allowed, 0);
    /* On success allowed holds the matched node's bits. */
    CHECK(match(r, "GET", "/todos") == &d[0]);
    CHECK_INT(allowed, SFF_M_GET | SFF_M_HEAD | SFF_M_POST | SFF_M_OPTIONS);
    sff_router_destroy(r);
}

TEST(method_falls_through_to_lower_precedence)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "POST", "/files/upload", &d[0]) == 0);
    CHECK(add(r, "GET", "/files/*", &d[1]) == 0);
    CHECK(add(r, "PUT", "/files/:name", &d[2]) == 0);
    CHECK(match(r, "POST", "/files/upload") == &d[0]);
    CHECK(match(r, "GET", "/files/upload") == &d[1]);
    CHECK_STR(param("*"), "upload");
    CHECK(match(r, "PUT", "/files/upload") == &d[2]);
    CHECK_STR(param("name"), "upload");
    CHECK(match(r, "HEAD", "/files/upload") == &d[1]);
    /* The Allow bits of a 405 are every method some matching node has. */
    CHECK(match(r, "DELETE", "/files/upload") == NULL);
    CHECK_INT(allowed, SFF_M_GET | SFF_M_HEAD | SFF_M_POST | SFF_M_PUT | SFF_M_OPTIONS);
    CHECK(match(r, "DELETE", "/files/a/b") == NULL);
    CHECK_INT(allowed, SFF_M_GET | SFF_M_HEAD | SFF_M_OPTIONS);
    sff_router_destroy(r);
}

TEST(duplicates)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/a/:x", &d[0]) == 0);
    CHECK(add(r, "GET", "/a/:y", &d[1]) != 0);
    CHECK(strstr(err, "duplicate") != NULL);
    CHECK(add(r, "GET", "/a/:x", &d[1]) != 0);
    CHECK(add(r, "POST", "/a/:y", &d[2]) == 0);
    CHECK(add(r, "HEAD", "/a/:z", &d[3]) == 0);
    CHECK(add(r, "GET", "/", &d[4]) == 0);
    CHECK(add(r, "GET", "/", &d[5]) != 0);
    CHECK(add(r, "GET", "/s/*", &d[6]) == 0);
    CHECK(add(r, "GET", "/s/*", &d[7]) != 0);
    CHECK(add(r, "GET", "/s/:p", &d[8]) == 0);
    /* The first routes stay. */
    CHECK(match(r, "GET", "/a/1") == &d[0]);
    CHECK_STR(param("x"), "1");
    CHECK(match(r, "POST", "/a/1") == &d[2]);
    CHECK_STR(param("y"), "1");
    CHECK(match(r, "HEAD", "/a/1") == &d[3]);
    CHECK_STR(param("z"), "1");
    CHECK(match(r, "GET", "/") == &d[4]);
    sff_router_destroy(r);
}

TEST(invalid_templates)
{
    static const char *bad[] = {
        "",      "a",        "todos/x", "//",   "/a//b", "/a/",     "/a/b/", "/:",     "/:1x",     "/:a-b",
        "/:a.b", "/a/:x/:x", "/*/a",    "/a*",  "/*a",   "/a/**",   "/a/*/", "/a/*/b", "/.",       "/a/..",
        "/a b",  "/a\tb",    "/a\\b",   "/a?b", "/a#b",  "/a/:x y", "/:é",   "/a\x7f", "/:x/*/:y",
    };
    sff_router_t *r = sff_router_create();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        if (add(r, "GET", bad[i], &d[0]) == 0) {
            fprintf(stderr, "  accepted invalid template \"%s\"\n", bad[i]);
            CHECK(0);
        } else {
            CHECK(err[0] != '\0');
        }
    }
    CHECK(add(r, "GET", NULL, &d[0]) != 0);
    CHECK(add(r, "get", "/a", &d[0]) != 0);
    CHECK(strstr(err, "method") != NULL);
    CHECK(add(r, "TRACE", "/a", &d[0]) != 0);
    CHECK(add(r, NULL, "/a", &d[0]) != 0);
    /* err may be absent. */
    CHECK(sff_router_add(r, "GET", "//", &d[0], NULL, 0) != 0);
    /* A too small err is still NUL-terminated. */
    char small[8];
    CHECK(sff_router_add(r, "GET", "//", &d[0], small, sizeof(small)) != 0);
    CHECK_INT(strlen(small), 7);
    /* Nothing of the refused templates was added. */
    CHECK(match(r, "GET", "/a") == NULL);
    CHECK_INT(allowed, 0);

    static const char *good[] = {"/",       "/a",   "/a/b",           "/:x",   "/:_/u",         "/:X_9/y", "/*", "/a/*",
                                 "/a/:b/*", "/a.b", "/.well-known/x", "/a..b", "/v1/m:predict", "/%41",    "/é", "/a-b_c~d"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); ++i) {
        if (add(r, "POST", good[i], &d[1]) != 0) {
            fprintf(stderr, "  refused valid template \"%s\": %s\n", good[i], err);
            CHECK(0);
        }
    }
    CHECK(match(r, "POST", "/v1/m:predict") == &d[1]);
    CHECK(match(r, "POST", "/%41") == &d[1]);
    CHECK(match(r, "POST", "/A") == &d[1]); /* by "/:x": templates match the raw path */
    CHECK_STR(param("x"), "A");
    sff_router_destroy(r);
}

TEST(trailing_slash_is_exact)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/todos", &d[0]) == 0);
    CHECK(add(r, "GET", "/users/:id", &d[1]) == 0);
    CHECK(match(r, "GET", "/todos") == &d[0]);
    CHECK(match(r, "GET", "/todos/") == NULL);
    CHECK_INT(allowed, 0);
    CHECK(match(r, "GET", "/users/1/") == NULL);
    CHECK(match(r, "GET", "/users/") == NULL);
    CHECK(add(r, "GET", "/users/:id/*", &d[2]) == 0);
    CHECK(match(r, "GET", "/users/1/") == &d[2]);
    CHECK_STR(param("*"), "");
    sff_router_destroy(r);
}

TEST(empty_segments_never_match_a_param)
{
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", "/:a", &d[0]) == 0);
    CHECK(add(r, "GET", "/x/:a/y", &d[1]) == 0);
    CHECK(add(r, "GET", "/p/:a/:b", &d[2]) == 0);
    CHECK(add(r, "GET", "/todos", &d[3]) == 0);
    CHECK(match(r, "GET", "//") == NULL);
    CHECK(match(r, "GET", "/") == NULL);
    CHECK(match(r, "GET", "/x//y") == NULL);
    CHECK(match(r, "GET", "/p//b") == NULL);
    CHECK(match(r, "GET", "/p/a/") == NULL);
    CHECK(match(r, "GET", "//todos") == NULL);
    CHECK(match(r, "GET", "/todos//") == NULL);
    CHECK(match(r, "GET", "/x/q/y") == &d[1]);
    CHECK(match(r, "GET", "/p/a/b") == &d[2]);
    sff_router_destroy(r);
}

TEST(param_limit)
{
    char tmpl[512], path[512];
    sff_router_t *r = sff_router_create();
    /* 16 parameters fit. */
    size_t t = 0, p = 0;
    for (int i = 0; i < 16; ++i) {
        t += snprintf(tmpl + t, sizeof(tmpl) - t, "/:p%d", i);
        p += snprintf(path + p, sizeof(path) - p, "/v%d", i);
    }
    CHECK(add(r, "GET", tmpl, &d[0]) == 0);
    CHECK(match(r, "GET", path) == &d[0]);
    CHECK_INT(params.n, 16);
    CHECK_STR(param("p0"), "v0");
    CHECK_STR(param("p15"), "v15");
    /* A 17th, or a "*" after 16, does not. */
    CHECK(add(r, "GET", strcat(strcpy(path, tmpl), "/:p16"), &d[1]) != 0);
    CHECK(strstr(err, "16") != NULL);
    CHECK(add(r, "GET", strcat(strcpy(path, tmpl), "/*"), &d[1]) != 0);
    /* 15 and a "*" do. */
    t = 0;
    for (int i = 0; i < 15; ++i)
        t += snprintf(tmpl + t, sizeof(tmpl) - t, "/:q%d", i);
    strcat(tmpl, "/*");
    CHECK(add(r, "POST", tmpl, &d[2]) == 0);
    CHECK(match(r, "POST", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/rest/of/it") == &d[2]);
    CHECK_INT(params.n, 16);
    CHECK_STR(param("*"), "rest/of/it");
    sff_router_destroy(r);
}

TEST(deep_templates)
{
    /* Matching and destroying do not recurse, so depth is not limited. */
    static char tmpl[200001];
    for (int i = 0; i < 100000; ++i)
        memcpy(tmpl + i * 2, "/a", 2);
    sff_router_t *r = sff_router_create();
    CHECK(add(r, "GET", tmpl, &d[0]) == 0);
    CHECK(match(r, "GET", tmpl) == &d[0]);
    tmpl[199999] = 'b';
    CHECK(match(r, "GET", tmpl) == NULL);
    sff_router_destroy(r);
}

static int path_ok(const char *path)
{
    return sff_path_check(path, strlen(path)) == 0;
}

TEST(path_check_accepts)
{
    static const char *good[] = {
        "/",
        "/a",
        "/a/b.txt",
        "/%E2%9C%93",
        "/a..b",
        "/.well-known/x",
        "/.well-known/acme-challenge/abc",
        "/..a",
        "/a..",
        "/...",
        "/.../x",
        "/a/.b",
        "/.htaccess",
        "/todos/42",
        "/a/b/",
        "//",
        "/a//b",
        "/a%20b",
        "/a+b",
        "/%41%42",
        "/a%2eb",
        "/%2e%2e%2e",
        "/%2ea",
        "/a%2e",
        "/100%",
        "/%zz",
        "/%4",
        "/%",
        "/%25",
        "/caf%C3%A9",
        "/\xc3\xa9",
        "/a;b=c",
        "/a:b@c!$&'()*,=",
        "/~user/x",
        "/a-b_c",
        "/%2", /* a truncated escape is left alone */
        "/x%252",
        "/%2520",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); ++i) {
        if (!path_ok(good[i])) {
            fprintf(stderr, "  refused \"%s\"\n", good[i]);
            CHECK(0);
        }
    }
}

TEST(path_check_refuses)
{
    static const char *bad[] = {
        "",
        "a",
        "a/b",
        "*",
        "/%2e%2e",
        "/%2E%2e",
        "/%2E%2E",
        "/a/%2e%2e/b",
        "/.%2e",
        "/%2e.",
        "/%2e",
        "/%252e%252e",
        "/%252e",
        "/%25252e%25252e",
        "/%2525252e", /* four rounds to a "." */
        "/%00",
        "/a/%00",
        "/index.html%00.txt",
        "/a%2500",
        "/a\\b",
        "/a%5cb",
        "/a%5Cb",
        "/a%255cb",
        "/a/./b",
        "/a/../b",
        "/..",
        "/.",
        "/./",
        "/../x",
        "/a/.",
        "/a/..",
        "/a/..%2fb",
        "/a%2fb",
        "/a%2Fb",
        "/a%252fb",
        "/%252e%252e%252fx",
        "/a\tb",
        "/a\nb",
        "/a\rb",
        "/a\x7f",
        "/a\x01",
        "/a%0ab",
        "/a%0D%0Ab",
        "/a%7f",
        "/%25%32%65%25%32%65", /* decodes to "%2e%2e", then ".." */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        if (path_ok(bad[i])) {
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
            CHECK(0);
        }
    }
    /* A raw NUL, within the length. */
    CHECK(sff_path_check("/a\0b", 4) != 0);
    CHECK(sff_path_check("/ab", 0) != 0);
    CHECK(sff_path_check(NULL, 0) != 0);
    /* The length is honoured: "/a/.." cut after "/a/." is still a "." segment, after "/a/" fine. */
    CHECK(sff_path_check("/a/..", 4) != 0);
    CHECK(sff_path_check("/a/..", 3) == 0);
    /* A long segment is checked as well as a short one. */
    static char longp[4096];
    longp[0] = '/';
    memset(longp + 1, 'a', 3000);
    strcpy(longp + 3001, "%252f");
    CHECK(!path_ok(longp));
    strcpy(longp + 3001, "%2520");
    CHECK(path_ok(longp));
}

static const char *dec(const char *src, long *ret)
{
    static char buf[256];
    *ret = sff_url_decode(buf, src, strlen(src));
    return buf;
}

TEST(url_decode)
{
    long n;
    CHECK_STR(dec("", &n), "");
    CHECK_INT(n, 0);
    CHECK_STR(dec("abc", &n), "abc");
    CHECK_INT(n, 3);
    CHECK_STR(dec("a%20b", &n), "a b");
    CHECK_INT(n, 3);
    CHECK_STR(dec("%41%42%43", &n), "ABC");
    CHECK_STR(dec("%e2%9c%93", &n), "\xe2\x9c\x93");
    CHECK_INT(n, 3);
    CHECK_STR(dec("%E2%9C%93", &n), "\xe2\x9c\x93");
    CHECK_STR(dec("a+b", &n), "a+b");
    CHECK_STR(dec("%2B", &n), "+");
    CHECK_STR(dec("%252e", &n), "%2e"); /* one round only */
    CHECK_STR(dec("%25", &n), "%");
    CHECK_STR(dec("%ff", &n), "\xff");
    dec("%4", &n);
    CHECK_INT(n, -1);
    dec("%", &n);
    CHECK_INT(n, -1);
    dec("a%", &n);
    CHECK_INT(n, -1);
    dec("%zz", &n);
    CHECK_INT(n, -1);
    dec("%4g", &n);
    CHECK_INT(n, -1);
    dec("%g4", &n);
    CHECK_INT(n, -1);
    dec("%00", &n);
    CHECK_INT(n, -1);
    dec("a%00b", &n);
    CHECK_INT(n, -1);
    dec("%%41", &n);
    CHECK_INT(n, -1);
    char buf[8];
    CHECK_INT(sff_url_decode(buf, "a\0b", 3), -1);
    /* The length is honoured: "%41" cut to "%4" is truncated. */
    CHECK_INT(sff_url_decode(buf, "%41", 2), -1);
    CHECK_INT(sff_url_decode(buf, "%41xyz", 3), 1);
    CHECK_STR(buf, "A");
    /* In place. */
    char inplace[] = "x%2Fy%20z";
    CHECK_INT(sff_url_decode(inplace, inplace, strlen(inplace)), 5);
    CHECK_STR(inplace, "x/y z");
}

TEST(url_decode_form)
{
    char buf[64];
    CHECK_INT(sff_url_decode_form(buf, "a+b%2Bc", 7), 5);
    CHECK_STR(buf, "a b+c");
    CHECK_INT(sff_url_decode_form(buf, "+++", 3), 3);
    CHECK_STR(buf, "   ");
    CHECK_INT(sff_url_decode_form(buf, "x%20y", 5), 3);
    CHECK_STR(buf, "x y");
    CHECK_INT(sff_url_decode_form(buf, "%4", 2), -1);
    CHECK_INT(sff_url_decode_form(buf, "%zz", 3), -1);
    CHECK_INT(sff_url_decode_form(buf, "a%00", 4), -1);
    CHECK_INT(sff_url_decode_form(buf, "", 0), 0);
    CHECK_STR(buf, "");
}

int main(void)
{
    RUN(method_bits);
    RUN(allow_string);
    RUN(literal_routes);
    RUN(many_literals_sorted);
    RUN(single_param);
    RUN(multiple_params);
    RUN(wildcard);
    RUN(root_wildcard);
    RUN(precedence);
    RUN(backtracking);
    RUN(head_falls_back_to_get);
    RUN(not_found_vs_method_not_allowed);
    RUN(method_falls_through_to_lower_precedence);
    RUN(duplicates);
    RUN(invalid_templates);
    RUN(trailing_slash_is_exact);
    RUN(empty_segments_never_match_a_param);
    RUN(param_limit);
    RUN(deep_templates);
    RUN(path_check_accepts);
    RUN(path_check_refuses);
    RUN(url_decode);
    RUN(url_decode_form);
    return test_done();
}
