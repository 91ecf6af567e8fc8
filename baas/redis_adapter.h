/*
 * redis_adapter.h - hiredis's async context on the worker's h2o event loop (an adapter in the
 * style of the adapters hiredis ships).
 *
 * h2o 2.2.5 has no raw descriptor watcher, so the adapter wraps a dup() of the context's descriptor
 * in an h2o socket made with H2O_SOCKET_FLAG_DONT_READ: h2o_socket_read_start() then reports
 * readability without reading (level-triggered: it fires again while bytes are left), and
 * h2o_socket_notify_write() reports writability once per call. hiredis closes its own descriptor in
 * redisFree() and h2o_socket_close() closes the duplicate: epoll watches the open file description,
 * which stays open until both are closed, so neither side closes the other's descriptor. See
 * docs/decisions/0031-redis-adapter-on-a-dup.md.
 */
#ifndef SFF_REDIS_ADAPTER_H
#define SFF_REDIS_ADAPTER_H

#include <h2o.h>
#include <hiredis/async.h>

/*
 * Attaches ac to loop. Also marks ac's own descriptor close-on-exec (hiredis 0.14 does not). The
 * adapter's state is freed by hiredis's cleanup hook, which 0.14 may call more than once: the first
 * call detaches every hook, so later calls and event hooks are no-ops. Returns 0, or SFF_EINTERNAL
 * when something is already attached or the descriptor cannot be duplicated, SFF_ENOMEM; on failure
 * ac is unchanged and still the caller's to free.
 */
int sff_redis_adapter_attach(redisAsyncContext *ac, h2o_loop_t *loop);

#endif
