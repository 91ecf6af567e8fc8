/*
 * jwt.h - JWT verification with keys pinned to one algorithm each, and a cache of verified tokens.
 *
 * Keys come from SFF_JWT_SECRET (one HS256 key, kid "default") and from SFF_JWT_KEYS_FILE, a
 * JWKS-style file: {"keys": [{"kid": "...", "alg": "HS256|HS384|HS512|RS256|ES256", "kty": "oct",
 * "k": "<base64url>"} | {"kty": "RSA", "n": ..., "e": ...} | {"kty": "EC", "crv": "P-256", "x":
 * ..., "y": ...}]}. A token names its key by "kid" (no kid: the key "default", or the only key).
 * Its header "alg" must equal the key's pinned alg: "none", an HMAC token against an RSA key and
 * every other mix are refused. Claims: "exp", "nbf", "iat" must be numbers when present ("exp"
 * required), checked with a leeway; "iss" and "aud" (string or array) when configured.
 */
#ifndef SFF_JWT_H
#define SFF_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

typedef struct st_sff_jwt_t sff_jwt_t;

typedef struct st_sff_jwt_config_t {
    const char *secret;    /* SFF_JWT_SECRET, or NULL */
    const char *keys_file; /* SFF_JWT_KEYS_FILE, or NULL */
    const char *issuer;    /* SFF_JWT_ISSUER, or NULL */
    const char *audience;  /* SFF_JWT_AUDIENCE, or NULL */
    int64_t leeway_s;      /* SFF_JWT_LEEWAY_S */
    size_t cache_size;     /* verified tokens kept, 0 disables the cache */
} sff_jwt_config_t;

/* A new verifier (caller destroys it with sff_jwt_destroy()), or NULL with a message in err (a
 * keys file that cannot be read or has an invalid key). The config strings are copied. With no
 * key at all, every token is refused. */
sff_jwt_t *sff_jwt_create(const sff_jwt_config_t *config, char *err, size_t errlen);
void sff_jwt_destroy(sff_jwt_t *jwt);

/* Re-reads the keys file and empties the cache. On error the old keys stay and -1 is returned
 * with a message in err. */
int sff_jwt_reload(sff_jwt_t *jwt, char *err, size_t errlen);

/* Number of keys loaded. */
size_t sff_jwt_key_count(const sff_jwt_t *jwt);

/*
 * Verifies a compact token at time now (Unix seconds). Returns 0 and sets *claims to a new
 * reference (the caller json_decref()s it), or -1 and sets *why to a short static reason (never
 * containing the token). A verified token is cached until its "exp", so a second verification of
 * the same token costs a hash lookup.
 */
int sff_jwt_verify(sff_jwt_t *jwt, const char *token, size_t len, int64_t now, json_t **claims, const char **why);

/* Cache statistics, for metrics. */
uint64_t sff_jwt_cache_hits(const sff_jwt_t *jwt);
uint64_t sff_jwt_cache_misses(const sff_jwt_t *jwt);

/* Signs claims with HS256 and the given secret (kid "default"). Returns a malloc()ed token the
 * caller frees, or NULL. For `sff token` and tests. */
char *sff_jwt_sign_hs256(const char *secret, json_t *claims);

#endif
