#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/pg.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"

static const char *const pg_env[] = {"PGDATA",    "PGHOST",      "PGHOSTADDR", "PGPORT",     "PGUSER",    "PGDATABASE",
                                     "PGOPTIONS", "PGSERVICE",   "PGPASSWORD", "PGPASSFILE", "PGSSLMODE", "PGCONNECT_TIMEOUT",
                                     "PGTZ",      "PGDATESTYLE", NULL};

/*
 * Runs argv (as the user "postgres" when as_postgres) with stdin from in (or /dev/null), stdout into
 * out (capacity outsize; or to stderr when out is NULL) and stderr to the test's stderr. The child
 * gets none of the test's descriptors but 0-2: a server must not inherit a client's socket, or
 * closing that socket in the test would not close the connection. Returns the exit status, 128 when
 * it did not exit normally, -1 when it could not run.
 */
static int run(int as_postgres, char *const *argv, const char *in, char *out, size_t outsize, pid_t *async_pid)
{
    int inpipe[2] = {-1, -1}, outpipe[2] = {-1, -1};
    if (in != NULL && pipe2(inpipe, O_CLOEXEC) != 0)
        return -1;
    if (out != NULL && pipe2(outpipe, O_CLOEXEC) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (in != NULL)
            dup2(inpipe[0], 0);
        else {
            int devnull = open("/dev/null", O_RDONLY);
            dup2(devnull, 0);
        }
        if (out != NULL)
            dup2(outpipe[1], 1);
        else
            dup2(2, 1);
        closefrom(3);
        for (size_t i = 0; pg_env[i] != NULL; i++)
            unsetenv(pg_env[i]);
        if (chdir("/tmp") != 0)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        if (as_postgres) {
            char *args[64] = {"runuser", "-u", "postgres", "--"};
            size_t n = 4;
            for (size_t i = 0; argv[i] != NULL && n < 63; i++)
                args[n++] = argv[i];
            args[n] = NULL;
            execv("/usr/sbin/runuser", args);
        } else {
            execv(argv[0], argv);
        }
        _exit(127);
    }
    if (async_pid != NULL) {
        *async_pid = pid;
        return 0;
    }
    if (in != NULL) {
        close(inpipe[0]);
        size_t len = strlen(in);
        signal(SIGPIPE, SIG_IGN);
        while (len > 0) {
            ssize_t w = write(inpipe[1], in, len);
            if (w <= 0)
                break;
            in += w;
            len -= (size_t)w;
        }
        close(inpipe[1]);
    }
    if (out != NULL) {
        size_t used = 0;
        close(outpipe[1]);
        for (;;) {
            char buf[4096];
            ssize_t r = read(outpipe[0], buf, sizeof(buf));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            size_t take = (size_t)r < outsize - 1 - used ? (size_t)r : outsize - 1 - used;
            memcpy(out + used, buf, take);
            used += take;
        }
        out[used] = '\0';
        close(outpipe[0]);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void print_log(const tc_pg_t *pg)
{
    char path[300], line[1024];
    snprintf(path, sizeof(path), "%s/server.log", pg->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "--- %s\n", path);
    while (fgets(line, sizeof(line), f) != NULL)
        fprintf(stderr, "    %s", line);
    fclose(f);
}

static int pg_ctl(tc_pg_t *pg, const char *action, tc_pg_mode_t mode, pid_t *async_pid)
{
    char data[300], log[300], opts[512];
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    snprintf(log, sizeof(log), "%s/server.log", pg->dir);
    snprintf(opts, sizeof(opts),
             "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
             "-c max_connections=100 -c shared_buffers=16MB",
             pg->port, pg->dir);
    char *argv[] = {PG_BIN "/pg_ctl",
                    "-D",
                    data,
                    "-l",
                    log,
                    "-w",
                    "-t",
                    "60",
                    "-s",
                    "-o",
                    opts,
                    "-m",
                    mode == TC_PG_IMMEDIATE ? "immediate" : "fast",
                    (char *)action,
                    NULL};
    return run(1, argv, NULL, NULL, 0, async_pid);
}

static void remove_dir(const char *dir)
{
    char *argv[] = {"/bin/rm", "-rf", (char *)dir, NULL};
    if (strncmp(dir, "/tmp/sff-pg-", 12) == 0) /* never anything else */
        run(0, argv, NULL, NULL, 0, NULL);
}

/*
 * The watchdog: a process of its own session that waits for the test to close its end of a pipe,
 * which happens however the test ends (tc_pg_stop(), exit, abort, a sanitizer's report, SIGKILL),
 * then stops the server and removes its dir. Without it a crashed test would leave a postmaster
 * running (pg_ctl detaches it).
 */
static int start_watchdog(tc_pg_t *pg)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        setsid(); /* a Ctrl-C of the test's terminal must not stop the cleanup */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        if (fds[0] != 3) {
            dup2(fds[0], 3);
            fds[0] = 3;
        }
        closefrom(4);
        char c;
        ssize_t r;
        while ((r = read(fds[0], &c, 1)) != 0 && (r > 0 || errno == EINTR))
            ;
        char data[300];
        snprintf(data, sizeof(data), "%s/data/postmaster.pid", pg->dir);
        if (access(data, F_OK) == 0)
            pg_ctl(pg, "stop", TC_PG_IMMEDIATE, NULL);
        remove_dir(pg->dir);
        _exit(0);
    }
    close(fds[0]);
    pg->watchdog = pid;
    pg->watchdog_fd = fds[1];
    return 0;
}

