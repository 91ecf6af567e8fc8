#include <string.h>
#include "auth.h"
#include "sff.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Finds name=value in a Cookie header value. */
static int find_cookie(h2o_iovec_t header, const char *name, const char **value, size_t *len)
{
    size_t nlen = strlen(name);
    const char *p = header.base, *end = header.base + header.len;
    while (p < end) {
        while (p < end && (is_space(*p) || *p == ';'))
            p++;
        const char *pair = p;
        while (p < end && *p != ';')
            p++;
        const char *eq = memchr(pair, '=', (size_t)(p - pair));
        if (eq == NULL)
            continue;
        const char *kend = eq;
        while (kend > pair && is_space(kend[-1]))
            kend--;
        if ((size_t)(kend - pair) == nlen && memcmp(pair, name, nlen) == 0) {
            const char *v = eq + 1, *vend = p;
            while (v < vend && is_space(*v))
                v++;
            while (vend > v && is_space(vend[-1]))
                vend--;
            if (vend - v >= 2 && *v == '"' && vend[-1] == '"')
                v++, vend--;
            *value = v;
            *len = (size_t)(vend - v);
            return *len != 0;
        }
    }
    return 0;
}

int sff_auth_find_token(h2o_req_t *req, const char *cookie_name, const char **token, size_t *len)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (v.len > 7 && strncasecmp(v.base, "Bearer ", 7) == 0) {
            size_t off = 7;
            while (off < v.len && is_space(v.base[off]))
                off++;
            size_t end = v.len;
            while (end > off && is_space(v.base[end - 1]))
                end--;
            if (end > off) {
                *token = v.base + off;
                *len = end - off;
                return 1;
            }
        }
    }
    if (cookie_name == NULL || *cookie_name == '\0')
        return 0;
    for (i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) >= 0;) {
        if (find_cookie(req->headers.entries[i].value, cookie_name, token, len))
            return 2;
    }
    return 0;
}

int sff_auth_has_role(json_t *claims, const char *role)
{
    const char *r = json_string_value(json_object_get(claims, "role"));
    if (r != NULL && strcmp(r, role) == 0)
        return 1;
    json_t *roles = json_object_get(claims, "roles");
    if (json_is_array(roles)) {
        size_t i;
        json_t *v;
        json_array_foreach(roles, i, v)
        {
            if (json_is_string(v) && strcmp(json_string_value(v), role) == 0)
                return 1;
        }
    } else if (json_is_string(roles)) {
        const char *s = json_string_value(roles);
        size_t rlen = strlen(role);
        while (*s) {
            size_t n = strcspn(s, " ");
            if (n == rlen && memcmp(s, role, n) == 0)
                return 1;
            s += n;
            while (*s == ' ')
                s++;
        }
    }
    return 0;
}

int sff_auth_check_policy(const sff_route_entry_t *route, json_t *claims, const char **msg)
{
    switch (route->policy) {
    case SFF_POLICY_PUBLIC:
        return 0;
    case SFF_POLICY_USER:
        if (claims == NULL) {
            *msg = "a valid token is required";
            return SFF_EUNAUTHORIZED;
        }
        return 0;
    case SFF_POLICY_ROLE:
        if (claims == NULL) {
            *msg = "a valid token is required";
            return SFF_EUNAUTHORIZED;
        }
        if (!sff_auth_has_role(claims, route->role)) {
            *msg = "the token lacks the role this route requires";
            return SFF_EFORBIDDEN;
        }
        return 0;
    }
    return SFF_EFORBIDDEN;
}
