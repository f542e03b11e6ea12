/* SPDX-License-Identifier: MIT */
/*
 * Error codes and details: names and HTTP statuses from ADI_ERR_MAP, the reverse mapping, and
 * adi_error_set / adi_error_field (truncation, the default message, the field cap, NULL targets).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "adi/core.h"

static void test_names_and_statuses(void **state)
{
    (void)state;
    static const struct {
        adi_err code;     /* code */
        const char *name; /* stable name */
        int http;         /* status */
    } want[] = {
        {ADI_OK, "ok", 200},
        {ADI_INVALID, "invalid", 400},
        {ADI_UNAUTHENTICATED, "unauthenticated", 401},
        {ADI_FORBIDDEN, "forbidden", 403},
        {ADI_NOT_FOUND, "not_found", 404},
        {ADI_METHOD, "method_not_allowed", 405},
        {ADI_CONFLICT, "conflict", 409},
        {ADI_TOO_LARGE, "too_large", 413},
        {ADI_UNPROCESSABLE, "unprocessable", 422},
        {ADI_RATE_LIMITED, "rate_limited", 429},
        {ADI_INTERNAL, "server_error", 500},
        {ADI_BUSY, "unavailable", 503},
        {ADI_UNAVAILABLE, "unavailable", 503},
        {ADI_TIMEOUT, "timeout", 504},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_string_equal(adi_err_name(want[i].code), want[i].name);
        assert_int_equal(adi_err_http(want[i].code), want[i].http);
    }
    assert_int_equal(ADI_OK, 0);
    /* Out-of-range values never crash and read as server errors. */
    assert_string_equal(adi_err_name(ADI_ERR__COUNT), "server_error");
    assert_string_equal(adi_err_name((adi_err)-1), "server_error");
    assert_int_equal(adi_err_http(ADI_ERR__COUNT), 500);
}

static void test_from_http(void **state)
{
    (void)state;
    assert_int_equal(adi_err_from_http(200), ADI_OK);
    assert_int_equal(adi_err_from_http(201), ADI_OK);
    assert_int_equal(adi_err_from_http(204), ADI_OK);
    assert_int_equal(adi_err_from_http(400), ADI_INVALID);
    assert_int_equal(adi_err_from_http(401), ADI_UNAUTHENTICATED);
    assert_int_equal(adi_err_from_http(404), ADI_NOT_FOUND);
    assert_int_equal(adi_err_from_http(409), ADI_CONFLICT);
    assert_int_equal(adi_err_from_http(429), ADI_RATE_LIMITED);
    assert_int_equal(adi_err_from_http(504), ADI_TIMEOUT);
    assert_int_equal(adi_err_from_http(500), ADI_INTERNAL);
    /* Unknown statuses fall back by class. */
    assert_int_equal(adi_err_from_http(418), ADI_INVALID);
    assert_int_equal(adi_err_from_http(502), ADI_INTERNAL);
    /* Every code maps back to a code with the same status. */
    for (int c = 1; c < ADI_ERR__COUNT; c++)
        assert_int_equal(adi_err_http(adi_err_from_http(adi_err_http((adi_err)c))),
                         adi_err_http((adi_err)c));
}

static void test_error_set(void **state)
{
    (void)state;
    adi_error_t e;
    adi_error_clear(&e);
    assert_int_equal(e.code, ADI_OK);
    assert_string_equal(e.message, "");
    assert_int_equal(e.nfields, 0);
    assert_int_equal(adi_error_set(&e, ADI_NOT_FOUND, "Not %s.", "found"), ADI_NOT_FOUND);
    assert_int_equal(e.code, ADI_NOT_FOUND);
    assert_string_equal(e.message, "Not found.");
    /* Long messages are truncated to fit, NUL-terminated. */
    char big[400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    adi_error_set(&e, ADI_INTERNAL, "%s", big);
    assert_int_equal(strlen(e.message), ADI_ERROR_MSG_LEN - 1);
    /* A NULL target is allowed and still returns the code. */
    assert_int_equal(adi_error_set(NULL, ADI_CONFLICT, "x"), ADI_CONFLICT);
    adi_error_clear(NULL);
}

static void test_error_field(void **state)
{
    (void)state;
    adi_error_t e;
    adi_error_clear(&e);
    assert_int_equal(adi_error_field(&e, "email", "Enter a valid %s address.", "email"),
                     ADI_INVALID);
    assert_int_equal(e.code, ADI_INVALID);
    assert_string_equal(e.message, "Invalid input.");
    assert_int_equal(e.nfields, 1);
    assert_string_equal(e.fields[0].field, "email");
    assert_string_equal(e.fields[0].message, "Enter a valid email address.");
    /* A message set before is kept when it belongs to ADI_INVALID... */
    adi_error_clear(&e);
    adi_error_set(&e, ADI_INVALID, "Malformed message.");
    adi_error_field(&e, "non_field_errors", "Malformed message.");
    assert_string_equal(e.message, "Malformed message.");
    /* ...and replaced when it belonged to another code. */
    adi_error_clear(&e);
    adi_error_set(&e, ADI_NOT_FOUND, "Not found.");
    adi_error_field(&e, "id", "Bad.");
    assert_int_equal(e.code, ADI_INVALID);
    assert_string_equal(e.message, "Invalid input.");
    /* Beyond the cap, fields are dropped; long names and messages are truncated. */
    adi_error_clear(&e);
    for (int i = 0; i < ADI_ERROR_MAX_FIELDS + 5; i++)
        assert_int_equal(adi_error_field(&e, "f", "m%d", i), ADI_INVALID);
    assert_int_equal(e.nfields, ADI_ERROR_MAX_FIELDS);
    assert_string_equal(e.fields[ADI_ERROR_MAX_FIELDS - 1].message, "m15");
    char name[100];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    adi_error_clear(&e);
    adi_error_field(&e, name, "%s", name);
    assert_int_equal(strlen(e.fields[0].field), ADI_ERROR_FIELD_LEN - 1);
    assert_int_equal(adi_error_field(NULL, "x", "y"), ADI_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_statuses),
        cmocka_unit_test(test_from_http),
        cmocka_unit_test(test_error_set),
        cmocka_unit_test(test_error_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
