/* SPDX-License-Identifier: MIT */
/*
 * vault.rotate (internal, service callers only): gives every tenant that has a data key (or only
 * the request's tenant_id) a new one and re-encrypts all of its credentials under it, one
 * transaction per tenant:
 *
 *   BEGIN (scoped to the tenant) -> lock the tenant's key rows FOR UPDATE -> GenerateDataKey ->
 *   new version -> every credential opened with the DEK of its version, sealed under the new one
 *   (fresh nonces), dek_version moved -> old versions no credential references any more DELETED
 *   -> COMMIT -> their cached DEKs wiped.
 *
 * Deleting the old wrapped DEKs is crypto-shredding: once the rotation has committed, the old
 * DEKs exist nowhere (no wrapped copy in the database, no unwrapped copy in this process's cache),
 * so a ciphertext sealed under them (a backup, a leaked dump) can no longer be opened. Writers
 * take the current key row FOR KEY SHARE (vault_dek_current), so no credential is ever stored
 * under a version that a concurrent rotation prunes.
 *
 * A tenant whose KMS call or re-encryption fails is rolled back (it keeps its old key, every
 * credential still opens) and listed in the reply's `failed`; the others rotate. The handler runs
 * without the request transaction (ADI_SVC_NOTX) and lists the tenants through the definer
 * function vault.key_tenants(). It is idempotent by request id (ADI_SVC_IDEMPOTENT): a
 * redelivered or retried rotate with the same request id is answered with the stored reply
 * instead of rotating again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vault.h"

/*
 * Rotates one tenant inside an open transaction; adds to `*ncreds` what it re-encrypted and sets
 * `*version` to the new version (0 when the tenant's keys went away meanwhile).
 */
