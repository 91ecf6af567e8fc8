#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "redis_resolve.h"

struct st_sff_redis_resolve_t {
    atomic_int refs;    /* the loop's and the thread's */
    atomic_int done;    /* set by the thread (release) after addr and gai */
    int efd;            /* the thread signals here; closed by the last owner */
    h2o_socket_t *sock; /* on a dup() of efd, the loop's side */
    sff_redis_resolve_cb cb;
    void *data;
    char host[256];
    char addr[INET6_ADDRSTRLEN];
    int gai; /* getaddrinfo()'s result */
};

static void release(sff_redis_resolve_t *res)
{
    if (atomic_fetch_sub_explicit(&res->refs, 1, memory_order_acq_rel) == 1) {
        close(res->efd);
        free(res);
    }
}

static void *lookup(void *arg)
{
    sff_redis_resolve_t *res = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG}, *ai;
    res->gai = getaddrinfo(res->host, NULL, &hints, &ai);
    if (res->gai == 0) {
        const void *a = ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                                                  : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        inet_ntop(ai->ai_family, a, res->addr, sizeof(res->addr));
        freeaddrinfo(ai);
    }
    atomic_store_explicit(&res->done, 1, memory_order_release);
    eventfd_write(res->efd, 1);
    release(res);
    return NULL;
}

static void on_done(h2o_socket_t *sock, const char *err)
{
    (void)err;
    sff_redis_resolve_t *res = sock->data;
    if (!atomic_load_explicit(&res->done, memory_order_acquire))
        return;
    h2o_socket_read_stop(sock);
    h2o_socket_close(sock);
    res->sock = NULL;
    if (res->gai == 0)
        res->cb(res->data, res->addr, NULL);
    else
        res->cb(res->data, NULL, gai_strerror(res->gai));
    release(res);
}

sff_redis_resolve_t *sff_redis_resolve_start(h2o_loop_t *loop, const char *host, sff_redis_resolve_cb cb, void *data)
{
    sff_redis_resolve_t *res = calloc(1, sizeof(*res));
    if (res == NULL)
        return NULL;
    size_t len = strlen(host);
    if (len >= sizeof(res->host))
        goto Error;
    memcpy(res->host, host, len + 1);
    res->cb = cb;
    res->data = data;
    if ((res->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        goto Error;
    int fd = fcntl(res->efd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        close(res->efd);
        goto Error;
    }
    atomic_init(&res->refs, 2);
    atomic_init(&res->done, 0);
    res->sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    res->sock->data = res;
    h2o_socket_read_start(res->sock, on_done);

    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ret = pthread_create(&tid, &attr, lookup, res);
    pthread_attr_destroy(&attr);
    if (ret != 0) {
        h2o_socket_close(res->sock);
        close(res->efd);
        goto Error;
    }
    return res;
Error:
    free(res);
    return NULL;
}

void sff_redis_resolve_cancel(sff_redis_resolve_t *res)
{
    h2o_socket_read_stop(res->sock);
    h2o_socket_close(res->sock);
    res->sock = NULL;
    release(res);
}
