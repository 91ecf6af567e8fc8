/* Authentication through the real server: tokens from the header and the cookie, pinned
 * algorithms, claims, roles, keys files reloaded on SIGHUP, and what the logs never show. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/setup.h"
#include "test.h"

static tc_server_t srv;
static char base[64], fdir[512];

static int get_with(int port, const char *path, const char *token, tc_response_t *res)
{
    char hdr[4096];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    return tc_get(port, path, hdr, res);
}

static int status_with(int port, const char *path, const char *token)
{
    tc_response_t res;
    get_with(port, path, token, &res);
    int s = res.status;
    tc_response_free(&res);
    return s;
}

#define K1_SECRET "k1-secret-for-tests-0123456789"

static char *tc_jwt_hs384_for_test(const char *payload)
{
    return tc_jwt_hmac("SHA384", K1_SECRET, strlen(K1_SECRET), "{\"alg\":\"HS384\",\"kid\":\"k1\"}", payload);
}

static char *claims_token(const char *secret, const char *alg_header, const char *payload_fmt, long long exp_offset)
{
    char payload[512];
    snprintf(payload, sizeof(payload), payload_fmt, (long long)time(NULL) + exp_offset);
    return tc_jwt_hs256(secret, alg_header, payload);
}

TEST(missing_token_is_401_with_challenge)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/examples/whoami", NULL, &res) == 0);
    CHECK_INT(res.status, 401);
    CHECK_STR(tc_header(&res, "www-authenticate"), "Bearer realm=\"sff\"");
    CHECK(strstr(res.body, "\"code\":\"unauthorized\"") != NULL);
    tc_response_free(&res);
}

TEST(valid_token_in_header_and_cookie)
{
    char *tok = tc_token("alice", NULL, 60), hdr[4096];
    tc_response_t res;
    CHECK(get_with(srv.port, "/examples/whoami", tok, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK(strstr(res.body, "\"sub\":\"alice\"") != NULL);
    tc_response_free(&res);
    snprintf(hdr, sizeof(hdr), "Cookie: theme=dark; jwtToken=%s; other=1\r\n", tok);
    CHECK(tc_get(srv.port, "/examples/whoami", hdr, &res) == 0);
    CHECK_INT(res.status, 200);
    tc_response_free(&res);
    free(tok);
}

TEST(invalid_tokens_are_401_invalid_token)
{
    char *good = tc_token("bob", NULL, 60);
    char bad[4096];
    snprintf(bad, sizeof(bad), "%s", good);
    bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A'; /* break the signature */
    tc_response_t res;
    CHECK(get_with(srv.port, "/examples/whoami", bad, &res) == 0);
    CHECK_INT(res.status, 401);
    const char *www = tc_header(&res, "www-authenticate");
    CHECK(www != NULL && strstr(www, "error=\"invalid_token\"") != NULL);
    tc_response_free(&res);

    char *none = claims_token(NULL, "{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"sub\":\"eve\",\"exp\":%lld}", 60);
    CHECK_INT(status_with(srv.port, "/examples/whoami", none), 401);
    char *wrong_key = claims_token("not-the-secret-not-the-secret-xx", "{\"alg\":\"HS256\"}", "{\"sub\":\"eve\",\"exp\":%lld}", 60);
    CHECK_INT(status_with(srv.port, "/examples/whoami", wrong_key), 401);
    char *hs512 = claims_token(TC_SECRET, "{\"alg\":\"HS512\"}", "{\"sub\":\"eve\",\"exp\":%lld}", 60);
    CHECK_INT(status_with(srv.port, "/examples/whoami", hs512), 401); /* the default key is pinned to HS256 */
    char *expired = claims_token(TC_SECRET, "{\"alg\":\"HS256\"}", "{\"sub\":\"eve\",\"exp\":%lld}", -3600);
    CHECK_INT(status_with(srv.port, "/examples/whoami", expired), 401);
    char *leeway = claims_token(TC_SECRET, "{\"alg\":\"HS256\"}", "{\"sub\":\"eve\",\"exp\":%lld}", -5);
    CHECK_INT(status_with(srv.port, "/examples/whoami", leeway), 200); /* within SFF_JWT_LEEWAY_S */
    char *string_exp = claims_token(TC_SECRET, "{\"alg\":\"HS256\"}", "{\"sub\":\"eve\",\"exp\":\"%lld\"}", 60);
    CHECK_INT(status_with(srv.port, "/examples/whoami", string_exp), 401);
    char *no_exp = claims_token(TC_SECRET, "{\"alg\":\"HS256\"}", "{\"sub\":\"eve\",\"x\":%lld}", 60);
    CHECK_INT(status_with(srv.port, "/examples/whoami", no_exp), 401);
    char *future_nbf = claims_token(TC_SECRET, "{\"alg\":\"HS256\"}", "{\"sub\":\"eve\",\"exp\":9999999999,\"nbf\":%lld}", 3600);
    CHECK_INT(status_with(srv.port, "/examples/whoami", future_nbf), 401);
    CHECK_INT(status_with(srv.port, "/examples/whoami", "garbage"), 401);
    CHECK_INT(status_with(srv.port, "/examples/whoami", "a.b.c"), 401);
    free(good);
    free(none);
    free(wrong_key);
    free(hs512);
    free(expired);
    free(leeway);
    free(string_exp);
    free(no_exp);
    free(future_nbf);
}

