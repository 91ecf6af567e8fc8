#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "auth.h"
#include "builtin.h"
#include "call.h"
#include "error.h"
#include "jsonout.h"
#include "guard.h"
#include "http.h"
#include "input.h"
#include "jsonin.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "timer.h"

typedef struct st_sff_handler_t {
    h2o_handler_t super;
    sff_worker_t *w;
} sff_handler_t;

typedef struct st_sff_logger_t {
    h2o_logger_t super;
    sff_worker_t *w;
} sff_logger_t;

/* Request facts for the access log and metrics ride in req->env (a vector of name, value pairs
 * that only h2o's fastcgi handler reads otherwise). */
#define ENV_RID "sff.rid"
#define ENV_ROUTE "sff.route"
#define ENV_SUB "sff.sub"
#define ENV_OWN "sff.own" /* the response is sff's, not an error page h2o made */

static h2o_iovec_t env_get(h2o_req_t *req, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i + 1 < req->env.size; i += 2)
        if (req->env.entries[i].len == nlen && memcmp(req->env.entries[i].base, name, nlen) == 0)
            return req->env.entries[i + 1];
    return h2o_iovec_init(NULL, 0);
}

static void env_set(h2o_req_t *req, const char *name, const char *value, size_t len)
{
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = h2o_iovec_init(name, strlen(name));
    req->env.entries[req->env.size++] = h2o_strdup(&req->pool, value, len);
}

const char *sff_http_request_id(h2o_req_t *req)
{
    h2o_iovec_t v = env_get(req, ENV_RID);
    return v.base != NULL ? v.base : "";
}

int sff_http_is_tls(h2o_req_t *req)
{
    return req->scheme == &H2O_URL_SCHEME_HTTPS;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 499:
        return "Client Closed Request";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "";
}

json_t *sff_http_envelope(int code, const char *message, json_t *details, const char *request_id)
{
    return json_pack("{s:{s:s, s:s, s:O, s:s}}", "error", "code", sff_error_code(code), "message",
                     message != NULL ? message : sff_strerror(code), "details", details != NULL ? details : json_array(),
                     "request_id", request_id != NULL ? request_id : "");
}

static void add_headers(h2o_req_t *req, const h2o_iovec_t *headers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const h2o_iovec_t *name = &headers[2 * i], *value = &headers[2 * i + 1];
        h2o_add_header_by_str(&req->pool, &req->res.headers, name->base, name->len, 1, NULL, value->base, value->len);
    }
}

static void free_slot(void *p)
{
    free(*(char **)p);
}

static void send_body(h2o_req_t *req, int status, const char *type, h2o_iovec_t body)
{
    static h2o_generator_t generator = {NULL, NULL};
    env_set(req, ENV_OWN, "1", 1);
    req->res.status = status;
    req->res.reason = reason(status);
    if (type != NULL && status != 204 && status != 304)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    req->res.content_length = body.len;
    h2o_start_response(req, &generator);
    /* h2o leaves HEAD to the handler: the length of the GET's body, and no body */
    int head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_send(req, &body, body.len != 0 && !head ? 1 : 0, H2O_SEND_STATE_FINAL);
}

void sff_http_send_json(h2o_req_t *req, int status, json_t *body, const h2o_iovec_t *headers, size_t nheaders)
{
    add_headers(req, headers, nheaders);
    if (body == NULL || status == 204 || status == 304) {
        send_body(req, status, NULL, h2o_iovec_init(NULL, 0));
        return;
    }
    size_t len;
    char *text = sff_jsonout_dump(body, &len);
    if (text == NULL) {
        send_body(req, 500, SFF_JSON_TYPE,
                  h2o_iovec_init(H2O_STRLIT("{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}")));
        return;
    }
    *(char **)h2o_mem_alloc_shared(&req->pool, sizeof(char *), free_slot) = text;
    req->compress_hint = H2O_COMPRESS_HINT_ENABLE;
    send_body(req, status, SFF_JSON_TYPE, h2o_iovec_init(text, len));
}

