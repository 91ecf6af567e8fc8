/*
 * metrics.h - counters for GET /_metrics (Prometheus text format).
 *
 * Each worker writes only its own slot of a shared memory area the master maps before forking, so
 * no lock is taken on the request path; /_metrics, served by any worker, adds up all slots.
 */
#ifndef SFF_METRICS_H
#define SFF_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SFF_METRIC_AUTH_MISSING,   /* a route needing a token got none */
    SFF_METRIC_AUTH_INVALID,   /* a token failed verification */
    SFF_METRIC_AUTH_FORBIDDEN, /* a valid token lacked the role */
    SFF_METRIC_AUTH_KINDS
} sff_metric_auth_t;

typedef enum {
    SFF_METRIC_H2_RESETS,    /* connections closed for too many early stream resets */
    SFF_METRIC_H2_HEADERS,   /* connections closed for too many decoded header bytes */
    SFF_METRIC_H2_SLOW_BODY, /* connections closed for a request body that did not progress */
    SFF_METRIC_H2_KINDS
} sff_metric_h2_t;

typedef enum {
    SFF_METRIC_REDIS_UP,
    SFF_METRIC_REDIS_COMMANDS,
    SFF_METRIC_REDIS_ERRORS,
    SFF_METRIC_REDIS_TIMEOUTS,
    SFF_METRIC_REDIS_RECONNECTS,
    SFF_METRIC_CACHE_HITS,
    SFF_METRIC_CACHE_MISSES,
    SFF_METRIC_CACHE_DEGRADED,
    SFF_METRIC_PG_SIZE,
    SFF_METRIC_PG_UP,
    SFF_METRIC_PG_IN_USE,
    SFF_METRIC_PG_WAITING,
    SFF_METRIC_PG_PIPELINE_DEPTH,
    SFF_METRIC_PG_QUERIES,
    SFF_METRIC_PG_ERRORS,
    SFF_METRIC_PG_TIMEOUTS,
    SFF_METRIC_PG_RECONNECTS,
    SFF_METRIC_PG_LATENCY_US,
    SFF_METRIC_PG_BATCHED,
    SFF_METRIC_STORAGE_CALLS,
    SFF_METRIC_STORAGE_ERRORS,
    SFF_METRIC_STORAGE_RETRIES,
    SFF_METRIC_STORAGE_BYTES_IN,
    SFF_METRIC_STORAGE_BYTES_OUT,
    SFF_METRIC_BACKEND_KINDS
} sff_metric_backend_t;

/* Maps the shared area for nworkers slots. Called once in the master, before forking. */
int sff_metrics_init(int nworkers);
/* Selects the slot of this worker (and clears it: a respawned worker starts from zero). */
void sff_metrics_set_worker(int id);

/* One finished request. route is the route label ("GET /a/:id"), or NULL for none (static files,
 * built-ins, 404s). */
void sff_metrics_request(const char *route, int status, uint64_t duration_us);
void sff_metrics_inflight_add(int delta);
void sff_metrics_auth_failure(sff_metric_auth_t kind);
void sff_metrics_h2_abuse(sff_metric_h2_t kind);
/* Copies this worker's module statistics and function handler runs into its slot. */
void sff_metrics_modules(uint64_t loads, uint64_t load_errors, uint64_t reloads, uint64_t unloads);
void sff_metrics_handler_run(void);
/* Sets a backend gauge or counter of this worker (copied from the client's own statistics). */
void sff_metrics_backend(sff_metric_backend_t which, uint64_t value);
void sff_metrics_connections_add(int delta);

/* The Prometheus text of all workers; malloc()ed, caller frees. */
char *sff_metrics_render(size_t *len);

/* Sum over workers of handler runs (for tests and the rapid-reset figure). */
uint64_t sff_metrics_handler_runs(void);

#endif
