#!/bin/sh
# Starts sff for development: the functions in build/functions, the schemas in schemas/, a JWT
# secret kept in .sff/jwt_secret (made on first run), listening on SFF_LISTEN (default
# 127.0.0.1:8080), reloading functions when they are rebuilt. Ctrl-C stops it.
set -eu
cd "$(dirname "$0")/.."
mkdir -p .sff
chmod 700 .sff
if [ ! -s .sff/jwt_secret ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .sff/jwt_secret)
fi
SFF_JWT_SECRET=${SFF_JWT_SECRET:-$(cat .sff/jwt_secret)}
export SFF_JWT_SECRET
export SFF_LISTEN=${SFF_LISTEN:-127.0.0.1:8080}
export SFF_FUNCTIONS_DIR=${SFF_FUNCTIONS_DIR:-build/functions}
export SFF_SCHEMAS_DIR=${SFF_SCHEMAS_DIR:-schemas}
if [ -z "${SFF_STATIC_DIR:-}" ] && [ -f web/index.html ]; then
    export SFF_STATIC_DIR=web
fi
url="http://${SFF_LISTEN%%,*}"
token=$(build/sff token --sub demo --ttl 86400)
cat <<MSG

  sff is starting on $url
    try:   curl $url/examples/hello
           curl -H "Authorization: Bearer $token" $url/examples/whoami
    docs:  $url/_openapi.json    metrics: $url/_metrics
  (a demo token for the user "demo", valid for a day; make one with: build/sff token --sub NAME)
  Ctrl-C stops it.

MSG
exec build/sff serve --watch
