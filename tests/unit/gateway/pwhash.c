/*
 * pwhash.c - unit tests of gateway/pwhash.c on a real h2o event loop driven the way the worker
 * drives it (h2o_evloop_run bounded by our timers, then sff_timers_run):
 *  - hash then verify: argon2id strings, match and mismatch, passwords with NUL bytes, a callback
 *    that starts the next request, callbacks never inside the call;
 *  - refusals at once: not set up, bad configurations, bad or too costly stored hashes, a too long
 *    password; their callbacks never fire;
 *  - the loop keeps turning while 8 hashes at the interactive limits run, and while it maps and
 *    unmaps memory itself (longest gap, run-queue waits aside, < 20 ms);
 *  - a flood of 200 at the interactive limits: the queue's worth succeed, the rest get
 *    SFF_EOVERLOADED, and the peak RSS (the hasher's and the worker's) stays near the running
 *    hashes' memory;
 *  - SFF_ERATELIMIT per client; the memory budget caps the hashes running at once;
 *  - cancel (queued, in the hasher, picked up in the same batch) and shutdown, also from a
 *    callback: no callback, nothing leaked;
 *  - the hasher process: none of the worker's descriptors, deaf to its signals, replaced when it
 *    dies (its requests fail with SFF_EUNAVAILABLE), gone with a worker that dies;
 *  - the dummy verification costs what a real one costs.
 * The interactive limits are used where the figures matter; the other tests use small limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>
#include "test.h"
#include "h2o.h"
#include "sff.h"
#include "timer.h"
#include "pwhash.h"

static h2o_loop_t *loop;

/* ---- driving the loop ------------------------------------------------------------------------- */

/*
 * The longest gap between two iterations, raw and without the time the loop's thread was runnable
 * but waiting for a CPU (its run-queue delay, from /proc/thread-self/schedstat). The second is what
 * this code controls: a loop blocked on a hash would sleep, not wait on the run queue; the first
 * also counts other programs on a shared 2-core machine.
 */
static uint64_t max_gap_us, max_own_gap_us, last_turn_us, last_wait_us;
static int turn_maps; /* each iteration also maps and unmaps 1 MiB, as a worker does for a large body */

static uint64_t runqueue_wait_us(void)
{
    unsigned long long run_ns = 0, wait_ns = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &run_ns, &wait_ns) != 2)
        wait_ns = 0;
    fclose(f);
    return wait_ns / 1000;
}

static void turn(void)
{
    if (turn_maps) {
        void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            memset(p, 1, 4096);
            munmap(p, 1 << 20);
        }
    }
    h2o_evloop_run(loop, sff_timers_next_wait(sff_now_ms(), 10));
    sff_timers_run(sff_now_ms());
    uint64_t now = sff_now_us(), wait = runqueue_wait_us();
    if (last_turn_us != 0) {
        uint64_t gap = now - last_turn_us, waited = wait - last_wait_us;
        if (gap > max_gap_us)
            max_gap_us = gap;
        if (gap - (waited < gap ? waited : gap) > max_own_gap_us)
            max_own_gap_us = gap - (waited < gap ? waited : gap);
    }
    last_turn_us = now;
    last_wait_us = wait;
}

/* A 1 ms ticker on our timers keeps the loop from sleeping 10 ms, so the gaps measure the loop. */
static sff_timer_t ticker;

static void on_tick(sff_timer_t *t)
{
    sff_timer_start(t, 1);
}

static void ticker_start(void)
{
    sff_timer_init(&ticker, on_tick, NULL);
    sff_timer_start(&ticker, 1);
}

static void gap_reset(void)
{
    max_gap_us = max_own_gap_us = 0;
    last_turn_us = sff_now_us();
    last_wait_us = runqueue_wait_us();
}

/* Runs the loop until *count >= target or timeout_ms passed; returns whether it got there. */
static int run_until(int *count, int target, int timeout_ms)
{
    uint64_t deadline = sff_now_ms() + (uint64_t)timeout_ms;
    while (*count < target && sff_now_ms() < deadline)
        turn();
    return *count >= target;
}

static void run_for(int ms)
{
    uint64_t deadline = sff_now_ms() + (uint64_t)ms;
    while (sff_now_ms() < deadline)
        turn();
}

/* ---- results ---------------------------------------------------------------------------------- */

static int in_call;   /* set around the calls: a callback must never see it */
static int callbacks; /* every callback */

typedef struct {
    int calls, err, match;
    char hash[crypto_pwhash_STRBYTES];
    uint64_t done_us;
} result_t;

static void on_hash(void *data, int err, const char *hash_str)
{
    result_t *r = data;
    CHECK(!in_call);
    callbacks++;
    r->calls++;
    r->err = err;
    r->done_us = sff_now_us();
    CHECK((err == 0) == (hash_str != NULL));
    if (hash_str != NULL) {
        CHECK(strlen(hash_str) < sizeof(r->hash));
        snprintf(r->hash, sizeof(r->hash), "%s", hash_str);
    }
}

