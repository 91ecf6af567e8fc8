/*
 * pwhash.c - argon2id in a hasher process of the worker, driven from the loop over a socketpair.
 *
 * Why a process and not threads of the worker: libsodium maps a hash's memory with
 * mmap(MAP_POPULATE) and unmaps it at the end, 64 MiB each time at the interactive limits (~26 ms
 * of page zeroing on the 2-core machine). Both hold the address space's lock (mmap_lock), which
 * every mmap, munmap, brk and mprotect of the loop's thread (a large body, a coroutine stack)
 * needs too, and which bookworm's kernel (6.1, before per-VMA locks) also takes for page faults:
 * measured, threads in the worker made such loop iterations wait 30 to 56 ms. A process of its own
 * has its own address space, and is also the OOM killer's first victim (oom_score_adj 1000) rather
 * than the worker.
 *
 * The hasher is forked at setup, keeps only its end of an AF_UNIX SOCK_SEQPACKET socketpair (fd 3),
 * and runs `threads` threads that each receive one request message, hash, and send one reply.
 * It has no queue: the worker sends a request only when a thread is free for it and its memory
 * cost fits in the budget, and keeps the rest on its own queue (strict FIFO, so a big stored hash
 * is not overtaken forever). So a queued request is still the worker's to cancel, the password
 * crosses to the hasher only when a thread takes it, and the hasher needs no lock at all.
 *
 * On the loop side a request is on `pending` from its acceptance to its callback or cancel (the
 * queue bound; per-client counts walk it, it is at most queue_size long), and on `queue` (not
 * sent), `inflight` (sent) or a local list of completions being delivered. Nothing here is shared
 * with another thread: the hasher is another process.
 *
 * A request is freed before its callback runs (what the callback needs is on the stack), so a
 * callback may cancel others, start new requests, or shut the pool down.
 *
 * If the hasher dies (killed by the OOM killer, say), its requests in flight fail with
 * SFF_EUNAVAILABLE and a new one is forked; one that dies within a second of its start is not
 * replaced at once: the queue fails with SFF_EUNAVAILABLE, and new calls try again a second later.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>
#include "sff.h"
#include "timer.h"
#include "pwhash.h"

#define DEFAULT_THREADS 1
#define DEFAULT_QUEUE_SIZE 32
#define DEFAULT_PER_CLIENT 4
#define DEFAULT_BUDGET ((size_t)256 << 20)
#define DEFAULT_NICE 10
#define MAX_THREADS 64
#define RESPAWN_MS 1000
#define HASHER_FD 3

enum { KIND_HASH, KIND_VERIFY, KIND_DUMMY };
enum { STATE_QUEUED, STATE_SENT, STATE_DONE };

/* The messages, between two copies of the same program. */
typedef struct {
    uint64_t id;
    uint32_t kind;
    uint32_t len; /* password bytes after the header */
    uint64_t opslimit, memlimit;
    char str[crypto_pwhash_STRBYTES]; /* the hash to verify */
} msg_req_t;

typedef struct {
    uint64_t id;
    int32_t err;
    int32_t match;
    uint64_t work_us;
    char str[crypto_pwhash_STRBYTES]; /* the new hash */
} msg_rep_t;

typedef union {
    sff_pwhash_cb hash;
    sff_pwhash_verify_cb verify;
} cb_t;

struct st_sff_pwhash_req_t {
    h2o_linklist_t pending; /* pool.pending, from acceptance to the callback or cancel */
    h2o_linklist_t link;    /* pool.queue, pool.inflight, or a list of completions */
    uint64_t id;
    int kind, state, canceled, has_client;
    uint64_t client; /* keyed digest of who */
    size_t memory;   /* bytes the hash holds while it runs */
    cb_t cb;
    void *data;
    int err, match;
    char str[crypto_pwhash_STRBYTES]; /* the hash to verify, then the new hash */
    size_t len;
    char password[]; /* len bytes, wiped once sent */
};

static struct {
    int up;
    uint64_t gen; /* bumped by every shutdown: a delivery stops when it changes */
    h2o_loop_t *loop;
    /* configuration */
    unsigned long long opslimit;
    size_t memlimit, budget, queue_size, per_client, threads;
    int nice;
    uint64_t max_work; /* opslimit x memlimit x SFF_PWHASH_MAX_WORK */
    char dummy[crypto_pwhash_STRBYTES];
    unsigned char client_key[crypto_shorthash_KEYBYTES];
    /* requests */
    h2o_linklist_t pending, queue, inflight;
    size_t npending, nqueued, ninflight, memory;
    uint64_t next_id;
    /* the hasher */
    pid_t pid;
    int fd;
    h2o_socket_t *sock; /* NULL while there is no hasher */
    uint64_t spawned_ms;
    sff_pwhash_stats_t stats;
} pool = {.fd = -1};

