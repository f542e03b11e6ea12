/* SPDX-License-Identifier: MIT */
/*
 * Row-level security as the last line of defence, on a fresh database with every service's
 * migrations applied by adi-admin (argv[1]) from the repository's services/ (argv[2]).
 *
 * Every tenant-scoped table (a tenant_id column, or `tenants` keyed by id; found in the catalog,
 * so tables added later are covered without touching this file) gets seed rows for two tenants A
 * and B (the seeds[] table below: a new tenant-scoped table needs its seed there, and this test
 * says so). Then, connected as the service role owning the table's schema:
 *   - row-level security is enabled and forced on it;
 *   - with no tenant set (and with app.tenant_id = ''), nothing is visible and nothing fails;
 *   - with app.tenant_id = A, every visible row is A's, no row of B is visible, an UPDATE or
 *     DELETE aimed at B's rows touches none, and neither a copy of B's row nor A's row moved to B
 *     can be written (SQLSTATE 42501: policy or privilege);
 *   - the other services' roles cannot read it at all.
 * Finally `adi-admin enable-rls` finds nothing to do on the migrated schemas, secures a new
 * unprotected schema (printing each statement), applies nothing the second time, and the new
 * tables then pass the same checks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

#define TA "aaaaaaaa-0000-4000-8000-00000000000a"
#define TB "bbbbbbbb-0000-4000-8000-00000000000b"
#define UA "aaaaaaaa-1111-4000-8000-00000000000a"
#define UB "bbbbbbbb-1111-4000-8000-00000000000b"

static const char *admin_bin, *services_dir;
static char dbname[48];

/* Rows for tenants A and B in each known tenant-scoped table (run as the admin, RLS bypassed). */
static const struct {
    const char *table; /* schema.table */
    const char *sql;   /* inserts at least one row of A and one of B */
} seeds[] = {
    {"tenant.tenants",
     "INSERT INTO tenant.tenants (id, name) VALUES ('" TA "', 'A'), ('" TB "', 'B')"},
    {"tenant.invitations",
     "INSERT INTO tenant.invitations (tenant_id, email, token) VALUES "
     "('" TA "', 'a@example.com', repeat('a', 43)), ('" TB "', 'b@example.com', repeat('b', 43))"},
    {"tenant.audit_log", "INSERT INTO tenant.audit_log (id, tenant_id, action, resource_type) "
                         "VALUES (gen_random_uuid(), '" TA "', 'x', 'y'), "
                         "(gen_random_uuid(), '" TB "', 'x', 'y')"},
    {"auth.users", "INSERT INTO auth.users (id, tenant_id, email, password) VALUES "
                   "('" UA "', '" TA "', 'a@example.com', 'p'), "
                   "('" UB "', '" TB "', 'b@example.com', 'p')"},
    {"auth.user_roles", "INSERT INTO auth.user_roles (user_id, tenant_id, role) VALUES "
                        "('" UA "', '" TA "', 'ADMIN'), ('" UB "', '" TB "', 'ADMIN')"},
    {"auth.refresh_tokens",
     "INSERT INTO auth.refresh_tokens (jti, family, user_id, tenant_id, issued_at, expires_at) "
     "VALUES (md5('a'), gen_random_uuid(), '" UA "', '" TA "', now(), now() + interval '1 day'), "
     "(md5('b'), gen_random_uuid(), '" UB "', '" TB "', now(), now() + interval '1 day')"},
    {"vault.tenant_keys",
     "INSERT INTO vault.tenant_keys (tenant_id, version, wrapped_dek, kms_key_id) VALUES "
     "('" TA "', 1, '\\x00', 'local'), ('" TB "', 1, '\\x00', 'local')"},
    {"vault.platform_credentials",
     "INSERT INTO vault.platform_credentials (id, tenant_id, provider, account_id, access_token, "
     "dek_version) VALUES (gen_random_uuid(), '" TA "', 'META', 'a', decode(repeat('00', 28), "
     "'hex'), 1), (gen_random_uuid(), '" TB "', 'META', 'b', decode(repeat('00', 28), 'hex'), 1)"},
};

