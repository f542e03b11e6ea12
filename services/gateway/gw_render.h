/* SPDX-License-Identifier: MIT */
/*
 * The JSON bodies the gateway writes itself, in the shapes of API.md (DRF's, which clients parse):
 * validation errors as {"<field>": ["msg", ...]}, client errors as {"detail": ...}, server-side
 * failures as {"error": {"code", "message"}}, the unknown-path 404 and the health aggregate.
 * Pure: each function appends to an adi_buf_t, so they are unit-tested without a server.
 */
#ifndef GW_RENDER_H
#define GW_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "adi/core.h"
#include "adi/messages.h"

#define GW_MSG_SERVER_ERROR "An unexpected error occurred. Please try again later."
#define GW_MSG_TIMEOUT      "The service did not answer in time."
#define GW_MSG_UNAVAILABLE  "The service is temporarily unavailable. Please try again later."
#define GW_MSG_OVERLOADED   "The service is overloaded. Please try again later."
#define GW_MSG_NOT_FOUND    "The requested resource was not found."
#define GW_MSG_NO_CREDS     "Authentication credentials were not provided."

/** The reason phrase of `status` for the HTTP/1 status line ("Not Found"); never NULL. */
const char *gw_reason(int status);

/** Appends {"detail": "<msg>"}. */
void gw_render_detail(adi_buf_t *out, const char *msg, size_t len);

/** Appends {"error": {"code": "<code>", "message": "<msg>"}}. */
void gw_render_error_obj(adi_buf_t *out, const char *code, const char *msg);

/** Appends the unknown-path body {"error": {"code": "not_found", "message", "path"}}. */
void gw_render_not_found(adi_buf_t *out, adi_str_t path);

/** Appends {"detail": "Method \"<M>\" not allowed."}. `method` is escaped. */
void gw_render_method_not_allowed(adi_buf_t *out, adi_str_t method);

/** Appends {"non_field_errors": ["<msg>"]}. */
void gw_render_non_field(adi_buf_t *out, const char *msg, size_t len);

/**
 * Appends the body for an error reply of HTTP `status` carrying `e` (may be NULL) and returns the
 * status to answer with (a status outside 400..599 becomes 500). 400 groups the field messages by
 * field in order of first appearance, or gives the message under "non_field_errors" when there is
 * no field; 500 never shows the service's message; 503 and 504 use the service's message when it
 * gave one; every other status gives {"detail": message}.
 */
int gw_render_reply_error(int status, const adi_reply_error *e, adi_buf_t *out);

/**
 * As gw_render_reply_error, and for 401 and 403 in simplejwt's shape {"detail": message, "code":
 * code} when the service's error code is a specific one (not a generic adi_err_name, e.g.
 * "token_not_valid", "user_not_found", "user_inactive"), or, for a 401 with a generic code, when
 * `code_401` is given (the code of the operation's refusals, e.g. "token_not_valid" for the token
 * refresh view).
 */
int gw_render_reply_error_code(int status, const adi_reply_error *e, const char *code_401,
                               adi_buf_t *out);

/** One service's line of the health aggregate. */
typedef struct gw_health_entry {
    const char *service; /* bus name */
    bool answered;       /* a sys.health reply arrived in time */
    bool ok;             /* ... and said "ok" */
    bool database;       /* its database flag */
    char version[65];    /* its APP_VERSION, NUL-terminated ("" if none) */
} gw_health_entry_t;

/**
 * Appends {"status": "ok"|"degraded", "services": {"<svc>": {"status": "ok"|"degraded"|
 * "unavailable", "version", "database"}, ...}} and returns true when every service answered ok.
 */
bool gw_render_health(const gw_health_entry_t *e, size_t n, adi_buf_t *out);

#endif
