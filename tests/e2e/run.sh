#!/bin/sh
# The browser journeys of the todolist (tests/e2e/todolist.js, Chromium through playwright-core)
# against a real sff with private Postgres, Redis and local storage. Prints the script's
# "ok - name" / "not ok - name" lines; exits non-zero on a failure.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
bin=${SFF_BIN:-$top/build/sff}
build=$(dirname "$bin")
work=$(mktemp -d "${TMPDIR:-/tmp}/sff-e2e-XXXXXX")
sff_pid=
cleanup() {
    [ -n "$sff_pid" ] && kill "$sff_pid" 2>/dev/null && wait "$sff_pid" 2>/dev/null
    exec 8>&- 2>/dev/null
    sleep 1
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

. "$top/tests/lib/shell.sh"
start_backends "$build/tests/tools/backends" "$work" || { echo "not ok - e2e_backends_start"; exit 1; }
psql -q "$PG_URL" -c "create role todolist_app login" -c "create database todolist owner todolist_app" >/dev/null ||
    { echo "not ok - e2e_database"; exit 1; }

mkdir -p "$work/functions" "$work/objects"
cp "$build/functions/todolist.so" "$work/functions/"
port=$(free_port)
SFF_LISTEN=127.0.0.1:$port SFF_WORKERS=1 SFF_FUNCTIONS_DIR="$work/functions" SFF_SCHEMAS_DIR=schemas \
    SFF_STATIC_DIR=web/todolist SFF_PG_URL="postgresql://todolist_app@127.0.0.1:$PG_PORT/todolist" \
    SFF_REDIS_URL="$REDIS_URL" SFF_STORAGE_URL="file://$work/objects" SFF_JWT_SECRET=e2e-secret-e2e-secret-e2e-secret-0123 \
    "$bin" serve >"$work/sff.log" 2>&1 &
sff_pid=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/_ready" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$port/_ready" >/dev/null 2>&1 || { echo "not ok - e2e_sff_starts"; tail -20 "$work/sff.log"; exit 1; }

SFF_URL="http://127.0.0.1:$port" timeout 300 node tests/e2e/todolist.js
rc=$?
if [ $rc -ne 0 ]; then
    echo "# sff log (last lines):"
    tail -20 "$work/sff.log" | sed 's/^/# /'
fi
exit $rc
