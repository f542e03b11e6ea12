/* SPDX-License-Identifier: MIT */
/*
 * Next fire times: strictly after the given instant, in the process's time zone, with the DST
 * rules (a time in the spring-forward gap fires once at the end of the gap, a repeated time fires
 * once, at its first occurrence) in America/New_York and America/Jamaica (DST 1974-1983), the
 * Vixie day rule, leap days, a whole-cycle search and the bounds on the input instant.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "adi/cron.h"

/* An instant from UTC fields. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (int64_t)timegm(&tm);
}

/* "YYYY-MM-DD HH:MM:SS ZZZ" of `t` in the process's zone. */
static const char *local(int64_t t, char out[64])
{
    time_t tt = (time_t)t;
    struct tm tm;
    assert_non_null(localtime_r(&tt, &tm));
    strftime(out, 64, "%Y-%m-%d %H:%M:%S %Z", &tm);
    return out;
}

/* Checks that the fire times of `expr` after `after` are `want...` (local strings, NULL-ended). */
static void expect(const char *expr, int64_t after, ...)
{
    adi_cron_t c;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_cron_parse(adi_str_c(expr), &c, &err) != ADI_OK)
        fail_msg("%s: %s", expr, err.message);
    va_list ap;
    va_start(ap, after);
    for (const char *want = va_arg(ap, const char *); want != NULL;
         want = va_arg(ap, const char *)) {
        int64_t next = 0;
        if (adi_cron_next(&c, after, &next, &err) != ADI_OK)
            fail_msg("%s: %s", expr, err.message);
        assert_true(next > after);
        char got[64];
        if (strcmp(local(next, got), want) != 0)
            fail_msg("%s after %lld: got %s, want %s", expr, (long long)after, got, want);
        after = next;
    }
    va_end(ap);
}

static void test_utc(void **state)
{
    (void)state;
    adi_time_zone_set("UTC");
    int64_t t = utc(2024, 1, 1, 0, 7);
    expect("*/15 * * * *", t, "2024-01-01 00:15:00 UTC", "2024-01-01 00:30:00 UTC",
           "2024-01-01 00:45:00 UTC", "2024-01-01 01:00:00 UTC", NULL);
    /* Strictly after: an instant on a fire time gives the next one; seconds are ignored. */
    expect("*/15 * * * *", utc(2024, 1, 1, 0, 15), "2024-01-01 00:30:00 UTC", NULL);
    expect("*/15 * * * *", utc(2024, 1, 1, 0, 14) + 59, "2024-01-01 00:15:00 UTC", NULL);
    expect("* * * * *", utc(2024, 12, 31, 23, 59) + 30, "2025-01-01 00:00:00 UTC", NULL);
    expect("@hourly", t, "2024-01-01 01:00:00 UTC", "2024-01-01 02:00:00 UTC", NULL);
    expect("@monthly", t, "2024-02-01 00:00:00 UTC", "2024-03-01 00:00:00 UTC", NULL);
    expect("@yearly", t, "2025-01-01 00:00:00 UTC", NULL);
    expect("0 9-17/4 * * MON-FRI", utc(2024, 1, 5, 16, 0), "2024-01-05 17:00:00 UTC",
           "2024-01-08 09:00:00 UTC", "2024-01-08 13:00:00 UTC", NULL);
    expect("0 0 1 */4 *", t, "2024-05-01 00:00:00 UTC", "2024-09-01 00:00:00 UTC",
           "2025-01-01 00:00:00 UTC", NULL);
    /* Leap days, and the last day of 31-day months only. */
    expect("0 0 29 2 *", utc(2024, 3, 1, 0, 0), "2028-02-29 00:00:00 UTC",
           "2032-02-29 00:00:00 UTC", NULL);
    expect("0 0 31 * *", utc(2024, 1, 31, 0, 0), "2024-03-31 00:00:00 UTC",
           "2024-05-31 00:00:00 UTC", NULL);
    /* Across 2100 (not a leap year): 2096 -> 2104. */
    expect("0 0 29 2 *", utc(2096, 3, 1, 0, 0), "2104-02-29 00:00:00 UTC", NULL);
    /* Feb 29 on a Sunday (both '*'-flagged: AND) needs a long search. */
    expect("0 0 29 2 */7", utc(2024, 1, 1, 0, 0), "2032-02-29 00:00:00 UTC", NULL);
}

static void test_vixie_rule(void **state)
{
    (void)state;
    adi_time_zone_set("UTC");
    int64_t sep1 = utc(2024, 9, 1, 0, 0); /* a Sunday */
    /* Both restricted: the 13th OR any Friday. */
    expect("0 0 13 * 5", sep1, "2024-09-06 00:00:00 UTC", "2024-09-13 00:00:00 UTC",
           "2024-09-20 00:00:00 UTC", "2024-09-27 00:00:00 UTC", "2024-10-04 00:00:00 UTC",
           "2024-10-11 00:00:00 UTC", "2024-10-13 00:00:00 UTC", NULL);
    /* One of them '*': AND (so only the day field or only the weekday counts). */
    expect("0 0 13 * *", sep1, "2024-09-13 00:00:00 UTC", "2024-10-13 00:00:00 UTC", NULL);
    expect("0 0 * * 5", sep1, "2024-09-06 00:00:00 UTC", "2024-09-13 00:00:00 UTC", NULL);
    /* "*" + "/n" counts as '*' (Vixie): Fridays that are odd days. */
    expect("0 0 */2 * 5", sep1, "2024-09-13 00:00:00 UTC", "2024-09-27 00:00:00 UTC",
           "2024-10-11 00:00:00 UTC", NULL);
    /* 7 is Sunday. */
    expect("30 6 * * 7", sep1, "2024-09-01 06:30:00 UTC", "2024-09-08 06:30:00 UTC", NULL);
}

