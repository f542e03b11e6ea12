/* SPDX-License-Identifier: MIT */
/*
 * The vault's key management: a KMS provider that makes and unwraps per-tenant data keys (DEKs).
 * A DEK is 32 random bytes that only ever leave this library wrapped (encrypted by the KMS under
 * its master key, bound to an encryption context: the tenant id), so the database holds no key
 * that opens a credential by itself.
 *
 * Providers, chosen by KMS_PROVIDER:
 *   local  a 256-bit master key from KMS_LOCAL_KEY (standard base64) or the file KMS_LOCAL_KEY_FILE
 *          (its base64 text); wrapping is AES-256-GCM with the context as associated data, so a
 *          wrapped DEK moved to another tenant does not unwrap. Key id "local:<8 hex of
 *          SHA-256(key)>"; KMS_LOCAL_PREVIOUS_KEYS (comma-separated base64 keys) still unwrap, so
 *          a master-key change is followed by adi_kms_rewrap of every stored DEK.
 *   aws    the AWS KMS JSON API (TrentService.GenerateDataKey, Decrypt, Encrypt, ReEncrypt;
 *          application/x-amz-json-1.1) over HTTPS with curl, signed with SigV4 (adi/sigv4.h), the
 *          tenant id as encryption context {"tenant_id": <context>}. Credentials, first match
 *          wins: the explicit access key pair (+ session token) of the config (AWS_ACCESS_KEY_ID,
 *          AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); web identity (AWS_ROLE_ARN +
 *          AWS_WEB_IDENTITY_TOKEN_FILE through STS AssumeRoleWithWebIdentity); the shared
 *          credentials file (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials) and profile
 *          (AWS_PROFILE, default "default"); the instance metadata service (IMDSv2: a PUT token,
 *          then the role's credentials), unless disabled. Temporary credentials are cached and
 *          refreshed before they expire (5 minutes ahead), and at once when KMS answers
 *          ExpiredTokenException. Throttling (ThrottlingException, HTTP 429), 5xx and transport
 *          errors are retried with exponential backoff and full jitter up to max_attempts; what
 *          still fails is ADI_UNAVAILABLE with a message that names no secret and no AWS detail
 *          (the detail goes to the log: event kms.error with the AWS error type and HTTP status).
 * The master key and every credential are wiped by adi_kms_free. Thread-safe: any number of
 * threads may call the operations at once (credential refresh is serialised inside).
 */
#ifndef ADI_KMS_H
#define ADI_KMS_H

#include <stdbool.h>
#include <stddef.h>

#include "adi/core.h"
#include "adi/crypto.h"

/** Largest wrapped DEK any provider produces (AWS KMS blobs are under 512 bytes). */
#define ADI_KMS_WRAPPED_MAX 1024

/** A KMS provider (opaque). */
typedef struct adi_kms adi_kms_t;

/**
 * What adi_kms_new needs: the provider name and its settings (strings borrowed for the call; NULL
 * and "" mean unset). The vault fills it from its configuration rows of the same names.
 */
