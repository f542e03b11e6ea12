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
 *          wrapped DEK moved to another tenant does not unwrap. Key id "local".
 *   aws    not implemented yet (adi_kms_new says so).
 * The master key is held in an adi_secret_t and wiped by adi_kms_free. Thread-safe: the provider
 * has no mutable state.
 */
#ifndef ADI_KMS_H
#define ADI_KMS_H

#include <stddef.h>

#include "adi/core.h"
#include "adi/crypto.h"

/** Largest wrapped DEK any provider produces (AWS KMS blobs are under 512 bytes). */
#define ADI_KMS_WRAPPED_MAX 1024

/** A KMS provider (opaque). */
typedef struct adi_kms adi_kms_t;

/** What adi_kms_new needs: the provider name and its settings (strings borrowed for the call). */
typedef struct adi_kms_config {
    const char *provider;       /* "local" (default when NULL or "") or "aws" */
    const char *local_key;      /* KMS_LOCAL_KEY: base64 of 32 bytes, or NULL/"" */
    const char *local_key_file; /* KMS_LOCAL_KEY_FILE: a file holding that base64, or NULL/"" */
} adi_kms_config_t;

/**
 * Builds the provider `cfg` names. On success `*out` is owned by the caller (adi_kms_free).
 * Errors: ADI_INVALID for an unknown or unimplemented provider, a missing key, a key that is not
 * base64 of exactly 32 bytes, or an unreadable key file (messages never quote the key).
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

#endif
