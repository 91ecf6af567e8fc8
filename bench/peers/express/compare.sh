#!/bin/sh
# compare.sh A_URL B_URL [compare.js options]: the harness's body check (see compare.js).
#   bench/peers/express/compare.sh http://127.0.0.1:8080 http://127.0.0.1:8081 --token "$T1" --token "$T2"
set -e
[ $# -ge 2 ] || { echo "usage: compare.sh A_URL B_URL --token JWT [--token JWT ...] [--login NAME:PASSWORD] [--writes] [--quiet]" >&2; exit 2; }
a=$1 b=$2
shift 2
exec node "$(dirname "$0")/compare.js" --a "$a" --b "$b" "$@"
