/*
 * Unit tests of gateway/jwt.c. Tokens are signed here with OpenSSL (HMAC, RSA PKCS #1 v1.5, ECDSA
 * with the JOSE r || s encoding) independently of the verifier, and with libjwt to check that the
 * two agree. Keys are generated per run and written as a JWKS file to a temporary directory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include "test.h"
#include "jwt.h"

/* libjwt 1.10's API, declared here because <jwt.h> names gateway/jwt.h under -Igateway. */
struct jwt;
typedef enum jwt_alg { LIBJWT_ALG_NONE = 0, LIBJWT_ALG_RS256 = 4, LIBJWT_ALG_ES256 = 7 } jwt_alg_t;
int jwt_new(struct jwt **jwt);
int jwt_decode(struct jwt **jwt, const char *token, const unsigned char *key, int key_len);
void jwt_free(struct jwt *jwt);
int jwt_add_grants_json(struct jwt *jwt, const char *json);
int jwt_set_alg(struct jwt *jwt, jwt_alg_t alg, const unsigned char *key, int len);
jwt_alg_t jwt_get_alg(struct jwt *jwt);
char *jwt_encode_str(struct jwt *jwt);

#define NOW ((int64_t)1700000000)
#define SECRET "0123456789abcdef0123456789abcdef-default"
#define SECRET256 "secret-of-hs256-key-0123456789abcdef"
#define SECRET384 "secret-of-hs384-key-0123456789abcdef0123456789abcdef"
#define SECRET512 "secret-of-hs512-key-0123456789abcdef0123456789abcdef0123456789abcdef"

static char tmpdir[] = "/tmp/sff-jwt-test-XXXXXX";
static char jwks_path[128];
static EVP_PKEY *rsa_key, *ec_key, *rsa2_key, *ec2_key;
static char *rsa_pub_pem, *ec_pub_pem;

static char *b64url(const void *data, size_t len)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = data;
    char *out = malloc(len / 3 * 4 + 5), *p = out;
    size_t i;

    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *p++ = chars[v >> 18];
        *p++ = chars[(v >> 12) & 63];
        *p++ = chars[(v >> 6) & 63];
        *p++ = chars[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *p++ = chars[v >> 18];
        *p++ = chars[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *p++ = chars[v >> 18];
        *p++ = chars[(v >> 12) & 63];
        *p++ = chars[(v >> 6) & 63];
    }
    *p = '\0';
    return out;
}

static char *b64url_str(const char *s)
{
    return b64url(s, strlen(s));
}

static char *cat3(const char *a, const char *sep, const char *b)
{
    char *out = malloc(strlen(a) + strlen(sep) + strlen(b) + 1);
    sprintf(out, "%s%s%s", a, sep, b);
    return out;
}

/* The signature of input by alg: "HS256", "HS384", "HS512" with secret, "RS256" or "ES256" (JOSE
 * r || s) with pkey, or "none" (empty). */
static char *sign_input(const char *input, const char *alg, const char *secret, EVP_PKEY *pkey)
{
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    unsigned int maclen;

    if (strcmp(alg, "none") == 0)
        return strdup("");
    if (strncmp(alg, "HS", 2) == 0) {
        const EVP_MD *md = strcmp(alg, "HS256") == 0 ? EVP_sha256() : strcmp(alg, "HS384") == 0 ? EVP_sha384() : EVP_sha512();
        HMAC(md, secret, (int)strlen(secret), (const unsigned char *)input, strlen(input), sig, &maclen);
        return b64url(sig, maclen);
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1)
        abort();
    EVP_MD_CTX_free(ctx);
    if (strcmp(alg, "ES256") == 0) {
        const unsigned char *p = sig;
        ECDSA_SIG *ecsig = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        BN_bn2binpad(ECDSA_SIG_get0_r(ecsig), sig, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(ecsig), sig + 32, 32);
        ECDSA_SIG_free(ecsig);
        siglen = 64;
    }
    return b64url(sig, siglen);
}

/* A compact token of the JSON texts header and payload, signed as by sign_input(). */
static char *make_token(const char *header, const char *payload, const char *alg, const char *secret, EVP_PKEY *pkey)
{
    char *h = b64url_str(header), *p = b64url_str(payload), *input = cat3(h, ".", p), *sig = sign_input(input, alg, secret, pkey);
    char *token = cat3(input, ".", sig);
    free(h);
    free(p);
    free(input);
    free(sig);
    return token;
}

/* A token whose header is {"alg": alg[, "kid": kid]} with payload, signed with alg. */
static char *make_token_kid(const char *alg, const char *kid, const char *payload, const char *secret, EVP_PKEY *pkey)
{
    char header[256];

    if (kid != NULL)
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
    else
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    return make_token(header, payload, alg, secret, pkey);
}

/* Verifies token at now and returns the result; the reason goes to *why and the claims, if wanted,
 * to *claims (else they are released). */
static int verify(sff_jwt_t *jwt, const char *token, int64_t now, const char **why, json_t **claims)
{
    json_t *c = NULL;
    const char *w = NULL;
    int ret = sff_jwt_verify(jwt, token, strlen(token), now, &c, &w);

    if (ret == 0 && c == NULL)
        ret = 99;
    if (ret != 0 && c != NULL)
        ret = 98;
    if (why != NULL)
        *why = ret == 0 ? "" : w;
    if (claims != NULL)
        *claims = c;
    else
        json_decref(c);
    return ret;
}

/* The reason a token is refused, or "ok". */
static const char *why_refused(sff_jwt_t *jwt, const char *token, int64_t now)
{
    const char *why;
    return verify(jwt, token, now, &why, NULL) == 0 ? "ok" : why;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
}

static char *bn_param_b64(EVP_PKEY *pkey, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int len;

    EVP_PKEY_get_bn_param(pkey, name, &bn);
    len = pad != 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64url(buf, (size_t)len);
}

static char *pub_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *ret;
    long len;

    PEM_write_bio_PUBKEY(bio, pkey);
    len = BIO_get_mem_data(bio, &data);
    ret = strndup(data, (size_t)len);
    BIO_free(bio);
    return ret;
}

static char *priv_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *ret;
    long len;

    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
    len = BIO_get_mem_data(bio, &data);
    ret = strndup(data, (size_t)len);
    BIO_free(bio);
    return ret;
}

static json_t *rsa_jwk(const char *kid, EVP_PKEY *pkey)
{
    char *n = bn_param_b64(pkey, OSSL_PKEY_PARAM_RSA_N, 0), *e = bn_param_b64(pkey, OSSL_PKEY_PARAM_RSA_E, 0);
    json_t *jwk =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kid", kid, "alg", "RS256", "kty", "RSA", "use", "sig", "n", n, "e", e);
    free(n);
    free(e);
    return jwk;
}

static json_t *ec_jwk(const char *kid, EVP_PKEY *pkey)
{
    char *x = bn_param_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32), *y = bn_param_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    json_t *jwk =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kid", kid, "alg", "ES256", "kty", "EC", "crv", "P-256", "x", x, "y", y);
    free(x);
    free(y);
    return jwk;
}

static json_t *oct_jwk(const char *kid, const char *alg, const char *secret)
{
    char *k = b64url_str(secret);
    json_t *jwk = json_pack("{s:s, s:s, s:s, s:s}", "kid", kid, "alg", alg, "kty", "oct", "k", k);
    free(k);
    return jwk;
}

