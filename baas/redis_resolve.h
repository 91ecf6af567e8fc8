/*
 * redis_resolve.h - a host name lookup off the event loop. hiredis 0.14's connect calls
 * getaddrinfo() itself, which blocks on DNS; the client looks a name up here first (on a thread of
 * its own, reporting back through an eventfd watched by the loop) and hands hiredis the numeric
 * address.
 */
#ifndef SFF_REDIS_RESOLVE_H
#define SFF_REDIS_RESOLVE_H

#include <h2o.h>

typedef struct st_sff_redis_resolve_t sff_redis_resolve_t;

/* addr: a numeric address on success, NULL on failure; errmsg: why it failed. Both borrowed, valid
 * during the callback. The lookup is over (and freed) when the callback runs. */
typedef void (*sff_redis_resolve_cb)(void *data, const char *addr, const char *errmsg);

/* Starts looking host up; cb fires on loop (never inside this call). Returns the lookup, or NULL
 * when no thread or memory could be had (cb never fires). */
sff_redis_resolve_t *sff_redis_resolve_start(h2o_loop_t *loop, const char *host, sff_redis_resolve_cb cb, void *data);
/* Abandons a pending lookup: cb never fires; the thread frees what is left when it is done. */
void sff_redis_resolve_cancel(sff_redis_resolve_t *res);

#endif
