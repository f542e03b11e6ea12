/* SPDX-License-Identifier: MIT */
/*
 * The suite's cryptography, on OpenSSL 3's EVP interfaces only: secrets that wipe themselves,
 * constant-time comparison, Django-compatible PBKDF2-SHA256 password hashes, AES-256-GCM sealing
 * with associated data, random bytes, SHA-256, HMAC-SHA256 and strict base64 / base64url codecs.
 *
 * Functions that can only fail when OpenSSL itself is broken (digest, HMAC, random) abort, as an
 * out-of-memory does; everything that depends on input returns an adi_err and fills `err` (which
 * may be NULL). No error message ever contains key material, a password or plaintext.
 */
#ifndef ADI_CRYPTO_H
#define ADI_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#include "adi/core.h"

/* ---- secrets ---------------------------------------------------------------------------- */

/**
 * Key material or another secret in heap storage that is wiped (OPENSSL_cleanse) on dispose.
 * Logged only as "[redacted]". Every adi_secret_init* that returns gets one adi_secret_dispose.
 */
typedef struct adi_secret {
    unsigned char *ptr; /* the secret bytes (heap, owned); never NULL after a successful init */
    size_t len;         /* number of secret bytes (may be 0) */
} adi_secret_t;

/**
 * Copies `len` bytes from `bytes` into a fresh secret (a NULL `bytes` gives `len` zero bytes).
 * The caller keeps ownership of `bytes` and should wipe its own copy. Aborts on OOM.
 */
void adi_secret_init(adi_secret_t *s, const void *bytes, size_t len);

/**
 * Initialises `s` from standard base64 text (e.g. a master key from the environment), checking
 * that it decodes to exactly `want_len` bytes (0 = any length up to 4096).
 * Errors: ADI_INVALID when the text is not strict base64 or has the wrong decoded length (the
 * message names neither the text nor the bytes). `s` is untouched on failure.
 */
adi_err adi_secret_init_b64(adi_secret_t *s, adi_str_t b64, size_t want_len, adi_error_t *err);

/** Wipes and frees the secret and leaves {NULL, 0}. Safe on a zeroed or disposed secret. */
void adi_secret_dispose(adi_secret_t *s);

/* ---- comparison, digests, random -------------------------------------------------------- */

/** True when the `n` bytes at `a` and `b` are equal; the time taken depends only on `n`. */
bool adi_crypto_equal(const void *a, const void *b, size_t n);

/** Fills `buf` with `n` bytes from OpenSSL's CSPRNG (RAND_bytes). Aborts if it fails. */
void adi_crypto_random(void *buf, size_t n);

#define ADI_SHA256_LEN 32

/** SHA-256 of `n` bytes at `data` into `out`. Aborts if OpenSSL fails. */
void adi_sha256(const void *data, size_t n, unsigned char out[ADI_SHA256_LEN]);

/**
 * An id derived from `seed` (NULL = empty): the first 16 bytes of its SHA-256 as a UUID
 * (adi_uuid_format), so the same seed always names the same thing (a retried request's tenant
 * or task) and different seeds never meet in practice.
 */
void adi_uuid_derive(adi_str_t seed, char out[37]);

/** HMAC-SHA256 of `n` bytes at `data` under `key` (any length, may be 0) into `out`. */
void adi_hmac_sha256(const void *key, size_t key_len, const void *data, size_t n,
                     unsigned char out[ADI_SHA256_LEN]);

/* ---- base64 (RFC 4648) ------------------------------------------------------------------ */

/** Characters of the standard (padded) encoding of `n` bytes, without the NUL. */
#define ADI_B64_LEN(n) ((((n) + 2) / 3) * 4)
/** Characters of the base64url encoding of `n` bytes without padding, without the NUL. */
#define ADI_B64URL_LEN(n) (((n) / 3) * 4 + ((n) % 3 == 0 ? 0 : (n) % 3 + 1))
/** Upper bound of the bytes that `n` characters of either encoding decode to. */
#define ADI_B64_DECODED_MAX(n) ((((n) + 3) / 4) * 3)

