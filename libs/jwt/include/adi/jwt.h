/* SPDX-License-Identifier: MIT */
/*
 * JSON Web Tokens compatible with djangorestframework-simplejwt: access and refresh tokens with
 * the claims token_type, exp, iat, jti (uuid4().hex), user_id (a UUID string), tenant_id and
 * roles. HS256 with a shared secret is the default; RS256 and ES256 with PEM keys are the option
 * where only the auth service holds the private key and the gateway the public one.
 *
 * libjwt 1.10 signs and checks signatures but validates nothing else (and silently skips the
 * signature when given no key), so adi_jwt_verify checks everything itself before trusting a
 * token: the length, the shape, the header's algorithm against the one pinned in the
 * configuration (alg "none" and algorithm confusion are refused before libjwt sees the token),
 * the signature, then exp (with leeway), nbf, iat, token_type, jti, user_id, tenant_id and roles.
 * Every refusal has its own reason for logs and tests; the client only ever sees simplejwt's
 * messages, built by adi_jwt_reason_message / adi_jwt_error_body.
 */
#ifndef ADI_JWT_H
#define ADI_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adi/core.h"

/** Longest token accepted or produced, in bytes. */
#define ADI_JWT_TOKEN_MAX 8192
/** Most roles a token carries, and the longest role name in bytes ([A-Za-z0-9_]). */
#define ADI_JWT_MAX_ROLES 8
#define ADI_JWT_ROLE_MAX  16
#define ADI_JWT_EMAIL_MAX 254
/** Characters of a canonical UUID, and of a jti (uuid4().hex: 32 lower-case hex digits). */
#define ADI_JWT_UUID_LEN 36
#define ADI_JWT_JTI_LEN  32
/** Largest accepted clock-skew leeway, in seconds. */
#define ADI_JWT_LEEWAY_MAX 3600

/* simplejwt's client-facing strings (rest_framework_simplejwt, 5.x). */
#define ADI_JWT_DETAIL         "Given token not valid for any token type"
#define ADI_JWT_CODE           "token_not_valid"
#define ADI_JWT_MSG_INVALID    "Token is invalid or expired"
#define ADI_JWT_MSG_WRONG_TYPE "Token has wrong type"

/** Signature algorithms; a configuration pins exactly one. */
typedef enum adi_jwt_alg {
    ADI_JWT_HS256 = 0, /* HMAC-SHA256 with a shared secret (default) */
    ADI_JWT_RS256,     /* RSASSA-PKCS1-v1_5 with SHA-256, RSA key of at least 2048 bits */
    ADI_JWT_ES256,     /* ECDSA P-256 with SHA-256 */
} adi_jwt_alg;

/** simplejwt's token types (the token_type claim). */
typedef enum adi_jwt_type {
    ADI_JWT_ACCESS = 0, /* "access": AccessToken */
    ADI_JWT_REFRESH,    /* "refresh": RefreshToken */
} adi_jwt_type;

/* XX(NAME, stable name used in logs and tests) */
#define ADI_JWT_REASON_MAP(XX)                                                                     \
    XX(OK, "ok")                       /* accepted */                                              \
    XX(EMPTY, "empty")                 /* no token at all */                                       \
    XX(TOO_LONG, "too_long")           /* longer than ADI_JWT_TOKEN_MAX */                         \
    XX(MALFORMED, "malformed")         /* not three non-empty base64url segments */                \
    XX(BAD_HEADER, "bad_header")       /* header not a JSON object with a string alg, or crit */   \
    XX(ALG_NONE, "alg_none")           /* alg "none": unsigned token */                            \
    XX(ALG_MISMATCH, "alg_mismatch")   /* alg differs from the pinned one (confusion attempt) */   \
    XX(BAD_SIGNATURE, "bad_signature") /* signature does not verify under the configured key */    \
    XX(BAD_PAYLOAD, "bad_payload")     /* payload not a JSON object (or duplicate keys) */         \
    XX(MISSING_CLAIM, "missing_claim") /* a required claim is absent */                            \
    XX(BAD_CLAIM, "bad_claim")         /* a claim has the wrong type or an insane value */         \
    XX(EXPIRED, "expired")             /* exp <= now - leeway */                                   \
    XX(NOT_YET_VALID, "not_yet_valid") /* nbf or iat later than now + leeway */                    \
    XX(WRONG_TYPE, "wrong_type")       /* token_type is not the expected one */

