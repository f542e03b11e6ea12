/* SPDX-License-Identifier: MIT */
/*
 * The vault service's configuration, state and shared helpers (see vault.h): the KMS provider,
 * the bounded, expiring cache of unwrapped DEKs (wiped on eviction and at shutdown), per-tenant
 * DEKs made on first use, sealing and opening tokens, times and audit events.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "adi/keys.h"
#include "vault.h"

/* ---- configuration ---------------------------------------------------------------------- */

#define CFG(field, env, type, def, flags, min, max, help)                                          \
    ADI_CFG(vault_cfg_t, field, env, type, def, flags, min, max, help)

const adi_cfg_row_t vault_cfg_rows[] = {
    CFG(kms_provider, "KMS_PROVIDER", STR, "local", 0, 0, 0, "KMS provider: local or aws"),
    CFG(kms_local_key, "KMS_LOCAL_KEY", STR, "", ADI_CFG_SECRET, 0, 0,
        "local provider: base64 of the 32-byte master key"),
    CFG(kms_local_key_file, "KMS_LOCAL_KEY_FILE", STR, "", 0, 0, 0,
        "local provider: file holding the base64 master key (when KMS_LOCAL_KEY is unset)"),
    CFG(kms_local_previous, "KMS_LOCAL_PREVIOUS_KEYS", STR, "", ADI_CFG_SECRET, 0, 0,
        "local provider: comma list of former base64 master keys that still unwrap (until "
        "`adi-admin rewrap-keys` has run)"),
    CFG(kms_key_id, "KMS_KEY_ID", STR, "", 0, 0, 0,
        "aws provider: KMS key id, ARN or alias new data keys are wrapped under (required)"),
    CFG(aws_region, "AWS_REGION", STR, "", 0, 0, 0, "aws provider: region (required)"),
    CFG(kms_endpoint, "KMS_ENDPOINT", STR, "", 0, 0, 0,
        "aws provider: KMS endpoint URL (default `https://kms.<region>.amazonaws.com`)"),
    CFG(sts_endpoint, "AWS_STS_ENDPOINT", STR, "", 0, 0, 0,
        "aws provider: STS endpoint URL for web identity (default "
        "`https://sts.<region>.amazonaws.com`)"),
    CFG(imds_endpoint, "AWS_EC2_METADATA_SERVICE_ENDPOINT", STR, "", 0, 0, 0,
        "aws provider: instance metadata endpoint (default `http://169.254.169.254`)"),
    CFG(imds_disabled, "AWS_EC2_METADATA_DISABLED", BOOL, "false", 0, 0, 0,
        "aws provider: never ask the instance metadata service for credentials"),
    CFG(aws_access_key_id, "AWS_ACCESS_KEY_ID", STR, "", 0, 0, 0,
        "aws provider: access key id (with AWS_SECRET_ACCESS_KEY; else the credential chain)"),
    CFG(aws_secret_key, "AWS_SECRET_ACCESS_KEY", STR, "", ADI_CFG_SECRET, 0, 0,
        "aws provider: secret access key"),
    CFG(aws_session_token, "AWS_SESSION_TOKEN", STR, "", ADI_CFG_SECRET, 0, 0,
        "aws provider: session token of temporary credentials"),
    CFG(aws_profile, "AWS_PROFILE", STR, "", 0, 0, 0,
        "aws provider: profile of the shared credentials file (default `default`)"),
    CFG(aws_shared_creds, "AWS_SHARED_CREDENTIALS_FILE", STR, "", 0, 0, 0,
        "aws provider: shared credentials file (default `~/.aws/credentials`)"),
    CFG(aws_role_arn, "AWS_ROLE_ARN", STR, "", 0, 0, 0,
        "aws provider: role assumed with web identity (EKS), with AWS_WEB_IDENTITY_TOKEN_FILE"),
    CFG(aws_web_token_file, "AWS_WEB_IDENTITY_TOKEN_FILE", STR, "", 0, 0, 0,
        "aws provider: file holding the web identity token"),
    CFG(aws_session_name, "AWS_ROLE_SESSION_NAME", STR, "", 0, 0, 0,
        "aws provider: session name of the assumed role (default `adi-vault-<pid>`)"),
    CFG(kms_timeout_ms, "KMS_TIMEOUT_MS", INT, "5000", 0, 100, 600000,
        "aws provider: timeout of one HTTP attempt, milliseconds"),
    CFG(kms_max_attempts, "KMS_MAX_ATTEMPTS", INT, "4", 0, 1, 20,
        "aws provider: attempts per KMS operation (throttling, 5xx and transport errors retried)"),
    CFG(kms_retry_base_ms, "KMS_RETRY_BASE_MS", INT, "50", 0, 1, 60000,
        "aws provider: first backoff ceiling in milliseconds (doubles per retry, full jitter)"),
    CFG(dek_cache_ttl_s, "DEK_CACHE_TTL_S", INT, "300", 0, 1, 86400,
        "seconds an unwrapped data key stays cached"),
    CFG(dek_cache_size, "DEK_CACHE_SIZE", INT, "1024", 0, 0, 1000000,
        "most unwrapped data keys cached at once (0 = no cache)"),
};
const size_t vault_ncfg_rows = sizeof(vault_cfg_rows) / sizeof(vault_cfg_rows[0]);

