/* SPDX-License-Identifier: MIT */
/*
 * Pure parsers for the parts of a request the gateway turns into an envelope: path and query
 * parameters (percent-decoded, bounded, packed as a msgpack map of strings), the X-Request-ID and
 * Idempotency-Key headers, the Content-Type check and the top-level type of a converted body.
 * No I/O and no h2o, so every function is unit-tested on its own.
 */
#ifndef GW_PARSE_H
#define GW_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "adi/core.h"

#define GW_MAX_PARAMS      32    /* path + query parameters per request */
#define GW_PARAM_KEY_MAX   64    /* bytes of a decoded parameter name */
#define GW_PARAM_VALUE_MAX 2048  /* bytes of a decoded parameter value */
#define GW_PARAMS_BYTES    16384 /* bytes of all decoded names and values together */
#define GW_REQUEST_ID_MAX  128   /* X-Request-ID length accepted as is */
#define GW_IDEM_KEY_MAX    128   /* Idempotency-Key length (it becomes the envelope id) */

/** Decoded parameters; names and values live in `bytes`. Later additions replace equal names. */
typedef struct gw_params {
    size_t n; /* used entries of kv */
    struct {
        size_t k, klen; /* offset and length of the name in bytes */
        size_t v, vlen; /* offset and length of the value in bytes */
    } kv[GW_MAX_PARAMS];
    size_t used;                 /* used bytes */
    char bytes[GW_PARAMS_BYTES]; /* storage */
} gw_params_t;

void gw_params_init(gw_params_t *p);

/**
 * Adds every name=value pair of a query string (without the '?'): '+' is a space, %XX escapes are
 * decoded (a malformed escape stays literal, as Django does), pairs with an empty name are skipped,
 * a name without '=' gets "". Errors (ADI_INVALID, message for {"detail": ...}): too many
 * parameters, a name or value too long, decoded bytes that are not UTF-8 or contain NUL.
 */
adi_err gw_params_add_query(gw_params_t *p, adi_str_t query, adi_error_t *err);

/**
 * Adds one path parameter; `raw` is the still-encoded segment ('+' stays '+'). It replaces a query
 * parameter of the same name. Errors as gw_params_add_query.
 */
adi_err gw_params_add_path(gw_params_t *p, adi_str_t name, adi_str_t raw, adi_error_t *err);

/**
 * Adds one parameter taken as is (a header value: no percent-decoding), replacing an earlier one
 * of the same name. Errors as gw_params_add_query (too long, not UTF-8, NUL).
 */
adi_err gw_params_add_literal(gw_params_t *p, adi_str_t name, adi_str_t value, adi_error_t *err);

/** Removes every parameter named `name` (the client may not set it). */
void gw_params_remove(gw_params_t *p, adi_str_t name);

/** Appends the parameters to `out` as one msgpack map of strings. */
void gw_params_pack(const gw_params_t *p, adi_buf_t *out);

/** True when `s` is a usable X-Request-ID: 1 to 128 bytes of [A-Za-z0-9._-]. */
bool gw_request_id_valid(adi_str_t s);

/**
 * Reads an Idempotency-Key header value: a Structured Field string ("...") as the IETF draft
 * specifies, or the bare token many clients send. The key is 1 to GW_IDEM_KEY_MAX bytes of
 * visible ASCII without '"' or '\\'. On success `*key` points into `header`.
 * Errors: ADI_INVALID ("Invalid Idempotency-Key header.").
 */
adi_err gw_idem_key_parse(adi_str_t header, adi_str_t *key, adi_error_t *err);

/** True for application/json and any application/<x>+json, with or without parameters. */
bool gw_content_type_is_json(adi_str_t ct);

/**
 * The Python type name DRF reports for a request body that is not an object ("list", "str",
 * "int", "float", "bool", "NoneType"), from the first byte of its msgpack form; NULL for a map.
 */
const char *gw_body_type(const char *mp, size_t len);

/** True when [p, p + n) is valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
bool gw_utf8_valid(const char *p, size_t n);

#endif
