/*
 * module.h - function modules and the generations of the route table they make up.
 *
 * A generation is one consistent route table: the modules loaded from SFF_FUNCTIONS_DIR, the
 * schemas of SFF_SCHEMAS_DIR and the router over their routes. A request takes a reference to
 * the current generation when it starts and keeps it to the end, so it never resumes in another
 * generation's code. Reloading builds a new generation (reusing the module instances whose files
 * did not change), swaps it in, and drops the old one's reference; a module instance is unloaded
 * (fini, dlclose) when the last generation holding it is gone.
 */
#ifndef SFF_MODULE_H
#define SFF_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "config.h"
#include "router.h"
#include "schema.h"
#include "sff.h"

typedef enum { SFF_POLICY_PUBLIC, SFF_POLICY_USER, SFF_POLICY_ROLE } sff_policy_kind_t;

typedef struct st_sff_module_inst_t {
    char *name;
    char *file; /* the source .so in SFF_FUNCTIONS_DIR */
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    off_t size;
    void *dl;
    const sff_module_t *desc;
    size_t refcnt; /* generations holding it */
    uint64_t serial;
} sff_module_inst_t;

typedef struct st_sff_route_entry_t {
    sff_route_t route; /* a copy: fields a module's (older) ABI lacks are zero; strings belong to mod */
    sff_module_inst_t *mod;
    const sff_schema_t *schema;
    char label[192]; /* "GET /api/todos/:id", for logs and metrics */
    sff_policy_kind_t policy;
    const char *role; /* for SFF_POLICY_ROLE, points into route->auth */
    uint32_t timeout_ms;
} sff_route_entry_t;

typedef struct st_sff_generation_t {
    uint64_t id;
    size_t refcnt;
    sff_router_t *router;
    sff_route_entry_t *routes;
    size_t nroutes;
    sff_module_inst_t **mods;
    size_t nmods;
    sff_schemas_t *schemas;
} sff_generation_t;

/* Load statistics of this process, for metrics. */
typedef struct st_sff_module_stats_t {
    uint64_t loads; /* module instances loaded */
    uint64_t load_errors;
    uint64_t reloads; /* generations swapped in after the first */
    uint64_t unloads;
    uint64_t last_load_us;
} sff_module_stats_t;
extern sff_module_stats_t sff_module_stats;

/* Sets the directory where module copies are made (created if needed) and the API table handed to
 * modules. Call once per worker before loading. Returns 0 or -1. */
int sff_module_setup(const char *rundir, const sff_api_t *api);
/* Removes the copies directory. */
void sff_module_cleanup(void);

/*
 * Builds a new generation from the config's functions and schemas directories. prev (may be NULL)
 * provides instances to reuse for unchanged files, and the running version of a module whose new
 * file is refused (another ABI, failing init, conflicting routes): the refusal is logged and the
 * old version keeps serving. Returns a generation with one reference, or NULL with a message in err
 * when nothing usable can be built (e.g. an invalid schema and no previous generation).
 */
sff_generation_t *sff_generation_load(const sff_config_t *config, sff_generation_t *prev, char *err, size_t errlen);

static inline void sff_generation_retain(sff_generation_t *gen)
{
    gen->refcnt++;
}
/* Drops a reference; the last one unloads what only this generation held. */
void sff_generation_release(sff_generation_t *gen);

/* Parses a route's auth string into the entry; -1 for an unknown policy. */
int sff_module_parse_policy(const char *auth, sff_route_entry_t *entry);

#endif
