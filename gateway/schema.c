/*
 * schema.c - the JSON Schema subset sff checks inputs against (see schema.h for the keywords).
 *
 * A document is compiled once into a tree of nodes, one per (sub)schema, that borrows keys and
 * values from the document; the schema holds a reference to the document, which must not be
 * modified afterwards. Compilation refuses unknown keywords, keywords of the wrong type, unknown
 * formats, patterns ERE cannot express and schemas nested deeper than MAX_SCHEMA_DEPTH.
 *
 * Patterns are ECMA-262 regular expressions translated to POSIX EREs and compiled with regcomp():
 *   - \d \D \w \W \s \S, escaped punctuation, \n \r \t \f \v, \xHH and \uHHHH (surrogate pairs
 *     included) are translated; "." matches any character but a line terminator, as in ECMA-262;
 *   - character classes are rebuilt in ERE syntax (where a backslash is literal and "]" must come
 *     first); non-ASCII ranges in classes are expanded character by character, because glibc
 *     refuses them in C.UTF-8, up to MAX_CLASS_EXPANSION characters per pattern;
 *   - (?:...) and (?<name>...) become plain groups; a "{" that does not start a quantifier is
 *     literal, as in ECMA-262's Annex B;
 *   - lookaround, backreferences, lazy quantifiers, \b \B, \p{...} and \cX are refused, and so
 *     are, as in ECMA-262, a quantifier that follows no atom ("a**", "^*"); patterns whose
 *     repetitions expand to more than MAX_PATTERN_ATOMS atoms or whose groups nest deeper than
 *     MAX_GROUP_DEPTH are refused too, since regcomp() copies repeated subtrees.
 * Matching is a search (unanchored), as in JSON Schema. It happens in the C.UTF-8 locale so that
 * "." and classes match characters rather than bytes; where that locale is missing, matching is
 * byte-wise and patterns with non-ASCII characters in classes are refused.
 */
#include <dirent.h>
#include <errno.h>
#include <locale.h>
#include <math.h> /* isfinite(), a macro: no libm needed */
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "text.h"
#include "jsonin.h"
#include "schema.h"

/* Schemas nested deeper than this (the root is level 1) are refused. */
#define MAX_SCHEMA_DEPTH 32
/* The JSON nesting limit for schema files: deep enough for MAX_SCHEMA_DEPTH levels of
 * "properties" plus nested values in enum, const, default and examples. */
#define MAX_FILE_DEPTH 256
#define MAX_FILE_SIZE (4 * 1024 * 1024)
/* The most non-ASCII characters the ranges of the character classes of one pattern may expand to
 * (negated classes and \s included). */
#define MAX_CLASS_EXPANSION 4096
/* Bounds on a pattern: its size in atoms once regcomp() has expanded its repetitions, the nesting
 * of its groups, and a repetition count (glibc's RE_DUP_MAX). */
#define MAX_PATTERN_ATOMS 10000
#define MAX_GROUP_DEPTH 32
#define RE_DUP_MAX_BOUND 32767
/* The length from which an enum message lists no further values. */
#define MAX_ENUM_MESSAGE 200

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_INTEGER = 1 << 2,
    T_NUMBER = 1 << 3,
    T_STRING = 1 << 4,
    T_ARRAY = 1 << 5,
    T_OBJECT = 1 << 6,
};

/* In the order types are listed in messages ("must be a string or null"). */
static const struct {
    const char *name;
    const char *noun;
    unsigned bit;
} type_names[] = {
    {"string", "a string", T_STRING},
    {"number", "a number", T_NUMBER},
    {"integer", "an integer", T_INTEGER},
    {"boolean", "a boolean", T_BOOLEAN},
    {"array", "an array", T_ARRAY},
    {"object", "an object", T_OBJECT},
    {"null", "null", T_NULL},
};

enum { FORMAT_NONE, FORMAT_UUID, FORMAT_EMAIL, FORMAT_DATE_TIME };

enum { ADDITIONAL_ANY, ADDITIONAL_NONE, ADDITIONAL_SCHEMA };

typedef struct st_node_t node_t;

typedef struct st_prop_t {
    const char *name; /* borrowed from the document */
    node_t *node;
} prop_t;

/* One compiled (sub)schema. json_t pointers are borrowed from the document; NULL means absent, as
 * does -1 for the counts. */
struct st_node_t {
    unsigned types; /* 0: any type */
    json_t *properties;
    prop_t *props; /* in the document's order */
    size_t nprops;
    json_t *required;
    int additional;
    node_t *additional_node;
    json_t *enum_values;
    json_t *const_value;
    long long min_length, max_length, min_items, max_items;
    json_t *minimum, *maximum, *exclusive_minimum, *exclusive_maximum;
    const char *pattern_src;
    regex_t *pattern;
    int format;
    node_t *items;
};

struct st_sff_schema_t {
    json_t *doc;
    node_t *root;
};

typedef struct st_schemas_entry_t {
    char *name;
    sff_schema_t *schema;
} schemas_entry_t;

struct st_sff_schemas_t {
    schemas_entry_t *entries; /* sorted by name */
    size_t n;
};

/* Memory. Like h2o, running out of memory is fatal. */

static void *xrealloc(void *p, size_t n)
{
    if ((p = realloc(p, n)) == NULL) {
        fprintf(stderr, "sff: out of memory\n");
        abort();
    }
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p;
    if ((p = calloc(n, size)) == NULL) {
        fprintf(stderr, "sff: out of memory\n");
        abort();
    }
    return p;
}

/* A growing NUL-terminated string; s is NULL until something (possibly "") is appended. */
typedef struct st_buf_t {
    char *s;
    size_t len, cap;
} buf_t;

static void buf_append(buf_t *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

static void buf_char(buf_t *b, char c)
{
    buf_append(b, &c, 1);
}

static void buf_utf8(buf_t *b, unsigned cp)
{
    char u[4];
    if (cp < 0x80) {
        u[0] = (char)cp;
        buf_append(b, u, 1);
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        buf_append(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        buf_append(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        buf_append(b, u, 4);
    }
}

/* Appends "/" and a reference token escaped per RFC 6901 ("~" as "~0", "/" as "~1") to a JSON
 * pointer; returns the previous length for ptr_pop(). */
static size_t ptr_push(buf_t *ptr, const char *token, size_t len)
{
    size_t old = ptr->len;
    buf_char(ptr, '/');
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '~') {
            buf_append(ptr, "~0", 2);
        } else if (token[i] == '/') {
            buf_append(ptr, "~1", 2);
        } else {
            buf_char(ptr, token[i]);
        }
    }
    return old;
}

static size_t ptr_push_index(buf_t *ptr, size_t index)
{
    char s[32];
    int n = snprintf(s, sizeof(s), "%zu", index);
    return ptr_push(ptr, s, (size_t)n);
}

static void ptr_pop(buf_t *ptr, size_t old)
{
    ptr->len = old;
    ptr->s[old] = '\0';
}

/* The C.UTF-8 locale patterns are compiled and run in, or (locale_t)0 where it is missing. */

static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale;

static void init_utf8_locale(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK | LC_COLLATE_MASK, "C.UTF-8", (locale_t)0);
}

static locale_t get_utf8_locale(void)
{
    pthread_once(&utf8_once, init_utf8_locale);
    return utf8_locale;
}

/* Decodes the UTF-8 character at s[*i] (strings from jansson are valid UTF-8) and advances *i; a
 * malformed byte reads as itself. */
