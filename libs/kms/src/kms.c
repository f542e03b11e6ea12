/* SPDX-License-Identifier: MIT */
/*
 * KMS providers (see adi/kms.h). Only the local provider exists so far: a master key from the
 * environment or a file, AES-256-GCM wrapping with the encryption context as associated data.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "adi/kms.h"

struct adi_kms {
    adi_secret_t master; /* the local master key (32 bytes) */
    char key_id[16];     /* "local" */
};

/* Reads the base64 text of a key file (at most 256 bytes, trailing whitespace trimmed). */
static adi_err read_key_file(const char *path, char *buf, size_t cap, adi_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return adi_error_set(err, ADI_INVALID, "KMS_LOCAL_KEY_FILE cannot be read.");
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    return ADI_OK;
}

adi_err adi_kms_new(const adi_kms_config_t *cfg, adi_kms_t **out, adi_error_t *err)
{
    *out = NULL;
    const char *prov = cfg->provider != NULL && cfg->provider[0] != '\0' ? cfg->provider : "local";
    if (strcmp(prov, "local") != 0)
        return adi_error_set(err, ADI_INVALID,
                             "KMS_PROVIDER must be \"local\" (the aws provider is not built yet).");
    char text[257];
    const char *b64 = cfg->local_key;
    if (b64 == NULL || b64[0] == '\0') {
        if (cfg->local_key_file == NULL || cfg->local_key_file[0] == '\0')
            return adi_error_set(err, ADI_INVALID,
                                 "KMS_LOCAL_KEY or KMS_LOCAL_KEY_FILE must be set.");
        adi_err rc = read_key_file(cfg->local_key_file, text, sizeof(text), err);
        if (rc != ADI_OK)
            return rc;
        b64 = text;
    }
    adi_kms_t *k = calloc(1, sizeof(*k));
    ADI_ASSERT(k != NULL);
    adi_error_t inner;
    adi_error_clear(&inner);
    adi_err rc = adi_secret_init_b64(&k->master, adi_str_c(b64), ADI_AEAD_KEY_LEN, &inner);
    OPENSSL_cleanse(text, sizeof(text));
    if (rc != ADI_OK) {
        free(k);
        return adi_error_set(err, ADI_INVALID, "The local KMS key must be base64 of 32 bytes.");
    }
    snprintf(k->key_id, sizeof(k->key_id), "local");
    *out = k;
    return ADI_OK;
}

void adi_kms_free(adi_kms_t *kms)
{
    if (kms == NULL)
        return;
    adi_secret_dispose(&kms->master);
    free(kms);
}

const char *adi_kms_key_id(const adi_kms_t *kms)
{
    return kms->key_id;
}

adi_err adi_kms_generate(adi_kms_t *kms, adi_str_t context, adi_secret_t *dek,
                         unsigned char wrapped[ADI_KMS_WRAPPED_MAX], size_t *wrapped_len,
                         adi_error_t *err)
{
    unsigned char raw[ADI_AEAD_KEY_LEN];
    adi_crypto_random(raw, sizeof(raw));
    adi_err rc = adi_aead_seal(&kms->master, context.ptr, context.len, raw, sizeof(raw), wrapped,
                               ADI_KMS_WRAPPED_MAX, wrapped_len, err);
    if (rc == ADI_OK)
        adi_secret_init(dek, raw, sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}

adi_err adi_kms_unwrap(adi_kms_t *kms, adi_str_t context, adi_str_t wrapped, adi_secret_t *dek,
                       adi_error_t *err)
{
    unsigned char raw[ADI_KMS_WRAPPED_MAX];
    size_t n = 0;
    adi_err rc =
        adi_aead_open(&kms->master, context.ptr, context.len, (const unsigned char *)wrapped.ptr,
                      wrapped.len, raw, sizeof(raw), &n, err);
    if (rc == ADI_OK && n != ADI_AEAD_KEY_LEN)
        rc = adi_error_set(err, ADI_INVALID, "Decryption failed.");
    if (rc == ADI_OK)
        adi_secret_init(dek, raw, n);
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}
