/*
 * examples - the smallest useful functions, one per SDK feature. Read this file as a tutorial.
 */
#include <stdlib.h>
#include "sff.h"

/* GET /examples/hello (public): a constant JSON object. */
static int hello(sff_req_t *r)
{
    sff_json_t *out = sff_json_object(r);
    sff_json_set(out, "hello", sff_json_string(r, "world"));
    return sff_respond(r, 200, out);
}

/* GET /examples/whoami (any valid token): the verified claims. */
static int whoami(sff_req_t *r)
{
    return sff_respond(r, 200, sff_claims(r));
}

/* POST /examples/echo (public, schema "echo"): the merged input, already checked by the gateway. */
static int echo(sff_req_t *r)
{
    return sff_respond(r, 200, sff_input(r));
}

/* GET /examples/sleep?ms=N (public, schema "sleep"): waits N ms without blocking the worker. */
static int sleep_ms(sff_req_t *r)
{
    int64_t ms = sff_json_int_value(sff_json_get(sff_input(r), "ms"));
    int ret = sff_sleep(r, (uint32_t)ms);
    if (ret != 0)
        return ret; /* cancelled: the client left or the route timed out */
    sff_json_t *out = sff_json_object(r);
    sff_json_set(out, "slept_ms", sff_json_int(r, ms));
    return sff_respond(r, 200, out);
}

/* GET /examples/compose (any valid token): calls two other functions in-process and combines them. */
static int compose(sff_req_t *r)
{
    int status;
    sff_json_t *hello_out, *me_out;
    int ret = sff_call(r, "GET", "/examples/hello", NULL, &status, &hello_out);
    if (ret != 0)
        return ret;
    if ((ret = sff_call(r, "GET", "/examples/whoami", NULL, &status, &me_out)) != 0)
        return ret;
    sff_json_t *out = sff_json_object(r);
    sff_json_set(out, "hello", hello_out);
    sff_json_set(out, "me", me_out);
    return sff_respond(r, 200, out);
}

/* GET /examples/admin (role admin): only tokens with the role "admin" get here. */
static int admin(sff_req_t *r)
{
    sff_json_t *out = sff_json_object(r);
    sff_json_set(out, "admin", sff_json_bool(r, 1));
    sff_json_set(out, "sub", sff_json_string(r, sff_user_id(r)));
    return sff_respond(r, 200, out);
}

static const sff_route_t routes[] = {
    {.method = "GET", .path = "/examples/hello", .handler = hello, .auth = "public", .summary = "Says hello"},
    {.method = "GET", .path = "/examples/whoami", .handler = whoami, .auth = "user", .summary = "The caller's claims"},
    {.method = "POST",
     .path = "/examples/echo",
     .handler = echo,
     .auth = "public",
     .schema = "echo",
     .summary = "Echoes its checked input"},
    {.method = "GET",
     .path = "/examples/sleep",
     .handler = sleep_ms,
     .auth = "public",
     .schema = "sleep",
     .timeout_ms = 65000,
     .summary = "Waits ms milliseconds"},
    {.method = "GET",
     .path = "/examples/compose",
     .handler = compose,
     .auth = "user",
     .summary = "Calls hello and whoami in-process"},
    {.method = "GET", .path = "/examples/admin", .handler = admin, .auth = "role:admin", .summary = "Admins only"},
};

SFF_MODULE("examples", routes, NULL, NULL);
