/* SPDX-License-Identifier: MIT */
/*
 * The gateway's JSON <-> msgpack conversions: round trips, Unicode and escapes, NUL characters,
 * duplicate keys, nesting limits, invalid UTF-8, 64-bit integer edges, float formatting (Python's
 * repr), parse errors that never echo the request body, and the msgpack->JSON writer's handling of
 * bin, ext, non-finite floats, non-string keys and broken input.
 */
#include "proto_test.h"

typedef struct fixture {
    adi_buf_t mp;    /* msgpack output */
    adi_buf_t json;  /* JSON output */
    adi_error_t err; /* conversion errors */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = adi_xcalloc(1, sizeof(*f));
    adi_buf_init(&f->mp);
    adi_buf_init(&f->json);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    adi_buf_dispose(&f->mp);
    adi_buf_dispose(&f->json);
    free(f);
    return 0;
}

static adi_err to_mp(fixture_t *f, const char *json)
{
    adi_buf_reset(&f->mp);
    adi_error_clear(&f->err);
    return adi_json_to_msgpack(json, strlen(json), &f->mp, &f->err);
}

static adi_err to_json(fixture_t *f, const char *mp, size_t n)
{
    adi_buf_reset(&f->json);
    adi_error_clear(&f->err);
    return adi_msgpack_to_json(mp, n, &f->json, &f->err);
}

/* JSON -> msgpack -> JSON gives `want`. */
static void round_trip(fixture_t *f, const char *in, const char *want)
{
    if (to_mp(f, in) != ADI_OK)
        fail_msg("%s: %s", in, f->err.message);
    if (to_json(f, f->mp.data, f->mp.len) != ADI_OK)
        fail_msg("%s: back: %s", in, f->err.message);
    assert_string_equal(f->json.data, want);
}

/* The conversion fails with a message that starts with `prefix`. */
static void parse_error(fixture_t *f, const char *in, const char *prefix)
{
    adi_buf_reset(&f->mp);
    adi_buf_append_str(&f->mp, "keep");
    adi_error_clear(&f->err);
    assert_int_equal(adi_json_to_msgpack(in, strlen(in), &f->mp, &f->err), ADI_INVALID);
    assert_int_equal(f->err.code, ADI_INVALID);
    if (strncmp(f->err.message, prefix, strlen(prefix)) != 0)
        fail_msg("%s: got \"%s\", want prefix \"%s\"", in, f->err.message, prefix);
    /* The output is left as it was. */
    assert_int_equal(f->mp.len, 4);
    assert_string_equal(f->mp.data, "keep");
}

static void test_round_trip(void **state)
{
    fixture_t *f = *state;
    round_trip(
        f, "{\"a\": 1, \"b\": [true, false, null], \"c\": \"x\", \"d\": {\"e\": -2}, \"f\": 1.5}",
        "{\"a\":1,\"b\":[true,false,null],\"c\":\"x\",\"d\":{\"e\":-2},\"f\":1.5}");
    round_trip(f, "{}", "{}");
    round_trip(f, "[]", "[]");
    round_trip(f, "  [ {\"z\":0,\"a\":0} ]  ", "[{\"z\":0,\"a\":0}]"); /* key order kept */
    round_trip(f, "42", "42");
    round_trip(f, "\"s\"", "\"s\"");
    round_trip(f, "null", "null");
    /* The msgpack is what msgpack-c would write. */
    assert_int_equal(to_mp(f, "{\"a\":[1,-1,\"x\"]}"), ADI_OK);
    assert_int_equal(f->mp.len, 8);
    assert_memory_equal(f->mp.data, "\x81\xa1\x61\x93\x01\xff\xa1x", 8);
}

static void test_unicode_and_escapes(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(to_mp(f, "[\"\\u00e9\\ud83d\\ude00 \xc3\xa9\"]"), ADI_OK);
    assert_int_equal(f->mp.len, 11);
    assert_memory_equal(f->mp.data, "\x91\xa9\xc3\xa9\xf0\x9f\x98\x80 \xc3\xa9", 11);
    round_trip(f, "[\"\\u00e9\\ud83d\\ude00 \xc3\xa9\"]",
               "[\"\xc3\xa9\xf0\x9f\x98\x80 \xc3\xa9\"]");
    round_trip(f, "[\"\\n\\t\\r\\b\\f\\\"\\\\\\/\\u0001\\u001f\\u007f\"]",
               "[\"\\n\\t\\r\\b\\f\\\"\\\\/\\u0001\\u001f\x7f\"]");
    round_trip(f, "{\"k\\u00e9y\\n\": \"v\"}", "{\"k\xc3\xa9y\\n\":\"v\"}");
    /* NUL passes through, for the field validator to refuse with DRF's message. */
    assert_int_equal(to_mp(f, "{\"s\": \"a\\u0000b\"}"), ADI_OK);
    assert_memory_equal(f->mp.data, "\x81\xa1s\xa3\x61\x00\x62", 7);
    adi_pool_t pool;
    adi_pool_init(&pool);
    t_all out = {0};
    assert_int_equal(adi_proto_decode(&t_all_desc, f->mp.data, f->mp.len, &pool, &out, &f->err),
                     ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "s", "Null characters are not allowed.");
    adi_pool_dispose(&pool);
    round_trip(f, "{\"s\": \"a\\u0000b\"}", "{\"s\":\"a\\u0000b\"}");
    /* A lone surrogate escape is not text. */
    parse_error(f, "[\"\\ud83d\"]", "JSON parse error - ");
}

