/*
 * auth.h - who is calling: the token of a request and the route policies (public, user, role:NAME).
 */
#ifndef SFF_AUTH_H
#define SFF_AUTH_H

#include <h2o.h>
#include <jansson.h>
#include "module.h"

/* Finds the request's token: "Authorization: Bearer <token>" first, else the cookie named
 * cookie_name. Returns 1 (header) or 2 (cookie) with *token and *len pointing into req's headers, or
 * 0 when there is none. */
int sff_auth_find_token(h2o_req_t *req, const char *cookie_name, const char **token, size_t *len);

/* Checks route's policy against claims (NULL for an anonymous caller). Returns 0, SFF_EUNAUTHORIZED
 * (no valid token) or SFF_EFORBIDDEN (the token lacks the role), with a static message in *msg. */
int sff_auth_check_policy(const sff_route_entry_t *route, json_t *claims, const char **msg);

/* Nonzero when claims grant role: claim "role" equal to it, or claim "roles" (an array of strings,
 * or one space-separated string) containing it. */
int sff_auth_has_role(json_t *claims, const char *role);

#endif