const adi_svc_handler_t *const vault_handlers[] = {
    &vault_list_row,   &vault_get_row,    &vault_create_row,      &vault_put_row,
    &vault_patch_row,  &vault_delete_row, &vault_decrypt_row,     &vault_decrypt_provider_row,
    &vault_rotate_row, &vault_rewrap_row, &vault_key_tenants_row, NULL,
};

void vault_cfg_defaults(vault_cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->kms_provider = "local";
    cfg->kms_local_key = "";
    cfg->kms_local_key_file = "";
    cfg->kms_local_previous = "";
    cfg->kms_key_id = "";
    cfg->aws_region = "";
    cfg->kms_endpoint = "";
    cfg->sts_endpoint = "";
    cfg->imds_endpoint = "";
    cfg->aws_access_key_id = "";
    cfg->aws_secret_key = "";
    cfg->aws_session_token = "";
    cfg->aws_profile = "";
    cfg->aws_shared_creds = "";
    cfg->aws_role_arn = "";
    cfg->aws_web_token_file = "";
    cfg->aws_session_name = "";
    cfg->kms_timeout_ms = 5000;
    cfg->kms_max_attempts = 4;
    cfg->kms_retry_base_ms = 50;
    cfg->dek_cache_ttl_s = 300;
    cfg->dek_cache_size = 1024;
}

adi_err vault_init(const adi_svc_config_t *common, void *cfg, void **app_out, adi_error_t *err)
{
    (void)common;
    const vault_cfg_t *c = cfg;
    *app_out = NULL;
    adi_kms_config_t kc = {
        .provider = c->kms_provider,
        .local_key = c->kms_local_key,
        .local_key_file = c->kms_local_key_file,
        .local_previous_keys = c->kms_local_previous,
        .key_id = c->kms_key_id,
        .region = c->aws_region,
        .endpoint = c->kms_endpoint,
        .sts_endpoint = c->sts_endpoint,
        .imds_endpoint = c->imds_endpoint,
        .imds_disabled = c->imds_disabled,
        .access_key_id = c->aws_access_key_id,
        .secret_access_key = c->aws_secret_key,
        .session_token = c->aws_session_token,
        .profile = c->aws_profile,
        .shared_credentials_file = c->aws_shared_creds,
        .role_arn = c->aws_role_arn,
        .web_identity_token_file = c->aws_web_token_file,
        .role_session_name = c->aws_session_name,
        .timeout_ms = (int)c->kms_timeout_ms,
        .max_attempts = (int)c->kms_max_attempts,
        .retry_base_ms = (int)c->kms_retry_base_ms,
    };
    adi_kms_t *kms = NULL;
    adi_err rc = adi_kms_new(&kc, &kms, err);
    if (rc != ADI_OK)
        return rc;
    vault_app_t *app = adi_xcalloc(1, sizeof(*app));
    app->kms = kms;
    app->nslots = (size_t)c->dek_cache_size;
    app->slots = app->nslots > 0 ? adi_xcalloc(app->nslots, sizeof(vault_dek_slot_t)) : NULL;
    app->ttl_ms = c->dek_cache_ttl_s * 1000;
    pthread_mutex_init(&app->mu, NULL);
    *app_out = app;
    return ADI_OK;
}

