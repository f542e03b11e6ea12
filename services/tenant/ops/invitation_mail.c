/* SPDX-License-Identifier: MIT */
/*
 * tenant.invitation_mail (internal): the facts of an invitation's mail for the task runner's
 * send_invitation_email task: the invitee's e-mail, the token of the accept link, the tenant's
 * name, the role, the expiry (ISO 8601 in TIME_ZONE) and the inviting user's e-mail.
 *
 * Only service callers reach it (ADI_OP_INTERNAL), acting for one tenant: the transaction is
 * scoped to the principal's tenant by libs/svc, so row-level security hides every other tenant's
 * invitation (404, as for an unknown id). An invitation that was accepted or has expired is
 * refused with 409, so its mail is never sent (the task treats that as a permanent failure). The
 * inviter's e-mail comes from auth (auth.users_get in the same tenant) and is best effort: ""
 * when the inviter is unknown or auth cannot say. The token is never logged.
 */
#include <string.h>

#include "tenant.h"

static const char invitation_sql[] = "SELECT i.email, i.token, t.name, i.role, " TENANT_US(
    "i.expires_at") ", "
                    "i.accepted_at IS NOT NULL, i.expires_at <= now(), i.invited_by "
                    "FROM tenant.invitations i JOIN tenant.tenants t ON t.id = i.tenant_id "
                    "WHERE i.id = $1::uuid";

/* The e-mail of user `user_id` of the caller's tenant, "" when unknown (best effort). */
static adi_str_t user_email(adi_ctx_t *ctx, adi_str_t user_id)
{
    if (user_id.ptr == NULL || user_id.len == 0)
        return ADI_STR("");
    auth_id_req req = {.id = user_id};
    auth_user user;
    adi_error_t ignored;
    adi_error_clear(&ignored);
    if (adi_svc_call(ctx, &adi_op_auth_users_get, NULL, &req, &user, &ignored) != ADI_OK)
        return ADI_STR("");
    return user.email;
}

static adi_err op_invitation_mail(adi_ctx_t *ctx, const tenant_invitation_mail_req *req,
                                  tenant_invitation_mail_rep *rep, adi_error_t *err)
{
    const adi_principal *p = ctx->principal;
    if (p == NULL || p->tenant_id.len == 0)
        return adi_error_field(err, "non_field_errors", TENANT_MSG_NO_TENANT);
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool, invitation_sql, 1, &req->invitation_id, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_NOT_FOUND, TENANT_MSG_NOT_FOUND);
    if (adi_str_eq_c(adi_db_get(res, 0, 5), "t"))
        return adi_error_set(err, ADI_CONFLICT, TENANT_MSG_TOKEN_USED);
    if (adi_str_eq_c(adi_db_get(res, 0, 6), "t"))
        return adi_error_set(err, ADI_CONFLICT, TENANT_MSG_TOKEN_EXPIRED);

    rep->email = adi_db_get(res, 0, 0);
    rep->token = adi_db_get(res, 0, 1);
    rep->tenant_name = adi_db_get(res, 0, 2);
    rep->role = adi_db_get(res, 0, 3); /* NULL ptr: encoded as null */
    rep->expires_at = tenant_iso(ctx->pool, adi_db_get(res, 0, 4));
    rep->invited_by_email = user_email(ctx, adi_db_get(res, 0, 7));
    return ADI_OK;
}

ADI_SVC_HANDLER(tenant_invitation_mail_row, adi_op_tenant_invitation_mail,
                tenant_invitation_mail_req, tenant_invitation_mail_rep, op_invitation_mail);