static void on_verify(void *data, int err, int match)
{
    result_t *r = data;
    CHECK(!in_call);
    callbacks++;
    r->calls++;
    r->err = err;
    r->match = match;
    r->done_us = sff_now_us();
}

static int hash(const char *pw, size_t len, result_t *r, sff_pwhash_req_t **req)
{
    in_call = 1;
    int ret = sff_pwhash_hash(pw, len, on_hash, r, req);
    in_call = 0;
    return ret;
}

static int verify(const char *hash_str, const char *pw, size_t len, result_t *r, sff_pwhash_req_t **req)
{
    in_call = 1;
    int ret = sff_pwhash_verify(hash_str, pw, len, on_verify, r, req);
    in_call = 0;
    return ret;
}

/* ---- setup ------------------------------------------------------------------------------------ */

#define MIB ((size_t)1 << 20)

static int setup(size_t threads, size_t queue, unsigned long long ops, size_t mem)
{
    char err[256] = "";
    sff_pwhash_config_t c = {.threads = threads, .queue_size = queue, .opslimit = ops, .memlimit = mem};
    int ret = sff_pwhash_setup(loop, &c, err, sizeof(err));
    if (ret != 0)
        fprintf(stderr, "  setup: %s\n", err);
    return ret;
}

/* The small limits of most tests: well under a millisecond a hash. */
static int setup_small(size_t threads, size_t queue)
{
    return setup(threads, queue, 1, 1 * MIB);
}

static void shutdown_pool(void)
{
    sff_pwhash_shutdown();
    turn(); /* h2o disposes of the eventfd's socket */
}

/* KiB of a line of /proc/PID/status ("VmRSS", "VmHWM"), or 0; pid 0 is this process. */
static size_t status_kib(int pid, const char *name)
{
    char path[64];
    snprintf(path, sizeof(path), pid != 0 ? "/proc/%d/status" : "/proc/self/status", pid);
    FILE *f = fopen(path, "r");
    char line[256];
    size_t v = 0, n = strlen(name);
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            v = strtoull(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* Resets VmHWM of PID (0: this process) to its current RSS; 0 or -1. */
static int reset_peak_rss(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), pid != 0 ? "/proc/%d/clear_refs" : "/proc/self/clear_refs", pid);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, "5", 1);
    close(fd);
    return n == 1 ? 0 : -1;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static result_t chained;

/* Registers then logs in: the verification starts from the hash's callback. */
static void on_hash_then_verify(void *data, int err, const char *hash_str)
{
    on_hash(data, err, hash_str);
    if (err == 0)
        CHECK_INT(sff_pwhash_verify(hash_str, "s3cret", 6, on_verify, &chained, NULL), 0);
}

TEST(hash_and_verify)
{
    CHECK_INT(setup_small(2, 0), 0);
    result_t h = {0};
    CHECK_INT(hash("correct horse", 13, &h, NULL), 0);
    CHECK_INT(h.calls, 0); /* never inside the call, even if a thread was quick */
    CHECK(run_until(&h.calls, 1, 5000));
    CHECK_INT(h.err, 0);
    CHECK(strncmp(h.hash, "$argon2id$v=19$m=1024,t=1,p=1$", 30) == 0);
    CHECK_INT(crypto_pwhash_str_needs_rehash(h.hash, 1, 1 * MIB), 0);

    result_t ok = {0}, bad = {0}, prefix = {0};
    CHECK_INT(verify(h.hash, "correct horse", 13, &ok, NULL), 0);
    CHECK_INT(verify(h.hash, "correct horsf", 13, &bad, NULL), 0);
    CHECK_INT(verify(h.hash, "correct horse", 12, &prefix, NULL), 0);
    CHECK(run_until(&prefix.calls, 1, 5000) && run_until(&bad.calls, 1, 5000) && run_until(&ok.calls, 1, 5000));
    CHECK_INT(ok.err, 0);
    CHECK_INT(ok.match, 1);
    CHECK_INT(bad.err, 0);
    CHECK_INT(bad.match, 0);
    CHECK_INT(prefix.match, 0);

    /* any bytes: NUL included, and the empty password */
    result_t z = {0}, z_ok = {0}, z_bad = {0}, e = {0}, e_ok = {0};
    CHECK_INT(hash("a\0b", 3, &z, NULL), 0);
    CHECK_INT(hash("", 0, &e, NULL), 0);
    CHECK(run_until(&z.calls, 1, 5000) && run_until(&e.calls, 1, 5000));
    CHECK_INT(verify(z.hash, "a\0b", 3, &z_ok, NULL), 0);
    CHECK_INT(verify(z.hash, "a\0c", 3, &z_bad, NULL), 0);
    CHECK_INT(verify(e.hash, NULL, 0, &e_ok, NULL), 0);
    CHECK(run_until(&z_ok.calls, 1, 5000) && run_until(&z_bad.calls, 1, 5000) && run_until(&e_ok.calls, 1, 5000));
    CHECK_INT(z_ok.match, 1);
    CHECK_INT(z_bad.match, 0);
    CHECK_INT(e_ok.match, 1);

    /* two hashes of one password differ (random salts) */
    result_t h2 = {0};
    CHECK_INT(hash("correct horse", 13, &h2, NULL), 0);
    CHECK(run_until(&h2.calls, 1, 5000));
    CHECK(strcmp(h.hash, h2.hash) != 0);

    /* a callback starts the next request */
    result_t reg = {0};
    memset(&chained, 0, sizeof(chained));
    in_call = 1;
    CHECK_INT(sff_pwhash_hash("s3cret", 6, on_hash_then_verify, &reg, NULL), 0);
    in_call = 0;
    CHECK(run_until(&chained.calls, 1, 5000));
    CHECK_INT(chained.match, 1);
    CHECK_INT(reg.calls, 1);

    sff_pwhash_stats_t s = sff_pwhash_stats();
    CHECK_INT(s.completed, 12);
    CHECK_INT(s.pending, 0);
    CHECK_INT(s.queued, 0);
    CHECK_INT(s.running, 0);
    CHECK_INT(s.memory, 0);
    CHECK(s.memory_peak >= 1 * MIB && s.memory_peak <= 2 * MIB);
    shutdown_pool();
}