static void slot_wipe(vault_dek_slot_t *s)
{
    if (s->tenant[0] != '\0')
        adi_secret_dispose(&s->key);
    memset(s, 0, sizeof(*s));
}

void vault_fini(void *p)
{
    vault_app_t *app = p;
    if (app == NULL)
        return;
    for (size_t i = 0; i < app->nslots; i++)
        slot_wipe(&app->slots[i]);
    free(app->slots);
    pthread_mutex_destroy(&app->mu);
    adi_kms_free(app->kms);
    free(app);
}

/* ---- DEK cache -------------------------------------------------------------------------- */

/* Copies the cached DEK of (tenant, version) into `key`; false when absent or expired. */
static bool cache_get(vault_app_t *app, adi_str_t tenant, int version, adi_secret_t *key)
{
    bool found = false;
    int64_t now = adi_now_ms();
    pthread_mutex_lock(&app->mu);
    for (size_t i = 0; i < app->nslots; i++) {
        vault_dek_slot_t *s = &app->slots[i];
        if (s->tenant[0] == '\0')
            continue;
        if (s->expires_ms <= now) {
            slot_wipe(s);
            continue;
        }
        if (s->version == version && adi_str_eq_c(tenant, s->tenant)) {
            adi_secret_init(key, s->key.ptr, s->key.len);
            s->used_ms = now;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&app->mu);
    return found;
}

/* Caches a copy of `key`, evicting (and wiping) the least recently used slot when full. */
static void cache_put(vault_app_t *app, adi_str_t tenant, int version, const adi_secret_t *key)
{
    if (app->nslots == 0 || tenant.len >= sizeof(app->slots[0].tenant))
        return;
    int64_t now = adi_now_ms();
    pthread_mutex_lock(&app->mu);
    vault_dek_slot_t *victim = &app->slots[0];
    for (size_t i = 0; i < app->nslots; i++) {
        vault_dek_slot_t *s = &app->slots[i];
        if (s->tenant[0] != '\0' && s->version == version && adi_str_eq_c(tenant, s->tenant)) {
            victim = s; /* another worker cached it meanwhile: refresh it */
            break;
        }
        if (s->tenant[0] == '\0' || s->expires_ms <= now) {
            victim = s;
            break;
        }
        if (s->used_ms < victim->used_ms)
            victim = s;
    }
    slot_wipe(victim);
    memcpy(victim->tenant, tenant.ptr, tenant.len);
    victim->tenant[tenant.len] = '\0';
    victim->version = version;
    adi_secret_init(&victim->key, key->ptr, key->len);
    victim->expires_ms = now + app->ttl_ms;
    victim->used_ms = now;
    pthread_mutex_unlock(&app->mu);
}

void vault_cache_forget(vault_app_t *app, adi_str_t tenant, int below)
{
    pthread_mutex_lock(&app->mu);
    for (size_t i = 0; i < app->nslots; i++) {
        vault_dek_slot_t *s = &app->slots[i];
        if (s->tenant[0] != '\0' && s->version < below && adi_str_eq_c(tenant, s->tenant))
            slot_wipe(s);
    }
    pthread_mutex_unlock(&app->mu);
}

/* ---- data keys -------------------------------------------------------------------------- */

/* Unwraps a stored DEK (through the cache). */
static adi_err dek_unwrap(adi_ctx_t *ctx, adi_str_t tenant, int version, adi_str_t wrapped,
                          adi_secret_t *key, adi_error_t *err)
{
    vault_app_t *app = ctx->app;
    if (cache_get(app, tenant, version, key))
        return ADI_OK;
    adi_error_t inner;
    adi_error_clear(&inner);
    adi_err rc = adi_kms_unwrap(app->kms, tenant, wrapped, key, &inner);
    if (rc == ADI_UNAVAILABLE || rc == ADI_TIMEOUT) {
        adi_log_write(&ctx->log, ADI_LOG_ERROR, "vault.kms_failed", "unwrap version=%d: %s",
                      version, adi_err_name(rc));
        return adi_error_set(err, ADI_UNAVAILABLE, VAULT_MSG_KMS_DOWN);
    }
    if (rc != ADI_OK) {
        adi_log_write(&ctx->log, ADI_LOG_ERROR, "vault.dek_unwrap_failed", "version=%d", version);
        return adi_error_set(err, ADI_INTERNAL, VAULT_MSG_DECRYPT);
    }
    cache_put(app, tenant, version, key);
    return ADI_OK;
}

adi_err vault_dek_version(adi_ctx_t *ctx, adi_str_t tenant_id, int version, adi_secret_t *key,
                          adi_error_t *err)
{
    vault_app_t *app = ctx->app;
    if (cache_get(app, tenant_id, version, key))
        return ADI_OK;
    char vtext[16];
    snprintf(vtext, sizeof(vtext), "%d", version);
    adi_str_t p[2] = {tenant_id, adi_str_c(vtext)};
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "SELECT wrapped_dek FROM vault.tenant_keys "
                             "WHERE tenant_id = $1::uuid AND version = $2::int",
                             2, p, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0)
        return adi_error_set(err, ADI_INTERNAL, VAULT_MSG_DECRYPT);
    return dek_unwrap(ctx, tenant_id, version, adi_db_get_bytea(res, 0, 0), key, err);
}

