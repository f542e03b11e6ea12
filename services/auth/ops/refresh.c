/* SPDX-License-Identifier: MIT */
/*
 * auth.refresh (POST /api/token/refresh/): exchanges a refresh token for a new pair of the same
 * family (rotation). The presented token is marked rotated and replaced by the new one. Presenting
 * a rotated token again is a reuse: the whole family is revoked, the user's token version is
 * bumped and published on ev:auth (so the access tokens issued so far are refused at once: the
 * stolen token may have been exchanged already), and the client gets simplejwt's 401 "Token is
 * blacklisted", except within REFRESH_REUSE_GRACE_S of the rotation when the token is the
 * immediate predecessor of a live one (two tabs refreshing at once): that caller gets a fresh pair
 * of the same family and nothing is revoked. Roles, superuser flag and token version are read
 * again from the database, so a refresh picks up role changes. An inactive user gets simplejwt's
 * (>= 5.3.1) 401 "No active account found for the given token." before any revocation or reuse
 * check, as TokenRefreshSerializer checks the user first; a deleted user's tokens are gone with
 * it (401 "Token is invalid or expired"). A valid refresh token this service never issued (the
 * Django version's before the cut-over, or PyJWT's with the same key) is adopted as the first of
 * a family of its own (adopt_token).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define MSG_NO_ACTIVE "No active account found for the given token."

/* The state of the presented token's row, read under its tenant with FOR UPDATE. */
typedef struct token_state {
    adi_str_t tenant_id; /* the token's tenant (empty for a tenant-less superuser) */
    adi_str_t family;    /* its family */
    bool revoked;        /* the family was revoked */
    bool rotated;        /* it was exchanged already */
    bool grace;          /* rotated within the grace period, its successor still live */
} token_state_t;

/*
 * A refresh token with our signature that this service never recorded was issued by the Django
 * version before the cut-over (or by PyJWT with the same key and claims): like simplejwt, accept
 * it, as the first token of a family of its own, when its user exists in the tenant it names.
 * From then on it is a token like ours: presenting it again after its rotation is a reuse.
 */
static adi_err adopt_token(adi_ctx_t *ctx, const adi_jwt_claims_t *c, adi_str_t jti,
                           adi_str_t tenant_id, adi_error_t *err)
{
    adi_str_t p[5] = {jti, adi_str_c(c->user_id), tenant_id.len > 0 ? tenant_id : ADI_STR_NULL,
                      adi_pool_printf(ctx->pool, "%" PRId64, c->iat),
                      adi_pool_printf(ctx->pool, "%" PRId64, c->exp)};
    return adi_db_exec(ctx->db, NULL,
                       "INSERT INTO auth.refresh_tokens (jti, family, user_id, tenant_id, "
                       "issued_at, expires_at) SELECT $1, gen_random_uuid(), u.id, u.tenant_id, "
                       "to_timestamp($4::bigint), to_timestamp($5::bigint) FROM auth.users u "
                       "WHERE u.id = $2::uuid AND u.tenant_id IS NOT DISTINCT FROM $3::uuid "
                       "ON CONFLICT (jti) DO NOTHING",
                       5, p, NULL, err);
}

/* Finds the token by jti (before any tenant is known), scopes the transaction and locks the row. */
static adi_err load_token(adi_ctx_t *ctx, const adi_jwt_claims_t *c, adi_str_t jti,
                          token_state_t *st, adi_error_t *err)
{
    const auth_app_t *app = ctx->app;
    adi_db_res_t *res = NULL;
    adi_err rc =
        adi_db_exec(ctx->db, ctx->pool, "SELECT tenant_id, user_id FROM auth.refresh_lookup($1)", 1,
                    &jti, &res, err);
    if (rc != ADI_OK)
        return rc;
    bool known = adi_db_nrows(res) > 0;
    if (known && !adi_str_eq_c(adi_db_get(res, 0, 1), c->user_id))
        return adi_error_set(err, ADI_UNAUTHENTICATED, ADI_JWT_MSG_INVALID);
    st->tenant_id =
        known ? adi_db_get(res, 0, 0) : adi_pool_strdup(ctx->pool, adi_str_c(c->tenant_id));
    rc = auth_scope(ctx, st->tenant_id, err);
    if (rc == ADI_OK && !known)
        rc = adopt_token(ctx, c, jti, st->tenant_id, err);
    adi_str_t p[2] = {jti, adi_pool_printf(ctx->pool, "%" PRId64, app->refresh_grace_s)};
    if (rc == ADI_OK)
        rc = adi_db_exec(ctx->db, ctx->pool,
                         "SELECT t.family, t.revoked_at IS NOT NULL, t.rotated_at IS NOT NULL, "
                         "t.rotated_at > now() - make_interval(secs => $2::int) AND EXISTS ("
                         "SELECT 1 FROM auth.refresh_tokens n WHERE n.jti = t.replaced_by "
                         "AND n.rotated_at IS NULL AND n.revoked_at IS NULL) "
                         "FROM auth.refresh_tokens t WHERE t.jti = $1 FOR UPDATE",
                         2, p, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_UNAUTHENTICATED, ADI_JWT_MSG_INVALID);
    st->family = adi_db_get(res, 0, 0);
    st->revoked = adi_str_eq_c(adi_db_get(res, 0, 1), "t");
    st->rotated = adi_str_eq_c(adi_db_get(res, 0, 2), "t");
    st->grace = adi_str_eq_c(adi_db_get(res, 0, 3), "t");
    return ADI_OK;
}

