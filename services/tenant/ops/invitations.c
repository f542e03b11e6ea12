/* SPDX-License-Identifier: MIT */
/*
 * Invitations (API.md "Tenants" invite, "Users" invite and accept-invite).
 *
 * Invite is one flow behind POST /api/tenants/{id}/invite/ and the legacy POST
 * /api/users/invite/ (no id: the caller's tenant). Only admins may invite; a path id other than
 * the caller's own tenant is 404 unless the caller is a superuser, who may invite into any
 * existing tenant. The invitation carries a 32-byte random token (returned in the reply as
 * API.md asks, never logged), expires after 7 days, and its mail is a task on tasks:default that
 * names the invitation id only.
 *
 * Accept (no auth) claims the invitation through tenant.claim_invitation, which marks it
 * accepted inside this request's transaction and keeps its row locked until the transaction
 * ends: of concurrent accepts of one token exactly one gets the claim, the others wait and then
 * see "already accepted". The winner asks auth to create the user in the invitation's tenant with
 * the invitation's role; if that fails the handler fails, the transaction rolls back and the
 * claim is released, so the token can be used again.
 */
#include <string.h>
#include <strings.h>

#include "adi/keys.h"
#include "tenant.h"

#define INVITATION_COLS                                                                            \
    "id, email, role, token, " TENANT_US("expires_at") ", " TENANT_US("accepted_at")

/* The inviter's e-mail for the audit entry (best effort: "" when auth cannot say). */
static adi_str_t inviter_email(adi_ctx_t *ctx)
{
    const adi_principal *p = ctx->principal;
    if (p->email.len > 0)
        return p->email;
    if (p->user_id.len == 0)
        return ADI_STR("");
    auth_id_req req = {.id = p->user_id};
    auth_user user;
    adi_error_t ignored;
    adi_error_clear(&ignored);
    if (adi_svc_call(ctx, &adi_op_auth_users_get, NULL, &req, &user, &ignored) != ADI_OK)
        return ADI_STR("");
    return user.email;
}

/* Queues the invitation mail for the task runner (sent after the commit). */
static void enqueue_mail(adi_ctx_t *ctx, adi_str_t tenant_id, adi_str_t invitation_id)
{
    task_send_invitation_args args = {.invitation_id = invitation_id};
    char id[37];
    adi_uuid_v4(id);
    task_msg t;
    memset(&t, 0, sizeof(t));
    t.id = adi_str_c(id);
    t.name = ADI_STR(TENANT_TASK_INVITE_MAIL);
    t.args = adi_proto_encode_pool(&task_send_invitation_args__desc, &args, ctx->pool);
    t.tenant_id = tenant_id;
    t.request_id = adi_str_c(ctx->request_id);
    t.enqueued_at_ms = adi_now_ms();
    adi_svc_publish(ctx, TENANT_TASK_QUEUE, &task_msg__desc, &t);
}

/* The tenant an invite goes to, with the transaction scoped to it; 404 when not the caller's. */
static adi_err invite_target(adi_ctx_t *ctx, const tenant_invite_req *req, adi_str_t *tenant_id,
                             adi_error_t *err)
{
    const adi_principal *p = ctx->principal;
    *tenant_id = p->tenant_id;
    if (req->id.len > 0) {
        if (!adi_uuid_valid(req->id))
            return adi_error_set(err, ADI_NOT_FOUND, TENANT_MSG_NOT_FOUND);
        bool own = p->tenant_id.len == req->id.len &&
                   strncasecmp(p->tenant_id.ptr, req->id.ptr, req->id.len) == 0;
        if (!own && !p->superuser)
            return adi_error_set(err, ADI_NOT_FOUND, TENANT_MSG_NOT_FOUND);
        *tenant_id = req->id;
    }
    if (tenant_id->len == 0)
        return adi_error_field(err, "non_field_errors", TENANT_MSG_NO_TENANT);
    adi_err rc = tenant_scope(ctx, *tenant_id, err);
    adi_db_res_t *res = NULL;
    if (rc == ADI_OK)
        rc = adi_db_exec(ctx->db, ctx->pool, "SELECT id FROM tenant.tenants WHERE id = $1::uuid", 1,
                         tenant_id, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_NOT_FOUND, TENANT_MSG_NOT_FOUND);
    *tenant_id = adi_db_get(res, 0, 0); /* canonical lower case */
    return ADI_OK;
}

