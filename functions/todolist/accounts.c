/* accounts.c - registration, sessions (login, refresh, logout), the profile and its avatar, in the
 * v1 API and in the legacy contract. */
#include <stdio.h>
#include <string.h>
#include "todolist.h"

/* ---- v1 ---------------------------------------------------------------------------------------- */

int tl_v1_register(sff_req_t *r)
{
    sff_json_t *in = sff_input(r), *row;
    const char *name = sff_json_str(sff_json_get(in, "name"));
    int ret = tl_create_user(r, sff_json_get_str(in, "username"), sff_json_get_str(in, "password"), name, &row);
    if (ret != 0)
        return ret;
    sff_json_t *out = sff_json_object(r);
    sff_json_set(out, "user", tl_user_json(r, row));
    return sff_respond(r, 201, out);
}

static int session_answer(sff_req_t *r, sff_json_t *user, int status)
{
    const char *token;
    int ret = tl_issue_session(r, user, 1, &token);
    if (ret != 0)
        return ret;
    sff_json_t *out = sff_json_object(r);
    sff_json_set(out, "token", sff_json_string(r, token));
    sff_json_set(out, "expires_in", sff_json_int(r, TL_ACCESS_TTL_S));
    sff_json_set(out, "user", tl_user_json(r, user));
    return sff_respond(r, status, out);
}

int tl_v1_login(sff_req_t *r)
{
    sff_json_t *in = sff_input(r), *user;
    int ret = tl_check_login(r, sff_json_get_str(in, "username"), sff_json_get_str(in, "password"), &user);
    if (ret != 0)
        return ret;
    if (user == NULL)
        return sff_error(r, SFF_EUNAUTHORIZED, "wrong username or password");
    return session_answer(r, user, 200);
}

/* The value of a cookie of the request, or NULL. Borrowed. */
static const char *cookie(sff_req_t *r, const char *name)
{
    const char *header = sff_header(r, "cookie");
    size_t nlen = strlen(name);
    for (const char *p = header; p != NULL && *p != '\0';) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=')
            return sff_json_str(sff_json_stringn(r, p + nlen + 1, len - nlen - 1));
        p += len;
    }
    return NULL;
}

int tl_v1_refresh(sff_req_t *r)
{
    const char *rt = cookie(r, "refreshToken");
    if (rt == NULL)
        rt = sff_json_str(sff_json_get(sff_input(r), "refresh_token"));
    if (rt == NULL || *rt == '\0' || strlen(rt) > 100)
        return sff_error(r, SFF_EUNAUTHORIZED, "no refresh token");
    char key[160];
    snprintf(key, sizeof(key), "todolist:refresh:%s", rt);
    /* single use: taking it deletes it, so a stolen token races its owner once at most */
    const char *argv[] = {"GETDEL", key};
    sff_json_t *uid, *user;
    int ret = sff_redis(r, &uid, 2, argv);
    if (ret != 0)
        return ret;
    if (sff_json_str(uid) == NULL)
        return sff_error(r, SFF_EUNAUTHORIZED, "the refresh token is unknown or used");
    if ((ret = tl_load_user(r, sff_json_str(uid), &user)) != 0)
        return ret;
    return session_answer(r, user, 200);
}

int tl_v1_logout(sff_req_t *r)
{
    const char *rt = cookie(r, "refreshToken");
    if (rt != NULL && strlen(rt) <= 100) {
        char key[160];
        snprintf(key, sizeof(key), "todolist:refresh:%s", rt);
        const char *argv[] = {"DEL", key};
        int ret = sff_redis(r, NULL, 2, argv);
        if (ret != 0)
            return ret;
    }
    sff_cookie_t gone = {.max_age_s = -1, .http_only = 1};
    sff_set_cookie(r, "jwtToken", "", &gone);
    sff_cookie_t gone_rt = {.max_age_s = -1, .http_only = 1, .path = "/api/v1/session", .same_site = "Strict"};
    sff_set_cookie(r, "refreshToken", "", &gone_rt);
    return sff_respond(r, 204, NULL);
}