static void test_duplicates(void **state)
{
    fixture_t *f = *state;
    parse_error(f, "{\"a\": 1, \"a\": 2}", "JSON parse error - duplicate object key");
    parse_error(f, "[{\"x\": {\"b\": 1, \"b\": 1}}]", "JSON parse error - duplicate object key");
    round_trip(f, "[{\"a\": 1}, {\"a\": 2}]", "[{\"a\":1},{\"a\":2}]");
}

/* `levels` nested arrays around 1. */
static char *nested(int levels, char open, char close)
{
    char *s = adi_xmalloc((size_t)levels * 2 + 2);
    size_t o = 0;
    for (int i = 0; i < levels; i++)
        s[o++] = open;
    s[o++] = '1';
    for (int i = 0; i < levels; i++)
        s[o++] = close;
    s[o] = '\0';
    return s;
}

static void test_depth(void **state)
{
    fixture_t *f = *state;
    char *ok = nested(ADI_JSON_MAX_DEPTH, '[', ']');
    assert_int_equal(to_mp(f, ok), ADI_OK);
    assert_int_equal(to_json(f, f->mp.data, f->mp.len), ADI_OK);
    assert_string_equal(f->json.data, ok);
    free(ok);
    char *deep = nested(ADI_JSON_MAX_DEPTH + 1, '[', ']');
    parse_error(f, deep, "JSON parse error - nesting deeper than 32 levels");
    free(deep);
    char *very = nested(100000, '[', ']');
    parse_error(f, very, "JSON parse error - ");
    free(very);
    /* Objects count too. */
    adi_buf_t s;
    adi_buf_init(&s);
    for (int i = 0; i < 33; i++)
        adi_buf_append_str(&s, "{\"a\":");
    adi_buf_append_str(&s, "1");
    for (int i = 0; i < 33; i++)
        adi_buf_append_str(&s, "}");
    parse_error(f, s.data, "JSON parse error - nesting deeper than 32 levels");
    adi_buf_dispose(&s);
}

static void test_invalid_utf8(void **state)
{
    fixture_t *f = *state;
    static const char *const bad[] = {
        "[\"\xff\"]",        "[\"\xc0\xaf\"]",          "[\"\xed\xa0\x80\"]",
        "{\"\xe2\x82\": 1}", "[\"a\xf4\x90\x80\x80\"]", NULL};
    for (const char *const *b = bad; *b != NULL; b++) {
        parse_error(f, *b, "JSON parse error - ");
        for (const char *p = f->err.message; *p != '\0'; p++)
            assert_true((unsigned char)*p < 0x80); /* the bad bytes are not echoed */
    }
}

