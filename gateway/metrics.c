#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "metrics.h"

#define ROUTE_SLOTS 512
#define LABEL_MAX 96
#define NBUCKETS 15

static const uint64_t bucket_us[NBUCKETS] = {100,   250,    500,    1000,   2500,    5000,    10000,  25000,
                                             50000, 100000, 250000, 500000, 1000000, 2500000, 5000000};

typedef struct st_route_slot_t {
    uint32_t used;
    uint16_t status; /* 0 for the latency entry of a route */
    char label[LABEL_MAX];
    uint64_t count;
    uint64_t sum_us;
    uint64_t buckets[NBUCKETS];
} route_slot_t;

typedef struct st_worker_slot_t {
    route_slot_t routes[ROUTE_SLOTS];
    uint64_t inflight;
    uint64_t connections;
    uint64_t auth[SFF_METRIC_AUTH_KINDS];
    uint64_t h2[SFF_METRIC_H2_KINDS];
    uint64_t loads, load_errors, reloads, unloads;
    uint64_t handler_runs;
    uint64_t backend[SFF_METRIC_BACKEND_KINDS];
    uint64_t dropped; /* requests not counted by route for lack of slots */
} worker_slot_t;

static worker_slot_t *slots, *mine;
static int nslots;

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
/* Only the owning worker writes its slot, so an increment needs no locked instruction. */
#define ADD(x, d) __atomic_store_n(&(x), LOAD(x) + (d), __ATOMIC_RELAXED)

int sff_metrics_init(int nworkers)
{
    size_t size = sizeof(worker_slot_t) * (size_t)nworkers;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    slots = p;
    nslots = nworkers;
    return 0;
}

void sff_metrics_set_worker(int id)
{
    if (slots == NULL) {
        /* a process without a master (tests): a private slot */
        if (sff_metrics_init(1) != 0)
            return;
        id = 0;
    }
    mine = &slots[id];
    memset(mine, 0, sizeof(*mine));
}

static uint32_t hash(const char *s, int status)
{
    uint32_t h = 2166136261u ^ (uint32_t)status;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static route_slot_t *route_slot(const char *label, int status)
{
    uint32_t h = hash(label, status);
    for (int probe = 0; probe < ROUTE_SLOTS; probe++) {
        route_slot_t *e = &mine->routes[(h + (uint32_t)probe) % ROUTE_SLOTS];
        if (__atomic_load_n(&e->used, __ATOMIC_ACQUIRE)) {
            if (e->status == status && strncmp(e->label, label, LABEL_MAX - 1) == 0)
                return e;
            continue;
        }
        snprintf(e->label, LABEL_MAX, "%s", label);
        e->status = (uint16_t)status;
        __atomic_store_n(&e->used, 1, __ATOMIC_RELEASE);
        return e;
    }
    return NULL;
}

void sff_metrics_request(const char *route, int status, uint64_t us)
{
    if (mine == NULL)
        return;
    if (route == NULL)
        route = "";
    route_slot_t *c = route_slot(route, status), *l = route_slot(route, 0);
    if (c == NULL || l == NULL) {
        ADD(mine->dropped, 1);
        return;
    }
    ADD(c->count, 1);
    ADD(l->count, 1);
    ADD(l->sum_us, us);
    for (int i = 0; i < NBUCKETS; i++) {
        if (us <= bucket_us[i]) {
            ADD(l->buckets[i], 1);
            break;
        }
    }
}

void sff_metrics_inflight_add(int delta)
{
    if (mine != NULL)
        ADD(mine->inflight, (uint64_t)(int64_t)delta);
}

void sff_metrics_connections_add(int delta)
{
    if (mine != NULL)
        ADD(mine->connections, (uint64_t)(int64_t)delta);
}

void sff_metrics_auth_failure(sff_metric_auth_t kind)
{
    if (mine != NULL)
        ADD(mine->auth[kind], 1);
}

void sff_metrics_h2_abuse(sff_metric_h2_t kind)
{
    if (mine != NULL)
        ADD(mine->h2[kind], 1);
}

void sff_metrics_modules(uint64_t loads, uint64_t load_errors, uint64_t reloads, uint64_t unloads)
{
    if (mine == NULL)
        return;
    __atomic_store_n(&mine->loads, loads, __ATOMIC_RELAXED);
    __atomic_store_n(&mine->load_errors, load_errors, __ATOMIC_RELAXED);
    __atomic_store_n(&mine->reloads, reloads, __ATOMIC_RELAXED);
    __atomic_store_n(&mine->unloads, unloads, __ATOMIC_RELAXED);
}

void sff_metrics_handler_run(void)
{
    if (mine != NULL)
        ADD(mine->handler_runs, 1);
}

void sff_metrics_backend(sff_metric_backend_t which, uint64_t value)
{
    if (mine != NULL)
        __atomic_store_n(&mine->backend[which], value, __ATOMIC_RELAXED);
}

uint64_t sff_metrics_handler_runs(void)
{
    uint64_t n = 0;
    for (int w = 0; w < nslots; w++)
        n += LOAD(slots[w].handler_runs);
    return n;
}

typedef struct st_out_t {
    char *buf;
    size_t len, cap;
} out_t;

static void outf(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(out_t *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *b = realloc(o->buf, cap);
        if (b == NULL)
            return;
        o->buf = b;
        o->cap = cap;
    }
}

/* Writes a label value escaped for the Prometheus text format. */
static void out_label(out_t *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            outf(o, "\\%c", *s);
        else if (*s == '\n')
            outf(o, "\\n");
        else
            outf(o, "%c", *s);
    }
}

