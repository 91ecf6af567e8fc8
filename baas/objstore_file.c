/*
 * objstore_file.c - the local directory driver (file:///path), the embedded default.
 *
 * A key is a path below the root: "a/b/c" is the file c in the directories a/b. Every path is
 * opened component by component from the root's descriptor with O_NOFOLLOW (openat), so neither
 * ".." (refused by the key rules anyway) nor a symbolic link planted under the root leads outside.
 *
 * A put writes a temp file in ROOT/.sff-tmp/, fsyncs it, renames it over the key and fsyncs the
 * directory: a reader sees the old object or the new one, whole, and after a crash the object is
 * either there whole or not at all. A crash leaves a temp file, never listed; the store removes
 * those older than an hour when it is created. The top-level name ".sff-tmp" is reserved.
 *
 * File I/O, fsync included, runs on a few threads; a job's completion comes back to the loop
 * through an eventfd watched by the loop (h2o_evloop_socket_create with H2O_SOCKET_FLAG_DONT_READ:
 * h2o reports readability and leaves the reading to us). Calls in flight are bounded
 * (queue_size): one more gets SFF_EOVERLOADED.
 *
 * Limits of a file system that S3 does not have: "a/b" and "a/b/c" cannot both be objects (the
 * second put gets SFF_ECONFLICT), a segment is at most 255 bytes (SFF_EBADREQ), and directories
 * emptied by deletes stay (a concurrent put may be about to use them; a listing skips them).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#define SFF_OBJSTORE_DRIVER
#include "sff.h"
#include "objstore.h"

#define TMPDIR_NAME ".sff-tmp"
#define CHUNK (256 * 1024)
#define XATTR_TYPE "user.sff.content_type"
#define STALE_TMP_S 3600

typedef struct st_job_t job_t;
struct st_job_t {
    h2o_linklist_t link;
    void (*work)(job_t *job); /* on a pool thread */
    void (*done)(job_t *job); /* on the loop */
};

typedef struct st_fstore_t {
    sff_objstore_t super;
    char *root;
    int rootfd, tmpfd;
    uint64_t tmp_seq;
    size_t inflight, queue_size; /* calls from their start to their end */
    size_t nops;                 /* ops not freed yet (their fini may still run) */
    /* the pool */
    pthread_mutex_t mutex;
    pthread_cond_t cond;      /* jobs queued, or stop */
    pthread_cond_t done_cond; /* a job completed (for destroy) */
    h2o_linklist_t queue, done;
    int stop;
    pthread_t *threads;
    size_t nthreads;
    int efd;
    h2o_socket_t *efd_sock;
} fstore_t;

typedef struct {
    char *key;
    uint64_t size;
    int64_t mtime;
    char etag[64];
} fentry_t;

typedef struct st_fop_t {
    sff_objstore_op_t super;
    job_t job;
    int job_busy; /* the job is queued or running */
    int dead;     /* aborted: finish with fini, then free */
    int slot;     /* holds one of the queue_size slots: from the start until the call ends */
    /* what the work found */
    int err;
    char msg[256];
    int fd, dirfd;
    char tmpname[64];
    int committed;
    struct stat st;
    char etag[64];
    char content_type[128];
    /* put */
    const char *chunk;
    size_t chunk_len;
    uint64_t written;
    int want_pull;
    /* get */
    char *buf;
    size_t buf_len;
    uint64_t offset;
    int paused, reading;
    /* list */
    fentry_t *entries;
    size_t nentries, cap;
    int truncated;
} fop_t;

static fstore_t *store_of(fop_t *op)
{
    return (fstore_t *)op->super.store;
}

/* ---- the pool ------------------------------------------------------------------------------------ */

static void *thread_main(void *arg)
{
    fstore_t *fs = arg;
    pthread_mutex_lock(&fs->mutex);
    for (;;) {
        while (!fs->stop && h2o_linklist_is_empty(&fs->queue))
            pthread_cond_wait(&fs->cond, &fs->mutex);
        if (h2o_linklist_is_empty(&fs->queue))
            break; /* stop, and nothing left */
        job_t *job = H2O_STRUCT_FROM_MEMBER(job_t, link, fs->queue.next);
        h2o_linklist_unlink(&job->link);
        pthread_mutex_unlock(&fs->mutex);
        job->work(job);
        pthread_mutex_lock(&fs->mutex);
        int was_empty = h2o_linklist_is_empty(&fs->done);
        h2o_linklist_insert(&fs->done, &job->link);
        pthread_cond_broadcast(&fs->done_cond);
        if (was_empty) {
            uint64_t one = 1;
            ssize_t r = write(fs->efd, &one, sizeof(one));
            (void)r; /* the counter cannot overflow: the loop resets it every time */
        }
    }
    pthread_mutex_unlock(&fs->mutex);
    return NULL;
}

