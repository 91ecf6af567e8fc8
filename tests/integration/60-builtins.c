/* The gateway's own endpoints and its access log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/client.h"
#include "lib/setup.h"
#include "test.h"

static tc_server_t srv;

TEST(health_and_ready)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/_health", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK_STR(res.body, "{\"status\":\"ok\"}");
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/_ready", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    json_t *j = tc_json(res.body);
    CHECK_STR(json_string_value(json_object_get(j, "status")), "ready");
    json_t *fn = json_object_get(json_object_get(j, "checks"), "functions");
    CHECK(json_is_true(json_object_get(fn, "ok")));
    CHECK_INT(json_integer_value(json_object_get(fn, "modules")), 2);
    json_decref(j);
    tc_response_free(&res);
    CHECK(tc_request(TC_HTTP1, srv.port, "POST", "/_health", NULL, "", 0, &res) == 0);
    CHECK_INT(res.status, 405);
    tc_response_free(&res);
}

TEST(metrics_count_by_route_and_status)
{
    tc_response_t res;
    for (int i = 0; i < 3; i++) {
        tc_get(srv.port, "/examples/hello", NULL, &res);
        tc_response_free(&res);
    }
    tc_get(srv.port, "/fx/fail", NULL, &res);
    tc_response_free(&res);
    CHECK(tc_get(srv.port, "/_metrics", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    CHECK(strncmp(tc_header(&res, "content-type"), "text/plain; version=0.0.4", 25) == 0);
    const char *want[] = {"sff_requests_total{route=\"GET /examples/hello\",status=\"200\"} 3\n",
                          "sff_requests_total{route=\"GET /fx/fail\",status=\"409\"} 1\n",
                          "sff_request_duration_seconds_bucket{route=\"GET /examples/hello\",le=\"+Inf\"} 3\n",
                          "sff_request_duration_seconds_count{route=\"GET /examples/hello\"} 3\n",
                          "# TYPE sff_request_duration_seconds histogram\n",
                          "sff_requests_in_flight ",
                          "sff_function_loads_total 2\n",
                          "sff_function_reloads_total 0\n",
                          "sff_auth_failures_total{reason=\"missing\"} ",
                          "sff_connections "};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strstr(res.body, want[i]) == NULL)
            fprintf(stderr, "  missing: %s", want[i]);
        CHECK(strstr(res.body, want[i]) != NULL);
    }
    tc_response_free(&res);
}

TEST(openapi_describes_routes_and_schemas)
{
    tc_response_t res;
    CHECK(tc_get(srv.port, "/_openapi.json", NULL, &res) == 0);
    CHECK_INT(res.status, 200);
    json_t *doc = tc_json(res.body);
    CHECK(doc != NULL);
    CHECK_STR(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *paths = json_object_get(doc, "paths");
    CHECK(json_object_get(json_object_get(paths, "/examples/hello"), "get") != NULL);
    json_t *echo = json_object_get(json_object_get(paths, "/examples/echo"), "post");
    json_t *body_schema = json_object_get(
        json_object_get(json_object_get(json_object_get(echo, "requestBody"), "content"), "application/json"), "schema");
    CHECK_STR(json_string_value(json_object_get(body_schema, "$ref")), "#/components/schemas/echo");
    /* path templates become OpenAPI parameters */
    json_t *params = json_object_get(json_object_get(paths, "/fx/params/{a}/{b}/{path}"), "get");
    CHECK(params != NULL);
    CHECK_INT(json_array_size(json_object_get(params, "parameters")), 3);
    /* GET input schemas become query parameters */
    json_t *sleep = json_object_get(json_object_get(paths, "/examples/sleep"), "get");
    json_t *p0 = json_array_get(json_object_get(sleep, "parameters"), 0);
    CHECK_STR(json_string_value(json_object_get(p0, "name")), "ms");
    CHECK_STR(json_string_value(json_object_get(p0, "in")), "query");
    CHECK(json_is_true(json_object_get(p0, "required")));
    /* policies become security requirements */
    CHECK(json_object_get(json_object_get(json_object_get(paths, "/examples/whoami"), "get"), "security") != NULL);
    CHECK(json_object_get(json_object_get(json_object_get(paths, "/examples/hello"), "get"), "security") == NULL);
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    CHECK(json_object_get(schemas, "echo") != NULL && json_object_get(schemas, "sleep") != NULL &&
          json_object_get(schemas, "Error") != NULL);
    json_decref(doc);
    tc_response_free(&res);
}

TEST(one_json_access_line_per_request)
{
    tc_response_t res;
    char *tok = tc_token("log-user", NULL, 60), hdr[2048];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\nX-Request-Id: access-log-check\r\n", tok);
    CHECK(tc_get(srv.port, "/examples/whoami?secret=1", hdr, &res) == 0);
    CHECK_INT(res.status, 200);
    tc_response_free(&res);
    usleep(200000);
    char *log = tc_server_log(&srv);
    char *line = log != NULL ? strstr(log, "\"request_id\":\"access-log-check\"") : NULL;
    CHECK(line != NULL);
    if (line != NULL) {
        while (line > log && line[-1] != '\n')
            line--;
        char *end = strchr(line, '\n');
        if (end != NULL)
            *end = '\0';
        json_t *j = tc_json(line);
        CHECK(j != NULL);
        CHECK_STR(json_string_value(json_object_get(j, "method")), "GET");
        CHECK_STR(json_string_value(json_object_get(j, "path")), "/examples/whoami");
        CHECK_STR(json_string_value(json_object_get(j, "route")), "GET /examples/whoami");
        CHECK_INT(json_integer_value(json_object_get(j, "status")), 200);
        CHECK_STR(json_string_value(json_object_get(j, "sub")), "log-user");
        CHECK(json_integer_value(json_object_get(j, "bytes")) > 0);
        CHECK(json_is_integer(json_object_get(j, "us")));
        CHECK(json_is_string(json_object_get(j, "time")));
        json_decref(j);
    }
    free(log);
    free(tok);
}

int main(void)
{
    char base[] = "/tmp/sff-it60-XXXXXX", fdir[512], env_fn[700];
    const char *top = getenv("SFF_TOP");
    if (top != NULL && chdir(top) != 0)
        return 1;
    if (mkdtemp(base) == NULL || tc_functions_dir(base, fdir, sizeof(fdir)) != 0)
        return 1;
    snprintf(env_fn, sizeof(env_fn), "SFF_FUNCTIONS_DIR=%s", fdir);
    const char *env[] = {env_fn, "SFF_WORKERS=1", "SFF_SCHEMAS_DIR=schemas", "SFF_JWT_SECRET=" TC_SECRET, NULL};
    if (tc_server_start(&srv, env) != 0)
        return 1;
    RUN(health_and_ready);
    RUN(metrics_count_by_route_and_status);
    RUN(openapi_describes_routes_and_schemas);
    RUN(one_json_access_line_per_request);
    tc_server_stop(&srv);
    tc_sh("rm -rf '%s'", base);
    return test_done();
}