/* Adds up one (label, status) series over all workers; marks visited entries so each series is
 * written once. */
static void sum_route(const char *label, int status, uint64_t *count, uint64_t *sum, uint64_t *buckets)
{
    *count = *sum = 0;
    memset(buckets, 0, sizeof(uint64_t) * NBUCKETS);
    for (int w = 0; w < nslots; w++) {
        for (int i = 0; i < ROUTE_SLOTS; i++) {
            route_slot_t *e = &slots[w].routes[i];
            if (!__atomic_load_n(&e->used, __ATOMIC_ACQUIRE) || e->status != status || strcmp(e->label, label) != 0)
                continue;
            *count += LOAD(e->count);
            *sum += LOAD(e->sum_us);
            for (int b = 0; b < NBUCKETS; b++)
                buckets[b] += LOAD(e->buckets[b]);
        }
    }
}

static int seen_before(int w, int i)
{
    const route_slot_t *e = &slots[w].routes[i];
    for (int pw = 0; pw <= w; pw++) {
        for (int pi = 0; pi < ROUTE_SLOTS && (pw < w || pi < i); pi++) {
            const route_slot_t *p = &slots[pw].routes[pi];
            if (__atomic_load_n(&p->used, __ATOMIC_ACQUIRE) && p->status == e->status && strcmp(p->label, e->label) == 0)
                return 1;
        }
    }
    return 0;
}

#define SUM(field)                                                                                                                 \
    ({                                                                                                                             \
        uint64_t s_ = 0;                                                                                                           \
        for (int w_ = 0; w_ < nslots; w_++)                                                                                        \
            s_ += LOAD(slots[w_].field);                                                                                           \
        s_;                                                                                                                        \
    })

