/*
 * worker.h - one worker process: an h2o event loop with its own listening sockets (SO_REUSEPORT),
 * its generation of functions, its JWT verifier, and its timers. Nothing is shared between
 * workers on the request path, so nothing is locked.
 */
#ifndef SFF_WORKER_H
#define SFF_WORKER_H

#include <h2o.h>
#include "backends.h"
#include "config.h"
#include "jwt.h"
#include "module.h"

typedef struct st_sff_worker_t {
    int id;
    const sff_config_t *config;
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listeners[SFF_CONFIG_MAX_LISTEN];
    size_t nlisteners;
    h2o_socket_t *signals;
    sff_generation_t *gen; /* current generation (one reference held here) */
    sff_jwt_t *jwt;
    sff_backends_t backends;
    int tls;
    int draining;
    uint64_t drain_deadline_ms;
    size_t inflight; /* function calls not finished yet */
    int reload_requested;
} sff_worker_t;

/* The worker of this process, or NULL in the master. */
extern sff_worker_t *sff_worker;

/* Runs worker id until it is told to stop; returns the process exit status. */
int sff_worker_main(const sff_config_t *config, int id);

/* Builds and swaps in a new generation of functions, re-reads JWT keys. Called between loop
 * iterations. */
void sff_worker_reload(sff_worker_t *w);

#endif
