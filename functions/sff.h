/*
 * sff.h - the one header a sff function module includes.
 *
 * A module is a shared object that exports one descriptor, built with SFF_MODULE(). The gateway
 * loads it, checks its ABI, hands it the API table, and calls a route's handler in a coroutine for
 * every matching request:
 *
 *     #include "sff.h"
 *
 *     static int hello(sff_req_t *r)
 *     {
 *         sff_json_t *out = sff_json_object(r);
 *         sff_json_set(out, "hello", sff_json_string(r, "world"));
 *         return sff_respond(r, 200, out);
 *     }
 *
 *     static const sff_route_t routes[] = {
 *         {.method = "GET", .path = "/examples/hello", .handler = hello, .auth = "public"},
 *     };
 *     SFF_MODULE("examples", routes, NULL, NULL);
 *
 * A handler reads top to bottom like a synchronous program. A call that waits (sff_sleep(),
 * sff_call(), and the backend calls of later versions) suspends the handler's coroutine and the
 * worker serves other requests meanwhile; the call returns when its result is there.
 *
 * Conventions:
 *  - Fallible calls return an int: 0 on success, a negative SFF_E* code on failure.
 *  - Every handle is opaque. Everything the SDK hands out (JSON values, strings) belongs to the
 *    request and stays valid until the request ends: a handler never frees anything it got here.
 *  - A handler returns 0 once it has set a response, or a negative SFF_E* code, which the gateway
 *    turns into the error envelope (with the message set by sff_error(), if any).
 *  - After a cancellation (client gone, route timeout), every waiting call returns SFF_ECANCELED or
 *    SFF_ETIMEDOUT at once: the handler should return.
 */
#ifndef SFF_H
#define SFF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI of this header. A module built for another major is refused; a newer minor only appends
 * to the API table, so a module built for minor M runs on any gateway with minor >= M. */
#define SFF_ABI_MAJOR 1
#define SFF_ABI_MINOR 2

/*
 * Errors: one table gives each code its number, HTTP status, envelope code and default message.
 *   X(NAME, number, http status, envelope code, default message)
 */
#define SFF_ERRNO_MAP(X)                                                                                                           \
    X(BADREQ, -1, 400, "bad_request", "the request is malformed")                                                                  \
    X(INVALID, -2, 400, "validation_failed", "the input failed validation")                                                        \
    X(BADJSON, -3, 400, "invalid_json", "the body is not valid JSON")                                                              \
    X(UNAUTHORIZED, -4, 401, "unauthorized", "a valid token is required")                                                          \
    X(FORBIDDEN, -5, 403, "forbidden", "the token does not allow this")                                                            \
    X(NOTFOUND, -6, 404, "not_found", "no such resource")                                                                          \
    X(METHOD, -7, 405, "method_not_allowed", "the method is not allowed on this path")                                             \
    X(CONFLICT, -8, 409, "conflict", "the resource already exists or changed")                                                     \
    X(TOOLARGE, -9, 413, "payload_too_large", "the body is larger than allowed")                                                   \
    X(MEDIATYPE, -10, 415, "unsupported_media_type", "the body must be JSON or a form")                                            \
    X(RATELIMIT, -11, 429, "rate_limited", "too many requests")                                                                    \
    X(HEADERS, -12, 431, "headers_too_large", "the request headers are too large")                                                 \
    X(INTERNAL, -13, 500, "internal_error", "internal error")                                                                      \
    X(NOMEM, -14, 500, "internal_error", "out of memory")                                                                          \
    X(UNAVAILABLE, -15, 503, "backend_unavailable", "a backend is unavailable")                                                    \
    X(OVERLOADED, -16, 503, "overloaded", "the server is overloaded, try again")                                                   \
    X(TIMEDOUT, -17, 504, "timeout", "the function did not finish in time")                                                        \
    X(CANCELED, -18, 499, "canceled", "the request was canceled")                                                                  \
    X(NOTREADY, -19, 503, "not_ready", "the server is not ready")

typedef enum {
    SFF_OK = 0,
#define SFF__ENUM(name, num, status, code, msg) SFF_E##name = (num),
    SFF_ERRNO_MAP(SFF__ENUM)
#undef SFF__ENUM
} sff_errno_t;

/* Opaque handles. */
typedef struct st_sff_req_t sff_req_t;       /* one call of a function: valid for the handler's run */
typedef struct st_sff_json_t sff_json_t;     /* a JSON value owned by a request */
typedef struct st_sff_future_t sff_future_t; /* a backend call in flight, owned by a request */

/* A route's handler: set a response and return 0, or return a negative SFF_E* code. */
typedef int (*sff_handler_fn)(sff_req_t *r);

