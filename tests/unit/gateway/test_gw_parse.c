/* SPDX-License-Identifier: MIT */
/*
 * Request parsing: query and path parameters (decoding, limits, replacement, msgpack packing),
 * X-Request-ID and Idempotency-Key values, Content-Type, UTF-8, and the classification of a JSON
 * body after its conversion to msgpack (DRF's "Expected a dictionary, but got <type>").
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
#include "gw_parse.h"

/* The parameters as JSON text (through the proto library's msgpack->JSON writer). */
static char *params_json(const gw_params_t *p)
{
    adi_buf_t mp, js;
    adi_buf_init(&mp);
    adi_buf_init(&js);
    gw_params_pack(p, &mp);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_msgpack_to_json(mp.data, mp.len, &js, &err), ADI_OK);
    char *s = strdup(js.data);
    adi_buf_dispose(&mp);
    adi_buf_dispose(&js);
    return s;
}

static void expect_params(gw_params_t *p, const char *json)
{
    char *s = params_json(p);
    /* Compare without blanks: the writer's spacing is not the point here. */
    char a[4096], b[4096];
    size_t na = 0, nb = 0;
    for (const char *q = s; *q && na < sizeof(a) - 1; q++)
        if (*q != ' ')
            a[na++] = *q;
    for (const char *q = json; *q && nb < sizeof(b) - 1; q++)
        if (*q != ' ')
            b[nb++] = *q;
    a[na] = b[nb] = '\0';
    assert_string_equal(a, b);
    free(s);
}

static gw_params_t *params_new(void)
{
    gw_params_t *p = malloc(sizeof(*p));
    gw_params_init(p);
    return p;
}

static void test_query(void **state)
{
    (void)state;
    gw_params_t *p = params_new();
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(
        gw_params_add_query(p, ADI_STR("action=login&resource_type=a+b%2Fc&flag&=x&&x=%zz"), &err),
        ADI_OK);
    expect_params(p,
                  "{\"action\":\"login\",\"resource_type\":\"a b/c\",\"flag\":\"\",\"x\":\"%zz\"}");
    /* A later pair and then a path parameter replace earlier values of the same name. */
    assert_int_equal(gw_params_add_query(p, ADI_STR("action=logout"), &err), ADI_OK);
    assert_int_equal(gw_params_add_path(p, ADI_STR("flag"), ADI_STR("a+b%20c"), &err), ADI_OK);
    expect_params(p, "{\"action\":\"logout\",\"resource_type\":\"a b/c\",\"flag\":\"a+b c\","
                     "\"x\":\"%zz\"}");
    gw_params_init(p);
    assert_int_equal(gw_params_add_query(p, ADI_STR(""), &err), ADI_OK);
    assert_int_equal(gw_params_add_query(p, ADI_STR_NULL, &err), ADI_OK);
    expect_params(p, "{}");
    assert_int_equal(gw_params_add_query(p, ADI_STR("name=%C3%A9t%C3%A9"), &err), ADI_OK);
    expect_params(p, "{\"name\":\"\xc3\xa9t\xc3\xa9\"}");
    free(p);
}

