/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of libs/db against the harness PostgreSQL (DATABASE_URL, a superuser). The
 * group gets a database of its own (adi_it_db_<pid>), so tests may run in parallel with others:
 * parameters (NULL, empty, slices without a NUL), bytea, the tenant setting's lifetime and
 * row-level security, error mapping (23505, 57014, class 22) without values in messages, and
 * recovery from a backend terminated by a second connection, idle and inside a transaction.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "adi/config.h"
#include "adi/db.h"

/* The environment this test reads, through config rows like every program of the tree. */
typedef struct test_env {
    const char *database_url; /* admin URL of the harness PostgreSQL */
} test_env_t;

static const adi_cfg_row_t env_rows[] = {
    ADI_CFG(test_env_t, database_url, "DATABASE_URL", STR, NULL, ADI_CFG_REQUIRED, 0, 0,
            "harness PostgreSQL (superuser)"),
};

/* State shared by the group. */
typedef struct group {
    char dbname[64]; /* this run's database */
    char role[64];   /* this run's unprivileged role for the RLS test */
    char *url;       /* conninfo of the run's database, heap */
    adi_db_t *admin; /* connection to the harness' database, for CREATE/DROP DATABASE */
} group_t;

static group_t G;

/* Appends `key='value'` with conninfo quoting to `b`. */
static void conninfo_put(adi_buf_t *b, const char *key, const char *val)
{
    adi_buf_printf(b, "%s%s='", b->len ? " " : "", key);
    for (const char *p = val; *p != '\0'; p++) {
        if (*p == '\'' || *p == '\\')
            adi_buf_append(b, "\\", 1);
        adi_buf_append(b, p, 1);
    }
    adi_buf_append(b, "'", 1);
}

/* The harness URL with its database replaced by `dbname`, as a conninfo string (heap). */
static char *url_with_db(const char *url, const char *dbname)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (opts == NULL) {
        PQfreemem(perr);
        return NULL;
    }
    adi_buf_t b;
    adi_buf_init(&b);
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (o->val != NULL && strcmp(o->keyword, "dbname") != 0)
            conninfo_put(&b, o->keyword, o->val);
    conninfo_put(&b, "dbname", dbname);
    PQconninfoFree(opts);
    char *out = adi_xstrdup(b.data);
    adi_buf_dispose(&b);
    return out;
}

static adi_err exec0(adi_db_t *db, const char *sql)
{
    adi_error_t err;
    adi_error_clear(&err);
    adi_err rc = adi_db_exec(db, NULL, sql, 0, NULL, NULL, &err);
    if (rc != ADI_OK)
        print_error("%s: %s %s\n", sql, err.message, adi_db_diag(db));
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    test_env_t env;
    if (adi_cfg_load(env_rows, 1, &env, stderr) != 0)
        return -1;
    snprintf(G.dbname, sizeof(G.dbname), "adi_it_db_%ld", (long)getpid());
    snprintf(G.role, sizeof(G.role), "adi_it_rls_%ld", (long)getpid());
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_connect(env.database_url, &G.admin, &err) != ADI_OK) {
        print_error("connect: %s\n", err.message);
        return -1;
    }
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", G.dbname);
    if (exec0(G.admin, sql) != ADI_OK)
        return -1;
    snprintf(sql, sizeof(sql), "CREATE ROLE %s NOLOGIN", G.role);
    if (exec0(G.admin, sql) != ADI_OK)
        return -1;
    G.url = url_with_db(env.database_url, G.dbname);
    return G.url != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", G.dbname);
    int rc = exec0(G.admin, sql) == ADI_OK ? 0 : -1;
    snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", G.role);
    if (exec0(G.admin, sql) != ADI_OK)
        rc = -1;
    adi_db_free(G.admin);
    free(G.url);
    return rc;
}

/* Each test gets a fresh connection to the run's database. */
static int setup(void **state)
{
    adi_db_t *db = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_connect(G.url, &db, &err) != ADI_OK) {
        print_error("connect: %s\n", err.message);
        return -1;
    }
    *state = db;
    return 0;
}

static int teardown(void **state)
{
    adi_db_free(*state);
    return 0;
}

