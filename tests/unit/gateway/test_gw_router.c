/* SPDX-License-Identifier: MIT */
/*
 * The router: the real route table compiles and serves its paths with and without the trailing
 * slash; a synthetic table checks {param} captures, literal-over-param precedence with
 * backtracking, 404 and 405 (with the Allow mask), HEAD and compile-time errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "adi/messages.h"
#include "gw_router.h"

static const gw_route_t synthetic[] = {
    {GW_M_GET, "/api/users/", GW_TARGET_OP_TO(sys_health, "auth"), ADI_PUBLIC, 0},
    {GW_M_POST, "/api/users/", GW_TARGET_OP_TO(sys_health, "auth"), ADI_PUBLIC, 0},
    {GW_M_GET, "/api/users/{id}/", GW_TARGET_OP_TO(sys_health, "auth"), ADI_AUTH, 0},
    {GW_M_POST, "/api/users/invite/", GW_TARGET_OP_TO(sys_health, "auth"), ADI_ADMIN, 0},
    {GW_M_DELETE, "/api/users/{uid}/roles/{role}/", GW_TARGET_OP_TO(sys_health, "auth"), ADI_ADMIN,
     0},
    {GW_M_GET, "/api/a/{x}/b/", GW_TARGET_LOCAL(VERSION), ADI_PUBLIC, 0},
    {GW_M_PATCH, "/api/a/{y}/", GW_TARGET_LOCAL(VERSION), ADI_PUBLIC, 0},
};

static gw_router_t *compile(const gw_route_t *rows, size_t n)
{
    gw_router_t *r = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(gw_router_new(rows, n, &r, &err), ADI_OK);
    assert_non_null(r);
    return r;
}

static gw_match_result_t match(const gw_router_t *r, gw_method_t m, const char *path,
                               gw_match_t *out)
{
    return gw_router_match(r, m, adi_str_c(path), out);
}

static void test_real_table(void **state)
{
    (void)state;
    gw_router_t *r = compile(gw_routes, gw_routes_count);
    gw_match_t m;
    assert_int_equal(match(r, GW_M_GET, "/api/health/", &m), GW_MATCH_OK);
    assert_int_equal(m.route->local, GW_LOCAL_HEALTH);
    assert_int_equal(match(r, GW_M_GET, "/api/health", &m), GW_MATCH_OK);
    assert_int_equal(m.route->local, GW_LOCAL_HEALTH);
    assert_int_equal(match(r, GW_M_GET, "/api/health/version", &m), GW_MATCH_OK);
    assert_int_equal(m.route->local, GW_LOCAL_VERSION);
    assert_int_equal(match(r, GW_M_HEAD, "/api/timezone/", &m), GW_MATCH_OK);
    assert_int_equal(m.route->local, GW_LOCAL_TIMEZONE);
    assert_int_equal(match(r, GW_M_POST, "/api/health/ping", &m), GW_MATCH_OK);
    assert_ptr_equal(m.route->op, &adi_op_sys_health);
    assert_string_equal(m.route->service, "auth");
    assert_int_equal(match(r, GW_M_DELETE, "/api/timezone/", &m), GW_MATCH_METHOD);
    assert_int_equal(m.allowed, (1u << GW_M_GET) | (1u << GW_M_HEAD));
    assert_int_equal(match(r, GW_M_GET, "/api/nope/", &m), GW_MATCH_NOT_FOUND);
    assert_int_equal(match(r, GW_M_GET, "/api/", &m), GW_MATCH_NOT_FOUND);
    assert_int_equal(match(r, GW_M_GET, "/", &m), GW_MATCH_NOT_FOUND);
    /* Every local row but the /api/me/ aggregate is public; every proxied row names a service. */
    for (size_t i = 0; i < gw_routes_count; i++) {
        if (gw_routes[i].local != GW_LOCAL_NONE)
            assert_int_equal(gw_routes[i].auth,
                             gw_routes[i].local == GW_LOCAL_ME ? ADI_AUTH : ADI_PUBLIC);
        else
            assert_true(gw_routes[i].service != NULL || strcmp(gw_routes[i].op->service, "*") != 0);
    }
    gw_router_free(r);
}