void sff_http_send_raw(h2o_req_t *req, int status, const char *content_type, const void *body, size_t len,
                       const h2o_iovec_t *headers, size_t nheaders)
{
    add_headers(req, headers, nheaders);
    h2o_iovec_t copy = h2o_strdup(&req->pool, body, len);
    send_body(req, status, content_type, copy);
}

void sff_http_send_error(h2o_req_t *req, int code, const char *message, json_t *details)
{
    json_t *env = sff_http_envelope(code, message, details, sff_http_request_id(req));
    sff_http_send_json(req, sff_error_status(code), env, NULL, 0);
    json_decref(env);
}

/* ---- request id ------------------------------------------------------------------------------- */

static int request_id_ok(h2o_iovec_t v)
{
    if (v.len == 0 || v.len > 64)
        return 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
              c == ':'))
            return 0;
    }
    return 1;
}

/* A new id: 64 random bits from a per-process generator seeded from the kernel, and a counter. */
static void make_request_id(char *buf, size_t size)
{
    static uint64_t state, counter;
    if (state == 0) {
        FILE *f = fopen("/dev/urandom", "rb");
        if (f == NULL || fread(&state, sizeof(state), 1, f) != 1)
            state = sff_now_us() ^ (uint64_t)getpid() << 32;
        if (f != NULL)
            fclose(f);
        state |= 1;
    }
    /* xorshift64* */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    uint64_t x = state * 0x2545F4914F6CDD1DULL;
    snprintf(buf, size, "%016llx%06llx", (unsigned long long)x, (unsigned long long)(++counter & 0xffffff));
}

static void set_request_id(h2o_req_t *req)
{
    char id[72];
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    h2o_iovec_t v;
    if (i >= 0 && request_id_ok(req->headers.entries[i].value)) {
        v = req->headers.entries[i].value;
    } else {
        make_request_id(id, sizeof(id));
        v = h2o_iovec_init(id, strlen(id));
    }
    env_set(req, ENV_RID, v.base, v.len);
    h2o_iovec_t stored = env_get(req, ENV_RID);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, stored.base, stored.len);
}

/* ---- CORS ------------------------------------------------------------------------------------- */

static h2o_iovec_t header_value(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

/* For the names h2o 2.2.5 has no token for; name must be lower-case. */
static h2o_iovec_t header_value_str(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

static void add_header_str(h2o_req_t *req, const char *name, const char *value, size_t len)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value, len);
}

/* Adds the CORS response headers when the request's Origin is allowed; returns 1 then. */
static int add_cors(sff_worker_t *w, h2o_req_t *req)
{
    h2o_iovec_t origin = header_value_str(req, "origin");
    if (origin.base == NULL || !sff_config_origin_allowed(w->config, origin.base, origin.len))
        return 0;
    /* An allowed origin is echoed (never "*") so that credentials (the session cookie) work. */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL, origin.base, origin.len);
    add_header_str(req, "access-control-allow-credentials", H2O_STRLIT("true"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-expose-headers"), 0, NULL,
                          H2O_STRLIT("x-request-id, www-authenticate, retry-after"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
    return 1;
}

static int token_chars_only(h2o_iovec_t v)
{
    for (size_t i = 0; i < v.len; i++) {
        char c = v.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == ',' ||
              c == ' '))
            return 0;
    }
    return 1;
}

static void send_preflight(h2o_req_t *req, unsigned allowed)
{
    char allow[128];
    sff_router_allow_string(allowed, allow, sizeof(allow));
    add_header_str(req, "access-control-allow-methods", allow, strlen(allow));
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("access-control-request-headers"), -1);
    if (i >= 0 && token_chars_only(req->headers.entries[i].value)) {
        h2o_iovec_t v = req->headers.entries[i].value;
        add_header_str(req, "access-control-allow-headers", v.base, v.len);
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-max-age"), 0, NULL, H2O_STRLIT("600"));
    sff_http_send_json(req, 204, NULL, NULL, 0);
}

/* ---- the request path ------------------------------------------------------------------------- */

