/*
 * The container setup (Dockerfile, .dockerignore, docker-compose.yml) against sff's environment
 * contract, without a Docker engine (docs/decisions/0060-compose.md).
 *
 * docker-compose.yml is read by a small strict reader for the YAML subset compose files use: block
 * maps and lists by indentation, plain and quoted scalars, one-line [flow lists], comments. It
 * refuses tabs, anchors, tags, block scalars, flow maps, multi-line scalars and anything else it
 * does not understand, so that no check passes on a file it misread. ${VAR:-default} is expanded
 * with its default only: the checks see what `docker compose up` gets with no environment and no
 * .env file. The Dockerfile is read instruction by instruction, its RUN lines as shell words.
 *
 * SFF_TEST_COMPOSE_FILE, SFF_TEST_DOCKERFILE and SFF_TEST_DOCKERIGNORE point the test at other
 * files (to watch a check fail on a broken copy); the defaults are the repository's.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/setup.h"
#include "test.h"

/* ---- small helpers ---------------------------------------------------------------------------- */

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("  ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    test_cur_failed_ = 1;
}

/* Everything the readers allocate lives until the end of main(). */
static void **arena;
static size_t arena_n, arena_cap;

static void *anew(size_t size)
{
    void *p = calloc(1, size != 0 ? size : 1);
    if (p == NULL)
        abort();
    if (arena_n == arena_cap) {
        arena_cap = arena_cap != 0 ? arena_cap * 2 : 1024;
        arena = realloc(arena, arena_cap * sizeof(*arena));
        if (arena == NULL)
            abort();
    }
    arena[arena_n++] = p;
    return p;
}

static char *astrndup(const char *s, size_t n)
{
    char *d = anew(n + 1);
    memcpy(d, s, n);
    return d;
}

static char *astrdup(const char *s)
{
    return astrndup(s, strlen(s));
}

static char *aprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *aprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = anew((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void arena_free(void)
{
    for (size_t i = 0; i < arena_n; i++)
        free(arena[i]);
    free(arena);
}

/* A whole file, NUL-terminated (in the arena); NULL when it cannot be read. */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *b = realloc(buf, cap *= 2);
            if (b == NULL)
                free(buf);
            buf = b;
        }
    }
    fclose(f);
    if (buf == NULL)
        return NULL;
    buf[n] = '\0';
    char *out = astrndup(buf, n);
    free(buf);
    if (len != NULL)
        *len = n;
    return out;
}

typedef struct {
    char *v[512];
    size_t n;
} strset_t;

static int set_has(const strset_t *s, const char *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], v) == 0)
            return 1;
    return 0;
}

static void set_add(strset_t *s, const char *v)
{
    if (!set_has(s, v) && s->n < sizeof(s->v) / sizeof(s->v[0]))
        s->v[s->n++] = astrdup(v);
}

static int is_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A path without trailing slashes (in the arena). */
static char *no_slash(const char *p)
{
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        n--;
    return astrndup(p, n);
}

/* ---- the YAML subset of compose files --------------------------------------------------------- */

typedef enum { Y_NULL, Y_STR, Y_MAP, Y_SEQ } ykind_t;

typedef struct ynode {
    ykind_t kind;
    int line;
    char *str; /* Y_STR */
    size_t n, cap;
    char **keys;          /* Y_MAP */
    struct ynode **items; /* Y_MAP values, Y_SEQ items */
} ynode_t;

typedef struct {
    int no, indent;
    char *text; /* after the indentation, trailing spaces removed */
} yline_t;

typedef struct {
    yline_t *lines;
    size_t n, cap, pos;
    jmp_buf jmp;
    char err[400];
} yparser_t;

