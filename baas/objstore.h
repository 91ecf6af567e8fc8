/*
 * objstore.h - object storage on the worker's event loop: one interface, two drivers, chosen by
 * SFF_STORAGE_URL:
 *
 *   file:///var/lib/sff/objects   a local directory (the embedded default): atomic writes (temp file,
 *                                 fsync, rename, fsync of the directory), file I/O on a small thread
 *                                 pool so the loop never blocks (objstore_file.c)
 *   s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1&style=path
 *                                 S3, MinIO or any S3-compatible server, Signature V4 over our own
 *                                 HTTP/1.1 client (objstore_s3.c, sigv4.c, httpc.c). Without
 *                                 endpoint: AWS (https://s3.REGION.amazonaws.com, virtual-host
 *                                 style); with one: path style unless style=virtual.
 *
 * The calls are callback-based, libuv-style:
 *  - A call that takes a callback returns 0 when it started, or a negative SFF_E* code; if it
 *    fails, the callback never fires. It never fires inside the call either.
 *  - Otherwise the callback fires exactly once, unless sff_objstore_cancel() comes first: after a
 *    cancel it never fires.
 *  - The op handle is valid until the callback returns or the cancel.
 *  - Every call has a deadline (the store's timeout_ms, or the call's own): past it the callback
 *    gets SFF_ETIMEDOUT.
 *
 * Errors: a missing object is SFF_ENOTFOUND; a bad key, prefix or token SFF_EBADREQ; a body over
 * the limit SFF_ETOOLARGE; a full queue SFF_EOVERLOADED; storage down, a 5xx after the retries or a
 * cut response SFF_EUNAVAILABLE; the deadline SFF_ETIMEDOUT; a 403 from S3 SFF_EINTERNAL (a
 * misconfiguration). Messages never hold credentials.
 *
 * Keys: 1 to 1024 bytes of UTF-8, no control characters, no leading "/", no empty, "." or ".."
 * segment (sff_objstore_check_key()). The same rules hold for both drivers, so that an application
 * can move from one to the other.
 */
#ifndef SFF_OBJSTORE_H
#define SFF_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "h2o.h"
#include "httpc.h"
#include "sigv4.h"

typedef struct st_sff_objstore_t sff_objstore_t;
typedef struct st_sff_objstore_op_t sff_objstore_op_t;

#define SFF_OBJSTORE_MAX_KEY 1024
#define SFF_OBJSTORE_MAX_LIST 1000

/* How a store is made. Strings are copied. */
typedef struct st_sff_objstore_config_t {
    const char *url;           /* SFF_STORAGE_URL */
    const char *access_key;    /* S3: SFF_S3_ACCESS_KEY */
    const char *secret_key;    /* S3: SFF_S3_SECRET_KEY */
    const char *session_token; /* S3: temporary credentials, or NULL */
    const char *ca_file;       /* S3 over https: trusted CAs (PEM), or NULL for the system's */
    uint64_t max_upload;       /* SFF_MAX_UPLOAD: the largest object put or collected (default 100 MiB) */
    uint32_t timeout_ms;       /* default deadline of a call (default 30000) */
    uint32_t max_retries;      /* S3: retries of an idempotent call after a 5xx or a lost connection (default 3) */
    uint32_t retry_base_ms;    /* S3: first backoff ceiling, doubled per retry, full jitter (default 50) */
    uint32_t threads;          /* file: I/O threads (default 2) */
    uint32_t queue_size;       /* file: calls in flight before SFF_EOVERLOADED (default 256) */
} sff_objstore_config_t;

/* What is known of an object. etag and content_type are borrowed for the callback. */
typedef struct st_sff_objstore_info_t {
    uint64_t size;
    int64_t mtime;            /* seconds since the epoch, or 0 when unknown */
    const char *etag;         /* without quotes; "" when unknown */
    const char *content_type; /* "" when unknown */
} sff_objstore_info_t;

/* One object of a listing. Borrowed for the callback. */
typedef struct st_sff_objstore_entry_t {
    const char *key;
    uint64_t size;
    int64_t mtime;
    const char *etag;
} sff_objstore_entry_t;

