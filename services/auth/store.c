/* SPDX-License-Identifier: MIT */
/*
 * The auth service's data helpers shared by the handlers: scoping a transaction to a tenant (or to
 * the tenant-less superusers), reading users with their roles, inserting users, bumping a user's
 * token version together with its ev:auth event, and the principal checks. All SQL runs on
 * ctx->db inside the request's transaction, under the row-level security of migration 002.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"

adi_err auth_scope(adi_ctx_t *ctx, adi_str_t tenant_id, adi_error_t *err)
{
    adi_str_t t = tenant_id.ptr != NULL && tenant_id.len > 0 ? tenant_id : ADI_STR(AUTH_NO_TENANT);
    return adi_db_exec(ctx->db, NULL, "SELECT set_config('app.tenant_id', $1, true)", 1, &t, NULL,
                       err);
}

void auth_user_row_from(const adi_db_res_t *res, int row, auth_user_row_t *u)
{
    memset(u, 0, sizeof(*u));
    u->id = adi_db_get(res, row, 0);
    u->tenant_id = adi_db_get(res, row, 1);
    u->email = adi_db_get(res, row, 2);
    u->password = adi_db_get(res, row, 3);
    u->first_name = adi_db_get(res, row, 4);
    u->last_name = adi_db_get(res, row, 5);
    u->timezone = adi_db_get(res, row, 6);
    u->is_active = adi_str_eq_c(adi_db_get(res, row, 7), "t");
    u->is_superuser = adi_str_eq_c(adi_db_get(res, row, 8), "t");
    adi_str_t ver = adi_db_get(res, row, 9);
    u->token_version = ver.ptr != NULL ? strtoll(ver.ptr, NULL, 10) : 0;
}

adi_err auth_roles_load(adi_ctx_t *ctx, adi_str_t id, adi_strlist_t *out, adi_error_t *err)
{
    memset(out, 0, sizeof(*out));
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "SELECT role FROM auth.user_roles WHERE user_id = $1::uuid "
                             "ORDER BY role LIMIT 8",
                             1, &id, &res, err);
    if (rc != ADI_OK)
        return rc;
    int n = adi_db_nrows(res);
    out->items = adi_pool_alloc(ctx->pool, sizeof(adi_str_t) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++)
        out->items[out->n++] = adi_db_get(res, i, 0);
    return ADI_OK;
}

adi_err auth_user_load(adi_ctx_t *ctx, adi_str_t id, auth_user_row_t *u, bool *found,
                       adi_error_t *err)
{
    *found = false;
    memset(u, 0, sizeof(*u));
    adi_db_res_t *res = NULL;
    adi_err rc =
        adi_db_exec(ctx->db, ctx->pool,
                    "SELECT " AUTH_USER_COLS_PUBLIC " FROM auth.users u WHERE u.id = $1::uuid", 1,
                    &id, &res, err);
    if (rc != ADI_OK || adi_db_nrows(res) == 0)
        return rc;
    auth_user_row_from(res, 0, u);
    *found = true;
    return auth_roles_load(ctx, u->id, &u->roles, err);
}

void auth_user_to_msg(const auth_user_row_t *u, auth_user *out)
{
    memset(out, 0, sizeof(*out));
    out->id = u->id;
    out->email = u->email;
    out->first_name = u->first_name.ptr ? u->first_name : ADI_STR("");
    out->last_name = u->last_name.ptr ? u->last_name : ADI_STR("");
    out->tenant = u->tenant_id; /* NULL encodes as nil */
    out->timezone = u->timezone;
    out->roles = u->roles;
}

/* Django's normalize_email: the domain part lower-cased, the local part kept as typed. */
static adi_str_t normalize_email(adi_pool_t *pool, adi_str_t email)
{
    char *p = adi_pool_alloc(pool, email.len + 1);
    memcpy(p, email.ptr, email.len);
    size_t at = email.len;
    for (size_t i = email.len; i > 0 && at == email.len; i--)
        if (p[i - 1] == '@')
            at = i - 1;
    for (size_t i = at; i < email.len; i++)
        if (p[i] >= 'A' && p[i] <= 'Z')
            p[i] = (char)(p[i] - 'A' + 'a');
    return (adi_str_t){p, email.len};
}

