/* SPDX-License-Identifier: MIT */
/*
 * auth.user_provision (internal, services only; never routed by the gateway): creates a user of a
 * tenant with an optional role, for the tenant service's signup (the first ADMIN) and
 * accept-invite. The tenant comes from the request, not from the principal, because a signup has
 * no tenant yet. A duplicate e-mail in the tenant is answered 400 {"email": [...]}, which the
 * tenant service passes on or rewords. A new user has no tokens, so no version bump is needed.
 *
 * The caller's request may still fail after this one commits (its own commit, its deadline):
 * with the caller's settle key the user is provisional until auth_settle_chore (settle.c) has
 * asked the caller whether that request committed, and is removed if it did not.
 */
#include "auth.h"

static adi_err op_user_provision(adi_ctx_t *ctx, const auth_user_provision_req *req, auth_user *rep,
                                 adi_error_t *err)
{
    adi_err rc = auth_scope(ctx, req->tenant_id, err);
    if (rc != ADI_OK)
        return rc;
    adi_str_t role = ADI_IS_NULL(auth_user_provision_req, req, role) ? ADI_STR_NULL : req->role;
    auth_user_row_t u;
    rc = auth_user_insert(ctx, req->tenant_id, req->email, req->password, req->first_name,
                          req->last_name, ADI_STR_NULL, role, &u, err);
    if (rc != ADI_OK)
        return rc;
    const adi_principal *p = ctx->principal;
    if (req->settle_key.len > 0 && p != NULL && p->service.len > 0) {
        adi_str_t sp[3] = {u.id, p->service, req->settle_key};
        rc = adi_db_exec(ctx->db, NULL,
                         "UPDATE auth.users SET settle_caller = $2, settle_key = $3 "
                         "WHERE id = $1::uuid",
                         3, sp, NULL, err);
        if (rc != ADI_OK)
            return rc;
    }
    auth_user_to_msg(&u, rep);
    ctx->status = 201;
    return ADI_OK;
}

ADI_SVC_HANDLER(auth_user_provision_row, adi_op_auth_user_provision, auth_user_provision_req,
                auth_user, op_user_provision);
