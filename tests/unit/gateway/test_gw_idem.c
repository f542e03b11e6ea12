/* SPDX-License-Identifier: MIT */
/*
 * Idempotency-Key values: the Redis key and the fingerprint are stable hex digests that change
 * with their inputs; a stored value is judged as replay, busy (409), mismatch (422) or corrupt;
 * only final, non-transient statuses are stored.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gw_idem.h"

static void test_hashes(void **state)
{
    (void)state;
    char k1[GW_IDEM_KEY_LEN + 1], k2[GW_IDEM_KEY_LEN + 1];
    gw_idem_redis_key(ADI_STR("order-1"), ADI_STR_NULL, k1);
    assert_int_equal(strlen(k1), GW_IDEM_KEY_LEN);
    assert_memory_equal(k1, "gw:{idem}:", 10);
    /* sha256("order-1\n") */
    assert_string_equal(k1 + 10,
                        "0728477339cac5158dd5c2ce2694dade49245975d5e0cc737840ff4e57307586");
    gw_idem_redis_key(ADI_STR("order-1"), ADI_STR("user-2"), k2);
    assert_string_not_equal(k1, k2);

    char f1[65], f2[65], f3[65];
    gw_idem_fingerprint(ADI_STR("POST"), ADI_STR("/api/x/"), ADI_STR("{\"a\":1}"), f1);
    gw_idem_fingerprint(ADI_STR("POST"), ADI_STR("/api/x/"), ADI_STR("{\"a\":2}"), f2);
    gw_idem_fingerprint(ADI_STR("POST"), ADI_STR("/api/x/"), ADI_STR("{\"a\":1}"), f3);
    assert_int_equal(strlen(f1), 64);
    assert_string_not_equal(f1, f2);
    assert_string_equal(f1, f3);
    /* The separator keeps ("ab", "c") and ("a", "bc") apart. */
    gw_idem_fingerprint(ADI_STR("POST"), ADI_STR("/ab"), ADI_STR("c"), f2);
    gw_idem_fingerprint(ADI_STR("POST"), ADI_STR("/a"), ADI_STR("bc"), f3);
    assert_string_not_equal(f2, f3);
}

static void test_judge(void **state)
{
    (void)state;
    char fp[65], other[65];
    gw_idem_fingerprint(ADI_STR("POST"), ADI_STR("/p"), ADI_STR("{}"), fp);
    gw_idem_fingerprint(ADI_STR("POST"), ADI_STR("/q"), ADI_STR("{}"), other);
    adi_buf_t v;
    adi_buf_init(&v);
    int status;
    adi_str_t body;

    gw_idem_running_value(fp, "tok", &v);
    assert_int_equal(gw_idem_judge((adi_str_t){v.data, v.len}, fp, &status, &body), GW_IDEM_BUSY);
    assert_int_equal(gw_idem_judge((adi_str_t){v.data, v.len}, other, &status, &body),
                     GW_IDEM_MISMATCH);

    adi_buf_reset(&v);
    gw_idem_done_value(fp, 201, ADI_STR("{\"id\": \"1\"}\nsecond line"), &v);
    assert_int_equal(gw_idem_judge((adi_str_t){v.data, v.len}, fp, &status, &body), GW_IDEM_REPLAY);
    assert_int_equal(status, 201);
    assert_true(adi_str_eq_c(body, "{\"id\": \"1\"}\nsecond line"));
    assert_int_equal(gw_idem_judge((adi_str_t){v.data, v.len}, other, &status, &body),
                     GW_IDEM_MISMATCH);

    adi_buf_reset(&v);
    gw_idem_done_value(fp, 204, ADI_STR_NULL, &v);
    assert_int_equal(gw_idem_judge((adi_str_t){v.data, v.len}, fp, &status, &body), GW_IDEM_REPLAY);
    assert_int_equal(status, 204);
    assert_int_equal(body.len, 0);

    static const char *const corrupt[] = {"", "R", "X\nabc", "D\n", "Zzzz"};
    for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++)
        assert_int_equal(gw_idem_judge(adi_str_c(corrupt[i]), fp, &status, &body), GW_IDEM_CORRUPT);
    adi_buf_reset(&v);
    adi_buf_printf(&v, "D\n%s\n2x1\n{}", fp);
    assert_int_equal(gw_idem_judge((adi_str_t){v.data, v.len}, fp, &status, &body),
                     GW_IDEM_CORRUPT);
    adi_buf_reset(&v);
    adi_buf_printf(&v, "Q\n%s\n", fp);
    assert_int_equal(gw_idem_judge((adi_str_t){v.data, v.len}, fp, &status, &body),
                     GW_IDEM_CORRUPT);
    adi_buf_dispose(&v);
}

static void test_storable(void **state)
{
    (void)state;
    assert_true(gw_idem_storable(200));
    assert_true(gw_idem_storable(201));
    assert_true(gw_idem_storable(204));
    assert_true(gw_idem_storable(400));
    assert_true(gw_idem_storable(404));
    assert_false(gw_idem_storable(409));
    assert_false(gw_idem_storable(429));
    assert_false(gw_idem_storable(499));
    assert_false(gw_idem_storable(500));
    assert_false(gw_idem_storable(503));
    assert_false(gw_idem_storable(504));
}

static void test_scripts(void **state)
{
    (void)state;
    assert_non_null(strstr(gw_idem_acquire_lua, "'NX'"));
    assert_non_null(strstr(gw_idem_settle_lua, "ARGV[1]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hashes),
        cmocka_unit_test(test_judge),
        cmocka_unit_test(test_storable),
        cmocka_unit_test(test_scripts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
