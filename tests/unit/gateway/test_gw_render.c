/* SPDX-License-Identifier: MIT */
/*
 * Error and health rendering in API.md's shapes: validation errors grouped per field, DRF
 * "detail" bodies, {"error": {...}} for 500/503/504 (never the service's text for 500), the
 * unknown-path and 405 bodies with escaping, reason phrases and the health aggregate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gw_render.h"

static adi_buf_t buf;

static int setup(void **state)
{
    (void)state;
    adi_buf_init(&buf);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    adi_buf_dispose(&buf);
    return 0;
}

static void test_simple_bodies(void **state)
{
    (void)state;
    gw_render_detail(&buf, "Not found.", 10);
    assert_string_equal(buf.data, "{\"detail\": \"Not found.\"}");
    adi_buf_reset(&buf);
    gw_render_not_found(&buf, ADI_STR("/api/x\"y/"));
    assert_string_equal(buf.data,
                        "{\"error\": {\"code\": \"not_found\", \"message\": \"The requested "
                        "resource was not found.\", \"path\": \"/api/x\\\"y/\"}}");
    adi_buf_reset(&buf);
    gw_render_method_not_allowed(&buf, ADI_STR("DELETE"));
    assert_string_equal(buf.data, "{\"detail\": \"Method \\\"DELETE\\\" not allowed.\"}");
    adi_buf_reset(&buf);
    gw_render_error_obj(&buf, "timeout", GW_MSG_TIMEOUT);
    assert_string_equal(buf.data, "{\"error\": {\"code\": \"timeout\", \"message\": \"The service "
                                  "did not answer in time.\"}}");
    adi_buf_reset(&buf);
    gw_render_non_field(&buf, "Invalid data. Expected a dictionary, but got list.", 50);
    assert_string_equal(buf.data, "{\"non_field_errors\": [\"Invalid data. Expected a dictionary, "
                                  "but got list.\"]}");
}

static void test_reasons(void **state)
{
    (void)state;
    assert_string_equal(gw_reason(200), "OK");
    assert_string_equal(gw_reason(404), "Not Found");
    assert_string_equal(gw_reason(413), "Content Too Large");
    assert_string_equal(gw_reason(504), "Gateway Timeout");
    assert_string_equal(gw_reason(299), "OK");
    assert_string_equal(gw_reason(499), "Client Error");
    assert_string_equal(gw_reason(599), "Server Error");
}

static adi_reply_error *error_with(const char *code, const char *msg, size_t nfields,
                                   adi_reply_field *fields)
{
    static adi_reply_error e;
    memset(&e, 0, sizeof(e));
    e.code = adi_str_c(code);
    e.message = adi_str_c(msg);
    e.fields.n = nfields;
    e.fields.items = fields;
    return &e;
}

static void test_validation(void **state)
{
    (void)state;
    adi_reply_field f[3];
    memset(f, 0, sizeof(f));
    f[0].field = ADI_STR("email");
    f[0].message = ADI_STR("This field is required.");
    f[1].field = ADI_STR("password");
    f[1].message = ADI_STR("Ensure this field has at least 8 characters.");
    f[2].field = ADI_STR("email");
    f[2].message = ADI_STR("Enter a valid email address.");
    assert_int_equal(
        gw_render_reply_error(400, error_with("invalid", "Invalid input.", 3, f), &buf), 400);
    assert_string_equal(buf.data, "{\"email\": [\"This field is required.\", \"Enter a valid email "
                                  "address.\"], \"password\": [\"Ensure this field has at least 8 "
                                  "characters.\"]}");
    adi_buf_reset(&buf);
    assert_int_equal(
        gw_render_reply_error(400, error_with("invalid", "The e-mail is taken.", 0, NULL), &buf),
        400);
    assert_string_equal(buf.data, "{\"non_field_errors\": [\"The e-mail is taken.\"]}");
    adi_buf_reset(&buf);
    assert_int_equal(gw_render_reply_error(400, NULL, &buf), 400);
    assert_string_equal(buf.data, "{\"non_field_errors\": [\"Invalid input.\"]}");
}

static void test_detail_statuses(void **state)
{
    (void)state;
    static const int statuses[] = {401, 403, 404, 405, 409, 413, 422, 429};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        adi_buf_reset(&buf);
        const char *code = adi_err_name(adi_err_from_http(statuses[i]));
        assert_int_equal(
            gw_render_reply_error(statuses[i], error_with(code, "Not found.", 0, NULL), &buf),
            statuses[i]);
        assert_string_equal(buf.data, "{\"detail\": \"Not found.\"}");
    }
    /* A code that is not a generic one is the service's own: statuses other than 401/403
     * ignore it. */
    adi_buf_reset(&buf);
    assert_int_equal(gw_render_reply_error(404, error_with("x", "Not found.", 0, NULL), &buf), 404);
    assert_string_equal(buf.data, "{\"detail\": \"Not found.\"}");
    adi_buf_reset(&buf);
    assert_int_equal(gw_render_reply_error(404, error_with("not_found", "", 0, NULL), &buf), 404);
    assert_string_equal(buf.data, "{\"detail\": \"Not Found\"}");
}