static unsigned utf8_next(const char *s, size_t len, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s + *i;
    size_t left = len - *i;
    unsigned c = u[0];

    if (c >= 0xc0 && c < 0xe0 && left >= 2 && (u[1] & 0xc0) == 0x80) {
        *i += 2;
        return (c & 0x1f) << 6 | (u[1] & 0x3f);
    }
    if (c >= 0xe0 && c < 0xf0 && left >= 3 && (u[1] & 0xc0) == 0x80 && (u[2] & 0xc0) == 0x80) {
        *i += 3;
        return (c & 0x0f) << 12 | (u[1] & 0x3f) << 6 | (u[2] & 0x3f);
    }
    if (c >= 0xf0 && c < 0xf8 && left >= 4 && (u[1] & 0xc0) == 0x80 && (u[2] & 0xc0) == 0x80 && (u[3] & 0xc0) == 0x80) {
        *i += 4;
        return (c & 0x07) << 18 | (u[1] & 0x3f) << 12 | (u[2] & 0x3f) << 6 | (u[3] & 0x3f);
    }
    *i += 1;
    return c;
}

static size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* floor() without libm: doubles of magnitude 2^52 and more are integers already. */
static double floor_of(double d)
{
    if (!(d > -4503599627370496.0 && d < 4503599627370496.0))
        return d;
    double t = (double)(long long)d;
    return t > d ? t - 1 : t;
}

/* Pattern translation (ECMA-262 to POSIX ERE). */

typedef struct st_range_t {
    unsigned lo, hi;
} range_t;

/* A character class as a set of code point ranges. */
typedef struct st_cclass_t {
    range_t *r;
    size_t n, cap;
    int negated;
} cclass_t;

typedef struct st_translate_t {
    const char *src;
    size_t len, i;
    int utf8;         /* matching happens in C.UTF-8 */
    size_t expansion; /* non-ASCII characters listed in classes so far */
    buf_t out;
    const char *error;
    char error_buf[96];
} translate_t;

static void cclass_add(cclass_t *c, unsigned lo, unsigned hi)
{
    if (c->n == c->cap) {
        c->cap = c->cap != 0 ? c->cap * 2 : 8;
        c->r = xrealloc(c->r, c->cap * sizeof(*c->r));
    }
    c->r[c->n].lo = lo;
    c->r[c->n].hi = hi;
    c->n++;
}

/* Adds ECMA-262's \d, \w or \s (by its lower-case letter) to c. */
static void cclass_add_escape(cclass_t *c, char letter, int utf8)
{
    switch (letter) {
    case 'd':
        cclass_add(c, '0', '9');
        break;
    case 'w':
        cclass_add(c, '0', '9');
        cclass_add(c, 'A', 'Z');
        cclass_add(c, '_', '_');
        cclass_add(c, 'a', 'z');
        break;
    case 's':
        cclass_add(c, '\t', '\r');
        cclass_add(c, ' ', ' ');
        if (utf8) {
            static const range_t spaces[] = {{0xa0, 0xa0},     {0x1680, 0x1680}, {0x2000, 0x200a}, {0x2028, 0x2029},
                                             {0x202f, 0x202f}, {0x205f, 0x205f}, {0x3000, 0x3000}, {0xfeff, 0xfeff}};
            for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++)
                cclass_add(c, spaces[i].lo, spaces[i].hi);
        }
        break;
    }
}

