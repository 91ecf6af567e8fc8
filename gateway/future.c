#include <assert.h>
#include <string.h>
#include "call.h"
#include "future.h"
#include "timer.h"

sff_future_t *sff_future_new(sff_req_t *r)
{
    sff_req_t *root = r->root;
    sff_future_t *f = h2o_mem_alloc_pool(&root->pool, sizeof(*f));
    memset(f, 0, sizeof(*f));
    f->root = root;
    f->pending = 1;
    h2o_linklist_insert(&root->futures, &f->link);
    return f;
}

void sff_future_set_cancel(sff_future_t *f, void *handle, void (*cancel)(void *handle))
{
    /* a cancel without its handle would leave the driver's request to complete a freed future */
    assert(handle != NULL && f->pending);
    f->handle = handle;
    f->cancel = cancel;
}

/* Records the outcome without waking anyone. */
static void settle(sff_future_t *f, int result, json_t *value, const char *msg)
{
    sff_req_t *root = f->root;
    f->pending = 0;
    h2o_linklist_unlink(&f->link);
    f->result = result;
    if (value != NULL) {
        h2o_vector_reserve(&root->pool, &root->owned, root->owned.size + 1);
        root->owned.entries[root->owned.size++] = value;
        f->value = value;
    }
    f->error = msg != NULL ? h2o_strdup(&root->pool, msg, SIZE_MAX).base : NULL;
    f->handle = NULL;
}

static void cancel_one(sff_future_t *f, int result)
{
    if (!f->pending)
        return;
    if (f->cancel != NULL && f->handle != NULL)
        f->cancel(f->handle);
    settle(f, result, NULL, NULL);
}

void sff_future_complete(sff_future_t *f, int result, json_t *value, const char *msg)
{
    sff_req_t *root = f->root;
    if (!f->pending) {
        json_decref(value);
        return;
    }
    settle(f, result, value, msg);
    if (!f->awaited || !root->waiting)
        return;
    if (result != 0 || --root->awaiting == 0)
        sff_call_wake(root, result);
}

static void on_await_timeout(sff_timer_t *t)
{
    sff_call_wake(t->data, SFF_ETIMEDOUT);
}

static void stop_await(sff_req_t *root)
{
    sff_timer_stop(&root->wait_timer);
}

void sff_future_cancel_all(sff_req_t *r)
{
    sff_req_t *root = r->root;
    while (!h2o_linklist_is_empty(&root->futures)) {
        sff_future_t *f = H2O_STRUCT_FROM_MEMBER(sff_future_t, link, root->futures.next);
        cancel_one(f, SFF_ECANCELED);
    }
}

int sff_future_await_all(sff_req_t *r, sff_future_t *const *fs, size_t n, uint32_t timeout_ms)
{
    sff_req_t *root = r->root;
    int ret = 0;
    size_t pending = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        if (fs[i] == NULL)
            ret = SFF_ENOMEM;
        else if (!fs[i]->pending)
            ret = fs[i]->result;
        else
            pending++;
    }
    if (ret == 0 && pending != 0 && root->canceled != 0)
        ret = root->canceled;
    if (ret == 0 && pending != 0) {
        for (size_t i = 0; i < n; i++)
            fs[i]->awaited = 1;
        root->awaiting = pending;
        if (timeout_ms != 0) {
            sff_timer_init(&root->wait_timer, on_await_timeout, root);
            sff_timer_start(&root->wait_timer, timeout_ms);
        }
        root->cancel_wait = stop_await;
        ret = sff_call_wait(r);
        sff_timer_stop(&root->wait_timer);
        for (size_t i = 0; i < n; i++)
            fs[i]->awaited = 0;
    }
    if (ret != 0) {
        for (size_t i = 0; i < n; i++)
            if (fs[i] != NULL)
                cancel_one(fs[i], ret);
    }
    return ret;
}
