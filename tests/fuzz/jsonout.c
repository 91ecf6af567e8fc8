/*
 * libFuzzer target for gateway/jsonout.c against jansson: the input, parsed by jansson, must be
 * written exactly as json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes it; the raw input as a string
 * (any bytes, unchecked) must be written the same or fail where jansson fails; as an object key,
 * ours must fail exactly when the bytes are not UTF-8.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "jsonout.h"

static void same(const json_t *v)
{
    size_t len;
    char *ours = sff_jsonout_dump(v, &len), *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if ((ours == NULL) != (theirs == NULL) || (ours != NULL && (len != strlen(theirs) || strcmp(ours, theirs) != 0)))
        abort();
    free(ours);
    free(theirs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_t *v = json_loadb(text, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (v != NULL) {
        same(v);
        json_decref(v);
    }
    json_t *s = json_stringn_nocheck(text, size);
    same(s);
    json_t *o = json_object(), *checked = json_stringn(text, size);
    json_object_setn_new_nocheck(o, text, size, s);
    char *out = sff_jsonout_dump(o, NULL);
    if ((out == NULL) != (checked == NULL))
        abort();
    free(out);
    json_decref(checked);
    json_decref(o);
    return 0;
}
