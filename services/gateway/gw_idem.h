/* SPDX-License-Identifier: MIT */
/*
 * Idempotency-Key (IETF draft-ietf-httpapi-idempotency-key-header) bookkeeping, the pure half:
 * the Redis key gw:{idem}:<sha256(key + principal)>, the request fingerprint sha256(method, path,
 * body), the stored value ("running" with the owner's token, or "done" with status and body) and
 * the Lua scripts that acquire and settle a key atomically. The gateway runs the scripts
 * asynchronously on its loop (handler.c).
 */
#ifndef GW_IDEM_H
#define GW_IDEM_H

#include <stdbool.h>
#include <stddef.h>

#include "adi/core.h"

#define GW_IDEM_KEY_LEN   (10 + 64) /* "gw:{idem}:" + hex sha256 */
#define GW_IDEM_TTL_MS    86400000  /* completed responses are kept 24 h */
#define GW_IDEM_MSG_BUSY  "A request with this Idempotency-Key is still being processed."
#define GW_IDEM_MSG_REUSE "This Idempotency-Key was already used with a different request."

/**
 * EVAL script: KEYS[1] key, ARGV[1] running value, ARGV[2] lock ttl ms. Sets the key if absent and
 * returns nil (the caller owns it), else returns the stored value.
 */
extern const char gw_idem_acquire_lua[];

/**
 * EVAL script: KEYS[1] key, ARGV[1] the caller's running value, ARGV[2] the final value ("" to
 * release), ARGV[3] ttl ms. Acts only while the key still holds the caller's running value.
 */
extern const char gw_idem_settle_lua[];

/** Writes "gw:{idem}:" + hex sha256(key + "\n" + principal) plus NUL into `out`. */
void gw_idem_redis_key(adi_str_t key, adi_str_t principal, char out[GW_IDEM_KEY_LEN + 1]);

/** Writes hex sha256(method "\n" path "\n" body) plus NUL into `out`. */
void gw_idem_fingerprint(adi_str_t method, adi_str_t path, adi_str_t body, char out[65]);

/** Appends the "running" value: "R\n<fingerprint>\n<token>". */
void gw_idem_running_value(const char *fp, const char *token, adi_buf_t *out);

/** Appends the "done" value: "D\n<fingerprint>\n<status>\n<body>". */
void gw_idem_done_value(const char *fp, int status, adi_str_t body, adi_buf_t *out);

/** What to do with a request whose key is already stored. */
typedef enum gw_idem_verdict {
    GW_IDEM_REPLAY = 0, /* same request, completed: answer the stored status and body */
    GW_IDEM_BUSY,       /* same request, still running: 409 */
    GW_IDEM_MISMATCH,   /* another request used the key: 422 */
    GW_IDEM_CORRUPT,    /* unreadable value: treat as server error */
} gw_idem_verdict_t;

/**
 * Judges a stored `value` against this request's fingerprint `fp`. For GW_IDEM_REPLAY `*status`
 * and `*body` (pointing into `value`) give the stored response.
 */
gw_idem_verdict_t gw_idem_judge(adi_str_t value, const char *fp, int *status, adi_str_t *body);

/** True when a response with `status` is stored for replay (else the key is released). */
bool gw_idem_storable(int status);

#endif
