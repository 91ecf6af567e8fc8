/*
 * A libFuzzer target for sff_jwt_verify(). Each input is verified as a token against an HS256
 * secret and a keys file with an RS256 and an ES256 key, twice (the second time from the cache)
 * and once more after expiry. Then it is split at its first newline into a header and a payload
 * JSON text and made into a token signed with the secret, so that the header and claims checks
 * behind the signature are reached too.
 *
 *     clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Igateway tests/fuzz/jwt.c gateway/jwt.c \
 *         -ljwt -ljansson -lssl -lcrypto -o /tmp/fuzz_jwt
 *     /tmp/fuzz_jwt -max_total_time=60 /tmp/jwt-corpus tests/fuzz/corpus/jwt
 *
 * The seeds in tests/fuzz/corpus/jwt are tokens valid for these keys until 2100 ("hs256", "rs256",
 * "es256"), an alg "none" token and a header and payload for the signing path ("signed").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "jwt.h"

#define NOW ((int64_t)1700000000)
#define SECRET "fuzz-secret-0123456789abcdef0123"

/* Public keys only: the private halves signed the seeds and were thrown away. */
static const char jwks[] = "{\"keys\": [{\"kid\": \"fuzz-rsa\", \"alg\": \"RS256\", \"kty\": \"RSA\", \"e\": \"AQAB\", \"n\": \""
                           "o0njwTAmPieUzsQSVBF-3yvcliW2LfFEx1IqwuPPUJMasGPoUUe41LeJKN06Nzd1V37zBJBN8H-ItGitqClK9cPPHfFOsfGU65Cc"
                           "AnT4dcHwT3_RE2X1puqGz3Ywed5bzYr46SwKuyxau_62ULuaoPvHxNWZkeHdBipW5k2un9Z1CK5A9828hWVRcIrYEnxK7JB1qiL1"
                           "XLvQMVO1iVixYYUIAHfRKX15fa9HyL0DELqSPZZgx8UgKOIcN4x57Ll_aJ3DzCPt-NPZLzMx3dS7aG-C994Ve2evzg8VvzkR3Qjz"
                           "TusIQApCwDgNtFWtFSHLLRu5iUxdreB6xMBH-IwxQQ"
                           "\"}, {\"kid\": \"fuzz-ec\", \"alg\": \"ES256\", \"kty\": \"EC\", \"crv\": \"P-256\", "
                           "\"x\": \"ZiJdh9vP3ZgDzHjPNjDDu2g-4K2gjNxX3L986dRQVnM\", "
                           "\"y\": \"9i2Fngbb1R3M71YnDqKaS8TRomhMug58ICn8OyIt_IQ\"}]}";

static sff_jwt_t *jwt;

static size_t b64url(const unsigned char *in, size_t len, char *out)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i, n = 0;

    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[n++] = chars[v >> 18];
        out[n++] = chars[(v >> 12) & 63];
        out[n++] = chars[(v >> 6) & 63];
        out[n++] = chars[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[n++] = chars[v >> 18];
        out[n++] = chars[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[n++] = chars[v >> 18];
        out[n++] = chars[(v >> 12) & 63];
        out[n++] = chars[(v >> 6) & 63];
    }
    return n;
}

static void verify(const char *token, size_t len, int64_t now)
{
    json_t *claims = NULL;
    const char *why = NULL;

    if (sff_jwt_verify(jwt, token, len, now, &claims, &why) == 0) {
        if (!json_is_object(claims))
            abort();
        json_decref(claims);
    } else if (claims != NULL || why == NULL || strlen(why) > 64) {
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[] = "/tmp/sff-fuzz-jwks-XXXXXX", err[256];
    sff_jwt_config_t config = {SECRET, path, "fuzz", "fuzz", 60, 64};
    int fd;

    (void)argc;
    (void)argv;
    if ((fd = mkstemp(path)) < 0 || write(fd, jwks, sizeof(jwks) - 1) != (ssize_t)(sizeof(jwks) - 1) || close(fd) != 0) {
        perror(path);
        abort();
    }
    jwt = sff_jwt_create(&config, err, sizeof(err));
    unlink(path);
    if (jwt == NULL || sff_jwt_key_count(jwt) != 3) {
        fprintf(stderr, "sff_jwt_create: %s\n", jwt == NULL ? err : "wrong key count");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *newline;
    char *token;
    size_t header_len, n;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen;

    /* A copy, so that a read past the end of the token is caught. */
    if ((token = malloc(size + 1)) == NULL)
        return 0;
    memcpy(token, data, size);
    verify(token, size, NOW);
    verify(token, size, NOW);
    verify(token, size, INT64_C(4102444800) + 61);
    free(token);

    if ((newline = memchr(data, '\n', size)) == NULL)
        return 0;
    header_len = (size_t)(newline - data);
    if ((token = malloc((size + 2) / 3 * 4 + 128)) == NULL)
        return 0;
    n = b64url(data, header_len, token);
    token[n++] = '.';
    n += b64url(newline + 1, size - header_len - 1, token + n);
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)token, n, mac, &maclen);
    token[n++] = '.';
    n += b64url(mac, maclen, token + n);
    verify(token, n, NOW);
    verify(token, n, NOW);
    free(token);
    return 0;
}