/* ---- the hasher process -------------------------------------------------------------------------- */

static int map_errno(int e)
{
    return e == ENOMEM ? SFF_ENOMEM : SFF_EINTERNAL;
}

static void *hasher_thread(void *arg)
{
    (void)arg;
    struct {
        msg_req_t h;
        char password[SFF_PWHASH_MAX_PASSWORD];
    } in;
    for (;;) {
        ssize_t n = recv(HASHER_FD, &in, sizeof(in), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(0); /* the worker closed its end, or is gone */
        msg_rep_t rep = {.id = in.h.id};
        uint64_t t0 = sff_now_us();
        in.h.str[sizeof(in.h.str) - 1] = '\0';
        errno = 0;
        if ((size_t)n < sizeof(in.h) || (size_t)n - sizeof(in.h) != in.h.len) {
            rep.err = SFF_EINTERNAL;
        } else if (in.h.kind == KIND_HASH) {
            if (crypto_pwhash_str_alg(rep.str, in.password, in.h.len, in.h.opslimit, (size_t)in.h.memlimit,
                                      crypto_pwhash_ALG_ARGON2ID13) != 0)
                rep.err = map_errno(errno);
        } else if (crypto_pwhash_str_verify(in.h.str, in.password, in.h.len) == 0) {
            rep.match = in.h.kind == KIND_VERIFY; /* the dummy never matches (its tag is random anyway) */
        } else if (errno != EINVAL) {
            rep.err = map_errno(errno); /* libsodium sets EINVAL for a mismatch only */
        }
        sodium_memzero(in.password, sizeof(in.password));
        rep.work_us = sff_now_us() - t0;
        while (send(HASHER_FD, &rep, sizeof(rep), MSG_NOSIGNAL) < 0) {
            if (errno != EINTR)
                _exit(0);
        }
    }
    return NULL;
}

/* The child's life: never returns. */
__attribute__((noreturn)) static void hasher_main(int fd, pid_t parent, size_t threads, int nice)
{
    /* gone with the worker, even when it is killed */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    prctl(PR_SET_NAME, "sff-pwhash");
    /* the worker's signals are for the worker (a terminal's ^C reaches the whole group): the hasher
     * ends when its socket closes */
    static const int ignored[] = {SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        signal(ignored[i], SIG_IGN); /* also discards any of them already pending */
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    /* keep nothing of the worker's: its listeners above all (a kept copy would hold a socket open) */
    if (fd != HASHER_FD && dup2(fd, HASHER_FD) != HASHER_FD)
        _exit(1);
    if (close_range(HASHER_FD + 1, ~0U, 0) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (int i = HASHER_FD + 1; i < (max > 0 && max < 65536 ? max : 65536); i++)
            close(i);
    }
    if (fd < HASHER_FD)
        close(fd); /* a worker without a standard stream got its number: the socket is 3 now */
    int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (oom >= 0) {
        ssize_t r = write(oom, "1000", 4);
        (void)r;
        close(oom);
    }
    if (nice > 0) {
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, 0);
        if (errno == 0)
            setpriority(PRIO_PROCESS, 0, cur + nice); /* the threads made below inherit it */
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (size_t i = 1; i < threads; i++) {
        pthread_t t;
        pthread_create(&t, &attr, hasher_thread, NULL); /* fewer threads only make it slower */
    }
    pthread_attr_destroy(&attr);
    hasher_thread(NULL);
    _exit(0);
}

/* ---- the worker's side --------------------------------------------------------------------------- */

static void on_reply(h2o_socket_t *sock, const char *err);

static int spawn(void)
{
    int sv[2];
    pool.spawned_ms = sff_now_ms();
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    /* the child starts with every signal blocked, until it has chosen what to do with them */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        close(sv[0]); /* the worker's end: the hasher must see end of file when the worker closes it */
        hasher_main(sv[1], parent, pool.threads, pool.nice);
    }
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        errno = e;
        return -1;
    }
    pool.pid = pid;
    pool.fd = sv[0];
    pool.sock = h2o_evloop_socket_create(pool.loop, sv[0], H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(pool.sock, on_reply);
    return 0;
}

/* Ends the hasher at once: a hash in progress is of no use to anyone any more. */
static void stop_hasher(void)
{
    if (pool.sock != NULL) {
        h2o_socket_read_stop(pool.sock);
        h2o_socket_close(pool.sock); /* closes fd */
        pool.sock = NULL;
        pool.fd = -1;
    }
    if (pool.pid > 0) {
        kill(pool.pid, SIGKILL);
        while (waitpid(pool.pid, NULL, 0) < 0 && errno == EINTR)
            ;
        pool.pid = 0;
    }
}

static void free_req(sff_pwhash_req_t *req)
{
    sodium_memzero(req->password, req->len);
    free(req);
}

/* Sends queued requests while a thread is free and the budget allows. Never calls a callback: a
 * failed send leaves the request queued, and a dead hasher is found by on_reply. */
static void dispatch(void)
{
    while (pool.sock != NULL && !h2o_linklist_is_empty(&pool.queue) && pool.ninflight < pool.threads) {
        sff_pwhash_req_t *req = H2O_STRUCT_FROM_MEMBER(sff_pwhash_req_t, link, pool.queue.next);
        if (pool.memory + req->memory > pool.budget)
            break;
        msg_req_t h = {.id = req->id,
                       .kind = (uint32_t)req->kind,
                       .len = (uint32_t)req->len,
                       .opslimit = pool.opslimit,
                       .memlimit = pool.memlimit};
        memcpy(h.str, req->str, sizeof(h.str));
        struct iovec iov[2] = {{&h, sizeof(h)}, {req->password, req->len}};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = req->len != 0 ? 2 : 1};
        ssize_t n;
        while ((n = sendmsg(pool.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EINTR)
            ;
        if (n < 0)
            break;
        sodium_memzero(req->password, req->len);
        h2o_linklist_unlink(&req->link);
        h2o_linklist_insert(&pool.inflight, &req->link);
        req->state = STATE_SENT;
        pool.nqueued--;
        pool.ninflight++;
        pool.memory += req->memory;
        if (pool.memory > pool.stats.memory_peak)
            pool.stats.memory_peak = pool.memory;
    }
}

/* Moves every request of list to done, failed with SFF_EUNAVAILABLE. */
static void fail_all(h2o_linklist_t *list, h2o_linklist_t *done)
{
    while (!h2o_linklist_is_empty(list)) {
        sff_pwhash_req_t *req = H2O_STRUCT_FROM_MEMBER(sff_pwhash_req_t, link, list->next);
        h2o_linklist_unlink(&req->link);
        req->state = STATE_DONE;
        req->err = SFF_EUNAVAILABLE;
        h2o_linklist_insert(done, &req->link);
    }
}

/* Moves every request in flight, and the queue too when no hasher could be started, to done with
 * SFF_EUNAVAILABLE; starts a new hasher unless the last one died young. */
static void hasher_died(h2o_linklist_t *done)
{
    fail_all(&pool.inflight, done);
    pool.ninflight = 0;
    pool.memory = 0;
    stop_hasher();
    pool.stats.restarts++;
    if (sff_now_ms() - pool.spawned_ms >= RESPAWN_MS && spawn() == 0)
        return;
    fail_all(&pool.queue, done);
    pool.nqueued = 0;
}

/* Ends a request: unlinks it, frees it, then calls its callback. */
static void deliver(sff_pwhash_req_t *req)
{
    h2o_linklist_unlink(&req->pending);
    pool.npending--;
    if (req->canceled) {
        free_req(req);
        return;
    }
    int kind = req->kind, err = req->err, match = req->match;
    cb_t cb = req->cb;
    void *data = req->data;
    char str[crypto_pwhash_STRBYTES];
    if (kind == KIND_HASH)
        memcpy(str, req->str, sizeof(str));
    free_req(req);
    if (kind == KIND_HASH)
        cb.hash(data, err, err == 0 ? str : NULL);
    else
        cb.verify(data, err, err == 0 && match);
}

static void on_reply(h2o_socket_t *sock, const char *err)
{
    (void)sock;
    h2o_linklist_t done;
    h2o_linklist_init_anchor(&done);
    int dead = err != NULL;
    while (!dead) {
        msg_rep_t rep;
        ssize_t n = recv(pool.fd, &rep, sizeof(rep), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n != (ssize_t)sizeof(rep)) {
            dead = 1; /* end of file, an error, or a message that is not ours */
            break;
        }
        sff_pwhash_req_t *req = NULL;
        for (h2o_linklist_t *l = pool.inflight.next; l != &pool.inflight; l = l->next) {
            sff_pwhash_req_t *r = H2O_STRUCT_FROM_MEMBER(sff_pwhash_req_t, link, l);
            if (r->id == rep.id) {
                req = r;
                break;
            }
        }
        if (req == NULL)
            continue;
        h2o_linklist_unlink(&req->link);
        pool.ninflight--;
        pool.memory -= req->memory;
        pool.stats.completed++;
        pool.stats.work_us += rep.work_us;
        req->state = STATE_DONE;
        req->err = rep.err;
        req->match = rep.match;
        if (req->kind == KIND_HASH) {
            memcpy(req->str, rep.str, sizeof(req->str));
            req->str[sizeof(req->str) - 1] = '\0';
        }
        h2o_linklist_insert(&done, &req->link);
    }
    if (dead)
        hasher_died(&done);
    dispatch();
    uint64_t gen = pool.gen;
    while (!h2o_linklist_is_empty(&done)) {
        sff_pwhash_req_t *req = H2O_STRUCT_FROM_MEMBER(sff_pwhash_req_t, link, done.next);
        h2o_linklist_unlink(&req->link);
        deliver(req);
        if (pool.gen != gen)
            return; /* a callback shut the pool down: it freed the rest */
    }
}

static uint64_t client_of(const void *who, size_t wholen)
{
    unsigned char d[crypto_shorthash_BYTES];
    crypto_shorthash(d, who, wholen, pool.client_key);
    uint64_t v;
    memcpy(&v, d, sizeof(v));
    return v;
}

/* Reads "<digits><sep>" into *out; advances *p. 0 or -1. */
static int parse_u32(const char **p, char sep, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return -1;
    }
    if (*s != sep)
        return -1;
    *p = s + 1;
    *out = v;
    return 0;
}

/* The memory (bytes) and work (t x bytes) a stored argon2 string costs; 0 or -1 when it is not one. */
static int cost_of(const char *s, uint64_t *memory, uint64_t *work)
{
    uint64_t v, m, t, p;
    if (strncmp(s, "$argon2id$", 10) == 0)
        s += 10;
    else if (strncmp(s, "$argon2i$", 9) == 0)
        s += 9;
    else
        return -1;
    if (strncmp(s, "v=", 2) == 0) {
        s += 2;
        if (parse_u32(&s, '$', &v) != 0)
            return -1;
    }
    if (strncmp(s, "m=", 2) != 0)
        return -1;
    s += 2;
    if (parse_u32(&s, ',', &m) != 0 || strncmp(s, "t=", 2) != 0)
        return -1;
    s += 2;
    if (parse_u32(&s, ',', &t) != 0 || strncmp(s, "p=", 2) != 0)
        return -1;
    s += 2;
    if (parse_u32(&s, '$', &p) != 0 || m == 0 || t == 0 || p == 0)
        return -1;
    if (m < 8 * p)
        m = 8 * p; /* argon2's minimum of 8 blocks (KiB) per lane */
    *memory = m * 1024;
    *work = t * m * 1024;
    return 0;
}

static int submit(int kind, const void *who, size_t wholen, const char *hash_str, const char *password, size_t len, cb_t cb,
                  void *data, sff_pwhash_req_t **out)
{
    if (!pool.up)
        return SFF_ENOTREADY;
    if (len > SFF_PWHASH_MAX_PASSWORD)
        return SFF_EINVALID;
    uint64_t memory = pool.memlimit;
    if (kind == KIND_VERIFY) {
        uint64_t work;
        if (strnlen(hash_str, sizeof(pool.dummy)) >= sizeof(pool.dummy) || cost_of(hash_str, &memory, &work) != 0 ||
            memory > pool.budget || work > pool.max_work)
            return SFF_EINTERNAL;
    }
    if (pool.npending >= pool.queue_size) {
        pool.stats.rejected++;
        return SFF_EOVERLOADED;
    }
    int has_client = who != NULL && wholen != 0;
    uint64_t client = 0;
    if (has_client) {
        client = client_of(who, wholen);
        size_t n = 0;
        for (h2o_linklist_t *l = pool.pending.next; l != &pool.pending; l = l->next) {
            sff_pwhash_req_t *r = H2O_STRUCT_FROM_MEMBER(sff_pwhash_req_t, pending, l);
            n += r->has_client && r->client == client;
        }
        if (n >= pool.per_client) {
            pool.stats.rate_limited++;
            return SFF_ERATELIMIT;
        }
    }
    if (pool.sock == NULL && (sff_now_ms() - pool.spawned_ms < RESPAWN_MS || spawn() != 0))
        return SFF_EUNAVAILABLE;
    sff_pwhash_req_t *req = calloc(1, offsetof(sff_pwhash_req_t, password) + (len != 0 ? len : 1));
    if (req == NULL)
        return SFF_ENOMEM;
    req->id = ++pool.next_id;
    req->kind = kind;
    req->state = STATE_QUEUED;
    req->has_client = has_client;
    req->client = client;
    req->memory = (size_t)memory;
    req->cb = cb;
    req->data = data;
    if (kind == KIND_VERIFY)
        strcpy(req->str, hash_str);
    else if (kind == KIND_DUMMY)
        memcpy(req->str, pool.dummy, sizeof(req->str));
    req->len = len;
    if (len != 0)
        memcpy(req->password, password, len);
    h2o_linklist_insert(&pool.pending, &req->pending);
    pool.npending++;
    h2o_linklist_insert(&pool.queue, &req->link);
    pool.nqueued++;
    dispatch();
    if (out != NULL)
        *out = req;
    return 0;
}

int sff_pwhash_hash_as(const void *who, size_t wholen, const char *password, size_t len, sff_pwhash_cb cb, void *data,
                       sff_pwhash_req_t **req)
{
    return submit(KIND_HASH, who, wholen, NULL, password, len, (cb_t){.hash = cb}, data, req);
}

int sff_pwhash_verify_as(const void *who, size_t wholen, const char *hash_str, const char *password, size_t len,
                         sff_pwhash_verify_cb cb, void *data, sff_pwhash_req_t **req)
{
    return submit(hash_str != NULL ? KIND_VERIFY : KIND_DUMMY, who, wholen, hash_str, password, len, (cb_t){.verify = cb}, data,
                  req);
}

int sff_pwhash_hash(const char *password, size_t len, sff_pwhash_cb cb, void *data, sff_pwhash_req_t **req)
{
    return sff_pwhash_hash_as(NULL, 0, password, len, cb, data, req);
}

int sff_pwhash_verify(const char *hash_str, const char *password, size_t len, sff_pwhash_verify_cb cb, void *data,
                      sff_pwhash_req_t **req)
{
    return sff_pwhash_verify_as(NULL, 0, hash_str, password, len, cb, data, req);
}

void sff_pwhash_cancel(sff_pwhash_req_t *req)
{
    if (req == NULL || req->canceled)
        return;
    pool.stats.canceled++;
    if (req->state == STATE_QUEUED) {
        h2o_linklist_unlink(&req->link);
        pool.nqueued--;
        h2o_linklist_unlink(&req->pending);
        pool.npending--;
        free_req(req);
        return;
    }
    req->canceled = 1; /* sent or done: freed when its reply is picked up */
}

sff_pwhash_stats_t sff_pwhash_stats(void)
{
    sff_pwhash_stats_t s = pool.stats;
    s.pending = pool.npending;
    s.queued = pool.nqueued;
    s.running = pool.ninflight;
    s.memory = pool.memory;
    return s;
}

uint32_t sff_pwhash_retry_after_s(void)
{
    /* the mean hash so far, or a guess from the interactive limits' ~80 ms here */
    uint64_t mean_us = pool.stats.completed != 0 ? pool.stats.work_us / pool.stats.completed : 100000;
    uint64_t threads = pool.threads != 0 ? pool.threads : 1;
    uint64_t s = ((uint64_t)pool.npending * mean_us / threads + 999999) / 1000000;
    return s < 1 ? 1 : s > 3600 ? 3600 : (uint32_t)s;
}

int sff_pwhash_pid(void)
{
    return (int)pool.pid;
}

/* ---- setup and shutdown -------------------------------------------------------------------------- */

/* A hash string with the configured limits, a random salt and a random tag: verifying against it
 * costs what a real verification costs and never matches. */
static int make_dummy(void)
{
    unsigned char salt[crypto_pwhash_SALTBYTES], tag[32];
    char salt64[sodium_base64_ENCODED_LEN(sizeof(salt), sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
    char tag64[sodium_base64_ENCODED_LEN(sizeof(tag), sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
    randombytes_buf(salt, sizeof(salt));
    randombytes_buf(tag, sizeof(tag));
    sodium_bin2base64(salt64, sizeof(salt64), salt, sizeof(salt), sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    sodium_bin2base64(tag64, sizeof(tag64), tag, sizeof(tag), sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    int n = snprintf(pool.dummy, sizeof(pool.dummy), "$argon2id$v=19$m=%zu,t=%llu,p=1$%s$%s", pool.memlimit / 1024, pool.opslimit,
                     salt64, tag64);
    if (n < 0 || (size_t)n >= sizeof(pool.dummy))
        return -1;
    /* libsodium decodes it and finds exactly the configured limits */
    return crypto_pwhash_str_needs_rehash(pool.dummy, pool.opslimit, pool.memlimit) == 0 ? 0 : -1;
}

int sff_pwhash_setup(h2o_loop_t *loop, const sff_pwhash_config_t *config, char *err, size_t errlen)
{
    static const sff_pwhash_config_t defaults;
    if (config == NULL)
        config = &defaults;
    if (pool.up) {
        snprintf(err, errlen, "password hashing is already set up");
        return SFF_EINTERNAL;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot start");
        return SFF_EINTERNAL;
    }
    size_t threads = config->threads != 0 ? config->threads : DEFAULT_THREADS;
    unsigned long long opslimit = config->opslimit != 0 ? config->opslimit : crypto_pwhash_OPSLIMIT_INTERACTIVE;
    size_t memlimit = config->memlimit != 0 ? config->memlimit : crypto_pwhash_MEMLIMIT_INTERACTIVE;
    size_t budget = config->memory_budget != 0 ? config->memory_budget : DEFAULT_BUDGET;
    if (threads > MAX_THREADS) {
        snprintf(err, errlen, "password hashing: at most %d threads", MAX_THREADS);
        return SFF_EBADREQ;
    }
    if (opslimit < crypto_pwhash_OPSLIMIT_MIN || opslimit > UINT32_MAX || memlimit < crypto_pwhash_MEMLIMIT_MIN ||
        memlimit / 1024 > UINT32_MAX) {
        snprintf(err, errlen, "password hashing: opslimit %llu or memlimit %zu is out of argon2id's range", opslimit, memlimit);
        return SFF_EBADREQ;
    }
    if (memlimit > budget) {
        snprintf(err, errlen, "password hashing: memlimit %zu is over the memory budget %zu", memlimit, budget);
        return SFF_EBADREQ;
    }
    pool.loop = loop;
    pool.threads = threads;
    pool.opslimit = opslimit;
    pool.memlimit = memlimit;
    pool.budget = budget;
    pool.queue_size = config->queue_size != 0 ? config->queue_size : DEFAULT_QUEUE_SIZE;
    pool.per_client = config->max_per_client != 0 ? config->max_per_client : DEFAULT_PER_CLIENT;
    pool.nice = config->nice != 0 ? config->nice : DEFAULT_NICE;
    pool.max_work = (uint64_t)opslimit * (uint64_t)(memlimit / 1024 * 1024) * SFF_PWHASH_MAX_WORK;
    if (make_dummy() != 0) {
        snprintf(err, errlen, "password hashing: cannot make the dummy hash");
        return SFF_EINTERNAL;
    }
    crypto_shorthash_keygen(pool.client_key);
    memset(&pool.stats, 0, sizeof(pool.stats));
    h2o_linklist_init_anchor(&pool.pending);
    h2o_linklist_init_anchor(&pool.queue);
    h2o_linklist_init_anchor(&pool.inflight);
    pool.npending = pool.nqueued = pool.ninflight = pool.memory = 0;
    if (spawn() != 0) {
        snprintf(err, errlen, "password hashing: cannot start the hasher process: %s", strerror(errno));
        return SFF_EUNAVAILABLE;
    }
    pool.up = 1;
    return 0;
}

void sff_pwhash_shutdown(void)
{
    if (!pool.up)
        return;
    pool.up = 0;
    pool.gen++;
    stop_hasher();
    /* every request is on the pending list, wherever else it is */
    while (!h2o_linklist_is_empty(&pool.pending)) {
        sff_pwhash_req_t *req = H2O_STRUCT_FROM_MEMBER(sff_pwhash_req_t, pending, pool.pending.next);
        h2o_linklist_unlink(&req->pending);
        if (!req->canceled)
            pool.stats.canceled++;
        free_req(req);
    }
    h2o_linklist_init_anchor(&pool.queue);
    h2o_linklist_init_anchor(&pool.inflight);
    pool.npending = pool.nqueued = pool.ninflight = pool.memory = 0;
    sodium_memzero(pool.client_key, sizeof(pool.client_key));
}
