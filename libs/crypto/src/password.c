/* SPDX-License-Identifier: MIT */
/*
 * Django-compatible password hashes: `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` made and
 * checked exactly as django.contrib.auth.hashers.PBKDF2PasswordHasher does, so that user rows
 * migrated from the Django database keep working and hashes made here work there. The key
 * derivation is OpenSSL 3's EVP_KDF "PBKDF2" over HMAC-SHA256 with a 32-byte output.
 *
 * Stored hashes are untrusted input: every part is bounded and checked before any work is done
 * (an attacker-chosen iteration count must not become a denial of service).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "adi/crypto.h"
#include "crypto_int.h"

#define ALGORITHM     "pbkdf2_sha256"
#define DK_LEN        32
#define HASH_B64_LEN  ADI_B64_LEN(DK_LEN) /* 44 */
#define ENCODED_LIMIT 256                 /* longer stored strings are malformed */

/* Django's RANDOM_STRING_CHARS, from which salts are drawn. */
static const char salt_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/* PBKDF2-HMAC-SHA256(password, salt, iterations) into `dk`; aborts if OpenSSL fails. */
static void derive(adi_str_t password, const char *salt, size_t salt_len, unsigned iterations,
                   unsigned char dk[DK_LEN])
{
    /* OSSL_PARAM octet strings want a non-NULL pointer even when empty. */
    static char empty[1] = {0};
    static char digest[] = "SHA256";
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "PBKDF2", NULL);
    if (kdf == NULL)
        adi_crypto__fatal("EVP_KDF_fetch(PBKDF2)");
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (ctx == NULL)
        adi_crypto__fatal("EVP_KDF_CTX_new");
    /* pkcs5 = 1 turns off SP 800-132's lower bounds: Django's old hashes have short salts. */
    int pkcs5 = 1;
    uint64_t iter = iterations;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(
            OSSL_KDF_PARAM_PASSWORD, password.len > 0 ? (void *)(uintptr_t)password.ptr : empty,
            password.len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt, salt_len),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_ITER, &iter),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_PKCS5, &pkcs5),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(ctx, dk, DK_LEN, params);
    EVP_KDF_CTX_free(ctx);
    if (ok != 1)
        adi_crypto__fatal("EVP_KDF_derive(PBKDF2)");
}

/* Draws a Django-style salt: uniform over salt_chars by rejection sampling of random bytes. */
static void make_salt(char salt[ADI_PASSWORD_SALT_LEN])
{
    size_t n = 0;
    while (n < ADI_PASSWORD_SALT_LEN) {
        unsigned char bytes[32];
        adi_crypto_random(bytes, sizeof(bytes));
        for (size_t i = 0; i < sizeof(bytes) && n < ADI_PASSWORD_SALT_LEN; i++) {
            /* 248 = 4 * 62: bytes at or above it would bias the modulo. */
            if (bytes[i] < 248)
                salt[n++] = salt_chars[bytes[i] % 62];
        }
    }
}

adi_err adi_password_hash(adi_str_t password, unsigned iterations, char *out, size_t out_cap,
                          adi_error_t *err)
{
    if (out != NULL && out_cap > 0)
        out[0] = '\0';
    if (iterations == 0)
        iterations = ADI_PASSWORD_ITERATIONS;
    if (password.ptr == NULL || password.len > ADI_PASSWORD_MAX_LEN)
        return adi_error_set(err, ADI_INVALID, "Password is missing or too long.");
    if (iterations > ADI_PASSWORD_ITERATIONS_MAX)
        return adi_error_set(err, ADI_INVALID, "Iteration count out of range.");
    if (out == NULL || out_cap < ADI_PASSWORD_ENCODED_MAX)
        return adi_error_set(err, ADI_TOO_LARGE, "Output buffer too small for a password hash.");

    char salt[ADI_PASSWORD_SALT_LEN];
    make_salt(salt);
    unsigned char dk[DK_LEN];
    derive(password, salt, sizeof(salt), iterations, dk);
    char b64[HASH_B64_LEN + 1];
    adi_err rc = adi_b64_encode(dk, sizeof(dk), b64, sizeof(b64), NULL, err);
    OPENSSL_cleanse(dk, sizeof(dk));
    if (!ADI_ALWAYS(rc == ADI_OK))
        return rc;
    int w = snprintf(out, out_cap, "%s$%u$%.*s$%s", ALGORITHM, iterations,
                     (int)ADI_PASSWORD_SALT_LEN, salt, b64);
    ADI_ASSERT(w > 0 && (size_t)w < out_cap);
    return ADI_OK;
}

/* Parses a canonical decimal (no sign, no leading zero, at most 8 digits) in range. */
static bool parse_iterations(const char *p, size_t n, unsigned *out)
{
    if (n == 0 || n > 8 || p[0] == '0')
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v < ADI_PASSWORD_ITERATIONS_MIN || v > ADI_PASSWORD_ITERATIONS_MAX)
        return false;
    *out = v;
    return true;
}

/* Returns the index of the first '$' in p[0..n), or n. */
static size_t find_dollar(const char *p, size_t n)
{
    const char *d = memchr(p, '$', n);
    return d == NULL ? n : (size_t)(d - p);
}