/* The auth rows of API.md: operation and access column of each. */
static void test_auth_routes(void **state)
{
    (void)state;
    static const struct {
        gw_method_t method;
        const char *path;
        const adi_op_desc_t *op;
        gw_auth_t auth;
    } want[] = {
        {GW_M_POST, "/api/auth/login/", &adi_op_auth_login, ADI_PUBLIC},
        {GW_M_POST, "/api/token/", &adi_op_auth_token, ADI_PUBLIC},
        {GW_M_POST, "/api/token/refresh", &adi_op_auth_refresh, ADI_PUBLIC},
        {GW_M_GET, "/api/users/", &adi_op_auth_users_list, ADI_AUTH},
        {GW_M_POST, "/api/users/", &adi_op_auth_users_create, ADI_ADMIN},
        {GW_M_GET, "/api/users/0b7e6d4e-6f0a-4c39-9d0e-3b1f7f1b2c3d/", &adi_op_auth_users_get,
         ADI_AUTH},
        {GW_M_GET, "/api/user-roles/", &adi_op_auth_roles_list, ADI_AUTH},
        {GW_M_POST, "/api/user-roles/", &adi_op_auth_roles_create, ADI_ADMIN},
        {GW_M_DELETE, "/api/user-roles/42/", &adi_op_auth_roles_delete, ADI_ADMIN},
        {GW_M_POST, "/api/roles/assign/", &adi_op_auth_roles_assign, ADI_ADMIN},
    };
    gw_router_t *r = compile(gw_routes, gw_routes_count);
    gw_match_t m;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(match(r, want[i].method, want[i].path, &m), GW_MATCH_OK);
        assert_ptr_equal(m.route->op, want[i].op);
        assert_int_equal(m.route->auth, want[i].auth);
    }
    /* GET /api/me/ is an aggregate served by the gateway (auth.me + tenant.get). */
    assert_int_equal(match(r, GW_M_GET, "/api/me/", &m), GW_MATCH_OK);
    assert_null(m.route->op);
    assert_int_equal(m.route->local, GW_LOCAL_ME);
    assert_int_equal(m.route->auth, ADI_AUTH);
    assert_int_equal(match(r, GW_M_HEAD, "/api/me", &m), GW_MATCH_OK);
    assert_int_equal(m.route->local, GW_LOCAL_ME);
    assert_int_equal(match(r, GW_M_GET, "/api/users/abc/", &m), GW_MATCH_OK);
    assert_int_equal(m.nparams, 1);
    assert_true(adi_str_eq_c(m.params[0].value, "abc"));
    assert_int_equal(match(r, GW_M_PUT, "/api/user-roles/1/", &m), GW_MATCH_METHOD);
    assert_int_equal(match(r, GW_M_GET, "/api/token/", &m), GW_MATCH_METHOD);
    gw_router_free(r);
}

static void test_params_and_precedence(void **state)
{
    (void)state;
    gw_router_t *r = compile(synthetic, sizeof(synthetic) / sizeof(synthetic[0]));
    gw_match_t m;
    assert_int_equal(match(r, GW_M_GET, "/api/users/123", &m), GW_MATCH_OK);
    assert_int_equal(m.index, 2);
    assert_int_equal(m.nparams, 1);
    assert_true(adi_str_eq_c(m.params[0].name, "id"));
    assert_true(adi_str_eq_c(m.params[0].value, "123"));

    /* The literal wins, and its node decides the method: no fallback to {id}. */
    assert_int_equal(match(r, GW_M_POST, "/api/users/invite/", &m), GW_MATCH_OK);
    assert_int_equal(m.index, 3);
    assert_int_equal(match(r, GW_M_GET, "/api/users/invite/", &m), GW_MATCH_METHOD);
    assert_int_equal(m.allowed, 1u << GW_M_POST);

    /* Backtracking: "invite" has no "roles" child, so {uid} takes it. */
    assert_int_equal(match(r, GW_M_DELETE, "/api/users/invite/roles/ADMIN/", &m), GW_MATCH_OK);
    assert_int_equal(m.index, 4);
    assert_int_equal(m.nparams, 2);
    assert_true(adi_str_eq_c(m.params[0].name, "uid"));
    assert_true(adi_str_eq_c(m.params[0].value, "invite"));
    assert_true(adi_str_eq_c(m.params[1].name, "role"));
    assert_true(adi_str_eq_c(m.params[1].value, "ADMIN"));

    /* Two rows share the {x}/{y} node but name their capture apart. */
    assert_int_equal(match(r, GW_M_PATCH, "/api/a/7", &m), GW_MATCH_OK);
    assert_true(adi_str_eq_c(m.params[0].name, "y"));
    assert_int_equal(match(r, GW_M_GET, "/api/a/7/b", &m), GW_MATCH_OK);
    assert_true(adi_str_eq_c(m.params[0].name, "x"));
    assert_true(adi_str_eq_c(m.params[0].value, "7"));

    assert_int_equal(match(r, GW_M_GET, "/api/users", &m), GW_MATCH_OK);
    assert_int_equal(m.index, 0);
    assert_int_equal(match(r, GW_M_PUT, "/api/users/", &m), GW_MATCH_METHOD);
    assert_int_equal(m.allowed, (1u << GW_M_GET) | (1u << GW_M_POST) | (1u << GW_M_HEAD));
    assert_int_equal(match(r, GW_M_OTHER, "/api/users/", &m), GW_MATCH_METHOD);
    gw_router_free(r);
}

