/*
 * Fuzzes sff_path_check(), sff_url_decode() and sff_url_decode_form() on arbitrary bytes. Whatever
 * sff_path_check() accepts must stay harmless however many times (up to 3) a backend percent-decodes
 * it: no "." or ".." segment, no NUL, no backslash. The decoders are checked against a naive decoder.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "router.h"

#define ASSERT(cond)                                                                                                               \
    do {                                                                                                                           \
        if (!(cond)) {                                                                                                             \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);                                           \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

static int hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes every valid %XX escape of s into d, leaving anything else as it is; returns the length. */
static size_t naive_decode(char *d, const char *s, size_t len)
{
    size_t w = 0;
    for (size_t r = 0; r < len; ++r) {
        if (s[r] == '%' && r + 2 < len && hex((unsigned char)s[r + 1]) >= 0 && hex((unsigned char)s[r + 2]) >= 0) {
            d[w++] = (char)(hex((unsigned char)s[r + 1]) << 4 | hex((unsigned char)s[r + 2]));
            r += 2;
        } else {
            d[w++] = s[r];
        }
    }
    return w;
}

/* Asserts what an accepted path must never hold at any stage of decoding. */
static void assert_harmless(const char *s, size_t len)
{
    ASSERT(memchr(s, '\0', len) == NULL);
    ASSERT(memchr(s, '\\', len) == NULL);
    for (size_t b = 0; b <= len;) {
        const char *slash = memchr(s + b, '/', len - b);
        size_t e = slash != NULL ? (size_t)(slash - s) : len;
        ASSERT(!(e - b == 1 && s[b] == '.'));
        ASSERT(!(e - b == 2 && s[b] == '.' && s[b + 1] == '.'));
        b = e + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copies, so reading past the input is caught. */
    char *src = calloc(1, size != 0 ? size : 1), *a = malloc(size + 1), *b = malloc(size + 1);
    if (size != 0)
        memcpy(src, data, size);

    if (sff_path_check(src, size) == 0) {
        ASSERT(size != 0 && src[0] == '/');
        for (size_t i = 0; i < size; ++i)
            ASSERT((unsigned char)src[i] >= 0x20 && src[i] != 0x7f);
        size_t len = size;
        memcpy(a, src, size);
        assert_harmless(a, len);
        for (int round = 0; round < 3 && memchr(a, '%', len) != NULL; ++round) {
            size_t n = naive_decode(b, a, len);
            if (n == len)
                break;
            memcpy(a, b, n);
            len = n;
            assert_harmless(a, len);
        }
    }

    /* sff_url_decode() fails exactly on a malformed escape or a NUL, and otherwise agrees with the
     * naive decoder; sff_url_decode_form() is the same after turning each raw '+' into ' '. */
    long n = sff_url_decode(a, src, size);
    int malformed = memchr(src, '\0', size) != NULL;
    for (size_t i = 0; i < size && !malformed; ++i) {
        if (src[i] == '%') {
            if (i + 2 >= size || hex((unsigned char)src[i + 1]) < 0 || hex((unsigned char)src[i + 2]) < 0 ||
                (src[i + 1] == '0' && src[i + 2] == '0'))
                malformed = 1;
            i += 2;
        }
    }
    if (malformed) {
        ASSERT(n == -1);
    } else {
        ASSERT(n >= 0 && (size_t)n <= size && a[n] == '\0');
        size_t m = naive_decode(b, src, size);
        ASSERT((size_t)n == m && memcmp(a, b, m) == 0);
    }
    long f = sff_url_decode_form(a, src, size);
    ASSERT(f == n);
    if (f >= 0) {
        for (size_t i = 0; i < size; ++i)
            if (src[i] == '+')
                src[i] = ' ';
        size_t m = naive_decode(b, src, size);
        ASSERT((size_t)f == m && memcmp(a, b, m) == 0 && a[f] == '\0');
    }

    free(src);
    free(a);
    free(b);
    return 0;
}