static int range_cmp(const void *a, const void *b)
{
    const range_t *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Removes code point cp from the ranges of c; returns whether it was there. */
static int cclass_take(cclass_t *c, unsigned cp)
{
    for (size_t i = 0; i < c->n; i++) {
        range_t *r = c->r + i;
        if (cp < r->lo || cp > r->hi)
            continue;
        if (r->lo == r->hi) {
            memmove(r, r + 1, (c->n - i - 1) * sizeof(*r));
            c->n--;
        } else if (cp == r->lo) {
            r->lo++;
        } else if (cp == r->hi) {
            r->hi--;
        } else {
            unsigned hi = r->hi;
            r->hi = cp - 1;
            cclass_add(c, cp + 1, hi); /* may move c->r; r is not used afterwards */
        }
        return 1;
    }
    return 0;
}

/* Writes c as an ERE bracket expression (or an equivalent when a bracket cannot express it). In an
 * ERE bracket a backslash is literal, "]" must come first, "-" last, "^" not first and "[" must
 * not precede ".", ":" or "="; so those four are taken out of the ranges and placed by hand. */
static int cclass_emit(translate_t *t, cclass_t *c)
{
    size_t i, n = 0;

    qsort(c->r, c->n, sizeof(*c->r), range_cmp);
    for (i = 0; i < c->n; i++) {
        if (n != 0 && c->r[i].lo <= c->r[n - 1].hi + 1) {
            if (c->r[i].hi > c->r[n - 1].hi)
                c->r[n - 1].hi = c->r[i].hi;
        } else {
            c->r[n++] = c->r[i];
        }
    }
    c->n = n;
    /* No text holds a NUL, so it need not be matched. */
    cclass_take(c, 0);
    int rbracket = cclass_take(c, ']'), caret = cclass_take(c, '^'), hyphen = cclass_take(c, '-'), lbracket = cclass_take(c, '[');
    qsort(c->r, c->n, sizeof(*c->r), range_cmp);

    for (i = 0; i < c->n; i++) {
        unsigned lo = c->r[i].lo < 0x80 ? 0x80 : c->r[i].lo;
        if (c->r[i].hi < 0x80)
            continue;
        if (!t->utf8) {
            t->error = "non-ASCII characters in a character class need the C.UTF-8 locale";
            return -1;
        }
        t->expansion += c->r[i].hi - lo + 1;
        if (t->expansion > MAX_CLASS_EXPANSION) {
            snprintf(t->error_buf, sizeof(t->error_buf), "character classes cover more than %d non-ASCII characters",
                     MAX_CLASS_EXPANSION);
            t->error = t->error_buf;
            return -1;
        }
    }

    if (c->n == 0 && !rbracket && !caret && !hyphen && !lbracket) {
        if (!c->negated) {
            t->error = "empty character class";
            return -1;
        }
        buf_char(&t->out, '.');
        return 0;
    }
    if (!c->negated && c->n == 0 && !rbracket && !lbracket) {
        /* Only "^" and "-": "[^-]" would be a negation. */
        buf_str(&t->out, caret && hyphen ? "(\\^|-)" : caret ? "\\^" : "-");
        return 0;
    }

    buf_char(&t->out, '[');
    if (c->negated)
        buf_char(&t->out, '^');
    if (rbracket)
        buf_char(&t->out, ']');
    for (i = 0; i < c->n; i++) {
        unsigned lo = c->r[i].lo, hi = c->r[i].hi;
        if (lo < 0x80) {
            unsigned ascii_hi = hi < 0x80 ? hi : 0x7f;
            buf_char(&t->out, (char)lo);
            if (ascii_hi > lo + 1)
                buf_char(&t->out, '-');
            if (ascii_hi > lo)
                buf_char(&t->out, (char)ascii_hi);
            lo = 0x80;
        }
        /* glibc refuses ranges of non-ASCII characters in C.UTF-8: list them one by one. */
        for (unsigned cp = lo; cp <= hi && cp >= 0x80; cp++) {
            if (cp >= 0xd800 && cp <= 0xdfff)
                continue;
            buf_utf8(&t->out, cp);
        }
    }
    if (lbracket)
        buf_char(&t->out, '[');
    if (caret)
        buf_char(&t->out, '^');
    if (hyphen)
        buf_char(&t->out, '-');
    buf_char(&t->out, ']');
    return 0;
}

/* Reads n hex digits at t->src[t->i] into *value; returns -1 if they are not there. */
static int read_hex(translate_t *t, int n, unsigned *value)
{
    *value = 0;
    if (t->len - t->i < (size_t)n)
        return -1;
    for (int k = 0; k < n; k++) {
        int h = sff_text_hexval(t->src[t->i + k]);
        if (h < 0)
            return -1;
        *value = *value << 4 | (unsigned)h;
    }
    t->i += n;
    return 0;
}

/* The kinds of what an escape stands for. */
enum { ESC_CHAR, ESC_CLASS, ESC_ERROR };

/*
 * Reads the escape after a backslash (t->i is past the backslash). Returns ESC_CHAR with the code
 * point in *cp, ESC_CLASS with the class letter (d, D, w, W, s, S) in *cp, or ESC_ERROR with
 * t->error set. in_class selects the meaning of \b (a backspace in a class).
 */
static int read_escape(translate_t *t, int in_class, unsigned *cp)
{
    if (t->i >= t->len) {
        t->error = "trailing backslash";
        return ESC_ERROR;
    }
    char e = t->src[t->i++];
    switch (e) {
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 's':
    case 'S':
        *cp = (unsigned char)e;
        return ESC_CLASS;
    case 'n':
        *cp = '\n';
        return ESC_CHAR;
    case 'r':
        *cp = '\r';
        return ESC_CHAR;
    case 't':
        *cp = '\t';
        return ESC_CHAR;
    case 'f':
        *cp = '\f';
        return ESC_CHAR;
    case 'v':
        *cp = '\v';
        return ESC_CHAR;
    case 'b':
        if (in_class) {
            *cp = '\b';
            return ESC_CHAR;
        }
        /* fallthrough */
    case 'B':
        t->error = "word boundaries (\\b, \\B) are not supported";
        return ESC_ERROR;
    case 'x':
        if (read_hex(t, 2, cp) != 0) {
            t->error = "\\x needs two hex digits";
            return ESC_ERROR;
        }
        break;
    case 'u':
        if (read_hex(t, 4, cp) != 0) {
            t->error = "\\u needs four hex digits";
            return ESC_ERROR;
        }
        if (*cp >= 0xd800 && *cp <= 0xdbff) {
            unsigned low;
            size_t save = t->i;
            if (t->len - t->i >= 6 && t->src[t->i] == '\\' && t->src[t->i + 1] == 'u' && (t->i += 2, read_hex(t, 4, &low) == 0) &&
                low >= 0xdc00 && low <= 0xdfff) {
                *cp = 0x10000 + ((*cp - 0xd800) << 10) + (low - 0xdc00);
                break;
            }
            t->i = save;
        }
        if (*cp >= 0xd800 && *cp <= 0xdfff) {
            t->error = "lone surrogate escapes are not supported";
            return ESC_ERROR;
        }
        break;
    case '0':
        t->error = "\\0 (NUL) is not supported";
        return ESC_ERROR;
    case 'k':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        t->error = "backreferences are not supported";
        return ESC_ERROR;
    case 'p':
    case 'P':
        t->error = "Unicode property escapes (\\p, \\P) are not supported";
        return ESC_ERROR;
    case 'c':
        t->error = "control escapes (\\c) are not supported";
        return ESC_ERROR;
    default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
            snprintf(t->error_buf, sizeof(t->error_buf), "unsupported escape \\%c", e);
            t->error = t->error_buf;
            return ESC_ERROR;
        }
        /* An escaped punctuation character (or any other character) stands for itself. */
        t->i--;
        *cp = utf8_next(t->src, t->len, &t->i);
        break;
    }
    /* No text holds a NUL: a class may list it (it is dropped), a pattern may not require it. */
    if (*cp == 0 && !in_class) {
        t->error = "NUL is not supported";
        return ESC_ERROR;
    }
    return ESC_CHAR;
}

/* Translates a character class; t->i is past the "[". */
static int translate_class(translate_t *t)
{
    cclass_t c = {NULL};
    int ret = -1;

    if (t->i < t->len && t->src[t->i] == '^') {
        c.negated = 1;
        t->i++;
    }
    for (;;) {
        unsigned lo, hi;
        int kind;
        if (t->i >= t->len) {
            t->error = "unterminated character class";
            goto exit;
        }
        if (t->src[t->i] == ']') {
            t->i++;
            break;
        }
        if (t->src[t->i] == '\\') {
            t->i++;
            if ((kind = read_escape(t, 1, &lo)) == ESC_ERROR)
                goto exit;
        } else {
            kind = ESC_CHAR;
            lo = utf8_next(t->src, t->len, &t->i);
        }
        if (kind == ESC_CLASS) {
            if (lo == 'D' || lo == 'W' || lo == 'S') {
                t->error = "\\D, \\W and \\S are not supported inside a character class";
                goto exit;
            }
            if (t->len - t->i >= 2 && t->src[t->i] == '-' && t->src[t->i + 1] != ']') {
                t->error = "a class escape cannot start a range";
                goto exit;
            }
            cclass_add_escape(&c, (char)lo, t->utf8);
            continue;
        }
        if (t->len - t->i >= 2 && t->src[t->i] == '-' && t->src[t->i + 1] != ']') {
            t->i++;
            if (t->src[t->i] == '\\') {
                t->i++;
                if ((kind = read_escape(t, 1, &hi)) == ESC_ERROR)
                    goto exit;
                if (kind == ESC_CLASS) {
                    t->error = "a class escape cannot end a range";
                    goto exit;
                }
            } else {
                hi = utf8_next(t->src, t->len, &t->i);
            }
            if (hi < lo) {
                t->error = "character class range out of order";
                goto exit;
            }
        } else {
            hi = lo;
        }
        cclass_add(&c, lo, hi);
    }
    if (c.n == 0 && !c.negated) {
        t->error = "empty character class [] is not supported";
        goto exit;
    }
    if (c.n == 0) {
        t->error = "[^] is not supported";
        goto exit;
    }
    ret = cclass_emit(t, &c);

exit:
    free(c.r);
    return ret;
}

/* Whether t->src at t->i (a "{") starts an ECMA-262 quantifier ({n}, {n,} or {n,m}); if so, sets
 * *end past its "}" and *count to the number of copies of its atom the ERE engine makes (m, or
 * n + 1 without m; numbers above RE_DUP_MAX_BOUND read as RE_DUP_MAX_BOUND + 1). */
static int is_quantifier(const translate_t *t, size_t *end, size_t *count)
{
    size_t i = t->i + 1, digits = 0, n = 0, m = 0;

    for (; i < t->len && t->src[i] >= '0' && t->src[i] <= '9'; i++, digits++)
        if (n <= RE_DUP_MAX_BOUND)
            n = n * 10 + (size_t)(t->src[i] - '0');
    if (digits == 0)
        return 0;
    if (i < t->len && t->src[i] == ',') {
        digits = 0;
        for (i++; i < t->len && t->src[i] >= '0' && t->src[i] <= '9'; i++, digits++)
            if (m <= RE_DUP_MAX_BOUND)
                m = m * 10 + (size_t)(t->src[i] - '0');
        if (digits == 0)
            m = n + 1;
    } else {
        m = n;
    }
    if (i >= t->len || t->src[i] != '}')
        return 0;
    *end = i + 1;
    *count = m > n ? m : n;
    if (*count > RE_DUP_MAX_BOUND)
        *count = RE_DUP_MAX_BOUND + 1;
    return 1;
}

