/*
 * setup.h - fixtures shared by the integration tests: a functions directory with the build's
 * modules, tokens, JSON bodies.
 */
#ifndef SFF_TEST_SETUP_H
#define SFF_TEST_SETUP_H

#include <stddef.h>
#include <jansson.h>

#define TC_SECRET "integration-test-secret-0123456789abcdef"

/* Creates dir/functions holding the build's examples.so and the test fixture.so (symlinks); writes
 * the path into out. Returns 0 or -1. */
int tc_functions_dir(const char *dir, char *out, size_t size);

/* The path of a file of the build under test: "sff", "functions/examples.so",
 * "tests/functions/fixture.so"... (static buffer). */
const char *tc_build_path(const char *rel);

/* A compact JWS: base64url(header).base64url(payload).base64url(HMAC-SHA256(secret)); with secret
 * NULL, no signature part content (for alg "none"). malloc()ed. */
char *tc_jwt_hs256(const char *secret, const char *header_json, const char *payload_json);

/* The same with HMAC over digest md ("SHA256", "SHA384", "SHA512") and a binary secret. */
char *tc_jwt_hmac(const char *md, const void *secret, size_t secret_len, const char *header_json, const char *payload_json);

/* An HS256 token for sub (role may be NULL) valid for ttl seconds, signed with TC_SECRET through
 * `sff token`. malloc()ed, or NULL. */
char *tc_token(const char *sub, const char *role, int ttl);

/* Parses a response body; NULL when it is not JSON. New reference. */
json_t *tc_json(const char *body);

/* Runs a shell command, returns its exit status. */
int tc_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Compiles the fixture module with extra flags (e.g. "-DFX_VERSION=2") into path. Returns 0 or -1. */
int tc_build_fixture(const char *path, const char *flags);

#endif
