#!/usr/bin/env bash
# bench/compare.sh - sff against the Express backend it replaces (issue 5), in one run, on one
# machine, over one Postgres and one Redis and one data set. The method and its reasons are in
# docs/decisions/0071-benchmark-method.md; the short of it:
#
#  - tests/tools/backends starts a private Postgres and Redis; sff (started first: its migrations
#    make the schema) and the peer (bench/peers/express/server.js) connect as todolist_app to the
#    database todolist; COMPARE_USERS users x COMPARE_TODOS todos are loaded with SQL; the tokens
#    are minted here (HS256, the claims sff's login issues) and are the same for both.
#  - Both sides get the same cores and the same Postgres connections: sff SFF_WORKERS=2 x
#    SFF_PG_POOL=4, Express WORKERS=2 x PG_POOL=4 (cluster); "Express (1 worker)" is WORKERS=1 x
#    PG_POOL=8.
#  - Each scenario: the peer's compare script first (a scenario whose bodies differ is skipped and
#    marked), then closed-loop maximum throughput with wrk (HTTP/1.1) on each side in turn (the
#    order alternates per scenario), h2load (h2c) where a side speaks it, then open-loop latency
#    with tests/tools/openloop at 25, 50 and 75 % of the Express peer's maximum, each side in turn.
#    During every measured run `openloop --sample` follows each side's process tree: CPU-seconds
#    (utime+stime, all processes) and the peak of the summed VmRSS, every 100 ms.
#  - Also: sff's start-up to its first 200 on /_health, a hot reload of the todolist module under
#    load (reload time, failed requests), and login (argon2id on both sides) on its own.
#
# Writes bench/results/<UTC date-time>.json (every figure, the machine, the versions),
# bench/results/latest.md (the table) and the charts (bench/plot.gp: <date>-throughput.svg/png,
# <date>-latency.svg/png, copied to latest-*.svg/png). Without the peer (no server.js, no node, or
# its npm ci fails) the sff side runs alone and the table says "peer missing".
#
# Environment: COMPARE_SECONDS (6, each closed-loop run), COMPARE_OPEN_SECONDS (4, each open-loop
# run), COMPARE_WARMUP_SECONDS (1), COMPARE_CONNECTIONS (64), COMPARE_USERS (100), COMPARE_TODOS
# (200), COMPARE_WORKERS (2), COMPARE_PG_POOL (4), COMPARE_PEER=off (sff alone),
# COMPARE_SCENARIOS (a space-separated subset of the scenario ids below, for a quick look),
# COMPARE_KEEP=1 (keep the work directory: logs, requests, raw outputs).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

CL_S=${COMPARE_SECONDS:-6}
OL_S=${COMPARE_OPEN_SECONDS:-4}
WARM_S=${COMPARE_WARMUP_SECONDS:-1}
CONNS=${COMPARE_CONNECTIONS:-64}
USERS=${COMPARE_USERS:-100}
TODOS=${COMPARE_TODOS:-200}
WORKERS=${COMPARE_WORKERS:-2}
POOL=${COMPARE_PG_POOL:-4}
LOGIN_USERS=300        # per side: login limits are per user name (10/min) and address (30/min)
LOGIN_CONNS=16         # each bound to its own 127.0.N.x source address
PASSWORD=bench-password-0123
SECRET=sff-bench-secret-0123456789-abcdefghij
ALL_SCENARIOS="rule_nocache static current_user rule_cached update create login"
SCENARIOS=${COMPARE_SCENARIOS:-$ALL_SCENARIOS}
peer_dir=bench/peers/express
out_dir=bench/results
tools=build/tests/tools
static_dir=$top/web/todolist
started=$(date +%s)

busy_s() { awk '/^cpu / {printf "%.2f", ($2 + $3 + $4 + $7 + $8) / 100}' /proc/stat; } # all cores, CPU-seconds
busy_start=$(busy_s)
note() { printf '[compare %4ss] %s\n' "$(($(date +%s) - started))" "$*" >&2; }
die() { note "error: $*"; exit 1; }

for t in wrk h2load psql openssl curl awk; do
    command -v $t >/dev/null 2>&1 || die "$t is missing (make deps-test installs it)"
done
make --no-print-directory build/sff build/functions/todolist.so $tools/backends $tools/openloop >/dev/null ||
    die "the build failed"

work=$(mktemp -d "${TMPDIR:-/tmp}/sff-compare-XXXXXX")
mkdir -p "$out_dir" "$work/functions" "$work/objects"
kv=$work/results.kv
: >"$kv"
put() { printf '%s %s\n' "$1" "$2" >>"$kv"; } # key value
get() { awk -v k="$1" '$1 == k {v = $2} END {print v}' "$kv"; }

