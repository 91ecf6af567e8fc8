/*
 * module - how long loading a function module takes: copy to a unique path, dlopen, ABI check,
 * init, route table. Prints "module_load_us <mean>" and "module_load_p99_us <p99>" over 200 loads
 * of build/functions/examples.so (or $1), each as a fresh generation, each unloaded after.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "call.h"
#include "config.h"
#include "log.h"
#include "module.h"
#include "timer.h"

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/sff-bench-module-XXXXXX", err[256], cmd[4096], rundir[600];
    enum { N = 200 };
    uint64_t took[N];
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s/'", argc > 1 ? argv[1] : "build/functions/examples.so", dir);
    if (system(cmd) != 0)
        return 1;
    setenv("SFF_FUNCTIONS_DIR", dir, 1);
    sff_config_t config;
    if (sff_config_load(&config, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    sff_log_set_level("warn");
    snprintf(rundir, sizeof(rundir), "%s/run", dir);
    if (sff_module_setup(rundir, &sff_call_api) != 0)
        return 1;
    for (int i = 0; i < N; i++) {
        uint64_t t0 = sff_now_us();
        sff_generation_t *gen = sff_generation_load(&config, NULL, err, sizeof(err));
        took[i] = sff_now_us() - t0;
        if (gen == NULL || gen->nmods != 1) {
            fprintf(stderr, "load failed: %s\n", gen == NULL ? err : "module refused");
            return 1;
        }
        sff_generation_release(gen);
    }
    qsort(took, N, sizeof(took[0]), cmp);
    uint64_t sum = 0;
    for (int i = 0; i < N; i++)
        sum += took[i];
    printf("module_load_us %.1f\nmodule_load_p50_us %llu\nmodule_load_p99_us %llu\n", (double)sum / N,
           (unsigned long long)took[N / 2], (unsigned long long)took[N * 99 / 100]);
    sff_module_cleanup();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
