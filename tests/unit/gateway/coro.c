/*
 * coro.c - unit tests of gateway/coro.c: switching, nesting, the stack pool, deep stacks, the guard
 * page, floating-point state and stack alignment across switches, longjmp inside a coroutine with a
 * changing resumer (which also catches wrong ASan fiber annotations), and many live coroutines.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test.h"
#include "coro.h"

#define STACK_SIZE (256 * 1024)

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#ifdef TEST_ASAN
/* Fake stacks on (clang 15 and later do so by default, gcc does not), so that the per-coroutine
 * fake stacks of the fiber switch annotations are exercised too. ASAN_OPTIONS still overrides. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_stack_use_after_return=1";
}
#endif

/* ping_pong: the coroutine doubles what it is given until it is given a negative number. */
struct ping_pong {
    int in, out;
    sff_coro_t *self_seen;
};

static void ping_pong_fn(void *arg)
{
    struct ping_pong *pp = arg;
    pp->self_seen = sff_coro_current();
    while (pp->in >= 0) {
        pp->out = pp->in * 2;
        sff_coro_yield();
    }
    pp->out = -1;
}

TEST(ping_pong)
{
    struct ping_pong pp = {0};
    sff_coro_t *co = sff_coro_create(ping_pong_fn, &pp);
    CHECK(co != NULL);
    CHECK(sff_coro_current() == NULL);
    CHECK(!sff_coro_done(co));
    for (int i = 0; i < 1000; ++i) {
        pp.in = i;
        CHECK_INT(sff_coro_resume(co), 0);
        CHECK_INT(pp.out, i * 2);
        CHECK(sff_coro_current() == NULL);
    }
    CHECK(pp.self_seen == co);
    pp.in = -1;
    CHECK_INT(sff_coro_resume(co), 1);
    CHECK_INT(pp.out, -1);
    CHECK(sff_coro_done(co));
    sff_coro_destroy(co);
}

/* interleaved: each coroutine appends its id to a shared log once per step. */
#define NUM_INTERLEAVED 100
#define NUM_STEPS 5

struct interleaved {
    int log[NUM_INTERLEAVED * NUM_STEPS];
    size_t log_len;
};

struct interleaved_arg {
    struct interleaved *shared;
    int id;
};

static void interleaved_fn(void *arg)
{
    struct interleaved_arg *a = arg;
    for (int step = 0; step < NUM_STEPS; ++step) {
        a->shared->log[a->shared->log_len++] = a->id * 100 + step;
        if (step != NUM_STEPS - 1)
            sff_coro_yield();
    }
}

TEST(interleaved)
{
    static struct interleaved shared;
    struct interleaved_arg args[NUM_INTERLEAVED];
    sff_coro_t *cos[NUM_INTERLEAVED];
    shared.log_len = 0;
    for (int i = 0; i < NUM_INTERLEAVED; ++i) {
        args[i] = (struct interleaved_arg){&shared, i};
        cos[i] = sff_coro_create(interleaved_fn, &args[i]);
        CHECK(cos[i] != NULL);
    }
    for (int step = 0; step < NUM_STEPS; ++step)
        for (int i = 0; i < NUM_INTERLEAVED; ++i)
            CHECK_INT(sff_coro_resume(cos[i]), step == NUM_STEPS - 1);
    CHECK_INT(shared.log_len, NUM_INTERLEAVED * NUM_STEPS);
    for (int step = 0; step < NUM_STEPS; ++step)
        for (int i = 0; i < NUM_INTERLEAVED; ++i)
            CHECK_INT(shared.log[step * NUM_INTERLEAVED + i], i * 100 + step);
    for (int i = 0; i < NUM_INTERLEAVED; ++i) {
        CHECK(sff_coro_done(cos[i]));
        sff_coro_destroy(cos[i]);
    }
}

/* nested: outer resumes inner; inner's yields go back to outer, outer's to the test. */
struct nested {
    sff_coro_t *outer, *inner;
    char trace[64];
    size_t trace_len;
    int current_ok;
};