static void yfail(yparser_t *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
static void yfail(yparser_t *p, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(p->err, sizeof(p->err), "line %d: ", line);
    vsnprintf(p->err + k, sizeof(p->err) - (size_t)k, fmt, ap);
    va_end(ap);
    longjmp(p->jmp, 1);
}

static ynode_t *ynode(ykind_t kind, int line)
{
    ynode_t *n = anew(sizeof(*n));
    n->kind = kind;
    n->line = line;
    return n;
}

static void yadd(ynode_t *c, char *key, ynode_t *v)
{
    if (c->n == c->cap) {
        size_t cap = c->cap != 0 ? c->cap * 2 : 8;
        ynode_t **items = anew(cap * sizeof(*items));
        if (c->n != 0)
            memcpy(items, c->items, c->n * sizeof(*items));
        c->items = items;
        if (c->kind == Y_MAP) {
            char **keys = anew(cap * sizeof(*keys));
            if (c->n != 0)
                memcpy(keys, c->keys, c->n * sizeof(*keys));
            c->keys = keys;
        }
        c->cap = cap;
    }
    if (c->kind == Y_MAP)
        c->keys[c->n] = key;
    c->items[c->n++] = v;
}

static int yis_item(const char *s)
{
    return s[0] == '-' && (s[1] == ' ' || s[1] == '\0');
}

/* After a value only spaces and a comment may follow (a comment needs a space before its '#'). */
static void ytail(yparser_t *p, int line, const char *s)
{
    const char *t = s;
    while (*t == ' ')
        t++;
    if (*t == '\0' || (*t == '#' && t > s))
        return;
    yfail(p, line, "unexpected text after a value: \"%s\"", s);
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A quoted scalar starting at s (its quote); *end is after the closing quote. */
static char *yquoted(yparser_t *p, int line, const char *s, const char **end)
{
    char q = *s++;
    char *out = anew(strlen(s) + 1), *o = out;
    for (;;) {
        if (*s == '\0')
            yfail(p, line, "a quoted string must end on its line");
        if (q == '\'') {
            if (*s == '\'') {
                if (s[1] == '\'') {
                    *o++ = '\'';
                    s += 2;
                    continue;
                }
                s++;
                break;
            }
            *o++ = *s++;
            continue;
        }
        if (*s == '"') {
            s++;
            break;
        }
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        s++;
        switch (*s) {
        case '\\':
            *o++ = '\\';
            break;
        case '"':
            *o++ = '"';
            break;
        case '/':
            *o++ = '/';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 'x': {
            int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
            if (lo < 0 || hi * 16 + lo == 0 || hi * 16 + lo > 0x7f)
                yfail(p, line, "\\x needs two hex digits of an ASCII character other than NUL");
            *o++ = (char)(hi * 16 + lo);
            s += 2;
            break;
        }
        default:
            yfail(p, line, "the escape \\%c is not supported (\\\\ \\\" \\/ \\n \\t \\r \\xHH are)", *s ? *s : ' ');
        }
        s++;
    }
    *end = s;
    return out;
}

/* A plain scalar from s up to a comment (" #") or the end of the line; in a flow list, up to ',' or
 * ']'. Refuses what would make it something other than a plain string. */
static char *yplain(yparser_t *p, int line, const char *s, int flow, const char **end)
{
    if (strchr("&*!", *s) != NULL)
        yfail(p, line, "anchors, aliases and tags (%c) are not supported", *s);
    if (*s == '|' || *s == '>')
        yfail(p, line, "block scalars (| and >) are not supported");
    if (*s == '{')
        yfail(p, line, "flow maps ({...}) are not supported");
    if (strchr("%@`[],#", *s) != NULL)
        yfail(p, line, "a plain value cannot start with '%c'", *s);
    if ((*s == '?' || *s == '-' || *s == ':') && (s[1] == ' ' || s[1] == '\0'))
        yfail(p, line, "\"%c \" is not supported here (no complex keys, no list after a key on its line)", *s);
    const char *e = s;
    for (; *e != '\0'; e++) {
        if (*e == ' ' && e[1] == '#')
            break;
        if (flow && (*e == ',' || *e == ']'))
            break;
        if (flow && (*e == '[' || *e == '{' || *e == '}'))
            yfail(p, line, "nested flow collections are not supported");
        if (*e == ':' && (e[1] == ' ' || e[1] == '\0' || (flow && (e[1] == ',' || e[1] == ']'))))
            yfail(p, line, "\": \" inside a plain value (quote the value)");
    }
    const char *t = e;
    while (t > s && t[-1] == ' ')
        t--;
    if (t == s)
        yfail(p, line, "an empty value");
    *end = e;
    return astrndup(s, (size_t)(t - s));
}

/* A flow list on one line: [a, "b", 'c'] of scalars. */
static ynode_t *yflow(yparser_t *p, int line, const char *s, const char **end)
{
    ynode_t *seq = ynode(Y_SEQ, line);
    s++;
    while (*s == ' ')
        s++;
    if (*s == ']') {
        *end = s + 1;
        return seq;
    }
    for (;;) {
        while (*s == ' ')
            s++;
        ynode_t *it = ynode(Y_STR, line);
        if (*s == '\0')
            yfail(p, line, "a flow list must end on its line");
        if (*s == '"' || *s == '\'')
            it->str = yquoted(p, line, s, &s);
        else
            it->str = yplain(p, line, s, 1, &s);
        yadd(seq, NULL, it);
        while (*s == ' ')
            s++;
        if (*s == ']') {
            *end = s + 1;
            return seq;
        }
        if (*s != ',')
            yfail(p, line, "a flow list must end on its line with ']', its items separated by ','");
        s++;
        while (*s == ' ')
            s++;
        if (*s == ']')
            yfail(p, line, "a trailing ',' in a flow list");
    }
}

static ynode_t *yvalue(yparser_t *p, int line, const char *s)
{
    const char *end;
    ynode_t *v;
    if (*s == '[') {
        v = yflow(p, line, s, &end);
    } else {
        v = ynode(Y_STR, line);
        if (*s == '"' || *s == '\'') {
            v->str = yquoted(p, line, s, &end);
        } else {
            v->str = yplain(p, line, s, 0, &end);
            if (strcmp(v->str, "~") == 0 || strcmp(v->str, "null") == 0 || strcmp(v->str, "Null") == 0 ||
                strcmp(v->str, "NULL") == 0)
                v->kind = Y_NULL;
        }
    }
    ytail(p, line, end);
    return v;
}

/* The key of a "key: value" text, or NULL when the text is not one; *rest is after the ':'. */
static char *ykey(yparser_t *p, int line, const char *s, const char **rest)
{
    if (*s == '"' || *s == '\'') {
        const char *e;
        char *k = yquoted(p, line, s, &e);
        if (*e != ':' || (e[1] != ' ' && e[1] != '\0'))
            return NULL;
        *rest = e + 1;
        return k;
    }
    for (const char *e = s; *e != '\0'; e++) {
        if (*e == ' ' && e[1] == '#')
            return NULL;
        if (*e == ':' && (e[1] == ' ' || e[1] == '\0')) {
            const char *t = e;
            while (t > s && t[-1] == ' ')
                t--;
            if (t == s)
                yfail(p, line, "an empty key");
            if (strchr("&*!|>{}[]%@`,?#", *s) != NULL || yis_item(s))
                yfail(p, line, "a key cannot start with '%c'", *s);
            if (strncmp(s, "<<", 2) == 0)
                yfail(p, line, "merge keys (<<) are not supported");
            *rest = e + 1;
            return astrndup(s, (size_t)(t - s));
        }
    }
    return NULL;
}

static ynode_t *yblock(yparser_t *p, int indent);
static ynode_t *yseq(yparser_t *p, int indent);

/* The value of a "key:" or "-" with nothing after it: the more indented block that follows (or,
 * after a key, a list at the key's own indentation), else null. */
static ynode_t *ynested(yparser_t *p, int indent, int line, int after_key)
{
    if (p->pos < p->n) {
        yline_t *l = &p->lines[p->pos];
        if (l->indent > indent)
            return yblock(p, l->indent);
        if (after_key && l->indent == indent && yis_item(l->text))
            return yseq(p, indent);
    }
    return ynode(Y_NULL, line);
}

static void yno_deeper(yparser_t *p, int indent, const char *what)
{
    if (p->pos < p->n && p->lines[p->pos].indent > indent)
        yfail(p, p->lines[p->pos].no, "unexpected indentation%s", what);
}

static ynode_t *yseq(yparser_t *p, int indent)
{
    ynode_t *seq = ynode(Y_SEQ, p->lines[p->pos].no);
    while (p->pos < p->n && p->lines[p->pos].indent == indent && yis_item(p->lines[p->pos].text)) {
        yline_t *l = &p->lines[p->pos];
        const char *rest = l->text + 1, *after;
        while (*rest == ' ')
            rest++;
        if (*rest == '\0' || *rest == '#') {
            p->pos++;
            yadd(seq, NULL, ynested(p, indent, l->no, 0));
            continue;
        }
        if (yis_item(rest) || ykey(p, l->no, rest, &after) != NULL) {
            /* "- key: value" or "- - x": the item is a block whose first line starts at rest */
            int col = indent + (int)(rest - l->text);
            l->indent = col;
            l->text = (char *)rest;
            yadd(seq, NULL, yblock(p, col));
        } else {
            yadd(seq, NULL, yvalue(p, l->no, rest));
            p->pos++;
            yno_deeper(p, indent, " (multi-line values are not supported)");
        }
    }
    yno_deeper(p, indent, "");
    return seq;
}

static ynode_t *ymap(yparser_t *p, int indent)
{
    ynode_t *map = ynode(Y_MAP, p->lines[p->pos].no);
    while (p->pos < p->n && p->lines[p->pos].indent == indent) {
        yline_t *l = &p->lines[p->pos];
        if (yis_item(l->text))
            yfail(p, l->no, "a list item where a key was expected");
        const char *rest;
        char *key = ykey(p, l->no, l->text, &rest);
        if (key == NULL)
            yfail(p, l->no, "expected \"key: value\", found \"%s\"", l->text);
        for (size_t i = 0; i < map->n; i++)
            if (strcmp(map->keys[i], key) == 0)
                yfail(p, l->no, "duplicate key \"%s\"", key);
        while (*rest == ' ')
            rest++;
        if (*rest == '\0' || *rest == '#') {
            p->pos++;
            yadd(map, key, ynested(p, indent, l->no, 1));
        } else {
            yadd(map, key, yvalue(p, l->no, rest));
            p->pos++;
            yno_deeper(p, indent, " (multi-line values are not supported)");
        }
    }
    yno_deeper(p, indent, "");
    return map;
}

static ynode_t *yblock(yparser_t *p, int indent)
{
    return yis_item(p->lines[p->pos].text) ? yseq(p, indent) : ymap(p, indent);
}

static void yprepare(yparser_t *p, char *buf, size_t len)
{
    if (strlen(buf) != len)
        yfail(p, 1, "a NUL byte in the file");
    int no = 0, seen = 0;
    for (char *line = buf; line != NULL;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        no++;
        if (strchr(line, '\t') != NULL)
            yfail(p, no, "a tab character (this reader refuses tabs anywhere; indent with spaces)");
        if (strchr(line, '\r') != NULL)
            yfail(p, no, "a carriage return (CRLF line ends are not supported)");
        int indent = 0;
        while (line[indent] == ' ')
            indent++;
        char *text = line + indent;
        size_t tl = strlen(text);
        while (tl > 0 && text[tl - 1] == ' ')
            text[--tl] = '\0';
        if (*text != '\0' && *text != '#') {
            if (strcmp(text, "---") == 0 && indent == 0 && !seen) {
                /* the start of the one document */
            } else if (strcmp(text, "---") == 0 || strcmp(text, "...") == 0) {
                yfail(p, no, "one document only");
            } else if (*text == '%') {
                yfail(p, no, "directives are not supported");
            } else {
                if (p->n == p->cap) {
                    p->cap = p->cap != 0 ? p->cap * 2 : 256;
                    p->lines = realloc(p->lines, p->cap * sizeof(*p->lines));
                    if (p->lines == NULL)
                        abort();
                }
                p->lines[p->n++] = (yline_t){no, indent, text};
            }
            seen = 1;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
}

/* Parses text; NULL with a message ("line N: …") when it is not in the subset. */
static ynode_t *yparse(const char *text, size_t len, char *err, size_t errlen)
{
    yparser_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        abort();
    char *buf = astrndup(text, len);
    ynode_t *volatile root = NULL;
    if (setjmp(p->jmp) == 0) {
        yprepare(p, buf, len);
        if (p->n == 0)
            yfail(p, 1, "no content");
        if (p->lines[0].indent != 0)
            yfail(p, p->lines[0].no, "the document must start in the first column");
        root = yblock(p, 0);
        if (p->pos < p->n)
            yfail(p, p->lines[p->pos].no, "unexpected text");
        if (root->kind != Y_MAP)
            yfail(p, 1, "the document must be a map");
    } else {
        snprintf(err, errlen, "%s", p->err);
        root = NULL;
    }
    free(p->lines);
    free(p);
    return root;
}

static ynode_t *yget(ynode_t *m, const char *key)
{
    if (m == NULL || m->kind != Y_MAP)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return m->items[i];
    return NULL;
}

static const char *ystr(ynode_t *n)
{
    return n != NULL && n->kind == Y_STR ? n->str : NULL;
}

/* ---- compose interpolation -------------------------------------------------------------------- */

static struct {
    char *name, *def;
    int line;
} ivars[128];
static size_t nivars;

/*
 * Compose interpolation with the defaults only: $$ is $, ${NAME:-default} and ${NAME-default} are
 * their default. ${NAME} or $NAME without a default, ${NAME:?…}, ${NAME:+…} and nested defaults
 * fail: `docker compose up` must work with no environment and no .env file. A variable with two
 * different defaults fails too. Returns the text (arena), or NULL with err.
 */
static char *interp(const char *s, int line, char *err, size_t errlen)
{
    char *out;
    size_t outlen;
    FILE *f = open_memstream(&out, &outlen);
    if (f == NULL)
        abort();
    const char *c = s;
    while (*c != '\0') {
        if (*c != '$') {
            fputc(*c++, f);
            continue;
        }
        if (c[1] == '$') {
            fputc('$', f);
            c += 2;
            continue;
        }
        if (c[1] != '{') {
            snprintf(err, errlen, "line %d: \"%.20s\": a variable without a default, or a lone $ (write $$)", line, c);
            goto fail;
        }
        const char *name = c + 2, *e = name;
        while (isalnum((unsigned char)*e) || *e == '_')
            e++;
        if (e == name || isdigit((unsigned char)*name)) {
            snprintf(err, errlen, "line %d: \"%.20s\": not a variable name", line, c);
            goto fail;
        }
        const char *def;
        if (e[0] == ':' && e[1] == '-') {
            def = e + 2;
        } else if (e[0] == '-') {
            def = e + 1;
        } else {
            snprintf(
                err, errlen,
                "line %d: ${%.*s…} has no default (write ${%.*s:-default}): `docker compose up` must work without an environment",
                line, (int)(e - name), name, (int)(e - name), name);
            goto fail;
        }
        const char *close = strchr(def, '}');
        if (close == NULL) {
            snprintf(err, errlen, "line %d: an unterminated ${", line);
            goto fail;
        }
        if (memchr(def, '$', (size_t)(close - def)) != NULL) {
            snprintf(err, errlen, "line %d: a $ inside the default of ${%.*s} (nesting is not supported)", line, (int)(e - name),
                     name);
            goto fail;
        }
        char *vname = astrndup(name, (size_t)(e - name)), *vdef = astrndup(def, (size_t)(close - def));
        size_t i;
        for (i = 0; i < nivars && strcmp(ivars[i].name, vname) != 0; i++)
            ;
        if (i < nivars && strcmp(ivars[i].def, vdef) != 0) {
            snprintf(err, errlen, "line %d: ${%s} has the default \"%s\" here and \"%s\" on line %d", line, vname, vdef,
                     ivars[i].def, ivars[i].line);
            goto fail;
        }
        if (i == nivars && nivars < sizeof(ivars) / sizeof(ivars[0])) {
            ivars[nivars].name = vname;
            ivars[nivars].def = vdef;
            ivars[nivars++].line = line;
        }
        fputs(vdef, f);
        c = close + 1;
    }
    fclose(f);
    char *r = astrdup(out);
    free(out);
    return r;
fail:
    fclose(f);
    free(out);
    return NULL;
}

/* ---- the compose file ------------------------------------------------------------------------- */

static const char *compose_path, *dockerfile_path, *dockerignore_path;
static ynode_t *compose;
static char compose_err[512];

#define NEED_COMPOSE()                                                                                                             \
    do {                                                                                                                           \
        if (compose == NULL) {                                                                                                     \
            failf("%s: %s", compose_path, compose_err);                                                                            \
            return;                                                                                                                \
        }                                                                                                                          \
    } while (0)

static ynode_t *service(const char *name)
{
    return yget(yget(compose, "services"), name);
}

/* A scalar of the compose file after interpolation; NULL (and a failure) when it does not interpolate. */
static const char *cvalue(ynode_t *n)
{
    if (n == NULL || n->kind != Y_STR)
        return NULL;
    char err[400];
    char *v = interp(n->str, n->line, err, sizeof(err));
    if (v == NULL)
        failf("%s: %s", compose_path, err);
    return v;
}

typedef struct {
    const char *key;
    ynode_t *value; /* Y_STR, or Y_NULL for a variable passed through from the host */
    int line;
} kv_t;

/* A service's environment, map or "KEY=value" list form. */
static size_t env_list(ynode_t *svc, kv_t *kv, size_t max)
{
    ynode_t *env = yget(svc, "environment");
    size_t n = 0;
    if (env == NULL)
        return 0;
    if (env->kind == Y_MAP) {
        for (size_t i = 0; i < env->n && n < max; i++) {
            if (env->items[i]->kind != Y_STR && env->items[i]->kind != Y_NULL)
                failf("%s:%d: environment %s: a string was expected", compose_path, env->items[i]->line, env->keys[i]);
            kv[n++] = (kv_t){env->keys[i], env->items[i], env->items[i]->line};
        }
    } else if (env->kind == Y_SEQ) {
        for (size_t i = 0; i < env->n && n < max; i++) {
            ynode_t *it = env->items[i];
            if (it->kind != Y_STR) {
                failf("%s:%d: environment: \"KEY=value\" was expected", compose_path, it->line);
                continue;
            }
            const char *eq = strchr(it->str, '=');
            ynode_t *v = ynode(eq != NULL ? Y_STR : Y_NULL, it->line);
            v->str = eq != NULL ? astrdup(eq + 1) : NULL;
            kv[n++] = (kv_t){eq != NULL ? astrndup(it->str, (size_t)(eq - it->str)) : it->str, v, it->line};
        }
    } else {
        failf("%s:%d: environment must be a map or a list", compose_path, env->line);
    }
    return n;
}

static ynode_t *env_node(ynode_t *svc, const char *name)
{
    kv_t kv[128];
    size_t n = env_list(svc, kv, 128);
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, name) == 0)
            return kv[i].value;
    return NULL;
}

/* NAME's value in service svcname's environment after interpolation, dflt when the service does not
 * set it; a variable without a value, or one that does not interpolate, fails (NULL). */
static const char *envv(const char *svcname, const char *name, const char *dflt)
{
    ynode_t *v = env_node(service(svcname), name);
    if (v == NULL) {
        if (dflt == NULL)
            failf("service %s: %s is not set", svcname, name);
        return dflt;
    }
    if (v->kind == Y_NULL) {
        failf("%s:%d: service %s: %s has no value (it would come from the host's environment)", compose_path, v->line, svcname,
              name);
        return NULL;
    }
    return cvalue(v);
}

/* "quay.io/minio/minio:RELEASE…" → repo "minio/minio", tag "RELEASE…"; "postgres:15" → "postgres", "15". */
static void image_parts(const char *image, char *repo, size_t rn, char *tag, size_t tn)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", image);
    char *at = strchr(buf, '@');
    if (at != NULL)
        *at = '\0';
    char *slash = strrchr(buf, '/'), *colon = strrchr(slash != NULL ? slash : buf, ':');
    snprintf(tag, tn, "%s", colon != NULL ? colon + 1 : "latest");
    if (colon != NULL)
        *colon = '\0';
    char *r = buf, *first = strchr(r, '/');
    if (first != NULL && (memchr(r, '.', (size_t)(first - r)) != NULL || memchr(r, ':', (size_t)(first - r)) != NULL ||
                          strncmp(r, "localhost/", 10) == 0))
        r = first + 1;
    if (strncmp(r, "library/", 8) == 0)
        r += 8;
    snprintf(repo, rn, "%s", r);
}

/* The name of the one service whose image is repo (registry and tag aside); NULL and a failure when
 * there is none or more than one. */
static const char *service_by_image(const char *repo)
{
    ynode_t *svcs = yget(compose, "services");
    const char *found = NULL;
    for (size_t i = 0; svcs != NULL && svcs->kind == Y_MAP && i < svcs->n; i++) {
        const char *image = ystr(yget(svcs->items[i], "image"));
        if (image == NULL)
            continue;
        char err[400], r[512], tag[512];
        const char *v = interp(image, yget(svcs->items[i], "image")->line, err, sizeof(err));
        if (v == NULL)
            continue;
        image_parts(v, r, sizeof(r), tag, sizeof(tag));
        if (strcmp(r, repo) != 0)
            continue;
        if (found != NULL) {
            failf("two services run %s: %s and %s", repo, found, svcs->keys[i]);
            return NULL;
        }
        found = svcs->keys[i];
    }
    if (found == NULL)
        failf("no service runs the image %s", repo);
    return found;
}

/* The words of a command (list, or a string split at spaces). */
static size_t command_words(ynode_t *cmd, const char **w, size_t max)
{
    size_t n = 0;
    if (cmd == NULL)
        return 0;
    if (cmd->kind == Y_SEQ) {
        for (size_t i = 0; i < cmd->n && n < max; i++)
            if (cmd->items[i]->kind == Y_STR)
                w[n++] = cmd->items[i]->str;
    } else if (cmd->kind == Y_STR) {
        char *s = astrdup(cmd->str);
        for (char *t = strtok(s, " "); t != NULL && n < max; t = strtok(NULL, " "))
            w[n++] = t;
    }
    return n;
}

/* The value of --opt VALUE or --opt=VALUE in a service's command, or NULL. */
static const char *command_option(ynode_t *svc, const char *opt)
{
    const char *w[64];
    size_t n = command_words(yget(svc, "command"), w, 64), len = strlen(opt);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(w[i], opt) == 0 && i + 1 < n)
            return w[i + 1];
        if (strncmp(w[i], opt, len) == 0 && w[i][len] == '=')
            return w[i] + len + 1;
    }
    return NULL;
}

