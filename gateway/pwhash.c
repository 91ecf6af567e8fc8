/*
 * pwhash.c - argon2id on a thread pool, completions back on the loop through an eventfd.
 *
 * A request lives on two lists. On the loop side, `pending` (loop only) holds every request from
 * its acceptance to its callback or cancel: its length is the queue bound, and the per-client
 * counts are found by walking it (it is at most queue_size long). On the pool side, under the
 * mutex, a request is first on `queue`, then on no list while a thread hashes it, then on `done`
 * until the loop picks it up; `state` says which. A thread writes the eventfd when it puts a job
 * on an empty done list; the loop reads the eventfd, then takes the whole done list.
 *
 * A thread takes the head of the queue only when its memory cost fits in what the budget has left
 * (strict FIFO: a big stored hash is not overtaken forever by small ones).
 *
 * Cancel: a queued request is unlinked and freed at once; a running or done one is only marked,
 * and freed when the loop picks it up. A request is freed before its callback runs (what the
 * callback needs is copied to the stack), so nothing refers to it once user code runs: a callback
 * may cancel others, start new requests, or shut the pool down.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
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

enum { KIND_HASH, KIND_VERIFY, KIND_DUMMY };
enum { STATE_QUEUED, STATE_RUNNING, STATE_DONE };

typedef union {
    sff_pwhash_cb hash;
    sff_pwhash_verify_cb verify;
} cb_t;

struct st_sff_pwhash_req_t {
    h2o_linklist_t job;     /* queue or done (under the mutex) */
    h2o_linklist_t pending; /* pool.pending (loop only) */
    int kind;
    int state;    /* under the mutex */
    int canceled; /* loop only */
    int has_client;
    uint64_t client; /* keyed digest of who */
    size_t memory;   /* bytes the hash holds while it runs */
    cb_t cb;
    void *data;
    /* the result, written by the thread before STATE_DONE */
    int err;
    int match;
    char str[crypto_pwhash_STRBYTES]; /* the hash to verify, or the new hash */
    size_t len;
    char password[]; /* len bytes, wiped after use */
};

