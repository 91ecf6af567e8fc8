/*
 * redis_reply.c - hiredis replies as JSON, and error replies as SFF_E* codes.
 */
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include "sff.h"
#include "redis.h"

static json_t *base64_object(const char *s, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t olen = (len + 2) / 3 * 4;
    char *out = malloc(olen + 1);
    if (out == NULL)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    json_t *obj = json_object();
    if (obj != NULL && json_object_set_new(obj, "base64", json_stringn_nocheck(out, o)) != 0) {
        json_decref(obj);
        obj = NULL;
    }
    free(out);
    return obj;
}

static json_t *error_object(const char *s, size_t len)
{
    json_t *obj = json_object(), *msg = json_stringn(s, len);
    if (msg == NULL)
        msg = base64_object(s, len); /* not UTF-8: still say something */
    if (obj == NULL || json_object_set_new(obj, "error", msg) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

json_t *sff_redis_reply_json(const redisReply *reply)
{
    switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: {
        /* json_stringn() refuses what is not UTF-8 */
        json_t *v = json_stringn(reply->str, reply->len);
        return v != NULL ? v : base64_object(reply->str, reply->len);
    }
    case REDIS_REPLY_INTEGER:
        return json_integer(reply->integer);
    case REDIS_REPLY_NIL:
        return json_null();
    case REDIS_REPLY_ERROR:
        return error_object(reply->str, reply->len);
    case REDIS_REPLY_ARRAY: {
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < reply->elements; i++) {
            if (json_array_append_new(arr, sff_redis_reply_json(reply->element[i])) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        return arr;
    }
    default:
        return json_null();
    }
}

int sff_redis_error_code(const char *msg, size_t len)
{
    /* the first word of an error reply is its code */
    static const char *const unavailable[] = {"LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", NULL};
    size_t w = 0;
    while (w < len && msg[w] != ' ')
        w++;
    for (size_t i = 0; unavailable[i] != NULL; i++)
        if (strlen(unavailable[i]) == w && memcmp(msg, unavailable[i], w) == 0)
            return SFF_EUNAVAILABLE;
    if (w == 3 && memcmp(msg, "OOM", 3) == 0)
        return SFF_EOVERLOADED;
    return SFF_EINTERNAL;
}
