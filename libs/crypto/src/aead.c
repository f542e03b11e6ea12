/* SPDX-License-Identifier: MIT */
/*
 * AES-256-GCM sealing with associated data through OpenSSL's EVP cipher interface. A sealed box
 * is nonce (12) | ciphertext | tag (16): self-contained, so the vault stores one blob per field.
 * Every seal draws a fresh random 96-bit nonce; with random nonces a key must not seal more than
 * about 2^32 boxes, far beyond one tenant's credential rows between DEK rotations.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "adi/crypto.h"

/* Checks the shared bounds of seal and open; returns ADI_OK or the error already set. */
static adi_err check_args(const adi_secret_t *key, const void *aad, size_t aad_len,
                          adi_error_t *err)
{
    if (key == NULL || key->ptr == NULL || key->len != ADI_AEAD_KEY_LEN)
        return adi_error_set(err, ADI_INVALID, "Encryption key must be 32 bytes.");
    if (aad_len > ADI_AEAD_MAX_AAD)
        return adi_error_set(err, ADI_TOO_LARGE, "Associated data too large.");
    if (aad == NULL && aad_len > 0)
        return adi_error_set(err, ADI_INVALID, "Associated data missing.");
    return ADI_OK;
}

adi_err adi_aead_seal(const adi_secret_t *key, const void *aad, size_t aad_len, const void *pt,
                      size_t pt_len, unsigned char *out, size_t out_cap, size_t *out_len,
                      adi_error_t *err)
{
    if (out_len != NULL)
        *out_len = 0;
    adi_err rc = check_args(key, aad, aad_len, err);
    if (rc != ADI_OK)
        return rc;
    if (pt_len > ADI_AEAD_MAX_PLAINTEXT)
        return adi_error_set(err, ADI_TOO_LARGE, "Plaintext too large.");
    if (pt == NULL && pt_len > 0)
        return adi_error_set(err, ADI_INVALID, "Plaintext missing.");
    if (out == NULL || out_cap < pt_len + ADI_AEAD_OVERHEAD)
        return adi_error_set(err, ADI_TOO_LARGE, "Output buffer too small.");

    unsigned char *nonce = out;
    unsigned char *ct = out + ADI_AEAD_NONCE_LEN;
    unsigned char *tag = ct + pt_len;
    if (RAND_bytes(nonce, ADI_AEAD_NONCE_LEN) != 1)
        return adi_error_set(err, ADI_INTERNAL, "Random generator failed.");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return adi_error_set(err, ADI_INTERNAL, "Cipher context allocation failed.");
    int len = 0;
    rc = ADI_INTERNAL;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, ADI_AEAD_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key->ptr, nonce) != 1)
        goto out;
    if (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aad_len) != 1)
        goto out;
    if (pt_len > 0 && EVP_EncryptUpdate(ctx, ct, &len, pt, (int)pt_len) != 1)
        goto out;
    if (EVP_EncryptFinal_ex(ctx, ct + pt_len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, ADI_AEAD_TAG_LEN, tag) != 1)
        goto out;
    rc = ADI_OK;
    if (out_len != NULL)
        *out_len = pt_len + ADI_AEAD_OVERHEAD;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (rc != ADI_OK) {
        OPENSSL_cleanse(out, pt_len + ADI_AEAD_OVERHEAD);
        adi_error_set(err, rc, "Encryption failed.");
    }
    return rc;
}

adi_err adi_aead_open(const adi_secret_t *key, const void *aad, size_t aad_len,
                      const unsigned char *in, size_t in_len, unsigned char *out, size_t out_cap,
                      size_t *out_len, adi_error_t *err)
{
    if (out_len != NULL)
        *out_len = 0;
    adi_err rc = check_args(key, aad, aad_len, err);
    if (rc != ADI_OK)
        return rc;
    if (in_len > ADI_AEAD_MAX_PLAINTEXT + ADI_AEAD_OVERHEAD)
        return adi_error_set(err, ADI_TOO_LARGE, "Ciphertext too large.");
    if (in == NULL || in_len < ADI_AEAD_OVERHEAD)
        return adi_error_set(err, ADI_INVALID, "Decryption failed.");
    size_t pt_len = in_len - ADI_AEAD_OVERHEAD;
    if (pt_len > 0 && (out == NULL || out_cap < pt_len))
        return adi_error_set(err, ADI_TOO_LARGE, "Output buffer too small.");

    const unsigned char *nonce = in;
    const unsigned char *ct = in + ADI_AEAD_NONCE_LEN;
    const unsigned char *tag = ct + pt_len;
    unsigned char tag_copy[ADI_AEAD_TAG_LEN]; /* EVP wants a writable tag buffer */
    memcpy(tag_copy, tag, sizeof(tag_copy));
    /* A one-byte scratch output lets an empty plaintext go through the same calls. */
    unsigned char scratch[1];
    unsigned char *dst = pt_len > 0 ? out : scratch;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return adi_error_set(err, ADI_INTERNAL, "Cipher context allocation failed.");
    int len = 0;
    rc = ADI_INTERNAL;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, ADI_AEAD_NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key->ptr, nonce) != 1)
        goto out;
    if (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aad_len) != 1)
        goto out;
    if (pt_len > 0 && EVP_DecryptUpdate(ctx, dst, &len, ct, (int)pt_len) != 1)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, ADI_AEAD_TAG_LEN, tag_copy) != 1)
        goto out;
    /* The tag is checked here; on mismatch the plaintext written above must not escape. */
    rc = EVP_DecryptFinal_ex(ctx, dst + pt_len, &len) == 1 ? ADI_OK : ADI_INVALID;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (rc != ADI_OK) {
        if (pt_len > 0)
            OPENSSL_cleanse(out, pt_len);
        return adi_error_set(err, rc,
                             rc == ADI_INVALID ? "Decryption failed." : "Decryption error.");
    }
    if (out_len != NULL)
        *out_len = pt_len;
    return ADI_OK;
}