/*
 * One route of a module.
 *  method:     "GET", "POST", "PUT", "PATCH", "DELETE" (HEAD is served by GET, OPTIONS by the gateway).
 *  path:       a template: literal segments, ":name" captures one segment, a trailing "*" captures
 *              the rest (as the parameter "*").
 *  auth:       "public", "user" (any valid token) or "role:NAME" (claim "role" or "roles"); NULL means "user".
 *  schema:     the name of a JSON Schema in schemas/json (without ".json") the merged input must
 *              satisfy, or NULL.
 *  timeout_ms: the handler's deadline; 0 means the gateway's default (30 s).
 *  cache_ttl_s: reserved for response caching; 0 disables.
 *  summary:    one line for the OpenAPI description, or NULL.
 */
typedef struct st_sff_route_t {
    const char *method;
    const char *path;
    sff_handler_fn handler;
    const char *auth;
    const char *schema;
    uint32_t timeout_ms;
    uint32_t cache_ttl_s;
    const char *summary;
    /* ABI 1.1: a rate limit per caller (the token's subject, else the client's address): past
     * rate_limit calls in rate_window_s seconds (default 60) the route answers 429 with Retry-After.
     * Needs SFF_REDIS_URL; while Redis is down calls are allowed. 0: no limit. */
    uint32_t rate_limit;
    uint32_t rate_window_s;
    /* ABI 1.1: nonzero takes the request body as bytes of any type, up to SFF_MAX_UPLOAD, for
     * sff_body() (uploads), instead of parsing it as JSON or a form into the input. */
    int raw_body;
} sff_route_t;

struct st_sff_api_t;

/* The descriptor a module exports as the symbol "sff_module". Build it with SFF_MODULE(). */
typedef struct st_sff_module_t {
    uint32_t abi_major;
    uint32_t abi_minor;
    const char *name;
    const sff_route_t *routes;
    size_t nroutes;
    /* called once per worker after loading, before any handler; nonzero refuses the module */
    int (*init)(void);
    /* called once per worker before unloading, after the last request of this generation */
    void (*fini)(void);
    /* where the gateway stores its API table for this module */
    const struct st_sff_api_t **api;
    /* sizeof(sff_route_t) as the module was built: later minors append fields to routes */
    size_t route_size;
} sff_module_t;

/* Options of a cookie set with sff_set_cookie(); zero means "not set". */
typedef struct st_sff_cookie_t {
    int64_t max_age_s;     /* < 0 deletes the cookie; 0 makes a session cookie */
    const char *path;      /* default "/" */
    const char *same_site; /* "Lax" (default), "Strict" or "None" */
    int http_only;         /* nonzero adds HttpOnly */
    int secure;            /* nonzero adds Secure; the gateway also adds it under TLS */
} sff_cookie_t;

/* JSON types, as sff_json_type() reports them. */
typedef enum {
    SFF_JSON_NULL,
    SFF_JSON_BOOL,
    SFF_JSON_INT,
    SFF_JSON_REAL,
    SFF_JSON_STRING,
    SFF_JSON_ARRAY,
    SFF_JSON_OBJECT,
} sff_json_type_t;

typedef enum { SFF_LOG_DEBUG, SFF_LOG_INFO, SFF_LOG_WARN, SFF_LOG_ERROR } sff_log_level_t;

/*
 * The API table. Append-only: new calls go at the end and raise SFF_ABI_MINOR. Modules call it
 * through the inline wrappers below, never directly.
 */