static void test_query_limits(void **state)
{
    (void)state;
    gw_params_t *p = params_new();
    adi_error_t err;
    char q[8192];
    size_t n = 0;
    for (int i = 0; i < GW_MAX_PARAMS + 1; i++)
        n += (size_t)snprintf(q + n, sizeof(q) - n, "%sk%d=v", i ? "&" : "", i);
    adi_error_clear(&err);
    assert_int_equal(gw_params_add_query(p, (adi_str_t){q, n}, &err), ADI_INVALID);
    assert_non_null(strstr(err.message, "Too many"));

    gw_params_init(p);
    char *big = malloc(GW_PARAM_VALUE_MAX + 16);
    memcpy(big, "v=", 2);
    memset(big + 2, 'a', GW_PARAM_VALUE_MAX + 1);
    adi_error_clear(&err);
    assert_int_equal(gw_params_add_query(p, (adi_str_t){big, GW_PARAM_VALUE_MAX + 3}, &err),
                     ADI_INVALID);
    assert_non_null(strstr(err.message, "too long"));
    free(big);

    static const char *const bad[] = {"a=%FF", "a=%C3", "a=%00", "%ED%A0%80=1", "a=%C0%AF"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gw_params_init(p);
        adi_error_clear(&err);
        assert_int_equal(gw_params_add_query(p, adi_str_c(bad[i]), &err), ADI_INVALID);
        assert_string_equal(err.message, "Malformed query string.");
    }

    /* The total storage is bounded too: many long values end in an error, not an overflow. */
    gw_params_init(p);
    char val[GW_PARAM_VALUE_MAX + 8];
    memset(val, 'b', sizeof(val));
    adi_err e = ADI_OK;
    for (int i = 0; i < GW_MAX_PARAMS && e == ADI_OK; i++) {
        char kv[GW_PARAM_VALUE_MAX + 16];
        int k = snprintf(kv, sizeof(kv), "k%d=", i);
        memcpy(kv + k, val, GW_PARAM_VALUE_MAX);
        adi_error_clear(&err);
        e = gw_params_add_query(p, (adi_str_t){kv, (size_t)k + GW_PARAM_VALUE_MAX}, &err);
    }
    assert_int_equal(e, ADI_INVALID);
    assert_true(p->used <= GW_PARAMS_BYTES);
    free(p);
}

/* Header values go in as they are; a parameter the client may not set can be removed. */
static void test_literal_and_remove(void **state)
{
    (void)state;
    gw_params_t *p = params_new();
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(
        gw_params_add_query(p, ADI_STR("tenant_override=evil&q=1&tenant_override=x"), &err),
        ADI_OK);
    gw_params_remove(p, ADI_STR("tenant_override"));
    expect_params(p, "{\"q\":\"1\"}");
    assert_int_equal(gw_params_add_literal(p, ADI_STR("tenant_override"), ADI_STR("a%20b+c"), &err),
                     ADI_OK);
    expect_params(p, "{\"q\":\"1\",\"tenant_override\":\"a%20b+c\"}");
    assert_int_equal(gw_params_add_literal(p, ADI_STR("q"), ADI_STR(""), &err), ADI_OK);
    expect_params(p, "{\"q\":\"\",\"tenant_override\":\"a%20b+c\"}");
    gw_params_remove(p, ADI_STR("nothing"));
    gw_params_remove(p, ADI_STR("q"));
    expect_params(p, "{\"tenant_override\":\"a%20b+c\"}");
    /* Still bounded and checked: NUL, bad UTF-8 and over-long values are refused. */
    assert_int_equal(gw_params_add_literal(p, ADI_STR("t"), (adi_str_t){"a\0b", 3}, &err),
                     ADI_INVALID);
    assert_int_equal(gw_params_add_literal(p, ADI_STR("t"), ADI_STR("caf\xc3"), &err), ADI_INVALID);
    char big[GW_PARAM_VALUE_MAX + 2];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(gw_params_add_literal(p, ADI_STR("t"), adi_str_c(big), &err), ADI_INVALID);
    expect_params(p, "{\"tenant_override\":\"a%20b+c\"}");
    free(p);
}

static void test_request_id(void **state)
{
    (void)state;
    assert_true(gw_request_id_valid(ADI_STR("abc.DEF-1_2")));
    assert_true(gw_request_id_valid(ADI_STR("2f1c6d1e-0d8e-4a53-9a8e-7f6a5b4c3d2e")));
    assert_false(gw_request_id_valid(ADI_STR("")));
    assert_false(gw_request_id_valid(ADI_STR_NULL));
    assert_false(gw_request_id_valid(ADI_STR("has space")));
    assert_false(gw_request_id_valid(ADI_STR("new\nline")));
    assert_false(gw_request_id_valid(ADI_STR("quote\"")));
    char id[GW_REQUEST_ID_MAX + 2];
    memset(id, 'a', sizeof(id));
    assert_true(gw_request_id_valid((adi_str_t){id, GW_REQUEST_ID_MAX}));
    assert_false(gw_request_id_valid((adi_str_t){id, GW_REQUEST_ID_MAX + 1}));
}