int tl_v1_me(sff_req_t *r)
{
    sff_json_t *user;
    int ret = tl_load_user(r, tl_uid(r), &user);
    if (ret != 0)
        return ret;
    return sff_respond(r, 200, tl_user_json(r, user));
}

int tl_v1_me_patch(sff_req_t *r)
{
    sff_json_t *in = sff_input(r), *user;
    /* the schema allows only these members; absent ones keep their value */
    sff_json_t *p = sff_json_array(r);
    sff_json_append(p, sff_json_string(r, tl_uid(r)));
    static const char *fields[] = {"name", "email", "signature", "title", "group", "country", "address", "phone"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        sff_json_t *v = sff_json_get(in, fields[i]);
        sff_json_append(p, v != NULL ? v : sff_json_null(r));
    }
    int ret = sff_db_one(r, &user,
                         "update users set name = coalesce($2, name), email = coalesce($3, email), "
                         "signature = coalesce($4, signature), title = coalesce($5, title), \"group\" = coalesce($6, \"group\"), "
                         "country = coalesce($7, country), address = coalesce($8, address), phone = coalesce($9, phone), "
                         "updated_at = now() where id = $1::bigint returning " TL_USER_COLUMNS,
                         p);
    if (ret != 0)
        return ret;
    if (user == NULL)
        return sff_error(r, SFF_EUNAUTHORIZED, "the user is gone");
    return sff_respond(r, 200, tl_user_json(r, user));
}

int tl_v1_avatar_put(sff_req_t *r)
{
    size_t len;
    const char *type;
    const void *body = sff_body(r, &len, &type);
    if (body == NULL || len == 0)
        return sff_error(r, SFF_EBADREQ, "send the image as the request body");
    static const char *types[] = {"image/png", "image/jpeg", "image/webp", "image/gif"};
    const char *ok = NULL;
    for (size_t i = 0; type != NULL && i < sizeof(types) / sizeof(types[0]) && ok == NULL; i++)
        if (strncmp(type, types[i], strlen(types[i])) == 0)
            ok = types[i];
    if (ok == NULL)
        return sff_error(r, SFF_EMEDIATYPE, "an avatar must be PNG, JPEG, WebP or GIF");
    char key[64];
    snprintf(key, sizeof(key), "avatars/%s", tl_uid(r));
    int ret = sff_storage_put(r, key, ok, body, len);
    if (ret != 0)
        return ret;
    sff_json_t *user;
    if ((ret = sff_db_one(r, &user,
                          "update users set avatar_key = $2, updated_at = now() where id = $1::bigint returning " TL_USER_COLUMNS,
                          tl_params(r, 2, tl_uid(r), key))) != 0)
        return ret;
    tl_after_write(r, "avatar", NULL);
    return sff_respond(r, 200, tl_user_json(r, user));
}

int tl_v1_avatar_get(sff_req_t *r)
{
    sff_json_t *row;
    int ret = sff_db_one(r, &row, "select avatar_key from users where id = $1::bigint", tl_params(r, 1, tl_uid(r)));
    if (ret != 0)
        return ret;
    const char *key = sff_json_str(sff_json_get(row, "avatar_key"));
    if (key == NULL)
        return sff_error(r, SFF_ENOTFOUND, "no avatar");
    /* S3: the browser fetches it from storage directly */
    const char *url;
    if (sff_storage_presign(r, "GET", key, 300, &url) == 0) {
        sff_set_header(r, "location", url);
        return sff_respond(r, 302, NULL);
    }
    const void *data;
    size_t len;
    sff_json_t *info;
    if ((ret = sff_storage_get(r, key, &data, &len, &info)) != 0)
        return ret;
    sff_set_header(r, "cache-control", "private, max-age=60");
    return sff_respond_raw(r, 200, sff_json_get_str(info, "content_type"), data, len);
}

