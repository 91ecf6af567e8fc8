/* The todolist through HTTP, against real Postgres, Redis and local storage: accounts and sessions,
 * the v1 API, the legacy contract of the Express backend, per-user isolation, the list cache,
 * CSRF, and the dashboard. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/pg.h"
#include "lib/redis.h"
#include "lib/setup.h"
#include "test.h"

static tc_server_t srv;
static tc_pg_t pg;
static tc_redis_t rs;
static char base[] = "/tmp/sff-it97-XXXXXX";

typedef struct {
    char cookie[4096]; /* "jwtToken=...; refreshToken=..." */
    char token[2048];
} session_t;

/* Keeps the cookies a response sets. */
static void keep_cookies(session_t *s, const tc_response_t *res)
{
    for (const char *h = res->headers; h != NULL && (h = strstr(h, "set-cookie: ")) != NULL; h++) {
        const char *v = h + 12, *end = strchr(v, ';');
        char name[64];
        size_t nlen = strcspn(v, "=");
        if (nlen >= sizeof(name) || end == NULL)
            continue;
        memcpy(name, v, nlen);
        name[nlen] = '\0';
        /* drop the old value of this cookie, then add the new one unless it is a deletion */
        char out[4096] = "";
        for (char *part = strtok(s->cookie, ";"); part != NULL; part = strtok(NULL, ";")) {
            while (*part == ' ')
                part++;
            if (strncmp(part, name, nlen) == 0 && part[nlen] == '=')
                continue;
            if (*out)
                strcat(out, "; ");
            strcat(out, part);
        }
        if (end > v + nlen + 1 && strstr(v, "Max-Age=0") == NULL) {
            if (*out)
                strcat(out, "; ");
            strncat(out, v, (size_t)(end - v));
        }
        snprintf(s->cookie, sizeof(s->cookie), "%s", out);
    }
}

static json_t *call(session_t *s, const char *method, const char *path, const char *body, const char *extra, int *status)
{
    char hdr[8192] = "";
    if (s != NULL && s->cookie[0])
        snprintf(hdr, sizeof(hdr), "Cookie: %s\r\n", s->cookie);
    if (body != NULL)
        strcat(hdr, "Content-Type: application/json\r\n");
    if (extra != NULL)
        strcat(hdr, extra);
    tc_response_t res;
    tc_request(TC_HTTP1, srv.port, method, path, hdr, body, body != NULL ? strlen(body) : 0, &res);
    *status = res.status;
    if (s != NULL)
        keep_cookies(s, &res);
    json_t *j = tc_json(res.body);
    tc_response_free(&res);
    return j;
}

static session_t ada, bob, legacy;

TEST(register_and_log_in)
{
    int st;
    json_t *j =
        call(NULL, "POST", "/api/v1/users", "{\"username\":\"ada\",\"password\":\"correct horse\",\"name\":\"Ada\"}", NULL, &st);
    CHECK_INT(st, 201);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "user"), "username")), "ada");
    CHECK(json_object_get(json_object_get(j, "user"), "password_hash") == NULL);
    json_decref(j);
    /* the name is taken, whatever its case */
    j = call(NULL, "POST", "/api/v1/users", "{\"username\":\"ADA\",\"password\":\"another one\"}", NULL, &st);
    CHECK_INT(st, 409);
    json_decref(j);
    /* too short a password: the schema says why */
    j = call(NULL, "POST", "/api/v1/users", "{\"username\":\"eve\",\"password\":\"short\"}", NULL, &st);
    CHECK_INT(st, 400);
    json_decref(j);
    j = call(&ada, "POST", "/api/v1/session", "{\"username\":\"ada\",\"password\":\"wrong password\"}", NULL, &st);
    CHECK_INT(st, 401);
    json_decref(j);
    j = call(&ada, "POST", "/api/v1/session", "{\"username\":\"Ada\",\"password\":\"correct horse\"}", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_integer_value(json_object_get(j, "expires_in")), 900);
    CHECK(json_string_length(json_object_get(j, "token")) > 20);
    CHECK(strstr(ada.cookie, "jwtToken=") != NULL && strstr(ada.cookie, "refreshToken=") != NULL);
    json_decref(j);
    json_decref(call(NULL, "POST", "/api/v1/users", "{\"username\":\"bob\",\"password\":\"bob's password\"}", NULL, &st));
    json_decref(call(&bob, "POST", "/api/v1/session", "{\"username\":\"bob\",\"password\":\"bob's password\"}", NULL, &st));
    CHECK_INT(st, 200);
}

