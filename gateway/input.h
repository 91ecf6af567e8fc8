/*
 * input.h - a function's one input object: path parameters, then query parameters, then the
 * members of the JSON (or form) body, merged.
 */
#ifndef SFF_INPUT_H
#define SFF_INPUT_H

#include <jansson.h>
#include "router.h"
#include "schema.h"

/*
 * Builds *params (the decoded path parameters as strings), *merged (params, then the query's pairs,
 * then body's members; body may be NULL, borrowed) and *coercible (an object whose keys are the
 * members of *merged that came from the path or query, as strings that a schema may convert).
 * All three are new references. Returns 0, or SFF_EBADREQ with a static message in *msg for a
 * malformed escape, a NUL or invalid UTF-8 in the path or query.
 */
int sff_input_build(const sff_route_params_t *rp, const char *query, size_t query_len, json_t *body, json_t **params,
                    json_t **merged, json_t **coercible, const char **msg);

/* The most failures an envelope lists; the rest are summed up in one last entry. */
#define SFF_INPUT_MAX_DETAILS 50

/* Validates merged against schema (coercible as for sff_schema_validate()). Returns 0 when valid,
 * else SFF_EINVALID with *details set to a new array of at most SFF_INPUT_MAX_DETAILS + 1 entries. */
int sff_input_validate(const sff_schema_t *schema, json_t *merged, const json_t *coercible, json_t **details);

#endif