declare -A pid_of port_of
cleanup() {
    for side in "${!pid_of[@]}"; do stop_side "$side"; done
    exec 8>&- 2>/dev/null
    sleep 1
    if [ -n "${COMPARE_KEEP:-}" ]; then note "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the peer ----------------------------------------------------------------------------------
peer=1 peer_note=
if [ "${COMPARE_PEER:-on}" = off ]; then
    peer=0 peer_note="peer missing: COMPARE_PEER=off"
elif [ ! -f "$peer_dir/server.js" ]; then
    peer=0 peer_note="peer missing: no $peer_dir/server.js yet"
elif ! command -v node >/dev/null 2>&1; then
    peer=0 peer_note="peer missing: no node"
elif [ ! -d "$peer_dir/node_modules" ] || [ "$peer_dir/package-lock.json" -nt "$peer_dir/node_modules" ]; then
    note "installing the peer's npm packages"
    if ! npm ci --prefix "$peer_dir" --no-audit --no-fund >"$work/npm.log" 2>&1; then
        peer=0 peer_note="peer missing: npm ci failed ($(tail -1 "$work/npm.log"))"
    fi
fi
[ $peer = 1 ] || note "$peer_note: sff runs alone"
SIDES="sff"
[ $peer = 1 ] && SIDES="sff exp exp1"

# ---- Postgres and Redis ------------------------------------------------------------------------
. tests/lib/shell.sh
start_backends $tools/backends "$work" >&2 || die "Postgres and Redis did not start"
psql -q "$PG_URL" -c "create role todolist_app login" -c "create database todolist owner todolist_app" >/dev/null ||
    die "cannot create the database"
APP_URL="postgresql://todolist_app@127.0.0.1:$PG_PORT/todolist"
SUPER_URL="postgresql://postgres@127.0.0.1:$PG_PORT/todolist"
# The backends' processes, sampled beside each side: their CPU per request shows what the shared
# Postgres and Redis cost each side (pg_ctl detaches Postgres from us; Redis is the tool's child).
pg_master=$(head -1 "$(psql -At "$SUPER_URL" -c 'show data_directory')/postmaster.pid" 2>/dev/null)
redis_pid=$(pgrep -P "$BACKENDS_PID" redis-server | head -1)
# One Redis database for both: the peer shares sff's cache tag versions (a write through either
# invalidates both caches) and keeps its own entries and counters under its own prefix.
RS_URL=$REDIS_URL

# three distinct free ports (free_port: below the ephemeral range, where a connection's local end
# could take one meanwhile: the peer once failed with EADDRINUSE)
for side in sff exp exp1; do
    pt=$(free_port)
    while [ "$pt" = "${port_of[sff]:-}" ] || [ "$pt" = "${port_of[exp]:-}" ]; do pt=$(free_port); done
    port_of[$side]=$pt
done
cp build/functions/todolist.so "$work/functions/"

# ---- starting and stopping the sides -------------------------------------------------------------
sff_env() { # cache on|off
    local cache=on
    [ "$1" = off ] && cache=off
    echo SFF_LISTEN=127.0.0.1:${port_of[sff]} SFF_WORKERS=$WORKERS SFF_PG_POOL=$POOL SFF_FUNCTIONS_DIR=$work/functions \
        SFF_SCHEMAS_DIR=$top/schemas SFF_STATIC_DIR=$static_dir SFF_PG_URL=$APP_URL SFF_REDIS_URL=$RS_URL \
        SFF_STORAGE_URL=file://$work/objects SFF_JWT_SECRET=$SECRET SFF_ACCESS_LOG=0 SFF_LOG_LEVEL=info TODOLIST_CACHE=$cache
}
# Starts sff and measures exec to the first 200 of GET /_health (openloop polls every 200 us;
# bash's $EPOCHREALTIME is read just before the fork) into $startup_ms.
start_sff() { # cache on|off
    $tools/openloop --wait200 -p ${port_of[sff]} -u /_health -t 30 >"$work/wait200" &
    local wpid=$! t0
    sleep 0.05
    t0=$EPOCHREALTIME
    # shellcheck disable=SC2046
    env $(sff_env "$1") build/sff serve >/dev/null 2>>"$work/sff.err" &
    pid_of[sff]=$!
    wait $wpid || { tail -20 "$work/sff.err" >&2; die "sff did not answer 200 on /_health"; }
    local first ready=0
    first=$(awk '/^first200_us/ {print $2}' "$work/wait200")
    # ready: Postgres and Redis connected; each worker answers for itself, so 8 in a row
    for _ in $(seq 1 300); do
        if curl -sf "http://127.0.0.1:${port_of[sff]}/_ready" >/dev/null 2>&1; then
            ready=$((ready + 1))
            [ $ready -ge 8 ] && break
        else
            ready=0
            sleep 0.05
        fi
    done
    [ $ready -ge 8 ] || { tail -20 "$work/sff.err" >&2; die "sff is not ready"; }
    startup_ms=$(awk -v a="$first" -v b="${t0/./}" 'BEGIN {printf "%.1f", (a - b) / 1000}')
}
# The peer: its own process group (setsid), so that stopping it stops its cluster workers too.
peer_ready_path=/_health
start_peer() { # side workers pool cache
    local t0
    $tools/openloop --wait200 -p ${port_of[$1]} -u $peer_ready_path -t 60 >"$work/wait200" &
    local wpid=$!
    sleep 0.05
    t0=$EPOCHREALTIME
    env NODE_ENV=production PORT=${port_of[$1]} PG_URL=$APP_URL REDIS_URL=$RS_URL JWT_SECRET=$SECRET PG_POOL=$3 CACHE=$4 \
        STATIC_DIR=$static_dir WORKERS=$2 setsid node $peer_dir/server.js >>"$work/$1.log" 2>&1 &
    pid_of[$1]=$!
    wait $wpid || { tail -20 "$work/$1.log" >&2; die "the peer ($1) did not answer 200 on $peer_ready_path"; }
    startup_ms=$(awk -v a="$(awk '/^first200_us/ {print $2}' "$work/wait200")" -v b="${t0/./}" 'BEGIN {printf "%.1f", (a - b) / 1000}')
}
stop_side() {
    local pid=${pid_of[$1]:-}
    [ -n "$pid" ] || return 0
    if [ "$1" = sff ]; then
        kill "$pid" 2>/dev/null
    else
        kill -TERM -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null
    fi
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "pid_of[$1]"
}
start_sides() { # cache on|off
    start_sff "$1"
    put "startup.sff_cache_$1_ms" "$startup_ms"
    if [ $peer = 1 ]; then
        start_peer exp "$WORKERS" "$POOL" "$1"
        put "startup.exp_cache_$1_ms" "$startup_ms"
        start_peer exp1 1 $((WORKERS * POOL)) "$1"
        put "startup.exp1_cache_$1_ms" "$startup_ms"
    fi
}
stop_sides() {
    for side in $SIDES; do stop_side "$side"; done
}

# ---- the data set ----------------------------------------------------------------------------
note "starting sff (cache off) to create the schema; loading $USERS users x $TODOS todos"
start_sff off
put startup.sff_first_start_ms "$startup_ms" # migrations included
# one real registration: its argon2id hash is copied to every user (the same password)
reg=$(curl -s -H 'content-type: application/json' -d "{\"userName\":\"bench_seed\",\"password\":\"$PASSWORD\"}" \
    "http://127.0.0.1:${port_of[sff]}/user/register")
case "$reg" in *'"ok"'*) ;; *) die "registering the seed user failed: $reg" ;; esac
psql -q -v ON_ERROR_STOP=1 -v users="$USERS" -v todos="$TODOS" -v logins="$LOGIN_USERS" "$SUPER_URL" >/dev/null <<'SQL' ||
insert into users (username, password_hash, name, email, signature, title, "group", country, address, phone)
select format('bench_user_%s', lpad(i::text, 4, '0')), s.password_hash, format('Bench User %s', i),
       format('user%s@example.com', i), 'benchmarking', 'tester', 'bench', 'Nowhere', format('%s Bench Street', i),
       format('+1-555-%s', lpad(i::text, 4, '0'))
from generate_series(1, :users) i, (select password_hash from users where username = 'bench_seed') s;
-- the login users: one set per side, as the login limits count per user name
insert into users (username, password_hash)
select format('login_%s_%s', side, lpad(i::text, 4, '0')), s.password_hash
from unnest(array['sff', 'exp', 'exp1']) side, generate_series(1, :logins) i,
     (select password_hash from users where username = 'bench_seed') s;
insert into todos (owner, name, "desc", status, progress, call_no, href, avatar, created_at, updated_at)
select u.id, format('todo %s of %s', j, u.username), format('what to do, number %s', j), j % 4, (j * 7) % 101,
       (j * 37) % 1000, '', '', timestamptz '2025-01-01 00:00:00+00' + j * interval '1 minute',
       timestamptz '2025-01-01 00:00:00+00' + j * interval '1 minute'
from users u, generate_series(1, :todos) j
where u.username like 'bench\_user\_%';
analyze;
SQL
    die "loading the data set failed"

