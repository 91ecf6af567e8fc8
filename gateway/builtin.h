/*
 * builtin.h - the gateway's own endpoints: GET /_health (alive), /_ready (ready to serve),
 * /_metrics (Prometheus text) and /_openapi.json (OpenAPI 3.1 from routes and schemas).
 */
#ifndef SFF_BUILTIN_H
#define SFF_BUILTIN_H

#include <h2o.h>
#include <jansson.h>
#include "worker.h"

/* Answers req when path (the raw path, len bytes) is a built-in endpoint and returns 0; returns -1
 * (having sent nothing) for any other path. */
int sff_builtin_handle(sff_worker_t *w, h2o_req_t *req, const char *path, size_t len);

/* The OpenAPI 3.1 document of a generation. New reference. */
json_t *sff_openapi_build(const sff_generation_t *gen, const sff_config_t *config);

#endif
