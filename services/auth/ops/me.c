/* SPDX-License-Identifier: MIT */
/*
 * auth.me (GET /api/me/): the caller's own user and tenant. A superuser may name another tenant
 * with the X-Tenant-Id header (params.tenant_override, set by the gateway for superusers only);
 * unlike the Django version, nobody else can. A token whose user is gone or inactive gets
 * simplejwt's 401 wording and code ("User not found" user_not_found, "User is inactive"
 * user_inactive), which the gateway renders {"detail": ..., "code": ...}.
 */
#include <string.h>

#include "auth.h"

static adi_err op_me(adi_ctx_t *ctx, const auth_me_req *req, auth_me_rep *rep, adi_error_t *err)
{
    const adi_principal *p = ctx->principal;
    if (p == NULL || !adi_uuid_valid(p->user_id))
        return adi_error_set(err, ADI_UNAUTHENTICATED, AUTH_MSG_NO_CREDS);
    adi_err rc = ADI_OK;
    if (p->tenant_id.len == 0)
        rc = auth_scope(ctx, ADI_STR_NULL, err); /* a superuser without tenant */
    auth_user_row_t u;
    bool found = false;
    if (rc == ADI_OK)
        rc = auth_user_load(ctx, p->user_id, &u, &found, err);
    if (rc != ADI_OK)
        return rc;
    if (!found) {
        ctx->error_code = "user_not_found";
        return adi_error_set(err, ADI_UNAUTHENTICATED, "User not found");
    }
    if (!u.is_active) {
        ctx->error_code = "user_inactive";
        return adi_error_set(err, ADI_UNAUTHENTICATED, "User is inactive");
    }
    rep->user = adi_pool_alloc(ctx->pool, sizeof(*rep->user));
    auth_user_to_msg(&u, rep->user);
    rep->tenant_id = u.tenant_id;
    adi_str_t override = req->tenant_override;
    if (p->superuser && override.ptr != NULL && override.len > 0) {
        if (!adi_uuid_valid(override))
            return adi_error_field(err, "tenant_id", "Must be a valid UUID.");
        rep->tenant_id = override;
    }
    return ADI_OK;
}

ADI_SVC_HANDLER(auth_me_row, adi_op_auth_me, auth_me_req, auth_me_rep, op_me);
