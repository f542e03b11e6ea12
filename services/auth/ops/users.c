/* SPDX-License-Identifier: MIT */
/*
 * auth.users_list (GET /api/users/), auth.users_get (GET /api/users/{id}/) and auth.users_create
 * (POST /api/users/, ADMIN). Everything runs in the caller's tenant under row-level security, so
 * another tenant's user is simply not found (404 "Not found.", as for an unknown or malformed id).
 * Creating checks the ADMIN role again (the gateway enforces it first) and answers DRF's
 * {"email": ["user with this email already exists."]} for an e-mail the tenant already has.
 */
#include <string.h>

#include "auth.h"

/* Splits "A,B,C" (pool memory) into a role list. */
static adi_strlist_t split_roles(adi_pool_t *pool, adi_str_t s)
{
    adi_strlist_t out = {0, NULL};
    out.items = adi_pool_alloc(pool, sizeof(adi_str_t) * ADI_JWT_MAX_ROLES);
    size_t start = 0;
    for (size_t i = 0; s.ptr != NULL && i <= s.len && out.n < ADI_JWT_MAX_ROLES; i++) {
        if (i == s.len || s.ptr[i] == ',') {
            if (i > start)
                out.items[out.n++] = (adi_str_t){s.ptr + start, i - start};
            start = i + 1;
        }
    }
    return out;
}

static adi_err op_users_list(adi_ctx_t *ctx, const adi_empty *req, auth_user_list *rep,
                             adi_error_t *err)
{
    (void)req;
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "SELECT " AUTH_USER_COLS_PUBLIC
                             ", coalesce(string_agg(r.role, ',' ORDER BY r.role), '') "
                             "FROM auth.users u LEFT JOIN auth.user_roles r ON r.user_id = u.id "
                             "GROUP BY u.id ORDER BY u.email, u.id",
                             0, NULL, &res, err);
    if (rc != ADI_OK)
        return rc;
    int n = adi_db_nrows(res);
    rep->items.n = (size_t)n;
    rep->items.items = adi_pool_alloc(ctx->pool, sizeof(auth_user) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        auth_user_row_t u;
        auth_user_row_from(res, i, &u);
        u.roles = split_roles(ctx->pool, adi_db_get(res, i, AUTH_USER_NCOLS));
        auth_user_to_msg(&u, &rep->items.items[i]);
    }
    return ADI_OK;
}

static adi_err op_users_get(adi_ctx_t *ctx, const auth_id_req *req, auth_user *rep,
                            adi_error_t *err)
{
    if (!adi_uuid_valid(req->id))
        return adi_error_set(err, ADI_NOT_FOUND, AUTH_MSG_NOT_FOUND);
    auth_user_row_t u;
    bool found = false;
    adi_err rc = auth_user_load(ctx, req->id, &u, &found, err);
    if (rc != ADI_OK)
        return rc;
    if (!found)
        return adi_error_set(err, ADI_NOT_FOUND, AUTH_MSG_NOT_FOUND);
    auth_user_to_msg(&u, rep);
    return ADI_OK;
}

static adi_err op_users_create(adi_ctx_t *ctx, const auth_user_create_req *req,
                               auth_user_create_rep *rep, adi_error_t *err)
{
    adi_err rc = auth_require_admin(ctx, err);
    if (rc != ADI_OK)
        return rc;
    auth_user_row_t u;
    rc = auth_user_insert(ctx, ctx->principal->tenant_id, req->email, req->password,
                          req->first_name, req->last_name, req->timezone, ADI_STR_NULL, &u, err);
    if (rc != ADI_OK)
        return rc;
    rep->id = u.id;
    rep->email = u.email;
    rep->first_name = u.first_name;
    rep->last_name = u.last_name;
    rep->timezone = u.timezone;
    ctx->status = 201;
    return ADI_OK;
}

ADI_SVC_HANDLER(auth_users_list_row, adi_op_auth_users_list, adi_empty, auth_user_list,
                op_users_list);
ADI_SVC_HANDLER(auth_users_get_row, adi_op_auth_users_get, auth_id_req, auth_user, op_users_get);
ADI_SVC_HANDLER(auth_users_create_row, adi_op_auth_users_create, auth_user_create_req,
                auth_user_create_rep, op_users_create);