typedef struct st_sff_api_t {
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t size; /* sizeof(sff_api_t) of the gateway */

    /* request */
    sff_json_t *(*input)(sff_req_t *r);
    const char *(*param)(sff_req_t *r, const char *name);
    sff_json_t *(*claims)(sff_req_t *r);
    const char *(*user_id)(sff_req_t *r);
    const char *(*header)(sff_req_t *r, const char *name);
    const char *(*method)(sff_req_t *r);
    const char *(*path)(sff_req_t *r);
    const char *(*request_id)(sff_req_t *r);

    /* response */
    int (*respond)(sff_req_t *r, int status, sff_json_t *body);
    int (*respond_raw)(sff_req_t *r, int status, const char *content_type, const void *body, size_t len);
    int (*set_header)(sff_req_t *r, const char *name, const char *value);
    int (*set_cookie)(sff_req_t *r, const char *name, const char *value, const sff_cookie_t *opts);
    int (*verror)(sff_req_t *r, int code, const char *fmt, va_list ap);
    int (*error_detail)(sff_req_t *r, const char *path, const char *message);

    /* waiting */
    int (*sleep)(sff_req_t *r, uint32_t ms);
    int (*call)(sff_req_t *r, const char *method, const char *path, sff_json_t *input, int *status, sff_json_t **out);

    /* logging */
    void (*vlog)(sff_req_t *r, int level, const char *fmt, va_list ap);

    /* JSON */
    sff_json_t *(*json_null)(sff_req_t *r);
    sff_json_t *(*json_bool)(sff_req_t *r, int v);
    sff_json_t *(*json_int)(sff_req_t *r, int64_t v);
    sff_json_t *(*json_real)(sff_req_t *r, double v);
    sff_json_t *(*json_string)(sff_req_t *r, const char *s);
    sff_json_t *(*json_stringn)(sff_req_t *r, const char *s, size_t len);
    sff_json_t *(*json_object)(sff_req_t *r);
    sff_json_t *(*json_array)(sff_req_t *r);
    sff_json_t *(*json_parse)(sff_req_t *r, const char *text, size_t len);
    char *(*json_dump)(sff_req_t *r, const sff_json_t *v);
    int (*json_type)(const sff_json_t *v);
    int (*json_set)(sff_json_t *obj, const char *key, sff_json_t *v);
    int (*json_append)(sff_json_t *arr, sff_json_t *v);
    sff_json_t *(*json_get)(const sff_json_t *obj, const char *key);
    sff_json_t *(*json_at)(const sff_json_t *arr, size_t i);
    size_t (*json_size)(const sff_json_t *v);
    const char *(*json_str)(const sff_json_t *v);
    int64_t (*json_int_value)(const sff_json_t *v);
    double (*json_number)(const sff_json_t *v);
    int (*json_test_true)(const sff_json_t *v);
    const char *(*json_key_at)(const sff_json_t *obj, size_t i);
    sff_json_t *(*json_value_at)(const sff_json_t *obj, size_t i);
    sff_json_t *(*json_copy)(sff_req_t *r, const sff_json_t *v);
    int (*json_del)(sff_json_t *obj, const char *key);

    /* ABI 1.1: backend calls */
    int (*await_all)(sff_req_t *r, sff_future_t *const *futures, size_t n, uint32_t timeout_ms);
    sff_json_t *(*future_value)(const sff_future_t *f);
    int (*future_result)(const sff_future_t *f);
    const char *(*future_error)(const sff_future_t *f);
    sff_future_t *(*redis_send)(sff_req_t *r, size_t argc, const char *const *argv, const size_t *argvlen);
    int (*cache_get)(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, sff_json_t **value);
    int (*cache_set)(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, sff_json_t *value, uint32_t ttl_s);
    int (*cache_invalidate)(sff_req_t *r, const char *const *tags, size_t ntags);
    int (*publish)(sff_req_t *r, const char *channel, const char *message, size_t len);
    int (*rate_limit)(sff_req_t *r, const char *key, uint32_t limit, uint32_t window_s);
    sff_future_t *(*db_send)(sff_req_t *r, int shape, const char *sql, sff_json_t *params);
    int (*db_begin)(sff_req_t *r);
    int (*db_end)(sff_req_t *r, int commit);
    sff_future_t *(*storage_send)(sff_req_t *r, int op, const char *key, const char *content_type, const void *data, size_t len,
                                  size_t limit);
    const void *(*future_bytes)(const sff_future_t *f, size_t *len);
    int (*storage_presign)(sff_req_t *r, const char *method, const char *key, uint32_t expires_s, const char **url);
    const void *(*body)(sff_req_t *r, size_t *len, const char **content_type);
    int (*token_sign)(sff_req_t *r, sff_json_t *claims, uint32_t ttl_s, const char **token);
    int (*random_token)(sff_req_t *r, size_t bytes, const char **out);
    const char *(*client_ip)(sff_req_t *r);
    int (*password_hash)(sff_req_t *r, const char *password, const char **hash);
    int (*password_verify)(sff_req_t *r, const char *hash, const char *password, int *match);

    /* ABI 1.2 */
    int (*cache_get_text)(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, const char **text, size_t *len);
} sff_api_t;

/* Set by the gateway when it loads the module; used by the wrappers below. */
extern const sff_api_t *sff__api __attribute__((visibility("hidden")));

/*
 * SFF_MODULE(name, routes, init, fini) defines the module's descriptor and API slot. Use it once
 * per module, in one file, after the route table.
 */
#define SFF_MODULE(NAME, ROUTES, INIT, FINI)                                                                                       \
    const sff_api_t *sff__api __attribute__((visibility("hidden")));                                                               \
    __attribute__((visibility("default"))) const sff_module_t sff_module = {                                                       \
        SFF_ABI_MAJOR, SFF_ABI_MINOR, (NAME),    (ROUTES),           sizeof(ROUTES) / sizeof((ROUTES)[0]),                         \
        (INIT),        (FINI),        &sff__api, sizeof(sff_route_t)}

/* ---- the request ------------------------------------------------------------------------------ */

/* The merged input: path parameters, then query parameters, then the JSON (or form) body's
 * members, in one object; a later source overrides an earlier one only where the body has the same
 * key. Borrowed, valid until the request ends. Never NULL. */