static struct {
    int up;
    uint64_t gen; /* bumped by every shutdown: a batch of completions stops when it changes */
    /* configuration */
    unsigned long long opslimit;
    size_t memlimit, budget, queue_size, per_client;
    int nice;
    uint64_t max_work; /* opslimit x memlimit x SFF_PWHASH_MAX_WORK */
    char dummy[crypto_pwhash_STRBYTES];
    unsigned char client_key[crypto_shorthash_KEYBYTES];
    /* loop side */
    h2o_linklist_t pending;
    size_t npending;
    int efd;
    h2o_socket_t *efd_sock;
    /* pool side, under the mutex (never destroyed: sff_pwhash_stats() may run at any time) */
    pthread_mutex_t mutex;
    pthread_cond_t cond; /* a job queued, memory released, or stop */
    h2o_linklist_t queue, done;
    int stop;
    size_t memory;
    pthread_t threads[MAX_THREADS];
    size_t nthreads;
    /* queued, running, memory, memory_peak, completed, work_us: under the mutex; the others: loop only */
    sff_pwhash_stats_t stats;
} pool = {.efd = -1, .mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* ---- the threads --------------------------------------------------------------------------------- */

static int map_errno(int e)
{
    return e == ENOMEM ? SFF_ENOMEM : SFF_EINTERNAL;
}

static void work(sff_pwhash_req_t *req, unsigned long long opslimit, size_t memlimit)
{
    errno = 0;
    if (req->kind == KIND_HASH) {
        if (crypto_pwhash_str_alg(req->str, req->password, req->len, opslimit, memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
            req->err = map_errno(errno);
    } else if (crypto_pwhash_str_verify(req->str, req->password, req->len) == 0) {
        req->match = req->kind == KIND_VERIFY; /* the dummy never matches (its tag is random anyway) */
    } else if (errno != EINVAL) {
        req->err = map_errno(errno); /* libsodium sets EINVAL for a mismatch only */
    }
    sodium_memzero(req->password, req->len);
}

static void *thread_main(void *arg)
{
    (void)arg;
    if (pool.nice > 0) {
        /* per thread on Linux: the loop keeps its priority */
        id_t tid = (id_t)gettid();
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, tid);
        if (errno == 0)
            setpriority(PRIO_PROCESS, tid, cur + pool.nice);
    }
    unsigned long long opslimit = pool.opslimit; /* set before the threads start, never changed */
    size_t memlimit = pool.memlimit;
    pthread_mutex_lock(&pool.mutex);
    for (;;) {
        sff_pwhash_req_t *req = NULL;
        while (!pool.stop) {
            if (!h2o_linklist_is_empty(&pool.queue)) {
                req = H2O_STRUCT_FROM_MEMBER(sff_pwhash_req_t, job, pool.queue.next);
                if (pool.memory + req->memory <= pool.budget)
                    break;
                req = NULL;
            }
            pthread_cond_wait(&pool.cond, &pool.mutex);
        }
        if (pool.stop)
            break;
        h2o_linklist_unlink(&req->job);
        req->state = STATE_RUNNING;
        pool.memory += req->memory;
        pool.stats.queued--;
        pool.stats.running++;
        pool.stats.memory = pool.memory;
        if (pool.memory > pool.stats.memory_peak)
            pool.stats.memory_peak = pool.memory;
        pthread_mutex_unlock(&pool.mutex);

        uint64_t t0 = sff_now_us();
        work(req, opslimit, memlimit);
        uint64_t us = sff_now_us() - t0;

        pthread_mutex_lock(&pool.mutex);
        pool.memory -= req->memory;
        pool.stats.memory = pool.memory;
        pool.stats.running--;
        pool.stats.completed++;
        pool.stats.work_us += us;
        req->state = STATE_DONE;
        int was_empty = h2o_linklist_is_empty(&pool.done);
        h2o_linklist_insert(&pool.done, &req->job);
        if (was_empty) {
            uint64_t one = 1;
            ssize_t r = write(pool.efd, &one, sizeof(one));
            (void)r; /* cannot fail: the loop resets the counter every time it wakes */
        }
        pthread_cond_broadcast(&pool.cond); /* memory was released: a thread waiting on the budget may go */
    }
    pthread_mutex_unlock(&pool.mutex);
    return NULL;
}

/* ---- the loop side ------------------------------------------------------------------------------- */

static void free_req(sff_pwhash_req_t *req)
{
    sodium_memzero(req->password, req->len);
    free(req);
}

/* Ends a request the pool is done with: unlinks it, frees it, then calls its callback. */
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

static void on_eventfd(h2o_socket_t *sock, const char *err)
{
    (void)sock;
    if (err != NULL || !pool.up)
        return;
    uint64_t n;
    ssize_t r = read(pool.efd, &n, sizeof(n));
    (void)r;
    /* this batch only: what completes meanwhile wakes the loop again */
    h2o_linklist_t batch;
    h2o_linklist_init_anchor(&batch);
    pthread_mutex_lock(&pool.mutex);
    h2o_linklist_insert_list(&batch, &pool.done);
    pthread_mutex_unlock(&pool.mutex);
    uint64_t gen = pool.gen;
    while (!h2o_linklist_is_empty(&batch)) {
        sff_pwhash_req_t *req = H2O_STRUCT_FROM_MEMBER(sff_pwhash_req_t, job, batch.next);
        h2o_linklist_unlink(&req->job);
        deliver(req);
        if (pool.gen != gen)
            return; /* a callback shut the pool down: it freed the rest of the batch */
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

static int submit(int kind, const void *who, size_t wholen, const char *hash_str, const char *password, size_t len,
                  void (*cb)(void), void *data, sff_pwhash_req_t **out)
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
    sff_pwhash_req_t *req = calloc(1, offsetof(sff_pwhash_req_t, password) + (len != 0 ? len : 1));
    if (req == NULL)
        return SFF_ENOMEM;
    req->kind = kind;
    req->has_client = has_client;
    req->client = client;
    req->memory = (size_t)memory;
    if (kind == KIND_HASH)
        req->cb.hash = (sff_pwhash_cb)cb;
    else
        req->cb.verify = (sff_pwhash_verify_cb)cb;
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
    pthread_mutex_lock(&pool.mutex);
    req->state = STATE_QUEUED;
    h2o_linklist_insert(&pool.queue, &req->job);
    pool.stats.queued++;
    pthread_cond_signal(&pool.cond);
    pthread_mutex_unlock(&pool.mutex);
    if (out != NULL)
        *out = req;
    return 0;
}

int sff_pwhash_hash_as(const void *who, size_t wholen, const char *password, size_t len, sff_pwhash_cb cb, void *data,
                       sff_pwhash_req_t **req)
{
    return submit(KIND_HASH, who, wholen, NULL, password, len, (void (*)(void))cb, data, req);
}

int sff_pwhash_verify_as(const void *who, size_t wholen, const char *hash_str, const char *password, size_t len,
                         sff_pwhash_verify_cb cb, void *data, sff_pwhash_req_t **req)
{
    return submit(hash_str != NULL ? KIND_VERIFY : KIND_DUMMY, who, wholen, hash_str, password, len, (void (*)(void))cb, data,
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
    pthread_mutex_lock(&pool.mutex);
    if (req->state == STATE_QUEUED) {
        h2o_linklist_unlink(&req->job);
        pool.stats.queued--;
        pthread_mutex_unlock(&pool.mutex);
        h2o_linklist_unlink(&req->pending);
        pool.npending--;
        free_req(req);
        return;
    }
    pthread_mutex_unlock(&pool.mutex);
    req->canceled = 1; /* running or done: freed when the loop picks it up */
}

sff_pwhash_stats_t sff_pwhash_stats(void)
{
    sff_pwhash_stats_t s;
    pthread_mutex_lock(&pool.mutex);
    s = pool.stats;
    pthread_mutex_unlock(&pool.mutex);
    s.pending = pool.npending;
    return s;
}

uint32_t sff_pwhash_retry_after_s(void)
{
    sff_pwhash_stats_t s = sff_pwhash_stats();
    /* the mean hash so far, or a guess from the interactive limits' ~70 ms on a 2020s core */
    uint64_t mean_us = s.completed != 0 ? s.work_us / s.completed : 100000;
    uint64_t nthreads = pool.nthreads != 0 ? pool.nthreads : 1;
    uint64_t s_ = (s.pending * mean_us / nthreads + 999999) / 1000000;
    return s_ < 1 ? 1 : s_ > 3600 ? 3600 : (uint32_t)s_;
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
    h2o_linklist_init_anchor(&pool.done);
    pool.npending = 0;
    pool.memory = 0;
    pool.stop = 0;
    pool.nthreads = 0;
    if ((pool.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "password hashing: eventfd: %s", strerror(errno));
        return SFF_EUNAVAILABLE;
    }
    pool.efd_sock = h2o_evloop_socket_create(loop, pool.efd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(pool.efd_sock, on_eventfd);
    pool.up = 1;
    /* the threads take no signal: the worker's are read from a signalfd on the loop's thread, and a
     * thread with SIGTERM unblocked would get it, with its default action (exit) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (; pool.nthreads < threads; pool.nthreads++) {
        if (pthread_create(&pool.threads[pool.nthreads], NULL, thread_main, NULL) != 0)
            break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pool.nthreads < threads) {
        snprintf(err, errlen, "password hashing: cannot start the threads");
        sff_pwhash_shutdown();
        return SFF_EUNAVAILABLE;
    }
    return 0;
}

void sff_pwhash_shutdown(void)
{
    if (!pool.up)
        return;
    pool.up = 0;
    pool.gen++;
    pthread_mutex_lock(&pool.mutex);
    pool.stop = 1;
    pthread_cond_broadcast(&pool.cond);
    pthread_mutex_unlock(&pool.mutex);
    for (size_t i = 0; i < pool.nthreads; i++)
        pthread_join(pool.threads[i], NULL); /* a running hash ends first */
    pool.nthreads = 0;
    /* every request is on the pending list, whatever its pool-side state */
    while (!h2o_linklist_is_empty(&pool.pending)) {
        sff_pwhash_req_t *req = H2O_STRUCT_FROM_MEMBER(sff_pwhash_req_t, pending, pool.pending.next);
        h2o_linklist_unlink(&req->pending);
        if (!req->canceled)
            pool.stats.canceled++;
        free_req(req);
    }
    pool.npending = 0;
    h2o_linklist_init_anchor(&pool.queue);
    h2o_linklist_init_anchor(&pool.done);
    pool.stats.queued = pool.stats.running = pool.stats.memory = 0;
    h2o_socket_read_stop(pool.efd_sock);
    h2o_socket_close(pool.efd_sock); /* closes efd */
    pool.efd_sock = NULL;
    pool.efd = -1;
    sodium_memzero(pool.client_key, sizeof(pool.client_key));
}