static void submit(fop_t *op, void (*work)(job_t *), void (*done)(job_t *))
{
    fstore_t *fs = store_of(op);
    op->job.work = work;
    op->job.done = done;
    op->job_busy = 1;
    pthread_mutex_lock(&fs->mutex);
    h2o_linklist_insert(&fs->queue, &op->job.link);
    pthread_cond_signal(&fs->cond);
    pthread_mutex_unlock(&fs->mutex);
}

/* Runs the completions waiting on the done list. */
static void run_done(fstore_t *fs)
{
    h2o_linklist_t list;
    h2o_linklist_init_anchor(&list);
    pthread_mutex_lock(&fs->mutex);
    h2o_linklist_insert_list(&list, &fs->done);
    pthread_mutex_unlock(&fs->mutex);
    while (!h2o_linklist_is_empty(&list)) {
        job_t *job = H2O_STRUCT_FROM_MEMBER(job_t, link, list.next);
        h2o_linklist_unlink(&job->link);
        fop_t *op = H2O_STRUCT_FROM_MEMBER(fop_t, job, job);
        op->job_busy = 0;
        job->done(job);
    }
}

static void on_eventfd(h2o_socket_t *sock, const char *err)
{
    fstore_t *fs = sock->data;
    if (err != NULL)
        return;
    uint64_t n;
    ssize_t r = read(fs->efd, &n, sizeof(n));
    (void)r;
    run_done(fs);
}

/* ---- helpers on the threads ---------------------------------------------------------------------- */

static void set_err(fop_t *op, int err, const char *what, int e)
{
    op->err = err;
    snprintf(op->msg, sizeof(op->msg), "%s: %s", what, strerror(e));
}

/* Maps an errno of a file system call on the object's path to a code. */
static int map_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return SFF_ENOTFOUND;
    case ENAMETOOLONG:
    case ELOOP:
        return SFF_EBADREQ;
    case EACCES:
    case EPERM:
    case EROFS:
        return SFF_EINTERNAL;
    default:
        return SFF_EUNAVAILABLE; /* EIO, ENOSPC, EDQUOT, EMFILE... */
    }
}

static void etag_of(const struct stat *st, char out[64])
{
    snprintf(out, 64, "%llx-%llx-%llx", (unsigned long long)st->st_ino, (unsigned long long)st->st_size,
             (unsigned long long)st->st_mtim.tv_sec * 1000000000ull + (unsigned long long)st->st_mtim.tv_nsec);
}