/* Writes {"keys": keys} (stealing the reference) to path. */
static void write_jwks(const char *path, json_t *keys)
{
    json_t *doc = json_pack("{s:o}", "keys", keys);
    json_dump_file(doc, path, JSON_INDENT(2));
    json_decref(doc);
}

/* The text of {"keys": keys} (stealing the reference), malloc()ed. */
static char *dump_jwks(json_t *keys)
{
    json_t *doc = json_pack("{s:o}", "keys", keys);
    char *text = json_dumps(doc, 0);
    json_decref(doc);
    return text;
}

/* The standard keys file: three HMAC keys, an RSA and an EC key as JWK members, and both again as
 * "pem" members. */
static void write_standard_jwks(void)
{
    json_t *keys = json_array();

    json_array_append_new(keys, oct_jwk("h256", "HS256", SECRET256));
    json_array_append_new(keys, oct_jwk("h384", "HS384", SECRET384));
    json_array_append_new(keys, oct_jwk("h512", "HS512", SECRET512));
    json_array_append_new(keys, rsa_jwk("rsa", rsa_key));
    json_array_append_new(keys, ec_jwk("ec", ec_key));
    json_array_append_new(keys,
                          json_pack("{s:s, s:s, s:s, s:s}", "kid", "rsa-pem", "alg", "RS256", "kty", "RSA", "pem", rsa_pub_pem));
    json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s, s:s}", "kid", "ec-pem", "alg", "ES256", "kty", "EC", "crv", "P-256",
                                          "pem", ec_pub_pem));
    write_jwks(jwks_path, keys);
}

static sff_jwt_t *create_full(const char *secret, const char *keys_file, const char *issuer, const char *audience, int64_t leeway,
                              size_t cache_size, char *err, size_t errlen)
{
    sff_jwt_config_t config = {secret, keys_file, issuer, audience, leeway, cache_size};
    return sff_jwt_create(&config, err, errlen);
}

/* A verifier of SECRET and the standard keys file, 30 s of leeway, a cache of 100. */
static sff_jwt_t *create_standard(void)
{
    char err[256];
    sff_jwt_t *jwt;

    write_standard_jwks();
    if ((jwt = create_full(SECRET, jwks_path, NULL, NULL, 30, 100, err, sizeof(err))) == NULL)
        fprintf(stderr, "  create: %s\n", err);
    return jwt;
}

/* Whether a verifier fails to load the keys file text, with a message that contains want and none
 * of the strings of avoid (NULL-terminated). */
static int create_fails(const char *text, const char *want, const char *const *avoid)
{
    char path[160], err[512] = "";
    sff_jwt_t *jwt;
    int ok;

    snprintf(path, sizeof(path), "%s/bad.json", tmpdir);
    write_text(path, text);
    if ((jwt = create_full(NULL, path, NULL, NULL, 0, 10, err, sizeof(err))) != NULL) {
        sff_jwt_destroy(jwt);
        fprintf(stderr, "  accepted: %s\n", text);
        return 0;
    }
    ok = strstr(err, want) != NULL;
    for (; avoid != NULL && *avoid != NULL; ++avoid)
        if (strstr(err, *avoid) != NULL)
            ok = 0;
    if (!ok)
        fprintf(stderr, "  err: %s\n", err);
    unlink(path);
    return ok;
}

#define PAYLOAD_OK "{\"sub\":\"alice\",\"exp\":1700000600}"

TEST(hmac_tokens_verify_and_return_claims)
{
    sff_jwt_t *jwt = create_standard();
    static const char *const cases[][3] = {{"HS256", "h256", SECRET256},
                                           {"HS384", "h384", SECRET384},
                                           {"HS512", "h512", SECRET512},
                                           {"HS256", "default", SECRET},
                                           {"HS256", NULL, SECRET}};
    size_t i;

    CHECK_INT(sff_jwt_key_count(jwt), 8);
    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        char *token =
            make_token_kid(cases[i][0], cases[i][1], "{\"sub\":\"alice\",\"exp\":1700000600,\"n\":[1,2]}", cases[i][2], NULL);
        json_t *claims = NULL;
        const char *why;
        CHECK_INT(verify(jwt, token, NOW, &why, &claims), 0);
        CHECK_STR(why, "");
        CHECK_STR(json_string_value(json_object_get(claims, "sub")), "alice");
        CHECK_INT(json_array_size(json_object_get(claims, "n")), 2);
        json_decref(claims);
        free(token);
    }
    sff_jwt_destroy(jwt);
}

TEST(rs256_and_es256_tokens_verify)
{
    sff_jwt_t *jwt = create_standard();
    static const char *const cases[][2] = {{"RS256", "rsa"}, {"RS256", "rsa-pem"}, {"ES256", "ec"}, {"ES256", "ec-pem"}};
    size_t i;

    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        EVP_PKEY *pkey = cases[i][0][0] == 'R' ? rsa_key : ec_key;
        char *token = make_token_kid(cases[i][0], cases[i][1], PAYLOAD_OK, NULL, pkey);
        json_t *claims = NULL;
        CHECK_INT(verify(jwt, token, NOW, NULL, &claims), 0);
        CHECK_STR(json_string_value(json_object_get(claims, "sub")), "alice");
        json_decref(claims);
        free(token);
    }
    sff_jwt_destroy(jwt);
}

TEST(libjwt_and_verifier_agree_on_es256_and_rs256)
{
    static const jwt_alg_t algs[] = {LIBJWT_ALG_ES256, LIBJWT_ALG_RS256};
    char path[160], err[256];
    size_t i;

    snprintf(path, sizeof(path), "%s/single.json", tmpdir);
    for (i = 0; i != sizeof(algs) / sizeof(algs[0]); ++i) {
        int is_ec = algs[i] == LIBJWT_ALG_ES256;
        EVP_PKEY *pkey = is_ec ? ec_key : rsa_key;
        const char *pub = is_ec ? ec_pub_pem : rsa_pub_pem;
        char *priv = priv_pem(pkey), *ours, *theirs;
        json_t *keys = json_array();
        struct jwt *j = NULL;
        sff_jwt_t *single;

        json_array_append_new(keys, is_ec ? ec_jwk("only", pkey) : rsa_jwk("only", pkey));
        write_jwks(path, keys);
        single = create_full(NULL, path, NULL, NULL, 0, 0, err, sizeof(err));
        CHECK(single != NULL);

        /* A token libjwt signs (without a kid) verifies against the only key. */
        jwt_new(&j);
        jwt_add_grants_json(j, PAYLOAD_OK);
        jwt_set_alg(j, algs[i], (const unsigned char *)priv, (int)strlen(priv));
        theirs = jwt_encode_str(j);
        jwt_free(j);
        CHECK(theirs != NULL);
        if (theirs != NULL && single != NULL)
            CHECK_STR(why_refused(single, theirs, NOW), "ok");
        free(theirs);

        /* A token signed here (ES256 as r || s) passes libjwt's jwt_decode() with the public key. */
        ours = make_token_kid(is_ec ? "ES256" : "RS256", "only", PAYLOAD_OK, NULL, pkey);
        j = NULL;
        CHECK_INT(jwt_decode(&j, ours, (const unsigned char *)pub, (int)strlen(pub)), 0);
        if (j != NULL) {
            CHECK_INT(jwt_get_alg(j), algs[i]);
            jwt_free(j);
        }
        if (single != NULL)
            CHECK_STR(why_refused(single, ours, NOW), "ok");
        free(ours);
        free(priv);
        sff_jwt_destroy(single);
    }
    unlink(path);
}

