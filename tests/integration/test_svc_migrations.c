/* SPDX-License-Identifier: MIT */
/*
 * The four backend services' 001_init.sql (argv[1] is the repository's services/ folder), applied
 * twice to a fresh database of the test cluster: each creates its schema, its role and the
 * adi_idempotency table, is safe to re-apply, and gives each role rights on its own schema only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

static const char *services_dir;

static const struct {
    const char *dir;    /* services/<dir> */
    const char *schema; /* its schema */
    const char *role;   /* its role */
} svcs[] = {
    {"auth", "auth", "adi_auth"},
    {"tenant", "tenant", "adi_tenant"},
    {"vault", "vault", "adi_vault"},
    {"task-runner", "tasks", "adi_task_runner"},
};

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    adi_buf_t b;
    adi_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        adi_buf_append(&b, chunk, n);
    fclose(f);
    return b.data;
}

static adi_db_t *connect_as(const char *role, const char *dbname)
{
    char url[256];
    snprintf(url, sizeof(url), "postgresql://%s@127.0.0.1:%s/%s", role, itest_env("ADI_PG_PORT"),
             dbname);
    adi_db_t *db = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_connect(url, &db, &err) != ADI_OK)
        fail_msg("connect as %s: %s", role, err.message);
    return db;
}

static adi_err try_sql(adi_db_t *db, const char *sql)
{
    adi_error_t err;
    adi_error_clear(&err);
    return adi_db_exec(db, NULL, sql, 0, NULL, NULL, &err);
}

static void test_init_migrations(void **state)
{
    (void)state;
    char dbname[48];
    itest_unique(dbname, sizeof(dbname), "tmig");
    adi_db_t *admin = itest_db();
    char sql[512];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    itest_sql(admin, sql);

    adi_db_t *fresh = connect_as("postgres", dbname);
    for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s/migrations/001_init.sql", services_dir, svcs[i].dir);
        char *text = read_file(path);
        itest_sql(fresh, text);
        itest_sql(fresh, text); /* safe to apply twice */
        free(text);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_roles WHERE rolname = $1");
        assert_int_equal(itest_sql_int(fresh, sql, svcs[i].role), 1);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM information_schema.tables WHERE "
                 "table_name = 'adi_idempotency' AND table_schema = $1");
        assert_int_equal(itest_sql_int(fresh, sql, svcs[i].schema), 1);
    }
    adi_db_free(fresh);

    /* Each role uses its own schema and no other. */
    for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++) {
        adi_db_t *db = connect_as(svcs[i].role, dbname);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO %s.adi_idempotency (request_id, op, reply) VALUES ('r', 'o', "
                 "'\\x00')",
                 svcs[i].schema);
        assert_int_equal(try_sql(db, sql), ADI_OK);
        snprintf(sql, sizeof(sql), "DELETE FROM %s.adi_idempotency", svcs[i].schema);
        assert_int_equal(try_sql(db, sql), ADI_OK);
        snprintf(sql, sizeof(sql), "CREATE TABLE %s.mine (x int)", svcs[i].schema);
        assert_int_not_equal(try_sql(db, sql), ADI_OK);
        const char *other = svcs[(i + 1) % 4].schema;
        snprintf(sql, sizeof(sql), "SELECT * FROM %s.adi_idempotency", other);
        assert_int_not_equal(try_sql(db, sql), ADI_OK);
        adi_db_free(db);
    }

    snprintf(sql, sizeof(sql), "DROP DATABASE %s", dbname);
    itest_sql(admin, sql);
    adi_db_free(admin);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <services dir>\n", argv[0]);
        return 2;
    }
    services_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_migrations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