TEST(refusals)
{
    char err[256];
    result_t r = {0};
    sff_pwhash_req_t *req = NULL;
    int before = callbacks;

    /* not set up */
    CHECK_INT(hash("x", 1, &r, &req), SFF_ENOTREADY);
    CHECK_INT(verify(NULL, "x", 1, &r, &req), SFF_ENOTREADY);

    /* configurations that cannot work */
    sff_pwhash_config_t over = {.memlimit = 64 * MIB, .memory_budget = 32 * MIB};
    err[0] = '\0';
    CHECK_INT(sff_pwhash_setup(loop, &over, err, sizeof(err)), SFF_EBADREQ);
    CHECK(strstr(err, "budget") != NULL);
    sff_pwhash_config_t tiny = {.memlimit = 1024};
    CHECK_INT(sff_pwhash_setup(loop, &tiny, err, sizeof(err)), SFF_EBADREQ);
    sff_pwhash_config_t many = {.threads = 1000};
    CHECK_INT(sff_pwhash_setup(loop, &many, err, sizeof(err)), SFF_EBADREQ);

    CHECK_INT(setup_small(1, 0), 0);
    CHECK_INT(sff_pwhash_setup(loop, NULL, err, sizeof(err)), SFF_EINTERNAL); /* twice */

    /* stored hashes that are not argon2, or malformed, or too costly */
    static const char *const bad[] = {
        "",
        "plain",
        "$2b$10$abcdefghijklmnopqrstuv",
        "$argon2d$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA",
        "$argon2id$v=19$m=,t=1,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=1024,t=0,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=-1,t=1,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=1024 t=1,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", /* 4 GiB */
        "$argon2id$v=19$m=1024,t=100,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",  /* 100x the work */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int ret = verify(bad[i], "x", 1, &r, &req);
        if (ret != SFF_EINTERNAL)
            fprintf(stderr, "  bad hash %zu: %d\n", i, ret);
        CHECK_INT(ret, SFF_EINTERNAL);
    }
    char longhash[300];
    memset(longhash, 'a', sizeof(longhash) - 1);
    memcpy(longhash, "$argon2id$v=19$m=1024,t=1,p=1$", 30);
    longhash[sizeof(longhash) - 1] = '\0';
    CHECK_INT(verify(longhash, "x", 1, &r, &req), SFF_EINTERNAL);

    /* a too long password; the longest one works */
    static char pw[SFF_PWHASH_MAX_PASSWORD + 1];
    memset(pw, 'p', sizeof(pw));
    CHECK_INT(hash(pw, sizeof(pw), &r, &req), SFF_EINVALID);
    CHECK_INT(verify(NULL, pw, sizeof(pw), &r, &req), SFF_EINVALID);
    CHECK(req == NULL); /* untouched by a failed call */
    result_t longest = {0};
    CHECK_INT(hash(pw, SFF_PWHASH_MAX_PASSWORD, &longest, NULL), 0);
    CHECK(run_until(&longest.calls, 1, 5000));
    CHECK_INT(longest.err, 0);

    /* a well-formed hash libsodium cannot decode: the callback reports the error, not a mismatch */
    result_t undecodable = {0};
    CHECK_INT(verify("$argon2id$v=19$m=1024,t=1,p=1$!!!!$!!!!", "x", 1, &undecodable, NULL), 0);
    CHECK(run_until(&undecodable.calls, 1, 5000));
    CHECK_INT(undecodable.err, SFF_EINTERNAL);
    CHECK_INT(undecodable.match, 0);

    run_for(20);
    CHECK_INT(r.calls, 0);
    CHECK_INT(callbacks - before, 2);
    shutdown_pool();
}

