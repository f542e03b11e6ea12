/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of AES-256-GCM sealing: round trips (empty and large plaintexts, with and without
 * associated data), the documented nonce|ciphertext|tag layout checked against a NIST GCM test
 * vector, rejection of every kind of tampering, fresh nonces across 1000 seals, and bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "adi/crypto.h"

#define AAD "tenant=7c0e7c2e-0000-4000-8000-000000000001|cred=42|field=access_token"

static int setup_key(void **state)
{
    adi_secret_t *key = malloc(sizeof(*key));
    if (key == NULL)
        return -1;
    unsigned char raw[ADI_AEAD_KEY_LEN];
    adi_crypto_random(raw, sizeof(raw));
    adi_secret_init(key, raw, sizeof(raw));
    *state = key;
    return 0;
}

static int teardown_key(void **state)
{
    adi_secret_t *key = *state;
    adi_secret_dispose(key);
    free(key);
    return 0;
}

static void test_round_trip(void **state)
{
    const adi_secret_t *key = *state;
    static const char pt[] = "EAAGm0PX4ZCpsBAKZC-meta-access-token";
    unsigned char box[sizeof(pt) + ADI_AEAD_OVERHEAD];
    size_t box_len = 0;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(
        adi_aead_seal(key, AAD, strlen(AAD), pt, sizeof(pt) - 1, box, sizeof(box), &box_len, &err),
        ADI_OK);
    assert_int_equal(box_len, sizeof(pt) - 1 + ADI_AEAD_OVERHEAD);
    /* The ciphertext is not the plaintext. */
    assert_memory_not_equal(box + ADI_AEAD_NONCE_LEN, pt, sizeof(pt) - 1);
    unsigned char out[sizeof(pt)];
    size_t out_len = 0;
    assert_int_equal(
        adi_aead_open(key, AAD, strlen(AAD), box, box_len, out, sizeof(out), &out_len, &err),
        ADI_OK);
    assert_int_equal(out_len, sizeof(pt) - 1);
    assert_memory_equal(out, pt, out_len);
}

static void test_empty_plaintext_and_no_aad(void **state)
{
    const adi_secret_t *key = *state;
    unsigned char box[ADI_AEAD_OVERHEAD];
    size_t box_len = 0;
    assert_int_equal(adi_aead_seal(key, NULL, 0, NULL, 0, box, sizeof(box), &box_len, NULL),
                     ADI_OK);
    assert_int_equal(box_len, ADI_AEAD_OVERHEAD);
    size_t out_len = 99;
    assert_int_equal(adi_aead_open(key, NULL, 0, box, box_len, NULL, 0, &out_len, NULL), ADI_OK);
    assert_int_equal(out_len, 0);
    /* Even an empty plaintext is authenticated: a flipped tag bit fails. */
    box[box_len - 1] ^= 1;
    assert_int_equal(adi_aead_open(key, NULL, 0, box, box_len, NULL, 0, &out_len, NULL),
                     ADI_INVALID);
}

static void test_large_plaintext(void **state)
{
    const adi_secret_t *key = *state;
    size_t n = ADI_AEAD_MAX_PLAINTEXT;
    unsigned char *pt = malloc(n);
    unsigned char *box = malloc(n + ADI_AEAD_OVERHEAD);
    unsigned char *out = malloc(n);
    assert_non_null(pt);
    assert_non_null(box);
    assert_non_null(out);
    adi_crypto_random(pt, n);
    size_t len = 0;
    assert_int_equal(adi_aead_seal(key, "a", 1, pt, n, box, n + ADI_AEAD_OVERHEAD, &len, NULL),
                     ADI_OK);
    assert_int_equal(adi_aead_open(key, "a", 1, box, len, out, n, &len, NULL), ADI_OK);
    assert_int_equal(len, n);
    assert_memory_equal(out, pt, n);
    /* One byte over the bound is refused on both sides. */
    assert_int_equal(adi_aead_seal(key, "a", 1, pt, n + 1, box, n + ADI_AEAD_OVERHEAD, &len, NULL),
                     ADI_TOO_LARGE);
    assert_int_equal(adi_aead_open(key, "a", 1, box, n + ADI_AEAD_OVERHEAD + 1, out, n, &len, NULL),
                     ADI_TOO_LARGE);
    free(pt);
    free(box);
    free(out);
}

