/* SPDX-License-Identifier: MIT */
/*
 * KMS providers (see adi/kms.h): the public entry points, which dispatch to the provider the
 * configuration names, and the local provider itself. The local provider keeps a 256-bit master
 * key from the environment or a file and wraps DEKs with AES-256-GCM, the encryption context as
 * associated data (a wrapped DEK is nonce | ciphertext | tag). Its key id is "local:" and the
 * first 8 hex digits of SHA-256(key), so a row records which master key wrapped it; previous
 * master keys (KMS_LOCAL_PREVIOUS_KEYS) still unwrap, and adi_kms_rewrap moves a DEK from any of
 * them to the current key. The aws provider lives in aws.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kms_int.h"

/* Most previous local keys accepted (a key change every month for years). */
#define MAX_PREVIOUS 32
/* Longest base64 text of one key file. */
#define KEY_FILE_MAX 256

struct adi_kms {
    bool aws;                            /* which provider: aws (true) or local (false) */
    adi_kms__aws_t *a;                   /* the aws provider, when aws */
    adi_secret_t master;                 /* local: the current master key (32 bytes) */
    adi_secret_t previous[MAX_PREVIOUS]; /* local: older master keys that still unwrap */
    size_t nprevious;                    /* local: used entries of previous[] */
    char key_id[16];                     /* local: "local:" + 8 hex digits */
};

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Reads the base64 text of a key file (at most KEY_FILE_MAX bytes, surrounding space trimmed). */
static adi_err read_key_file(const char *path, char *buf, size_t cap, adi_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return adi_error_set(err, ADI_INVALID, "KMS_LOCAL_KEY_FILE cannot be read.");
    size_t n = fread(buf, 1, cap - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (more) {
        OPENSSL_cleanse(buf, cap);
        return adi_error_set(err, ADI_INVALID, "The local KMS key must be base64 of 32 bytes.");
    }
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    return ADI_OK;
}

/* Trims blanks around [*p, *p + *n). */
static void trim(const char **p, size_t *n)
{
    while (*n > 0 && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\n' ||
                      (*p)[*n - 1] == '\r'))
        (*n)--;
}