static adi_err op_invite(adi_ctx_t *ctx, const tenant_invite_req *req, tenant_invitation *rep,
                         adi_error_t *err)
{
    if (!tenant_is_admin(ctx->principal))
        return adi_error_set(err, ADI_FORBIDDEN, TENANT_MSG_NOT_ADMIN);
    adi_str_t tid;
    adi_err rc = invite_target(ctx, req, &tid, err);
    if (rc != ADI_OK)
        return rc;
    char token[44];
    tenant_new_token(token);
    bool has_role = req->role.ptr != NULL && !ADI_IS_NULL(tenant_invite_req, req, role);
    adi_str_t p[5] = {tid, req->email, has_role ? req->role : ADI_STR_NULL, adi_str_c(token),
                      ctx->principal->user_id.len > 0 ? ctx->principal->user_id : ADI_STR_NULL};
    adi_db_res_t *res = NULL;
    rc = adi_db_exec(ctx->db, ctx->pool,
                     "INSERT INTO tenant.invitations (tenant_id, email, role, token, invited_by) "
                     "VALUES ($1::uuid, $2, $3, $4, $5::uuid) RETURNING " INVITATION_COLS,
                     5, p, &res, err);
    if (rc != ADI_OK)
        return rc;
    rep->id = adi_db_get(res, 0, 0);
    rep->email = adi_db_get(res, 0, 1);
    rep->role = adi_db_get(res, 0, 2); /* NULL ptr: encoded as null */
    rep->token = adi_db_get(res, 0, 3);
    rep->expires_at = tenant_iso(ctx->pool, adi_db_get(res, 0, 4));
    rep->accepted_at = tenant_iso(ctx->pool, adi_db_get(res, 0, 5));

    enqueue_mail(ctx, tid, rep->id);
    tenant_audit_meta meta = {.email = rep->email, .role = rep->role};
    tenant_audit(ctx, tid, ctx->principal->user_id, inviter_email(ctx), "invitation_created",
                 "invitation", rep->id, &meta);
    ctx->status = 201;
    return ADI_OK;
}

/* Turns a failed claim into API.md's error on `token`. */
static adi_err claim_error(adi_str_t status, adi_error_t *err)
{
    if (adi_str_eq_c(status, "accepted"))
        return adi_error_field(err, "token", TENANT_MSG_TOKEN_USED);
    if (adi_str_eq_c(status, "expired"))
        return adi_error_field(err, "token", TENANT_MSG_TOKEN_EXPIRED);
    return adi_error_field(err, "token", TENANT_MSG_TOKEN_INVALID);
}

static adi_err op_accept(adi_ctx_t *ctx, const tenant_accept_req *req, auth_user *rep,
                         adi_error_t *err)
{
    if (req->token.len != TENANT_TOKEN_LEN) /* never one of ours: no need to ask */
        return claim_error(ADI_STR("invalid"), err);
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "SELECT claim_status, invitation_id, invitation_tenant, "
                             "invitation_email, invitation_role "
                             "FROM tenant.claim_invitation($1)",
                             1, &req->token, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (!adi_str_eq_c(adi_db_get(res, 0, 0), "claimed"))
        return claim_error(adi_db_get(res, 0, 0), err);
    adi_str_t inv_id = adi_db_get(res, 0, 1), tid = adi_db_get(res, 0, 2);
    adi_str_t email = adi_db_get(res, 0, 3), role = adi_db_get(res, 0, 4);
    rc = tenant_scope(ctx, tid, err);
    if (rc != ADI_OK)
        return rc;

    auth_user_provision_req preq = {.tenant_id = tid,
                                    .email = email,
                                    .password = req->password,
                                    .first_name = req->first_name,
                                    .last_name = req->last_name,
                                    .role = role,
                                    /* the user goes again if this request rolls back */
                                    .settle_key = adi_str_c(adi_svc_settle_key(ctx))};
    rc = adi_svc_call(ctx, &adi_op_auth_user_provision, NULL, &preq, rep, err);
    if (rc == ADI_INVALID && err->nfields > 0 && strcmp(err->fields[0].field, "email") == 0) {
        adi_error_clear(err); /* the e-mail is the invitation's: not the client's field */
        return adi_error_field(err, "non_field_errors", TENANT_MSG_EMAIL_TAKEN);
    }
    if (rc != ADI_OK)
        return rc;                     /* rolled back: the claim is released */
    if (!adi_str_eq(rep->tenant, tid)) /* auth replayed another caller's call: same id */
        return adi_error_set(err, ADI_CONFLICT, TENANT_MSG_ID_REUSED);

    adi_str_t up[2] = {inv_id, rep->id};
    rc = adi_db_exec(ctx->db, NULL,
                     "UPDATE tenant.invitations SET accepted_user_id = $2::uuid "
                     "WHERE id = $1::uuid",
                     2, up, NULL, err);
    if (rc != ADI_OK)
        return rc;
    tenant_audit_meta meta = {.email = email, .role = role, .invitation_id = inv_id};
    tenant_audit(ctx, tid, rep->id, rep->email, "invitation_accepted", "invitation", inv_id, &meta);
    ctx->status = 201;
    return ADI_OK;
}

ADI_SVC_HANDLER(tenant_invite_row, adi_op_tenant_invite, tenant_invite_req, tenant_invitation,
                op_invite);
ADI_SVC_HANDLER(tenant_accept_invite_row, adi_op_tenant_accept_invite, tenant_accept_req, auth_user,
                op_accept);
