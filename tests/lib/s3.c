/*
 * s3.c - s3rver for tests, and the fault-injecting proxy (see s3.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/s3.h"

#define START_TIMEOUT_MS 20000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

const char *tc_node_path(const char *rel)
{
    static char buf[PATH_MAX];
    const char *top = getenv("SFF_TOP");
    snprintf(buf, sizeof(buf), "%s/tests/node/%s", top != NULL && *top != '\0' ? top : ".", rel);
    return buf;
}

static void print_log(tc_s3_t *s3)
{
    char path[300], line[1024];
    snprintf(path, sizeof(path), "%s/s3rver.log", s3->dir);
    FILE *fp = fopen(path, "r");
    fprintf(stderr, "---- %s ----\n", path);
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
        fputs(line, stderr);
    if (fp != NULL)
        fclose(fp);
    fprintf(stderr, "---- end ----\n");
}

/* Nonzero when GET /bucket answers 200. */
static int ready(tc_s3_t *s3)
{
    char req[256];
    tc_response_t res = {0};
    int fd = tc_connect(s3->port), ok = 0;
    if (fd < 0)
        return 0;
    snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", s3->bucket, s3->port);
    if (tc_write_all(fd, req, strlen(req)) == 0 && tc_read_response(fd, "GET", 2000, &res) == 0)
        ok = res.status == 200;
    tc_response_free(&res);
    close(fd);
    return ok;
}

int tc_s3_start(tc_s3_t *s3, const char *bucket, const tc_s3_tls_t *tls)
{
    const char *tmp = getenv("TMPDIR");
    memset(s3, 0, sizeof(*s3));
    snprintf(s3->bucket, sizeof(s3->bucket), "%s", bucket);
    snprintf(s3->dir, sizeof(s3->dir), "%s/sff-s3rver-XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(s3->dir) == NULL) {
        fprintf(stderr, "tc_s3_start: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char data[300], log[300], port[16], script[PATH_MAX];
    snprintf(data, sizeof(data), "%s/data", s3->dir);
    snprintf(log, sizeof(log), "%s/s3rver.log", s3->dir);
    snprintf(script, sizeof(script), "%s", tc_node_path("node_modules/s3rver/bin/s3rver.js"));
    mkdir(data, 0700);
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "tc_s3_start: %s is missing: run `npm ci --prefix tests/node`\n", script);
        tc_s3_stop(s3);
        return -1;
    }
    s3->port = tc_free_port();
    snprintf(port, sizeof(port), "%d", s3->port);
    snprintf(s3->endpoint, sizeof(s3->endpoint), "%s://127.0.0.1:%d", tls != NULL ? "https" : "http", s3->port);
    int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    /* s3rver's continuation tokens are DES-encrypted, which OpenSSL 3 keeps in its legacy provider */
    char *argv[20] = {
        "node",         "--openssl-legacy-provider", script,     "-d", data, "-a", "127.0.0.1", "-p", port, "--configure-bucket",
        (char *)bucket, "--service-endpoint",        "localhost"};
    int argc = 13;
    if (tls != NULL) {
        argv[argc++] = "--cert";
        argv[argc++] = (char *)tls->cert;
        argv[argc++] = "--key";
        argv[argc++] = (char *)tls->key;
    }
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        dup2(nullfd, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        signal(SIGPIPE, SIG_DFL);
        execvp("node", argv);
        static const char msg[] = "tc_s3_start: cannot exec node\n";
        ssize_t r = write(2, msg, sizeof(msg) - 1);
        (void)r;
        _exit(127);
    }
    close(logfd);
    close(nullfd);
    if (pid < 0) {
        fprintf(stderr, "tc_s3_start: fork: %s\n", strerror(errno));
        tc_s3_stop(s3);
        return -1;
    }
    s3->pid = pid;
    int64_t deadline = now_ms() + START_TIMEOUT_MS;
    while (!(tls != NULL ? tc_connect(s3->port) >= 0 : ready(s3))) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s3->pid = 0;
            fprintf(stderr, "tc_s3_start: s3rver exited (status %d)\n", status);
            print_log(s3);
            tc_s3_stop(s3);
            return -1;
        }
        if (now_ms() > deadline) {
            fprintf(stderr, "tc_s3_start: s3rver did not come up in %d ms\n", START_TIMEOUT_MS);
            print_log(s3);
            tc_s3_stop(s3);
            return -1;
        }
        sleep_ms(50);
    }
    if (tls != NULL)
        sleep_ms(300); /* the TLS probe above only saw the port open */
    return 0;
}