/* Refuses a "?" right after a quantifier (t->i is past the quantifier). */
static int check_lazy(translate_t *t)
{
    if (t->i < t->len && t->src[t->i] == '?') {
        t->error = "lazy quantifiers (*?, +?, ??, {n,m}?) are not supported";
        return -1;
    }
    return 0;
}

/* Writes a literal character outside a class. Non-ASCII ones are grouped so that a quantifier
 * after them repeats the whole character. */
static void emit_literal(translate_t *t, unsigned cp)
{
    if (cp < 0x80) {
        if (strchr(".[\\()*+?{|^$", (int)cp) != NULL)
            buf_char(&t->out, '\\');
        buf_char(&t->out, (char)cp);
    } else {
        buf_char(&t->out, '(');
        buf_utf8(&t->out, cp);
        buf_char(&t->out, ')');
    }
}

/*
 * Translates the ECMA-262 pattern src into an ERE in t->out. Returns 0, or -1 with t->error.
 *
 * glibc's regcomp() copies the subtree of an atom for each repetition ("a{3}" is "aaa", "a+" is
 * "aa*") and gives up only when memory runs out, so nested or stacked quantifiers can cost
 * exponential time and space. Hence, as in ECMA-262, a quantifier must follow an atom (not another
 * quantifier or an assertion), and the size of the pattern after these copies, counted in atoms,
 * is bounded by MAX_PATTERN_ATOMS, as is the nesting of groups (regcomp() recurses on it).
 */
static int translate_pattern(translate_t *t)
{
    /* Per open group: its size so far (all alternatives) and the size of its last atom, which a
     * quantifier would repeat (0: nothing to repeat). */
    struct {
        size_t total, last;
    } groups[MAX_GROUP_DEPTH + 1] = {{0, 0}};
    size_t depth = 0, atom;

    buf_append(&t->out, "", 0);
    while (t->i < t->len) {
        char c = t->src[t->i];
        size_t end, count;
        atom = 1;
        switch (c) {
        case '\\': {
            unsigned cp;
            t->i++;
            switch (read_escape(t, 0, &cp)) {
            case ESC_ERROR:
                return -1;
            case ESC_CLASS: {
                cclass_t cls = {NULL};
                cls.negated = cp == 'D' || cp == 'W' || cp == 'S';
                cclass_add_escape(&cls, (char)(cp | 0x20), t->utf8);
                int ret = cclass_emit(t, &cls);
                free(cls.r);
                if (ret != 0)
                    return -1;
            } break;
            default:
                emit_literal(t, cp);
                break;
            }
        } break;
        case '[':
            t->i++;
            if (translate_class(t) != 0)
                return -1;
            break;
        case '.': {
            cclass_t cls = {NULL};
            cls.negated = 1;
            cclass_add(&cls, '\n', '\n');
            cclass_add(&cls, '\r', '\r');
            if (t->utf8)
                cclass_add(&cls, 0x2028, 0x2029);
            int ret = cclass_emit(t, &cls);
            free(cls.r);
            if (ret != 0)
                return -1;
            t->i++;
        } break;
        case '(':
            t->i++;
            if (t->i < t->len && t->src[t->i] == '?') {
                const char *rest = t->src + t->i + 1;
                size_t left = t->len - t->i - 1;
                if (left >= 1 && rest[0] == ':') {
                    t->i += 2;
                } else if (left >= 1 && (rest[0] == '=' || rest[0] == '!')) {
                    t->error = "lookahead assertions are not supported";
                    return -1;
                } else if (left >= 2 && rest[0] == '<' && (rest[1] == '=' || rest[1] == '!')) {
                    t->error = "lookbehind assertions are not supported";
                    return -1;
                } else if (left >= 1 && rest[0] == '<') {
                    const char *close = memchr(rest, '>', left);
                    if (close == NULL) {
                        t->error = "unterminated group name";
                        return -1;
                    }
                    t->i += (size_t)(close - rest) + 2;
                } else {
                    t->error = "unsupported group syntax (?";
                    return -1;
                }
            }
            if (depth == MAX_GROUP_DEPTH) {
                snprintf(t->error_buf, sizeof(t->error_buf), "groups nested deeper than %d", MAX_GROUP_DEPTH);
                t->error = t->error_buf;
                return -1;
            }
            depth++;
            groups[depth].total = groups[depth].last = 0;
            buf_char(&t->out, '(');
            continue;
        case ')':
            if (depth == 0) {
                t->error = "unmatched )";
                return -1;
            }
            /* An empty group still makes a node. */
            atom = groups[depth].total != 0 ? groups[depth].total : 1;
            depth--;
            buf_char(&t->out, ')');
            t->i++;
            break;
        case '*':
        case '+':
        case '?':
        case '{':
            if (c != '{') {
                end = t->i + 1;
                count = c == '+' ? 2 : 1;
            } else if (!is_quantifier(t, &end, &count)) {
                buf_str(&t->out, "\\{");
                t->i++;
                break;
            }
            if (groups[depth].last == 0) {
                t->error = "nothing to repeat (a quantifier must follow a character, a class or a group)";
                return -1;
            }
            if (count > RE_DUP_MAX_BOUND) {
                snprintf(t->error_buf, sizeof(t->error_buf), "repetition counts above %d are not supported", RE_DUP_MAX_BOUND);
                t->error = t->error_buf;
                return -1;
            }
            buf_append(&t->out, t->src + t->i, end - t->i);
            t->i = end;
            if (check_lazy(t) != 0)
                return -1;
            /* The atom now stands count times; nothing may repeat the quantified atom again. */
            groups[depth].total += groups[depth].last * (count - 1);
            groups[depth].last = 0;
            if (groups[depth].total > MAX_PATTERN_ATOMS)
                goto too_large;
            continue;
        case '|':
        case '^':
        case '$':
            buf_char(&t->out, c);
            t->i++;
            groups[depth].last = 0;
            continue;
        case ']':
        case '}':
            buf_char(&t->out, c);
            t->i++;
            break;
        default:
            emit_literal(t, utf8_next(t->src, t->len, &t->i));
            break;
        }
        groups[depth].total += atom;
        groups[depth].last = atom;
        if (groups[depth].total > MAX_PATTERN_ATOMS)
            goto too_large;
    }
    if (depth != 0) {
        t->error = "unmatched (";
        return -1;
    }
    return 0;

too_large:
    snprintf(t->error_buf, sizeof(t->error_buf), "pattern too large once its repetitions are expanded (more than %d atoms)",
             MAX_PATTERN_ATOMS);
    t->error = t->error_buf;
    return -1;
}

/* Compilation. */

typedef struct st_compile_t {
    buf_t ptr; /* the JSON pointer of what is being compiled */
    char *err;
    size_t errlen;
} compile_t;

