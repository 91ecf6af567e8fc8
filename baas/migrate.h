/*
 * migrate.h - schema migrations: $SFF_SCHEMAS_DIR/sql/NNNN_name.sql, applied in order, each in its
 * own transaction, recorded in the table sff_migrations with the file's SHA-256. An applied file
 * that was edited afterwards stops everything with a clear message (add a new migration instead).
 * Several gateways starting at once serialise on a Postgres advisory lock, so one applies and the
 * others find the work done.
 *
 * This runs before serving (in `sff migrate` and in the master at `sff serve` start), so it uses
 * libpq's blocking calls; it never runs on a worker's event loop.
 */
#ifndef SFF_MIGRATE_H
#define SFF_MIGRATE_H

#include <stddef.h>

typedef struct st_sff_migrate_result_t {
    size_t applied; /* files applied now */
    size_t present; /* files found */
} sff_migrate_result_t;

/* Applies the pending migrations of sql_dir to the database of conninfo. Returns 0, or -1 with a
 * message in err (naming the file and Postgres's message; never the connection password). A missing
 * sql_dir means no migrations. */
int sff_migrate_run(const char *conninfo, const char *sql_dir, sff_migrate_result_t *result, char *err, size_t errlen);

#endif