/*
 * What a call ended with, borrowed for the callback.
 *  err, message: 0 and "" on success; else the code and what happened (never NULL).
 *  info:         put (size, etag), get and head (all).
 *  body, len:    get without on_chunk: the whole object (malloc()ed, NUL-terminated for
 *                convenience). To keep it, take the pointer and set res->body to NULL: you then
 *                free() it. Otherwise it is freed when the callback returns.
 *  entries, next_token: list: the page of objects in key order, and the token of the next page (NULL
 *                on the last page).
 */
typedef struct st_sff_objstore_result_t {
    int err;
    const char *message;
    sff_objstore_info_t info;
    char *body;
    size_t len;
    const sff_objstore_entry_t *entries;
    size_t nentries;
    const char *next_token;
} sff_objstore_result_t;

typedef void (*sff_objstore_cb)(void *data, sff_objstore_result_t *res);

/* The return value of on_chunk that holds delivery until sff_objstore_resume(). */
#define SFF_OBJSTORE_PAUSE 1

/*
 * A put's body: either bytes (body, len) - borrowed until the callback or the cancel - or a stream
 * of size bytes: on_pull(data, op) asks for the next piece, which the caller gives with
 * sff_objstore_write() at once or later. A stream is never retried (its bytes are gone); a buffered
 * body is (a PUT of the same bytes is idempotent).
 */
typedef struct st_sff_objstore_put_t {
    const void *body;
    size_t len;
    uint64_t size;
    void (*on_pull)(void *data, sff_objstore_op_t *op);
    const char *content_type; /* NULL: application/octet-stream */
    uint32_t timeout_ms;      /* 0: the store's */
} sff_objstore_put_t;

/*
 * A get: without on_chunk the object is collected into res->body, up to max_bytes (0: the store's
 * max_upload; larger is SFF_ETOOLARGE before any byte is read). With on_chunk it is delivered piece
 * by piece: on_info first (may be NULL), then on_chunk with bytes borrowed for the call; on_chunk
 * returns 0 for more or SFF_OBJSTORE_PAUSE to wait for sff_objstore_resume(). Either way the object
 * is in memory once at most.
 */
typedef struct st_sff_objstore_get_t {
    size_t max_bytes;
    void (*on_info)(void *data, const sff_objstore_info_t *info);
    int (*on_chunk)(void *data, const char *bytes, size_t len);
    uint32_t timeout_ms;
} sff_objstore_get_t;

typedef struct st_sff_objstore_list_t {
    const char *prefix; /* NULL or "": everything */
    const char *token;  /* NULL for the first page, else a next_token */
    size_t max_keys;    /* 1..1000; 0 means 1000 */
    uint32_t timeout_ms;
} sff_objstore_list_t;

typedef enum {
    SFF_OBJSTORE_OP_PUT,
    SFF_OBJSTORE_OP_GET,
    SFF_OBJSTORE_OP_HEAD,
    SFF_OBJSTORE_OP_DELETE,
    SFF_OBJSTORE_OP_LIST,
    SFF_OBJSTORE_OP_PRESIGN,
    SFF_OBJSTORE_NOPS
} sff_objstore_opcode_t;

/* Counters of this process (one worker), for /_metrics; written on the loop thread only. */
typedef struct st_sff_objstore_stats_t {
    uint64_t calls[SFF_OBJSTORE_NOPS];
    uint64_t errors[SFF_OBJSTORE_NOPS];
    uint64_t latency_us_sum[SFF_OBJSTORE_NOPS]; /* of the calls that ended with their callback */
    uint64_t latency_count[SFF_OBJSTORE_NOPS];
    uint64_t retries;
    uint64_t bytes_in;  /* object bytes read from storage */
    uint64_t bytes_out; /* object bytes written to storage */
} sff_objstore_stats_t;

extern sff_objstore_stats_t sff_objstore_stats;

