/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of libs/crypto's small primitives: base64 and base64url against the RFC 4648
 * section 10 vectors plus strictness cases, SHA-256 (FIPS 180-2 "abc"), HMAC-SHA256 (RFC 4231),
 * constant-time comparison and secrets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "adi/crypto.h"

/* RFC 4648 section 10: BASE64("") = "", ... BASE64("foobar") = "Zm9vYmFy". */
static const struct {
    const char *plain; /* input bytes */
    const char *std;   /* standard, padded */
    const char *url;   /* base64url, unpadded */
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
        const char *plain = rfc4648[i].plain;
        size_t n = strlen(plain);
        char enc[32];
        size_t len = 99;
        assert_int_equal(adi_b64_encode(plain, n, enc, sizeof(enc), &len, NULL), ADI_OK);
        assert_string_equal(enc, rfc4648[i].std);
        assert_int_equal(len, strlen(rfc4648[i].std));
        assert_int_equal(len, ADI_B64_LEN(n));
        assert_int_equal(adi_b64url_encode(plain, n, enc, sizeof(enc), &len, NULL), ADI_OK);
        assert_string_equal(enc, rfc4648[i].url);
        assert_int_equal(len, ADI_B64URL_LEN(n));

        unsigned char dec[32];
        assert_int_equal(adi_b64_decode(adi_str_c(rfc4648[i].std), dec, sizeof(dec), &len, NULL),
                         ADI_OK);
        assert_int_equal(len, n);
        assert_memory_equal(dec, plain, n);
        assert_int_equal(adi_b64url_decode(adi_str_c(rfc4648[i].url), dec, sizeof(dec), &len, NULL),
                         ADI_OK);
        assert_int_equal(len, n);
        assert_memory_equal(dec, plain, n);
    }
}

static void test_url_alphabet(void **state)
{
    (void)state;
    const unsigned char bytes[] = {0xfb, 0xff, 0xbf};
    char enc[16];
    assert_int_equal(adi_b64_encode(bytes, 3, enc, sizeof(enc), NULL, NULL), ADI_OK);
    assert_string_equal(enc, "+/+/");
    assert_int_equal(adi_b64url_encode(bytes, 3, enc, sizeof(enc), NULL, NULL), ADI_OK);
    assert_string_equal(enc, "-_-_");
    assert_int_equal(adi_b64url_encode(bytes, 2, enc, sizeof(enc), NULL, NULL), ADI_OK);
    assert_string_equal(enc, "-_8");
    unsigned char dec[8];
    size_t len = 0;
    assert_int_equal(adi_b64url_decode(ADI_STR("-_-_"), dec, sizeof(dec), &len, NULL), ADI_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(dec, bytes, 3);
    /* Each decoder refuses the other alphabet. */
    assert_int_equal(adi_b64url_decode(ADI_STR("+/+/"), dec, sizeof(dec), &len, NULL), ADI_INVALID);
    assert_int_equal(adi_b64_decode(ADI_STR("-_-_"), dec, sizeof(dec), &len, NULL), ADI_INVALID);
}

static void test_decode_rejects_garbage(void **state)
{
    (void)state;
    static const char *bad_std[] = {
        "Zg",       /* missing padding */
        "Zg=",      /* short padding */
        "Z===",     /* too much padding */
        "====",     /* padding only */
        "Zg==Zg==", /* padding in the middle */
        "Zm9v ",    /* whitespace */
        " Zm9v",    /* leading whitespace */
        "Zm9\n",    /* newline */
        "Zh==",     /* nonzero unused bits */
        "Zm9=",     /* nonzero unused bits */
        "Zm9v*A==", /* bad character */
        "A",        /* short */
    };
    static const char *bad_url[] = {
        "Zg==",  /* padding */
        "Z",     /* 4k+1 characters */
        "Zh",    /* nonzero unused bits */
        "Zm9",   /* nonzero unused bits */
        "Zm9v.", /* dot */
        "Zm 9",  /* space */
        "Zm+v",  /* standard alphabet */
    };
    unsigned char dec[16];
    size_t len = 7;
    adi_error_t err;
    for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++) {
        adi_error_clear(&err);
        assert_int_equal(adi_b64_decode(adi_str_c(bad_std[i]), dec, sizeof(dec), &len, &err),
                         ADI_INVALID);
        assert_int_equal(len, 0);
        assert_int_equal(err.code, ADI_INVALID);
    }
    for (size_t i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++)
        assert_int_equal(adi_b64url_decode(adi_str_c(bad_url[i]), dec, sizeof(dec), &len, NULL),
                         ADI_INVALID);
    /* An embedded NUL is garbage too. */
    assert_int_equal(adi_b64url_decode((adi_str_t){"Zm\0v", 4}, dec, sizeof(dec), &len, NULL),
                     ADI_INVALID);
    /* A NULL pointer with a length is refused, not dereferenced. */
    assert_int_equal(adi_b64_decode((adi_str_t){NULL, 4}, dec, sizeof(dec), &len, NULL),
                     ADI_INVALID);
}

