/*
 * redis.h - a private redis-server for a test: a fresh temp dir, 127.0.0.1 on a free port and a
 * unix socket in that dir, no persistence (--save '', no AOF), DEBUG allowed from local clients,
 * optionally a password.
 *
 *     tc_redis_t rs;
 *     if (tc_redis_start(&rs, NULL) != 0) ... a failure, never a skip
 *     ... connect to rs.url or rs.unix_url ...
 *     tc_redis_kill(&rs);      (kill -9: the dir and the port stay)
 *     tc_redis_restart(&rs);   (the same port, password and dir)
 *     tc_redis_stop(&rs);
 *
 * The server dies with the test (PR_SET_PDEATHSIG) and an atexit handler kills and removes what is
 * left. It inherits no descriptor of the test but 0-2, so a connection the test closes is closed.
 * Plain sockets and RESP by hand, so that any test program can link this without hiredis.
 */
#ifndef SFF_TEST_REDIS_H
#define SFF_TEST_REDIS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct st_tc_redis_t {
    pid_t pid;          /* 0 when not running */
    int port;           /* TCP port on 127.0.0.1 */
    char dir[256];      /* the temp dir: redis.log, redis.sock */
    char socket[300];   /* dir/redis.sock */
    char password[64];  /* empty: none */
    char url[400];      /* "redis://[:password@]127.0.0.1:PORT/0" */
    char unix_url[400]; /* "unix://[:password@]DIR/redis.sock" */
} tc_redis_t;

/* Starts a server (password NULL or "" for none) and waits up to 10 s until it answers PING.
 * Returns 0, or -1 after printing why (and the server's log) to stderr; rs is then cleaned up. */
int tc_redis_start(tc_redis_t *rs, const char *password);
/* Stops the server (SIGTERM, then SIGKILL after 5 s) and removes rs->dir. Harmless twice. */
void tc_redis_stop(tc_redis_t *rs);
/* kill -9: returns when the server is gone. Returns 0, or -1 when it was not running. */
int tc_redis_kill(tc_redis_t *rs);
/* Starts the killed server again on the same port with the same password and dir; waits for
 * PING. Returns 0 or -1. */
int tc_redis_restart(tc_redis_t *rs);

/* A blocking connection to the server over TCP with a 10 s receive timeout, AUTHed when there is a
 * password; -1 on failure. The caller closes it. */
int tc_redis_connect(const tc_redis_t *rs);
/* Sends one command (argvlen NULL: NUL-terminated arguments). Returns 0 or -1. */
int tc_redis_send(int fd, int argc, const char *const *argv, const size_t *argvlen);
/*
 * Reads one reply into out (capacity size, always NUL-terminated) as text: "+OK" for a status,
 * "-ERR ..." for an error, ":5" for an integer, the bytes of a bulk string (binary, may hold NUL),
 * "(nil)" for nil, and the elements of an array joined by '\n'. Returns the text's length, or -1
 * on a read error or timeout.
 */
long tc_redis_read(int fd, char *out, size_t size);
/* One command on a new connection; the reply as with tc_redis_read(). Returns its length or -1. */
long tc_redis_query(const tc_redis_t *rs, char *out, size_t size, int argc, const char *const *argv);

#endif
