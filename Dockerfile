# sff in a container, on Debian bookworm (the platform it is built and tested on).
#
#   docker build -t sff .          or, with Postgres, Redis and MinIO:  docker compose up
#
# Stage 1 builds with the build packages of scripts/deps.sh and installs into /opt/sff; stage 2 is a
# slim bookworm with only the shared libraries, /opt/sff, and a non-root user. No secret is baked
# in: SFF_JWT_SECRET, SFF_PG_URL, SFF_S3_* and the rest come from the environment at run time
# (README.md, Configuration). tests/integration/99-compose.c checks this file.

FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
# The build list of scripts/deps.sh ("build_pkgs"); the test checks that the two stay the same.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        gcc make libc6-dev pkg-config libh2o-evloop-dev libjansson-dev libjwt-dev libssl-dev \
        libsodium-dev zlib1g-dev libpq-dev libhiredis-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore lets only the sources in (Makefile gateway baas functions schemas web).
COPY . .
# make install: bin/sff, lib/sff/functions/*.so, include/sff/sff.h. The schemas (json/, sql/ for
# the migrations) and the web app go to share/sff; web/ may not exist yet, schemas/sql may be empty.
RUN make -j"$(nproc)" \
 && make install PREFIX=/opt/sff \
 && strip --strip-unneeded /opt/sff/bin/sff /opt/sff/lib/sff/functions/*.so \
 && mkdir -p /opt/sff/share/sff/schemas/json /opt/sff/share/sff/schemas/sql /opt/sff/share/sff/web \
 && cp -R schemas/. /opt/sff/share/sff/schemas/ \
 && if [ -d web ]; then cp -R web/. /opt/sff/share/sff/web/; fi

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
# The libraries build/sff is linked with (readelf -d: h2o, jansson, jwt, ssl, pq, hiredis; zlib and
# sodium come with the link line), and CA certificates for S3 or Postgres over TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libh2o-evloop0.13 libjansson4 libjwt0 libssl3 libsodium23 libpq5 libhiredis0.14 zlib1g \
        ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sff \
 && useradd --system --uid 10001 --gid sff --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin sff
COPY --from=build /opt/sff /opt/sff
ENV PATH=/opt/sff/bin:$PATH \
    SFF_LISTEN=0.0.0.0:8080 \
    SFF_FUNCTIONS_DIR=/opt/sff/lib/sff/functions \
    SFF_SCHEMAS_DIR=/opt/sff/share/sff/schemas \
    SFF_STATIC_DIR=/opt/sff/share/sff/web/todolist
# The workers copy modules to $TMPDIR (default /tmp) before dlopen: /tmp is writable by sff.
# Numeric, so that a runtime that must verify "not root" (Kubernetes runAsNonRoot) can.
USER 10001:10001
EXPOSE 8080
# GET /_ready over bash's /dev/tcp: bash is Essential in Debian, so nothing is added to the image
# (no curl). The port is the one of the first SFF_LISTEN address; a TLS-only setup needs its own check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "p=${SFF_LISTEN%%,*}; exec 3<>/dev/tcp/127.0.0.1/${p##*:} && printf \"GET /_ready HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n\" >&3 && read -r -t 4 _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/opt/sff/bin/sff"]
CMD ["serve"]