static void compile_error(compile_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "<pointer>: <message>" to the error buffer. */
static void compile_error(compile_t *c, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (c->err == NULL || c->errlen == 0)
        return;
    n = snprintf(c->err, c->errlen, "%s: ", c->ptr.len != 0 ? c->ptr.s : "(root)");
    if (n < 0 || (size_t)n >= c->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void node_free(node_t *node)
{
    if (node == NULL)
        return;
    for (size_t i = 0; i < node->nprops; i++)
        node_free(node->props[i].node);
    free(node->props);
    node_free(node->additional_node);
    node_free(node->items);
    if (node->pattern != NULL) {
        regfree(node->pattern);
        free(node->pattern);
    }
    free(node);
}

/* Reads a count keyword (a non-negative integer; a real without a fraction is one too). */
static int read_count(compile_t *c, json_t *value, long long *out)
{
    if (json_is_integer(value) && json_integer_value(value) >= 0) {
        *out = json_integer_value(value);
        return 0;
    }
    if (json_is_real(value)) {
        double d = json_real_value(value);
        if (d >= 0 && d <= 9007199254740992.0 && floor_of(d) == d) {
            *out = (long long)d;
            return 0;
        }
    }
    compile_error(c, "must be a non-negative integer");
    return -1;
}

static int type_bit(const char *name)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (strcmp(type_names[i].name, name) == 0)
            return (int)type_names[i].bit;
    return 0;
}

static int compile_type(compile_t *c, json_t *value, unsigned *types)
{
    int bit;

    if (json_is_string(value)) {
        if ((bit = type_bit(json_string_value(value))) == 0) {
            compile_error(c, "unknown type \"%s\"", json_string_value(value));
            return -1;
        }
        *types = (unsigned)bit;
        return 0;
    }
    if (!json_is_array(value) || json_array_size(value) == 0) {
        compile_error(c, "must be a type name or a non-empty array of type names");
        return -1;
    }
    *types = 0;
    for (size_t i = 0; i < json_array_size(value); i++) {
        json_t *name = json_array_get(value, i);
        size_t old = ptr_push_index(&c->ptr, i);
        if (!json_is_string(name)) {
            compile_error(c, "must be a type name");
            return -1;
        }
        if ((bit = type_bit(json_string_value(name))) == 0) {
            compile_error(c, "unknown type \"%s\"", json_string_value(name));
            return -1;
        }
        if ((*types & (unsigned)bit) != 0) {
            compile_error(c, "type \"%s\" is listed twice", json_string_value(name));
            return -1;
        }
        *types |= (unsigned)bit;
        ptr_pop(&c->ptr, old);
    }
    return 0;
}

static int compile_required(compile_t *c, json_t *value)
{
    if (!json_is_array(value)) {
        compile_error(c, "must be an array of property names");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(value); i++) {
        json_t *name = json_array_get(value, i);
        size_t old = ptr_push_index(&c->ptr, i);
        if (!json_is_string(name)) {
            compile_error(c, "must be a property name (a string)");
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (json_equal(name, json_array_get(value, j))) {
                compile_error(c, "\"%s\" is listed twice", json_string_value(name));
                return -1;
            }
        }
        ptr_pop(&c->ptr, old);
    }
    return 0;
}

static int compile_pattern(compile_t *c, node_t *node, json_t *value)
{
    translate_t t = {NULL};
    int rc, ret = -1;

    if (!json_is_string(value)) {
        compile_error(c, "must be a string");
        return -1;
    }
    t.src = json_string_value(value);
    t.len = json_string_length(value);
    if (strlen(t.src) != t.len) {
        compile_error(c, "NUL is not supported");
        return -1;
    }
    locale_t utf8 = get_utf8_locale();
    t.utf8 = utf8 != (locale_t)0;
    if (translate_pattern(&t) != 0) {
        compile_error(c, "%s", t.error);
        goto exit;
    }
    node->pattern = xcalloc(1, sizeof(*node->pattern));
    locale_t old = t.utf8 ? uselocale(utf8) : (locale_t)0;
    rc = regcomp(node->pattern, t.out.s, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128];
        regerror(rc, node->pattern, msg, sizeof(msg));
        free(node->pattern);
        node->pattern = NULL;
        compile_error(c, "invalid regular expression: %s", msg);
    }
    if (t.utf8)
        uselocale(old);
    if (rc != 0)
        goto exit;
    node->pattern_src = t.src;
    ret = 0;

exit:
    free(t.out.s);
    return ret;
}

static node_t *compile_node(compile_t *c, json_t *schema, int depth);

/* Compiles the subschema value under key (the caller has pushed it). */
static node_t *compile_child(compile_t *c, json_t *value, int depth)
{
    if (!json_is_object(value)) {
        compile_error(c, "must be a schema (an object)");
        return NULL;
    }
    return compile_node(c, value, depth + 1);
}

static int compile_properties(compile_t *c, node_t *node, json_t *value, int depth)
{
    const char *name;
    json_t *sub;

    if (!json_is_object(value)) {
        compile_error(c, "must be an object of schemas");
        return -1;
    }
    node->properties = value;
    node->props = xcalloc(json_object_size(value) + 1, sizeof(*node->props));
    json_object_foreach(value, name, sub)
    {
        size_t old = ptr_push(&c->ptr, name, strlen(name));
        node_t *child = compile_child(c, sub, depth);
        if (child == NULL)
            return -1;
        node->props[node->nprops].name = name;
        node->props[node->nprops].node = child;
        node->nprops++;
        ptr_pop(&c->ptr, old);
    }
    return 0;
}

static int compile_keyword(compile_t *c, node_t *node, const char *key, json_t *value, int depth)
{
    if (strcmp(key, "type") == 0)
        return compile_type(c, value, &node->types);
    if (strcmp(key, "properties") == 0)
        return compile_properties(c, node, value, depth);
    if (strcmp(key, "required") == 0) {
        node->required = value;
        return compile_required(c, value);
    }
    if (strcmp(key, "additionalProperties") == 0) {
        if (json_is_boolean(value)) {
            node->additional = json_is_true(value) ? ADDITIONAL_ANY : ADDITIONAL_NONE;
            return 0;
        }
        if (!json_is_object(value)) {
            compile_error(c, "must be a boolean or a schema");
            return -1;
        }
        node->additional = ADDITIONAL_SCHEMA;
        return (node->additional_node = compile_child(c, value, depth)) != NULL ? 0 : -1;
    }
    if (strcmp(key, "items") == 0)
        return (node->items = compile_child(c, value, depth)) != NULL ? 0 : -1;
    if (strcmp(key, "enum") == 0) {
        if (!json_is_array(value) || json_array_size(value) == 0) {
            compile_error(c, "must be a non-empty array");
            return -1;
        }
        node->enum_values = value;
        return 0;
    }
    if (strcmp(key, "const") == 0) {
        node->const_value = value;
        return 0;
    }
    if (strcmp(key, "minLength") == 0)
        return read_count(c, value, &node->min_length);
    if (strcmp(key, "maxLength") == 0)
        return read_count(c, value, &node->max_length);
    if (strcmp(key, "minItems") == 0)
        return read_count(c, value, &node->min_items);
    if (strcmp(key, "maxItems") == 0)
        return read_count(c, value, &node->max_items);
    if (strcmp(key, "pattern") == 0)
        return compile_pattern(c, node, value);
    json_t **limit = strcmp(key, "minimum") == 0            ? &node->minimum
                     : strcmp(key, "maximum") == 0          ? &node->maximum
                     : strcmp(key, "exclusiveMinimum") == 0 ? &node->exclusive_minimum
                     : strcmp(key, "exclusiveMaximum") == 0 ? &node->exclusive_maximum
                                                            : NULL;
    if (limit != NULL) {
        if (!json_is_number(value)) {
            compile_error(c, "must be a number");
            return -1;
        }
        *limit = value;
        return 0;
    }
    if (strcmp(key, "format") == 0) {
        const char *f = json_string_value(value);
        if (f == NULL) {
            compile_error(c, "must be a string");
            return -1;
        }
        node->format = strcmp(f, "uuid") == 0        ? FORMAT_UUID
                       : strcmp(f, "email") == 0     ? FORMAT_EMAIL
                       : strcmp(f, "date-time") == 0 ? FORMAT_DATE_TIME
                                                     : FORMAT_NONE;
        if (node->format == FORMAT_NONE) {
            compile_error(c, "unknown format \"%s\" (known: uuid, email, date-time)", f);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "title") == 0 || strcmp(key, "description") == 0 || strcmp(key, "$schema") == 0 || strcmp(key, "$id") == 0) {
        if (!json_is_string(value)) {
            compile_error(c, "must be a string");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "examples") == 0) {
        if (!json_is_array(value)) {
            compile_error(c, "must be an array");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "default") == 0)
        return 0;
    compile_error(c, "unknown keyword");
    return -1;
}

static node_t *compile_node(compile_t *c, json_t *schema, int depth)
{
    const char *key;
    json_t *value;
    node_t *node;

    if (!json_is_object(schema)) {
        compile_error(c, "must be a schema (an object)");
        return NULL;
    }
    if (depth > MAX_SCHEMA_DEPTH) {
        compile_error(c, "schema nested deeper than %d levels", MAX_SCHEMA_DEPTH);
        return NULL;
    }
    node = xcalloc(1, sizeof(*node));
    node->min_length = node->max_length = node->min_items = node->max_items = -1;
    json_object_foreach(schema, key, value)
    {
        size_t old = ptr_push(&c->ptr, key, strlen(key));
        if (compile_keyword(c, node, key, value, depth) != 0) {
            node_free(node);
            return NULL;
        }
        ptr_pop(&c->ptr, old);
    }
    return node;
}

sff_schema_t *sff_schema_compile(json_t *doc, char *err, size_t errlen)
{
    compile_t c = {{NULL}, err, errlen};
    sff_schema_t *schema = NULL;
    node_t *root;

    buf_append(&c.ptr, "", 0);
    if ((root = compile_node(&c, doc, 1)) != NULL) {
        schema = xcalloc(1, sizeof(*schema));
        schema->doc = json_incref(doc);
        schema->root = root;
    }
    free(c.ptr.s);
    return schema;
}

void sff_schema_destroy(sff_schema_t *schema)
{
    if (schema == NULL)
        return;
    node_free(schema->root);
    json_decref(schema->doc);
    free(schema);
}

json_t *sff_schema_doc(const sff_schema_t *schema)
{
    return schema->doc;
}

/* Numbers. */

/* Compares an integer with a real exactly (no rounding of large integers to double). */
static int cmp_int_real(json_int_t i, double d)
{
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double fl = floor_of(d);
    json_int_t f = (json_int_t)fl;
    if (i != f)
        return i < f ? -1 : 1;
    return fl < d ? -1 : 0;
}

/* Compares two JSON numbers by value: <0, 0 or >0. */
static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_integer(a))
        return cmp_int_real(json_integer_value(a), json_real_value(b));
    if (json_is_integer(b))
        return -cmp_int_real(json_integer_value(b), json_real_value(a));
    double x = json_real_value(a), y = json_real_value(b);
    return x < y ? -1 : x > y;
}

