/* SPDX-License-Identifier: MIT */
/*
 * The project's error codes, generated from one X-macro so that the enum, the HTTP status and the
 * stable name can never drift apart; and adi_error_t, the detail a failing call leaves for its
 * caller (one message, plus per-field messages for validation errors, DRF style).
 */
#ifndef ADI_ERR_H
#define ADI_ERR_H

#include <stddef.h>

/* XX(NAME, http status, stable code name used in JSON error bodies and logs) */
#define ADI_ERR_MAP(XX)                                                                            \
    XX(INVALID, 400, "invalid")                                                                    \
    XX(UNAUTHENTICATED, 401, "unauthenticated")                                                    \
    XX(FORBIDDEN, 403, "forbidden")                                                                \
    XX(NOT_FOUND, 404, "not_found")                                                                \
    XX(METHOD, 405, "method_not_allowed")                                                          \
    XX(CONFLICT, 409, "conflict")                                                                  \
    XX(TOO_LARGE, 413, "too_large")                                                                \
    XX(UNPROCESSABLE, 422, "unprocessable")                                                        \
    XX(RATE_LIMITED, 429, "rate_limited")                                                          \
    XX(INTERNAL, 500, "server_error")                                                              \
    XX(BUSY, 503, "unavailable")                                                                   \
    XX(UNAVAILABLE, 503, "unavailable")                                                            \
    XX(TIMEOUT, 504, "timeout")

typedef enum adi_err {
    ADI_OK = 0, /* not an error! */
#define ADI_ERR_ENUM_(name, http, str) ADI_##name,
    ADI_ERR_MAP(ADI_ERR_ENUM_)
#undef ADI_ERR_ENUM_
        ADI_ERR__COUNT
} adi_err;

/** Stable lower-case name of `e` ("invalid", "timeout", ...); "ok" for ADI_OK. Never NULL. */
const char *adi_err_name(adi_err e);

/** HTTP status for `e` (200 for ADI_OK, 500 for an unknown value). */
int adi_err_http(adi_err e);

/** Maps an HTTP status back to the closest code (400 -> ADI_INVALID, ...); 2xx -> ADI_OK. */
adi_err adi_err_from_http(int status);

#define ADI_ERROR_MAX_FIELDS 16
#define ADI_ERROR_FIELD_LEN  64
#define ADI_ERROR_MSG_LEN    192

/** One field-level validation message ("email" -> "Enter a valid email address."). */
typedef struct adi_field_error {
    char field[ADI_ERROR_FIELD_LEN]; /* JSON field name, "non_field_errors" for the object */
    char message[ADI_ERROR_MSG_LEN]; /* human-readable message, never contains secrets */
} adi_field_error_t;

/**
 * The detail of a failure. Caller-owned storage, no heap: fill with adi_error_set /
 * adi_error_field. `message` is the client-facing text (DRF "detail"); `fields` holds validation
 * errors. A message never contains a secret (password, token, key).
 */
typedef struct adi_error {
    adi_err code;                                   /* ADI_OK when nothing failed */
    char message[ADI_ERROR_MSG_LEN];                /* client-facing detail */
    size_t nfields;                                 /* used entries of fields[] */
    adi_field_error_t fields[ADI_ERROR_MAX_FIELDS]; /* per-field messages, in order of discovery */
} adi_error_t;

/** Resets `e` to ADI_OK with no message and no fields. */
void adi_error_clear(adi_error_t *e);

/**
 * Sets code and message (printf format, truncated to fit) and returns `code`, so that a failing
 * function can `return adi_error_set(err, ADI_NOT_FOUND, "Not found.");`. `e` may be NULL.
 */
adi_err adi_error_set(adi_error_t *e, adi_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Appends a field message and sets the code to ADI_INVALID (message "Invalid input." unless one is
 * set). Extra fields beyond ADI_ERROR_MAX_FIELDS are dropped. Returns ADI_INVALID. `e` may be NULL.
 */
adi_err adi_error_field(adi_error_t *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
