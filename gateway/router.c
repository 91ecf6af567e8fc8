#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "text.h"
#include "router.h"

/*
 * The router is a trie of path segments. A node has literal children (a sorted array), at most one
 * parameter child and at most one "*" child; a node where templates end keeps one route per method.
 * Every node knows its parent and its kind, so matching backtracks without a stack and without
 * allocating: a node of depth k is only ever reached after the first k segments of the path, so a
 * match visits each node at most once.
 *
 * Paths are matched raw and exactly: "/todos/" is the segments "todos" and "", so it does not match
 * "/todos" (only a "*" after "todos" takes the empty segment), and an empty segment ("//") never
 * matches a parameter.
 */

#define NUM_METHODS 7

enum { KIND_ROOT, KIND_LITERAL, KIND_PARAM, KIND_WILDCARD };

static const struct {
    const char *name;
    size_t len;
} methods[NUM_METHODS] = {{"GET", 3}, {"HEAD", 4}, {"POST", 4}, {"PUT", 3}, {"PATCH", 5}, {"DELETE", 6}, {"OPTIONS", 7}};

#define METHOD_GET 0
#define METHOD_HEAD 1

/* A route: its data and the names of its parameters in path order (NUL-terminated, in buf). */
typedef struct st_route_t {
    void *data;
    size_t num_names;
    const char *names[SFF_ROUTER_MAX_PARAMS];
    size_t name_lens[SFF_ROUTER_MAX_PARAMS];
    char buf[];
} route_t;

typedef struct st_node_t node_t;

struct st_node_t {
    node_t *parent;
    int kind;
    /* The segment of a literal node (not NUL-terminated). */
    char *seg;
    size_t seg_len;
    /* Literal children, sorted by compare_seg(). */
    node_t **literals;
    size_t num_literals, cap_literals;
    node_t *param;
    node_t *wildcard;
    route_t *routes[NUM_METHODS];
    /* The Allow bits of this node: its methods, HEAD when it has GET, OPTIONS when it has any; 0 when
     * no template ends here. */
    unsigned allowed;
};

struct st_sff_router_t {
    node_t root;
};

/* One parsed template segment. */
typedef struct st_tseg_t {
    int kind;
    const char *s;
    size_t len;
} tseg_t;

static int method_index(const char *method, size_t len)
{
    if (method == NULL)
        return -1;
    for (int i = 0; i < NUM_METHODS; ++i)
        if (methods[i].len == len && memcmp(methods[i].name, method, len) == 0)
            return i;
    return -1;
}

unsigned sff_router_method_bit(const char *method, size_t len)
{
    int i = method_index(method, len);
    return i < 0 ? 0 : 1u << i;
}

size_t sff_router_allow_string(unsigned bits, char *buf, size_t size)
{
    /* Built in full, then copied: a buffer that is too small gets a truncated, still NUL-terminated
     * string, and the length returned is that of what was written. */
    char tmp[64];
    size_t len = 0;
    for (int i = 0; i < NUM_METHODS; ++i) {
        if ((bits & (1u << i)) == 0)
            continue;
        if (len != 0) {
            memcpy(tmp + len, ", ", 2);
            len += 2;
        }
        memcpy(tmp + len, methods[i].name, methods[i].len);
        len += methods[i].len;
    }
    if (size == 0)
        return 0;
    if (len > size - 1)
        len = size - 1;
    memcpy(buf, tmp, len);
    buf[len] = '\0';
    return len;
}

sff_router_t *sff_router_create(void)
{
    sff_router_t *router = calloc(1, sizeof(*router));
    if (router != NULL)
        router->root.kind = KIND_ROOT;
    return router;
}

static void free_node_contents(node_t *node)
{
    for (int i = 0; i < NUM_METHODS; ++i)
        free(node->routes[i]);
    free(node->literals);
    free(node->seg);
}

