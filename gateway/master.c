#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "timer.h"
#include "version.h"
#include "worker.h"

#define EXIT_CONFIG 78
#define RESPAWN_BACKOFF_MS 1000
#define WATCH_DEBOUNCE_MS 200

typedef struct st_worker_slot_t {
    pid_t pid;
    uint64_t started_ms;
    uint64_t respawn_at_ms; /* nonzero while waiting to respawn */
} worker_slot_t;

static worker_slot_t *slots;
static int nworkers;

static pid_t spawn(const sff_config_t *config, int id, sigset_t *oldmask)
{
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        _exit(sff_worker_main(config, id));
    }
    if (pid < 0) {
        sff_log_error("fork: %s", strerror(errno));
        return -1;
    }
    slots[id].pid = pid;
    slots[id].started_ms = sff_now_ms();
    slots[id].respawn_at_ms = 0;
    return pid;
}

static void signal_workers(int sig)
{
    for (int i = 0; i < nworkers; i++)
        if (slots[i].pid > 0)
            kill(slots[i].pid, sig);
}

static int alive(void)
{
    int n = 0;
    for (int i = 0; i < nworkers; i++)
        n += slots[i].pid > 0;
    return n;
}

/* Workers listen with SO_REUSEPORT, which would let them share a port with another server of the
 * same user without a word: the master first binds each address plainly, so an address in use is a
 * clear error at start. */
static int check_addresses_free(const sff_config_t *config)
{
    for (size_t i = 0; i < config->nlisten; i++) {
        const sff_listen_t *l = &config->listen[i];
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res;
        if (getaddrinfo(l->host[0] != '\0' ? l->host : NULL, l->port, &hints, &res) != 0)
            continue; /* the worker reports it */
        int busy = 0, on = 1;
        for (struct addrinfo *ai = res; ai != NULL && !busy; ai = ai->ai_next) {
            int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
            if (fd < 0)
                continue;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
            if (ai->ai_family == AF_INET6)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
            busy = bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE;
            close(fd);
        }
        freeaddrinfo(res);
        if (busy) {
            sff_log_error("cannot listen on %s:%s: the address is in use by another process", l->host, l->port);
            return -1;
        }
    }
    return 0;
}

int sff_master_run(const sff_config_t *config, int watch)
{
    sigset_t set, oldmask;
    int stopping = 0, fatal = 0, inotify_fd = -1;
    uint64_t stop_deadline = 0, reload_at = 0;

    sff_log_set_process("master", -1);
    if (check_addresses_free(config) != 0)
        return 78;
    nworkers = config->workers;
    if ((slots = calloc((size_t)nworkers, sizeof(*slots))) == NULL || sff_metrics_init(nworkers) != 0) {
        sff_log_error("out of memory");
        return 1;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, &oldmask);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        sff_log_error("signalfd: %s", strerror(errno));
        return 1;
    }
    if (watch) {
        inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (inotify_fd < 0 ||
            inotify_add_watch(inotify_fd, config->functions_dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_CREATE) < 0) {
            sff_log_error("--watch: cannot watch %s: %s", config->functions_dir, strerror(errno));
            return 1;
        }
        char schema_json_dir[4096];
        snprintf(schema_json_dir, sizeof(schema_json_dir), "%s/json", config->schemas_dir);
        if (inotify_add_watch(inotify_fd, schema_json_dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE) < 0)
            sff_log_warn("--watch: not watching %s: %s", schema_json_dir, strerror(errno));
    }

    char listen[512];
    size_t off = 0;
    for (size_t i = 0; i < config->nlisten && off < sizeof(listen); i++)
        off += (size_t)snprintf(listen + off, sizeof(listen) - off, "%s%s://%s%s%s:%s", i ? ", " : "",
                                config->tls_cert ? "https" : "http", strchr(config->listen[i].host, ':') ? "[" : "",
                                config->listen[i].host[0] ? config->listen[i].host : "0.0.0.0",
                                strchr(config->listen[i].host, ':') ? "]" : "", config->listen[i].port);
    sff_log_info("sff %s starting %d workers on %s (functions %s%s)", SFF_VERSION, nworkers, listen, config->functions_dir,
                 watch ? ", watching for changes" : "");
    for (int i = 0; i < nworkers; i++)
        spawn(config, i, &oldmask);

    for (;;) {
        uint64_t now = sff_now_ms();
        int timeout = 1000;
        if (reload_at != 0)
            timeout = reload_at > now ? (int)(reload_at - now) : 0;
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = inotify_fd, .events = POLLIN}};
        poll(pfd, inotify_fd >= 0 ? 2 : 1, timeout);
        now = sff_now_ms();

        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
            if (si.ssi_signo == SIGHUP && !stopping) {
                sff_log_info("SIGHUP: reloading functions in every worker");
                signal_workers(SIGHUP);
            } else if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !stopping) {
                stopping = 1;
                stop_deadline = now + config->drain_timeout_ms + 2000;
                sff_log_info("%s: draining and stopping", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                signal_workers(SIGTERM);
            }
        }
        if (inotify_fd >= 0 && (pfd[1].revents & POLLIN)) {
            char buf[4096];
            while (read(inotify_fd, buf, sizeof(buf)) > 0)
                ;
            reload_at = now + WATCH_DEBOUNCE_MS; /* a build writes in several steps: wait for quiet */
        }
        if (reload_at != 0 && now >= reload_at && !stopping) {
            reload_at = 0;
            sff_log_info("functions changed: reloading");
            signal_workers(SIGHUP);
        }

        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < nworkers; i++) {
                if (slots[i].pid != pid)
                    continue;
                slots[i].pid = 0;
                if (stopping)
                    break;
                if (WIFSIGNALED(status))
                    sff_log_error("worker %d (pid %d) died of signal %d (%s); respawning", i, (int)pid, WTERMSIG(status),
                                  strsignal(WTERMSIG(status)));
                else if (WEXITSTATUS(status) == EXIT_CONFIG)
                    fatal = 1;
                else
                    sff_log_error("worker %d (pid %d) exited with status %d; respawning", i, (int)pid, WEXITSTATUS(status));
                /* a worker that dies right after starting is respawned after a pause, not in a tight loop */
                slots[i].respawn_at_ms = now - slots[i].started_ms < RESPAWN_BACKOFF_MS ? now + RESPAWN_BACKOFF_MS : now;
            }
        }
        if (fatal && !stopping) {
            sff_log_error("a worker could not start (see above): stopping");
            stopping = 1;
            stop_deadline = now + 2000;
            signal_workers(SIGTERM);
        }
        if (!stopping) {
            for (int i = 0; i < nworkers; i++)
                if (slots[i].pid == 0 && slots[i].respawn_at_ms != 0 && now >= slots[i].respawn_at_ms)
                    spawn(config, i, &oldmask);
        } else {
            if (alive() == 0)
                break;
            if (now >= stop_deadline) {
                sff_log_warn("workers did not stop in time: killing them");
                signal_workers(SIGKILL);
                stop_deadline = now + 1000;
            }
        }
    }
    sff_log_info("sff stopped");
    return fatal ? 1 : 0;
}