/* Writes a number the way a person would write it (shortest of %.15g and %.17g that reads back). */
static void format_number(const json_t *n, char *buf, size_t size)
{
    if (json_is_integer(n)) {
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(n));
        return;
    }
    double d = json_real_value(n);
    snprintf(buf, size, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, size, "%.17g", d);
}

/* json_equal(), except that numbers are equal when their values are (1 and 1.0). Recursion stops
 * at the shallower of the two values. */
static int values_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!values_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a)) {
        const char *key;
        json_t *value;
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, key, value)
        {
            json_t *other = json_object_get(b, key);
            if (other == NULL || !values_equal(value, other))
                return 0;
        }
        return 1;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* Appends a value to a message: numbers as format_number() writes them, others as compact JSON. */
static void describe_value(buf_t *b, const json_t *value)
{
    if (json_is_number(value)) {
        char num[64];
        format_number(value, num, sizeof(num));
        buf_str(b, num);
        return;
    }
    char *s = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s != NULL) {
        buf_str(b, s);
        free(s);
    }
}

/* Formats. */

static int digits_value(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int is_uuid(const char *s, size_t len)
{
    if (len != 36)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (sff_text_hexval(s[i]) < 0) {
            return 0;
        }
    }
    return 1;
}

/* A practical check: one "@", a local part and a domain without whitespace or control
 * characters, a domain with a dot inside it and no empty label, at most 254 characters. */
static int is_email(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);

    if (at == NULL || at == s || memchr(at + 1, '@', len - (size_t)(at - s) - 1) != NULL)
        return 0;
    if (utf8_count(s, len) > 254)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f)
            return 0;
    }
    const char *domain = at + 1;
    size_t dlen = len - (size_t)(domain - s);
    if (dlen == 0 || domain[0] == '.' || domain[dlen - 1] == '.' || memchr(domain, '.', dlen) == NULL)
        return 0;
    for (size_t i = 1; i < dlen; i++)
        if (domain[i] == '.' && domain[i - 1] == '.')
            return 0;
    return 1;
}

static int is_leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), "t" and "z" in either case. */
static int is_date_time(const char *s, size_t len)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year, month, day, hour, minute, second;
    size_t i;

    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return 0;
    if ((year = digits_value(s, 4)) < 0 || (month = digits_value(s + 5, 2)) < 0 || (day = digits_value(s + 8, 2)) < 0 ||
        (hour = digits_value(s + 11, 2)) < 0 || (minute = digits_value(s + 14, 2)) < 0 || (second = digits_value(s + 17, 2)) < 0)
        return 0;
    if (month < 1 || month > 12 || day < 1)
        return 0;
    if (day > days[month - 1] + (month == 2 && is_leap_year(year)))
        return 0;
    if (hour > 23 || minute > 59 || second > 60) /* 60: a leap second */
        return 0;
    i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
    }
    if (i < len && (s[i] == 'Z' || s[i] == 'z'))
        return i + 1 == len;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (len - i != 6 || s[i + 3] != ':' || (oh = digits_value(s + i + 1, 2)) < 0 || (om = digits_value(s + i + 4, 2)) < 0)
            return 0;
        return oh <= 23 && om <= 59;
    }
    return 0;
}

/* Validation. */

typedef struct st_validate_t {
    buf_t ptr; /* the JSON pointer of the value being validated */
    json_t *details;
    int count;
} validate_t;

static void report(validate_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(validate_t *v, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    v->count++;
    if (v->details == NULL)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(msg)) {
        /* Cut a long message (a long pattern, say) at a character boundary. */
        size_t cut = sizeof(msg) - 4;
        while (cut > 0 && ((unsigned char)msg[cut] & 0xc0) == 0x80)
            cut--;
        memcpy(msg + cut, "...", 4);
    }
    json_t *detail = json_object();
    if (detail == NULL)
        return;
    json_object_set_new(detail, "path", json_string(v->ptr.s));
    json_object_set_new(detail, "message", json_string(msg));
    json_array_append_new(v->details, detail);
}