typedef struct adi_kms_config {
    const char *provider;       /* "local" (default when NULL or "") or "aws" */
    const char *local_key;      /* KMS_LOCAL_KEY: base64 of 32 bytes, or NULL/"" */
    const char *local_key_file; /* KMS_LOCAL_KEY_FILE: a file holding that base64, or NULL/"" */
    const char *local_previous_keys; /* KMS_LOCAL_PREVIOUS_KEYS: comma list of base64 keys */
    /* aws */
    const char *key_id;       /* KMS_KEY_ID: key id, ARN or alias (required) */
    const char *region;       /* AWS_REGION (required) */
    const char *endpoint;     /* KMS_ENDPOINT (default https://kms.<region>.amazonaws.com) */
    const char *sts_endpoint; /* AWS_STS_ENDPOINT (default https://sts.<region>.amazonaws.com) */
    /* AWS_EC2_METADATA_SERVICE_ENDPOINT (default http://169.254.169.254) */
    const char *imds_endpoint;
    bool imds_disabled;            /* AWS_EC2_METADATA_DISABLED */
    const char *access_key_id;     /* AWS_ACCESS_KEY_ID */
    const char *secret_access_key; /* AWS_SECRET_ACCESS_KEY (secret) */
    const char *session_token;     /* AWS_SESSION_TOKEN (secret) */
    const char *profile;           /* AWS_PROFILE (default "default") */
    /* AWS_SHARED_CREDENTIALS_FILE (default $HOME/.aws/credentials) */
    const char *shared_credentials_file;
    const char *role_arn;                /* AWS_ROLE_ARN */
    const char *web_identity_token_file; /* AWS_WEB_IDENTITY_TOKEN_FILE */
    const char *role_session_name;       /* AWS_ROLE_SESSION_NAME (default "adi-vault-<pid>") */
    int timeout_ms;                      /* KMS_TIMEOUT_MS: per HTTP attempt (0 = 5000) */
    int max_attempts;                    /* KMS_MAX_ATTEMPTS: attempts per operation (0 = 4) */
    int retry_base_ms;                   /* KMS_RETRY_BASE_MS: first backoff ceiling (0 = 50) */
} adi_kms_config_t;

/**
 * Builds the provider `cfg` names. On success `*out` is owned by the caller (adi_kms_free). The
 * aws provider makes no network call here (credentials are fetched on first use), so a service
 * starts while KMS is unreachable and answers 503 until it is back.
 * Errors: ADI_INVALID for an unknown provider, a missing key, a key that is not base64 of exactly
 * 32 bytes, an unreadable key file, a missing KMS_KEY_ID or AWS_REGION, an endpoint that is not
 * an http(s) URL, half an access key pair (messages never quote a key).
 */
adi_err adi_kms_new(const adi_kms_config_t *cfg, adi_kms_t **out, adi_error_t *err);

/** Wipes the master key and frees `kms`. NULL is a no-op. */
void adi_kms_free(adi_kms_t *kms);

/** The id of the key new DEKs are wrapped under (stored beside each wrapped DEK). */
const char *adi_kms_key_id(const adi_kms_t *kms);

/**
 * GenerateDataKey: a fresh random 32-byte DEK in `dek` (initialised here; the caller disposes it)
 * and its wrapped form, bound to `context` (the tenant id), in `wrapped` (`*wrapped_len` bytes,
 * at most ADI_KMS_WRAPPED_MAX). Errors: ADI_INTERNAL (crypto failure), ADI_UNAVAILABLE (remote
 * KMS).
 */
adi_err adi_kms_generate(adi_kms_t *kms, adi_str_t context, adi_secret_t *dek,
                         unsigned char wrapped[ADI_KMS_WRAPPED_MAX], size_t *wrapped_len,
                         adi_error_t *err);

/**
 * Decrypt: unwraps `wrapped` (made under `context`) into `dek` (initialised here; the caller
 * disposes it). Errors: ADI_INVALID when it does not unwrap (another context, another master key,
 * damage): "Decryption failed."; ADI_UNAVAILABLE (remote KMS).
 */
adi_err adi_kms_unwrap(adi_kms_t *kms, adi_str_t context, adi_str_t wrapped, adi_secret_t *dek,
                       adi_error_t *err);

/**
 * Encrypt: wraps an existing `dek` under the current key, bound to `context`. Errors as
 * adi_kms_generate.
 */
adi_err adi_kms_wrap(adi_kms_t *kms, adi_str_t context, const adi_secret_t *dek,
                     unsigned char wrapped[ADI_KMS_WRAPPED_MAX], size_t *wrapped_len,
                     adi_error_t *err);

/**
 * ReEncrypt: re-wraps `wrapped` (made under `context`, by any key the provider can still use)
 * under the current key id, same context, without the DEK leaving the KMS (aws) or this call
 * (local). Errors as adi_kms_unwrap.
 */
adi_err adi_kms_rewrap(adi_kms_t *kms, adi_str_t context, adi_str_t wrapped,
                       unsigned char out[ADI_KMS_WRAPPED_MAX], size_t *out_len, adi_error_t *err);

#endif