static struct nested ns;

static void nested_mark(char c, sff_coro_t *expected_current)
{
    ns.trace[ns.trace_len++] = c;
    if (sff_coro_current() != expected_current)
        ns.current_ok = 0;
}

static void nested_inner_fn(void *arg)
{
    (void)arg;
    nested_mark('a', ns.inner);
    sff_coro_yield();
    nested_mark('b', ns.inner);
    sff_coro_yield();
    nested_mark('c', ns.inner);
}

static void nested_outer_fn(void *arg)
{
    (void)arg;
    nested_mark('1', ns.outer);
    ns.inner = sff_coro_create(nested_inner_fn, NULL);
    if (sff_coro_resume(ns.inner) != 0)
        ns.current_ok = 0;
    nested_mark('2', ns.outer);
    sff_coro_yield();
    nested_mark('3', ns.outer);
    if (sff_coro_resume(ns.inner) != 0)
        ns.current_ok = 0;
    nested_mark('4', ns.outer);
    sff_coro_yield();
    nested_mark('5', ns.outer);
    if (sff_coro_resume(ns.inner) != 1)
        ns.current_ok = 0;
    nested_mark('6', ns.outer);
    sff_coro_destroy(ns.inner);
}

TEST(nested)
{
    memset(&ns, 0, sizeof(ns));
    ns.current_ok = 1;
    ns.outer = sff_coro_create(nested_outer_fn, NULL);
    CHECK(ns.outer != NULL);
    CHECK_INT(sff_coro_resume(ns.outer), 0);
    nested_mark('x', NULL);
    CHECK_INT(sff_coro_resume(ns.outer), 0);
    nested_mark('y', NULL);
    CHECK_INT(sff_coro_resume(ns.outer), 1);
    nested_mark('z', NULL);
    CHECK_STR(ns.trace, "1a2x3b4y5c6z");
    CHECK(ns.current_ok);
    sff_coro_destroy(ns.outer);
}

/* pool_reuse: a destroyed stack goes to the cache and comes back from it. */
static void noop_fn(void *arg)
{
    (void)arg;
}

TEST(pool_reuse)
{
    size_t in_use0 = sff_coro_stacks_in_use(), cached0 = sff_coro_stacks_cached();
    sff_coro_t *a = sff_coro_create(noop_fn, NULL), *b = sff_coro_create(noop_fn, NULL);
    CHECK(a != NULL && b != NULL && a != b);
    CHECK_INT(sff_coro_stacks_in_use(), in_use0 + 2);
    CHECK_INT(sff_coro_stacks_cached(), cached0 >= 2 ? cached0 - 2 : 0);
    CHECK_INT(sff_coro_resume(a), 1);
    sff_coro_destroy(a);
    /* A coroutine that never ran may be destroyed too. */
    sff_coro_destroy(b);
    CHECK_INT(sff_coro_stacks_in_use(), in_use0);
    size_t cached1 = sff_coro_stacks_cached();
    CHECK(cached1 >= 2);

    /* The cache is LIFO: the stack destroyed last comes back first, and runs a coroutine again. */
    sff_coro_t *c = sff_coro_create(noop_fn, NULL);
    CHECK(c == b);
    CHECK_INT(sff_coro_stacks_cached(), cached1 - 1);
    CHECK_INT(sff_coro_stacks_in_use(), in_use0 + 1);
    CHECK_INT(sff_coro_resume(c), 1);
    sff_coro_destroy(c);
    CHECK_INT(sff_coro_stacks_cached(), cached1);
}

