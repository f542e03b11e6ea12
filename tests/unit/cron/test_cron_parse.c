/* SPDX-License-Identifier: MIT */
/*
 * The cron parser: every item form (*, steps, ranges, lists, names, 0/7 Sunday), the aliases,
 * blanks, the Vixie '*' flags, and one clear error per bad input naming its field, including
 * impossible days, over-long input and arbitrary bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "adi/cron.h"

static adi_cron_t parse_ok(const char *expr)
{
    adi_cron_t c;
    adi_error_t err;
    adi_error_clear(&err);
    adi_err rc = adi_cron_parse(adi_str_c(expr), &c, &err);
    if (rc != ADI_OK)
        fail_msg("\"%s\": %s", expr, err.message);
    return c;
}

/* Bit set of the listed values (terminated by -1). */
static uint64_t bits(int first, ...)
{
    uint64_t b = 0;
    va_list ap;
    va_start(ap, first);
    for (int v = first; v >= 0; v = va_arg(ap, int))
        b |= (uint64_t)1 << v;
    va_end(ap);
    return b;
}

static void test_items(void **state)
{
    (void)state;
    adi_cron_t c = parse_ok("*/15 * * * *");
    assert_true(c.minutes == bits(0, 15, 30, 45, -1));
    assert_true(c.hours == 0xffffffu);
    assert_true(c.days == 0xfffffffeu);
    assert_true(c.months == 0x1ffeu);
    assert_true(c.weekdays == 0x7fu);
    assert_true(c.days_star && c.weekdays_star);

    c = parse_ok("5,10-12,50-59/5 0-23/6 1,15 */3 1-5");
    assert_true(c.minutes == bits(5, 10, 11, 12, 50, 55, -1));
    assert_true(c.hours == bits(0, 6, 12, 18, -1));
    assert_true(c.days == bits(1, 15, -1));
    assert_true(c.months == bits(1, 4, 7, 10, -1));
    assert_true(c.weekdays == bits(1, 2, 3, 4, 5, -1));
    assert_false(c.days_star || c.weekdays_star);

    /* "a/n" runs to the field's end. */
    c = parse_ok("10/20 22/1 * * *");
    assert_true(c.minutes == bits(10, 30, 50, -1));
    assert_true(c.hours == bits(22, 23, -1));
    /* Blanks and tabs around and between fields. */
    c = parse_ok(" \t0\t 3  * *   0 \t");
    assert_true(c.minutes == 1u && c.hours == bits(3, -1) && c.weekdays == 1u);
}

static void test_names_and_sunday(void **state)
{
    (void)state;
    adi_cron_t c = parse_ok("0 0 * JAN-MAR,dec mon-FRI");
    assert_true(c.months == bits(1, 2, 3, 12, -1));
    assert_true(c.weekdays == bits(1, 2, 3, 4, 5, -1));
    c = parse_ok("0 0 * * 7");
    assert_true(c.weekdays == 1u);
    c = parse_ok("0 0 * * 5-7");
    assert_true(c.weekdays == bits(0, 5, 6, -1));
    c = parse_ok("0 0 * * sun,Sat");
    assert_true(c.weekdays == bits(0, 6, -1));
    c = parse_ok("0 0 * * */2");
    assert_true(c.weekdays == bits(0, 2, 4, 6, -1));
    assert_true(c.weekdays_star); /* Vixie: "*" + "/n" counts as unrestricted */
    c = parse_ok("0 0 * * 0-7");
    assert_true(c.weekdays == 0x7fu);
}

