/*
 * jsonin.h - strict parsing of what clients send: JSON bodies, forms and query strings.
 *
 * JSON is refused when it is nested deeper than a limit (checked before jansson sees it, so no
 * recursion ever goes deep), has a duplicate key in an object, holds invalid UTF-8 or a NUL
 * escape ("\u0000"), or has anything after the value.
 */
#ifndef SFF_JSONIN_H
#define SFF_JSONIN_H

#include <stddef.h>
#include <jansson.h>

/* Parses a JSON text of any type. Returns a new reference, or NULL with a client-facing message in
 * err (it may quote a position, never the input). */
json_t *sff_jsonin_parse(const char *text, size_t len, int max_depth, char *err, size_t errlen);

/* The nesting depth of a JSON text (arrays and objects), scanning strings correctly; stops
 * counting once it exceeds limit and returns limit + 1. */
int sff_jsonin_depth(const char *text, size_t len, int limit);

/* Adds the pairs of an application/x-www-form-urlencoded text (also a query string) to obj as
 * strings ('+' is a space, %XX decoded; a repeated key keeps its last value; a key without '='
 * gets ""). Returns 0, or -1 with a message in err for a malformed escape, invalid UTF-8 or a NUL. */
int sff_jsonin_parse_form(json_t *obj, const char *text, size_t len, char *err, size_t errlen);

#endif
