#!/bin/sh
# Builds the client library's self-test (plain and with ASan+UBSan) and the throwaway h2o server it talks to, into
# a temp dir, and runs both. Run from the repository root: sh tests/lib/selftest/run.sh
# SELFTEST_QUICK=1 skips the tests that wait for timeouts (about a minute).
set -e
out=$(mktemp -d "${TMPDIR:-/tmp}/sff-selftest-XXXXXX")
trap 'rm -rf "$out"' EXIT
flags="-std=c11 -D_GNU_SOURCE -g -Wall -Wextra -Werror -Wno-missing-field-initializers -Itests"
libs="-lnghttp2 -lssl -lcrypto -lpthread"
gcc $flags -DH2O_USE_LIBUV=0 -O2 -o "$out/server" tests/lib/selftest/server.c -lh2o-evloop -lssl -lcrypto -lz -lpthread
gcc $flags -O2 -o "$out/selftest" tests/lib/selftest/selftest.c tests/lib/client.c tests/lib/load.c tests/lib/server.c $libs
gcc $flags -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
    -o "$out/selftest-asan" tests/lib/selftest/selftest.c tests/lib/client.c tests/lib/load.c tests/lib/server.c $libs
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$out/key.pem" -out "$out/cert.pem" -days 1 -subj /CN=127.0.0.1 2>/dev/null
status=0
echo "# plain"
"$out/selftest" "$out/server" "$out/cert.pem" "$out/key.pem" || status=1
echo "# asan+ubsan"
"$out/selftest-asan" "$out/server" "$out/cert.pem" "$out/key.pem" || status=1
exit $status
