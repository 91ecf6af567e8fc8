/*
 * Fuzzes sff_router_add() and sff_router_match(). The input is lines: the first byte gives the number
 * of templates (0-8), the first line of each template or path is the method (its first byte, modulo 8,
 * picks one of the seven methods or an unknown one) followed by the template or path. Every match is
 * checked against a naive matcher: params point into the path, the route returned is the one of
 * highest precedence among the routes that match, and a NULL reports the methods that would match.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "router.h"

#define MAX_ROUTES 8
#define MAX_PATHS 16
#define MAX_TEMPLATE 1024

static const char *const method_names[8] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "BREW"};

typedef struct st_route_t {
    char *tmpl;
    int method;
    int added;
} route_t;

#define ASSERT(cond)                                                                                                               \
    do {                                                                                                                           \
        if (!(cond)) {                                                                                                             \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);                                           \
            abort();                                                                                                               \
        }                                                                                                                          \
    } while (0)

/* Segment kinds in precedence order. */
enum { LIT, PARAM, WILD };

/*
 * Matches tmpl (a valid template) against path the simple way; returns 1 and fills kinds (the kind of
 * each template segment, *nkinds of them) and the parameter values, or 0.
 */
static int naive_match(const char *tmpl, const char *path, size_t len, int *kinds, size_t *nkinds, const char **values,
                       size_t *value_lens, size_t *nvalues)
{
    *nkinds = 0;
    *nvalues = 0;
    if (strcmp(tmpl, "/") == 0)
        return len == 1 && path[0] == '/';
    if (len == 0 || path[0] != '/')
        return 0;
    const char *t = tmpl + 1;
    size_t pp = 1; /* start of the next path segment; len + 1 once the path is used up */
    for (;;) {
        const char *tend = strchr(t, '/');
        size_t tlen = tend != NULL ? (size_t)(tend - t) : strlen(t);
        if (tlen == 1 && t[0] == '*') {
            if (pp > len)
                return 0;
            kinds[(*nkinds)++] = WILD;
            values[*nvalues] = path + pp;
            value_lens[(*nvalues)++] = len - pp;
            return 1;
        }
        if (pp > len)
            return 0;
        size_t pe = pp;
        while (pe < len && path[pe] != '/')
            ++pe;
        if (t[0] == ':') {
            if (pe == pp)
                return 0;
            kinds[(*nkinds)++] = PARAM;
            values[*nvalues] = path + pp;
            value_lens[(*nvalues)++] = pe - pp;
        } else {
            if (pe - pp != tlen || memcmp(path + pp, t, tlen) != 0)
                return 0;
            kinds[(*nkinds)++] = LIT;
        }
        pp = pe + 1;
        if (tend == NULL)
            return pp == len + 1;
        t = tend + 1;
    }
}

static int compare_kinds(const int *a, size_t na, const int *b, size_t nb)
{
    for (size_t i = 0; i < na && i < nb; ++i)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return na < nb ? -1 : na > nb;
}