TEST(alg_none_is_refused)
{
    sff_jwt_t *jwt = create_standard();
    char *h = b64url_str("{\"alg\":\"none\"}"), *hk = b64url_str("{\"alg\":\"none\",\"kid\":\"h256\"}"),
         *p = b64url_str(PAYLOAD_OK);
    char *with_dot = malloc(strlen(h) + strlen(p) + 3), *without = malloc(strlen(h) + strlen(p) + 3),
         *kid_dot = malloc(strlen(hk) + strlen(p) + 3);
    char *with_sig;

    sprintf(with_dot, "%s.%s.", h, p);
    sprintf(without, "%s.%s", h, p);
    sprintf(kid_dot, "%s.%s.", hk, p);
    CHECK_STR(why_refused(jwt, with_dot, NOW), "algorithm not allowed for key");
    CHECK_STR(why_refused(jwt, without, NOW), "malformed token");
    CHECK_STR(why_refused(jwt, kid_dot, NOW), "algorithm not allowed for key");
    /* With a valid HS256 signature over a header that says "none". */
    with_sig = make_token("{\"alg\":\"none\"}", PAYLOAD_OK, "HS256", SECRET, NULL);
    CHECK_STR(why_refused(jwt, with_sig, NOW), "algorithm not allowed for key");
    free(with_sig);
    with_sig = make_token("{\"alg\":\"NONE\",\"kid\":\"h256\"}", PAYLOAD_OK, "HS256", SECRET256, NULL);
    CHECK_STR(why_refused(jwt, with_sig, NOW), "algorithm not allowed for key");
    free(with_sig);
    free(h);
    free(hk);
    free(p);
    free(with_dot);
    free(without);
    free(kid_dot);
    sff_jwt_destroy(jwt);
}

TEST(hmac_with_public_key_as_secret_is_refused)
{
    sff_jwt_t *jwt = create_standard();
    char *token;

    /* The classic confusion: HS256 keyed with the RSA public key's PEM, which libjwt 1.10 accepts. */
    token = make_token_kid("HS256", "rsa", PAYLOAD_OK, rsa_pub_pem, NULL);
    CHECK_STR(why_refused(jwt, token, NOW), "algorithm not allowed for key");
    free(token);
    token = make_token_kid("HS256", "rsa-pem", PAYLOAD_OK, rsa_pub_pem, NULL);
    CHECK_STR(why_refused(jwt, token, NOW), "algorithm not allowed for key");
    free(token);
    token = make_token_kid("HS256", "ec-pem", PAYLOAD_OK, ec_pub_pem, NULL);
    CHECK_STR(why_refused(jwt, token, NOW), "algorithm not allowed for key");
    free(token);
    sff_jwt_destroy(jwt);

    /* The same with the RSA key as the only key and no kid. */
    {
        char path[160], err[256];
        json_t *keys = json_array();
        snprintf(path, sizeof(path), "%s/rsa-only.json", tmpdir);
        json_array_append_new(keys, rsa_jwk("only", rsa_key));
        write_jwks(path, keys);
        jwt = create_full(NULL, path, NULL, NULL, 0, 10, err, sizeof(err));
        CHECK(jwt != NULL);
        token = make_token_kid("HS256", NULL, PAYLOAD_OK, rsa_pub_pem, NULL);
        CHECK_STR(why_refused(jwt, token, NOW), "algorithm not allowed for key");
        free(token);
        token = make_token_kid("RS256", NULL, PAYLOAD_OK, NULL, rsa_key);
        CHECK_STR(why_refused(jwt, token, NOW), "ok");
        free(token);
        sff_jwt_destroy(jwt);
        unlink(path);
    }
}

TEST(header_alg_other_than_the_keys_is_refused)
{
    sff_jwt_t *jwt = create_standard();
    char *token;

    token = make_token_kid("HS256", "h384", PAYLOAD_OK, SECRET384, NULL);
    CHECK_STR(why_refused(jwt, token, NOW), "algorithm not allowed for key");
    free(token);
    token = make_token_kid("HS512", "h256", PAYLOAD_OK, SECRET256, NULL);
    CHECK_STR(why_refused(jwt, token, NOW), "algorithm not allowed for key");
    free(token);
    token = make_token("{\"alg\":\"hs256\",\"kid\":\"h256\"}", PAYLOAD_OK, "HS256", SECRET256, NULL);
    CHECK_STR(why_refused(jwt, token, NOW), "algorithm not allowed for key");
    free(token);
    token = make_token_kid("ES256", "rsa", PAYLOAD_OK, NULL, ec_key);
    CHECK_STR(why_refused(jwt, token, NOW), "algorithm not allowed for key");
    free(token);
    token = make_token_kid("RS256", "ec", PAYLOAD_OK, NULL, rsa_key);
    CHECK_STR(why_refused(jwt, token, NOW), "algorithm not allowed for key");
    free(token);
    token = make_token("{\"alg\":\"PS256\",\"kid\":\"rsa\"}", PAYLOAD_OK, "RS256", NULL, rsa_key);
    CHECK_STR(why_refused(jwt, token, NOW), "algorithm not allowed for key");
    free(token);
    sff_jwt_destroy(jwt);
}

TEST(wrong_signature_is_refused)
{
    sff_jwt_t *jwt = create_standard();
    static const char *const kids[][2] = {{"HS256", "h256"}, {"HS512", "h512"}, {"RS256", "rsa"}, {"ES256", "ec"}};
    size_t i;
    char *token;

    for (i = 0; i != sizeof(kids) / sizeof(kids[0]); ++i) {
        int hmac = kids[i][0][0] == 'H', rsa = kids[i][0][0] == 'R';
        const char *secret = strcmp(kids[i][1], "h256") == 0 ? SECRET256 : SECRET512;
        char *sig, *shorter, c;
        token = make_token_kid(kids[i][0], kids[i][1], PAYLOAD_OK, secret, rsa ? rsa_key : ec_key);
        CHECK_STR(why_refused(jwt, token, NOW), "ok");
        sig = strrchr(token, '.') + 1;
        /* One changed character in the middle of the signature. */
        c = sig[3];
        sig[3] = c == 'A' ? 'B' : 'A';
        CHECK_STR(why_refused(jwt, token, NOW), "bad signature");
        sig[3] = c;
        /* A short signature, and none at all. */
        shorter = malloc(strlen(token) + 1);
        sprintf(shorter, "%.*sAAAA", (int)(sig - token), token);
        CHECK_STR(why_refused(jwt, shorter, NOW), "bad signature");
        free(shorter);
        sig[0] = '\0';
        CHECK_STR(why_refused(jwt, token, NOW), "bad signature");
        free(token);
        /* Signed by another key of the same kind. */
        token = make_token_kid(kids[i][0], kids[i][1], PAYLOAD_OK, hmac ? "another secret, 32 bytes or more.." : NULL,
                               rsa ? rsa2_key : ec2_key);
        CHECK_STR(why_refused(jwt, token, NOW), "bad signature");
        free(token);
    }
    /* The payload changed after signing. */
    token = make_token_kid("HS256", "h256", PAYLOAD_OK, SECRET256, NULL);
    {
        char *p = b64url_str("{\"sub\":\"admin\",\"exp\":1700000600}"), *dot1 = strchr(token, '.'), *dot2 = strrchr(token, '.');
        char *forged = malloc(strlen(token) + strlen(p) + 1);
        sprintf(forged, "%.*s.%s%s", (int)(dot1 - token), token, p, dot2);
        CHECK_STR(why_refused(jwt, forged, NOW), "bad signature");
        free(forged);
        free(p);
    }
    free(token);
    sff_jwt_destroy(jwt);
}

