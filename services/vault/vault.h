/* SPDX-License-Identifier: MIT */
/*
 * What the vault service's files share: its configuration, its state (the KMS provider and the
 * cache of unwrapped data keys), the handler rows, and the helpers the handlers are written with:
 * access checks, per-tenant data keys (made on first use with the KMS's GenerateDataKey, stored
 * only wrapped), sealing and opening tokens with AES-256-GCM under associated data tenant id +
 * credential id + field name, database times, and audit events on ev:audit.
 *
 * Tokens are plaintext only in request structs, in the buffers of seal/open and in the internal
 * decrypt replies (both wiped as soon as they are used); they never reach a log line, a client
 * reply or an error message.
 */
#ifndef ADI_VAULT_H
#define ADI_VAULT_H

#include <pthread.h>
#include <stdbool.h>

#include "adi/crypto.h"
#include "adi/kms.h"
#include "adi/svc.h"

/* Client-facing messages (DRF / API.md wording). */
#define VAULT_MSG_NOT_FOUND "Not found."
#define VAULT_MSG_NOT_ADMIN "You must be a tenant admin to perform this action."
#define VAULT_MSG_NO_TENANT "You do not belong to a tenant."
#define VAULT_MSG_UNIQUE    "The fields tenant, provider, account_id must make a unique set."
#define VAULT_MSG_DECRYPT   "The credential could not be decrypted."

/** SQL for a timestamptz column as microseconds since the epoch (text), for vault_iso. */
#define VAULT_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

/** The vault's own settings (environment). */
typedef struct vault_cfg {
    const char *kms_provider;       /* KMS_PROVIDER: local (default) or aws */
    const char *kms_local_key;      /* KMS_LOCAL_KEY: base64 of 32 bytes (secret) */
    const char *kms_local_key_file; /* KMS_LOCAL_KEY_FILE: file holding that base64 */
    const char *kms_local_previous; /* KMS_LOCAL_PREVIOUS_KEYS: older master keys (secret) */
    const char *kms_key_id;         /* KMS_KEY_ID: aws key id, ARN or alias */
    const char *aws_region;         /* AWS_REGION */
    const char *kms_endpoint;       /* KMS_ENDPOINT: endpoint override */
    const char *sts_endpoint;       /* AWS_STS_ENDPOINT: endpoint override */
    const char *imds_endpoint;      /* AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint override */
    bool imds_disabled;             /* AWS_EC2_METADATA_DISABLED */
    const char *aws_access_key_id;  /* AWS_ACCESS_KEY_ID */
    const char *aws_secret_key;     /* AWS_SECRET_ACCESS_KEY (secret) */
    const char *aws_session_token;  /* AWS_SESSION_TOKEN (secret) */
    const char *aws_profile;        /* AWS_PROFILE */
    const char *aws_shared_creds;   /* AWS_SHARED_CREDENTIALS_FILE */
    const char *aws_role_arn;       /* AWS_ROLE_ARN */
    const char *aws_web_token_file; /* AWS_WEB_IDENTITY_TOKEN_FILE */
    const char *aws_session_name;   /* AWS_ROLE_SESSION_NAME */
    int64_t kms_timeout_ms;         /* KMS_TIMEOUT_MS: per HTTP attempt */
    int64_t kms_max_attempts;       /* KMS_MAX_ATTEMPTS: attempts per KMS operation */
    int64_t kms_retry_base_ms;      /* KMS_RETRY_BASE_MS: first backoff ceiling */
    int64_t dek_cache_ttl_s;        /* DEK_CACHE_TTL_S: seconds an unwrapped DEK stays cached */
    int64_t dek_cache_size;         /* DEK_CACHE_SIZE: most DEKs cached at once (0 = no cache) */
} vault_cfg_t;

/** One cached unwrapped DEK. */
typedef struct vault_dek_slot {
    char tenant[37];    /* tenant id (lower case), "" when the slot is free */
    int version;        /* tenant_keys.version */
    adi_secret_t key;   /* the unwrapped DEK */
    int64_t expires_ms; /* monotonic-ish wall time (adi_now_ms) after which it is dropped */
    int64_t used_ms;    /* last use, for least-recently-used eviction */
} vault_dek_slot_t;

/** The service state (ctx->app). */
typedef struct vault_app {
    adi_kms_t *kms;          /* the KMS provider */
    pthread_mutex_t mu;      /* guards the cache */
    vault_dek_slot_t *slots; /* dek_cache_size slots */
    size_t nslots;           /* number of slots */
    int64_t ttl_ms;          /* cache TTL */
} vault_app_t;

extern const adi_cfg_row_t vault_cfg_rows[];
extern const size_t vault_ncfg_rows;
/** The handler table (NULL-terminated). */
extern const adi_svc_handler_t *const vault_handlers[];

/** Fills `cfg` with the documented defaults. */
void vault_cfg_defaults(vault_cfg_t *cfg);

/** adi_svc_def_t.init: builds the KMS provider and the DEK cache. Errors: adi_kms_new's. */
adi_err vault_init(const adi_svc_config_t *common, void *cfg, void **app, adi_error_t *err);

/** adi_svc_def_t.fini: wipes every cached DEK and the master key, frees the state. */
void vault_fini(void *app);

