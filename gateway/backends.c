#include <stdio.h>
#include "backends.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "timer.h"
#include "worker.h"

static sff_timer_t stats_timer;

/* Storage keeps no connection to watch: a probe lists one key every SFF_STORAGE_PROBE_MS, and
 * /_ready reports its last answer (ready until a probe fails). */
static struct {
    sff_timer_t timer;
    sff_objstore_op_t *op;
    int ok;
} probe = {.ok = 1};

/* Copies the clients' counters into this worker's metrics slot, once a second. */
static void on_stats(sff_timer_t *t)
{
    sff_worker_t *w = t->data;
    if (w->backends.redis != NULL) {
        sff_redis_stats_t s;
        sff_redis_stats(w->backends.redis, &s);
        sff_metrics_backend(SFF_METRIC_REDIS_UP, (uint64_t)s.connected);
        sff_metrics_backend(SFF_METRIC_REDIS_COMMANDS, s.commands);
        sff_metrics_backend(SFF_METRIC_REDIS_ERRORS, s.errors);
        sff_metrics_backend(SFF_METRIC_REDIS_TIMEOUTS, s.timeouts);
        sff_metrics_backend(SFF_METRIC_REDIS_RECONNECTS, s.reconnects);
        sff_metrics_backend(SFF_METRIC_CACHE_HITS, s.cache_hits);
        sff_metrics_backend(SFF_METRIC_CACHE_MISSES, s.cache_misses);
        sff_metrics_backend(SFF_METRIC_CACHE_DEGRADED, s.cache_degraded);
    }
    if (w->backends.pg != NULL) {
        sff_pg_stats_t s;
        sff_pg_stats(w->backends.pg, &s);
        sff_metrics_backend(SFF_METRIC_PG_SIZE, s.size);
        sff_metrics_backend(SFF_METRIC_PG_UP, s.up);
        sff_metrics_backend(SFF_METRIC_PG_IN_USE, s.in_use);
        sff_metrics_backend(SFF_METRIC_PG_WAITING, s.waiting);
        sff_metrics_backend(SFF_METRIC_PG_PIPELINE_DEPTH, s.pipeline_depth);
        sff_metrics_backend(SFF_METRIC_PG_QUERIES, s.queries);
        sff_metrics_backend(SFF_METRIC_PG_ERRORS, s.errors);
        sff_metrics_backend(SFF_METRIC_PG_TIMEOUTS, s.timeouts);
        sff_metrics_backend(SFF_METRIC_PG_RECONNECTS, s.reconnects);
        sff_metrics_backend(SFF_METRIC_PG_LATENCY_US, s.latency_us_sum);
        sff_metrics_backend(SFF_METRIC_PG_BATCHED, s.batched);
    }
    if (w->backends.storage != NULL) {
        uint64_t calls = 0, errors = 0;
        for (int op = 0; op < SFF_OBJSTORE_NOPS; op++) {
            calls += sff_objstore_stats.calls[op];
            errors += sff_objstore_stats.errors[op];
        }
        sff_metrics_backend(SFF_METRIC_STORAGE_CALLS, calls);
        sff_metrics_backend(SFF_METRIC_STORAGE_ERRORS, errors);
        sff_metrics_backend(SFF_METRIC_STORAGE_RETRIES, sff_objstore_stats.retries);
        sff_metrics_backend(SFF_METRIC_STORAGE_BYTES_IN, sff_objstore_stats.bytes_in);
        sff_metrics_backend(SFF_METRIC_STORAGE_BYTES_OUT, sff_objstore_stats.bytes_out);
    }
    sff_timer_start(t, 1000);
}

static void on_redis_state(void *data, int connected)
{
    (void)data;
    if (connected)
        sff_log_info("Redis connected");
    else
        sff_log_warn("Redis disconnected: its calls fail fast until it is back");
    sff_metrics_backend(SFF_METRIC_REDIS_UP, (uint64_t)connected);
}

static void on_probe(void *data, sff_objstore_result_t *res)
{
    sff_worker_t *w = data;
    int ok = res->err == 0;
    probe.op = NULL;
    if (ok != probe.ok) {
        if (ok)
            sff_log_info("storage answers again");
        else
            sff_log_warn("storage does not answer: %s", res->message != NULL ? res->message : sff_strerror(res->err));
    }
    probe.ok = ok;
    sff_timer_start(&probe.timer, w->config->storage_probe_ms);
}