TEST(todos_crud_and_pages)
{
    int st;
    char path[128];
    json_t *j = call(&ada, "POST", "/api/v1/todos", "{\"name\":\"write the docs\",\"desc\":\"all of them\"}", NULL, &st);
    CHECK_INT(st, 201);
    long long id = json_integer_value(json_object_get(j, "id"));
    CHECK_STR(json_string_value(json_object_get(j, "status")), "open");
    json_decref(j);
    for (int i = 0; i < 24; i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"name\":\"todo %d\"}", i);
        json_decref(call(&ada, "POST", "/api/v1/todos", body, NULL, &st));
    }
    snprintf(path, sizeof(path), "/api/v1/todos/%lld", id);
    j = call(&ada, "PATCH", path, "{\"status\":\"done\",\"progress\":100}", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(json_string_value(json_object_get(j, "status")), "done");
    json_decref(j);
    /* pages of 10 by cursor: 25 todos */
    size_t seen = 0;
    char cursor[64] = "";
    for (int page = 0; page < 5; page++) {
        snprintf(path, sizeof(path), "/api/v1/todos?limit=10%s%s", cursor[0] ? "&cursor=" : "", cursor);
        j = call(&ada, "GET", path, NULL, NULL, &st);
        CHECK_INT(st, 200);
        seen += json_array_size(json_object_get(j, "items"));
        const char *next = json_string_value(json_object_get(j, "next_cursor"));
        snprintf(cursor, sizeof(cursor), "%s", next != NULL ? next : "");
        json_decref(j);
        if (!cursor[0])
            break;
    }
    CHECK_INT(seen, 25);
    j = call(&ada, "GET", "/api/v1/todos?status=done", NULL, NULL, &st);
    CHECK_INT(json_array_size(json_object_get(j, "items")), 1);
    json_decref(j);
    /* bob sees none of them, and cannot touch them */
    j = call(&bob, "GET", "/api/v1/todos", NULL, NULL, &st);
    CHECK_INT(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    snprintf(path, sizeof(path), "/api/v1/todos/%lld", id);
    json_decref(call(&bob, "GET", path, NULL, NULL, &st));
    CHECK_INT(st, 404);
    json_decref(call(&bob, "DELETE", path, NULL, NULL, &st));
    CHECK_INT(st, 404);
    json_decref(call(&ada, "DELETE", path, NULL, NULL, &st));
    CHECK_INT(st, 204);
    json_decref(call(&ada, "GET", path, NULL, NULL, &st));
    CHECK_INT(st, 404);
}

TEST(writes_are_visible_on_the_next_read)
{
    int st;
    json_t *a = call(&ada, "GET", "/api/v1/todos?limit=5", NULL, NULL, &st);
    json_t *b = call(&ada, "GET", "/api/v1/todos?limit=5", NULL, NULL, &st); /* cached now */
    CHECK(json_equal(a, b));
    json_decref(call(&ada, "POST", "/api/v1/todos", "{\"name\":\"fresh one\"}", NULL, &st));
    json_t *c = call(&ada, "GET", "/api/v1/todos?limit=5", NULL, NULL, &st);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(c, "items"), 0), "name")), "fresh one");
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

