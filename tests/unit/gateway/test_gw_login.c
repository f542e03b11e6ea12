/* SPDX-License-Identifier: MIT */
/*
 * Login throttling, pure parts: the account key (sha256 of the lower-cased username, bounded), the
 * address key, the outcome of an attempt per reply, the username read from a converted body, the
 * check script's reply and the 429 body. The scripts themselves run against a real Redis in the
 * e2e tests (test_gateway_auth.py, private gateway with the test playing auth).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adi/proto.h"
#include "gw_login.h"

static void test_keys(void **state)
{
    (void)state;
    char a[GW_LOGIN_KEY_MAX + 1], b[GW_LOGIN_KEY_MAX + 1];
    /* sha256("admin@example.com") */
    assert_true(gw_login_account_key(ADI_STR("admin@example.com"), a));
    assert_string_equal(a, "gw:{login}:a:"
                           "258d8dc916db8cea2cafb6c3cd0cb0246efe061421dbd83ec3a350428cabda4f");
    /* Case does not matter: the same account. */
    assert_true(gw_login_account_key(ADI_STR("Admin@Example.COM"), b));
    assert_string_equal(a, b);
    /* Nor does padding, which auth strips: no fresh counter per whitespace variant. */
    assert_true(gw_login_account_key(ADI_STR(" \tadmin@example.com\r\n "), b));
    assert_string_equal(a, b);
    assert_false(gw_login_account_key(ADI_STR("   "), b));
    assert_true(gw_login_account_key(ADI_STR("other@example.com"), b));
    assert_string_not_equal(a, b);
    /* Empty or longer than the API allows: no account key. */
    assert_false(gw_login_account_key(ADI_STR(""), a));
    assert_string_equal(a, "");
    assert_false(gw_login_account_key(ADI_STR_NULL, a));
    char longname[GW_LOGIN_USER_MAX + 2];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_false(gw_login_account_key(adi_str_c(longname), a));
    longname[GW_LOGIN_USER_MAX] = '\0';
    assert_true(gw_login_account_key(adi_str_c(longname), a));

    gw_login_address_key("127.0.0.1", a);
    assert_string_equal(a, "gw:{login}:i:127.0.0.1");
    gw_login_address_key("2001:db8::1", a);
    assert_string_equal(a, "gw:{login}:i:2001:db8::1");
    gw_login_address_key("", a);
    assert_string_equal(a, "gw:{login}:i:unknown");
    gw_login_address_key(NULL, a);
    assert_string_equal(a, "gw:{login}:i:unknown");
    /* Both keys carry the same hash tag: one Cluster slot, one script. */
    assert_non_null(strstr(a, "{login}"));
}

static void test_outcome(void **state)
{
    (void)state;
    assert_int_equal(gw_login_outcome(401, true), GW_LOGIN_FAILED);
    assert_int_equal(gw_login_outcome(200, true), GW_LOGIN_SUCCEEDED);
    assert_int_equal(gw_login_outcome(400, true), GW_LOGIN_VOID);
    assert_int_equal(gw_login_outcome(503, true), GW_LOGIN_VOID);
    assert_int_equal(gw_login_outcome(500, true), GW_LOGIN_VOID);
    /* Answers that did not come from auth (504, replayed, client gone) never count. */
    assert_int_equal(gw_login_outcome(401, false), GW_LOGIN_VOID);
    assert_int_equal(gw_login_outcome(200, false), GW_LOGIN_VOID);
    assert_int_equal(gw_login_outcome(504, false), GW_LOGIN_VOID);
}

/* Converts JSON to msgpack as the gateway does with a request body. */
static void mp(const char *json, adi_buf_t *out)
{
    adi_buf_reset(out);
    assert_int_equal(adi_json_to_msgpack(json, strlen(json), out, NULL), ADI_OK);
}

static void test_body_member(void **state)
{
    (void)state;
    adi_buf_t b;
    adi_buf_init(&b);
    adi_str_t v;
    mp("{\"password\":\"x\",\"username\":\"a@b.c\"}", &b);
    assert_true(gw_body_string_member(b.data, b.len, "username", &v));
    assert_true(adi_str_eq_c(v, "a@b.c"));
    assert_true(v.ptr >= b.data && v.ptr + v.len <= b.data + b.len); /* points into the body */
    mp("{\"username\":5}", &b);
    assert_false(gw_body_string_member(b.data, b.len, "username", &v));
    assert_null(v.ptr);
    mp("{\"user\":\"a\"}", &b);
    assert_false(gw_body_string_member(b.data, b.len, "username", &v));
    mp("[\"username\",\"a\"]", &b);
    assert_false(gw_body_string_member(b.data, b.len, "username", &v));
    mp("{}", &b);
    assert_false(gw_body_string_member(b.data, b.len, "username", &v));
    mp("{\"username\":\"\"}", &b);
    assert_true(gw_body_string_member(b.data, b.len, "username", &v));
    assert_int_equal(v.len, 0);
    assert_false(gw_body_string_member(NULL, 0, "username", &v));
    /* Truncated msgpack is not a map. */
    mp("{\"username\":\"abcdef\"}", &b);
    assert_false(gw_body_string_member(b.data, b.len - 3, "username", &v));
    adi_buf_dispose(&b);
}

static void test_check_parse(void **state)
{
    (void)state;
    gw_login_check_t c;
    const long long locked[] = {0, 42};
    assert_true(gw_login_check_parse(locked, 2, &c));
    assert_false(c.allowed);
    assert_int_equal(c.retry_after, 42);
    const long long zero[] = {0, 0};
    assert_true(gw_login_check_parse(zero, 2, &c));
    assert_int_equal(c.retry_after, 1); /* never "try again in 0 seconds" */
    const long long ok[] = {1, 0, 1700000060000, 1699999000000, 1700000120000};
    assert_true(gw_login_check_parse(ok, 5, &c));
    assert_true(c.allowed);
    assert_string_equal(c.prev[0], "0");
    assert_string_equal(c.next[0], "1700000060000");
    assert_string_equal(c.prev[1], "1699999000000");
    assert_string_equal(c.next[1], "1700000120000");
    const long long bad1[] = {1, 0, 0};
    assert_false(gw_login_check_parse(bad1, 3, &c));
    const long long bad2[] = {2, 0};
    assert_false(gw_login_check_parse(bad2, 2, &c));
    const long long bad3[] = {1, -1, 0, 0, 0};
    assert_false(gw_login_check_parse(bad3, 5, &c));
    assert_false(gw_login_check_parse(ok, 0, &c));
}

static void test_render(void **state)
{
    (void)state;
    adi_buf_t b;
    adi_buf_init(&b);
    gw_login_render_locked(60, &b);
    adi_buf_append(&b, "", 1);
    assert_string_equal(
        b.data, "{\"detail\": \"Too many failed login attempts. Try again in 60 seconds.\"}");
    adi_buf_dispose(&b);
    /* The scripts name both keys and take the time from Redis. */
    assert_non_null(strstr(gw_login_check_lua, "redis.call('TIME')"));
    assert_non_null(strstr(gw_login_check_lua, "KEYS[i]"));
    assert_non_null(strstr(gw_login_settle_lua, "KEYS[2]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),        cmocka_unit_test(test_outcome),
        cmocka_unit_test(test_body_member), cmocka_unit_test(test_check_parse),
        cmocka_unit_test(test_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