/* configure: max_cached bounds the cache, and a new stack size drops the cached stacks. */
TEST(configure)
{
    sff_coro_t *cos[8];
    sff_coro_configure(STACK_SIZE, 3);
    CHECK(sff_coro_stacks_cached() <= 3);
    for (int i = 0; i < 8; ++i)
        cos[i] = sff_coro_create(noop_fn, NULL);
    for (int i = 0; i < 8; ++i)
        sff_coro_destroy(cos[i]);
    CHECK_INT(sff_coro_stacks_cached(), 3);
    sff_coro_configure(64 * 1024 + 1, 3);
    CHECK_INT(sff_coro_stacks_cached(), 0);
    sff_coro_configure(STACK_SIZE, 1024);
}

/* deep_recursion: about 200 KiB of a 256 KiB stack, in frames smaller than a page. */
struct depth {
    uintptr_t top;
    size_t target, reached;
    unsigned sum;
};

static __attribute__((noinline)) unsigned recurse(struct depth *d, unsigned n)
{
    volatile unsigned char buf[512];
    for (size_t i = 0; i < sizeof(buf); i += 64)
        buf[i] = (unsigned char)(n + i);
    size_t used = d->top - (uintptr_t)__builtin_frame_address(0);
    unsigned r = buf[0];
    if (used > d->reached)
        d->reached = used;
    if (used < d->target)
        r += recurse(d, n + 1);
    return r + buf[64];
}

static void deep_fn(void *arg)
{
    struct depth *d = arg;
    d->top = (uintptr_t)__builtin_frame_address(0);
    d->sum = recurse(d, 0);
}

TEST(deep_recursion)
{
    struct depth d = {.target = 200 * 1024};
    sff_coro_t *co = sff_coro_create(deep_fn, &d);
    CHECK_INT(sff_coro_resume(co), 1);
    CHECK(d.reached >= 200 * 1024);
    CHECK(d.sum != 0);
    sff_coro_destroy(co);
}

/* stack_overflow: unbounded recursion faults in the PROT_NONE page right below the stack. */
static uintptr_t guard_lo, guard_hi;

/* Looks up the mapping holding addr in /proc/self/maps and, when an inaccessible mapping ends right
 * where it starts, takes that as the guard page: sets guard_lo/guard_hi and returns 1. */
static int find_guard(uintptr_t addr)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    char line[4096], perms[8], prev_perms[8] = "";
    uintptr_t lo, hi, prev_lo = 0, prev_hi = 0;
    int found = 0;
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &lo, &hi, perms) != 3)
            continue;
        if (lo <= addr && addr < hi) {
            if (prev_hi == lo && strcmp(prev_perms, "---p") == 0 && strncmp(perms, "rw", 2) == 0) {
                guard_lo = prev_lo;
                guard_hi = prev_hi;
                found = 1;
            }
            break;
        }
        prev_lo = lo;
        prev_hi = hi;
        memcpy(prev_perms, perms, sizeof(perms));
    }
    fclose(fp);
    return found;
}

static void overflow_handler(int sig, siginfo_t *info, void *uc)
{
    (void)sig;
    (void)uc;
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (addr < guard_lo || addr >= guard_hi) {
        static const char msg[] = "  child: the fault was not in the guard page\n";
        ssize_t n = write(2, msg, sizeof(msg) - 1);
        (void)n;
        _exit(3);
    }
    /* SA_RESETHAND restored the default action: the faulting write kills the process on return. */
}

/* Always true; volatile so the compiler cannot see that the recursion is unbounded. */
static volatile int overflow_forever = 1;

static __attribute__((noinline)) unsigned overflow(unsigned n)
{
    volatile unsigned char buf[1024];
    for (size_t i = 0; i < sizeof(buf); i += 128)
        buf[i] = (unsigned char)n;
    if (!overflow_forever)
        return buf[0];
    return overflow(n + 1) + buf[n % sizeof(buf)];
}

static void overflow_fn(void *arg)
{
    (void)arg;
    if (!find_guard((uintptr_t)__builtin_frame_address(0))) {
        fprintf(stderr, "  child: no inaccessible page right below the coroutine's stack\n");
        _exit(7);
    }
    overflow(0);
}

