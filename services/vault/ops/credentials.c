/* SPDX-License-Identifier: MIT */
/*
 * Platform credentials (API.md "Platform credentials") and the internal decrypts (vault.decrypt
 * by id, vault.decrypt_provider: the tenant's newest credential of a provider), whose plaintext
 * tokens are wiped as soon as the reply is encoded (adi_svc_sensitive).
 *
 * Reads need a tenant member, writes an ADMIN (checked here too, not only by the gateway). Every
 * statement runs in the request's transaction, scoped by libs/svc to the caller's tenant, so
 * row-level security confines it to that tenant's rows. Tokens are sealed with the tenant's DEK
 * (made on first use) before they reach SQL, never returned, logged or quoted in an error. An
 * update seals new tokens under the DEK version the row already uses, so a row never mixes keys.
 * (tenant, provider, account_id) is unique: a duplicate is a 400 worded as DRF words it.
 */
#include <stdlib.h>
#include <string.h>

#include "vault.h"

#define CRED_COLS                                                                                  \
    "id, provider, account_id, " VAULT_US("expires_at") ", " VAULT_US("created_at") ", " VAULT_US( \
        "updated_at")

/* Fills `rep` from row 0 of `res` (CRED_COLS). */
static void fill(adi_pool_t *pool, const adi_db_res_t *res, vault_credential *rep)
{
    rep->id = adi_db_get(res, 0, 0);
    rep->provider = adi_db_get(res, 0, 1);
    rep->account_id = adi_db_get(res, 0, 2);
    rep->expires_at = vault_iso(pool, adi_db_get(res, 0, 3));
    rep->created_at = vault_iso(pool, adi_db_get(res, 0, 4));
    rep->updated_at = vault_iso(pool, adi_db_get(res, 0, 5));
}

/* The caller's tenant, or a 400 when it belongs to none. */
static adi_err caller_tenant(adi_ctx_t *ctx, adi_str_t *tenant, adi_error_t *err)
{
    const adi_principal *p = ctx->principal;
    if (p == NULL || p->tenant_id.len == 0)
        return adi_error_field(err, "non_field_errors", VAULT_MSG_NO_TENANT);
    *tenant = p->tenant_id;
    return ADI_OK;
}

/* Maps the unique violation to DRF's wording; other errors pass through. */
static adi_err write_error(adi_ctx_t *ctx, adi_err rc, adi_error_t *err)
{
    if (rc == ADI_CONFLICT &&
        strcmp(adi_db_constraint(ctx->db), "platform_credentials_unique") == 0) {
        adi_error_clear(err);
        return adi_error_field(err, "non_field_errors", VAULT_MSG_UNIQUE);
    }
    return rc;
}

static adi_err op_list(adi_ctx_t *ctx, const adi_empty *req, vault_credential_list *rep,
                       adi_error_t *err)
{
    (void)req;
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "SELECT " CRED_COLS " FROM vault.platform_credentials "
                             "ORDER BY created_at, id",
                             0, NULL, &res, err);
    if (rc != ADI_OK)
        return rc;
    int n = adi_db_nrows(res);
    rep->items.n = (size_t)n;
    rep->items.items =
        n > 0 ? adi_pool_alloc(ctx->pool, (size_t)n * sizeof(vault_credential)) : NULL;
    for (int i = 0; i < n; i++) {
        vault_credential *c = &rep->items.items[i];
        memset(c, 0, sizeof(*c));
        c->id = adi_db_get(res, i, 0);
        c->provider = adi_db_get(res, i, 1);
        c->account_id = adi_db_get(res, i, 2);
        c->expires_at = vault_iso(ctx->pool, adi_db_get(res, i, 3));
        c->created_at = vault_iso(ctx->pool, adi_db_get(res, i, 4));
        c->updated_at = vault_iso(ctx->pool, adi_db_get(res, i, 5));
    }
    return ADI_OK;
}

static adi_err op_get(adi_ctx_t *ctx, const vault_id_req *req, vault_credential *rep,
                      adi_error_t *err)
{
    if (!adi_uuid_valid(req->id))
        return adi_error_set(err, ADI_NOT_FOUND, VAULT_MSG_NOT_FOUND);
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "SELECT " CRED_COLS " FROM vault.platform_credentials "
                             "WHERE id = $1::uuid",
                             1, &req->id, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_NOT_FOUND, VAULT_MSG_NOT_FOUND);
    fill(ctx->pool, res, rep);
    return ADI_OK;
}