static int initdb(tc_pg_t *pg)
{
    char data[300], out[8192];
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    char *argv[] = {PG_BIN "/initdb",    "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync",
                    "--no-instructions", NULL};
    int st = run(1, argv, NULL, out, sizeof(out), NULL);
    if (st != 0)
        fprintf(stderr, "initdb failed (%d):\n%s\n", st, out);
    return st;
}

int tc_pg_start(tc_pg_t *pg)
{
    memset(pg, 0, sizeof(*pg));
    pg->watchdog_fd = -1;
    if (access(PG_BIN "/postgres", X_OK) != 0) {
        fprintf(stderr, "PostgreSQL 15 is not installed (%s/postgres): apt-get install postgresql-15\n", PG_BIN);
        return -1;
    }
    struct passwd *pw = getpwnam("postgres");
    if (pw == NULL) {
        fprintf(stderr, "no user \"postgres\" to run the server as\n");
        return -1;
    }
    snprintf(pg->dir, sizeof(pg->dir), "/tmp/sff-pg-XXXXXX");
    if (mkdtemp(pg->dir) == NULL || chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0 || chmod(pg->dir, 0700) != 0) {
        fprintf(stderr, "cannot create %s: %s\n", pg->dir, strerror(errno));
        return -1;
    }
    if (start_watchdog(pg) != 0) {
        fprintf(stderr, "cannot start the watchdog: %s\n", strerror(errno));
        remove_dir(pg->dir);
        return -1;
    }
    if (initdb(pg) != 0)
        goto Fail;
    /* a port found free may be taken before the server binds it: try a few */
    int st = -1;
    for (int attempt = 0; attempt < 5 && st != 0; attempt++) {
        pg->port = tc_free_port();
        st = pg_ctl(pg, "start", TC_PG_FAST, NULL);
    }
    if (st != 0) {
        fprintf(stderr, "pg_ctl start failed\n");
        goto Fail;
    }
    pg->running = 1;
    snprintf(pg->conninfo, sizeof(pg->conninfo), "host=127.0.0.1 port=%d dbname=sff user=postgres", pg->port);
    snprintf(pg->url, sizeof(pg->url), "postgresql://postgres@127.0.0.1:%d/sff", pg->port);
    snprintf(pg->socket_conninfo, sizeof(pg->socket_conninfo), "host=%s port=%d dbname=sff user=postgres", pg->dir, pg->port);
    char port[16];
    snprintf(port, sizeof(port), "%d", pg->port);
    char *argv[] = {PG_BIN "/psql", "-X", "-q",       "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",           "-p",
                    port,           "-U", "postgres", "-d", "postgres",        "-c", "create database sff", NULL};
    if (run(0, argv, NULL, NULL, 0, NULL) != 0) {
        fprintf(stderr, "create database failed\n");
        goto Fail;
    }
    return 0;
Fail:
    print_log(pg);
    tc_pg_stop(pg);
    return -1;
}

void tc_pg_stop(tc_pg_t *pg)
{
    if (pg->dir[0] == '\0' || pg->watchdog_fd < 0)
        return;
    close(pg->watchdog_fd); /* the watchdog stops the server and removes the dir */
    pg->watchdog_fd = -1;
    while (waitpid(pg->watchdog, NULL, 0) < 0 && errno == EINTR)
        ;
    pg->dir[0] = '\0';
    pg->running = 0;
}

int tc_pg_restart(tc_pg_t *pg, tc_pg_mode_t mode)
{
    int st = pg_ctl(pg, "restart", mode, NULL);
    if (st != 0) {
        fprintf(stderr, "pg_ctl restart failed (%d)\n", st);
        print_log(pg);
        return -1;
    }
    pg->running = 1;
    return 0;
}

int tc_pg_server_stop(tc_pg_t *pg, tc_pg_mode_t mode)
{
    int st = pg_ctl(pg, "stop", mode, NULL);
    pg->running = 0;
    return st == 0 ? 0 : -1;
}

int tc_pg_server_start(tc_pg_t *pg)
{
    int st = pg_ctl(pg, "start", TC_PG_FAST, NULL);
    if (st != 0) {
        fprintf(stderr, "pg_ctl start failed (%d)\n", st);
        print_log(pg);
        return -1;
    }
    pg->running = 1;
    return 0;
}

pid_t tc_pg_restart_async(tc_pg_t *pg, tc_pg_mode_t mode)
{
    pid_t pid = -1;
    if (pg_ctl(pg, "restart", mode, &pid) != 0)
        return -1;
    return pid;
}

int tc_pg_ctl_poll(pid_t pid, int wait, int *status)
{
    int st;
    pid_t r;
    while ((r = waitpid(pid, &st, wait ? 0 : WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return -1;
    if (r == 0)
        return 0;
    if (status != NULL)
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return 1;
}

static int psql(tc_pg_t *pg, const char *sql, char *out, size_t outsize)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", pg->port);
    char *argv[] = {PG_BIN "/psql", "-X", "-q",  "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", port, "-U",
                    "postgres",     "-d", "sff", "-f", "-",  NULL};
    return run(0, argv, sql, out, outsize, NULL);
}

int tc_pg_sql(tc_pg_t *pg, const char *sql)
{
    char out[4096];
    return psql(pg, sql, out, sizeof(out));
}

char *tc_pg_query(tc_pg_t *pg, const char *sql)
{
    size_t size = 1 << 20;
    char *out = malloc(size);
    if (out == NULL)
        return NULL;
    if (psql(pg, sql, out, size) != 0) {
        free(out);
        return NULL;
    }
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == '\n')
        out[--len] = '\0';
    return out;
}