/** Why a token was refused. */
typedef enum adi_jwt_reason {
#define ADI_JWT_REASON_ENUM_(name, str) ADI_JWT_R_##name,
    ADI_JWT_REASON_MAP(ADI_JWT_REASON_ENUM_)
#undef ADI_JWT_REASON_ENUM_
        ADI_JWT_R__COUNT
} adi_jwt_reason;

/** The internal verdict on a token: for logs and tests, never for the client. */
typedef struct adi_jwt_verdict {
    adi_jwt_reason reason; /* ADI_JWT_R_OK when the token was accepted */
    const char *claim;     /* static name of the claim at fault (MISSING/BAD_CLAIM, EXPIRED, ...)
                              or NULL */
} adi_jwt_verdict_t;

/** The claims of a token: filled by adi_jwt_verify, filled by the caller for adi_jwt_sign. */
typedef struct adi_jwt_claims {
    adi_jwt_type token_type;                             /* access or refresh */
    char user_id[ADI_JWT_UUID_LEN + 1];                  /* canonical UUID of the user */
    char tenant_id[ADI_JWT_UUID_LEN + 1];                /* tenant UUID, "" when none (JSON null) */
    char jti[ADI_JWT_JTI_LEN + 1];                       /* token id, 32 lower-case hex digits */
    int64_t iat;                                         /* issued at, seconds since the epoch */
    int64_t exp;                                         /* expires at, seconds since the epoch */
    size_t nroles;                                       /* used entries of roles[] */
    char roles[ADI_JWT_MAX_ROLES][ADI_JWT_ROLE_MAX + 1]; /* role names, e.g. "ADMIN" */
    int64_t ver;       /* the user's token version ("ver", 0 when absent): tokens below the
                          version the gateway learnt from ev:auth are refused */
    bool is_superuser; /* "is_superuser" claim, written only when true, false when absent */
    char email[ADI_JWT_EMAIL_MAX + 1]; /* "email" claim (the user's e-mail, for audit entries),
                                          "" when absent */
} adi_jwt_claims_t;

/** How tokens are signed and checked. All pointers are borrowed for the adi_jwt_new call. */
typedef struct adi_jwt_config {
    adi_jwt_alg alg;           /* the one algorithm tokens are signed with and must carry */
    adi_str_t secret;          /* HS256: the shared secret (1..1024 bytes); unused otherwise */
    adi_str_t private_key_pem; /* RS256/ES256: PEM private key; absent on verify-only services */
    adi_str_t public_key_pem;  /* RS256/ES256: PEM public key; derived from the private key when
                                  absent; must match it when both are given */
    int64_t leeway_s;          /* clock skew tolerated on exp, nbf and iat: 0..ADI_JWT_LEEWAY_MAX */
} adi_jwt_config_t;

/** A validated, immutable key set. Safe to share between threads once made. */
typedef struct adi_jwt adi_jwt_t;

/**
 * Checks `cfg` and makes a key set that owns copies of the keys (wiped on free).
 * Errors (ADI_INVALID, *out NULL): empty or over-long secret, a PEM that does not parse, a key
 * whose type does not fit the algorithm (RS256 needs RSA of at least 2048 bits, ES256 a P-256
 * key), neither PEM given, private and public keys that do not match, leeway out of range.
 * Messages name the problem, never the key.
 */
adi_err adi_jwt_new(adi_jwt_t **out, const adi_jwt_config_t *cfg, adi_error_t *err);

/** Frees `j` (NULL is fine), wiping its keys. */
void adi_jwt_free(adi_jwt_t *j);

/** The pinned algorithm of `j`. */
adi_jwt_alg adi_jwt_get_alg(const adi_jwt_t *j);

/** True when `j` holds a signing key (an HS256 secret or a private key). */
bool adi_jwt_can_sign(const adi_jwt_t *j);

/** "HS256", "RS256" or "ES256" ("" for an unknown value). */
const char *adi_jwt_alg_name(adi_jwt_alg alg);