adi_err vault_dek_current(adi_ctx_t *ctx, adi_str_t tenant_id, bool create, adi_secret_t *key,
                          int *version, adi_error_t *err)
{
    static const char sel[] = "SELECT version, wrapped_dek FROM vault.tenant_keys "
                              "WHERE tenant_id = $1::uuid ORDER BY version DESC LIMIT 1 "
                              "FOR KEY SHARE";
    vault_app_t *app = ctx->app;
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool, sel, 1, &tenant_id, &res, err);
    if (rc != ADI_OK)
        return rc;
    if (adi_db_nrows(res) == 0) {
        if (!create)
            return adi_error_set(err, ADI_NOT_FOUND, VAULT_MSG_NOT_FOUND);
        unsigned char wrapped[ADI_KMS_WRAPPED_MAX];
        size_t wlen = 0;
        adi_secret_t fresh;
        adi_error_t inner;
        adi_error_clear(&inner);
        rc = adi_kms_generate(app->kms, tenant_id, &fresh, wrapped, &wlen, &inner);
        if (rc != ADI_OK) {
            adi_log_write(&ctx->log, ADI_LOG_ERROR, "vault.kms_failed", "generate: %s",
                          adi_err_name(rc));
            return adi_error_set(err, ADI_UNAVAILABLE, VAULT_MSG_KMS_DOWN);
        }
        adi_secret_dispose(&fresh); /* taken back from the table below: one winner per tenant */
        adi_str_t p[3] = {
            tenant_id, {(const char *)wrapped, wlen}, adi_str_c(adi_kms_key_id(app->kms))};
        static const adi_db_type types[3] = {ADI_DB_TEXT, ADI_DB_BYTEA, ADI_DB_TEXT};
        rc = adi_db_exec_typed(ctx->db, NULL,
                               "INSERT INTO vault.tenant_keys (tenant_id, version, wrapped_dek, "
                               "kms_key_id) SELECT $1::uuid, 1, $2, $3 WHERE NOT EXISTS "
                               "(SELECT 1 FROM vault.tenant_keys WHERE tenant_id = $1::uuid) "
                               "ON CONFLICT DO NOTHING",
                               3, p, types, NULL, err);
        if (rc != ADI_OK)
            return rc;
        rc = adi_db_exec(ctx->db, ctx->pool, sel, 1, &tenant_id, &res, err);
        if (rc != ADI_OK)
            return rc;
        if (adi_db_nrows(res) == 0)
            return adi_error_set(err, ADI_INTERNAL, VAULT_MSG_DECRYPT);
    }
    *version = atoi(adi_db_get(res, 0, 0).ptr);
    return dek_unwrap(ctx, tenant_id, *version, adi_db_get_bytea(res, 0, 1), key, err);
}