static void test_integers(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(to_mp(f, "9223372036854775807"), ADI_OK);
    assert_memory_equal(f->mp.data, "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9);
    round_trip(f, "[9223372036854775807, -9223372036854775808, 0, -1, 255, 65536]",
               "[9223372036854775807,-9223372036854775808,0,-1,255,65536]");
    parse_error(f, "[9223372036854775808]", "JSON parse error - too big integer");
    parse_error(f, "[-9223372036854775809]", "JSON parse error - too big negative integer");
}

static void test_floats(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(to_mp(f, "0.1"), ADI_OK);
    assert_int_equal((unsigned char)f->mp.data[0], 0xcb); /* stays a float64 */
    round_trip(f, "[0.1, 3.0, -0.0, 1e16, 1e15, 1e-5, 0.0001, 123456.789, 5e-324, 1e300, 2.5]",
               "[0.1,3.0,-0.0,1e+16,1000000000000000.0,1e-05,0.0001,123456.789,5e-324,1e+300,"
               "2.5]");
    round_trip(f, "[1.7976931348623157e308, -2.5e-05, 100.0]",
               "[1.7976931348623157e+308,-2.5e-05,100.0]");
    parse_error(f, "[1e400]", "JSON parse error - ");
    parse_error(f, "[NaN]", "JSON parse error - ");
    parse_error(f, "[Infinity]", "JSON parse error - ");
}

static void test_parse_errors_do_not_echo(void **state)
{
    fixture_t *f = *state;
    static const char *const bad[] = {
        "{\"password\": \"hunter2",
        "{\"password\": \"hunter2\" x}",
        "{\"password\": hunter2}",
        "{\"password\": \"hunter2\",}",
        "{\"password\": \"hunter2\"} trailing",
        NULL,
    };
    for (const char *const *b = bad; *b != NULL; b++) {
        parse_error(f, *b, "JSON parse error - ");
        if (strstr(f->err.message, "hunter") != NULL)
            fail_msg("echoed: %s", f->err.message);
        assert_non_null(strstr(f->err.message, "line 1 column"));
    }
    static const char *const malformed[] = {"",    " ",         "{",     "{\"a\":}", "[1,]", "nul",
                                            "'a'", "{\"a\" 1}", "[1 2]", "{a: 1}",   NULL};
    for (const char *const *b = malformed; *b != NULL; b++)
        parse_error(f, *b, "JSON parse error - ");
    /* A NULL body is an empty one. */
    adi_error_clear(&f->err);
    assert_int_equal(adi_json_to_msgpack(NULL, 0, &f->mp, &f->err), ADI_INVALID);
}

static void test_to_json_types(void **state)
{
    fixture_t *f = *state;
    /* bin -> string, float32, uint64 max, NaN and infinities -> null. */
    assert_int_equal(to_json(f,
                             "\x96\xc4\x02hi\xca\x3f\x00\x00\x00\xcf\xff\xff\xff\xff\xff\xff\xff"
                             "\xff\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00\xcb\x7f\xf0\x00\x00\x00\x00"
                             "\x00\x00\xcb\xff\xf0\x00\x00\x00\x00\x00\x00",
                             46),
                     ADI_OK);
    assert_string_equal(f->json.data, "[\"hi\",0.5,18446744073709551615,null,null,null]");
    /* Invalid UTF-8 in a string becomes U+FFFD. */
    assert_int_equal(to_json(f, "\xa3\x61\xff\x62", 4), ADI_OK);
    assert_string_equal(f->json.data, "\"a\xef\xbf\xbd\x62\"");
    /* Every integer width. */
    assert_int_equal(
        to_json(f, "\x95\xd0\x80\xd1\x80\x00\xd2\x80\x00\x00\x00\xcc\xff\xcd\xff\xff", 16), ADI_OK);
    assert_string_equal(f->json.data, "[-128,-32768,-2147483648,255,65535]");
}

static void test_to_json_errors(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *bytes; /* input */
        size_t n;          /* length */
        const char *why;   /* expected message */
    } cases[] = {
        {"\x91\xd4\x01\x00", 4, "Extension types cannot be converted to JSON."},
        {"\x81\x01\x02", 3, "Map keys must be strings."},
        {"\x81\xc4\x01k\x02", 5, "Map keys must be strings."},
        {"\x92\x01", 2, "Malformed message."},
        {"\x91\x01\x02", 3, "Malformed message."},
        {"\xc1", 1, "Malformed message."},
        {"", 0, "Malformed message."},
        {"\xdd\xff\xff\xff\xff", 5, "Malformed message."},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        adi_buf_reset(&f->json);
        adi_buf_append_str(&f->json, "prefix");
        adi_error_clear(&f->err);
        assert_int_equal(adi_msgpack_to_json(cases[i].bytes, cases[i].n, &f->json, &f->err),
                         ADI_INVALID);
        assert_string_equal(f->err.message, cases[i].why);
        assert_string_equal(f->json.data, "prefix"); /* partial output removed */
    }
    /* Nesting: two JSON bodies' worth is fine, more is refused. */
    adi_buf_t m;
    adi_buf_init(&m);
    for (int i = 0; i < 2 * ADI_JSON_MAX_DEPTH; i++)
        adi_buf_append(&m, "\x91", 1);
    adi_buf_append(&m, "\xc0", 1);
    assert_int_equal(to_json(f, m.data, m.len), ADI_OK);
    adi_buf_reset(&m);
    for (int i = 0; i < 2 * ADI_JSON_MAX_DEPTH + 1; i++)
        adi_buf_append(&m, "\x91", 1);
    adi_buf_append(&m, "\xc0", 1);
    assert_int_equal(to_json(f, m.data, m.len), ADI_INVALID);
    assert_string_equal(f->err.message, "Nesting too deep.");
    adi_buf_dispose(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unicode_and_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_floats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors_do_not_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_to_json_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_to_json_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