/* The type bits an instance satisfies. */
static unsigned instance_types(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_NULL:
        return T_NULL;
    case JSON_TRUE:
    case JSON_FALSE:
        return T_BOOLEAN;
    case JSON_INTEGER:
        return T_INTEGER | T_NUMBER;
    case JSON_REAL: {
        double d = json_real_value(value);
        return isfinite(d) && floor_of(d) == d ? T_INTEGER | T_NUMBER : T_NUMBER;
    }
    case JSON_STRING:
        return T_STRING;
    case JSON_ARRAY:
        return T_ARRAY;
    case JSON_OBJECT:
        return T_OBJECT;
    }
    return 0;
}

static void report_type(validate_t *v, unsigned types)
{
    const char *nouns[sizeof(type_names) / sizeof(type_names[0])];
    size_t n = 0;
    buf_t msg = {NULL};

    /* "a number" already covers "an integer". */
    if ((types & T_NUMBER) != 0)
        types &= ~(unsigned)T_INTEGER;
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if ((types & type_names[i].bit) != 0)
            nouns[n++] = type_names[i].noun;
    buf_str(&msg, "must be ");
    for (size_t i = 0; i < n; i++) {
        if (i != 0)
            buf_str(&msg, i + 1 == n ? " or " : ", ");
        buf_str(&msg, nouns[i]);
    }
    report(v, "%s", msg.s);
    free(msg.s);
}

static void report_enum(validate_t *v, const json_t *values)
{
    buf_t msg = {NULL};

    buf_str(&msg, "must be one of: ");
    for (size_t i = 0; i < json_array_size(values); i++) {
        if (i != 0)
            buf_str(&msg, ", ");
        if (msg.len > MAX_ENUM_MESSAGE) {
            buf_str(&msg, "...");
            break;
        }
        describe_value(&msg, json_array_get(values, i));
    }
    report(v, "%s", msg.s);
    free(msg.s);
}

static void validate_node(validate_t *v, const node_t *node, json_t *instance);

static void validate_string(validate_t *v, const node_t *node, const json_t *instance)
{
    const char *s = json_string_value(instance);
    size_t len = json_string_length(instance);

    if (node->min_length >= 0 || node->max_length >= 0) {
        long long chars = (long long)utf8_count(s, len);
        if (node->min_length >= 0 && chars < node->min_length)
            report(v, "must be at least %lld character%s", node->min_length, node->min_length == 1 ? "" : "s");
        if (node->max_length >= 0 && chars > node->max_length)
            report(v, "must be at most %lld character%s", node->max_length, node->max_length == 1 ? "" : "s");
    }
    if (node->pattern != NULL) {
        int matches = 0;
        /* A string with a NUL (only possible in values built by code) cannot be searched. */
        if (strlen(s) == len) {
            locale_t utf8 = get_utf8_locale(), old = utf8 != (locale_t)0 ? uselocale(utf8) : (locale_t)0;
            matches = regexec(node->pattern, s, 0, NULL, 0) == 0;
            if (utf8 != (locale_t)0)
                uselocale(old);
        }
        if (!matches)
            report(v, "must match pattern %s", node->pattern_src);
    }
    switch (node->format) {
    case FORMAT_UUID:
        if (!is_uuid(s, len))
            report(v, "is not a valid UUID");
        break;
    case FORMAT_EMAIL:
        if (!is_email(s, len))
            report(v, "is not a valid email");
        break;
    case FORMAT_DATE_TIME:
        if (!is_date_time(s, len))
            report(v, "is not a valid date-time");
        break;
    }
}

static void validate_number(validate_t *v, const node_t *node, const json_t *instance)
{
    char num[64];

    if (node->minimum != NULL && num_cmp(instance, node->minimum) < 0) {
        format_number(node->minimum, num, sizeof(num));
        report(v, "must be at least %s", num);
    }
    if (node->maximum != NULL && num_cmp(instance, node->maximum) > 0) {
        format_number(node->maximum, num, sizeof(num));
        report(v, "must be at most %s", num);
    }
    if (node->exclusive_minimum != NULL && num_cmp(instance, node->exclusive_minimum) <= 0) {
        format_number(node->exclusive_minimum, num, sizeof(num));
        report(v, "must be greater than %s", num);
    }
    if (node->exclusive_maximum != NULL && num_cmp(instance, node->exclusive_maximum) >= 0) {
        format_number(node->exclusive_maximum, num, sizeof(num));
        report(v, "must be less than %s", num);
    }
}

static void validate_array(validate_t *v, const node_t *node, json_t *instance)
{
    long long n = (long long)json_array_size(instance);

    if (node->min_items >= 0 && n < node->min_items)
        report(v, "must have at least %lld item%s", node->min_items, node->min_items == 1 ? "" : "s");
    if (node->max_items >= 0 && n > node->max_items)
        report(v, "must have at most %lld item%s", node->max_items, node->max_items == 1 ? "" : "s");
    if (node->items != NULL) {
        for (size_t i = 0; i < json_array_size(instance); i++) {
            size_t old = ptr_push_index(&v->ptr, i);
            validate_node(v, node->items, json_array_get(instance, i));
            ptr_pop(&v->ptr, old);
        }
    }
}

static void validate_object(validate_t *v, const node_t *node, json_t *instance)
{
    const char *key;
    json_t *value;

    for (size_t i = 0; i < json_array_size(node->required); i++) {
        json_t *name = json_array_get(node->required, i);
        if (json_object_getn(instance, json_string_value(name), json_string_length(name)) == NULL) {
            size_t old = ptr_push(&v->ptr, json_string_value(name), json_string_length(name));
            report(v, "is required");
            ptr_pop(&v->ptr, old);
        }
    }
    for (size_t i = 0; i < node->nprops; i++) {
        if ((value = json_object_get(instance, node->props[i].name)) != NULL) {
            size_t old = ptr_push(&v->ptr, node->props[i].name, strlen(node->props[i].name));
            validate_node(v, node->props[i].node, value);
            ptr_pop(&v->ptr, old);
        }
    }
    if (node->additional != ADDITIONAL_ANY) {
        json_object_foreach(instance, key, value)
        {
            if (node->properties != NULL && json_object_get(node->properties, key) != NULL)
                continue;
            size_t old = ptr_push(&v->ptr, key, strlen(key));
            if (node->additional == ADDITIONAL_NONE) {
                report(v, "is not allowed (additional property)");
            } else {
                validate_node(v, node->additional_node, value);
            }
            ptr_pop(&v->ptr, old);
        }
    }
}

/* Recursion follows the instance, so its depth bounds the recursion. */
static void validate_node(validate_t *v, const node_t *node, json_t *instance)
{
    if (node->types != 0 && (node->types & instance_types(instance)) == 0) {
        report_type(v, node->types);
        return;
    }
    if (node->enum_values != NULL) {
        size_t i;
        for (i = 0; i < json_array_size(node->enum_values); i++)
            if (values_equal(instance, json_array_get(node->enum_values, i)))
                break;
        if (i == json_array_size(node->enum_values))
            report_enum(v, node->enum_values);
    }
    if (node->const_value != NULL && !values_equal(instance, node->const_value)) {
        buf_t msg = {NULL};
        buf_str(&msg, "must be equal to ");
        describe_value(&msg, node->const_value);
        report(v, "%s", msg.s);
        free(msg.s);
    }
    switch (json_typeof(instance)) {
    case JSON_STRING:
        validate_string(v, node, instance);
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        validate_number(v, node, instance);
        break;
    case JSON_ARRAY:
        validate_array(v, node, instance);
        break;
    case JSON_OBJECT:
        validate_object(v, node, instance);
        break;
    default:
        break;
    }
}

