/* Migrations against a real Postgres: order, one transaction per file, checksums, several gateways
 * at once, and at serve start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/pg.h"
#include "lib/setup.h"
#include "test.h"

static tc_pg_t pg;
static char base[64], schemas[128];

static int write_sql(const char *name, const char *sql)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/sql/%s", schemas, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(sql, f);
    return fclose(f);
}

/* Runs `sff migrate`; returns its exit status, its output in out (static). */
static int run_migrate(const char **out)
{
    static char buf[16384];
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "SFF_PG_URL='%s' SFF_SCHEMAS_DIR='%s' '%s' migrate 2>&1", pg.url, schemas, tc_build_path("sff"));
    FILE *p = popen(cmd, "r");
    size_t n = p != NULL ? fread(buf, 1, sizeof(buf) - 1, p) : 0;
    buf[n] = '\0';
    int st = p != NULL ? pclose(p) : -1;
    if (out != NULL)
        *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *q(const char *sql)
{
    static char last[4096];
    char *r = tc_pg_query(&pg, sql);
    snprintf(last, sizeof(last), "%s", r != NULL ? r : "(error)");
    free(r);
    return last;
}

TEST(applies_in_order_once)
{
    const char *out;
    CHECK(write_sql("0001_people.sql", "create table people (id serial primary key, name text not null);\n") == 0);
    CHECK(write_sql("0002_seed.sql", "insert into people (name) values ('ada'), ('grace');\n"
                                     "create index people_name on people (lower(name));\n") == 0);
    CHECK(write_sql("README.txt", "not a migration") == 0);
    CHECK_INT(run_migrate(&out), 0);
    CHECK(strstr(out, "2 applied now") != NULL);
    CHECK_STR(q("select count(*) from people"), "2");
    CHECK_STR(q("select string_agg(name, ',' order by version) from sff_migrations"), "0001_people.sql,0002_seed.sql");
    CHECK_STR(q("select length(sha256) from sff_migrations where version = 1"), "64");
    /* again: nothing to do */
    CHECK_INT(run_migrate(&out), 0);
    CHECK(strstr(out, "0 applied now") != NULL);
    CHECK_STR(q("select count(*) from people"), "2");
}

TEST(a_failing_file_applies_nothing_of_itself)
{
    const char *out;
    CHECK(write_sql("0003_broken.sql", "create table pets (id int);\ninsert into nowhere values (1);\n") == 0);
    CHECK(run_migrate(&out) != 0);
    CHECK(strstr(out, "0003_broken.sql failed") != NULL);
    CHECK(strstr(out, "nowhere") != NULL);
    CHECK_STR(q("select to_regclass('pets') is null"), "t");
    CHECK_STR(q("select count(*) from sff_migrations"), "2");
    CHECK(write_sql("0003_broken.sql", "create table pets (id int);\n") == 0);
    CHECK_INT(run_migrate(&out), 0);
    CHECK_STR(q("select count(*) from sff_migrations"), "3");
}

TEST(an_edited_file_stops_everything)
{
    const char *out;
    CHECK(write_sql("0001_people.sql", "create table people (id bigserial primary key, name text not null);\n") == 0);
    CHECK(write_sql("0004_more.sql", "create table more (id int);\n") == 0);
    CHECK(run_migrate(&out) != 0);
    CHECK(strstr(out, "0001_people.sql was edited after it was applied") != NULL);
    CHECK_STR(q("select to_regclass('more') is null"), "t");
    /* a gateway refuses to start on it too */
    char env_url[600], env_schemas[200];
    snprintf(env_url, sizeof(env_url), "SFF_PG_URL=%s", pg.url);
    snprintf(env_schemas, sizeof(env_schemas), "SFF_SCHEMAS_DIR=%s", schemas);
    CHECK(tc_sh("%s %s SFF_LISTEN=127.0.0.1:%d '%s' serve >/dev/null 2>&1", env_url, env_schemas, tc_free_port(),
                tc_build_path("sff")) == 78);
    CHECK(write_sql("0001_people.sql", "create table people (id serial primary key, name text not null);\n") == 0);
}

