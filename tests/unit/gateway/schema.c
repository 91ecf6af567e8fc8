/*
 * Unit tests of gateway/schema.c. Besides the tests below, it runs the data-driven cases of
 * tests/cases/schema (relative to the repository root, where tests run): each case folder holds a
 * schema.json, valid/<name>.json instances that must pass and invalid/<name>.json instances that
 * must fail, each with an invalid/<name>.paths file listing the JSON pointers of the failures, one per line
 * (an empty line for the root).
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "test.h"
#include "jsonin.h"
#include "schema.h"

#define CASES_DIR "tests/cases/schema"

/* Reads a whole file; NULL if it cannot be read. */
static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (fp == NULL)
        return NULL;
    do {
        if (n + 4096 + 1 > cap) {
            cap = (n + 4096 + 1) * 2;
            buf = realloc(buf, cap);
        }
        got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
    } while (got != 0);
    fclose(fp);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static json_t *load_json(const char *path)
{
    char err[256];
    size_t len;
    char *text = read_all(path, &len);
    json_t *v;

    if (text == NULL) {
        fprintf(stderr, "  %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if ((v = sff_jsonin_parse(text, len, 64, err, sizeof(err))) == NULL)
        fprintf(stderr, "  %s: %s\n", path, err);
    free(text);
    return v;
}

static sff_schema_t *compile_text(const char *text, char *err, size_t errlen)
{
    json_t *doc = sff_jsonin_parse(text, strlen(text), 256, err, errlen);
    if (doc == NULL)
        return NULL;
    sff_schema_t *schema = sff_schema_compile(doc, err, errlen);
    json_decref(doc);
    return schema;
}

/* Validates instance (JSON text) and returns the details array (with the count in *n). */
static json_t *validate_text(const sff_schema_t *schema, const char *instance, int *n)
{
    char err[256];
    json_t *value = sff_jsonin_parse(instance, strlen(instance), 64, err, sizeof(err)), *details = json_array();
    if (value == NULL) {
        fprintf(stderr, "  instance %s: %s\n", instance, err);
        *n = -1;
        return details;
    }
    *n = sff_schema_validate(schema, value, NULL, details);
    json_decref(value);
    return details;
}

static void print_details(const json_t *details)
{
    size_t i;
    json_t *d;
    json_array_foreach(details, i, d)
    {
        fprintf(stderr, "    \"%s\": %s\n", json_string_value(json_object_get(d, "path")),
                json_string_value(json_object_get(d, "message")));
    }
}

static int strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names of the entries of dir ending in suffix (all but "." and ".." when suffix is
 * NULL); the count in *n. */
static char **list_dir(const char *dir, const char *suffix, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *ent;
    char **names = NULL;

    *n = 0;
    if (d == NULL)
        return NULL;
    while ((ent = readdir(d)) != NULL) {
        size_t len = strlen(ent->d_name);
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        if (suffix != NULL && (len < strlen(suffix) || strcmp(ent->d_name + len - strlen(suffix), suffix) != 0))
            continue;
        names = realloc(names, (*n + 1) * sizeof(*names));
        names[(*n)++] = strdup(ent->d_name);
    }
    closedir(d);
    if (*n != 0)
        qsort(names, *n, sizeof(*names), strcmp_p);
    return names;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Splits the lines of a .paths file (an empty line stands for the root pointer ""). */
static char **read_paths(const char *path, size_t *n)
{
    size_t len;
    char *text = read_all(path, &len), **lines = NULL;

    *n = 0;
    if (text == NULL)
        return NULL;
    for (char *p = text; *p != '\0';) {
        char *nl = strchr(p, '\n');
        size_t l = nl != NULL ? (size_t)(nl - p) : strlen(p);
        lines = realloc(lines, (*n + 1) * sizeof(*lines));
        lines[(*n)++] = strndup(p, l);
        p += l + (nl != NULL);
    }
    free(text);
    if (*n != 0)
        qsort(lines, *n, sizeof(*lines), strcmp_p);
    return lines;
}

/* Checks one case folder; returns the number of problems found. */
static int run_case(const char *name, int *instances)
{
    char path[2048], err[256];
    int problems = 0;
    json_t *doc;
    sff_schema_t *schema = NULL;

    snprintf(path, sizeof(path), "%s/%s/schema.json", CASES_DIR, name);
    if ((doc = load_json(path)) == NULL)
        return 1;
    if ((schema = sff_schema_compile(doc, err, sizeof(err))) == NULL) {
        fprintf(stderr, "  %s: does not compile: %s\n", path, err);
        json_decref(doc);
        return 1;
    }
    json_decref(doc);

    for (int valid = 1; valid >= 0; valid--) {
        char dir[1024];
        size_t n;
        snprintf(dir, sizeof(dir), "%s/%s/%s", CASES_DIR, name, valid ? "valid" : "invalid");
        char **files = list_dir(dir, ".json", &n);
        for (size_t i = 0; i < n; i++) {
            json_t *instance, *details = json_array();
            int count;
            snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
            if ((instance = load_json(path)) == NULL) {
                problems++;
                json_decref(details);
                continue;
            }
            (*instances)++;
            count = sff_schema_validate(schema, instance, NULL, details);
            if ((size_t)count != json_array_size(details)) {
                fprintf(stderr, "  %s: returned %d with %zu details\n", path, count, json_array_size(details));
                problems++;
            }
            if (valid && count != 0) {
                fprintf(stderr, "  %s: should be valid, got:\n", path);
                print_details(details);
                problems++;
            } else if (!valid) {
                size_t nexp, ngot = json_array_size(details);
                char paths_file[2048];
                snprintf(paths_file, sizeof(paths_file), "%.*s.paths", (int)(strlen(path) - 5), path);
                char **expected = read_paths(paths_file, &nexp);
                if (expected == NULL && access(paths_file, R_OK) != 0) {
                    fprintf(stderr, "  %s: missing\n", paths_file);
                    problems++;
                }
                char **got = calloc(ngot + 1, sizeof(*got));
                for (size_t j = 0; j < ngot; j++)
                    got[j] = (char *)json_string_value(json_object_get(json_array_get(details, j), "path"));
                if (ngot != 0)
                    qsort(got, ngot, sizeof(*got), strcmp_p);
                int same = nexp == ngot && ngot != 0;
                for (size_t j = 0; same && j < ngot; j++)
                    same = strcmp(expected[j], got[j]) == 0;
                if (!same) {
                    fprintf(stderr, "  %s: expected failures at:\n", path);
                    for (size_t j = 0; j < nexp; j++)
                        fprintf(stderr, "    \"%s\"\n", expected[j]);
                    fprintf(stderr, "  got:\n");
                    print_details(details);
                    problems++;
                }
                free(got);
                free_list(expected, nexp);
            }
            json_decref(instance);
            json_decref(details);
        }
        free_list(files, n);
    }
    sff_schema_destroy(schema);
    return problems;
}

TEST(data_driven_cases)
{
    size_t n;
    int instances = 0;
    char **cases = list_dir(CASES_DIR, NULL, &n);

    CHECK(n >= 20);
    for (size_t i = 0; i < n; i++) {
        int problems = run_case(cases[i], &instances);
        if (problems != 0) {
            fprintf(stderr, "  case %s: %d problem(s)\n", cases[i], problems);
            test_cur_failed_ = 1;
        }
    }
    CHECK(instances >= 100);
    free_list(cases, n);
}

/* Whether compiling text fails with exactly msg. */
static int compile_fails(const char *text, const char *msg)
{
    char err[2048] = "";
    sff_schema_t *schema = compile_text(text, err, sizeof(err));
    if (schema != NULL) {
        fprintf(stderr, "  compiled: %s\n", text);
        sff_schema_destroy(schema);
        return 0;
    }
    if (strcmp(err, msg) != 0) {
        fprintf(stderr, "  for %s\n    message \"%s\"\n   expected \"%s\"\n", text, err, msg);
        return 0;
    }
    return 1;
}

TEST(refuses_unknown_keywords)
{
    CHECK(compile_fails("{\"properties\": {\"title\": {\"type\": \"string\", \"maxLenght\": 3}}}",
                        "/properties/title/maxLenght: unknown keyword"));
    CHECK(compile_fails("{\"$ref\": \"#/x\"}", "/$ref: unknown keyword"));
    CHECK(compile_fails("{\"oneOf\": []}", "/oneOf: unknown keyword"));
    CHECK(compile_fails("{\"items\": {\"properties\": {\"a/b~c\": {\"minimun\": 1}}}}",
                        "/items/properties/a~1b~0c/minimun: unknown keyword"));
    CHECK(compile_fails("{\"additionalProperties\": {\"patternProperties\": {}}}",
                        "/additionalProperties/patternProperties: unknown keyword"));
}

TEST(refuses_wrong_keyword_types)
{
    CHECK(compile_fails("[]", "(root): must be a schema (an object)"));
    CHECK(compile_fails("true", "(root): must be a schema (an object)"));
    CHECK(compile_fails("{\"type\": \"strng\"}", "/type: unknown type \"strng\""));
    CHECK(compile_fails("{\"type\": 1}", "/type: must be a type name or a non-empty array of type names"));
    CHECK(compile_fails("{\"type\": []}", "/type: must be a type name or a non-empty array of type names"));
    CHECK(compile_fails("{\"type\": [\"string\", \"nul\"]}", "/type/1: unknown type \"nul\""));
    CHECK(compile_fails("{\"type\": [\"string\", 1]}", "/type/1: must be a type name"));
    CHECK(compile_fails("{\"type\": [\"string\", \"string\"]}", "/type/1: type \"string\" is listed twice"));
    CHECK(compile_fails("{\"properties\": []}", "/properties: must be an object of schemas"));
    CHECK(compile_fails("{\"properties\": {\"a\": true}}", "/properties/a: must be a schema (an object)"));
    CHECK(compile_fails("{\"required\": \"a\"}", "/required: must be an array of property names"));
    CHECK(compile_fails("{\"required\": [\"a\", 1]}", "/required/1: must be a property name (a string)"));
    CHECK(compile_fails("{\"required\": [\"a\", \"a\"]}", "/required/1: \"a\" is listed twice"));
    CHECK(compile_fails("{\"additionalProperties\": 0}", "/additionalProperties: must be a boolean or a schema"));
    CHECK(compile_fails("{\"items\": [{}]}", "/items: must be a schema (an object)"));
    CHECK(compile_fails("{\"enum\": []}", "/enum: must be a non-empty array"));
    CHECK(compile_fails("{\"enum\": \"a\"}", "/enum: must be a non-empty array"));
    CHECK(compile_fails("{\"minLength\": -1}", "/minLength: must be a non-negative integer"));
    CHECK(compile_fails("{\"maxLength\": 1.5}", "/maxLength: must be a non-negative integer"));
    CHECK(compile_fails("{\"minItems\": \"1\"}", "/minItems: must be a non-negative integer"));
    CHECK(compile_fails("{\"maxItems\": null}", "/maxItems: must be a non-negative integer"));
    CHECK(compile_fails("{\"minimum\": \"0\"}", "/minimum: must be a number"));
    CHECK(compile_fails("{\"maximum\": true}", "/maximum: must be a number"));
    CHECK(compile_fails("{\"exclusiveMinimum\": true}", "/exclusiveMinimum: must be a number"));
    CHECK(compile_fails("{\"exclusiveMaximum\": [1]}", "/exclusiveMaximum: must be a number"));
    CHECK(compile_fails("{\"pattern\": 1}", "/pattern: must be a string"));
    CHECK(compile_fails("{\"format\": 1}", "/format: must be a string"));
    CHECK(compile_fails("{\"format\": \"date\"}", "/format: unknown format \"date\" (known: uuid, email, date-time)"));
    CHECK(compile_fails("{\"title\": 1}", "/title: must be a string"));
    CHECK(compile_fails("{\"description\": {}}", "/description: must be a string"));
    CHECK(compile_fails("{\"$schema\": 1}", "/$schema: must be a string"));
    CHECK(compile_fails("{\"$id\": null}", "/$id: must be a string"));
    CHECK(compile_fails("{\"examples\": \"x\"}", "/examples: must be an array"));
}

TEST(accepts_counts_written_as_reals)
{
    char err[256];
    sff_schema_t *schema = compile_text("{\"maxLength\": 2.0, \"minItems\": 0}", err, sizeof(err));
    CHECK(schema != NULL);
    int n;
    json_t *details = validate_text(schema, "\"abc\"", &n);
    CHECK_INT(n, 1);
    json_decref(details);
    sff_schema_destroy(schema);
}

TEST(refuses_unsupported_patterns)
{
    CHECK(compile_fails("{\"pattern\": \"^(?=a)\"}", "/pattern: lookahead assertions are not supported"));
    CHECK(compile_fails("{\"pattern\": \"a(?!b)\"}", "/pattern: lookahead assertions are not supported"));
    CHECK(compile_fails("{\"pattern\": \"(?<=a)b\"}", "/pattern: lookbehind assertions are not supported"));
    CHECK(compile_fails("{\"pattern\": \"(?<!a)b\"}", "/pattern: lookbehind assertions are not supported"));
    CHECK(compile_fails("{\"pattern\": \"(a)\\\\1\"}", "/pattern: backreferences are not supported"));
    CHECK(compile_fails("{\"pattern\": \"(?<x>a)\\\\k<x>\"}", "/pattern: backreferences are not supported"));
    CHECK(compile_fails("{\"pattern\": \"a*?\"}", "/pattern: lazy quantifiers (*?, +?, ??, {n,m}?) are not supported"));
    CHECK(compile_fails("{\"pattern\": \"a+?\"}", "/pattern: lazy quantifiers (*?, +?, ??, {n,m}?) are not supported"));
    CHECK(compile_fails("{\"pattern\": \"a??\"}", "/pattern: lazy quantifiers (*?, +?, ??, {n,m}?) are not supported"));
    CHECK(compile_fails("{\"pattern\": \"a{1,2}?\"}", "/pattern: lazy quantifiers (*?, +?, ??, {n,m}?) are not supported"));
    CHECK(compile_fails("{\"pattern\": \"\\\\bword\"}", "/pattern: word boundaries (\\b, \\B) are not supported"));
    CHECK(compile_fails("{\"pattern\": \"\\\\B\"}", "/pattern: word boundaries (\\b, \\B) are not supported"));
    CHECK(compile_fails("{\"pattern\": \"\\\\p{L}\"}", "/pattern: Unicode property escapes (\\p, \\P) are not supported"));
    CHECK(compile_fails("{\"pattern\": \"\\\\cA\"}", "/pattern: control escapes (\\c) are not supported"));
    CHECK(compile_fails("{\"pattern\": \"\\\\0\"}", "/pattern: \\0 (NUL) is not supported"));
    CHECK(compile_fails("{\"pattern\": \"\\\\q\"}", "/pattern: unsupported escape \\q"));
    CHECK(compile_fails("{\"pattern\": \"a\\\\\"}", "/pattern: trailing backslash"));
    CHECK(compile_fails("{\"pattern\": \"[a-\"}", "/pattern: unterminated character class"));
    CHECK(compile_fails("{\"pattern\": \"[z-a]\"}", "/pattern: character class range out of order"));
    CHECK(compile_fails("{\"pattern\": \"[\\\\d-z]\"}", "/pattern: a class escape cannot start a range"));
    CHECK(compile_fails("{\"pattern\": \"[a-\\\\d]\"}", "/pattern: a class escape cannot end a range"));
    CHECK(compile_fails("{\"pattern\": \"[\\\\W]\"}", "/pattern: \\D, \\W and \\S are not supported inside a character class"));
    CHECK(compile_fails("{\"pattern\": \"[]\"}", "/pattern: empty character class [] is not supported"));
    CHECK(compile_fails("{\"pattern\": \"[^]\"}", "/pattern: [^] is not supported"));
    CHECK(compile_fails("{\"pattern\": \"(?i)a\"}", "/pattern: unsupported group syntax (?"));
    CHECK(compile_fails("{\"pattern\": \"\\\\ud800\"}", "/pattern: lone surrogate escapes are not supported"));
    CHECK(compile_fails("{\"pattern\": \"\\\\xZZ\"}", "/pattern: \\x needs two hex digits"));
    CHECK(compile_fails("{\"pattern\": \"[\\u0100-\\uffff]\"}",
                        "/pattern: character classes cover more than 4096 non-ASCII characters"));
    CHECK(compile_fails("{\"pattern\": \"[\\u0100-\\u09ff][\\u0100-\\u09ff]\"}",
                        "/pattern: character classes cover more than 4096 non-ASCII characters"));
    CHECK(compile_fails("{\"pattern\": \"(a\"}", "/pattern: unmatched ("));
    CHECK(compile_fails("{\"pattern\": \"a)\"}", "/pattern: unmatched )"));
    const char *nothing = "/pattern: nothing to repeat (a quantifier must follow a character, a class or a group)";
    CHECK(compile_fails("{\"pattern\": \"*a\"}", nothing));
    CHECK(compile_fails("{\"pattern\": \"a|+b\"}", nothing));
    CHECK(compile_fails("{\"pattern\": \"(*a)\"}", nothing));
    CHECK(compile_fails("{\"pattern\": \"^*\"}", nothing));
    CHECK(compile_fails("{\"pattern\": \"a$?\"}", nothing));
    /* Stacked quantifiers would make regcomp() take exponential memory. */
    CHECK(compile_fails("{\"pattern\": \"T++++++++++++++++++++++++++++++++++++++++++++++++++\"}", nothing));
    CHECK(compile_fails("{\"pattern\": \"a{2}{3}\"}", nothing));
    CHECK(compile_fails("{\"pattern\": \"a*+\"}", nothing));
    CHECK(compile_fails("{\"pattern\": \"((a{1,100}){1,100}){1,100}\"}",
                        "/pattern: pattern too large once its repetitions are expanded (more than 10000 atoms)"));
    CHECK(compile_fails("{\"pattern\": \"(ab|cd){5000}\"}",
                        "/pattern: pattern too large once its repetitions are expanded (more than 10000 atoms)"));
    CHECK(compile_fails("{\"pattern\": \"a{40000}\"}", "/pattern: repetition counts above 32767 are not supported"));
    CHECK(compile_fails("{\"pattern\": \"a{1,99999999999999999999999}\"}",
                        "/pattern: repetition counts above 32767 are not supported"));
    char deep[256] = "{\"pattern\": \"";
    for (int i = 0; i < 33; i++)
        strcat(deep, "(");
    strcat(deep, "a");
    for (int i = 0; i < 33; i++)
        strcat(deep, ")");
    strcat(deep, "\"}");
    CHECK(compile_fails(deep, "/pattern: groups nested deeper than 32"));
    CHECK(compile_fails("{\"properties\": {\"x\": {\"pattern\": \"a{3,1}\"}}}",
                        "/properties/x/pattern: invalid regular expression: Invalid content of \\{\\}"));
}

/* Whether pattern (JSON string contents) matches s (JSON string contents). */
static int pattern_matches(const char *pattern, const char *s)
{
    char text[1024], err[256];
    snprintf(text, sizeof(text), "{\"pattern\": \"%s\"}", pattern);
    sff_schema_t *schema = compile_text(text, err, sizeof(err));
    if (schema == NULL) {
        fprintf(stderr, "  %s: %s\n", pattern, err);
        return -1;
    }
    snprintf(text, sizeof(text), "\"%s\"", s);
    int n;
    json_t *details = validate_text(schema, text, &n);
    json_decref(details);
    sff_schema_destroy(schema);
    return n == 0;
}

TEST(translates_patterns)
{
    CHECK_INT(pattern_matches("^\\\\d+$", "0123456789"), 1);
    CHECK_INT(pattern_matches("^\\\\d+$", "\\u0661"), 0); /* Arabic-Indic digit one: \d is ASCII */
    CHECK_INT(pattern_matches("^\\\\s$", "\\u00a0"), 1);  /* ECMA-262 \s includes NBSP */
    CHECK_INT(pattern_matches("^\\\\s$", "\\ufeff"), 1);
    CHECK_INT(pattern_matches("^\\\\S$", "\\u3000"), 0);
    CHECK_INT(pattern_matches("^\\\\w$", "\\u00e9"), 0);
    CHECK_INT(pattern_matches("^.$", "\\u2028"), 0);
    CHECK_INT(pattern_matches("^.$", "\\r"), 0);
    CHECK_INT(pattern_matches("^.$", "\\ud83d\\ude00"), 1);
    CHECK_INT(pattern_matches("^\\\\ud83d\\\\ude00{2}$", "\\ud83d\\ude00\\ud83d\\ude00"), 1);
    CHECK_INT(pattern_matches("^\\u00e9+$", "\\u00e9\\u00e9"), 1);
    CHECK_INT(pattern_matches("^[\\\\b]$", "\\b"), 1);
    CHECK_INT(pattern_matches("^[\\\\n\\\\t]+$", "\\n\\t"), 1);
    CHECK_INT(pattern_matches("^[^\\\\]]+$", "abc"), 1);
    CHECK_INT(pattern_matches("^[^\\\\]]+$", "a]c"), 0);
    CHECK_INT(pattern_matches("^[\\\\^-]+$", "^-^"), 1);
    CHECK_INT(pattern_matches("^[\\\\^-]+$", "a"), 0);
    CHECK_INT(pattern_matches("^[^^]$", "^"), 0);
    CHECK_INT(pattern_matches("^[A-z]+$", "[\\\\]^_`"), 1); /* the range spans the specials */
    CHECK_INT(pattern_matches("^[[:a]+$", "[:a"), 1);       /* no POSIX class names in ECMA-262 */
    CHECK_INT(pattern_matches("^[\\\\x00-\\\\x1f]$", "\\u001f"), 1);
    CHECK_INT(pattern_matches("^[\\u00e0-\\u00ff]+$", "\\u00e9\\u00ff"), 1);
    CHECK_INT(pattern_matches("^[\\u00e0-\\u00ff]+$", "\\u00df"), 0);
    CHECK_INT(pattern_matches("^[^\\u00e0-\\u00ff]$", "\\u00df"), 1);
    CHECK_INT(pattern_matches("a{", "a{"), 1);
    CHECK_INT(pattern_matches("^a{,2}$", "a{,2}"), 1);
    CHECK_INT(pattern_matches("^a{2,}$", "aaa"), 1);
    CHECK_INT(pattern_matches("}]", "}]"), 1);
    CHECK_INT(pattern_matches("^(a|)$", ""), 1);
    CHECK_INT(pattern_matches("^(?<year>\\\\d{4})-(?:\\\\d\\\\d)$", "2024-06"), 1);
    CHECK_INT(pattern_matches("x|^y$", "y"), 1);
    CHECK_INT(pattern_matches("", "anything"), 1);
    CHECK_INT(pattern_matches("^(a{1,100}){1,100}$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 1);
    CHECK_INT(pattern_matches("^()+$", ""), 1);
    CHECK_INT(pattern_matches("^(?:(?:(?:a)))$", "a"), 1);
    CHECK_INT(pattern_matches("^a{0}b$", "b"), 1);
}

/* The message of the only failure of instance against the schema text. */
static int message_is(const char *schema_text, const char *instance, const char *path, const char *message)
{
    char err[256];
    sff_schema_t *schema = compile_text(schema_text, err, sizeof(err));
    int n, ok = 0;
    if (schema == NULL) {
        fprintf(stderr, "  %s: %s\n", schema_text, err);
        return 0;
    }
    json_t *details = validate_text(schema, instance, &n);
    json_t *d = json_array_get(details, 0);
    if (n == 1 && json_array_size(details) == 1 && strcmp(json_string_value(json_object_get(d, "path")), path) == 0 &&
        strcmp(json_string_value(json_object_get(d, "message")), message) == 0) {
        ok = 1;
    } else {
        fprintf(stderr, "  %s against %s: expected \"%s\": %s, got %d:\n", instance, schema_text, path, message, n);
        print_details(details);
    }
    json_decref(details);
    sff_schema_destroy(schema);
    return ok;
}

TEST(messages)
{
    const char *todo = "{\"type\": \"object\", \"required\": [\"title\"], \"additionalProperties\": false, \"properties\": {"
                       "\"title\": {\"type\": \"string\", \"maxLength\": 100, \"minLength\": 1},"
                       "\"status\": {\"enum\": [\"todo\", \"done\"]},"
                       "\"slug\": {\"type\": \"string\", \"pattern\": \"^[a-z]+$\"},"
                       "\"email\": {\"type\": \"string\", \"format\": \"email\"},"
                       "\"id\": {\"type\": \"string\", \"format\": \"uuid\"},"
                       "\"at\": {\"type\": \"string\", \"format\": \"date-time\"},"
                       "\"n\": {\"type\": \"number\", \"minimum\": 0.5, \"maximum\": 10, \"exclusiveMaximum\": 10.25},"
                       "\"m\": {\"type\": \"integer\", \"exclusiveMinimum\": 0},"
                       "\"tags\": {\"type\": \"array\", \"minItems\": 1, \"maxItems\": 2},"
                       "\"one\": {\"type\": \"array\", \"minItems\": 2, \"maxItems\": 1},"
                       "\"c\": {\"type\": \"string\", \"minLength\": 1}, \"d\": {\"type\": \"string\", \"maxLength\": 1},"
                       "\"k\": {\"const\": {\"a\": [1]}},"
                       "\"opt\": {\"type\": [\"string\", \"null\"]},"
                       "\"any\": {\"type\": [\"integer\", \"boolean\", \"object\"]},"
                       "\"num\": {\"type\": [\"integer\", \"number\"]}"
                       "}}";
    CHECK(message_is(todo, "{}", "/title", "is required"));
    CHECK(message_is(todo, "[]", "", "must be an object"));
    CHECK(message_is(todo, "{\"title\": 1}", "/title", "must be a string"));
    CHECK(message_is(todo, "{\"title\": \"\"}", "/title", "must be at least 1 character"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"c\": \"\"}", "/c", "must be at least 1 character"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"d\": \"ab\"}", "/d", "must be at most 1 character"));
    CHECK(message_is(
        todo,
        "{\"title\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
        "/title", "must be at most 100 characters"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"status\": \"later\"}", "/status", "must be one of: \"todo\", \"done\""));
    CHECK(message_is(todo, "{\"title\": \"x\", \"slug\": \"A\"}", "/slug", "must match pattern ^[a-z]+$"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"email\": \"nope\"}", "/email", "is not a valid email"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"id\": \"nope\"}", "/id", "is not a valid UUID"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"at\": \"nope\"}", "/at", "is not a valid date-time"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"extra\": 1}", "/extra", "is not allowed (additional property)"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"n\": 0.1}", "/n", "must be at least 0.5"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"n\": 10.1}", "/n", "must be at most 10"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"m\": 0}", "/m", "must be greater than 0"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"m\": 1.5}", "/m", "must be an integer"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"tags\": []}", "/tags", "must have at least 1 item"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"tags\": [1, 2, 3]}", "/tags", "must have at most 2 items"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"k\": {\"a\": [2]}}", "/k", "must be equal to {\"a\":[1]}"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"opt\": 1}", "/opt", "must be a string or null"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"any\": \"s\"}", "/any", "must be an integer, a boolean or an object"));
    CHECK(message_is(todo, "{\"title\": \"x\", \"num\": \"s\"}", "/num", "must be a number"));
    CHECK(message_is("{\"exclusiveMaximum\": 0.1}", "0.1", "", "must be less than 0.1"));
    CHECK(message_is("{\"maximum\": 0.30000000000000004}", "1", "", "must be at most 0.30000000000000004"));
    CHECK(message_is("{\"enum\": [1.5, null, true, [1], {\"a\": \"b\"}]}", "2", "",
                     "must be one of: 1.5, null, true, [1], {\"a\":\"b\"}"));
    CHECK(message_is("{\"const\": \"x\"}", "\"y\"", "", "must be equal to \"x\""));
    CHECK(message_is("{\"type\": \"null\"}", "0", "", "must be null"));
    CHECK(message_is("{\"type\": \"boolean\"}", "0", "", "must be a boolean"));
    CHECK(message_is("{\"type\": \"array\"}", "0", "", "must be an array"));
}

TEST(long_messages_are_cut_at_a_character)
{
    char text[2048] = "{\"pattern\": \"^";
    for (int i = 0; i < 300; i++)
        strcat(text, "\u00e9");
    strcat(text, "$\"}");
    char err[256];
    sff_schema_t *schema = compile_text(text, err, sizeof(err));
    CHECK(schema != NULL);
    int n;
    json_t *details = validate_text(schema, "\"x\"", &n);
    const char *msg = json_string_value(json_object_get(json_array_get(details, 0), "message"));
    CHECK_INT(n, 1);
    CHECK(msg != NULL && strncmp(msg, "must match pattern ^\u00e9", 22) == 0);
    CHECK(msg != NULL && strcmp(msg + strlen(msg) - 3, "...") == 0);
    json_decref(details);
    sff_schema_destroy(schema);
}

TEST(long_enum_message_is_shortened)
{
    char text[4096] = "{\"enum\": [";
    for (int i = 0; i < 100; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s\"value-%d\"", i ? ", " : "", i);
    strcat(text, "]}");
    char err[256];
    sff_schema_t *schema = compile_text(text, err, sizeof(err));
    int n;
    json_t *details = validate_text(schema, "\"nope\"", &n);
    const char *msg = json_string_value(json_object_get(json_array_get(details, 0), "message"));
    CHECK_INT(n, 1);
    CHECK(msg != NULL && strlen(msg) < 300);
    CHECK(msg != NULL && strcmp(msg + strlen(msg) - 5, ", ...") == 0);
    CHECK(msg != NULL && strncmp(msg, "must be one of: \"value-0\", \"value-1\", ", 38) == 0);
    json_decref(details);
    sff_schema_destroy(schema);
}

TEST(refuses_deep_schemas)
{
    char text[4096] = "";
    /* 32 levels are fine, 33 are not. */
    for (int levels = 32; levels <= 33; levels++) {
        text[0] = '\0';
        for (int i = 1; i < levels; i++)
            strcat(text, "{\"items\": ");
        strcat(text, "{}");
        for (int i = 1; i < levels; i++)
            strcat(text, "}");
        char err[256];
        sff_schema_t *schema = compile_text(text, err, sizeof(err));
        if (levels == 32) {
            CHECK(schema != NULL);
        } else {
            CHECK(schema == NULL);
            CHECK(strstr(err, ": schema nested deeper than 32 levels") != NULL);
            CHECK(strncmp(err, "/items/items/", 13) == 0);
        }
        sff_schema_destroy(schema);
    }
    /* properties and additionalProperties count as levels too. */
    text[0] = '\0';
    for (int i = 0; i < 20; i++)
        strcat(text, "{\"properties\": {\"a\": {\"additionalProperties\": ");
    strcat(text, "{}");
    for (int i = 0; i < 20; i++)
        strcat(text, "}}}");
    char expect[2048] = "";
    for (int i = 0; i < 16; i++)
        strcat(expect, "/properties/a/additionalProperties");
    strcat(expect, ": schema nested deeper than 32 levels");
    CHECK(compile_fails(text, expect));
}

TEST(keeps_a_reference_to_the_doc)
{
    char err[256];
    json_t *doc = json_pack("{s:s, s:{s:{s:s, s:s}}}", "type", "object", "properties", "a", "type", "string", "pattern", "^x");
    sff_schema_t *schema = sff_schema_compile(doc, err, sizeof(err));
    CHECK(schema != NULL);
    CHECK(sff_schema_doc(schema) == doc);
    json_decref(doc); /* the schema's reference keeps it alive */
    int n;
    json_t *details = validate_text(schema, "{\"a\": \"y\"}", &n);
    CHECK_INT(n, 1);
    CHECK_STR(json_string_value(json_object_get(sff_schema_doc(schema), "type")), "object");
    json_decref(details);
    sff_schema_destroy(schema);
    /* A failed compile keeps no reference. */
    doc = json_pack("{s:s}", "type", "nope");
    CHECK(sff_schema_compile(doc, err, sizeof(err)) == NULL);
    CHECK_INT(doc->refcount, 1);
    json_decref(doc);
    /* err may be absent. */
    doc = json_pack("{s:i}", "bogus", 1);
    CHECK(sff_schema_compile(doc, NULL, 0) == NULL);
    json_decref(doc);
}

TEST(validates_without_details_and_counts)
{
    char err[256];
    sff_schema_t *schema = compile_text("{\"type\": \"array\", \"items\": {\"type\": \"string\"}}", err, sizeof(err));
    json_t *v = json_pack("[i, i, s, i]", 1, 2, "x", 3);
    CHECK_INT(sff_schema_validate(schema, v, NULL, NULL), 3);
    json_t *not_array = json_object();
    CHECK_INT(sff_schema_validate(schema, v, NULL, not_array), 3);
    CHECK_INT(json_object_size(not_array), 0);
    json_t *details = json_array();
    CHECK_INT(sff_schema_validate(schema, NULL, NULL, details), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(details, 0), "message")), "is required");
    json_decref(details);
    json_decref(not_array);
    json_decref(v);
    sff_schema_destroy(schema);
}

TEST(numbers_compare_exactly)
{
    char err[256];
    sff_schema_t *schema = compile_text("{\"maximum\": 9007199254740992.0, \"minimum\": -1e300}", err, sizeof(err));
    json_t *v = json_integer(9007199254740993LL);
    CHECK_INT(sff_schema_validate(schema, v, NULL, NULL), 1);
    json_decref(v);
    v = json_integer(9007199254740992LL);
    CHECK_INT(sff_schema_validate(schema, v, NULL, NULL), 0);
    json_decref(v);
    v = json_integer(-9223372036854775807LL - 1);
    CHECK_INT(sff_schema_validate(schema, v, NULL, NULL), 0);
    json_decref(v);
    sff_schema_destroy(schema);

    schema = compile_text("{\"const\": 5, \"type\": \"integer\"}", err, sizeof(err));
    v = json_real(5.0);
    CHECK_INT(sff_schema_validate(schema, v, NULL, NULL), 0);
    json_decref(v);
    v = json_real(5.000000000000001);
    CHECK_INT(sff_schema_validate(schema, v, NULL, NULL), 1); /* not an integer; const is not checked then */
    json_decref(v);
    sff_schema_destroy(schema);
}

/* Coerces the members of instance named in coercible_names (space separated) against schema. */
static json_t *coerced(const char *schema_text, const char *instance, const char *names, int *n)
{
    char err[256];
    sff_schema_t *schema = compile_text(schema_text, err, sizeof(err));
    json_t *value = sff_jsonin_parse(instance, strlen(instance), 64, err, sizeof(err)), *coercible = json_object();
    char *copy = strdup(names);
    for (char *tok = strtok(copy, " "); tok != NULL; tok = strtok(NULL, " "))
        json_object_set_new(coercible, tok, json_true());
    free(copy);
    *n = sff_schema_validate(schema, value, coercible, NULL);
    json_decref(coercible);
    sff_schema_destroy(schema);
    return value;
}

TEST(coerces_parameters)
{
    const char *schema = "{\"type\": \"object\", \"properties\": {"
                         "\"id\": {\"type\": \"integer\", \"minimum\": 1}, \"ratio\": {\"type\": \"number\"},"
                         "\"done\": {\"type\": \"boolean\"}, \"name\": {\"type\": \"string\"},"
                         "\"either\": {\"type\": [\"integer\", \"string\"]}, \"flag\": {\"type\": [\"boolean\", \"null\"]},"
                         "\"mixed\": {\"type\": [\"integer\", \"boolean\"]}, \"free\": {}}}";
    int n;
    json_t *v = coerced(schema,
                        "{\"id\": \"42\", \"ratio\": \"1.5e3\", \"done\": \"true\", \"name\": \"7\", \"either\": \"7\", "
                        "\"flag\": \"false\", \"mixed\": \"-3\", \"free\": \"1\"}",
                        "id ratio done name either flag mixed free", &n);
    CHECK_INT(n, 0);
    CHECK(json_is_integer(json_object_get(v, "id")) && json_integer_value(json_object_get(v, "id")) == 42);
    CHECK(json_is_real(json_object_get(v, "ratio")) && json_real_value(json_object_get(v, "ratio")) == 1500.0);
    CHECK(json_is_true(json_object_get(v, "done")));
    CHECK(json_is_string(json_object_get(v, "name")));
    CHECK(json_is_string(json_object_get(v, "either"))); /* "string" is among its types */
    CHECK(json_is_false(json_object_get(v, "flag")));
    CHECK(json_is_integer(json_object_get(v, "mixed")) && json_integer_value(json_object_get(v, "mixed")) == -3);
    CHECK(json_is_string(json_object_get(v, "free"))); /* no type: nothing wanted */
    json_decref(v);

    /* Only members named in coercible are converted. */
    v = coerced(schema, "{\"id\": \"42\", \"done\": \"true\"}", "id", &n);
    CHECK_INT(n, 1);
    CHECK(json_is_integer(json_object_get(v, "id")));
    CHECK(json_is_string(json_object_get(v, "done")));
    json_decref(v);

    /* Strings that do not read fully are left for validation to report. */
    v = coerced(schema, "{\"id\": \"42abc\", \"ratio\": \" 1\", \"done\": \"yes\", \"mixed\": \"TRUE\"}", "id ratio done mixed",
                &n);
    CHECK_INT(n, 4);
    CHECK_STR(json_string_value(json_object_get(v, "id")), "42abc");
    CHECK_STR(json_string_value(json_object_get(v, "ratio")), " 1");
    CHECK_STR(json_string_value(json_object_get(v, "done")), "yes");
    json_decref(v);
    const char *bad[] = {"", "-", "+1", "01", "1.", ".5", "1e", "0x10", "inf", "nan", "1e999", "99999999999999999999", "1 "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char inst[64];
        snprintf(inst, sizeof(inst), "{\"ratio\": \"%s\"}", bad[i]);
        v = coerced(schema, inst, "ratio", &n);
        if (!json_is_string(json_object_get(v, "ratio")) || n != 1)
            fprintf(stderr, "  coerced \"%s\"\n", bad[i]);
        CHECK(json_is_string(json_object_get(v, "ratio")));
        json_decref(v);
    }

    /* A converted value is then validated ("0" is below the minimum); an integer that is not whole
     * is converted and then refused as an integer. */
    v = coerced(schema, "{\"id\": \"0\"}", "id", &n);
    CHECK_INT(n, 1);
    json_decref(v);
    v = coerced(schema, "{\"id\": \"1.5\"}", "id", &n);
    CHECK_INT(n, 1);
    json_decref(v);
    v = coerced(schema, "{\"id\": \"2.0\"}", "id", &n);
    CHECK_INT(n, 0);
    json_decref(v);
    v = coerced(schema, "{\"id\": \"-0\"}", "id", &n);
    CHECK(json_is_integer(json_object_get(v, "id")));
    json_decref(v);

    /* Values that are not strings are left alone, as are instances that are not objects. */
    v = coerced(schema, "{\"id\": 5, \"done\": [\"true\"]}", "id done", &n);
    CHECK_INT(n, 1);
    json_decref(v);
    v = coerced("{\"type\": \"string\"}", "\"5\"", "id", &n);
    CHECK_INT(n, 0);
    json_decref(v);
}

/* Writes a file under dir. */
static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    if (fp == NULL)
        return;
    fputs(text, fp);
    fclose(fp);
}

static void remove_dir(const char *dir)
{
    size_t n;
    char **names = list_dir(dir, NULL, &n), path[512];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            remove_dir(path);
        } else {
            unlink(path);
        }
    }
    free_list(names, n);
    rmdir(dir);
}

