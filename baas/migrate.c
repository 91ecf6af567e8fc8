#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include "log.h"
#include "migrate.h"

/* The advisory lock key: "sff-migrate" folded into 63 bits. */
#define LOCK_KEY "7365666d69677261"

typedef struct st_migration_t {
    int version;
    char *name; /* file name */
    char *path;
    char sha256[65];
    char *sql;
} migration_t;

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The first line of a Postgres error message (they end with a newline). */
static const char *pg_message(const PGconn *conn, char *buf, size_t size)
{
    snprintf(buf, size, "%s", PQerrorMessage(conn));
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static int read_file(const char *path, char **out, char sha[65])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (size_t n; buf != NULL && (n = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += n;
        if (len + 1 == cap) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (buf == NULL || bad) {
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(sha + 2 * i, 3, "%02x", md[i]);
    *out = buf;
    return 0;
}

static int cmp_migration(const void *a, const void *b)
{
    return ((const migration_t *)a)->version - ((const migration_t *)b)->version;
}

static void free_migrations(migration_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].path);
        free(m[i].sql);
    }
    free(m);
}

/* Lists NNNN_name.sql files. Other files are ignored; a .sql file not named that way is an error,
 * as are two files with one number. */
static int list_migrations(const char *dir, migration_t **out, size_t *count, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    migration_t *m = NULL;
    size_t n = 0;
    *out = NULL;
    *count = 0;
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        set_err(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        if (len < 5 || strcmp(name + len - 4, ".sql") != 0)
            continue;
        size_t digits = strspn(name, "0123456789");
        if (digits == 0 || digits > 9 || name[digits] != '_' || len - 4 == digits + 1) {
            set_err(err, errlen, "%s/%s: a migration must be named NNNN_name.sql", dir, name);
            goto Error;
        }
        migration_t *grown = realloc(m, (n + 1) * sizeof(*m));
        if (grown == NULL)
            goto NoMem;
        m = grown;
        memset(&m[n], 0, sizeof(m[n]));
        m[n].version = atoi(name);
        m[n].name = strdup(name);
        if (m[n].name == NULL || asprintf(&m[n].path, "%s/%s", dir, name) < 0) {
            n++;
            goto NoMem;
        }
        n++;
        if (read_file(m[n - 1].path, &m[n - 1].sql, m[n - 1].sha256) != 0) {
            set_err(err, errlen, "%s: cannot read: %s", m[n - 1].path, strerror(errno));
            goto Error;
        }
    }
    closedir(d);
    d = NULL;
    if (n > 1)
        qsort(m, n, sizeof(*m), cmp_migration);
    for (size_t i = 1; i < n; i++) {
        if (m[i].version == m[i - 1].version) {
            set_err(err, errlen, "%s and %s have the same number", m[i - 1].name, m[i].name);
            goto Error;
        }
    }
    *out = m;
    *count = n;
    return 0;
NoMem:
    set_err(err, errlen, "out of memory");
Error:
    if (d != NULL)
        closedir(d);
    free_migrations(m, n);
    return -1;
}

static int exec_ok(PGconn *conn, const char *sql, char *err, size_t errlen, const char *what)
{
    char msg[512];
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    PQclear(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        set_err(err, errlen, "%s: %s", what, pg_message(conn, msg, sizeof(msg)));
        return -1;
    }
    return 0;
}

