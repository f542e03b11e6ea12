/* SPDX-License-Identifier: MIT */
/*
 * Login throttling, the pure half. POST /api/auth/login/ and POST /api/token/ are counted per
 * account (sha256 of the lower-cased username) and per client address, in two Redis hashes
 * gw:{login}:a:<hex> and gw:{login}:i:<address> (one hash tag: one Cluster slot, so one script
 * touches both). Each hash holds f (failures) and u (locked until, epoch ms, Redis's clock).
 *
 *   check  (before calling auth): when either key is locked, answer 429 with Retry-After without
 *          calling auth. Otherwise the attempt is counted now as a provisional failure (f + 1)
 *          and, when f reaches its maximum M (LOGIN_MAX_FAILURES for the account,
 *          LOGIN_ADDRESS_MAX_FAILURES for the address), the key locks for
 *          LOGIN_LOCKOUT_S * 2^(f - M) seconds, capped at GW_LOGIN_LOCK_CAP_S.
 *          Counting first makes the check and the count one atomic step, so parallel attempts
 *          cannot all slip past the threshold.
 *   settle (after auth answered): 401 keeps the failure; 200 deletes the account's hash and
 *          takes the provisional failure back from the address; any other outcome (400, 5xx,
 *          timeout, client gone) takes it back from both. Taking back also undoes a lock that
 *          this very attempt set, unless another attempt changed it since.
 * A key expires GW_LOGIN_WINDOW_S after its last failure or the end of its lock, so the
 * doubling applies to failures that follow a lock, and an old failure is eventually forgotten.
 */
#ifndef GW_LOGIN_H
#define GW_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adi/core.h"

#define GW_LOGIN_LOCK_CAP_S 3600 /* longest lockout */
#define GW_LOGIN_WINDOW_S   3600 /* failures are forgotten this long after the last one / lock */
#define GW_LOGIN_KEY_MAX    80   /* "gw:{login}:a:" + 64 hex, or "gw:{login}:i:" + address */
#define GW_LOGIN_USER_MAX   254  /* longest username counted per account (the API's limit) */

/**
 * EVAL script: KEYS[1] account key, KEYS[2] address key; ARGV[1] "1" when the account key is in
 * use (else only the address counts), ARGV[2] max failures of the account, ARGV[3] of the
 * address, ARGV[4] lockout s, ARGV[5] cap s, ARGV[6] window s. Returns {0, retry_after_s} when
 * locked, else {1, a_prev_u, a_new_u,
 * i_prev_u, i_new_u} (the account pair 0, 0 when unused).
 */
extern const char gw_login_check_lua[];

/**
 * EVAL script: KEYS as above; ARGV[1] account in use, ARGV[2] "ok" (success) or "void" (take the
 * attempt back), ARGV[3..6] the a_prev_u, a_new_u, i_prev_u, i_new_u the check returned.
 */
extern const char gw_login_settle_lua[];

/** The outcome of a counted login attempt. */
typedef enum gw_login_outcome {
    GW_LOGIN_FAILED = 0, /* auth answered 401: the provisional failure stays */
    GW_LOGIN_SUCCEEDED,  /* auth answered 200: the account is reset */
    GW_LOGIN_VOID,       /* anything else: the attempt is taken back */
} gw_login_outcome_t;

/** The outcome for auth's reply status (`from_auth` false: the answer did not come from auth). */
gw_login_outcome_t gw_login_outcome(int status, bool from_auth);

/**
 * Writes the account key "gw:{login}:a:<hex sha256 of the ASCII-lower-cased username>" into
 * `out`, the username without surrounding whitespace (as auth reads it). Returns false
 * (out = "") for an empty or blank username or one longer than GW_LOGIN_USER_MAX.
 */
bool gw_login_account_key(adi_str_t username, char out[GW_LOGIN_KEY_MAX + 1]);

/** Writes the address key "gw:{login}:i:<address>" into `out` ("unknown" for an empty one). */
void gw_login_address_key(const char *address, char out[GW_LOGIN_KEY_MAX + 1]);

/**
 * Finds the string member `name` of the msgpack map `mp` (the converted JSON body). Returns false
 * when the body is not a map, has no such member or it is not a string. On success `*out` points
 * into `mp`.
 */
bool gw_body_string_member(const char *mp, size_t len, const char *name, adi_str_t *out);

/** What the check script answered. */
typedef struct gw_login_check {
    bool allowed;        /* not locked: the attempt was counted and may proceed */
    int64_t retry_after; /* seconds to wait (when !allowed), at least 1 */
    char prev[2][24];    /* account, address: u before this attempt ("0": none) */
    char next[2][24];    /* account, address: u this attempt left */
} gw_login_check_t;

/**
 * Reads the check script's reply, given as `n` integers. Returns false when the shape is wrong
 * (the caller answers 503).
 */
bool gw_login_check_parse(const long long *vals, size_t n, gw_login_check_t *out);

/** Appends {"detail": "Too many failed login attempts. Try again in N seconds."}. */
void gw_login_render_locked(int64_t retry_after, adi_buf_t *out);

#endif