/* Flips one bit at `pos` of a fresh box and expects open to fail with ADI_INVALID. */
static void expect_tamper_rejected(const adi_secret_t *key, size_t pos)
{
    static const char pt[] = "refresh-token-value";
    unsigned char box[sizeof(pt) + ADI_AEAD_OVERHEAD];
    size_t box_len = 0;
    assert_int_equal(
        adi_aead_seal(key, AAD, strlen(AAD), pt, sizeof(pt) - 1, box, sizeof(box), &box_len, NULL),
        ADI_OK);
    assert_true(pos < box_len);
    box[pos] ^= 0x01;
    unsigned char out[sizeof(pt)];
    memset(out, 0xAA, sizeof(out));
    size_t out_len = 99;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(
        adi_aead_open(key, AAD, strlen(AAD), box, box_len, out, sizeof(out), &out_len, &err),
        ADI_INVALID);
    assert_int_equal(out_len, 0);
    assert_string_equal(err.message, "Decryption failed.");
    /* No plaintext escapes a failed open. */
    assert_memory_not_equal(out, pt, 7);
}

static void test_tampering_rejected(void **state)
{
    const adi_secret_t *key = *state;
    size_t ct_len = strlen("refresh-token-value");
    expect_tamper_rejected(key, 0);                                /* nonce, first byte */
    expect_tamper_rejected(key, ADI_AEAD_NONCE_LEN - 1);           /* nonce, last byte */
    expect_tamper_rejected(key, ADI_AEAD_NONCE_LEN);               /* ciphertext, first */
    expect_tamper_rejected(key, ADI_AEAD_NONCE_LEN + ct_len - 1);  /* ciphertext, last */
    expect_tamper_rejected(key, ADI_AEAD_NONCE_LEN + ct_len);      /* tag, first */
    expect_tamper_rejected(key, ADI_AEAD_NONCE_LEN + ct_len + 15); /* tag, last */
}

static void test_wrong_aad_key_or_length_rejected(void **state)
{
    const adi_secret_t *key = *state;
    static const char pt[] = "token";
    unsigned char box[sizeof(pt) + ADI_AEAD_OVERHEAD];
    size_t box_len = 0;
    assert_int_equal(
        adi_aead_seal(key, AAD, strlen(AAD), pt, sizeof(pt) - 1, box, sizeof(box), &box_len, NULL),
        ADI_OK);
    unsigned char out[sizeof(pt)];
    size_t out_len = 0;
    /* Another row's associated data (swapped ciphertexts) fails. */
    static const char other[] =
        "tenant=7c0e7c2e-0000-4000-8000-000000000001|cred=43|field=access_token";
    assert_int_equal(
        adi_aead_open(key, other, strlen(other), box, box_len, out, sizeof(out), &out_len, NULL),
        ADI_INVALID);
    assert_int_equal(adi_aead_open(key, NULL, 0, box, box_len, out, sizeof(out), &out_len, NULL),
                     ADI_INVALID);
    /* Another key fails. */
    adi_secret_t k2;
    unsigned char raw[ADI_AEAD_KEY_LEN];
    memcpy(raw, key->ptr, sizeof(raw));
    raw[7] ^= 0x80;
    adi_secret_init(&k2, raw, sizeof(raw));
    assert_int_equal(
        adi_aead_open(&k2, AAD, strlen(AAD), box, box_len, out, sizeof(out), &out_len, NULL),
        ADI_INVALID);
    adi_secret_dispose(&k2);
    /* Truncated and extended boxes fail. */
    assert_int_equal(
        adi_aead_open(key, AAD, strlen(AAD), box, box_len - 1, out, sizeof(out), &out_len, NULL),
        ADI_INVALID);
    assert_int_equal(adi_aead_open(key, AAD, strlen(AAD), box, ADI_AEAD_OVERHEAD - 1, out,
                                   sizeof(out), &out_len, NULL),
                     ADI_INVALID);
    assert_int_equal(
        adi_aead_open(key, AAD, strlen(AAD), NULL, 0, out, sizeof(out), &out_len, NULL),
        ADI_INVALID);
    /* Short output buffer. */
    assert_int_equal(adi_aead_open(key, AAD, strlen(AAD), box, box_len, out, 2, &out_len, NULL),
                     ADI_TOO_LARGE);
}