static adi_err op_create(adi_ctx_t *ctx, const vault_create_req *req, vault_credential *rep,
                         adi_error_t *err)
{
    if (!vault_is_admin(ctx->principal))
        return adi_error_set(err, ADI_FORBIDDEN, VAULT_MSG_NOT_ADMIN);
    adi_str_t tid;
    adi_err rc = caller_tenant(ctx, &tid, err);
    if (rc != ADI_OK)
        return rc;
    adi_secret_t key;
    int version = 0;
    rc = vault_dek_current(ctx, tid, true, &key, &version, err);
    if (rc != ADI_OK)
        return rc;
    char id[37];
    adi_uuid_v4(id);
    adi_str_t cid = adi_str_c(id);
    adi_str_t access = ADI_STR_NULL, refresh = ADI_STR_NULL;
    rc = vault_seal(ctx->pool, &key, tid, cid, "access_token", req->access_token, &access, err);
    bool has_refresh =
        req->refresh_token.ptr != NULL && !ADI_IS_NULL(vault_create_req, req, refresh_token);
    if (rc == ADI_OK && has_refresh)
        rc = vault_seal(ctx->pool, &key, tid, cid, "refresh_token", req->refresh_token, &refresh,
                        err);
    adi_secret_dispose(&key);
    if (rc != ADI_OK)
        return rc;
    char vtext[16];
    snprintf(vtext, sizeof(vtext), "%d", version);
    bool has_exp = req->expires_at.ptr != NULL && !ADI_IS_NULL(vault_create_req, req, expires_at);
    adi_str_t p[8] = {cid,
                      tid,
                      req->provider,
                      req->account_id,
                      access,
                      refresh,
                      has_exp ? req->expires_at : ADI_STR_NULL,
                      adi_str_c(vtext)};
    static const adi_db_type types[8] = {ADI_DB_TEXT,  ADI_DB_TEXT,  ADI_DB_TEXT, ADI_DB_TEXT,
                                         ADI_DB_BYTEA, ADI_DB_BYTEA, ADI_DB_TEXT, ADI_DB_TEXT};
    adi_db_res_t *res = NULL;
    rc = adi_db_exec_typed(ctx->db, ctx->pool,
                           "INSERT INTO vault.platform_credentials (id, tenant_id, provider, "
                           "account_id, access_token, refresh_token, expires_at, dek_version) "
                           "VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7::timestamptz, $8::int) "
                           "RETURNING " CRED_COLS,
                           8, p, types, &res, err);
    if (rc != ADI_OK)
        return write_error(ctx, rc, err);
    fill(ctx->pool, res, rep);
    vault_audit(ctx, "credential_created", rep->id, rep->provider, rep->account_id);
    ctx->status = 201;
    return ADI_OK;
}

/* What an update changes: a field with `set` false is left as it is. */
typedef struct change {
    adi_str_t id;                   /* the credential (from the path) */
    bool set_provider, set_account; /* provider / account_id given */
    adi_str_t provider, account_id; /* their values */
    bool set_access, set_refresh;   /* access_token / refresh_token given (refresh may be null) */
    adi_str_t access, refresh;      /* their plaintexts (refresh ptr NULL: clear) */
    bool set_expires;               /* expires_at given (may be null) */
    adi_str_t expires;              /* its value, ptr NULL for null */
} change_t;

static adi_err update(adi_ctx_t *ctx, const change_t *c, vault_credential *rep, adi_error_t *err)
{
    if (!vault_is_admin(ctx->principal))
        return adi_error_set(err, ADI_FORBIDDEN, VAULT_MSG_NOT_ADMIN);
    adi_str_t tid;
    adi_err rc = caller_tenant(ctx, &tid, err);
    if (rc != ADI_OK)
        return rc;
    if (!adi_uuid_valid(c->id))
        return adi_error_set(err, ADI_NOT_FOUND, VAULT_MSG_NOT_FOUND);
    adi_db_res_t *res = NULL;
    rc = adi_db_exec(ctx->db, ctx->pool,
                     "SELECT id, dek_version FROM vault.platform_credentials "
                     "WHERE id = $1::uuid FOR UPDATE",
                     1, &c->id, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_NOT_FOUND, VAULT_MSG_NOT_FOUND);
    adi_str_t cid = adi_db_get(res, 0, 0);
    adi_str_t version = adi_db_get(res, 0, 1);

    adi_str_t access = ADI_STR_NULL, refresh = ADI_STR_NULL;
    if (c->set_access || (c->set_refresh && c->refresh.ptr != NULL)) {
        adi_secret_t key;
        rc = vault_dek_version(ctx, tid, atoi(version.ptr), &key, err);
        if (rc != ADI_OK)
            return rc;
        if (c->set_access)
            rc = vault_seal(ctx->pool, &key, tid, cid, "access_token", c->access, &access, err);
        if (rc == ADI_OK && c->set_refresh && c->refresh.ptr != NULL)
            rc = vault_seal(ctx->pool, &key, tid, cid, "refresh_token", c->refresh, &refresh, err);
        adi_secret_dispose(&key);
        if (rc != ADI_OK)
            return rc;
    }
    adi_str_t p[10] = {cid,
                       c->set_provider ? ADI_STR("1") : ADI_STR("0"),
                       c->provider,
                       c->set_account ? ADI_STR("1") : ADI_STR("0"),
                       c->account_id,
                       access,
                       c->set_refresh ? ADI_STR("1") : ADI_STR("0"),
                       refresh,
                       c->set_expires ? ADI_STR("1") : ADI_STR("0"),
                       c->expires};
    static const adi_db_type types[10] = {ADI_DB_TEXT, ADI_DB_TEXT,  ADI_DB_TEXT, ADI_DB_TEXT,
                                          ADI_DB_TEXT, ADI_DB_BYTEA, ADI_DB_TEXT, ADI_DB_BYTEA,
                                          ADI_DB_TEXT, ADI_DB_TEXT};
    rc = adi_db_exec_typed(
        ctx->db, ctx->pool,
        "UPDATE vault.platform_credentials SET "
        "provider = CASE WHEN $2 = '1' THEN $3 ELSE provider END, "
        "account_id = CASE WHEN $4 = '1' THEN $5 ELSE account_id END, "
        "access_token = coalesce($6, access_token), "
        "refresh_token = CASE WHEN $7 = '1' THEN $8 ELSE refresh_token END, "
        "expires_at = CASE WHEN $9 = '1' THEN $10::timestamptz ELSE expires_at END, "
        "updated_at = now() WHERE id = $1::uuid RETURNING " CRED_COLS,
        10, p, types, &res, err);
    if (rc != ADI_OK)
        return write_error(ctx, rc, err);
    fill(ctx->pool, res, rep);
    vault_audit(ctx, "credential_updated", rep->id, rep->provider, rep->account_id);
    return ADI_OK;
}

