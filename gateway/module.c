#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "log.h"
#include "module.h"
#include "timer.h"

sff_module_stats_t sff_module_stats;

static char *copies_dir;
static const sff_api_t *api_table;
static uint64_t next_serial = 1;
static uint64_t next_generation = 1;

int sff_module_setup(const char *rundir, const sff_api_t *api)
{
    api_table = api;
    free(copies_dir);
    copies_dir = strdup(rundir);
    if (copies_dir == NULL)
        return -1;
    if (mkdir(copies_dir, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

void sff_module_cleanup(void)
{
    if (copies_dir != NULL)
        rmdir(copies_dir);
    free(copies_dir);
    copies_dir = NULL;
}

/* Copies src to dst with a fresh inode, so that dlopen() loads this build even when another build
 * of the same module is already mapped (dlopen returns the loaded handle for a known path). */
static int copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, ret = -1;
    char buf[65536];
    if (in < 0)
        return -1;
    if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700)) < 0)
        goto Exit;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto Exit;
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR)
                goto Exit;
            off += w > 0 ? w : 0;
        }
    }
    ret = 0;
Exit:
    close(in);
    if (out >= 0 && close(out) != 0)
        ret = -1;
    return ret;
}

static void inst_unload(sff_module_inst_t *m)
{
    if (m->desc != NULL && m->desc->fini != NULL)
        m->desc->fini();
    if (m->dl != NULL)
        dlclose(m->dl);
    sff_module_stats.unloads++;
    sff_log_info("module %s unloaded (instance %llu)", m->name, (unsigned long long)m->serial);
    free(m->name);
    free(m->file);
    free(m);
}

static void inst_release(sff_module_inst_t *m)
{
    if (--m->refcnt == 0)
        inst_unload(m);
}

/* Loads one module file. Returns a new instance (refcnt 0) or NULL after logging why. */
static sff_module_inst_t *inst_load(const char *name, const char *file, const struct stat *st)
{
    char copy[4096];
    uint64_t t0 = sff_now_us();
    sff_module_inst_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->serial = next_serial++;
    snprintf(copy, sizeof(copy), "%s/%s.%d.%llu.so", copies_dir, name, (int)getpid(), (unsigned long long)m->serial);
    if (copy_file(file, copy) != 0) {
        sff_log_error("module %s: cannot copy %s: %s; the running version (if any) keeps serving", name, file, strerror(errno));
        unlink(copy);
        goto Error;
    }
    m->dl = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
    unlink(copy); /* the mapping stays; nothing is left behind on disk */
    if (m->dl == NULL) {
        sff_log_error("module %s: cannot load %s: %s; the running version (if any) keeps serving", name, file, dlerror());
        goto Error;
    }
    m->desc = dlsym(m->dl, "sff_module");
    if (m->desc == NULL) {
        sff_log_error("module %s: %s exports no \"sff_module\" descriptor (build it with SFF_MODULE()); refused", name, file);
        goto Error;
    }
    if (m->desc->abi_major != SFF_ABI_MAJOR || m->desc->abi_minor > SFF_ABI_MINOR) {
        sff_log_error("module %s: built for sff ABI %u.%u, this gateway runs ABI %d.%d: refused; the running version (if "
                      "any) keeps serving",
                      name, m->desc->abi_major, m->desc->abi_minor, SFF_ABI_MAJOR, SFF_ABI_MINOR);
        m->desc = NULL;
        goto Error;
    }
    if (m->desc->api == NULL || (m->desc->nroutes != 0 && m->desc->routes == NULL)) {
        sff_log_error("module %s: malformed descriptor; refused", name);
        m->desc = NULL;
        goto Error;
    }
    *m->desc->api = api_table;
    if (m->desc->init != NULL && m->desc->init() != 0) {
        sff_log_error("module %s: init failed; refused; the running version (if any) keeps serving", name);
        m->desc = NULL; /* fini is not called for a module whose init failed */
        goto Error;
    }
    m->name = strdup(name);
    m->file = strdup(file);
    m->dev = st->st_dev;
    m->ino = st->st_ino;
    m->mtime = st->st_mtim;
    m->size = st->st_size;
    sff_module_stats.loads++;
    sff_module_stats.last_load_us = sff_now_us() - t0;
    sff_log_info("module %s loaded from %s (ABI %u.%u, %zu routes, %llu us)", name, file, m->desc->abi_major, m->desc->abi_minor,
                 m->desc->nroutes, (unsigned long long)sff_module_stats.last_load_us);
    return m;
Error:
    sff_module_stats.load_errors++;
    if (m->dl != NULL)
        dlclose(m->dl);
    free(m);
    return NULL;
}