/* The tenant-scoped tables: schema, table, key column (as enable-rls finds them). */
static const char discover_sql[] =
    "SELECT n.nspname, c.relname, CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a"
    " WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND a.attnum > 0"
    " AND NOT a.attisdropped) THEN 'tenant_id' ELSE 'id' END,"
    " c.relrowsecurity, c.relforcerowsecurity"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname LIKE $1"
    " AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
    "  AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped)"
    "  OR (c.relname = 'tenants' AND EXISTS (SELECT 1 FROM pg_attribute a"
    "  WHERE a.attrelid = c.oid AND a.attname = 'id' AND a.attnum > 0 AND NOT a.attisdropped)))"
    " ORDER BY 1, 2";

/* The service roles and the schema each owns. */
static const struct {
    const char *schema; /* its schema */
    const char *role;   /* its role */
} owners[] = {
    {"auth", "adi_auth"},
    {"tenant", "adi_tenant"},
    {"vault", "adi_vault"},
    {"tasks", "adi_task_runner"},
};
#define NOWNERS (sizeof(owners) / sizeof(owners[0]))

static char *url_for(const char *role, char *buf, size_t n)
{
    snprintf(buf, n, "postgresql://%s@127.0.0.1:%s/%s", role, itest_env("ADI_PG_PORT"), dbname);
    return buf;
}

static adi_db_t *connect_as(const char *role)
{
    char url[256];
    adi_db_t *db = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_connect(url_for(role, url, sizeof(url)), &db, &err) != ADI_OK)
        fail_msg("connect as %s: %s", role, err.message);
    return db;
}

/*
 * Runs `adi-admin cmd [opt]` (opt may be NULL), DATABASE_URL = this database; its stdout goes to
 * `out` (heap, NUL-terminated).
 */
static int run_admin(const char *cmd, const char *opt, char **out)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char url[256];
    url_for("postgres", url, sizeof(url));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        setenv("MIGRATIONS_DIR", services_dir, 1);
        setenv("DATABASE_URL", url, 1);
        execl(admin_bin, admin_bin, cmd, opt, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    adi_buf_t b;
    adi_buf_init(&b);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        adi_buf_append(&b, chunk, (size_t)n);
    }
    close(fds[0]);
    adi_buf_append(&b, "", 1);
    *out = b.data;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* One statement as `db`'s role in a transaction scoped to `tenant` (NULL: none), rolled back. */
static adi_err scoped(adi_db_t *db, adi_pool_t *pool, const char *tenant, const char *sql,
                      const char *param, adi_db_res_t **res)
{
    adi_error_t err;
    adi_error_clear(&err);
    adi_str_t t = tenant ? adi_str_c(tenant) : ADI_STR_NULL;
    assert_int_equal(adi_db_begin(db, t, &err), ADI_OK);
    adi_str_t p = param ? adi_str_c(param) : ADI_STR_NULL;
    adi_err rc = adi_db_exec(db, pool, sql, param ? 1 : 0, &p, res, &err);
    adi_db_rollback(db);
    return rc;
}

static long long scoped_int(adi_db_t *db, adi_pool_t *pool, const char *tenant, const char *sql)
{
    adi_db_res_t *res = NULL;
    if (scoped(db, pool, tenant, sql, NULL, &res) != ADI_OK)
        fail_msg("%s (tenant %s) failed: %s", sql, tenant ? tenant : "none", adi_db_diag(db));
    return strtoll(adi_db_get(res, 0, 0).ptr, NULL, 10);
}

/* A write aimed at another tenant: touches nothing, or is refused for lack of privilege. */
static void expect_untouched(adi_db_t *db, adi_pool_t *pool, const char *sql)
{
    adi_db_res_t *res = NULL;
    adi_err rc = scoped(db, pool, TA, sql, NULL, &res);
    if (rc == ADI_OK)
        assert_int_equal(adi_db_affected(res), 0);
    else if (strstr(adi_db_diag(db), "42501") == NULL)
        fail_msg("%s: %s", sql, adi_db_diag(db));
}