# Tokens: HS256 with the claims sff's login issues (sub, name, role, iat, exp), for both sides.
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
jwt_head=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
mint() { # sub name
    local body sig
    body=$(printf '{"sub":"%s","name":"%s","role":"user","iat":%d,"exp":%d}' "$1" "$2" "$now" $((now + 7200)) | b64url)
    sig=$(printf '%s.%s' "$jwt_head" "$body" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64url)
    printf '%s.%s.%s' "$jwt_head" "$body" "$sig"
}
declare -A token_of
first_token= second_token=
while IFS=$'\t' read -r id name; do
    token_of[$id]=$(mint "$id" "$name")
    if [ -z "$first_token" ]; then first_token=${token_of[$id]}; elif [ -z "$second_token" ]; then second_token=${token_of[$id]}; fi
done < <(psql -At -F $'\t' "$SUPER_URL" -c "select id, username from users where username like 'bench\_user\_%' order by id")
[ ${#token_of[@]} -eq "$USERS" ] || die "minting the tokens failed"

# The requests, one per line: METHOD TAB PATH TAB TOKEN TAB BODY (- for none), cycled in order.
: >"$work/rule.tsv" >"$work/current_user.tsv" >"$work/create.tsv"
for id in "${!token_of[@]}"; do
    t=${token_of[$id]}
    printf 'GET\t/api/rule?current=1&pageSize=20\t%s\t-\n' "$t" >>"$work/rule.tsv"
    printf 'GET\t/api/currentUser\t%s\t-\n' "$t" >>"$work/current_user.tsv"
    printf 'POST\t/api/rule\t%s\t{"method":"post","name":"a new todo","desc":"made by the benchmark"}\n' "$t" >>"$work/create.tsv"
done
cp "$work/rule.tsv" "$work/rule_cached.tsv"
cp "$work/rule.tsv" "$work/rule_nocache.tsv"
printf 'GET\t/index.html\t-\t-\n' >"$work/static.tsv"
# updates: 5 todos of every user, users interleaved (no two requests in a row on one row)
psql -At -F $'\t' "$SUPER_URL" -c "select owner, id from (select t.owner, t.id, row_number() over (partition by t.owner
    order by t.id) n from todos t join users u on u.id = t.owner where u.username like 'bench\_user\_%') x where n <= 5
    order by n, owner" | while IFS=$'\t' read -r owner id; do
    printf 'POST\t/api/rule\t%s\t{"method":"update","key":%s,"name":"todo %s, renamed","desc":"updated by the benchmark"}\n' \
        "${token_of[$owner]}" "$id" "$id"
done >"$work/update.tsv"
for side in sff exp exp1; do
    for i in $(seq 1 $LOGIN_USERS); do
        printf 'POST\t/api/login/account\t-\t{"userName":"login_%s_%04d","password":"%s","type":"account"}\n' "$side" "$i" "$PASSWORD"
    done >"$work/login_$side.tsv"
done
# h2load sends one request over and over: its bodies and header
printf '{"method":"post","name":"a new todo","desc":"made by the benchmark"}' >"$work/create.body"

cat >"$work/tsv.lua" <<'LUA'
-- wrk: the requests of a .tsv file (METHOD, PATH, TOKEN, BODY; "-" for none), cycled in order
local reqs, i = {}, 0
function init(args)
  local f = assert(io.open(args[1]))
  for line in f:lines() do
    local m, p, t, b = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if m then
      local h = {}
      if t ~= "-" then h["Authorization"] = "Bearer " .. t end
      if b == "-" then b = nil else h["Content-Type"] = "application/json" end
      reqs[#reqs + 1] = wrk.format(m, p, h, b)
    end
  end
  f:close()
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
LUA

# ---- measuring ---------------------------------------------------------------------------------
# With "backends" (the closed-loop runs), the CPU that Postgres and Redis spend meanwhile too: a
# snapshot of each one's process tree before and after (their processes live through the run; the
# ended ones are in their parents' cutime), not a sampler, which walking /proc every 100 ms would
# show in the open-loop tails.
backend_cpu() { # pid -> CPU-seconds of its tree so far
    $tools/openloop --procs "$1" 2>/dev/null | awk '/^cpu_s|^cpu_children_s/ {s += $2} END {printf "%.2f", s}'
}
sample_start() { # side [backends] -> the sampler follows that side's process tree
    $tools/openloop --sample "${pid_of[$1]}" >"$work/sample.$1" &
    sampler_pid=$!
    pg_cpu0= redis_cpu0=
    [ "${2:-}" = backends ] || return 0
    [ -z "$pg_master" ] || pg_cpu0=$(backend_cpu "$pg_master")
    [ -z "$redis_pid" ] || redis_cpu0=$(backend_cpu "$redis_pid")
}
sample_stop() { # key prefix -> cpu_s, peak_rss_kib (and pg_cpu_s, redis_cpu_s)
    kill -TERM $sampler_pid 2>/dev/null
    wait $sampler_pid 2>/dev/null
    [ -z "$pg_cpu0" ] || put "$1.pg_cpu_s" "$(awk -v a="$pg_cpu0" -v b="$(backend_cpu "$pg_master")" 'BEGIN {printf "%.2f", b - a}')"
    [ -z "$redis_cpu0" ] || put "$1.redis_cpu_s" "$(awk -v a="$redis_cpu0" -v b="$(backend_cpu "$redis_pid")" 'BEGIN {printf "%.2f", b - a}')"
    put "$1.cpu_s" "$(awk '/^cpu_s/ {print $2}' "$work/sample.$2")"
    put "$1.peak_rss_kib" "$(awk '/^peak_rss_kib/ {print $2}' "$work/sample.$2")"
    put "$1.peak_pss_kib" "$(awk '/^peak_pss_kib/ {print $2}' "$work/sample.$2")"
    put "$1.procs" "$(awk '/^max_procs/ {print $2}' "$work/sample.$2")"
    if [ "$2" = sff ]; then # a worker that died during (or right after) the run
        local deaths
        deaths=$(grep -c 'died of signal' "$work/sff.err")
        if [ "$deaths" -gt "$deaths_seen" ]; then
            put "$1.worker_deaths" $((deaths - deaths_seen))
            put health.sff_deaths_in "$(get health.sff_deaths_in)${1#scenario.},"
            note "  an sff worker died during (or right after) $1"
            deaths_seen=$deaths
        fi
    fi
}
deaths_seen=0
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; printf "%.3f", v}'; }
per_request_us() { awk -v c="$1" -v n="$2" 'BEGIN {if (n > 0 && c != "") printf "%.1f", c * 1e6 / n; else print ""}'; }

