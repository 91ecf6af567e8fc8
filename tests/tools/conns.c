/*
 * conns - opens many idle keep-alive connections to a server and holds them, to measure what idle
 * connections cost the server.
 *
 *     conns PORT N h1|h2 SECONDS
 *
 * Each connection makes one request (GET /_health; over HTTP/2 with prior knowledge), reads its
 * response, then stays open and silent. Prints "opened N" and "answered N" once all are up, then
 * holds them for SECONDS (reading and dropping whatever arrives) and exits.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The client preface, an empty SETTINGS frame and HEADERS (stream 1, END_STREAM|END_HEADERS) for
 * GET http://127.0.0.1/_health, HPACK without indexing. */
static size_t h2_request(unsigned char *buf)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    unsigned char block[64];
    size_t b = 0, n = 0;
    block[b++] = 0x82; /* :method GET */
    block[b++] = 0x86; /* :scheme http */
    block[b++] = 0x04; /* :path, literal value */
    block[b++] = 8;
    memcpy(block + b, "/_health", 8);
    b += 8;
    block[b++] = 0x01; /* :authority, literal value */
    block[b++] = 9;
    memcpy(block + b, "127.0.0.1", 9);
    b += 9;
    memcpy(buf, preface, sizeof(preface) - 1);
    n = sizeof(preface) - 1;
    unsigned char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    memcpy(buf + n, settings, 9);
    n += 9;
    unsigned char hdr[9] = {0, 0, (unsigned char)b, 1, 0x05, 0, 0, 0, 1};
    memcpy(buf + n, hdr, 9);
    n += 9;
    memcpy(buf + n, block, b);
    return n + b;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: conns PORT N h1|h2 SECONDS\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]), h2 = strcmp(argv[3], "h2") == 0;
    double hold = atof(argv[4]);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    unsigned char req[256];
    size_t reqlen;
    if (h2) {
        reqlen = h2_request(req);
    } else {
        reqlen = (size_t)snprintf((char *)req, sizeof(req), "GET /_health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port);
    }
    int ep = epoll_create1(0);
    int *answered = calloc((size_t)n, sizeof(int));
    int opened = 0, got = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(0x7f000001)};
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            fprintf(stderr, "socket: %s (after %d)\n", strerror(errno), opened);
            break;
        }
        /* spread the connections over source addresses 127.0.0.2-17, so that the ports of earlier
         * runs still in TIME_WAIT never run the ephemeral range dry */
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002 + (uint32_t)(i % 16))};
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            write(fd, req, reqlen) != (ssize_t)reqlen) {
            fprintf(stderr, "connect: %s (after %d)\n", strerror(errno), opened);
            close(fd);
            break;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((uint64_t)i << 32) | (uint32_t)fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        opened++;
        /* drain what has arrived, so that the server never waits on us */
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 0);
        for (int e = 0; e < k; e++) {
            int efd = (int)(uint32_t)evs[e].data.u64, idx = (int)(evs[e].data.u64 >> 32);
            char buf[4096];
            if (read(efd, buf, sizeof(buf)) > 0 && !answered[idx]) {
                answered[idx] = 1;
                got++;
            }
        }
    }
    double deadline = now() + 30;
    while (got < opened && now() < deadline) {
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 100);
        for (int e = 0; e < k; e++) {
            int efd = (int)(uint32_t)evs[e].data.u64, idx = (int)(evs[e].data.u64 >> 32);
            char buf[4096];
            ssize_t r = read(efd, buf, sizeof(buf));
            if (r > 0 && !answered[idx]) {
                answered[idx] = 1;
                got++;
            } else if (r == 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, efd, NULL);
            }
        }
    }
    printf("opened %d\nanswered %d\n", opened, got);
    fflush(stdout);
    for (double end = now() + hold; now() < end;) {
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 100);
        for (int e = 0; e < k; e++) {
            char buf[4096];
            int efd = (int)(uint32_t)evs[e].data.u64;
            if (read(efd, buf, sizeof(buf)) <= 0)
                epoll_ctl(ep, EPOLL_CTL_DEL, efd, NULL);
        }
    }
    free(answered);
    return 0;
}