/* The interactive limits: what a hash costs here, and the loop's longest gap while 8 run. */
TEST(loop_keeps_turning)
{
    CHECK_INT(setup(1, 0, 0, 0), 0); /* the defaults: one thread, interactive limits */
    uint64_t min_us = UINT64_MAX;
    char first[crypto_pwhash_STRBYTES] = "";
    for (int i = 0; i < 3; i++) {
        result_t h = {0};
        uint64_t t0 = sff_now_us();
        CHECK_INT(hash("interactive", 11, &h, NULL), 0);
        CHECK(run_until(&h.calls, 1, 5000));
        if (h.done_us - t0 < min_us)
            min_us = h.done_us - t0;
        if (i == 0)
            memcpy(first, h.hash, sizeof(first));
    }
    CHECK(strncmp(first, "$argon2id$v=19$m=65536,t=2,p=1$", 31) == 0);
    sff_pwhash_stats_t s = sff_pwhash_stats();
    printf("# interactive limits (t=2, 64 MiB): hash %.1f ms (mean on the thread), %.1f ms (fastest, call to callback)\n",
           (double)s.work_us / (double)s.completed / 1000.0, (double)min_us / 1000.0);
    shutdown_pool();

    /* two threads: both cores hash while the loop must keep turning, and mapping memory */
    CHECK_INT(setup(2, 0, 0, 0), 0);
    result_t r[8] = {{0}};
    ticker_start();
    turn_maps = 1;
    gap_reset();
    uint64_t t0 = sff_now_us();
    for (int i = 0; i < 8; i++)
        CHECK_INT(i % 2 == 0 ? hash("interactive", 11, &r[i], NULL) : verify(first, "interactive", 11, &r[i], NULL), 0);
    int turns = 0, done = 0;
    while (done < 8 && sff_now_us() - t0 < 10000000) {
        turn();
        turns++;
        done = 0;
        for (int i = 0; i < 8; i++)
            done += r[i].calls;
    }
    uint64_t wall_us = sff_now_us() - t0;
    sff_timer_stop(&ticker);
    turn_maps = 0;
    CHECK_INT(done, 8);
    for (int i = 0; i < 8; i++) {
        CHECK_INT(r[i].err, 0);
        if (i % 2 == 1)
            CHECK_INT(r[i].match, 1);
    }
    printf("# 8 hashes on 2 threads: %.0f ms, %d loop iterations, longest gap %.1f ms (%.1f ms without run-queue waits)\n",
           (double)wall_us / 1000.0, turns, (double)max_gap_us / 1000.0, (double)max_own_gap_us / 1000.0);
    CHECK(max_own_gap_us < 20000);
    shutdown_pool();
}