/* Handler rows (ops/credentials.c, ops/rotate.c). */
ADI_SVC_HANDLER_DECL(vault_list_row);
ADI_SVC_HANDLER_DECL(vault_get_row);
ADI_SVC_HANDLER_DECL(vault_create_row);
ADI_SVC_HANDLER_DECL(vault_put_row);
ADI_SVC_HANDLER_DECL(vault_patch_row);
ADI_SVC_HANDLER_DECL(vault_delete_row);
ADI_SVC_HANDLER_DECL(vault_decrypt_row);
ADI_SVC_HANDLER_DECL(vault_decrypt_provider_row);
ADI_SVC_HANDLER_DECL(vault_rotate_row);      /* ops/rotate.c */
ADI_SVC_HANDLER_DECL(vault_rewrap_row);      /* ops/keys.c */
ADI_SVC_HANDLER_DECL(vault_key_tenants_row); /* ops/keys.c */

/** Message of every KMS failure a client sees (503, no detail). */
#define VAULT_MSG_KMS_DOWN "The key service is unavailable."

/**
 * The tenants rotate and rewrap work on (internal ops): every tenant having a data key (through
 * the definer function vault.key_tenants(), which row-level security does not hide), or only
 * `only` when it is not blank. `*tenants` holds their ids in ctx->pool, in id order.
 * Errors: a 400 on tenant_id when `only` is not a UUID; ADI_NOT_FOUND when `only` has no data
 * key; adi_db_exec's; ADI_UNAVAILABLE without a database.
 */
adi_err vault_key_tenants(adi_ctx_t *ctx, adi_str_t only, adi_strlist_t *tenants, adi_error_t *err);

/**
 * One tenant's part of vault.rotate or vault.rewrap, run inside a transaction scoped to `tenant`:
 * adds what it did to `*count`, and may set `*version` to the tenant's new DEK version (the cached
 * DEKs below it are dropped once the transaction has committed).
 */
typedef adi_err (*vault_tenant_fn)(adi_ctx_t *ctx, adi_str_t tenant, int64_t *count, int *version,
                                   adi_error_t *err);

/**
 * Runs `fn` for each tenant vault_key_tenants(`only`) names, each in a transaction of its own:
 * committed when fn succeeds, rolled back when it fails, so one tenant's failure (its KMS call)
 * leaves it as it was while the others go on. Counts the tenants done in `*done` and fn's counts
 * in `*count`; lists the failed tenants in `failed` (ctx->pool) and logs each as `fail_event`.
 * Errors: vault_key_tenants'.
 */
adi_err vault_each_tenant(adi_ctx_t *ctx, adi_str_t only, vault_tenant_fn fn,
                          const char *fail_event, int64_t *done, int64_t *count,
                          adi_strlist_t *failed, adi_error_t *err);

/** Drops (and wipes) the cached DEKs of `tenant` whose version is below `below`. */
void vault_cache_forget(vault_app_t *app, adi_str_t tenant, int below);

/** True when the principal may administer its tenant: role ADMIN, or a superuser. */
bool vault_is_admin(const adi_principal *p);

/**
 * The tenant's current DEK (creating version 1 through the KMS when the tenant has none and
 * `create` is true) in `key` (initialised here; the caller disposes it) and its version. The
 * key row is locked FOR KEY SHARE until the caller's transaction ends, so a rotation (which
 * locks the tenant's key rows FOR UPDATE and prunes old versions) waits for the writer, or the
 * writer for the rotation, and a row is never stored under a pruned version.
 * Errors: ADI_NOT_FOUND when the tenant has none and `create` is false; the KMS's (ADI_UNAVAILABLE
 * ...); adi_db_exec's.
 */
adi_err vault_dek_current(adi_ctx_t *ctx, adi_str_t tenant_id, bool create, adi_secret_t *key,
                          int *version, adi_error_t *err);

/** The tenant's DEK of `version` in `key` (the caller disposes it). Errors: as above. */
adi_err vault_dek_version(adi_ctx_t *ctx, adi_str_t tenant_id, int version, adi_secret_t *key,
                          adi_error_t *err);

/**
 * Seals `token` under `key` with associated data tenant_id|credential_id|field into pool memory
 * (the bytea value to store). Errors: adi_aead_seal's.
 */
adi_err vault_seal(adi_pool_t *pool, const adi_secret_t *key, adi_str_t tenant_id,
                   adi_str_t cred_id, const char *field, adi_str_t token, adi_str_t *box,
                   adi_error_t *err);

/**
 * Opens a box made by vault_seal into pool memory (NUL-terminated). Errors: ADI_INTERNAL with
 * VAULT_MSG_DECRYPT when it does not open (never a detail of the token).
 */
adi_err vault_open(adi_pool_t *pool, const adi_secret_t *key, adi_str_t tenant_id,
                   adi_str_t cred_id, const char *field, adi_str_t box, adi_str_t *token,
                   adi_error_t *err);

/** Wipes a plaintext vault_open wrote into (writable) pool memory. Blank/NULL is a no-op. */
void vault_wipe(adi_str_t s);

/** Renders a VAULT_US(...) value as ISO 8601 in TIME_ZONE in `pool`; NULL gives ADI_STR_NULL. */
adi_str_t vault_iso(adi_pool_t *pool, adi_str_t us);

/** Queues an audit entry credential_<what> with metadata {provider, account_id} on ev:audit. */
void vault_audit(adi_ctx_t *ctx, const char *action, adi_str_t cred_id, adi_str_t provider,
                 adi_str_t account_id);

#endif
