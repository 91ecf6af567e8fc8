#include <arpa/inet.h>
#include <ctype.h>
#include <sodium.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth.h"
#include "call.h"
#include "error.h"
#include "future.h"
#include "pg.h"
#include "sdk.h"
#include "http.h"
#include "input.h"
#include "jwt.h"
#include "jsonin.h"
#include "jsonout.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"

#define MAX_CALL_DEPTH 8

size_t sff_call_alive;

#define J(v) ((json_t *)(v))
#define S(v) ((sff_json_t *)(v))

/* ---- ownership -------------------------------------------------------------------------------- */

/* Hands a new reference to the request; returns it borrowed. NULL stays NULL. */
static json_t *own(sff_req_t *r, json_t *v)
{
    sff_req_t *root = r->root;
    if (v == NULL)
        return NULL;
    h2o_vector_reserve(&root->pool, &root->owned, root->owned.size + 1);
    root->owned.entries[root->owned.size++] = v;
    return v;
}

static char *pool_strdup(sff_req_t *r, const char *s, size_t len)
{
    return h2o_strdup(&r->root->pool, s, len).base;
}

/* ---- lifecycle -------------------------------------------------------------------------------- */

static void call_free(sff_req_t *r)
{
    sff_future_cancel_all(r);
    if (r->tx != NULL)
        sff_pg_tx_release(r->tx); /* never committed: rolled back */
    sff_timer_stop(&r->deadline);
    sff_timer_stop(&r->wait_timer);
    sff_timer_stop(&r->resume_soon);
    if (!r->detached && r->disposer_slot != NULL)
        *r->disposer_slot = NULL;
    for (size_t i = 0; i < r->owned.size; i++)
        json_decref(r->owned.entries[i]);
    json_decref(r->input);
    json_decref(r->params);
    json_decref(r->claims);
    json_decref(r->body);
    json_decref(r->details);
    free(r->err_msg);
    if (r->co != NULL)
        sff_coro_destroy(r->co);
    sff_generation_release(r->gen);
    h2o_mem_clear_pool(&r->pool);
    free(r);
    sff_call_alive--;
    sff_metrics_inflight_add(-1);
}

/* The body of the response a finished call produced: the handler's, the error envelope, or none. */
static json_t *result_body(sff_req_t *r, int ret, int *status)
{
    if (ret < 0 || (ret == 0 && !r->responded && r->err_code != 0)) {
        int code = ret < 0 ? ret : r->err_code;
        *status = sff_error_status(code);
        if (code == SFF_EINTERNAL || code == SFF_ENOMEM)
            sff_log_error("function %s failed: %s", r->route->label, r->err_msg != NULL ? r->err_msg : sff_strerror(code));
        return sff_http_envelope(code, r->err_msg, r->details, r->root->request_id);
    }
    if (!r->responded) {
        *status = 204;
        return NULL;
    }
    *status = r->status;
    return json_incref(r->body);
}

/* Takes the h2o request to answer it, once: NULL when it is gone or was answered. Sending may free
 * the request, so the call lets go of it first and its disposer no longer calls back into r. */
static h2o_req_t *take_req(sff_req_t *r)
{
    h2o_req_t *req = r->req;
    if (req == NULL || r->sent)
        return NULL;
    r->sent = 1;
    *r->disposer_slot = NULL;
    r->detached = 1;
    r->req = NULL;
    return req;
}

static void send_result(sff_req_t *r, int ret)
{
    h2o_req_t *req = take_req(r);
    int status;
    if (req == NULL)
        return;
    if (r->raw_body != NULL && ret == 0) {
        sff_http_send_raw(req, r->status, r->raw_type, r->raw_body, r->raw_len, r->res_headers.entries, r->res_headers.size / 2);
        return;
    }
    json_t *body = result_body(r, ret, &status);
    sff_http_send_json(req, status, body, r->res_headers.entries, r->res_headers.size / 2);
    json_decref(body);
}

/* A route's own rate limit, per caller: the token's subject, else the client's address. */
static int route_rate_limit(sff_req_t *r)
{
    const sff_route_t *route = &r->route->route;
    char key[512];
    if (route->rate_limit == 0)
        return 0;
    snprintf(key, sizeof(key), "route:%s:%s", r->route->label, r->sub != NULL ? r->sub : r->client_ip);
    return sff_sdk_rate_limit(r, key, route->rate_limit, route->rate_window_s != 0 ? route->rate_window_s : 60);
}