static void send_unauthorized(h2o_req_t *req, const char *why, int invalid)
{
    char value[160];
    if (invalid)
        snprintf(value, sizeof(value), "Bearer realm=\"sff\", error=\"invalid_token\", error_description=\"%s\"", why);
    else
        snprintf(value, sizeof(value), "Bearer realm=\"sff\"");
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, value, strlen(value));
    sff_http_send_error(req, SFF_EUNAUTHORIZED, invalid ? "the token is not valid" : "a valid token is required", NULL);
}

static int content_type_is(h2o_iovec_t ct, const char *type)
{
    size_t n = strlen(type);
    return ct.len >= n && strncasecmp(ct.base, type, n) == 0 && (ct.len == n || ct.base[n] == ';' || ct.base[n] == ' ');
}

static int is_json_type(h2o_iovec_t ct)
{
    if (content_type_is(ct, "application/json"))
        return 1;
    /* application/<anything>+json, e.g. application/merge-patch+json */
    size_t end = 0;
    while (end < ct.len && ct.base[end] != ';' && ct.base[end] != ' ')
        end++;
    return end > 17 && strncasecmp(ct.base, "application/", 12) == 0 && strncasecmp(ct.base + end - 5, "+json", 5) == 0;
}

/* Parses the request body into an object (or NULL for none). Returns 0 or sends the error. */
static int read_body(sff_worker_t *w, h2o_req_t *req, const sff_route_entry_t *route, json_t **body)
{
    char err[160];
    *body = NULL;
    if (req->entity.base == NULL || req->entity.len == 0)
        return 0;
    if (route->route.raw_body) {
        /* an upload: the function takes the bytes as they are (sff_body()) */
        if (req->entity.len > w->config->max_upload) {
            sff_http_send_error(req, SFF_ETOOLARGE, "the upload is larger than SFF_MAX_UPLOAD", NULL);
            return -1;
        }
        return 0;
    }
    if (req->entity.len > w->config->max_body) {
        sff_http_send_error(req, SFF_ETOOLARGE, NULL, NULL);
        return -1;
    }
    h2o_iovec_t ct = header_value(req, H2O_TOKEN_CONTENT_TYPE);
    if (is_json_type(ct)) {
        json_t *v = sff_jsonin_parse(req->entity.base, req->entity.len, w->config->json_max_depth, err, sizeof(err));
        if (v == NULL) {
            sff_http_send_error(req, SFF_EBADJSON, err, NULL);
            return -1;
        }
        if (!json_is_object(v)) {
            json_decref(v);
            sff_http_send_error(req, SFF_EBADJSON, "the body must be a JSON object", NULL);
            return -1;
        }
        *body = v;
        return 0;
    }
    if (content_type_is(ct, "application/x-www-form-urlencoded")) {
        json_t *v = json_object();
        if (sff_jsonin_parse_form(v, req->entity.base, req->entity.len, err, sizeof(err)) != 0) {
            json_decref(v);
            sff_http_send_error(req, SFF_EBADREQ, err, NULL);
            return -1;
        }
        *body = v;
        return 0;
    }
    sff_http_send_error(req, SFF_EMEDIATYPE, "the body must be application/json or application/x-www-form-urlencoded", NULL);
    return -1;
}

/* Nonzero when a cookie-authenticated request may go on: safe methods always; a mutation only when
 * its Origin (or else Referer) is absent, the gateway's own origin, or an allowed CORS origin. */
static int csrf_safe(sff_worker_t *w, h2o_req_t *req)
{
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
        h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")) ||
        h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS")))
        return 1;
    h2o_iovec_t origin = header_value_str(req, "origin");
    if (origin.base == NULL) {
        h2o_iovec_t referer = header_value(req, H2O_TOKEN_REFERER);
        if (referer.base == NULL)
            return 1;
        /* the origin part of the Referer: scheme://host[:port] */
        const char *p = memchr(referer.base, ':', referer.len);
        if (p == NULL || (size_t)(p - referer.base) + 3 > referer.len || memcmp(p, "://", 3) != 0)
            return 0;
        const char *host = p + 3, *end = referer.base + referer.len;
        const char *slash = memchr(host, '/', (size_t)(end - host));
        origin = h2o_iovec_init(referer.base, (size_t)((slash != NULL ? slash : end) - referer.base));
    }
    if (sff_config_origin_allowed(w->config, origin.base, origin.len))
        return 1;
    /* the gateway's own origin: the host the request was sent to, with this request's scheme */
    const char *scheme = sff_http_is_tls(req) ? "https://" : "http://";
    size_t slen = strlen(scheme);
    return origin.len == slen + req->authority.len && strncasecmp(origin.base, scheme, slen) == 0 &&
           strncasecmp(origin.base + slen, req->authority.base, req->authority.len) == 0;
}

