#include <string.h>
#include "builtin.h"
#include "error.h"
#include "http.h"
#include "metrics.h"

static int is(const char *path, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(path, name, len) == 0;
}

static void free_slot(void *p)
{
    free(*(char **)p);
}

int sff_builtin_handle(sff_worker_t *w, h2o_req_t *req, const char *path, size_t len)
{
    int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
              h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (!is(path, len, "/_health") && !is(path, len, "/_ready") && !is(path, len, "/_metrics") && !is(path, len, "/_openapi.json"))
        return -1;
    if (!get) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD"));
        sff_http_send_error(req, SFF_EMETHOD, NULL, NULL);
        return 0;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    if (is(path, len, "/_health")) {
        json_t *body = json_pack("{s:s}", "status", "ok");
        sff_http_send_json(req, 200, body, NULL, 0);
        json_decref(body);
    } else if (is(path, len, "/_ready")) {
        json_t *checks = json_pack("{s:{s:b, s:I, s:I, s:I}}", "functions", "ok", w->gen != NULL, "generation",
                                   (json_int_t)(w->gen ? w->gen->id : 0), "modules", (json_int_t)(w->gen ? w->gen->nmods : 0),
                                   "routes", (json_int_t)(w->gen ? w->gen->nroutes : 0));
        int ready = sff_backends_ready(w, checks) && w->gen != NULL && !w->draining;
        json_t *body = json_pack("{s:s, s:o}", "status", ready ? "ready" : "not_ready", "checks", checks);
        if (w->draining)
            json_object_set_new(body, "draining", json_true());
        sff_http_send_json(req, ready ? 200 : 503, body, NULL, 0);
        json_decref(body);
    } else if (is(path, len, "/_metrics")) {
        size_t n;
        char *text = sff_metrics_render(&n);
        if (text == NULL) {
            sff_http_send_error(req, SFF_ENOMEM, NULL, NULL);
            return 0;
        }
        *(char **)h2o_mem_alloc_shared(&req->pool, sizeof(char *), free_slot) = text;
        static h2o_generator_t generator = {NULL, NULL};
        req->res.status = 200;
        req->res.reason = "OK";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
        req->res.content_length = n;
        h2o_start_response(req, &generator);
        h2o_iovec_t body = h2o_iovec_init(text, n);
        h2o_send(req, &body, h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")) ? 0 : 1, H2O_SEND_STATE_FINAL);
    } else {
        json_t *doc = sff_openapi_build(w->gen, w->config);
        if (doc == NULL) {
            sff_http_send_error(req, SFF_ENOMEM, NULL, NULL);
            return 0;
        }
        sff_http_send_json(req, 200, doc, NULL, 0);
        json_decref(doc);
    }
    return 0;
}
