/* Functions using Postgres through the SDK, against a real Postgres 15: typed rows, bound
 * parameters, row-level security from the caller's claims, transactions, error mapping, fan-out
 * with Redis, and Postgres going away under write load without losing an acknowledged write. */
#include <signal.h>
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
static char alice[1024], bob[1024];

static double now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec * 1000 + (double)tv.tv_usec / 1000;
}

static json_t *call(const char *method, const char *path, const char *token, const char *body, int *status)
{
    char hdr[2048] = "";
    if (token != NULL)
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    if (body != NULL)
        strcat(hdr, "Content-Type: application/json\r\n");
    tc_response_t res;
    tc_request(TC_HTTP1, srv.port, method, path, hdr, body, body != NULL ? strlen(body) : 0, &res);
    *status = res.status;
    json_t *j = tc_json(res.body);
    tc_response_free(&res);
    return j;
}

static char *sql1(const char *sql)
{
    static char out[256];
    char *r = tc_pg_query(&pg, sql);
    snprintf(out, sizeof(out), "%s", r != NULL ? r : "(error)");
    free(r);
    return out;
}

TEST(rows_keep_their_types)
{
    int st;
    json_t *j = call("GET", "/fx/db/types", NULL, NULL, &st);
    CHECK_INT(st, 200);
    CHECK(json_is_integer(json_object_get(j, "i4")) && json_integer_value(json_object_get(j, "i4")) == 42);
    CHECK_STR(json_string_value(json_object_get(j, "big")), "9007199254740993");
    CHECK(json_is_integer(json_object_get(j, "small")));
    CHECK(json_is_true(json_object_get(j, "b")));
    CHECK(json_is_real(json_object_get(j, "f")) && json_real_value(json_object_get(j, "f")) == 1.5);
    CHECK_STR(json_string_value(json_object_get(j, "n")), "12.50");
    CHECK_STR(json_string_value(json_object_get(j, "t")), "h\xc3\xa9llo");
    CHECK_STR(json_string_value(json_object_get(j, "u")), "6f9619ff-8b86-d011-b42d-00c04fc964ff");
    CHECK(json_is_array(json_object_get(json_object_get(j, "j"), "a")));
    CHECK_STR(json_string_value(json_object_get(j, "ts")), "2026-11-21T06:40:00.123456Z");
    CHECK_STR(json_string_value(json_object_get(j, "d")), "2026-11-21");
    CHECK_INT(json_array_size(json_object_get(j, "a")), 3);
    CHECK_STR(json_string_value(json_array_get(json_object_get(j, "ta"), 1)), "y");
    CHECK(json_is_null(json_object_get(j, "nothing")));
    /* a parameter is data, never SQL */
    CHECK_STR(json_string_value(json_object_get(j, "param")), "it's a 'quoted' string; drop table notes; --");
    CHECK_STR(sql1("select to_regclass('notes') is not null"), "t");
    json_decref(j);
}

TEST(row_level_security_from_claims)
{
    int st;
    json_decref(call("POST", "/fx/db/notes", alice, "{\"text\":\"alice's note\"}", &st));
    CHECK_INT(st, 201);
    json_decref(call("POST", "/fx/db/notes", bob, "{\"text\":\"bob's note\"}", &st));
    CHECK_INT(st, 201);
    json_t *a = call("GET", "/fx/db/notes", alice, NULL, &st);
    CHECK_INT(st, 200);
    size_t i;
    json_t *row;
    int mine = 0, others = 0;
    json_array_foreach(a, i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "owner")), "alice") == 0)
            mine++;
        else
            others++;
    }
    CHECK(mine >= 1);
    CHECK_INT(others, 0);
    json_decref(a);
    /* writing a row for someone else is refused by the policy */
    CHECK_STR(sql1("select count(*) from notes where owner = 'bob'"), "1");
}

TEST(transactions_commit_or_roll_back)
{
    int st;
    char before[256];
    snprintf(before, sizeof(before), "%s", sql1("select count(*) from notes"));
    json_decref(call("POST", "/fx/db/tx", alice, "{}", &st));
    CHECK_INT(st, 204);
    CHECK_INT(atoi(sql1("select count(*) from notes")), atoi(before) + 2);
    json_t *j = call("POST", "/fx/db/tx", alice, "{\"fail\":true}", &st);
    CHECK_INT(st, 409);
    json_decref(j);
    CHECK_INT(atoi(sql1("select count(*) from notes")), atoi(before) + 2);
}