static void check_match(const sff_router_t *router, const route_t *routes, size_t nroutes, int method, const char *path, size_t len)
{
    sff_route_params_t params;
    unsigned allowed;
    const char *mname = method_names[method];
    void *data = sff_router_match(router, mname, strlen(mname), path, len, &params, &allowed);

    ASSERT(params.n <= SFF_ROUTER_MAX_PARAMS);
    for (size_t i = 0; i < params.n; ++i) {
        ASSERT(params.p[i].value >= path && params.p[i].value <= path + len);
        ASSERT(params.p[i].value_len <= (size_t)(path + len - params.p[i].value));
        ASSERT(params.p[i].name != NULL && params.p[i].name_len != 0 && params.p[i].name[params.p[i].name_len] == '\0');
    }

    /* The naive answer: the matching route of the lowest kinds, an exact method before a GET serving
     * a HEAD; and the Allow bits of every matching route. */
    int best = -1, best_kinds[MAX_TEMPLATE], kinds[MAX_TEMPLATE];
    size_t best_nkinds = 0, nkinds, nvalues;
    const char *values[SFF_ROUTER_MAX_PARAMS];
    size_t value_lens[SFF_ROUTER_MAX_PARAMS];
    unsigned want_allowed = 0;
    for (size_t k = 0; k < nroutes; ++k) {
        if (!routes[k].added)
            continue;
        if (!naive_match(routes[k].tmpl, path, len, kinds, &nkinds, values, value_lens, &nvalues))
            continue;
        want_allowed |= (1u << routes[k].method) | SFF_M_OPTIONS | (routes[k].method == 0 ? SFF_M_HEAD : 0);
        int fits = routes[k].method == method || (method == 1 && routes[k].method == 0);
        if (!fits)
            continue;
        int cmp = best < 0 ? -1 : compare_kinds(kinds, nkinds, best_kinds, best_nkinds);
        if (cmp < 0 || (cmp == 0 && routes[k].method == method)) {
            best = (int)k;
            memcpy(best_kinds, kinds, nkinds * sizeof(kinds[0]));
            best_nkinds = nkinds;
        }
    }

    if (best < 0) {
        ASSERT(data == NULL);
        ASSERT(allowed == want_allowed);
        return;
    }
    ASSERT(data == &routes[best]);
    ASSERT(naive_match(routes[best].tmpl, path, len, kinds, &nkinds, values, value_lens, &nvalues));
    ASSERT(params.n == nvalues);
    for (size_t i = 0; i < nvalues; ++i)
        ASSERT(params.p[i].value == values[i] && params.p[i].value_len == value_lens[i]);
    ASSERT((allowed & SFF_M_OPTIONS) != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t ntemplates = data[0] % (MAX_ROUTES + 1), nroutes = 0, npaths = 0;
    route_t routes[MAX_ROUTES];
    struct {
        int method;
        const uint8_t *s;
        size_t len;
    } paths[MAX_PATHS];

    const uint8_t *p = data + 1, *end = data + size;
    while (p < end && npaths < MAX_PATHS) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *line_end = nl != NULL ? nl : end;
        int method = p < line_end ? *p % 8 : 0;
        const uint8_t *s = p < line_end ? p + 1 : p;
        if (nroutes < ntemplates) {
            size_t tlen = (size_t)(line_end - s);
            routes[nroutes].tmpl = strndup((const char *)s, tlen < MAX_TEMPLATE - 1 ? tlen : MAX_TEMPLATE - 1);
            routes[nroutes].method = method;
            routes[nroutes].added = 0;
            ++nroutes;
        } else {
            paths[npaths].method = method;
            paths[npaths].s = s;
            paths[npaths].len = (size_t)(line_end - s);
            ++npaths;
        }
        p = line_end + 1;
    }

    sff_router_t *router = sff_router_create();
    char err[128];
    for (size_t k = 0; k < nroutes; ++k)
        routes[k].added = sff_router_add(router, method_names[routes[k].method], routes[k].tmpl, &routes[k], err, sizeof(err)) == 0;
    for (size_t i = 0; i < npaths; ++i) {
        /* An exact-size copy, so reading past the path is caught. */
        char *path = malloc(paths[i].len != 0 ? paths[i].len : 1);
        if (paths[i].len != 0)
            memcpy(path, paths[i].s, paths[i].len);
        check_match(router, routes, nroutes, paths[i].method, path, paths[i].len);
        free(path);
    }
    /* A template is also a path: its parameters match their own names. */
    for (size_t k = 0; k < nroutes; ++k) {
        if (routes[k].added)
            check_match(router, routes, nroutes, routes[k].method, routes[k].tmpl, strlen(routes[k].tmpl));
    }
    sff_router_destroy(router);
    for (size_t k = 0; k < nroutes; ++k)
        free(routes[k].tmpl);
    return 0;
}
