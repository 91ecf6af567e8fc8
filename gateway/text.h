/* text.h - small character helpers shared by the parsers (URLs, JSON Schema patterns, Postgres
 * output, Redis URLs). */
#ifndef SFF_TEXT_H
#define SFF_TEXT_H

/* The value of a hexadecimal digit (either case), or -1. */
static inline int sff_text_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