int sff_migrate_run(const char *conninfo, const char *sql_dir, sff_migrate_result_t *result, char *err, size_t errlen)
{
    migration_t *m = NULL;
    size_t n = 0;
    PGconn *conn = NULL;
    int ret = -1, locked = 0;
    char msg[512];
    sff_migrate_result_t r = {0, 0};

    if (list_migrations(sql_dir, &m, &n, err, errlen) != 0)
        return -1;
    r.present = n;
    if (n == 0) {
        free_migrations(m, n);
        if (result != NULL)
            *result = r;
        return 0; /* nothing to apply: the database is not even touched */
    }
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *values[] = {conninfo, "10", "sff-migrate", NULL};
    conn = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password */
        set_err(err, errlen, "cannot connect to Postgres: %s", pg_message(conn, msg, sizeof(msg)));
        goto Exit;
    }
    if (exec_ok(conn, "SET client_min_messages = warning", err, errlen, "setup") != 0 ||
        exec_ok(conn, "SELECT pg_advisory_lock(x'" LOCK_KEY "'::bigint)", err, errlen, "taking the migration lock") != 0)
        goto Exit;
    locked = 1;
    if (exec_ok(conn,
                "CREATE TABLE IF NOT EXISTS sff_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                "sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                err, errlen, "creating sff_migrations") != 0)
        goto Exit;
    PGresult *applied = PQexec(conn, "SELECT version, name, sha256 FROM sff_migrations ORDER BY version");
    if (PQresultStatus(applied) != PGRES_TUPLES_OK) {
        set_err(err, errlen, "reading sff_migrations: %s", pg_message(conn, msg, sizeof(msg)));
        PQclear(applied);
        goto Exit;
    }
    int rows = PQntuples(applied);
    for (size_t i = 0; i < n; i++) {
        int found = -1;
        for (int k = 0; k < rows; k++)
            if (atoi(PQgetvalue(applied, k, 0)) == m[i].version)
                found = k;
        if (found >= 0) {
            if (strcmp(PQgetvalue(applied, found, 2), m[i].sha256) != 0) {
                set_err(err, errlen,
                        "%s was edited after it was applied (sha256 %.12s…, applied %.12s…): refusing to go on; restore it "
                        "and add a new migration for the change",
                        m[i].path, m[i].sha256, PQgetvalue(applied, found, 2));
                PQclear(applied);
                goto Exit;
            }
            continue;
        }
        if (exec_ok(conn, "BEGIN", err, errlen, m[i].name) != 0) {
            PQclear(applied);
            goto Exit;
        }
        PGresult *res = PQexec(conn, m[i].sql);
        ExecStatusType st = PQresultStatus(res);
        PQclear(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
            set_err(err, errlen, "%s failed, nothing of it was applied: %s", m[i].path, pg_message(conn, msg, sizeof(msg)));
            PQclear(PQexec(conn, "ROLLBACK"));
            PQclear(applied);
            goto Exit;
        }
        char version[16];
        snprintf(version, sizeof(version), "%d", m[i].version);
        const char *params[] = {version, m[i].name, m[i].sha256};
        res = PQexecParams(conn, "INSERT INTO sff_migrations (version, name, sha256) VALUES ($1, $2, $3)", 3, NULL, params, NULL,
                           NULL, 0);
        st = PQresultStatus(res);
        PQclear(res);
        if (st != PGRES_COMMAND_OK || exec_ok(conn, "COMMIT", err, errlen, m[i].name) != 0) {
            if (st != PGRES_COMMAND_OK)
                set_err(err, errlen, "recording %s: %s", m[i].name, pg_message(conn, msg, sizeof(msg)));
            PQclear(PQexec(conn, "ROLLBACK"));
            PQclear(applied);
            goto Exit;
        }
        r.applied++;
        sff_log_info("migration %s applied", m[i].name);
    }
    for (int k = 0; k < rows; k++) {
        int known = 0;
        for (size_t i = 0; i < n; i++)
            known |= atoi(PQgetvalue(applied, k, 0)) == m[i].version;
        if (!known)
            sff_log_warn("migration %s is recorded as applied but its file is gone", PQgetvalue(applied, k, 1));
    }
    PQclear(applied);
    ret = 0;
Exit:
    if (locked)
        PQclear(PQexec(conn, "SELECT pg_advisory_unlock(x'" LOCK_KEY "'::bigint)"));
    PQfinish(conn);
    free_migrations(m, n);
    if (result != NULL)
        *result = r;
    return ret;
}