/* A write that would put a row into another tenant: refused (42501, policy or privilege). */
static void expect_refused(adi_db_t *db, adi_pool_t *pool, const char *sql, const char *param)
{
    adi_db_res_t *res = NULL;
    adi_err rc = scoped(db, pool, TA, sql, param, &res);
    if (rc == ADI_OK)
        fail_msg("%s was allowed (%lld rows)", sql, (long long)adi_db_affected(res));
    if (strstr(adi_db_diag(db), "42501") == NULL)
        fail_msg("%s: %s (expected SQLSTATE 42501)", sql, adi_db_diag(db));
}

static const char *owner_of(const char *schema)
{
    for (size_t i = 0; i < NOWNERS; i++)
        if (strcmp(owners[i].schema, schema) == 0)
            return owners[i].role;
    return NULL;
}

/* Every check of the file comment on one table, as `role`. */
static void check_table(adi_db_t *admin, const char *schema, const char *table, const char *key,
                        const char *role)
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    char q[160];
    snprintf(q, sizeof(q), "\"%s\".\"%s\"", schema, table);
    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE %s = $1::uuid", q, key);
    long long rows_a = itest_sql_int(admin, sql, TA);
    if (rows_a == 0 || itest_sql_int(admin, sql, TB) == 0)
        fail_msg("no seed rows of tenants A and B in %s: add them to seeds[] in %s", q, __FILE__);

    adi_db_t *db = connect_as(role);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", q);
    assert_int_equal(scoped_int(db, &pool, NULL, sql), 0);
    assert_int_equal(scoped_int(db, &pool, "", sql), 0);
    assert_int_equal(scoped_int(db, &pool, TA, sql), rows_a);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE %s IS DISTINCT FROM '" TA "'", q,
             key);
    assert_int_equal(scoped_int(db, &pool, TA, sql), 0);

    snprintf(sql, sizeof(sql), "UPDATE %s SET %s = %s WHERE %s = '" TB "'", q, key, key, key);
    expect_untouched(db, &pool, sql);
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = '" TB "'", q, key);
    expect_untouched(db, &pool, sql);

    /* B's row, copied as it is, and A's row moved to B. */
    snprintf(sql, sizeof(sql), "SELECT row_to_json(t)::text FROM %s t WHERE %s = '" TB "' LIMIT 1",
             q, key);
    adi_db_res_t *res = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_exec(admin, &pool, sql, 0, NULL, &res, &err), ADI_OK);
    const char *row_b = adi_db_get(res, 0, 0).ptr;
    snprintf(sql, sizeof(sql),
             "INSERT INTO %s SELECT * FROM json_populate_record(NULL::%s, $1::json)", q, q);
    expect_refused(db, &pool, sql, row_b);
    snprintf(sql, sizeof(sql), "UPDATE %s SET %s = '" TB "' WHERE %s = '" TA "'", q, key, key);
    expect_refused(db, &pool, sql, NULL);
    adi_db_free(db);

    /* The other services' roles cannot read it at all. */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", q);
    for (size_t i = 0; i < NOWNERS; i++) {
        if (strcmp(owners[i].role, role) == 0)
            continue;
        adi_db_t *other = connect_as(owners[i].role);
        adi_db_res_t *r2 = NULL;
        if (scoped(other, &pool, TB, sql, NULL, &r2) == ADI_OK)
            fail_msg("%s can read %s", owners[i].role, q);
        adi_db_free(other);
    }
    adi_pool_dispose(&pool);
}

/* Checks every tenant-scoped table in the schemas matching `like`; returns how many. */
static int check_all(adi_db_t *admin, const char *like)
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_db_res_t *res = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    adi_str_t p = adi_str_c(like);
    assert_int_equal(adi_db_exec(admin, &pool, discover_sql, 1, &p, &res, &err), ADI_OK);
    int n = adi_db_nrows(res);
    for (int i = 0; i < n; i++) {
        const char *schema = adi_db_get(res, i, 0).ptr, *table = adi_db_get(res, i, 1).ptr;
        if (!adi_str_eq_c(adi_db_get(res, i, 3), "t") || !adi_str_eq_c(adi_db_get(res, i, 4), "t"))
            fail_msg("%s.%s: row-level security not enabled and forced", schema, table);
        const char *role = owner_of(schema);
        if (role == NULL)
            role = "adi_tenant"; /* the scratch schema of the enable-rls test */
        check_table(admin, schema, table, adi_db_get(res, i, 2).ptr, role);
    }
    adi_pool_dispose(&pool);
    return n;
}