/* Parses KMS_LOCAL_PREVIOUS_KEYS (comma-separated base64 keys; empty items are skipped). */
static adi_err parse_previous(adi_kms_t *k, const char *list, adi_error_t *err)
{
    const char *p = list;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        const char *item = p;
        trim(&item, &n);
        if (n > 0) {
            if (k->nprevious == MAX_PREVIOUS)
                return adi_error_set(err, ADI_INVALID,
                                     "KMS_LOCAL_PREVIOUS_KEYS holds more than %d keys.",
                                     MAX_PREVIOUS);
            if (adi_secret_init_b64(&k->previous[k->nprevious], (adi_str_t){item, n},
                                    ADI_AEAD_KEY_LEN, NULL) != ADI_OK)
                return adi_error_set(err, ADI_INVALID,
                                     "KMS_LOCAL_PREVIOUS_KEYS must hold base64 keys of 32 bytes.");
            k->nprevious++;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return ADI_OK;
}

/* "local:" + the first 8 hex digits of SHA-256(master). */
static void local_key_id(adi_kms_t *k)
{
    unsigned char h[ADI_SHA256_LEN];
    adi_sha256(k->master.ptr, k->master.len, h);
    snprintf(k->key_id, sizeof(k->key_id), "local:%02x%02x%02x%02x", h[0], h[1], h[2], h[3]);
}

static adi_err local_new(const adi_kms_config_t *cfg, adi_kms_t *k, adi_error_t *err)
{
    char text[KEY_FILE_MAX + 1];
    const char *b64 = cfg->local_key;
    if (!is_set(b64)) {
        if (!is_set(cfg->local_key_file))
            return adi_error_set(err, ADI_INVALID,
                                 "KMS_LOCAL_KEY or KMS_LOCAL_KEY_FILE must be set.");
        adi_err rc = read_key_file(cfg->local_key_file, text, sizeof(text), err);
        if (rc != ADI_OK)
            return rc;
        b64 = text;
    }
    adi_err rc = adi_secret_init_b64(&k->master, adi_str_c(b64), ADI_AEAD_KEY_LEN, NULL);
    OPENSSL_cleanse(text, sizeof(text));
    if (rc != ADI_OK)
        return adi_error_set(err, ADI_INVALID, "The local KMS key must be base64 of 32 bytes.");
    if (is_set(cfg->local_previous_keys)) {
        rc = parse_previous(k, cfg->local_previous_keys, err);
        if (rc != ADI_OK)
            return rc;
    }
    local_key_id(k);
    return ADI_OK;
}

adi_err adi_kms_new(const adi_kms_config_t *cfg, adi_kms_t **out, adi_error_t *err)
{
    *out = NULL;
    const char *prov = is_set(cfg->provider) ? cfg->provider : "local";
    adi_kms_t *k = adi_xcalloc(1, sizeof(*k));
    adi_err rc;
    if (strcmp(prov, "local") == 0) {
        rc = local_new(cfg, k, err);
    } else if (strcmp(prov, "aws") == 0) {
        k->aws = true;
        rc = adi_kms__aws_new(cfg, &k->a, err);
    } else {
        rc = adi_error_set(err, ADI_INVALID, "KMS_PROVIDER must be \"local\" or \"aws\".");
    }
    if (rc != ADI_OK) {
        adi_kms_free(k);
        return rc;
    }
    *out = k;
    return ADI_OK;
}

void adi_kms_free(adi_kms_t *kms)
{
    if (kms == NULL)
        return;
    adi_kms__aws_free(kms->a);
    adi_secret_dispose(&kms->master);
    for (size_t i = 0; i < kms->nprevious; i++)
        adi_secret_dispose(&kms->previous[i]);
    free(kms);
}

adi_kms__aws_t *adi_kms__aws_of(adi_kms_t *kms)
{
    return kms->aws ? kms->a : NULL;
}

const char *adi_kms_key_id(const adi_kms_t *kms)
{
    return kms->aws ? kms->a->key_id : kms->key_id;
}

/* Seals the 32 bytes at `raw` under the current local key. */
static adi_err local_seal(adi_kms_t *kms, adi_str_t context, const unsigned char *raw,
                          unsigned char wrapped[ADI_KMS_WRAPPED_MAX], size_t *wrapped_len,
                          adi_error_t *err)
{
    return adi_aead_seal(&kms->master, context.ptr, context.len, raw, ADI_AEAD_KEY_LEN, wrapped,
                         ADI_KMS_WRAPPED_MAX, wrapped_len, err);
}

/* Opens `wrapped` with the current key, then each previous key; `raw` gets the 32 bytes. */
static adi_err local_open(adi_kms_t *kms, adi_str_t context, adi_str_t wrapped,
                          unsigned char raw[ADI_AEAD_KEY_LEN], adi_error_t *err)
{
    if (wrapped.ptr == NULL || wrapped.len != ADI_AEAD_KEY_LEN + ADI_AEAD_OVERHEAD ||
        context.len > ADI_AEAD_MAX_AAD)
        return adi_error_set(err, ADI_INVALID, ADI_KMS__DECRYPT_MSG);
    for (size_t i = 0; i <= kms->nprevious; i++) {
        const adi_secret_t *key = i == 0 ? &kms->master : &kms->previous[i - 1];
        size_t n = 0;
        if (adi_aead_open(key, context.ptr, context.len, (const unsigned char *)wrapped.ptr,
                          wrapped.len, raw, ADI_AEAD_KEY_LEN, &n, NULL) == ADI_OK) {
            if (ADI_ALWAYS(n == ADI_AEAD_KEY_LEN))
                return ADI_OK;
            OPENSSL_cleanse(raw, ADI_AEAD_KEY_LEN);
        }
    }
    return adi_error_set(err, ADI_INVALID, ADI_KMS__DECRYPT_MSG);
}

adi_err adi_kms_generate(adi_kms_t *kms, adi_str_t context, adi_secret_t *dek,
                         unsigned char wrapped[ADI_KMS_WRAPPED_MAX], size_t *wrapped_len,
                         adi_error_t *err)
{
    memset(dek, 0, sizeof(*dek));
    *wrapped_len = 0;
    if (kms->aws)
        return adi_kms__aws_generate(kms->a, context, dek, wrapped, wrapped_len, err);
    unsigned char raw[ADI_AEAD_KEY_LEN];
    adi_crypto_random(raw, sizeof(raw));
    adi_err rc = local_seal(kms, context, raw, wrapped, wrapped_len, err);
    if (rc == ADI_OK)
        adi_secret_init(dek, raw, sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}

adi_err adi_kms_unwrap(adi_kms_t *kms, adi_str_t context, adi_str_t wrapped, adi_secret_t *dek,
                       adi_error_t *err)
{
    memset(dek, 0, sizeof(*dek));
    if (kms->aws)
        return adi_kms__aws_unwrap(kms->a, context, wrapped, dek, err);
    unsigned char raw[ADI_AEAD_KEY_LEN];
    adi_err rc = local_open(kms, context, wrapped, raw, err);
    if (rc == ADI_OK)
        adi_secret_init(dek, raw, sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}

adi_err adi_kms_wrap(adi_kms_t *kms, adi_str_t context, const adi_secret_t *dek,
                     unsigned char wrapped[ADI_KMS_WRAPPED_MAX], size_t *wrapped_len,
                     adi_error_t *err)
{
    *wrapped_len = 0;
    if (dek == NULL || dek->ptr == NULL || dek->len != ADI_AEAD_KEY_LEN)
        return adi_error_set(err, ADI_INVALID, "A data key must be 32 bytes.");
    if (kms->aws)
        return adi_kms__aws_wrap(kms->a, context, dek, wrapped, wrapped_len, err);
    return local_seal(kms, context, dek->ptr, wrapped, wrapped_len, err);
}

adi_err adi_kms_rewrap(adi_kms_t *kms, adi_str_t context, adi_str_t wrapped,
                       unsigned char out[ADI_KMS_WRAPPED_MAX], size_t *out_len, adi_error_t *err)
{
    *out_len = 0;
    if (kms->aws)
        return adi_kms__aws_rewrap(kms->a, context, wrapped, out, out_len, err);
    unsigned char raw[ADI_AEAD_KEY_LEN];
    adi_err rc = local_open(kms, context, wrapped, raw, err);
    if (rc == ADI_OK)
        rc = local_seal(kms, context, raw, out, out_len, err);
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}