TEST(refresh_rotates_and_logout_revokes)
{
    int st;
    char old[4096];
    snprintf(old, sizeof(old), "%s", ada.cookie);
    json_t *j = call(&ada, "POST", "/api/v1/session/refresh", "{}", NULL, &st);
    CHECK_INT(st, 200);
    json_decref(j);
    CHECK(strcmp(old, ada.cookie) != 0);
    /* the old refresh token was used up */
    session_t replay;
    snprintf(replay.cookie, sizeof(replay.cookie), "%s", old);
    json_decref(call(&replay, "POST", "/api/v1/session/refresh", "{}", NULL, &st));
    CHECK_INT(st, 401);
    session_t copy = ada;
    json_decref(call(&ada, "DELETE", "/api/v1/session", NULL, NULL, &st));
    CHECK_INT(st, 204);
    CHECK(strstr(ada.cookie, "jwtToken=") == NULL);
    json_decref(call(&copy, "POST", "/api/v1/session/refresh", "{}", NULL, &st));
    CHECK_INT(st, 401);
    json_decref(call(&ada, "GET", "/api/v1/me", NULL, NULL, &st));
    CHECK_INT(st, 401);
    json_decref(call(&ada, "POST", "/api/v1/session", "{\"username\":\"ada\",\"password\":\"correct horse\"}", NULL, &st));
    CHECK_INT(st, 200);
}

TEST(cross_site_mutations_are_refused)
{
    int st;
    json_decref(call(&ada, "POST", "/api/v1/todos", "{\"name\":\"from evil\"}", "Origin: https://evil.example\r\n", &st));
    CHECK_INT(st, 403);
    char own[128];
    snprintf(own, sizeof(own), "Origin: http://127.0.0.1:%d\r\n", srv.port);
    json_decref(call(&ada, "POST", "/api/v1/todos", "{\"name\":\"from home\"}", own, &st));
    CHECK_INT(st, 201);
}

TEST(profile_avatar_and_dashboard)
{
    int st;
    json_t *j = call(&ada, "PATCH", "/api/v1/me", "{\"title\":\"Countess\",\"email\":\"ada@example.org\"}", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(json_string_value(json_object_get(j, "title")), "Countess");
    json_decref(j);
    static const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    char hdr[4200];
    snprintf(hdr, sizeof(hdr), "Cookie: %s\r\nContent-Type: image/png\r\n", ada.cookie);
    tc_response_t res;
    CHECK(tc_request(TC_HTTP1, srv.port, "PUT", "/api/v1/me/avatar", hdr, png, sizeof(png) - 1, &res) == 0);
    CHECK_INT(res.status, 200);
    tc_response_free(&res);
    snprintf(hdr, sizeof(hdr), "Cookie: %s\r\n", ada.cookie);
    CHECK(tc_request(TC_HTTP1, srv.port, "GET", "/api/v1/me/avatar", hdr, NULL, 0, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK(res.body_len == sizeof(png) - 1 && memcmp(res.body, png, res.body_len) == 0);
    tc_response_free(&res);
    snprintf(hdr, sizeof(hdr), "Cookie: %s\r\nContent-Type: text/plain\r\n", ada.cookie);
    CHECK(tc_request(TC_HTTP1, srv.port, "PUT", "/api/v1/me/avatar", hdr, "hi", 2, &res) == 0);
    CHECK_INT(res.status, 415);
    tc_response_free(&res);
    j = call(&ada, "GET", "/api/v1/dashboard", NULL, NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "profile"), "username")), "ada");
    CHECK(json_integer_value(json_object_get(json_object_get(j, "counts"), "open")) >= 24);
    CHECK(json_array_size(json_object_get(j, "activity")) > 0);
    CHECK(json_is_string(json_object_get(j, "avatar_url")));
    json_decref(j);
}

