/*
 * libFuzzer target for gateway/jsonin.c: the input is parsed as JSON (limit 64) and as a form.
 * Beyond not crashing, it checks that an accepted JSON text is within the depth limit, and that
 * parsing what jansson writes back gives an equal value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "jsonin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char err[256];
    json_t *value, *again, *form;

    int depth = sff_jsonin_depth(text, size, 64);
    if (depth < 0 || depth > 65)
        abort();
    if ((value = sff_jsonin_parse(text, size, 64, err, sizeof(err))) != NULL) {
        if (depth > 64)
            abort();
        char *dumped = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (dumped == NULL)
            abort();
        if ((again = sff_jsonin_parse(dumped, strlen(dumped), 64, err, sizeof(err))) == NULL || !json_equal(value, again))
            abort();
        json_decref(again);
        free(dumped);
        json_decref(value);
    } else if (err[0] == '\0') {
        abort();
    }

    form = json_object();
    if (sff_jsonin_parse_form(form, text, size, err, sizeof(err)) != 0) {
        if (json_object_size(form) != 0)
            abort(); /* a failed parse adds nothing */
    } else {
        const char *key;
        json_t *member;
        json_object_foreach(form, key, member)
        {
            if (!json_is_string(member))
                abort();
        }
    }
    json_decref(form);
    return 0;
}
