#!/bin/sh
# make run: the todolist on http://127.0.0.1:8080 with a private Postgres and Redis kept in .sff/
# (started and stopped with sff; the data stays for the next run), objects in .sff/storage, the
# migrations of schemas/sql applied at start, and a demo account. Ctrl-C stops everything.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
state="$top/.sff"
mkdir -p "$state/pg" "$state/redis" "$state/storage"
chmod 700 "$state"

# Postgres refuses to run as root: as root it runs as the user "postgres".
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pgport=${SFF_RUN_PG_PORT:-5433}
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$state/pg"
    chmod 755 "$state" # postgres must reach .sff/pg
fi
if [ ! -s "$state/pg/data/PG_VERSION" ]; then
    echo "creating the Postgres cluster in .sff/pg/data"
    as_pg "$pgbin/initdb" -D "$state/pg/data" -U postgres --auth=trust -E UTF8 >"$state/pg/initdb.log"
fi
mkdir -p "$state/pg/run"
[ "$(id -u)" -eq 0 ] && chown postgres "$state/pg/run"
as_pg "$pgbin/pg_ctl" -D "$state/pg/data" -l "$state/pg/server.log" -w -o "-c listen_addresses='' -p $pgport -k $state/pg/run" start >/dev/null
pg_down() { as_pg "$pgbin/pg_ctl" -D "$state/pg/data" -m fast -w stop >/dev/null 2>&1 || true; }

redis-server --port 0 --unixsocket "$state/redis/redis.sock" --unixsocketperm 700 --dir "$state/redis" \
    --appendonly yes --save "" --daemonize no >"$state/redis/server.log" 2>&1 &
redis_pid=$!
sff_pid=
stop_all() {
    trap - INT TERM EXIT
    [ -n "$sff_pid" ] && kill "$sff_pid" 2>/dev/null && wait "$sff_pid" 2>/dev/null
    kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    pg_down
    echo "stopped; the data stays in .sff/ for the next make run"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

# the application's role: not a superuser, so row-level security binds it
psql -q -h "$state/pg/run" -p "$pgport" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
select 'create role sff login' where not exists (select from pg_roles where rolname = 'sff')\gexec
select 'create database todolist owner sff' where not exists (select from pg_database where datname = 'todolist')\gexec
SQL

if [ ! -s "$state/jwt_secret" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/jwt_secret")
fi
export SFF_JWT_SECRET="${SFF_JWT_SECRET:-$(cat "$state/jwt_secret")}"
export SFF_LISTEN="${SFF_LISTEN:-127.0.0.1:8080}"
export SFF_FUNCTIONS_DIR="${SFF_FUNCTIONS_DIR:-build/functions}"
export SFF_SCHEMAS_DIR="${SFF_SCHEMAS_DIR:-schemas}"
export SFF_STATIC_DIR="${SFF_STATIC_DIR:-web/todolist}"
export SFF_PG_URL="${SFF_PG_URL:-postgresql:///todolist?host=$state/pg/run&port=$pgport&user=sff}"
export SFF_REDIS_URL="${SFF_REDIS_URL:-unix://$state/redis/redis.sock}"
export SFF_STORAGE_URL="${SFF_STORAGE_URL:-file://$state/storage}"

build/sff serve --watch &
sff_pid=$!
url="http://${SFF_LISTEN%%,*}"
for _ in $(seq 1 100); do
    curl -sf "$url/_ready" >/dev/null 2>&1 && break
    kill -0 "$sff_pid" 2>/dev/null || exit 1
    sleep 0.1
done
curl -s -o /dev/null -X POST -H 'content-type: application/json' \
    -d '{"username":"demo","password":"demo-password","name":"Demo User"}' "$url/api/v1/users" || true
cat <<MSG

  the todolist is running on $url
    log in as:  demo / demo-password   (or register your own account)
    API:        $url/_openapi.json     metrics: $url/_metrics
  Ctrl-C stops sff, Postgres and Redis; the data stays in .sff/.

MSG
wait "$sff_pid"
