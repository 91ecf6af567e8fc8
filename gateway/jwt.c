/*
 * jwt.c - JWT verification: a strict parser of the compact serialization, signatures checked with
 * OpenSSL against keys parsed once at load, claims checked against the clock, and a cache of
 * verified tokens.
 *
 * Signatures are verified with OpenSSL, not with libjwt 1.10's jwt_decode(): that function refuses
 * every "typ" other than "JWT" (so RFC 9068 "at+jwt" access tokens), accepts "alg" in any case,
 * ignores "crit", decodes base64 leniently and parses the PEM key again on each call. libjwt signs
 * (sff_jwt_sign_hs256()).
 *
 * Limits: a token is at most MAX_TOKEN_LEN bytes, its header and claims nest at most MAX_JSON_DEPTH
 * deep, a keys file is at most MAX_KEYS_FILE_LEN bytes with at most MAX_KEYS keys, an RSA modulus at least MIN_RSA_BITS bits, and
 * the cache at most MAX_CACHE_SIZE entries (a larger cache_size is reduced to it). A secret of any non-empty length is accepted
 * (RFC 7518 asks for at least the hash size, 32 bytes for HS256; that is the operator's duty).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/bn.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include "jwt.h"

/* libjwt's own header cannot be included: with -Igateway, <jwt.h> names gateway/jwt.h. These are
 * the declarations of libjwt 1.10's public API that sff_jwt_sign_hs256() uses. */
struct jwt;
typedef enum jwt_alg { LIBJWT_ALG_NONE = 0, LIBJWT_ALG_HS256 = 1 } jwt_alg_t;
int jwt_new(struct jwt **jwt);
void jwt_free(struct jwt *jwt);
int jwt_add_grants_json(struct jwt *jwt, const char *json);
int jwt_add_header(struct jwt *jwt, const char *header, const char *val);
int jwt_set_alg(struct jwt *jwt, jwt_alg_t alg, const unsigned char *key, int len);
char *jwt_encode_str(struct jwt *jwt);

#define MAX_TOKEN_LEN 16384
#define MAX_CACHED_TOKEN_LEN 2048
#define MAX_KEYS_FILE_LEN (1024 * 1024)
#define MAX_KEYS 1024
#define MAX_SECRET_LEN 65536
#define MIN_RSA_BITS 2048
#define MAX_CACHE_SIZE ((size_t)1 << 20)
#define MAX_LEEWAY_S ((int64_t)1 << 31)
#define MAX_JSON_DEPTH 32
#define CACHE_NONE UINT32_MAX

typedef enum en_alg_t { ALG_HS256, ALG_HS384, ALG_HS512, ALG_RS256, ALG_ES256, ALG_COUNT } alg_t;

static const char *const alg_names[ALG_COUNT] = {"HS256", "HS384", "HS512", "RS256", "ES256"};

typedef struct st_jwk_t {
    char *kid;
    alg_t alg;
    /* HS*: the HMAC key. */
    unsigned char *secret;
    size_t secret_len;
    /* RS256, ES256: the public key. */
    EVP_PKEY *pkey;
} jwk_t;

typedef struct st_keyset_t {
    jwk_t *keys;
    size_t count;
} keyset_t;

/* The time claims of a verified token, kept so that a cache hit is checked without touching JSON. */
typedef struct st_times_t {
    double exp;
    double nbf;
    double iat;
    int has_nbf;
    int has_iat;
} times_t;

typedef struct st_cache_entry_t {
    /* NULL when the slot is free. */
    json_t *claims;
    char *token;
    size_t len;
    uint64_t hash;
    times_t times;
    /* The next entry of the same bucket, or CACHE_NONE. */
    uint32_t next;
} cache_entry_t;

/* A hash table whose entries live in a ring: an insert takes the slot after the previous one and
 * evicts what was there, so the oldest entry goes first and every operation is O(1) on average. */
typedef struct st_cache_t {
    cache_entry_t *entries;
    size_t capacity;
    size_t next_slot;
    uint32_t *buckets;
    size_t bucket_mask;
    uint64_t sipkey[2];
    uint64_t hits;
    uint64_t misses;
} cache_t;

struct st_sff_jwt_t {
    char *secret;
    char *keys_file;
    char *issuer;
    char *audience;
    int64_t leeway_s;
    keyset_t keyset;
    cache_t cache;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list args;

    if (err == NULL || errlen == 0)
        return;
    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
}

/* Copies at most size - 1 characters of s into buf for a message, each unprintable byte as '?'. */
static const char *printable(const char *s, char *buf, size_t size)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i + 1 < size; ++i)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