/**
 * Standard base64 with '=' padding. Writes ADI_B64_LEN(n) characters plus a NUL into `out`
 * (`out_cap` must be at least ADI_B64_LEN(n) + 1) and their count into `*out_len` (may be NULL).
 * Errors: ADI_TOO_LARGE when `out_cap` is too small (nothing useful is written).
 */
adi_err adi_b64_encode(const void *in, size_t n, char *out, size_t out_cap, size_t *out_len,
                       adi_error_t *err);

/**
 * Decodes strict standard base64: length a multiple of 4, only A-Z a-z 0-9 + /, '=' only as the
 * last one or two characters, no whitespace, unused bits zero (canonical). An empty input decodes
 * to zero bytes. `out_cap` must hold the decoded bytes (ADI_B64_DECODED_MAX(in.len) always does).
 * Errors: ADI_INVALID on any other input, ADI_TOO_LARGE when `out_cap` is too small.
 */
adi_err adi_b64_decode(adi_str_t in, unsigned char *out, size_t out_cap, size_t *out_len,
                       adi_error_t *err);

/** base64url (A-Z a-z 0-9 - _) without padding, as JWTs use; same contract as adi_b64_encode. */
adi_err adi_b64url_encode(const void *in, size_t n, char *out, size_t out_cap, size_t *out_len,
                          adi_error_t *err);

/**
 * Decodes strict unpadded base64url (padding, '+', '/', whitespace, a length of 4k+1 and nonzero
 * unused bits are rejected). Same contract as adi_b64_decode.
 */
adi_err adi_b64url_decode(adi_str_t in, unsigned char *out, size_t out_cap, size_t *out_len,
                          adi_error_t *err);

/* ---- passwords: Django's pbkdf2_sha256 --------------------------------------------------- */

/** Django 5.x's PBKDF2PasswordHasher.iterations: the default cost for new hashes. */
#define ADI_PASSWORD_ITERATIONS 720000u
/** Iteration counts accepted when verifying (a larger count in a stored hash is an attack). */
#define ADI_PASSWORD_ITERATIONS_MIN 1u
#define ADI_PASSWORD_ITERATIONS_MAX 10000000u
/** Longest password accepted, in bytes (bounds the work an unauthenticated caller can ask for). */
#define ADI_PASSWORD_MAX_LEN 4096
/** Longest salt accepted in a stored hash (Django makes 22 characters; older versions 12). */
#define ADI_PASSWORD_SALT_MAX 128
/** Characters of the salt of a new hash: ceil(128 bits / log2(62)), as Django's salt(). */
#define ADI_PASSWORD_SALT_LEN 22
/** Buffer size that holds any hash made by adi_password_hash, NUL included. */
#define ADI_PASSWORD_ENCODED_MAX 128

/**
 * Hashes `password` as Django does: `pbkdf2_sha256$<iterations>$<salt>$<hash>` with a fresh
 * 22-character salt from [a-zA-Z0-9] and the standard base64 of the 32-byte PBKDF2-HMAC-SHA256
 * key. `iterations` 0 means ADI_PASSWORD_ITERATIONS. Writes the NUL-terminated string to `out`.
 * Errors: ADI_INVALID when the password is absent or longer than ADI_PASSWORD_MAX_LEN or
 * `iterations` is above ADI_PASSWORD_ITERATIONS_MAX; ADI_TOO_LARGE when `out_cap` is below
 * ADI_PASSWORD_ENCODED_MAX.
 */
adi_err adi_password_hash(adi_str_t password, unsigned iterations, char *out, size_t out_cap,
                          adi_error_t *err);

/**
 * Checks `password` against a stored Django `pbkdf2_sha256$...` hash with whatever iteration count
 * and salt it holds, comparing in constant time. On ADI_OK, `*match` says whether the password is
 * right and `*must_upgrade` (may be NULL) whether the caller should store a fresh hash after a
 * successful login: the hash uses fewer than `configured_iterations` (0 = the default) or a salt
 * of less than 128 bits (shorter than 22 characters), as Django's must_update() decides.
 * Errors: ADI_INVALID (with *match false) for an absent or over-long password or a malformed
 * hash: another algorithm, iterations not a plain decimal in 1..10,000,000, an empty or over-long
 * salt, a hash part that is not the base64 of 32 bytes. Never crashes on any input.
 */