/* ---- sealing ---------------------------------------------------------------------------- */

/* tenant_id|credential_id|field, lower-case ids: the associated data of one token. */
static size_t make_aad(char *out, size_t cap, adi_str_t tenant_id, adi_str_t cred_id,
                       const char *field)
{
    int n = snprintf(out, cap, "%.*s|%.*s|%s", (int)tenant_id.len, tenant_id.ptr, (int)cred_id.len,
                     cred_id.ptr, field);
    size_t len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    for (size_t i = 0; i < len; i++)
        if (out[i] >= 'A' && out[i] <= 'F')
            out[i] = (char)(out[i] - 'A' + 'a');
    return len;
}

adi_err vault_seal(adi_pool_t *pool, const adi_secret_t *key, adi_str_t tenant_id,
                   adi_str_t cred_id, const char *field, adi_str_t token, adi_str_t *box,
                   adi_error_t *err)
{
    char aad[160];
    size_t alen = make_aad(aad, sizeof(aad), tenant_id, cred_id, field);
    size_t cap = token.len + ADI_AEAD_OVERHEAD;
    unsigned char *out = adi_pool_alloc(pool, cap);
    size_t n = 0;
    adi_err rc = adi_aead_seal(key, aad, alen, token.ptr, token.len, out, cap, &n, err);
    if (rc == ADI_OK)
        *box = (adi_str_t){(const char *)out, n};
    return rc;
}

adi_err vault_open(adi_pool_t *pool, const adi_secret_t *key, adi_str_t tenant_id,
                   adi_str_t cred_id, const char *field, adi_str_t box, adi_str_t *token,
                   adi_error_t *err)
{
    char aad[160];
    size_t alen = make_aad(aad, sizeof(aad), tenant_id, cred_id, field);
    size_t cap = box.len + 1;
    unsigned char *out = adi_pool_alloc(pool, cap);
    size_t n = 0;
    adi_error_t inner;
    adi_error_clear(&inner);
    adi_err rc = adi_aead_open(key, aad, alen, (const unsigned char *)box.ptr, box.len, out, cap,
                               &n, &inner);
    if (rc != ADI_OK)
        return adi_error_set(err, ADI_INTERNAL, VAULT_MSG_DECRYPT);
    out[n] = '\0';
    *token = (adi_str_t){(const char *)out, n};
    return ADI_OK;
}

/* ---- tenants of the key operations ------------------------------------------------------- */