typedef struct {
    char scheme[16], user[128], pass[256], host[256], port[16], path[256], query[1024];
    int has_user, has_pass;
} url_t;

static int pct_decode(char *s)
{
    char *o = s;
    for (char *c = s; *c != '\0'; c++) {
        if (*c == '%') {
            int hi = hexval(c[1]), lo = hi < 0 ? -1 : hexval(c[2]);
            if (lo < 0)
                return -1;
            *o++ = (char)(hi * 16 + lo);
            c += 2;
        } else {
            *o++ = *c;
        }
    }
    *o = '\0';
    return 0;
}

static int copy_span(char *dst, size_t size, const char *s, const char *e)
{
    if ((size_t)(e - s) >= size)
        return -1;
    memcpy(dst, s, (size_t)(e - s));
    dst[e - s] = '\0';
    return 0;
}

/* scheme://[user[:pass]@]host[:port][/path][?query] */
static int url_parse(const char *s, url_t *u)
{
    memset(u, 0, sizeof(*u));
    const char *p = strstr(s, "://");
    if (p == NULL || copy_span(u->scheme, sizeof(u->scheme), s, p) != 0)
        return -1;
    const char *a = p + 3, *ae = a + strcspn(a, "/?#"), *h = a;
    const char *at = memrchr(a, '@', (size_t)(ae - a));
    if (at != NULL) {
        const char *colon = memchr(a, ':', (size_t)(at - a));
        u->has_user = 1;
        if (colon != NULL) {
            u->has_pass = 1;
            if (copy_span(u->user, sizeof(u->user), a, colon) != 0 || copy_span(u->pass, sizeof(u->pass), colon + 1, at) != 0)
                return -1;
        } else if (copy_span(u->user, sizeof(u->user), a, at) != 0) {
            return -1;
        }
        h = at + 1;
    }
    const char *colon = memchr(h, ':', (size_t)(ae - h));
    if (copy_span(u->host, sizeof(u->host), h, colon != NULL ? colon : ae) != 0 ||
        (colon != NULL && copy_span(u->port, sizeof(u->port), colon + 1, ae) != 0))
        return -1;
    const char *rest = ae;
    if (*rest == '/') {
        const char *pe = rest + 1 + strcspn(rest + 1, "?#");
        if (copy_span(u->path, sizeof(u->path), rest + 1, pe) != 0)
            return -1;
        rest = pe;
    }
    if (*rest == '?' && copy_span(u->query, sizeof(u->query), rest + 1, rest + 1 + strcspn(rest + 1, "#")) != 0)
        return -1;
    return pct_decode(u->user) || pct_decode(u->pass) || pct_decode(u->path) ? -1 : 0;
}

static int query_get(const char *query, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    for (const char *q = query; *q != '\0';) {
        size_t len = strcspn(q, "&");
        if (len > klen && strncmp(q, key, klen) == 0 && q[klen] == '=') {
            if (copy_span(out, size, q + klen + 1, q + len) != 0)
                return 0;
            return 1;
        }
        q += len + (q[len] == '&');
    }
    return 0;
}

/* ---- the Dockerfile --------------------------------------------------------------------------- */

typedef struct {
    char kw[16];
    char *args;
    int line;
} dins_t;

typedef struct {
    char *image, *name;
    int line;
    dins_t ins[128];
    size_t n;
} dstage_t;

static dstage_t dstages[16];
static size_t ndstages;
static int docker_ok;
static char docker_err[400];

#define NEED_DOCKERFILE()                                                                                                          \
    do {                                                                                                                           \
        if (!docker_ok) {                                                                                                          \
            failf("%s: %s", dockerfile_path, docker_err);                                                                          \
            return;                                                                                                                \
        }                                                                                                                          \
    } while (0)

typedef struct {
    char **w;
    size_t n, cap;
} words_t;

static void words_add(words_t *ws, const char *s, size_t n)
{
    if (ws->n == ws->cap) {
        size_t cap = ws->cap != 0 ? ws->cap * 2 : 16;
        char **w = anew(cap * sizeof(*w));
        if (ws->n != 0)
            memcpy(w, ws->w, ws->n * sizeof(*w));
        ws->w = w;
        ws->cap = cap;
    }
    ws->w[ws->n++] = astrndup(s, n);
}

/*
 * Shell-like words: spaces separate them, '…' and "…" quote, a backslash escapes; unquoted ;, |, &,
 * ||, && are words of their own. Enough for the RUN, ENV, COPY and FROM lines of a Dockerfile.
 * Returns -1 on an unterminated quote.
 */
static int shell_words(const char *s, words_t *ws)
{
    char buf[8192];
    size_t bn = 0;
    int in_word = 0;
    while (*s != '\0') {
        if (bn + 2 >= sizeof(buf))
            return -1;
        char c = *s;
        if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word)
                words_add(ws, buf, bn);
            bn = 0;
            in_word = 0;
            s++;
            continue;
        }
        if (c == ';' || c == '|' || c == '&') {
            if (in_word)
                words_add(ws, buf, bn);
            bn = 0;
            in_word = 0;
            size_t n = c != ';' && s[1] == c ? 2 : 1;
            words_add(ws, s, n);
            s += n;
            continue;
        }
        in_word = 1;
        if (c == '\'') {
            for (s++; *s != '\0' && *s != '\'' && bn + 2 < sizeof(buf); s++)
                buf[bn++] = *s;
            if (*s != '\'')
                return -1;
            s++;
        } else if (c == '"') {
            for (s++; *s != '\0' && *s != '"' && bn + 2 < sizeof(buf); s++) {
                if (*s == '\\' && s[1] != '\0' && strchr("\"\\$`", s[1]) != NULL)
                    s++;
                buf[bn++] = *s;
            }
            if (*s != '"')
                return -1;
            s++;
        } else if (c == '\\' && s[1] != '\0') {
            buf[bn++] = s[1];
            s += 2;
        } else {
            buf[bn++] = *s++;
        }
    }
    if (in_word)
        words_add(ws, buf, bn);
    return 0;
}

static const char *docker_keywords[] = {"FROM",    "RUN",        "CMD",         "LABEL",  "MAINTAINER", "EXPOSE",  "ENV",
                                        "ADD",     "COPY",       "ENTRYPOINT",  "VOLUME", "USER",       "WORKDIR", "ARG",
                                        "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",  NULL};

static int dockerfile_add(char *logical, int line)
{
    char *s = logical;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t kl = strcspn(s, " \t");
    dins_t in = {.line = line};
    if (kl == 0 || kl >= sizeof(in.kw)) {
        snprintf(docker_err, sizeof(docker_err), "line %d: not an instruction", line);
        return -1;
    }
    for (size_t i = 0; i < kl; i++)
        in.kw[i] = (char)toupper((unsigned char)s[i]);
    size_t k;
    for (k = 0; docker_keywords[k] != NULL && strcmp(docker_keywords[k], in.kw) != 0; k++)
        ;
    if (docker_keywords[k] == NULL) {
        snprintf(docker_err, sizeof(docker_err), "line %d: unknown instruction %s", line, in.kw);
        return -1;
    }
    s += kl;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t al = strlen(s);
    while (al > 0 && (s[al - 1] == ' ' || s[al - 1] == '\t'))
        al--;
    in.args = astrndup(s, al);
    if ((strcmp(in.kw, "RUN") == 0 || strcmp(in.kw, "COPY") == 0 || strcmp(in.kw, "ADD") == 0) && strstr(in.args, "<<") != NULL) {
        snprintf(docker_err, sizeof(docker_err), "line %d: heredocs are not supported by this reader", line);
        return -1;
    }
    if (strcmp(in.kw, "FROM") == 0) {
        words_t w = {0};
        if (shell_words(in.args, &w) != 0 || ndstages == sizeof(dstages) / sizeof(dstages[0])) {
            snprintf(docker_err, sizeof(docker_err), "line %d: a FROM this reader does not understand", line);
            return -1;
        }
        size_t i = 0;
        while (i < w.n && strncmp(w.w[i], "--", 2) == 0)
            i++;
        if (i >= w.n || !(w.n == i + 1 || (w.n == i + 3 && strcasecmp(w.w[i + 1], "AS") == 0))) {
            snprintf(docker_err, sizeof(docker_err), "line %d: FROM [--option…] IMAGE [AS NAME] was expected", line);
            return -1;
        }
        dstage_t *st = &dstages[ndstages++];
        st->image = w.w[i];
        st->name = w.n == i + 3 ? w.w[i + 2] : NULL;
        st->line = line;
        return 0;
    }
    if (ndstages == 0) {
        if (strcmp(in.kw, "ARG") == 0)
            return 0;
        snprintf(docker_err, sizeof(docker_err), "line %d: %s before the first FROM", line, in.kw);
        return -1;
    }
    dstage_t *st = &dstages[ndstages - 1];
    if (st->n == sizeof(st->ins) / sizeof(st->ins[0])) {
        snprintf(docker_err, sizeof(docker_err), "line %d: too many instructions", line);
        return -1;
    }
    st->ins[st->n++] = in;
    return 0;
}

static int dockerfile_load(const char *path)
{
    char *text = read_text(path, NULL);
    if (text == NULL) {
        snprintf(docker_err, sizeof(docker_err), "cannot be read");
        return -1;
    }
    char *logical = NULL;
    size_t ll = 0;
    int no = 0, start = 0, cont = 0;
    for (char *line = text; line != NULL;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        no++;
        const char *t = line;
        while (*t == ' ' || *t == '\t')
            t++;
        int skip = 0;
        if (*t == '#') {
            /* a comment; at the very top "# escape=…" would change the line continuation */
            if (ndstages == 0 && !cont && strncasecmp(t + 1 + strspn(t + 1, " "), "escape", 6) == 0) {
                snprintf(docker_err, sizeof(docker_err), "line %d: the escape directive is not supported", no);
                free(logical);
                return -1;
            }
            skip = 1;
        } else if (*t == '\0') {
            skip = 1;
        }
        if (!skip) {
            if (!cont) {
                start = no;
                ll = 0;
            }
            size_t n = strlen(line);
            char *b = realloc(logical, ll + n + 2);
            if (b == NULL)
                abort();
            logical = b;
            memcpy(logical + ll, line, n + 1);
            ll += n;
            while (ll > 0 && (logical[ll - 1] == ' ' || logical[ll - 1] == '\t' || logical[ll - 1] == '\r'))
                logical[--ll] = '\0';
            if (ll > 0 && logical[ll - 1] == '\\') {
                logical[--ll] = '\0';
                cont = 1;
            } else {
                cont = 0;
                if (dockerfile_add(logical, start) != 0) {
                    free(logical);
                    return -1;
                }
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    if (cont && dockerfile_add(logical, start) != 0) {
        free(logical);
        return -1;
    }
    free(logical);
    if (ndstages == 0) {
        snprintf(docker_err, sizeof(docker_err), "no FROM");
        return -1;
    }
    return 0;
}

static dstage_t *final_stage(void)
{
    return &dstages[ndstages - 1];
}

/* The value a stage's ENV gives key, or NULL. */
static const char *stage_env(const dstage_t *st, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < st->n; i++) {
        if (strcmp(st->ins[i].kw, "ENV") != 0)
            continue;
        words_t w = {0};
        if (shell_words(st->ins[i].args, &w) != 0 || w.n == 0)
            continue;
        if (strchr(w.w[0], '=') == NULL) { /* legacy ENV KEY VALUE */
            if (strcmp(w.w[0], key) == 0)
                v = astrdup(st->ins[i].args + strlen(w.w[0]) + strspn(st->ins[i].args + strlen(w.w[0]), " \t"));
            continue;
        }
        for (size_t j = 0; j < w.n; j++) {
            char *eq = strchr(w.w[j], '=');
            if (eq != NULL && (size_t)(eq - w.w[j]) == strlen(key) && strncmp(w.w[j], key, strlen(key)) == 0)
                v = eq + 1;
        }
    }
    return v;
}

static size_t stage_env_keys(const dstage_t *st, const char **keys, int *lines, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n; i++) {
        if (strcmp(st->ins[i].kw, "ENV") != 0)
            continue;
        words_t w = {0};
        if (shell_words(st->ins[i].args, &w) != 0 || w.n == 0)
            continue;
        if (strchr(w.w[0], '=') == NULL) {
            if (n < max)
                keys[n] = w.w[0], lines[n++] = st->ins[i].line;
            continue;
        }
        for (size_t j = 0; j < w.n && n < max; j++) {
            char *eq = strchr(w.w[j], '=');
            if (eq != NULL)
                keys[n] = astrndup(w.w[j], (size_t)(eq - w.w[j])), lines[n++] = st->ins[i].line;
        }
    }
    return n;
}

/* The last instruction kw of a stage, or NULL. */
static const dins_t *stage_last(const dstage_t *st, const char *kw)
{
    const dins_t *found = NULL;
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->ins[i].kw, kw) == 0)
            found = &st->ins[i];
    return found;
}

