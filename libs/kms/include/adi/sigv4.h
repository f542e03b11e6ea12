/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4 (header-based signing) for the vault's AWS KMS provider, and a bounded
 * parser for raw HTTP/1.1 request text (the aws-c-auth test-suite files today, a KMS-compatible
 * test server later). The signer takes plain structs (method, path, query, headers, body,
 * credentials, region, service, time) and hands back the canonical request, the string to sign,
 * the signature and the headers to add, so it can sign a curl request or check a received one
 * without either side knowing about the other. Hashing and HMAC come from OpenSSL 3.
 *
 * Secrets: the secret access key never leaves adi_sigv4_sign (the derived keys are cleansed).
 * The session token, however, is part of the canonical request and of the headers to add, so the
 * result must not be logged; adi_sigv4_result_dispose cleanses it.
 */
#ifndef ADI_SIGV4_H
#define ADI_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adi/core.h"
#include "adi/err.h"

/* ---- limits ----------------------------------------------------------------------------- */

/* Most headers a request may carry (parser) or the caller may pass to the signer. */
#define ADI_SIGV4_MAX_HEADERS 64
/* Largest request head (request line, headers and the blank line) the parser accepts. */
#define ADI_SIGV4_MAX_HEAD 16384
/* Body limit the parser applies when the caller passes max_body == 0. */
#define ADI_SIGV4_DEFAULT_MAX_BODY (1024 * 1024)
/* Longest path, query string, header name and header value the signer accepts. */
#define ADI_SIGV4_MAX_PATH   8192
#define ADI_SIGV4_MAX_QUERY  8192
#define ADI_SIGV4_MAX_NAME   256
#define ADI_SIGV4_MAX_VALUE  8192
#define ADI_SIGV4_MAX_SECRET 512
/* Most headers adi_sigv4_sign asks the caller to add (token, date, content hash, authorization). */
#define ADI_SIGV4_MAX_ADDED 4

/* ---- shared types ----------------------------------------------------------------------- */

/** One header as a name/value pair of borrowed slices (the value may contain obs-folds). */
typedef struct adi_sigv4_header {
    adi_str_t name;  /* header name in any case, e.g. "Host" */
    adi_str_t value; /* raw value; the signer trims it and collapses whitespace runs */
} adi_sigv4_header_t;

/* ---- signer ----------------------------------------------------------------------------- */

/** AWS credentials; every slice is borrowed for the duration of adi_sigv4_sign. */
typedef struct adi_sigv4_credentials {
    adi_str_t access_key_id;     /* e.g. "AKIDEXAMPLE" */
    adi_str_t secret_access_key; /* secret; never copied out, never in an error message */
    adi_str_t session_token;     /* temporary-credential token, ADI_STR_NULL or empty for none */
} adi_sigv4_credentials_t;

/**
 * What to sign. Every slice and array is borrowed for the duration of adi_sigv4_sign. Zero the
 * struct, then fill it: false flags and NULL slices are the defaults.
 */
typedef struct adi_sigv4_params {
    adi_str_t method;                  /* HTTP method token, e.g. "POST" */
    adi_str_t path;                    /* path as given (not yet URI-encoded), "/" when empty */
    adi_str_t query;                   /* raw query string without '?', may be empty */
    const adi_sigv4_header_t *headers; /* the request's headers; must include Host */
    size_t nheaders;                   /* entries of headers[], at most ADI_SIGV4_MAX_HEADERS */
    adi_str_t body;                    /* payload bytes (any size, hashed in place) */
    adi_str_t payload_hash;            /* replaces the body hash, e.g. "UNSIGNED-PAYLOAD" */
    bool sign_body;                    /* add and sign x-amz-content-sha256 (S3 style) */
    bool normalize_path;               /* remove "." and "..", collapse "//" (all but S3) */
    bool omit_session_token;           /* add X-Amz-Security-Token after signing, unsigned */
    const adi_sigv4_credentials_t *credentials; /* who signs */
    adi_str_t region;                           /* e.g. "us-east-1" */
    adi_str_t service;                          /* e.g. "kms" */
    adi_str_t amz_date; /* signing time, ISO 8601 basic UTC: "20150830T123600Z" */
} adi_sigv4_params_t;

/**
 * The outcome of adi_sigv4_sign, in caller storage. adi_sigv4_sign initialises it first and
 * leaves it empty on error; every successful sign gets one adi_sigv4_result_dispose (disposing an
 * empty result is harmless). The buffers are NUL-terminated.
 */
typedef struct adi_sigv4_result {
    adi_buf_t canonical_request; /* the canonical request, lines joined with '\n' */
    adi_buf_t string_to_sign;    /* "AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex sha256(creq)>" */
    adi_buf_t authorization;     /* the Authorization header value */
    adi_buf_t session_token_;    /* private copy of the token for the added header */
    char signature[65];          /* lower-case hex HMAC, NUL-terminated */
    char payload_hash[65];       /* hex SHA-256 of the body, or the override */
    char amz_date[17];           /* copy of params.amz_date, NUL-terminated */
    bool content_sha256_;        /* whether x-amz-content-sha256 is among the added headers */
} adi_sigv4_result_t;

