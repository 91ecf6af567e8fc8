/*
 * pg.h - a private PostgreSQL 15 server for a test: initdb into a fresh temp dir owned by the
 * unprivileged user "postgres" (the server refuses to run as root), listen on 127.0.0.1 on a free
 * port and on a unix socket in that dir, trust authentication, fsync off, one database "sff".
 *
 *     tc_pg_t pg;
 *     if (tc_pg_start(&pg) != 0) ... a failure, never a skip
 *     tc_pg_sql(&pg, "create table t (id int)");
 *     ... connect with pg.conninfo or pg.url ...
 *     tc_pg_stop(&pg);
 *
 * Every helper runs the server's own tools (initdb, pg_ctl, psql) from /usr/lib/postgresql/15/bin
 * as "postgres" through runuser, so a test must run as root (as CI does).
 */
#ifndef SFF_TEST_PG_H
#define SFF_TEST_PG_H

#include <stddef.h>
#include <sys/types.h>

typedef struct st_tc_pg_t {
    char dir[256];             /* the temp dir: data/ (the cluster), server.log, the unix socket */
    int port;                  /* TCP port on 127.0.0.1, also the unix socket's number */
    int running;               /* nonzero while the server is believed to be up */
    char conninfo[512];        /* "host=127.0.0.1 port=N dbname=sff user=postgres" */
    char url[512];             /* "postgresql://postgres@127.0.0.1:N/sff" */
    char socket_conninfo[512]; /* the same over the unix socket: "host=DIR port=N dbname=sff user=postgres" */
    pid_t watchdog;            /* stops the server and removes dir when the test ends, however it ends */
    int watchdog_fd;
} tc_pg_t;

typedef enum { TC_PG_FAST, TC_PG_IMMEDIATE } tc_pg_mode_t;

/* Creates the cluster and starts the server (waiting until it accepts connections), creates the
 * database "sff". Returns 0, or -1 after printing why (and the server log) to stderr; pg is then
 * cleaned up. A watchdog process stops the server and removes the dir when the test process ends
 * without tc_pg_stop(), even by a crash. */
int tc_pg_start(tc_pg_t *pg);
/* Stops the server (immediate mode: nothing to keep) and removes pg->dir. Harmless twice. */
void tc_pg_stop(tc_pg_t *pg);

/* Stops the server (fast: disconnect clients, clean shutdown; immediate: kill, recovery at next
 * start) and starts it again on the same port; waits for both. Returns 0 or -1. */
int tc_pg_restart(tc_pg_t *pg, tc_pg_mode_t mode);
/* Only stops (returns when the server is down) or only starts it (returns when it accepts). */
int tc_pg_server_stop(tc_pg_t *pg, tc_pg_mode_t mode);
int tc_pg_server_start(tc_pg_t *pg);

/* Starts `pg_ctl restart` in the background and returns its pid (or -1), so that a test can keep
 * driving its event loop meanwhile; tc_pg_ctl_poll() tells when it ended. */
pid_t tc_pg_restart_async(tc_pg_t *pg, tc_pg_mode_t mode);
/* With wait 0: returns 1 when the process ended (its exit status in *status), 0 while it runs. With
 * wait nonzero: waits. Returns -1 on error. */
int tc_pg_ctl_poll(pid_t pid, int wait, int *status);

/* Runs sql (any number of statements) with psql as the superuser "postgres" on database "sff",
 * stopping at the first error. Returns 0 when every statement succeeded, else psql's exit status
 * (its messages go to stderr). */
int tc_pg_sql(tc_pg_t *pg, const char *sql);
/* Runs sql and returns its output, unaligned and tuples only ("1|a\n2|b"), with the trailing
 * newline removed; NULL on error. malloc()ed, caller frees. */
char *tc_pg_query(tc_pg_t *pg, const char *sql);

#endif
