/* SPDX-License-Identifier: MIT */
/*
 * The gateway's config parsers: REDIS_URL forms (password, ACL user, IPv6, database, errors that
 * never echo the password) and CORS_ALLOWED_ORIGINS (blanks, empty items, invalid origins, exact
 * matching).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_config.h"

static void test_redis_url(void **state)
{
    (void)state;
    gw_redis_url_t u;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(gw_redis_url_parse("redis://127.0.0.1:6379", &u, &err), ADI_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_string_equal(u.password, "");
    assert_int_equal(u.db, 0);
    assert_int_equal(gw_redis_url_parse("redis://redis.svc", &u, &err), ADI_OK);
    assert_string_equal(u.host, "redis.svc");
    assert_int_equal(u.port, 6379);
    assert_int_equal(gw_redis_url_parse("redis://:s%40cret@h:7000/3", &u, &err), ADI_OK);
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.password, "s@cret");
    assert_string_equal(u.user, "");
    assert_int_equal(u.db, 3);
    assert_int_equal(gw_redis_url_parse("redis://gw:pw@h/", &u, &err), ADI_OK);
    assert_string_equal(u.user, "gw");
    assert_string_equal(u.password, "pw");
    assert_int_equal(gw_redis_url_parse("redis://onlypw@h", &u, &err), ADI_OK);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "onlypw");
    assert_int_equal(gw_redis_url_parse("redis://[::1]:6380", &u, &err), ADI_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6380);

    static const char *const bad[] = {
        "http://h",    "redis://",    "redis://:pw@",  "redis://h:0",  "redis://h:99999",
        "redis://h:x", "redis://h/x", "redis://h?x=1", "redis://[::1", NULL,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        adi_error_clear(&err);
        assert_int_equal(gw_redis_url_parse(bad[i], &u, &err), ADI_INVALID);
        assert_true(strlen(err.message) > 0);
    }
    adi_error_clear(&err);
    assert_int_equal(gw_redis_url_parse("redis://:hunter2@h:0", &u, &err), ADI_INVALID);
    assert_null(strstr(err.message, "hunter2"));
}

static void test_origins(void **state)
{
    (void)state;
    gw_origins_t *o = malloc(sizeof(*o));
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(
        gw_origins_parse(" https://app.example.com, http://localhost:3000 ,,", o, &err), ADI_OK);
    assert_int_equal(o->n, 2);
    assert_string_equal(o->items[0], "https://app.example.com");
    assert_string_equal(o->items[1], "http://localhost:3000");
    assert_true(gw_origins_allowed(o, ADI_STR("http://localhost:3000")));
    assert_true(gw_origins_allowed(o, ADI_STR("https://app.example.com")));
    assert_false(gw_origins_allowed(o, ADI_STR("http://localhost:3001")));
    assert_false(gw_origins_allowed(o, ADI_STR("https://app.example.com.evil")));
    assert_false(gw_origins_allowed(o, ADI_STR("HTTPS://APP.EXAMPLE.COM")));
    assert_false(gw_origins_allowed(o, ADI_STR("null")));
    assert_false(gw_origins_allowed(o, ADI_STR_NULL));

    assert_int_equal(gw_origins_parse("", o, &err), ADI_OK);
    assert_int_equal(o->n, 0);
    assert_false(gw_origins_allowed(o, ADI_STR("http://localhost:3000")));

    static const char *const bad[] = {"*",         "localhost:3000", "https://a.example/",
                                      "ftp://a",   "https://a:b",    "https://",
                                      "https://a:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        adi_error_clear(&err);
        assert_int_equal(gw_origins_parse(bad[i], o, &err), ADI_INVALID);
    }
    char many[GW_MAX_ORIGINS * 24];
    size_t n = 0;
    for (int i = 0; i <= GW_MAX_ORIGINS; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "http://h%d,", i);
    adi_error_clear(&err);
    assert_int_equal(gw_origins_parse(many, o, &err), ADI_INVALID);
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_url),
        cmocka_unit_test(test_origins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