/*
 * Reuse of a rotated token: revokes the family and bumps the user's token version (ev:auth
 * "tokens_revoked"), so the access tokens issued so far are refused at once; both commit although
 * the answer is a 401 (adi_svc_keep_writes).
 */
static adi_err revoke_family(adi_ctx_t *ctx, const token_state_t *st, adi_str_t user_id,
                             adi_error_t *err)
{
    adi_err rc = adi_db_exec(ctx->db, NULL,
                             "UPDATE auth.refresh_tokens SET revoked_at = now() "
                             "WHERE family = $1::uuid AND revoked_at IS NULL",
                             1, &st->family, NULL, err);
    if (rc == ADI_OK)
        rc = auth_bump_version(ctx, user_id, st->tenant_id, "tokens_revoked", err);
    if (rc != ADI_OK)
        return rc;
    ADI_LOG(&ctx->log, ADI_LOG_WARN, "auth.refresh_reuse",
            "rotated refresh token presented again: family %.*s revoked, user %.*s's tokens too",
            (int)st->family.len, st->family.ptr, (int)user_id.len, user_id.ptr);
    adi_svc_keep_writes(ctx);
    return adi_error_set(err, ADI_UNAUTHENTICATED, AUTH_MSG_BLACKLISTED);
}

static adi_err op_refresh(adi_ctx_t *ctx, const auth_refresh_req *req, auth_token_pair *rep,
                          adi_error_t *err)
{
    const auth_app_t *app = ctx->app;
    adi_jwt_claims_t c;
    if (adi_jwt_verify(app->jwt, req->refresh, ADI_JWT_REFRESH, adi_now_ms() / 1000, &c, NULL,
                       err) != ADI_OK)
        return ADI_UNAUTHENTICATED;
    adi_str_t jti = adi_pool_strdup(ctx->pool, adi_str_c(c.jti));
    token_state_t st = {0};
    adi_err rc = load_token(ctx, &c, jti, &st, err);
    if (rc != ADI_OK)
        return rc;
    /* The user first, as simplejwt does: an inactive account's answer names the account. */
    auth_user_row_t u;
    bool found = false;
    adi_str_t user_id = adi_pool_strdup(ctx->pool, adi_str_c(c.user_id));
    rc = auth_user_load(ctx, user_id, &u, &found, err);
    if (rc != ADI_OK)
        return rc;
    if (!found || !u.is_active)
        return adi_error_set(err, ADI_UNAUTHENTICATED, MSG_NO_ACTIVE);
    if (st.revoked)
        return adi_error_set(err, ADI_UNAUTHENTICATED, AUTH_MSG_BLACKLISTED);
    if (st.rotated && !st.grace)
        return revoke_family(ctx, &st, user_id, err);
    adi_str_t next = ADI_STR_NULL;
    rc = auth_issue_pair(ctx, &u, st.family, &rep->refresh, &rep->access, &next, err);
    if (rc != ADI_OK || st.rotated)
        return rc; /* a grace answer leaves the chain as it is */
    adi_str_t p[2] = {jti, next};
    return adi_db_exec(ctx->db, NULL,
                       "UPDATE auth.refresh_tokens SET rotated_at = now(), replaced_by = $2 "
                       "WHERE jti = $1",
                       2, p, NULL, err);
}

ADI_SVC_HANDLER(auth_refresh_row, adi_op_auth_refresh, auth_refresh_req, auth_token_pair,
                op_refresh);
