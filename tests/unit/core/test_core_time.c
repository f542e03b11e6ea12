/* SPDX-License-Identifier: MIT */
/*
 * Clocks and the ISO 8601 formatter: Django's rendering with microseconds (none for a whole
 * second, as Python's isoformat()) and the UTC offset of
 * the configured zone (America/Jamaica, -05:00, and its 1974-1983 daylight saving time at
 * -04:00), UTC, times before the epoch, and sane clock readings (no timing asserts).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "adi/core.h"

static void iso(int64_t us, const char *want)
{
    char out[40];
    size_t n = adi_time_iso(us, out);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_jamaica(void **state)
{
    (void)state;
    adi_time_zone_set("America/Jamaica");
    iso(1795481469354026, "2026-11-23T19:51:09.354026-05:00");
    iso(0, "1969-12-31T19:00:00-05:00"); /* a whole second: no fraction, as isoformat() */
    iso(-1, "1969-12-31T18:59:59.999999-05:00");
    iso(-1000001, "1969-12-31T18:59:58.999999-05:00");
    iso(331315200000000, "1980-07-01T12:00:00-04:00"); /* DST in 1980 */
    iso(331315200000001, "1980-07-01T12:00:00.000001-04:00");
    iso(1709251199999999, "2024-02-29T18:59:59.999999-05:00");
}

static void test_utc_and_others(void **state)
{
    (void)state;
    adi_time_zone_set("UTC");
    iso(1795481469354026, "2026-11-24T00:51:09.354026+00:00");
    iso(0, "1970-01-01T00:00:00+00:00");
    adi_time_zone_set("Asia/Kolkata");
    iso(0, "1970-01-01T05:30:00+05:30");
    adi_time_zone_set("America/St_Johns");
    iso(1795481469354026, "2026-11-23T21:21:09.354026-03:30");
    /* An empty or NULL zone keeps the current one. */
    adi_time_zone_set("");
    iso(1795481469354026, "2026-11-23T21:21:09.354026-03:30");
    adi_time_zone_set(NULL);
    iso(1795481469354026, "2026-11-23T21:21:09.354026-03:30");
    adi_time_zone_set("America/Jamaica");
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t ms = adi_now_ms();
    int64_t us = adi_now_us();
    assert_true(ms > 1700000000000LL); /* after November 2023 */
    assert_true(us / 1000 >= ms);
    int64_t m1 = adi_mono_ms();
    int64_t m2 = adi_mono_ms();
    assert_true(m2 >= m1);
    char out[40];
    size_t n = adi_time_iso(us, out);
    assert_true(n == 32 || (n == 25 && us % 1000000 == 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jamaica),
        cmocka_unit_test(test_utc_and_others),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
