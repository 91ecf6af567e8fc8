/* sdk_storage.c - the SDK's object-storage calls (functions/sff.h), as futures over the worker's
 * store, and the raw request body of upload routes. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "call.h"
#include "future.h"
#include "sdk.h"
#include "worker.h"

static sff_objstore_t *store(void)
{
    return sff_worker != NULL ? sff_worker->backends.storage : NULL;
}

static void cancel_op(void *handle)
{
    sff_objstore_cancel(handle);
}

static json_t *info_json(const sff_objstore_info_t *info)
{
    return json_pack("{s:I, s:s, s:s, s:I}", "size", (json_int_t)info->size, "etag", info->etag != NULL ? info->etag : "",
                     "content_type", info->content_type != NULL ? info->content_type : "", "modified", (json_int_t)info->mtime);
}

static void free_bytes(void *p)
{
    free(*(char **)p);
}

static void on_done(void *data, sff_objstore_result_t *res)
{
    sff_future_t *f = data;
    int op = (int)(intptr_t)f->extra;
    json_t *value = NULL;
    if (res->err != 0) {
        sff_future_complete(f, res->err, NULL, res->message);
        return;
    }
    switch (op) {
    case SFF_STORAGE_GET:
        /* the body is taken over: freed with the request */
        *(char **)h2o_mem_alloc_shared(&f->root->pool, sizeof(char *), free_bytes) = res->body;
        f->bytes = res->body;
        f->nbytes = res->len;
        res->body = NULL;
        /* fallthrough */
    case SFF_STORAGE_PUT:
    case SFF_STORAGE_HEAD:
        value = info_json(&res->info);
        break;
    case SFF_STORAGE_DELETE:
        value = json_null();
        break;
    case SFF_STORAGE_LIST: {
        json_t *items = json_array();
        for (size_t i = 0; i < res->nentries; i++) {
            const sff_objstore_entry_t *e = &res->entries[i];
            json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:I}", "key", e->key, "size", (json_int_t)e->size, "etag",
                                                   e->etag != NULL ? e->etag : "", "modified", (json_int_t)e->mtime));
        }
        value = json_pack("{s:o, s:s?}", "items", items, "next", res->next_token);
        break;
    }
    }
    sff_future_complete(f, 0, value, NULL);
}

sff_future_t *sff_sdk_storage_send(sff_req_t *r, int op, const char *key, const char *content_type, const void *data, size_t len,
                                   size_t limit)
{
    sff_req_t *root = r->root;
    sff_future_t *f = sff_future_new(r);
    sff_objstore_op_t *handle = NULL;
    int ret;
    f->extra = (void *)(intptr_t)op;
    if (store() == NULL) {
        sff_future_complete(f, SFF_EUNAVAILABLE, NULL, "object storage is not configured (SFF_STORAGE_URL)");
        return f;
    }
    uint32_t timeout = sff_sdk_remaining_ms(r);
    switch (op) {
    case SFF_STORAGE_PUT: {
        /* copied: the future may outlive the caller's buffer */
        char *copy = h2o_mem_alloc_pool(&root->pool, len + 1);
        if (len != 0)
            memcpy(copy, data, len);
        sff_objstore_put_t put = {.body = copy, .len = len, .content_type = content_type, .timeout_ms = timeout};
        ret = key != NULL ? sff_objstore_put(store(), key, &put, on_done, f, &handle) : SFF_EBADREQ;
        break;
    }
    case SFF_STORAGE_GET: {
        sff_objstore_get_t get = {.timeout_ms = timeout};
        ret = key != NULL ? sff_objstore_get(store(), key, &get, on_done, f, &handle) : SFF_EBADREQ;
        break;
    }
    case SFF_STORAGE_HEAD:
        ret = key != NULL ? sff_objstore_head(store(), key, timeout, on_done, f, &handle) : SFF_EBADREQ;
        break;
    case SFF_STORAGE_DELETE:
        ret = key != NULL ? sff_objstore_delete(store(), key, timeout, on_done, f, &handle) : SFF_EBADREQ;
        break;
    case SFF_STORAGE_LIST: {
        sff_objstore_list_t list = {.prefix = key, .token = data, .max_keys = limit, .timeout_ms = timeout};
        ret = sff_objstore_list(store(), &list, on_done, f, &handle);
        break;
    }
    default:
        ret = SFF_EBADREQ;
    }
    if (ret != 0)
        sff_future_complete(f, ret, NULL, ret == SFF_EBADREQ ? "invalid storage call or key" : "the storage call could not start");
    else
        sff_future_set_cancel(f, handle, cancel_op);
    return f;
}

const void *sff_sdk_future_bytes(const sff_future_t *f, size_t *len)
{
    if (f == NULL || f->pending || f->result != 0 || f->bytes == NULL) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    if (len != NULL)
        *len = f->nbytes;
    return f->bytes;
}

int sff_sdk_storage_presign(sff_req_t *r, const char *method, const char *key, uint32_t expires_s, const char **url)
{
    char *u = NULL;
    *url = NULL;
    if (store() == NULL)
        return sff_call_set_error(r, SFF_EUNAVAILABLE, "object storage is not configured");
    int ret = sff_objstore_presign(store(), method, key, expires_s, time(NULL), &u);
    if (ret != 0)
        return ret;
    *url = h2o_strdup(&r->root->pool, u, SIZE_MAX).base;
    free(u);
    return 0;
}

const void *sff_sdk_body(sff_req_t *r, size_t *len, const char **content_type)
{
    sff_req_t *root = r->root;
    if (len != NULL)
        *len = root->raw_in_len;
    if (content_type != NULL)
        *content_type = root->raw_in_type;
    return root->raw_in;
}
