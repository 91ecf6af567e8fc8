/*
 * jsonout.h - JSON text from jansson values, fast.
 *
 * Every JSON response, cached value and statement parameter list is serialized here. The output
 * is byte for byte that of json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) (checked against it by
 * tests/unit/gateway/jsonout.c and the jsonout fuzzer), at a fraction of its cost: jansson 2.14
 * formats the address of every object and array it enters into a hash table to detect cycles,
 * and writes through a callback a few bytes at a time. Here a depth limit stands in for the cycle
 * check and the text goes into one growing buffer.
 */
#ifndef SFF_JSONOUT_H
#define SFF_JSONOUT_H

#include <stddef.h>
#include <jansson.h>

/* Deeper nesting fails: no value the gateway accepts or builds comes near it; a cycle hits it. */
#define SFF_JSONOUT_MAX_DEPTH 2048

/*
 * The text of v (malloc'ed, NUL-terminated; its length in *len when len is not NULL), or NULL
 * where json_dumps() fails too: a string that is not UTF-8, a cycle (here: nesting deeper than
 * SFF_JSONOUT_MAX_DEPTH), out of memory; or v NULL. Also for a key that is not UTF-8, where
 * jansson 2.14 writes broken text (it ignores the failure: the key cut short, unquoted).
 */
char *sff_jsonout_dump(const json_t *v, size_t *len);

#endif