static adi_err email_taken(adi_error_t *err)
{
    adi_error_clear(err);
    return adi_error_field(err, "email", AUTH_MSG_EMAIL_TAKEN);
}

adi_err auth_user_insert(adi_ctx_t *ctx, adi_str_t tenant_id, adi_str_t email, adi_str_t password,
                         adi_str_t first_name, adi_str_t last_name, adi_str_t tz, adi_str_t role,
                         auth_user_row_t *u, adi_error_t *err)
{
    email = normalize_email(ctx->pool, email);
    adi_db_res_t *res = NULL;
    adi_err rc =
        adi_db_exec(ctx->db, ctx->pool, "SELECT 1 FROM auth.users WHERE lower(email) = lower($1)",
                    1, &email, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) > 0)
        return email_taken(err);
    adi_str_t hash;
    rc = auth_hash_password(ctx, password, &hash, err);
    if (rc != ADI_OK)
        return rc;
    adi_str_t p[6] = {tenant_id,
                      email,
                      hash,
                      first_name.ptr ? first_name : ADI_STR(""),
                      last_name.ptr ? last_name : ADI_STR(""),
                      tz};
    rc = adi_db_exec(ctx->db, ctx->pool,
                     "INSERT INTO auth.users AS u (tenant_id, email, password, first_name, "
                     "last_name, timezone) VALUES ($1::uuid, $2, $3, $4, $5, "
                     "coalesce($6, 'America/Jamaica')) RETURNING " AUTH_USER_COLS_PUBLIC,
                     6, p, &res, err);
    if (rc == ADI_CONFLICT && strcmp(adi_db_constraint(ctx->db), "users_tenant_email_key") == 0)
        return email_taken(err); /* a concurrent insert of the same e-mail won */
    if (rc != ADI_OK)
        return rc;
    auth_user_row_from(res, 0, u);
    if (role.ptr == NULL)
        return ADI_OK;
    adi_str_t rp[3] = {u->id, tenant_id, role};
    rc = adi_db_exec(ctx->db, NULL,
                     "INSERT INTO auth.user_roles (user_id, tenant_id, role) "
                     "VALUES ($1::uuid, $2::uuid, $3)",
                     3, rp, NULL, err);
    if (rc != ADI_OK)
        return rc;
    u->roles.items = adi_pool_alloc(ctx->pool, sizeof(adi_str_t));
    u->roles.items[0] = role;
    u->roles.n = 1;
    return ADI_OK;
}

adi_err auth_bump_version(adi_ctx_t *ctx, adi_str_t id, adi_str_t tenant_id, const char *kind,
                          adi_error_t *err)
{
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "UPDATE auth.users SET token_version = token_version + 1, "
                             "updated_at = now() WHERE id = $1::uuid RETURNING token_version",
                             1, &id, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_NOT_FOUND, AUTH_MSG_NOT_FOUND);
    auth_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.user_id = id;
    ev.tenant_id = tenant_id.ptr != NULL ? tenant_id : ADI_STR("");
    ev.kind = adi_str_c(kind);
    ev.version = strtoll(adi_db_get(res, 0, 0).ptr, NULL, 10);
    adi_svc_publish(ctx, ADI_KEY_EV_AUTH, &auth_event__desc, &ev);
    return ADI_OK;
}

bool auth_is_admin(const adi_principal *p)
{
    if (p == NULL)
        return false;
    if (p->superuser)
        return true;
    for (size_t i = 0; i < p->roles.n; i++)
        if (adi_str_eq_c(p->roles.items[i], "ADMIN"))
            return true;
    return false;
}

adi_err auth_require_admin(adi_ctx_t *ctx, adi_error_t *err)
{
    const adi_principal *p = ctx->principal;
    if (p == NULL || p->user_id.len == 0)
        return adi_error_set(err, ADI_UNAUTHENTICATED, AUTH_MSG_NO_CREDS);
    if (!auth_is_admin(p) || p->tenant_id.len == 0)
        return adi_error_set(err, ADI_FORBIDDEN, AUTH_MSG_NOT_ADMIN);
    return ADI_OK;
}