int sff_module_parse_policy(const char *auth, sff_route_entry_t *e)
{
    e->role = NULL;
    if (auth == NULL || strcmp(auth, "user") == 0) {
        e->policy = SFF_POLICY_USER;
    } else if (strcmp(auth, "public") == 0) {
        e->policy = SFF_POLICY_PUBLIC;
    } else if (strncmp(auth, "role:", 5) == 0 && auth[5] != '\0') {
        e->policy = SFF_POLICY_ROLE;
        e->role = auth + 5;
    } else {
        return -1;
    }
    return 0;
}

static sff_module_inst_t *find_inst(sff_generation_t *gen, const char *name)
{
    for (size_t i = 0; gen != NULL && i < gen->nmods; i++)
        if (strcmp(gen->mods[i]->name, name) == 0)
            return gen->mods[i];
    return NULL;
}

/* Adds m's routes to gen. On a problem, removes what it added, logs and returns -1. */
static int add_routes(sff_generation_t *gen, sff_module_inst_t *m, const sff_config_t *config)
{
    size_t first = gen->nroutes;
    const sff_module_t *d = m->desc;
    sff_route_entry_t *grown = realloc(gen->routes, (gen->nroutes + d->nroutes) * sizeof(*grown) + 1);
    if (grown == NULL)
        return -1;
    gen->routes = grown;
    /* A module built for an older minor has a smaller sff_route_t: step by its size, and leave the
     * fields it does not know zero. */
    size_t stride = d->route_size != 0 ? d->route_size : sizeof(sff_route_t);
    for (size_t i = 0; i < d->nroutes; i++) {
        sff_route_entry_t *e = &gen->routes[gen->nroutes];
        memset(e, 0, sizeof(*e));
        memcpy(&e->route, (const char *)d->routes + i * stride, stride < sizeof(e->route) ? stride : sizeof(e->route));
        const sff_route_t *r = &e->route;
        e->mod = m;
        e->timeout_ms = r->timeout_ms != 0 ? r->timeout_ms : config->timeout_ms;
        if (r->method == NULL || r->path == NULL || r->handler == NULL) {
            sff_log_error("module %s: route %zu lacks a method, path or handler; module refused", m->name, i);
            goto Error;
        }
        snprintf(e->label, sizeof(e->label), "%s %s", r->method, r->path);
        if (sff_module_parse_policy(r->auth, e) != 0) {
            sff_log_error("module %s: route %s: unknown auth policy \"%s\" (public, user or role:NAME); module refused", m->name,
                          e->label, r->auth);
            goto Error;
        }
        if (r->schema != NULL && (e->schema = sff_schemas_get(gen->schemas, r->schema)) == NULL) {
            sff_log_error("module %s: route %s: no schema \"%s\" in %s/json; module refused", m->name, e->label, r->schema,
                          config->schemas_dir);
            goto Error;
        }
        gen->nroutes++;
    }
    return 0;
Error:
    gen->nroutes = first;
    return -1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Builds the router over gen's routes; returns -1 (with the module to blame in *culprit) when a
 * route conflicts. Route pointers are stable: the routes array is final when this runs. */
static int build_router(sff_generation_t *gen, sff_module_inst_t **culprit)
{
    char err[256];
    sff_router_destroy(gen->router);
    if ((gen->router = sff_router_create()) == NULL)
        return -1;
    for (size_t i = 0; i < gen->nroutes; i++) {
        sff_route_entry_t *e = &gen->routes[i];
        if (sff_router_add(gen->router, e->route.method, e->route.path, e, err, sizeof(err)) != 0) {
            sff_log_error("module %s: route %s: %s; module refused", e->mod->name, e->label, err);
            *culprit = e->mod;
            return -1;
        }
    }
    return 0;
}

static void remove_module(sff_generation_t *gen, sff_module_inst_t *m)
{
    size_t w = 0;
    for (size_t i = 0; i < gen->nroutes; i++)
        if (gen->routes[i].mod != m)
            gen->routes[w++] = gen->routes[i];
    gen->nroutes = w;
    w = 0;
    for (size_t i = 0; i < gen->nmods; i++)
        if (gen->mods[i] != m)
            gen->mods[w++] = gen->mods[i];
    gen->nmods = w;
    inst_release(m);
}

static void generation_free(sff_generation_t *gen)
{
    for (size_t i = 0; i < gen->nmods; i++)
        inst_release(gen->mods[i]);
    free(gen->mods);
    free(gen->routes);
    sff_router_destroy(gen->router);
    sff_schemas_destroy(gen->schemas);
    free(gen);
}

void sff_generation_release(sff_generation_t *gen)
{
    if (gen != NULL && --gen->refcnt == 0)
        generation_free(gen);
}

sff_generation_t *sff_generation_load(const sff_config_t *config, sff_generation_t *prev, char *err, size_t errlen)
{
    sff_generation_t *gen = calloc(1, sizeof(*gen));
    char **names = NULL;
    size_t nnames = 0;
    DIR *dir = NULL;
    if (gen == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    gen->refcnt = 1;
    gen->id = next_generation++;
    char schema_dir[4096];
    snprintf(schema_dir, sizeof(schema_dir), "%s/json", config->schemas_dir);
    if ((gen->schemas = sff_schemas_load(schema_dir, err, errlen)) == NULL)
        goto Error;

    if ((dir = opendir(config->functions_dir)) == NULL) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "SFF_FUNCTIONS_DIR %s: %s", config->functions_dir, strerror(errno));
            goto Error;
        }
        sff_log_warn("SFF_FUNCTIONS_DIR %s does not exist: no functions are served", config->functions_dir);
    } else {
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            size_t len = strlen(de->d_name);
            if (len <= 3 || strcmp(de->d_name + len - 3, ".so") != 0 || de->d_name[0] == '.')
                continue;
            char **grown = realloc(names, (nnames + 1) * sizeof(*names));
            if (grown == NULL)
                goto NoMem;
            names = grown;
            if ((names[nnames] = strndup(de->d_name, len - 3)) == NULL)
                goto NoMem;
            nnames++;
        }
        closedir(dir);
        dir = NULL;
        if (nnames > 1)
            qsort(names, nnames, sizeof(*names), cmp_names);
    }
    if ((gen->mods = calloc(nnames + 1, sizeof(*gen->mods))) == NULL)
        goto NoMem;

    for (size_t i = 0; i < nnames; i++) {
        char file[4096];
        struct stat st;
        snprintf(file, sizeof(file), "%s/%s.so", config->functions_dir, names[i]);
        sff_module_inst_t *old = find_inst(prev, names[i]), *m = NULL;
        if (stat(file, &st) != 0)
            continue;
        if (old != NULL && old->dev == st.st_dev && old->ino == st.st_ino && old->size == st.st_size &&
            old->mtime.tv_sec == st.st_mtim.tv_sec && old->mtime.tv_nsec == st.st_mtim.tv_nsec) {
            m = old;
        } else if ((m = inst_load(names[i], file, &st)) == NULL) {
            m = old;
        }
        if (m == NULL)
            continue;
        m->refcnt++;
        gen->mods[gen->nmods++] = m;
        if (add_routes(gen, m, config) != 0) {
            remove_module(gen, m);
            if (old != NULL && m != old) {
                old->refcnt++;
                gen->mods[gen->nmods++] = old;
                if (add_routes(gen, old, config) != 0)
                    remove_module(gen, old);
                else
                    sff_log_warn("module %s: the running version keeps serving", old->name);
            }
        }
    }
    /* A route that conflicts with another module's drops its module (the later in name order). */
    for (;;) {
        sff_module_inst_t *culprit = NULL;
        if (build_router(gen, &culprit) == 0)
            break;
        if (culprit == NULL)
            goto NoMem;
        remove_module(gen, culprit);
    }
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    return gen;

NoMem:
    snprintf(err, errlen, "out of memory");
Error:
    if (dir != NULL)
        closedir(dir);
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    generation_free(gen);
    return NULL;
}
