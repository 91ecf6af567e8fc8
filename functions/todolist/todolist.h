/*
 * todolist.h - what the todolist's functions share: parameters, the JSON shapes of users, todos and
 * legacy "rules", sessions, the per-user list cache and activity feed.
 * The API is described in docs/todolist-api.md.
 */
#ifndef TODOLIST_H
#define TODOLIST_H

#include "sff.h"

#define TL_ACCESS_TTL_S 900               /* access tokens: 15 minutes */
#define TL_REFRESH_TTL_S (30 * 24 * 3600) /* refresh tokens: 30 days */
#define TL_LIST_TTL_S 300                 /* cached lists */

/* The columns a todo is read with, in this order. */
#define TL_TODO_COLUMNS "id, owner, name, \"desc\", status, progress, call_no, href, avatar, created_at, updated_at"
/* The columns a user is read with. */
#define TL_USER_COLUMNS                                                                                                            \
    "id, username, name, email, signature, title, \"group\", country, address, phone, tags, avatar_key, role, created_at, "        \
    "updated_at"

/* Nonzero unless the environment says TODOLIST_CACHE=off (for benchmarks of the uncached path). */
extern int tl_cache_enabled;

/* A JSON array of n parameters (const char *, NULL for SQL NULL). */
sff_json_t *tl_params(sff_req_t *r, int n, ...);
/* The caller's user id (the token's "sub"), as text. */
const char *tl_uid(sff_req_t *r);

/* The v1 shapes of a user row and a todo row. */
sff_json_t *tl_user_json(sff_req_t *r, sff_json_t *row);
sff_json_t *tl_todo_json(sff_req_t *r, sff_json_t *row);
/* The legacy "rule" shape of a todo row. */
sff_json_t *tl_rule_json(sff_req_t *r, sff_json_t *row, const char *owner_name);

/* Reads the user with this id; SFF_EUNAUTHORIZED ("the user is gone") when there is none: the token
 * or session of a user deleted since. */
int tl_load_user(sff_req_t *r, const char *uid, sff_json_t **row);
/* Checks username and password (rate-limited per username and per address). Returns 0 with *row set
 * to the user, or 0 with *row NULL for bad credentials, or an error. */
int tl_check_login(sff_req_t *r, const char *username, const char *password, sff_json_t **row);
/* Issues an access token (cookie jwtToken and *token) and, with refresh, a rotated refresh token
 * (cookie refreshToken). */
int tl_issue_session(sff_req_t *r, sff_json_t *user, int refresh, const char **token);
/* Creates a user; SFF_ECONFLICT when the name is taken. */
int tl_create_user(sff_req_t *r, const char *username, const char *password, const char *name, sff_json_t **row);

/* The cache tag of a user's lists; writes invalidate it. */
const char *tl_list_tag(sff_req_t *r, const char *uid);
/* Invalidates the caller's cached lists and records an activity line. */
void tl_after_write(sff_req_t *r, const char *what, sff_json_t *todo);

/* Route handlers, by file. */
int tl_v1_register(sff_req_t *r);
int tl_v1_login(sff_req_t *r);
int tl_v1_refresh(sff_req_t *r);
int tl_v1_logout(sff_req_t *r);
int tl_v1_me(sff_req_t *r);
int tl_v1_me_patch(sff_req_t *r);
int tl_v1_avatar_put(sff_req_t *r);
int tl_v1_avatar_get(sff_req_t *r);
int tl_v1_dashboard(sff_req_t *r);
int tl_v1_todos_list(sff_req_t *r);
int tl_v1_todos_create(sff_req_t *r);
int tl_v1_todo_get(sff_req_t *r);
int tl_v1_todo_patch(sff_req_t *r);
int tl_v1_todo_delete(sff_req_t *r);
int tl_legacy_login(sff_req_t *r);
int tl_legacy_register(sff_req_t *r);
int tl_legacy_current_user(sff_req_t *r);
int tl_legacy_rule_list(sff_req_t *r);
int tl_legacy_rule_post(sff_req_t *r);
int tl_legacy_rule_put(sff_req_t *r);
int tl_legacy_rule_delete(sff_req_t *r);
int tl_legacy_notices(sff_req_t *r);
int tl_legacy_users(sff_req_t *r);

#endif