TEST(stack_overflow)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        static char altstack[64 * 1024];
        stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
        struct sigaction sa = {.sa_sigaction = overflow_handler, .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND};
        sigemptyset(&sa.sa_mask);
        if (sigaltstack(&ss, NULL) != 0 || sigaction(SIGSEGV, &sa, NULL) != 0)
            _exit(4);
        sff_coro_t *co = sff_coro_create(overflow_fn, NULL);
        if (co == NULL)
            _exit(5);
        sff_coro_resume(co);
        _exit(6);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status))
        fprintf(stderr, "  child exited with %d\n", WEXITSTATUS(status));
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
}

/* fp_state: FP values and the FP control state of each side survive switches. */
#if defined(__x86_64__)
/* The control bits only: the low six are sticky exception flags that any inexact division sets. */
static unsigned get_mxcsr(void)
{
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v & ~0x3fu;
}

static void set_mxcsr(unsigned v)
{
    __asm__ volatile("ldmxcsr %0" : : "m"(v));
}

static unsigned short get_x87cw(void)
{
    unsigned short v;
    __asm__ volatile("fnstcw %0" : "=m"(v));
    return v;
}

static void set_x87cw(unsigned short v)
{
    __asm__ volatile("fldcw %0" : : "m"(v));
}

#define MXCSR_ROUND_MASK 0x6000u
#define MXCSR_ROUND_UP 0x4000u
#define X87_ROUND_MASK 0x0c00u
#define X87_ROUND_ZERO 0x0c00u
#endif

struct fp {
    double in, out;
    int control_ok;
};

static volatile double fp_one = 1.0, fp_three = 3.0;

static void fp_fn(void *arg)
{
    struct fp *f = arg;
    /* Live across the yields: on aarch64 these end up in d8-d15, which the switch must keep. */
    double a = f->in * 1.5, b = f->in + 0.25, c = f->in / 7.0, d = f->in - 2.0;
#if defined(__x86_64__)
    set_mxcsr((get_mxcsr() & ~MXCSR_ROUND_MASK) | MXCSR_ROUND_UP);
    set_x87cw((unsigned short)((get_x87cw() & ~X87_ROUND_MASK) | X87_ROUND_ZERO));
    double third_up = fp_one / fp_three;
#endif
    for (int i = 0; i < 100; ++i) {
        sff_coro_yield();
        a = a * 1.0000001 + 0.5;
        b = b * 0.9999999 - 0.25;
        c += a / (b + 1e6);
        d -= c * 1e-3;
#if defined(__x86_64__)
        if ((get_mxcsr() & MXCSR_ROUND_MASK) != MXCSR_ROUND_UP || (get_x87cw() & X87_ROUND_MASK) != X87_ROUND_ZERO ||
            fp_one / fp_three != third_up)
            f->control_ok = 0;
#endif
    }
    f->out = a + b + c + d;
}

/* The same computation without yields, for the expected result. */
static double fp_expected(double in)
{
    volatile double a = in * 1.5, b = in + 0.25, c = in / 7.0, d = in - 2.0;
    for (int i = 0; i < 100; ++i) {
        a = a * 1.0000001 + 0.5;
        b = b * 0.9999999 - 0.25;
        c += a / (b + 1e6);
        d -= c * 1e-3;
    }
    return a + b + c + d;
}

