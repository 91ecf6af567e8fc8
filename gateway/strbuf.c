/* strbuf.c - a growing string (see strbuf.h). */
#include <stdlib.h>
#include "strbuf.h"

int sff_strbuf_grow(sff_strbuf_t *b, size_t more)
{
    size_t cap = b->cap != 0 ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (s == NULL) {
        b->failed = 1;
        return -1;
    }
    b->s = s;
    b->cap = cap;
    return 0;
}

char *sff_strbuf_take(sff_strbuf_t *b, size_t *len)
{
    char *s = b->s;
    size_t n = b->len;
    if (b->failed) {
        free(s);
        s = NULL;
        n = 0;
    } else if (s == NULL) {
        s = strdup("");
    }
    *b = (sff_strbuf_t){0};
    if (len != NULL)
        *len = n;
    return s;
}
