/*
 * libFuzzer target for gateway/schema.c. The input is "schema \0 instance": the part before the
 * first NUL is compiled as a schema and, if it compiles, the rest is validated against it, with
 * every top-level member of the instance coercible. Checks that the count matches the details.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "jsonin.h"
#include "schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *nul = memchr(text, '\0', size);
    size_t schema_len = nul != NULL ? (size_t)(nul - text) : size;
    char err[512];
    json_t *doc, *instance = NULL, *coercible = NULL, *details = NULL;
    sff_schema_t *schema = NULL;

    if ((doc = sff_jsonin_parse(text, schema_len, 256, err, sizeof(err))) == NULL)
        return 0;
    if ((schema = sff_schema_compile(doc, err, sizeof(err))) == NULL) {
        if (err[0] == '\0')
            abort();
        goto exit;
    }
    if (sff_schema_doc(schema) != doc)
        abort();
    if (nul == NULL)
        goto exit;
    if ((instance = sff_jsonin_parse(nul + 1, size - schema_len - 1, 64, err, sizeof(err))) == NULL)
        goto exit;
    coercible = json_object();
    if (json_is_object(instance)) {
        const char *key;
        json_t *member;
        json_object_foreach(instance, key, member)
        {
            json_object_set_new(coercible, key, json_true());
        }
    }
    details = json_array();
    int n = sff_schema_validate(schema, instance, coercible, details);
    if (n < 0 || (size_t)n != json_array_size(details))
        abort();
    /* Validating again (after coercion) gives the same failures. */
    if (sff_schema_validate(schema, instance, NULL, NULL) != n)
        abort();

exit:
    json_decref(details);
    json_decref(coercible);
    json_decref(instance);
    sff_schema_destroy(schema);
    json_decref(doc);
    return 0;
}