/**
 * Signs one request with AWS Signature Version 4 (header form, AWS4-HMAC-SHA256), following the
 * aws-c-auth signing test suite: header names are lower-cased and sorted, values trimmed with
 * whitespace runs collapsed to one space, repeated headers joined with ","; query parameters are
 * percent-decoded then encoded with the RFC 3986 unreserved set and sorted by key then value
 * ("key=" for a missing value); the path is optionally normalised, then every byte outside the
 * unreserved set and '/' is percent-encoded once (so an already-encoded path is encoded again,
 * as AWS does for every service but S3). X-Amz-Date and, unless omitted, X-Amz-Security-Token
 * and (with sign_body) x-amz-content-sha256 are signed. The canonical request always ends with
 * the payload hash: payload_hash when given, the hex SHA-256 of body otherwise.
 *
 * Headers named Authorization, Connection, Expect, User-Agent or X-Amzn-Trace-Id are not signed
 * (proxies rewrite them). `out` is valid on ADI_OK only. Errors:
 *   ADI_INVALID   a missing or malformed parameter (no Host header, a path not starting with '/',
 *                 bad percent-encoding in the query, a control character in a header, a
 *                 malformed amz_date, a header the signer itself adds, a payload_hash over 64
 *                 characters, ...);
 *   ADI_TOO_LARGE more than ADI_SIGV4_MAX_HEADERS headers or a field above its ADI_SIGV4_MAX_*;
 *   ADI_INTERNAL  OpenSSL failed.
 * Messages never contain the secret key or the session token.
 */
adi_err adi_sigv4_sign(const adi_sigv4_params_t *params, adi_sigv4_result_t *out, adi_error_t *err);

/** Frees a successful result and cleanses everything in it (it may hold the session token). */
void adi_sigv4_result_dispose(adi_sigv4_result_t *r);

/**
 * Fills `out` with the headers the caller must add to the request, in this order:
 * X-Amz-Security-Token (when there is a token), X-Amz-Date, x-amz-content-sha256 (with
 * sign_body) and Authorization, for a result adi_sigv4_sign returned ADI_OK for. Returns how
 * many (2 to ADI_SIGV4_MAX_ADDED). The slices point into `r` and static storage: valid until
 * adi_sigv4_result_dispose.
 */
size_t adi_sigv4_result_headers(const adi_sigv4_result_t *r,
                                adi_sigv4_header_t out[ADI_SIGV4_MAX_ADDED]);

/**
 * Formats `epoch_s` (seconds since the epoch, UTC) as the ISO 8601 basic form SigV4 uses,
 * "YYYYMMDDTHHMMSSZ", into `out` (17 bytes with the NUL). Returns ADI_INVALID when the time
 * lies before 1970 or after 9999.
 */
adi_err adi_sigv4_amz_date(int64_t epoch_s, char out[17], adi_error_t *err);

/* ---- request parser --------------------------------------------------------------------- */

/* Parser flags. */
#define ADI_SIGV4_PARSE_STRICT 0u
/*
 * Test-suite files: the end of the input may stand in for the blank line after the headers (and
 * for the final line ending), and without Content-Length the body is the rest of the input.
 */
#define ADI_SIGV4_PARSE_EOF_ENDS_HEAD 1u

/** A parsed request: every slice points into the parsed text, valid while it lives. */
typedef struct adi_sigv4_request {
    adi_str_t method;  /* request method token */
    adi_str_t target;  /* request target as sent: path plus "?query" */
    adi_str_t path;    /* target up to the first '?' */
    adi_str_t query;   /* after the first '?', empty (ptr NULL) when there is none */
    adi_str_t version; /* "HTTP/1.1" or "HTTP/1.0" */
    size_t nheaders;   /* used entries of headers[] */
    adi_sigv4_header_t headers[ADI_SIGV4_MAX_HEADERS]; /* in order; values span obs-folds */
    adi_str_t body;                                    /* Content-Length bytes after the head */
    size_t head_len; /* bytes of request line, headers and blank line */
    size_t consumed; /* head_len + body.len: where a following request would start */
} adi_sigv4_request_t;

/**
 * Parses the raw HTTP/1.1 request in `data[0..len)` (no NUL needed): request line "METHOD
 * origin-form-target HTTP/1.x" (the target runs to the last space, so the test suite's
 * "/example space/" parses), header lines "Name:value" with continuation lines folded into the
 * previous value, a blank line, then Content-Length bytes of body. Lines end in LF or CRLF.
 * Bytes past `consumed` are left alone. `req` is written on ADI_OK only. Errors:
 *   ADI_INVALID   malformed input: a control or NUL byte in the head, a bad request line or
 *                 version, a header line without a colon or with space before it, a fold with
 *                 no header before it, no blank line (unless ADI_SIGV4_PARSE_EOF_ENDS_HEAD), a
 *                 bad or conflicting Content-Length, Transfer-Encoding, or a body shorter than
 *                 its Content-Length;
 *   ADI_TOO_LARGE a head over ADI_SIGV4_MAX_HEAD bytes, more than ADI_SIGV4_MAX_HEADERS headers,
 *                 or a body over `max_body` (0 means ADI_SIGV4_DEFAULT_MAX_BODY).
 */
adi_err adi_sigv4_request_parse(const void *data, size_t len, unsigned flags, size_t max_body,
                                adi_sigv4_request_t *req, adi_error_t *err);

/** The first header named `name` (case-insensitive), or NULL. */
const adi_sigv4_header_t *adi_sigv4_request_header(const adi_sigv4_request_t *req,
                                                   const char *name);

#endif