/* The single text value of a one-row, one-column query, copied into `out`; "<null>" for NULL. */
static void query1(adi_db_t *db, const char *sql, int n, const adi_str_t *params, char *out,
                   size_t cap)
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(db, &pool, sql, n, params, &res, &err);
    if (rc != ADI_OK)
        print_error("%s: %s %s\n", sql, err.message, adi_db_diag(db));
    assert_int_equal(rc, ADI_OK);
    assert_int_equal(adi_db_nrows(res), 1);
    adi_str_t v = adi_db_get(res, 0, 0);
    snprintf(out, cap, "%.*s", v.ptr ? (int)v.len : 6, v.ptr ? v.ptr : "<null>");
    adi_pool_dispose(&pool);
}

static void test_params(void **state)
{
    adi_db_t *db = *state;
    assert_int_equal(exec0(db, "CREATE TABLE people (id int PRIMARY KEY, name text, note text)"),
                     ADI_OK);
    /* Slices of one buffer: neither is NUL-terminated where it ends. */
    static const char buf[] = "alicebob2x";
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    adi_db_res_t *res = NULL;
    adi_str_t p1[] = {{buf + 8, 1}, {buf, 5}, ADI_STR_NULL};
    assert_int_equal(
        adi_db_exec(db, &pool, "INSERT INTO people VALUES ($1::int, $2, $3)", 3, p1, &res, &err),
        ADI_OK);
    assert_int_equal(adi_db_affected(res), 1);
    /* An empty string is not NULL, and quotes in a value are only data. */
    adi_str_t p2[] = {ADI_STR("3"), {buf + 5, 3}, {buf, 0}};
    assert_int_equal(
        adi_db_exec(db, NULL, "INSERT INTO people VALUES ($1::int, $2, $3)", 3, p2, NULL, &err),
        ADI_OK);
    adi_str_t p3[] = {ADI_STR("4"), ADI_STR("x'); DROP TABLE people; --"), ADI_STR("\\n")};
    assert_int_equal(
        adi_db_exec(db, NULL, "INSERT INTO people VALUES ($1::int, $2, $3)", 3, p3, NULL, &err),
        ADI_OK);

    assert_int_equal(adi_db_exec(db, &pool, "SELECT id::text, name, note FROM people ORDER BY id",
                                 0, NULL, &res, &err),
                     ADI_OK);
    assert_int_equal(adi_db_nrows(res), 3);
    assert_int_equal(adi_db_ncols(res), 3);
    assert_true(adi_str_eq_c(adi_db_get(res, 0, 0), "2"));
    assert_true(adi_str_eq_c(adi_db_get(res, 0, 1), "alice"));
    assert_null(adi_db_get(res, 0, 2).ptr);
    assert_true(adi_str_eq_c(adi_db_get(res, 1, 1), "bob"));
    assert_non_null(adi_db_get(res, 1, 2).ptr);
    assert_int_equal(adi_db_get(res, 1, 2).len, 0);
    assert_true(adi_str_eq_c(adi_db_get(res, 2, 1), "x'); DROP TABLE people; --"));
    assert_true(adi_str_eq_c(adi_db_get(res, 2, 2), "\\n"));
    /* Values are NUL-terminated for callers that need C strings. */
    assert_int_equal(adi_db_get(res, 0, 1).ptr[5], '\0');
    /* Out of range is absent, not a crash. */
    assert_null(adi_db_get(res, 3, 0).ptr);
    assert_null(adi_db_get(res, 0, 3).ptr);
    assert_null(adi_db_get(res, -1, 0).ptr);
    assert_null(adi_db_get(NULL, 0, 0).ptr);
    assert_int_equal(adi_db_nrows(NULL), 0);

    adi_str_t p4[] = {ADI_STR("bob")};
    assert_int_equal(adi_db_exec(db, &pool, "UPDATE people SET note = 'seen' WHERE name <> $1", 1,
                                 p4, &res, &err),
                     ADI_OK);
    assert_int_equal(adi_db_affected(res), 2);
    adi_pool_dispose(&pool);
}

