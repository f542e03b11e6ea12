/* SPDX-License-Identifier: MIT */
/*
 * What the auth service's files share: its own configuration (JWT keys and lifetimes, password
 * cost and the bound on concurrent hashing), the state built from it at startup, and the helpers
 * the handlers under ops/ are written with: the tenant scope of a transaction, loading users and
 * roles, issuing token pairs, token-version bumps and the ev:auth / ev:audit events.
 *
 * Handlers run on libs/svc worker threads inside the request's transaction; these helpers only
 * use ctx->db, ctx->pool and adi_svc_publish (never Redis directly), and the state is read-only
 * after startup except for the hashing gate, which is thread-safe.
 */
#ifndef ADI_AUTH_H
#define ADI_AUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "adi/crypto.h"
#include "adi/jwt.h"
#include "adi/svc.h"

/** The tenant scope that selects tenant-less rows (superusers without a tenant) under RLS. */
#define AUTH_NO_TENANT "00000000-0000-0000-0000-000000000000"

/* Client-facing messages (DRF / simplejwt / API.md wording). */
#define AUTH_MSG_BAD_LOGIN    "No active account found with the given credentials"
#define AUTH_MSG_BUSY         "Too many logins in progress, retry shortly."
#define AUTH_MSG_NOT_ADMIN    "You must be a tenant admin to perform this action."
#define AUTH_MSG_NOT_FOUND    "Not found."
#define AUTH_MSG_NO_CREDS     "Authentication credentials were not provided."
#define AUTH_MSG_BLACKLISTED  "Token is blacklisted"
#define AUTH_MSG_EMAIL_TAKEN  "user with this email already exists."
#define AUTH_MSG_OTHER_TENANT "The selected user does not belong to this tenant."

/** How long a login waits for a free hashing slot before it is answered 503. */
#define AUTH_HASH_WAIT_MS 100

/** The service's own settings (rows in auth.c, parsed by libs/svc). */
typedef struct auth_cfg {
    const char *jwt_algorithm;        /* JWT_ALGORITHM: HS256 | RS256 | ES256 */
    const char *jwt_signing_key;      /* JWT_SIGNING_KEY: HS256 secret (SECRET) */
    const char *jwt_private_key_file; /* JWT_PRIVATE_KEY_FILE: PEM, RS256/ES256 */
    const char *jwt_public_key_file;  /* JWT_PUBLIC_KEY_FILE: PEM, optional with a private key */
    int64_t access_lifetime_s;        /* ACCESS_TOKEN_LIFETIME_S */
    int64_t refresh_lifetime_s;       /* REFRESH_TOKEN_LIFETIME_S */
    int64_t refresh_grace_s;          /* REFRESH_REUSE_GRACE_S */
    int64_t password_iterations;      /* PASSWORD_ITERATIONS: PBKDF2 cost of new hashes */
    int64_t hash_concurrency;         /* PASSWORD_HASH_CONCURRENCY: 0 = max(1, WORKERS / 2) */
    int64_t settle_after_s;           /* SETTLE_AFTER_S: age at which provisioned users settle */
} auth_cfg_t;

/** The configuration rows of adi-auth and their number. */
extern const adi_cfg_row_t auth_cfg_rows[];
extern const size_t auth_ncfg_rows;

/** Fills `cfg` with the documented defaults (as with an empty environment). */
void auth_cfg_defaults(auth_cfg_t *cfg);

/**
 * A counting semaphore bounding the password hashes computed at the same time, and the workers
 * that may wait for one: at most max(0, WORKERS - slots - 1) wait at once, any other request that
 * finds the slots full is refused at once, so at least one worker is always free for the
 * operations that do not hash (/api/me/ stays fast under a login storm).
 */
typedef struct auth_gate {
    pthread_mutex_t mu; /* guards the counters below */
    pthread_cond_t cv;  /* signalled when a slot is released (CLOCK_MONOTONIC) */
    int free_slots;     /* slots not taken */
    int waiting;        /* requests waiting for a slot now */
    int max_waiting;    /* waiters allowed at once: max(0, WORKERS - slots - 1) */
    int64_t wait_ms;    /* longest wait for a slot: AUTH_HASH_WAIT_MS (tests raise it) */
} auth_gate_t;

/** The service state handed to handlers as ctx->app; read-only after auth_init but the gate. */
typedef struct auth_app {
    adi_jwt_t *jwt;             /* signing key set */
    int64_t access_lifetime_s;  /* access token lifetime */
    int64_t refresh_lifetime_s; /* refresh token lifetime */
    int64_t refresh_grace_s;    /* reuse grace of the immediately preceding refresh token */
    unsigned iterations;        /* PBKDF2 iterations of new hashes */
    int64_t settle_after_s;     /* age at which auth_settle_chore settles a provisioned user */
    int hash_slots;             /* the gate's size, at most WORKERS - 1 (but 1) */
    auth_gate_t gate;           /* bounds concurrent hashing */
} auth_app_t;