TEST(every_one_byte_change_of_a_valid_token_is_refused)
{
    sff_jwt_t *jwt = create_standard();
    static const char replacements[] = {'A', 'B', 'a', '0', '-', '_', '.', '=', '+', '/', ' ', '\0'};
    char *token = make_token_kid("HS256", "h256", PAYLOAD_OK, SECRET256, NULL);
    size_t len = strlen(token), i, j, accepted = 0;

    for (i = 0; i != len; ++i) {
        char c = token[i];
        for (j = 0; j != sizeof(replacements); ++j) {
            json_t *claims = NULL;
            const char *why = NULL;
            if (replacements[j] == c)
                continue;
            token[i] = replacements[j];
            if (sff_jwt_verify(jwt, token, len, NOW, &claims, &why) == 0) {
                ++accepted;
                json_decref(claims);
            } else {
                CHECK(claims == NULL && why != NULL);
            }
        }
        token[i] = c;
    }
    CHECK_INT(accepted, 0);
    CHECK_STR(why_refused(jwt, token, NOW), "ok");
    free(token);
    sff_jwt_destroy(jwt);
}

TEST(unknown_kid_is_refused)
{
    sff_jwt_t *jwt = create_standard();
    char *token = make_token_kid("HS256", "nope", PAYLOAD_OK, SECRET256, NULL);
    char err[256];

    CHECK_STR(why_refused(jwt, token, NOW), "unknown key");
    free(token);
    token = make_token("{\"alg\":\"HS256\",\"kid\":7}", PAYLOAD_OK, "HS256", SECRET, NULL);
    CHECK_STR(why_refused(jwt, token, NOW), "malformed token");
    free(token);
    sff_jwt_destroy(jwt);

    /* No kid, several keys and none named "default". */
    jwt = create_full(NULL, jwks_path, NULL, NULL, 0, 10, err, sizeof(err));
    CHECK(jwt != NULL);
    token = make_token_kid("HS256", NULL, PAYLOAD_OK, SECRET256, NULL);
    CHECK_STR(why_refused(jwt, token, NOW), "unknown key");
    free(token);
    sff_jwt_destroy(jwt);

    /* No key at all. */
    jwt = create_full(NULL, NULL, NULL, NULL, 0, 10, err, sizeof(err));
    CHECK(jwt != NULL);
    CHECK_INT(sff_jwt_key_count(jwt), 0);
    token = make_token_kid("HS256", NULL, PAYLOAD_OK, SECRET, NULL);
    CHECK_STR(why_refused(jwt, token, NOW), "unknown key");
    free(token);
    sff_jwt_destroy(jwt);
}

static const char *why_payload(sff_jwt_t *jwt, const char *payload, int64_t now)
{
    static char why[64];
    char *token = make_token_kid("HS256", "h256", payload, SECRET256, NULL);
    snprintf(why, sizeof(why), "%s", why_refused(jwt, token, now));
    free(token);
    return why;
}

TEST(exp_is_required_numeric_and_checked_with_leeway)
{
    sff_jwt_t *jwt = create_standard(); /* leeway 30 s */

    CHECK_STR(why_payload(jwt, "{\"sub\":\"a\"}", NOW), "missing exp");
    CHECK_STR(why_payload(jwt, "{\"exp\":\"1700000600\"}", NOW), "exp not a number");
    CHECK_STR(why_payload(jwt, "{\"exp\":null}", NOW), "exp not a number");
    CHECK_STR(why_payload(jwt, "{\"exp\":true}", NOW), "exp not a number");
    CHECK_STR(why_payload(jwt, "{\"exp\":1699999000}", NOW), "expired");
    CHECK_STR(why_payload(jwt, "{\"exp\":1699999969}", NOW), "expired");
    CHECK_STR(why_payload(jwt, "{\"exp\":1699999970}", NOW), "ok");
    CHECK_STR(why_payload(jwt, "{\"exp\":1699999980}", NOW), "ok");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000000.5}", NOW), "ok");
    CHECK_STR(why_payload(jwt, "{\"exp\":1699999969.9}", NOW), "expired");
    CHECK_STR(why_payload(jwt, "{\"exp\":1e300}", NOW), "ok");
    sff_jwt_destroy(jwt);
}

TEST(nbf_and_iat_in_the_future_are_refused)
{
    sff_jwt_t *jwt = create_standard(); /* leeway 30 s */

    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"nbf\":1700000100}", NOW), "not yet valid");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"nbf\":1700000031}", NOW), "not yet valid");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"nbf\":1700000030}", NOW), "ok");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"nbf\":1699990000}", NOW), "ok");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"nbf\":\"1699990000\"}", NOW), "nbf not a number");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iat\":1700000100}", NOW), "issued in the future");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iat\":1700000030}", NOW), "ok");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iat\":1699999000}", NOW), "ok");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iat\":[]}", NOW), "iat not a number");
    sff_jwt_destroy(jwt);
}

TEST(issuer_and_audience)
{
    char err[256];
    sff_jwt_t *jwt;

    write_standard_jwks();
    jwt = create_full(SECRET, jwks_path, "https://issuer.example", "sff", 0, 100, err, sizeof(err));
    CHECK(jwt != NULL);
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iss\":\"https://issuer.example\",\"aud\":\"sff\"}", NOW), "ok");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iss\":\"https://issuer.example\",\"aud\":[\"other\",\"sff\"]}", NOW), "ok");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iss\":\"https://evil.example\",\"aud\":\"sff\"}", NOW), "issuer mismatch");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iss\":\"https://issuer.example/\",\"aud\":\"sff\"}", NOW), "issuer mismatch");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"aud\":\"sff\"}", NOW), "issuer mismatch");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iss\":[\"https://issuer.example\"],\"aud\":\"sff\"}", NOW),
              "issuer mismatch");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iss\":\"https://issuer.example\",\"aud\":\"sff2\"}", NOW),
              "audience mismatch");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iss\":\"https://issuer.example\",\"aud\":[\"a\",\"b\"]}", NOW),
              "audience mismatch");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iss\":\"https://issuer.example\",\"aud\":[]}", NOW), "audience mismatch");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iss\":\"https://issuer.example\",\"aud\":[[\"sff\"]]}", NOW),
              "audience mismatch");
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iss\":\"https://issuer.example\"}", NOW), "audience mismatch");
    sff_jwt_destroy(jwt);

    /* Without a configured issuer or audience, neither is checked. */
    jwt = create_full(SECRET, jwks_path, NULL, NULL, 0, 100, err, sizeof(err));
    CHECK_STR(why_payload(jwt, "{\"exp\":1700000600,\"iss\":\"anyone\",\"aud\":5}", NOW), "ok");
    sff_jwt_destroy(jwt);
}

/* The reason the token text is refused, or "ok". */
static const char *why_parts(sff_jwt_t *jwt, const char *text)
{
    static char why[64];
    json_t *claims = NULL;
    const char *w = NULL;
    int ret = sff_jwt_verify(jwt, text, strlen(text), NOW, &claims, &w);
    snprintf(why, sizeof(why), "%s", ret == 0 ? "ok" : w);
    json_decref(claims);
    return why;
}

#define LEVELS "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
#define CLOSES "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"