TEST(fp_state)
{
    struct fp f = {.in = 3.75, .control_ok = 1};
#if defined(__x86_64__)
    unsigned mxcsr0 = get_mxcsr();
    unsigned short x87cw0 = get_x87cw();
    double third = fp_one / fp_three;
#endif
    sff_coro_t *co = sff_coro_create(fp_fn, &f);
    double mine = 0.125;
    int done;
    while ((done = sff_coro_resume(co)) == 0) {
        mine = mine * 3.0 + 1.0;
#if defined(__x86_64__)
        if (get_mxcsr() != mxcsr0 || get_x87cw() != x87cw0 || fp_one / fp_three != third)
            f.control_ok = 0;
#endif
    }
    CHECK(done);
    CHECK(f.control_ok);
    /* Rounding mode is upward only inside the coroutine, but the expected value is computed here
     * with the default mode, so compare approximately rather than bit for bit. */
    double want = fp_expected(3.75), diff = f.out - want;
    CHECK(diff < 1e-6 * (want < 0 ? -want : want) && -diff < 1e-6 * (want < 0 ? -want : want));
    CHECK(mine > 1e40);
#if defined(__x86_64__)
    CHECK_INT(get_mxcsr(), mxcsr0);
    CHECK_INT(get_x87cw(), x87cw0);
#endif
    sff_coro_destroy(co);
}

/* stack_alignment: code in a coroutine sees the stack aligned as the ABI promises. */
static __attribute__((noinline)) int aligned_local_ok(void)
{
    _Alignas(16) volatile char buf[32];
    buf[0] = 1;
    return ((uintptr_t)buf & 15) == 0 && buf[0] == 1;
}

static void alignment_fn(void *arg)
{
    int *ok = arg;
    char text[64];
    *ok = aligned_local_ok();
    /* varargs with doubles: libc's printf uses aligned SSE stores on x86_64. */
    snprintf(text, sizeof(text), "%.3f %d", 2.5, 7);
    if (strcmp(text, "2.500 7") != 0)
        *ok = 0;
    sff_coro_yield();
    *ok = *ok && aligned_local_ok();
}

TEST(stack_alignment)
{
    int ok = 0;
    sff_coro_t *co = sff_coro_create(alignment_fn, &ok);
    CHECK_INT(sff_coro_resume(co), 0);
    CHECK(ok);
    CHECK_INT(sff_coro_resume(co), 1);
    CHECK(ok);
    sff_coro_destroy(co);
}

/* longjmp_and_hops: setjmp/longjmp within one coroutine, across a yield, works (and under ASan, whose
 * longjmp unpoisons the stack it believes current, raises no warning about a foreign stack). */
struct jump {
    jmp_buf env;
    int rounds;
};

static __attribute__((noinline)) void jump_back(struct jump *j)
{
    volatile char pad[128];
    pad[0] = (char)j->rounds;
    longjmp(j->env, pad[0] + 1);
}

static void jump_fn(void *arg)
{
    struct jump *j = arg;
    volatile int got = setjmp(j->env);
    if (got < 3) {
        j->rounds = got;
        sff_coro_yield();
        jump_back(j);
    }
    j->rounds = got;
}

static void run_jumps(void)
{
    struct jump j = {.rounds = -1};
    sff_coro_t *co = sff_coro_create(jump_fn, &j);
    for (int i = 0; i < 3; ++i) {
        CHECK_INT(sff_coro_resume(co), 0);
        CHECK_INT(j.rounds, i);
    }
    CHECK_INT(sff_coro_resume(co), 1);
    CHECK_INT(j.rounds, 3);
    sff_coro_destroy(co);
}

/* A coroutine resumed first from the loop's stack, then from another coroutine, must yield back to
 * the latter (under ASan: with the latter's stack announced, which the longjmp there relies on). */
static sff_coro_t *hop;

static void hop_fn(void *arg)
{
    (void)arg;
    sff_coro_yield();
    sff_coro_yield();
}

static void hop_resumer_fn(void *arg)
{
    struct jump *j = arg;
    CHECK_INT(sff_coro_resume(hop), 0);
    CHECK(sff_coro_current() != hop);
    if (setjmp(j->env) == 0)
        jump_back(j);
    j->rounds = 100;
}

