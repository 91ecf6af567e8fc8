/*
 * router.h - method + path template routing, and the check every request path passes first.
 *
 * Templates are absolute paths of segments: a literal ("todos"), a parameter (":id", one non-empty
 * segment) or, as the last segment only, "*" (the rest of the path, possibly empty, as the
 * parameter "*"). Literal segments win over parameters, parameters over "*".
 */
#ifndef SFF_ROUTER_H
#define SFF_ROUTER_H

#include <stddef.h>

#define SFF_ROUTER_MAX_PARAMS 16

/* Methods as bits, for the Allow header of a 405. */
enum {
    SFF_M_GET = 1 << 0,
    SFF_M_HEAD = 1 << 1,
    SFF_M_POST = 1 << 2,
    SFF_M_PUT = 1 << 3,
    SFF_M_PATCH = 1 << 4,
    SFF_M_DELETE = 1 << 5,
    SFF_M_OPTIONS = 1 << 6,
};

typedef struct st_sff_router_t sff_router_t;

/* The parameters of a match: pointers into the matched path (not decoded, not NUL-terminated). */
typedef struct st_sff_route_params_t {
    size_t n;
    struct {
        const char *name;
        size_t name_len;
        const char *value;
        size_t value_len;
    } p[SFF_ROUTER_MAX_PARAMS];
} sff_route_params_t;

/* The method bit of a method name, or 0 for an unknown method. */
unsigned sff_router_method_bit(const char *method, size_t len);

/* Writes "GET, HEAD, POST" for a set of method bits into buf (NUL-terminated); returns its length. */
size_t sff_router_allow_string(unsigned methods, char *buf, size_t size);

/* A new, empty router; caller destroys it with sff_router_destroy(). NULL when memory runs out. */
sff_router_t *sff_router_create(void);
void sff_router_destroy(sff_router_t *router);

/* Adds a route. data is borrowed and returned by matches. Returns 0, or -1 with a message in err
 * for an invalid template, an unknown method or a route that duplicates one already added (the
 * same method on the same template shape, e.g. "/a/:x" and "/a/:y"). */
int sff_router_add(sff_router_t *router, const char *method, const char *path_template, void *data, char *err, size_t errlen);

/*
 * Finds the route for method and path (the path without its query string). Returns its data and
 * fills params, or NULL. When NULL, *allowed holds the method bits that do match the path (0 when
 * no route matches the path at all: a 404, else a 405). A HEAD matches a GET route when no HEAD
 * route exists.
 */
void *sff_router_match(const sff_router_t *router, const char *method, size_t method_len, const char *path, size_t path_len,
                       sff_route_params_t *params, unsigned *allowed);

/*
 * Checks a raw request path (as the client sent it, before any decoding, without the query) and
 * returns 0 if it is safe to route and to hand to the static file handler, or -1 when it holds a
 * NUL or "%00", a backslash or "%5c", a "." or ".." segment in any encoding ("%2e", "%2E", mixed,
 * also double-encoded "%252e"), an encoded slash ("%2f"), a control character, or does not start
 * with "/".
 */
int sff_path_check(const char *path, size_t len);

/* Percent-decodes src into dst (at least len + 1 bytes); returns the decoded length, or -1 for a
 * malformed escape or a decoded NUL. '+' stays '+' (paths); sff_url_decode_form() turns it to ' '. */
long sff_url_decode(char *dst, const char *src, size_t len);
long sff_url_decode_form(char *dst, const char *src, size_t len);

#endif