# Closed loop, HTTP/1.1: wrk -t1 -cCONNS over the scenario's requests.
closed_h1() { # scenario side
    local sc=$1 side=$2 port=${port_of[$2]} k="scenario.$1.$2.h1"
    wrk -t1 -c"$CONNS" -d"${WARM_S}s" -s "$work/tsv.lua" "http://127.0.0.1:$port/" -- "$work/$sc.tsv" >/dev/null 2>&1
    sample_start "$side" backends
    wrk -t1 -c"$CONNS" -d"${CL_S}s" --latency -s "$work/tsv.lua" "http://127.0.0.1:$port/" -- "$work/$sc.tsv" >"$work/wrk.out" 2>&1
    sample_stop "$k" "$side"
    local rps n bad errs
    rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$work/wrk.out")
    n=$(awk '/requests in/ {print $1}' "$work/wrk.out")
    bad=$(awk '/Non-2xx/ {print $4}' "$work/wrk.out")
    errs=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$work/wrk.out")
    put "$k.rps" "${rps:-0}"
    put "$k.requests" "${n:-0}"
    put "$k.non2xx" "${bad:-0}"
    put "$k.socket_errors" "${errs:-0}"
    put "$k.p50_ms" "$(awk '$1 == "50%" {print $2}' "$work/wrk.out" | to_ms)"
    put "$k.p99_ms" "$(awk '$1 == "99%" {print $2}' "$work/wrk.out" | to_ms)"
    put "$k.cpu_us_per_req" "$(per_request_us "$(get "$k.cpu_s")" "${n:-0}")"
    put "$k.pg_cpu_us_per_req" "$(per_request_us "$(get "$k.pg_cpu_s")" "${n:-0}")"
    put "$k.redis_cpu_us_per_req" "$(per_request_us "$(get "$k.redis_cpu_s")" "${n:-0}")"
    note "  $sc $side HTTP/1.1: ${rps:-0} req/s (non-2xx ${bad:-0})"
    [ "${bad:-0}" = 0 ] || sed -n '1,40p' "$work/wrk.out" >"$work/wrk.$sc.$side.failed"
}

# Closed loop, h2c: h2load -t1 -cCONNS -m10; one request (one user's token, one body) repeated.
h2_probe() { # side -> 0 when it speaks h2c (prior knowledge)
    h2load -n1 -c1 "http://127.0.0.1:${port_of[$1]}$peer_ready_path" 2>/dev/null | grep -q '1 succeeded'
}
closed_h2() { # scenario side
    local sc=$1 side=$2 port=${port_of[$2]} k="scenario.$1.$2.h2" path args=()
    case $sc in
    rule_*) path="/api/rule?current=1&pageSize=20" args=(-H "authorization: Bearer $first_token") ;;
    current_user) path=/api/currentUser args=(-H "authorization: Bearer $first_token") ;;
    static) path=/index.html ;;
    create) path=/api/rule args=(-H "authorization: Bearer $first_token" -H "content-type: application/json" -d "$work/create.body") ;;
    *) return 0 ;;
    esac
    h2load -t1 -c"$CONNS" -m10 -D"$WARM_S" "${args[@]}" "http://127.0.0.1:$port$path" >/dev/null 2>&1
    sample_start "$side"
    h2load -t1 -c"$CONNS" -m10 -D"$CL_S" "${args[@]}" "http://127.0.0.1:$port$path" >"$work/h2.out" 2>&1
    sample_stop "$k" "$side"
    local rps n ok
    rps=$(awk '/^finished in/ {gsub(",", "", $4); printf "%.0f", $4}' "$work/h2.out")
    n=$(awk '/^requests:/ {print $8}' "$work/h2.out")
    ok=$(awk '/^status codes:/ {print $3}' "$work/h2.out")
    put "$k.rps" "${rps:-0}"
    put "$k.requests" "${n:-0}"
    put "$k.non2xx" "$((${n:-0} - ${ok:-0}))"
    put "$k.mean_ms" "$(awk '/^time for request:/ {print $6}' "$work/h2.out" | to_ms)"
    put "$k.cpu_us_per_req" "$(per_request_us "$(get "$k.cpu_s")" "${n:-0}")"
    note "  $sc $side h2c: ${rps:-0} req/s"
    [ "${rps:-0}" != 0 ] || grep -E '^(requests|status codes):' "$work/h2.out" | sed 's/^/      /' >&2
}

# Open loop: openloop at a fixed rate; latency from the scheduled send times.
open_run() { # scenario side level rate
    local sc=$1 side=$2 k="scenario.$1.$2.open$3" tsv=$work/$1.tsv
    sample_start "$side"
    $tools/openloop -p "${port_of[$side]}" -f "$tsv" -r "$4" -d "$OL_S" -c "$CONNS" >"$work/ol.out" 2>&1
    sample_stop "$k" "$side"
    for f in rate target_rate ok errors unfinished p50_ms p90_ms p99_ms p999_ms max_ms; do
        put "$k.$f" "$(awk -v f=$f '$1 == f {print $2}' "$work/ol.out")"
    done
    put "$k.cpu_us_per_req" "$(per_request_us "$(get "$k.cpu_s")" "$(get "$k.ok")")"
    note "  $sc $side open loop at $4/s: p50 $(get "$k.p50_ms") p99 $(get "$k.p99_ms") p99.9 $(get "$k.p999_ms") ms, errors $(get "$k.errors")"
}

# Before a scenario is measured, the peer's compare script sends the same requests to both sides
# (the scenario's among them: its users' lists and profiles, the writes, the logins) and compares
# status and body byte for byte; static files are compared here. A scenario whose bodies differ is
# not measured, and is marked so in the table.
compare_bodies() { # scenario -> 0 when they match (or there is nothing to compare with)
    [ $peer = 1 ] || return 0
    local a="http://127.0.0.1:${port_of[sff]}" b="http://127.0.0.1:${port_of[exp]}" ok=1
    if [ ! -f "$peer_dir/compare.sh" ]; then
        note "  $1: the peer has no compare script: bodies not compared"
        put "scenario.$1.compare" unchecked
        return 0
    fi
    case $1 in
    static)
        { curl -s -o "$work/static.a" "$a/index.html" && curl -s -o "$work/static.b" "$b/index.html" &&
            cmp "$work/static.a" "$work/static.b"; } >"$work/compare.$1.out" 2>&1 || ok=0
        ;;
    create | update)
        sh "$peer_dir/compare.sh" "$a" "$b" --token "$first_token" --writes --quiet >"$work/compare.$1.out" 2>&1 || ok=0 ;;
    login)
        sh "$peer_dir/compare.sh" "$a" "$b" --login "bench_seed:$PASSWORD" --quiet >"$work/compare.$1.out" 2>&1 || ok=0 ;;
    *)
        sh "$peer_dir/compare.sh" "$a" "$b" --token "$first_token" --token "$second_token" --quiet >"$work/compare.$1.out" 2>&1 || ok=0 ;;
    esac
    if [ $ok = 1 ]; then
        put "scenario.$1.compare" same
        return 0
    fi
    put "scenario.$1.compare" different
    note "  $1: the bodies differ; not measured:"
    grep -v '^ok\b' "$work/compare.$1.out" | sed -n '1,12p' | cut -c1-300 | sed 's/^/      /' >&2
    cp "$work/compare.$1.out" "$out_dir/compare-$1.txt" 2>/dev/null
    return 1
}