void tc_s3_stop(tc_s3_t *s3)
{
    if (s3->pid > 0) {
        kill(-s3->pid, SIGTERM);
        int status;
        int64_t deadline = now_ms() + 5000;
        while (waitpid(s3->pid, &status, WNOHANG) == 0) {
            if (now_ms() > deadline) {
                kill(-s3->pid, SIGKILL);
                waitpid(s3->pid, &status, 0);
                break;
            }
            sleep_ms(10);
        }
        kill(-s3->pid, SIGKILL); /* anything left of the group */
        s3->pid = 0;
    }
    if (s3->dir[0] != '\0') {
        nftw(s3->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        s3->dir[0] = '\0';
    }
}

/* ---- the fault proxy ---------------------------------------------------------------------------- */

typedef struct st_conn_t {
    struct st_conn_t *next;
    tc_proxy_t *p;
    pthread_t thread;
    int fd, up;
} conn_t;

typedef struct {
    tc_fault_t kind;
    size_t arg;
} fault_t;

struct st_tc_proxy_t {
    int port, upstream, lfd;
    volatile int stop;
    pthread_t accept_thread;
    pthread_mutex_t mutex;
    conn_t *conns;
    fault_t faults[64];
    size_t nfaults;
    size_t requests, connections;
};

/* Waits until fd is readable; 1, or 0 when the proxy stops, -1 on error. */
static int wait_in(tc_proxy_t *p, int fd)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    while (!p->stop) {
        int r = poll(&pfd, 1, 50);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
    return 0;
}

/* Reads up to n bytes (waiting); >0, 0 at EOF or stop, -1 on error. */
static ssize_t rd(tc_proxy_t *p, int fd, char *buf, size_t n)
{
    int w = wait_in(p, fd);
    if (w <= 0)
        return w;
    ssize_t r;
    while ((r = recv(fd, buf, n, 0)) < 0 && errno == EINTR)
        ;
    return r;
}

static int wr(int fd, const char *buf, size_t n)
{
    while (n != 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static fault_t next_fault(tc_proxy_t *p)
{
    fault_t f = {TC_FAULT_PASS, 0};
    pthread_mutex_lock(&p->mutex);
    p->requests++;
    if (p->nfaults != 0) {
        f = p->faults[0];
        memmove(p->faults, p->faults + 1, (p->nfaults - 1) * sizeof(p->faults[0]));
        p->nfaults--;
    }
    pthread_mutex_unlock(&p->mutex);
    return f;
}

static const char error_503[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
                                "<Message>Please reduce your request rate.</Message></Error>";

/* One client connection: request by request. */
static void *conn_main(void *arg)
{
    conn_t *c = arg;
    tc_proxy_t *p = c->p;
    char *buf = malloc(1 << 16);
    size_t have = 0;
    while (buf != NULL && !p->stop) {
        /* the request head */
        char *end = NULL;
        while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
            if (have == (1 << 16))
                goto Exit;
            ssize_t r = rd(p, c->fd, buf + have, (1 << 16) - have);
            if (r <= 0)
                goto Exit;
            have += (size_t)r;
        }
        size_t headlen = (size_t)(end - buf) + 4;
        char method[16] = "";
        sscanf(buf, "%15s", method);
        unsigned long long cl = 0;
        for (char *l = strstr(buf, "\r\n"); l != NULL && l < end; l = strstr(l + 2, "\r\n"))
            if (strncasecmp(l + 2, "content-length:", 15) == 0)
                cl = strtoull(l + 17, NULL, 10);
        fault_t f = next_fault(p);
        if (f.kind == TC_FAULT_503 || f.kind == TC_FAULT_STALL) {
            /* read the whole request, so that closing does not reset the connection */
            unsigned long long body = have - headlen;
            have = 0;
            while (body < cl) {
                ssize_t r = rd(p, c->fd, buf, (1 << 16));
                if (r <= 0)
                    goto Exit;
                body += (unsigned long long)r;
            }
            if (f.kind == TC_FAULT_STALL) {
                while (rd(p, c->fd, buf, 1 << 16) > 0)
                    ;
                goto Exit;
            }
            char head[256];
            snprintf(head, sizeof(head),
                     "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     sizeof(error_503) - 1);
            wr(c->fd, head, strlen(head));
            wr(c->fd, error_503, sizeof(error_503) - 1);
            shutdown(c->fd, SHUT_WR);
            while (rd(p, c->fd, buf, 1 << 16) > 0)
                ;
            goto Exit;
        }
        if (f.kind == TC_FAULT_DELAY)
            usleep((useconds_t)f.arg * 1000);
        /* forward the request */
        if (c->up < 0) {
            c->up = tc_connect(p->upstream);
            if (c->up < 0)
                goto Exit;
        }
        size_t first = have < headlen + cl ? have : headlen + (size_t)cl;
        if (wr(c->up, buf, first) != 0)
            goto Exit;
        unsigned long long left = headlen + cl - first;
        memmove(buf, buf + first, have - first);
        have -= first;
        while (left != 0) {
            ssize_t r = rd(p, c->fd, buf, left < (1 << 16) ? (size_t)left : (1 << 16));
            if (r <= 0 || wr(c->up, buf, (size_t)r) != 0)
                goto Exit;
            left -= (unsigned long long)r;
        }
        /* forward the response (or a part of it) */
        tc_response_t res;
        tc_http1_parser_t parser;
        tc_http1_parser_init(&parser, method, &res, 0);
        char *rbuf = malloc(1 << 16);
        size_t sent = 0, head_end = 0;
        int done = 0, cut = 0;
        char tail[4] = {0};
        while (rbuf != NULL && !done) {
            ssize_t r = rd(p, c->up, rbuf, 1 << 16);
            ssize_t used = tc_http1_parser_feed(&parser, rbuf, r > 0 ? (size_t)r : 0);
            size_t n = r > 0 ? (size_t)r : 0;
            if (used >= 0) {
                n = (size_t)used;
                done = 1;
            } else if (used == -1 || r <= 0) {
                done = 1;
                cut = 1;
            }
            if (f.kind == TC_FAULT_CUT) {
                /* find the end of the head, then let arg bytes of the body through */
                for (size_t i = 0; i < n && head_end == 0; i++) {
                    memmove(tail, tail + 1, 3);
                    tail[3] = rbuf[i];
                    if (memcmp(tail, "\r\n\r\n", 4) == 0)
                        head_end = sent + i + 1;
                }
                if (head_end != 0 && sent + n > head_end + f.arg) {
                    n = head_end + f.arg > sent ? head_end + f.arg - sent : 0;
                    done = cut = 1;
                }
            }
            if (wr(c->fd, rbuf, n) != 0)
                done = cut = 1;
            sent += n;
        }
        int close_after = parser.close;
        tc_http1_parser_dispose(&parser);
        tc_response_free(&res);
        free(rbuf);
        if (cut || close_after)
            goto Exit;
    }
Exit:
    free(buf);
    shutdown(c->fd, SHUT_RDWR);
    return NULL;
}

static void *accept_main(void *arg)
{
    tc_proxy_t *p = arg;
    while (!p->stop) {
        if (wait_in(p, p->lfd) <= 0)
            break;
        int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        conn_t *c = calloc(1, sizeof(*c));
        c->p = p;
        c->fd = fd;
        c->up = -1;
        pthread_mutex_lock(&p->mutex);
        c->next = p->conns;
        p->conns = c;
        p->connections++;
        pthread_mutex_unlock(&p->mutex);
        pthread_create(&c->thread, NULL, conn_main, c);
    }
    return NULL;
}

tc_proxy_t *tc_proxy_start(int upstream_port)
{
    tc_proxy_t *p = calloc(1, sizeof(*p));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int on = 1;
    p->upstream = upstream_port;
    pthread_mutex_init(&p->mutex, NULL);
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(p->lfd, 128) != 0 ||
        getsockname(p->lfd, (struct sockaddr *)&sin, &len) != 0) {
        fprintf(stderr, "tc_proxy_start: %s\n", strerror(errno));
        if (p->lfd >= 0)
            close(p->lfd);
        free(p);
        return NULL;
    }
    p->port = ntohs(sin.sin_port);
    pthread_create(&p->accept_thread, NULL, accept_main, p);
    return p;
}

int tc_proxy_port(tc_proxy_t *p)
{
    return p->port;
}

void tc_proxy_fault(tc_proxy_t *p, tc_fault_t kind, size_t arg, int count)
{
    pthread_mutex_lock(&p->mutex);
    for (int i = 0; i < count && p->nfaults < sizeof(p->faults) / sizeof(p->faults[0]); i++)
        p->faults[p->nfaults++] = (fault_t){kind, arg};
    pthread_mutex_unlock(&p->mutex);
}

void tc_proxy_clear(tc_proxy_t *p)
{
    pthread_mutex_lock(&p->mutex);
    p->nfaults = 0;
    pthread_mutex_unlock(&p->mutex);
}

size_t tc_proxy_requests(tc_proxy_t *p)
{
    pthread_mutex_lock(&p->mutex);
    size_t n = p->requests;
    pthread_mutex_unlock(&p->mutex);
    return n;
}

size_t tc_proxy_connections(tc_proxy_t *p)
{
    pthread_mutex_lock(&p->mutex);
    size_t n = p->connections;
    pthread_mutex_unlock(&p->mutex);
    return n;
}

void tc_proxy_stop(tc_proxy_t *p)
{
    if (p == NULL)
        return;
    p->stop = 1;
    pthread_join(p->accept_thread, NULL);
    close(p->lfd);
    for (conn_t *c = p->conns, *next; c != NULL; c = next) {
        next = c->next;
        pthread_join(c->thread, NULL);
        close(c->fd);
        if (c->up >= 0)
            close(c->up);
        free(c);
    }
    pthread_mutex_destroy(&p->mutex);
    free(p);
}
