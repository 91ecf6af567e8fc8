#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "lib/setup.h"

const char *tc_build_path(const char *rel)
{
    static char buf[8400];
    const char *bin = getenv("SFF_BIN");
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", bin != NULL ? bin : "build/sff");
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    snprintf(buf, sizeof(buf), "%s/%s", dir, rel);
    return buf;
}

int tc_functions_dir(const char *dir, char *out, size_t size)
{
    char src[4096], dst[8400];
    snprintf(out, size, "%s/functions", dir);
    if (mkdir(out, 0755) != 0)
        return -1;
    const char *mods[] = {"functions/examples.so", "tests/functions/fixture.so"};
    const char *names[] = {"examples.so", "fixture.so"};
    for (int i = 0; i < 2; i++) {
        const char *p = tc_build_path(mods[i]);
        if (realpath(p, src) == NULL) {
            fprintf(stderr, "missing %s\n", p);
            return -1;
        }
        snprintf(dst, sizeof(dst), "%s/%s", out, names[i]);
        if (symlink(src, dst) != 0)
            return -1;
    }
    return 0;
}

static char *b64url(const unsigned char *in, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return out;
}

char *tc_jwt_hs256(const char *secret, const char *header_json, const char *payload_json)
{
    return tc_jwt_hmac("SHA256", secret, secret != NULL ? strlen(secret) : 0, header_json, payload_json);
}

char *tc_jwt_hmac(const char *md, const void *secret, size_t secret_len, const char *header_json, const char *payload_json)
{
    char *h = b64url((const unsigned char *)header_json, strlen(header_json));
    char *p = b64url((const unsigned char *)payload_json, strlen(payload_json));
    size_t n = strlen(h) + strlen(p) + 200;
    char *tok = malloc(n);
    snprintf(tok, n, "%s.%s", h, p);
    if (secret != NULL) {
        unsigned char mac[64];
        unsigned int maclen = 0;
        HMAC(EVP_get_digestbyname(md), secret, (int)secret_len, (unsigned char *)tok, strlen(tok), mac, &maclen);
        char *s = b64url(mac, maclen);
        strcat(tok, ".");
        strcat(tok, s);
        free(s);
    } else {
        strcat(tok, ".");
    }
    free(h);
    free(p);
    return tok;
}

char *tc_token(const char *sub, const char *role, int ttl)
{
    char cmd[1024], buf[2048];
    snprintf(cmd, sizeof(cmd), "SFF_JWT_SECRET='%s' '%s' token --sub '%s' --ttl %d %s%s%s", TC_SECRET, tc_build_path("sff"), sub,
             ttl, role != NULL ? "--role '" : "", role != NULL ? role : "", role != NULL ? "'" : "");
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return NULL;
    char *ok = fgets(buf, sizeof(buf), f);
    if (pclose(f) != 0 || ok == NULL)
        return NULL;
    buf[strcspn(buf, "\n")] = '\0';
    return strdup(buf);
}

json_t *tc_json(const char *body)
{
    return body != NULL ? json_loads(body, JSON_DECODE_ANY, NULL) : NULL;
}

int tc_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int tc_build_fixture(const char *path, const char *flags)
{
    const char *top = getenv("SFF_TOP");
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    /* build beside, then rename: the gateway must never see a half-written file */
    if (tc_sh(
            "gcc -std=c11 -O1 -fPIC -shared -fvisibility=hidden -I'%s/functions' %s -o '%s' '%s/tests/functions/fixture/fixture.c'",
            top != NULL ? top : ".", flags, tmp, top != NULL ? top : ".") != 0)
        return -1;
    return rename(tmp, path);
}