static void test_idem_key(void **state)
{
    (void)state;
    adi_str_t k;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(
        gw_idem_key_parse(ADI_STR("\"8e03978e-40d5-43e8-bc93-6894a57f9324\""), &k, &err), ADI_OK);
    assert_true(adi_str_eq_c(k, "8e03978e-40d5-43e8-bc93-6894a57f9324"));
    assert_int_equal(gw_idem_key_parse(ADI_STR("  order-42 "), &k, &err), ADI_OK);
    assert_true(adi_str_eq_c(k, "order-42"));
    static const char *const bad[] = {"", "\"\"", "a b", "\"a\\b\"", "caf\xc3\xa9", "  "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        adi_error_clear(&err);
        assert_int_equal(gw_idem_key_parse(adi_str_c(bad[i]), &k, &err), ADI_INVALID);
        assert_string_equal(err.message, "Invalid Idempotency-Key header.");
        assert_null(k.ptr);
    }
    char longkey[GW_IDEM_KEY_MAX + 1];
    memset(longkey, 'k', sizeof(longkey));
    assert_int_equal(gw_idem_key_parse((adi_str_t){longkey, GW_IDEM_KEY_MAX}, &k, &err), ADI_OK);
    assert_int_equal(gw_idem_key_parse((adi_str_t){longkey, GW_IDEM_KEY_MAX + 1}, &k, &err),
                     ADI_INVALID);
}

static void test_content_type(void **state)
{
    (void)state;
    assert_true(gw_content_type_is_json(ADI_STR("application/json")));
    assert_true(gw_content_type_is_json(ADI_STR("Application/JSON; charset=utf-8")));
    assert_true(gw_content_type_is_json(ADI_STR("application/merge-patch+json")));
    assert_false(gw_content_type_is_json(ADI_STR("text/plain")));
    assert_false(gw_content_type_is_json(ADI_STR("application/x-www-form-urlencoded")));
    assert_false(gw_content_type_is_json(ADI_STR("application/+json")));
    assert_false(gw_content_type_is_json(ADI_STR("application/jsonx")));
    assert_false(gw_content_type_is_json(ADI_STR_NULL));
}

/* JSON text -> msgpack (proto) -> the type name DRF reports, NULL for an object. */
static const char *type_of(const char *json)
{
    static char name[16];
    adi_buf_t mp;
    adi_buf_init(&mp);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_json_to_msgpack(json, strlen(json), &mp, &err), ADI_OK);
    const char *t = gw_body_type(mp.data, mp.len);
    if (t != NULL)
        snprintf(name, sizeof(name), "%s", t);
    adi_buf_dispose(&mp);
    return t ? name : NULL;
}

static void test_body_type(void **state)
{
    (void)state;
    assert_null(type_of("{}"));
    assert_null(type_of("{\"a\": [1, 2, {\"b\": null}]}"));
    assert_string_equal(type_of("[1, 2]"), "list");
    assert_string_equal(type_of("[]"), "list");
    assert_string_equal(type_of("\"s\""), "str");
    assert_string_equal(type_of("1"), "int");
    assert_string_equal(type_of("-70000"), "int");
    assert_string_equal(type_of("1.5"), "float");
    assert_string_equal(type_of("true"), "bool");
    assert_string_equal(type_of("null"), "NoneType");
    assert_string_equal(gw_body_type("", 0), "NoneType");
    assert_string_equal(gw_body_type("\xc4\x01x", 3), "bytes");
    /* Malformed JSON is the converter's to refuse (the gateway answers 400 "JSON parse error"). */
    adi_buf_t mp;
    adi_buf_init(&mp);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_json_to_msgpack("{bad", 4, &mp, &err), ADI_INVALID);
    assert_true(strlen(err.message) > 0);
    adi_buf_dispose(&mp);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(gw_utf8_valid("plain", 5));
    assert_true(gw_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    assert_false(gw_utf8_valid("\xc3", 1));
    assert_false(gw_utf8_valid("\xe2\x82", 2));
    assert_false(gw_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(gw_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(gw_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(gw_utf8_valid("\xff", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query),        cmocka_unit_test(test_query_limits),
        cmocka_unit_test(test_request_id),   cmocka_unit_test(test_idem_key),
        cmocka_unit_test(test_content_type), cmocka_unit_test(test_body_type),
        cmocka_unit_test(test_utf8),         cmocka_unit_test(test_literal_and_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