/* Verifies the request's token (if any) into *claims. Returns 0, or sends the 401 and returns -1
 * when a route that needs a token got none or an invalid one. A public route treats an invalid
 * token as no token. */
static int authenticate(sff_worker_t *w, h2o_req_t *req, const sff_route_entry_t *route, json_t **claims)
{
    const char *token, *why = NULL, *msg = NULL;
    size_t len;
    *claims = NULL;
    int has = sff_auth_find_token(req, w->config->jwt_cookie, &token, &len);
    if (has == 2 && !csrf_safe(w, req)) {
        /* a browser sent the session cookie along with another site's request */
        sff_http_send_error(req, SFF_EFORBIDDEN, "cross-site request refused", NULL);
        return -1;
    }
    if (has && sff_jwt_verify(w->jwt, token, len, (int64_t)time(NULL), claims, &why) != 0) {
        *claims = NULL;
        if (route->policy != SFF_POLICY_PUBLIC) {
            sff_metrics_auth_failure(SFF_METRIC_AUTH_INVALID);
            send_unauthorized(req, why, 1);
            return -1;
        }
    }
    if (*claims != NULL) {
        /* the verifier's cache keeps the claims: a function gets its own copy to change at will */
        json_t *copy = json_deep_copy(*claims);
        json_decref(*claims);
        *claims = copy;
    }
    int code = sff_auth_check_policy(route, *claims, &msg);
    if (code == SFF_EUNAUTHORIZED) {
        sff_metrics_auth_failure(SFF_METRIC_AUTH_MISSING);
        send_unauthorized(req, NULL, 0);
        return -1;
    }
    if (code != 0) {
        sff_metrics_auth_failure(SFF_METRIC_AUTH_FORBIDDEN);
        json_decref(*claims);
        *claims = NULL;
        sff_http_send_error(req, code, msg, NULL);
        return -1;
    }
    if (*claims != NULL) {
        const char *sub = json_string_value(json_object_get(*claims, "sub"));
        if (sub != NULL)
            env_set(req, ENV_SUB, sub, strlen(sub));
    }
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    sff_worker_t *w = ((sff_handler_t *)self)->w;
    set_request_id(req);

    if (sff_guard_on_request(w, req) != 0)
        return 0;

    /* The raw path, as the client sent it: h2o's normalisation must never see a traversal. */
    h2o_iovec_t raw = req->input.path;
    size_t path_len = req->input.query_at != SIZE_MAX ? req->input.query_at : raw.len;
    if (sff_path_check(raw.base, path_len) != 0) {
        sff_http_send_error(req, SFF_EBADREQ, "the path is not allowed", NULL);
        return 0;
    }
    if (path_len >= 2 && raw.base[1] == '_' && sff_builtin_handle(w, req, raw.base, path_len) == 0)
        return 0;

    int cors = add_cors(w, req);
    sff_route_params_t rp;
    unsigned allowed = 0;
    sff_generation_t *gen = w->gen;
    const sff_route_entry_t *route =
        sff_router_match(gen->router, req->method.base, req->method.len, raw.base, path_len, &rp, &allowed);
    if (route == NULL) {
        if (allowed == 0) {
            int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
                      h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
            if (get && w->config->static_dir != NULL)
                return -1; /* the file handler, then the SPA fallback */
            sff_http_send_error(req, SFF_ENOTFOUND, NULL, NULL);
            return 0;
        }
        /* A page of the single-page app may share its path with an API route of another method
         * (GET /user/register shows the form, POST /user/register registers). */
        if ((allowed & SFF_M_GET) == 0 && w->config->static_dir != NULL &&
            (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
             h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))) {
            h2o_iovec_t accept = header_value(req, H2O_TOKEN_ACCEPT);
            if (accept.base != NULL && h2o_strstr(accept.base, accept.len, H2O_STRLIT("text/html")) != SIZE_MAX)
                return -1;
        }
        char allow[128];
        sff_router_allow_string(allowed, allow, sizeof(allow));
        if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS"))) {
            if (cors && header_value_str(req, "access-control-request-method").base != NULL) {
                send_preflight(req, allowed);
            } else {
                h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
                sff_http_send_json(req, 204, NULL, NULL, 0);
            }
            return 0;
        }
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
        sff_http_send_error(req, SFF_EMETHOD, NULL, NULL);
        return 0;
    }
    env_set(req, ENV_ROUTE, route->label, strlen(route->label));

    json_t *claims, *body = NULL, *params = NULL, *merged = NULL, *coercible = NULL;
    const char *msg = NULL;
    if (authenticate(w, req, route, &claims) != 0)
        return 0;
    if (read_body(w, req, route, &body) != 0)
        goto Done;
    const char *query = req->input.query_at != SIZE_MAX ? raw.base + req->input.query_at + 1 : NULL;
    size_t query_len = query != NULL ? raw.len - req->input.query_at - 1 : 0;
    int code = sff_input_build(&rp, query, query_len, body, &params, &merged, &coercible, &msg);
    if (code != 0) {
        sff_http_send_error(req, code, msg, NULL);
        goto Done;
    }
    json_t *details;
    if (route->schema != NULL && (code = sff_input_validate(route->schema, merged, coercible, &details)) != 0) {
        sff_http_send_error(req, code, NULL, details);
        json_decref(details);
        goto Done;
    }
    /* HTTP/2 calls start after the rest of the read is parsed, so a stream reset in the same read
     * never runs a handler (rapid reset). */
    code = sff_call_start(req, gen, route, merged, params, claims, sff_http_request_id(req), req->version >= 0x200);
    merged = params = claims = NULL; /* owned by the call now, whatever happened */
    if (code != 0)
        sff_http_send_error(req, code, NULL, NULL);