typedef struct {
    words_t c[512];
    size_t n;
} cmds_t;

/* The simple commands of a stage's RUN instructions: split at ; | & && ||, with the leading
 * if/then/else/do/! of compound commands dropped. */
static int stage_commands(const dstage_t *st, cmds_t *cmds)
{
    memset(cmds, 0, sizeof(*cmds));
    for (size_t i = 0; i < st->n; i++) {
        if (strcmp(st->ins[i].kw, "RUN") != 0)
            continue;
        words_t w = {0};
        if (st->ins[i].args[0] == '[') {
            json_t *a = json_loads(st->ins[i].args, 0, NULL);
            for (size_t j = 0; json_is_array(a) && j < json_array_size(a); j++)
                if (json_is_string(json_array_get(a, j)))
                    words_add(&w, json_string_value(json_array_get(a, j)), strlen(json_string_value(json_array_get(a, j))));
            json_decref(a);
        } else if (shell_words(st->ins[i].args, &w) != 0) {
            failf("%s:%d: a RUN line this reader does not understand", dockerfile_path, st->ins[i].line);
            return -1;
        }
        words_t *cur = NULL;
        for (size_t j = 0; j < w.n; j++) {
            const char *x = w.w[j];
            if (strcmp(x, ";") == 0 || strcmp(x, "&&") == 0 || strcmp(x, "||") == 0 || strcmp(x, "|") == 0 || strcmp(x, "&") == 0) {
                cur = NULL;
                continue;
            }
            if (cur == NULL &&
                (strcmp(x, "if") == 0 || strcmp(x, "then") == 0 || strcmp(x, "else") == 0 || strcmp(x, "elif") == 0 ||
                 strcmp(x, "do") == 0 || strcmp(x, "!") == 0 || strcmp(x, "fi") == 0 || strcmp(x, "done") == 0))
                continue;
            if (cur == NULL) {
                if (cmds->n == sizeof(cmds->c) / sizeof(cmds->c[0]))
                    return -1;
                cur = &cmds->c[cmds->n++];
            }
            words_add(cur, x, strlen(x));
        }
    }
    return 0;
}

static int valid_package_name(const char *s)
{
    if (!islower((unsigned char)s[0]) && !isdigit((unsigned char)s[0]))
        return 0;
    size_t n = strlen(s);
    if (n < 2)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && strchr("+.-", s[i]) == NULL)
            return 0;
    return 1;
}

/* The packages a stage installs with apt-get install; fails on words that are not package names. */
static void stage_packages(const dstage_t *st, strset_t *pkgs)
{
    cmds_t *cmds = malloc(sizeof(*cmds));
    if (cmds == NULL)
        abort();
    if (stage_commands(st, cmds) == 0) {
        for (size_t i = 0; i < cmds->n; i++) {
            words_t *c = &cmds->c[i];
            if (c->n == 0 || (strcmp(c->w[0], "apt-get") != 0 && strcmp(c->w[0], "apt") != 0))
                continue;
            size_t j = 1;
            for (; j < c->n && c->w[j][0] == '-'; j++)
                if (strcmp(c->w[j], "-o") == 0)
                    j++;
            if (j >= c->n || strcmp(c->w[j], "install") != 0)
                continue;
            for (j++; j < c->n; j++) {
                if (c->w[j][0] == '-') {
                    if (strcmp(c->w[j], "-o") == 0)
                        j++;
                    continue;
                }
                if (valid_package_name(c->w[j]))
                    set_add(pkgs, c->w[j]);
                else
                    failf("%s: \"%s\" after apt-get install is not a package name this test can check", dockerfile_path, c->w[j]);
            }
        }
    }
    free(cmds);
}

/* ---- Debian packages -------------------------------------------------------------------------- */

/* Adds to found those of pkgs that `apt-cache madison` lists in bookworm, bookworm-updates or
 * bookworm-security (one apt-cache run for all: each one loads the whole cache). */
static void madison_bookworm(const strset_t *pkgs, strset_t *found)
{
    char *cmd;
    size_t len;
    FILE *m = open_memstream(&cmd, &len);
    if (m == NULL)
        abort();
    fputs("apt-cache madison", m);
    for (size_t i = 0; i < pkgs->n; i++)
        if (valid_package_name(pkgs->v[i])) /* so nothing but letters, digits and +.- reach the shell */
            fprintf(m, " %s", pkgs->v[i]);
    fputs(" 2>/dev/null", m);
    fclose(m);
    FILE *f = popen(cmd, "r");
    free(cmd);
    if (f == NULL)
        return;
    char line[1024];
    while (fgets(line, sizeof(line), f) != NULL) {
        char *name = strtok(line, "|"), *version = strtok(NULL, "|"), *source = strtok(NULL, "|\n");
        if (name == NULL || version == NULL || source == NULL)
            continue;
        while (*name == ' ')
            name++;
        size_t nl = strlen(name);
        while (nl > 0 && name[nl - 1] == ' ')
            name[--nl] = '\0';
        if (!set_has(pkgs, name))
            continue;
        for (char *t = strtok(source, " "); t != NULL; t = strtok(NULL, " "))
            if (is_prefix(t, "bookworm/") || is_prefix(t, "bookworm-updates/") || is_prefix(t, "bookworm-security/"))
                set_add(found, name);
    }
    pclose(f);
}

/* apt-cache must know bookworm; when it knows nothing (no lists yet), apt-get update once. */
static int apt_knows_bookworm(void)
{
    static int state = -1;
    strset_t bash = {.v = {"bash"}, .n = 1}, found = {0};
    if (state >= 0)
        return state;
    madison_bookworm(&bash, &found);
    if (found.n == 1)
        return state = 1;
    printf("# apt-cache knows no bookworm package: running apt-get update\n");
    fflush(stdout);
    if (system("apt-get update -qq >/dev/null 2>&1") != 0)
        printf("# apt-get update failed\n");
    madison_bookworm(&bash, &found);
    return state = found.n == 1;
}

static void check_in_bookworm(const strset_t *pkgs, const char *what)
{
    if (!apt_knows_bookworm()) {
        failf("apt-cache knows no bookworm package (even after apt-get update): cannot check the %s packages", what);
        return;
    }
    strset_t found = {0};
    madison_bookworm(pkgs, &found);
    for (size_t i = 0; i < pkgs->n; i++)
        if (!set_has(&found, pkgs->v[i]))
            failf("%s: the %s package \"%s\" is not in Debian bookworm (apt-cache madison)", dockerfile_path, what, pkgs->v[i]);
}

/* The packages owning a path or a dpkg glob (dpkg -S). */
static void dpkg_owners(const char *pattern, const char *suffix, strset_t *pkgs)
{
    char cmd[600], line[2048];
    snprintf(cmd, sizeof(cmd), "dpkg -S '%s' 2>/dev/null", pattern);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        char *sep = strstr(line, ": /");
        if (sep == NULL)
            continue;
        size_t pl = strlen(sep + 2), sl = strlen(suffix);
        if (pl < sl || strcmp(sep + 2 + pl - sl, suffix) != 0)
            continue;
        *sep = '\0';
        for (char *t = strtok(line, ", "); t != NULL; t = strtok(NULL, ", ")) {
            char *colon = strchr(t, ':');
            if (colon != NULL)
                *colon = '\0';
            set_add(pkgs, t);
        }
    }
    pclose(f);
}

static int is_essential(const char *pkg)
{
    char cmd[300], out[16] = "";
    if (!valid_package_name(pkg))
        return 0;
    snprintf(cmd, sizeof(cmd), "dpkg-query -W -f='${Essential}' '%s' 2>/dev/null", pkg);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return 0;
    if (fgets(out, sizeof(out), f) == NULL)
        out[0] = '\0';
    pclose(f);
    return strcmp(out, "yes") == 0;
}

/* ---- the environment contract ----------------------------------------------------------------- */

static strset_t read_vars, documented_vars;

/* The "SFF_…" string literals of gateway/config.c. */
static int load_read_vars(void)
{
    char *text = read_text("gateway/config.c", NULL);
    if (text == NULL)
        return -1;
    for (char *p = strstr(text, "\"SFF_"); p != NULL; p = strstr(p + 1, "\"SFF_")) {
        char *e = p + 1;
        while (isupper((unsigned char)*e) || isdigit((unsigned char)*e) || *e == '_')
            e++;
        if (*e == '"')
            set_add(&read_vars, astrndup(p + 1, (size_t)(e - p - 1)));
    }
    return read_vars.n > 0 ? 0 : -1;
}

/* The variables in the first column of README.md's configuration table. */
static int load_documented_vars(void)
{
    char *text = read_text("README.md", NULL);
    if (text == NULL)
        return -1;
    char *sec = strstr(text, "\n## Configuration\n");
    if (sec == NULL)
        return -1;
    char *end = strstr(sec + 1, "\n## ");
    if (end != NULL)
        *end = '\0';
    for (char *line = sec; line != NULL; line = strchr(line + 1, '\n')) {
        char *l = line + 1;
        if (strncmp(l, "| `SFF_", 7) != 0)
            continue;
        char *cell_end = strchr(l + 1, '|');
        if (cell_end == NULL)
            continue;
        for (char *b = strchr(l, '`'); b != NULL && b < cell_end; b = strchr(b + 1, '`')) {
            char *e = strchr(b + 1, '`');
            if (e == NULL || e > cell_end)
                break;
            if (strncmp(b + 1, "SFF_", 4) == 0)
                set_add(&documented_vars, astrndup(b + 1, (size_t)(e - b - 1)));
            b = e;
        }
    }
    return documented_vars.n > 0 ? 0 : -1;
}

static void check_contract(const char *where, int line, const char *key)
{
    if (strncmp(key, "SFF_", 4) != 0) {
        failf("%s:%d: %s is not an SFF_ variable: sff reads only SFF_* (gateway/config.c)", where, line, key);
        return;
    }
    if (!set_has(&read_vars, key))
        failf("%s:%d: %s is not read by sff (no \"%s\" in gateway/config.c)", where, line, key, key);
    if (!set_has(&documented_vars, key))
        failf("%s:%d: %s is not in README.md's configuration table", where, line, key);
}

/* ---- .dockerignore ---------------------------------------------------------------------------- */

typedef struct {
    char *pat;
    int negate;
} dirule_t;

static dirule_t dirules[256];
static size_t ndirules;
static int dockerignore_ok;

static int segs_match(char **pat, size_t np, char **path, size_t nq)
{
    if (np == 0)
        return nq == 0;
    if (strcmp(pat[0], "**") == 0) {
        for (size_t k = 0; k <= nq; k++)
            if (segs_match(pat + 1, np - 1, path + k, nq - k))
                return 1;
        return 0;
    }
    if (nq == 0 || fnmatch(pat[0], path[0], 0) != 0)
        return 0;
    return segs_match(pat + 1, np - 1, path + 1, nq - 1);
}

static size_t split_path(const char *s, char **segs, size_t max)
{
    size_t n = 0;
    char *c = astrdup(s);
    for (char *t = strtok(c, "/"); t != NULL && n < max; t = strtok(NULL, "/"))
        if (strcmp(t, ".") != 0)
            segs[n++] = t;
    return n;
}

/* Docker's rules: the last rule that matches the path or one of its parent directories decides;
 * a "!" rule re-includes. */
