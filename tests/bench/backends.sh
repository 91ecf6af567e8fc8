#!/bin/sh
# The backend part of make bench (issue 3): a one-row Postgres read through a function against
# pgbench running the same prepared statement at the same client count; a four-query handler with
# and without pipelining; a Redis-cached read against redis-benchmark GET at the same concurrency.
# One sff worker; the load generators on the same 2-core machine. Appends to build/bench/latest.txt.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
DURATION=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-64}
out=build/bench/backends.txt
mkdir -p build/bench
work=$(mktemp -d "${TMPDIR:-/tmp}/sff-bench-be-XXXXXX")
sff_pid=
cleanup() {
    [ -n "$sff_pid" ] && kill "$sff_pid" 2>/dev/null && wait "$sff_pid" 2>/dev/null
    exec 8>&- 2>/dev/null
    sleep 1
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Postgres and Redis, private, for this run; they stop when fd 8 closes.
. "$top/tests/lib/shell.sh"
start_backends build/tests/tools/backends "$work" || { echo "backends did not start"; exit 1; }
psql -q "$PG_URL" -c "create table kv (id int primary key, v text not null);
    insert into kv select i, md5(i::text) from generate_series(1, 10000) i; analyze kv;" >/dev/null

cat >"$work/pgbench.sql" <<'SQL'
\set id random(1, 10000)
select id, v from kv where id = :id;
SQL
cat >"$work/row.lua" <<'LUA'
request = function() return wrk.format("GET", "/fx/bench/row?id=" .. math.random(1, 10000)) end
LUA
cat >"$work/multi.lua" <<'LUA'
request = function() return wrk.format("GET", "/fx/bench/multi?id=" .. math.random(1, 10000)) end
LUA
cat >"$work/cached.lua" <<'LUA'
request = function() return wrk.format("GET", "/fx/bench/cached?id=" .. math.random(1, 1000)) end
LUA

mkdir -p "$work/functions"
cp build/tests/functions/fixture.so "$work/functions/"
port=$(free_port)
start_sff() { # extra env assignments
    env SFF_LISTEN=127.0.0.1:$port SFF_WORKERS=1 SFF_FUNCTIONS_DIR="$work/functions" SFF_SCHEMAS_DIR=schemas \
        SFF_PG_URL="$PG_URL" SFF_REDIS_URL="$REDIS_URL" SFF_PG_POOL=4 SFF_MIGRATE=off SFF_ACCESS_LOG=0 SFF_LOG_LEVEL=warn "$@" \
        build/sff serve >/dev/null 2>"$work/sff.err" &
    sff_pid=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/_ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "sff did not become ready:"
    cat "$work/sff.err"
    exit 1
}
stop_sff() {
    kill "$sff_pid" 2>/dev/null
    wait "$sff_pid" 2>/dev/null
    sff_pid=
}
wrk_rps() { # script -> req/s (non-2xx are reported)
    wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$work/$1" "http://127.0.0.1:$port/" >"$work/wrk.out" 2>&1
    bad=$(awk '/Non-2xx/ {print $4}' "$work/wrk.out")
    [ -n "$bad" ] && echo "warning: $bad non-2xx responses in $1" >&2
    awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/wrk.out"
}

start_sff
wrk -t1 -c8 -d2s -s "$work/row.lua" "http://127.0.0.1:$port/" >/dev/null 2>&1
sff_row=$(wrk_rps row.lua)
sff_multi=$(wrk_rps multi.lua)
wrk -t1 -c8 -d3s -s "$work/cached.lua" "http://127.0.0.1:$port/" >/dev/null 2>&1 # fill the cache
sff_cached=$(wrk_rps cached.lua)
stop_sff
start_sff SFF_PG_PIPELINE=1
wrk -t1 -c8 -d2s -s "$work/multi.lua" "http://127.0.0.1:$port/" >/dev/null 2>&1
sff_multi_nopipe=$(wrk_rps multi.lua)
stop_sff

pgbench_tps=$(pgbench -n -M prepared -c "$CONNS" -j 1 -T "$DURATION" -f "$work/pgbench.sql" "$PG_URL" 2>/dev/null |
    awk '/^tps/ {printf "%.0f", $3}')
redis_get=$(redis-benchmark -p "$REDIS_PORT" -t get -c "$CONNS" -n 400000 -q 2>/dev/null | tr '\r' '\n' |
    grep -o 'GET: [0-9.]* requests per second' | awk '{printf "%.0f", $2}')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
{
    echo
    echo "backends - $(date -u +%Y-%m-%dT%H:%M:%SZ): one sff worker, SFF_PG_POOL=4, $CONNS connections, ${DURATION}s each"
    echo
    echo "| figure | value |"
    echo "|---|---|"
    echo "| one-row Postgres read through a function (wrk) | $sff_row req/s |"
    echo "| pgbench, same prepared statement, $CONNS clients | $pgbench_tps tps |"
    echo "| ratio function/pgbench (aim >= 0.9) | $(ratio "$sff_row" "$pgbench_tps") |"
    echo "| four-query handler, pipelined (SFF_PG_PIPELINE=64) | $sff_multi req/s |"
    echo "| four-query handler, one query per connection (SFF_PG_PIPELINE=1) | $sff_multi_nopipe req/s |"
    echo "| ratio pipelined/not (aim >= 2) | $(ratio "$sff_multi" "$sff_multi_nopipe") |"
    echo "| Redis-cached read through a function (wrk) | $sff_cached req/s |"
    echo "| redis-benchmark -t get, $CONNS clients | $redis_get req/s |"
    echo "| ratio function/redis-benchmark | $(ratio "$sff_cached" "$redis_get") |"
} | tee "$out"