static inline sff_json_t *sff_input(sff_req_t *r)
{
    return sff__api->input(r);
}

/* The raw value of a path parameter (":id" is "id", a trailing "*" is "*"), or NULL. Borrowed. */
static inline const char *sff_param(sff_req_t *r, const char *name)
{
    return sff__api->param(r, name);
}

/* The verified JWT claims, or NULL for an anonymous call of a public route. Borrowed. */
static inline sff_json_t *sff_claims(sff_req_t *r)
{
    return sff__api->claims(r);
}

/* The "sub" claim, or NULL. Borrowed, valid until the request ends. */
static inline const char *sff_user_id(sff_req_t *r)
{
    return sff__api->user_id(r);
}

/* A request header by case-insensitive name, or NULL. Borrowed. */
static inline const char *sff_header(sff_req_t *r, const char *name)
{
    return sff__api->header(r, name);
}

/* The request method ("GET", ...) and path (without the query). Borrowed. */
static inline const char *sff_method(sff_req_t *r)
{
    return sff__api->method(r);
}
static inline const char *sff_path(sff_req_t *r)
{
    return sff__api->path(r);
}

/* The request id the gateway sends back as x-request-id. Borrowed. */
static inline const char *sff_request_id(sff_req_t *r)
{
    return sff__api->request_id(r);
}

/* ---- the response ----------------------------------------------------------------------------- */

/* Sets the response: status and a JSON body (NULL for no body, as with 204). Returns 0. */
static inline int sff_respond(sff_req_t *r, int status, sff_json_t *body)
{
    return sff__api->respond(r, status, body);
}

/* Sets a response with a body of any type; the bytes are copied. Returns 0. */
static inline int sff_respond_raw(sff_req_t *r, int status, const char *content_type, const void *body, size_t len)
{
    return sff__api->respond_raw(r, status, content_type, body, len);
}

/* The content type of every JSON response. */
#define SFF_JSON_TYPE "application/json; charset=utf-8"

/* Sets a response from JSON text already serialized (len bytes, copied), such as a cache hit of
 * sff_cache_get_text(). Returns 0. */
static inline int sff_respond_json_text(sff_req_t *r, int status, const char *text, size_t len)
{
    return sff_respond_raw(r, status, SFF_JSON_TYPE, text, len);
}

/* Adds a response header. Names and values are checked: SFF_EBADREQ for CR, LF or NUL. */
static inline int sff_set_header(sff_req_t *r, const char *name, const char *value)
{
    return sff__api->set_header(r, name, value);
}

/* Adds a Set-Cookie header; opts may be NULL (a session cookie, Path=/, SameSite=Lax). */
static inline int sff_set_cookie(sff_req_t *r, const char *name, const char *value, const sff_cookie_t *opts)
{
    return sff__api->set_cookie(r, name, value, opts);
}

/* Records the error the envelope will carry and returns code, so that a handler can write
 * `return sff_error(r, SFF_ENOTFOUND, "no todo %s", id);`. fmt may be NULL for the default message. */