/* "put", "get"... */
const char *sff_objstore_opname(sff_objstore_opcode_t op);

/* Checks a key: 0 or SFF_EBADREQ. */
int sff_objstore_check_key(const char *key, size_t len);
/* Checks a list prefix: like a key, but it may be empty and end with "/". 0 or SFF_EBADREQ. */
int sff_objstore_check_prefix(const char *prefix, size_t len);

/*
 * Creates the store of config->url on loop. Returns 0 and *out, or SFF_EBADREQ (a bad URL or
 * option, described in err), SFF_EUNAVAILABLE (the directory cannot be used) or SFF_ENOMEM. Creating
 * a file store may block briefly (it opens or creates the directory): do it at startup.
 */
int sff_objstore_create(h2o_loop_t *loop, const sff_objstore_config_t *config, sff_objstore_t **out, char *err, size_t errsize);
/* Cancels every call in flight (no callback fires), waits for the file driver's threads, frees.
 * Call it from outside the store's callbacks (at the worker's shutdown). */
void sff_objstore_destroy(sff_objstore_t *st);
/* "file" or "s3". */
const char *sff_objstore_driver(sff_objstore_t *st);

/* Stores an object under key (replacing any). *op (may be NULL) receives the handle. */
int sff_objstore_put(sff_objstore_t *st, const char *key, const sff_objstore_put_t *put, sff_objstore_cb cb, void *data,
                     sff_objstore_op_t **op);
/* Gives the next piece of a streamed put, once per on_pull: 0 < len <= what remains. The bytes are
 * borrowed until the next on_pull or the callback. Returns 0, or SFF_EBADREQ (not asked for,
 * empty, too long), which changes nothing. */
int sff_objstore_write(sff_objstore_op_t *op, const void *bytes, size_t len);

/* Reads an object (see sff_objstore_get_t); opts may be NULL (collect up to max_upload). */
int sff_objstore_get(sff_objstore_t *st, const char *key, const sff_objstore_get_t *opts, sff_objstore_cb cb, void *data,
                     sff_objstore_op_t **op);
/* Resumes a get paused by SFF_OBJSTORE_PAUSE. */
void sff_objstore_resume(sff_objstore_op_t *op);

/* The size, time, ETag and type of an object. timeout_ms 0: the store's. */
int sff_objstore_head(sff_objstore_t *st, const char *key, uint32_t timeout_ms, sff_objstore_cb cb, void *data,
                      sff_objstore_op_t **op);
/* Deletes an object; deleting a missing one succeeds (as in S3). */
int sff_objstore_delete(sff_objstore_t *st, const char *key, uint32_t timeout_ms, sff_objstore_cb cb, void *data,
                        sff_objstore_op_t **op);
/* One page of the objects under a prefix, in key order (bytewise). */
int sff_objstore_list(sff_objstore_t *st, const sff_objstore_list_t *opts, sff_objstore_cb cb, void *data, sff_objstore_op_t **op);

/* Stops a call: its callback never fires; what it did so far may stay done. Not allowed inside its
 * own callback (the op is gone once the callback returns), allowed in on_pull, on_info, on_chunk. */
void sff_objstore_cancel(sff_objstore_op_t *op);

/*
 * A presigned URL for method "GET" or "PUT" on key, valid expires_s seconds (1..604800) from now
 * (0: the current time). No I/O. Returns 0 and *url (malloc()ed, caller frees), SFF_EBADREQ, or
 * SFF_EINTERNAL for a store without presigned URLs (the file driver).
 */
int sff_objstore_presign(sff_objstore_t *st, const char *method, const char *key, uint32_t expires_s, time_t now, char **url);

/* ---- for tests -------------------------------------------------------------------------------- */

/* S3: the request head the driver sends for method on key (NULL: the bucket) with query params
 * (decoded), signed at time now. *head is malloc()ed. SFF_EINTERNAL for the file driver. */
int sff_objstore_s3_request_head(sff_objstore_t *st, const char *method, const char *key, const sff_sigv4_kv_t *query,
                                 size_t nquery, const char *payload_hash, time_t now, char **head);