static int setup(void **state)
{
    (void)state;
    itest_unique(dbname, sizeof(dbname), "trls");
    adi_db_t *root = itest_db();
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    itest_sql(root, sql);
    adi_db_free(root);
    char *out = NULL;
    int rc = run_admin("migrate", NULL, &out);
    if (rc != 0)
        fail_msg("adi-admin migrate exited %d: %s", rc, out);
    free(out);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    adi_db_t *root = itest_db();
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    itest_sql(root, sql);
    adi_db_free(root);
    return 0;
}

static adi_db_t *admin_db(void)
{
    return connect_as("postgres");
}

static void test_service_tables(void **state)
{
    (void)state;
    adi_db_t *admin = admin_db();
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_class WHERE oid = to_regclass($1)");
        if (itest_sql_int(admin, sql, seeds[i].table) == 1)
            itest_sql(admin, seeds[i].sql);
    }
    int n = check_all(admin, "%");
    assert_true(n >= (int)(sizeof(seeds) / sizeof(seeds[0])));
    adi_db_free(admin);
}

/*
 * Each service's role can touch only its own schema: no USAGE or CREATE on another's, no
 * privilege on any of its relations (the tenant-scoped tables, but also adi_idempotency and
 * adi_outbox, which hold replies and events), and a real connection is refused.
 */
static void test_roles_own_schema_only(void **state)
{
    (void)state;
    adi_db_t *admin = admin_db();
    adi_pool_t pool;
    adi_pool_init(&pool);
    for (size_t i = 0; i < NOWNERS; i++) {
        for (size_t j = 0; j < NOWNERS; j++) {
            if (i == j)
                continue;
            const char *role = owners[i].role, *schema = owners[j].schema;
            char sql[768];
            snprintf(sql, sizeof(sql),
                     "SELECT (has_schema_privilege('%s', '%s', 'USAGE') OR "
                     "has_schema_privilege('%s', '%s', 'CREATE'))::int + (SELECT count(*) FROM "
                     "pg_class c WHERE c.relnamespace = '%s'::regnamespace AND c.relkind IN "
                     "('r', 'p', 'v', 'm', 'S') AND has_table_privilege('%s', c.oid, "
                     "'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')) + $1::int",
                     role, schema, role, schema, schema, role);
            if (itest_sql_int(admin, sql, "0") != 0)
                fail_msg("%s has privileges in schema %s", role, schema);
            adi_db_t *db = connect_as(role);
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.adi_idempotency", schema);
            adi_db_res_t *res = NULL;
            if (scoped(db, &pool, NULL, sql, NULL, &res) == ADI_OK)
                fail_msg("%s can read %s.adi_idempotency", role, schema);
            adi_db_free(db);
        }
    }
    adi_pool_dispose(&pool);
    adi_db_free(admin);
}