static void test_bytea(void **state)
{
    adi_db_t *db = *state;
    assert_int_equal(exec0(db, "CREATE TABLE blobs (k text PRIMARY KEY, v bytea)"), ADI_OK);
    static const char raw[] = {'\0', '\x01', '\xff', '\'', '\\', 'z'};
    const adi_db_type types[] = {ADI_DB_TEXT, ADI_DB_BYTEA};
    adi_error_t err;
    adi_error_clear(&err);
    adi_str_t rows[][2] = {{ADI_STR("bin"), {raw, sizeof(raw)}},
                           {ADI_STR("empty"), {raw, 0}},
                           {ADI_STR("null"), ADI_STR_NULL}};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(adi_db_exec_typed(db, NULL, "INSERT INTO blobs VALUES ($1, $2)", 2,
                                           rows[i], types, NULL, &err),
                         ADI_OK);
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_db_res_t *res = NULL;
    assert_int_equal(
        adi_db_exec(db, &pool, "SELECT k, v, length(v) FROM blobs ORDER BY k", 0, NULL, &res, &err),
        ADI_OK);
    assert_int_equal(adi_db_nrows(res), 3);
    adi_str_t bin = adi_db_get_bytea(res, 0, 1);
    assert_int_equal(bin.len, sizeof(raw));
    assert_memory_equal(bin.ptr, raw, sizeof(raw));
    assert_true(adi_str_eq_c(adi_db_get(res, 0, 2), "6"));
    adi_str_t empty = adi_db_get_bytea(res, 1, 1);
    assert_non_null(empty.ptr);
    assert_int_equal(empty.len, 0);
    assert_null(adi_db_get_bytea(res, 2, 1).ptr);
    assert_null(adi_db_get_bytea(res, 9, 1).ptr);

    /* A NUL byte is not text: a clear error, not a truncated value. */
    adi_str_t bad[] = {{raw, 3}};
    assert_int_equal(adi_db_exec(db, NULL, "SELECT $1", 1, bad, NULL, &err), ADI_INVALID);
    adi_pool_dispose(&pool);
}

static void test_tenant_setting(void **state)
{
    adi_db_t *db = *state;
    const char *q = "SELECT current_setting('app.tenant_id', true)";
    char v[64];
    adi_error_t err;
    adi_error_clear(&err);

    assert_int_equal(adi_db_begin(db, ADI_STR("tenant-1"), &err), ADI_OK);
    assert_true(adi_db_in_tx(db));
    query1(db, q, 0, NULL, v, sizeof(v));
    assert_string_equal(v, "tenant-1");
    /* A second begin inside the transaction is refused. */
    assert_int_equal(adi_db_begin(db, ADI_STR("other"), &err), ADI_INTERNAL);
    assert_int_equal(adi_db_commit(db, &err), ADI_OK);
    assert_false(adi_db_in_tx(db));
    query1(db, q, 0, NULL, v, sizeof(v));
    assert_true(strcmp(v, "") == 0 || strcmp(v, "<null>") == 0);

    /* A slice without a NUL where it ends; gone after rollback too. */
    static const char t2[] = "tenant-2-and-more";
    assert_int_equal(adi_db_begin(db, (adi_str_t){t2, 8}, &err), ADI_OK);
    query1(db, q, 0, NULL, v, sizeof(v));
    assert_string_equal(v, "tenant-2");
    adi_db_rollback(db);
    query1(db, q, 0, NULL, v, sizeof(v));
    assert_true(strcmp(v, "") == 0 || strcmp(v, "<null>") == 0);

    /* No tenant: nothing set. */
    assert_int_equal(adi_db_begin(db, ADI_STR_NULL, &err), ADI_OK);
    query1(db, q, 0, NULL, v, sizeof(v));
    assert_true(strcmp(v, "") == 0 || strcmp(v, "<null>") == 0);
    assert_int_equal(adi_db_commit(db, &err), ADI_OK);
    assert_int_equal(adi_db_commit(db, &err), ADI_INTERNAL); /* nothing open */
}