n_scenario=0
run_scenario() { # scenario
    local sc=$1 side order
    note "scenario $sc"
    n_scenario=$((n_scenario + 1))
    if ! compare_bodies "$sc"; then
        put "scenario.$sc.skipped" "bodies differ"
        return
    fi
    # closed loop, the order alternating per scenario
    order=$SIDES
    [ $peer = 1 ] && [ $((n_scenario % 2)) = 0 ] && order="exp sff exp1"
    for side in $order; do closed_h1 "$sc" "$side"; done
    for side in $SIDES; do
        [ "$side" = exp1 ] && continue
        if [ "$side" = sff ] || [ "$peer_h2" = 1 ]; then closed_h2 "$sc" "$side"; fi
    done
    # open loop at 25, 50 and 75 % of the Express peer's maximum (sff's own without the peer)
    local ref
    ref=$(get "scenario.$sc.exp.h1.rps")
    [ $peer = 1 ] || ref=$(get "scenario.$sc.sff.h1.rps")
    put "scenario.$sc.open_reference_rps" "${ref:-0}"
    [ "${ref:-0}" -gt 0 ] || return
    for level in 25 50 75; do
        local rate=$((ref * level / 100))
        [ $rate -gt 0 ] || rate=1
        for side in $SIDES; do
            [ "$side" = exp1 ] && continue
            open_run "$sc" "$side" "$level" "$rate"
        done
    done
}

# Login on its own: argon2id verifications; openloop closed loop, LOGIN_CONNS connections each from
# its own address (the limits are 30 a minute per address and 10 per user name), an answer counts
# only with "status":"ok" in its body.
run_login() {
    note "scenario login"
    compare_bodies login || { put "scenario.login.skipped" "bodies differ"; return; }
    local net=1
    for side in $SIDES; do
        local k="scenario.login.$side.h1"
        sample_start "$side"
        $tools/openloop -p "${port_of[$side]}" -f "$work/login_$side.tsv" -d "$CL_S" -c $LOGIN_CONNS -g 5 \
            -s "127.0.$net.1" -n $LOGIN_CONNS -e '"status":"ok"' >"$work/ol.out" 2>&1
        sample_stop "$k" "$side"
        net=$((net + 1))
        for f in rate ok errors non2xx unexpected p50_ms p99_ms; do put "$k.$f" "$(awk -v f=$f '$1 == f {print $2}' "$work/ol.out")"; done
        local ok dur
        ok=$(get "$k.ok")
        dur=$(awk '$1 == "duration_s" {print $2}' "$work/ol.out")
        put "$k.rps" "$(awk -v n="$ok" -v d="$dur" 'BEGIN {if (d > 0) printf "%.1f", n / d; else print 0}')"
        put "$k.cpu_us_per_req" "$(per_request_us "$(get "$k.cpu_s")" "$ok")"
        note "  login $side: $(get "$k.rps") logins/s, p50 $(get "$k.p50_ms") ms, errors $(get "$k.errors")"
    done
}

# A hot reload of the todolist module under load: openloop on GET /api/rule at half of sff's
# cached maximum, the module replaced (a new file, renamed over the old) and SIGHUP sent three times.
run_reload() {
    note "hot reload under load"
    local ref rate lines_before
    ref=$(get "scenario.rule_cached.sff.h1.rps")
    rate=$(( ${ref:-4000} / 2 ))
    [ $rate -gt 0 ] || rate=2000
    lines_before=$(wc -l <"$work/sff.err")
    $tools/openloop -p "${port_of[sff]}" -f "$work/rule_cached.tsv" -r $rate -d 6 -c "$CONNS" >"$work/reload.out" 2>&1 &
    local olpid=$!
    for _ in 1 2 3; do
        sleep 1.5
        cp build/functions/todolist.so "$work/functions/.todolist.so.new"
        mv -f "$work/functions/.todolist.so.new" "$work/functions/todolist.so"
        kill -HUP "${pid_of[sff]}"
    done
    wait $olpid
    sleep 0.2
    tail -n +$((lines_before + 1)) "$work/sff.err" | grep 'reloaded functions' >"$work/reloads" || true
    put reload.rate "$rate"
    put reload.reloads 3
    put reload.worker_reloads "$(wc -l <"$work/reloads")"
    put reload.max_us "$(grep -o '([0-9]* us)' "$work/reloads" | tr -d '(us)' | sort -n | tail -1)"
    put reload.median_us "$(grep -o '([0-9]* us)' "$work/reloads" | tr -d '(us)' | sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}')"
    for f in requests ok errors non2xx socket_errors unfinished p50_ms p99_ms p999_ms max_ms; do
        put "reload.$f" "$(awk -v f=$f '$1 == f {print $2}' "$work/reload.out")"
    done
    note "  $(wc -l <"$work/reloads") worker reloads, at most $(get reload.max_us) us; failed requests: $(get reload.errors) of $(get reload.requests)"
}

# ---- the run -----------------------------------------------------------------------------------
want() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }

# cache off first: the create scenario adds rows, which would change what an uncached read reads
if [ $peer = 1 ]; then
    start_peer exp "$WORKERS" "$POOL" off
    put startup.exp_cache_off_ms "$startup_ms"
    start_peer exp1 1 $((WORKERS * POOL)) off
    put startup.exp1_cache_off_ms "$startup_ms"
fi
peer_h2=0
[ $peer = 1 ] && h2_probe exp && peer_h2=1
put config.peer_h2c "$peer_h2"
cache_switch=1
grep -q TODOLIST_CACHE functions/todolist/*.c || cache_switch=0
put config.sff_cache_switch "$cache_switch"
if want rule_nocache; then
    if [ $cache_switch = 1 ]; then
        run_scenario rule_nocache
    else
        note "sff has no cache switch (TODOLIST_CACHE): rule_nocache measures the peer only"
        SIDES_SAVED=$SIDES
        SIDES=${SIDES#sff }
        [ $peer = 1 ] && run_scenario rule_nocache
        SIDES=$SIDES_SAVED
    fi
fi
stop_sides

# sff's start-up, three times (the schema is there: what a restart costs), then the cache-on run
for i in 1 2; do
    start_sff on
    put "startup.sff_run${i}_ms" "$startup_ms"
    stop_side sff
done
start_sides on
put startup.sff_run3_ms "$(get startup.sff_cache_on_ms)"
note "sff start-up to the first 200: $(get startup.sff_run1_ms) / $(get startup.sff_run2_ms) / $(get startup.sff_run3_ms) ms"
for sc in static current_user rule_cached update create; do
    want $sc && run_scenario $sc
done
want login && run_login
want rule_cached && run_reload
# Was the machine ours? The CPU it spent over the run, less what this script's processes spent
# (the sides, Redis, the load generators; the ended ones are in their parents' cutime) and
# Postgres (pg_ctl detaches it from us).
$tools/openloop --procs $$ >"$work/own"
pg_master=$(head -1 "$(psql -At "$SUPER_URL" -c 'show data_directory')/postmaster.pid" 2>/dev/null)
[ -n "$pg_master" ] && $tools/openloop --procs "$pg_master" >>"$work/own"
own_s=$(awk '/^cpu_s|^cpu_children_s/ {s += $2} END {printf "%.1f", s}' "$work/own")
put health.machine_cpu_s "$(awk -v a="$busy_start" -v b="$(busy_s)" 'BEGIN {printf "%.1f", b - a}')"
put health.own_cpu_s "$own_s"
put health.foreign_cpu_s "$(awk -v m="$(get health.machine_cpu_s)" -v o="$own_s" 'BEGIN {v = m - o; printf "%.1f", (v > 0 ? v : 0)}')"
put health.foreign_share "$(awk -v f="$(get health.foreign_cpu_s)" -v t="$(($(date +%s) - started))" -v c="$(nproc)" 'BEGIN {printf "%.3f", f / (t * c)}')"
note "other processes used $(get health.foreign_cpu_s) CPU-seconds during the run ($(awk -v s="$(get health.foreign_share)" 'BEGIN {printf "%.1f", s * 100}') % of the machine)"
stop_sides

# ---- the report --------------------------------------------------------------------------------
# worker deaths (sff's master and node's cluster primary respawn them): a run with any is suspect
put health.sff_worker_deaths "$(grep -c 'died of signal' "$work/sff.err")"
put health.sff_first_death "$(grep -m1 'died of signal' "$work/sff.err" | sed 's/.*"msg":"\([^"]*\)".*/\1/')"
if [ $peer = 1 ]; then
    put health.exp_worker_deaths "$(cat "$work/exp.log" "$work/exp1.log" 2>/dev/null | grep -c 'died')"
