#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "log.h"

static int min_level = SFF_LOG_LEVEL_INFO;
static const char *role = "master";
static int worker_id = -1;
/* Access-log lines are gathered and written once per event-loop iteration (sff_log_flush()), not
 * one write(2) per request. */
static char access_buf[64 * 1024];
static size_t access_len;
static const char *level_names[] = {"debug", "info", "warn", "error"};

int sff_log_set_level(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            min_level = i;
            return 0;
        }
    }
    return -1;
}

void sff_log_set_process(const char *r, int id)
{
    role = r;
    worker_id = id;
}

void sff_log_escape(char *buf, size_t size, size_t *pos, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = *pos;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            esc[n++] = '\\';
            esc[n++] = (char)c;
        } else if (c == '\n') {
            esc[n++] = '\\';
            esc[n++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        } else {
            esc[n++] = (char)c;
        }
        if (p + n + 1 >= size)
            break;
        memcpy(buf + p, esc, n);
        p += n;
    }
    buf[p < size ? p : size - 1] = '\0';
    *pos = p;
}

static void put(char *buf, size_t size, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n + 1 >= size)
        n = size - *pos - 1;
    memcpy(buf + *pos, s, n);
    *pos += n;
    buf[*pos] = '\0';
}

static void put_time(char *buf, size_t size, size_t *pos)
{
    struct timespec ts;
    struct tm tm;
    char t[64];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(t + n, sizeof(t) - n, ".%06ldZ", ts.tv_nsec / 1000);
    put(buf, size, pos, t);
}

/* Writes a whole line with one write(2), so lines of several processes never interleave. */
static void emit(int fd, char *buf, size_t pos, size_t size)
{
    if (pos + 2 > size)
        pos = size - 2;
    buf[pos++] = '}';
    buf[pos++] = '\n';
    ssize_t r = write(fd, buf, pos);
    (void)r;
}

void sff_log_vmsg(int level, const char *request_id, const char *fmt, va_list ap)
{
    if (level < min_level)
        return;
    char msg[2048], line[8192];
    size_t pos = 0;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    put(line, sizeof(line), &pos, "{\"time\":\"");
    put_time(line, sizeof(line), &pos);
    put(line, sizeof(line), &pos, "\",\"level\":\"");
    put(line, sizeof(line), &pos, level_names[level < 0 ? 0 : level > 3 ? 3 : level]);
    put(line, sizeof(line), &pos, "\",\"msg\":\"");
    sff_log_escape(line, sizeof(line), &pos, msg, strlen(msg));
    char tail[96];
    snprintf(tail, sizeof(tail), "\",\"pid\":%d,\"process\":\"%s\"", (int)getpid(), role);
    put(line, sizeof(line), &pos, tail);
    if (worker_id >= 0) {
        snprintf(tail, sizeof(tail), ",\"worker\":%d", worker_id);
        put(line, sizeof(line), &pos, tail);
    }
    if (request_id != NULL) {
        put(line, sizeof(line), &pos, ",\"request_id\":\"");
        sff_log_escape(line, sizeof(line), &pos, request_id, strlen(request_id));
        put(line, sizeof(line), &pos, "\"");
    }
    emit(2, line, pos, sizeof(line));
}

void sff_log_msg(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sff_log_vmsg(level, NULL, fmt, ap);
    va_end(ap);
}

static void put_str_field(char *buf, size_t size, size_t *pos, const char *name, const char *value)
{
    put(buf, size, pos, ",\"");
    put(buf, size, pos, name);
    put(buf, size, pos, "\":");
    if (value == NULL) {
        put(buf, size, pos, "null");
        return;
    }
    put(buf, size, pos, "\"");
    sff_log_escape(buf, size, pos, value, strlen(value));
    put(buf, size, pos, "\"");
}

void sff_log_access(const sff_access_t *a)
{
    char line[4096], num[128];
    size_t pos = 0;
    put(line, sizeof(line), &pos, "{\"time\":\"");
    put_time(line, sizeof(line), &pos);
    put(line, sizeof(line), &pos, "\"");
    put_str_field(line, sizeof(line), &pos, "request_id", a->request_id);
    put_str_field(line, sizeof(line), &pos, "method", a->method);
    put_str_field(line, sizeof(line), &pos, "path", a->path);
    put_str_field(line, sizeof(line), &pos, "route", a->route);
    snprintf(num, sizeof(num), ",\"status\":%d,\"bytes\":%llu,\"us\":%llu", a->status, (unsigned long long)a->bytes,
             (unsigned long long)a->duration_us);
    put(line, sizeof(line), &pos, num);
    put_str_field(line, sizeof(line), &pos, "sub", a->sub);
    put_str_field(line, sizeof(line), &pos, "protocol", a->protocol);
    if (pos + 2 > sizeof(line))
        pos = sizeof(line) - 2;
    line[pos++] = '}';
    line[pos++] = '\n';
    if (access_len + pos > sizeof(access_buf))
        sff_log_flush();
    memcpy(access_buf + access_len, line, pos);
    access_len += pos;
}

/* Writes in pieces of whole lines of at most PIPE_BUF bytes: on a pipe (a container's stdout) each
 * piece is atomic, so the lines of several workers never interleave. */
void sff_log_flush(void)
{
    size_t off = 0;
    while (off < access_len) {
        size_t n = access_len - off;
        if (n > PIPE_BUF) {
            n = PIPE_BUF;
            while (n > 0 && access_buf[off + n - 1] != '\n')
                n--;
            if (n == 0)
                n = PIPE_BUF;
        }
        ssize_t r = write(1, access_buf + off, n);
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    access_len = 0;
}