static void run_handler(void *arg)
{
    sff_req_t *r = arg;
    int ret = route_rate_limit(r);
    if (ret == 0)
        ret = r->route->route.handler(r);
    r->finished = 1;
    r->wake_result = ret; /* the handler's result, for resume() */
}

static void resume(sff_req_t *r)
{
    if (sff_coro_resume(r->co)) {
        send_result(r, r->wake_result);
        call_free(r);
    }
}

static void on_deadline(sff_timer_t *t)
{
    sff_req_t *r = t->data;
    r->canceled = SFF_ETIMEDOUT;
    h2o_req_t *req = take_req(r);
    if (req != NULL) {
        sff_log_warn("function %s passed its %u ms timeout", r->route->label, r->route->timeout_ms);
        sff_http_send_error(req, SFF_ETIMEDOUT, NULL, NULL);
    }
    if (r->waiting) {
        if (r->cancel_wait != NULL)
            r->cancel_wait(r);
        sff_call_wake(r, SFF_ETIMEDOUT);
    }
}

static void on_resume_soon(sff_timer_t *t)
{
    sff_req_t *r = t->data;
    if (r->waiting) {
        if (r->cancel_wait != NULL)
            r->cancel_wait(r);
        sff_call_wake(r, r->canceled);
    }
}

/* h2o is freeing the request (client gone, stream reset, connection closed). */
static void on_req_dispose(void *p)
{
    sff_req_t *r = *(sff_req_t **)p;
    if (r == NULL)
        return;
    r->req = NULL;
    r->detached = 1;
    if (r->canceled == 0)
        r->canceled = SFF_ECANCELED;
    /* Not resumed here: h2o is in the middle of tearing down the stream. */
    if (r->waiting)
        sff_timer_start(&r->resume_soon, 0);
    if (!r->started)
        sff_timer_stop(&r->deadline);
}

static void start_handler(sff_req_t *r)
{
    r->started = 1;
    sff_metrics_handler_run();
    resume(r);
}

static void on_deferred_start(sff_timer_t *t)
{
    sff_req_t *r = t->data;
    sff_timer_init(&r->resume_soon, on_resume_soon, r);
    if (r->canceled != 0) {
        call_free(r); /* reset before it ran: no handler run, no stack taken */
        return;
    }
    if ((r->co = sff_coro_create(run_handler, r)) == NULL) {
        h2o_req_t *req = take_req(r);
        if (req != NULL)
            sff_http_send_error(req, SFF_ENOMEM, NULL, NULL);
        call_free(r);
        return;
    }
    start_handler(r);
}

int sff_call_start(h2o_req_t *req, sff_generation_t *gen, const sff_route_entry_t *route, json_t *input, json_t *params,
                   json_t *claims, const char *request_id, int defer)
{
    sff_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto NoMem;
    h2o_mem_init_pool(&r->pool);
    h2o_linklist_init_anchor(&r->futures);
    r->req = req;
    r->root = r;
    r->gen = gen;
    sff_generation_retain(gen);
    r->route = route;
    r->input = input;
    r->params = params;
    r->claims = claims;
    r->sub = claims != NULL ? json_string_value(json_object_get(claims, "sub")) : NULL;
    snprintf(r->request_id, sizeof(r->request_id), "%s", request_id);
    r->method = pool_strdup(r, req->method.base, req->method.len);
    r->path = pool_strdup(r, req->path.base, req->query_at != SIZE_MAX ? req->query_at : req->path.len);
    r->start_us = sff_now_us();
    if (route->route.raw_body && req->entity.base != NULL) {
        r->raw_in = h2o_strdup(&r->pool, req->entity.base, req->entity.len).base;
        r->raw_in_len = req->entity.len;
        ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
        if (ct >= 0)
            r->raw_in_type = h2o_strdup(&r->pool, req->headers.entries[ct].value.base, req->headers.entries[ct].value.len).base;
    }
    struct sockaddr_storage peer;
    socklen_t plen = req->conn->callbacks->get_peername != NULL ? req->conn->callbacks->get_peername(req->conn, (void *)&peer) : 0;
    if (plen != 0 && peer.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, r->client_ip, sizeof(r->client_ip));
    else if (plen != 0 && peer.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, r->client_ip, sizeof(r->client_ip));
    sff_timer_init(&r->deadline, on_deadline, r);
    sff_timer_init(&r->wait_timer, NULL, r);
    sff_timer_init(&r->resume_soon, on_resume_soon, r);
    sff_call_alive++;
    sff_metrics_inflight_add(1);
    /* a deferred call takes its stack when it starts: a stream reset before then costs only this struct */
    if (!defer && (r->co = sff_coro_create(run_handler, r)) == NULL) {
        r->input = r->params = r->claims = NULL;
        call_free(r);
        return SFF_ENOMEM;
    }
    r->disposer_slot = h2o_mem_alloc_shared(&req->pool, sizeof(*r->disposer_slot), on_req_dispose);
    *(sff_req_t **)r->disposer_slot = r;
    sff_timer_start(&r->deadline, route->timeout_ms);
    if (defer) {
        sff_timer_init(&r->resume_soon, on_deferred_start, r);
        sff_timer_start(&r->resume_soon, 0);
    } else {
        start_handler(r);
    }
    return 0;
NoMem:
    json_decref(input);
    json_decref(params);
    json_decref(claims);
    return SFF_ENOMEM;
}