adi_err adi_password_verify(adi_str_t password, adi_str_t encoded, unsigned configured_iterations,
                            bool *match, bool *must_upgrade, adi_error_t *err);

/**
 * Spends the same CPU time as a verification at `iterations` (0 = default) without a stored
 * hash, so that "no such user" and "wrong password" cannot be told apart by timing.
 */
void adi_password_dummy_verify(unsigned iterations);

/**
 * The PBKDF2 iterations that adi_password_verify(`password`, `encoded`, ...) runs: the stored
 * hash's count when it derives a key, 0 when it refuses the input before any work (a malformed,
 * unusable ("!...") or other-algorithm hash, an absent or over-long password).
 */
unsigned adi_password_verify_cost(adi_str_t password, adi_str_t encoded);

/**
 * The padding of a refused login: how many iterations a dummy verification must still burn
 * (adi_password_dummy_verify; nothing when 0) after `spent` iterations of real verifications
 * (the sum of adi_password_verify_cost over the hashes tried) so that the refusal costs at least
 * one verification at `configured_iterations` (0 = the default): configured - spent, or 0 when
 * the verifications cost that much already. A successful login is never padded.
 */
unsigned adi_password_pad_iterations(uint64_t spent, unsigned configured_iterations);

/* ---- AES-256-GCM ------------------------------------------------------------------------ */

#define ADI_AEAD_KEY_LEN   32 /* AES-256 */
#define ADI_AEAD_NONCE_LEN 12 /* 96-bit random nonce, fresh for every seal */
#define ADI_AEAD_TAG_LEN   16 /* full 128-bit GCM tag */
/** Bytes a sealed box adds to its plaintext: nonce + tag. */
#define ADI_AEAD_OVERHEAD (ADI_AEAD_NONCE_LEN + ADI_AEAD_TAG_LEN)
/** Largest plaintext accepted (credential tokens and wrapped keys are far smaller). */
#define ADI_AEAD_MAX_PLAINTEXT (1u << 20)
/** Largest associated data accepted. */
#define ADI_AEAD_MAX_AAD 4096u

/**
 * Encrypts `pt` under the 32-byte `key` with AES-256-GCM and a fresh random 96-bit nonce,
 * authenticating `aad` too (may be NULL when `aad_len` is 0). The box written to `out` is
 *     nonce (12 bytes) | ciphertext (pt_len bytes) | tag (16 bytes)
 * i.e. pt_len + ADI_AEAD_OVERHEAD bytes, stored in `*out_len`. `pt` may be NULL when pt_len is 0.
 * Errors: ADI_INVALID when the key is not 32 bytes; ADI_TOO_LARGE when pt_len exceeds
 * ADI_AEAD_MAX_PLAINTEXT, aad_len ADI_AEAD_MAX_AAD, or `out_cap` is below pt_len + overhead;
 * ADI_INTERNAL if OpenSSL fails.
 */
adi_err adi_aead_seal(const adi_secret_t *key, const void *aad, size_t aad_len, const void *pt,
                      size_t pt_len, unsigned char *out, size_t out_cap, size_t *out_len,
                      adi_error_t *err);

/**
 * Opens a box made by adi_aead_seal with the same key and associated data, writing the
 * in_len - ADI_AEAD_OVERHEAD plaintext bytes to `out` (the caller wipes them when done) and their
 * count to `*out_len`. Nothing of the plaintext is left in `out` on failure.
 * Errors: ADI_INVALID when the key is not 32 bytes, the box is shorter than the overhead, or
 * authentication fails (wrong key, aad, nonce, ciphertext or tag: "Decryption failed.");
 * ADI_TOO_LARGE when the box or aad exceeds the bounds or `out_cap` is too small.
 */
adi_err adi_aead_open(const adi_secret_t *key, const void *aad, size_t aad_len,
                      const unsigned char *in, size_t in_len, unsigned char *out, size_t out_cap,
                      size_t *out_len, adi_error_t *err);

#endif