TEST(malformed_tokens_are_refused)
{
    sff_jwt_t *jwt = create_standard();
    char *good = make_token_kid("HS256", "h256", PAYLOAD_OK, SECRET256, NULL), *buf = malloc(strlen(good) + 64), *token, *huge;
    const char *dot1 = strchr(good, '.'), *dot2 = strrchr(good, '.');
    json_t *claims = NULL;
    const char *why = NULL;
    size_t i;

    CHECK_STR(why_parts(jwt, good), "ok");
    CHECK_STR(why_parts(jwt, ""), "malformed token");
    CHECK_STR(why_parts(jwt, "."), "malformed token");
    CHECK_STR(why_parts(jwt, ".."), "malformed token");
    CHECK_STR(why_parts(jwt, "..."), "malformed token");
    CHECK_STR(why_parts(jwt, "abc"), "malformed token");
    /* Two parts. */
    sprintf(buf, "%.*s", (int)(dot2 - good), good);
    CHECK_STR(why_parts(jwt, buf), "malformed token");
    /* Four parts. */
    sprintf(buf, "%s.", good);
    CHECK_STR(why_parts(jwt, buf), "malformed token");
    sprintf(buf, "%s.AAAA", good);
    CHECK_STR(why_parts(jwt, buf), "malformed token");
    /* Empty header or payload. */
    sprintf(buf, "%s", dot1);
    CHECK_STR(why_parts(jwt, buf), "malformed token");
    sprintf(buf, "%.*s.%s", (int)(dot1 - good), good, dot2);
    CHECK_STR(why_parts(jwt, buf), "malformed token");
    /* Padding, standard base64 and whitespace in the signature. */
    sprintf(buf, "%s=", good);
    CHECK_STR(why_parts(jwt, buf), "malformed token");
    sprintf(buf, "%s", good);
    buf[strlen(buf) - 2] = '+';
    CHECK_STR(why_parts(jwt, buf), "malformed token");
    buf[strlen(buf) - 2] = '/';
    CHECK_STR(why_parts(jwt, buf), "malformed token");
    sprintf(buf, "%s ", good);
    CHECK_STR(why_parts(jwt, buf), "malformed token");
    /* A base64url length of 4n + 1 (the HS256 signature has 43 characters). */
    sprintf(buf, "%sAA", good);
    CHECK_STR(why_parts(jwt, buf), "malformed token");
    /* A NUL inside. */
    sprintf(buf, "%s", good);
    buf[3] = '\0';
    CHECK_INT(sff_jwt_verify(jwt, buf, strlen(good), NOW, &claims, &why), -1);
    CHECK_STR(why, "malformed token");
    CHECK(claims == NULL);

    /* Headers that are not JSON objects, or JSON with a duplicate member. */
    static const char *const headers[] = {"not json",
                                          "[\"alg\",\"HS256\"]",
                                          "\"HS256\"",
                                          "{\"alg\":\"HS256\",\"kid\":\"h256\"} x",
                                          "{\"alg\":\"HS256\",\"kid\":\"h256\",\"alg\":\"HS256\"}",
                                          "{\"alg\":5,\"kid\":\"h256\"}",
                                          "{\"kid\":\"h256\"}",
                                          ""};
    for (i = 0; i != sizeof(headers) / sizeof(headers[0]); ++i) {
        token = make_token(headers[i], PAYLOAD_OK, "HS256", SECRET256, NULL);
        CHECK_STR(why_parts(jwt, token), "malformed token");
        free(token);
    }
    /* Payloads that are not JSON objects, correctly signed. */
    token = make_token_kid("HS256", "h256", "[1700000600]", SECRET256, NULL);
    CHECK_STR(why_parts(jwt, token), "claims not an object");
    free(token);
    token = make_token_kid("HS256", "h256", "{\"exp\":1700000600", SECRET256, NULL);
    CHECK_STR(why_parts(jwt, token), "malformed token");
    free(token);
    token = make_token_kid("HS256", "h256", "{\"exp\":1700000600,\"exp\":1}", SECRET256, NULL);
    CHECK_STR(why_parts(jwt, token), "malformed token");
    free(token);
    token = make_token_kid("HS256", "h256", "{\"exp\":1700000600,\"sub\":\"a\\u0000b\"}", SECRET256, NULL);
    CHECK_STR(why_parts(jwt, token), "malformed token");
    free(token);

    /* A huge header: refused before any parsing, and one just under the limit refused as garbage. */
    huge = malloc(100001);
    memset(huge, 'A', 100000);
    huge[100000] = '\0';
    memcpy(huge + 100000 - strlen(dot1), dot1, strlen(dot1));
    CHECK_STR(why_parts(jwt, huge), "token too large");
    memmove(huge, huge + 100000 - 16000, 16001);
    CHECK_STR(why_parts(jwt, huge), "malformed token");
    free(huge);
    {
        size_t n = 13000, len;
        char *header = malloc(n + 64);
        len = (size_t)sprintf(header, "{\"alg\":\"HS256\",\"kid\":\"h256\",\"x\":\"");
        memset(header + len, 'x', n - len);
        strcpy(header + n, "\"}");
        token = make_token(header, PAYLOAD_OK, "HS256", SECRET256, NULL);
        CHECK(strlen(token) > 16384);
        CHECK_STR(why_parts(jwt, token), "token too large");
        free(token);
        free(header);
    }
    /* Nesting: 32 levels of claims pass, 33 do not, whatever brackets the strings hold. */
    {
        char payload[512], header[512];
        int depth;
        for (depth = 31; depth <= 32; ++depth) {
            snprintf(payload, sizeof(payload), "{\"exp\":1700000600,\"s\":\"[[[[{{{{\\\"[[\",\"x\":%.*s%.*s}", depth, LEVELS, depth,
                     CLOSES);
            token = make_token_kid("HS256", "h256", payload, SECRET256, NULL);
            CHECK_STR(why_parts(jwt, token), depth == 31 ? "ok" : "malformed token");
            free(token);
            snprintf(header, sizeof(header), "{\"alg\":\"HS256\",\"kid\":\"h256\",\"x\":%.*s%.*s}", depth, LEVELS, depth, CLOSES);
            token = make_token(header, PAYLOAD_OK, "HS256", SECRET256, NULL);
            CHECK_STR(why_parts(jwt, token), depth == 31 ? "ok" : "malformed token");
            free(token);
        }
    }
    /* Deeply nested header JSON. */
    {
        char *header = malloc(8000);
        memset(header, '[', 7999);
        header[7999] = '\0';
        token = make_token(header, PAYLOAD_OK, "HS256", SECRET256, NULL);
        CHECK_STR(why_parts(jwt, token), "malformed token");
        free(token);
        free(header);
    }
    free(buf);
    free(good);
    sff_jwt_destroy(jwt);
}

