/* SPDX-License-Identifier: MIT */
/*
 * Random bytes and UUIDs: adi_uuid_v4 writes canonical lower-case version-4 UUIDs that
 * adi_uuid_valid accepts, and adi_uuid_valid accepts exactly the canonical 8-4-4-4-12 form.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "adi/core.h"

static void test_v4(void **state)
{
    (void)state;
    char seen[64][37];
    for (int i = 0; i < 64; i++) {
        char *u = seen[i];
        adi_uuid_v4(u);
        assert_int_equal(strlen(u), 36);
        assert_true(adi_uuid_valid(adi_str_c(u)));
        assert_int_equal(u[14], '4');           /* version */
        assert_non_null(strchr("89ab", u[19])); /* RFC 4122 variant */
        for (int k = 0; k < 36; k++)
            assert_true(u[k] == '-' || (u[k] >= '0' && u[k] <= '9') ||
                        (u[k] >= 'a' && u[k] <= 'f'));
        /* 122 random bits: a repeat would mean the generator is broken. */
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[j], u);
    }
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(adi_uuid_valid(ADI_STR("6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a11")));
    assert_true(adi_uuid_valid(ADI_STR("6F1C1F86-3C6E-4B8A-9E55-0C3F8E0E2A11")));
    assert_true(adi_uuid_valid(ADI_STR("00000000-0000-0000-0000-000000000000")));
    static const char *const bad[] = {
        "",
        "6f1c1f863c6e4b8a9e550c3f8e0e2a11",
        "6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a1",
        "6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a111",
        "6f1c1f8-63c6e-4b8a-9e55-0c3f8e0e2a11",
        "6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a1g",
        "{6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a1}",
        "6f1c1f86_3c6e_4b8a_9e55_0c3f8e0e2a11",
        NULL,
    };
    for (const char *const *b = bad; *b != NULL; b++)
        assert_false(adi_uuid_valid(adi_str_c(*b)));
    assert_false(adi_uuid_valid(ADI_STR_NULL));
    /* Exactly 36 bytes of a longer buffer. */
    adi_str_t part = {"6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a11xyz", 36};
    assert_true(adi_uuid_valid(part));
    assert_false(adi_uuid_valid((adi_str_t){"6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a1\0", 36}));
}

static void test_random(void **state)
{
    (void)state;
    unsigned char a[64], b[64];
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    adi_random(a, sizeof(a));
    adi_random(b, sizeof(b));
    assert_memory_not_equal(a, b, sizeof(a));
    adi_random(a, 0); /* nothing to do */
    unsigned char big[70000];
    adi_random(big, sizeof(big)); /* more than one getrandom call may need */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
