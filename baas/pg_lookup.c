/*
 * pg_lookup.c - host names of a conninfo looked up on a thread, so that libpq never calls a
 * blocking getaddrinfo() on the loop (docs/decisions/0024).
 *
 * libpq resolves a host name inside PQconnectPoll() with getaddrinfo(), which blocks for as long as
 * DNS takes. Given hostaddr, it connects to that address and keeps host for TLS verification and
 * .pgpass. So each attempt looks the names up here first, on a short-lived thread that reports
 * through an eventfd watched by the loop, and connects with every address found as a host of its
 * own: "host=db port=5432" becomes "host=db,db hostaddr=10.0.0.5,fd00::5".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <fcntl.h>
#include <h2o.h>
#include <libpq-fe.h>
#include "pg.h"

#define MAX_ADDRS 8 /* per name */

struct st_sff_pg_lookup_t {
    atomic_int refs;    /* the thread's and the loop's */
    int efd;            /* the thread writes here; closed with the last reference */
    h2o_socket_t *sock; /* the loop's watcher, on a dup() of efd */
    sff_pg_lookup_cb cb;
    void *data;
    size_t n;
    char **names; /* the conninfo's hosts */
    char **ports; /* one per host, or NULL when the conninfo does not list one per host */
    /* results, written by the thread before it signals */
    char *host, *hostaddr, *port;
    char err[256];
};

static void unref(sff_pg_lookup_t *l)
{
    if (atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->names[i]);
        if (l->ports != NULL)
            free(l->ports[i]);
    }
    free(l->names);
    free(l->ports);
    free(l->host);
    free(l->hostaddr);
    free(l->port);
    if (l->efd >= 0)
        close(l->efd);
    free(l);
}

/* Whether name must be looked up: not empty, not a socket directory, not a numeric address. */
static int is_name(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (name[0] == '\0' || name[0] == '/' || name[0] == '@')
        return 0;
    return inet_pton(AF_INET, name, buf) != 1 && inet_pton(AF_INET6, name, buf) != 1;
}

/* Splits a comma-separated list (libpq's syntax, without escapes) into *out; returns the count. */
static size_t split(const char *s, char ***out)
{
    size_t n = 1;
    for (const char *p = s; *p != '\0'; p++)
        n += *p == ',';
    char **v = calloc(n, sizeof(*v));
    if (v == NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(s, ',');
        size_t len = end != NULL ? (size_t)(end - s) : strlen(s);
        if ((v[i] = strndup(s, len)) == NULL) {
            while (i-- > 0)
                free(v[i]);
            free(v);
            return 0;
        }
        s += len + (end != NULL);
    }
    *out = v;
    return n;
}

static const char *option(const PQconninfoOption *opts, const char *key)
{
    for (; opts->keyword != NULL; opts++)
        if (strcmp(opts->keyword, key) == 0)
            return opts->val;
    return NULL;
}

int sff_pg_lookup_needed(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (opts == NULL)
        return 0;
    const char *host = option(opts, "host"), *hostaddr = option(opts, "hostaddr");
    int needed = 0;
    if (host != NULL && (hostaddr == NULL || hostaddr[0] == '\0')) {
        char **names;
        size_t n = split(host, &names);
        for (size_t i = 0; i < n; i++) {
            needed |= is_name(names[i]);
            free(names[i]);
        }
        if (n != 0)
            free(names);
    }
    PQconninfoFree(opts);
    return needed;
}

/* Appends s and a comma (unless first) to the growing string *buf. Returns 0 or -1. */
static int append(char **buf, size_t *len, const char *s, int first)
{
    size_t add = strlen(s) + 1;
    char *b = realloc(*buf, *len + add + 1);
    if (b == NULL)
        return -1;
    *buf = b;
    if (!first)
        b[(*len)++] = ',';
    memcpy(b + *len, s, add);
    *len += add - 1;
    return 0;
}

