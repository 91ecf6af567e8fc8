/*
 * backends - starts a private Postgres 15 and redis-server for a benchmark, prints how to reach
 * them, and stops them when its standard input closes (or on SIGTERM).
 *
 *     backends > env.txt &       # lines: PG_URL=..., PG_PORT=..., REDIS_URL=...
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "lib/pg.h"
#include "lib/redis.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(void)
{
    tc_pg_t pg;
    tc_redis_t rs;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (tc_pg_start(&pg) != 0)
        return 1;
    if (tc_redis_start(&rs, NULL) != 0) {
        tc_pg_stop(&pg);
        return 1;
    }
    printf("PG_URL=%s\nPG_PORT=%d\nREDIS_URL=%s\nREDIS_PORT=%d\nREADY=1\n", pg.url, pg.port, rs.url, rs.port);
    fflush(stdout);
    char buf[64];
    while (!stop && read(0, buf, sizeof(buf)) > 0)
        ;
    tc_redis_stop(&rs);
    tc_pg_stop(&pg);
    return 0;
}
