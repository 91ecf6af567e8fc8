/* sdk_db.c - the SDK's Postgres calls (functions/sff.h): statements as futures over the worker's
 * pool, with the caller's claims, and one transaction per request. */
#include <stdio.h>
#include <string.h>
#include "call.h"
#include "future.h"
#include "jsonout.h"
#include "sdk.h"
#include "worker.h"

static sff_pg_pool_t *pool(void)
{
    return sff_worker != NULL ? sff_worker->backends.pg : NULL;
}

static void cancel_pg(void *handle)
{
    sff_pg_cancel(handle);
}

static void on_result(void *data, int err, json_t *result, const char *message)
{
    sff_future_complete(data, err, result, err != 0 ? message : NULL);
}

/* The claims as JSON text, made once per request. */
static const char *claims_text(sff_req_t *r)
{
    sff_req_t *root = r->root;
    if (r->claims == NULL)
        return NULL;
    if (root->claims_text == NULL) {
        size_t len;
        char *s = sff_jsonout_dump(r->claims, &len);
        if (s == NULL)
            return NULL;
        root->claims_text = h2o_strdup(&root->pool, s, len).base;
        free(s);
    }
    return root->claims_text;
}

/* A parameter in Postgres's text format, in the request's pool; NULL for SQL NULL. */
static const char *param_text(sff_req_t *r, json_t *v)
{
    h2o_mem_pool_t *p = &r->root->pool;
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_value(v);
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return h2o_strdup(p, buf, SIZE_MAX).base;
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        return h2o_strdup(p, buf, SIZE_MAX).base;
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return NULL;
    default: {
        size_t len;
        char *s = sff_jsonout_dump(v, &len);
        const char *copy = s != NULL ? h2o_strdup(p, s, len).base : NULL;
        free(s);
        return copy;
    }
    }
}

sff_future_t *sff_sdk_db_send(sff_req_t *r, int shape, const char *sql, sff_json_t *params)
{
    sff_req_t *root = r->root;
    sff_future_t *f = sff_future_new(r);
    json_t *ps = (json_t *)params;
    sff_pg_req_t *req = NULL;
    if (pool() == NULL) {
        sff_future_complete(f, SFF_EUNAVAILABLE, NULL, "Postgres is not configured (SFF_PG_URL)");
        return f;
    }
    if (sql == NULL || shape < SFF_DB_ROWS || shape > SFF_DB_EXEC || (ps != NULL && !json_is_array(ps))) {
        sff_future_complete(f, SFF_EBADREQ, NULL, "sff_db_send: no SQL, an unknown shape, or params not a JSON array");
        return f;
    }
    size_t n = json_array_size(ps);
    const char **values = n != 0 ? h2o_mem_alloc_pool(&root->pool, n * sizeof(*values)) : NULL;
    for (size_t i = 0; i < n; i++)
        values[i] = param_text(r, json_array_get(ps, i));
    static const sff_pg_shape_t shapes[] = {SFF_PG_ROWS, SFF_PG_ROW, SFF_PG_EXEC};
    sff_pg_query_t q = {.sql = sql,
                        .params = values,
                        .nparams = n,
                        .shape = shapes[shape],
                        .claims = claims_text(r),
                        .sub = r->sub,
                        .timeout_ms = sff_sdk_remaining_ms(r),
                        .idempotent = 0};
    int ret = root->tx != NULL ? sff_pg_tx_query(root->tx, &q, on_result, f, &req) : sff_pg_query(pool(), &q, on_result, f, &req);
    if (ret != 0)
        sff_future_complete(f, ret, NULL, "the statement could not be sent");
    else
        sff_future_set_cancel(f, req, cancel_pg);
    return f;
}

static void on_begin(void *data, int err, sff_pg_tx_t *tx, const char *message)
{
    sff_future_t *f = data;
    if (err == 0) {
        if (f->root->finished || f->root->tx != NULL) {
            sff_pg_tx_release(tx); /* nobody waits for it any more */
        } else {
            f->root->tx = tx;
        }
    }
    sff_future_complete(f, err, NULL, err != 0 ? message : NULL);
}

int sff_sdk_db_begin(sff_req_t *r)
{
    sff_req_t *root = r->root;
    sff_pg_req_t *req = NULL;
    if (pool() == NULL)
        return sff_call_set_error(r, SFF_EUNAVAILABLE, "Postgres is not configured");
    if (root->tx != NULL)
        return sff_call_set_error(r, SFF_EINTERNAL, "sff_db_begin: a transaction is already open");
    sff_future_t *f = sff_future_new(r);
    int ret = sff_pg_begin(pool(), claims_text(r), r->sub, sff_sdk_remaining_ms(r), on_begin, f, &req);
    if (ret != 0)
        return ret;
    sff_future_set_cancel(f, req, cancel_pg);
    return sff_future_await_all(r, &f, 1, 0);
}

int sff_sdk_db_end(sff_req_t *r, int commit)
{
    sff_req_t *root = r->root;
    sff_pg_req_t *req = NULL;
    if (root->tx == NULL)
        return sff_call_set_error(r, SFF_EINTERNAL, "sff_db_%s: no transaction is open", commit ? "commit" : "rollback");
    sff_future_t *f = sff_future_new(r);
    int ret = commit ? sff_pg_commit(root->tx, on_result, f, &req) : sff_pg_rollback(root->tx, on_result, f, &req);
    if (ret == 0) {
        sff_future_set_cancel(f, req, cancel_pg);
        ret = sff_future_await_all(r, &f, 1, 0);
    }
    sff_pg_tx_release(root->tx);
    root->tx = NULL;
    return ret;
}
