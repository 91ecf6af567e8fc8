/*
 * server.c - starting a real sff for sff's integration tests, and stopping it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "lib/client.h"

extern char **environ;

#define HEALTH_POLL_MS 20
#define HEALTH_PROBE_TIMEOUT_MS 1000
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 15000

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

/* Nonzero when the "NAME=value" entries a and b have the same name. */
static int same_name(const char *a, const char *b)
{
    size_t n = strcspn(a, "=");
    return strncmp(a, b, n) == 0 && (b[n] == '=' || b[n] == '\0');
}

/* The value of the last entry named name in the NULL-terminated list env (which may be NULL), or NULL. */
static const char *env_value(const char *const *env, const char *name)
{
    const char *value = NULL;
    size_t n = strlen(name);

    for (; env != NULL && *env != NULL; ++env)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            value = *env + n + 1;
    return value;
}

/*
 * The environment of sff: environ, then extra (a NULL-terminated list), then env; an entry is left out when a later one
 * has the same name. Returns a malloc()ed NULL-terminated array of pointers into the inputs, or NULL.
 */
static char **make_environment(const char *const *extra, const char *const *env)
{
    size_t n = 0, nenv = 0, nextra = 0, len = 0;
    const char **all;
    char **out;

    while (environ != NULL && environ[n] != NULL)
        ++n;
    while (extra[nextra] != NULL)
        ++nextra;
    while (env != NULL && env[nenv] != NULL)
        ++nenv;
    if ((all = malloc((n + nextra + nenv) * sizeof(*all) + 1)) == NULL ||
        (out = malloc((n + nextra + nenv + 1) * sizeof(*out))) == NULL) {
        free(all);
        return NULL;
    }
    for (size_t i = 0; i < n; ++i)
        all[len++] = environ[i];
    for (size_t i = 0; i < nextra; ++i)
        all[len++] = extra[i];
    for (size_t i = 0; i < nenv; ++i)
        all[len++] = env[i];

    n = 0;
    for (size_t i = 0; i < len; ++i) {
        int overridden = 0;
        for (size_t j = i + 1; j < len && !overridden; ++j)
            overridden = same_name(all[i], all[j]);
        if (!overridden)
            out[n++] = (char *)all[i];
    }
    out[n] = NULL;
    free(all);
    return out;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Removes dir and everything in it, not following symbolic links. */
static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Reads the file at path into a malloc()ed NUL-terminated buffer, its length in *len. Returns NULL on failure. */
static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n;

    *len = 0;
    if (fp == NULL)
        return NULL;
    do {
        if (cap - *len < 4096) {
            char *p = realloc(buf, cap = cap == 0 ? 65536 : cap * 2);
            if (p == NULL) {
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = p;
        }
        n = fread(buf + *len, 1, cap - *len - 1, fp);
        *len += n;
    } while (n != 0);
    fclose(fp);
    buf[*len] = '\0';
    return buf;
}

static void print_log(tc_server_t *srv)
{
    size_t len;
    char *log = read_file(srv->log, &len);

    fprintf(stderr, "---- %s ----\n", srv->log);
    if (log != NULL) {
        fwrite(log, 1, len, stderr);
        if (len != 0 && log[len - 1] != '\n')
            fputc('\n', stderr);
    }
    fprintf(stderr, "---- end of %s ----\n", srv->log);
    free(log);
}

static void print_status(const char *what, int status)
{
    if (WIFEXITED(status))
        fprintf(stderr, "tc_server_start: %s: exited with status %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        fprintf(stderr, "tc_server_start: %s: killed by signal %d\n", what, WTERMSIG(status));
}

/* Waits up to timeout_ms for the master to exit without reaping it, so that its pid (the process group id) stays
 * taken. Returns 0 when it has exited. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;

    for (;;) {
        siginfo_t info = {0};
        int r = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT);
        if ((r == 0 && info.si_pid == pid) || (r != 0 && errno == ECHILD))
            return 0;
        if (now_ms() >= deadline)
            return -1;
        sleep_ms(10);
    }
}

/* Nonzero when a process of the process group pgid is alive; zombies, which hold no sockets and wait for whoever
 * inherited them to reap them, do not count. */
static int group_alive(pid_t pgid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int alive = 0;

    while (d != NULL && !alive && (e = readdir(d)) != NULL) {
        char path[300], buf[512], state, *p;
        int pg;
        FILE *fp;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        if ((fp = fopen(path, "r")) == NULL)
            continue;
        /* "pid (comm) state ppid pgrp ...", where comm may hold anything */
        if (fgets(buf, sizeof(buf), fp) != NULL && (p = strrchr(buf, ')')) != NULL && sscanf(p + 1, " %c %*d %d", &state, &pg) == 2)
            alive = pg == pgid && state != 'Z';
        fclose(fp);
    }
    if (d != NULL)
        closedir(d);
    return alive;
}

/* Kills the process group of the (exited or not) master, reaps the master, and waits up to a second for the rest of
 * the group to be gone, so that nothing of it holds a port any more. Returns the wait status of the master. */
static int kill_and_reap(pid_t pid)
{
    int status = -1;

    kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < 200 && kill(-pid, 0) == 0 && group_alive(pid); ++i)
        sleep_ms(5);
    return status;
}

/* Nonzero when GET /_health answers 200 (over TLS when tls is set). */
static int healthy(int port, int tls)
{
    char req[128];
    tc_response_t res = {0};
    int fd, ok = 0;

    if (tls) {
        ok = tc_request(TC_H2_TLS, port, "GET", "/_health", NULL, NULL, 0, &res) == 0 && res.status == 200;
        tc_response_free(&res);
        return ok;
    }
    if ((fd = tc_connect(port)) < 0)
        return 0;
    snprintf(req, sizeof(req), "GET /_health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", port);
    if (tc_write_all(fd, req, strlen(req)) == 0 && tc_read_response(fd, "GET", HEALTH_PROBE_TIMEOUT_MS, &res) == 0)
        ok = res.status == 200;
    tc_response_free(&res);
    close(fd);
    return ok;
}

/* Writes s to stderr from the child, where stdio is not safe to use. */
static void say(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

/* The child: its own process group, SIGTERM when the thread that forked it dies, default signal handling, stdin from
 * /dev/null, stdout and stderr to the log. Only async-signal-safe calls. */
static void exec_child(pid_t parent, int logfd, int nullfd, const char *bin, char **envp, char *serve_arg)
{
    static const char msg[] = "tc_server_start: cannot exec ";
    char *const argv[] = {"sff", "serve", serve_arg, NULL};
    sigset_t none;

    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    dup2(nullfd, 0);
    dup2(logfd, 1);
    dup2(logfd, 2);
    for (int sig = 1; sig < NSIG; ++sig)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(bin, argv, envp);
    say(msg);
    say(bin);
    say("\n");
    _exit(127);
}

/*
 * SFF_FUNCTIONS_DIR is set only when neither env nor the environment of the test has it; SFF_LISTEN is set unless env
 * has it (then the port is read from it). PR_SET_PDEATHSIG ties sff to the thread that calls this: start and stop sff
 * from the main thread (or one that outlives it).
 */
int tc_server_start(tc_server_t *srv, const char *const *env)
{
    const char *bin = getenv("SFF_BIN"), *tmp = getenv("TMPDIR"), *listen;
    char listen_env[64], functions_env[PATH_MAX + 32], bin_copy[PATH_MAX];
    const char *extra[3] = {NULL};
    char **envp = NULL;
    int logfd = -1, nullfd = -1, nextra = 0, status;
    pid_t pid, parent = getpid();

    memset(srv, 0, sizeof(*srv));
    if (bin == NULL || *bin == '\0')
        bin = "build/sff";
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    if ((size_t)snprintf(srv->dir, sizeof(srv->dir), "%s/sff-test-XXXXXX", tmp) >= sizeof(srv->dir) || mkdtemp(srv->dir) == NULL) {
        fprintf(stderr, "tc_server_start: cannot create a temp dir under %s: %s\n", tmp, strerror(errno));
        srv->dir[0] = '\0';
        return -1;
    }
    snprintf(srv->log, sizeof(srv->log), "%s/sff.log", srv->dir);

    if ((listen = env_value(env, "SFF_LISTEN")) != NULL) {
        const char *colon = strrchr(listen, ':');
        srv->port = atoi(colon != NULL ? colon + 1 : listen);
    } else {
        if ((srv->port = tc_free_port()) <= 0)
            goto Error;
        snprintf(listen_env, sizeof(listen_env), "SFF_LISTEN=127.0.0.1:%d", srv->port);
        extra[nextra++] = listen_env;
    }
    snprintf(srv->url, sizeof(srv->url), "http://127.0.0.1:%d", srv->port);
    if (getenv("SFF_FUNCTIONS_DIR") == NULL && env_value(env, "SFF_FUNCTIONS_DIR") == NULL) {
        snprintf(bin_copy, sizeof(bin_copy), "%s", bin);
        snprintf(functions_env, sizeof(functions_env), "SFF_FUNCTIONS_DIR=%s/functions", dirname(bin_copy));
        extra[nextra++] = functions_env;
    }
    if ((envp = make_environment(extra, env)) == NULL)
        goto Error;
    int tls = env_value(env, "SFF_TLS_CERT") != NULL;
    /* one extra argument of `sff serve` (e.g. "--watch") */
    char *serve_arg = getenv("SFF_TEST_SERVE_ARGS");
    if (serve_arg != NULL && *serve_arg == '\0')
        serve_arg = NULL;

    if ((logfd = open(srv->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0 ||
        (nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "tc_server_start: cannot open %s: %s\n", srv->log, strerror(errno));
        goto Error;
    }
    fflush(NULL);
    if ((pid = fork()) < 0) {
        fprintf(stderr, "tc_server_start: fork: %s\n", strerror(errno));
        goto Error;
    }
    if (pid == 0)
        exec_child(parent, logfd, nullfd, bin, envp, serve_arg);
    setpgid(pid, pid); /* also here, so that the group exists whichever runs first */
    srv->pid = pid;
    close(logfd);
    close(nullfd);
    logfd = nullfd = -1;
    free(envp);
    envp = NULL;

    for (int64_t deadline = now_ms() + START_TIMEOUT_MS;;) {
        if (wait_exit(pid, 0) == 0) {
            status = kill_and_reap(pid);
            print_status("sff exited before it answered GET /_health", status);
            goto Error;
        }
        if (healthy(srv->port, tls))
            return 0;
        if (now_ms() >= deadline)
            break;
        sleep_ms(HEALTH_POLL_MS);
    }
    fprintf(stderr, "tc_server_start: sff did not answer GET /_health with 200 within %d s\n", START_TIMEOUT_MS / 1000);
    kill_and_reap(pid);

Error:
    if (srv->dir[0] != '\0')
        print_log(srv);
    if (logfd >= 0)
        close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    free(envp);
    if (srv->dir[0] != '\0')
        remove_tree(srv->dir);
    srv->pid = 0;
    srv->dir[0] = '\0';
    return -1;
}

/* Safe to call twice, and after a failed start; returns -1 when there was no sff to stop. */
int tc_server_stop(tc_server_t *srv)
{
    int status = -1;

    if (srv->pid > 0) {
        kill(srv->pid, SIGTERM);
        if (wait_exit(srv->pid, STOP_TIMEOUT_MS) != 0)
            fprintf(stderr, "tc_server_stop: sff did not exit within %d s of SIGTERM; killing it\n", STOP_TIMEOUT_MS / 1000);
        /* Whether it exited or not, nothing of its process group may outlive it. */
        status = kill_and_reap(srv->pid);
        srv->pid = 0;
    }
    if (srv->dir[0] != '\0') {
        remove_tree(srv->dir);
        srv->dir[0] = '\0';
    }
    return status;
}

int tc_server_signal(tc_server_t *srv, int sig)
{
    if (srv->pid <= 0) {
        errno = ESRCH;
        return -1;
    }
    return kill(srv->pid, sig);
}

int tc_server_log_contains(tc_server_t *srv, const char *needle)
{
    size_t len;
    char *log = read_file(srv->log, &len);
    int found = log != NULL && memmem(log, len, needle, strlen(needle)) != NULL;

    free(log);
    return found;
}

/* NULL when the log cannot be read. */
char *tc_server_log(tc_server_t *srv)
{
    size_t len;
    return read_file(srv->log, &len);
}