static void test_enable_rls(void **state)
{
    (void)state;
    adi_db_t *admin = admin_db();
    char *out = NULL;
    assert_int_equal(run_admin("enable-rls", NULL, &out), 0);
    if (strstr(out, " 0 statements applied") == NULL)
        fail_msg("the migrations left work for enable-rls:\n%s", out);
    free(out);

    itest_sql(admin, "CREATE SCHEMA scratch_rls;"
                     "CREATE TABLE scratch_rls.things (id int, tenant_id uuid NOT NULL);"
                     "CREATE TABLE scratch_rls.tenants (id uuid PRIMARY KEY, name text);"
                     "CREATE TABLE scratch_rls.plain (id int);"
                     "GRANT USAGE ON SCHEMA scratch_rls TO adi_tenant;"
                     "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA scratch_rls "
                     "TO adi_tenant;"
                     "INSERT INTO scratch_rls.things VALUES (1, '" TA "'), (2, '" TB "');"
                     "INSERT INTO scratch_rls.tenants VALUES ('" TA "', 'A'), ('" TB "', 'B');");
    assert_int_equal(run_admin("enable-rls", "--dry-run", &out), 0);
    assert_non_null(strstr(out, "6 statements would be applied"));
    free(out);
    assert_int_equal(itest_sql_int(admin,
                                   "SELECT count(*) FROM pg_class WHERE relrowsecurity AND "
                                   "relnamespace = $1::regnamespace",
                                   "scratch_rls"),
                     0);

    assert_int_equal(run_admin("enable-rls", NULL, &out), 0);
    const char *want[] = {
        "ALTER TABLE scratch_rls.things ENABLE ROW LEVEL SECURITY;\n",
        "ALTER TABLE scratch_rls.things FORCE ROW LEVEL SECURITY;\n",
        "CREATE POLICY adi_tenant_isolation ON scratch_rls.things USING (tenant_id = "
        "nullif(current_setting('app.tenant_id', true), '')::uuid)",
        "ALTER TABLE scratch_rls.tenants ENABLE ROW LEVEL SECURITY;\n",
        "ALTER TABLE scratch_rls.tenants FORCE ROW LEVEL SECURITY;\n",
        "CREATE POLICY adi_tenant_isolation ON scratch_rls.tenants USING (id = ",
        " 6 statements applied",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(out, want[i]) == NULL)
            fail_msg("enable-rls output lacks \"%s\":\n%s", want[i], out);
    assert_null(strstr(out, "plain"));
    free(out);
    assert_int_equal(run_admin("enable-rls", NULL, &out), 0); /* idempotent */
    if (strstr(out, " 0 statements applied") == NULL || strstr(out, "ALTER") != NULL)
        fail_msg("second enable-rls run applied something:\n%s", out);
    free(out);

    assert_int_equal(check_all(admin, "scratch_rls"), 2);

    /* A tenant policy weakened by hand (same name, other words) is dropped and made again. */
    itest_sql(admin, "ALTER POLICY adi_tenant_isolation ON scratch_rls.things USING (true) "
                     "WITH CHECK (true)");
    assert_int_equal(run_admin("enable-rls", NULL, &out), 0);
    const char *repair[] = {
        "DROP POLICY adi_tenant_isolation ON scratch_rls.things;\n",
        "CREATE POLICY adi_tenant_isolation ON scratch_rls.things USING (tenant_id = ",
        " 2 statements applied",
    };
    for (size_t i = 0; i < sizeof(repair) / sizeof(repair[0]); i++)
        if (strstr(out, repair[i]) == NULL)
            fail_msg("enable-rls did not repair the weakened policy (\"%s\"):\n%s", repair[i], out);
    free(out);
    assert_int_equal(check_all(admin, "scratch_rls"), 2);

    /* A text key is compared as text, and recognised as such on the next run. */
    itest_sql(admin, "CREATE TABLE scratch_rls.legacy (id int, tenant_id text NOT NULL);"
                     "GRANT SELECT, INSERT, UPDATE, DELETE ON scratch_rls.legacy TO adi_tenant;");
    assert_int_equal(run_admin("enable-rls", NULL, &out), 0);
    if (strstr(out, " 3 statements applied") == NULL)
        fail_msg("enable-rls on a text key:\n%s", out);
    free(out);
    assert_int_equal(run_admin("enable-rls", NULL, &out), 0);
    if (strstr(out, " 0 statements applied") == NULL)
        fail_msg("second enable-rls run on a text key applied something:\n%s", out);
    free(out);
    itest_sql(admin, "DROP SCHEMA scratch_rls CASCADE");
    adi_db_free(admin);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s <adi-admin> <services dir>\n", argv[0]);
        return 2;
    }
    admin_bin = argv[1];
    services_dir = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_tables),
        cmocka_unit_test(test_roles_own_schema_only),
        cmocka_unit_test(test_enable_rls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