static char *dupstr(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url into out, which has room for len * 3 / 4 bytes. Refuses any other
 * character (so padding and whitespace), a length of 4n + 1 and nonzero unused trailing bits, so
 * that a byte string has exactly one accepted encoding. */
static int b64url_decode(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
    uint32_t acc = 0;
    size_t i, n = 0;
    int bits = 0;

    if (len % 4 == 1)
        return -1;
    for (i = 0; i != len; ++i) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    *outlen = n;
    return 0;
}

/* Decodes a base64url JSON member into a new malloc()ed buffer. */
static unsigned char *b64url_decode_alloc(const char *in, size_t *outlen)
{
    size_t len = strlen(in);
    unsigned char *out = malloc(len * 3 / 4 + 1);

    if (out == NULL)
        return NULL;
    if (b64url_decode(in, len, out, outlen) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static void sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl64(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl64(v[0], 32);
    v[2] += v[3];
    v[3] = rotl64(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl64(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl64(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl64(v[2], 32);
}

/* SipHash-2-4 of in under key k. */
static uint64_t siphash(const uint64_t k[2], const unsigned char *in, size_t len)
{
    uint64_t v[4] = {0x736f6d6570736575ULL ^ k[0], 0x646f72616e646f6dULL ^ k[1], 0x6c7967656e657261ULL ^ k[0],
                     0x7465646279746573ULL ^ k[1]};
    uint64_t m;
    size_t i, j, end = len & ~(size_t)7;

    for (i = 0; i != end; i += 8) {
        m = 0;
        for (j = 0; j != 8; ++j)
            m |= (uint64_t)in[i + j] << (8 * j);
        v[3] ^= m;
        sipround(v);
        sipround(v);
        v[0] ^= m;
    }
    m = (uint64_t)len << 56;
    for (j = 0; j != (len & 7); ++j)
        m |= (uint64_t)in[end + j] << (8 * j);
    v[3] ^= m;
    sipround(v);
    sipround(v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for (j = 0; j != 4; ++j)
        sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static void jwk_clear(jwk_t *key)
{
    free(key->kid);
    if (key->secret != NULL) {
        OPENSSL_cleanse(key->secret, key->secret_len);
        free(key->secret);
    }
    EVP_PKEY_free(key->pkey);
    memset(key, 0, sizeof(*key));
}

static void keyset_clear(keyset_t *set)
{
    size_t i;

    for (i = 0; i != set->count; ++i)
        jwk_clear(&set->keys[i]);
    free(set->keys);
    set->keys = NULL;
    set->count = 0;
}

static const jwk_t *keyset_find(const keyset_t *set, const char *kid)
{
    size_t i;

    for (i = 0; i != set->count; ++i)
        if (strcmp(set->keys[i].kid, kid) == 0)
            return &set->keys[i];
    return NULL;
}

/* Checks a public key after import: that an RSA key is RSA (not RSA-PSS) of at least MIN_RSA_BITS
 * bits, that an EC key is on P-256, and OpenSSL's public key check (for EC a point on the curve,
 * for RSA among others an odd exponent above 1). Returns NULL or a reason. */
static const char *check_pkey(EVP_PKEY *pkey, alg_t alg)
{
    const char *why = NULL;
    EVP_PKEY_CTX *ctx;

    if (alg == ALG_RS256) {
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            return "not an RSA key";
        if (EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS)
            return "RSA modulus shorter than 2048 bits";
    } else {
        char group[32];
        if (!EVP_PKEY_is_a(pkey, "EC"))
            return "not an EC key";
        if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) || strcmp(group, "prime256v1") != 0)
            return "EC key not on P-256";
    }
    if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL)
        return "out of memory";
    if (EVP_PKEY_public_check(ctx) != 1)
        why = "fails OpenSSL's public key check";
    EVP_PKEY_CTX_free(ctx);
    return why;
}

static EVP_PKEY *pkey_from_pem(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pkey;

    if (bio == NULL)
        return NULL;
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return pkey;
}

static EVP_PKEY *pkey_from_rsa_jwk(json_t *obj, const char **why)
{
    const char *n_b64 = json_string_value(json_object_get(obj, "n")), *e_b64 = json_string_value(json_object_get(obj, "e"));
    unsigned char *n_bin = NULL, *e_bin = NULL;
    size_t n_len, e_len;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;

    if (n_b64 == NULL || e_b64 == NULL) {
        *why = "no \"n\" and \"e\" strings (nor \"pem\")";
        goto Exit;
    }
    if ((n_bin = b64url_decode_alloc(n_b64, &n_len)) == NULL || (e_bin = b64url_decode_alloc(e_b64, &e_len)) == NULL ||
        n_len == 0 || e_len == 0) {
        *why = "\"n\" or \"e\" is not base64url";
        goto Exit;
    }
    *why = "OpenSSL cannot import it";
    if ((n = BN_bin2bn(n_bin, (int)n_len, NULL)) == NULL || (e = BN_bin2bn(e_bin, (int)e_len, NULL)) == NULL)
        goto Exit;
    if ((bld = OSSL_PARAM_BLD_new()) == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto Exit;
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        pkey = NULL;
        goto Exit;
    }
    *why = NULL;

Exit:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(n_bin);
    free(e_bin);
    return pkey;
}

static EVP_PKEY *pkey_from_ec_jwk(json_t *obj, const char **why)
{
    const char *x_b64 = json_string_value(json_object_get(obj, "x")), *y_b64 = json_string_value(json_object_get(obj, "y"));
    unsigned char *x = NULL, *y = NULL, point[65];
    size_t x_len, y_len;
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                           OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)), OSSL_PARAM_END};
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;

    if (x_b64 == NULL || y_b64 == NULL) {
        *why = "no \"x\" and \"y\" strings (nor \"pem\")";
        goto Exit;
    }
    if ((x = b64url_decode_alloc(x_b64, &x_len)) == NULL || (y = b64url_decode_alloc(y_b64, &y_len)) == NULL || x_len != 32 ||
        y_len != 32) {
        *why = "\"x\" or \"y\" is not 32 bytes of base64url";
        goto Exit;
    }
    point[0] = 0x04;
    memcpy(point + 1, x, 32);
    memcpy(point + 33, y, 32);
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        *why = "not a point on P-256";
        pkey = NULL;
        goto Exit;
    }
    *why = NULL;

Exit:
    EVP_PKEY_CTX_free(ctx);
    free(x);
    free(y);
    return pkey;
}

/* Fills key from one member of "keys". Returns 0, or -1 with a message in err that names the key
 * by its index and kid and never quotes key material. */
static int parse_jwk(json_t *obj, size_t index, const char *path, jwk_t *key, char *err, size_t errlen)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi"};
    const char *kid, *alg, *kty, *why = NULL;
    json_t *pem, *use;
    char kidbuf[65];
    size_t i;
    int a;

    memset(key, 0, sizeof(*key));
    if (!json_is_object(obj)) {
        seterr(err, errlen, "%s: key #%zu is not an object", path, index);
        return -1;
    }
    if ((kid = json_string_value(json_object_get(obj, "kid"))) == NULL || kid[0] == '\0') {
        seterr(err, errlen, "%s: key #%zu: no \"kid\" string", path, index);
        return -1;
    }
    printable(kid, kidbuf, sizeof(kidbuf));
    if ((alg = json_string_value(json_object_get(obj, "alg"))) == NULL) {
        why = "no \"alg\" string";
        goto Error;
    }
    for (a = 0; a != ALG_COUNT; ++a)
        if (strcmp(alg, alg_names[a]) == 0)
            break;
    if ((key->alg = (alg_t)a) == ALG_COUNT) {
        why = "\"alg\" is not one of HS256, HS384, HS512, RS256, ES256";
        goto Error;
    }
    if ((kty = json_string_value(json_object_get(obj, "kty"))) == NULL) {
        why = "no \"kty\" string";
        goto Error;
    }
    if ((use = json_object_get(obj, "use")) != NULL && !(json_is_string(use) && strcmp(json_string_value(use), "sig") == 0)) {
        why = "\"use\" is not \"sig\"";
        goto Error;
    }
    for (i = 0; i != sizeof(private_members) / sizeof(private_members[0]); ++i) {
        if (json_object_get(obj, private_members[i]) != NULL) {
            why = "private key members: a keys file holds public keys only";
            goto Error;
        }
    }
    pem = json_object_get(obj, "pem");
    if (pem != NULL && !json_is_string(pem)) {
        why = "\"pem\" is not a string";
        goto Error;
    }

    switch (key->alg) {
    case ALG_HS256:
    case ALG_HS384:
    case ALG_HS512: {
        const char *k;
        if (strcmp(kty, "oct") != 0) {
            why = "an HS* \"alg\" needs \"kty\" \"oct\"";
            goto Error;
        }
        if (pem != NULL) {
            why = "\"pem\" is only for RSA and EC keys";
            goto Error;
        }
        if ((k = json_string_value(json_object_get(obj, "k"))) == NULL) {
            why = "no \"k\" string";
            goto Error;
        }
        if ((key->secret = b64url_decode_alloc(k, &key->secret_len)) == NULL || key->secret_len == 0) {
            why = "\"k\" is empty or not base64url";
            goto Error;
        }
    } break;
    case ALG_RS256:
    case ALG_ES256: {
        int is_rsa = key->alg == ALG_RS256;
        const char *crv;
        if (strcmp(kty, is_rsa ? "RSA" : "EC") != 0) {
            why = is_rsa ? "RS256 needs \"kty\" \"RSA\"" : "ES256 needs \"kty\" \"EC\"";
            goto Error;
        }
        if (!is_rsa && ((crv = json_string_value(json_object_get(obj, "crv"))) == NULL || strcmp(crv, "P-256") != 0)) {
            why = "ES256 needs \"crv\" \"P-256\"";
            goto Error;
        }
        if (pem != NULL) {
            if (json_object_get(obj, is_rsa ? "n" : "x") != NULL || json_object_get(obj, is_rsa ? "e" : "y") != NULL) {
                why = is_rsa ? "both \"pem\" and \"n\"/\"e\"" : "both \"pem\" and \"x\"/\"y\"";
                goto Error;
            }
            if ((key->pkey = pkey_from_pem(json_string_value(pem))) == NULL) {
                why = "\"pem\" is not a PEM public key";
                goto Error;
            }
        } else if ((key->pkey = is_rsa ? pkey_from_rsa_jwk(obj, &why) : pkey_from_ec_jwk(obj, &why)) == NULL) {
            goto Error;
        }
        if ((why = check_pkey(key->pkey, key->alg)) != NULL)
            goto Error;
    } break;
    default:
        break;
    }

    if ((key->kid = strdup(kid)) == NULL) {
        why = "out of memory";
        goto Error;
    }
    return 0;

Error:
    ERR_clear_error();
    seterr(err, errlen, "%s: key #%zu (kid \"%s\"): %s", path, index, kidbuf, why);
    jwk_clear(key);
    return -1;
}

