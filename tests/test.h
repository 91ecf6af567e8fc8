/*
 * test.h - the tiny test framework of sff's C tests (unit and integration).
 *
 *     TEST(parses_empty) { CHECK(parse("") == 0); CHECK_STR(name, "x"); }
 *     int main(void) { RUN(parses_empty); return test_done(); }
 *
 * Every test prints "ok - name" or "not ok - name" with the failed checks; test_done() prints
 * "# N passed, N failed" for tests/run.sh to add up, and returns the exit status.
 */
#ifndef SFF_TEST_H
#define SFF_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed_, test_failed_, test_cur_failed_;

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond)) {                                                                                                             \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                                             \
            test_cur_failed_ = 1;                                                                                                  \
        }                                                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                                                            \
    do {                                                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                                                        \
        if (a_ != b_) {                                                                                                            \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, a_, b_);                               \
            test_cur_failed_ = 1;                                                                                                  \
        }                                                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                                                            \
    do {                                                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                                                     \
            fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, a_ ? a_ : "(null)",                \
                    b_ ? b_ : "(null)");                                                                                           \
            test_cur_failed_ = 1;                                                                                                  \
        }                                                                                                                          \
    } while (0)

#define RUN(name)                                                                                                                  \
    do {                                                                                                                           \
        test_cur_failed_ = 0;                                                                                                      \
        name();                                                                                                                    \
        if (test_cur_failed_) {                                                                                                    \
            test_failed_++;                                                                                                        \
            printf("not ok - %s\n", #name);                                                                                        \
        } else {                                                                                                                   \
            test_passed_++;                                                                                                        \
            printf("ok - %s\n", #name);                                                                                            \
        }                                                                                                                          \
        fflush(stdout);                                                                                                            \
    } while (0)

static inline int test_done(void)
{
    printf("# %d passed, %d failed\n", test_passed_, test_failed_);
    return test_failed_ == 0 ? 0 : 1;
}

#endif
