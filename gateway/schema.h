/*
 * schema.h - the JSON Schema subset sff checks inputs against.
 *
 * Keywords: type (a name or an array of names: null, boolean, integer, number, string, array,
 * object), properties, required, additionalProperties (boolean or a schema), enum, const,
 * minLength/maxLength (in Unicode code points), pattern (ECMA-262 subset, see schema.c),
 * minimum/maximum, exclusiveMinimum/exclusiveMaximum (numbers), items (a schema), minItems/maxItems,
 * format (uuid, email, date-time), and the annotations title, description, default, examples,
 * $schema, $id. Any other keyword is refused at load time, so a typo never silently disables a check.
 */
#ifndef SFF_SCHEMA_H
#define SFF_SCHEMA_H

#include <stddef.h>
#include <jansson.h>

typedef struct st_sff_schema_t sff_schema_t;
typedef struct st_sff_schemas_t sff_schemas_t;

/* Compiles a schema document (borrowed; the schema keeps its own reference). NULL with a message
 * in err naming the JSON pointer of the offending keyword. */
sff_schema_t *sff_schema_compile(json_t *doc, char *err, size_t errlen);
void sff_schema_destroy(sff_schema_t *schema);

/* The document a schema was compiled from. Borrowed. */
json_t *sff_schema_doc(const sff_schema_t *schema);

/*
 * Validates instance. Appends one {"path": "/a/0/b", "message": "..."} object to details (a JSON
 * array) per failure, and returns the number of failures (0: valid). Top-level members of instance
 * whose names are keys of coercible (an object, may be NULL) and whose values are strings are
 * first converted in place where the schema wants an integer, number or boolean and the string
 * reads as one ("42", "1.5", "true"/"false"): query and path parameters arrive as strings.
 */
int sff_schema_validate(const sff_schema_t *schema, json_t *instance, const json_t *coercible, json_t *details);

/* Loads every <name>.json of a directory as schema <name>. NULL with a message in err for a file
 * that is not valid JSON or not a valid schema. A missing directory gives an empty set. */
sff_schemas_t *sff_schemas_load(const char *dir, char *err, size_t errlen);
void sff_schemas_destroy(sff_schemas_t *set);
/* The schema named name, or NULL. Borrowed from set. */
const sff_schema_t *sff_schemas_get(const sff_schemas_t *set, const char *name);
/* Iteration for the OpenAPI document: the i-th name and schema, or NULL past the end. */
const char *sff_schemas_name_at(const sff_schemas_t *set, size_t i, const sff_schema_t **schema);

#endif