/** Parses "HS256" / "RS256" / "ES256" (exact case). Errors: ADI_INVALID for anything else. */
adi_err adi_jwt_alg_parse(adi_str_t s, adi_jwt_alg *out, adi_error_t *err);

/** "access" or "refresh" (the token_type claim value). */
const char *adi_jwt_type_name(adi_jwt_type t);

/** "AccessToken" or "RefreshToken" (simplejwt's token_class). */
const char *adi_jwt_token_class(adi_jwt_type t);

/** Stable name of a reason ("alg_none", "expired", ...); "unknown" for an unknown value. */
const char *adi_jwt_reason_name(adi_jwt_reason r);

/**
 * The message simplejwt gives the client for a refusal: ADI_JWT_MSG_WRONG_TYPE for WRONG_TYPE,
 * ADI_JWT_MSG_INVALID for every other reason (the client learns nothing more), "" for OK.
 */
const char *adi_jwt_reason_message(adi_jwt_reason r);

/**
 * Appends to `out` the JSON body of the 401 that simplejwt answers for a refused token.
 * For ADI_JWT_ACCESS (a Bearer token, JWTAuthentication):
 *   {"detail":"Given token not valid for any token type","code":"token_not_valid","messages":
 *    [{"token_class":"AccessToken","token_type":"access","message":"Token is invalid or expired"}]}
 * For ADI_JWT_REFRESH (TokenRefreshView): {"detail":"<message>","code":"token_not_valid"}.
 */
void adi_jwt_error_body(adi_jwt_type expected, adi_jwt_reason reason, adi_buf_t *out);

/**
 * Resets `c` for a new token of type `type`: no user, tenant or roles, iat = now_s,
 * exp = now_s + lifetime_s and a fresh jti (uuid4().hex).
 */
void adi_jwt_claims_init(adi_jwt_claims_t *c, adi_jwt_type type, int64_t now_s, int64_t lifetime_s);

/**
 * Sets the user and tenant ids (`tenant_id` absent or empty for none).
 * Errors: ADI_INVALID when either is not a canonical UUID; `c` is unchanged then.
 */
adi_err adi_jwt_claims_set_ids(adi_jwt_claims_t *c, adi_str_t user_id, adi_str_t tenant_id,
                               adi_error_t *err);

/**
 * Appends a role. Errors: ADI_INVALID when the name is empty, longer than ADI_JWT_ROLE_MAX or not
 * [A-Za-z0-9_], or when ADI_JWT_MAX_ROLES roles are already set.
 */
adi_err adi_jwt_claims_add_role(adi_jwt_claims_t *c, adi_str_t role, adi_error_t *err);

/**
 * Signs `c` with the configured algorithm and key, writing the NUL-terminated compact token to
 * `out` and its length to `*out_len` (may be NULL). Header {"alg":..,"typ":"JWT"}; payload
 * token_type, exp, iat, jti, user_id, tenant_id (null when empty) and roles (an array).
 * The claims are checked as adi_jwt_verify would, so nothing unverifiable is ever issued.
 * Errors: ADI_INVALID for bad claims (not UUIDs, bad jti, exp <= iat, bad roles) or a key set
 * without a signing key; ADI_TOO_LARGE when `out_cap` cannot hold the token and its NUL;
 * ADI_INTERNAL when libjwt fails.
 */
adi_err adi_jwt_sign(const adi_jwt_t *j, const adi_jwt_claims_t *c, char *out, size_t out_cap,
                     size_t *out_len, adi_error_t *err);

/**
 * Verifies `token` (the bare compact JWT, without "Bearer ") as a token of type `expected` at
 * time `now_s` (seconds since the epoch) and fills `*out` with its claims (zeroed on failure).
 * `why` (may be NULL) receives the internal verdict.
 * Errors: ADI_UNAUTHENTICATED for every refusal, with err->message set to
 * adi_jwt_reason_message(why->reason). Never crashes on any input.
 */
adi_err adi_jwt_verify(const adi_jwt_t *j, adi_str_t token, adi_jwt_type expected, int64_t now_s,
                       adi_jwt_claims_t *out, adi_jwt_verdict_t *why, adi_error_t *err);

#endif