TEST(legacy_contract)
{
    int st;
    json_t *j = call(NULL, "POST", "/user/register", "{\"userName\":\"legacy\",\"password\":\"secret1\"}", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(json_string_value(json_object_get(j, "status")), "ok");
    CHECK_STR(json_string_value(json_object_get(j, "currentAuthority")), "legacy");
    json_decref(j);
    j = call(&legacy, "POST", "/api/login/account", "{\"userName\":\"legacy\",\"password\":\"nope\",\"type\":\"account\"}", NULL,
             &st);
    CHECK_INT(st, 200);
    CHECK_STR(json_string_value(json_object_get(j, "status")), "error");
    CHECK_STR(json_string_value(json_object_get(j, "currentAuthority")), "guest");
    json_decref(j);
    json_decref(call(&legacy, "GET", "/api/currentUser", NULL, NULL, &st));
    CHECK_INT(st, 401);
    j = call(&legacy, "POST", "/api/login/account",
             "{\"userName\":\"legacy\",\"password\":\"secret1\",\"type\":\"account\",\"autoLogin\":true}", NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(json_string_value(json_object_get(j, "status")), "ok");
    CHECK_STR(json_string_value(json_object_get(j, "type")), "account");
    CHECK_STR(json_string_value(json_object_get(j, "currentAuthority")), "user");
    json_decref(j);
    j = call(&legacy, "GET", "/api/currentUser", NULL, NULL, &st);
    CHECK_INT(st, 200);
    CHECK_STR(json_string_value(json_object_get(j, "name")), "legacy");
    const char *keys[] = {"avatar",      "userid",      "email",   "signature",  "title",   "group", "tags",
                          "notifyCount", "unreadCount", "country", "geographic", "address", "phone"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        CHECK(json_object_get(j, keys[i]) != NULL);
    json_decref(j);
    /* rules: create (with and without method), list with sorter, update, delete */
    j = call(&legacy, "POST", "/api/rule", "{\"method\":\"post\",\"name\":\"b rule\",\"desc\":\"d1\"}", NULL, &st);
    CHECK_INT(st, 200);
    long long k1 = json_integer_value(json_object_get(j, "key"));
    CHECK_STR(json_string_value(json_object_get(j, "owner")), "legacy");
    json_decref(j);
    j = call(&legacy, "POST", "/api/rule", "{\"name\":\"a rule\",\"desc\":\"d2\"}", NULL, &st);
    long long k2 = json_integer_value(json_object_get(j, "key"));
    json_decref(j);
    j = call(&legacy, "GET", "/api/rule?current=1&pageSize=10&sorter=%7B%22name%22%3A%22ascend%22%7D", NULL, NULL, &st);
    CHECK_INT(st, 200);
    CHECK(json_is_true(json_object_get(j, "success")));
    CHECK_INT(json_integer_value(json_object_get(j, "total")), 2);
    CHECK_INT(json_integer_value(json_object_get(j, "current")), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "name")), "a rule");
    json_t *rule = json_array_get(json_object_get(j, "data"), 0);
    const char *rkeys[] = {"key",    "name", "desc",   "owner",    "status",    "progress",
                           "callNo", "href", "avatar", "disabled", "createdAt", "updatedAt"};
    for (size_t i = 0; i < sizeof(rkeys) / sizeof(rkeys[0]); i++)
        CHECK(json_object_get(rule, rkeys[i]) != NULL);
    json_decref(j);
    /* a sorter field outside the allowlist is ignored, never put into SQL */
    j = call(&legacy, "GET", "/api/rule?sorter=%7B%22id%3Bdrop%20table%20todos%22%3A%22ascend%22%7D", NULL, NULL, &st);
    CHECK_INT(st, 200);
    json_decref(j);
    char body[128];
    snprintf(body, sizeof(body), "{\"method\":\"update\",\"key\":%lld,\"name\":\"b renamed\",\"status\":2}", k1);
    j = call(&legacy, "POST", "/api/rule", body, NULL, &st);
    CHECK_STR(json_string_value(json_object_get(j, "name")), "b renamed");
    CHECK_INT(json_integer_value(json_object_get(j, "status")), 2);
    json_decref(j);
    /* long queries never share a cache entry (a key cut short once mixed status=2 and status=0) */
    {
        char path[2048] = "/api/rule?sorter=";
        for (int i = 0; i < 190; i++) /* 190 characters (the schema's limit is 200), 570 bytes of UTF-8 */
            strcat(path, "%E2%82%AC");
        char p2[2100], p0[2100];
        snprintf(p2, sizeof(p2), "%s&status=2", path);
        snprintf(p0, sizeof(p0), "%s&status=0", path);
        json_t *done = call(&legacy, "GET", p2, NULL, NULL, &st), *open = call(&legacy, "GET", p0, NULL, NULL, &st);
        CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(done, "data"), 0), "name")), "b renamed");
        CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(open, "data"), 0), "name")), "a rule");
        json_decref(done);
        json_decref(open);
        /* an empty filter is no filter, and does not poison the unfiltered list's cache entry */
        json_t *empty = call(&legacy, "GET", "/api/rule?status=&name=", NULL, NULL, &st),
               *all = call(&legacy, "GET", "/api/rule", NULL, NULL, &st);
        CHECK_INT(json_integer_value(json_object_get(empty, "total")), 2);
        CHECK_INT(json_integer_value(json_object_get(all, "total")), 2);
        json_decref(empty);
        json_decref(all);
    }
    snprintf(body, sizeof(body), "{\"key\":%lld,\"desc\":\"by PUT\"}", k2);
    j = call(&legacy, "PUT", "/api/rule", body, NULL, &st);
    CHECK_STR(json_string_value(json_object_get(j, "desc")), "by PUT");
    json_decref(j);
    snprintf(body, sizeof(body), "{\"method\":\"delete\",\"key\":[%lld]}", k1);
    j = call(&legacy, "POST", "/api/rule", body, NULL, &st);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "pagination"), "total")), 1);
    CHECK_INT(json_array_size(json_object_get(j, "list")), 1);
    json_decref(j);
    snprintf(body, sizeof(body), "{\"key\":[%lld]}", k2);
    j = call(&legacy, "DELETE", "/api/rule", body, NULL, &st);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "pagination"), "total")), 0);
    json_decref(j);
    /* a delete without keys deletes nothing, and never takes the worker down */
    j = call(&legacy, "POST", "/api/rule", "{\"method\":\"delete\"}", NULL, &st);
    CHECK_INT(st, 200);
    json_decref(j);
    j = call(&legacy, "DELETE", "/api/rule", NULL, NULL, &st);
    CHECK_INT(st, 200);
    json_decref(j);
    CHECK(!tc_server_log_contains(&srv, "respawning"));
    j = call(&legacy, "GET", "/api/notices", NULL, NULL, &st);
    CHECK(json_is_array(j) && json_array_size(j) == 0);
    json_decref(j);
    json_decref(call(&legacy, "GET", "/api/users", NULL, NULL, &st));
    CHECK_INT(st, 403); /* admins only */
    /* the legacy list is per user too */
    j = call(&ada, "GET", "/api/rule", NULL, NULL, &st);
    CHECK(json_integer_value(json_object_get(j, "total")) >= 24);
    json_decref(j);
}