static int docker_excluded(const char *path)
{
    char *q[64];
    size_t nq = split_path(path, q, 64);
    int excluded = 0;
    for (size_t i = 0; i < ndirules; i++) {
        if (dirules[i].negate != excluded)
            continue;
        char *p[64];
        size_t np = split_path(dirules[i].pat, p, 64);
        int match = 0;
        for (size_t k = nq; k >= 1 && !match; k--)
            match = segs_match(p, np, q, k);
        if (match)
            excluded = !dirules[i].negate;
    }
    return excluded;
}

static int dockerignore_load(const char *path)
{
    char *text = read_text(path, NULL);
    if (text == NULL)
        return -1;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        while (*line == ' ' || *line == '\t')
            line++;
        size_t n = strlen(line);
        while (n > 0 && strchr(" \t\r", line[n - 1]) != NULL)
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        int negate = line[0] == '!';
        if (negate)
            line++;
        while (*line == ' ' || *line == '/')
            line++;
        if (strncmp(line, "./", 2) == 0)
            line += 2;
        if (*line == '\0' || ndirules == sizeof(dirules) / sizeof(dirules[0]))
            continue;
        dirules[ndirules++] = (dirule_t){no_slash(line), negate};
    }
    return 0;
}

/* ---- running a healthcheck -------------------------------------------------------------------- */

static tc_server_t srv;
static int srv_ok;

/* Runs argv with SFF_LISTEN=listen, output discarded; its exit status, or -1. */
static int run_with_listen(char *const argv[], const char *listen)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setenv("SFF_LISTEN", listen, 1);
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    for (int i = 0; i < 1500; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fprintf(stderr, "  %s did not finish in 15 s\n", argv[0]);
    return -1;
}

/* ---- the reader itself ------------------------------------------------------------------------ */

TEST(reader_takes_the_subset_and_refuses_the_rest)
{
    static const char good[] = "# a comment\n"
                               "---\n"
                               "a: 1 # trailing\n"
                               "b:\n"
                               "  - x\n"
                               "  - 'y''s'\n"
                               "  - k: v\n"
                               "    l: [p, \"q r\", 's']\n"
                               "  -\n"
                               "    m: n\n"
                               "c:\n"
                               "- d#e\n"
                               "e: \"\\x41\\\"$${X:-y}\"\n"
                               "f:\n"
                               "\"g h\": http://x:1/y?z=1&w=2\n";
    char err[400] = "";
    ynode_t *d = yparse(good, strlen(good), err, sizeof(err));
    if (d == NULL) {
        failf("the reader refused a good document: %s", err);
        return;
    }
    CHECK_STR(ystr(yget(d, "a")), "1");
    ynode_t *b = yget(d, "b");
    CHECK(b != NULL && b->kind == Y_SEQ && b->n == 4);
    if (b != NULL && b->kind == Y_SEQ && b->n == 4) {
        CHECK_STR(ystr(b->items[0]), "x");
        CHECK_STR(ystr(b->items[1]), "y's");
        CHECK_STR(ystr(yget(b->items[2], "k")), "v");
        ynode_t *l = yget(b->items[2], "l");
        CHECK(l != NULL && l->kind == Y_SEQ && l->n == 3);
        if (l != NULL && l->kind == Y_SEQ && l->n == 3) {
            CHECK_STR(ystr(l->items[0]), "p");
            CHECK_STR(ystr(l->items[1]), "q r");
            CHECK_STR(ystr(l->items[2]), "s");
        }
        CHECK_STR(ystr(yget(b->items[3], "m")), "n");
    }
    ynode_t *c = yget(d, "c");
    CHECK(c != NULL && c->kind == Y_SEQ && c->n == 1 && ystr(c->items[0]) != NULL && strcmp(ystr(c->items[0]), "d#e") == 0);
    CHECK_STR(ystr(yget(d, "e")), "A\"$${X:-y}");
    CHECK(yget(d, "f") != NULL && yget(d, "f")->kind == Y_NULL);
    CHECK_STR(ystr(yget(d, "g h")), "http://x:1/y?z=1&w=2");
    CHECK_INT(d->n, 6);

    char ierr[400];
    size_t saved = nivars;
    CHECK_STR(interp("a$$b${X_1:-d e}", 1, ierr, sizeof(ierr)), "a$bd e");
    const char *bad_interp[] = {"${X_1:-other}", "${Y}", "$Y", "${Y:?required}", "${Y:-${Z:-a}}", "cost: 5$", NULL};
    for (size_t i = 0; bad_interp[i] != NULL; i++)
        if (interp(bad_interp[i], 1, ierr, sizeof(ierr)) != NULL)
            failf("interpolation took \"%s\"", bad_interp[i]);
    nivars = saved;

    static const char *bad[] = {
        "a:\n\tb: 1\n",        /* tab */
        "a: 1 \t\n",           /* tab anywhere */
        "a: &x 1\n",           /* anchor */
        "a: *x\n",             /* alias */
        "a: !!str 1\n",        /* tag */
        "a: |\n  x\n",         /* block scalar */
        "a: >-\n  x\n",        /* folded scalar */
        "a: {b: 1}\n",         /* flow map */
        "a: b\n  c\n",         /* multi-line plain */
        "a: 'b\n  c'\n",       /* multi-line quoted */
        "a: 1\na: 2\n",        /* duplicate key */
        "a:\n  b: 1\n c: 2\n", /* bad indentation */
        "a:\n  - b\n   - c\n", /* bad indentation in a list */
        "a: [b, [c]]\n",       /* nested flow */
        "a: [b,\n  c]\n",      /* multi-line flow */
        "a: [b, ]\n",          /* trailing comma */
        "- a\n- b\n",          /* not a map */
        "a: b: c\n",           /* ": " in a plain value */
        "<<: x\n",             /* merge key */
        "a: \"\\q\"\n",        /* unknown escape */
        " a: 1\n",             /* indented document */
        "a: 1\r\n",            /* CRLF */
        "? a\n",               /* complex key */
        "a: 1\n---\nb: 2\n",   /* two documents */
        "just text\n",         /* a bare scalar */
        "a: \"x\" y\n",        /* text after a quoted string */
        "a: - b\n",            /* a list after a key on its line */
        "%YAML 1.2\na: 1\n",   /* directive */
        "",                    /* empty */
        NULL,
    };
    for (size_t i = 0; bad[i] != NULL; i++) {
        err[0] = '\0';
        if (yparse(bad[i], strlen(bad[i]), err, sizeof(err)) != NULL)
            failf("the reader took bad document %zu: \"%s\"", i, bad[i]);
        else if (strncmp(err, "line ", 5) != 0)
            failf("no line in the message for bad document %zu: %s", i, err);
    }
}

/* ---- the compose file ------------------------------------------------------------------------- */

TEST(compose_file_parses)
{
    NEED_COMPOSE();
    static const char *top_keys[] = {"name", "services", "volumes", "networks", "configs", "secrets", NULL};
    for (size_t i = 0; i < compose->n; i++) {
        size_t k;
        for (k = 0; top_keys[k] != NULL && strcmp(top_keys[k], compose->keys[i]) != 0; k++)
            ;
        if (top_keys[k] == NULL && strncmp(compose->keys[i], "x-", 2) != 0)
            failf("%s:%d: unknown top-level key \"%s\"", compose_path, compose->items[i]->line, compose->keys[i]);
    }
    ynode_t *svcs = yget(compose, "services");
    CHECK(svcs != NULL && svcs->kind == Y_MAP && svcs->n > 0);
    for (size_t i = 0; svcs != NULL && svcs->kind == Y_MAP && i < svcs->n; i++)
        if (svcs->items[i]->kind != Y_MAP)
            failf("%s:%d: service %s is not a map", compose_path, svcs->items[i]->line, svcs->keys[i]);
    CHECK(service("sff") != NULL);
}

static void walk_interp(ynode_t *n, int *count)
{
    if (n == NULL)
        return;
    if (n->kind == Y_STR) {
        (*count)++;
        cvalue(n);
    }
    if (n->kind == Y_MAP || n->kind == Y_SEQ)
        for (size_t i = 0; i < n->n; i++)
            walk_interp(n->items[i], count);
}

TEST(every_variable_has_one_default)
{
    NEED_COMPOSE();
    int count = 0;
    walk_interp(compose, &count);
    CHECK(count > 0);
}

TEST(sff_environment_is_read_and_documented)
{
    NEED_COMPOSE();
    kv_t kv[128];
    size_t n = env_list(service("sff"), kv, 128);
    CHECK(n > 0);
    for (size_t i = 0; i < n; i++)
        check_contract(compose_path, kv[i].line, kv[i].key);
}

TEST(image_environment_is_read_and_documented)
{
    NEED_DOCKERFILE();
    const char *keys[128];
    int lines[128];
    size_t n = stage_env_keys(final_stage(), keys, lines, 128), nsff = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i], "PATH") == 0)
            continue;
        check_contract(dockerfile_path, lines[i], keys[i]);
        nsff++;
    }
    CHECK(nsff > 0);
}

/* A value that must come from ${VAR:-default}, so that production can set it. */
static void check_overridable(const char *svc, const char *name)
{
    ynode_t *v = env_node(service(svc), name);
    if (v == NULL || v->kind != Y_STR) {
        failf("service %s: %s is not set", svc, name);
        return;
    }
    if (strstr(v->str, "${") == NULL)
        failf("%s:%d: service %s: %s is written into the file; make it ${VAR:-dev default}", compose_path, v->line, svc, name);
    const char *x = cvalue(v);
    if (x != NULL && *x == '\0')
        failf("%s:%d: service %s: %s is empty by default", compose_path, v->line, svc, name);
}

TEST(secrets_are_variables_with_dev_defaults)
{
    NEED_COMPOSE();
    check_overridable("sff", "SFF_JWT_SECRET");
    check_overridable("sff", "SFF_S3_ACCESS_KEY");
    check_overridable("sff", "SFF_S3_SECRET_KEY");
    const char *pg = service_by_image("postgres"), *minio = service_by_image("minio/minio");
    if (pg != NULL)
        check_overridable(pg, "POSTGRES_PASSWORD");
    if (minio != NULL) {
        check_overridable(minio, "MINIO_ROOT_USER");
        check_overridable(minio, "MINIO_ROOT_PASSWORD");
    }
    ynode_t *url = env_node(service("sff"), "SFF_PG_URL");
    if (url != NULL && url->kind == Y_STR && strstr(url->str, "${") == NULL)
        failf("%s:%d: SFF_PG_URL has its password written in; use ${POSTGRES_PASSWORD:-…}", compose_path, url->line);
}

TEST(pg_url_names_the_postgres_service)
{
    NEED_COMPOSE();
    const char *pg = service_by_image("postgres"), *s = envv("sff", "SFF_PG_URL", NULL);
    if (pg == NULL || s == NULL)
        return;
    url_t u;
    if (url_parse(s, &u) != 0 || (strcmp(u.scheme, "postgresql") != 0 && strcmp(u.scheme, "postgres") != 0)) {
        failf("SFF_PG_URL \"%s\" is not a postgresql://user:password@host:port/db URL", s);
        return;
    }
    const char *user = envv(pg, "POSTGRES_USER", "postgres");
    const char *db = envv(pg, "POSTGRES_DB", user), *pass = envv(pg, "POSTGRES_PASSWORD", NULL);
    const char *port = command_option(service(pg), "-p");
    if (strcmp(u.host, pg) != 0)
        failf("SFF_PG_URL's host is \"%s\", the postgres service is \"%s\"", u.host, pg);
    if (strcmp(u.port[0] ? u.port : "5432", port != NULL ? port : "5432") != 0)
        failf("SFF_PG_URL's port is %s, postgres listens on %s", u.port, port != NULL ? port : "5432");
    if (user != NULL && strcmp(u.user, user) != 0)
        failf("SFF_PG_URL's user is \"%s\", POSTGRES_USER is \"%s\"", u.user, user);
    if (db != NULL && strcmp(u.path, db) != 0)
        failf("SFF_PG_URL's database is \"%s\", POSTGRES_DB is \"%s\"", u.path, db);
    if (pass != NULL && strcmp(u.pass, pass) != 0)
        failf("SFF_PG_URL's password is not POSTGRES_PASSWORD (\"%s\" / \"%s\")", u.pass, pass);
}

TEST(redis_url_names_the_redis_service)
{
    NEED_COMPOSE();
    const char *redis = service_by_image("redis"), *s = envv("sff", "SFF_REDIS_URL", NULL);
    if (redis == NULL || s == NULL)
        return;
    url_t u;
    if (url_parse(s, &u) != 0 || strcmp(u.scheme, "redis") != 0) {
        failf("SFF_REDIS_URL \"%s\" is not a redis://host:port/db URL", s);
        return;
    }
    const char *port = command_option(service(redis), "--port");
    if (strcmp(u.host, redis) != 0)
        failf("SFF_REDIS_URL's host is \"%s\", the redis service is \"%s\"", u.host, redis);
    if (strcmp(u.port[0] ? u.port : "6379", port != NULL ? port : "6379") != 0)
        failf("SFF_REDIS_URL's port is %s, redis listens on %s", u.port, port != NULL ? port : "6379");
    if (u.path[0] != '\0' && strspn(u.path, "0123456789") != strlen(u.path))
        failf("SFF_REDIS_URL's database \"%s\" is not a number", u.path);
}