TEST(header_typ_and_crit)
{
    sff_jwt_t *jwt = create_standard();
    static const char *const cases[][2] = {
        {"{\"alg\":\"HS256\",\"kid\":\"h256\",\"typ\":\"JWT\"}", "ok"},
        {"{\"alg\":\"HS256\",\"kid\":\"h256\",\"typ\":\"jwt\"}", "ok"},
        {"{\"alg\":\"HS256\",\"kid\":\"h256\",\"typ\":\"at+jwt\"}", "ok"},
        {"{\"alg\":\"HS256\",\"kid\":\"h256\",\"typ\":\"AT+JWT\"}", "ok"},
        {"{\"alg\":\"HS256\",\"kid\":\"h256\"}", "ok"},
        {"{\"alg\":\"HS256\",\"kid\":\"h256\",\"typ\":\"JWS\"}", "unsupported token type"},
        {"{\"alg\":\"HS256\",\"kid\":\"h256\",\"typ\":\"\"}", "unsupported token type"},
        {"{\"alg\":\"HS256\",\"kid\":\"h256\",\"typ\":1}", "unsupported token type"},
        {"{\"alg\":\"HS256\",\"kid\":\"h256\",\"crit\":[\"exp\"],\"exp\":1}", "unsupported critical header"},
        {"{\"alg\":\"HS256\",\"kid\":\"h256\",\"crit\":[]}", "unsupported critical header"},
        {"{\"alg\":\"HS256\",\"kid\":\"h256\",\"b64\":false,\"crit\":[\"b64\"]}", "unsupported critical header"},
    };
    size_t i;

    for (i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        char *token = make_token(cases[i][0], PAYLOAD_OK, "HS256", SECRET256, NULL);
        CHECK_STR(why_parts(jwt, token), cases[i][1]);
        free(token);
    }
    sff_jwt_destroy(jwt);
}

TEST(cache_hits_and_expiry)
{
    sff_jwt_t *jwt = create_standard(); /* leeway 30 s, cache 100 */
    char *token = make_token_kid("ES256", "ec", PAYLOAD_OK, NULL, ec_key), *other;
    json_t *claims = NULL;
    const char *why;

    CHECK_INT(verify(jwt, token, NOW, NULL, NULL), 0);
    CHECK_INT(sff_jwt_cache_hits(jwt), 0);
    CHECK_INT(sff_jwt_cache_misses(jwt), 1);
    CHECK_INT(verify(jwt, token, NOW + 1, NULL, &claims), 0);
    CHECK_INT(sff_jwt_cache_hits(jwt), 1);
    CHECK_INT(sff_jwt_cache_misses(jwt), 1);
    CHECK_STR(json_string_value(json_object_get(claims, "sub")), "alice");
    json_decref(claims);
    /* Still valid within the leeway, then expired. */
    CHECK_INT(verify(jwt, token, NOW + 600 + 30, NULL, NULL), 0);
    CHECK_INT(sff_jwt_cache_hits(jwt), 2);
    CHECK_INT(verify(jwt, token, NOW + 600 + 31, &why, NULL), -1);
    CHECK_STR(why, "expired");
    CHECK_INT(sff_jwt_cache_hits(jwt), 3);
    /* The expired entry was dropped: the next look-up is a miss and refused again. */
    CHECK_INT(verify(jwt, token, NOW + 600 + 31, &why, NULL), -1);
    CHECK_STR(why, "expired");
    CHECK_INT(sff_jwt_cache_misses(jwt), 2);
    free(token);

    /* nbf is checked on a hit too. */
    token = make_token_kid("HS256", "h256", "{\"exp\":1700000600,\"nbf\":1700000000}", SECRET256, NULL);
    CHECK_INT(verify(jwt, token, NOW, NULL, NULL), 0);
    CHECK_INT(verify(jwt, token, NOW - 100, &why, NULL), -1);
    CHECK_STR(why, "not yet valid");
    CHECK_INT(verify(jwt, token, NOW, NULL, NULL), 0);
    /* A refused token is not cached; a different token is a different entry. */
    other = make_token_kid("HS256", "h256", "{\"exp\":1}", SECRET256, NULL);
    CHECK_INT(verify(jwt, other, NOW, NULL, NULL), -1);
    CHECK_INT(verify(jwt, other, NOW, &why, NULL), -1);
    CHECK_STR(why, "expired");
    free(other);
    free(token);
    sff_jwt_destroy(jwt);
}

TEST(cache_evicts_the_oldest_and_can_be_disabled)
{
    char err[256], *tokens[3];
    sff_jwt_t *jwt;
    size_t i;

    for (i = 0; i != 3; ++i) {
        char payload[64];
        snprintf(payload, sizeof(payload), "{\"exp\":1700000600,\"n\":%zu}", i);
        tokens[i] = make_token_kid("HS256", NULL, payload, SECRET, NULL);
    }
    jwt = create_full(SECRET, NULL, NULL, NULL, 0, 2, err, sizeof(err));
    for (i = 0; i != 3; ++i)
        CHECK_INT(verify(jwt, tokens[i], NOW, NULL, NULL), 0);
    CHECK_INT(sff_jwt_cache_misses(jwt), 3);
    CHECK_INT(verify(jwt, tokens[2], NOW, NULL, NULL), 0);
    CHECK_INT(verify(jwt, tokens[1], NOW, NULL, NULL), 0);
    CHECK_INT(sff_jwt_cache_hits(jwt), 2);
    CHECK_INT(verify(jwt, tokens[0], NOW, NULL, NULL), 0); /* evicted: a miss that evicts tokens[1] */
    CHECK_INT(sff_jwt_cache_misses(jwt), 4);
    CHECK_INT(verify(jwt, tokens[2], NOW, NULL, NULL), 0);
    CHECK_INT(verify(jwt, tokens[0], NOW, NULL, NULL), 0);
    CHECK_INT(sff_jwt_cache_hits(jwt), 4);
    sff_jwt_destroy(jwt);

    jwt = create_full(SECRET, NULL, NULL, NULL, 0, 0, err, sizeof(err));
    for (i = 0; i != 3; ++i) {
        CHECK_INT(verify(jwt, tokens[0], NOW, NULL, NULL), 0);
        CHECK_INT(verify(jwt, tokens[0], NOW + 601, NULL, NULL), -1);
    }
    CHECK_INT(sff_jwt_cache_hits(jwt), 0);
    CHECK_INT(sff_jwt_cache_misses(jwt), 6);
    sff_jwt_destroy(jwt);

    /* Many tokens through a small cache. */
    jwt = create_full(SECRET, NULL, NULL, NULL, 0, 7, err, sizeof(err));
    for (i = 0; i != 200; ++i) {
        char payload[64], *token;
        snprintf(payload, sizeof(payload), "{\"exp\":1700000600,\"n\":%zu}", i % 13);
        token = make_token_kid("HS256", NULL, payload, SECRET, NULL);
        CHECK_INT(verify(jwt, token, NOW, NULL, NULL), 0);
        CHECK_INT(verify(jwt, token, NOW, NULL, NULL), 0);
        free(token);
    }
    CHECK_INT(sff_jwt_cache_hits(jwt) + sff_jwt_cache_misses(jwt), 400);
    CHECK(sff_jwt_cache_hits(jwt) >= 200);
    sff_jwt_destroy(jwt);
    for (i = 0; i != 3; ++i)
        free(tokens[i]);
}

