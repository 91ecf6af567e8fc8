#!/bin/sh
# Installs the Debian packages sff needs, for a purpose: build (make, make run) or test (make test,
# make bench). As root it runs apt-get; otherwise it prints the exact command and fails.
set -eu
purpose=${1:-build}

build_pkgs="gcc make libc6-dev pkg-config libh2o-evloop-dev libjansson-dev libjwt-dev libssl-dev libsodium-dev zlib1g-dev libpq-dev libhiredis-dev"
test_pkgs="$build_pkgs nghttp2-client libnghttp2-dev curl openssl clang libclang-rt-14-dev clang-format wrk procps postgresql redis-server"

case "$purpose" in
build) want=$build_pkgs ;;
test) want=$test_pkgs ;;
*) echo "usage: scripts/deps.sh build|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ "$purpose" = test ] && [ ! -d "$(dirname "$0")/../tests/node/node_modules" ] && npm ci --prefix "$(dirname "$0")/../tests/node" --no-audit --no-fund
[ -z "$missing" ] && exit 0

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