/* The bucket the one-shot job creates: its command is `mc mb [--options] ALIAS/BUCKET` (the image's
 * entrypoint is mc) and MC_HOST_ALIAS points at the minio service with its root credentials. */
static const char *bucket_of_job(const char *job, const char *minio)
{
    ynode_t *svc = service(job);
    if (yget(svc, "entrypoint") != NULL) {
        failf("service %s: an entrypoint of its own; this test reads `command: [mb, …, ALIAS/BUCKET]` of the mc image", job);
        return NULL;
    }
    const char *w[64];
    size_t n = command_words(yget(svc, "command"), w, 64), i = 0;
    while (i < n && strcmp(w[i], "mb") != 0)
        i++;
    const char *target = NULL;
    for (i++; i < n; i++)
        if (w[i][0] != '-')
            target = w[i];
    const char *slash = target != NULL ? strchr(target, '/') : NULL;
    if (slash == NULL || slash == target || slash[1] == '\0' || strchr(slash + 1, '/') != NULL) {
        failf("service %s: its command does not make a bucket (mb ALIAS/BUCKET)", job);
        return NULL;
    }
    char *alias = astrndup(target, (size_t)(slash - target));
    const char *host = envv(job, aprintf("MC_HOST_%s", alias), NULL);
    url_t u;
    if (host == NULL)
        return NULL;
    if (url_parse(host, &u) != 0 || strcmp(u.host, minio) != 0) {
        failf("service %s: MC_HOST_%s does not point at the minio service %s", job, alias, minio);
        return NULL;
    }
    const char *user = envv(minio, "MINIO_ROOT_USER", NULL), *pass = envv(minio, "MINIO_ROOT_PASSWORD", NULL);
    if (user != NULL && pass != NULL && (strcmp(u.user, user) != 0 || strcmp(u.pass, pass) != 0))
        failf("service %s: MC_HOST_%s's credentials are not minio's root user and password", job, alias);
    return slash + 1;
}

static const char *minio_port(const char *minio)
{
    const char *addr = command_option(service(minio), "--address");
    if (addr == NULL)
        return "9000";
    const char *colon = strrchr(addr, ':');
    return colon != NULL ? colon + 1 : addr;
}

TEST(storage_url_names_minio_and_the_bucket_it_creates)
{
    NEED_COMPOSE();
    const char *minio = service_by_image("minio/minio"), *job = service_by_image("minio/mc");
    const char *s = envv("sff", "SFF_STORAGE_URL", NULL);
    if (minio == NULL || job == NULL || s == NULL)
        return;
    const char *bucket = bucket_of_job(job, minio);
    url_t u, e;
    char endpoint[512], region[128], style[32];
    if (url_parse(s, &u) != 0 || strcmp(u.scheme, "s3") != 0) {
        failf("SFF_STORAGE_URL \"%s\" is not an s3://BUCKET?endpoint=… URL", s);
        return;
    }
    if (bucket != NULL && strcmp(u.host, bucket) != 0)
        failf("SFF_STORAGE_URL's bucket is \"%s\", service %s creates \"%s\"", u.host, job, bucket);
    if (!query_get(u.query, "endpoint", endpoint, sizeof(endpoint)) || url_parse(endpoint, &e) != 0) {
        failf("SFF_STORAGE_URL has no endpoint=http://HOST:PORT");
    } else {
        if (strcmp(e.host, minio) != 0)
            failf("SFF_STORAGE_URL's endpoint host is \"%s\", the minio service is \"%s\"", e.host, minio);
        if (strcmp(e.port, minio_port(minio)) != 0)
            failf("SFF_STORAGE_URL's endpoint port is \"%s\", minio listens on %s", e.port, minio_port(minio));
        if (strcmp(e.scheme, "http") != 0 && strcmp(e.scheme, "https") != 0)
            failf("SFF_STORAGE_URL's endpoint is not http(s)");
    }
    if (!query_get(u.query, "region", region, sizeof(region)) || region[0] == '\0')
        failf("SFF_STORAGE_URL has no region=");
    /* virtual-host style would look up BUCKET.minio, which no compose network resolves */
    if (!query_get(u.query, "style", style, sizeof(style)) || strcmp(style, "path") != 0)
        failf("SFF_STORAGE_URL needs style=path (the bucket in the path: BUCKET.%s does not resolve)", minio);
}

TEST(s3_keys_are_minio_root_credentials)
{
    NEED_COMPOSE();
    const char *minio = service_by_image("minio/minio");
    if (minio == NULL)
        return;
    const char *ak = envv("sff", "SFF_S3_ACCESS_KEY", NULL), *sk = envv("sff", "SFF_S3_SECRET_KEY", NULL);
    const char *user = envv(minio, "MINIO_ROOT_USER", NULL), *pass = envv(minio, "MINIO_ROOT_PASSWORD", NULL);
    if (ak != NULL && user != NULL && strcmp(ak, user) != 0)
        failf("SFF_S3_ACCESS_KEY \"%s\" is not MINIO_ROOT_USER \"%s\"", ak, user);
    if (sk != NULL && pass != NULL && strcmp(sk, pass) != 0)
        failf("SFF_S3_SECRET_KEY is not MINIO_ROOT_PASSWORD");
    /* MinIO refuses to start with a root password under 8 characters */
    if (pass != NULL && strlen(pass) < 8)
        failf("MINIO_ROOT_PASSWORD's default is shorter than the 8 characters MinIO requires");
    CHECK(envv("sff", "SFF_JWT_SECRET", NULL) != NULL);
}

static int is_one_shot(const char *name)
{
    char repo[512], tag[512];
    const char *image = cvalue(yget(service(name), "image"));
    if (image == NULL)
        return 0;
    image_parts(image, repo, sizeof(repo), tag, sizeof(tag));
    return strcmp(repo, "minio/mc") == 0;
}

TEST(long_running_services_have_healthchecks)
{
    NEED_COMPOSE();
    ynode_t *svcs = yget(compose, "services");
    size_t checked = 0;
    for (size_t i = 0; svcs != NULL && i < svcs->n; i++) {
        if (is_one_shot(svcs->keys[i]))
            continue;
        ynode_t *hc = yget(svcs->items[i], "healthcheck"), *t = yget(hc, "test");
        const char *disable = ystr(yget(hc, "disable"));
        checked++;
        if (hc == NULL || hc->kind != Y_MAP) {
            failf("service %s has no healthcheck", svcs->keys[i]);
        } else if (disable != NULL && strcmp(disable, "false") != 0) {
            failf("service %s: its healthcheck is disabled", svcs->keys[i]);
        } else if (t == NULL || (t->kind == Y_STR && t->str[0] == '\0') ||
                   (t->kind == Y_SEQ && (t->n < 2 || ystr(t->items[0]) == NULL ||
                                         (strcmp(t->items[0]->str, "CMD") != 0 && strcmp(t->items[0]->str, "CMD-SHELL") != 0))) ||
                   (t->kind != Y_STR && t->kind != Y_SEQ)) {
            failf("%s:%d: service %s: the healthcheck needs a test: [CMD, …] or [CMD-SHELL, …]", compose_path, hc->line,
                  svcs->keys[i]);
        }
    }
    if (checked < 4)
        failf("%zu long-running services; sff, postgres, redis and minio were expected", checked);
}

TEST(sff_waits_for_healthy_backends_and_the_bucket)
{
    NEED_COMPOSE();
    ynode_t *svcs = yget(compose, "services"), *deps = yget(service("sff"), "depends_on");
    if (deps == NULL || deps->kind != Y_MAP) {
        failf("service sff: depends_on must be a map of services with their condition (a list only waits for them to start)");
        return;
    }
    for (size_t i = 0; svcs != NULL && i < svcs->n; i++) {
        if (strcmp(svcs->keys[i], "sff") == 0)
            continue;
        const char *want = is_one_shot(svcs->keys[i]) ? "service_completed_successfully" : "service_healthy";
        const char *cond = ystr(yget(yget(deps, svcs->keys[i]), "condition"));
        if (cond == NULL || strcmp(cond, want) != 0)
            failf("service sff: depends_on %s needs condition: %s (has %s)", svcs->keys[i], want, cond != NULL ? cond : "none");
    }
    for (size_t i = 0; i < deps->n; i++)
        if (yget(svcs, deps->keys[i]) == NULL)
            failf("service sff depends on %s, which is not a service", deps->keys[i]);
}

TEST(bucket_job_runs_once_after_minio)
{
    NEED_COMPOSE();
    const char *minio = service_by_image("minio/minio"), *job = service_by_image("minio/mc");
    if (minio == NULL || job == NULL)
        return;
    const char *restart = ystr(yget(service(job), "restart"));
    if (restart != NULL && strcmp(restart, "no") != 0 && !is_prefix(restart, "on-failure"))
        failf("service %s: restart: %s would run the one-shot job again and again", job, restart);
    const char *cond = ystr(yget(yget(yget(service(job), "depends_on"), minio), "condition"));
    if (cond == NULL || strcmp(cond, "service_healthy") != 0)
        failf("service %s must wait for %s with condition: service_healthy", job, minio);
}

static void check_image(const char *repo, const char *tag_prefix)
{
    const char *name = service_by_image(repo);
    if (name == NULL)
        return;
    char r[512], tag[512];
    image_parts(cvalue(yget(service(name), "image")), r, sizeof(r), tag, sizeof(tag));
    size_t n = strlen(tag_prefix);
    if (n == 0)
        return;
    if (strncmp(tag, tag_prefix, n) != 0 || (tag[n] != '\0' && tag[n] != '.' && tag[n] != '-'))
        failf("service %s runs %s:%s, %s:%s was wanted", name, r, tag, repo, tag_prefix);
}

TEST(images_are_postgres_15_redis_7_and_minio)
{
    NEED_COMPOSE();
    check_image("postgres", "15");
    check_image("redis", "7");
    check_image("minio/minio", "");
    check_image("minio/mc", "");
    const char *build = ystr(yget(service("sff"), "build"));
    const char *ctx = build != NULL ? build : ystr(yget(yget(service("sff"), "build"), "context"));
    const char *df = ystr(yget(yget(service("sff"), "build"), "dockerfile"));
    if (ctx == NULL || (strcmp(ctx, ".") != 0 && strcmp(ctx, "./") != 0) || (df != NULL && strcmp(df, "Dockerfile") != 0))
        failf("service sff must be built from the repository's Dockerfile (build: .)");
}

/* ---- the Dockerfile --------------------------------------------------------------------------- */

static int is_bookworm_slim(const char *image)
{
    return strcmp(image, "debian:bookworm-slim") == 0 || is_prefix(image, "debian:bookworm-slim@sha256:");
}

TEST(dockerfile_has_two_bookworm_slim_stages)
{
    NEED_DOCKERFILE();
    size_t n = 0;
    for (size_t i = 0; i < ndstages; i++)
        n += is_bookworm_slim(dstages[i].image);
    if (n < 2)
        failf("%s: %zu FROM debian:bookworm-slim stage(s), a build and a runtime stage were wanted", dockerfile_path, n);
    if (!is_bookworm_slim(final_stage()->image))
        failf("%s:%d: the runtime stage is FROM %s, not debian:bookworm-slim", dockerfile_path, final_stage()->line,
              final_stage()->image);
}

TEST(dockerfile_runs_as_non_root)
{
    NEED_DOCKERFILE();
    const dins_t *u = stage_last(final_stage(), "USER");
    if (u == NULL) {
        failf("%s: no USER after the last FROM: the image would run as root", dockerfile_path);
        return;
    }
    char *user = astrdup(u->args);
    user[strcspn(user, ":")] = '\0';
    if (user[0] == '\0' || strcmp(user, "root") == 0 || strspn(user, "0") == strlen(user)) {
        failf("%s:%d: USER %s is root", dockerfile_path, u->line, u->args);
        return;
    }
    if (strspn(user, "0123456789") == strlen(user))
        return;
    /* a user by name must be created in the runtime stage */
    cmds_t *cmds = malloc(sizeof(*cmds));
    int created = 0;
    if (cmds != NULL && stage_commands(final_stage(), cmds) == 0)
        for (size_t i = 0; i < cmds->n; i++)
            if (cmds->c[i].n > 1 && (strcmp(cmds->c[i].w[0], "useradd") == 0 || strcmp(cmds->c[i].w[0], "adduser") == 0) &&
                strcmp(cmds->c[i].w[cmds->c[i].n - 1], user) == 0)
                created = 1;
    free(cmds);
    if (!created)
        failf("%s:%d: USER %s, but the runtime stage does not create that user", dockerfile_path, u->line, user);
}