/* 200 requests at once at the interactive limits. */
TEST(flood_is_bounded)
{
    enum { N = 200, QUEUE = 32 };
    CHECK_INT(setup(2, QUEUE, 0, 0), 0);
    int hasher = sff_pwhash_pid();
    CHECK(hasher > 0);
    static result_t r[N];
    memset(r, 0, sizeof(r));
    /* the memory of the hashes is the hasher's; the worker's own must not grow either */
    int peaks = reset_peak_rss(0) == 0 && reset_peak_rss(hasher) == 0;
    size_t base_kib = status_kib(0, "VmRSS"), hbase_kib = status_kib(hasher, "VmRSS");
    size_t max_kib = base_kib, hmax_kib = hbase_kib;
    int accepted = 0, overloaded = 0, other = 0;
    for (int i = 0; i < N; i++) {
        int ret = hash("flood", 5, &r[i], NULL);
        if (ret == 0)
            accepted++;
        else if (ret == SFF_EOVERLOADED)
            overloaded++;
        else
            other++;
    }
    CHECK_INT(accepted, QUEUE);
    CHECK_INT(overloaded, N - QUEUE);
    CHECK_INT(other, 0);
    sff_pwhash_stats_t s = sff_pwhash_stats();
    CHECK_INT(s.rejected, N - QUEUE);
    CHECK_INT(s.pending, QUEUE);
    CHECK_INT(s.running, 2);
    CHECK_INT(s.queued, QUEUE - 2);
    uint32_t retry = sff_pwhash_retry_after_s();
    CHECK(retry >= 1 && retry <= 10);

    uint64_t t0 = sff_now_us();
    ticker_start();
    turn_maps = 1;
    gap_reset();
    int done = 0;
    while (done < QUEUE && sff_now_us() - t0 < 20000000) {
        turn();
        size_t kib = status_kib(0, "VmRSS"), hkib = status_kib(hasher, "VmRSS");
        max_kib = kib > max_kib ? kib : max_kib;
        hmax_kib = hkib > hmax_kib ? hkib : hmax_kib;
        done = 0;
        for (int i = 0; i < N; i++)
            done += r[i].calls;
    }
    sff_timer_stop(&ticker);
    turn_maps = 0;
    CHECK_INT(done, QUEUE);
    for (int i = 0; i < QUEUE; i++) {
        CHECK_INT(r[i].calls, 1);
        CHECK_INT(r[i].err, 0);
        CHECK(strncmp(r[i].hash, "$argon2id$", 10) == 0);
    }
    for (int i = QUEUE; i < N; i++)
        CHECK_INT(r[i].calls, 0);
    if (peaks) {
        size_t hwm = status_kib(0, "VmHWM"), hhwm = status_kib(hasher, "VmHWM");
        max_kib = hwm > max_kib ? hwm : max_kib;
        hmax_kib = hhwm > hmax_kib ? hhwm : hmax_kib;
    }
    s = sff_pwhash_stats();
    double mib = (double)(max_kib - base_kib) / 1024.0, hmib = (double)(hmax_kib - hbase_kib) / 1024.0;
    printf("# flood of %d at the interactive limits: %d accepted, %d SFF_EOVERLOADED, drained in %.0f ms (Retry-After %u s); "
           "peak RSS: hasher +%.0f MiB, worker +%.1f MiB (%s), budgeted %llu MiB; longest loop gap %.1f ms (%.1f ms without "
           "run-queue waits)\n",
           N, accepted, overloaded, (double)(sff_now_us() - t0) / 1000.0, retry, hmib, mib, peaks ? "VmHWM" : "sampled",
           (unsigned long long)(s.memory_peak >> 20), (double)max_gap_us / 1000.0, (double)max_own_gap_us / 1000.0);
    CHECK(s.memory_peak <= 2 * 64 * MIB);
    CHECK(hmib > 60);                  /* the hashes did use their memory, there, */
    CHECK(hmib + mib < 3 * 64);        /* the two running hashes and some slack, */
    CHECK(hmib + mib < N * 64 / 20.0); /* far from what 200 at once would take */
    CHECK(max_own_gap_us < 20000);

    /* drained: accepted again */
    result_t again = {0};
    CHECK_INT(hash("flood", 5, &again, NULL), 0);
    CHECK(run_until(&again.calls, 1, 5000));
    shutdown_pool();
}

TEST(rate_limited_per_client)
{
    char err[256];
    sff_pwhash_config_t c = {.threads = 1, .queue_size = 16, .max_per_client = 2, .opslimit = 1, .memlimit = 1 * MIB};
    CHECK_INT(sff_pwhash_setup(loop, &c, err, sizeof(err)), 0);
    result_t r[8] = {{0}};
    const char *ip = "10.0.0.1", *ip2 = "10.0.0.2";
    CHECK_INT(sff_pwhash_verify_as(ip, strlen(ip), NULL, "x", 1, on_verify, &r[0], NULL), 0);
    CHECK_INT(sff_pwhash_hash_as(ip, strlen(ip), "x", 1, on_hash, &r[1], NULL), 0);
    CHECK_INT(sff_pwhash_verify_as(ip, strlen(ip), NULL, "x", 1, on_verify, &r[2], NULL), SFF_ERATELIMIT);
    CHECK_INT(sff_pwhash_hash_as(ip, strlen(ip), "x", 1, on_hash, &r[2], NULL), SFF_ERATELIMIT);
    /* another client, and requests of no client, are not held back */
    CHECK_INT(sff_pwhash_verify_as(ip2, strlen(ip2), NULL, "x", 1, on_verify, &r[3], NULL), 0);
    CHECK_INT(sff_pwhash_verify_as("", 0, NULL, "x", 1, on_verify, &r[4], NULL), 0);
    CHECK_INT(sff_pwhash_verify_as("", 0, NULL, "x", 1, on_verify, &r[5], NULL), 0);
    CHECK_INT(sff_pwhash_verify(NULL, "x", 1, on_verify, &r[6], NULL), 0);
    sff_pwhash_stats_t s = sff_pwhash_stats();
    CHECK_INT(s.rate_limited, 2);
    CHECK_INT(s.rejected, 0);
    CHECK(run_until(&r[6].calls, 1, 5000) && run_until(&r[0].calls, 1, 5000) && run_until(&r[1].calls, 1, 5000));
    CHECK_INT(r[2].calls, 0);
    /* once called back, the client may come again */
    CHECK_INT(sff_pwhash_verify_as(ip, strlen(ip), NULL, "x", 1, on_verify, &r[7], NULL), 0);
    CHECK(run_until(&r[7].calls, 1, 5000));
    /* a canceled request no longer counts either */
    sff_pwhash_req_t *a, *b;
    result_t x = {0};
    CHECK_INT(sff_pwhash_hash_as(ip, strlen(ip), "x", 1, on_hash, &x, &a), 0);
    CHECK_INT(sff_pwhash_hash_as(ip, strlen(ip), "x", 1, on_hash, &x, &b), 0);
    sff_pwhash_cancel(b);
    CHECK_INT(sff_pwhash_hash_as(ip, strlen(ip), "x", 1, on_hash, &x, NULL), 0);
    CHECK(run_until(&x.calls, 2, 5000));
    run_for(20);
    CHECK_INT(x.calls, 2);
    (void)a;
    shutdown_pool();
}