static void on_probe_timer(sff_timer_t *t)
{
    sff_worker_t *w = t->data;
    uint32_t every = w->config->storage_probe_ms;
    sff_objstore_list_t opts = {.max_keys = 1, .timeout_ms = every < 5000 ? every : 5000};
    int ret = sff_objstore_list(w->backends.storage, &opts, on_probe, w, &probe.op);
    if (ret != 0) {
        sff_objstore_result_t res = {.err = ret};
        on_probe(w, &res);
    }
}

int sff_backends_start(sff_worker_t *w, char *err, size_t errlen)
{
    const sff_config_t *c = w->config;
    if (c->redis_url != NULL) {
        sff_redis_config_t rc = {.url = c->redis_url, .on_state = on_redis_state, .data = w};
        char msg[256];
        if ((w->backends.redis = sff_redis_create(w->ctx.loop, &rc, msg, sizeof(msg))) == NULL) {
            snprintf(err, errlen, "SFF_REDIS_URL: %s", msg);
            return -1;
        }
    }
    if (c->pg_url != NULL) {
        sff_pg_config_t pc = {.conninfo = c->pg_url,
                              .size = (size_t)c->pg_pool,
                              .statement_timeout_ms = c->pg_statement_timeout_ms,
                              .max_pipeline = c->pg_pipeline};
        char msg[256];
        if ((w->backends.pg = sff_pg_pool_create(w->ctx.loop, &pc, msg, sizeof(msg))) == NULL) {
            snprintf(err, errlen, "SFF_PG_URL: %s", msg);
            return -1;
        }
    }
    if (c->storage_url != NULL) {
        sff_objstore_config_t sc = {
            .url = c->storage_url, .access_key = c->s3_access_key, .secret_key = c->s3_secret_key, .max_upload = c->max_upload};
        char msg[256];
        if (sff_objstore_create(w->ctx.loop, &sc, &w->backends.storage, msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "SFF_STORAGE_URL: %s", msg);
            return -1;
        }
        sff_timer_init(&probe.timer, on_probe_timer, w);
        sff_timer_start(&probe.timer, 0);
    }
    sff_timer_init(&stats_timer, on_stats, w);
    sff_timer_start(&stats_timer, 1000);
    return 0;
}

void sff_backends_stop(sff_worker_t *w)
{
    sff_timer_stop(&stats_timer);
    if (w->backends.redis != NULL) {
        sff_redis_destroy(w->backends.redis);
        w->backends.redis = NULL;
    }
    if (w->backends.pg != NULL) {
        sff_pg_pool_destroy(w->backends.pg);
        w->backends.pg = NULL;
    }
    if (w->backends.storage != NULL) {
        sff_timer_stop(&probe.timer);
        if (probe.op != NULL)
            sff_objstore_cancel(probe.op);
        probe.op = NULL;
        sff_objstore_destroy(w->backends.storage);
        w->backends.storage = NULL;
    }
}

int sff_backends_ready(sff_worker_t *w, json_t *checks)
{
    int ok = 1;
    if (w->backends.redis != NULL) {
        int up = sff_redis_connected(w->backends.redis);
        json_object_set_new(checks, "redis", json_pack("{s:b}", "ok", up));
        ok &= up;
    }
    if (w->backends.pg != NULL) {
        sff_pg_stats_t s;
        sff_pg_stats(w->backends.pg, &s);
        json_object_set_new(
            checks, "postgres",
            json_pack("{s:b, s:I, s:I}", "ok", s.up > 0, "connections", (json_int_t)s.up, "size", (json_int_t)s.size));
        ok &= s.up > 0;
    }
    if (w->backends.storage != NULL) {
        /* why it failed goes to the log, not to whoever asks /_ready */
        json_object_set_new(checks, "storage",
                            json_pack("{s:b, s:s}", "ok", probe.ok, "driver", sff_objstore_driver(w->backends.storage)));
        ok &= probe.ok;
    }
    return ok;
}
