/* common.c - the todolist's shared pieces: shapes, sessions, the list cache and the activity feed. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "todolist.h"

sff_json_t *tl_params(sff_req_t *r, int n, ...)
{
    sff_json_t *a = sff_json_array(r);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *s = va_arg(ap, const char *);
        sff_json_append(a, s != NULL ? sff_json_string(r, s) : sff_json_null(r));
    }
    va_end(ap);
    return a;
}

const char *tl_uid(sff_req_t *r)
{
    const char *sub = sff_user_id(r);
    return sub != NULL ? sub : "";
}

static sff_json_t *str_or_empty(sff_req_t *r, sff_json_t *row, const char *key)
{
    return sff_json_string(r, sff_json_get_str(row, key));
}

sff_json_t *tl_user_json(sff_req_t *r, sff_json_t *row)
{
    static const char *fields[] = {"username", "name", "email", "signature", "title", "group", "country", "address", "phone"};
    sff_json_t *u = sff_json_object(r);
    sff_json_set(u, "id", sff_json_get(row, "id"));
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        sff_json_set(u, fields[i], str_or_empty(r, row, fields[i]));
    if (sff_json_str(sff_json_get(row, "avatar_key")) != NULL) {
        char url[128];
        /* the version makes browsers fetch a new avatar after an upload */
        snprintf(url, sizeof(url), "/api/v1/me/avatar?v=%s", sff_json_get_str(row, "updated_at"));
        sff_json_set(u, "avatar_url", sff_json_string(r, url));
    } else {
        sff_json_set(u, "avatar_url", sff_json_null(r));
    }
    sff_json_set(u, "role", str_or_empty(r, row, "role"));
    sff_json_set(u, "created_at", sff_json_get(row, "created_at"));
    return u;
}

sff_json_t *tl_todo_json(sff_req_t *r, sff_json_t *row)
{
    sff_json_t *t = sff_json_object(r);
    sff_json_set(t, "id", sff_json_get(row, "id"));
    sff_json_set(t, "name", sff_json_get(row, "name"));
    sff_json_set(t, "desc", sff_json_get(row, "desc"));
    sff_json_set(t, "status", sff_json_string(r, sff_json_int_value(sff_json_get(row, "status")) == 2 ? "done" : "open"));
    sff_json_set(t, "progress", sff_json_get(row, "progress"));
    sff_json_set(t, "href", sff_json_get(row, "href"));
    sff_json_set(t, "created_at", sff_json_get(row, "created_at"));
    sff_json_set(t, "updated_at", sff_json_get(row, "updated_at"));
    return t;
}

sff_json_t *tl_rule_json(sff_req_t *r, sff_json_t *row, const char *owner_name)
{
    sff_json_t *t = sff_json_object(r);
    sff_json_set(t, "key", sff_json_get(row, "id"));
    sff_json_set(t, "name", sff_json_get(row, "name"));
    sff_json_set(t, "desc", sff_json_get(row, "desc"));
    sff_json_set(t, "owner", sff_json_string(r, owner_name != NULL ? owner_name : ""));
    sff_json_set(t, "status", sff_json_get(row, "status"));
    sff_json_set(t, "progress", sff_json_get(row, "progress"));
    sff_json_set(t, "callNo", sff_json_get(row, "call_no"));
    sff_json_set(t, "href", sff_json_get(row, "href"));
    sff_json_set(t, "avatar", sff_json_get(row, "avatar"));
    sff_json_set(t, "disabled", sff_json_bool(r, 0));
    sff_json_set(t, "createdAt", sff_json_get(row, "created_at"));
    sff_json_set(t, "updatedAt", sff_json_get(row, "updated_at"));
    return t;
}

int tl_load_user(sff_req_t *r, const char *uid, sff_json_t **row)
{
    int ret = sff_db_one(r, row, "select " TL_USER_COLUMNS " from users where id = $1::bigint", tl_params(r, 1, uid));
    if (ret == 0 && *row == NULL)
        return sff_error(r, SFF_EUNAUTHORIZED, "the user is gone");
    return ret;
}

