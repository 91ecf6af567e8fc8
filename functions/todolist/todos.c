/* todos.c - the todos: the v1 API (cursor pages, CRUD), the legacy /api/rule contract, and the
 * dashboard. Every statement filters by owner; row-level security checks it again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "todolist.h"

/* ---- v1 ---------------------------------------------------------------------------------------- */

/* The cache key of one list query of the caller: the query's parts (NULL and "" distinct) go through
 * a 64-bit FNV-1a hash, so that any length fits and no two queries share a key by truncation. */
static void list_key(sff_req_t *r, char *out, size_t size, const char *kind, int n, const char *const *parts)
{
    uint64_t h = 14695981039346656037ULL;
    for (int i = 0; i < n; i++) {
        const char *p = parts[i];
        unsigned char mark = p == NULL ? 0 : 1;
        h = (h ^ mark) * 1099511628211ULL;
        for (; p != NULL && *p != '\0'; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL; /* separator */
    }
    snprintf(out, size, "todos:%s:%s:%016llx", tl_uid(r), kind, (unsigned long long)h);
}

/* An empty query parameter means "not given", as the legacy frontend sends them. */
static const char *given(const char *s)
{
    return s != NULL && *s != '\0' ? s : NULL;
}

/* "open" and "done" as stored (legacy statuses 0-3: 2 is done). */
static const char *status_value(const char *s)
{
    return s == NULL ? NULL : strcmp(s, "done") == 0 ? "2" : "0";
}

/* Answers a list page from the cache, as stored (no parse, no serialization): returns 0 with *hit
 * set when it did, 0 on a miss (or with the cache off), or an error. */
static int answer_cached(sff_req_t *r, const char *key, const char *const *tags, int *hit)
{
    const char *text = NULL;
    size_t len = 0;
    *hit = 0;
    int ret = tl_cache_enabled ? sff_cache_get_text(r, key, tags, 1, &text, &len) : 0;
    if (ret != 0 || text == NULL)
        return ret;
    *hit = 1;
    return sff_respond_json_text(r, 200, text, len);
}

int tl_v1_todos_list(sff_req_t *r)
{
    sff_json_t *in = sff_input(r), *rows;
    const char *cursor = given(sff_json_str(sff_json_get(in, "cursor"))), *status = given(sff_json_str(sff_json_get(in, "status"))),
               *q = given(sff_json_str(sff_json_get(in, "q")));
    int64_t limit = sff_json_get(in, "limit") != NULL ? sff_json_int_value(sff_json_get(in, "limit")) : 20;
    char key[600], lim[32];
    snprintf(lim, sizeof(lim), "%lld", (long long)limit + 1);
    /* the page is cached per user and query; any write of the user invalidates the tag */
    const char *parts[] = {cursor, status, q, lim};
    list_key(r, key, sizeof(key), "v1", 4, parts);
    const char *tags[] = {tl_list_tag(r, tl_uid(r))};
    int hit, ret = answer_cached(r, key, tags, &hit);
    if (ret != 0 || hit)
        return ret;
    if ((ret = sff_db_query(r, &rows,
                            "select " TL_TODO_COLUMNS " from todos where owner = $1::bigint and ($2::bigint is null or id < $2) "
                            "and ($3::text is null or ($3 = 'done') = (status = 2)) "
                            "and ($4::text is null or strpos(lower(name), lower($4)) > 0) order by id desc limit $5::int",
                            tl_params(r, 5, tl_uid(r), cursor, status, q, lim))) != 0)
        return ret;
    sff_json_t *page = sff_json_object(r);
    sff_json_t *items = sff_json_array(r);
    size_t n = sff_json_size(rows);
    for (size_t i = 0; i < n && (int64_t)i < limit; i++)
        sff_json_append(items, tl_todo_json(r, sff_json_at(rows, i)));
    sff_json_set(page, "items", items);
    if ((int64_t)n > limit) {
        char next[32];
        snprintf(next, sizeof(next), "%lld",
                 (long long)sff_json_int_value(sff_json_get(sff_json_at(rows, (size_t)limit - 1), "id")));
        sff_json_set(page, "next_cursor", sff_json_string(r, next));
    } else {
        sff_json_set(page, "next_cursor", sff_json_null(r));
    }
    if (tl_cache_enabled)
        sff_cache_set(r, key, tags, 1, page, TL_LIST_TTL_S);
    return sff_respond(r, 200, page);
}

int tl_v1_todos_create(sff_req_t *r)
{
    sff_json_t *in = sff_input(r), *row;
    sff_json_t *p = tl_params(r, 4, tl_uid(r), sff_json_get_str(in, "name"), sff_json_get_str(in, "desc"),
                              status_value(sff_json_str(sff_json_get(in, "status"))));
    sff_json_append(p, sff_json_get(in, "progress") != NULL ? sff_json_get(in, "progress") : sff_json_int(r, 0));
    int ret = sff_db_one(r, &row,
                         "insert into todos (owner, name, \"desc\", status, progress) values ($1::bigint, $2, $3, "
                         "coalesce($4::smallint, 0), $5::smallint) returning " TL_TODO_COLUMNS,
                         p);
    if (ret != 0)
        return ret;
    sff_json_t *todo = tl_todo_json(r, row);
    tl_after_write(r, "created", todo);
    return sff_respond(r, 201, todo);
}

int tl_v1_todo_get(sff_req_t *r)
{
    sff_json_t *row;
    int ret = sff_db_one(r, &row, "select " TL_TODO_COLUMNS " from todos where id = $1::bigint and owner = $2::bigint",
                         tl_params(r, 2, sff_param(r, "id"), tl_uid(r)));
    if (ret != 0)
        return ret;
    return row != NULL ? sff_respond(r, 200, tl_todo_json(r, row)) : sff_error(r, SFF_ENOTFOUND, "no such todo");
}

int tl_v1_todo_patch(sff_req_t *r)
{
    sff_json_t *in = sff_input(r), *row;
    sff_json_t *p = tl_params(r, 5, sff_param(r, "id"), tl_uid(r), sff_json_str(sff_json_get(in, "name")),
                              sff_json_str(sff_json_get(in, "desc")), status_value(sff_json_str(sff_json_get(in, "status"))));
    sff_json_append(p, sff_json_get(in, "progress") != NULL ? sff_json_get(in, "progress") : sff_json_null(r));
    int ret = sff_db_one(r, &row,
                         "update todos set name = coalesce($3, name), \"desc\" = coalesce($4, \"desc\"), "
                         "status = coalesce($5::smallint, status), progress = coalesce($6::smallint, progress), updated_at = now() "
                         "where id = $1::bigint and owner = $2::bigint returning " TL_TODO_COLUMNS,
                         p);
    if (ret != 0)
        return ret;
    if (row == NULL)
        return sff_error(r, SFF_ENOTFOUND, "no such todo");
    sff_json_t *todo = tl_todo_json(r, row);
    tl_after_write(r, "updated", todo);
    return sff_respond(r, 200, todo);
}

int tl_v1_todo_delete(sff_req_t *r)
{
    int64_t n;
    int ret = sff_db_exec(r, &n, "delete from todos where id = $1::bigint and owner = $2::bigint",
                          tl_params(r, 2, sff_param(r, "id"), tl_uid(r)));
    if (ret != 0)
        return ret;
    if (n == 0)
        return sff_error(r, SFF_ENOTFOUND, "no such todo");
    tl_after_write(r, "deleted", NULL);
    return sff_respond(r, 204, NULL);
}

int tl_v1_dashboard(sff_req_t *r)
{
    char key[64], avatar[64];
    snprintf(key, sizeof(key), "todolist:activity:%s", tl_uid(r));
    snprintf(avatar, sizeof(avatar), "avatars/%s", tl_uid(r));
    const char *lrange[] = {"LRANGE", key, "0", "9"};
    /* four backends' answers at once: the slowest sets the pace, not their sum */
    sff_future_t *f[4] = {
        sff_db_send(r, SFF_DB_ONE, "select " TL_USER_COLUMNS " from users where id = $1::bigint", tl_params(r, 1, tl_uid(r))),
        sff_db_send(r, SFF_DB_ONE,
                    "select count(*) filter (where status <> 2) as open, count(*) filter (where status = 2) as done "
                    "from todos where owner = $1::bigint",
                    tl_params(r, 1, tl_uid(r))),
        sff_redis_send(r, 4, lrange, NULL), sff_storage_send(r, SFF_STORAGE_HEAD, avatar, NULL, NULL, 0, 0)};
    int ret = sff_await_all(r, f, 3, 0); /* the avatar may well be missing: waited for below */
    if (ret != 0)
        return ret;
    sff_await(r, f[3]);
    sff_json_t *user = sff_future_value(f[0]);
    if (sff_json_type(user) != SFF_JSON_OBJECT)
        return sff_error(r, SFF_EUNAUTHORIZED, "the user is gone");
    sff_json_t *out = sff_json_object(r), *activity = sff_json_array(r), *lines = sff_future_value(f[2]);
    for (size_t i = 0; i < sff_json_size(lines); i++) {
        const char *s = sff_json_str(sff_json_at(lines, i));
        sff_json_t *v = s != NULL ? sff_json_parse(r, s, strlen(s)) : NULL;
        if (v != NULL)
            sff_json_append(activity, v);
    }
    sff_json_t *profile = tl_user_json(r, user);
    sff_json_set(out, "profile", profile);
    sff_json_set(out, "counts", sff_future_value(f[1]));
    sff_json_set(out, "activity", activity);
    sff_json_set(out, "avatar_url", sff_future_result(f[3]) == 0 ? sff_json_get(profile, "avatar_url") : sff_json_null(r));
    return sff_respond(r, 200, out);
}

/* ---- legacy /api/rule -------------------------------------------------------------------------- */

/* The ORDER BY of a sorter {"field": "ascend"|"descend"}, from an allowlist; never user text. */
static const char *order_by(sff_req_t *r, const char *sorter)
{
    static const struct {
        const char *field, *column;
    } allowed[] = {{"key", "id"},
                   {"name", "name"},
                   {"desc", "\"desc\""},
                   {"status", "status"},
                   {"progress", "progress"},
                   {"callNo", "call_no"},
                   {"updatedAt", "updated_at"},
                   {"createdAt", "created_at"}};
    sff_json_t *s = sorter != NULL && *sorter != '\0' ? sff_json_parse(r, sorter, strlen(sorter)) : NULL;
    const char *field = sff_json_key_at(s, 0);
    const char *dir = sff_json_str(sff_json_value_at(s, 0));
    for (size_t i = 0; field != NULL && dir != NULL && i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        if (strcmp(field, allowed[i].field) == 0) {
            char buf[64];
            snprintf(buf, sizeof(buf), "%s %s, id desc", allowed[i].column, strcmp(dir, "ascend") == 0 ? "asc" : "desc");
            return sff_json_str(sff_json_string(r, buf));
        }
    }
    return "id desc";
}

/* One page of the caller's rules as the legacy frontend wants it. */
static int rule_page(sff_req_t *r, int64_t current, int64_t page_size, const char *sorter, const char *name, const char *status,
                     sff_json_t **out)
{
    char sql[1024], off[32], lim[32];
    if (current < 1)
        current = 1;
    if (page_size < 1 || page_size > 1000)
        page_size = 20;
    snprintf(off, sizeof(off), "%lld", (long long)((current - 1) * page_size));
    snprintf(lim, sizeof(lim), "%lld", (long long)page_size);
    /* status: "1" or "0,2" */
    snprintf(
        sql, sizeof(sql),
        "select " TL_TODO_COLUMNS " from todos where owner = $1::bigint "
        "and ($2::text is null or strpos(lower(name), lower($2)) > 0) "
        "and ($3::text is null or status = any (string_to_array($3, ',')::smallint[])) order by %s limit $4::int offset $5::int",
        order_by(r, sorter));
    sff_json_t *rows, *count;
    sff_future_t *f[2] = {sff_db_send(r, SFF_DB_ROWS, sql, tl_params(r, 5, tl_uid(r), name, status, lim, off)),
                          sff_db_send(r, SFF_DB_ONE,
                                      "select count(*) as total from todos where owner = $1::bigint and ($2::text is null or "
                                      "strpos(lower(name), lower($2)) > 0) and ($3::text is null or status = any "
                                      "(string_to_array($3, ',')::smallint[]))",
                                      tl_params(r, 3, tl_uid(r), name, status))};
    int ret = sff_await_all(r, f, 2, 0);
    if (ret != 0)
        return ret;
    rows = sff_future_value(f[0]);
    count = sff_future_value(f[1]);
    const char *owner = sff_json_str(sff_json_get(sff_claims(r), "name"));
    sff_json_t *data = sff_json_array(r);
    for (size_t i = 0; i < sff_json_size(rows); i++)
        sff_json_append(data, tl_rule_json(r, sff_json_at(rows, i), owner));
    *out = sff_json_object(r);
    sff_json_set(*out, "data", data);
    sff_json_set(*out, "total", sff_json_get(count, "total"));
    sff_json_set(*out, "success", sff_json_bool(r, 1));
    sff_json_set(*out, "pageSize", sff_json_int(r, page_size));
    sff_json_set(*out, "current", sff_json_int(r, current));
    return 0;
}

static int64_t int_of(sff_json_t *in, const char *key, int64_t def)
{
    sff_json_t *v = sff_json_get(in, key);
    const char *s = sff_json_str(v);
    if (s != NULL)
        return *s != '\0' ? strtoll(s, NULL, 10) : def;
    return v != NULL ? sff_json_int_value(v) : def;
}

int tl_legacy_rule_list(sff_req_t *r)
{
    sff_json_t *in = sff_input(r), *page;
    int64_t current = int_of(in, "current", 1), size = int_of(in, "pageSize", 20);
    const char *sorter = given(sff_json_str(sff_json_get(in, "sorter"))), *name = given(sff_json_str(sff_json_get(in, "name"))),
               *status = given(sff_json_str(sff_json_get(in, "status")));
    if (status != NULL && strspn(status, "0123,") != strlen(status))
        return sff_error(r, SFF_EINVALID, "status is a comma-separated list of 0 to 3");
    char key[700];
    char cur[32], siz[32];
    snprintf(cur, sizeof(cur), "%lld", (long long)current);
    snprintf(siz, sizeof(siz), "%lld", (long long)size);
    const char *parts[] = {cur, siz, sorter, name, status};
    list_key(r, key, sizeof(key), "rule", 5, parts);
    const char *tags[] = {tl_list_tag(r, tl_uid(r))};
    int hit, ret = answer_cached(r, key, tags, &hit);
    if (ret != 0 || hit)
        return ret;
    if ((ret = rule_page(r, current, size, sorter, name, status, &page)) != 0)
        return ret;
    if (tl_cache_enabled)
        sff_cache_set(r, key, tags, 1, page, TL_LIST_TTL_S);
    return sff_respond(r, 200, page);
}

static int rule_create(sff_req_t *r, sff_json_t *in)
{
    sff_json_t *row;
    const char *name = sff_json_get_str(in, "name");
    if (*name == '\0')
        return sff_error(r, SFF_EINVALID, "name is required");
    int ret = sff_db_one(r, &row,
                         "insert into todos (owner, name, \"desc\", call_no, href) values ($1::bigint, $2, $3, "
                         "floor(random() * 1000)::int, '') returning " TL_TODO_COLUMNS,
                         tl_params(r, 3, tl_uid(r), name, sff_json_get_str(in, "desc")));
    if (ret != 0)
        return ret;
    tl_after_write(r, "created", row);
    return sff_respond(r, 200, tl_rule_json(r, row, sff_json_str(sff_json_get(sff_claims(r), "name"))));
}

static int rule_update(sff_req_t *r, sff_json_t *in)
{
    sff_json_t *row, *status = sff_json_get(in, "status");
    char key[32], st[16];
    snprintf(key, sizeof(key), "%lld", (long long)int_of(in, "key", 0));
    snprintf(st, sizeof(st), "%lld", (long long)int_of(in, "status", 0));
    int ret = sff_db_one(r, &row,
                         "update todos set name = coalesce($3, name), \"desc\" = coalesce($4, \"desc\"), "
                         "status = coalesce($5::smallint, status), updated_at = now() where id = $1::bigint and owner = $2::bigint "
                         "returning " TL_TODO_COLUMNS,
                         tl_params(r, 5, key, tl_uid(r), sff_json_str(sff_json_get(in, "name")),
                                   sff_json_str(sff_json_get(in, "desc")), status != NULL ? st : NULL));
    if (ret != 0)
        return ret;
    if (row == NULL)
        return sff_error(r, SFF_ENOTFOUND, "no such rule");
    tl_after_write(r, "updated", row);
    return sff_respond(r, 200, tl_rule_json(r, row, sff_json_str(sff_json_get(sff_claims(r), "name"))));
}

static int rule_delete(sff_req_t *r, sff_json_t *in)
{
    sff_json_t *keys = sff_json_get(in, "key");
    if (sff_json_type(keys) != SFF_JSON_ARRAY) {
        sff_json_t *one = sff_json_array(r);
        if (keys != NULL)
            sff_json_append(one, keys);
        keys = one;
    }
    sff_json_t *ids = sff_json_array(r);
    for (size_t i = 0; i < sff_json_size(keys); i++) {
        sff_json_t *k = sff_json_at(keys, i);
        const char *s = sff_json_str(k);
        sff_json_append(ids, sff_json_int(r, s != NULL ? strtoll(s, NULL, 10) : sff_json_int_value(k)));
    }
    sff_json_t *p = sff_json_array(r);
    sff_json_append(p, sff_json_string(r, tl_uid(r)));
    sff_json_append(p, ids);
    int ret = sff_db_exec(
        r, NULL,
        "delete from todos where owner = $1::bigint and id = any (array(select jsonb_array_elements_text($2::jsonb)::bigint))", p);
    if (ret != 0)
        return ret;
    tl_after_write(r, "deleted", NULL);
    sff_json_t *page;
    if ((ret = rule_page(r, 1, 10, NULL, NULL, NULL, &page)) != 0)
        return ret;
    sff_json_t *out = sff_json_object(r), *pagination = sff_json_object(r);
    sff_json_set(out, "list", sff_json_get(page, "data"));
    sff_json_set(pagination, "total", sff_json_get(page, "total"));
    sff_json_set(pagination, "current", sff_json_int(r, 1));
    sff_json_set(pagination, "pageSize", sff_json_int(r, 10));
    sff_json_set(out, "pagination", pagination);
    return sff_respond(r, 200, out);
}

int tl_legacy_rule_post(sff_req_t *r)
{
    sff_json_t *in = sff_input(r);
    const char *method = sff_json_get_str(in, "method");
    if (*method == '\0' || strcmp(method, "post") == 0)
        return rule_create(r, in);
    if (strcmp(method, "update") == 0)
        return rule_update(r, in);
    if (strcmp(method, "delete") == 0)
        return rule_delete(r, in);
    return sff_error(r, SFF_EINVALID, "method must be post, update or delete");
}

int tl_legacy_rule_put(sff_req_t *r)
{
    return rule_update(r, sff_input(r));
}

int tl_legacy_rule_delete(sff_req_t *r)
{
    return rule_delete(r, sff_input(r));
}