static adi_err rotate_tenant(adi_ctx_t *ctx, adi_str_t tid, int64_t *ncreds, int *version,
                             adi_error_t *err)
{
    vault_app_t *app = ctx->app;
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "SELECT max(version) FROM (SELECT version FROM vault.tenant_keys "
                             "WHERE tenant_id = $1::uuid FOR UPDATE) k",
                             1, &tid, &res, err);
    if (rc != ADI_OK)
        return rc;
    adi_str_t cur = adi_db_get(res, 0, 0);
    if (cur.ptr == NULL)
        return ADI_OK; /* its keys went away meanwhile */
    int next = atoi(cur.ptr) + 1;

    unsigned char wrapped[ADI_KMS_WRAPPED_MAX];
    size_t wlen = 0;
    adi_secret_t fresh;
    adi_error_t inner;
    adi_error_clear(&inner);
    rc = adi_kms_generate(app->kms, tid, &fresh, wrapped, &wlen, &inner);
    if (rc != ADI_OK)
        return adi_error_set(err, ADI_UNAVAILABLE, VAULT_MSG_KMS_DOWN);
    char vtext[16];
    snprintf(vtext, sizeof(vtext), "%d", next);
    adi_str_t kp[4] = {
        tid, adi_str_c(vtext), {(const char *)wrapped, wlen}, adi_str_c(adi_kms_key_id(app->kms))};
    static const adi_db_type ktypes[4] = {ADI_DB_TEXT, ADI_DB_TEXT, ADI_DB_BYTEA, ADI_DB_TEXT};
    rc = adi_db_exec_typed(ctx->db, NULL,
                           "INSERT INTO vault.tenant_keys (tenant_id, version, wrapped_dek, "
                           "kms_key_id) VALUES ($1::uuid, $2::int, $3, $4)",
                           4, kp, ktypes, NULL, err);
    if (rc == ADI_OK)
        rc = adi_db_exec(ctx->db, ctx->pool,
                         "SELECT id, access_token, refresh_token, dek_version "
                         "FROM vault.platform_credentials WHERE tenant_id = $1::uuid "
                         "ORDER BY id FOR UPDATE",
                         1, &tid, &res, err);
    int n = rc == ADI_OK ? adi_db_nrows(res) : 0;
    for (int i = 0; i < n && rc == ADI_OK; i++) {
        adi_str_t cid = adi_db_get(res, i, 0);
        adi_secret_t old;
        rc = vault_dek_version(ctx, tid, atoi(adi_db_get(res, i, 3).ptr), &old, err);
        if (rc != ADI_OK)
            break;
        adi_str_t access = ADI_STR_NULL, refresh = ADI_STR_NULL;
        adi_str_t rbox = adi_db_get_bytea(res, i, 2);
        rc = vault_open(ctx->pool, &old, tid, cid, "access_token", adi_db_get_bytea(res, i, 1),
                        &access, err);
        if (rc == ADI_OK && rbox.ptr != NULL)
            rc = vault_open(ctx->pool, &old, tid, cid, "refresh_token", rbox, &refresh, err);
        adi_secret_dispose(&old);
        adi_str_t up[4] = {cid, ADI_STR_NULL, ADI_STR_NULL, adi_str_c(vtext)};
        if (rc == ADI_OK)
            rc = vault_seal(ctx->pool, &fresh, tid, cid, "access_token", access, &up[1], err);
        if (rc == ADI_OK && refresh.ptr != NULL)
            rc = vault_seal(ctx->pool, &fresh, tid, cid, "refresh_token", refresh, &up[2], err);
        vault_wipe(access);
        vault_wipe(refresh);
        static const adi_db_type utypes[4] = {ADI_DB_TEXT, ADI_DB_BYTEA, ADI_DB_BYTEA, ADI_DB_TEXT};
        if (rc == ADI_OK)
            rc = adi_db_exec_typed(ctx->db, NULL,
                                   "UPDATE vault.platform_credentials SET access_token = $2, "
                                   "refresh_token = $3, dek_version = $4::int "
                                   "WHERE id = $1::uuid",
                                   4, up, utypes, NULL, err);
    }
    /* Crypto-shredding: the versions nothing references any more go (a referenced one, which the
       locks above rule out, would only be marked rotated). */
    if (rc == ADI_OK)
        rc = adi_db_exec(ctx->db, NULL,
                         "DELETE FROM vault.tenant_keys k WHERE k.tenant_id = $1::uuid "
                         "AND k.version < $2::int AND NOT EXISTS (SELECT 1 FROM "
                         "vault.platform_credentials c WHERE c.tenant_id = k.tenant_id "
                         "AND c.dek_version = k.version)",
                         2, kp, NULL, err);
    if (rc == ADI_OK)
        rc = adi_db_exec(ctx->db, NULL,
                         "UPDATE vault.tenant_keys SET rotated_at = now() "
                         "WHERE tenant_id = $1::uuid AND version < $2::int AND rotated_at IS NULL",
                         2, kp, NULL, err);
    adi_secret_dispose(&fresh);
    if (rc == ADI_OK) {
        *ncreds += n;
        *version = next;
    }
    return rc;
}

static adi_err op_rotate(adi_ctx_t *ctx, const vault_keys_req *req, vault_rotate_rep *rep,
                         adi_error_t *err)
{
    adi_err rc = vault_each_tenant(ctx, req->tenant_id, rotate_tenant, "vault.rotate_failed",
                                   &rep->tenants, &rep->credentials, &rep->failed, err);
    if (rc != ADI_OK)
        return rc;
    adi_log_write(&ctx->log, ADI_LOG_INFO, "vault.rotated",
                  "%lld tenants, %lld credentials, %zu failed", (long long)rep->tenants,
                  (long long)rep->credentials, rep->failed.n);
    return ADI_OK;
}

ADI_SVC_HANDLER_F(vault_rotate_row, adi_op_vault_rotate, vault_keys_req, vault_rotate_rep,
                  op_rotate, ADI_SVC_NOTX | ADI_SVC_IDEMPOTENT);
