/* The function runtime: many concurrent suspended calls on one worker, cancellation when the
 * client leaves, reloads in generations under load, refusal of another ABI, and --watch. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/setup.h"
#include "test.h"

static char base[64];

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* A private functions dir holding examples.so and a fixture.so built with flags. */
static int start_with_fixture(tc_server_t *srv, const char *sub, const char *flags, const char *extra_env, char *dir_out,
                              size_t dir_size)
{
    char dir[512], path[600], env_fn[700], examples[600];
    snprintf(dir, sizeof(dir), "%s/%s", base, sub);
    if (tc_sh("mkdir -p '%s'", dir) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/fixture.so", dir);
    if (tc_build_fixture(path, flags) != 0)
        return -1;
    snprintf(examples, sizeof(examples), "%s", tc_build_path("functions/examples.so"));
    if (tc_sh("cp '%s' '%s/'", examples, dir) != 0)
        return -1;
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", dir);
    const char *env[] = {env_fn, "SFF_WORKERS=1", "SFF_SCHEMAS_DIR=schemas", extra_env, NULL};
    snprintf(dir_out, dir_size, "%s", dir);
    return tc_server_start(srv, env);
}

static int fixture_version(int port)
{
    tc_response_t res;
    int v = -1;
    if (tc_get(port, "/fx/version", NULL, &res) == 0 && res.status == 200) {
        json_t *j = tc_json(res.body);
        v = (int)json_integer_value(json_object_get(j, "version"));
        json_decref(j);
    }
    tc_response_free(&res);
    return v;
}

TEST(a_thousand_sleeps_on_one_worker)
{
    tc_server_t srv;
    char dir[512];
    if (start_with_fixture(&srv, "sleeps", "", "SFF_LOG_LEVEL=warn", dir, sizeof(dir)) != 0) {
        CHECK(!"the server starts");
        return;
    }
    tc_load_t load = {.port = srv.port,
                      .connections = 1000,
                      .requests = 1000,
                      .method = "GET",
                      .path = "/examples/sleep?ms=100",
                      .headers = NULL};
    double t0 = now_s();
    CHECK(tc_load_run(&load) == 0);
    double took = now_s() - t0;
    fprintf(stderr, "  1000 concurrent 100 ms sleeps on one worker: %.0f ms, max latency %.0f ms\n", took * 1000,
            load.latency_max_ms);
    CHECK_INT(load.ok, 1000);
    CHECK_INT(load.failed, 0);
    /* all at once, not one after another (which would take 100 s): generous for slow CI and ASan */
    CHECK(load.latency_max_ms < 2000);
    tc_server_stop(&srv);
}

TEST(keep_alive_after_a_suspended_call)
{
    tc_server_t srv;
    char dir[512];
    if (start_with_fixture(&srv, "keepalive", "", NULL, dir, sizeof(dir)) != 0) {
        CHECK(!"the server starts");
        return;
    }
    /* a response sent from a timer (not from h2o's own I/O) must not leave the connection's next
     * request waiting for the event loop's idle wake-up */
    tc_load_t load = {.port = srv.port, .connections = 1, .requests = 50, .method = "GET", .path = "/fx/nap?ms=1"};
    CHECK(tc_load_run(&load) == 0);
    CHECK_INT(load.ok, 50);
    fprintf(stderr, "  50 suspended calls on one keep-alive connection: %.0f ms\n", load.elapsed_s * 1000);
    CHECK(load.elapsed_s < 5); /* ~0.1 s; each request waited up to 1 s for the loop before the fix */
    tc_server_stop(&srv);
}

TEST(cancelled_when_the_client_leaves)
{
    tc_server_t srv;
    char dir[512];
    if (start_with_fixture(&srv, "cancel", "", NULL, dir, sizeof(dir)) != 0) {
        CHECK(!"the server starts");
        return;
    }
    /* HTTP/1.1: the connection closes while the handler sleeps */
    for (int i = 0; i < 20; i++) {
        int fd = tc_connect(srv.port);
        const char *req = "GET /fx/nap?ms=3000 HTTP/1.1\r\nHost: x\r\n\r\n";
        CHECK(fd >= 0 && tc_write_all(fd, req, strlen(req)) == 0);
        usleep(20000);
        close(fd);
    }
    /* HTTP/2: the stream is reset while the handler sleeps (h2load cancels on exit via its timeout) */
    tc_sh("timeout -s INT 1 h2load -n 40 -c 1 -m 40 'http://127.0.0.1:%d/fx/nap?ms=3000' >/dev/null 2>&1", srv.port);
    int cancelled = 0;
    tc_response_t res;
    for (int i = 0; i < 40 && cancelled < 20; i++) {
        usleep(100000);
        if (tc_get(srv.port, "/fx/stats", NULL, &res) == 0) {
            json_t *j = tc_json(res.body);
            cancelled = (int)json_integer_value(json_object_get(j, "cancelled"));
            json_decref(j);
        }
        tc_response_free(&res);
    }
    /* each cancelled handler returned at once from its sleep: long before its 3 s were up */
    CHECK(cancelled >= 20);
    CHECK(tc_get(srv.port, "/fx/stats", NULL, &res) == 0);
    json_t *j = tc_json(res.body);
    CHECK_INT(json_integer_value(json_object_get(j, "completed")), 0);
    json_decref(j);
    tc_response_free(&res);
    tc_server_stop(&srv);
}

TEST(reload_under_load_fails_nothing)
{
    tc_server_t srv;
    char dir[512], path[600], flags[64];
    if (start_with_fixture(&srv, "reload", "-DFX_VERSION=1", NULL, dir, sizeof(dir)) != 0) {
        CHECK(!"the server starts");
        return;
    }
    snprintf(path, sizeof(path), "%s/fixture.so", dir);
    CHECK_INT(fixture_version(srv.port), 1);
    /* steady traffic, including calls that are suspended across the swap */
    tc_load_t fast = {.port = srv.port, .connections = 16, .seconds = 4, .method = "GET", .path = "/fx/version"};
    tc_load_t slow = {.port = srv.port, .connections = 16, .seconds = 4, .method = "GET", .path = "/fx/nap?ms=150"};
    tc_load_start(&fast);
    tc_load_start(&slow);
    int reloads = 0;
    for (int v = 2; v <= 8; v++) {
        snprintf(flags, sizeof(flags), "-DFX_VERSION=%d", v);
        CHECK(tc_build_fixture(path, flags) == 0);
        tc_server_signal(&srv, SIGHUP);
        reloads++;
        usleep(400000);
    }
    tc_load_join(&fast);
    tc_load_join(&slow);
    fprintf(stderr, "  %d reloads under load: %llu + %llu requests ok, %llu + %llu failed\n", reloads, (unsigned long long)fast.ok,
            (unsigned long long)slow.ok, (unsigned long long)fast.failed, (unsigned long long)slow.failed);
    CHECK(fast.ok > 100 && slow.ok > 50);
    CHECK_INT(fast.failed, 0);
    CHECK_INT(slow.failed, 0);
    CHECK_INT(fixture_version(srv.port), 8);
    /* old generations were unloaded once their last request ended */
    usleep(300000);
    CHECK(tc_server_log_contains(&srv, "module fixture unloaded"));
    tc_response_t res;
    CHECK(tc_get(srv.port, "/_metrics", NULL, &res) == 0);
    CHECK(strstr(res.body, "sff_function_reloads_total 7") != NULL);
    tc_response_free(&res);
    tc_server_stop(&srv);
}

TEST(another_abi_is_refused_and_the_old_version_serves)
{
    tc_server_t srv;
    char dir[512], path[600];
    if (start_with_fixture(&srv, "abi", "-DFX_VERSION=3", NULL, dir, sizeof(dir)) != 0) {
        CHECK(!"the server starts");
        return;
    }
    snprintf(path, sizeof(path), "%s/fixture.so", dir);
    CHECK_INT(fixture_version(srv.port), 3);
    CHECK(tc_build_fixture(path, "-DFX_VERSION=4 -DFX_ABI_MAJOR=2") == 0);
    tc_server_signal(&srv, SIGHUP);
    int logged = 0;
    for (int i = 0; i < 50 && !logged; i++) {
        usleep(50000);
        logged = tc_server_log_contains(&srv, "built for sff ABI 2.0, this gateway runs ABI 1.");
    }
    CHECK(logged);
    CHECK_INT(fixture_version(srv.port), 3);
    /* a module that is not a shared object at all is refused the same way */
    CHECK(tc_sh("echo 'not an ELF file' > '%s.tmp' && mv '%s.tmp' '%s'", path, path, path) == 0);
    tc_server_signal(&srv, SIGHUP);
    usleep(300000);
    CHECK(tc_server_log_contains(&srv, "cannot load"));
    CHECK_INT(fixture_version(srv.port), 3);
    tc_server_stop(&srv);
}

TEST(watch_reloads_on_change)
{
    tc_server_t srv;
    char dir[512], path[600], env_fn[700];
    snprintf(dir, sizeof(dir), "%s/watch", base);
    CHECK(tc_sh("mkdir -p '%s'", dir) == 0);
    snprintf(path, sizeof(path), "%s/fixture.so", dir);
    CHECK(tc_build_fixture(path, "-DFX_VERSION=5") == 0);
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", dir);
    /* tc_server_start runs `sff serve`; --watch goes through SFF_TEST_SERVE_ARGS */
    setenv("SFF_TEST_SERVE_ARGS", "--watch", 1);
    const char *env[] = {env_fn, "SFF_WORKERS=2", "SFF_SCHEMAS_DIR=schemas", NULL};
    int started = tc_server_start(&srv, env);
    unsetenv("SFF_TEST_SERVE_ARGS");
    if (started != 0) {
        CHECK(!"the server starts");
        return;
    }
    CHECK_INT(fixture_version(srv.port), 5);
    CHECK(tc_build_fixture(path, "-DFX_VERSION=6") == 0);
    int v = 0;
    for (int i = 0; i < 60 && v != 6; i++) {
        usleep(50000);
        v = fixture_version(srv.port);
    }
    CHECK_INT(v, 6);
    /* both workers serve the new version */
    int sixes = 0;
    for (int i = 0; i < 20; i++)
        sixes += fixture_version(srv.port) == 6;
    CHECK_INT(sixes, 20);
    tc_server_stop(&srv);
}

int main(void)
{
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0)
        return 1;
    snprintf(base, sizeof(base), "/tmp/sff-it40-XXXXXX");
    if (mkdtemp(base) == NULL)
        return 1;
    RUN(a_thousand_sleeps_on_one_worker);
    RUN(keep_alive_after_a_suspended_call);
    RUN(cancelled_when_the_client_leaves);
    RUN(reload_under_load_fails_nothing);
    RUN(another_abi_is_refused_and_the_old_version_serves);
    RUN(watch_reloads_on_change);
    tc_sh("rm -rf '%s'", base);
    return test_done();
}
