/*
 * todolist - the reference app: a multi-user todo list with accounts, served as the clean /api/v1
 * (docs/todolist-api.md) and as the legacy contract of the Express backend it replaces.
 */
#include <stdlib.h>
#include <string.h>
#include "todolist.h"

int tl_cache_enabled = 1;

static int init(void)
{
    const char *cache = getenv("TODOLIST_CACHE");
    tl_cache_enabled = cache == NULL || strcmp(cache, "off") != 0;
    return 0;
}

static const sff_route_t routes[] = {
    /* v1: accounts and sessions */
    {.method = "POST", .path = "/api/v1/users", .handler = tl_v1_register, .auth = "public", .schema = "todolist-register",
     .rate_limit = 20, .rate_window_s = 3600, .summary = "Creates an account"},
    {.method = "POST", .path = "/api/v1/session", .handler = tl_v1_login, .auth = "public", .schema = "todolist-login",
     .summary = "Logs in: an access token (cookie and body) and a refresh token (cookie)"},
    {.method = "POST", .path = "/api/v1/session/refresh", .handler = tl_v1_refresh, .auth = "public",
     .schema = "todolist-refresh", .summary = "Trades a refresh token for a new session"},
    {.method = "DELETE", .path = "/api/v1/session", .handler = tl_v1_logout, .auth = "public", .summary = "Logs out"},
    {.method = "GET", .path = "/api/v1/me", .handler = tl_v1_me, .auth = "user", .summary = "The caller's profile"},
    {.method = "PATCH", .path = "/api/v1/me", .handler = tl_v1_me_patch, .auth = "user", .schema = "todolist-me",
     .summary = "Changes the caller's profile"},
    {.method = "PUT", .path = "/api/v1/me/avatar", .handler = tl_v1_avatar_put, .auth = "user", .raw_body = 1,
     .summary = "Uploads the caller's avatar (the image as the body)"},
    {.method = "GET", .path = "/api/v1/me/avatar", .handler = tl_v1_avatar_get, .auth = "user", .summary = "The caller's avatar"},
    {.method = "GET", .path = "/api/v1/dashboard", .handler = tl_v1_dashboard, .auth = "user",
     .summary = "Profile, counts, recent activity and avatar, fetched at once"},
    /* v1: todos */
    {.method = "GET", .path = "/api/v1/todos", .handler = tl_v1_todos_list, .auth = "user", .schema = "todolist-list",
     .summary = "The caller's todos, newest first, a page at a time"},
    {.method = "POST", .path = "/api/v1/todos", .handler = tl_v1_todos_create, .auth = "user", .schema = "todolist-todo-new",
     .summary = "Adds a todo"},
    {.method = "GET", .path = "/api/v1/todos/:id", .handler = tl_v1_todo_get, .auth = "user", .schema = "todolist-todo-id",
     .summary = "One todo"},
    {.method = "PATCH", .path = "/api/v1/todos/:id", .handler = tl_v1_todo_patch, .auth = "user", .schema = "todolist-todo-patch",
     .summary = "Changes a todo"},
    {.method = "DELETE", .path = "/api/v1/todos/:id", .handler = tl_v1_todo_delete, .auth = "user", .schema = "todolist-todo-id",
     .summary = "Deletes a todo"},
    /* the legacy contract of the Express backend */
    {.method = "POST", .path = "/api/login/account", .handler = tl_legacy_login, .auth = "public", .schema = "todolist-legacy-login",
     .summary = "Legacy login"},
    {.method = "POST", .path = "/user/register", .handler = tl_legacy_register, .auth = "public",
     .schema = "todolist-legacy-register", .rate_limit = 20, .rate_window_s = 3600, .summary = "Legacy registration"},
    {.method = "GET", .path = "/api/currentUser", .handler = tl_legacy_current_user, .auth = "user", .summary = "Legacy profile"},
    {.method = "GET", .path = "/api/rule", .handler = tl_legacy_rule_list, .auth = "user", .schema = "todolist-legacy-rule-list",
     .summary = "Legacy list of todos (rules)"},
    {.method = "POST", .path = "/api/rule", .handler = tl_legacy_rule_post, .auth = "user", .schema = "todolist-legacy-rule",
     .summary = "Legacy create, update or delete (method in the body)"},
    {.method = "PUT", .path = "/api/rule", .handler = tl_legacy_rule_put, .auth = "user", .schema = "todolist-legacy-rule",
     .summary = "Legacy update"},
    {.method = "DELETE", .path = "/api/rule", .handler = tl_legacy_rule_delete, .auth = "user", .schema = "todolist-legacy-rule",
     .summary = "Legacy delete"},
    {.method = "GET", .path = "/api/notices", .handler = tl_legacy_notices, .auth = "public", .summary = "Legacy notices (none)"},
    {.method = "GET", .path = "/api/users", .handler = tl_legacy_users, .auth = "role:admin", .summary = "Usernames (admins)"},
};

SFF_MODULE("todolist", routes, init, NULL);