fi
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
latest=latest
if [ "$SCENARIOS" != "$ALL_SCENARIOS" ]; then # a subset replaces neither the latest run nor adds a dated one
    latest=partial
    stamp=partial
fi
{
    echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "command make bench (bench/compare.sh)"
    echo "machine.cpu $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "machine.cores $(nproc)"
    echo "machine.mem_kib $(awk '/MemTotal/ {print $2}' /proc/meminfo)"
    echo "machine.kernel $(uname -sr)"
    echo "machine.os $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "versions.sff $(build/sff version 2>/dev/null | head -1)"
    echo "versions.commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
    echo "versions.gcc $(gcc -dumpfullversion 2>/dev/null)"
    echo "versions.node $(node --version 2>/dev/null)"
    echo "versions.express $(node -p "require('./$peer_dir/node_modules/express/package.json').version" 2>/dev/null)"
    echo "versions.postgres $(psql -At "$SUPER_URL" -c 'show server_version' 2>/dev/null)"
    echo "versions.redis $(redis-server --version 2>/dev/null | awk '{print $3}' | sed 's/v=//')"
    echo "versions.wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    echo "versions.h2load $(h2load --version 2>/dev/null | head -1 | awk '{print $2}')"
    echo "config.users $USERS"
    echo "config.todos_per_user $TODOS"
    echo "config.closed_loop_s $CL_S"
    echo "config.open_loop_s $OL_S"
    echo "config.warmup_s $WARM_S"
    echo "config.connections $CONNS"
    echo "config.sff SFF_WORKERS=$WORKERS SFF_PG_POOL=$POOL SFF_ACCESS_LOG=0"
    echo "config.exp WORKERS=$WORKERS PG_POOL=$POOL NODE_ENV=production"
    echo "config.exp1 WORKERS=1 PG_POOL=$((WORKERS * POOL)) NODE_ENV=production"
    echo "config.peer $peer"
    echo "config.peer_note $peer_note"
    echo "config.scenarios $SCENARIOS"
    echo "config.elapsed_s $(($(date +%s) - started))"
} >"$work/meta.kv"

# The JSON, the table and the charts' data, from meta.kv and results.kv (node: make deps-test and
# the peer need it anyway).
cat >"$work/report.js" <<'JS'
'use strict';
const fs = require('fs');
const [metaFile, kvFile, outDir, stamp, dataDir, latest] = process.argv.slice(2);
const num = (v) => (v !== '' && v !== undefined && !isNaN(Number(v)) ? Number(v) : v);
function nest(lines, re) {
  const root = {};
  for (const line of lines) {
    const m = line.match(re);
    if (!m) continue;
    const path = m[1].split('.');
    let o = root;
    for (const p of path.slice(0, -1)) o = o[p] = typeof o[p] === 'object' ? o[p] : {};
    o[path[path.length - 1]] = num(m[2]);
  }
  return root;
}
const meta = nest(fs.readFileSync(metaFile, 'utf8').split('\n'), /^(\S+) ?(.*)$/);
const res = nest(fs.readFileSync(kvFile, 'utf8').split('\n'), /^(\S+) ?(.*)$/);
const doc = { ...meta, results: res };
fs.writeFileSync(`${outDir}/${stamp}.json`, JSON.stringify(doc, null, 2) + '\n');

const peer = meta.config.peer === 1;
const sc = res.scenario || {};
const g = (...p) => p.reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), sc);
const isNum = (v) => typeof v === 'number' && isFinite(v);
const fmt = (v, d = 0) => (isNum(v) ? v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '—');
const fmtMs = (v) => (isNum(v) ? (v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1)) : '—');
const ratio = (a, b) => (isNum(a) && isNum(b) && b > 0 ? a / b : undefined);
const fmtRatio = (r) => (isNum(r) ? (r >= 10 ? r.toFixed(1) : r >= 1 ? r.toFixed(2) : r.toFixed(3)) + '×' : '—');
const met = (r, aim, dir) => (!peer ? 'peer missing' : !isNum(r) ? '—' : (dir === '>=' ? r >= aim : r <= aim) ? 'yes' : '**no**');

const LABEL = {
  rule_cached: 'GET /api/rule, cache hit',
  rule_nocache: 'GET /api/rule, cache off',
  create: 'create (POST /api/rule)',
  update: 'update (POST /api/rule, method update)',
  current_user: 'GET /api/currentUser',
  static: 'static index.html',
  login: 'login (POST /api/login/account, argon2id)',
};
const SHORT = {
  rule_cached: 'rule, cache hit', rule_nocache: 'rule, cache off', create: 'create', update: 'update',
  current_user: 'currentUser', static: 'index.html',
};
const AIM = { rule_cached: 10, rule_nocache: 5, create: 2.5, update: 2.5 };
const ORDER = ['rule_cached', 'rule_nocache', 'create', 'update', 'current_user', 'static'].filter((s) => sc[s]);
const rows = [];
const row = (...c) => rows.push(`| ${c.join(' | ')} |`);
const skipped = (s) => (sc[s] && sc[s].skipped ? ` (skipped: ${sc[s].skipped})` : '');