int tl_check_login(sff_req_t *r, const char *username, const char *password, sff_json_t **row)
{
    char key[160], lower[72];
    size_t n = 0;
    *row = NULL;
    for (const char *p = username; *p != '\0' && n + 1 < sizeof(lower); p++)
        lower[n++] = (char)tolower((unsigned char)*p);
    lower[n] = '\0';
    /* 10 attempts a minute per username, 30 per address */
    snprintf(key, sizeof(key), "login:user:%s", lower);
    int ret = sff_rate_limit(r, key, 10, 60);
    if (ret != 0)
        return ret;
    snprintf(key, sizeof(key), "login:ip:%s", sff_client_ip(r));
    if ((ret = sff_rate_limit(r, key, 30, 60)) != 0)
        return ret;
    sff_json_t *user, *hash_row;
    if ((ret = sff_db_one(r, &hash_row, "select id, password_hash from users where lower(username) = lower($1)",
                          tl_params(r, 1, username))) != 0)
        return ret;
    int match = 0;
    /* an unknown name costs a hash too, so timing does not tell which names exist */
    ret = sff_password_verify(r, hash_row != NULL ? sff_json_get_str(hash_row, "password_hash") : NULL, password, &match);
    if (ret != 0 || hash_row == NULL || !match)
        return ret;
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)sff_json_int_value(sff_json_get(hash_row, "id")));
    if ((ret = tl_load_user(r, id, &user)) != 0)
        return ret;
    *row = user;
    return 0;
}

int tl_issue_session(sff_req_t *r, sff_json_t *user, int refresh, const char **token)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)sff_json_int_value(sff_json_get(user, "id")));
    sff_json_t *claims = sff_json_object(r);
    sff_json_set(claims, "sub", sff_json_string(r, id));
    sff_json_set(claims, "name", sff_json_get(user, "username"));
    sff_json_set(claims, "role", sff_json_get(user, "role"));
    int ret = sff_token_sign(r, claims, TL_ACCESS_TTL_S, token);
    if (ret != 0)
        return ret;
    sff_cookie_t access = {.max_age_s = TL_ACCESS_TTL_S, .http_only = 1};
    sff_set_cookie(r, "jwtToken", *token, &access);
    if (!refresh)
        return 0;
    const char *rt;
    if ((ret = sff_random_token(r, 32, &rt)) != 0)
        return ret;
    char key[128], ttl[16];
    snprintf(key, sizeof(key), "todolist:refresh:%s", rt);
    snprintf(ttl, sizeof(ttl), "%d", TL_REFRESH_TTL_S);
    const char *argv[] = {"SET", key, id, "EX", ttl};
    if ((ret = sff_redis(r, NULL, 5, argv)) != 0)
        return ret;
    sff_cookie_t rc = {.max_age_s = TL_REFRESH_TTL_S, .http_only = 1, .path = "/api/v1/session", .same_site = "Strict"};
    sff_set_cookie(r, "refreshToken", rt, &rc);
    return 0;
}

int tl_create_user(sff_req_t *r, const char *username, const char *password, const char *name, sff_json_t **row)
{
    const char *hash;
    int ret = sff_password_hash(r, password, &hash);
    if (ret != 0)
        return ret;
    ret = sff_db_one(r, row, "insert into users (username, password_hash, name) values ($1, $2, $3) returning " TL_USER_COLUMNS,
                     tl_params(r, 3, username, hash, name != NULL ? name : username));
    if (ret == SFF_ECONFLICT)
        return sff_error(r, SFF_ECONFLICT, "the username \"%s\" is taken", username);
    return ret;
}

const char *tl_list_tag(sff_req_t *r, const char *uid)
{
    char tag[64];
    snprintf(tag, sizeof(tag), "todos:%s", uid);
    return sff_json_str(sff_json_string(r, tag));
}

void tl_after_write(sff_req_t *r, const char *what, sff_json_t *todo)
{
    const char *tags[] = {tl_list_tag(r, tl_uid(r))};
    sff_cache_invalidate(r, tags, 1);
    sff_json_t *line = sff_json_object(r);
    sff_json_set(line, "what", sff_json_string(r, what));
    if (todo != NULL) {
        sff_json_set(line, "id", sff_json_get(todo, "id"));
        sff_json_set(line, "name", sff_json_get(todo, "name"));
    }
    char key[64];
    snprintf(key, sizeof(key), "todolist:activity:%s", tl_uid(r));
    const char *push[] = {"LPUSH", key, sff_json_dump(r, line)};
    const char *trim[] = {"LTRIM", key, "0", "19"};
    sff_future_t *f[2] = {sff_redis_send(r, 3, push, NULL), sff_redis_send(r, 4, trim, NULL)};
    sff_await_all(r, f, 2, 0); /* the feed is best-effort: a failure is not the write's */
}
