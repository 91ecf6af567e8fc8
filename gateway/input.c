#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "input.h"
#include "jsonin.h"
#include "sff.h"

int sff_input_build(const sff_route_params_t *rp, const char *query, size_t query_len, json_t *body, json_t **params,
                    json_t **merged, json_t **coercible, const char **msg)
{
    char err[128];
    *params = json_object();
    *merged = json_object();
    *coercible = json_object();
    if (*params == NULL || *merged == NULL || *coercible == NULL)
        goto NoMem;
    for (size_t i = 0; i < rp->n; i++) {
        char name[64], *value = malloc(rp->p[i].value_len + 1);
        size_t nlen = rp->p[i].name_len < sizeof(name) - 1 ? rp->p[i].name_len : sizeof(name) - 1;
        if (value == NULL)
            goto NoMem;
        memcpy(name, rp->p[i].name, nlen);
        name[nlen] = '\0';
        long vlen = sff_url_decode(value, rp->p[i].value, rp->p[i].value_len);
        json_t *s = vlen >= 0 ? json_stringn(value, (size_t)vlen) : NULL; /* NULL for invalid UTF-8 too */
        free(value);
        if (s == NULL) {
            *msg = "a path parameter is not valid percent-encoded UTF-8";
            goto BadReq;
        }
        json_object_set_new(*params, name, s);
    }
    json_object_update(*merged, *params);
    if (query != NULL && query_len != 0) {
        json_t *q = json_object();
        if (q == NULL)
            goto NoMem;
        if (sff_jsonin_parse_form(q, query, query_len, err, sizeof(err)) != 0) {
            json_decref(q);
            *msg = "the query string is not valid percent-encoded UTF-8";
            goto BadReq;
        }
        json_object_update(*merged, q);
        json_decref(q);
    }
    const char *key;
    json_t *v;
    json_object_foreach(*merged, key, v)
    {
        json_object_set_new(*coercible, key, json_true());
    }
    if (body != NULL) {
        json_object_foreach(body, key, v)
        {
            json_object_del(*coercible, key);
        }
        json_object_update(*merged, body);
    }
    return 0;
NoMem:
    *msg = "out of memory";
    json_decref(*params);
    json_decref(*merged);
    json_decref(*coercible);
    *params = *merged = *coercible = NULL;
    return SFF_ENOMEM;
BadReq:
    json_decref(*params);
    json_decref(*merged);
    json_decref(*coercible);
    *params = *merged = *coercible = NULL;
    return SFF_EBADREQ;
}

int sff_input_validate(const sff_schema_t *schema, json_t *merged, const json_t *coercible, json_t **details)
{
    *details = NULL;
    json_t *d = json_array();
    if (d == NULL)
        return SFF_ENOMEM;
    int n = sff_schema_validate(schema, merged, coercible, d);
    if (n == 0) {
        json_decref(d);
        return 0;
    }
    size_t size = json_array_size(d);
    if (size > SFF_INPUT_MAX_DETAILS) {
        while (json_array_size(d) > SFF_INPUT_MAX_DETAILS)
            json_array_remove(d, json_array_size(d) - 1);
        char msg[64];
        snprintf(msg, sizeof(msg), "and %zu more failures", size - SFF_INPUT_MAX_DETAILS);
        json_array_append_new(d, json_pack("{s:s, s:s}", "path", "", "message", msg));
    }
    *details = d;
    return SFF_EINVALID;
}
