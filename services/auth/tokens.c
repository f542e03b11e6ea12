/* SPDX-License-Identifier: MIT */
/*
 * Issuing token pairs: a refresh and an access token with simplejwt's claims plus tenant_id,
 * roles, the user's token version (`ver`) and the superuser flag, signed with the configured key,
 * and the refresh token's row in auth.refresh_tokens, which records its family so that rotation
 * and reuse detection (ops/refresh.c) can follow the chain.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"

/* Signs one token of `type` for `u`; the token lives in ctx->pool, its claims in `c`. */
static adi_err sign_one(adi_ctx_t *ctx, const auth_user_row_t *u, adi_jwt_type type, int64_t now_s,
                        adi_jwt_claims_t *c, adi_str_t *out, adi_error_t *err)
{
    const auth_app_t *app = ctx->app;
    int64_t life = type == ADI_JWT_ACCESS ? app->access_lifetime_s : app->refresh_lifetime_s;
    adi_jwt_claims_init(c, type, now_s, life);
    adi_err rc = adi_jwt_claims_set_ids(c, u->id, u->tenant_id, err);
    for (size_t i = 0; rc == ADI_OK && i < u->roles.n; i++)
        rc = adi_jwt_claims_add_role(c, u->roles.items[i], err);
    if (rc != ADI_OK)
        return adi_error_set(err, ADI_INTERNAL, "Cannot build the token claims.");
    c->ver = u->token_version;
    c->is_superuser = u->is_superuser;
    /* The e-mail rides in the token so the gateway's principal carries it to every service's
       audit entries (API.md's audit `user: {id, email}`). */
    if (u->email.len <= ADI_JWT_EMAIL_MAX) {
        memcpy(c->email, u->email.ptr, u->email.len);
        c->email[u->email.len] = '\0';
    }
    char *buf = adi_pool_alloc(ctx->pool, ADI_JWT_TOKEN_MAX + 1);
    size_t n = 0;
    rc = adi_jwt_sign(app->jwt, c, buf, ADI_JWT_TOKEN_MAX + 1, &n, err);
    if (rc != ADI_OK)
        return adi_error_set(err, ADI_INTERNAL, "Token signing failed.");
    *out = (adi_str_t){buf, n};
    return ADI_OK;
}

adi_err auth_issue_pair(adi_ctx_t *ctx, const auth_user_row_t *u, adi_str_t family,
                        adi_str_t *refresh, adi_str_t *access, adi_str_t *jti, adi_error_t *err)
{
    *refresh = ADI_STR_NULL;
    *access = ADI_STR_NULL;
    if (jti != NULL)
        *jti = ADI_STR_NULL;
    int64_t now_s = adi_now_ms() / 1000;
    adi_jwt_claims_t rc_claims, ac_claims;
    adi_err rc = sign_one(ctx, u, ADI_JWT_REFRESH, now_s, &rc_claims, refresh, err);
    if (rc == ADI_OK)
        rc = sign_one(ctx, u, ADI_JWT_ACCESS, now_s, &ac_claims, access, err);
    if (rc != ADI_OK)
        return rc;
    char fam[37];
    if (family.ptr == NULL) {
        adi_uuid_v4(fam);
        family = adi_pool_strdup(ctx->pool, adi_str_c(fam));
    }
    adi_str_t new_jti = adi_pool_strdup(ctx->pool, adi_str_c(rc_claims.jti));
    if (jti != NULL)
        *jti = new_jti;
    adi_str_t p[6] = {
        new_jti,
        family,
        u->id,
        u->tenant_id.ptr != NULL && u->tenant_id.len > 0 ? u->tenant_id : ADI_STR_NULL,
        adi_pool_printf(ctx->pool, "%" PRId64, rc_claims.iat),
        adi_pool_printf(ctx->pool, "%" PRId64, rc_claims.exp),
    };
    return adi_db_exec(ctx->db, NULL,
                       "INSERT INTO auth.refresh_tokens (jti, family, user_id, tenant_id, "
                       "issued_at, expires_at) VALUES ($1, $2::uuid, $3::uuid, $4::uuid, "
                       "to_timestamp($5::bigint), to_timestamp($6::bigint))",
                       6, p, NULL, err);
}
