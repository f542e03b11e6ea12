/* SPDX-License-Identifier: MIT */
/*
 * Tenants (API.md "Tenants"): signup, list and get.
 *
 * Signup (no auth) creates the tenant and then asks auth, over the bus, to create its first user
 * with role ADMIN, all inside the request's transaction: when auth refuses (a bad or taken e-mail,
 * a short password) or does not answer, the handler fails, the transaction is rolled back and the
 * tenant is gone; the client gets auth's field errors renamed to the signup's own field names
 * (email -> admin_email, ...). The body was validated by the proto layer before the handler ran,
 * so nothing is written for input that is invalid on its face. A redelivered or retried request
 * is answered from libs/svc's idempotency store; one that died half-way derives the same tenant
 * id again (tenant_signup_id) and so meets the user auth already stored for it.
 *
 * List and get follow row-level security: a user sees their own tenant only; a superuser sees
 * every tenant through the SECURITY DEFINER function tenant.tenants_all(). Anything not visible
 * is 404 {"detail": "Not found."}.
 */
#include <ctype.h>
#include <string.h>

#include "tenant.h"

#define TENANT_COLS "id, name, " TENANT_US("created_at")

/* Fills `out` from columns id, name, created_at-us of `row`. */
static void tenant_from(adi_pool_t *pool, const adi_db_res_t *res, int row, tenant_info *out)
{
    out->id = adi_db_get(res, row, 0);
    out->name = adi_db_get(res, row, 1);
    out->created_at = tenant_iso(pool, adi_db_get(res, row, 2));
}

static bool blank(adi_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!isspace((unsigned char)s.ptr[i]))
            return false;
    return true;
}

/* Auth's field errors for the first user, under the signup's names. */
static adi_err signup_error(adi_err rc, adi_error_t *err)
{
    static const char *const names[][2] = {{"email", "admin_email"},
                                           {"password", "admin_password"},
                                           {"first_name", "admin_first_name"},
                                           {"last_name", "admin_last_name"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        tenant_rename_field(err, names[i][0], names[i][1]);
    return rc;
}

static adi_err op_signup(adi_ctx_t *ctx, const tenant_signup_req *req, tenant_signup_rep *rep,
                         adi_error_t *err)
{
    if (blank(req->name))
        return adi_error_field(err, "name", TENANT_MSG_BLANK);
    char id[37];
    tenant_signup_id(ctx, id);
    adi_str_t tid = adi_str_c(id);
    adi_err rc = tenant_scope(ctx, tid, err);
    if (rc != ADI_OK)
        return rc;
    adi_str_t p[2] = {tid, req->name};
    adi_db_res_t *res = NULL;
    rc = adi_db_exec(ctx->db, ctx->pool,
                     "INSERT INTO tenant.tenants (id, name) VALUES ($1::uuid, $2) "
                     "RETURNING " TENANT_COLS,
                     2, p, &res, err);
    if (rc == ADI_CONFLICT) /* the idempotency record of this request id has expired */
        return adi_error_set(err, ADI_CONFLICT, TENANT_MSG_ID_REUSED);
    if (rc != ADI_OK)
        return rc;
    tenant_info t;
    tenant_from(ctx->pool, res, 0, &t);

    auth_user_provision_req preq;
    memset(&preq, 0, sizeof(preq));
    preq.tenant_id = t.id;
    preq.email = req->admin_email;
    preq.password = req->admin_password;
    preq.first_name = req->admin_first_name;
    preq.last_name = req->admin_last_name;
    preq.role = ADI_STR("ADMIN");
    preq.settle_key = adi_str_c(adi_svc_settle_key(ctx)); /* the user goes if we roll back */
    auth_user admin;
    rc = adi_svc_call(ctx, &adi_op_auth_user_provision, NULL, &preq, &admin, err);
    if (rc != ADI_OK)
        return signup_error(rc, err);
    if (!adi_str_eq(admin.tenant, t.id)) /* auth replayed another caller's call: same id */
        return adi_error_set(err, ADI_CONFLICT, TENANT_MSG_ID_REUSED);

    rep->id = t.id;
    rep->name = t.name;
    rep->created_at = t.created_at;
    rep->admin_user_id = admin.id;
    tenant_audit_meta meta = {.name = t.name};
    tenant_audit(ctx, t.id, admin.id, admin.email, "tenant_created", "tenant", t.id, &meta);
    ctx->status = 201;
    return ADI_OK;
}

static adi_err op_list(adi_ctx_t *ctx, const adi_empty *req, tenant_list *rep, adi_error_t *err)
{
    (void)req;
    const char *sql = tenant_is_superuser(ctx->principal)
                          ? "SELECT " TENANT_COLS " FROM tenant.tenants_all()"
                          : "SELECT " TENANT_COLS " FROM tenant.tenants ORDER BY created_at, id";
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool, sql, 0, NULL, &res, err);
    if (rc != ADI_OK)
        return rc;
    int n = adi_db_nrows(res);
    tenant_info *items = adi_pool_alloc(ctx->pool, (size_t)n * sizeof(*items) + 1);
    for (int i = 0; i < n; i++)
        tenant_from(ctx->pool, res, i, &items[i]);
    rep->items.n = (size_t)n;
    rep->items.items = items;
    return ADI_OK;
}

static adi_err op_get(adi_ctx_t *ctx, const tenant_id_req *req, tenant_info *rep, adi_error_t *err)
{
    if (!adi_uuid_valid(req->id))
        return adi_error_set(err, ADI_NOT_FOUND, TENANT_MSG_NOT_FOUND);
    const char *sql = tenant_is_superuser(ctx->principal)
                          ? "SELECT " TENANT_COLS " FROM tenant.tenants_all() WHERE id = $1::uuid"
                          : "SELECT " TENANT_COLS " FROM tenant.tenants WHERE id = $1::uuid";
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool, sql, 1, &req->id, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_NOT_FOUND, TENANT_MSG_NOT_FOUND);
    tenant_from(ctx->pool, res, 0, rep);
    return ADI_OK;
}

ADI_SVC_HANDLER(tenant_signup_row, adi_op_tenant_signup, tenant_signup_req, tenant_signup_rep,
                op_signup);
ADI_SVC_HANDLER(tenant_list_row, adi_op_tenant_list, adi_empty, tenant_list, op_list);
ADI_SVC_HANDLER(tenant_get_row, adi_op_tenant_get, tenant_id_req, tenant_info, op_get);
