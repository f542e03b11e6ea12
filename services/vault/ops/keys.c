/* SPDX-License-Identifier: MIT */
/*
 * The vault's other internal key operations (service callers only; libs/svc refuses anyone else
 * with 403):
 *
 *   vault.key_tenants  the ids of the tenants that have a data key, in id order (through the
 *                      definer function vault.key_tenants(); ids only). adi-admin lists them
 *                      first, then rotates or rewraps one tenant per call, showing progress.
 *   vault.rewrap       after a KMS key change (a new KMS_KEY_ID, or a new local master key with
 *                      the old one moved to KMS_LOCAL_PREVIOUS_KEYS): every stored wrapped DEK
 *                      version of every tenant (or only of tenant_id) re-wrapped with
 *                      adi_kms_rewrap (KMS ReEncrypt: the DEK never leaves the KMS) under the
 *                      current key, kms_key_id updated, one transaction per tenant (its key rows
 *                      locked FOR NO KEY UPDATE, so writers, which take the current one FOR
 *                      KEY SHARE, go on). Credentials are not touched: the DEKs themselves do
 *                      not change, so neither do the ciphertexts, nor the cached DEKs. A tenant
 *                      whose KMS call fails is rolled back (still wrapped as before, still
 *                      readable while the old key is) and listed in `failed`; the others go on.
 *
 * rewrap runs without the request transaction (ADI_SVC_NOTX) and is idempotent by request id
 * (ADI_SVC_IDEMPOTENT), so a redelivered long run is answered, not repeated.
 */
#include <stdlib.h>
#include <string.h>

#include "vault.h"

/* Re-wraps every key version of tenant `tid` inside an open transaction; counts them in `*keys`
   (a vault_tenant_fn: the DEK versions stay as they are). */
static adi_err rewrap_tenant(adi_ctx_t *ctx, adi_str_t tid, int64_t *keys, int *version,
                             adi_error_t *err)
{
    (void)version;
    vault_app_t *app = ctx->app;
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "SELECT version, wrapped_dek FROM vault.tenant_keys "
                             "WHERE tenant_id = $1::uuid ORDER BY version FOR NO KEY UPDATE",
                             1, &tid, &res, err);
    if (rc != ADI_OK)
        return rc;
    int n = adi_db_nrows(res);
    adi_str_t key_id = adi_str_c(adi_kms_key_id(app->kms));
    for (int i = 0; i < n; i++) {
        unsigned char out[ADI_KMS_WRAPPED_MAX];
        size_t olen = 0;
        adi_error_t inner;
        adi_error_clear(&inner);
        rc = adi_kms_rewrap(app->kms, tid, adi_db_get_bytea(res, i, 1), out, &olen, &inner);
        if (rc != ADI_OK) {
            adi_log_write(&ctx->log, ADI_LOG_ERROR, "vault.kms_failed", "rewrap version=%s: %s",
                          adi_db_get(res, i, 0).ptr, adi_err_name(rc));
            return rc == ADI_INVALID ? adi_error_set(err, ADI_INTERNAL, VAULT_MSG_DECRYPT)
                                     : adi_error_set(err, ADI_UNAVAILABLE, VAULT_MSG_KMS_DOWN);
        }
        adi_str_t p[4] = {tid, adi_db_get(res, i, 0), {(const char *)out, olen}, key_id};
        static const adi_db_type types[4] = {ADI_DB_TEXT, ADI_DB_TEXT, ADI_DB_BYTEA, ADI_DB_TEXT};
        rc = adi_db_exec_typed(ctx->db, NULL,
                               "UPDATE vault.tenant_keys SET wrapped_dek = $3, kms_key_id = $4 "
                               "WHERE tenant_id = $1::uuid AND version = $2::int",
                               4, p, types, NULL, err);
        if (rc != ADI_OK)
            return rc;
    }
    *keys += n;
    return ADI_OK;
}

static adi_err op_rewrap(adi_ctx_t *ctx, const vault_keys_req *req, vault_rewrap_rep *rep,
                         adi_error_t *err)
{
    adi_err rc = vault_each_tenant(ctx, req->tenant_id, rewrap_tenant, "vault.rewrap_failed",
                                   &rep->tenants, &rep->keys, &rep->failed, err);
    if (rc != ADI_OK)
        return rc;
    adi_log_write(&ctx->log, ADI_LOG_INFO, "vault.rewrapped",
                  "%lld tenants, %lld keys under %s, %zu failed", (long long)rep->tenants,
                  (long long)rep->keys, adi_kms_key_id(((vault_app_t *)ctx->app)->kms),
                  rep->failed.n);
    return ADI_OK;
}

static adi_err op_key_tenants(adi_ctx_t *ctx, const adi_empty *req, vault_tenant_list *rep,
                              adi_error_t *err)
{
    (void)req;
    return vault_key_tenants(ctx, ADI_STR_NULL, &rep->tenant_ids, err);
}

ADI_SVC_HANDLER_F(vault_rewrap_row, adi_op_vault_rewrap, vault_keys_req, vault_rewrap_rep,
                  op_rewrap, ADI_SVC_NOTX | ADI_SVC_IDEMPOTENT);
ADI_SVC_HANDLER(vault_key_tenants_row, adi_op_vault_key_tenants, adi_empty, vault_tenant_list,
                op_key_tenants);