/* Whether name in dirfd is a symbolic link. */
static int is_symlink(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

/*
 * Opens the directory holding key (creating the missing ones with create) relative to the root,
 * one component at a time, never following a symbolic link. Sets op->dirfd and returns the last
 * segment (within key), or NULL with op->err set.
 */
static const char *walk(fop_t *op, const char *key, int create)
{
    fstore_t *fs = store_of(op);
    int dirfd = dup(fs->rootfd);
    if (dirfd < 0) {
        set_err(op, SFF_EUNAVAILABLE, "cannot open the root", errno);
        return NULL;
    }
    char seg[256];
    const char *p = key;
    for (const char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
        size_t n = (size_t)(slash - p);
        if (n >= sizeof(seg)) {
            op->err = SFF_EBADREQ;
            snprintf(op->msg, sizeof(op->msg), "a key segment is longer than 255 bytes");
            close(dirfd);
            return NULL;
        }
        memcpy(seg, p, n);
        seg[n] = '\0';
        int fd = openat(dirfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create) {
            if (mkdirat(dirfd, seg, 0755) == 0)
                fsync(dirfd); /* the new directory's entry */
            fd = openat(dirfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
            int e = errno;
            if (is_symlink(dirfd, seg)) {
                op->err = SFF_EBADREQ;
                snprintf(op->msg, sizeof(op->msg), "the key's path holds a symbolic link");
            } else if (e == ENOTDIR && create) {
                op->err = SFF_ECONFLICT;
                snprintf(op->msg, sizeof(op->msg), "an object is in the way of the key's directories");
            } else {
                set_err(op, map_errno(e), "cannot open the key's directory", e);
            }
            close(dirfd);
            return NULL;
        }
        close(dirfd);
        dirfd = fd;
    }
    if (strlen(p) > 255) {
        op->err = SFF_EBADREQ;
        snprintf(op->msg, sizeof(op->msg), "a key segment is longer than 255 bytes");
        close(dirfd);
        return NULL;
    }
    op->dirfd = dirfd;
    return p;
}

/* Opens key for reading into op->fd and op->st; 0 or -1 with op->err. */
static int open_object(fop_t *op)
{
    const char *base = walk(op, op->super.key, 0);
    if (base == NULL)
        return -1;
    op->fd = openat(op->dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (op->fd < 0) {
        int e = errno;
        if (is_symlink(op->dirfd, base)) {
            op->err = SFF_EBADREQ;
            snprintf(op->msg, sizeof(op->msg), "the key is a symbolic link");
        } else {
            set_err(op, map_errno(e), "cannot open the object", e);
            if (op->err == SFF_ENOTFOUND)
                snprintf(op->msg, sizeof(op->msg), "no such object");
        }
        return -1;
    }
    if (fstat(op->fd, &op->st) != 0) {
        set_err(op, SFF_EUNAVAILABLE, "cannot stat the object", errno);
        return -1;
    }
    if (!S_ISREG(op->st.st_mode)) {
        op->err = SFF_ENOTFOUND; /* a directory of other keys */
        snprintf(op->msg, sizeof(op->msg), "no such object");
        return -1;
    }
    etag_of(&op->st, op->etag);
    ssize_t n = fgetxattr(op->fd, XATTR_TYPE, op->content_type, sizeof(op->content_type) - 1);
    op->content_type[n > 0 ? n : 0] = '\0';
    return 0;
}

static int pread_all(fop_t *op, char *buf, size_t len, uint64_t off)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = pread(op->fd, buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_err(op, SFF_EUNAVAILABLE, "cannot read the object", errno);
            return -1;
        }
        if (n == 0) {
            op->err = SFF_EUNAVAILABLE;
            snprintf(op->msg, sizeof(op->msg), "the object is shorter than its size");
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

static int write_all(fop_t *op, const char *buf, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = write(op->fd, buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_err(op, map_errno(errno) == SFF_ENOTFOUND ? SFF_EUNAVAILABLE : map_errno(errno), "cannot write the object", errno);
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

/* ---- work ---------------------------------------------------------------------------------------- */

static void work_head(job_t *job)
{
    fop_t *op = H2O_STRUCT_FROM_MEMBER(fop_t, job, job);
    open_object(op);
}

static void work_get_open(job_t *job)
{
    fop_t *op = H2O_STRUCT_FROM_MEMBER(fop_t, job, job);
    if (open_object(op) != 0 || op->super.get.on_chunk != NULL)
        return;
    uint64_t size = (uint64_t)op->st.st_size;
    if (size > op->super.get.max_bytes) {
        op->err = SFF_ETOOLARGE;
        snprintf(op->msg, sizeof(op->msg), "the object is larger than %zu bytes", op->super.get.max_bytes);
        return;
    }
    if ((op->buf = malloc(size + 1)) == NULL) {
        op->err = SFF_ENOMEM;
        snprintf(op->msg, sizeof(op->msg), "out of memory");
        return;
    }
    if (pread_all(op, op->buf, size, 0) == 0) {
        op->buf[size] = '\0';
        op->buf_len = size;
    }
}

static void work_read(job_t *job)
{
    fop_t *op = H2O_STRUCT_FROM_MEMBER(fop_t, job, job);
    uint64_t left = (uint64_t)op->st.st_size - op->offset;
    size_t n = left < CHUNK ? (size_t)left : CHUNK;
    if (pread_all(op, op->buf, n, op->offset) == 0)
        op->buf_len = n;
}

/* Creates the temp file; 0 or -1. */
static int create_tmp(fop_t *op)
{
    fstore_t *fs = store_of(op);
    for (int attempt = 0; attempt < 8; attempt++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
            r = (uint64_t)op->super.started_us * 2654435761u + (uint64_t)attempt;
        snprintf(op->tmpname, sizeof(op->tmpname), "%d.%016llx", (int)getpid(), (unsigned long long)r);
        op->fd = openat(fs->tmpfd, op->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (op->fd >= 0 || errno != EEXIST)
            break;
    }
    if (op->fd < 0) {
        int e = errno;
        op->tmpname[0] = '\0';
        set_err(op, map_errno(e) == SFF_ENOTFOUND ? SFF_EUNAVAILABLE : map_errno(e), "cannot create a temp file", e);
        return -1;
    }
    const char *type = op->super.put.content_type;
    if (type != NULL && type[0] != '\0')
        fsetxattr(op->fd, XATTR_TYPE, type, strlen(type), 0); /* best effort: not every file system has user xattrs */
    return 0;
}

static void work_put_open(job_t *job)
{
    fop_t *op = H2O_STRUCT_FROM_MEMBER(fop_t, job, job);
    if (walk(op, op->super.key, 1) == NULL)
        return;
    create_tmp(op);
}

static void work_put_write(job_t *job)
{
    fop_t *op = H2O_STRUCT_FROM_MEMBER(fop_t, job, job);
    write_all(op, op->chunk, op->chunk_len);
}

static void commit(fop_t *op)
{
    fstore_t *fs = store_of(op);
    const char *base = strrchr(op->super.key, '/');
    base = base != NULL ? base + 1 : op->super.key;
    if (fsync(op->fd) != 0) {
        set_err(op, SFF_EUNAVAILABLE, "cannot fsync the object", errno);
        return;
    }
    if (fstat(op->fd, &op->st) != 0) {
        set_err(op, SFF_EUNAVAILABLE, "cannot stat the object", errno);
        return;
    }
    if (renameat(fs->tmpfd, op->tmpname, op->dirfd, base) != 0) {
        int e = errno;
        if (e == EISDIR || e == ENOTEMPTY || e == EEXIST) {
            op->err = SFF_ECONFLICT;
            snprintf(op->msg, sizeof(op->msg), "the key is a directory of other objects");
        } else {
            set_err(op, map_errno(e) == SFF_ENOTFOUND ? SFF_EUNAVAILABLE : map_errno(e), "cannot rename the temp file", e);
        }
        return;
    }
    op->committed = 1;
    if (fsync(op->dirfd) != 0)
        set_err(op, SFF_EUNAVAILABLE, "cannot fsync the directory", errno);
    etag_of(&op->st, op->etag);
}

static void work_put_commit(job_t *job)
{
    commit(H2O_STRUCT_FROM_MEMBER(fop_t, job, job));
}

static void work_put_all(job_t *job)
{
    fop_t *op = H2O_STRUCT_FROM_MEMBER(fop_t, job, job);
    if (walk(op, op->super.key, 1) == NULL || create_tmp(op) != 0 || write_all(op, op->super.put.body, op->super.put.len) != 0)
        return;
    commit(op);
}

static void work_delete(job_t *job)
{
    fop_t *op = H2O_STRUCT_FROM_MEMBER(fop_t, job, job);
    const char *base = walk(op, op->super.key, 0);
    if (base == NULL) {
        if (op->err == SFF_ENOTFOUND)
            op->err = 0; /* nothing to delete */
        return;
    }
    if (unlinkat(op->dirfd, base, 0) != 0) {
        int e = errno;
        if (e != ENOENT && e != EISDIR && e != ENOTDIR)
            set_err(op, map_errno(e), "cannot delete the object", e);
        return;
    }
    if (fsync(op->dirfd) != 0)
        set_err(op, SFF_EUNAVAILABLE, "cannot fsync the directory", errno);
}

typedef struct {
    char *name; /* a directory's with "/" appended: sorting these names bytewise yields keys in order */
    int is_dir;
    struct stat st;
} dent_t;

static int cmp_dent(const void *a, const void *b)
{
    return strcmp(((const dent_t *)a)->name, ((const dent_t *)b)->name);
}

static int add_entry(fop_t *op, const char *key, const struct stat *st)
{
    if (op->nentries == op->cap) {
        size_t cap = op->cap != 0 ? op->cap * 2 : 64;
        fentry_t *e = realloc(op->entries, cap * sizeof(*e));
        if (e == NULL)
            return -1;
        op->entries = e;
        op->cap = cap;
    }
    fentry_t *e = &op->entries[op->nentries];
    if ((e->key = strdup(key)) == NULL)
        return -1;
    e->size = (uint64_t)st->st_size;
    e->mtime = st->st_mtim.tv_sec;
    etag_of(st, e->etag);
    op->nentries++;
    return 0;
}

/* Lists dirfd (the directory of keys starting with path) into op; returns 1 when the page is full,
 * -1 on an error, else 0. dirfd is closed. */
static int visit(fop_t *op, int dirfd, char *path, size_t pathlen)
{
    const char *prefix = op->super.list.prefix != NULL ? op->super.list.prefix : "";
    const char *token = op->super.list.token;
    size_t plen = strlen(prefix), want = op->super.list.max_keys + 1;
    DIR *d = fdopendir(dirfd);
    if (d == NULL) {
        close(dirfd);
        set_err(op, SFF_EUNAVAILABLE, "cannot list a directory", errno);
        return -1;
    }
    dent_t *ents = NULL;
    size_t n = 0, cap = 0;
    int ret = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || (pathlen == 0 && strcmp(name, TMPDIR_NAME) == 0))
            continue;
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
            continue; /* gone meanwhile, a symbolic link, a device... */
        if (n == cap) {
            cap = cap != 0 ? cap * 2 : 32;
            dent_t *e = realloc(ents, cap * sizeof(*e));
            if (e == NULL) {
                ret = -1;
                break;
            }
            ents = e;
        }
        size_t nl = strlen(name);
        if ((ents[n].name = malloc(nl + 2)) == NULL) {
            ret = -1;
            break;
        }
        ents[n].is_dir = S_ISDIR(st.st_mode);
        memcpy(ents[n].name, name, nl);
        if (ents[n].is_dir)
            ents[n].name[nl++] = '/';
        ents[n].name[nl] = '\0';
        ents[n].st = st;
        n++;
    }
    if (ret == 0 && n != 0)
        qsort(ents, n, sizeof(*ents), cmp_dent);
    for (size_t i = 0; ret == 0 && i < n; i++) {
        size_t nl = strlen(ents[i].name), kl = pathlen + nl;
        if (kl > SFF_OBJSTORE_MAX_KEY)
            continue;
        memcpy(path + pathlen, ents[i].name, nl + 1);
        if (!ents[i].is_dir) {
            if (sff_objstore_check_key(path, kl) != 0)
                continue; /* not a name a key can have */
            if (strncmp(path, prefix, plen) != 0 || (token != NULL && strcmp(path, token) <= 0))
                continue;
            if (add_entry(op, path, &ents[i].st) != 0) {
                ret = -1;
                break;
            }
            if (op->nentries == want)
                ret = 1;
            continue;
        }
        /* prune: the prefix must fit the directory, and the token must not be past all of it */
        if (strncmp(path, prefix, kl < plen ? kl : plen) != 0)
            continue;
        if (token != NULL && strncmp(token, path, kl) > 0)
            continue;
        ents[i].name[nl - 1] = '\0';
        int fd = openat(dirfd, ents[i].name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        ret = visit(op, fd, path, kl);
    }
    path[pathlen] = '\0';
    for (size_t i = 0; i < n; i++)
        free(ents[i].name);
    free(ents);
    closedir(d);
    if (ret < 0 && op->err == 0) {
        op->err = SFF_ENOMEM;
        snprintf(op->msg, sizeof(op->msg), "out of memory");
    }
    return ret;
}

static void work_list(job_t *job)
{
    fop_t *op = H2O_STRUCT_FROM_MEMBER(fop_t, job, job);
    char path[SFF_OBJSTORE_MAX_KEY + 2] = "";
    /* a new open file description: a dup() would share the directory offset with the others */
    int fd = openat(store_of(op)->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        set_err(op, SFF_EUNAVAILABLE, "cannot open the root", errno);
        return;
    }
    if (visit(op, fd, path, 0) < 0)
        return;
    if (op->nentries > op->super.list.max_keys) {
        op->truncated = 1;
        free(op->entries[op->nentries - 1].key);
        op->nentries--;
    }
}

static void work_fini(job_t *job)
{
    fop_t *op = H2O_STRUCT_FROM_MEMBER(fop_t, job, job);
    if (op->fd >= 0)
        close(op->fd);
    if (op->tmpname[0] != '\0' && !op->committed)
        unlinkat(store_of(op)->tmpfd, op->tmpname, 0);
    if (op->dirfd >= 0)
        close(op->dirfd);
    op->fd = op->dirfd = -1;
}

/* ---- completions (on the loop) ------------------------------------------------------------------- */

/* The call ended (done, failed, timed out or cancelled): its slot is free for another. */
static void release_slot(fop_t *op)
{
    if (op->slot) {
        op->slot = 0;
        store_of(op)->inflight--;
    }
}

static void free_op(fop_t *op)
{
    fstore_t *fs = store_of(op);
    release_slot(op);
    free(op->buf);
    for (size_t i = 0; i < op->nentries; i++)
        free(op->entries[i].key);
    free(op->entries);
    fs->nops--;
    sff_objstore__op_free(&op->super);
}

static void end_call(fop_t *op, sff_objstore_result_t *res)
{
    release_slot(op);
    sff_objstore__done(&op->super, res);
}

static void done_fini(job_t *job)
{
    free_op(H2O_STRUCT_FROM_MEMBER(fop_t, job, job));
}

/* Releases op's descriptors and temp file on a thread, then frees it. */
static void finish(fop_t *op)
{
    if (op->fd < 0 && op->dirfd < 0 && op->tmpname[0] == '\0') {
        free_op(op);
        return;
    }
    submit(op, work_fini, done_fini);
}

/* The common start of a completion: an aborted op only finishes. Returns 1 when op is done with. */
static int dead(fop_t *op)
{
    if (!op->dead)
        return 0;
    finish(op);
    return 1;
}

static void fail(fop_t *op)
{
    sff_objstore_result_t res = {.err = op->err, .message = op->msg};
    end_call(op, &res);
    finish(op);
}

/* The op of a completed job, or NULL when it is done with: aborted (finished) or failed (answered
 * with its error). */
static fop_t *completed(job_t *job)
{
    fop_t *op = H2O_STRUCT_FROM_MEMBER(fop_t, job, job);
    if (dead(op))
        return NULL;
    if (op->err != 0) {
        fail(op);
        return NULL;
    }
    return op;
}

static void fill_info(fop_t *op, sff_objstore_info_t *info)
{
    info->size = (uint64_t)op->st.st_size;
    info->mtime = op->st.st_mtim.tv_sec;
    info->etag = op->etag;
    info->content_type = op->content_type;
}

/* Answers with the object's size, time, etag and type, and finishes. */
static void answer_info(fop_t *op)
{
    sff_objstore_result_t res = {0};
    fill_info(op, &res.info);
    end_call(op, &res);
    finish(op);
}

static void done_info(job_t *job) /* head; a put's end */
{
    fop_t *op = completed(job);
    if (op == NULL)
        return;
    if (op->super.opcode == SFF_OBJSTORE_OP_PUT && op->super.put.on_pull == NULL)
        sff_objstore_stats.bytes_out += op->super.put.len; /* a streamed put counts as it goes */
    answer_info(op);
}

static void done_plain(job_t *job) /* delete */
{
    fop_t *op = completed(job);
    if (op == NULL)
        return;
    sff_objstore_result_t res = {0};
    end_call(op, &res);
    finish(op);
}

static void next_read(fop_t *op);

static void done_read(job_t *job)
{
    H2O_STRUCT_FROM_MEMBER(fop_t, job, job)->reading = 0;
    fop_t *op = completed(job);
    if (op == NULL)
        return;
    op->offset += op->buf_len;
    sff_objstore_stats.bytes_in += op->buf_len;
    int ret = sff_objstore__on_chunk(&op->super, op->buf, op->buf_len);
    if (ret == SFF_ECANCELED)
        return; /* the cancel finishes it */
    if (ret == SFF_OBJSTORE_PAUSE) {
        op->paused = 1;
        return;
    }
    next_read(op);
}

static void next_read(fop_t *op)
{
    if (op->offset >= (uint64_t)op->st.st_size) {
        answer_info(op);
        return;
    }
    op->reading = 1;
    submit(op, work_read, done_read);
}

static void done_get_open(job_t *job)
{
    fop_t *op = completed(job);
    if (op == NULL)
        return;
    sff_objstore_result_t res = {0};
    fill_info(op, &res.info);
    if (op->super.get.on_chunk == NULL) {
        sff_objstore_stats.bytes_in += op->buf_len;
        res.body = op->buf;
        res.len = op->buf_len;
        op->buf = NULL;
        end_call(op, &res);
        free(res.body); /* unless the callback took it */
        finish(op);
        return;
    }
    if (sff_objstore__on_info(&op->super, &res.info) == SFF_ECANCELED)
        return;
    uint64_t size = (uint64_t)op->st.st_size;
    if ((op->buf = malloc(size < CHUNK ? (size_t)size + 1 : CHUNK)) == NULL) {
        op->err = SFF_ENOMEM;
        snprintf(op->msg, sizeof(op->msg), "out of memory");
        fail(op);
        return;
    }
    next_read(op);
}

static void pull(fop_t *op)
{
    op->want_pull = 1;
    sff_objstore__on_pull(&op->super); /* a cancel inside finishes it */
}

static void done_put_step(job_t *job)
{
    fop_t *op = completed(job);
    if (op == NULL)
        return;
    if (op->chunk != NULL) {
        op->written += op->chunk_len;
        sff_objstore_stats.bytes_out += op->chunk_len;
        op->chunk = NULL;
    }
    if (op->written == op->super.put.size) {
        submit(op, work_put_commit, done_info);
        return;
    }
    pull(op);
}

static void done_list(job_t *job)
{
    fop_t *op = completed(job);
    if (op == NULL)
        return;
    sff_objstore_entry_t *entries = calloc(op->nentries != 0 ? op->nentries : 1, sizeof(*entries));
    if (entries == NULL) {
        op->err = SFF_ENOMEM;
        snprintf(op->msg, sizeof(op->msg), "out of memory");
        fail(op);
        return;
    }
    for (size_t i = 0; i < op->nentries; i++)
        entries[i] = (sff_objstore_entry_t){op->entries[i].key, op->entries[i].size, op->entries[i].mtime, op->entries[i].etag};
    sff_objstore_result_t res = {.entries = entries, .nentries = op->nentries};
    if (op->truncated && op->nentries != 0)
        res.next_token = op->entries[op->nentries - 1].key;
    end_call(op, &res);
    free(entries);
    finish(op);
}

/* ---- the driver ---------------------------------------------------------------------------------- */

static int file_start(sff_objstore_op_t *sop)
{
    fop_t *op = (fop_t *)sop;
    fstore_t *fs = store_of(op);
    const char *key = sop->key;
    if (key != NULL && strncmp(key, TMPDIR_NAME, strlen(TMPDIR_NAME)) == 0 &&
        (key[strlen(TMPDIR_NAME)] == '\0' || key[strlen(TMPDIR_NAME)] == '/'))
        return SFF_EBADREQ; /* the reserved name */
    if (fs->inflight >= fs->queue_size)
        return SFF_EOVERLOADED;
    op->fd = op->dirfd = -1;
    op->slot = 1;
    fs->inflight++;
    fs->nops++;
    switch (sop->opcode) {
    case SFF_OBJSTORE_OP_PUT:
        if (sop->put.on_pull != NULL)
            submit(op, work_put_open, done_put_step);
        else
            submit(op, work_put_all, done_info);
        break;
    case SFF_OBJSTORE_OP_GET:
        submit(op, work_get_open, done_get_open);
        break;
    case SFF_OBJSTORE_OP_HEAD:
        submit(op, work_head, done_info);
        break;
    case SFF_OBJSTORE_OP_DELETE:
        submit(op, work_delete, done_plain);
        break;
    case SFF_OBJSTORE_OP_LIST:
        submit(op, work_list, done_list);
        break;
    default:
        release_slot(op);
        fs->nops--;
        return SFF_EINTERNAL;
    }
    return 0;
}

static void file_abort(sff_objstore_op_t *sop)
{
    fop_t *op = (fop_t *)sop;
    if (op->dead)
        return;
    op->dead = 1;
    release_slot(op);
    if (!op->job_busy)
        finish(op);
}

static int file_write(sff_objstore_op_t *sop, const void *bytes, size_t len)
{
    fop_t *op = (fop_t *)sop;
    if (!op->want_pull || op->job_busy || len > op->super.put.size - op->written)
        return SFF_EBADREQ;
    op->want_pull = 0;
    op->chunk = bytes;
    op->chunk_len = len;
    submit(op, work_put_write, done_put_step);
    return 0;
}

static void file_resume(sff_objstore_op_t *sop)
{
    fop_t *op = (fop_t *)sop;
    if (!op->paused || op->dead)
        return;
    op->paused = 0;
    next_read(op);
}

static int file_presign(sff_objstore_t *st, const char *method, const char *key, uint32_t expires_s, time_t now, char **url)
{
    (void)st, (void)method, (void)key, (void)expires_s, (void)now, (void)url;
    return SFF_EINTERNAL; /* presigned URLs need the S3 driver */
}

static void file_destroy(sff_objstore_t *st)
{
    fstore_t *fs = (fstore_t *)st;
    /* every op was aborted: let their jobs and finis complete, without running the loop */
    pthread_mutex_lock(&fs->mutex);
    while (fs->nops != 0) {
        if (h2o_linklist_is_empty(&fs->done)) {
            pthread_cond_wait(&fs->done_cond, &fs->mutex);
            continue;
        }
        pthread_mutex_unlock(&fs->mutex);
        run_done(fs);
        pthread_mutex_lock(&fs->mutex);
    }
    fs->stop = 1;
    pthread_cond_broadcast(&fs->cond);
    pthread_mutex_unlock(&fs->mutex);
    for (size_t i = 0; i < fs->nthreads; i++)
        pthread_join(fs->threads[i], NULL);
    if (fs->efd_sock != NULL) {
        h2o_socket_read_stop(fs->efd_sock);
        h2o_socket_close(fs->efd_sock); /* closes efd */
    } else if (fs->efd >= 0) {
        close(fs->efd);
    }
    pthread_mutex_destroy(&fs->mutex);
    pthread_cond_destroy(&fs->cond);
    pthread_cond_destroy(&fs->done_cond);
    if (fs->tmpfd >= 0)
        close(fs->tmpfd);
    if (fs->rootfd >= 0)
        close(fs->rootfd);
    free(fs->threads);
    free(fs->root);
    free(fs);
}

const sff_objstore_driver_t sff_objstore_file_driver = {
    "file", sizeof(fop_t), file_start, file_abort, file_write, file_resume, file_presign, file_destroy,
};

/* Removes temp files older than an hour: leftovers of a crash (other workers may be writing theirs). */
static void sweep_tmp(int tmpfd)
{
    int fd = openat(tmpfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    time_t now = time(NULL);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        struct stat st;
        if (de->d_name[0] != '.' && fstatat(tmpfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_mtime + STALE_TMP_S < now)
            unlinkat(tmpfd, de->d_name, 0);
    }
    closedir(d);
}

/* mkdir -p of an absolute path; 0 or -1 with errno. */
static int mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof(buf))
        return errno = ENAMETOOLONG, -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        buf[i] = c;
    }
    return 0;
}

int sff_objstore_file_create(h2o_loop_t *loop, const sff_objstore_config_t *config, const char *rest, sff_objstore_t **out,
                             char *err, size_t errsize)
{
    /* rest follows "file://": only file:///absolute/path */
    if (strncmp(rest, "/", 1) != 0 || strpbrk(rest, "?#") != NULL) {
        snprintf(err, errsize, "SFF_STORAGE_URL: a file URL is file:///absolute/path");
        return SFF_EBADREQ;
    }
    fstore_t *fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return SFF_ENOMEM;
    fs->super.driver = &sff_objstore_file_driver;
    fs->rootfd = fs->tmpfd = fs->efd = -1;
    h2o_linklist_init_anchor(&fs->queue);
    h2o_linklist_init_anchor(&fs->done);
    pthread_mutex_init(&fs->mutex, NULL);
    pthread_cond_init(&fs->cond, NULL);
    pthread_cond_init(&fs->done_cond, NULL);
    fs->queue_size = config->queue_size != 0 ? config->queue_size : 256;
    size_t nthreads = config->threads != 0 ? config->threads : 2;
    if ((fs->root = strdup(rest)) == NULL || (fs->threads = calloc(nthreads, sizeof(*fs->threads))) == NULL)
        goto NoMem;
    if (mkdirs(fs->root) != 0 || (fs->rootfd = open(fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(err, errsize, "storage directory %s: %s", fs->root, strerror(errno));
        file_destroy(&fs->super);
        return SFF_EUNAVAILABLE;
    }
    if ((mkdirat(fs->rootfd, TMPDIR_NAME, 0700) != 0 && errno != EEXIST) ||
        (fs->tmpfd = openat(fs->rootfd, TMPDIR_NAME, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        snprintf(err, errsize, "storage directory %s/%s: %s", fs->root, TMPDIR_NAME, strerror(errno));
        file_destroy(&fs->super);
        return SFF_EUNAVAILABLE;
    }
    sweep_tmp(fs->tmpfd);
    if ((fs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errsize, "eventfd: %s", strerror(errno));
        file_destroy(&fs->super);
        return SFF_EUNAVAILABLE;
    }
    fs->efd_sock = h2o_evloop_socket_create(loop, fs->efd, H2O_SOCKET_FLAG_DONT_READ);
    fs->efd_sock->data = fs;
    h2o_socket_read_start(fs->efd_sock, on_eventfd);
    for (; fs->nthreads < nthreads; fs->nthreads++) {
        if (pthread_create(&fs->threads[fs->nthreads], NULL, thread_main, fs) != 0) {
            snprintf(err, errsize, "cannot start the storage threads");
            file_destroy(&fs->super);
            return SFF_EUNAVAILABLE;
        }
    }
    *out = &fs->super;
    return 0;
NoMem:
    file_destroy(&fs->super);
    return SFF_ENOMEM;
}
