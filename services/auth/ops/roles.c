/* SPDX-License-Identifier: MIT */
/*
 * Role assignments of the caller's tenant: auth.roles_list (GET /api/user-roles/),
 * auth.roles_create (POST /api/user-roles/), auth.roles_assign (POST /api/roles/assign/) and
 * auth.roles_delete (DELETE /api/user-roles/{id}/). Granting is idempotent per (user, role): an
 * existing assignment is answered again (201) and changes nothing. A real change bumps the user's
 * token version in the same transaction and publishes it on ev:auth (so the gateway refuses the
 * user's older access tokens at once), and leaves an audit entry role_assigned / role_revoked.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define ROLE_COLS                                                                                  \
    "r.id, r.user_id, r.tenant_id, r.role, "                                                       \
    "(extract(epoch FROM r.created_at) * 1000000)::bigint"

/* Fills an assignment from row `i` of a ROLE_COLS result. */
static void role_from(adi_pool_t *pool, const adi_db_res_t *res, int i, auth_role *out)
{
    memset(out, 0, sizeof(*out));
    out->id = adi_db_get(res, i, 0);
    out->user = adi_db_get(res, i, 1);
    out->tenant = adi_db_get(res, i, 2);
    out->role = adi_db_get(res, i, 3);
    char iso[40];
    size_t n = adi_time_iso(strtoll(adi_db_get(res, i, 4).ptr, NULL, 10), iso);
    out->created_at = adi_pool_strdup(pool, (adi_str_t){iso, n});
}

static adi_err op_roles_list(adi_ctx_t *ctx, const adi_empty *req, auth_role_list *rep,
                             adi_error_t *err)
{
    (void)req;
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "SELECT " ROLE_COLS " FROM auth.user_roles r "
                             "ORDER BY r.created_at, r.id",
                             0, NULL, &res, err);
    if (rc != ADI_OK)
        return rc;
    int n = adi_db_nrows(res);
    rep->items.n = (size_t)n;
    rep->items.items = adi_pool_alloc(ctx->pool, sizeof(auth_role) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++)
        role_from(ctx->pool, res, i, &rep->items.items[i]);
    return ADI_OK;
}

/* Grants req->role to req->user in the caller's tenant (both POST routes). */
static adi_err grant(adi_ctx_t *ctx, const auth_role_create_req *req, auth_role *rep,
                     adi_error_t *err)
{
    adi_err rc = auth_require_admin(ctx, err);
    if (rc != ADI_OK)
        return rc;
    adi_str_t tenant_id = ctx->principal->tenant_id;
    adi_str_t p[3] = {req->user, tenant_id, req->role};
    adi_db_res_t *res = NULL;
    rc = adi_db_exec(ctx->db, ctx->pool, "SELECT 1 FROM auth.users WHERE id = $1::uuid", 1, p, &res,
                     err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_field(err, "user", AUTH_MSG_OTHER_TENANT);
    rc = adi_db_exec(ctx->db, ctx->pool,
                     "INSERT INTO auth.user_roles AS r (user_id, tenant_id, role) "
                     "VALUES ($1::uuid, $2::uuid, $3) ON CONFLICT (user_id, tenant_id, role) "
                     "DO NOTHING RETURNING " ROLE_COLS,
                     3, p, &res, err);
    bool created = rc == ADI_OK && adi_db_nrows(res) == 1;
    if (rc == ADI_OK && !created)
        rc = adi_db_exec(ctx->db, ctx->pool,
                         "SELECT " ROLE_COLS " FROM auth.user_roles r WHERE r.user_id = $1::uuid "
                         "AND r.tenant_id = $2::uuid AND r.role = $3",
                         3, p, &res, err);
    if (rc == ADI_OK && created)
        rc = auth_bump_version(ctx, req->user, tenant_id, "roles_changed", err);
    if (rc != ADI_OK)
        return rc;
    role_from(ctx->pool, res, 0, rep);
    if (created)
        auth_audit(ctx, tenant_id, ctx->principal->user_id, auth_actor_email(ctx), "role_assigned",
                   "role", req->user, req->role);
    ctx->status = 201;
    return ADI_OK;
}

static adi_err op_roles_delete(adi_ctx_t *ctx, const auth_id_req *req, adi_empty *rep,
                               adi_error_t *err)
{
    (void)rep;
    adi_err rc = auth_require_admin(ctx, err);
    if (rc != ADI_OK)
        return rc;
    if (!adi_uuid_valid(req->id))
        return adi_error_set(err, ADI_NOT_FOUND, AUTH_MSG_NOT_FOUND);
    adi_db_res_t *res = NULL;
    rc = adi_db_exec(ctx->db, ctx->pool,
                     "DELETE FROM auth.user_roles WHERE id = $1::uuid RETURNING user_id, role", 1,
                     &req->id, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_NOT_FOUND, AUTH_MSG_NOT_FOUND);
    adi_str_t user = adi_db_get(res, 0, 0), tenant_id = ctx->principal->tenant_id;
    rc = auth_bump_version(ctx, user, tenant_id, "roles_changed", err);
    if (rc != ADI_OK)
        return rc;
    auth_audit(ctx, tenant_id, ctx->principal->user_id, auth_actor_email(ctx), "role_revoked",
               "role", user, adi_db_get(res, 0, 1));
    ctx->status = 204;
    return ADI_OK;
}

ADI_SVC_HANDLER(auth_roles_list_row, adi_op_auth_roles_list, adi_empty, auth_role_list,
                op_roles_list);
ADI_SVC_HANDLER(auth_roles_create_row, adi_op_auth_roles_create, auth_role_create_req, auth_role,
                grant);
ADI_SVC_HANDLER(auth_roles_assign_row, adi_op_auth_roles_assign, auth_role_create_req, auth_role,
                grant);
ADI_SVC_HANDLER(auth_roles_delete_row, adi_op_auth_roles_delete, auth_id_req, adi_empty,
                op_roles_delete);
