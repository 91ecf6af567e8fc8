/*
 * strbuf.h - a growing string in malloc'ed memory. A failed allocation sets failed and drops every
 * later append, so a builder appends freely and checks once at the end (sff_strbuf_take()).
 */
#ifndef SFF_STRBUF_H
#define SFF_STRBUF_H

#include <stddef.h>
#include <string.h>

typedef struct {
    char *s; /* NUL-terminated once anything was appended */
    size_t len, cap;
    int failed;
} sff_strbuf_t;

/* Room for more bytes and a NUL. Returns 0, or -1 (and sets failed) when memory runs out. */
int sff_strbuf_grow(sff_strbuf_t *b, size_t more);
static inline int sff_strbuf_reserve(sff_strbuf_t *b, size_t more)
{
    if (b->failed)
        return -1;
    return b->len + more + 1 <= b->cap ? 0 : sff_strbuf_grow(b, more);
}

static inline void sff_strbuf_addn(sff_strbuf_t *b, const char *s, size_t n)
{
    if (sff_strbuf_reserve(b, n) != 0)
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static inline void sff_strbuf_add(sff_strbuf_t *b, const char *s)
{
    sff_strbuf_addn(b, s, strlen(s));
}

static inline void sff_strbuf_addc(sff_strbuf_t *b, char c)
{
    if (sff_strbuf_reserve(b, 1) != 0)
        return;
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

/* Takes the string out of b, which is empty again: the caller frees it. NULL when an allocation
 * failed ("" for nothing appended); its length in *len when len is not NULL. */
char *sff_strbuf_take(sff_strbuf_t *b, size_t *len);

#endif
