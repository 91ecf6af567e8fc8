/*
 * pwhash.h - password hashing (argon2id, libsodium) on a small thread pool off the event loop.
 *
 * A hash costs tens of milliseconds of CPU and, at libsodium's interactive limits, 64 MiB of
 * memory: on the loop it would stall every connection of the worker, and unbounded it would let a
 * flood of logins exhaust the machine's memory. So hashes run on `threads` threads behind a
 * bounded queue, in a hasher process of the worker (forked by the setup, killed by the shutdown or
 * when the worker dies): threads inside the worker would still stall its loop, through the address
 * space's lock that libsodium's 64 MiB mmap/munmap hold (pwhash.c, docs/decisions/0061). Requests
 * and results cross a socketpair the loop watches.
 *
 * The calls are callback-based, libuv-style:
 *  - A call returns 0 when it started, or a negative SFF_E* code; if it fails, its callback never
 *    fires. It never fires inside the call either: always later, on the loop's thread.
 *  - Otherwise the callback fires exactly once, unless sff_pwhash_cancel() or sff_pwhash_shutdown()
 *    comes first: after either it never fires.
 *  - The request handle is valid until its callback starts, or until the cancel.
 *
 * Refusals, at once:
 *  - SFF_EOVERLOADED (503): queue_size requests are already accepted and not called back. The
 *    server as a whole is busy; sff_pwhash_retry_after_s() estimates when that clears.
 *  - SFF_ERATELIMIT (429): the *_as forms only: max_per_client of the queue's requests already
 *    belong to the same client (`who`: an address, a user name, whatever the caller picks). One
 *    client cannot take the whole queue from the others; it is the one that gets told to slow down.
 *    Per worker process, in memory: the caller's own rate limit (sff_rate_limit, shared through
 *    Redis) remains the first line against credential stuffing.
 *  - SFF_ENOTREADY: not set up (or shut down).
 *  - SFF_EUNAVAILABLE: the hasher died young and is not replaced yet (see below).
 *  - SFF_EINVALID: a password longer than SFF_PWHASH_MAX_PASSWORD bytes.
 *  - SFF_EINTERNAL: a stored hash that is not an argon2 string, or that would cost more memory
 *    than the whole budget or more than SFF_PWHASH_MAX_WORK times the configured cost (a corrupt
 *    or planted hash must not pin a thread for minutes).
 *
 * The password is copied (it may be freed as soon as the call returns) and the copy is wiped with
 * sodium_memzero() after use, or when the request is dropped. The caller wipes its own buffer.
 *
 * One pool per process (one worker per process), set up on the worker's loop: every function here
 * is called on that loop's thread.
 */
#ifndef SFF_PWHASH_H
#define SFF_PWHASH_H

#include <stddef.h>
#include <stdint.h>
#include "h2o.h"

/* The longest password accepted, in bytes (longer: SFF_EINVALID). */
#define SFF_PWHASH_MAX_PASSWORD 4096
/* A stored hash may cost (opslimit x memlimit) at most this many times the configured cost. */
#define SFF_PWHASH_MAX_WORK 8

typedef struct st_sff_pwhash_req_t sff_pwhash_req_t;

/* A new hash: err 0 and hash_str (an "$argon2id$..." string, borrowed for the call), or err
 * (SFF_ENOMEM, SFF_EINTERNAL) and hash_str NULL. */
typedef void (*sff_pwhash_cb)(void *data, int err, const char *hash_str);
/* A verification: err 0 and match 1 (the password is right) or 0, or err (SFF_ENOMEM,
 * SFF_EINTERNAL: for example a stored hash libsodium cannot decode) and match 0. */
typedef void (*sff_pwhash_verify_cb)(void *data, int err, int match);

typedef struct st_sff_pwhash_config_t {
    size_t threads;              /* hashing threads (default 1: see below) */
    size_t queue_size;           /* requests accepted and not called back yet (default 32) */
    size_t max_per_client;       /* of those, per client of the *_as forms (default 4) */
    unsigned long long opslimit; /* new hashes and the dummy (default crypto_pwhash_OPSLIMIT_INTERACTIVE) */
    size_t memlimit;             /* bytes, likewise (default crypto_pwhash_MEMLIMIT_INTERACTIVE, 64 MiB) */
    size_t memory_budget;        /* bytes hashing at once in this worker's hasher (default 256 MiB) */
    int nice;                    /* added to the hasher's nice value (default 10); negative: none */
} sff_pwhash_config_t;