TEST(errors_map_to_statuses_without_leaking_sql)
{
    int st;
    json_decref(call("POST", "/fx/db/unique", NULL, "{\"name\":\"only-once\"}", &st));
    CHECK_INT(st, 201);
    tc_response_t res;
    const char *body = "{\"name\":\"only-once\"}";
    tc_request(TC_HTTP1, srv.port, "POST", "/fx/db/unique", "Content-Type: application/json\r\n", body, strlen(body), &res);
    CHECK_INT(res.status, 409);
    CHECK(strstr(res.body, "\"code\":\"conflict\"") != NULL);
    CHECK(strstr(res.body, "names_name_key") == NULL && strstr(res.body, "duplicate key") == NULL);
    tc_response_free(&res);
}

TEST(three_backends_at_once)
{
    int st;
    json_decref(call("GET", "/fx/fanout", NULL, NULL, &st)); /* warm the connections */
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        double t0 = now_ms();
        json_t *j = call("GET", "/fx/fanout", NULL, NULL, &st);
        double took = now_ms() - t0;
        CHECK_INT(st, 200);
        CHECK(json_object_get(j, "postgres") != NULL && json_object_get(j, "redis") != NULL);
        json_decref(j);
        if (took < best)
            best = took;
    }
    fprintf(stderr, "  Postgres 50 ms + Redis 50 ms at once: %.1f ms (one after the other: >= 100 ms)\n", best);
    CHECK(best < 95);
}

/* Many clients at once: every answer right, and calls of one loop iteration went out together
 * (sff_pg_batched_total, see baas/pg.c). */
TEST(concurrent_calls_are_batched)
{
    tc_load_t load = {
        .port = srv.port, .connections = 64, .requests = 4000, .seconds = 30, .method = "GET", .path = "/fx/db/types"};
    CHECK(tc_load_run(&load) == 0);
    CHECK_INT(load.ok, 4000);
    CHECK_INT(load.failed, 0);
    usleep(1100000); /* the counters are copied once a second */
    tc_response_t res;
    CHECK(tc_get(srv.port, "/_metrics", NULL, &res) == 0);
    const char *q = strstr(res.body, "\nsff_pg_queries_total "), *b = strstr(res.body, "\nsff_pg_batched_total ");
    CHECK(q != NULL && atoll(q + 22) >= 4000);
    CHECK(b != NULL && atoll(b + 22) > 0);
    if (b != NULL)
        fprintf(stderr, "  %lld of %lld calls went out corked with others\n", atoll(b + 22), q != NULL ? atoll(q + 22) : 0);
    tc_response_free(&res);
}

TEST(postgres_down_fails_fast_and_recovers)
{
    int st;
    CHECK(tc_pg_server_stop(&pg, TC_PG_IMMEDIATE) == 0);
    double t0 = now_ms();
    json_t *j = call("GET", "/fx/db/types", NULL, NULL, &st);
    double took = now_ms() - t0;
    CHECK_INT(st, 503);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "backend_unavailable");
    CHECK(took < 3000);
    json_decref(j);
    j = call("GET", "/_ready", NULL, NULL, &st);
    CHECK_INT(st, 503);
    json_decref(j);
    CHECK(tc_pg_server_start(&pg) == 0);
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        usleep(100000);
        json_decref(call("GET", "/fx/db/types", NULL, NULL, &st));
        ok = st == 200;
    }
    CHECK(ok);
}

TEST(terminated_backends_fail_in_flight_calls_fast)
{
    tc_load_t load = {.port = srv.port, .connections = 8, .seconds = 1.5, .method = "GET", .path = "/fx/db/sleep?ms=300"};
    tc_load_start(&load);
    usleep(500000);
    CHECK(tc_pg_sql(&pg, "select pg_terminate_backend(pid) from pg_stat_activity where usename = 'app'") == 0);
    tc_load_join(&load);
    /* the calls on the killed connections got 503, none hung, the rest went on */
    CHECK(load.status_counts[0] == 0);
    CHECK(load.latency_max_ms < 3000);
    CHECK(load.ok > 0);
    int st;
    json_decref(call("GET", "/fx/db/types", NULL, NULL, &st));
    CHECK_INT(st, 200);
}