static void run_hops(void)
{
    struct jump j = {.rounds = 0};
    hop = sff_coro_create(hop_fn, NULL);
    sff_coro_t *resumer = sff_coro_create(hop_resumer_fn, &j);
    CHECK_INT(sff_coro_resume(hop), 0);
    CHECK_INT(sff_coro_resume(resumer), 1);
    CHECK_INT(j.rounds, 100);
    CHECK_INT(sff_coro_resume(hop), 1);
    sff_coro_destroy(resumer);
    sff_coro_destroy(hop);
}

/* Runs in a child whose stderr is captured, since sanitizer warnings do not fail a test by
 * themselves: the child's stderr (failed checks included) must be empty. */
TEST(longjmp_and_hops)
{
    int fds[2];
    if (pipe(fds) != 0) {
        CHECK(!"pipe");
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        run_jumps();
        run_hops();
        _exit(test_cur_failed_);
    }
    close(fds[1]);
    char out[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(out) - 1 && (n = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fds[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (len != 0)
        fprintf(stderr, "  child's stderr:\n%s", out);
    CHECK_INT(len, 0);
}

/* many_alive: 10,000 suspended coroutines cost a page or so each, not their whole stack. */
#define NUM_ALIVE 10000

/* ASan adds shadow memory and, with detect_stack_use_after_return, a fake stack per coroutine. */
#ifdef TEST_ASAN
#define MAX_RSS_PER_CORO (64 * 1024)
#endif
#ifndef MAX_RSS_PER_CORO
#define MAX_RSS_PER_CORO (16 * 1024)
#endif

static long resident_pages(void)
{
    long size = 0, resident = -1;
    FILE *fp = fopen("/proc/self/statm", "r");
    if (fp == NULL)
        return -1;
    if (fscanf(fp, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(fp);
    return resident;
}

static void alive_fn(void *arg)
{
    int *counter = arg;
    volatile char local[256];
    local[0] = 1;
    ++*counter;
    sff_coro_yield();
    *counter += local[0];
}

TEST(many_alive)
{
    static sff_coro_t *cos[NUM_ALIVE];
    int counter = 0;
    size_t in_use0 = sff_coro_stacks_in_use();
    long page = sysconf(_SC_PAGESIZE), rss0 = resident_pages();
    CHECK(rss0 > 0);
    for (int i = 0; i < NUM_ALIVE; ++i) {
        cos[i] = sff_coro_create(alive_fn, &counter);
        if (cos[i] == NULL) {
            CHECK(cos[i] != NULL);
            return;
        }
        CHECK_INT(sff_coro_resume(cos[i]), 0);
    }
    CHECK_INT(counter, NUM_ALIVE);
    CHECK_INT(sff_coro_stacks_in_use(), in_use0 + NUM_ALIVE);
    long rss1 = resident_pages();
    size_t grown = (size_t)(rss1 - rss0) * (size_t)page;
    /* 10,000 whole stacks would be 2.5 GiB; a touched page or so each stays far below that. */
    if (grown >= (size_t)NUM_ALIVE * MAX_RSS_PER_CORO)
        fprintf(stderr, "  RSS grew by %zu KiB\n", grown / 1024);
    CHECK(grown < (size_t)NUM_ALIVE * MAX_RSS_PER_CORO);
    for (int i = 0; i < NUM_ALIVE; ++i)
        CHECK_INT(sff_coro_resume(cos[i]), 1);
    CHECK_INT(counter, 2 * NUM_ALIVE);
    for (int i = 0; i < NUM_ALIVE; ++i)
        sff_coro_destroy(cos[i]);
    CHECK_INT(sff_coro_stacks_in_use(), in_use0);
    CHECK_INT(sff_coro_stacks_cached(), 1024);
}

int main(void)
{
    sff_coro_configure(STACK_SIZE, 1024);
    RUN(ping_pong);
    RUN(interleaved);
    RUN(nested);
    RUN(pool_reuse);
    RUN(configure);
    RUN(deep_recursion);
    RUN(stack_overflow);
    RUN(fp_state);
    RUN(stack_alignment);
    RUN(longjmp_and_hops);
    RUN(many_alive);
    return test_done();
}