static void test_not_found_shapes(void **state)
{
    (void)state;
    gw_router_t *r = compile(synthetic, sizeof(synthetic) / sizeof(synthetic[0]));
    gw_match_t m;
    static const char *const paths[] = {
        "",
        "api/users/",
        "/api//users/",
        "/api/users//",
        "/api/users/1/2/",
        "/api/a/1/c/",
        "/api/users/1//",
        "//",
        "/api/a/1/b/x",
        "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/",
        "/api/users/1/roles/",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_int_equal(match(r, GW_M_GET, paths[i], &m), GW_MATCH_NOT_FOUND);
    assert_int_equal(gw_router_match(r, GW_M_GET, ADI_STR_NULL, &m), GW_MATCH_NOT_FOUND);
    gw_router_free(r);
}

static void expect_compile_error(gw_route_t row)
{
    gw_route_t rows[2] = {synthetic[0], row};
    gw_router_t *r = (gw_router_t *)1;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(gw_router_new(rows, 2, &r, &err), ADI_INVALID);
    assert_null(r);
    assert_true(strlen(err.message) > 0);
}

static void test_compile_errors(void **state)
{
    (void)state;
    gw_route_t row = synthetic[0];
    expect_compile_error(row);  /* duplicate of row 0 */
    row.pattern = "/api/users"; /* the same path without slash is a duplicate too */
    expect_compile_error(row);
    row.pattern = "api/x/";
    expect_compile_error(row);
    row.pattern = "/api/{}/";
    expect_compile_error(row);
    row.pattern = "/api/{a-b}/";
    expect_compile_error(row);
    row.pattern = "/api/x{y}/";
    expect_compile_error(row);
    row.pattern = "/api//x/";
    expect_compile_error(row);
    row.pattern = "/api/x/";
    row.method = GW_M_HEAD;
    expect_compile_error(row);
}

static void test_methods(void **state)
{
    (void)state;
    assert_int_equal(gw_method_parse(ADI_STR("GET")), GW_M_GET);
    assert_int_equal(gw_method_parse(ADI_STR("PATCH")), GW_M_PATCH);
    assert_int_equal(gw_method_parse(ADI_STR("OPTIONS")), GW_M_OPTIONS);
    assert_int_equal(gw_method_parse(ADI_STR("get")), GW_M_OTHER);
    assert_int_equal(gw_method_parse(ADI_STR("TRACE")), GW_M_OTHER);
    assert_int_equal(gw_method_parse(ADI_STR_NULL), GW_M_OTHER);
    assert_string_equal(gw_method_name(GW_M_DELETE), "DELETE");
    assert_string_equal(gw_method_name(GW_M_OTHER), "OTHER");
    char allow[64];
    gw_allow_header(1u << GW_M_GET, allow);
    assert_string_equal(allow, "GET, HEAD, OPTIONS");
    gw_allow_header((1u << GW_M_POST) | (1u << GW_M_DELETE), allow);
    assert_string_equal(allow, "POST, DELETE, OPTIONS");
    assert_int_equal(gw_allow_header((1u << GW_M__COUNT) - 1, allow),
                     strlen("GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_table),
        cmocka_unit_test(test_auth_routes),
        cmocka_unit_test(test_params_and_precedence),
        cmocka_unit_test(test_not_found_shapes),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_methods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