/**
 * adi_svc_def_t.init of the service: checks the configuration (algorithm, keys, lifetimes) and
 * builds the key set and the hashing gate. Errors: ADI_INVALID with a message naming the setting
 * (never a key).
 */
adi_err auth_init(const adi_svc_config_t *common, void *cfg, void **app, adi_error_t *err);

/** adi_svc_def_t.fini: frees what auth_init built. */
void auth_fini(void *app);

/**
 * adi_svc_def_t.chore of the service (settle.c), every AUTH_SETTLE_CHORE_MS: for each user that
 * auth.user_provision made for another service's request and that is older than SETTLE_AFTER_S,
 * asks that service `sys.settled` whether the request committed; keeps the user if it did,
 * removes it (roles and refresh tokens with it; ev:auth "deleted") if it did not. A signup or an
 * accept-invite whose own transaction failed after auth made its user so leaves nothing behind.
 */
adi_err auth_settle_chore(adi_ctx_t *ctx, adi_error_t *err);

/** Period of auth_settle_chore. */
#define AUTH_SETTLE_CHORE_MS 1000

/** The handler table of adi-auth (NULL-terminated), made of the rows below (ops/). */
extern const adi_svc_handler_t *const auth_handlers[];

ADI_SVC_HANDLER_DECL(auth_login_row);          /* ops/login.c */
ADI_SVC_HANDLER_DECL(auth_token_row);          /* ops/login.c */
ADI_SVC_HANDLER_DECL(auth_refresh_row);        /* ops/refresh.c */
ADI_SVC_HANDLER_DECL(auth_me_row);             /* ops/me.c */
ADI_SVC_HANDLER_DECL(auth_users_list_row);     /* ops/users.c */
ADI_SVC_HANDLER_DECL(auth_users_get_row);      /* ops/users.c */
ADI_SVC_HANDLER_DECL(auth_users_create_row);   /* ops/users.c */
ADI_SVC_HANDLER_DECL(auth_roles_list_row);     /* ops/roles.c */
ADI_SVC_HANDLER_DECL(auth_roles_create_row);   /* ops/roles.c */
ADI_SVC_HANDLER_DECL(auth_roles_assign_row);   /* ops/roles.c */
ADI_SVC_HANDLER_DECL(auth_roles_delete_row);   /* ops/roles.c */
ADI_SVC_HANDLER_DECL(auth_user_provision_row); /* ops/provision.c */

/* ---- password hashing under the gate (auth.c) --------------------------------------------- */

/**
 * Takes a hashing slot. When none is free, waits up to gate.wait_ms (AUTH_HASH_WAIT_MS; less when
 * the request's deadline is nearer) if fewer than gate.max_waiting requests wait already, and is
 * refused at once otherwise. Errors: ADI_BUSY with AUTH_MSG_BUSY when no slot was had.
 */
adi_err auth_gate_enter(adi_ctx_t *ctx, adi_error_t *err);

/** Gives the slot taken by auth_gate_enter back. */
void auth_gate_leave(adi_ctx_t *ctx);

/**
 * Hashes `password` with the configured iterations under the gate into `out` (pool memory).
 * Errors: ADI_BUSY (no slot), ADI_INVALID (password too long).
 */
adi_err auth_hash_password(adi_ctx_t *ctx, adi_str_t password, adi_str_t *out, adi_error_t *err);

/* ---- users and scope (store.c) ---------------------------------------------------------- */

/** A row of auth.users; strings live in ctx->pool. */
typedef struct auth_user_row {
    adi_str_t id;          /* uuid */
    adi_str_t tenant_id;   /* uuid, ptr NULL for a superuser without tenant */
    adi_str_t email;       /* as stored */
    adi_str_t password;    /* Django hash (only filled by lookups that need it) */
    adi_str_t first_name;  /* may be empty */
    adi_str_t last_name;   /* may be empty */
    adi_str_t timezone;    /* IANA name */
    bool is_active;        /* may log in */
    bool is_superuser;     /* platform superuser */
    int64_t token_version; /* the `ver` claim of new tokens */
    adi_strlist_t roles;   /* role names in the user's tenant, sorted */
} auth_user_row_t;

/** The SELECT list matching auth_user_row_from (a table or function aliased `u`). */
#define AUTH_USER_COLS                                                                             \
    "u.id, u.tenant_id, u.email, u.password, u.first_name, u.last_name, u.timezone, "              \
    "u.is_active, u.is_superuser, u.token_version"
/** AUTH_USER_COLS without the password hash (NULL in its place), for reads that never check it. */
#define AUTH_USER_COLS_PUBLIC                                                                      \
    "u.id, u.tenant_id, u.email, NULL::text, u.first_name, u.last_name, u.timezone, "              \
    "u.is_active, u.is_superuser, u.token_version"
