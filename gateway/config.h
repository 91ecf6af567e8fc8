/*
 * config.h - sff's configuration, read from SFF_* environment variables (12-factor). Every setting
 * has a default, so `sff serve` starts with nothing set. Secrets are kept here but never logged.
 */
#ifndef SFF_CONFIG_H
#define SFF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define SFF_CONFIG_MAX_LISTEN 8

typedef struct st_sff_listen_t {
    char host[128]; /* numeric address or name; "" for any */
    char port[8];
} sff_listen_t;

typedef struct st_sff_config_t {
    sff_listen_t listen[SFF_CONFIG_MAX_LISTEN];
    size_t nlisten;
    int workers;
    char *tls_cert;
    char *tls_key;
    char *jwt_secret;
    char *jwt_keys_file;
    char *jwt_issuer;
    char *jwt_audience;
    int64_t jwt_leeway_s;
    char *jwt_cookie;
    char *functions_dir;
    char *schemas_dir;
    char *static_dir;
    size_t max_body;
    char **cors_origins; /* NULL-terminated; {"*"} allows any origin (without credentials) */
    char *log_level;
    uint32_t timeout_ms;       /* default route timeout (SFF_TIMEOUT_MS) */
    uint32_t drain_timeout_ms; /* SIGTERM drain deadline (SFF_DRAIN_TIMEOUT_MS) */
    uint32_t idle_timeout_ms;  /* keep-alive idle timeout (SFF_IDLE_TIMEOUT_MS) */
    int json_max_depth;        /* SFF_JSON_MAX_DEPTH */
    size_t coro_stack;         /* SFF_CORO_STACK */
    int access_log;            /* SFF_ACCESS_LOG: 1 on (default), 0 off */
    /* backends (issue 3) */
    char *pg_url;                     /* SFF_PG_URL: libpq URL or conninfo; NULL: no Postgres */
    int pg_pool;                      /* SFF_PG_POOL: connections per worker */
    uint32_t pg_statement_timeout_ms; /* SFF_PG_STATEMENT_TIMEOUT_MS: server-side statement_timeout */
    uint32_t pg_pipeline;             /* SFF_PG_PIPELINE: calls in flight per connection (1: no pipelining) */
    char *redis_url;                  /* SFF_REDIS_URL; NULL: no Redis */
    char *storage_url;                /* SFF_STORAGE_URL: file:///path or s3://bucket?... */
    uint32_t storage_probe_ms;        /* SFF_STORAGE_PROBE_MS: how often /_ready's storage check lists a key */
    char *s3_access_key;              /* SFF_S3_ACCESS_KEY */
    char *s3_secret_key;              /* SFF_S3_SECRET_KEY */
    size_t max_upload;                /* SFF_MAX_UPLOAD */
    int migrate;                      /* SFF_MIGRATE: 1 auto (at serve start), 0 off */
    int rate_limit_fail_closed;       /* SFF_RATE_LIMIT_FAIL: 0 open (default), 1 closed while Redis is down */
    /* HTTP/2 abuse budgets (per connection) */
    uint32_t h2_max_resets;   /* SFF_H2_MAX_RESETS: streams reset before their response, per 10 s */
    size_t max_header_bytes;  /* SFF_MAX_HEADER_BYTES: decoded request header bytes per request */
    uint32_t body_timeout_ms; /* SFF_BODY_TIMEOUT_MS: a request body must arrive within this */
} sff_config_t;

/* Reads the environment into config. Returns 0, or -1 with a message in err naming the variable. */
int sff_config_load(sff_config_t *config, char *err, size_t errlen);
void sff_config_dispose(sff_config_t *config);

/* Parses "1048576", "64k", "1m", "2g" (binary units). Returns -1 when malformed. */
int sff_config_parse_size(const char *s, size_t *out);

/* Nonzero when origin (exactly as sent) is allowed by SFF_CORS_ORIGINS. */
int sff_config_origin_allowed(const sff_config_t *config, const char *origin, size_t len);

#endif