TEST(bad_names_are_refused)
{
    const char *out;
    CHECK(write_sql("5_x.sql", "select 1;") == 0);
    CHECK(write_sql("0005_x.sql", "select 1;") == 0);
    CHECK(run_migrate(&out) != 0);
    CHECK(strstr(out, "same number") != NULL);
    CHECK(tc_sh("rm '%s/sql/5_x.sql' '%s/sql/0005_x.sql'", schemas, schemas) == 0);
    CHECK(write_sql("nonumber.sql", "select 1;") == 0);
    CHECK(run_migrate(&out) != 0);
    CHECK(strstr(out, "must be named NNNN_name.sql") != NULL);
    CHECK(tc_sh("rm '%s/sql/nonumber.sql'", schemas) == 0);
}

TEST(several_gateways_at_once_apply_once)
{
    CHECK(write_sql("0006_slow.sql", "select pg_sleep(0.5);\ncreate table once (id int);\ninsert into once values (1);\n") == 0);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "for i in 1 2 3 4; do SFF_PG_URL='%s' SFF_SCHEMAS_DIR='%s' '%s' migrate >/dev/null 2>&1 & done; "
             "fail=0; for j in 1 2 3 4; do wait -n || fail=1; done; exit $fail",
             pg.url, schemas, tc_build_path("sff"));
    CHECK(tc_sh("bash -c \"%s\"", cmd) == 0);
    CHECK_STR(q("select count(*) from once"), "1");
    CHECK_STR(q("select count(*) from sff_migrations where version = 6"), "1");
}

TEST(serve_applies_at_start)
{
    tc_server_t srv;
    char env_url[600], env_schemas[200];
    CHECK(write_sql("0007_at_start.sql", "create table at_start (id int);\n") == 0);
    snprintf(env_url, sizeof(env_url), "SFF_PG_URL=%s", pg.url);
    snprintf(env_schemas, sizeof(env_schemas), "SFF_SCHEMAS_DIR=%s", schemas);
    const char *env[] = {env_url, env_schemas, "SFF_WORKERS=1", NULL};
    if (tc_server_start(&srv, env) != 0) {
        CHECK(!"sff starts");
        return;
    }
    CHECK_STR(q("select to_regclass('at_start') is not null"), "t");
    tc_server_stop(&srv);
    /* SFF_MIGRATE=off leaves the database alone */
    CHECK(write_sql("0008_not_now.sql", "create table not_now (id int);\n") == 0);
    const char *env_off[] = {env_url, env_schemas, "SFF_WORKERS=1", "SFF_MIGRATE=off", NULL};
    if (tc_server_start(&srv, env_off) == 0)
        tc_server_stop(&srv);
    CHECK_STR(q("select to_regclass('not_now') is null"), "t");
}

int main(void)
{
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0)
        return 1;
    snprintf(base, sizeof(base), "/tmp/sff-it80-XXXXXX");
    if (mkdtemp(base) == NULL)
        return 1;
    snprintf(schemas, sizeof(schemas), "%s/schemas", base);
    if (tc_sh("mkdir -p '%s/sql' '%s/json'", schemas, schemas) != 0)
        return 1;
    if (tc_pg_start(&pg) != 0) {
        printf("not ok - postgres_starts\n");
        return 1;
    }
    RUN(applies_in_order_once);
    RUN(a_failing_file_applies_nothing_of_itself);
    RUN(an_edited_file_stops_everything);
    RUN(bad_names_are_refused);
    RUN(several_gateways_at_once_apply_once);
    RUN(serve_applies_at_start);
    tc_pg_stop(&pg);
    tc_sh("rm -rf '%s'", base);
    return test_done();
}
