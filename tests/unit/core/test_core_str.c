/* SPDX-License-Identifier: MIT */
/* String slices: construction from C strings and literals, and comparisons (absent vs empty). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "adi/core.h"

static void test_construct(void **state)
{
    (void)state;
    adi_str_t a = adi_str_c("hello");
    assert_int_equal(a.len, 5);
    assert_memory_equal(a.ptr, "hello", 5);
    adi_str_t n = adi_str_c(NULL);
    assert_null(n.ptr);
    assert_int_equal(n.len, 0);
    adi_str_t e = adi_str_c("");
    assert_non_null(e.ptr);
    assert_int_equal(e.len, 0);
    adi_str_t l = ADI_STR("lit");
    assert_int_equal(l.len, 3);
    adi_str_t z = ADI_STR("a\0b");
    assert_int_equal(z.len, 3);
    assert_null(ADI_STR_NULL.ptr);
}

static void test_compare(void **state)
{
    (void)state;
    assert_true(adi_str_eq(ADI_STR("abc"), adi_str_c("abc")));
    assert_false(adi_str_eq(ADI_STR("abc"), ADI_STR("abd")));
    assert_false(adi_str_eq(ADI_STR("abc"), ADI_STR("ab")));
    assert_true(adi_str_eq(ADI_STR("a\0b"), ADI_STR("a\0b")));
    assert_false(adi_str_eq(ADI_STR("a\0b"), ADI_STR("a\0c")));
    /* Absent equals only absent; empty is not absent. */
    assert_true(adi_str_eq(ADI_STR_NULL, ADI_STR_NULL));
    assert_false(adi_str_eq(ADI_STR_NULL, ADI_STR("")));
    assert_false(adi_str_eq(ADI_STR(""), ADI_STR_NULL));
    assert_true(adi_str_eq(ADI_STR(""), adi_str_c("")));
    /* A slice of a longer buffer compares by its length. */
    adi_str_t part = {"abcdef", 3};
    assert_true(adi_str_eq_c(part, "abc"));
    assert_false(adi_str_eq_c(part, "abcdef"));
    assert_false(adi_str_eq_c(part, NULL));
    assert_true(adi_str_eq_c(ADI_STR_NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_construct),
        cmocka_unit_test(test_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
