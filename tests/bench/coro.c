/*
 * coro.c - micro-benchmark of gateway/coro.c. Prints two lines:
 *
 *     coro_switch_ns <ns per switch; a resume and its yield are two switches>
 *     coro_create_ns <ns per create + first resume + finish + destroy, stacks from a warm pool>
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "coro.h"

#define NUM_RESUMES 10000000 /* 20 million switches */
#define NUM_CREATES 1000000
#define POOL_WARMUP 64

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void yield_forever(void *arg)
{
    volatile unsigned long *count = arg;
    for (;;) {
        ++*count;
        sff_coro_yield();
    }
}

static void count_once(void *arg)
{
    volatile unsigned long *count = arg;
    ++*count;
}

int main(void)
{
    volatile unsigned long count = 0;

    sff_coro_t *co = sff_coro_create(yield_forever, (void *)&count);
    if (co == NULL) {
        fprintf(stderr, "sff_coro_create failed\n");
        return 1;
    }
    /* The first resumes fault in the stack's top page and warm the caches. */
    for (int i = 0; i < 1000; ++i)
        sff_coro_resume(co);
    double start = now_ns();
    for (long i = 0; i < NUM_RESUMES; ++i)
        sff_coro_resume(co);
    double switch_ns = (now_ns() - start) / (2.0 * NUM_RESUMES);
    /* yield_forever never finishes, so its stack is not given back; the process ends here anyway. */

    sff_coro_t *warm[POOL_WARMUP];
    for (int i = 0; i < POOL_WARMUP; ++i) {
        if ((warm[i] = sff_coro_create(count_once, (void *)&count)) == NULL) {
            fprintf(stderr, "sff_coro_create failed\n");
            return 1;
        }
        sff_coro_resume(warm[i]);
    }
    for (int i = 0; i < POOL_WARMUP; ++i)
        sff_coro_destroy(warm[i]);
    start = now_ns();
    for (long i = 0; i < NUM_CREATES; ++i) {
        sff_coro_t *c = sff_coro_create(count_once, (void *)&count);
        sff_coro_resume(c);
        sff_coro_destroy(c);
    }
    double create_ns = (now_ns() - start) / NUM_CREATES;

    if (count != 1000 + NUM_RESUMES + POOL_WARMUP + NUM_CREATES) {
        fprintf(stderr, "miscounted: %lu\n", (unsigned long)count);
        return 1;
    }
    printf("coro_switch_ns %.2f\n", switch_ns);
    printf("coro_create_ns %.2f\n", create_ns);
    return 0;
}
