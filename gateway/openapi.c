/* The OpenAPI 3.1 document: one operation per route, the route's schema as its request body (or as
 * query parameters for GET and DELETE), the auth policy as security, and the error envelope as the
 * shape of every error response. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "builtin.h"
#include "version.h"

/* "/todos/:id" becomes "/todos/{id}" (a trailing star becomes "{path}"); the path parameters go into params. */
static void convert_path(const char *tmpl, char *out, size_t size, json_t *params)
{
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 2 < size;) {
        if ((*p == ':' || *p == '*') && p > tmpl && p[-1] == '/') {
            char name[64];
            size_t n = 0;
            if (*p == '*') {
                snprintf(name, sizeof(name), "path");
                p++;
            } else {
                p++;
                while (*p && *p != '/' && n + 1 < sizeof(name))
                    name[n++] = *p++;
                name[n] = '\0';
            }
            o += (size_t)snprintf(out + o, size - o, "{%s}", name);
            json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s}}", "name", name, "in", "path", "required", 1, "schema",
                                                    "type", "string"));
        } else {
            out[o++] = *p++;
        }
    }
    out[o < size ? o : size - 1] = '\0';
}

#define ERROR_SCHEMA                                                                                                               \
    "{\"type\":\"object\",\"required\":[\"error\"],\"properties\":{\"error\":{\"type\":\"object\",\"required\":[\"code\","         \
    "\"message\",\"details\",\"request_id\"],\"properties\":{\"code\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"},"    \
    "\"details\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"},"               \
    "\"message\":{\"type\":\"string\"}}}},\"request_id\":{\"type\":\"string\"}}}}}"

static json_t *error_ref(void)
{
    return json_pack("{s:s}", "$ref", "#/components/responses/Error");
}

static json_t *operation(const sff_route_entry_t *e, json_t *path_params)
{
    const sff_route_t *r = &e->route;
    char opid[192];
    size_t n = 0;
    for (const char *p = e->label; *p && n + 1 < sizeof(opid); p++)
        opid[n++] = isalnum((unsigned char)*p) ? *p : '_';
    opid[n] = '\0';
    json_t *op = json_pack("{s:s, s:s, s:[s], s:O}", "operationId", opid, "summary", r->summary != NULL ? r->summary : e->label,
                           "tags", e->mod->name, "parameters", path_params);
    json_t *params = json_object_get(op, "parameters");
    int has_body = strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 || strcmp(r->method, "PATCH") == 0;
    if (r->schema != NULL) {
        char ref[256];
        snprintf(ref, sizeof(ref), "#/components/schemas/%s", r->schema);
        if (has_body) {
            json_object_set_new(
                op, "requestBody",
                json_pack("{s:b, s:{s:{s:{s:s}}}}", "required", 1, "content", "application/json", "schema", "$ref", ref));
        } else {
            /* GET and DELETE take their input from the query: one parameter per property */
            json_t *props = json_object_get(sff_schema_doc(e->schema), "properties");
            json_t *required = json_object_get(sff_schema_doc(e->schema), "required");
            const char *key;
            json_t *prop;
            json_object_foreach(props, key, prop)
            {
                int in_path = 0;
                size_t i;
                json_t *pp;
                json_array_foreach(params, i, pp)
                {
                    if (strcmp(json_string_value(json_object_get(pp, "name")), key) == 0)
                        in_path = 1;
                }
                if (in_path)
                    continue;
                int req = 0;
                json_array_foreach(required, i, pp)
                {
                    if (json_is_string(pp) && strcmp(json_string_value(pp), key) == 0)
                        req = 1;
                }
                json_array_append_new(
                    params, json_pack("{s:s, s:s, s:b, s:O}", "name", key, "in", "query", "required", req, "schema", prop));
            }
        }
    }
    json_t *responses = json_pack("{s:{s:s, s:{s:{s:{}}}}}", "200", "description", "The function's JSON result", "content",
                                  "application/json", "schema");
    json_object_set_new(responses, "400", error_ref());
    if (e->policy != SFF_POLICY_PUBLIC) {
        json_object_set_new(responses, "401", error_ref());
        json_object_set_new(op, "security", json_pack("[{s:[]}, {s:[]}]", "bearer", "cookie"));
    }
    if (e->policy == SFF_POLICY_ROLE)
        json_object_set_new(responses, "403", error_ref());
    json_object_set_new(responses, "504", error_ref());
    json_object_set_new(responses, "default", error_ref());
    json_object_set_new(op, "responses", responses);
    return op;
}

json_t *sff_openapi_build(const sff_generation_t *gen, const sff_config_t *config)
{
    json_t *paths = json_object(), *schemas = json_object();
    for (size_t i = 0; gen != NULL && i < gen->nroutes; i++) {
        const sff_route_entry_t *e = &gen->routes[i];
        char path[1024], method[16];
        json_t *params = json_array();
        convert_path(e->route.path, path, sizeof(path), params);
        size_t m;
        for (m = 0; e->route.method[m] && m + 1 < sizeof(method); m++)
            method[m] = (char)tolower((unsigned char)e->route.method[m]);
        method[m] = '\0';
        json_t *item = json_object_get(paths, path);
        if (item == NULL) {
            item = json_object();
            json_object_set_new(paths, path, item);
        }
        json_object_set_new(item, method, operation(e, params));
        json_decref(params);
    }
    const sff_schema_t *schema;
    const char *name;
    for (size_t i = 0; gen != NULL && (name = sff_schemas_name_at(gen->schemas, i, &schema)) != NULL; i++)
        json_object_set(schemas, name, sff_schema_doc(schema));
    json_object_set_new(schemas, "Error", json_loads(ERROR_SCHEMA, 0, NULL));
    return json_pack("{s:s, s:{s:s, s:s, s:s}, s:o, s:{s:o, s:{s:{s:s, s:{s:{s:{s:s}}}}}, s:{s:{s:s, s:s, s:s}, "
                     "s:{s:s, s:s, s:s}}}}",
                     "openapi", "3.1.0", "info", "title", "sff functions", "version", SFF_VERSION, "description",
                     "Functions served by sff. Every error uses the envelope in #/components/schemas/Error.", "paths", paths,
                     "components", "schemas", schemas, "responses", "Error", "description", "The error envelope", "content",
                     "application/json", "schema", "$ref", "#/components/schemas/Error", "securitySchemes", "bearer", "type",
                     "http", "scheme", "bearer", "bearerFormat", "JWT", "cookie", "type", "apiKey", "in", "cookie", "name",
                     config->jwt_cookie);
}
