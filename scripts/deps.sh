#!/bin/sh
# Installs what sff needs, for a purpose: build (make, make run) or test (make test, make bench):
# Debian packages (as root with apt-get; otherwise it prints the exact command and fails) and, for
# tests, the npm packages pinned in tests/node/package-lock.json (s3rver, the SigV4 references).
set -eu
purpose=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)

build_pkgs="gcc make libc6-dev pkg-config libh2o-evloop-dev libjansson-dev libjwt-dev libssl-dev libsodium-dev zlib1g-dev libpq-dev libhiredis-dev"
run_pkgs="$build_pkgs postgresql redis-server curl"
test_pkgs="$build_pkgs nghttp2-client libnghttp2-dev curl openssl clang libclang-rt-14-dev clang-format wrk procps iproute2 postgresql redis-server chromium gnuplot-nox"

case "$purpose" in
build) want=$build_pkgs ;;
run) want=$run_pkgs ;;
test) want=$test_pkgs ;;
*) echo "usage: scripts/deps.sh build|run|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ "$purpose" = test ] && ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi

if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "sff needs these Debian packages:$missing" >&2
        echo "install them with:  sudo apt-get update && sudo apt-get install -y$missing" >&2
        exit 1
    fi
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

for dir in tests/node tests/e2e bench/peers/express; do
    if [ "$purpose" = test ] && [ ! -d "$top/$dir/node_modules" ]; then
        echo "installing the npm packages of $dir"
        npm ci --prefix "$top/$dir" --no-audit --no-fund >/dev/null
    fi
done