Done:
    json_decref(claims);
    json_decref(body);
    json_decref(params);
    json_decref(merged);
    json_decref(coercible);
    return 0;
}

/* After the file handler found no file: the SPA's index.html for a GET that accepts HTML, else a
 * JSON 404. */
static int on_fallback(h2o_handler_t *self, h2o_req_t *req)
{
    sff_worker_t *w = ((sff_handler_t *)self)->w;
    h2o_iovec_t accept = header_value(req, H2O_TOKEN_ACCEPT);
    if (w->config->static_dir != NULL && accept.base != NULL &&
        h2o_strstr(accept.base, accept.len, H2O_STRLIT("text/html")) != SIZE_MAX) {
        char index[4096];
        snprintf(index, sizeof(index), "%s/index.html", w->config->static_dir);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
        if (h2o_file_send(req, 200, "OK", index, h2o_iovec_init(H2O_STRLIT("text/html; charset=utf-8")), 0) == 0)
            return 0;
    }
    sff_http_send_error(req, SFF_ENOTFOUND, NULL, NULL);
    return 0;
}

static void on_log(h2o_logger_t *self, h2o_req_t *req)
{
    sff_worker_t *w = ((sff_logger_t *)self)->w;
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t us = (int64_t)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000 +
                 (now.tv_usec - req->timestamps.request_begin_at.tv_usec);
    if (us < 0)
        us = 0;
    h2o_iovec_t route = env_get(req, ENV_ROUTE), sub = env_get(req, ENV_SUB);
    sff_guard_on_complete(w, req);
    sff_metrics_request(route.base, req->res.status, (uint64_t)us);
    if (!w->config->access_log)
        return;
    char path[1024];
    size_t plen = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
    snprintf(path, sizeof(path), "%.*s", (int)plen, req->input.path.base);
    char method[16];
    snprintf(method, sizeof(method), "%.*s", (int)req->method.len, req->method.base);
    sff_access_t a = {.request_id = sff_http_request_id(req),
                      .method = method,
                      .path = path,
                      .route = route.base,
                      .status = req->res.status,
                      .bytes = req->bytes_sent,
                      .duration_us = (uint64_t)us,
                      .sub = sub.base,
                      .protocol = req->version >= 0x200 ? "h2" : "http/1.1"};
    sff_log_access(&a);
}