/*
 * Threads: a hash is pure CPU, so more threads than cores only queue on the CPU and multiply the
 * memory in use. With SFF_WORKERS = cores (the default) one thread per worker already lets logins
 * use every core; the hasher runs at nice +10, so while the loops are busy they get the CPU first
 * and logins wait (then overflow: 503/429) instead of HTTP traffic.
 *
 * Memory: a hash holds its memory cost (memlimit for a new hash, the m= of a stored one) from the
 * moment it is handed to a thread until it ends; a request waits in the queue rather than put the
 * total over memory_budget. The budget is per worker (its hasher): with N workers the machine
 * holds at most N x memory_budget of hashing memory (the worker may pass a machine budget divided
 * by N). The hasher's oom_score_adj is 1000: if memory runs out anyway, it goes before a worker.
 *
 * If the hasher dies, its requests in flight get SFF_EUNAVAILABLE and a new one is started (not
 * at once if the last one lived less than a second: meanwhile calls get SFF_EUNAVAILABLE).
 */

typedef struct st_sff_pwhash_stats_t {
    uint64_t pending;      /* accepted, not called back (gauge, <= queue_size) */
    uint64_t queued;       /* waiting for a thread (gauge) */
    uint64_t running;      /* handed to the hasher's threads (gauge, <= threads) */
    uint64_t memory;       /* bytes held by the running hashes (gauge, <= memory_budget) */
    uint64_t memory_peak;  /* highest memory since setup */
    uint64_t completed;    /* hashes the hasher finished, canceled ones included (counter) */
    uint64_t rejected;     /* SFF_EOVERLOADED refusals (counter) */
    uint64_t rate_limited; /* SFF_ERATELIMIT refusals (counter) */
    uint64_t canceled;     /* requests canceled or dropped by shutdown (counter) */
    uint64_t work_us;      /* time the threads spent hashing (counter): work_us / completed = mean */
    uint64_t restarts;     /* hashers that died (counter): each is replaced, at once or a second later */
} sff_pwhash_stats_t;

/*
 * Sets the pool up on loop (sodium_init() included) and forks the hasher. A zero field of config
 * takes its default; config may be NULL for all defaults. Returns 0, or a negative SFF_E* code with
 * a message in err: SFF_EBADREQ for a configuration that cannot work (limits out of libsodium's
 * range, memlimit over memory_budget), SFF_EINTERNAL when already set up or libsodium cannot
 * start, SFF_EUNAVAILABLE when the hasher cannot be started.
 */
int sff_pwhash_setup(h2o_loop_t *loop, const sff_pwhash_config_t *config, char *err, size_t errlen);
/*
 * Stops the pool: every request is dropped, no callback fires any more, and the hasher is killed
 * (SIGKILL: its hashes in progress are of no use) and reaped. Harmless when not set up. May be
 * called from a callback. h2o disposes of the socketpair's socket at the loop's next iteration (run
 * it once more, or destroy the loop).
 */
void sff_pwhash_shutdown(void);

/* Hashes password (len bytes, any bytes) with the configured limits; cb gets the argon2id string. */
int sff_pwhash_hash(const char *password, size_t len, sff_pwhash_cb cb, void *data, sff_pwhash_req_t **req);
/*
 * Checks password against hash_str (an "$argon2id$" or "$argon2i$" string of libsodium, copied).
 *
 * hash_str NULL is the dummy verification for an unknown user: the password is checked against a
 * fixed hash made at setup with the configured limits and a random salt and tag, so it costs what
 * checking a real user's hash costs, and always ends with match 0. A login that answers "no such
 * user" without hashing would tell an attacker which user names exist, by its speed alone.
 */
int sff_pwhash_verify(const char *hash_str, const char *password, size_t len, sff_pwhash_verify_cb cb, void *data,
                      sff_pwhash_req_t **req);
/* The same, counted against the client who (wholen bytes; NULL or 0 bytes: not counted), for
 * SFF_ERATELIMIT. Only a keyed digest of who is kept. */
int sff_pwhash_hash_as(const void *who, size_t wholen, const char *password, size_t len, sff_pwhash_cb cb, void *data,
                       sff_pwhash_req_t **req);
int sff_pwhash_verify_as(const void *who, size_t wholen, const char *hash_str, const char *password, size_t len,
                         sff_pwhash_verify_cb cb, void *data, sff_pwhash_req_t **req);
/* In all four, req may be NULL when the caller never cancels. */

/*
 * Cancels a request whose callback has not started: the callback never fires. A queued request is
 * freed at once; one already handed to the hasher cannot be interrupted: it runs to its end there,
 * and the request is freed when its result comes back.
 */
void sff_pwhash_cancel(sff_pwhash_req_t *req);

/* A copy of the counters (reset by setup; kept after shutdown). */
sff_pwhash_stats_t sff_pwhash_stats(void);
/* Seconds until the queue has likely drained (>= 1), for Retry-After on a 503 or 429. */
uint32_t sff_pwhash_retry_after_s(void);
/* The hasher's process id, or 0 (for logs and tests). */
int sff_pwhash_pid(void);

#endif
