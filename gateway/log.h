/*
 * log.h - structured logs: one JSON object per line. System events go to stderr, the access log
 * (one line per request) to stdout. Nothing here ever prints a token, a secret or a key.
 */
#ifndef SFF_LOG_H
#define SFF_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { SFF_LOG_LEVEL_DEBUG, SFF_LOG_LEVEL_INFO, SFF_LOG_LEVEL_WARN, SFF_LOG_LEVEL_ERROR } sff_log_level_e;

/* Sets the minimum level written ("debug", "info", "warn", "error"); returns -1 for another name. */
int sff_log_set_level(const char *name);
/* Tags every line with the process role ("master", "worker") and worker id (-1 for none). */
void sff_log_set_process(const char *role, int worker_id);

/* Writes {"time":..., "level":..., "msg":<fmt...>, "pid":..., "worker":...}; fmt's result is
 * JSON-escaped. */
void sff_log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sff_log_vmsg(int level, const char *request_id, const char *fmt, va_list ap);

#define sff_log_debug(...) sff_log_msg(SFF_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define sff_log_info(...) sff_log_msg(SFF_LOG_LEVEL_INFO, __VA_ARGS__)
#define sff_log_warn(...) sff_log_msg(SFF_LOG_LEVEL_WARN, __VA_ARGS__)
#define sff_log_error(...) sff_log_msg(SFF_LOG_LEVEL_ERROR, __VA_ARGS__)

/* One access-log line. Strings may be NULL (written as null) and are escaped. */
typedef struct st_sff_access_t {
    const char *request_id;
    const char *method;
    const char *path; /* without the query string, which may carry secrets */
    const char *route;
    int status;
    uint64_t bytes;
    uint64_t duration_us;
    const char *sub;
    const char *protocol;
} sff_access_t;
void sff_log_access(const sff_access_t *a);
/* Writes the access-log lines gathered so far; the worker calls it after every loop iteration. */
void sff_log_flush(void);

/* Appends s (len bytes) JSON-escaped, without quotes, to buf (capacity size) at *pos; truncates
 * safely. */
void sff_log_escape(char *buf, size_t size, size_t *pos, const char *s, size_t len);

#endif