/** Number of columns in AUTH_USER_COLS. */
#define AUTH_USER_NCOLS 10

/** Fills `u` from row `row` of `res` whose first columns are AUTH_USER_COLS. */
void auth_user_row_from(const adi_db_res_t *res, int row, auth_user_row_t *u);

/**
 * Scopes the rest of the transaction to `tenant_id` (set_config('app.tenant_id', ..., true)); an
 * absent or empty tenant selects the tenant-less scope AUTH_NO_TENANT. Errors: as adi_db_exec.
 */
adi_err auth_scope(adi_ctx_t *ctx, adi_str_t tenant_id, adi_error_t *err);

/**
 * Loads user `id` (a canonical UUID) visible in the current scope, with its roles, into `u`.
 * `*found` is false when no such row is visible. Errors: as adi_db_exec.
 */
adi_err auth_user_load(adi_ctx_t *ctx, adi_str_t id, auth_user_row_t *u, bool *found,
                       adi_error_t *err);

/**
 * Loads the role names of user `id` in the current scope (sorted) into `out`.
 * Errors: as adi_db_exec.
 */
adi_err auth_roles_load(adi_ctx_t *ctx, adi_str_t id, adi_strlist_t *out, adi_error_t *err);

/** Fills the API `user` shape from `u` (strings borrowed from it). */
void auth_user_to_msg(const auth_user_row_t *u, auth_user *out);

/**
 * Inserts a user of `tenant_id` (scope must be set to it) with `password` hashed under the gate and
 * an optional role (`role.ptr` NULL for none), filling `u` with the new row; `tz.ptr` NULL means
 * the default time zone. The e-mail's domain is lower-cased as Django's normalize_email does. The
 * e-mail is checked before the (costly) hash is computed.
 * Errors: ADI_INVALID {"email": [AUTH_MSG_EMAIL_TAKEN]} when the tenant has that e-mail already;
 * ADI_BUSY (no hashing slot); otherwise as adi_db_exec.
 */
adi_err auth_user_insert(adi_ctx_t *ctx, adi_str_t tenant_id, adi_str_t email, adi_str_t password,
                         adi_str_t first_name, adi_str_t last_name, adi_str_t tz, adi_str_t role,
                         auth_user_row_t *u, adi_error_t *err);

/**
 * Bumps the token version of user `id` (in the current scope) and queues the ev:auth event of
 * `kind` ("roles_changed", "deactivated", "deleted", "tokens_revoked") carrying the new version.
 * Errors: ADI_NOT_FOUND when the user is not visible; otherwise as adi_db_exec.
 */
adi_err auth_bump_version(adi_ctx_t *ctx, adi_str_t id, adi_str_t tenant_id, const char *kind,
                          adi_error_t *err);

/* ---- principal checks (store.c) --------------------------------------------------------- */

/** True when the caller holds role ADMIN or is a superuser. */
bool auth_is_admin(const adi_principal *p);

/**
 * Checks that the caller is a tenant admin (ADMIN role or superuser) acting inside a tenant.
 * Errors: ADI_UNAUTHENTICATED without a principal, ADI_FORBIDDEN (AUTH_MSG_NOT_ADMIN) otherwise.
 */
adi_err auth_require_admin(adi_ctx_t *ctx, adi_error_t *err);

/* ---- tokens (tokens.c) ------------------------------------------------------------------ */

/**
 * Issues a refresh and an access token for `u` (its tenant, roles, token version and superuser
 * flag) and records the refresh token in `family` (a UUID; ptr NULL starts a new family). The
 * scope must be the user's tenant. Tokens and `*jti` (the new refresh token's id; `jti` may be
 * NULL) live in ctx->pool.
 * Errors: ADI_INTERNAL when signing fails; otherwise as adi_db_exec.
 */
adi_err auth_issue_pair(adi_ctx_t *ctx, const auth_user_row_t *u, adi_str_t family,
                        adi_str_t *refresh, adi_str_t *access, adi_str_t *jti, adi_error_t *err);

/* ---- events (events.c) ------------------------------------------------------------------ */

/**
 * Queues an ev:audit entry for after the commit: `actor_id`/`actor_email` did `action` on
 * (`resource_type`, `resource_id`) in `tenant_id`; `role` (ptr NULL for none) becomes the metadata
 * {"role": role}. Entries without a tenant are not sent (the audit log is per tenant).
 */
void auth_audit(adi_ctx_t *ctx, adi_str_t tenant_id, adi_str_t actor_id, adi_str_t actor_email,
                const char *action, const char *resource_type, adi_str_t resource_id,
                adi_str_t role);

/**
 * The e-mail of the acting principal's user, looked up in the current scope ("" when unknown),
 * for audit entries (access tokens do not carry it).
 */
adi_str_t auth_actor_email(adi_ctx_t *ctx);

#endif