TEST(reload_replaces_keys_and_keeps_them_on_error)
{
    sff_jwt_t *jwt = create_standard();
    char *old = make_token_kid("HS384", "h384", PAYLOAD_OK, SECRET384, NULL), *fresh, err[256] = "";
    json_t *keys;

    CHECK_INT(sff_jwt_key_count(jwt), 8);
    CHECK_INT(verify(jwt, old, NOW, NULL, NULL), 0);
    CHECK_INT(verify(jwt, old, NOW, NULL, NULL), 0);
    CHECK_INT(sff_jwt_cache_hits(jwt), 1);

    write_text(jwks_path, "{\"keys\": [");
    CHECK_INT(sff_jwt_reload(jwt, err, sizeof(err)), -1);
    CHECK(strstr(err, jwks_path) != NULL);
    CHECK_INT(sff_jwt_key_count(jwt), 8);
    CHECK_INT(verify(jwt, old, NOW, NULL, NULL), 0);

    write_text(jwks_path, "{\"keys\": [{\"kid\": \"x\", \"alg\": \"HS256\", \"kty\": \"oct\", \"k\": \"!!\"}]}");
    CHECK_INT(sff_jwt_reload(jwt, err, sizeof(err)), -1);
    CHECK(strstr(err, "\"x\"") != NULL);
    unlink(jwks_path);
    CHECK_INT(sff_jwt_reload(jwt, err, sizeof(err)), -1);
    CHECK_INT(sff_jwt_key_count(jwt), 8);
    CHECK_INT(verify(jwt, old, NOW, NULL, NULL), 0);

    keys = json_array();
    json_array_append_new(keys, oct_jwk("new", "HS512", SECRET512));
    write_jwks(jwks_path, keys);
    CHECK_INT(sff_jwt_reload(jwt, err, sizeof(err)), 0);
    CHECK_INT(sff_jwt_key_count(jwt), 2);
    /* The cache was emptied: the old token is looked up and refused. */
    CHECK_STR(why_refused(jwt, old, NOW), "unknown key");
    fresh = make_token_kid("HS512", "new", PAYLOAD_OK, SECRET512, NULL);
    CHECK_STR(why_refused(jwt, fresh, NOW), "ok");
    free(fresh);
    /* The secret's key survives reloads. */
    fresh = make_token_kid("HS256", "default", PAYLOAD_OK, SECRET, NULL);
    CHECK_STR(why_refused(jwt, fresh, NOW), "ok");
    free(fresh);
    free(old);
    sff_jwt_destroy(jwt);
}

TEST(invalid_keys_fail_create_with_the_kid_and_no_key_material)
{
    static const char *const secret_k[] = {"c2VjcmV0LW1hdGVyaWFs", "secret-material", NULL};
    char text[8192], err[256];
    char *n = bn_param_b64(rsa_key, OSSL_PKEY_PARAM_RSA_N, 0), *x = bn_param_b64(ec_key, OSSL_PKEY_PARAM_EC_PUB_X, 32),
         *y = bn_param_b64(ec_key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    const char *no_n[] = {n, NULL};
    sff_jwt_t *jwt;

    CHECK(create_fails("{\"keys\": [{\"kid\": \"k1\", \"alg\": \"HS256\", \"kty\": \"oct\", \"k\": \"c2VjcmV0LW1hdGVyaWFs=\"}]}",
                       "\"k1\"", secret_k));
    CHECK(create_fails("{\"keys\": [{\"kid\": \"k1\", \"alg\": \"HS256\", \"kty\": \"oct\", \"k\": \"\"}]}", "\"k1\"", NULL));
    CHECK(create_fails("{\"keys\": [{\"kid\": \"k1\", \"alg\": \"HS256\", \"kty\": \"RSA\", \"k\": \"c2VjcmV0LW1hdGVyaWFs\"}]}",
                       "\"k1\"", secret_k));
    CHECK(create_fails("{\"keys\": [{\"kid\": \"k1\", \"alg\": \"none\", \"kty\": \"oct\", \"k\": \"c2VjcmV0LW1hdGVyaWFs\"}]}",
                       "\"k1\"", secret_k));
    CHECK(create_fails("{\"keys\": [{\"kid\": \"k1\", \"alg\": \"RS384\", \"kty\": \"RSA\"}]}", "\"k1\"", NULL));
    CHECK(create_fails("{\"keys\": [{\"kid\": \"k1\", \"kty\": \"oct\", \"k\": \"c2VjcmV0LW1hdGVyaWFs\"}]}", "\"k1\"", secret_k));
    CHECK(
        create_fails("{\"keys\": [{\"alg\": \"HS256\", \"kty\": \"oct\", \"k\": \"c2VjcmV0LW1hdGVyaWFs\"}]}", "key #0", secret_k));
    CHECK(create_fails("{\"keys\": [{\"kid\": \"a\", \"alg\": \"HS256\", \"kty\": \"oct\", \"k\": \"c2VjcmV0LW1hdGVyaWFs\"},"
                       " {\"kid\": \"a\", \"alg\": \"HS256\", \"kty\": \"oct\", \"k\": \"c2VjcmV0LW1hdGVyaWFs\"}]}",
                       "(kid \"a\"): kid not unique", secret_k));
    CHECK(create_fails("{\"keys\": [{\"kid\": \"k1\", \"alg\": \"HS256\", \"kty\": \"oct\", \"use\": \"enc\", \"k\": \"c2Vj\"}]}",
                       "\"k1\"", NULL));
    CHECK(create_fails("{\"keys\": [{\"kid\": \"k1\", \"alg\": \"HS256\", \"kty\": \"oct\", \"k\": \"c2Vj\", \"pem\": \"x\"}]}",
                       "\"k1\"", NULL));
    CHECK(create_fails("{\"keys\": {}}", "\"keys\" array", NULL));
    CHECK(create_fails("[]", "\"keys\" array", NULL));
    CHECK(create_fails("{\"keys\": [5]}", "key #0", NULL));
    /* jansson's error text would quote the secret; only the position is reported. */
    CHECK(create_fails("{\"keys\": [{\"kid\": \"k1\", \"k\": \"secret-material\" secret-material}]}", "line 1", secret_k));
    CHECK(create_fails("{\"keys\": [], \"keys\": []}", "line 1", NULL));

    /* RSA: a short modulus, private members, an exponent that is not base64url or is 1, a PEM that is cut short, of another
     * type or private. */
    {
        EVP_PKEY *small = EVP_RSA_gen(1024);
        json_t *keys = json_array();
        char *dump;
        json_array_append_new(keys, rsa_jwk("small", small));
        dump = dump_jwks(keys);
        CHECK(create_fails(dump, "(kid \"small\"): RSA modulus shorter than 2048 bits", NULL));
        free(dump);
        EVP_PKEY_free(small);
    }
    snprintf(
        text, sizeof(text),
        "{\"keys\": [{\"kid\": \"r\", \"alg\": \"RS256\", \"kty\": \"RSA\", \"n\": \"%s\", \"e\": \"AQAB\", \"d\": \"AQAB\"}]}", n);
    CHECK(create_fails(text, "(kid \"r\"): private key members", no_n));
    snprintf(text, sizeof(text),
             "{\"keys\": [{\"kid\": \"r\", \"alg\": \"RS256\", \"kty\": \"RSA\", \"n\": \"%s\", \"e\": \"AQ=B\"}]}", n);
    CHECK(create_fails(text, "\"r\"", no_n));
    snprintf(text, sizeof(text),
             "{\"keys\": [{\"kid\": \"r\", \"alg\": \"RS256\", \"kty\": \"RSA\", \"n\": \"%s\", \"e\": \"AQ\"}]}", n);
    CHECK(create_fails(text, "(kid \"r\"): fails OpenSSL's public key check", no_n));
    snprintf(text, sizeof(text), "{\"keys\": [{\"kid\": \"r\", \"alg\": \"RS256\", \"kty\": \"RSA\", \"pem\": \"%.*s\"}]}", 26,
             ec_pub_pem);
    CHECK(create_fails(text, "(kid \"r\"): \"pem\" is not a PEM public key", NULL));
    {
        json_t *keys = json_array();
        char *dump, *priv = priv_pem(rsa_key);
        json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s}", "kid", "r", "alg", "RS256", "kty", "RSA", "pem", ec_pub_pem));
        json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s}", "kid", "p", "alg", "RS256", "kty", "RSA", "pem", priv));
        dump = dump_jwks(keys);
        CHECK(create_fails(dump, "(kid \"r\"): not an RSA key", NULL));
        free(dump);
        keys = json_array();
        json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s}", "kid", "p", "alg", "RS256", "kty", "RSA", "pem", priv));
        dump = dump_jwks(keys);
        CHECK(create_fails(dump, "(kid \"p\"): \"pem\" is not a PEM public key", NULL));
        free(dump);
        free(priv);
    }
    /* EC: another curve, a point off the curve, short coordinates. */
    snprintf(
        text, sizeof(text),
        "{\"keys\": [{\"kid\": \"e\", \"alg\": \"ES256\", \"kty\": \"EC\", \"crv\": \"P-384\", \"x\": \"%s\", \"y\": \"%s\"}]}", x,
        y);
    CHECK(create_fails(text, "(kid \"e\"): ES256 needs \"crv\" \"P-256\"", NULL));
    snprintf(
        text, sizeof(text),
        "{\"keys\": [{\"kid\": \"e\", \"alg\": \"ES256\", \"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"%s\", \"y\": \"%s\"}]}", x,
        x);
    CHECK(create_fails(text, "\"e\"", NULL));
    snprintf(
        text, sizeof(text),
        "{\"keys\": [{\"kid\": \"e\", \"alg\": \"ES256\", \"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"AAAA\", \"y\": \"%s\"}]}",
        y);
    CHECK(create_fails(text, "(kid \"e\"): \"x\" or \"y\" is not 32 bytes", NULL));
    snprintf(text, sizeof(text),
             "{\"keys\": [{\"kid\": \"e\", \"alg\": \"ES256\", \"kty\": \"RSA\", \"x\": \"%s\", \"y\": \"%s\"}]}", x, y);
    CHECK(create_fails(text, "\"e\"", NULL));

    /* The secret's kid "default" taken by the keys file, an empty secret, a missing file. */
    snprintf(text, sizeof(text), "%s/dup.json", tmpdir);
    write_text(text, "{\"keys\": [{\"kid\": \"default\", \"alg\": \"HS256\", \"kty\": \"oct\", \"k\": \"c2VjcmV0LW1hdGVyaWFs\"}]}");
    CHECK((jwt = create_full(SECRET, text, NULL, NULL, 0, 10, err, sizeof(err))) == NULL);
    CHECK(strstr(err, "(kid \"default\"): kid not unique") != NULL);
    CHECK((jwt = create_full(NULL, text, NULL, NULL, 0, 10, err, sizeof(err))) != NULL);
    sff_jwt_destroy(jwt);
    unlink(text);
    CHECK((jwt = create_full("", NULL, NULL, NULL, 0, 10, err, sizeof(err))) == NULL);
    CHECK(strstr(err, "SFF_JWT_SECRET") != NULL);
    CHECK((jwt = create_full(SECRET, "/nonexistent/keys.json", NULL, NULL, 0, 10, err, sizeof(err))) == NULL);
    CHECK(strstr(err, "/nonexistent/keys.json") != NULL);
    /* A short secret is accepted. */
    CHECK((jwt = create_full("s", NULL, NULL, NULL, 0, 10, err, sizeof(err))) != NULL);
    CHECK_INT(sff_jwt_key_count(jwt), 1);
    sff_jwt_destroy(jwt);
    free(n);
    free(x);
    free(y);
}

