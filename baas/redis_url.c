/*
 * redis_url.c - SFF_REDIS_URL, parsed strictly. No error message quotes the URL: any part of it
 * may be a mistyped password.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "text.h"
#include "sff.h"
#include "redis.h"

static int fail(char *err, size_t errsize, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errsize, const char *fmt, ...)
{
    if (errsize > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsize, fmt, ap);
        va_end(ap);
    }
    return SFF_EBADREQ;
}

/* Percent-decodes s[0..len) into out (capacity size, NUL-terminated). Returns the decoded length,
 * -1 for a bad escape or a decoded NUL, -2 when it does not fit. */
static long decode(const char *s, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return -1;
            if ((hi = sff_text_hexval(s[i + 1])) < 0 || (lo = sff_text_hexval(s[i + 2])) < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            if (c == '\0')
                return -1;
            i += 2;
        }
        if (n + 1 >= size)
            return -2;
        out[n++] = c;
    }
    out[n] = '\0';
    return (long)n;
}

/* A decimal number of digits only, at most max. Returns 0 or -1. */
static int number(const char *s, size_t len, long max, long *out)
{
    long v = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

/* user:password (both may be empty, the colon is required) */
static int parse_userinfo(const char *s, size_t len, sff_redis_url_t *url, char *err, size_t errsize)
{
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return fail(err, errsize, "the user info must be \":password\" or \"user:password\" (a password alone needs the colon)");
    long n = decode(s, (size_t)(colon - s), url->username, sizeof(url->username));
    if (n == -1)
        return fail(err, errsize, "the user name has an invalid percent-encoding");
    if (n == -2)
        return fail(err, errsize, "the user name is longer than %zu bytes", sizeof(url->username) - 1);
    n = decode(colon + 1, len - (size_t)(colon + 1 - s), url->password, sizeof(url->password));
    if (n == -1)
        return fail(err, errsize, "the password has an invalid percent-encoding");
    if (n == -2)
        return fail(err, errsize, "the password is longer than %zu bytes", sizeof(url->password) - 1);
    if (url->password[0] == '\0' && url->username[0] != '\0')
        return fail(err, errsize, "a user name needs a password");
    return 0;
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

static int parse_tcp(const char *s, sff_redis_url_t *url, char *err, size_t errsize)
{
    size_t alen = strcspn(s, "/?#");
    const char *auth = s, *rest = s + alen;
    /* the last '@': an unencoded '@' in the password is taken as part of it */
    const char *at = NULL;
    for (const char *p = auth; p < rest; p++)
        if (*p == '@')
            at = p;
    const char *host = auth;
    if (at != NULL) {
        int ret = parse_userinfo(auth, (size_t)(at - auth), url, err, errsize);
        if (ret != 0)
            return ret;
        host = at + 1;
    }
    const char *port = NULL, *host_end;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(rest - host));
        if (close == NULL)
            return fail(err, errsize, "the IPv6 address has no closing bracket");
        size_t hlen = (size_t)(close - host - 1);
        struct in6_addr a6;
        if (hlen == 0 || hlen >= sizeof(url->host))
            return fail(err, errsize, "the IPv6 address in brackets is invalid");
        memcpy(url->host, host + 1, hlen);
        url->host[hlen] = '\0';
        if (inet_pton(AF_INET6, url->host, &a6) != 1)
            return fail(err, errsize, "the IPv6 address in brackets is invalid");
        host_end = close + 1;
        if (host_end < rest) {
            if (*host_end != ':')
                return fail(err, errsize, "unexpected characters after the IPv6 address");
            port = host_end + 1;
        }
    } else {
        host_end = memchr(host, ':', (size_t)(rest - host));
        if (host_end == NULL)
            host_end = rest;
        else
            port = host_end + 1;
        size_t hlen = (size_t)(host_end - host);
        if (hlen == 0)
            return fail(err, errsize, "the host is missing");
        if (hlen >= sizeof(url->host))
            return fail(err, errsize, "the host is longer than %zu bytes", sizeof(url->host) - 1);
        for (size_t i = 0; i < hlen; i++)
            if (!is_name_char(host[i]))
                return fail(err, errsize, "the host may hold only letters, digits, '-', '.' and '_' (IPv6 goes in brackets)");
        memcpy(url->host, host, hlen);
        url->host[hlen] = '\0';
    }
    url->port = 6379;
    if (port != NULL) {
        long v;
        if (port == rest)
            return fail(err, errsize, "the port is empty");
        if (number(port, (size_t)(rest - port), 65535, &v) != 0 || v == 0)
            return fail(err, errsize, "the port is not a number from 1 to 65535");
        url->port = (uint16_t)v;
    }
    if (*rest == '?')
        return fail(err, errsize, "redis:// URLs take no query parameters (the database goes in the path: /N)");
    if (*rest == '#')
        return fail(err, errsize, "the URL has a fragment ('#'); a '#' in the password must be written %%23");
    if (*rest == '/') {
        const char *db = rest + 1;
        size_t dlen = strcspn(db, "?#");
        if (db[dlen] != '\0')
            return fail(err, errsize, "redis:// URLs take no query parameters or fragment after the database");
        if (memchr(db, '/', dlen) != NULL)
            return fail(err, errsize, "the path must be the database number alone (/N)");
        if (dlen > 0) {
            long v;
            if (number(db, dlen, INT_MAX, &v) != 0)
                return fail(err, errsize, "the database is not a number from 0 to %d", INT_MAX);
            url->db = (int)v;
        }
    }
    return 0;
}