static void test_new_york(void **state)
{
    (void)state;
    adi_time_zone_set("America/New_York");
    /* The default rotate_deks schedule: Sunday 03:00 local. */
    expect("0 3 * * 0", utc(2024, 1, 3, 12, 0), "2024-01-07 03:00:00 EST",
           "2024-01-14 03:00:00 EST", NULL);
    /* Spring forward 2024-03-10 02:00 EST -> 03:00 EDT: 02:30 does not exist that day. */
    expect("30 2 * * *", utc(2024, 3, 9, 17, 0), "2024-03-10 03:00:00 EDT",
           "2024-03-11 02:30:00 EDT", NULL);
    expect("0 2 * * *", utc(2024, 3, 9, 17, 0), "2024-03-10 03:00:00 EDT",
           "2024-03-11 02:00:00 EDT", NULL);
    /* Every matching time in the gap and 03:00 itself coalesce into one fire. */
    expect("*/15 * * * *", utc(2024, 3, 10, 6, 40), "2024-03-10 01:45:00 EST",
           "2024-03-10 03:00:00 EDT", "2024-03-10 03:15:00 EDT", NULL);
    expect("0 3 * * *", utc(2024, 3, 9, 17, 0), "2024-03-10 03:00:00 EDT",
           "2024-03-11 03:00:00 EDT", NULL);
    /* The Sunday job lands on the spring-forward Sunday unaffected (03:00 exists). */
    expect("0 3 * * 0", utc(2024, 3, 9, 17, 0), "2024-03-10 03:00:00 EDT", NULL);
    /* Fall back 2024-11-03 02:00 EDT -> 01:00 EST: 01:30 happens twice and fires once. */
    expect("30 1 * * *", utc(2024, 11, 2, 16, 0), "2024-11-03 01:30:00 EDT",
           "2024-11-04 01:30:00 EST", NULL);
    expect("*/30 * * * *", utc(2024, 11, 3, 4, 45), "2024-11-03 01:00:00 EDT",
           "2024-11-03 01:30:00 EDT", "2024-11-03 02:00:00 EST", NULL);
    /* Started inside the repeated hour: its second occurrence is the first one still ahead. */
    expect("30 1 * * *", utc(2024, 11, 3, 6, 10), "2024-11-03 01:30:00 EST",
           "2024-11-04 01:30:00 EST", NULL);
    /* The hourly syncs keep firing every real hour around both changes... */
    expect("0 * * * *", utc(2024, 3, 10, 5, 30), "2024-03-10 01:00:00 EST",
           "2024-03-10 03:00:00 EDT", "2024-03-10 04:00:00 EDT", NULL);
    /* ...and the repeated hour fires once. */
    expect("0 * * * *", utc(2024, 11, 3, 4, 30), "2024-11-03 01:00:00 EDT",
           "2024-11-03 02:00:00 EST", NULL);
}

static void test_jamaica(void **state)
{
    (void)state;
    adi_time_zone_set("America/Jamaica");
    /* No DST today: Monday 2026-11-23 -> Sunday 03:00 -05 = 08:00Z. */
    int64_t next = 0;
    adi_cron_t c;
    assert_int_equal(adi_cron_parse(ADI_STR("0 3 * * 0"), &c, NULL), ADI_OK);
    assert_int_equal(adi_cron_next(&c, utc(2026, 11, 23, 12, 0), &next, NULL), ADI_OK);
    assert_true(next == utc(2026, 11, 29, 8, 0));
    expect("0 * * * *", utc(2026, 11, 23, 12, 30), "2026-11-23 08:00:00 EST",
           "2026-11-23 09:00:00 EST", NULL);
    /* Jamaica kept DST in 1974-1983: 1980-04-27 02:00 EST -> 03:00 EDT. */
    expect("30 2 * * *", utc(1980, 4, 26, 17, 0), "1980-04-27 03:00:00 EDT",
           "1980-04-28 02:30:00 EDT", NULL);
    /* 1980-10-26 02:00 EDT -> 01:00 EST: 01:15 fires once. */
    expect("15 1 * * *", utc(1980, 10, 25, 17, 0), "1980-10-26 01:15:00 EDT",
           "1980-10-27 01:15:00 EST", NULL);
}

static void test_bounds(void **state)
{
    (void)state;
    adi_time_zone_set("UTC");
    adi_cron_t c;
    assert_int_equal(adi_cron_parse(ADI_STR("* * * * *"), &c, NULL), ADI_OK);
    int64_t next = 99;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_cron_next(&c, -1, &next, &err), ADI_INVALID);
    assert_int_equal(next, 0);
    assert_non_null(strstr(err.message, "outside years 1970-9999"));
    assert_int_equal(adi_cron_next(&c, 253402300800LL, &next, NULL), ADI_INVALID);
    assert_int_equal(adi_cron_next(&c, 253402300799LL - 30, &next, NULL), ADI_OK);
    assert_true(next == 253402300800LL);
    /* A hand-made expression that can never fire is reported, not looped on. */
    adi_cron_t never;
    memset(&never, 0, sizeof(never));
    never.minutes = 1;
    never.hours = 1;
    never.days = 1u << 30;
    never.months = 1u << 2;
    never.weekdays = 0x7f;
    never.days_star = true;
    adi_error_clear(&err);
    assert_int_equal(adi_cron_next(&never, 0, &next, &err), ADI_NOT_FOUND);
    assert_string_equal(err.message, "the expression never fires.");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc),      cmocka_unit_test(test_vixie_rule),
        cmocka_unit_test(test_new_york), cmocka_unit_test(test_jamaica),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