/* Whether s is a JSON number (RFC 8259 grammar); *integral tells whether it has no fraction and no
 * exponent. */
static int is_json_number(const char *s, size_t len, int *integral)
{
    size_t i = 0;

    *integral = 1;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len || s[i] < '0' || s[i] > '9')
        return 0;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < len && s[i] == '.') {
        *integral = 0;
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        *integral = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
    }
    return i == len;
}

/* The value a string parameter stands for under types, or NULL when it reads as none of them. */
static json_t *coerce(const char *s, size_t len, unsigned types)
{
    if (strlen(s) != len)
        return NULL;
    if ((types & T_BOOLEAN) != 0) {
        if (strcmp(s, "true") == 0)
            return json_true();
        if (strcmp(s, "false") == 0)
            return json_false();
    }
    int integral;
    if ((types & (T_INTEGER | T_NUMBER)) != 0 && is_json_number(s, len, &integral)) {
        errno = 0;
        if (integral) {
            long long i = strtoll(s, NULL, 10);
            return errno == 0 ? json_integer(i) : NULL;
        }
        double d = strtod(s, NULL);
        return errno == 0 && isfinite(d) ? json_real(d) : NULL;
    }
    return NULL;
}

static void coerce_members(const node_t *root, json_t *instance, const json_t *coercible)
{
    const char *key;
    json_t *ignored;

    if (!json_is_object(instance) || !json_is_object(coercible))
        return;
    json_object_foreach((json_t *)coercible, key, ignored)
    {
        json_t *member = json_object_get(instance, key), *converted;
        if (!json_is_string(member))
            continue;
        for (size_t i = 0; i < root->nprops; i++) {
            unsigned types = root->props[i].node->types;
            if (strcmp(root->props[i].name, key) != 0)
                continue;
            if ((types & (T_INTEGER | T_NUMBER | T_BOOLEAN)) != 0 && (types & T_STRING) == 0 &&
                (converted = coerce(json_string_value(member), json_string_length(member), types)) != NULL)
                json_object_set_new(instance, key, converted);
            break;
        }
    }
}

int sff_schema_validate(const sff_schema_t *schema, json_t *instance, const json_t *coercible, json_t *details)
{
    validate_t v = {{NULL}, json_is_array(details) ? details : NULL, 0};

    buf_append(&v.ptr, "", 0);
    if (instance == NULL) {
        /* No value at all is never valid, whatever the schema. */
        report(&v, "is required");
    } else {
        if (coercible != NULL)
            coerce_members(schema->root, instance, coercible);
        validate_node(&v, schema->root, instance);
    }
    free(v.ptr.s);
    return v.count;
}

/* Sets of schemas. */

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const schemas_entry_t *)a)->name, ((const schemas_entry_t *)b)->name);
}

static int valid_name(const char *name, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Reads and compiles one schema file; NULL with "<path>: <message>" in err. */
static sff_schema_t *load_file(const char *path, char *err, size_t errlen)
{
    char msg[256];
    FILE *fp;
    struct stat st;
    char *text = NULL;
    json_t *doc = NULL;
    sff_schema_t *schema = NULL;

    if ((fp = fopen(path, "rb")) == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(fp), &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto exit;
    }
    if (st.st_size > MAX_FILE_SIZE) {
        snprintf(err, errlen, "%s: larger than %d bytes", path, MAX_FILE_SIZE);
        goto exit;
    }
    /* One byte more than the size tells a file that grew since fstat(). */
    size_t size = (size_t)st.st_size, len;
    text = xrealloc(NULL, size + 1);
    len = fread(text, 1, size + 1, fp);
    if (ferror(fp) || len != size) {
        snprintf(err, errlen, "%s: read error", path);
        goto exit;
    }
    if ((doc = sff_jsonin_parse(text, len, MAX_FILE_DEPTH, msg, sizeof(msg))) == NULL) {
        snprintf(err, errlen, "%s: %s", path, msg);
        goto exit;
    }
    if ((schema = sff_schema_compile(doc, msg, sizeof(msg))) == NULL)
        snprintf(err, errlen, "%s: %s", path, msg);

exit:
    json_decref(doc);
    free(text);
    fclose(fp);
    return schema;
}

sff_schemas_t *sff_schemas_load(const char *dir, char *err, size_t errlen)
{
    sff_schemas_t *set = xcalloc(1, sizeof(*set));
    size_t cap = 0;
    DIR *d;
    struct dirent *ent;
    char dummy[1];

    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if ((d = opendir(dir)) == NULL) {
        if (errno == ENOENT)
            return set;
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        free(set);
        return NULL;
    }
    while ((ent = readdir(d)) != NULL) {
        size_t len = strlen(ent->d_name);
        if (len < 5 || strcmp(ent->d_name + len - 5, ".json") != 0)
            continue;
        size_t pathlen = strlen(dir) + 1 + len + 1;
        char *path = xrealloc(NULL, pathlen);
        snprintf(path, pathlen, "%s/%s", dir, ent->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (!valid_name(ent->d_name, len - 5)) {
            snprintf(err, errlen, "%s: a schema name may only hold A-Z, a-z, 0-9, \"_\" and \"-\"", path);
            free(path);
            goto error;
        }
        sff_schema_t *schema = load_file(path, err, errlen);
        free(path);
        if (schema == NULL)
            goto error;
        if (set->n == cap) {
            cap = cap != 0 ? cap * 2 : 8;
            set->entries = xrealloc(set->entries, cap * sizeof(*set->entries));
        }
        set->entries[set->n].name = strndup(ent->d_name, len - 5);
        if (set->entries[set->n].name == NULL) {
            fprintf(stderr, "sff: out of memory\n");
            abort();
        }
        set->entries[set->n].schema = schema;
        set->n++;
    }
    closedir(d);
    if (set->n > 1)
        qsort(set->entries, set->n, sizeof(*set->entries), entry_cmp);
    return set;

error:
    closedir(d);
    sff_schemas_destroy(set);
    return NULL;
}

void sff_schemas_destroy(sff_schemas_t *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        free(set->entries[i].name);
        sff_schema_destroy(set->entries[i].schema);
    }
    free(set->entries);
    free(set);
}

const sff_schema_t *sff_schemas_get(const sff_schemas_t *set, const char *name)
{
    schemas_entry_t key = {(char *)name, NULL}, *found;

    if (set == NULL || set->n == 0)
        return NULL;
    found = bsearch(&key, set->entries, set->n, sizeof(*set->entries), entry_cmp);
    return found != NULL ? found->schema : NULL;
}

const char *sff_schemas_name_at(const sff_schemas_t *set, size_t i, const sff_schema_t **schema)
{
    if (set == NULL || i >= set->n) {
        if (schema != NULL)
            *schema = NULL;
        return NULL;
    }
    if (schema != NULL)
        *schema = set->entries[i].schema;
    return set->entries[i].name;
}