static int parse_unix(const char *s, sff_redis_url_t *url, char *err, size_t errsize)
{
    /* user info, if any, ends at the last '@' before the path */
    const char *slash = strchr(s, '/');
    if (slash == NULL)
        return fail(err, errsize, "the socket path is missing (unix:///path/to/redis.sock)");
    const char *at = NULL;
    for (const char *p = s; p < slash; p++)
        if (*p == '@')
            at = p;
    if (at != NULL) {
        int ret = parse_userinfo(s, (size_t)(at - s), url, err, errsize);
        if (ret != 0)
            return ret;
        if (at + 1 != slash)
            return fail(err, errsize, "unix:// URLs take no host (unix:///path, or unix://:password@/path)");
    } else if (slash != s) {
        return fail(err, errsize, "unix:// URLs take no host (unix:///path, or unix://:password@/path)");
    }
    size_t plen = strcspn(slash, "?#");
    long n = decode(slash, plen, url->path, sizeof(url->path));
    if (n == -1)
        return fail(err, errsize, "the socket path has an invalid percent-encoding");
    if (n == -2)
        return fail(err, errsize, "the socket path is longer than %zu bytes", sizeof(url->path) - 1);
    if (n == 1)
        return fail(err, errsize, "the socket path is missing (unix:///path/to/redis.sock)");
    const char *q = slash + plen;
    if (*q == '#')
        return fail(err, errsize, "the URL has a fragment ('#')");
    if (*q == '?') {
        q++;
        int seen_db = 0;
        while (*q != '\0') {
            size_t len = strcspn(q, "&#");
            if (q[len] == '#')
                return fail(err, errsize, "the URL has a fragment ('#')");
            if (len >= 3 && memcmp(q, "db=", 3) == 0) {
                long v;
                if (seen_db)
                    return fail(err, errsize, "the query names db twice");
                if (number(q + 3, len - 3, INT_MAX, &v) != 0)
                    return fail(err, errsize, "the database is not a number from 0 to %d", INT_MAX);
                url->db = (int)v;
                seen_db = 1;
            } else {
                return fail(err, errsize, "unknown query parameter (unix:// URLs take only db=N)");
            }
            q += len;
            if (*q == '&') {
                q++;
                if (*q == '\0')
                    return fail(err, errsize, "the query ends with '&'");
            }
        }
        if (!seen_db)
            return fail(err, errsize, "the query is empty (unix:// URLs take only db=N)");
    }
    url->unix_socket = 1;
    return 0;
}

int sff_redis_url_parse(const char *text, sff_redis_url_t *out, char *err, size_t errsize)
{
    sff_redis_url_t url = {0};
    int ret;
    if (errsize > 0)
        err[0] = '\0';
    if (text == NULL || *text == '\0')
        return fail(err, errsize, "the URL is empty");
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return fail(err, errsize, "the URL holds a space, a control character or a non-ASCII byte (percent-encode them)");
    if (strncasecmp(text, "redis://", 8) == 0) {
        ret = parse_tcp(text + 8, &url, err, errsize);
    } else if (strncasecmp(text, "unix://", 7) == 0) {
        ret = parse_unix(text + 7, &url, err, errsize);
    } else if (strncasecmp(text, "rediss://", 9) == 0) {
        ret = fail(err, errsize, "TLS (rediss://) is not supported");
    } else {
        ret = fail(err, errsize, "the scheme must be redis:// or unix://");
    }
    if (ret == 0)
        *out = url;
    sff_redis_url_wipe(&url);
    return ret;
}

void sff_redis_url_describe(const sff_redis_url_t *url, char *buf, size_t size)
{
    char auth[300] = "";
    if (url->password[0] != '\0')
        snprintf(auth, sizeof(auth), "%s:***@", url->username);
    if (url->unix_socket) {
        if (url->db != 0)
            snprintf(buf, size, "unix://%s%s?db=%d", auth, url->path, url->db);
        else
            snprintf(buf, size, "unix://%s%s", auth, url->path);
    } else {
        int v6 = strchr(url->host, ':') != NULL;
        snprintf(buf, size, "redis://%s%s%s%s:%u/%d", auth, v6 ? "[" : "", url->host, v6 ? "]" : "", (unsigned)url->port, url->db);
    }
}

void sff_redis_url_wipe(sff_redis_url_t *url)
{
    explicit_bzero(url, sizeof(*url));
}