/* The HTTP client of an S3 store (NULL for the file driver). */
sff_httpc_t *sff_objstore_s3_httpc(sff_objstore_t *st);

/* ---- the driver interface: objstore.c, objstore_file.c and objstore_s3.c only ---------------- */
#ifdef SFF_OBJSTORE_DRIVER

#include "timer.h"

typedef struct st_sff_objstore_driver_t {
    const char *name;
    size_t op_size; /* sizeof the driver's op, which starts with sff_objstore_op_t */
    /* Starts op (its fields are set). Returns 0, or a code: then no callback, and objstore.c frees op. */
    int (*start)(sff_objstore_op_t *op);
    /* Stops op's I/O for good: no sff_objstore__done() for it afterwards. The driver frees it with
     * sff_objstore__op_free() once nothing refers to it (at once, or when a running job returns). */
    void (*abort)(sff_objstore_op_t *op);
    int (*write)(sff_objstore_op_t *op, const void *bytes, size_t len);
    void (*resume)(sff_objstore_op_t *op);
    int (*presign)(sff_objstore_t *st, const char *method, const char *key, uint32_t expires_s, time_t now, char **url);
    /* Frees the store once every live op was aborted. */
    void (*destroy)(sff_objstore_t *st);
} sff_objstore_driver_t;

struct st_sff_objstore_t {
    const sff_objstore_driver_t *driver;
    h2o_loop_t *loop;
    uint64_t max_upload;
    uint32_t timeout_ms;
    h2o_linklist_t ops; /* live ops (neither done nor cancelled) */
};

struct st_sff_objstore_op_t {
    sff_objstore_t *store;
    h2o_linklist_t link;
    sff_objstore_opcode_t opcode;
    sff_objstore_cb cb;
    void *data;
    char *key;                /* owned; NULL for a list */
    sff_objstore_put_t put;   /* a put's body (borrowed) */
    sff_objstore_get_t get;   /* a get's options */
    sff_objstore_list_t list; /* a list's options (prefix and token owned) */
    uint64_t started_us;
    sff_timer_t deadline;
    int ended;    /* done, timed out or cancelled: no user callback anymore */
    int canceled; /* cancelled (or timed out) rather than done */
    int in_cb;    /* user callbacks running */
    int free_pending;
};

/* Ends op: counts it and calls its callback with res (res->message NULL means ""). The driver
 * frees op afterwards with sff_objstore__op_free(). Ignored for an op already ended. */
void sff_objstore__done(sff_objstore_op_t *op, sff_objstore_result_t *res);
/* Shorthand for an error. */
void sff_objstore__fail(sff_objstore_op_t *op, int err, const char *msg);
/* Frees op (deferred while one of its user callbacks runs). */
void sff_objstore__op_free(sff_objstore_op_t *op);
/* Call the user's streaming callbacks. Each returns SFF_ECANCELED when the op was cancelled inside
 * (do not touch op then: it may be freed), else 0 (or on_chunk's return value). */
int sff_objstore__on_info(sff_objstore_op_t *op, const sff_objstore_info_t *info);
int sff_objstore__on_chunk(sff_objstore_op_t *op, const char *bytes, size_t len);
int sff_objstore__on_pull(sff_objstore_op_t *op);

extern const sff_objstore_driver_t sff_objstore_file_driver;
extern const sff_objstore_driver_t sff_objstore_s3_driver;
/* Driver constructors: fill *out (a driver struct starting with sff_objstore_t), or return a code
 * with err set. rest is what follows the scheme: "/path" after "file://", "bucket?..." after "s3://". */
int sff_objstore_file_create(h2o_loop_t *loop, const sff_objstore_config_t *config, const char *path, sff_objstore_t **out,
                             char *err, size_t errsize);
int sff_objstore_s3_create(h2o_loop_t *loop, const sff_objstore_config_t *config, const char *rest, sff_objstore_t **out, char *err,
                           size_t errsize);

#endif /* SFF_OBJSTORE_DRIVER */

#endif