TEST(a_login_flood_never_stalls_the_worker)
{
    /* 80 password checks at once, from one address: the hashing pool's bounded queue and the
     * per-name limit answer the excess with 429/503; the worker keeps serving meanwhile */
    tc_load_t flood = {.port = srv.port,
                       .connections = 80,
                       .requests = 80,
                       .method = "POST",
                       .path = "/api/v1/session",
                       .headers = "Content-Type: application/json\r\n",
                       .body = "{\"username\":\"flood\",\"password\":\"not the password\"}"};
    tc_load_start(&flood);
    usleep(50000);
    double worst = 0;
    for (int i = 0; i < 10; i++) {
        struct timeval t0, t1;
        gettimeofday(&t0, NULL);
        tc_response_t res;
        tc_get(srv.port, "/_health", NULL, &res);
        gettimeofday(&t1, NULL);
        CHECK_INT(res.status, 200);
        tc_response_free(&res);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1000 + (double)(t1.tv_usec - t0.tv_usec) / 1000;
        if (ms > worst)
            worst = ms;
        usleep(20000);
    }
    tc_load_join(&flood);
    fprintf(stderr, "  80 logins at once: %llu 4xx (401/429), %llu 5xx (503), %llu unanswered; /_health worst %.1f ms\n",
            (unsigned long long)flood.status_counts[4], (unsigned long long)flood.status_counts[5],
            (unsigned long long)flood.status_counts[0], worst);
    CHECK_INT(flood.status_counts[0], 0);
    CHECK_INT(flood.status_counts[4] + flood.status_counts[5], 80);
    CHECK(worst < 500);
}