TEST(public_routes_ignore_a_bad_token)
{
    CHECK_INT(status_with(srv.port, "/examples/hello", "garbage"), 200);
}

TEST(roles)
{
    char *user = tc_token("u", NULL, 60), *admin = tc_token("a", "admin", 60);
    tc_response_t res;
    CHECK(get_with(srv.port, "/examples/admin", user, &res) == 0);
    CHECK_INT(res.status, 403);
    CHECK(strstr(res.body, "\"code\":\"forbidden\"") != NULL);
    tc_response_free(&res);
    CHECK_INT(status_with(srv.port, "/examples/admin", admin), 200);
    char *roles = claims_token(TC_SECRET, "{\"alg\":\"HS256\"}", "{\"sub\":\"r\",\"roles\":[\"x\",\"admin\"],\"exp\":%lld}", 60);
    CHECK_INT(status_with(srv.port, "/examples/admin", roles), 200);
    free(user);
    free(admin);
    free(roles);
}

TEST(auth_failures_are_counted)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/_metrics", NULL, &res) == 0);
    CHECK(strstr(res.body, "sff_auth_failures_total{reason=\"invalid\"}") != NULL);
    CHECK(strstr(res.body, "sff_auth_failures_total{reason=\"invalid\"} 0\n") == NULL);
    CHECK(strstr(res.body, "sff_auth_failures_total{reason=\"forbidden\"} 0\n") == NULL);
    tc_response_free(&res);
}