static inline int sff_error(sff_req_t *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int sff_error(sff_req_t *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int ret = sff__api->verror(r, code, fmt, ap);
    va_end(ap);
    return ret;
}

/* Adds an entry to the envelope's "details": the JSON path of the offending input ("/title") and
 * what is wrong with it. Returns 0. */
static inline int sff_error_detail(sff_req_t *r, const char *path, const char *message)
{
    return sff__api->error_detail(r, path, message);
}

/* ---- waiting ---------------------------------------------------------------------------------- */

/* Suspends the handler for ms milliseconds without blocking the worker. Returns 0, or
 * SFF_ECANCELED / SFF_ETIMEDOUT when the request was cancelled meanwhile. */
static inline int sff_sleep(sff_req_t *r, uint32_t ms)
{
    return sff__api->sleep(r, ms);
}

/*
 * Calls another function in-process, as the same user, without HTTP: method and path are routed
 * like a request, input is its merged input (NULL for none) and is checked against the route's
 * schema, the route's auth policy applies to the caller's claims. On return, *status holds the
 * HTTP status and *out the response body (or the error envelope), owned by r. Returns 0 when the
 * call ran (whatever its status), or a negative code when it could not run.
 */
static inline int sff_call(sff_req_t *r, const char *method, const char *path, sff_json_t *input, int *status, sff_json_t **out)
{
    return sff__api->call(r, method, path, input, status, out);
}

/* ---- logging ---------------------------------------------------------------------------------- */

/* Writes a JSON log line with the request id; never log secrets or tokens. */
static inline void sff_log(sff_req_t *r, sff_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void sff_log(sff_req_t *r, sff_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sff__api->vlog(r, (int)level, fmt, ap);
    va_end(ap);
}

/* ---- JSON ------------------------------------------------------------------------------------- */
/*
 * Every value a constructor returns is owned by the request and freed when it ends. Putting a value
 * into an object or array does not move it: the same value may be put in several places, and stays
 * valid. Constructors return NULL only when memory runs out; setters then return SFF_ENOMEM.
 */
static inline sff_json_t *sff_json_null(sff_req_t *r)
{
    return sff__api->json_null(r);
}
static inline sff_json_t *sff_json_bool(sff_req_t *r, int v)
{
    return sff__api->json_bool(r, v);
}
static inline sff_json_t *sff_json_int(sff_req_t *r, int64_t v)
{
    return sff__api->json_int(r, v);
}
static inline sff_json_t *sff_json_real(sff_req_t *r, double v)
{
    return sff__api->json_real(r, v);
}
/* s must be valid UTF-8, else NULL. */
static inline sff_json_t *sff_json_string(sff_req_t *r, const char *s)
{
    return sff__api->json_string(r, s);
}
static inline sff_json_t *sff_json_stringn(sff_req_t *r, const char *s, size_t len)
{
    return sff__api->json_stringn(r, s, len);
}
static inline sff_json_t *sff_json_object(sff_req_t *r)
{
    return sff__api->json_object(r);
}
static inline sff_json_t *sff_json_array(sff_req_t *r)
{
    return sff__api->json_array(r);
}
/* Parses text with the gateway's limits (nesting, duplicate keys, UTF-8); NULL if invalid. */
static inline sff_json_t *sff_json_parse(sff_req_t *r, const char *text, size_t len)
{
    return sff__api->json_parse(r, text, len);
}
/* Compact JSON text of v, owned by r. */
static inline char *sff_json_dump(sff_req_t *r, const sff_json_t *v)
{
    return sff__api->json_dump(r, v);
}
/* One of sff_json_type_t; a NULL v is SFF_JSON_NULL. */
static inline int sff_json_type(const sff_json_t *v)
{
    return sff__api->json_type(v);
}
static inline int sff_json_set(sff_json_t *obj, const char *key, sff_json_t *v)
{
    return sff__api->json_set(obj, key, v);
}
static inline int sff_json_del(sff_json_t *obj, const char *key)
{
    return sff__api->json_del(obj, key);
}
static inline int sff_json_append(sff_json_t *arr, sff_json_t *v)
{
    return sff__api->json_append(arr, v);
}
/* A member of an object, or NULL. Borrowed: valid while obj holds it. */
static inline sff_json_t *sff_json_get(const sff_json_t *obj, const char *key)
{
    return sff__api->json_get(obj, key);
}
/* An element of an array, or NULL. Borrowed. */
static inline sff_json_t *sff_json_at(const sff_json_t *arr, size_t i)
{
    return sff__api->json_at(arr, i);
}
/* Members of an object or elements of an array; 0 for anything else. */
static inline size_t sff_json_size(const sff_json_t *v)
{
    return sff__api->json_size(v);
}
/* Iterates an object: the i-th key and value in insertion order, or NULL past the end. */
static inline const char *sff_json_key_at(const sff_json_t *obj, size_t i)
{
    return sff__api->json_key_at(obj, i);
}
static inline sff_json_t *sff_json_value_at(const sff_json_t *obj, size_t i)
{
    return sff__api->json_value_at(obj, i);
}
/* The string of a string value, else NULL. Borrowed. */
static inline const char *sff_json_str(const sff_json_t *v)
{
    return sff__api->json_str(v);
}
/* The value of an integer (a real is truncated), else 0. */
static inline int64_t sff_json_int_value(const sff_json_t *v)
{
    return sff__api->json_int_value(v);
}
/* The value of an integer or real, else 0.0. */
static inline double sff_json_number(const sff_json_t *v)
{
    return sff__api->json_number(v);
}
/* Nonzero for the value true. */
static inline int sff_json_is_true(const sff_json_t *v)
{
    return sff__api->json_test_true(v);
}
/* A deep copy, owned by r. */
static inline sff_json_t *sff_json_copy(sff_req_t *r, const sff_json_t *v)
{
    return sff__api->json_copy(r, v);
}

/* ---- backend calls: one at a time, or several at once ----------------------------------------- */
/*
 * A call to a backend (Redis here; Postgres and object storage alike) is started by a *_send()
 * function that returns a future at once, and waited for with sff_await() or, for several calls
 * at once, sff_await_all(): the calls run concurrently and the handler resumes when all are done,
 * the first fails, or the timeout passes. The plain functions (sff_redis(), ...) are a send and an
 * await in one. Futures belong to the request; one still pending when the handler returns is
 * cancelled. While a backend is down its calls fail fast with SFF_EUNAVAILABLE (a 503).
 */

/* Waits for several futures; timeout_ms 0 means the route's timeout only. Returns 0 when all
 * succeeded, else the first failure's code (SFF_ETIMEDOUT at the timeout); the others are then
 * cancelled. A NULL future (out of memory) counts as SFF_ENOMEM. */
static inline int sff_await_all(sff_req_t *r, sff_future_t *const *futures, size_t n, uint32_t timeout_ms)
{
    return sff__api->await_all(r, futures, n, timeout_ms);
}
/* Waits for one future; returns its result. */
static inline int sff_await(sff_req_t *r, sff_future_t *f)
{
    return sff__api->await_all(r, &f, 1, 0);
}
/* The value of a future that succeeded (a Redis reply, ...), borrowed until the request ends; NULL
 * while it is pending or when it failed. */
static inline sff_json_t *sff_future_value(const sff_future_t *f)
{
    return sff__api->future_value(f);
}
/* 0 or the SFF_E* code of a finished future; 1 while it is pending. */
static inline int sff_future_result(const sff_future_t *f)
{
    return sff__api->future_result(f);
}
/* The backend's own message about a failure, for sff_log() (never for clients: it may quote SQL
 * or keys), or NULL. */
static inline const char *sff_future_error(const sff_future_t *f)
{
    return sff__api->future_error(f);
}

/* ---- Postgres ---------------------------------------------------------------------------------- */
/*
 * SQL runs on the worker's connection pool (SFF_PG_URL), pipelined with the other requests'
 * queries. Parameters are bound to $1, $2... from params, a JSON array (strings, numbers, booleans,
 * null; objects and arrays go as JSON text), or NULL for none: values are never put into the SQL
 * text. Rows come back as JSON with their types kept (int8 beyond 2^53 and numeric as strings,
 * timestamptz as ISO 8601 UTC, json/jsonb inline, arrays as arrays, NULL as null). Every statement
 * sees the caller's claims: current_setting('request.jwt.claim.sub', true) and
 * 'request.jwt.claims', for row-level security policies. Errors: a unique or foreign key violation
 * is SFF_ECONFLICT, bad data SFF_EINVALID, a row-level security refusal SFF_EFORBIDDEN, a lost
 * database SFF_EUNAVAILABLE; Postgres's own message only goes to sff_future_error(), for logs.
 */
typedef enum { SFF_DB_ROWS, SFF_DB_ONE, SFF_DB_EXEC } sff_db_shape_t;

/* Sends one statement. The future's value: SFF_DB_ROWS an array of row objects, SFF_DB_ONE the
 * first row or JSON null, SFF_DB_EXEC the number of rows affected. */
static inline sff_future_t *sff_db_send(sff_req_t *r, sff_db_shape_t shape, const char *sql, sff_json_t *params)
{
    return sff__api->db_send(r, (int)shape, sql, params);
}
static inline int sff_db__wait(sff_req_t *r, sff_future_t *f, sff_json_t **out)
{
    int ret = sff_await(r, f);
    if (out != NULL)
        *out = ret == 0 ? sff_future_value(f) : NULL;
    return ret;
}
/* The rows of a query (an array, borrowed until the request ends). */
static inline int sff_db_query(sff_req_t *r, sff_json_t **rows, const char *sql, sff_json_t *params)
{
    return sff_db__wait(r, sff_db_send(r, SFF_DB_ROWS, sql, params), rows);
}
/* The first row (an object), or NULL when there is none. */
static inline int sff_db_one(sff_req_t *r, sff_json_t **row, const char *sql, sff_json_t *params)
{
    sff_json_t *v;
    int ret = sff_db__wait(r, sff_db_send(r, SFF_DB_ONE, sql, params), &v);
    if (row != NULL)
        *row = ret == 0 && sff_json_type(v) == SFF_JSON_OBJECT ? v : NULL;
    return ret;
}
/* Runs a statement; *affected (may be NULL) gets the number of rows it changed. */
static inline int sff_db_exec(sff_req_t *r, int64_t *affected, const char *sql, sff_json_t *params)
{
    sff_json_t *v;
    int ret = sff_db__wait(r, sff_db_send(r, SFF_DB_EXEC, sql, params), &v);
    if (affected != NULL)
        *affected = ret == 0 ? sff_json_int_value(v) : 0;
    return ret;
}
/* A transaction: after sff_db_begin() every statement of the request (and of the functions it calls
 * in-process) runs on one connection until sff_db_commit() or sff_db_rollback(). A handler that
 * returns without committing rolls back. */
static inline int sff_db_begin(sff_req_t *r)
{
    return sff__api->db_begin(r);
}
static inline int sff_db_commit(sff_req_t *r)
{
    return sff__api->db_end(r, 1);
}
static inline int sff_db_rollback(sff_req_t *r)
{
    return sff__api->db_end(r, 0);
}

/* ---- object storage --------------------------------------------------------------------------- */
/*
 * Objects in SFF_STORAGE_URL: a local directory (file:///path, the default of `make run`) or an S3
 * bucket (s3://bucket?endpoint=...&region=...). Keys are 1 to 1024 bytes of UTF-8 without control
 * characters, a leading "/" or a "." or ".." segment (else SFF_EBADREQ). A missing object is
 * SFF_ENOTFOUND. Object information is JSON: {"size", "etag", "content_type", "modified"} (modified
 * in Unix seconds).
 */
typedef enum { SFF_STORAGE_PUT, SFF_STORAGE_GET, SFF_STORAGE_HEAD, SFF_STORAGE_DELETE, SFF_STORAGE_LIST } sff_storage_op_t;

/* Starts a storage call. PUT: data (len bytes, copied) under key as content_type (NULL:
 * application/octet-stream); GET: the object (its bytes through sff_future_bytes(), its information
 * as the value); HEAD: the information; DELETE (a missing key is fine); LIST: key is a prefix
 * (NULL: all), data a page token from a previous page (NULL: the first), limit the page size (0:
 * 1000); the value is {"items": [{"key", "size", "etag", "modified"}...], "next": token or null}. */
static inline sff_future_t *sff_storage_send(sff_req_t *r, sff_storage_op_t op, const char *key, const char *content_type,
                                             const void *data, size_t len, size_t limit)
{
    return sff__api->storage_send(r, (int)op, key, content_type, data, len, limit);
}
/* The bytes a GET future brought (borrowed until the request ends; NUL-terminated for convenience),
 * or NULL. */
static inline const void *sff_future_bytes(const sff_future_t *f, size_t *len)
{
    return sff__api->future_bytes(f, len);
}
static inline int sff_storage_put(sff_req_t *r, const char *key, const char *content_type, const void *data, size_t len)
{
    return sff_await(r, sff_storage_send(r, SFF_STORAGE_PUT, key, content_type, data, len, 0));
}
/* *data and *len get the object's bytes, *info (may be NULL) its information. */
static inline int sff_storage_get(sff_req_t *r, const char *key, const void **data, size_t *len, sff_json_t **info)
{
    sff_future_t *f = sff_storage_send(r, SFF_STORAGE_GET, key, NULL, NULL, 0, 0);
    int ret = sff_await(r, f);
    *data = ret == 0 ? sff_future_bytes(f, len) : NULL;
    if (info != NULL)
        *info = ret == 0 ? sff_future_value(f) : NULL;
    return ret;
}
static inline int sff_storage_head(sff_req_t *r, const char *key, sff_json_t **info)
{
    sff_future_t *f = sff_storage_send(r, SFF_STORAGE_HEAD, key, NULL, NULL, 0, 0);
    int ret = sff_await(r, f);
    *info = ret == 0 ? sff_future_value(f) : NULL;
    return ret;
}
static inline int sff_storage_delete(sff_req_t *r, const char *key)
{
    return sff_await(r, sff_storage_send(r, SFF_STORAGE_DELETE, key, NULL, NULL, 0, 0));
}
static inline int sff_storage_list(sff_req_t *r, const char *prefix, const char *token, size_t limit, sff_json_t **page)
{
    sff_future_t *f = sff_storage_send(r, SFF_STORAGE_LIST, prefix, NULL, token, token != NULL ? 1 : 0, limit);
    int ret = sff_await(r, f);
    *page = ret == 0 ? sff_future_value(f) : NULL;
    return ret;
}
/* A presigned URL for "GET" or "PUT" of key, valid expires_s seconds (S3 only: the file driver has
 * none, SFF_EINTERNAL). *url is borrowed until the request ends. */
static inline int sff_storage_presign(sff_req_t *r, const char *method, const char *key, uint32_t expires_s, const char **url)
{
    return sff__api->storage_presign(r, method, key, expires_s, url);
}

/* The raw request body of a route with raw_body set (borrowed until the request ends; NULL when
 * there is none), its length and Content-Type (may be NULL). */
static inline const void *sff_body(sff_req_t *r, size_t *len, const char **content_type)
{
    return sff__api->body(r, len, content_type);
}

/* ---- tokens and identity ---------------------------------------------------------------------- */

/* Signs a session token (HS256 with SFF_JWT_SECRET) for claims (an object: "sub", "role"...): "iat"
 * and "exp" (now + ttl_s) are set, and "iss"/"aud" when the gateway checks them. *token is borrowed
 * until the request ends. SFF_EINTERNAL when no secret is configured. */
static inline int sff_token_sign(sff_req_t *r, sff_json_t *claims, uint32_t ttl_s, const char **token)
{
    return sff__api->token_sign(r, claims, ttl_s, token);
}
/* bytes (16..64) of cryptographic randomness as base64url text (refresh tokens, ids). Borrowed. */
static inline int sff_random_token(sff_req_t *r, size_t bytes, const char **out)
{
    return sff__api->random_token(r, bytes, out);
}
/* The client's address ("" when unknown). Borrowed. */
static inline const char *sff_client_ip(sff_req_t *r)
{
    return sff__api->client_ip(r);
}

/* Hashes a password with argon2id, off the event loop (a hash takes tens of milliseconds and
 * 64 MiB): *hash is the encoded string to store, borrowed until the request ends. A flood gets
 * SFF_EOVERLOADED (503) or, from one client, SFF_ERATELIMIT (429), with Retry-After set. */
static inline int sff_password_hash(sff_req_t *r, const char *password, const char **hash)
{
    return sff__api->password_hash(r, password, hash);
}
/* Checks a password against a stored hash; *match is 1 when it fits. hash NULL (an unknown user)
 * costs as much as a real check and never matches, so timing does not tell which users exist. */
static inline int sff_password_verify(sff_req_t *r, const char *hash, const char *password, int *match)
{
    return sff__api->password_verify(r, hash, password, match);
}

/* ---- Redis ------------------------------------------------------------------------------------ */

/* Sends one command, binary-safe: argc arguments, argvlen[i] bytes each (argvlen NULL: strlen).
 * The reply becomes JSON: strings, integers, null, arrays; bytes that are not UTF-8 come as
 * {"base64": "..."}. An error reply fails the future (SFF_EINTERNAL). Subscriptions, MULTI and
 * blocking commands are refused (SFF_EBADREQ): the connection is shared. */
static inline sff_future_t *sff_redis_send(sff_req_t *r, size_t argc, const char *const *argv, const size_t *argvlen)
{
    return sff__api->redis_send(r, argc, argv, argvlen);
}
/* One command, waited for; *reply (may be NULL) gets the reply, borrowed until the request ends. */
static inline int sff_redis(sff_req_t *r, sff_json_t **reply, size_t argc, const char *const *argv)
{
    sff_future_t *f = sff_redis_send(r, argc, argv, NULL);
    int ret = sff_await(r, f);
    if (reply != NULL)
        *reply = ret == 0 ? sff_future_value(f) : NULL;
    return ret;
}

/*
 * A JSON cache in Redis. sff_cache_get() sets *value to the cached value (borrowed) or NULL on a
 * miss, and returns 0 either way (also while Redis is down: that is a miss). sff_cache_set() stores
 * a value read after that miss; tags name what the value depends on ("todos:42"), and
 * sff_cache_invalidate() of a tag makes every entry with it miss, so a write is visible on the next
 * read. A set whose tags were invalidated since its get is skipped, so a value read before a write
 * is never cached as if read after it. Pass a key's tags in the same order to its get and set.
 */
static inline int sff_cache_get(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, sff_json_t **value)
{
    return sff__api->cache_get(r, key, tags, ntags, value);
}
static inline int sff_cache_set(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, sff_json_t *value,
                                uint32_t ttl_s)
{
    return sff__api->cache_set(r, key, tags, ntags, value, ttl_s);
}
/* sff_cache_get() without the parse: *text is the cached JSON as stored (*len bytes and a NUL,
 * borrowed until the request ends) on a hit, NULL on a miss. Answer a hit with
 * sff_respond_json_text(): the value is neither parsed nor serialized again, which is most of the
 * work of a hit. The text is what sff_cache_set() stored, so the bytes are those sff_respond() would
 * have sent. */
static inline int sff_cache_get_text(sff_req_t *r, const char *key, const char *const *tags, size_t ntags, const char **text,
                                     size_t *len)
{
    return sff__api->cache_get_text(r, key, tags, ntags, text, len);
}
/* Call after the write is committed and before answering. Returns 0, or SFF_EUNAVAILABLE when Redis
 * may not have got it (the cache is then emptied as soon as Redis is back). */
static inline int sff_cache_invalidate(sff_req_t *r, const char *const *tags, size_t ntags)
{
    return sff__api->cache_invalidate(r, tags, ntags);
}
/* Publishes message (len bytes) on a Redis channel. */
static inline int sff_publish(sff_req_t *r, const char *channel, const char *message, size_t len)
{
    return sff__api->publish(r, channel, message, len);
}
/* Counts one hit of key in a fixed window; past limit hits per window_s seconds returns
 * SFF_ERATELIMIT (a 429, with Retry-After set on the response). While Redis is down the hit is
 * allowed (fails open). */
static inline int sff_rate_limit(sff_req_t *r, const char *key, uint32_t limit, uint32_t window_s)
{
    return sff__api->rate_limit(r, key, limit, window_s);
}

/* A member's string ("" if absent or not a string). Borrowed. */
static inline const char *sff_json_get_str(const sff_json_t *obj, const char *key)
{
    const char *s = sff_json_str(sff_json_get(obj, key));
    return s != NULL ? s : "";
}

#ifdef __cplusplus
}
#endif

#endif
