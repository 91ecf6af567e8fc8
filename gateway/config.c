#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"

static char *env_dup(const char *name, const char *def)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        v = def;
    return v != NULL ? strdup(v) : NULL;
}

int sff_config_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *s == '-')
        return -1;
    unsigned long long mul = 1;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mul = 1024ULL;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1024ULL * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1024ULL * 1024 * 1024;
        end++;
        break;
    default:
        return -1;
    }
    if ((*end == 'b' || *end == 'B') && mul != 1)
        end++;
    if (*end != '\0' || v > SIZE_MAX / mul)
        return -1;
    *out = (size_t)(v * mul);
    return 0;
}

static int env_long(const char *name, long long def, long long min, long long max, long long *out, char *err, size_t errlen)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
        snprintf(err, errlen, "%s must be an integer from %lld to %lld", name, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

static int env_size(const char *name, size_t def, size_t *out, char *err, size_t errlen)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        *out = def;
        return 0;
    }
    if (sff_config_parse_size(v, out) != 0 || *out == 0) {
        snprintf(err, errlen, "%s must be a size such as 1048576, 512k or 1m", name);
        return -1;
    }
    return 0;
}

/* Parses "host:port", "[v6]:port", ":port" or "port". */
static int parse_listen(const char *s, sff_listen_t *l)
{
    const char *colon;
    memset(l, 0, sizeof(*l));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(l->host))
            return -1;
        memcpy(l->host, s + 1, close - s - 1);
        colon = close + 1;
    } else if ((colon = strrchr(s, ':')) != NULL) {
        if ((size_t)(colon - s) >= sizeof(l->host))
            return -1;
        memcpy(l->host, s, colon - s);
    } else {
        colon = s - 1;
    }
    const char *port = colon + 1;
    size_t plen = strlen(port);
    if (plen == 0 || plen >= sizeof(l->port) || strspn(port, "0123456789") != plen || atoi(port) > 65535)
        return -1;
    memcpy(l->port, port, plen);
    return 0;
}

static char **split_list(const char *s)
{
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    char **list = calloc(n + 1, sizeof(*list));
    size_t i = 0;
    const char *p = s;
    while (list != NULL) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '/'))
            len--;
        if (len > 0)
            list[i++] = strndup(p, len);
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return list;
}

