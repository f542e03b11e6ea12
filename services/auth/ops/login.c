/* SPDX-License-Identifier: MIT */
/*
 * auth.login (POST /api/auth/login/) and auth.token (POST /api/token/): checks an e-mail and
 * password and answers a new refresh-token family's first pair. Wrong e-mail, wrong password and
 * inactive account are one answer, DRF's 401 "No active account found with the given
 * credentials", and cost the same: every refusal costs at least one PBKDF2 at the configured
 * iterations (an unknown e-mail, a stored hash with fewer iterations, a malformed or unusable hash
 * are padded with a dummy PBKDF2 up to that cost); a successful login is never padded.
 * Hashing runs under the service's gate (bounded concurrency, 503 when full). A hash with fewer
 * iterations than PASSWORD_ITERATIONS is replaced after a successful login. auth.login also
 * records the audit entry "login".
 *
 * An e-mail is unique within a tenant only, so it may name accounts of several tenants: each is
 * tried, oldest first, and the first whose password matches logs in (so a refusal for an e-mail
 * of k accounts costs k verifications: at most 8, auth.login_lookup's limit).
 */
#include <string.h>

#include "auth.h"

/*
 * Checks the password against each candidate of `res` under the gate; sets match and fresh. A
 * refusal (no candidate, wrong password, inactive account) costs at least one verification at
 * the configured iterations: what the real verifications did not spend (a hash with fewer
 * iterations, a malformed or unusable one, no candidate at all) is burnt by a dummy one.
 */
static adi_err check_password(adi_ctx_t *ctx, const auth_login_req *req, const adi_db_res_t *res,
                              auth_user_row_t *u, int *match, char fresh[ADI_PASSWORD_ENCODED_MAX],
                              adi_error_t *err)
{
    const auth_app_t *app = ctx->app;
    adi_err rc = auth_gate_enter(ctx, err);
    if (rc != ADI_OK)
        return rc;
    int n = adi_db_nrows(res);
    bool upgrade = false;
    uint64_t spent = 0;
    for (int i = 0; i < n && *match < 0; i++) {
        bool ok = false;
        auth_user_row_from(res, i, u);
        if (adi_password_verify(req->password, u->password, app->iterations, &ok, &upgrade, NULL) ==
            ADI_OK) {
            spent += adi_password_verify_cost(req->password, u->password);
            if (ok)
                *match = i;
        }
    }
    if (*match < 0 || !u->is_active) {
        unsigned pad = adi_password_pad_iterations(spent, app->iterations);
        if (pad > 0)
            adi_password_dummy_verify(pad);
    } else if (upgrade && adi_password_hash(req->password, app->iterations, fresh,
                                            ADI_PASSWORD_ENCODED_MAX, NULL) != ADI_OK) {
        fresh[0] = '\0';
    }
    auth_gate_leave(ctx);
    return ADI_OK;
}

/* Finds the account of username/password, scopes the transaction to its tenant, loads roles. */
static adi_err authenticate(adi_ctx_t *ctx, const auth_login_req *req, auth_user_row_t *u,
                            adi_error_t *err)
{
    adi_db_res_t *res = NULL;
    adi_err rc =
        adi_db_exec(ctx->db, ctx->pool, "SELECT " AUTH_USER_COLS " FROM auth.login_lookup($1) u", 1,
                    &req->username, &res, err);
    int match = -1;
    char fresh[ADI_PASSWORD_ENCODED_MAX] = "";
    if (rc == ADI_OK)
        rc = check_password(ctx, req, res, u, &match, fresh, err);
    if (rc != ADI_OK)
        return rc;
    if (match < 0 || !u->is_active)
        return adi_error_set(err, ADI_UNAUTHENTICATED, AUTH_MSG_BAD_LOGIN);
    rc = auth_scope(ctx, u->tenant_id, err);
    if (rc == ADI_OK && fresh[0] != '\0') {
        adi_str_t p[2] = {u->id, adi_str_c(fresh)};
        rc = adi_db_exec(ctx->db, NULL,
                         "UPDATE auth.users SET password = $2, updated_at = now() "
                         "WHERE id = $1::uuid",
                         2, p, NULL, err);
    }
    /* Expired refresh tokens of this user are of no use any more. */
    if (rc == ADI_OK)
        rc = adi_db_exec(ctx->db, NULL,
                         "DELETE FROM auth.refresh_tokens WHERE user_id = $1::uuid "
                         "AND expires_at < now()",
                         1, &u->id, NULL, err);
    u->password = ADI_STR_NULL;
    return rc == ADI_OK ? auth_roles_load(ctx, u->id, &u->roles, err) : rc;
}

static adi_err op_login(adi_ctx_t *ctx, const auth_login_req *req, auth_login_rep *rep,
                        adi_error_t *err)
{
    auth_user_row_t u;
    adi_err rc = authenticate(ctx, req, &u, err);
    if (rc == ADI_OK)
        rc = auth_issue_pair(ctx, &u, ADI_STR_NULL, &rep->refresh, &rep->access, NULL, err);
    if (rc != ADI_OK)
        return rc;
    rep->tenant_id = u.tenant_id;
    rep->user = adi_pool_alloc(ctx->pool, sizeof(*rep->user));
    auth_user_to_msg(&u, rep->user);
    auth_audit(ctx, u.tenant_id, u.id, u.email, "login", "auth", u.id, ADI_STR_NULL);
    return ADI_OK;
}

static adi_err op_token(adi_ctx_t *ctx, const auth_login_req *req, auth_token_pair *rep,
                        adi_error_t *err)
{
    auth_user_row_t u;
    adi_err rc = authenticate(ctx, req, &u, err);
    if (rc != ADI_OK)
        return rc;
    return auth_issue_pair(ctx, &u, ADI_STR_NULL, &rep->refresh, &rep->access, NULL, err);
}

ADI_SVC_HANDLER(auth_login_row, adi_op_auth_login, auth_login_req, auth_login_rep, op_login);
ADI_SVC_HANDLER(auth_token_row, adi_op_auth_token, auth_login_req, auth_token_pair, op_token);
