/*
 * backends.h - the backend clients of a worker (Redis now; Postgres and object storage as they are
 * wired in), created after the fork in each worker, their readiness for /_ready and their counters
 * for /_metrics.
 */
#ifndef SFF_BACKENDS_H
#define SFF_BACKENDS_H

#include <jansson.h>
#include "objstore.h"
#include "pg.h"
#include "redis.h"

struct st_sff_worker_t;

typedef struct st_sff_backends_t {
    sff_redis_t *redis;      /* NULL without SFF_REDIS_URL */
    sff_pg_pool_t *pg;       /* NULL without SFF_PG_URL */
    sff_objstore_t *storage; /* NULL without SFF_STORAGE_URL */
} sff_backends_t;

/* Creates the configured clients on the worker's loop. Returns 0, or -1 with a message in err for a
 * configuration that cannot work (a malformed URL); a backend that is down is not an error: it is
 * retried, and reported by /_ready. */
int sff_backends_start(struct st_sff_worker_t *w, char *err, size_t errlen);
void sff_backends_stop(struct st_sff_worker_t *w);

/* Adds one member per configured backend to checks ({"ok": true|false}); returns nonzero when all
 * of them are up. */
int sff_backends_ready(struct st_sff_worker_t *w, json_t *checks);

#endif