/* A stored hash split into its parts (pointers into the encoded string). */
typedef struct parsed_hash {
    unsigned iterations;                                     /* its PBKDF2 iterations */
    const char *salt;                                        /* its salt */
    size_t salt_len;                                         /* bytes of salt */
    unsigned char stored[ADI_B64_DECODED_MAX(HASH_B64_LEN)]; /* the decoded key */
} parsed_hash_t;

/* Splits and checks `encoded` (algorithm $ iterations $ salt $ hash); false when malformed. */
static bool parse_hash(adi_str_t encoded, parsed_hash_t *h)
{
    if (encoded.ptr == NULL || encoded.len > ENCODED_LIMIT)
        return false;
    const char *p = encoded.ptr;
    size_t n = encoded.len;
    size_t alg_len = find_dollar(p, n);
    if (alg_len != sizeof(ALGORITHM) - 1 || memcmp(p, ALGORITHM, alg_len) != 0 || alg_len == n)
        return false;
    p += alg_len + 1;
    n -= alg_len + 1;
    size_t it_len = find_dollar(p, n);
    if (it_len == n || !parse_iterations(p, it_len, &h->iterations))
        return false;
    p += it_len + 1;
    n -= it_len + 1;
    size_t salt_len = find_dollar(p, n);
    if (salt_len == n || salt_len == 0 || salt_len > ADI_PASSWORD_SALT_MAX)
        return false;
    for (size_t i = 0; i < salt_len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    h->salt = p;
    h->salt_len = salt_len;
    p += salt_len + 1;
    n -= salt_len + 1;
    size_t stored_len = 0;
    if (n != HASH_B64_LEN ||
        adi_b64_decode((adi_str_t){p, n}, h->stored, sizeof(h->stored), &stored_len, NULL) !=
            ADI_OK ||
        stored_len != DK_LEN) {
        OPENSSL_cleanse(h->stored, sizeof(h->stored));
        return false;
    }
    return true;
}

/* An acceptable password: present and at most ADI_PASSWORD_MAX_LEN bytes. */
static bool password_ok(adi_str_t password)
{
    return password.ptr != NULL && password.len <= ADI_PASSWORD_MAX_LEN;
}

adi_err adi_password_verify(adi_str_t password, adi_str_t encoded, unsigned configured_iterations,
                            bool *match, bool *must_upgrade, adi_error_t *err)
{
    static const char malformed[] = "Stored password hash is malformed.";
    if (match != NULL)
        *match = false;
    if (must_upgrade != NULL)
        *must_upgrade = false;
    if (configured_iterations == 0)
        configured_iterations = ADI_PASSWORD_ITERATIONS;
    if (!password_ok(password))
        return adi_error_set(err, ADI_INVALID, "Password is missing or too long.");
    parsed_hash_t h;
    if (!parse_hash(encoded, &h))
        return adi_error_set(err, ADI_INVALID, "%s", malformed);

    unsigned char dk[DK_LEN];
    derive(password, h.salt, h.salt_len, h.iterations, dk);
    bool ok = adi_crypto_equal(dk, h.stored, DK_LEN);
    OPENSSL_cleanse(dk, sizeof(dk));
    OPENSSL_cleanse(h.stored, sizeof(h.stored));
    if (match != NULL)
        *match = ok;
    if (must_upgrade != NULL)
        *must_upgrade = h.iterations < configured_iterations || h.salt_len < ADI_PASSWORD_SALT_LEN;
    return ADI_OK;
}

unsigned adi_password_verify_cost(adi_str_t password, adi_str_t encoded)
{
    parsed_hash_t h;
    if (!password_ok(password) || !parse_hash(encoded, &h))
        return 0;
    OPENSSL_cleanse(h.stored, sizeof(h.stored));
    return h.iterations;
}

unsigned adi_password_pad_iterations(uint64_t spent, unsigned configured_iterations)
{
    if (configured_iterations == 0)
        configured_iterations = ADI_PASSWORD_ITERATIONS;
    if (configured_iterations > ADI_PASSWORD_ITERATIONS_MAX)
        configured_iterations = ADI_PASSWORD_ITERATIONS_MAX;
    return spent >= configured_iterations ? 0u : configured_iterations - (unsigned)spent;
}

void adi_password_dummy_verify(unsigned iterations)
{
    static const char salt[] = "adinsightsdummysalt000"; /* 22 characters, like a real salt */
    if (iterations == 0)
        iterations = ADI_PASSWORD_ITERATIONS;
    if (iterations > ADI_PASSWORD_ITERATIONS_MAX)
        iterations = ADI_PASSWORD_ITERATIONS_MAX;
    unsigned char dk[DK_LEN];
    derive(ADI_STR("dummy-password"), salt, sizeof(salt) - 1, iterations, dk);
    /* Compare as a real verification would, so that the two paths do the same work. */
    unsigned char other[DK_LEN] = {0};
    (void)adi_crypto_equal(dk, other, DK_LEN);
    OPENSSL_cleanse(dk, sizeof(dk));
}
