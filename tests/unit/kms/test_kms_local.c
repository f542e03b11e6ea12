/* SPDX-License-Identifier: MIT */
/*
 * The local KMS provider through the public API (adi/kms.h): its key id ("local:" + 8 hex digits
 * of SHA-256(key)), generate / unwrap / wrap round trips bound to the context, previous master
 * keys that still unwrap, rewrap onto the current key, and the configuration errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adi/kms.h"

/* Three distinct 32-byte keys in base64. */
#define KEY_A "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
#define KEY_B "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
#define KEY_C "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0M="

static adi_kms_t *make(const char *key, const char *previous)
{
    adi_kms_config_t c = {.local_key = key, .local_previous_keys = previous};
    adi_kms_t *k = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_kms_new(&c, &k, &err), ADI_OK);
    assert_non_null(k);
    return k;
}

static void expect_invalid(const adi_kms_config_t *c, const char *needle)
{
    adi_kms_t *k = (adi_kms_t *)0x1;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_kms_new(c, &k, &err), ADI_INVALID);
    assert_null(k);
    if (strstr(err.message, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
}

static void test_key_id(void **state)
{
    (void)state;
    adi_kms_t *k = make(KEY_A, NULL);
    unsigned char raw[32];
    memset(raw, 'A', sizeof(raw));
    unsigned char h[ADI_SHA256_LEN];
    adi_sha256(raw, sizeof(raw), h);
    char want[32];
    snprintf(want, sizeof(want), "local:%02x%02x%02x%02x", h[0], h[1], h[2], h[3]);
    assert_string_equal(adi_kms_key_id(k), want);
    adi_kms_t *k2 = make(KEY_B, KEY_A);
    assert_string_not_equal(adi_kms_key_id(k2), want);
    assert_int_equal(strlen(adi_kms_key_id(k2)), strlen("local:") + 8);
    adi_kms_free(k);
    adi_kms_free(k2);
}

static void test_round_trip_and_context(void **state)
{
    (void)state;
    adi_kms_t *k = make(KEY_A, NULL);
    adi_error_t err;
    adi_error_clear(&err);
    adi_secret_t dek, back;
    unsigned char w[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0;
    assert_int_equal(adi_kms_generate(k, ADI_STR("tenant-1"), &dek, w, &wl, &err), ADI_OK);
    assert_int_equal(dek.len, 32);
    assert_int_equal(wl, 32 + ADI_AEAD_OVERHEAD);
    assert_int_equal(
        adi_kms_unwrap(k, ADI_STR("tenant-1"), (adi_str_t){(char *)w, wl}, &back, &err), ADI_OK);
    assert_memory_equal(back.ptr, dek.ptr, 32);
    adi_secret_dispose(&back);

    /* Another context, a damaged blob, a short blob: "Decryption failed." */
    assert_int_equal(
        adi_kms_unwrap(k, ADI_STR("tenant-2"), (adi_str_t){(char *)w, wl}, &back, &err),
        ADI_INVALID);
    assert_string_equal(err.message, "Decryption failed.");
    assert_null(back.ptr);
    w[20] ^= 1;
    assert_int_equal(
        adi_kms_unwrap(k, ADI_STR("tenant-1"), (adi_str_t){(char *)w, wl}, &back, &err),
        ADI_INVALID);
    w[20] ^= 1;
    assert_int_equal(
        adi_kms_unwrap(k, ADI_STR("tenant-1"), (adi_str_t){(char *)w, 10}, &back, &err),
        ADI_INVALID);
    assert_int_equal(adi_kms_unwrap(k, ADI_STR("tenant-1"), ADI_STR_NULL, &back, &err),
                     ADI_INVALID);

    /* wrap: an existing DEK under the current key, fresh nonce each time. */
    unsigned char w2[ADI_KMS_WRAPPED_MAX], w3[ADI_KMS_WRAPPED_MAX];
    size_t wl2 = 0, wl3 = 0;
    assert_int_equal(adi_kms_wrap(k, ADI_STR("tenant-1"), &dek, w2, &wl2, &err), ADI_OK);
    assert_int_equal(adi_kms_wrap(k, ADI_STR("tenant-1"), &dek, w3, &wl3, &err), ADI_OK);
    assert_int_equal(wl2, wl3);
    assert_memory_not_equal(w2, w3, wl2);
    assert_int_equal(
        adi_kms_unwrap(k, ADI_STR("tenant-1"), (adi_str_t){(char *)w2, wl2}, &back, &err), ADI_OK);
    assert_memory_equal(back.ptr, dek.ptr, 32);
    adi_secret_dispose(&back);

    adi_secret_t short_key;
    adi_secret_init(&short_key, "0123456789", 10);
    assert_int_equal(adi_kms_wrap(k, ADI_STR("tenant-1"), &short_key, w2, &wl2, &err), ADI_INVALID);
    assert_int_equal(wl2, 0);
    adi_secret_dispose(&short_key);
    adi_secret_dispose(&dek);
    adi_kms_free(k);
}

static void test_previous_keys_and_rewrap(void **state)
{
    (void)state;
    adi_error_t err;
    adi_error_clear(&err);
    adi_kms_t *old = make(KEY_A, NULL);
    adi_secret_t dek, back;
    unsigned char w[ADI_KMS_WRAPPED_MAX];
    size_t wl = 0;
    assert_int_equal(adi_kms_generate(old, ADI_STR("t"), &dek, w, &wl, &err), ADI_OK);

    /* The key changed: A is a previous key (among others, with blanks), C the current one. */
    adi_kms_t *cur = make(KEY_C, " " KEY_B " , ," KEY_A " ");
    assert_int_equal(adi_kms_unwrap(cur, ADI_STR("t"), (adi_str_t){(char *)w, wl}, &back, &err),
                     ADI_OK);
    assert_memory_equal(back.ptr, dek.ptr, 32);
    adi_secret_dispose(&back);

    unsigned char r[ADI_KMS_WRAPPED_MAX];
    size_t rl = 0;
    assert_int_equal(adi_kms_rewrap(cur, ADI_STR("t"), (adi_str_t){(char *)w, wl}, r, &rl, &err),
                     ADI_OK);
    assert_int_equal(rl, wl);
    /* Only C is needed for the rewrapped DEK; A alone no longer opens it. */
    adi_kms_t *only_c = make(KEY_C, NULL);
    assert_int_equal(adi_kms_unwrap(only_c, ADI_STR("t"), (adi_str_t){(char *)r, rl}, &back, &err),
                     ADI_OK);
    assert_memory_equal(back.ptr, dek.ptr, 32);
    adi_secret_dispose(&back);
    assert_int_equal(adi_kms_unwrap(old, ADI_STR("t"), (adi_str_t){(char *)r, rl}, &back, &err),
                     ADI_INVALID);
    /* Without the previous key the old blob does not open, nor rewrap; nor under another context.
     */
    assert_int_equal(adi_kms_unwrap(only_c, ADI_STR("t"), (adi_str_t){(char *)w, wl}, &back, &err),
                     ADI_INVALID);
    assert_int_equal(adi_kms_rewrap(only_c, ADI_STR("t"), (adi_str_t){(char *)w, wl}, r, &rl, &err),
                     ADI_INVALID);
    assert_int_equal(rl, 0);
    assert_string_equal(err.message, "Decryption failed.");
    assert_int_equal(adi_kms_rewrap(cur, ADI_STR("u"), (adi_str_t){(char *)w, wl}, r, &rl, &err),
                     ADI_INVALID);

    adi_secret_dispose(&dek);
    adi_kms_free(old);
    adi_kms_free(cur);
    adi_kms_free(only_c);
}

static void test_key_file(void **state)
{
    (void)state;
    char path[] = "/tmp/adi-kms-keyXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, KEY_B "\n", strlen(KEY_B) + 1), (ssize_t)strlen(KEY_B) + 1);
    close(fd);
    adi_kms_config_t c = {.local_key_file = path};
    adi_kms_t *k = NULL;
    assert_int_equal(adi_kms_new(&c, &k, NULL), ADI_OK);
    adi_kms_t *b = make(KEY_B, NULL);
    assert_string_equal(adi_kms_key_id(k), adi_kms_key_id(b));
    adi_kms_free(k);
    adi_kms_free(b);
    unlink(path);
    expect_invalid(&c, "KMS_LOCAL_KEY_FILE");
}

static void test_config_errors(void **state)
{
    (void)state;
    adi_kms_config_t c;
    memset(&c, 0, sizeof(c));
    expect_invalid(&c, "KMS_LOCAL_KEY");
    c.provider = "vaultish";
    expect_invalid(&c, "KMS_PROVIDER");
    c.provider = "local";
    c.local_key = "c2hvcnQ="; /* "short" */
    expect_invalid(&c, "32 bytes");
    c.local_key = "not base64!";
    expect_invalid(&c, "32 bytes");
    c.local_key = KEY_A;
    c.local_previous_keys = KEY_B ",c2hvcnQ=";
    expect_invalid(&c, "KMS_LOCAL_PREVIOUS_KEYS");
    c.local_previous_keys = " , ";
    adi_kms_t *k = NULL;
    assert_int_equal(adi_kms_new(&c, &k, NULL), ADI_OK);
    adi_kms_free(k);
    adi_kms_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_id),
        cmocka_unit_test(test_round_trip_and_context),
        cmocka_unit_test(test_previous_keys_and_rewrap),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