int sff_config_load(sff_config_t *c, char *err, size_t errlen)
{
    long long v;
    memset(c, 0, sizeof(*c));

    char *listen = env_dup("SFF_LISTEN", "127.0.0.1:8080");
    char **items = split_list(listen);
    free(listen);
    for (size_t i = 0; items != NULL && items[i] != NULL; i++) {
        if (c->nlisten == SFF_CONFIG_MAX_LISTEN || parse_listen(items[i], &c->listen[c->nlisten]) != 0) {
            snprintf(err, errlen, "SFF_LISTEN: \"%s\" is not host:port (or more than %d addresses)", items[i],
                     SFF_CONFIG_MAX_LISTEN);
            for (size_t j = 0; items[j] != NULL; j++)
                free(items[j]);
            free(items);
            return -1;
        }
        c->nlisten++;
    }
    for (size_t j = 0; items != NULL && items[j] != NULL; j++)
        free(items[j]);
    free(items);
    if (c->nlisten == 0) {
        snprintf(err, errlen, "SFF_LISTEN is empty");
        return -1;
    }

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (env_long("SFF_WORKERS", cores > 0 ? cores : 1, 1, 256, &v, err, errlen) != 0)
        return -1;
    c->workers = (int)v;
    c->tls_cert = env_dup("SFF_TLS_CERT", NULL);
    c->tls_key = env_dup("SFF_TLS_KEY", NULL);
    if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
        snprintf(err, errlen, "SFF_TLS_CERT and SFF_TLS_KEY must be set together");
        return -1;
    }
    c->jwt_secret = env_dup("SFF_JWT_SECRET", NULL);
    c->jwt_keys_file = env_dup("SFF_JWT_KEYS_FILE", NULL);
    c->jwt_issuer = env_dup("SFF_JWT_ISSUER", NULL);
    c->jwt_audience = env_dup("SFF_JWT_AUDIENCE", NULL);
    if (env_long("SFF_JWT_LEEWAY_S", 30, 0, 3600, &v, err, errlen) != 0)
        return -1;
    c->jwt_leeway_s = v;
    c->jwt_cookie = env_dup("SFF_JWT_COOKIE", "jwtToken");
    c->functions_dir = env_dup("SFF_FUNCTIONS_DIR", "build/functions");
    c->schemas_dir = env_dup("SFF_SCHEMAS_DIR", "schemas");
    c->static_dir = env_dup("SFF_STATIC_DIR", NULL);
    if (env_size("SFF_MAX_BODY", 1024 * 1024, &c->max_body, err, errlen) != 0)
        return -1;
    char *cors = env_dup("SFF_CORS_ORIGINS", "");
    c->cors_origins = split_list(cors);
    free(cors);
    c->log_level = env_dup("SFF_LOG_LEVEL", "info");
    if (strcmp(c->log_level, "debug") != 0 && strcmp(c->log_level, "info") != 0 && strcmp(c->log_level, "warn") != 0 &&
        strcmp(c->log_level, "error") != 0) {
        snprintf(err, errlen, "SFF_LOG_LEVEL must be debug, info, warn or error");
        return -1;
    }
    if (env_long("SFF_TIMEOUT_MS", 30000, 1, 3600000, &v, err, errlen) != 0)
        return -1;
    c->timeout_ms = (uint32_t)v;
    if (env_long("SFF_DRAIN_TIMEOUT_MS", 10000, 0, 3600000, &v, err, errlen) != 0)
        return -1;
    c->drain_timeout_ms = (uint32_t)v;
    if (env_long("SFF_IDLE_TIMEOUT_MS", 60000, 1000, 3600000, &v, err, errlen) != 0)
        return -1;
    c->idle_timeout_ms = (uint32_t)v;
    if (env_long("SFF_JSON_MAX_DEPTH", 64, 1, 512, &v, err, errlen) != 0)
        return -1;
    c->json_max_depth = (int)v;
    if (env_size("SFF_CORO_STACK", 256 * 1024, &c->coro_stack, err, errlen) != 0)
        return -1;
    if (env_long("SFF_ACCESS_LOG", 1, 0, 1, &v, err, errlen) != 0)
        return -1;
    c->access_log = (int)v;
    c->pg_url = env_dup("SFF_PG_URL", NULL);
    if (env_long("SFF_PG_POOL", 4, 1, 256, &v, err, errlen) != 0)
        return -1;
    c->pg_pool = (int)v;
    if (env_long("SFF_PG_STATEMENT_TIMEOUT_MS", 30000, 0, 3600000, &v, err, errlen) != 0)
        return -1;
    c->pg_statement_timeout_ms = (uint32_t)v;
    if (env_long("SFF_PG_PIPELINE", 64, 1, 1024, &v, err, errlen) != 0)
        return -1;
    c->pg_pipeline = (uint32_t)v;
    c->redis_url = env_dup("SFF_REDIS_URL", NULL);
    c->storage_url = env_dup("SFF_STORAGE_URL", NULL);
    if (env_long("SFF_STORAGE_PROBE_MS", 5000, 100, 3600000, &v, err, errlen) != 0)
        return -1;
    c->storage_probe_ms = (uint32_t)v;
    c->s3_access_key = env_dup("SFF_S3_ACCESS_KEY", NULL);
    c->s3_secret_key = env_dup("SFF_S3_SECRET_KEY", NULL);
    if (env_size("SFF_MAX_UPLOAD", 10 * 1024 * 1024, &c->max_upload, err, errlen) != 0)
        return -1;
    char *migrate = env_dup("SFF_MIGRATE", "auto");
    c->migrate = strcmp(migrate, "auto") == 0 ? 1 : strcmp(migrate, "off") == 0 ? 0 : -1;
    free(migrate);
    if (c->migrate < 0) {
        snprintf(err, errlen, "SFF_MIGRATE must be auto or off");
        return -1;
    }
    char *fail = env_dup("SFF_RATE_LIMIT_FAIL", "open");
    c->rate_limit_fail_closed = strcmp(fail, "closed") == 0 ? 1 : strcmp(fail, "open") == 0 ? 0 : -1;
    free(fail);
    if (c->rate_limit_fail_closed < 0) {
        snprintf(err, errlen, "SFF_RATE_LIMIT_FAIL must be open or closed");
        return -1;
    }
    if (env_long("SFF_H2_MAX_RESETS", 100, 1, 1000000, &v, err, errlen) != 0)
        return -1;
    c->h2_max_resets = (uint32_t)v;
    if (env_size("SFF_MAX_HEADER_BYTES", 64 * 1024, &c->max_header_bytes, err, errlen) != 0)
        return -1;
    if (env_long("SFF_BODY_TIMEOUT_MS", 10000, 100, 3600000, &v, err, errlen) != 0)
        return -1;
    c->body_timeout_ms = (uint32_t)v;
    return 0;
}

void sff_config_dispose(sff_config_t *c)
{
    free(c->tls_cert);
    free(c->tls_key);
    free(c->jwt_secret);
    free(c->jwt_keys_file);
    free(c->jwt_issuer);
    free(c->jwt_audience);
    free(c->jwt_cookie);
    free(c->functions_dir);
    free(c->schemas_dir);
    free(c->static_dir);
    for (size_t i = 0; c->cors_origins != NULL && c->cors_origins[i] != NULL; i++)
        free(c->cors_origins[i]);
    free(c->cors_origins);
    free(c->log_level);
    free(c->pg_url);
    free(c->redis_url);
    free(c->storage_url);
    free(c->s3_access_key);
    free(c->s3_secret_key);
    memset(c, 0, sizeof(*c));
}

int sff_config_origin_allowed(const sff_config_t *c, const char *origin, size_t len)
{
    for (size_t i = 0; c->cors_origins != NULL && c->cors_origins[i] != NULL; i++) {
        const char *o = c->cors_origins[i];
        if ((o[0] == '*' && o[1] == '\0') || (strlen(o) == len && strncasecmp(o, origin, len) == 0))
            return 1;
    }
    return 0;
}