static adi_err op_put(adi_ctx_t *ctx, const vault_put_req *req, vault_credential *rep,
                      adi_error_t *err)
{
    change_t c = {
        .id = req->id,
        .set_provider = true,
        .provider = req->provider,
        .set_account = true,
        .account_id = req->account_id,
        .set_access = true,
        .access = req->access_token,
        .set_refresh = ADI_HAS(vault_put_req, req, refresh_token),
        .refresh =
            ADI_IS_NULL(vault_put_req, req, refresh_token) ? ADI_STR_NULL : req->refresh_token,
        .set_expires = ADI_HAS(vault_put_req, req, expires_at),
        .expires = ADI_IS_NULL(vault_put_req, req, expires_at) ? ADI_STR_NULL : req->expires_at,
    };
    return update(ctx, &c, rep, err);
}

static adi_err op_patch(adi_ctx_t *ctx, const vault_patch_req *req, vault_credential *rep,
                        adi_error_t *err)
{
    change_t c = {
        .id = req->id,
        .set_provider = ADI_HAS(vault_patch_req, req, provider),
        .provider = req->provider,
        .set_account = ADI_HAS(vault_patch_req, req, account_id),
        .account_id = req->account_id,
        .set_access = ADI_HAS(vault_patch_req, req, access_token),
        .access = req->access_token,
        .set_refresh = ADI_HAS(vault_patch_req, req, refresh_token),
        .refresh =
            ADI_IS_NULL(vault_patch_req, req, refresh_token) ? ADI_STR_NULL : req->refresh_token,
        .set_expires = ADI_HAS(vault_patch_req, req, expires_at),
        .expires = ADI_IS_NULL(vault_patch_req, req, expires_at) ? ADI_STR_NULL : req->expires_at,
    };
    return update(ctx, &c, rep, err);
}

static adi_err op_delete(adi_ctx_t *ctx, const vault_id_req *req, adi_empty *rep, adi_error_t *err)
{
    (void)rep;
    if (!vault_is_admin(ctx->principal))
        return adi_error_set(err, ADI_FORBIDDEN, VAULT_MSG_NOT_ADMIN);
    if (!adi_uuid_valid(req->id))
        return adi_error_set(err, ADI_NOT_FOUND, VAULT_MSG_NOT_FOUND);
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "DELETE FROM vault.platform_credentials WHERE id = $1::uuid "
                             "RETURNING id, provider, account_id",
                             1, &req->id, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_NOT_FOUND, VAULT_MSG_NOT_FOUND);
    vault_audit(ctx, "credential_deleted", adi_db_get(res, 0, 0), adi_db_get(res, 0, 1),
                adi_db_get(res, 0, 2));
    ctx->status = 204;
    return ADI_OK;
}

/* adi_svc_sensitive callback: wipes the plaintext tokens of a vault_secret reply. */
static void wipe_secret(void *arg)
{
    vault_secret *rep = arg;
    vault_wipe(rep->access_token);
    vault_wipe(rep->refresh_token);
}