TEST(sign_hs256_round_trips)
{
    json_t *claims =
        json_pack("{s:s, s:I, s:[s, s], s:f}", "sub", "bob", "exp", (json_int_t)1700000600, "roles", "a", "b", "x", 1.5);
    char err[256], *token = sff_jwt_sign_hs256(SECRET, claims), *header;
    sff_jwt_t *jwt = create_full(SECRET, NULL, NULL, NULL, 0, 10, err, sizeof(err));
    json_t *got = NULL, *h;
    size_t n = 0;

    CHECK(token != NULL);
    CHECK_INT(verify(jwt, token, NOW, NULL, &got), 0);
    CHECK(json_equal(got, claims));
    /* The header names kid "default". */
    header = strndup(token, (size_t)(strchr(token, '.') - token));
    {
        size_t len = strlen(header), i;
        unsigned char *bin = malloc(len + 4);
        static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        unsigned acc = 0;
        int bits = 0;
        for (i = 0; i != len; ++i) {
            acc = (acc << 6) | (unsigned)(strchr(chars, header[i]) - chars);
            if ((bits += 6) >= 8) {
                bits -= 8;
                bin[n++] = (unsigned char)(acc >> bits);
            }
        }
        h = json_loadb((const char *)bin, n, 0, NULL);
        CHECK_STR(json_string_value(json_object_get(h, "kid")), "default");
        CHECK_STR(json_string_value(json_object_get(h, "alg")), "HS256");
        json_decref(h);
        free(bin);
    }
    free(header);
    json_decref(got);
    /* Signed with another secret: refused. */
    free(token);
    token = sff_jwt_sign_hs256("another secret entirely, long enough", claims);
    CHECK_STR(why_refused(jwt, token, NOW), "bad signature");
    free(token);
    CHECK(sff_jwt_sign_hs256(NULL, claims) == NULL);
    CHECK(sff_jwt_sign_hs256("", claims) == NULL);
    {
        json_t *array = json_array();
        CHECK(sff_jwt_sign_hs256(SECRET, array) == NULL);
        json_decref(array);
    }
    json_decref(claims);
    sff_jwt_destroy(jwt);
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(jwks_path, sizeof(jwks_path), "%s/keys.json", tmpdir);
    rsa_key = EVP_RSA_gen(2048);
    rsa2_key = EVP_RSA_gen(2048);
    ec_key = EVP_EC_gen("P-256");
    ec2_key = EVP_EC_gen("P-256");
    rsa_pub_pem = pub_pem(rsa_key);
    ec_pub_pem = pub_pem(ec_key);

    RUN(hmac_tokens_verify_and_return_claims);
    RUN(rs256_and_es256_tokens_verify);
    RUN(libjwt_and_verifier_agree_on_es256_and_rs256);
    RUN(alg_none_is_refused);
    RUN(hmac_with_public_key_as_secret_is_refused);
    RUN(header_alg_other_than_the_keys_is_refused);
    RUN(wrong_signature_is_refused);
    RUN(every_one_byte_change_of_a_valid_token_is_refused);
    RUN(unknown_kid_is_refused);
    RUN(exp_is_required_numeric_and_checked_with_leeway);
    RUN(nbf_and_iat_in_the_future_are_refused);
    RUN(issuer_and_audience);
    RUN(malformed_tokens_are_refused);
    RUN(header_typ_and_crit);
    RUN(cache_hits_and_expiry);
    RUN(cache_evicts_the_oldest_and_can_be_disabled);
    RUN(reload_replaces_keys_and_keeps_them_on_error);
    RUN(invalid_keys_fail_create_with_the_kid_and_no_key_material);
    RUN(sign_hs256_round_trips);

    unlink(jwks_path);
    rmdir(tmpdir);
    free(rsa_pub_pem);
    free(ec_pub_pem);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa2_key);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ec2_key);
    return test_done();
}