/* ---- legacy contract --------------------------------------------------------------------------- */

int tl_legacy_login(sff_req_t *r)
{
    sff_json_t *in = sff_input(r), *user;
    const char *type = sff_json_get_str(in, "type");
    int ret = tl_check_login(r, sff_json_get_str(in, "userName"), sff_json_get_str(in, "password"), &user);
    if (ret != 0)
        return ret;
    sff_json_t *out = sff_json_object(r);
    sff_json_set(out, "type", sff_json_string(r, *type != '\0' ? type : "account"));
    if (user == NULL) {
        /* the frontend reads "status", not the HTTP status */
        sff_json_set(out, "status", sff_json_string(r, "error"));
        sff_json_set(out, "currentAuthority", sff_json_string(r, "guest"));
        return sff_respond(r, 200, out);
    }
    const char *token;
    if ((ret = tl_issue_session(r, user, 0, &token)) != 0)
        return ret;
    sff_json_set(out, "status", sff_json_string(r, "ok"));
    sff_json_set(out, "currentAuthority", sff_json_get(user, "role"));
    return sff_respond(r, 200, out);
}

int tl_legacy_register(sff_req_t *r)
{
    sff_json_t *in = sff_input(r), *row;
    int ret = tl_create_user(r, sff_json_get_str(in, "userName"), sff_json_get_str(in, "password"), NULL, &row);
    if (ret != 0)
        return ret;
    sff_json_t *out = sff_json_object(r);
    sff_json_set(out, "status", sff_json_string(r, "ok"));
    sff_json_set(out, "currentAuthority", sff_json_get(row, "username"));
    return sff_respond(r, 200, out);
}

int tl_legacy_current_user(sff_req_t *r)
{
    sff_json_t *user;
    int ret = tl_load_user(r, tl_uid(r), &user);
    if (ret != 0)
        return ret;
    sff_json_t *u = sff_json_object(r);
    const char *name = sff_json_get_str(user, "name");
    sff_json_set(u, "name", sff_json_string(r, *name != '\0' ? name : sff_json_get_str(user, "username")));
    sff_json_set(u, "avatar", sff_json_get(tl_user_json(r, user), "avatar_url"));
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)sff_json_int_value(sff_json_get(user, "id")));
    sff_json_set(u, "userid", sff_json_string(r, id));
    static const char *fields[] = {"email", "signature", "title", "group", "country", "address", "phone"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        sff_json_set(u, fields[i], sff_json_string(r, sff_json_get_str(user, fields[i])));
    if (sff_json_type(sff_json_get(u, "avatar")) == SFF_JSON_NULL)
        sff_json_set(u, "avatar", sff_json_string(r, ""));
    sff_json_set(u, "tags", sff_json_get(user, "tags"));
    sff_json_set(u, "notifyCount", sff_json_int(r, 0));
    sff_json_set(u, "unreadCount", sff_json_int(r, 0));
    sff_json_t *geo = sff_json_object(r), *empty = sff_json_object(r);
    sff_json_set(empty, "label", sff_json_string(r, ""));
    sff_json_set(empty, "key", sff_json_string(r, ""));
    sff_json_set(geo, "province", empty);
    sff_json_set(geo, "city", empty);
    sff_json_set(u, "geographic", geo);
    return sff_respond(r, 200, u);
}

int tl_legacy_notices(sff_req_t *r)
{
    return sff_respond(r, 200, sff_json_array(r));
}

int tl_legacy_users(sff_req_t *r)
{
    sff_json_t *rows;
    int ret = sff_db_query(r, &rows, "select username from users order by id", NULL);
    if (ret != 0)
        return ret;
    sff_json_t *out = sff_json_array(r);
    for (size_t i = 0; i < sff_json_size(rows); i++)
        sff_json_append(out, sff_json_get(sff_json_at(rows, i), "username"));
    return sff_respond(r, 200, out);
}