/* The port of the first address of SFF_LISTEN ("host:port,…"); *loopback when its host is one. */
static const char *listen_port(const char *listen, int *loopback)
{
    char *first = astrdup(listen);
    first[strcspn(first, ",")] = '\0';
    char *colon = strrchr(first, ':');
    if (colon == NULL)
        return NULL;
    *colon = '\0';
    *loopback = is_prefix(first, "127.") || strcmp(first, "localhost") == 0 || strcmp(first, "[::1]") == 0;
    return colon[1] != '\0' ? colon + 1 : NULL;
}

TEST(dockerfile_exposes_the_listen_port)
{
    NEED_DOCKERFILE();
    const char *listen = stage_env(final_stage(), "SFF_LISTEN");
    int loopback = 0;
    const char *port = listen != NULL ? listen_port(listen, &loopback) : NULL;
    if (port == NULL) {
        failf("%s: the runtime stage sets no SFF_LISTEN=host:port (sff's default 127.0.0.1 is unreachable in a container)",
              dockerfile_path);
        return;
    }
    if (loopback)
        failf("%s: SFF_LISTEN=%s listens on loopback only, unreachable from outside the container", dockerfile_path, listen);
    strset_t exposed = {0};
    for (size_t i = 0; i < final_stage()->n; i++) {
        if (strcmp(final_stage()->ins[i].kw, "EXPOSE") != 0)
            continue;
        words_t w = {0};
        shell_words(final_stage()->ins[i].args, &w);
        for (size_t j = 0; j < w.n; j++) {
            w.w[j][strcspn(w.w[j], "/")] = '\0';
            set_add(&exposed, w.w[j]);
        }
    }
    if (!set_has(&exposed, port))
        failf("%s: SFF_LISTEN's port %s is not EXPOSEd", dockerfile_path, port);
    if (compose == NULL)
        return;
    const char *clisten = envv("sff", "SFF_LISTEN", listen);
    const char *cport = clisten != NULL ? listen_port(clisten, &loopback) : NULL;
    if (cport == NULL || loopback) {
        failf("%s: service sff's SFF_LISTEN %s is not reachable from outside the container", compose_path, clisten ? clisten : "");
        return;
    }
    if (!set_has(&exposed, cport))
        failf("%s: service sff listens on %s, the image EXPOSEs another port", compose_path, cport);
    ynode_t *ports = yget(service("sff"), "ports");
    int published = 0;
    for (size_t i = 0; ports != NULL && ports->kind == Y_SEQ && i < ports->n; i++) {
        const char *p = cvalue(ports->items[i]);
        const char *target = ystr(yget(ports->items[i], "target"));
        if (p != NULL) {
            char *c = astrdup(p);
            c[strcspn(c, "/")] = '\0';
            char *last = strrchr(c, ':');
            target = last != NULL ? last + 1 : c;
        }
        if (target != NULL && strcmp(target, cport) == 0)
            published = 1;
    }
    if (!published)
        failf("%s: service sff does not publish its port %s", compose_path, cport);
}

TEST(runtime_packages_exist_in_bookworm)
{
    NEED_DOCKERFILE();
    strset_t pkgs = {0};
    stage_packages(final_stage(), &pkgs);
    if (pkgs.n == 0)
        failf("%s: the runtime stage installs no package (it needs sff's shared libraries)", dockerfile_path);
    check_in_bookworm(&pkgs, "runtime");
}

static int load_deps_build(strset_t *pkgs)
{
    char *text = read_text("scripts/deps.sh", NULL);
    char *p = text != NULL ? strstr(text, "\nbuild_pkgs=\"") : NULL;
    if (p == NULL)
        return -1;
    p += strlen("\nbuild_pkgs=\"");
    char *e = strchr(p, '"');
    if (e == NULL)
        return -1;
    *e = '\0';
    for (char *t = strtok(p, " "); t != NULL; t = strtok(NULL, " "))
        set_add(pkgs, t);
    return 0;
}

TEST(build_packages_are_those_of_deps_sh)
{
    NEED_DOCKERFILE();
    strset_t want = {0}, have = {0};
    if (load_deps_build(&want) != 0) {
        failf("scripts/deps.sh has no build_pkgs=\"…\" line");
        return;
    }
    stage_packages(&dstages[0], &have);
    for (size_t i = 0; i < want.n; i++)
        if (!set_has(&have, want.v[i]))
            failf("%s: the build stage does not install %s (scripts/deps.sh build_pkgs)", dockerfile_path, want.v[i]);
    for (size_t i = 0; i < have.n; i++)
        if (!set_has(&want, have.v[i]))
            failf("%s: the build stage installs %s, which scripts/deps.sh build_pkgs does not list", dockerfile_path, have.v[i]);
    check_in_bookworm(&have, "build");
}

/* The NEEDED entries of an ELF file (readelf -d). */
static int elf_needed(const char *path, strset_t *libs)
{
    char cmd[600], line[1024];
    snprintf(cmd, sizeof(cmd), "readelf -d '%s' 2>/dev/null", path);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *b = strstr(line, "Shared library: [");
        if (b == NULL)
            continue;
        b += strlen("Shared library: [");
        b[strcspn(b, "]")] = '\0';
        set_add(libs, b);
    }
    return pclose(f) == 0 ? 0 : -1;
}

TEST(runtime_packages_provide_the_linked_libraries)
{
    NEED_DOCKERFILE();
    strset_t pkgs = {0}, libs = {0};
    stage_packages(final_stage(), &pkgs);
    /* the image's make builds build/ (no sanitizers), whatever build this test runs for */
    if (elf_needed("build/sff", &libs) != 0 || libs.n == 0) {
        failf("build/sff: cannot read its shared libraries (readelf -d); build it first");
        return;
    }
    DIR *d = opendir("build/functions");
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        if (strlen(e->d_name) > 3 && strcmp(e->d_name + strlen(e->d_name) - 3, ".so") == 0)
            elf_needed(aprintf("build/functions/%s", e->d_name), &libs);
    if (d != NULL)
        closedir(d);
    for (size_t i = 0; i < libs.n; i++) {
        strset_t owners = {0};
        dpkg_owners(aprintf("*/%s", libs.v[i]), aprintf("/%s", libs.v[i]), &owners);
        int ok = 0;
        for (size_t j = 0; j < owners.n; j++)
            /* libc6: every Debian image has it (all Essential packages depend on it) */
            ok |= set_has(&pkgs, owners.v[j]) || strcmp(owners.v[j], "libc6") == 0;
        if (!ok)
            failf("%s: sff needs %s (package %s), which the runtime stage does not install", dockerfile_path, libs.v[i],
                  owners.n > 0 ? owners.v[0] : "unknown");
    }
}

typedef struct {
    char *src, *dst;
} copy_map_t;