for (const s of ORDER) {
  const a = g(s, 'sff', 'h1', 'rps'), e = g(s, 'exp', 'h1', 'rps'), e1 = g(s, 'exp1', 'h1', 'rps');
  const best = [e, e1].filter(isNum).reduce((m, v) => Math.max(m, v), -1);
  const r = ratio(a, best > 0 ? best : undefined);
  row(`${LABEL[s]}: req/s, HTTP/1.1${skipped(s)}`, fmt(a), fmt(e), fmt(e1), fmtRatio(r),
    AIM[s] ? `≥ ${AIM[s]}×` : '', AIM[s] ? met(r, AIM[s], '>=') : '');
}
for (const s of ORDER) {
  const a = g(s, 'sff', 'h2', 'rps');
  if (!isNum(a)) continue;
  const e = g(s, 'exp', 'h2', 'rps');
  const h2n = g(s, 'sff', 'h2', 'requests');
  row(`${LABEL[s]}: req/s, h2c`, a > 0 ? fmt(a) : `${fmt(a)} (no answer${h2n === 0 ? ' at all' : ''})`, isNum(e) ? fmt(e) : peer ? 'no h2c' : '—', '', fmtRatio(ratio(a, e)), '', '');
}
for (const s of ORDER) {
  const a = g(s, 'sff', 'open75', 'p99_ms'), e = g(s, 'exp', 'open75', 'p99_ms'), rate = g(s, 'sff', 'open75', 'target_rate');
  if (!isNum(a)) continue;
  const r = ratio(a, e);
  row(`${LABEL[s]}: p99 at 75 % of ${peer ? 'the Express' : "sff's own"} max (${fmt(rate)} req/s), ms`, fmtMs(a), fmtMs(e), '', fmtRatio(r), '≤ 0.2×',
    met(r, 0.2, '<='));
}
for (const s of ORDER) {
  const a = g(s, 'sff', 'h1', 'cpu_us_per_req'), e = g(s, 'exp', 'h1', 'cpu_us_per_req'), e1 = g(s, 'exp1', 'h1', 'cpu_us_per_req');
  if (!isNum(a)) continue;
  const r = ratio(a, e);
  row(`${LABEL[s]}: CPU per request, µs`, fmt(a, 1), fmt(e, 1), fmt(e1, 1), fmtRatio(r), '≤ 0.1×', met(r, 0.1, '<='));
}
// what the shared Postgres and Redis spent per request of each side: the part of the machine a
// faster server cannot save, so the bound on the throughput ratios of a machine both share
for (const s of ORDER) {
  const b = (side) => {
    const pg = g(s, side, 'h1', 'pg_cpu_us_per_req'), rd = g(s, side, 'h1', 'redis_cpu_us_per_req');
    return isNum(pg) || isNum(rd) ? `${fmt(isNum(pg) ? pg : 0, 1)} + ${fmt(isNum(rd) ? rd : 0, 1)}` : '—';
  };
  if (b('sff') === '—') continue;
  row(`${LABEL[s]}: Postgres + Redis CPU per request (shared), µs`, b('sff'), b('exp'), b('exp1'), '', '', '');
}
// peak RSS: the largest sum of VmRSS over a side's processes, over the measured runs of the API
// scenarios, and apart from it over the login runs (argon2id maps 64 MiB per hash in progress)
const peak = (side, login, what = 'peak_rss_kib') => {
  let m;
  for (const s of Object.keys(sc)) {
    if ((s === 'login') !== login) continue;
    for (const k of Object.keys((sc[s] || {})[side] || {})) {
      const v = sc[s][side][k][what];
      if (isNum(v) && (m === undefined || v > m)) m = v;
    }
  }
  return m;
};
const mib = (v) => (isNum(v) ? fmt(v / 1024, 1) : '—');
const [pa, pe, pe1] = ['sff', 'exp', 'exp1'].map((x) => peak(x, false));
const rr = ratio(pa, pe);
row('peak RSS, the API scenarios, sum over all processes, MiB', mib(pa), mib(pe), mib(pe1), fmtRatio(rr), '≤ 0.1×', met(rr, 0.1, '<='));
const [qa, qe, qe1] = ['sff', 'exp', 'exp1'].map((x) => peak(x, false, 'peak_pss_kib'));
row('peak PSS (shared pages divided among their processes), the API scenarios, MiB', mib(qa), mib(qe), mib(qe1),
  fmtRatio(ratio(qa, qe)), '', '');
if (sc.login) {
  const [la, le, le1] = ['sff', 'exp', 'exp1'].map((x) => peak(x, true));
  row('peak RSS during the logins (64 MiB per argon2id hash), MiB', mib(la), mib(le), mib(le1), fmtRatio(ratio(la, le)), '', '');
}
if (sc.login) {
  const a = g('login', 'sff', 'h1', 'rps'), e = g('login', 'exp', 'h1', 'rps'), e1 = g('login', 'exp1', 'h1', 'rps');
  row(`${LABEL.login}: logins/s${skipped('login')}`, fmt(a, 1), fmt(e, 1), fmt(e1, 1), fmtRatio(ratio(a, e)), 'reported', '');
  row(`${LABEL.login}: p50 / p99, ms`, `${fmtMs(g('login', 'sff', 'h1', 'p50_ms'))} / ${fmtMs(g('login', 'sff', 'h1', 'p99_ms'))}`,
    `${fmtMs(g('login', 'exp', 'h1', 'p50_ms'))} / ${fmtMs(g('login', 'exp', 'h1', 'p99_ms'))}`,
    `${fmtMs(g('login', 'exp1', 'h1', 'p50_ms'))} / ${fmtMs(g('login', 'exp1', 'h1', 'p99_ms'))}`, '', '', '');
}
const st = res.startup || {};
const runs = [st.sff_run1_ms, st.sff_run2_ms, st.sff_run3_ms].filter(isNum).sort((x, y) => x - y);
row('start-up: exec to the first 200 of GET /_health, ms (sff: the median of 3)',
  runs.length ? fmtMs(runs[Math.floor(runs.length / 2)]) : '—', fmtMs(st.exp_cache_on_ms), fmtMs(st.exp1_cache_on_ms), '', '', '');
const rl = res.reload;
if (rl) {
  row(`hot reload of the todolist module under load (${fmt(rl.rate)} req/s, ${rl.reloads} reloads)`,
    `${fmt(rl.max_us)} µs at most; ${fmt(rl.errors)} failed of ${fmt(rl.requests)}; p99.9 ${fmtMs(rl.p999_ms)} ms`, 'n/a', 'n/a', '', '', '');
}

const lat = [];
for (const s of ORDER) for (const lv of [25, 50, 75]) {
  const a = g(s, 'sff', `open${lv}`), e = g(s, 'exp', `open${lv}`);
  if (!a) continue;
  const p = (o) => (o ? [o.p50_ms, o.p90_ms, o.p99_ms, o.p999_ms].map(fmtMs).join(' / ') + (o.errors ? ` (${fmt(o.errors)} errors)` : '') : '—');
  lat.push(`| ${LABEL[s]} | ${lv} % (${fmt(a.target_rate)} req/s) | ${p(a)} | ${p(e)} |`);
}