TEST(memory_budget)
{
    char err[256];
    /* three threads, but the budget holds one hash */
    sff_pwhash_config_t c = {.threads = 3, .opslimit = 1, .memlimit = 8 * MIB, .memory_budget = 8 * MIB};
    CHECK_INT(sff_pwhash_setup(loop, &c, err, sizeof(err)), 0);
    result_t r[6] = {{0}};
    for (int i = 0; i < 6; i++)
        CHECK_INT(hash("budget", 6, &r[i], NULL), 0);
    uint64_t max_running = 0;
    int done = 0;
    uint64_t deadline = sff_now_ms() + 10000;
    while (done < 6 && sff_now_ms() < deadline) {
        sff_pwhash_stats_t s = sff_pwhash_stats();
        if (s.running > max_running)
            max_running = s.running;
        usleep(100);
        turn();
        done = 0;
        for (int i = 0; i < 6; i++)
            done += r[i].calls;
    }
    CHECK_INT(done, 6);
    CHECK_INT(max_running, 1);
    sff_pwhash_stats_t s = sff_pwhash_stats();
    CHECK_INT(s.memory_peak, 8 * MIB);

    /* a stored hash over the budget is refused at once; one within the work cap runs */
    char big[crypto_pwhash_STRBYTES], slow[crypto_pwhash_STRBYTES], ok[crypto_pwhash_STRBYTES];
    const char *tail = r[0].hash + 29; /* "$salt$tag" after "$argon2id$v=19$m=8192,t=1,p=1" */
    CHECK(*tail == '$');
    snprintf(big, sizeof(big), "$argon2id$v=19$m=16384,t=1,p=1%.90s", tail);
    snprintf(slow, sizeof(slow), "$argon2id$v=19$m=8192,t=%d,p=1%.90s", SFF_PWHASH_MAX_WORK + 1, tail);
    snprintf(ok, sizeof(ok), "$argon2id$v=19$m=8192,t=%d,p=1%.90s", SFF_PWHASH_MAX_WORK, tail);
    result_t v = {0};
    CHECK_INT(verify(big, "budget", 6, &v, NULL), SFF_EINTERNAL);
    CHECK_INT(verify(slow, "budget", 6, &v, NULL), SFF_EINTERNAL);
    CHECK_INT(verify(ok, "budget", 6, &v, NULL), 0);
    CHECK(run_until(&v.calls, 1, 5000));
    CHECK_INT(v.err, 0);
    CHECK_INT(v.match, 0); /* other parameters, other tag */
    shutdown_pool();
}

TEST(cancel)
{
    /* one thread, ~15 ms a hash: A is sent to the hasher at once, B, C, D wait */
    CHECK_INT(setup(1, 0, 2, 16 * MIB), 0);
    result_t a = {0}, b = {0}, c = {0}, d = {0};
    sff_pwhash_req_t *ra, *rb, *rc, *rd;
    CHECK_INT(hash("a", 1, &a, &ra), 0);
    CHECK_INT(hash("b", 1, &b, &rb), 0);
    CHECK_INT(verify(NULL, "c", 1, &c, &rc), 0);
    CHECK_INT(hash("d", 1, &d, &rd), 0);
    sff_pwhash_stats_t s = sff_pwhash_stats();
    CHECK_INT(s.running, 1);
    CHECK_INT(s.queued, 3);
    sff_pwhash_cancel(ra); /* running: it ends in the hasher, its reply is dropped */
    sff_pwhash_cancel(ra); /* twice is harmless until then */
    sff_pwhash_cancel(rb); /* queued: freed at once, never sent */
    sff_pwhash_cancel(rc);
    s = sff_pwhash_stats();
    CHECK_INT(s.queued, 1);
    CHECK_INT(s.pending, 2);
    CHECK(run_until(&d.calls, 1, 5000));
    run_for(30);
    CHECK_INT(a.calls + b.calls + c.calls, 0);
    CHECK_INT(d.calls, 1);
    CHECK_INT(d.err, 0);
    s = sff_pwhash_stats();
    CHECK_INT(s.canceled, 3);
    CHECK_INT(s.completed, 2); /* A and D: B and C never reached the hasher */
    CHECK_INT(s.pending, 0);
    (void)rd;
    shutdown_pool();
}

/* Two replies picked up in one batch: the first callback cancels the second. */
typedef struct {
    result_t r;
    sff_pwhash_req_t *req, **other;
} pair_t;

