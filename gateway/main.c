/* main.c - the sff command line: serve, token, version, help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "config.h"
#include "jwt.h"
#include "log.h"
#include "master.h"
#include "migrate.h"
#include "sff.h"
#include "version.h"

static void usage(FILE *out)
{
    fprintf(out,
            "sff %s - Serverless-For-Frontend gateway\n"
            "\n"
            "usage:\n"
            "  sff serve [--watch]        serve the functions in SFF_FUNCTIONS_DIR (--watch: reload on change)\n"
            "  sff token --sub ID [--role ROLE] [--ttl SECONDS]\n"
            "                             print an HS256 token signed with SFF_JWT_SECRET (for development)\n"
            "  sff version                print the version\n"
            "  sff help                   print this help\n"
            "\n"
            "Configuration comes from SFF_* environment variables; see README.md.\n",
            SFF_VERSION);
}

/* Applies pending migrations; returns 0, or prints why and returns nonzero. */
static int migrate(const sff_config_t *config)
{
    char err[1024], dir[4096];
    sff_migrate_result_t result;
    snprintf(dir, sizeof(dir), "%s/sql", config->schemas_dir);
    if (sff_migrate_run(config->pg_url, dir, &result, err, sizeof(err)) != 0) {
        sff_log_error("migrations: %s", err);
        return 1;
    }
    sff_log_info("migrations: %zu applied now, %zu in %s", result.applied, result.present, dir);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    int watch = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--watch") == 0) {
            watch = 1;
        } else {
            fprintf(stderr, "sff serve: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    sff_config_t config;
    char err[512];
    if (sff_config_load(&config, err, sizeof(err)) != 0) {
        fprintf(stderr, "sff: configuration error: %s\n", err);
        return 78;
    }
    sff_log_set_level(config.log_level);
    if (config.pg_url != NULL && config.migrate && migrate(&config) != 0) {
        sff_config_dispose(&config);
        return 78;
    }
    /* every connection is a descriptor: allow as many as the hard limit does */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int ret = sff_master_run(&config, watch);
    sff_config_dispose(&config);
    return ret;
}

static int cmd_migrate(int argc, char **argv)
{
    (void)argv;
    sff_config_t config;
    char err[512];
    if (argc > 2) {
        fprintf(stderr, "usage: sff migrate\n");
        return 2;
    }
    if (sff_config_load(&config, err, sizeof(err)) != 0) {
        fprintf(stderr, "sff: configuration error: %s\n", err);
        return 78;
    }
    sff_log_set_level(config.log_level);
    int ret = 2;
    if (config.pg_url == NULL)
        fprintf(stderr, "sff migrate: SFF_PG_URL is not set\n");
    else
        ret = migrate(&config);
    sff_config_dispose(&config);
    return ret;
}

static int cmd_token(int argc, char **argv)
{
    const char *sub = NULL, *role = NULL;
    long long ttl = 3600;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--sub") == 0 && i + 1 < argc) {
            sub = argv[++i];
        } else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
            role = argv[++i];
        } else if (strcmp(argv[i], "--ttl") == 0 && i + 1 < argc) {
            char *end;
            ttl = strtoll(argv[++i], &end, 10);
            if (*end != '\0' || ttl <= 0 || ttl > 10LL * 365 * 86400) {
                fprintf(stderr, "sff token: --ttl takes a number of seconds\n");
                return 2;
            }
        } else {
            fprintf(stderr, "sff token: unknown option %s\nusage: sff token --sub ID [--role ROLE] [--ttl SECONDS]\n", argv[i]);
            return 2;
        }
    }
    if (sub == NULL || *sub == '\0') {
        fprintf(stderr, "sff token: --sub ID is required\n");
        return 2;
    }
    const char *secret = getenv("SFF_JWT_SECRET");
    if (secret == NULL || *secret == '\0') {
        fprintf(stderr, "sff token: SFF_JWT_SECRET is not set\n");
        return 2;
    }
    time_t now = time(NULL);
    json_t *claims = json_pack("{s:s, s:I, s:I}", "sub", sub, "iat", (json_int_t)now, "exp", (json_int_t)(now + ttl));
    if (role != NULL)
        json_object_set_new(claims, "role", json_string(role));
    const char *iss = getenv("SFF_JWT_ISSUER"), *aud = getenv("SFF_JWT_AUDIENCE");
    if (iss != NULL && *iss != '\0')
        json_object_set_new(claims, "iss", json_string(iss));
    if (aud != NULL && *aud != '\0')
        json_object_set_new(claims, "aud", json_string(aud));
    char *token = sff_jwt_sign_hs256(secret, claims);
    json_decref(claims);
    if (token == NULL) {
        fprintf(stderr, "sff token: signing failed\n");
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "help";
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate(argc, argv);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc, argv);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sff %s (sff ABI %d.%d)\n", SFF_VERSION, SFF_ABI_MAJOR, SFF_ABI_MINOR);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "sff: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