static void test_buffer_bounds(void **state)
{
    (void)state;
    char enc[8];
    assert_int_equal(adi_b64_encode("foobar", 6, enc, 8, NULL, NULL), ADI_TOO_LARGE);
    assert_int_equal(adi_b64_encode("foobar", 6, enc, 9 - 1, NULL, NULL), ADI_TOO_LARGE);
    assert_int_equal(adi_b64url_encode("foob", 4, enc, 7, NULL, NULL), ADI_OK);
    assert_string_equal(enc, "Zm9vYg");
    assert_int_equal(adi_b64url_encode("foob", 4, enc, 6, NULL, NULL), ADI_TOO_LARGE);
    unsigned char dec[5];
    size_t len = 0;
    assert_int_equal(adi_b64_decode(ADI_STR("Zm9vYmFy"), dec, sizeof(dec), &len, NULL),
                     ADI_TOO_LARGE);
    assert_int_equal(adi_b64_decode(ADI_STR("Zm9vYmE="), dec, sizeof(dec), &len, NULL), ADI_OK);
    assert_int_equal(len, 5);
}

static void test_large_round_trip(void **state)
{
    (void)state;
    size_t n = 200001; /* several encode chunks and a partial group */
    unsigned char *in = malloc(n);
    assert_non_null(in);
    adi_crypto_random(in, n);
    size_t cap = ADI_B64_LEN(n) + 1;
    char *enc = malloc(cap);
    unsigned char *dec = malloc(ADI_B64_DECODED_MAX(cap));
    assert_non_null(enc);
    assert_non_null(dec);
    size_t len = 0;
    assert_int_equal(adi_b64_encode(in, n, enc, cap, &len, NULL), ADI_OK);
    assert_int_equal(len, ADI_B64_LEN(n));
    assert_int_equal(adi_b64_decode((adi_str_t){enc, len}, dec, n, &len, NULL), ADI_OK);
    assert_int_equal(len, n);
    assert_memory_equal(dec, in, n);
    assert_int_equal(adi_b64url_encode(in, n, enc, cap, &len, NULL), ADI_OK);
    assert_int_equal(len, ADI_B64URL_LEN(n));
    assert_int_equal(adi_b64url_decode((adi_str_t){enc, len}, dec, n, &len, NULL), ADI_OK);
    assert_int_equal(len, n);
    assert_memory_equal(dec, in, n);
    free(in);
    free(enc);
    free(dec);
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void test_sha256_hmac(void **state)
{
    (void)state;
    unsigned char d[ADI_SHA256_LEN];
    char h[2 * ADI_SHA256_LEN + 1];
    /* FIPS 180-2 appendix B.1. */
    adi_sha256("abc", 3, d);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    adi_sha256(NULL, 0, d);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* RFC 4231 test case 2. */
    adi_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* RFC 4231 test case 1: key 0x0b x 20, "Hi There". */
    unsigned char key[20];
    memset(key, 0x0b, sizeof(key));
    adi_hmac_sha256(key, sizeof(key), "Hi There", 8, d);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* An empty key works (HMAC pads it with zeros). */
    adi_hmac_sha256(NULL, 0, "", 0, d);
    hex(d, sizeof(d), h);
    assert_string_equal(h, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

/* Derived ids: python3 uuid.UUID(bytes=sha256(seed)[:16]) with the v4 and variant bits set. */
static void test_uuid_derive(void **state)
{
    (void)state;
    char u[37];
    adi_uuid_derive(ADI_STR_NULL, u);
    assert_string_equal(u, "e3b0c442-98fc-4c14-9afb-f4c8996fb924");
    adi_uuid_derive(ADI_STR("tenant.signup\n127.0.0.1\nabc"), u);
    assert_string_equal(u, "8fcfe9cf-78aa-45b4-9bd1-e917f001df9b");
    assert_true(adi_uuid_valid(adi_str_c(u)));
}

static void test_equal_random_secret(void **state)
{
    (void)state;
    assert_true(adi_crypto_equal("abcd", "abcd", 4));
    assert_false(adi_crypto_equal("abcd", "abce", 4));
    assert_true(adi_crypto_equal("x", "y", 0));

    unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
    adi_crypto_random(a, sizeof(a));
    adi_crypto_random(b, sizeof(b));
    assert_false(adi_crypto_equal(a, b, sizeof(a)));
    assert_false(adi_crypto_equal(a, zero, sizeof(a)));

    adi_secret_t s;
    adi_secret_init(&s, a, sizeof(a));
    assert_non_null(s.ptr);
    assert_int_equal(s.len, 32);
    assert_memory_equal(s.ptr, a, 32);
    adi_secret_dispose(&s);
    assert_null(s.ptr);
    assert_int_equal(s.len, 0);
    adi_secret_dispose(&s); /* twice is harmless */

    adi_secret_init(&s, NULL, 0);
    assert_non_null(s.ptr);
    adi_secret_dispose(&s);

    /* 32 bytes of 0x01 in base64. */
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(
        adi_secret_init_b64(&s, ADI_STR("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="), 32, &err),
        ADI_OK);
    assert_int_equal(s.len, 32);
    assert_int_equal(s.ptr[0], 1);
    assert_int_equal(s.ptr[31], 1);
    adi_secret_dispose(&s);
    /* Wrong length and garbage are refused without echoing the input. */
    assert_int_equal(adi_secret_init_b64(&s, ADI_STR("AQEB"), 32, &err), ADI_INVALID);
    assert_null(strstr(err.message, "AQEB"));
    assert_int_equal(adi_secret_init_b64(&s, ADI_STR("not base64!"), 0, &err), ADI_INVALID);
    assert_int_equal(adi_secret_init_b64(&s, ADI_STR_NULL, 0, &err), ADI_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_url_alphabet),
        cmocka_unit_test(test_decode_rejects_garbage),
        cmocka_unit_test(test_buffer_bounds),
        cmocka_unit_test(test_large_round_trip),
        cmocka_unit_test(test_sha256_hmac),
        cmocka_unit_test(test_uuid_derive),
        cmocka_unit_test(test_equal_random_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
