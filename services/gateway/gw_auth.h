/* SPDX-License-Identifier: MIT */
/*
 * Token checks of the gateway, the pure half: reading the Authorization header as
 * djangorestframework-simplejwt's JWTAuthentication does, the route table's access decision
 * (ADI_PUBLIC / ADI_AUTH / ADI_ADMIN), the principal the envelope carries, and the table of user
 * token versions learnt from ev:auth that refuses access tokens issued before a user's roles
 * changed or the user was deactivated. No I/O: handler.c and bus.c feed them.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adi/core.h"
#include "adi/jwt.h"
#include "adi/messages.h"
#include "gw_router.h"

/* The client-facing texts of the refusals the gateway makes itself (API.md "Errors"). */
#define GW_MSG_NOT_ADMIN     "You must be a tenant admin to perform this action."
#define GW_MSG_BAD_AUTH_HDR  "Authorization header must contain two space-delimited values"
#define GW_CODE_BAD_AUTH_HDR "bad_authorization_header"
#define GW_WWW_AUTHENTICATE  "Bearer realm=\"api\""

/** What an Authorization header holds. */
typedef enum gw_bearer {
    GW_BEARER_NONE = 0, /* absent, blank or another scheme ("Basic ..."): no credentials */
    GW_BEARER_TOKEN,    /* "Bearer <token>": the token is to be verified */
    GW_BEARER_MALFORMED /* "Bearer" alone or followed by more than one value */
} gw_bearer_t;

/**
 * Reads an Authorization header value (`header.ptr` NULL when absent) as simplejwt does: split on
 * ASCII whitespace; no parts or a first part other than exactly "Bearer" means no credentials;
 * "Bearer" with other than exactly one more part is malformed. On GW_BEARER_TOKEN `*token`
 * points into `header`, else it is ADI_STR_NULL.
 */
gw_bearer_t gw_bearer_parse(adi_str_t header, adi_str_t *token);

/** Appends simplejwt's body for a malformed header: {"detail": ..., "code": ...}. */
void gw_render_bad_auth_header(adi_buf_t *out);

/** Route access verdicts. */
typedef enum gw_access {
    GW_ACCESS_OK = 0,   /* serve it */
    GW_ACCESS_FORBIDDEN /* authenticated but lacking the role: 403 GW_MSG_NOT_ADMIN */
} gw_access_t;

/**
 * Whether the verified claims `c` may use a route needing `need`: ADI_PUBLIC and ADI_AUTH always
 * (the token was verified before), ADI_ADMIN with the role ADMIN among the roles or as superuser.
 */
gw_access_t gw_access_decide(gw_auth_t need, const adi_jwt_claims_t *c);

/** Role name storage for a principal built from claims (adi_principal.roles points here). */
typedef struct gw_principal_roles {
    adi_str_t items[ADI_JWT_MAX_ROLES]; /* slices into the claims */
} gw_principal_roles_t;

/**
 * Fills `p` (zeroed first) from verified claims: user_id, tenant_id (left unset when the token
 * has none), roles (slices in `roles`, which must outlive `p`) and superuser. The e-mail is not
 * in the token and stays unset. Borrowed pointers: `c` must outlive `p`.
 */
void gw_principal_from_claims(const adi_jwt_claims_t *c, adi_principal *p,
                              gw_principal_roles_t *roles);

/** Bytes of an Idempotency-Key scope plus NUL ("anon/" and an IPv6 address fit). */
#define GW_SCOPE_MAX 80

/**
 * Writes the Idempotency-Key scope of a caller plus NUL into `out`: "<user_id>/<tenant_id>" for a
 * verified principal; for an anonymous caller (`c` NULL) "anon/<client_ip>", the address the
 * envelope's client_ip carries ("" when unknown), as libs/svc scopes anonymous requests, so two
 * anonymous clients never share a key's slot. `client_ip` NULL counts as "".
 */
void gw_principal_scope(const adi_jwt_claims_t *c, const char *client_ip, char out[GW_SCOPE_MAX]);

/* ---- verified-token cache ---------------------------------------------------------------- */

#define GW_TCACHE_SLOTS     256  /* direct-mapped slots per thread */
#define GW_TCACHE_TOKEN_MAX 1024 /* longer tokens are verified every time (real ones are ~400) */

/** One remembered token and its verified claims. */
typedef struct gw_tcache_slot {
    uint64_t hash;                   /* FNV-1a of the token, 0 for an empty slot */
    size_t len;                      /* token length */
    char token[GW_TCACHE_TOKEN_MAX]; /* the token itself: a hit compares all of it */
    adi_jwt_claims_t claims;         /* what adi_jwt_verify returned for it */
} gw_tcache_slot_t;