void sff_router_destroy(sff_router_t *router)
{
    if (router == NULL)
        return;
    /* Post-order without recursion: templates may be arbitrarily deep. */
    node_t *node = &router->root;
    while (node != NULL) {
        node_t *child = NULL;
        if (node->num_literals != 0) {
            child = node->literals[--node->num_literals];
        } else if (node->param != NULL) {
            child = node->param;
            node->param = NULL;
        } else if (node->wildcard != NULL) {
            child = node->wildcard;
            node->wildcard = NULL;
        }
        if (child != NULL) {
            node = child;
            continue;
        }
        node_t *parent = node->parent;
        free_node_contents(node);
        if (node != &router->root)
            free(node);
        node = parent;
    }
    free(router);
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *method, const char *tmpl)
{
    if (err != NULL && errlen != 0)
        snprintf(err, errlen, fmt, method, tmpl);
}

static int compare_seg(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* The index in node->literals of the child for seg, or of where it would be inserted; *found says which. */
static size_t find_literal_index(const node_t *node, const char *seg, size_t len, int *found)
{
    size_t lo = 0, hi = node->num_literals;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const node_t *c = node->literals[mid];
        int cmp = compare_seg(c->seg, c->seg_len, seg, len);
        if (cmp == 0) {
            *found = 1;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static const node_t *find_literal(const node_t *node, const char *seg, size_t len)
{
    int found;
    if (node->num_literals == 0)
        return NULL;
    size_t i = find_literal_index(node, seg, len, &found);
    return found ? node->literals[i] : NULL;
}

static node_t *new_node(node_t *parent, int kind)
{
    node_t *node = calloc(1, sizeof(*node));
    if (node != NULL) {
        node->parent = parent;
        node->kind = kind;
    }
    return node;
}

/* The child of node for one template segment, created when missing; NULL when memory runs out. */
static node_t *child_for(node_t *node, const tseg_t *ts)
{
    switch (ts->kind) {
    case KIND_PARAM:
        if (node->param == NULL)
            node->param = new_node(node, KIND_PARAM);
        return node->param;
    case KIND_WILDCARD:
        if (node->wildcard == NULL)
            node->wildcard = new_node(node, KIND_WILDCARD);
        return node->wildcard;
    default:
        break;
    }
    int found;
    size_t i = find_literal_index(node, ts->s, ts->len, &found);
    if (found)
        return node->literals[i];
    if (node->num_literals == node->cap_literals) {
        size_t cap = node->cap_literals == 0 ? 4 : node->cap_literals * 2;
        node_t **grown = realloc(node->literals, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        node->literals = grown;
        node->cap_literals = cap;
    }
    node_t *child = new_node(node, KIND_LITERAL);
    if (child == NULL || (child->seg = malloc(ts->len)) == NULL) {
        free(child);
        return NULL;
    }
    memcpy(child->seg, ts->s, ts->len);
    child->seg_len = ts->len;
    memmove(node->literals + i + 1, node->literals + i, (node->num_literals - i) * sizeof(*node->literals));
    node->literals[i] = child;
    node->num_literals++;
    return child;
}

static int is_dot_segment(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

static int is_name_start(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(int c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/*
 * Checks one template segment and fills *ts; returns NULL or the reason it is invalid. A literal
 * segment may hold any byte a raw request path can (it is compared with the raw path, so "%41"
 * only matches "%41"), except "*", which would suggest a glob, and it may not be "." or "..",
 * which sff_path_check() never lets through.
 */
static const char *parse_segment(const char *s, size_t len, int last, tseg_t *ts)
{
    ts->s = s;
    ts->len = len;
    if (len == 0)
        return "empty segment (\"//\" or a trailing \"/\")";
    if (s[0] == ':') {
        ts->kind = KIND_PARAM;
        ts->s = s + 1;
        ts->len = len - 1;
        if (len == 1 || !is_name_start((unsigned char)s[1]))
            return "parameter name must match [A-Za-z_][A-Za-z0-9_]*";
        for (size_t i = 2; i < len; ++i)
            if (!is_name_char((unsigned char)s[i]))
                return "parameter name must match [A-Za-z_][A-Za-z0-9_]*";
        return NULL;
    }
    if (len == 1 && s[0] == '*') {
        ts->kind = KIND_WILDCARD;
        return last ? NULL : "\"*\" must be the last segment";
    }
    ts->kind = KIND_LITERAL;
    if (is_dot_segment(s, len))
        return "\".\" and \"..\" segments never match";
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '\\' || c == '?' || c == '#')
            return "segment holds a control character, space, '\\', '?' or '#'";
        if (c == '*')
            return "\"*\" is only allowed as the whole last segment";
    }
    return NULL;
}

int sff_router_add(sff_router_t *router, const char *method, const char *path_template, void *data, char *err, size_t errlen)
{
    const char *tmpl = path_template != NULL ? path_template : "(null)";
    const char *mname = method != NULL ? method : "(null)";
    int mi = method_index(method, method != NULL ? strlen(method) : 0);
    if (router == NULL) {
        set_err(err, errlen, "route %s %s: no router", mname, tmpl);
        return -1;
    }
    if (mi < 0) {
        set_err(err, errlen, "unknown method \"%s\" for route %s", mname, tmpl);
        return -1;
    }
    if (path_template == NULL || path_template[0] != '/') {
        set_err(err, errlen, "route %s %s: template must start with \"/\"", mname, tmpl);
        return -1;
    }

    /* First validate the whole template, so an invalid one leaves the router untouched. */
    size_t len = strlen(path_template), num_params = 0, num_segs = 0;
    tseg_t params[SFF_ROUTER_MAX_PARAMS];
    for (size_t s = 1; len > 1 && s <= len;) {
        const char *slash = memchr(path_template + s, '/', len - s);
        size_t e = slash != NULL ? (size_t)(slash - path_template) : len;
        tseg_t ts;
        const char *why = parse_segment(path_template + s, e - s, e == len, &ts);
        if (why != NULL) {
            if (err != NULL && errlen != 0)
                snprintf(err, errlen, "route %s %s: %s", mname, tmpl, why);
            return -1;
        }
        if (ts.kind == KIND_PARAM || ts.kind == KIND_WILDCARD) {
            if (num_params == SFF_ROUTER_MAX_PARAMS) {
                if (err != NULL && errlen != 0)
                    snprintf(err, errlen, "route %s %s: more than %d parameters", mname, tmpl, SFF_ROUTER_MAX_PARAMS);
                return -1;
            }
            for (size_t i = 0; i < num_params; ++i) {
                if (params[i].len == ts.len && memcmp(params[i].s, ts.s, ts.len) == 0) {
                    set_err(err, errlen, "route %s %s: a parameter name is used twice", mname, tmpl);
                    return -1;
                }
            }
            params[num_params++] = ts;
        }
        ++num_segs;
        s = e + 1;
    }

    /* Then walk and extend the trie. */
    node_t *node = &router->root;
    for (size_t s = 1; num_segs != 0 && s <= len;) {
        const char *slash = memchr(path_template + s, '/', len - s);
        size_t e = slash != NULL ? (size_t)(slash - path_template) : len;
        tseg_t ts;
        parse_segment(path_template + s, e - s, e == len, &ts);
        if ((node = child_for(node, &ts)) == NULL) {
            set_err(err, errlen, "route %s %s: out of memory", mname, tmpl);
            return -1;
        }
        s = e + 1;
    }
    if (node->routes[mi] != NULL) {
        set_err(err, errlen, "route %s %s duplicates one added before", mname, tmpl);
        return -1;
    }

    size_t names_size = 0;
    for (size_t i = 0; i < num_params; ++i)
        names_size += params[i].len + 1;
    route_t *route = malloc(offsetof(route_t, buf) + names_size);
    if (route == NULL) {
        set_err(err, errlen, "route %s %s: out of memory", mname, tmpl);
        return -1;
    }
    route->data = data;
    route->num_names = num_params;
    char *p = route->buf;
    for (size_t i = 0; i < num_params; ++i) {
        memcpy(p, params[i].s, params[i].len);
        p[params[i].len] = '\0';
        route->names[i] = p;
        route->name_lens[i] = params[i].len;
        p += params[i].len + 1;
    }
    node->routes[mi] = route;
    node->allowed |= (1u << mi) | SFF_M_OPTIONS;
    if (mi == METHOD_GET)
        node->allowed |= SFF_M_HEAD;
    return 0;
}

/* The route of node for method index mi (HEAD falling back to GET), or NULL, adding the node's Allow
 * bits to *allowed. */
static const route_t *route_of(const node_t *node, int mi, unsigned *allowed)
{
    if (node->allowed == 0)
        return NULL;
    *allowed |= node->allowed;
    if (mi < 0)
        return NULL;
    if (node->routes[mi] != NULL)
        return node->routes[mi];
    if (mi == METHOD_HEAD)
        return node->routes[METHOD_GET];
    return NULL;
}

/*
 * When several nodes match the path (a literal and a parameter, say), they are tried in precedence
 * order and the first one with a route for the method wins; so a method missing on the literal
 * node may still be served by a parameter or "*" node. On failure *allowed is the union of the Allow
 * bits of every node matching the path, i.e. exactly the methods that would succeed (plus OPTIONS).
 * On success *allowed holds the Allow bits of the matched node.
 */
void *sff_router_match(const sff_router_t *router, const char *method, size_t method_len, const char *path, size_t path_len,
                       sff_route_params_t *params, unsigned *allowed)
{
    sff_route_params_t params_buf;
    unsigned allowed_buf;
    if (params == NULL)
        params = &params_buf;
    if (allowed == NULL)
        allowed = &allowed_buf;
    params->n = 0;
    *allowed = 0;
    if (router == NULL || path == NULL || path_len == 0 || path[0] != '/')
        return NULL;

    int mi = method_index(method, method_len);
    const node_t *root = &router->root, *node = root, *matched;
    const route_t *route;
    size_t n = 0;
    unsigned union_bits = 0;

    /* The root template "/" takes the path "/" before a root "*" does (which sees one empty segment). */
    if (path_len == 1 && (route = route_of(root, mi, &union_bits)) != NULL) {
        matched = root;
        goto Found;
    }

    /* pos is the index of the '/' that starts the next segment of the path, next the first kind of
     * child of node still to try for it. */
    size_t pos = 0;
    int next = KIND_LITERAL;
    for (;;) {
        size_t s = pos + 1, e = s;
        while (e < path_len && path[e] != '/')
            ++e;
        const node_t *child = NULL;
        if (next <= KIND_LITERAL && e > s)
            child = find_literal(node, path + s, e - s);
        if (child == NULL && next <= KIND_PARAM && e > s && node->param != NULL) {
            child = node->param;
            params->p[n].value = path + s;
            params->p[n].value_len = e - s;
            ++n;
        }
        if (child != NULL) {
            node = child;
            pos = e;
            if (pos != path_len) {
                next = KIND_LITERAL;
                continue;
            }
            if ((route = route_of(node, mi, &union_bits)) != NULL) {
                matched = node;
                goto Found;
            }
        } else if (next <= KIND_WILDCARD && node->wildcard != NULL) {
            params->p[n].value = path + s;
            params->p[n].value_len = path_len - s;
            if ((route = route_of(node->wildcard, mi, &union_bits)) != NULL) {
                ++n;
                matched = node->wildcard;
                goto Found;
            }
        }
        /* Every child of node has been tried: back to its parent, at the '/' before its segment. */
        if (node == root)
            break;
        if (node->kind == KIND_PARAM) {
            --n;
            pos = (size_t)(params->p[n].value - path) - 1;
        } else {
            pos -= node->seg_len + 1;
        }
        next = node->kind + 1;
        node = node->parent;
    }
    *allowed = union_bits;
    return NULL;

Found:
    /* The matched node sits below exactly the parameter and "*" nodes of its templates, so the route
     * has one name per value collected. */
    for (size_t i = 0; i < n; ++i) {
        params->p[i].name = route->names[i];
        params->p[i].name_len = route->name_lens[i];
    }
    params->n = n;
    *allowed = matched->allowed;
    return route->data;
}

/* Decodes the valid %XX escapes of buf in place, leaving malformed ones as they are; returns the new
 * length, which is shorter exactly when something was decoded. */
static size_t decode_lenient(char *buf, size_t len)
{
    size_t r = 0, w = 0;
    while (r < len) {
        int hi, lo;
        if (buf[r] == '%' && r + 2 < len && (hi = sff_text_hexval((unsigned char)buf[r + 1])) >= 0 &&
            (lo = sff_text_hexval((unsigned char)buf[r + 2])) >= 0) {
            buf[w++] = (char)(hi << 4 | lo);
            r += 3;
        } else {
            buf[w++] = buf[r++];
        }
    }
    return w;
}

static int has_bad_decoded_byte(const char *s, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '\\' || c == '/')
            return 1;
    }
    return 0;
}

#define PATH_DECODE_ROUNDS 3

/*
 * Checks one segment holding a '%': decodes it up to PATH_DECODE_ROUNDS times (the way a sloppy
 * backend might), and refuses it when any round yields a "." or ".." segment, a control character,
 * a backslash or a slash, or when it would still change after the last round.
 */
static int check_encoded_segment(const char *seg, size_t len)
{
    char small[256], *buf = small;
    int ret = -1;
    if (len > sizeof(small) && (buf = malloc(len)) == NULL)
        return -1;
    memcpy(buf, seg, len);
    for (int round = 0;; ++round) {
        size_t decoded = decode_lenient(buf, len);
        if (decoded == len) {
            ret = 0;
            break;
        }
        if (round == PATH_DECODE_ROUNDS)
            break;
        len = decoded;
        if (has_bad_decoded_byte(buf, len) || is_dot_segment(buf, len))
            break;
    }
    if (buf != small)
        free(buf);
    return ret;
}

int sff_path_check(const char *path, size_t len)
{
    if (path == NULL || len == 0 || path[0] != '/')
        return -1;
    /* One pass; a segment is checked when the '/' after it (or the end) is reached. */
    size_t seg = 1;
    int escaped = 0;
    for (size_t i = 1; i <= len; ++i) {
        if (i == len || path[i] == '/') {
            if (is_dot_segment(path + seg, i - seg) || (escaped && check_encoded_segment(path + seg, i - seg) != 0))
                return -1;
            seg = i + 1;
            escaped = 0;
            continue;
        }
        unsigned char c = (unsigned char)path[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            return -1;
        if (c == '%') {
            escaped = 1;
            if (i + 2 < len) {
                char a = path[i + 1], b = path[i + 2] | 0x20;
                if ((a == '0' && b == '0') || (a == '5' && b == 'c') || (a == '2' && b == 'f'))
                    return -1;
            }
        }
    }
    return 0;
}

static long decode(char *dst, const char *src, size_t len, int plus_is_space)
{
    size_t w = 0;
    for (size_t r = 0; r < len; ++r) {
        char c = src[r];
        if (c == '%') {
            int hi, lo;
            if (len - r < 3 || (hi = sff_text_hexval((unsigned char)src[r + 1])) < 0 ||
                (lo = sff_text_hexval((unsigned char)src[r + 2])) < 0)
                return -1;
            if ((c = (char)(hi << 4 | lo)) == '\0')
                return -1;
            r += 2;
        } else if (c == '\0') {
            return -1;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        dst[w++] = c;
    }
    dst[w] = '\0';
    return (long)w;
}

/* Both decoders also refuse a raw NUL, so the result is always a C string; they write at or before
 * the position they read, so dst may equal src. */
long sff_url_decode(char *dst, const char *src, size_t len)
{
    return decode(dst, src, len, 0);
}

long sff_url_decode_form(char *dst, const char *src, size_t len)
{
    return decode(dst, src, len, 1);
}