static void test_aliases(void **state)
{
    (void)state;
    static const struct {
        const char *alias, *expr;
    } cases[] = {
        {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"},  {"@yearly", "0 0 1 1 *"},
        {"@annually", "0 0 1 1 *"}, {" @WEEKLY ", "0 0 * * 0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        adi_cron_t a = parse_ok(cases[i].alias);
        adi_cron_t b = parse_ok(cases[i].expr);
        assert_memory_equal(&a, &b, sizeof(a));
    }
}

/* Fails unless `expr` is refused with a message containing `want` under field `field`. */
static void parse_bad(adi_str_t expr, const char *field, const char *want)
{
    adi_cron_t c;
    memset(&c, 0xab, sizeof(c));
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_cron_parse(expr, &c, &err), ADI_INVALID);
    assert_int_equal(err.code, ADI_INVALID);
    if (strstr(err.message, want) == NULL)
        fail_msg("\"%.*s\": message \"%s\" lacks \"%s\"", (int)expr.len, expr.ptr, err.message,
                 want);
    assert_int_equal(err.nfields, 1);
    assert_string_equal(err.fields[0].field, field);
    assert_string_equal(err.fields[0].message, err.message);
    /* The output is zeroed on failure. */
    adi_cron_t zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&c, &zero, sizeof(c));
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *field, *want;
    } cases[] = {
        {"", "cron", "the expression is empty."},
        {" \t ", "cron", "the expression is empty."},
        {"* * * *", "cron",
         "expected 5 fields (minute hour day-of-month month day-of-week), got 4."},
        {"* * * * * *", "cron", "got 6."},
        {"60 * * * *", "minute", "minute: 60 is out of range 0-59."},
        {"* 24 * * *", "hour", "hour: 24 is out of range 0-23."},
        {"* * 0 * *", "day_of_month", "day-of-month: 0 is out of range 1-31."},
        {"* * 32 * *", "day_of_month", "day-of-month: 32 is out of range 1-31."},
        {"* * * 13 *", "month", "month: 13 is out of range 1-12."},
        {"* * * * 8", "day_of_week", "day-of-week: 8 is out of range 0-7."},
        {"99999999999999999999 * * * *", "minute", "is out of range 0-59."},
        {"* * * FOO *", "month", "month: \"FOO\" is not a month number or name (JAN-DEC)."},
        {"* * * JANUARY *", "month", "\"JANUARY\" is not a month number or name"},
        {"* * * * FUNDAY", "day_of_week", "day-of-week: \"FUNDAY\" is not a weekday number"},
        {"* MON * * *", "hour", "hour: \"MON\" is not a number."},
        {"a * * * *", "minute", "minute: \"a\" is not a number."},
        {"1x * * * *", "minute", "minute: \"1x\" is not a number."},
        {"5-2 * * * *", "minute", "minute: range \"5-2\" is backwards."},
        {"* * * * FRI-MON", "day_of_week", "range \"FRI-MON\" is backwards."},
        {"*/0 * * * *", "minute", "minute: step 0 is out of range 1-60."},
        {"*/61 * * * *", "minute", "step 61 is out of range 1-60."},
        {"* */x * * *", "hour", "hour: step \"x\" is not a number."},
        {"1/ * * * *", "minute", "minute: a step is missing after '/'."},
        {"-5 * * * *", "minute", "minute: a value is missing."},
        {"5- * * * *", "minute", "minute: a value is missing."},
        {"1,,2 * * * *", "minute", "minute: empty list item."},
        {"1, * * * *", "minute", "minute: empty list item."},
        {"*-5 * * * *", "minute", "'*' stands alone or takes a step"},
        {"** * * * *", "minute", "'*' stands alone or takes a step"},
        {"0 0 30 2 *", "day_of_month", "day-of-month: no selected day occurs"},
        {"0 0 31 4,6,9,11 *", "day_of_month", "no selected day occurs"},
        {"0 0 31 4 */2", "day_of_month", "no selected day occurs"},
        {"@reboot", "cron", "\"@reboot\" is not supported"},
        {"@often", "cron", "unknown alias \"@often\""},
        {"@", "cron", "unknown alias"},
        {"@daily 5", "cron", "unknown alias"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_bad(adi_str_c(cases[i].expr), cases[i].field, cases[i].want);

    /* Over-long input, embedded NUL and control bytes are refused, never crash. */
    char big[ADI_CRON_MAX_LEN + 2];
    memset(big, '*', sizeof(big));
    parse_bad((adi_str_t){big, sizeof(big)}, "cron", "longer than 256 characters");
    parse_bad((adi_str_t){"0 0\0 * * *", 10}, "hour", "hour: \"0?\" is not a number.");
    parse_bad(ADI_STR("0 \x01 * * *"), "hour", "\"?\" is not a number.");
    parse_bad(ADI_STR("0 \"\\ * * *"), "hour", "\"??\" is not a number.");
    parse_bad(ADI_STR_NULL, "cron", "the expression is empty.");
    /* Long bad tokens are cut in the message. */
    parse_bad(ADI_STR("abcdefghijklmnopqrstuvwxyz * * * *"), "minute",
              "\"abcdefghijklmnopqrst...\" is not a number.");
}

static void test_valid_edges(void **state)
{
    (void)state;
    /* With both day fields restricted the weekday widens an impossible day (Vixie). */
    adi_cron_t c = parse_ok("0 0 31 4 1");
    assert_true(c.days == bits(31, -1) && c.weekdays == bits(1, -1));
    parse_ok("0 0 29 2 *");
    parse_ok("59 23 31 12 6");
    parse_ok("0-59 0-23 1-31 1-12 0-7");
    /* A NULL error pointer is allowed. */
    assert_int_equal(adi_cron_parse(ADI_STR("bad"), &c, NULL), ADI_INVALID);
}

/* Every byte string of a few shapes parses or fails cleanly (a poor man's fuzz run). */
static void test_any_bytes(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789*/-,@ \tJANSUNmon\x80\xff";
    unsigned seed = 12345;
    char buf[40];
    for (int round = 0; round < 20000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        adi_cron_t c;
        adi_error_t err;
        adi_error_clear(&err);
        adi_err rc = adi_cron_parse((adi_str_t){buf, n}, &c, &err);
        assert_true(rc == ADI_OK || (rc == ADI_INVALID && err.message[0] != '\0'));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items),       cmocka_unit_test(test_names_and_sunday),
        cmocka_unit_test(test_aliases),     cmocka_unit_test(test_errors),
        cmocka_unit_test(test_valid_edges), cmocka_unit_test(test_any_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