/* The build-stage path that becomes image path p through the runtime stage's COPY --from, or NULL. */
static char *image_to_build(const char *p, const copy_map_t *maps, size_t nmaps)
{
    char *path = no_slash(p);
    for (size_t i = 0; i < nmaps; i++) {
        size_t n = strlen(maps[i].dst);
        if (strncmp(path, maps[i].dst, n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return aprintf("%s%s", maps[i].src, path + n);
    }
    return NULL;
}

/* The effective value of an image variable under compose: service sff's environment, else the image's ENV. */
static const char *effective_env(const char *name)
{
    const char *img = stage_env(final_stage(), name);
    ynode_t *v = compose != NULL ? env_node(service("sff"), name) : NULL;
    return v != NULL ? cvalue(v) : img;
}

TEST(image_installs_what_it_runs)
{
    NEED_DOCKERFILE();
    cmds_t *cmds = malloc(sizeof(*cmds));
    if (cmds == NULL || stage_commands(&dstages[0], cmds) != 0) {
        free(cmds);
        failf("%s: the build stage's RUN lines cannot be read", dockerfile_path);
        return;
    }
    const char *prefix = NULL, *schemas_to = NULL, *web_to = NULL;
    for (size_t i = 0; i < cmds->n; i++) {
        words_t *c = &cmds->c[i];
        if (c->n > 1 && strcmp(c->w[0], "make") == 0) {
            int install = 0;
            for (size_t j = 1; j < c->n; j++) {
                install |= strcmp(c->w[j], "install") == 0;
                if (is_prefix(c->w[j], "PREFIX="))
                    prefix = no_slash(c->w[j] + 7);
                if (is_prefix(c->w[j], "DESTDIR="))
                    failf("%s: make install DESTDIR= is not understood by this test", dockerfile_path);
            }
            if (!install)
                continue;
        }
        if (c->n >= 3 && strcmp(c->w[0], "cp") == 0) {
            const char *dst = c->w[c->n - 1];
            for (size_t j = 1; j + 1 < c->n; j++) {
                if (strcmp(c->w[j], "schemas/.") == 0)
                    schemas_to = no_slash(dst);
                if (strcmp(c->w[j], "web/.") == 0)
                    web_to = no_slash(dst);
            }
        }
    }
    free(cmds);
    if (prefix == NULL || prefix[0] != '/' ||
        strspn(prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_.-") != strlen(prefix)) {
        failf("%s: the build stage runs no `make install PREFIX=/absolute/path`", dockerfile_path);
        return;
    }

    /* what `make install` really installs, from the Makefile (dry run) */
    char line[4096], *bin = NULL, *modules_dir = NULL;
    strset_t modules = {0};
    FILE *f = popen(aprintf("make -n --no-print-directory install PREFIX='%s' 2>&1", prefix), "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        words_t w = {0};
        if (shell_words(line, &w) != 0 || w.n < 3 || strcmp(w.w[0], "install") != 0)
            continue;
        size_t j = 1;
        int dirs = 0;
        for (; j < w.n && w.w[j][0] == '-'; j++) {
            dirs |= strcmp(w.w[j], "-d") == 0;
            if (strcmp(w.w[j], "-m") == 0 || strcmp(w.w[j], "-o") == 0 || strcmp(w.w[j], "-g") == 0)
                j++;
        }
        if (dirs || j + 1 >= w.n)
            continue;
        const char *dst = w.w[w.n - 1];
        for (size_t k = j; k + 1 < w.n; k++) {
            const char *base = strrchr(w.w[k], '/') != NULL ? strrchr(w.w[k], '/') + 1 : w.w[k];
            if (strcmp(base, "sff") == 0)
                bin = dst[strlen(dst) - 1] == '/' ? aprintf("%ssff", dst) : astrdup(dst);
            if (strlen(base) > 3 && strcmp(base + strlen(base) - 3, ".so") == 0) {
                modules_dir = no_slash(dst);
                set_add(&modules, base);
            }
        }
    }
    if (f != NULL)
        pclose(f);
    if (bin == NULL || modules_dir == NULL) {
        failf("`make -n install PREFIX=%s` installs no sff binary or no modules", prefix);
        return;
    }
    DIR *d = opendir("functions");
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        struct stat st;
        if (e->d_name[0] != '.' && stat(aprintf("functions/%s", e->d_name), &st) == 0 && S_ISDIR(st.st_mode) &&
            !set_has(&modules, aprintf("%s.so", e->d_name)))
            failf("make install does not install the module %s.so", e->d_name);
    }
    if (d != NULL)
        closedir(d);

    /* the runtime stage's COPY --from=<build stage> */
    copy_map_t maps[16];
    size_t nmaps = 0;
    for (size_t i = 0; i < final_stage()->n && nmaps < 16; i++) {
        if (strcmp(final_stage()->ins[i].kw, "COPY") != 0)
            continue;
        words_t w = {0};
        shell_words(final_stage()->ins[i].args, &w);
        const char *from = NULL, *src = NULL;
        size_t nsrc = 0;
        for (size_t j = 0; j < w.n; j++) {
            if (is_prefix(w.w[j], "--from="))
                from = w.w[j] + 7;
            else if (w.w[j][0] != '-' && j + 1 < w.n)
                src = w.w[j], nsrc++;
        }
        if (from == NULL || w.n < 2)
            continue;
        if (!((dstages[0].name != NULL && strcmp(from, dstages[0].name) == 0) || strcmp(from, "0") == 0)) {
            failf("%s:%d: COPY --from=%s is not the first (build) stage", dockerfile_path, final_stage()->ins[i].line, from);
            continue;
        }
        if (nsrc != 1) {
            failf("%s:%d: one source per COPY --from, please", dockerfile_path, final_stage()->ins[i].line);
            continue;
        }
        maps[nmaps].src = no_slash(src);
        maps[nmaps++].dst = no_slash(w.w[w.n - 1]);
    }

    const dins_t *ep = stage_last(final_stage(), "ENTRYPOINT");
    json_t *epj = ep != NULL ? json_loads(ep->args, 0, NULL) : NULL;
    const char *ep0 = json_string_value(json_array_get(epj, 0));
    char *ep_build = ep0 != NULL ? image_to_build(ep0, maps, nmaps) : NULL;
    if (ep_build == NULL || strcmp(ep_build, bin) != 0)
        failf("%s: ENTRYPOINT [\"%s\", …] is not the installed %s", dockerfile_path, ep0 != NULL ? ep0 : "?", bin);
    json_decref(epj);

    const char *fdir = effective_env("SFF_FUNCTIONS_DIR"), *sdir = effective_env("SFF_SCHEMAS_DIR");
    const char *stdir = effective_env("SFF_STATIC_DIR");
    char *b;
    if (fdir == NULL || (b = image_to_build(fdir, maps, nmaps)) == NULL || strcmp(b, modules_dir) != 0)
        failf("SFF_FUNCTIONS_DIR=%s is not where make install puts the modules (%s)", fdir ? fdir : "(unset)", modules_dir);
    if (schemas_to == NULL)
        failf("%s: the build stage does not copy the schemas (cp -R schemas/. DIR)", dockerfile_path);
    else if (sdir == NULL || (b = image_to_build(sdir, maps, nmaps)) == NULL || strcmp(b, schemas_to) != 0)
        failf("SFF_SCHEMAS_DIR=%s is not where the schemas are copied (%s)", sdir ? sdir : "(unset)", schemas_to);
    if (web_to == NULL)
        failf("%s: the build stage does not copy the web app (cp -R web/. DIR)", dockerfile_path);
    else if (stdir == NULL || (b = image_to_build(stdir, maps, nmaps)) == NULL || strcmp(b, aprintf("%s/todolist", web_to)) != 0)
        failf("SFF_STATIC_DIR=%s is not the copied web/todolist (%s/todolist)", stdir ? stdir : "(unset)", web_to);
    struct stat st;
    CHECK(stat("web/todolist/index.html", &st) == 0);
    CHECK(stat("schemas/sql", &st) == 0 && S_ISDIR(st.st_mode));
}

/* argv[0] of a healthcheck is in the image: a file of an Essential package (bash, dash, coreutils:
 * in every Debian image), of a package the runtime stage installs, or the image's sff. */
static void check_tool(const char *where, const char *tool, const strset_t *pkgs, const char *image_sff)
{
    if (image_sff != NULL && strcmp(tool, image_sff) == 0)
        return;
    strset_t owners = {0};
    if (strchr(tool, '/') != NULL) {
        dpkg_owners(tool, tool, &owners);
    } else {
        static const char *dirs[] = {"/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/", NULL};
        for (size_t i = 0; dirs[i] != NULL && owners.n == 0; i++)
            dpkg_owners(aprintf("%s%s", dirs[i], tool), tool, &owners);
    }
    for (size_t i = 0; i < owners.n; i++)
        if (set_has(pkgs, owners.v[i]) || is_essential(owners.v[i]))
            return;
    failf("%s: the healthcheck runs %s (package %s), which is neither Essential nor installed by the runtime stage", where, tool,
          owners.n > 0 ? owners.v[0] : "unknown here");
}

/* The Dockerfile's HEALTHCHECK command as argv (NULL-terminated, arena), or NULL. */
static char **dockerfile_healthcheck(void)
{
    const dins_t *hc = stage_last(final_stage(), "HEALTHCHECK");
    if (hc == NULL)
        return NULL;
    const char *cmd = strstr(hc->args, "CMD ");
    if (cmd == NULL)
        return NULL;
    cmd += 4;
    while (*cmd == ' ')
        cmd++;
    char **argv = anew(64 * sizeof(*argv));
    if (*cmd != '[') {
        argv[0] = "/bin/sh";
        argv[1] = "-c";
        argv[2] = astrdup(cmd);
        return argv;
    }
    json_t *a = json_loads(cmd, 0, NULL);
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    for (size_t i = 0; i < n && i < 63; i++)
        argv[i] = json_is_string(json_array_get(a, i)) ? astrdup(json_string_value(json_array_get(a, i))) : "";
    json_decref(a);
    return n > 0 ? argv : NULL;
}

/* service sff's healthcheck test as argv after interpolation, or NULL. */
static char **compose_healthcheck(void)
{
    ynode_t *t = yget(yget(service("sff"), "healthcheck"), "test");
    char **argv = anew(64 * sizeof(*argv));
    if (t == NULL)
        return NULL;
    if (t->kind == Y_STR) {
        argv[0] = "/bin/sh";
        argv[1] = "-c";
        argv[2] = (char *)cvalue(t);
        return argv[2] != NULL ? argv : NULL;
    }
    if (t->kind != Y_SEQ || t->n < 2 || ystr(t->items[0]) == NULL)
        return NULL;
    int shell = strcmp(t->items[0]->str, "CMD-SHELL") == 0;
    if (shell) {
        argv[0] = "/bin/sh";
        argv[1] = "-c";
        argv[2] = (char *)cvalue(t->items[1]);
        return argv[2] != NULL ? argv : NULL;
    }
    for (size_t i = 1; i < t->n && i < 63; i++)
        if ((argv[i - 1] = (char *)cvalue(t->items[i])) == NULL)
            return NULL;
    return argv;
}

TEST(healthchecks_use_tools_of_the_image)
{
    NEED_DOCKERFILE();
    strset_t pkgs = {0};
    stage_packages(final_stage(), &pkgs);
    const dins_t *ep = stage_last(final_stage(), "ENTRYPOINT");
    json_t *epj = ep != NULL ? json_loads(ep->args, 0, NULL) : NULL;
    char *image_sff = json_string_value(json_array_get(epj, 0)) ? astrdup(json_string_value(json_array_get(epj, 0))) : NULL;
    json_decref(epj);
    char **argv = dockerfile_healthcheck();
    if (argv == NULL)
        failf("%s: the runtime stage has no HEALTHCHECK CMD", dockerfile_path);
    else
        check_tool(dockerfile_path, argv[0], &pkgs, image_sff);
    if (compose == NULL)
        return;
    if ((argv = compose_healthcheck()) == NULL)
        failf("%s: service sff has no healthcheck test this test can run", compose_path);
    else
        check_tool(compose_path, argv[0], &pkgs, image_sff);
}

static void check_healthcheck_runs(const char *where, char **argv)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", srv.port);
    int rc = run_with_listen(argv, listen);
    if (rc != 0)
        failf("%s: the healthcheck exits %d against a ready sff (SFF_LISTEN=%s)", where, rc, listen);
    snprintf(listen, sizeof(listen), "0.0.0.0:%d", tc_free_port());
    if (run_with_listen(argv, listen) == 0)
        failf("%s: the healthcheck passes with nothing listening (SFF_LISTEN=%s)", where, listen);
}

TEST(healthchecks_pass_against_a_ready_sff)
{
    NEED_DOCKERFILE();
    if (!srv_ok) {
        failf("sff did not start");
        return;
    }
    char **argv = dockerfile_healthcheck();
    if (argv == NULL)
        failf("%s: no HEALTHCHECK CMD", dockerfile_path);
    else
        check_healthcheck_runs(dockerfile_path, argv);
    if (compose == NULL)
        return;
    if ((argv = compose_healthcheck()) == NULL)
        failf("%s: service sff has no healthcheck test", compose_path);
    else
        check_healthcheck_runs(compose_path, argv);
}

/* ---- .dockerignore ---------------------------------------------------------------------------- */

TEST(dockerignore_excludes_outputs_and_secrets)
{
    if (!dockerignore_ok) {
        failf("%s cannot be read", dockerignore_path);
        return;
    }
    static const char *out[] = {"build",
                                "build/sff",
                                "build/obj/gateway/main.c.o",
                                "build-asan/sff",
                                "build-fuzz/jsonin",
                                ".sff",
                                ".sff/jwt_secret",
                                "node_modules/x/index.js",
                                "tests/node/node_modules/s3rver/package.json",
                                "web/node_modules/a/b.js",
                                "web/todolist/node_modules/a.js",
                                ".git/HEAD",
                                ".env",
                                NULL};
    for (size_t i = 0; out[i] != NULL; i++)
        if (!docker_excluded(out[i]))
            failf("%s lets %s into the build context", dockerignore_path, out[i]);
}

static void keep_walk(const char *dir, int *files)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, "node_modules") == 0)
            continue;
        char *p = aprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            keep_walk(p, files);
        } else if (S_ISREG(st.st_mode)) {
            size_t n = strlen(p);
            if ((n > 2 && (strcmp(p + n - 2, ".o") == 0 || strcmp(p + n - 2, ".d") == 0)) ||
                (n > 3 && strcmp(p + n - 3, ".so") == 0))
                continue; /* generated */
            (*files)++;
            if (docker_excluded(p))
                failf("%s keeps %s out of the build context, the image needs it", dockerignore_path, p);
        }
    }
    closedir(d);
}

TEST(dockerignore_keeps_the_sources)
{
    if (!dockerignore_ok) {
        failf("%s cannot be read", dockerignore_path);
        return;
    }
    /* what make needs (Makefile, gateway/, baas/, functions/) and what the image copies (schemas/, web/) */
    static const char *dirs[] = {"gateway", "baas", "functions", "schemas", "web", NULL};
    if (docker_excluded("Makefile"))
        failf("%s keeps the Makefile out", dockerignore_path);
    for (size_t i = 0; dirs[i] != NULL; i++) {
        int files = 0;
        keep_walk(dirs[i], &files);
        if (files == 0)
            failf("%s/ has no files", dirs[i]);
    }
}

/* ---- main ------------------------------------------------------------------------------------- */

static const char *path_from_env(const char *var, const char *dflt)
{
    const char *p = getenv(var);
    if (p == NULL || *p == '\0')
        return dflt;
    printf("# %s: reading %s\n", var, p);
    return p;
}

int main(void)
{
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0) {
        perror("SFF_TOP");
        return 1;
    }
    compose_path = path_from_env("SFF_TEST_COMPOSE_FILE", "docker-compose.yml");
    dockerfile_path = path_from_env("SFF_TEST_DOCKERFILE", "Dockerfile");
    dockerignore_path = path_from_env("SFF_TEST_DOCKERIGNORE", ".dockerignore");
    if (load_read_vars() != 0 || load_documented_vars() != 0) {
        fprintf(stderr,
                "cannot read the SFF_ variables of gateway/config.c or README.md (run from the repository, or set SFF_TOP)\n");
        return 1;
    }
    size_t len;
    char *text = read_text(compose_path, &len);
    if (text == NULL)
        snprintf(compose_err, sizeof(compose_err), "cannot be read");
    else
        compose = yparse(text, len, compose_err, sizeof(compose_err));
    docker_ok = dockerfile_load(dockerfile_path) == 0;
    dockerignore_ok = dockerignore_load(dockerignore_path) == 0;

    /* a real sff for the healthcheck commands, laid out like the image's */
    const char *env[] = {"SFF_WORKERS=1", "SFF_JWT_SECRET=" TC_SECRET, "SFF_SCHEMAS_DIR=schemas", "SFF_STATIC_DIR=web/todolist",
                         NULL};
    srv_ok = tc_server_start(&srv, env) == 0;

    RUN(reader_takes_the_subset_and_refuses_the_rest);
    RUN(compose_file_parses);
    RUN(every_variable_has_one_default);
    RUN(sff_environment_is_read_and_documented);
    RUN(image_environment_is_read_and_documented);
    RUN(secrets_are_variables_with_dev_defaults);
    RUN(pg_url_names_the_postgres_service);
    RUN(redis_url_names_the_redis_service);
    RUN(storage_url_names_minio_and_the_bucket_it_creates);
    RUN(s3_keys_are_minio_root_credentials);
    RUN(long_running_services_have_healthchecks);
    RUN(sff_waits_for_healthy_backends_and_the_bucket);
    RUN(bucket_job_runs_once_after_minio);
    RUN(images_are_postgres_15_redis_7_and_minio);
    RUN(dockerfile_has_two_bookworm_slim_stages);
    RUN(dockerfile_runs_as_non_root);
    RUN(dockerfile_exposes_the_listen_port);
    RUN(runtime_packages_exist_in_bookworm);
    RUN(build_packages_are_those_of_deps_sh);
    RUN(runtime_packages_provide_the_linked_libraries);
    RUN(image_installs_what_it_runs);
    RUN(healthchecks_use_tools_of_the_image);
    RUN(healthchecks_pass_against_a_ready_sff);
    RUN(dockerignore_excludes_outputs_and_secrets);
    RUN(dockerignore_keeps_the_sources);

    if (srv_ok)
        tc_server_stop(&srv);
    arena_free();
    return test_done();
}