#define SECRET_COLS                                                                                \
    "id, tenant_id, provider, account_id, access_token, refresh_token, " VAULT_US(                 \
        "expires_at") ", dek_version"

/*
 * Fills `rep` from row 0 of `res` (SECRET_COLS) with its tokens opened. The plaintexts live in
 * ctx->pool only until the reply is encoded: they are wiped then (adi_svc_sensitive).
 */
static adi_err open_secret(adi_ctx_t *ctx, const adi_db_res_t *res, vault_secret *rep,
                           adi_error_t *err)
{
    adi_svc_sensitive(ctx, wipe_secret, rep);
    rep->id = adi_db_get(res, 0, 0);
    rep->tenant_id = adi_db_get(res, 0, 1);
    rep->provider = adi_db_get(res, 0, 2);
    rep->account_id = adi_db_get(res, 0, 3);
    rep->expires_at = vault_iso(ctx->pool, adi_db_get(res, 0, 6));
    adi_secret_t key;
    adi_err rc = vault_dek_version(ctx, rep->tenant_id, atoi(adi_db_get(res, 0, 7).ptr), &key, err);
    if (rc != ADI_OK)
        return rc;
    rc = vault_open(ctx->pool, &key, rep->tenant_id, rep->id, "access_token",
                    adi_db_get_bytea(res, 0, 4), &rep->access_token, err);
    adi_str_t rbox = adi_db_get_bytea(res, 0, 5);
    rep->refresh_token = ADI_STR_NULL;
    if (rc == ADI_OK && rbox.ptr != NULL)
        rc = vault_open(ctx->pool, &key, rep->tenant_id, rep->id, "refresh_token", rbox,
                        &rep->refresh_token, err);
    adi_secret_dispose(&key);
    if (rc != ADI_OK)
        adi_log_write(&ctx->log, ADI_LOG_ERROR, "vault.decrypt_failed", "credential %s",
                      rep->id.ptr);
    return rc;
}

/* Internal (service callers only): the credential with its tokens opened. */
static adi_err op_decrypt(adi_ctx_t *ctx, const vault_id_req *req, vault_secret *rep,
                          adi_error_t *err)
{
    adi_str_t tid;
    adi_err rc = caller_tenant(ctx, &tid, err);
    if (rc != ADI_OK)
        return rc;
    if (!adi_uuid_valid(req->id))
        return adi_error_set(err, ADI_NOT_FOUND, VAULT_MSG_NOT_FOUND);
    adi_db_res_t *res = NULL;
    rc = adi_db_exec(ctx->db, ctx->pool,
                     "SELECT " SECRET_COLS " FROM vault.platform_credentials WHERE id = $1::uuid",
                     1, &req->id, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_NOT_FOUND, VAULT_MSG_NOT_FOUND);
    return open_secret(ctx, res, rep, err);
}

/*
 * Internal (service callers only, tenant-scoped): the caller's tenant's newest credential (by
 * creation time) of the provider, tokens opened, for the task runner.
 */
static adi_err op_decrypt_provider(adi_ctx_t *ctx, const vault_provider_req *req, vault_secret *rep,
                                   adi_error_t *err)
{
    adi_str_t tid;
    adi_err rc = caller_tenant(ctx, &tid, err);
    if (rc != ADI_OK)
        return rc;
    adi_db_res_t *res = NULL;
    rc = adi_db_exec(ctx->db, ctx->pool,
                     "SELECT " SECRET_COLS " FROM vault.platform_credentials WHERE provider = $1 "
                     "ORDER BY created_at DESC, id DESC LIMIT 1",
                     1, &req->provider, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_NOT_FOUND, VAULT_MSG_NOT_FOUND);
    return open_secret(ctx, res, rep, err);
}

ADI_SVC_HANDLER(vault_list_row, adi_op_vault_list, adi_empty, vault_credential_list, op_list);
ADI_SVC_HANDLER(vault_get_row, adi_op_vault_get, vault_id_req, vault_credential, op_get);
ADI_SVC_HANDLER(vault_create_row, adi_op_vault_create, vault_create_req, vault_credential,
                op_create);
ADI_SVC_HANDLER(vault_put_row, adi_op_vault_put, vault_put_req, vault_credential, op_put);
ADI_SVC_HANDLER(vault_patch_row, adi_op_vault_patch, vault_patch_req, vault_credential, op_patch);
ADI_SVC_HANDLER(vault_delete_row, adi_op_vault_delete, vault_id_req, adi_empty, op_delete);
ADI_SVC_HANDLER(vault_decrypt_row, adi_op_vault_decrypt, vault_id_req, vault_secret, op_decrypt);
ADI_SVC_HANDLER(vault_decrypt_provider_row, adi_op_vault_decrypt_provider, vault_provider_req,
                vault_secret, op_decrypt_provider);