const m = meta.machine, v = meta.versions, c = meta.config;
const md = [];
md.push(`sff against the Express peer — ${meta.date}, \`make bench\` (bench/compare.sh)`);
md.push('');
md.push(`${m.cores} cores (${m.cpu}), ${fmt(m.mem_kib / 1048576, 0)} GiB, ${m.os}, ${m.kernel}; sff ${v.sff || ''} (${v.commit}), ` +
  `node ${v.node || '—'}, Express ${v.express || '—'}, PostgreSQL ${v.postgres}, Redis ${v.redis}, wrk ${v.wrk}, h2load ${v.h2load}.`);
md.push(`${c.users} users × ${c.todos_per_user} todos; sff ${c.sff}; Express (cluster) ${c.exp}; Express (1 worker) ${c.exp1}; ` +
  `one Postgres and one Redis for both; the load generator on the same machine. Closed loop: wrk -t1 -c${c.connections} ` +
  `(HTTP/1.1) and h2load -t1 -c${c.connections} -m10 (h2c), ${c.closed_loop_s} s each after ${c.warmup_s} s of warm-up; ` +
  `open loop: tests/tools/openloop, ${c.open_loop_s} s per level. Ratios: throughput against the faster Express ` +
  'configuration, everything else against Express (cluster).');
if (!peer) md.push('', `**${c.peer_note}** — the Express columns are empty; open-loop levels are fractions of sff's own maximum.`);
const hl = res.health || {};
if (isNum(hl.foreign_share)) {
  const pct = (hl.foreign_share * 100).toFixed(1);
  md.push('', hl.foreign_share > 0.05
    ? `**The machine was not idle: other processes used ${fmt(hl.foreign_cpu_s, 1)} CPU-seconds during the run (${pct} % of its cores); the figures are noisier than on an idle machine.**`
    : `Other processes used ${fmt(hl.foreign_cpu_s, 1)} CPU-seconds during the run (${pct} % of the machine).`);
}
if (hl.sff_worker_deaths > 0) {
  md.push('', `**sff workers died ${hl.sff_worker_deaths} time${hl.sff_worker_deaths === 1 ? '' : 's'} during this run (the first: ${hl.sff_first_death}); ` +
    `its master respawned them, and the figures of the runs they died in are suspect${hl.sff_deaths_in ? ` (${String(hl.sff_deaths_in).replace(/,$/, '').split(',').join(', ')})` : ''}.**`);
}
if (hl.exp_worker_deaths > 0) md.push('', `**Express workers died ${hl.exp_worker_deaths} time${hl.exp_worker_deaths === 1 ? '' : 's'} during this run.**`);
if (res.config && res.config.sff_cache_switch === 0) md.push('', '**sff has no cache switch yet (TODOLIST_CACHE=off): "cache off" is measured for the peer only.**');
md.push('', '| scenario | sff | Express (cluster) | Express (1 worker) | sff/Express | aim | met? |', '|---|---|---|---|---|---|---|', ...rows);
md.push('', 'Open-loop latency, p50 / p90 / p99 / p99.9 in ms, latency counted from each request\'s scheduled send time:', '');
md.push(`| scenario | load (of ${peer ? 'the Express' : "sff's own"} max) | sff | Express (cluster) |`, '|---|---|---|---|', ...lat);
md.push('', `CPU: utime+stime of every process of a side (sff's master, workers and hashers; node's primary and workers) over the ` +
  'measured run, divided by its requests. RSS: the sum of VmRSS over those processes, sampled every 100 ms during every ' +
  'measured run (shared pages count once per process); PSS likewise, with each shared page divided among its processes. ' +
  'Postgres + Redis: what the shared backends spent during a side\'s closed-loop HTTP/1.1 run, divided by that side\'s requests; ' +
  'with the load generator it is the part of the machine a faster server cannot save, which bounds the throughput ratios on a ' +
  'machine they all share.');
md.push('', `![throughput](${latest}-throughput.svg) ![latency](${latest}-latency.svg)`, '', `Raw figures: \`bench/results/${stamp}.json\`.`);
fs.writeFileSync(`${outDir}/${latest}.md`, md.join('\n') + '\n');

// the charts' data
const q = (x) => (isNum(x) ? String(x) : '?');
const tp = ORDER.map((s) => `"${SHORT[s]}" ${q(g(s, 'sff', 'h1', 'rps'))} ${q(g(s, 'exp', 'h1', 'rps'))} ` +
  `${q(g(s, 'exp1', 'h1', 'rps'))} ${q(g(s, 'sff', 'h2', 'rps'))}`);
fs.writeFileSync(`${dataDir}/throughput.dat`, '# scenario sff_h1 express express1 sff_h2c\n' + tp.join('\n') + '\n');
const latScen = ORDER.filter((s) => g(s, 'sff', 'open25'));
const blocks = latScen.map((s) => ['p50_ms', 'p90_ms', 'p99_ms', 'p999_ms'].map((k, i) =>
  `"${['p50', 'p90', 'p99', 'p99.9'][i]}" ` + [25, 50, 75].map((lv) => q(g(s, 'sff', `open${lv}`, k))).join(' ') + ' ' +
  [25, 50, 75].map((lv) => q(g(s, 'exp', `open${lv}`, k))).join(' ')).join('\n'));
fs.writeFileSync(`${dataDir}/latency.dat`, blocks.join('\n\n\n') + '\n');
const esc = (t) => t.replace(/[\\"]/g, '\\$&').replace(/[_^{}@&~]/g, '\\\\$&'); // gnuplot string, enhanced text
fs.writeFileSync(`${dataDir}/vars.gp`, [
  `nscen = ${latScen.length}`,
  `array titles[${Math.max(latScen.length, 1)}]`,
  ...latScen.map((s, i) => `titles[${i + 1}] = "${esc(SHORT[s])} (75 % = ${fmt(g(s, 'sff', 'open75', 'target_rate'))} req/s)"`),
  `reference = "${peer ? "the Express peer's" : "sff's own (peer missing)"}"`,
  `peer = ${peer ? 1 : 0}`,
  `subtitle = "${esc(`${meta.date}, ${m.cores} cores; sff ${c.sff}; Express ${c.exp}`)}"`,
].join('\n') + '\n');
JS
node "$work/report.js" "$work/meta.kv" "$kv" "$out_dir" "$stamp" "$work" "$latest" || die "the report failed"
if command -v gnuplot >/dev/null 2>&1; then
    if gnuplot -e "datadir='$work'; outbase='$out_dir/$stamp'" bench/plot.gp 2>"$work/gnuplot.err"; then
        for kind in throughput latency; do
            for ext in svg png; do
                [ "$stamp" = "$latest" ] || cp "$out_dir/$stamp-$kind.$ext" "$out_dir/$latest-$kind.$ext"
            done
        done
    else
        note "gnuplot failed:"
        cat "$work/gnuplot.err" >&2
    fi
else
    note "no gnuplot (make deps-test installs gnuplot-nox): no charts"
fi
cat "$out_dir/$latest.md"
note "done in $(($(date +%s) - started)) s: $out_dir/$stamp.json, $out_dir/$latest.md, $out_dir/$stamp-*.svg/png"