static void test_bad_keys_and_bounds(void **state)
{
    const adi_secret_t *key = *state;
    unsigned char box[64];
    size_t len = 0;
    adi_secret_t short_key;
    adi_secret_init(&short_key, "0123456789abcdef", 16); /* AES-128 sized: refused */
    assert_int_equal(adi_aead_seal(&short_key, NULL, 0, "x", 1, box, sizeof(box), &len, NULL),
                     ADI_INVALID);
    assert_int_equal(adi_aead_open(&short_key, NULL, 0, box, 40, box, sizeof(box), &len, NULL),
                     ADI_INVALID);
    adi_secret_dispose(&short_key);
    assert_int_equal(adi_aead_seal(NULL, NULL, 0, "x", 1, box, sizeof(box), &len, NULL),
                     ADI_INVALID);
    /* Output too small for nonce + ciphertext + tag. */
    assert_int_equal(
        adi_aead_seal(key, NULL, 0, "xyz", 3, box, 3 + ADI_AEAD_OVERHEAD - 1, &len, NULL),
        ADI_TOO_LARGE);
    /* Associated data over the bound. */
    char *aad = calloc(1, ADI_AEAD_MAX_AAD + 1);
    assert_non_null(aad);
    assert_int_equal(
        adi_aead_seal(key, aad, ADI_AEAD_MAX_AAD + 1, "x", 1, box, sizeof(box), &len, NULL),
        ADI_TOO_LARGE);
    assert_int_equal(
        adi_aead_seal(key, aad, ADI_AEAD_MAX_AAD, "x", 1, box, sizeof(box), &len, NULL), ADI_OK);
    free(aad);
}

static int cmp_nonce(const void *a, const void *b)
{
    return memcmp(a, b, ADI_AEAD_NONCE_LEN);
}

static void test_nonces_are_fresh(void **state)
{
    const adi_secret_t *key = *state;
    enum { N = 1000 };
    unsigned char(*nonces)[ADI_AEAD_NONCE_LEN] = malloc(N * ADI_AEAD_NONCE_LEN);
    assert_non_null(nonces);
    for (int i = 0; i < N; i++) {
        unsigned char box[1 + ADI_AEAD_OVERHEAD];
        size_t len = 0;
        assert_int_equal(adi_aead_seal(key, NULL, 0, "x", 1, box, sizeof(box), &len, NULL), ADI_OK);
        memcpy(nonces[i], box, ADI_AEAD_NONCE_LEN);
    }
    qsort(nonces, N, ADI_AEAD_NONCE_LEN, cmp_nonce);
    for (int i = 1; i < N; i++)
        assert_memory_not_equal(nonces[i - 1], nonces[i], ADI_AEAD_NONCE_LEN);
    free(nonces);
}

/*
 * The layout is nonce | ciphertext | tag: a box assembled by hand from the NIST GCM
 * specification's test case 16 (AES-256, 96-bit IV, 60-byte plaintext, 20-byte AAD) opens.
 */
static void test_layout_with_nist_vector(void **state)
{
    (void)state;
    static const char *key_hex = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
    static const char *iv_hex = "cafebabefacedbaddecaf888";
    static const char *pt_hex = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                                "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    static const char *aad_hex = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
    static const char *ct_hex = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                                "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";
    static const char *tag_hex = "76fc6ece0f4e1768cddf8853bb2d551b";
    unsigned char k[32], box[12 + 60 + 16], aad[20], pt[60];
    const struct {
        const char *hex;
        unsigned char *dst;
    } parts[] = {{key_hex, k},        {iv_hex, box},  {ct_hex, box + 12},
                 {tag_hex, box + 72}, {aad_hex, aad}, {pt_hex, pt}};
    for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
        for (size_t i = 0; parts[p].hex[2 * i] != '\0'; i++) {
            unsigned v = 0;
            assert_int_equal(sscanf(parts[p].hex + 2 * i, "%2x", &v), 1);
            parts[p].dst[i] = (unsigned char)v;
        }
    }
    adi_secret_t key;
    adi_secret_init(&key, k, sizeof(k));
    unsigned char out[60];
    size_t len = 0;
    assert_int_equal(
        adi_aead_open(&key, aad, sizeof(aad), box, sizeof(box), out, sizeof(out), &len, NULL),
        ADI_OK);
    assert_int_equal(len, 60);
    assert_memory_equal(out, pt, 60);
    adi_secret_dispose(&key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup_key, teardown_key),
        cmocka_unit_test_setup_teardown(test_empty_plaintext_and_no_aad, setup_key, teardown_key),
        cmocka_unit_test_setup_teardown(test_large_plaintext, setup_key, teardown_key),
        cmocka_unit_test_setup_teardown(test_tampering_rejected, setup_key, teardown_key),
        cmocka_unit_test_setup_teardown(test_wrong_aad_key_or_length_rejected, setup_key,
                                        teardown_key),
        cmocka_unit_test_setup_teardown(test_bad_keys_and_bounds, setup_key, teardown_key),
        cmocka_unit_test_setup_teardown(test_nonces_are_fresh, setup_key, teardown_key),
        cmocka_unit_test(test_layout_with_nist_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
