/*
 * sigv4.h - AWS Signature Version 4 (HMAC-SHA256): canonical request, string to sign, signing key,
 * Authorization header and presigned URLs. Pure functions: no I/O, no clock, no global state.
 *
 * Two path modes:
 *  - SFF_SIGV4_S3: the path is used as it goes on the wire, already URI-encoded once by the caller
 *    (sff_sigv4_uri_encode() with keep_slash), and never normalised: S3 keys may hold "//" or "./".
 *  - SFF_SIGV4_GENERIC: every other AWS service. The wire path is normalised (empty and "."
 *    segments dropped, ".." removes the previous one) and URI-encoded again, which is the "double
 *    encoding" of AWS's published test suite.
 *
 * Query parameters are given decoded; the signer encodes and sorts them. Every given header is
 * signed: names are lower-cased, values trimmed with inner runs of spaces and tabs folded into one
 * space, and repeated names joined with "," in the order given.
 */
#ifndef SFF_SIGV4_H
#define SFF_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SFF_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SFF_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* The longest expiry of a presigned URL AWS accepts: seven days. */
#define SFF_SIGV4_MAX_EXPIRES 604800

typedef enum { SFF_SIGV4_S3 = 0, SFF_SIGV4_GENERIC = 1 } sff_sigv4_mode_t;

/* A name and a value, both NUL-terminated; borrowed. */
typedef struct st_sff_sigv4_kv_t {
    const char *name;
    const char *value;
} sff_sigv4_kv_t;

/* Who signs, and for what. All strings borrowed; session_token may be NULL. */
typedef struct st_sff_sigv4_credentials_t {
    const char *access_key;
    const char *secret_key;
    const char *session_token;
    const char *region;
    const char *service; /* "s3" */
} sff_sigv4_credentials_t;

/* One request to sign. All pointers borrowed for the call. */
typedef struct st_sff_sigv4_request_t {
    sff_sigv4_mode_t mode;
    const char *method;
    const char *path; /* as on the wire, starting with "/" (see the modes above) */
    const sff_sigv4_kv_t *query;
    size_t nquery;
    const sff_sigv4_kv_t *headers; /* every header to sign; must include host (and x-amz-date for headers) */
    size_t nheaders;
    const char *payload_hash; /* lower-case hex SHA-256 of the body, or SFF_SIGV4_UNSIGNED_PAYLOAD */
    const char *amz_date;     /* "YYYYMMDDTHHMMSSZ" (sff_sigv4_format_date()) */
} sff_sigv4_request_t;

/* What a signature produced. Strings are malloc()ed and released by sff_sigv4_result_dispose(). */
typedef struct st_sff_sigv4_result_t {
    char *canonical_request;
    char *string_to_sign;
    char *signed_headers; /* "host;x-amz-date" */
    char signature[65];   /* lower-case hex */
    /* sff_sigv4_sign(): the Authorization header's value. sff_sigv4_presign(): NULL. */
    char *authorization;
    /* sff_sigv4_presign(): the whole query string of the URL, without "?": the caller's parameters
     * and the X-Amz-* ones in canonical order, then X-Amz-Signature. sff_sigv4_sign(): NULL. */
    char *query;
} sff_sigv4_result_t;

/* Writes t (UTC) as "YYYYMMDDTHHMMSSZ" into out. */
void sff_sigv4_format_date(time_t t, char out[17]);

/*
 * URI-encodes len bytes of src the way AWS wants it (RFC 3986 unreserved characters
 * A-Z a-z 0-9 - . _ ~ kept, every other byte as %XX with upper-case hex; with keep_slash "/" is
 * kept too). dst must hold 3 * len + 1 bytes; it is NUL-terminated. Returns the length written.
 */
size_t sff_sigv4_uri_encode(char *dst, const char *src, size_t len, int keep_slash);

/* The canonical query string of params (decoded names and values): encoded, sorted by name and
 * then value, joined with "&". New string (free()), or NULL when memory runs out. */
char *sff_sigv4_canonical_query(const sff_sigv4_kv_t *params, size_t n);

/* The signing key: HMAC chain of "AWS4" + secret over date8 ("YYYYMMDD"), region, service and
 * "aws4_request". Returns 0, or SFF_EINTERNAL when OpenSSL fails. */
int sff_sigv4_signing_key(const char *secret_key, const char *date8, const char *region, const char *service, uint8_t out[32]);

/*
 * Signs req for an Authorization header. Fills out (zeroed first). Returns 0, SFF_EBADREQ for an
 * invalid request (no path, a date of the wrong form, a header name or value with CR or LF) or
 * SFF_ENOMEM; out holds nothing to dispose after a failure.
 */
int sff_sigv4_sign(const sff_sigv4_credentials_t *cred, const sff_sigv4_request_t *req, sff_sigv4_result_t *out);

/*
 * Presigns req: adds X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
 * X-Amz-SignedHeaders (and X-Amz-Security-Token with a session token) to req's query, signs the
 * given headers (normally only host) with req->payload_hash (SFF_SIGV4_UNSIGNED_PAYLOAD for S3)
 * and fills out->query. expires_s must be 1..SFF_SIGV4_MAX_EXPIRES (else SFF_EBADREQ). Returns as
 * sff_sigv4_sign().
 */
int sff_sigv4_presign(const sff_sigv4_credentials_t *cred, const sff_sigv4_request_t *req, uint32_t expires_s,
                      sff_sigv4_result_t *out);

/* Frees what a result holds and zeroes it; harmless on a zeroed result. */
void sff_sigv4_result_dispose(sff_sigv4_result_t *out);

/* Lower-case hex SHA-256 of len bytes into out (65 bytes with the NUL). */
void sff_sigv4_sha256_hex(const void *data, size_t len, char out[65]);

#endif
