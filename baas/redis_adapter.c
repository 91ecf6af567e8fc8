#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include "sff.h"
#include "redis_adapter.h"
#include "timer.h"

/*
 * Writes: the socket is nearly always writable, so commands are written from a zero timer at the
 * end of the loop iteration that queued them (one write for all of them) rather than after a write
 * event: asking epoll for one, then withdrawing it, cost two epoll_ctl calls per iteration. A write
 * the kernel did not take whole (a full socket buffer) and the connect wait for a write event.
 */
typedef struct st_sff_redis_adapter_t {
    redisAsyncContext *ac;
    h2o_socket_t *sock; /* on a dup() of ac->c.fd */
    int reading;        /* hiredis wants read events */
    int writing;        /* hiredis wants to write */
    int write_armed;    /* h2o_socket_notify_write() is pending (it cannot be withdrawn) */
    int flushing;       /* in flush(): a write left over waits for a write event */
    sff_timer_t flush;  /* the write at the end of the loop iteration */
} sff_redis_adapter_t;

static void on_writable(h2o_socket_t *sock, const char *err);

static void on_readable(h2o_socket_t *sock, const char *err)
{
    (void)err; /* hiredis finds the error itself when it reads */
    sff_redis_adapter_t *a = sock->data;
    /* may free the context and, through cleanup(), a: nothing of either is touched afterwards */
    redisAsyncHandleRead(a->ac);
}

static void arm_write(sff_redis_adapter_t *a)
{
    if (!a->write_armed) {
        a->write_armed = 1;
        h2o_socket_notify_write(a->sock, on_writable);
    }
}

static void on_writable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    sff_redis_adapter_t *a = sock->data;
    a->write_armed = 0;
    /* a delWrite() since the notification was armed leaves a stale one: ignore it */
    if (a->writing)
        redisAsyncHandleWrite(a->ac); /* may free a, see on_readable() */
}

static void on_flush(sff_timer_t *timer)
{
    sff_redis_adapter_t *a = timer->data;
    if (!a->writing || a->write_armed)
        return;
    a->flushing = 1;              /* hiredis answers with del_write(), add_write() or a disconnect */
    redisAsyncHandleWrite(a->ac); /* may free a (see on_readable()): nothing of it after this */
}

static void add_read(void *data)
{
    sff_redis_adapter_t *a = data;
    if (!a->reading) {
        a->reading = 1;
        h2o_socket_read_start(a->sock, on_readable);
    }
}

static void del_read(void *data)
{
    sff_redis_adapter_t *a = data;
    if (a->reading) {
        a->reading = 0;
        h2o_socket_read_stop(a->sock);
    }
}

static void add_write(void *data)
{
    sff_redis_adapter_t *a = data;
    a->writing = 1;
    if (a->flushing || !(a->ac->c.flags & REDIS_CONNECTED)) {
        /* the kernel took part of it: the rest on a write event; and a connect in progress is
         * finished by its write event (hiredis 0.14 cannot tell otherwise) */
        a->flushing = 0;
        arm_write(a);
    } else if (!a->write_armed && !sff_timer_armed(&a->flush)) {
        sff_timer_start(&a->flush, 0);
    }
}

static void del_write(void *data)
{
    sff_redis_adapter_t *a = data;
    a->writing = 0;
    a->flushing = 0;
}

static void cleanup(void *data)
{
    sff_redis_adapter_t *a = data;
    if (a == NULL)
        return;
    /* hiredis 0.14 calls cleanup twice on an error disconnect (__redisAsyncDisconnect, then
     * __redisAsyncFree) and does not clear the hook: clear every hook so the second call, and any
     * add/del hook from a callback that runs in between, finds nothing. */
    a->ac->ev.data = NULL;
    a->ac->ev.addRead = NULL;
    a->ac->ev.delRead = NULL;
    a->ac->ev.addWrite = NULL;
    a->ac->ev.delWrite = NULL;
    a->ac->ev.cleanup = NULL;
    sff_timer_stop(&a->flush);
    /* closes the duplicate only; h2o calls no callback of a closed socket */
    h2o_socket_close(a->sock);
    free(a);
}

int sff_redis_adapter_attach(redisAsyncContext *ac, h2o_loop_t *loop)
{
    if (ac->ev.data != NULL || ac->c.fd < 0)
        return SFF_EINTERNAL;
    sff_redis_adapter_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return SFF_ENOMEM;
    int fd = fcntl(ac->c.fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        free(a);
        return e == ENOMEM ? SFF_ENOMEM : SFF_EINTERNAL;
    }
    /* hiredis 0.14 creates its socket without SOCK_CLOEXEC: a forked and exec'ed child would keep the
     * connection open after this process closed it */
    int flags = fcntl(ac->c.fd, F_GETFD);
    if (flags >= 0)
        fcntl(ac->c.fd, F_SETFD, flags | FD_CLOEXEC);
    a->ac = ac;
    sff_timer_init(&a->flush, on_flush, a);
    a->sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    a->sock->data = a;
    ac->ev.data = a;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return 0;
}