TEST(loads_directories)
{
    char dir[] = "/tmp/sff-schema-test-XXXXXX", err[512], sub[600];
    if (mkdtemp(dir) == NULL) {
        CHECK(!"mkdtemp");
        return;
    }
    write_file(dir, "todo.json", "{\"type\": \"object\", \"required\": [\"title\"]}");
    write_file(dir, "A_user-2.json", "{\"type\": \"string\"}");
    write_file(dir, "beta.json", "{}");
    write_file(dir, "README.md", "not a schema");
    write_file(dir, "todo.json.bak", "{");
    snprintf(sub, sizeof(sub), "%s/dir.json", dir);
    mkdir(sub, 0700);

    sff_schemas_t *set = sff_schemas_load(dir, err, sizeof(err));
    CHECK(set != NULL);
    const sff_schema_t *s;
    CHECK_STR(sff_schemas_name_at(set, 0, &s), "A_user-2");
    CHECK(s == sff_schemas_get(set, "A_user-2"));
    CHECK_STR(sff_schemas_name_at(set, 1, &s), "beta");
    CHECK_STR(sff_schemas_name_at(set, 2, &s), "todo");
    CHECK(sff_schemas_name_at(set, 3, &s) == NULL && s == NULL);
    CHECK(sff_schemas_name_at(set, 3, NULL) == NULL);
    const sff_schema_t *todo = sff_schemas_get(set, "todo");
    CHECK(todo != NULL);
    CHECK(sff_schemas_get(set, "todo.json") == NULL);
    CHECK(sff_schemas_get(set, "missing") == NULL);
    json_t *empty = json_object();
    CHECK_INT(sff_schema_validate(todo, empty, NULL, NULL), 1);
    json_decref(empty);
    sff_schemas_destroy(set);

    /* Errors name the file. */
    char expect[600];
    write_file(dir, "bad.json", "{\"type\": \"object\",\n \"propertis\": {}}");
    set = sff_schemas_load(dir, err, sizeof(err));
    CHECK(set == NULL);
    snprintf(expect, sizeof(expect), "%s/bad.json: /propertis: unknown keyword", dir);
    CHECK_STR(err, expect);
    write_file(dir, "bad.json", "{\"type\": \"object\",}");
    set = sff_schemas_load(dir, err, sizeof(err));
    CHECK(set == NULL);
    snprintf(expect, sizeof(expect), "%s/bad.json: syntax error at line 1 column 19", dir);
    CHECK_STR(err, expect);
    write_file(dir, "bad.json", "{\"type\": \"object\", \"type\": \"string\"}");
    set = sff_schemas_load(dir, err, sizeof(err));
    CHECK(set == NULL);
    snprintf(expect, sizeof(expect), "%s/bad.json: duplicate key \"type\"", dir);
    CHECK_STR(err, expect);
    snprintf(sub, sizeof(sub), "%s/bad.json", dir);
    unlink(sub);
    write_file(dir, "no good.json", "{}");
    set = sff_schemas_load(dir, err, sizeof(err));
    CHECK(set == NULL);
    snprintf(expect, sizeof(expect), "%s/no good.json: a schema name may only hold A-Z, a-z, 0-9, \"_\" and \"-\"", dir);
    CHECK_STR(err, expect);
    snprintf(sub, sizeof(sub), "%s/no good.json", dir);
    unlink(sub);
    write_file(dir, ".json", "{}");
    CHECK(sff_schemas_load(dir, err, sizeof(err)) == NULL);
    remove_dir(dir);

    /* A missing directory is an empty set. */
    set = sff_schemas_load(dir, err, sizeof(err));
    CHECK(set != NULL);
    CHECK(sff_schemas_name_at(set, 0, NULL) == NULL);
    CHECK(sff_schemas_get(set, "todo") == NULL);
    sff_schemas_destroy(set);
    /* A file where the directory should be is an error. */
    set = sff_schemas_load("tests/test.h", err, sizeof(err));
    CHECK(set == NULL);
    CHECK_STR(err, "tests/test.h: Not a directory");
    sff_schemas_destroy(NULL);
}

int main(void)
{
    RUN(data_driven_cases);
    RUN(refuses_unknown_keywords);
    RUN(refuses_wrong_keyword_types);
    RUN(accepts_counts_written_as_reals);
    RUN(refuses_unsupported_patterns);
    RUN(translates_patterns);
    RUN(messages);
    RUN(long_messages_are_cut_at_a_character);
    RUN(long_enum_message_is_shortened);
    RUN(refuses_deep_schemas);
    RUN(keeps_a_reference_to_the_doc);
    RUN(validates_without_details_and_counts);
    RUN(numbers_compare_exactly);
    RUN(coerces_parameters);
    RUN(loads_directories);
    return test_done();
}