char *sff_metrics_render(size_t *len)
{
    out_t o = {malloc(16384), 0, 16384};
    uint64_t count, sum, buckets[NBUCKETS];
    if (o.buf == NULL)
        return NULL;
    o.buf[0] = '\0';
    outf(&o, "# HELP sff_requests_total Requests answered, by route and status.\n# TYPE sff_requests_total counter\n");
    for (int w = 0; w < nslots; w++) {
        for (int i = 0; i < ROUTE_SLOTS; i++) {
            route_slot_t *e = &slots[w].routes[i];
            if (!__atomic_load_n(&e->used, __ATOMIC_ACQUIRE) || e->status == 0 || seen_before(w, i))
                continue;
            sum_route(e->label, e->status, &count, &sum, buckets);
            outf(&o, "sff_requests_total{route=\"");
            out_label(&o, e->label);
            outf(&o, "\",status=\"%d\"} %llu\n", e->status, (unsigned long long)count);
        }
    }
    outf(&o, "# HELP sff_request_duration_seconds Time from request to response, by route.\n"
             "# TYPE sff_request_duration_seconds histogram\n");
    for (int w = 0; w < nslots; w++) {
        for (int i = 0; i < ROUTE_SLOTS; i++) {
            route_slot_t *e = &slots[w].routes[i];
            if (!__atomic_load_n(&e->used, __ATOMIC_ACQUIRE) || e->status != 0 || seen_before(w, i))
                continue;
            sum_route(e->label, 0, &count, &sum, buckets);
            uint64_t cum = 0;
            for (int b = 0; b < NBUCKETS; b++) {
                cum += buckets[b];
                outf(&o, "sff_request_duration_seconds_bucket{route=\"");
                out_label(&o, e->label);
                outf(&o, "\",le=\"%g\"} %llu\n", (double)bucket_us[b] / 1e6, (unsigned long long)cum);
            }
            outf(&o, "sff_request_duration_seconds_bucket{route=\"");
            out_label(&o, e->label);
            outf(&o, "\",le=\"+Inf\"} %llu\nsff_request_duration_seconds_sum{route=\"", (unsigned long long)count);
            out_label(&o, e->label);
            outf(&o, "\"} %.6f\nsff_request_duration_seconds_count{route=\"", (double)sum / 1e6);
            out_label(&o, e->label);
            outf(&o, "\"} %llu\n", (unsigned long long)count);
        }
    }
    outf(&o,
         "# HELP sff_requests_in_flight Function calls running now.\n# TYPE sff_requests_in_flight gauge\n"
         "sff_requests_in_flight %lld\n",
         (long long)SUM(inflight));
    outf(&o, "# HELP sff_connections Client connections open now.\n# TYPE sff_connections gauge\nsff_connections %lld\n",
         (long long)SUM(connections));
    static const char *auth_names[] = {"missing", "invalid", "forbidden"};
    outf(&o, "# HELP sff_auth_failures_total Requests refused by authentication.\n# TYPE sff_auth_failures_total counter\n");
    for (int k = 0; k < SFF_METRIC_AUTH_KINDS; k++)
        outf(&o, "sff_auth_failures_total{reason=\"%s\"} %llu\n", auth_names[k], (unsigned long long)SUM(auth[k]));
    static const char *h2_names[] = {"rapid_reset", "header_bytes", "slow_body"};
    outf(&o, "# HELP sff_abusive_connections_closed_total Connections closed for exceeding a budget.\n"
             "# TYPE sff_abusive_connections_closed_total counter\n");
    for (int k = 0; k < SFF_METRIC_H2_KINDS; k++)
        outf(&o, "sff_abusive_connections_closed_total{reason=\"%s\"} %llu\n", h2_names[k], (unsigned long long)SUM(h2[k]));
    outf(&o,
         "# HELP sff_function_loads_total Function modules loaded.\n# TYPE sff_function_loads_total counter\n"
         "sff_function_loads_total %llu\n"
         "# HELP sff_function_load_errors_total Function modules refused.\n# TYPE sff_function_load_errors_total counter\n"
         "sff_function_load_errors_total %llu\n"
         "# HELP sff_function_reloads_total Route tables swapped in by reloads.\n# TYPE sff_function_reloads_total counter\n"
         "sff_function_reloads_total %llu\n"
         "# HELP sff_function_unloads_total Function modules unloaded.\n# TYPE sff_function_unloads_total counter\n"
         "sff_function_unloads_total %llu\n"
         "# HELP sff_handler_runs_total Function handlers started.\n# TYPE sff_handler_runs_total counter\n"
         "sff_handler_runs_total %llu\n",
         (unsigned long long)SUM(loads), (unsigned long long)SUM(load_errors), (unsigned long long)SUM(reloads),
         (unsigned long long)SUM(unloads), (unsigned long long)SUM(handler_runs));
    static const struct {
        const char *name, *type, *help;
    } backend[SFF_METRIC_BACKEND_KINDS] = {
        {"sff_redis_up", "gauge", "Workers connected to Redis."},
        {"sff_redis_commands_total", "counter", "Redis commands sent."},
        {"sff_redis_errors_total", "counter", "Redis calls that failed (timeouts apart)."},
        {"sff_redis_timeouts_total", "counter", "Redis calls past their deadline."},
        {"sff_redis_reconnects_total", "counter", "Redis connections made again after a loss."},
        {"sff_cache_hits_total", "counter", "Cache reads answered from Redis."},
        {"sff_cache_misses_total", "counter", "Cache reads that missed (also while Redis is down)."},
        {"sff_cache_degraded_total", "counter", "Cache reads and writes skipped because Redis failed."},
        {"sff_pg_pool_size", "gauge", "Postgres connections configured."},
        {"sff_pg_pool_up", "gauge", "Postgres connections ready."},
        {"sff_pg_pool_in_use", "gauge", "Postgres connections with calls in flight or in a transaction."},
        {"sff_pg_pool_waiting", "gauge", "Postgres calls waiting for a connection."},
        {"sff_pg_pipeline_depth", "gauge", "Postgres calls in flight on all connections."},
        {"sff_pg_queries_total", "counter", "Postgres calls completed."},
        {"sff_pg_errors_total", "counter", "Postgres calls that failed."},
        {"sff_pg_timeouts_total", "counter", "Postgres calls past their deadline."},
        {"sff_pg_reconnects_total", "counter", "Postgres connections made again after a loss."},
        {"sff_pg_query_microseconds_sum", "counter", "Postgres call latency, summed."},
        {"sff_pg_batched_total", "counter", "Postgres calls sent corked with others of their loop iteration."},
        {"sff_storage_calls_total", "counter", "Object storage calls."},
        {"sff_storage_errors_total", "counter", "Object storage calls that failed."},
        {"sff_storage_retries_total", "counter", "Object storage calls retried."},
        {"sff_storage_read_bytes_total", "counter", "Object bytes read from storage."},
        {"sff_storage_written_bytes_total", "counter", "Object bytes written to storage."},
    };
    for (int k = 0; k < SFF_METRIC_BACKEND_KINDS; k++)
        outf(&o, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", backend[k].name, backend[k].help, backend[k].name, backend[k].type,
             backend[k].name, (unsigned long long)SUM(backend[k]));
    *len = o.len;
    return o.buf;
}