adi_err vault_key_tenants(adi_ctx_t *ctx, adi_str_t only, adi_strlist_t *tenants, adi_error_t *err)
{
    tenants->items = NULL;
    tenants->n = 0;
    bool one = only.ptr != NULL && only.len > 0;
    if (one && !adi_uuid_valid(only))
        return adi_error_field(err, "tenant_id", "Must be a valid UUID.");
    if (ctx->db == NULL)
        return adi_error_set(err, ADI_UNAVAILABLE, "The database is unavailable.");
    adi_db_res_t *res = NULL;
    adi_err rc = one ? adi_db_exec(ctx->db, ctx->pool,
                                   "SELECT tenant_id FROM vault.key_tenants() "
                                   "WHERE tenant_id = $1::uuid",
                                   1, &only, &res, err)
                     : adi_db_exec(ctx->db, ctx->pool, "SELECT tenant_id FROM vault.key_tenants()",
                                   0, NULL, &res, err);
    if (rc != ADI_OK)
        return rc;
    int n = adi_db_nrows(res);
    if (one && n == 0)
        return adi_error_set(err, ADI_NOT_FOUND, VAULT_MSG_NOT_FOUND);
    tenants->items = n > 0 ? adi_pool_alloc(ctx->pool, (size_t)n * sizeof(adi_str_t)) : NULL;
    for (int i = 0; i < n; i++)
        tenants->items[i] = adi_db_get(res, i, 0);
    tenants->n = (size_t)n;
    return ADI_OK;
}

adi_err vault_each_tenant(adi_ctx_t *ctx, adi_str_t only, vault_tenant_fn fn,
                          const char *fail_event, int64_t *done, int64_t *count,
                          adi_strlist_t *failed, adi_error_t *err)
{
    adi_strlist_t tenants;
    adi_err rc = vault_key_tenants(ctx, only, &tenants, err);
    if (rc != ADI_OK)
        return rc;
    failed->items = tenants.n > 0 ? adi_pool_alloc(ctx->pool, tenants.n * sizeof(adi_str_t)) : NULL;
    failed->n = 0;
    for (size_t i = 0; i < tenants.n; i++) {
        adi_str_t tid = tenants.items[i];
        adi_error_t terr;
        adi_error_clear(&terr);
        int64_t n = 0;
        int version = 0;
        rc = adi_db_begin(ctx->db, tid, &terr);
        if (rc == ADI_OK)
            rc = fn(ctx, tid, &n, &version, &terr);
        if (rc == ADI_OK)
            rc = adi_db_commit(ctx->db, &terr);
        else
            adi_db_rollback(ctx->db);
        if (rc == ADI_OK) {
            (*done)++;
            *count += n;
            if (version > 0)
                vault_cache_forget(ctx->app, tid, version);
        } else {
            failed->items[failed->n++] = tid;
            adi_log_write(&ctx->log, ADI_LOG_ERROR, fail_event, "tenant %s: %s", tid.ptr,
                          adi_err_name(rc));
        }
    }
    return ADI_OK;
}

/* ---- misc ------------------------------------------------------------------------------- */

void vault_wipe(adi_str_t s)
{
    if (s.ptr != NULL && s.len > 0)
        OPENSSL_cleanse((void *)(uintptr_t)s.ptr, s.len);
}

bool vault_is_admin(const adi_principal *p)
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

adi_str_t vault_iso(adi_pool_t *pool, adi_str_t us)
{
    if (us.ptr == NULL)
        return ADI_STR_NULL;
    char iso[40];
    size_t n = adi_time_iso(strtoll(us.ptr, NULL, 10), iso);
    return adi_pool_strdup(pool, (adi_str_t){iso, n});
}

void vault_audit(adi_ctx_t *ctx, const char *action, adi_str_t cred_id, adi_str_t provider,
                 adi_str_t account_id)
{
    const adi_principal *p = ctx->principal;
    char id[37];
    adi_uuid_v4(id);
    vault_audit_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.provider = provider;
    meta.account_id = account_id;
    audit_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.id = adi_str_c(id);
    ev.tenant_id = p->tenant_id;
    ev.user_id = p->user_id.len > 0 ? p->user_id : ADI_STR_NULL;
    ev.user_email = p->email.ptr != NULL ? p->email : ADI_STR("");
    ev.action = adi_str_c(action);
    ev.resource_type = ADI_STR("platform_credential");
    ev.resource_id = cred_id;
    ev.metadata = adi_proto_encode_pool(&vault_audit_meta__desc, &meta, ctx->pool);
    ev.created_at_us = adi_now_us();
    adi_svc_publish(ctx, ADI_KEY_EV_AUDIT, &audit_event__desc, &ev);
}