static void *lookup_thread(void *arg)
{
    sff_pg_lookup_t *l = arg;
    size_t hlen = 0, alen = 0, plen = 0, entries = 0;
    int failed = 0;
    for (size_t i = 0; i < l->n && !failed; i++) {
        const char *port = l->ports != NULL ? l->ports[i] : "";
        if (!is_name(l->names[i])) {
            failed |= append(&l->host, &hlen, l->names[i], entries == 0) | append(&l->hostaddr, &alen, "", entries == 0) |
                      append(&l->port, &plen, port, entries == 0);
            entries++;
            continue;
        }
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
        int gai = getaddrinfo(l->names[i], NULL, &hints, &res);
        if (gai != 0) {
            snprintf(l->err, sizeof(l->err), "cannot look up \"%s\": %s", l->names[i], gai_strerror(gai));
            continue; /* the other hosts may do */
        }
        char seen[MAX_ADDRS][INET6_ADDRSTRLEN];
        size_t nseen = 0;
        for (struct addrinfo *ai = res; ai != NULL && nseen < MAX_ADDRS && !failed; ai = ai->ai_next) {
            char addr[INET6_ADDRSTRLEN];
            if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST) != 0)
                continue;
            size_t k = 0;
            while (k < nseen && strcmp(seen[k], addr) != 0)
                k++;
            if (k < nseen)
                continue;
            memcpy(seen[nseen++], addr, sizeof(addr));
            failed |= append(&l->host, &hlen, l->names[i], entries == 0) | append(&l->hostaddr, &alen, addr, entries == 0) |
                      append(&l->port, &plen, port, entries == 0);
            entries++;
        }
        freeaddrinfo(res);
    }
    if (failed) {
        snprintf(l->err, sizeof(l->err), "out of memory");
        entries = 0;
    }
    if (entries == 0 && l->err[0] == '\0')
        snprintf(l->err, sizeof(l->err), "no address for the host");
    if (entries == 0) {
        free(l->host);
        free(l->hostaddr);
        free(l->port);
        l->host = l->hostaddr = l->port = NULL;
    } else if (l->ports == NULL) {
        free(l->port); /* one port (or the default) for all: libpq applies it to every host */
        l->port = NULL;
    }
    uint64_t one = 1;
    while (write(l->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    unref(l);
    return NULL;
}

static void on_done(h2o_socket_t *sock, const char *err)
{
    sff_pg_lookup_t *l = sock->data;
    uint64_t v;
    (void)err;
    if (read(l->efd, &v, sizeof(v)) < 0 && errno == EAGAIN)
        return; /* not yet */
    h2o_socket_close(l->sock);
    l->sock = NULL;
    sff_pg_lookup_cb cb = l->cb;
    l->cb = NULL;
    if (l->host != NULL) {
        const char *keys[] = {"host", "hostaddr", l->port != NULL ? "port" : NULL, NULL};
        const char *vals[] = {l->host, l->hostaddr, l->port, NULL};
        cb(l->data, keys, vals, NULL);
    } else {
        cb(l->data, NULL, NULL, l->err);
    }
    unref(l);
}

sff_pg_lookup_t *sff_pg_lookup_start(h2o_evloop_t *loop, const char *conninfo, sff_pg_lookup_cb cb, void *data)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    sff_pg_lookup_t *l = calloc(1, sizeof(*l));
    int dupfd = -1;
    if (l != NULL)
        l->efd = -1;
    if (opts == NULL || l == NULL)
        goto Fail;
    const char *host = option(opts, "host"), *port = option(opts, "port");
    if (host == NULL || (l->n = split(host, &l->names)) == 0)
        goto Fail;
    if (port != NULL && strchr(port, ',') != NULL) {
        char **ports;
        size_t np = split(port, &ports);
        if (np != l->n) { /* libpq refuses that; let it say so */
            for (size_t i = 0; i < np; i++)
                free(ports[i]);
            free(ports);
            goto Fail;
        }
        l->ports = ports;
    }
    if ((l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 || (dupfd = fcntl(l->efd, F_DUPFD_CLOEXEC, 0)) < 0)
        goto Fail;
    l->cb = cb;
    l->data = data;
    atomic_init(&l->refs, 2);
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int ret = pthread_create(&tid, &attr, lookup_thread, l);
    pthread_attr_destroy(&attr);
    if (ret != 0)
        goto Fail;
    l->sock = h2o_evloop_socket_create(loop, dupfd, H2O_SOCKET_FLAG_DONT_READ);
    l->sock->data = l;
    h2o_socket_read_start(l->sock, on_done);
    PQconninfoFree(opts);
    return l;
Fail:
    if (dupfd >= 0)
        close(dupfd);
    if (opts != NULL)
        PQconninfoFree(opts);
    if (l != NULL) {
        atomic_init(&l->refs, 1);
        unref(l);
    }
    return NULL;
}

void sff_pg_lookup_cancel(sff_pg_lookup_t *l)
{
    /* The thread cannot be stopped inside getaddrinfo(): it frees the lookup when it returns. */
    h2o_socket_close(l->sock);
    l->sock = NULL;
    l->cb = NULL;
    unref(l);
}