TEST(row_level_security_backs_the_queries)
{
    /* as the application's role, with bob's claim and no WHERE at all, ada's todos stay invisible */
    CHECK(tc_sh("psql -X -q -t -A -h 127.0.0.1 -p %d -U todolist_app -d todolist -c \"select set_config("
                "'request.jwt.claim.sub', (select id::text from users where username = 'bob'), false)\" -c "
                "'select count(*) from todos' | tail -1 | grep -qx 0",
                pg.port) == 0);
    CHECK(tc_sh("psql -X -q -t -A -h 127.0.0.1 -p %d -U todolist_app -d todolist -c \"select set_config("
                "'request.jwt.claim.sub', (select id::text from users where username = 'ada'), false)\" -c "
                "'select count(*) > 20 from todos' | tail -1 | grep -qx t",
                pg.port) == 0);
}

/* A valid token or refresh token of a user deleted since: 401 "the user is gone", never a 500 or
 * another user's data. */
TEST(a_deleted_users_tokens_are_refused)
{
    int st;
    session_t gone = {0};
    json_decref(call(NULL, "POST", "/api/v1/users", "{\"username\":\"leaver\",\"password\":\"leaving soon\"}", NULL, &st));
    CHECK_INT(st, 201);
    json_decref(call(&gone, "POST", "/api/v1/session", "{\"username\":\"leaver\",\"password\":\"leaving soon\"}", NULL, &st));
    CHECK_INT(st, 200);
    json_decref(call(&gone, "GET", "/api/v1/me", NULL, NULL, &st));
    CHECK_INT(st, 200);
    CHECK(tc_sh("psql -X -q -h 127.0.0.1 -p %d -U postgres -d todolist -c \"delete from users where username = 'leaver'\"",
                pg.port) == 0);
    const char *paths[][2] = {{"GET", "/api/v1/me"}, {"GET", "/api/currentUser"}, {"POST", "/api/v1/session/refresh"}};
    for (int i = 0; i < 3; i++) {
        session_t copy = gone;
        json_t *j = call(&copy, paths[i][0], paths[i][1], paths[i][0][0] == 'P' ? "{}" : NULL, NULL, &st);
        CHECK_INT(st, 401);
        CHECK_STR(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "the user is gone");
        json_decref(j);
    }
}

int main(void)
{
    char fdir[512], env_fn[700], env_pg[600], env_redis[500], env_storage[600];
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0)
        return 1;
    if (mkdtemp(base) == NULL)
        return 1;
    snprintf(fdir, sizeof(fdir), "%s/functions", base);
    if (tc_sh("mkdir -p '%s' '%s/objects' && cp '%s' '%s/'", fdir, base, tc_build_path("functions/todolist.so"), fdir) != 0)
        return 1;
    if (tc_pg_start(&pg) != 0 || tc_redis_start(&rs, NULL) != 0) {
        printf("not ok - backends_start\n");
        return 1;
    }
    /* the application connects as an ordinary role that owns the database (as make run does) */
    if (tc_pg_sql(&pg, "create role todolist_app login; create database todolist owner todolist_app;") != 0)
        return 1;
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    snprintf(env_pg, sizeof(env_pg), "SFF_PG_URL=postgresql://todolist_app@127.0.0.1:%d/todolist", pg.port);
    snprintf(env_redis, sizeof(env_redis), "SFF_REDIS_URL=%s", rs.url);
    snprintf(env_storage, sizeof(env_storage), "SFF_STORAGE_URL=file://%s/objects", base);
    const char *env[] = {
        env_fn, env_pg, env_redis, env_storage, "SFF_WORKERS=2", "SFF_SCHEMAS_DIR=schemas", "SFF_JWT_SECRET=" TC_SECRET, NULL};
    if (tc_server_start(&srv, env) != 0)
        return 1;
    RUN(register_and_log_in);
    RUN(todos_crud_and_pages);
    RUN(writes_are_visible_on_the_next_read);
    RUN(refresh_rotates_and_logout_revokes);
    RUN(cross_site_mutations_are_refused);
    RUN(profile_avatar_and_dashboard);
    RUN(legacy_contract);
    RUN(a_login_flood_never_stalls_the_worker);
    RUN(row_level_security_backs_the_queries);
    RUN(a_deleted_users_tokens_are_refused);
    tc_server_stop(&srv);
    tc_redis_stop(&rs);
    tc_pg_stop(&pg);
    tc_sh("rm -rf '%s'", base);
    return test_done();
}