/* Reads a whole file of at most MAX_KEYS_FILE_LEN bytes into a NUL-terminated malloc()ed buffer. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *fp;
    char *buf;
    size_t n;

    if ((fp = fopen(path, "rb")) == NULL) {
        seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if ((buf = malloc(MAX_KEYS_FILE_LEN + 1)) == NULL) {
        fclose(fp);
        seterr(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    n = fread(buf, 1, MAX_KEYS_FILE_LEN + 1, fp);
    if (ferror(fp)) {
        seterr(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto Error;
    }
    if (n > MAX_KEYS_FILE_LEN) {
        seterr(err, errlen, "%s: larger than %d bytes", path, MAX_KEYS_FILE_LEN);
        goto Error;
    }
    fclose(fp);
    buf[n] = '\0';
    *len = n;
    return buf;

Error:
    fclose(fp);
    free(buf);
    return NULL;
}

/* Builds the keys of jwt's configuration into set: the secret's key, then the keys file's. Returns
 * 0, or -1 with a message in err and set empty. */
static int load_keys(const sff_jwt_t *jwt, keyset_t *set, char *err, size_t errlen)
{
    json_t *doc = NULL, *keys = NULL;
    json_error_t jerr;
    char *text = NULL, kidbuf[65];
    size_t len = 0, i, max = 1;

    memset(set, 0, sizeof(*set));
    if (jwt->keys_file != NULL) {
        if ((text = read_file(jwt->keys_file, &len, err, errlen)) == NULL)
            goto Error;
        /* jansson's error text quotes the input, which may be a secret: only the position is reported. */
        if ((doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
            seterr(err, errlen, "%s: invalid JSON (or a duplicate member) at line %d, column %d", jwt->keys_file, jerr.line,
                   jerr.column);
            goto Error;
        }
        if (!json_is_object(doc) || !json_is_array(keys = json_object_get(doc, "keys"))) {
            seterr(err, errlen, "%s: not an object with a \"keys\" array", jwt->keys_file);
            goto Error;
        }
        if (json_array_size(keys) > MAX_KEYS) {
            seterr(err, errlen, "%s: more than %d keys", jwt->keys_file, MAX_KEYS);
            goto Error;
        }
        max += json_array_size(keys);
    }
    if ((set->keys = calloc(max, sizeof(set->keys[0]))) == NULL) {
        seterr(err, errlen, "out of memory");
        goto Error;
    }

    if (jwt->secret != NULL) {
        jwk_t *key = &set->keys[set->count];
        size_t secret_len = strlen(jwt->secret);
        if (secret_len == 0 || secret_len > MAX_SECRET_LEN) {
            seterr(err, errlen, "SFF_JWT_SECRET is empty or longer than %d bytes", MAX_SECRET_LEN);
            goto Error;
        }
        key->alg = ALG_HS256;
        key->secret_len = secret_len;
        if ((key->kid = strdup("default")) == NULL || (key->secret = malloc(secret_len)) == NULL) {
            jwk_clear(key);
            seterr(err, errlen, "out of memory");
            goto Error;
        }
        memcpy(key->secret, jwt->secret, secret_len);
        ++set->count;
    }
    if (doc != NULL) {
        for (i = 0; i != json_array_size(keys); ++i) {
            jwk_t *key = &set->keys[set->count];
            if (parse_jwk(json_array_get(keys, i), i, jwt->keys_file, key, err, errlen) != 0)
                goto Error;
            if (keyset_find(set, key->kid) != NULL) {
                seterr(err, errlen, "%s: key #%zu (kid \"%s\"): kid not unique%s", jwt->keys_file, i,
                       printable(key->kid, kidbuf, sizeof(kidbuf)),
                       strcmp(key->kid, "default") == 0 && jwt->secret != NULL ? " (SFF_JWT_SECRET is kid \"default\")" : "");
                jwk_clear(key);
                goto Error;
            }
            ++set->count;
        }
    }
    json_decref(doc);
    if (text != NULL)
        OPENSSL_cleanse(text, len);
    free(text);
    return 0;

Error:
    json_decref(doc);
    if (text != NULL)
        OPENSSL_cleanse(text, len);
    free(text);
    keyset_clear(set);
    return -1;
}

static void cache_remove(cache_t *cache, uint32_t index)
{
    cache_entry_t *entry = &cache->entries[index];
    uint32_t *link = &cache->buckets[entry->hash & cache->bucket_mask];

    while (*link != index)
        link = &cache->entries[*link].next;
    *link = entry->next;
    json_decref(entry->claims);
    free(entry->token);
    memset(entry, 0, sizeof(*entry));
    entry->next = CACHE_NONE;
}

static void cache_clear(cache_t *cache)
{
    size_t i;

    for (i = 0; i != cache->capacity; ++i)
        if (cache->entries[i].claims != NULL)
            cache_remove(cache, (uint32_t)i);
    cache->next_slot = 0;
}

static int cache_init(cache_t *cache, size_t capacity)
{
    size_t nbuckets = 1, i;

    memset(cache, 0, sizeof(*cache));
    if (capacity == 0)
        return 0;
    if (capacity > MAX_CACHE_SIZE)
        capacity = MAX_CACHE_SIZE;
    while (nbuckets < capacity * 2)
        nbuckets *= 2;
    if (RAND_bytes((unsigned char *)cache->sipkey, sizeof(cache->sipkey)) != 1) {
        ERR_clear_error();
        return -1;
    }
    if ((cache->entries = calloc(capacity, sizeof(cache->entries[0]))) == NULL ||
        (cache->buckets = malloc(nbuckets * sizeof(cache->buckets[0]))) == NULL) {
        free(cache->entries);
        cache->entries = NULL;
        return -1;
    }
    for (i = 0; i != capacity; ++i)
        cache->entries[i].next = CACHE_NONE;
    for (i = 0; i != nbuckets; ++i)
        cache->buckets[i] = CACHE_NONE;
    cache->capacity = capacity;
    cache->bucket_mask = nbuckets - 1;
    return 0;
}

static void cache_dispose(cache_t *cache)
{
    if (cache->capacity != 0)
        cache_clear(cache);
    free(cache->entries);
    free(cache->buckets);
}

static uint32_t cache_find(const cache_t *cache, const char *token, size_t len, uint64_t hash)
{
    uint32_t i;

    for (i = cache->buckets[hash & cache->bucket_mask]; i != CACHE_NONE; i = cache->entries[i].next) {
        const cache_entry_t *entry = &cache->entries[i];
        if (entry->hash == hash && entry->len == len && CRYPTO_memcmp(entry->token, token, len) == 0)
            return i;
    }
    return CACHE_NONE;
}

/* Adds a verified token, evicting the oldest entry when full. Nothing is cached when out of memory. */
static void cache_insert(cache_t *cache, const char *token, size_t len, uint64_t hash, json_t *claims, const times_t *times)
{
    uint32_t index = (uint32_t)cache->next_slot;
    cache_entry_t *entry = &cache->entries[index];
    char *copy;

    if ((copy = malloc(len)) == NULL)
        return;
    memcpy(copy, token, len);
    if (entry->claims != NULL)
        cache_remove(cache, index);
    cache->next_slot = (cache->next_slot + 1) % cache->capacity;
    entry->claims = json_incref(claims);
    entry->token = copy;
    entry->len = len;
    entry->hash = hash;
    entry->times = *times;
    entry->next = cache->buckets[hash & cache->bucket_mask];
    cache->buckets[hash & cache->bucket_mask] = index;
}

/* Reads the time claims. Returns NULL or a reason: "exp" is required, and each must be a number. */
static const char *read_times(json_t *claims, times_t *times)
{
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf"), *iat = json_object_get(claims, "iat");

    if (exp == NULL)
        return "missing exp";
    if (!json_is_number(exp))
        return "exp not a number";
    if (nbf != NULL && !json_is_number(nbf))
        return "nbf not a number";
    if (iat != NULL && !json_is_number(iat))
        return "iat not a number";
    times->exp = json_number_value(exp);
    times->has_nbf = nbf != NULL;
    times->nbf = times->has_nbf ? json_number_value(nbf) : 0;
    times->has_iat = iat != NULL;
    times->iat = times->has_iat ? json_number_value(iat) : 0;
    return NULL;
}

/* Checks the time claims at now with leeway seconds of clock skew allowed each way. Returns NULL or
 * a reason. */
static const char *check_times(const times_t *times, int64_t now, int64_t leeway)
{
    double n = (double)now, l = (double)leeway;

    if (n > times->exp + l)
        return "expired";
    if (times->has_nbf && n + l < times->nbf)
        return "not yet valid";
    if (times->has_iat && times->iat > n + l)
        return "issued in the future";
    return NULL;
}

static int json_string_equals(json_t *value, const char *s)
{
    size_t len = strlen(s);

    return json_is_string(value) && json_string_length(value) == len && memcmp(json_string_value(value), s, len) == 0;
}

/* Checks "iss" and "aud" against the configured issuer and audience. Returns NULL or a reason. */
static const char *check_iss_aud(const sff_jwt_t *jwt, json_t *claims)
{
    if (jwt->issuer != NULL && !json_string_equals(json_object_get(claims, "iss"), jwt->issuer))
        return "issuer mismatch";
    if (jwt->audience != NULL) {
        json_t *aud = json_object_get(claims, "aud"), *value;
        size_t i;
        if (json_is_array(aud)) {
            json_array_foreach(aud, i, value)
            {
                if (json_string_equals(value, jwt->audience))
                    return NULL;
            }
            return "audience mismatch";
        }
        if (!json_string_equals(aud, jwt->audience))
            return "audience mismatch";
    }
    return NULL;
}

static int digest_verify(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen, const char *input, size_t inlen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
         EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)input, inlen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* Converts a JOSE ECDSA signature (r || s, 32 bytes each, RFC 7518 section 3.4) to the DER that
 * OpenSSL verifies, and verifies it. */
static int ecdsa_verify(EVP_PKEY *pkey, const unsigned char *sig, size_t siglen, const char *input, size_t inlen)
{
    ECDSA_SIG *ecsig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    int derlen, ret = -1;

    if (siglen != 64)
        return -1;
    if ((ecsig = ECDSA_SIG_new()) == NULL || (r = BN_bin2bn(sig, 32, NULL)) == NULL || (s = BN_bin2bn(sig + 32, 32, NULL)) == NULL)
        goto Exit;
    if (!ECDSA_SIG_set0(ecsig, r, s))
        goto Exit;
    r = s = NULL;
    if ((derlen = i2d_ECDSA_SIG(ecsig, &der)) <= 0)
        goto Exit;
    ret = digest_verify(pkey, der, (size_t)derlen, input, inlen);

Exit:
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(ecsig);
    return ret;
}

/* Verifies sig over input (the token up to its second '.') with key, whose alg the token's header
 * has already been checked to name. Returns 0 or -1. */
static int verify_signature(const jwk_t *key, const char *input, size_t inlen, const unsigned char *sig, size_t siglen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    const EVP_MD *md;
    int ret = -1;

    switch (key->alg) {
    case ALG_HS256:
    case ALG_HS384:
    case ALG_HS512:
        md = key->alg == ALG_HS256 ? EVP_sha256() : key->alg == ALG_HS384 ? EVP_sha384() : EVP_sha512();
        if (HMAC(md, key->secret, (int)key->secret_len, (const unsigned char *)input, inlen, mac, &maclen) != NULL &&
            maclen == siglen && CRYPTO_memcmp(mac, sig, siglen) == 0)
            ret = 0;
        OPENSSL_cleanse(mac, sizeof(mac));
        break;
    case ALG_RS256:
        if (siglen == (size_t)EVP_PKEY_get_size(key->pkey))
            ret = digest_verify(key->pkey, sig, siglen, input, inlen);
        break;
    case ALG_ES256:
        ret = ecdsa_verify(key->pkey, sig, siglen, input, inlen);
        break;
    default:
        break;
    }
    if (ret != 0)
        ERR_clear_error();
    return ret;
}

/* Parses a decoded header or claims text: a JSON object or array without duplicate members, nested
 * at most MAX_JSON_DEPTH deep. The depth is checked first (scanning strings correctly) because
 * jansson recurses once per level, up to 2048 levels and over 128 KiB of stack, and the header is
 * parsed before the signature is checked. Returns a new reference or NULL. */
static json_t *parse_json(const unsigned char *text, size_t len)
{
    int depth = 0, in_string = 0;
    size_t i;

    for (i = 0; i < len; ++i) {
        unsigned char c = text[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > MAX_JSON_DEPTH)
                return NULL;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL);
}

/* Checks the decoded JOSE header and picks its key. Returns NULL and sets *key, or a reason. */
static const char *check_header(const sff_jwt_t *jwt, json_t *header, const jwk_t **key)
{
    json_t *alg = json_object_get(header, "alg"), *typ = json_object_get(header, "typ"), *kid = json_object_get(header, "kid");

    if (!json_is_string(alg))
        return "malformed token";
    if (json_object_get(header, "crit") != NULL)
        return "unsupported critical header";
    if (typ != NULL && !(json_is_string(typ) &&
                         (strcasecmp(json_string_value(typ), "JWT") == 0 || strcasecmp(json_string_value(typ), "at+jwt") == 0)))
        return "unsupported token type";
    if (kid != NULL) {
        if (!json_is_string(kid))
            return "malformed token";
        *key = keyset_find(&jwt->keyset, json_string_value(kid));
    } else if ((*key = keyset_find(&jwt->keyset, "default")) == NULL && jwt->keyset.count == 1) {
        *key = &jwt->keyset.keys[0];
    }
    if (*key == NULL)
        return "unknown key";
    /* The exact, case-sensitive name: "none", "hs256" and an HMAC alg against a public key fail here. */
    if (strcmp(json_string_value(alg), alg_names[(*key)->alg]) != 0)
        return "algorithm not allowed for key";
    return NULL;
}

/* Verifies a token that is not in the cache. Returns the claims (a new reference) and fills times,
 * or returns NULL and sets *why. */
static json_t *verify_token(const sff_jwt_t *jwt, const char *token, size_t len, int64_t now, times_t *times, const char **why)
{
    const char *dot1, *dot2, *payload, *sig;
    size_t header_len, payload_len, sig_len, n;
    unsigned char *buf;
    json_t *header = NULL, *claims = NULL;
    const jwk_t *key = NULL;

    *why = "malformed token";
    if ((dot1 = memchr(token, '.', len)) == NULL || (dot2 = memchr(dot1 + 1, '.', len - (dot1 + 1 - token))) == NULL ||
        memchr(dot2 + 1, '.', len - (dot2 + 1 - token)) != NULL)
        return NULL;
    header_len = dot1 - token;
    payload = dot1 + 1;
    payload_len = dot2 - payload;
    sig = dot2 + 1;
    sig_len = len - (sig - token);
    if (header_len == 0 || payload_len == 0)
        return NULL;
    if ((buf = malloc(len)) == NULL) {
        *why = "out of memory";
        return NULL;
    }

    /* The header is the only part parsed before the signature is verified. */
    if (b64url_decode(token, header_len, buf, &n) != 0 || (header = parse_json(buf, n)) == NULL || !json_is_object(header))
        goto Exit;
    if ((*why = check_header(jwt, header, &key)) != NULL)
        goto Exit;
    *why = "malformed token";
    if (b64url_decode(sig, sig_len, buf, &n) != 0)
        goto Exit;
    *why = "bad signature";
    if (n == 0 || verify_signature(key, token, dot2 - token, buf, n) != 0)
        goto Exit;

    *why = "malformed token";
    if (b64url_decode(payload, payload_len, buf, &n) != 0 || (claims = parse_json(buf, n)) == NULL)
        goto Exit;
    if (!json_is_object(claims)) {
        *why = "claims not an object";
        goto Error;
    }
    if ((*why = read_times(claims, times)) != NULL || (*why = check_times(times, now, jwt->leeway_s)) != NULL ||
        (*why = check_iss_aud(jwt, claims)) != NULL)
        goto Error;
    *why = NULL;
    goto Exit;

Error:
    json_decref(claims);
    claims = NULL;
Exit:
    json_decref(header);
    free(buf);
    return claims;
}

sff_jwt_t *sff_jwt_create(const sff_jwt_config_t *config, char *err, size_t errlen)
{
    sff_jwt_t *jwt;

    if ((jwt = calloc(1, sizeof(*jwt))) == NULL) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    if ((config->secret != NULL && (jwt->secret = dupstr(config->secret)) == NULL) ||
        (config->keys_file != NULL && (jwt->keys_file = dupstr(config->keys_file)) == NULL) ||
        (config->issuer != NULL && (jwt->issuer = dupstr(config->issuer)) == NULL) ||
        (config->audience != NULL && (jwt->audience = dupstr(config->audience)) == NULL)) {
        seterr(err, errlen, "out of memory");
        goto Error;
    }
    jwt->leeway_s = config->leeway_s < 0 ? 0 : config->leeway_s > MAX_LEEWAY_S ? MAX_LEEWAY_S : config->leeway_s;
    if (load_keys(jwt, &jwt->keyset, err, errlen) != 0)
        goto Error;
    if (cache_init(&jwt->cache, config->cache_size) != 0) {
        seterr(err, errlen, "cannot set up the token cache: out of memory or no randomness");
        goto Error;
    }
    return jwt;

Error:
    sff_jwt_destroy(jwt);
    return NULL;
}

void sff_jwt_destroy(sff_jwt_t *jwt)
{
    if (jwt == NULL)
        return;
    cache_dispose(&jwt->cache);
    keyset_clear(&jwt->keyset);
    if (jwt->secret != NULL) {
        OPENSSL_cleanse(jwt->secret, strlen(jwt->secret));
        free(jwt->secret);
    }
    free(jwt->keys_file);
    free(jwt->issuer);
    free(jwt->audience);
    free(jwt);
}

int sff_jwt_reload(sff_jwt_t *jwt, char *err, size_t errlen)
{
    keyset_t set;

    if (load_keys(jwt, &set, err, errlen) != 0)
        return -1;
    keyset_clear(&jwt->keyset);
    jwt->keyset = set;
    if (jwt->cache.capacity != 0)
        cache_clear(&jwt->cache);
    return 0;
}

size_t sff_jwt_key_count(const sff_jwt_t *jwt)
{
    return jwt->keyset.count;
}

int sff_jwt_verify(sff_jwt_t *jwt, const char *token, size_t len, int64_t now, json_t **claims, const char **why)
{
    cache_t *cache = &jwt->cache;
    uint64_t hash = 0;
    times_t times;

    *claims = NULL;
    if (len == 0 || len > MAX_TOKEN_LEN) {
        *why = len == 0 ? "malformed token" : "token too large";
        return -1;
    }
    if (cache->capacity != 0) {
        uint32_t index;
        hash = siphash(cache->sipkey, (const unsigned char *)token, len);
        if ((index = cache_find(cache, token, len, hash)) != CACHE_NONE) {
            cache_entry_t *entry = &cache->entries[index];
            ++cache->hits;
            if ((*why = check_times(&entry->times, now, jwt->leeway_s)) != NULL) {
                /* An expired token stays expired; one not yet valid may become valid. */
                if (strcmp(*why, "expired") == 0)
                    cache_remove(cache, index);
                return -1;
            }
            *claims = json_incref(entry->claims);
            return 0;
        }
    }
    ++cache->misses;
    if ((*claims = verify_token(jwt, token, len, now, &times, why)) == NULL)
        return -1;
    /* Ordinary tokens are well under MAX_CACHED_TOKEN_LEN; larger ones are verified every time, so
     * that the cache stays within capacity x MAX_CACHED_TOKEN_LEN bytes of tokens. */
    if (cache->capacity != 0 && len <= MAX_CACHED_TOKEN_LEN)
        cache_insert(cache, token, len, hash, *claims, &times);
    return 0;
}

uint64_t sff_jwt_cache_hits(const sff_jwt_t *jwt)
{
    return jwt->cache.hits;
}

uint64_t sff_jwt_cache_misses(const sff_jwt_t *jwt)
{
    return jwt->cache.misses;
}

char *sff_jwt_sign_hs256(const char *secret, json_t *claims)
{
    struct jwt *token = NULL;
    char *json = NULL, *ret = NULL;
    size_t secret_len;

    if (secret == NULL || (secret_len = strlen(secret)) == 0 || secret_len > INT_MAX || !json_is_object(claims))
        return NULL;
    if ((json = json_dumps(claims, JSON_COMPACT)) == NULL || jwt_new(&token) != 0)
        goto Exit;
    if (jwt_add_grants_json(token, json) != 0 || jwt_add_header(token, "kid", "default") != 0 ||
        jwt_set_alg(token, LIBJWT_ALG_HS256, (const unsigned char *)secret, (int)secret_len) != 0)
        goto Exit;
    /* libjwt 1.10 allocates the string with malloc(). */
    ret = jwt_encode_str(token);

Exit:
    if (token != NULL)
        jwt_free(token);
    free(json);
    return ret;
}