/* simplejwt's 401/403 shape {"detail", "code"} for specific codes and the refresh view. */
static void test_auth_codes(void **state)
{
    (void)state;
    assert_int_equal(
        gw_render_reply_error(401, error_with("user_not_found", "User not found", 0, NULL), &buf),
        401);
    assert_string_equal(buf.data, "{\"detail\": \"User not found\", \"code\": \"user_not_found\"}");
    adi_buf_reset(&buf);
    assert_int_equal(
        gw_render_reply_error(403, error_with("user_inactive", "User is inactive", 0, NULL), &buf),
        403);
    assert_string_equal(buf.data,
                        "{\"detail\": \"User is inactive\", \"code\": \"user_inactive\"}");
    /* Generic codes stay out of the body. */
    adi_buf_reset(&buf);
    assert_int_equal(gw_render_reply_error(401,
                                           error_with("unauthenticated",
                                                      "No active account found with the given "
                                                      "credentials",
                                                      0, NULL),
                                           &buf),
                     401);
    assert_string_equal(buf.data,
                        "{\"detail\": \"No active account found with the given credentials\"}");
    /* The refresh view's default code. */
    adi_buf_reset(&buf);
    assert_int_equal(gw_render_reply_error_code(
                         401, error_with("unauthenticated", "Token is blacklisted", 0, NULL),
                         "token_not_valid", &buf),
                     401);
    assert_string_equal(buf.data,
                        "{\"detail\": \"Token is blacklisted\", \"code\": \"token_not_valid\"}");
    adi_buf_reset(&buf);
    assert_int_equal(
        gw_render_reply_error_code(400, error_with("invalid", "This field is required.", 0, NULL),
                                   "token_not_valid", &buf),
        400);
    assert_null(strstr(buf.data, "token_not_valid"));
    /* A code that is not a plain identifier is never echoed. */
    adi_buf_reset(&buf);
    assert_int_equal(gw_render_reply_error(401, error_with("a\"b", "No.", 0, NULL), &buf), 401);
    assert_string_equal(buf.data, "{\"detail\": \"No.\"}");
}

static void test_server_statuses(void **state)
{
    (void)state;
    assert_int_equal(
        gw_render_reply_error(500, error_with("server_error", "pq: secret detail", 0, NULL), &buf),
        500);
    assert_null(strstr(buf.data, "secret"));
    assert_string_equal(buf.data, "{\"error\": {\"code\": \"server_error\", \"message\": \"An "
                                  "unexpected error occurred. Please try again later.\"}}");
    adi_buf_reset(&buf);
    assert_int_equal(gw_render_reply_error(503, NULL, &buf), 503);
    assert_string_equal(buf.data,
                        "{\"error\": {\"code\": \"unavailable\", \"message\": \"The "
                        "service is temporarily unavailable. Please try again later.\"}}");
    adi_buf_reset(&buf);
    assert_int_equal(
        gw_render_reply_error(503, error_with("unavailable", "KMS down.", 0, NULL), &buf), 503);
    assert_string_equal(buf.data,
                        "{\"error\": {\"code\": \"unavailable\", \"message\": \"KMS down.\"}}");
    adi_buf_reset(&buf);
    assert_int_equal(gw_render_reply_error(504, NULL, &buf), 504);
    assert_non_null(strstr(buf.data, "\"timeout\""));
    adi_buf_reset(&buf);
    /* Anything that is not an error status becomes a server error. */
    assert_int_equal(gw_render_reply_error(302, NULL, &buf), 500);
    assert_int_equal(gw_render_reply_error(700, NULL, &buf), 500);
}

static void test_health(void **state)
{
    (void)state;
    gw_health_entry_t e[2];
    memset(e, 0, sizeof(e));
    e[0].service = "auth";
    e[0].answered = e[0].ok = e[0].database = true;
    strcpy(e[0].version, "0.1.0");
    e[1].service = "vault";
    e[1].answered = e[1].ok = true;
    strcpy(e[1].version, "0.1.0");
    assert_true(gw_render_health(e, 2, &buf));
    assert_string_equal(buf.data, "{\"status\": \"ok\", \"services\": {\"auth\": {\"status\": "
                                  "\"ok\", \"version\": \"0.1.0\", \"database\": true}, \"vault\": "
                                  "{\"status\": \"ok\", \"version\": \"0.1.0\", \"database\": "
                                  "false}}}");
    adi_buf_reset(&buf);
    e[1].answered = false;
    assert_false(gw_render_health(e, 2, &buf));
    assert_string_equal(buf.data, "{\"status\": \"degraded\", \"services\": {\"auth\": "
                                  "{\"status\": \"ok\", \"version\": \"0.1.0\", \"database\": "
                                  "true}, \"vault\": {\"status\": \"unavailable\"}}}");
    adi_buf_reset(&buf);
    e[1].answered = true;
    e[1].ok = false;
    assert_false(gw_render_health(e, 2, &buf));
    assert_non_null(strstr(buf.data, "\"vault\": {\"status\": \"degraded\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_simple_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detail_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