/**
 * Tokens that verified, per gateway thread (no locks), so that a client presenting the same
 * access token again costs a hash and a compare instead of a signature check, JSON parsing and
 * allocations. Safe because verification is deterministic for a fixed key set, except for time:
 * a hit re-checks exp against the clock (nbf and iat, once passed, stay passed), and the token
 * version check runs after the cache as for any token. Only successes are stored.
 */
typedef struct gw_tcache {
    gw_tcache_slot_t *slots; /* GW_TCACHE_SLOTS, allocated at the first put */
    int64_t leeway_s;        /* JWT_LEEWAY_S, as the verifier applies it to exp */
} gw_tcache_t;

/** Initialises an empty cache. */
void gw_tcache_init(gw_tcache_t *c, int64_t leeway_s);

/** Frees the cache's storage. */
void gw_tcache_dispose(gw_tcache_t *c);

/**
 * Looks `token` up: true and `*out` filled when it verified before and has not expired at
 * `now_s` (as the verifier: expired when exp <= now - leeway). An expired entry is dropped.
 */
bool gw_tcache_get(gw_tcache_t *c, adi_str_t token, int64_t now_s, adi_jwt_claims_t *out);

/** Remembers a verified token (ignored when longer than GW_TCACHE_TOKEN_MAX). */
void gw_tcache_put(gw_tcache_t *c, adi_str_t token, const adi_jwt_claims_t *claims);

/* ---- token versions (ev:auth) ----------------------------------------------------------- */

/** Most slots a version table grows to (each holds one user). */
#define GW_VTABLE_MAX_SLOTS ((size_t)1 << 20)

/** One user's highest token version seen. */
typedef struct gw_vtable_entry {
    uint8_t id[16];  /* the user's UUID as bytes */
    bool used;       /* slot holds a user */
    int64_t version; /* highest version seen for the user */
    int64_t seen_ms; /* time of the event that set it (stream id time), for expiry */
} gw_vtable_entry_t;

/**
 * user_id -> highest token version, kept per gateway thread (no locking). Open addressing with
 * linear probing. An entry older than `ttl_ms` (the access token lifetime plus leeway) no longer
 * matters, since every token issued before its event has expired, and is dropped when the table
 * needs room. Should more users change within one lifetime than GW_VTABLE_MAX_SLOTS * 3/4 hold,
 * the oldest entry is evicted and its time becomes a floor: tokens issued at or before it are
 * refused for every user (safe; clients refresh), never silently accepted.
 */
typedef struct gw_vtable {
    gw_vtable_entry_t *slots; /* cap entries (NULL until the first note) */
    size_t cap;               /* power of two */
    size_t n;                 /* used slots */
    size_t max_slots;         /* growth limit (GW_VTABLE_MAX_SLOTS, smaller in tests) */
    int64_t ttl_ms;           /* entries older than this are dropped when room is needed */
    int64_t floor_s;          /* tokens with iat <= floor_s are refused (0: none) */
} gw_vtable_t;

/** Initialises an empty table; `max_slots` is rounded down to a power of two (at least 16). */
void gw_vtable_init(gw_vtable_t *v, size_t max_slots, int64_t ttl_ms);

/** Frees the table's storage. */
void gw_vtable_dispose(gw_vtable_t *v);

/**
 * Records that `user_id` (a UUID, any case) has token version `version` since `event_ms`; the
 * highest version wins. `now_ms` decides which entries have expired when room is needed.
 * Errors: ADI_INVALID for a user id that is not a UUID or a negative version (nothing stored).
 */
adi_err gw_vtable_note(gw_vtable_t *v, adi_str_t user_id, int64_t version, int64_t event_ms,
                       int64_t now_ms);

/**
 * True when an access token of `user_id` with version `ver` issued at `iat_s` may be used: its
 * version is not below the known one and it was issued after the floor.
 */
bool gw_vtable_allows(const gw_vtable_t *v, adi_str_t user_id, int64_t ver, int64_t iat_s);

/** The version known for `user_id`, or -1 when none. */
int64_t gw_vtable_get(const gw_vtable_t *v, adi_str_t user_id);

/**
 * The start id of the history read at start-up: "<now_ms - ttl_ms>-0" (ids are ms times), or
 * "0-0" when that is not positive. `out` holds at least 32 bytes.
 */
void gw_vtable_history_id(int64_t now_ms, int64_t ttl_ms, char *out, size_t cap);

/**
 * Reads the millisecond time of a stream entry id ("1700000000000-3"). Returns false when the id
 * is malformed.
 */
bool gw_stream_id_ms(adi_str_t id, int64_t *ms);

#endif
