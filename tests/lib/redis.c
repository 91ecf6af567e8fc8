#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "lib/client.h"
#include "lib/redis.h"

#define MAX_SERVERS 8

/* What is still running, for the atexit handler (a tc_redis_t may live on a test's stack). */
static struct {
    pid_t pid;
    char dir[256];
} live[MAX_SERVERS];

static void track(pid_t pid, const char *dir)
{
    for (size_t i = 0; i < MAX_SERVERS; i++) {
        if (live[i].pid == 0 && live[i].dir[0] == '\0') {
            live[i].pid = pid;
            snprintf(live[i].dir, sizeof(live[i].dir), "%s", dir);
            return;
        }
    }
}

static void track_pid(const char *dir, pid_t pid)
{
    for (size_t i = 0; i < MAX_SERVERS; i++)
        if (strcmp(live[i].dir, dir) == 0)
            live[i].pid = pid;
}

static void untrack(const char *dir)
{
    for (size_t i = 0; i < MAX_SERVERS; i++)
        if (strcmp(live[i].dir, dir) == 0)
            live[i].pid = 0, live[i].dir[0] = '\0';
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void remove_dir(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static void stop_all_at_exit(void)
{
    for (size_t i = 0; i < MAX_SERVERS; i++) {
        if (live[i].pid > 0) {
            kill(live[i].pid, SIGKILL);
            reap(live[i].pid);
        }
        remove_dir(live[i].dir);
        live[i].pid = 0, live[i].dir[0] = '\0';
    }
}

static void print_log(const tc_redis_t *rs)
{
    char path[300], line[1024];
    snprintf(path, sizeof(path), "%s/redis.log", rs->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "--- %s\n", path);
    while (fgets(line, sizeof(line), f) != NULL)
        fprintf(stderr, "    %s", line);
    fclose(f);
}

/* ---- RESP by hand ----------------------------------------------------------------------------- */

int tc_redis_send(int fd, int argc, const char *const *argv, const size_t *argvlen)
{
    size_t size = 32;
    for (int i = 0; i < argc; i++)
        size += 32 + (argvlen != NULL ? argvlen[i] : strlen(argv[i]));
    char *buf = malloc(size), *p = buf;
    if (buf == NULL)
        return -1;
    p += sprintf(p, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
        p += sprintf(p, "$%zu\r\n", len);
        memcpy(p, argv[i], len);
        p += len;
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    int ret = tc_write_all(fd, buf, (size_t)(p - buf));
    free(buf);
    return ret;
}

/* A buffered reader of one reply; bytes past the reply stay in the socket (read byte-wise for
 * lines, exactly for bulk strings). */
static int read_exact(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t r = read(fd, buf, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        buf += r;
        len -= (size_t)r;
    }
    return 0;
}

static int read_line(int fd, char *line, size_t size)
{
    size_t n = 0;
    for (;;) {
        char c;
        if (read_exact(fd, &c, 1) != 0)
            return -1;
        if (c == '\n')
            break;
        if (n + 1 < size)
            line[n++] = c;
    }
    if (n > 0 && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    return 0;
}

static void append(char *out, size_t size, size_t *pos, const char *s, size_t len)
{
    if (*pos + len + 1 > size)
        len = size - *pos - 1;
    memcpy(out + *pos, s, len);
    *pos += len;
    out[*pos] = '\0';
}

static int read_reply(int fd, char *out, size_t size, size_t *pos)
{
    char line[1024];
    if (read_line(fd, line, sizeof(line)) != 0)
        return -1;
    switch (line[0]) {
    case '+':
    case '-':
    case ':':
        append(out, size, pos, line, strlen(line));
        return 0;
    case '$': {
        long len = strtol(line + 1, NULL, 10);
        if (len < 0) {
            append(out, size, pos, "(nil)", 5);
            return 0;
        }
        char *buf = malloc((size_t)len + 2);
        if (buf == NULL || read_exact(fd, buf, (size_t)len + 2) != 0) {
            free(buf);
            return -1;
        }
        append(out, size, pos, buf, (size_t)len);
        free(buf);
        return 0;
    }
    case '*': {
        long n = strtol(line + 1, NULL, 10);
        if (n < 0) {
            append(out, size, pos, "(nil)", 5);
            return 0;
        }
        for (long i = 0; i < n; i++) {
            if (i > 0)
                append(out, size, pos, "\n", 1);
            if (read_reply(fd, out, size, pos) != 0)
                return -1;
        }
        return 0;
    }
    default:
        return -1;
    }
}

long tc_redis_read(int fd, char *out, size_t size)
{
    size_t pos = 0;
    out[0] = '\0';
    if (read_reply(fd, out, size, &pos) != 0)
        return -1;
    return (long)pos;
}

static int connect_port(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

int tc_redis_connect(const tc_redis_t *rs)
{
    int fd = connect_port(rs->port);
    if (fd < 0 || rs->password[0] == '\0')
        return fd;
    const char *argv[] = {"AUTH", rs->password};
    char reply[256];
    if (tc_redis_send(fd, 2, argv, NULL) != 0 || tc_redis_read(fd, reply, sizeof(reply)) < 0 || strcmp(reply, "+OK") != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

long tc_redis_query(const tc_redis_t *rs, char *out, size_t size, int argc, const char *const *argv)
{
    int fd = tc_redis_connect(rs);
    if (fd < 0)
        return -1;
    long ret = tc_redis_send(fd, argc, argv, NULL) == 0 ? tc_redis_read(fd, out, size) : -1;
    close(fd);
    return ret;
}

/* ---- the server ------------------------------------------------------------------------------- */

static pid_t spawn(const tc_redis_t *rs)
{
    char port[16], log[300];
    snprintf(port, sizeof(port), "%d", rs->port);
    snprintf(log, sizeof(log), "%s/redis.log", rs->dir);
    const char *argv[32] = {"redis-server",
                            "--port",
                            port,
                            "--bind",
                            "127.0.0.1",
                            "--unixsocket",
                            rs->socket,
                            "--unixsocketperm",
                            "700",
                            "--dir",
                            rs->dir,
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--daemonize",
                            "no",
                            "--logfile",
                            log,
                            "--enable-debug-command",
                            "local"};
    size_t n = 21;
    if (rs->password[0] != '\0') {
        argv[n++] = "--requirepass";
        argv[n++] = rs->password;
    }
    argv[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    closefrom(3);
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

/* Waits until the server answers PING (AUTHed), up to 10 s. */
static int wait_ready(tc_redis_t *rs)
{
    for (int i = 0; i < 400; i++) {
        int st;
        pid_t r = waitpid(rs->pid, &st, WNOHANG);
        if (r == rs->pid) {
            if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
                fprintf(stderr, "tc_redis: cannot run redis-server (is the package redis-server installed?)\n");
            else
                fprintf(stderr, "tc_redis: redis-server exited at start (status %d)\n", st);
            rs->pid = 0;
            return -1;
        }
        int fd = tc_redis_connect(rs);
        if (fd >= 0) {
            const char *argv[] = {"PING"};
            char reply[64];
            int ok =
                tc_redis_send(fd, 1, argv, NULL) == 0 && tc_redis_read(fd, reply, sizeof(reply)) > 0 && strcmp(reply, "+PONG") == 0;
            close(fd);
            if (ok)
                return 0;
        }
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "tc_redis: redis-server did not answer PING within 10 s\n");
    return -1;
}

int tc_redis_start(tc_redis_t *rs, const char *password)
{
    static int registered;
    if (!registered) {
        atexit(stop_all_at_exit);
        registered = 1;
    }
    memset(rs, 0, sizeof(*rs));
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    if ((size_t)snprintf(rs->dir, sizeof(rs->dir), "%s/sff-redis-XXXXXX", tmp) >= sizeof(rs->dir) || mkdtemp(rs->dir) == NULL) {
        fprintf(stderr, "tc_redis: cannot create a temp dir in %s: %s\n", tmp, strerror(errno));
        rs->dir[0] = '\0';
        return -1;
    }
    snprintf(rs->socket, sizeof(rs->socket), "%s/redis.sock", rs->dir);
    if (password != NULL)
        snprintf(rs->password, sizeof(rs->password), "%s", password);
    if ((rs->port = tc_free_port()) <= 0) {
        fprintf(stderr, "tc_redis: no free port\n");
        remove_dir(rs->dir);
        return -1;
    }
    const char *auth = rs->password[0] != '\0' ? ":" : "", *at = rs->password[0] != '\0' ? "@" : "";
    snprintf(rs->url, sizeof(rs->url), "redis://%s%s%s127.0.0.1:%d/0", auth, rs->password, at, rs->port);
    snprintf(rs->unix_url, sizeof(rs->unix_url), "unix://%s%s%s%s", auth, rs->password, at, rs->socket);
    track(0, rs->dir);
    if ((rs->pid = spawn(rs)) < 0) {
        fprintf(stderr, "tc_redis: fork: %s\n", strerror(errno));
        rs->pid = 0;
        tc_redis_stop(rs);
        return -1;
    }
    track_pid(rs->dir, rs->pid);
    if (wait_ready(rs) != 0) {
        print_log(rs);
        tc_redis_stop(rs);
        return -1;
    }
    return 0;
}

int tc_redis_kill(tc_redis_t *rs)
{
    if (rs->pid <= 0)
        return -1;
    kill(rs->pid, SIGKILL);
    reap(rs->pid);
    rs->pid = 0;
    track_pid(rs->dir, 0);
    return 0;
}

int tc_redis_restart(tc_redis_t *rs)
{
    if (rs->pid > 0 || rs->dir[0] == '\0')
        return -1;
    if ((rs->pid = spawn(rs)) < 0) {
        rs->pid = 0;
        return -1;
    }
    track_pid(rs->dir, rs->pid);
    if (wait_ready(rs) != 0) {
        print_log(rs);
        return -1;
    }
    return 0;
}

void tc_redis_stop(tc_redis_t *rs)
{
    if (rs->pid > 0) {
        kill(rs->pid, SIGTERM);
        for (int i = 0; i < 500; i++) {
            if (waitpid(rs->pid, NULL, WNOHANG) == rs->pid) {
                rs->pid = 0;
                break;
            }
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (rs->pid > 0) {
            kill(rs->pid, SIGKILL);
            reap(rs->pid);
        }
        rs->pid = 0;
    }
    if (rs->dir[0] != '\0') {
        remove_dir(rs->dir);
        untrack(rs->dir);
        rs->dir[0] = '\0';
    }
}