/* The contract RLS builds on: a forced policy on app.tenant_id, seen by an unprivileged role. */
static void test_row_level_security(void **state)
{
    adi_db_t *db = *state;
    char sql[512];
    assert_int_equal(exec0(db, "CREATE TABLE notes (tenant_id text NOT NULL, body text)"), ADI_OK);
    assert_int_equal(exec0(db, "INSERT INTO notes VALUES ('t1', 'a'), ('t1', 'b'), ('t2', 'c')"),
                     ADI_OK);
    assert_int_equal(exec0(db, "ALTER TABLE notes ENABLE ROW LEVEL SECURITY"), ADI_OK);
    assert_int_equal(exec0(db, "ALTER TABLE notes FORCE ROW LEVEL SECURITY"), ADI_OK);
    assert_int_equal(exec0(db, "CREATE POLICY tenant ON notes USING "
                               "(tenant_id = current_setting('app.tenant_id', true))"),
                     ADI_OK);
    snprintf(sql, sizeof(sql), "GRANT SELECT ON notes TO %s", G.role);
    assert_int_equal(exec0(db, sql), ADI_OK);
    snprintf(sql, sizeof(sql), "SET LOCAL ROLE %s", G.role);

    const struct {
        adi_str_t tenant; /* principal's tenant */
        const char *want; /* visible rows */
    } cases[] = {{ADI_STR("t1"), "2"}, {ADI_STR("t2"), "1"}, {ADI_STR_NULL, "0"}};
    adi_error_t err;
    adi_error_clear(&err);
    for (size_t i = 0; i < 3; i++) {
        char v[16];
        assert_int_equal(adi_db_begin(db, cases[i].tenant, &err), ADI_OK);
        assert_int_equal(exec0(db, sql), ADI_OK);
        query1(db, "SELECT count(*) FROM notes", 0, NULL, v, sizeof(v));
        assert_string_equal(v, cases[i].want);
        assert_int_equal(adi_db_commit(db, &err), ADI_OK);
    }
}

static void test_conflict(void **state)
{
    adi_db_t *db = *state;
    assert_int_equal(exec0(db, "CREATE TABLE users (email text CONSTRAINT users_email_key UNIQUE)"),
                     ADI_OK);
    adi_str_t p[] = {ADI_STR("secret-person@example.com")};
    const char *ins = "INSERT INTO users VALUES ($1)";
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_exec(db, NULL, ins, 1, p, NULL, &err), ADI_OK);
    assert_int_equal(adi_db_exec(db, NULL, ins, 1, p, NULL, &err), ADI_CONFLICT);
    assert_int_equal(err.code, ADI_CONFLICT);
    assert_string_equal(err.message, "conflict");
    assert_string_equal(adi_db_constraint(db), "users_email_key");
    assert_string_equal(adi_db_sqlstate(db), "23505");
    assert_non_null(strstr(adi_db_diag(db), "23505"));
    assert_null(strstr(adi_db_diag(db), "secret-person"));

    /* Inside a transaction the failure aborts it: later statements and the commit fail. */
    assert_int_equal(adi_db_begin(db, ADI_STR("t"), &err), ADI_OK);
    assert_int_equal(adi_db_exec(db, NULL, ins, 1, p, NULL, &err), ADI_CONFLICT);
    assert_int_equal(adi_db_exec(db, NULL, "SELECT 1", 0, NULL, NULL, &err), ADI_INTERNAL);
    assert_int_equal(adi_db_commit(db, &err), ADI_INTERNAL);
    assert_false(adi_db_in_tx(db));
    /* The connection is fine afterwards. */
    assert_int_equal(adi_db_begin(db, ADI_STR_NULL, &err), ADI_OK);
    assert_int_equal(adi_db_commit(db, &err), ADI_OK);
    assert_string_equal(adi_db_constraint(db), "");
    assert_string_equal(adi_db_sqlstate(db), "");
}

static void test_errors_hide_values(void **state)
{
    adi_db_t *db = *state;
    adi_error_t err;
    adi_error_clear(&err);
    adi_str_t p[] = {ADI_STR("s3cr3t-not-a-uuid")};
    assert_int_equal(adi_db_exec(db, NULL, "SELECT $1::uuid", 1, p, NULL, &err), ADI_INVALID);
    assert_null(strstr(err.message, "s3cr3t"));
    assert_null(strstr(adi_db_diag(db), "s3cr3t"));
    assert_non_null(strstr(adi_db_diag(db), "22P02"));

    assert_int_equal(adi_db_exec(db, NULL, "SELEC 1", 0, NULL, NULL, &err), ADI_INTERNAL);
    assert_int_equal(adi_db_exec(db, NULL, "SELECT 1", -1, NULL, NULL, &err), ADI_INVALID);
    assert_int_equal(adi_db_exec(db, NULL, "SELECT $1", 1, NULL, NULL, &err), ADI_INVALID);
    /* A parameter count that does not match the statement. */
    assert_int_equal(adi_db_exec(db, NULL, "SELECT $1, $2", 1, p, NULL, &err), ADI_INTERNAL);

    /* Scripts may run several statements, and say where a syntax error is. */
    assert_int_equal(
        adi_db_exec_script(db, "CREATE TABLE s1 (a int); INSERT INTO s1 VALUES (1);", &err),
        ADI_OK);
    assert_int_equal(adi_db_exec_script(db, "SELECT 1; SELEC 2;", &err), ADI_INTERNAL);
    assert_non_null(strstr(adi_db_diag(db), "42601"));
    assert_non_null(strstr(adi_db_diag(db), "SELEC"));
    assert_true(adi_db_ping(db));
}