int sff_call_wait(sff_req_t *r)
{
    sff_req_t *root = r->root;
    if (root->canceled != 0) {
        if (root->cancel_wait != NULL)
            root->cancel_wait(root);
        root->cancel_wait = NULL;
        return root->canceled;
    }
    root->waiting = 1;
    sff_coro_yield();
    root->waiting = 0;
    root->cancel_wait = NULL;
    return root->wake_result;
}

void sff_call_wake(sff_req_t *r, int result)
{
    sff_req_t *root = r->root;
    if (!root->waiting)
        return;
    root->wake_result = root->canceled != 0 ? root->canceled : result;
    resume(root);
}

/* ---- request accessors ------------------------------------------------------------------------ */

static sff_json_t *api_input(sff_req_t *r)
{
    return S(r->input);
}

static const char *api_param(sff_req_t *r, const char *name)
{
    return json_string_value(json_object_get(r->params, name));
}

static sff_json_t *api_claims(sff_req_t *r)
{
    return S(r->claims);
}

static const char *api_user_id(sff_req_t *r)
{
    return r->sub;
}

static const char *api_header(sff_req_t *r, const char *name)
{
    h2o_req_t *req = r->root->req; /* an in-process call sees its caller's request headers */
    if (req == NULL)
        return NULL;
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0) {
        /* h2o keeps known header names as lower-case tokens: look up the lower-cased name */
        char lower[128];
        size_t n = strlen(name);
        if (n >= sizeof(lower))
            return NULL;
        for (size_t k = 0; k <= n; k++)
            lower[k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] + 32 : name[k]);
        if ((i = h2o_find_header_by_str(&req->headers, lower, n, -1)) < 0)
            return NULL;
    }
    h2o_iovec_t v = req->headers.entries[i].value;
    return pool_strdup(r, v.base, v.len);
}

static const char *api_method(sff_req_t *r)
{
    return r->method;
}

static const char *api_path(sff_req_t *r)
{
    return r->path;
}

static const char *api_request_id(sff_req_t *r)
{
    return r->root->request_id;
}

/* ---- response --------------------------------------------------------------------------------- */

static int api_respond(sff_req_t *r, int status, sff_json_t *body)
{
    if (status < 100 || status > 599)
        return sff_call_set_error(r, SFF_EINTERNAL, "function set an invalid HTTP status %d", status);
    json_decref(r->body);
    r->body = json_incref(J(body));
    r->status = status;
    r->raw_body = NULL;
    r->responded = 1;
    return 0;
}

static int api_respond_raw(sff_req_t *r, int status, const char *content_type, const void *body, size_t len)
{
    if (status < 100 || status > 599)
        return sff_call_set_error(r, SFF_EINTERNAL, "function set an invalid HTTP status %d", status);
    r->raw_body = h2o_mem_alloc_pool(&r->root->pool, len + 1);
    memcpy(r->raw_body, body, len);
    r->raw_len = len;
    r->raw_type = pool_strdup(r, content_type != NULL ? content_type : "application/octet-stream", SIZE_MAX);
    r->status = status;
    json_decref(r->body);
    r->body = NULL;
    r->responded = 1;
    return 0;
}

static int header_value_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return 0;
    return 1;
}

static int header_name_ok(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s) != NULL))
            return 0;
    return 1;
}

