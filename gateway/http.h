/*
 * http.h - the request path inside a worker (h2o handlers) and the one data interface: JSON
 * responses and the error envelope
 *   {"error": {"code": "...", "message": "...", "details": [...], "request_id": "..."}}
 * used for every error, from the gateway and from functions.
 */
#ifndef SFF_HTTP_H
#define SFF_HTTP_H

#include <h2o.h>
#include <jansson.h>
#include "worker.h"

/* Registers sff's handlers (and the static file handler and gzip filter) on pathconf "/". */
void sff_http_register(sff_worker_t *w, h2o_hostconf_t *hostconf);

/* The envelope for code (an SFF_E* value); message NULL means the default message; details
 * (borrowed) may be NULL. New reference. */
json_t *sff_http_envelope(int code, const char *message, json_t *details, const char *request_id);

/* Sends a JSON response: status, body (borrowed; NULL for none), and extra headers (pairs of
 * name, value; may be NULL). The body is serialized into memory owned by req. */
void sff_http_send_json(h2o_req_t *req, int status, json_t *body, const h2o_iovec_t *headers, size_t nheaders);

/* Sends the error envelope with the status of code. */
void sff_http_send_error(h2o_req_t *req, int code, const char *message, json_t *details);

/* Sends a response with raw bytes (copied into req's pool). */
void sff_http_send_raw(h2o_req_t *req, int status, const char *content_type, const void *body, size_t len,
                       const h2o_iovec_t *headers, size_t nheaders);

/* The request id of req (set when the request entered sff), or "". */
const char *sff_http_request_id(h2o_req_t *req);

/* Nonzero when the worker serves TLS. */
int sff_http_is_tls(h2o_req_t *req);

#endif
