#!/bin/sh
# make bench: the gateway's HTTP figures against h2o's own static file serving (our ceiling), the
# coroutine switch, a module load, RSS per worker idle and with 10,000 idle connections, and the
# rapid-reset figure. One worker, and the load generator on the other core.
# Prints a table and writes it to build/bench/latest.txt.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
DURATION=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-64}
out_dir=build/bench
mkdir -p "$out_dir"
work=$(mktemp -d "${TMPDIR:-/tmp}/sff-bench-XXXXXX")
trap 'kill $sff_pid 2>/dev/null; wait $sff_pid 2>/dev/null; rm -rf "$work"' EXIT INT TERM

. "$top/tests/lib/shell.sh"
port=$(free_port)
mkdir -p "$work/www"
printf '{"hello":"world"}' >"$work/www/hello.json"
printf '<!doctype html><title>sff</title>\n' >"$work/www/index.html"

SFF_LISTEN=127.0.0.1:$port SFF_WORKERS=1 SFF_FUNCTIONS_DIR=build/functions SFF_SCHEMAS_DIR=schemas \
    SFF_STATIC_DIR="$work/www" SFF_LOG_LEVEL=warn build/sff serve >/dev/null 2>"$work/sff.err" &
sff_pid=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/_health" >/dev/null 2>&1 && break
    sleep 0.1
done
worker=$(pgrep -P $sff_pid | head -1)
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
idle_rss=$(rss_kib "$worker")

# wrk: "Requests/sec: N" and the --latency distribution ("50%  1.23ms")
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; printf "%.3f", v}'; }
wrk_run() { # conns path -> "rps p50 p99"
    wrk -t1 -c"$1" -d"${DURATION}s" --latency "http://127.0.0.1:$port$2" >"$work/wrk.out" 2>&1
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/wrk.out")
    p50=$(awk '$1=="50%" {print $2}' "$work/wrk.out" | to_ms)
    p99=$(awk '$1=="99%" {print $2}' "$work/wrk.out" | to_ms)
    echo "$rps $p50 $p99"
}
h2load_run() { # path -> "rps mean_ms"
    h2load -t1 -c"$CONNS" -m10 -D"$DURATION" "http://127.0.0.1:$port$1" >"$work/h2.out" 2>&1
    rps=$(awk '/^finished in/ {gsub(",", "", $4); printf "%.0f", $4}' "$work/h2.out")
    mean=$(awk '/^time for request:/ {print $6}' "$work/h2.out" | to_ms)
    failed=$(awk '/^requests:/ {print $10}' "$work/h2.out")
    echo "$rps $mean $failed"
}

# warm up
wrk -t1 -c8 -d2s "http://127.0.0.1:$port/examples/hello" >/dev/null 2>&1

set -- $(wrk_run "$CONNS" /examples/hello); h1_hello=$1 h1_hello_p50=$2 h1_hello_p99=$3
set -- $(wrk_run "$CONNS" /hello.json); h1_static=$1 h1_static_p50=$2 h1_static_p99=$3
set -- $(h2load_run /examples/hello); h2_hello=$1 h2_hello_mean=$2 h2_hello_failed=$3
set -- $(h2load_run /hello.json); h2_static=$1 h2_static_mean=$2
set -- $(wrk_run 8 /examples/hello); mod_rps=$1 mod_p50=$2 mod_p99=$3
ratio_h1=$(awk -v a="$h1_hello" -v b="$h1_static" 'BEGIN {printf "%.2f", a / b}')
ratio_h2=$(awk -v a="$h2_hello" -v b="$h2_static" 'BEGIN {printf "%.2f", a / b}')
loaded_rss=$(rss_kib "$worker")

conn_rss() { # h1|h2 -> RSS in KiB with 10,000 idle connections open
    build/tests/tools/conns "$port" 10000 "$1" 8 >"$work/conns.out" 2>&1 &
    cpid=$!
    for _ in $(seq 1 300); do
        grep -q '^answered' "$work/conns.out" 2>/dev/null && break
        sleep 0.1
    done
    answered=$(awk '/^answered/ {print $2}' "$work/conns.out")
    rss=$(rss_kib "$worker")
    wait $cpid
    echo "$rss ${answered:-0}"
}
set -- $(conn_rss h1); rss_h1=$1 answered_h1=$2
sleep 1
set -- $(conn_rss h2); rss_h2=$1 answered_h2=$2

reset_runs="n/a (build/tests/tools/h2abuse missing)"
if [ -x build/tests/tools/h2abuse ]; then
    runs_before=$(curl -s "http://127.0.0.1:$port/_metrics" | awk '/^sff_handler_runs_total/ {print $2}')
    build/tests/tools/h2abuse rapid-reset "$port" 100000 /examples/hello >"$work/abuse.out" 2>&1
    sleep 0.5
    runs_after=$(curl -s "http://127.0.0.1:$port/_metrics" | awk '/^sff_handler_runs_total/ {print $2}')
    reset_runs=$((runs_after - runs_before))
fi

set -- $(build/tests/bench/coro | awk '{print $2}'); coro_ns=$1 coro_create_ns=$2
module_us=$(build/tests/bench/module | awk '/^module_load_us/ {print $2}')

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
{
    echo "sff make bench - $(date -u +%Y-%m-%dT%H:%M:%SZ) - $(nproc) cores ($cpu)"
    echo "one sff worker; wrk -t1 -c$CONNS and h2load -t1 -c$CONNS -m10 for ${DURATION}s on the same machine"
    echo
    echo "| figure | value |"
    echo "|---|---|"
    echo "| /examples/hello, HTTP/1.1 (wrk) | $h1_hello req/s, p50 $h1_hello_p50 ms, p99 $h1_hello_p99 ms |"
    echo "| static hello.json, HTTP/1.1 (wrk) | $h1_static req/s, p50 $h1_static_p50 ms, p99 $h1_static_p99 ms |"
    echo "| ratio hello/static, HTTP/1.1 | $ratio_h1 |"
    echo "| /examples/hello, h2c (h2load -m10) | $h2_hello req/s, mean $h2_hello_mean ms, failed $h2_hello_failed |"
    echo "| static hello.json, h2c (h2load -m10) | $h2_static req/s, mean $h2_static_mean ms |"
    echo "| ratio hello/static, h2c | $ratio_h2 |"
    echo "| moderate load: /examples/hello, 8 connections (wrk) | $mod_rps req/s, p50 $mod_p50 ms, p99 $mod_p99 ms |"
    echo "| coroutine switch | $coro_ns ns (create+run+destroy $coro_create_ns ns) |"
    echo "| module load (copy, dlopen, init, routes) | $module_us us |"
    echo "| RSS per worker, idle after start | $idle_rss KiB |"
    echo "| RSS per worker, after the load runs | $loaded_rss KiB |"
    echo "| RSS per worker, 10,000 idle HTTP/1.1 keep-alive connections | $rss_h1 KiB ($answered_h1 answered) |"
    echo "| RSS per worker, 10,000 idle h2c connections | $rss_h2 KiB ($answered_h2 answered) |"
    echo "| handler runs per 100,000 HEADERS+RST_STREAM pairs | $reset_runs |"
} | tee "$out_dir/latest.txt"

# the backends (issue 3)
kill $sff_pid 2>/dev/null
wait $sff_pid 2>/dev/null
sh tests/bench/backends.sh && cat build/bench/backends.txt >>"$out_dir/latest.txt"

# sff against the Express peer (issue 5): bench/results/<date>.json, latest.md and the charts
bash bench/compare.sh
