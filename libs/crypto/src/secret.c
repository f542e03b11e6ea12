/* SPDX-License-Identifier: MIT */
/*
 * Secrets that wipe themselves, constant-time comparison, random bytes and the SHA-256 / HMAC
 * primitives, all through OpenSSL 3's EVP interfaces. The primitives here cannot fail on a sound
 * OpenSSL installation, so a failure aborts (as OOM does) instead of burdening every caller.
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "adi/crypto.h"
#include "crypto_int.h"

/* Longest secret adi_secret_init_b64 accepts when the caller does not fix the length. */
#define SECRET_B64_MAX 4096

void adi_crypto__fatal(const char *what)
{
    fprintf(stderr, "fatal: OpenSSL %s failed\n", what);
    abort();
}

void adi_secret_init(adi_secret_t *s, const void *bytes, size_t len)
{
    /* One byte at least, so that ptr is never NULL and dispose has something to wipe. */
    s->ptr = adi_xcalloc(len > 0 ? len : 1, 1);
    s->len = len;
    if (bytes != NULL && len > 0)
        memcpy(s->ptr, bytes, len);
}

adi_err adi_secret_init_b64(adi_secret_t *s, adi_str_t b64, size_t want_len, adi_error_t *err)
{
    size_t max = want_len > 0 ? want_len : SECRET_B64_MAX;
    if (b64.ptr == NULL || b64.len > ADI_B64_LEN(max))
        return adi_error_set(err, ADI_INVALID, "Key is not base64 of the expected length.");
    size_t cap = ADI_B64_DECODED_MAX(b64.len);
    unsigned char *tmp = adi_xmalloc(cap > 0 ? cap : 1);
    size_t n = 0;
    adi_err rc = adi_b64_decode(b64, tmp, cap, &n, NULL);
    if (rc == ADI_OK && ((want_len > 0 && n != want_len) || n > max))
        rc = ADI_INVALID;
    if (rc == ADI_OK)
        adi_secret_init(s, tmp, n);
    else
        adi_error_set(err, ADI_INVALID, "Key is not base64 of the expected length.");
    OPENSSL_cleanse(tmp, cap > 0 ? cap : 1);
    free(tmp);
    return rc;
}

void adi_secret_dispose(adi_secret_t *s)
{
    if (s == NULL || s->ptr == NULL)
        return;
    OPENSSL_cleanse(s->ptr, s->len > 0 ? s->len : 1);
    free(s->ptr);
    s->ptr = NULL;
    s->len = 0;
}

bool adi_crypto_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void adi_crypto_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    /* RAND_bytes takes an int count: feed it in chunks. */
    while (n > 0) {
        size_t chunk = n > (1u << 20) ? (1u << 20) : n;
        if (RAND_bytes(p, (int)chunk) != 1)
            adi_crypto__fatal("RAND_bytes");
        p += chunk;
        n -= chunk;
    }
}

void adi_sha256(const void *data, size_t n, unsigned char out[ADI_SHA256_LEN])
{
    unsigned int len = 0;
    if (EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) != 1 || len != ADI_SHA256_LEN)
        adi_crypto__fatal("EVP_Digest");
}

void adi_uuid_derive(adi_str_t seed, char out[37])
{
    unsigned char md[ADI_SHA256_LEN];
    adi_sha256(seed.ptr != NULL ? seed.ptr : "", seed.ptr != NULL ? seed.len : 0, md);
    adi_uuid_format(md, out);
}

void adi_hmac_sha256(const void *key, size_t key_len, const void *data, size_t n,
                     unsigned char out[ADI_SHA256_LEN])
{
    /* EVP_Q_mac refuses a NULL key pointer even for an empty key. */
    static const unsigned char empty[1] = {0};
    size_t len = 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key_len > 0 ? key : empty, key_len, data, n,
                  out, ADI_SHA256_LEN, &len) == NULL ||
        len != ADI_SHA256_LEN)
        adi_crypto__fatal("EVP_Q_mac");
}