static int push_header(sff_req_t *r, const char *name, size_t nlen, const char *value, size_t vlen)
{
    h2o_mem_pool_t *pool = &r->root->pool;
    h2o_vector_reserve(pool, &r->res_headers, r->res_headers.size + 2);
    r->res_headers.entries[r->res_headers.size++] = h2o_strdup(pool, name, nlen);
    r->res_headers.entries[r->res_headers.size++] = h2o_strdup(pool, value, vlen);
    return 0;
}

static int api_set_header(sff_req_t *r, const char *name, const char *value)
{
    if (name == NULL || value == NULL || !header_name_ok(name) || !header_value_ok(value))
        return SFF_EBADREQ;
    return push_header(r, name, strlen(name), value, strlen(value));
}

static int cookie_token_ok(const char *s, int is_value)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == ';' || c == ',' || c == '"' || c == '\\' || (!is_value && c == '='))
            return 0;
    }
    return 1;
}

static int api_set_cookie(sff_req_t *r, const char *name, const char *value, const sff_cookie_t *opts)
{
    sff_cookie_t none = {0};
    char buf[4096];
    if (opts == NULL)
        opts = &none;
    if (name == NULL || *name == '\0' || value == NULL || !cookie_token_ok(name, 0) || !cookie_token_ok(value, 1))
        return SFF_EBADREQ;
    const char *path = opts->path != NULL ? opts->path : "/";
    const char *same_site = opts->same_site != NULL ? opts->same_site : "Lax";
    if (!cookie_token_ok(path, 1) ||
        (strcmp(same_site, "Lax") != 0 && strcmp(same_site, "Strict") != 0 && strcmp(same_site, "None") != 0))
        return SFF_EBADREQ;
    int secure = opts->secure || (r->root->req != NULL && sff_http_is_tls(r->root->req)) || strcmp(same_site, "None") == 0;
    int n = snprintf(buf, sizeof(buf), "%s=%s; Path=%s; SameSite=%s", name, value, path, same_site);
    if (opts->max_age_s < 0)
        n += snprintf(buf + n, sizeof(buf) - n, "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    else if (opts->max_age_s > 0)
        n += snprintf(buf + n, sizeof(buf) - n, "; Max-Age=%lld", (long long)opts->max_age_s);
    if (opts->http_only)
        n += snprintf(buf + n, sizeof(buf) - n, "; HttpOnly");
    if (secure)
        n += snprintf(buf + n, sizeof(buf) - n, "; Secure");
    if (n < 0 || (size_t)n >= sizeof(buf))
        return SFF_EBADREQ;
    return push_header(r, "set-cookie", 10, buf, (size_t)n);
}

static int api_verror(sff_req_t *r, int code, const char *fmt, va_list ap)
{
    if (code >= 0)
        code = SFF_EINTERNAL;
    free(r->err_msg);
    r->err_msg = NULL;
    if (fmt != NULL && vasprintf(&r->err_msg, fmt, ap) < 0)
        r->err_msg = NULL;
    r->err_code = code;
    return code;
}

int sff_call_set_error(sff_req_t *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int ret = api_verror(r, code, fmt, ap);
    va_end(ap);
    return ret;
}

static int api_error_detail(sff_req_t *r, const char *path, const char *message)
{
    if (r->details == NULL && (r->details = json_array()) == NULL)
        return SFF_ENOMEM;
    json_t *d = json_pack("{s:s, s:s}", "path", path != NULL ? path : "", "message", message != NULL ? message : "");
    if (d == NULL || json_array_append_new(r->details, d) != 0)
        return SFF_ENOMEM;
    return 0;
}

/* ---- waiting ---------------------------------------------------------------------------------- */

static void on_sleep_done(sff_timer_t *t)
{
    sff_call_wake(t->data, 0);
}

static void cancel_sleep(sff_req_t *r)
{
    sff_timer_stop(&r->wait_timer);
}

static int api_sleep(sff_req_t *r, uint32_t ms)
{
    sff_req_t *root = r->root;
    if (root->canceled != 0)
        return root->canceled;
    sff_timer_init(&root->wait_timer, on_sleep_done, root);
    if (sff_timer_start(&root->wait_timer, ms) != 0)
        return SFF_ENOMEM;
    root->cancel_wait = cancel_sleep;
    return sff_call_wait(r);
}

/* Runs another route's handler in this coroutine, with the caller's claims. */
static int api_call(sff_req_t *r, const char *method, const char *path, sff_json_t *input, int *status, sff_json_t **out)
{
    sff_req_t *root = r->root;
    int depth = 0, code = 0;
    const char *msg = NULL;
    json_t *details = NULL, *params = NULL, *merged = NULL, *coercible = NULL, *body = NULL;
    const sff_route_entry_t *route = NULL;
    for (sff_req_t *p = r; p->parent != NULL; p = p->parent)
        depth++;
    if (method == NULL || path == NULL || status == NULL || out == NULL)
        return SFF_EBADREQ;
    if (depth >= MAX_CALL_DEPTH)
        return sff_call_set_error(r, SFF_EINTERNAL, "in-process calls nested deeper than %d", MAX_CALL_DEPTH);
    if (root->canceled != 0)
        return root->canceled;
    if (input != NULL && !json_is_object(J(input)))
        return SFF_EBADREQ;

    size_t path_len = strcspn(path, "?");
    const char *query = path[path_len] == '?' ? path + path_len + 1 : NULL;
    sff_route_params_t rp;
    unsigned allowed = 0;
    route = sff_router_match(root->gen->router, method, strlen(method), path, path_len, &rp, &allowed);
    if (route == NULL) {
        code = allowed != 0 ? SFF_EMETHOD : SFF_ENOTFOUND;
        goto Respond;
    }
    if ((code = sff_auth_check_policy(route, r->claims, &msg)) != 0)
        goto Respond;
    if ((code = sff_input_build(&rp, query, query != NULL ? strlen(query) : 0, J(input), &params, &merged, &coercible, &msg)) != 0)
        goto Respond;
    if (route->schema != NULL && (code = sff_input_validate(route->schema, merged, coercible, &details)) != 0)
        goto Respond;
    json_decref(coercible);
    coercible = NULL;

    sff_req_t *child = h2o_mem_alloc_pool(&root->pool, sizeof(*child));
    memset(child, 0, sizeof(*child));
    child->root = root;
    child->parent = r;
    child->gen = root->gen;
    child->route = route;
    child->input = merged;
    child->params = params;
    child->claims = json_incref(r->claims);
    child->sub = r->sub;
    child->method = pool_strdup(r, method, SIZE_MAX);
    child->path = pool_strdup(r, path, path_len);
    merged = params = NULL;
    int ret = route->route.handler(child);
    body = result_body(child, ret, status);
    *out = S(own(r, body));
    /* the child's own references go to the request, to end with it */
    own(r, child->input);
    own(r, child->params);
    own(r, child->claims);
    own(r, child->body);
    own(r, child->details);
    free(child->err_msg);
    return 0;

Respond:
    *status = sff_error_status(code);
    *out = S(own(r, sff_http_envelope(code, msg, details, root->request_id)));
    json_decref(details);
    json_decref(params);
    json_decref(merged);
    json_decref(coercible);
    return 0;
}

/* ---- logging ---------------------------------------------------------------------------------- */

static void api_vlog(sff_req_t *r, int level, const char *fmt, va_list ap)
{
    sff_log_vmsg(level, r->root->request_id, fmt, ap);
}

/* ---- JSON ------------------------------------------------------------------------------------- */

static sff_json_t *api_json_null(sff_req_t *r)
{
    return S(own(r, json_null()));
}
static sff_json_t *api_json_bool(sff_req_t *r, int v)
{
    return S(own(r, json_boolean(v)));
}
static sff_json_t *api_json_int(sff_req_t *r, int64_t v)
{
    return S(own(r, json_integer((json_int_t)v)));
}
static sff_json_t *api_json_real(sff_req_t *r, double v)
{
    return S(own(r, json_real(v)));
}
static sff_json_t *api_json_string(sff_req_t *r, const char *s)
{
    return S(own(r, s != NULL ? json_string(s) : NULL));
}
static sff_json_t *api_json_stringn(sff_req_t *r, const char *s, size_t len)
{
    return S(own(r, s != NULL ? json_stringn(s, len) : NULL));
}
static sff_json_t *api_json_object(sff_req_t *r)
{
    return S(own(r, json_object()));
}
static sff_json_t *api_json_array(sff_req_t *r)
{
    return S(own(r, json_array()));
}
static sff_json_t *api_json_parse(sff_req_t *r, const char *text, size_t len)
{
    char err[160];
    if (text == NULL)
        return NULL;
    return S(own(r, sff_jsonin_parse(text, len, sff_worker != NULL ? sff_worker->config->json_max_depth : 64, err, sizeof(err))));
}
static char *api_json_dump(sff_req_t *r, const sff_json_t *v)
{
    size_t len;
    char *s = sff_jsonout_dump(J(v), &len);
    if (s == NULL)
        return NULL;
    char *copy = pool_strdup(r, s, len);
    free(s);
    return copy;
}
static int api_json_type(const sff_json_t *v)
{
    if (v == NULL)
        return SFF_JSON_NULL; /* as sff.h promises: an absent member reads as null */
    switch (json_typeof(J(v))) {
    case JSON_OBJECT:
        return SFF_JSON_OBJECT;
    case JSON_ARRAY:
        return SFF_JSON_ARRAY;
    case JSON_STRING:
        return SFF_JSON_STRING;
    case JSON_INTEGER:
        return SFF_JSON_INT;
    case JSON_REAL:
        return SFF_JSON_REAL;
    case JSON_TRUE:
    case JSON_FALSE:
        return SFF_JSON_BOOL;
    default:
        return SFF_JSON_NULL;
    }
}
static int api_json_set(sff_json_t *obj, const char *key, sff_json_t *v)
{
    if (v == NULL || key == NULL || !json_is_object(J(obj)))
        return SFF_ENOMEM;
    return json_object_set(J(obj), key, J(v)) == 0 ? 0 : SFF_ENOMEM;
}
static int api_json_del(sff_json_t *obj, const char *key)
{
    return json_object_del(J(obj), key) == 0 ? 0 : SFF_ENOTFOUND;
}
static int api_json_append(sff_json_t *arr, sff_json_t *v)
{
    if (v == NULL || !json_is_array(J(arr)))
        return SFF_ENOMEM;
    return json_array_append(J(arr), J(v)) == 0 ? 0 : SFF_ENOMEM;
}
static sff_json_t *api_json_get(const sff_json_t *obj, const char *key)
{
    return S(json_object_get(J(obj), key));
}
static sff_json_t *api_json_at(const sff_json_t *arr, size_t i)
{
    return S(json_array_get(J(arr), i));
}
static size_t api_json_size(const sff_json_t *v)
{
    if (json_is_object(J(v)))
        return json_object_size(J(v));
    return json_array_size(J(v));
}
static const char *api_json_str(const sff_json_t *v)
{
    return json_string_value(J(v));
}
static int64_t api_json_int_value(const sff_json_t *v)
{
    if (json_is_real(J(v)))
        return (int64_t)json_real_value(J(v));
    return (int64_t)json_integer_value(J(v));
}
static double api_json_number(const sff_json_t *v)
{
    return json_number_value(J(v));
}
static int api_json_is_true(const sff_json_t *v)
{
    return json_is_true(J(v));
}
/* Objects iterate in insertion order: jansson keeps it (JSON_PRESERVE_ORDER is the default since
 * 2.8), and its iterator walks that order. */
static void *object_iter_at(const json_t *obj, size_t i)
{
    void *it = json_object_iter((json_t *)obj);
    while (it != NULL && i-- > 0)
        it = json_object_iter_next((json_t *)obj, it);
    return it;
}
static const char *api_json_key_at(const sff_json_t *obj, size_t i)
{
    void *it = object_iter_at(J(obj), i);
    return it != NULL ? json_object_iter_key(it) : NULL;
}
static sff_json_t *api_json_value_at(const sff_json_t *obj, size_t i)
{
    void *it = object_iter_at(J(obj), i);
    return it != NULL ? S(json_object_iter_value(it)) : NULL;
}
static sff_json_t *api_json_copy(sff_req_t *r, const sff_json_t *v)
{
    return S(own(r, json_deep_copy(J(v))));
}

/* ---- tokens ----------------------------------------------------------------------------------- */

static int api_token_sign(sff_req_t *r, sff_json_t *claims, uint32_t ttl_s, const char **token)
{
    const sff_config_t *c = sff_worker != NULL ? sff_worker->config : NULL;
    *token = NULL;
    if (c == NULL || c->jwt_secret == NULL)
        return sff_call_set_error(r, SFF_EINTERNAL, "no SFF_JWT_SECRET to sign tokens with");
    if (!json_is_object(J(claims)) || ttl_s == 0)
        return sff_call_set_error(r, SFF_EINTERNAL, "sff_token_sign: claims must be an object and ttl_s positive");
    json_t *copy = json_copy(J(claims));
    json_int_t now = (json_int_t)time(NULL);
    json_object_set_new(copy, "iat", json_integer(now));
    json_object_set_new(copy, "exp", json_integer(now + (json_int_t)ttl_s));
    if (c->jwt_issuer != NULL)
        json_object_set_new(copy, "iss", json_string(c->jwt_issuer));
    if (c->jwt_audience != NULL)
        json_object_set_new(copy, "aud", json_string(c->jwt_audience));
    char *t = sff_jwt_sign_hs256(c->jwt_secret, copy);
    json_decref(copy);
    if (t == NULL)
        return sff_call_set_error(r, SFF_EINTERNAL, "signing the token failed");
    *token = pool_strdup(r, t, SIZE_MAX);
    free(t);
    return 0;
}

static int api_random_token(sff_req_t *r, size_t bytes, const char **out)
{
    unsigned char buf[64];
    char text[128];
    if (bytes < 16 || bytes > sizeof(buf))
        return sff_call_set_error(r, SFF_EINTERNAL, "sff_random_token: 16 to 64 bytes");
    randombytes_buf(buf, bytes);
    sodium_bin2base64(text, sizeof(text), buf, bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(buf, sizeof(buf));
    *out = pool_strdup(r, text, SIZE_MAX);
    return 0;
}

static const char *api_client_ip(sff_req_t *r)
{
    return r->root->client_ip;
}

/* ---- futures ---------------------------------------------------------------------------------- */

static sff_json_t *api_future_value(const sff_future_t *f)
{
    return f != NULL && !f->pending && f->result == 0 ? S(f->value) : NULL;
}
static int api_future_result(const sff_future_t *f)
{
    return f == NULL ? SFF_ENOMEM : f->pending ? 1 : f->result;
}
static const char *api_future_error(const sff_future_t *f)
{
    return f != NULL ? f->error : NULL;
}

const sff_api_t sff_call_api = {
    .abi_major = SFF_ABI_MAJOR,
    .abi_minor = SFF_ABI_MINOR,
    .size = sizeof(sff_api_t),
    .input = api_input,
    .param = api_param,
    .claims = api_claims,
    .user_id = api_user_id,
    .header = api_header,
    .method = api_method,
    .path = api_path,
    .request_id = api_request_id,
    .respond = api_respond,
    .respond_raw = api_respond_raw,
    .set_header = api_set_header,
    .set_cookie = api_set_cookie,
    .verror = api_verror,
    .error_detail = api_error_detail,
    .sleep = api_sleep,
    .call = api_call,
    .vlog = api_vlog,
    .json_null = api_json_null,
    .json_bool = api_json_bool,
    .json_int = api_json_int,
    .json_real = api_json_real,
    .json_string = api_json_string,
    .json_stringn = api_json_stringn,
    .json_object = api_json_object,
    .json_array = api_json_array,
    .json_parse = api_json_parse,
    .json_dump = api_json_dump,
    .json_type = api_json_type,
    .json_set = api_json_set,
    .json_append = api_json_append,
    .json_get = api_json_get,
    .json_at = api_json_at,
    .json_size = api_json_size,
    .json_str = api_json_str,
    .json_int_value = api_json_int_value,
    .json_number = api_json_number,
    .json_test_true = api_json_is_true,
    .json_key_at = api_json_key_at,
    .json_value_at = api_json_value_at,
    .json_copy = api_json_copy,
    .json_del = api_json_del,
    .await_all = sff_future_await_all,
    .future_value = api_future_value,
    .future_result = api_future_result,
    .future_error = api_future_error,
    .redis_send = sff_sdk_redis_send,
    .cache_get = sff_sdk_cache_get,
    .cache_set = sff_sdk_cache_set,
    .cache_invalidate = sff_sdk_cache_invalidate,
    .publish = sff_sdk_publish,
    .rate_limit = sff_sdk_rate_limit,
    .db_send = sff_sdk_db_send,
    .db_begin = sff_sdk_db_begin,
    .db_end = sff_sdk_db_end,
    .storage_send = sff_sdk_storage_send,
    .future_bytes = sff_sdk_future_bytes,
    .storage_presign = sff_sdk_storage_presign,
    .body = sff_sdk_body,
    .token_sign = api_token_sign,
    .random_token = api_random_token,
    .client_ip = api_client_ip,
    .password_hash = sff_sdk_password_hash,
    .password_verify = sff_sdk_password_verify,
    .cache_get_text = sff_sdk_cache_get_text,
};