static void test_statement_timeout(void **state)
{
    adi_db_t *db = *state;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_begin(db, ADI_STR_NULL, &err), ADI_OK);
    assert_int_equal(exec0(db, "SET LOCAL statement_timeout = 1"), ADI_OK);
    assert_int_equal(adi_db_exec(db, NULL, "SELECT pg_sleep(30)", 0, NULL, NULL, &err),
                     ADI_TIMEOUT);
    assert_int_equal(err.code, ADI_TIMEOUT);
    adi_db_rollback(db);
    assert_true(adi_db_ping(db));
}

/* Terminates `victim`'s backend from a second connection and waits until it is gone. */
static void terminate_backend(adi_db_t *victim, char pid[16])
{
    query1(victim, "SELECT pg_backend_pid()", 0, NULL, pid, 16);
    adi_db_t *killer = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_connect(G.url, &killer, &err), ADI_OK);
    adi_str_t p[] = {adi_str_c(pid)};
    char v[16];
    query1(killer, "SELECT pg_terminate_backend($1::int, 30000)", 1, p, v, sizeof(v));
    assert_string_equal(v, "t");
    adi_db_free(killer);
}

static void test_reconnect_when_idle(void **state)
{
    adi_db_t *db = *state;
    char before[16], after[16];
    terminate_backend(db, before);
    /* The next call notices the dead backend and reconnects before sending. */
    query1(db, "SELECT pg_backend_pid()", 0, NULL, after, sizeof(after));
    assert_string_not_equal(before, after);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_begin(db, ADI_STR("t1"), &err), ADI_OK);
    assert_int_equal(adi_db_commit(db, &err), ADI_OK);
}

static void test_reconnect_after_lost_transaction(void **state)
{
    adi_db_t *db = *state;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_begin(db, ADI_STR("t1"), &err), ADI_OK);
    char before[16], after[16];
    terminate_backend(db, before);
    /* The transaction died with its backend: the statement fails as unavailable... */
    assert_int_equal(adi_db_exec(db, NULL, "SELECT 1", 0, NULL, NULL, &err), ADI_UNAVAILABLE);
    assert_false(adi_db_in_tx(db));
    assert_null(strstr(err.message, "postgres@"));
    adi_db_rollback(db);
    /* ...and the next transaction runs on a new connection. */
    assert_int_equal(adi_db_begin(db, ADI_STR("t1"), &err), ADI_OK);
    query1(db, "SELECT pg_backend_pid()", 0, NULL, after, sizeof(after));
    assert_string_not_equal(before, after);
    assert_int_equal(adi_db_commit(db, &err), ADI_OK);
}

static void test_connect_errors(void **state)
{
    (void)state;
    adi_db_t *db = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_connect("postgresql://u:pw-s3cr3t@[::1", &db, &err), ADI_INVALID);
    assert_null(db);
    assert_null(strstr(err.message, "s3cr3t"));
    /* Port 1 on loopback: nothing listens there, so the refusal is immediate. */
    assert_int_equal(adi_db_connect("postgresql://u:pw-s3cr3t@127.0.0.1:1/x", &db, &err),
                     ADI_UNAVAILABLE);
    assert_null(db);
    assert_null(strstr(err.message, "s3cr3t"));
    assert_int_equal(adi_db_connect(NULL, &db, &err), ADI_INVALID);
    adi_db_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytea, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_setting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_level_security, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_hide_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statement_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_when_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_lost_transaction, setup, teardown),
        cmocka_unit_test(test_connect_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