TEST(restarts_under_write_load_lose_no_acknowledged_write)
{
    const char *modes[] = {"fast", "immediate"};
    for (int m = 0; m < 2; m++) {
        char before[256], hdr[2048];
        snprintf(before, sizeof(before), "%s", sql1("select count(*) from notes where owner = 'bob'"));
        snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nContent-Type: application/json\r\n", bob);
        tc_load_t load = {.port = srv.port,
                          .connections = 8,
                          .seconds = 4,
                          .method = "POST",
                          .path = "/fx/db/notes",
                          .headers = hdr,
                          .body = "{\"text\":\"under load\"}"};
        tc_load_start(&load);
        usleep(800000);
        CHECK(tc_pg_restart(&pg, m == 0 ? TC_PG_FAST : TC_PG_IMMEDIATE) == 0);
        tc_load_join(&load);
        int rows = atoi(sql1("select count(*) from notes where owner = 'bob'")) - atoi(before);
        fprintf(stderr,
                "  restart -m %s under write load: %llu acknowledged, %llu failed (%llu 5xx, %llu no answer), %d rows written\n",
                modes[m], (unsigned long long)load.ok, (unsigned long long)load.failed, (unsigned long long)load.status_counts[5],
                (unsigned long long)load.status_counts[0], rows);
        CHECK(load.ok > 0);
        CHECK(rows >= (int)load.ok);        /* every acknowledged write is there */
        CHECK(load.status_counts[4] == 0);  /* failures are 503s, never 4xx... */
        CHECK(load.latency_max_ms < 10000); /* ...and nothing hung past its deadline */
    }
}

int main(void)
{
    char base[] = "/tmp/sff-it85-XXXXXX", fdir[512], env_fn[700], env_pg[600], env_redis[500];
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0)
        return 1;
    if (mkdtemp(base) == NULL || tc_functions_dir(base, fdir, sizeof(fdir)) != 0)
        return 1;
    if (tc_pg_start(&pg) != 0 || tc_redis_start(&rs, NULL) != 0) {
        printf("not ok - backends_start\n");
        return 1;
    }
    /* The functions connect as an ordinary role: row-level security does not bind a superuser. */
    if (tc_pg_sql(&pg, "create role app login;"
                       "create table notes (id serial primary key, owner text not null, text text not null);"
                       "alter table notes enable row level security;"
                       "create policy own_notes on notes using (owner = current_setting('request.jwt.claim.sub', true))"
                       "  with check (owner = current_setting('request.jwt.claim.sub', true));"
                       "create table names (name text primary key);"
                       "grant select, insert, update, delete on notes, names to app;"
                       "grant usage on sequence notes_id_seq to app;") != 0)
        return 1;
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    snprintf(env_pg, sizeof(env_pg), "SFF_PG_URL=postgresql://app@127.0.0.1:%d/sff", pg.port);
    snprintf(env_redis, sizeof(env_redis), "SFF_REDIS_URL=%s", rs.url);
    const char *env[] = {env_fn,
                         env_pg,
                         env_redis,
                         "SFF_WORKERS=1",
                         "SFF_SCHEMAS_DIR=schemas",
                         "SFF_PG_POOL=4",
                         "SFF_MIGRATE=off",
                         "SFF_JWT_SECRET=" TC_SECRET,
                         NULL};
    if (tc_server_start(&srv, env) != 0)
        return 1;
    char *a = tc_token("alice", NULL, 600), *b = tc_token("bob", NULL, 600);
    snprintf(alice, sizeof(alice), "%s", a);
    snprintf(bob, sizeof(bob), "%s", b);
    free(a);
    free(b);
    RUN(rows_keep_their_types);
    RUN(row_level_security_from_claims);
    RUN(transactions_commit_or_roll_back);
    RUN(errors_map_to_statuses_without_leaking_sql);
    RUN(three_backends_at_once);
    RUN(concurrent_calls_are_batched);
    RUN(postgres_down_fails_fast_and_recovers);
    RUN(terminated_backends_fail_in_flight_calls_fast);
    RUN(restarts_under_write_load_lose_no_acknowledged_write);
    tc_server_stop(&srv);
    tc_redis_stop(&rs);
    tc_pg_stop(&pg);
    tc_sh("rm -rf '%s'", base);
    return test_done();
}