static void on_hash_cancel_other(void *data, int err, const char *hash_str)
{
    pair_t *p = data;
    on_hash(&p->r, err, hash_str);
    sff_pwhash_cancel(*p->other);
}

TEST(cancel_from_a_callback)
{
    CHECK_INT(setup_small(2, 0), 0);
    pair_t x = {{0}}, y = {{0}};
    x.other = &y.req;
    y.other = &x.req;
    CHECK_INT(sff_pwhash_hash("x", 1, on_hash_cancel_other, &x, &x.req), 0);
    CHECK_INT(sff_pwhash_hash("y", 1, on_hash_cancel_other, &y, &y.req), 0);
    usleep(200000); /* both replies wait in the socket: one loop iteration takes them together */
    turn();
    run_for(30);
    CHECK_INT(x.r.calls + y.r.calls, 1);
    sff_pwhash_stats_t s = sff_pwhash_stats();
    CHECK_INT(s.completed, 2);
    CHECK_INT(s.canceled, 1);
    CHECK_INT(s.pending, 0);
    shutdown_pool();
}

TEST(shutdown_drops_pending)
{
    CHECK_INT(setup(1, 0, 2, 16 * MIB), 0);
    int hasher = sff_pwhash_pid();
    result_t r[5] = {{0}};
    for (int i = 0; i < 5; i++)
        CHECK_INT(hash("s", 1, &r[i], NULL), 0);
    CHECK(run_until(&r[0].calls, 1, 5000)); /* one done, one in the hasher, three queued */
    usleep(20000);                          /* the second's reply is likely waiting in the socket */
    sff_pwhash_shutdown();
    CHECK_INT(sff_pwhash_pid(), 0);
    CHECK(kill(hasher, 0) != 0 && errno == ESRCH); /* killed and reaped */
    run_for(30);
    for (int i = 1; i < 5; i++)
        CHECK_INT(r[i].calls, 0);
    sff_pwhash_stats_t s = sff_pwhash_stats();
    CHECK_INT(s.canceled, 4);
    CHECK_INT(s.pending, 0);
    CHECK_INT(hash("s", 1, &r[0], NULL), SFF_ENOTREADY);
    sff_pwhash_shutdown(); /* twice is harmless */

    /* and it starts again */
    CHECK_INT(setup_small(1, 0), 0);
    CHECK_INT(hash("s", 1, &r[1], NULL), 0);
    CHECK(run_until(&r[1].calls, 1, 5000));
    shutdown_pool();
}

static int stop_calls;

static void on_hash_stop(void *data, int err, const char *hash_str)
{
    (void)data, (void)err, (void)hash_str;
    stop_calls++;
    sff_pwhash_shutdown();
}

TEST(shutdown_from_a_callback)
{
    CHECK_INT(setup_small(2, 0), 0);
    for (int i = 0; i < 6; i++)
        CHECK_INT(sff_pwhash_hash("x", 1, on_hash_stop, NULL, NULL), 0);
    usleep(100000); /* two replies wait in the socket */
    CHECK(run_until(&stop_calls, 1, 5000));
    run_for(30);
    CHECK_INT(stop_calls, 1);
    CHECK_INT(sff_pwhash_stats().pending, 0);
    CHECK_INT(sff_pwhash_stats().canceled, 5);
}

/* The highest file descriptor of a process, or -1. */
static int max_fd_of(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    int max = -1;
    if (d == NULL)
        return -1;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] != '.' && atoi(de->d_name) > max)
            max = atoi(de->d_name);
    }
    closedir(d);
    return max;
}

/* Whether pid is gone, or dead and waiting for its parent to reap it. */
static int gone(int pid)
{
    char path[64], state = '?';
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 1;
    int n = fscanf(f, "%*d %*s %c", &state);
    fclose(f);
    return n != 1 || state == 'Z' || state == 'X';
}

/* The hasher keeps none of the worker's descriptors, ignores its signals, is replaced when it
 * dies, and dies with the worker. */