/* ---- h2o's own error pages become envelopes ----------------------------------------------------- */

typedef struct st_envelope_ostream_t {
    h2o_ostream_t super;
    h2o_iovec_t body;
} envelope_ostream_t;

static void on_envelope_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    (void)bufs;
    (void)bufcnt;
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(self, req, NULL, 0, state); /* the original body is dropped */
        return;
    }
    int head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_ostream_send_next(self, req, &((envelope_ostream_t *)self)->body, head ? 0 : 1, state);
}

static int status_code(int status)
{
    switch (status) {
    case 400:
        return SFF_EBADREQ;
    case 401:
        return SFF_EUNAUTHORIZED;
    case 403:
        return SFF_EFORBIDDEN;
    case 404:
        return SFF_ENOTFOUND;
    case 405:
        return SFF_EMETHOD;
    case 413:
        return SFF_ETOOLARGE;
    case 415:
        return SFF_EMEDIATYPE;
    case 431:
        return SFF_EHEADERS;
    case 503:
        return SFF_EOVERLOADED;
    case 504:
        return SFF_ETIMEDOUT;
    }
    return status >= 500 ? SFF_EINTERNAL : SFF_EBADREQ;
}

/* Errors that h2o answers by itself (a body over its limit, a malformed request, a file it may not
 * serve) come as text/plain pages; they are rewritten into the envelope, with a request id. */
static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    if (req->res.status >= 400 && env_get(req, ENV_OWN).base == NULL) {
        if (env_get(req, ENV_RID).base == NULL)
            set_request_id(req);
        int code = status_code(req->res.status);
        json_t *env =
            sff_http_envelope(code, req->res.status == 413 ? sff_strerror(code) : req->res.reason, NULL, sff_http_request_id(req));
        char *text = sff_jsonout_dump(env, NULL);
        json_decref(env);
        if (text != NULL) {
            envelope_ostream_t *o = (envelope_ostream_t *)h2o_add_ostream(req, sizeof(*o), slot);
            o->super.do_send = on_envelope_send;
            o->body = h2o_strdup(&req->pool, text, SIZE_MAX);
            free(text);
            h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT(SFF_JSON_TYPE), 1);
            req->res.content_length = o->body.len;
            slot = &o->super.next;
        }
    }
    h2o_setup_next_ostream(req, slot);
}

void sff_http_register(sff_worker_t *w, h2o_hostconf_t *hostconf)
{
    h2o_create_filter(&hostconf->fallback_path, sizeof(h2o_filter_t))->on_setup_ostream = on_setup_ostream;
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    sff_handler_t *h = (sff_handler_t *)h2o_create_handler(pathconf, sizeof(*h));
    h->super.on_req = on_req;
    h->w = w;
    if (w->config->static_dir != NULL) {
        static const char *index_files[] = {"index.html", NULL};
        h2o_file_register(pathconf, w->config->static_dir, index_files, NULL, 0);
    }
    sff_handler_t *fb = (sff_handler_t *)h2o_create_handler(pathconf, sizeof(*fb));
    fb->super.on_req = on_fallback;
    fb->w = w;
    h2o_create_filter(pathconf, sizeof(h2o_filter_t))->on_setup_ostream = on_setup_ostream;
    h2o_compress_args_t args = {.min_size = 256, .gzip = {.quality = 1}, .brotli = {.quality = -1}};
    h2o_compress_register(pathconf, &args);
    sff_logger_t *logger = (sff_logger_t *)h2o_create_logger(pathconf, sizeof(*logger));
    logger->super.log_access = on_log;
    logger->w = w;
}