TEST(tokens_never_reach_the_logs)
{
    char *tok = tc_token("logcheck", NULL, 60);
    CHECK_INT(status_with(srv.port, "/examples/whoami?access_token=zzz", tok), 200);
    usleep(100000);
    char *sig = strrchr(tok, '.') + 1;
    CHECK(!tc_server_log_contains(&srv, sig));
    CHECK(!tc_server_log_contains(&srv, TC_SECRET));
    CHECK(!tc_server_log_contains(&srv, "access_token=zzz")); /* query strings are not logged */
    CHECK(tc_server_log_contains(&srv, "\"sub\":\"logcheck\""));
    free(tok);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

TEST(keys_file_with_kids_reloaded_on_sighup)
{
    char keys[600], env_keys[700], env_fn[700], rsa[600], pub[600];
    snprintf(keys, sizeof(keys), "%s/keys.json", base);
    snprintf(rsa, sizeof(rsa), "%s/rsa.pem", base);
    snprintf(pub, sizeof(pub), "%s/rsa.pub", base);
    CHECK(tc_sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '%s' 2>/dev/null && "
                "openssl pkey -in '%s' -pubout -out '%s'",
                rsa, rsa, pub) == 0);
    /* k1: HS384 secret "k1-secret..." (base64url), r1: an RSA public key as PEM */
    char text[8192], pem[4096] = "";
    FILE *f = fopen(pub, "r");
    size_t n = f != NULL ? fread(pem, 1, sizeof(pem) - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    pem[n] = '\0';
    json_t *doc = json_pack("{s:[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}]}", "keys", "kid", "k1", "alg", "HS384", "kty", "oct",
                            "k", "azEtc2VjcmV0LWZvci10ZXN0cy0wMTIzNDU2Nzg5", "kid", "r1", "alg", "RS256", "kty", "RSA", "pem", pem);
    char *dumped = json_dumps(doc, 0);
    snprintf(text, sizeof(text), "%s", dumped);
    free(dumped);
    json_decref(doc);
    CHECK(write_file(keys, text) == 0);

    tc_server_t k;
    snprintf(env_keys, sizeof(env_keys), "SFF_JWT_KEYS_FILE=%s", keys);
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    const char *env[] = {env_keys,
                         env_fn,
                         "SFF_WORKERS=1",
                         "SFF_SCHEMAS_DIR=schemas",
                         "SFF_JWT_ISSUER=https://issuer.example",
                         "SFF_JWT_AUDIENCE=sff-tests",
                         NULL};
    if (tc_server_start(&k, env) != 0) {
        CHECK(!"the server starts with a keys file");
        return;
    }
    char payload[256];
    snprintf(payload, sizeof(payload),
             "{\"sub\":\"k\",\"iss\":\"https://issuer.example\",\"aud\":[\"x\",\"sff-tests\"],\"exp\":%lld}",
             (long long)time(NULL) + 60);
    char *t1 = tc_jwt_hs384_for_test(payload);
    CHECK_INT(status_with(k.port, "/examples/whoami", t1), 200);

    /* RS256 signed with openssl; then the same claims as HS256 with the public key as the HMAC
     * secret (algorithm confusion) must fail */
    char cmd[4096], rs[4096] = "";
    snprintf(cmd, sizeof(cmd),
             "H=$(printf '%%s' '{\"alg\":\"RS256\",\"kid\":\"r1\"}' | base64 -w0 | tr '+/' '-_' | tr -d '=');"
             "P=$(printf '%%s' '%s' | base64 -w0 | tr '+/' '-_' | tr -d '=');"
             "S=$(printf '%%s' \"$H.$P\" | openssl dgst -sha256 -sign '%s' -binary | base64 -w0 | tr '+/' '-_' | tr -d '=');"
             "printf '%%s' \"$H.$P.$S\"",
             payload, rsa);
    FILE *p = popen(cmd, "r");
    n = p != NULL ? fread(rs, 1, sizeof(rs) - 1, p) : 0;
    if (p != NULL)
        pclose(p);
    rs[n] = '\0';
    CHECK_INT(status_with(k.port, "/examples/whoami", rs), 200);
    char confused_hdr[] = "{\"alg\":\"HS256\",\"kid\":\"r1\"}";
    char *confused = tc_jwt_hs256(pem, confused_hdr, payload);
    CHECK_INT(status_with(k.port, "/examples/whoami", confused), 401);

    /* issuer and audience are enforced */
    char wrong_iss[256];
    snprintf(wrong_iss, sizeof(wrong_iss), "{\"sub\":\"k\",\"iss\":\"https://evil.example\",\"aud\":\"sff-tests\",\"exp\":%lld}",
             (long long)time(NULL) + 60);
    char *t_iss = tc_jwt_hs384_for_test(wrong_iss);
    CHECK_INT(status_with(k.port, "/examples/whoami", t_iss), 401);
    char wrong_aud[256];
    snprintf(wrong_aud, sizeof(wrong_aud), "{\"sub\":\"k\",\"iss\":\"https://issuer.example\",\"aud\":\"other\",\"exp\":%lld}",
             (long long)time(NULL) + 60);
    char *t_aud = tc_jwt_hs384_for_test(wrong_aud);
    CHECK_INT(status_with(k.port, "/examples/whoami", t_aud), 401);

    /* rotate: drop k1, SIGHUP, its tokens stop working (the cache is emptied too) */
    CHECK(
        write_file(
            keys,
            "{\"keys\":[{\"kid\":\"k2\",\"alg\":\"HS256\",\"kty\":\"oct\",\"k\":\"azItc2VjcmV0LWZvci10ZXN0cy0wMTIzNDU2Nzg5\"}]}") ==
        0);
    tc_server_signal(&k, SIGHUP);
    int refused = 0;
    for (int i = 0; i < 50 && !refused; i++) {
        usleep(50000);
        refused = status_with(k.port, "/examples/whoami", t1) == 401;
    }
    CHECK(refused);
    /* a broken keys file on reload keeps the keys that work */
    CHECK(write_file(keys, "{\"keys\":[{\"kid\":\"bad\",\"alg\":\"RS256\",\"kty\":\"oct\"}]}") == 0);
    tc_server_signal(&k, SIGHUP);
    usleep(300000);
    CHECK(tc_server_log_contains(&k, "JWT keys reload failed"));
    tc_server_stop(&k);
    free(t1);
    free(confused);
    free(t_iss);
    free(t_aud);
}

int main(void)
{
    char env_fn[700];
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0)
        return 1;
    snprintf(base, sizeof(base), "/tmp/sff-it20-XXXXXX");
    if (mkdtemp(base) == NULL || tc_functions_dir(base, fdir, sizeof(fdir)) != 0)
        return 1;
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    const char *env[] = {env_fn, "SFF_WORKERS=1", "SFF_SCHEMAS_DIR=schemas", "SFF_JWT_SECRET=" TC_SECRET, "SFF_JWT_LEEWAY_S=30",
                         NULL};
    if (tc_server_start(&srv, env) != 0)
        return 1;
    RUN(missing_token_is_401_with_challenge);
    RUN(valid_token_in_header_and_cookie);
    RUN(invalid_tokens_are_401_invalid_token);
    RUN(public_routes_ignore_a_bad_token);
    RUN(roles);
    RUN(auth_failures_are_counted);
    RUN(tokens_never_reach_the_logs);
    RUN(keys_file_with_kids_reloaded_on_sighup);
    tc_server_stop(&srv);
    tc_sh("rm -rf '%s'", base);
    return test_done();
}