TEST(hasher_process)
{
    /* a listener the worker would have */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(lfd >= 0 && listen(lfd, 1) == 0);
    CHECK(max_fd_of(getpid()) > 3);
    uint64_t started_ms = sff_now_ms();
    CHECK_INT(setup(1, 0, 2, 16 * MIB), 0);
    int hasher = sff_pwhash_pid();
    kill(hasher, SIGTERM); /* ignored, even right after the fork: it ends with its socket */
    kill(hasher, SIGINT);
    kill(hasher, SIGHUP);
    result_t first = {0};
    CHECK_INT(hash("first", 5, &first, NULL), 0);
    CHECK(run_until(&first.calls, 1, 5000));
    CHECK_INT(first.err, 0);
    CHECK(!gone(hasher));
    CHECK_INT(max_fd_of(hasher), 3); /* 0-2 and its socket: not the listener, nor the loop's epoll */
    close(lfd);

    /* dies young, with a hash in flight and one queued: both fail, no new hasher for a second */
    result_t a = {0}, b = {0}, c = {0}, d = {0}, e = {0};
    CHECK_INT(hash("a", 1, &a, NULL), 0);
    CHECK_INT(hash("b", 1, &b, NULL), 0);
    int young = sff_now_ms() - started_ms < 800; /* a machine too busy to get here in time skips a part */
    kill(hasher, SIGKILL);
    CHECK(run_until(&b.calls, 1, 5000));
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.err, SFF_EUNAVAILABLE);
    if (young) {
        CHECK_INT(b.err, SFF_EUNAVAILABLE);
        CHECK_INT(sff_pwhash_pid(), 0);
        CHECK_INT(hash("c", 1, &c, NULL), SFF_EUNAVAILABLE);
    }
    CHECK(kill(hasher, 0) != 0 && errno == ESRCH); /* reaped */
    run_for(1050);
    CHECK_INT(hash("c", 1, &c, NULL), 0); /* a second later: a new hasher */
    CHECK(run_until(&c.calls, 1, 5000));
    CHECK_INT(c.err, 0);
    int second = sff_pwhash_pid();
    CHECK(second > 0 && second != hasher);

    /* dies after a second of life: replaced at once, the queue goes on */
    run_for(1000);
    CHECK_INT(hash("d", 1, &d, NULL), 0);
    CHECK_INT(hash("e", 1, &e, NULL), 0);
    kill(second, SIGKILL);
    CHECK(run_until(&e.calls, 1, 5000));
    CHECK_INT(d.err, SFF_EUNAVAILABLE);
    CHECK_INT(e.err, 0);
    CHECK(sff_pwhash_pid() > 0 && sff_pwhash_pid() != second);
    CHECK_INT(sff_pwhash_stats().restarts, 2);
    shutdown_pool();

    /* a worker that dies without a shutdown takes its hasher along */
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t worker = fork();
    if (worker == 0) {
        int pid = setup_small(1, 0) == 0 ? sff_pwhash_pid() : 0;
        ssize_t n = write(pfd[1], &pid, sizeof(pid));
        (void)n;
        _exit(0);
    }
    int orphan = 0;
    CHECK(read(pfd[0], &orphan, sizeof(orphan)) == sizeof(orphan));
    close(pfd[0]);
    close(pfd[1]);
    waitpid(worker, NULL, 0);
    CHECK(orphan > 0);
    int ok = 0;
    for (int i = 0; i < 200 && !(ok = gone(orphan)); i++)
        usleep(5000);
    CHECK(ok);
}

/* An unknown user's login costs what a known user's costs. */
TEST(dummy_verify)
{
    CHECK_INT(setup(1, 0, 2, 16 * MIB), 0);
    result_t h = {0};
    CHECK_INT(hash("pw", 2, &h, NULL), 0);
    CHECK(run_until(&h.calls, 1, 5000));
    uint64_t real_min = UINT64_MAX, dummy_min = UINT64_MAX;
    for (int i = 0; i < 20; i++) {
        result_t v = {0};
        int dummy = i % 2;
        uint64_t t0 = sff_now_us();
        CHECK_INT(verify(dummy ? NULL : h.hash, "pw", 2, &v, NULL), 0);
        CHECK(run_until(&v.calls, 1, 5000));
        uint64_t us = v.done_us - t0;
        CHECK_INT(v.err, 0);
        CHECK_INT(v.match, !dummy);
        if (dummy && us < dummy_min)
            dummy_min = us;
        if (!dummy && us < real_min)
            real_min = us;
    }
    double ratio = (double)dummy_min / (double)real_min;
    printf("# verify at t=2, 16 MiB: real %.2f ms, dummy %.2f ms (fastest of 10 each; ratio %.2f)\n", (double)real_min / 1000.0,
           (double)dummy_min / 1000.0, ratio);
    CHECK(ratio > 0.75 && ratio < 1.33);
    /* no password matches the dummy: the empty one, nor one that matched a real hash */
    result_t e = {0};
    CHECK_INT(verify(NULL, "", 0, &e, NULL), 0);
    CHECK(run_until(&e.calls, 1, 5000));
    CHECK_INT(e.err, 0);
    CHECK_INT(e.match, 0);
    shutdown_pool();
}

int main(void)
{
    loop = h2o_evloop_create();
    RUN(hash_and_verify);
    RUN(refusals);
    RUN(loop_keeps_turning);
    RUN(flood_is_bounded);
    RUN(rate_limited_per_client);
    RUN(memory_budget);
    RUN(cancel);
    RUN(cancel_from_a_callback);
    RUN(shutdown_drops_pending);
    RUN(shutdown_from_a_callback);
    RUN(hasher_process);
    RUN(dummy_verify);
    turn();
    h2o_evloop_destroy(loop);
    return test_done();
}
