/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of `adi-admin migrate` against the harness PostgreSQL: every case runs the
 * real binary on a fresh database of its own (adi_it_mig_<pid>_<n>). Applying twice is
 * idempotent; a broken file is rolled back whole and stops the run; concurrent runs apply each
 * file once; the repository's own migrations apply twice cleanly; bad usage exits 2.
 *
 * usage: test_admin_migrate <adi-admin> <fixtures dir> <repo services dir>
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "adi/config.h"
#include "adi/db.h"

extern char **environ;

typedef struct test_env {
    const char *database_url; /* admin URL of the harness PostgreSQL */
} test_env_t;

static const adi_cfg_row_t env_rows[] = {
    ADI_CFG(test_env_t, database_url, "DATABASE_URL", STR, NULL, ADI_CFG_REQUIRED, 0, 0,
            "harness PostgreSQL (superuser)"),
};

static const char *admin_bin;    /* the adi-admin under test */
static const char *fixtures_dir; /* tests/integration/db/fixtures */
static const char *services_dir; /* the repository's services/ */
static test_env_t env;

/* One fresh database and a connection to it. */
typedef struct fresh {
    char name[64]; /* database name */
    char *url;     /* its conninfo, heap */
    adi_db_t *db;  /* connection for checks */
} fresh_t;

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

/* Runs `sql` on the harness database (CREATE/DROP DATABASE). */
static void admin_sql(const char *sql)
{
    adi_db_t *db = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_connect(env.database_url, &db, &err), ADI_OK);
    adi_err rc = adi_db_exec(db, NULL, sql, 0, NULL, NULL, &err);
    if (rc != ADI_OK)
        print_error("%s: %s %s\n", sql, err.message, adi_db_diag(db));
    adi_db_free(db);
    assert_int_equal(rc, ADI_OK);
}

static int fresh_setup(void **state)
{
    static int seq;
    fresh_t *f = calloc(1, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "adi_it_mig_%ld_%d", (long)getpid(), ++seq);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->name);
    admin_sql(sql);
    f->url = url_with_db(env.database_url, f->name);
    adi_error_t err;
    adi_error_clear(&err);
    if (f->url == NULL || adi_db_connect(f->url, &f->db, &err) != ADI_OK)
        return -1;
    *state = f;
    return 0;
}

static int fresh_teardown(void **state)
{
    fresh_t *f = *state;
    adi_db_free(f->db);
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->name);
    admin_sql(sql);
    free(f->url);
    free(f);
    return 0;
}

/* A started adi-admin whose stdout and stderr go to one pipe. */
typedef struct proc {
    pid_t pid; /* the child */
    int fd;    /* read end of its output */
} proc_t;

static proc_t start(const char *url, const char *dir, const char *a1, const char *a2)
{
    if (url != NULL)
        setenv("DATABASE_URL", url, 1);
    if (dir != NULL)
        setenv("MIGRATIONS_DIR", dir, 1);
    int p[2];
    assert_int_equal(pipe(p), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    char *argv[] = {(char *)(uintptr_t)admin_bin, (char *)(uintptr_t)a1, (char *)(uintptr_t)a2,
                    NULL};
    proc_t pr = {0, p[0]};
    assert_int_equal(posix_spawn(&pr.pid, admin_bin, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    setenv("DATABASE_URL", env.database_url, 1);
    unsetenv("MIGRATIONS_DIR");
    return pr;
}

/* Collects the output (into `out`, NUL-terminated) and returns the exit code. */
static int finish(proc_t pr, adi_buf_t *out)
{
    adi_buf_init(out);
    char chunk[4096];
    ssize_t n;
    while ((n = read(pr.fd, chunk, sizeof(chunk))) > 0)
        adi_buf_append(out, chunk, (size_t)n);
    adi_buf_append(out, "", 0);
    close(pr.fd);
    int status = 0;
    assert_int_equal(waitpid(pr.pid, &status, 0), pr.pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int run(const char *url, const char *dir, const char *a1, const char *a2, adi_buf_t *out)
{
    return finish(start(url, dir, a1, a2), out);
}

/* The single text value of a query on `db`, into `out`; "<null>" for NULL. */
static void query1(adi_db_t *db, const char *sql, char *out, size_t cap)
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    adi_db_res_t *res = NULL;
    assert_int_equal(adi_db_exec(db, &pool, sql, 0, NULL, &res, &err), ADI_OK);
    assert_int_equal(adi_db_nrows(res), 1);
    adi_str_t v = adi_db_get(res, 0, 0);
    snprintf(out, cap, "%.*s", v.ptr ? (int)v.len : 6, v.ptr ? v.ptr : "<null>");
    adi_pool_dispose(&pool);
}

static void assert_query(adi_db_t *db, const char *sql, const char *want)
{
    char v[256];
    query1(db, sql, v, sizeof(v));
    if (strcmp(v, want) != 0)
        print_error("%s: got %s, want %s\n", sql, v, want);
    assert_string_equal(v, want);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void fixture_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", fixtures_dir, name);
}

static void test_migrate_twice(void **state)
{
    fresh_t *f = *state;
    char dir[4096];
    fixture_path(dir, sizeof(dir), "ok");
    adi_buf_t out;
    assert_int_equal(run(f->url, dir, "migrate", NULL, &out), 0);
    assert_non_null(strstr(out.data, "applying alpha 001_init\n"));
    assert_non_null(strstr(out.data, "applying alpha 002_add_note\n"));
    assert_non_null(strstr(out.data, "applying beta 001_init\n"));
    assert_true(strstr(out.data, "alpha 002") < strstr(out.data, "beta 001"));
    assert_non_null(strstr(out.data, "3 applied, 0 already applied"));
    adi_buf_dispose(&out);

    assert_int_equal(run(f->url, dir, "migrate", NULL, &out), 0);
    assert_null(strstr(out.data, "applying"));
    assert_non_null(strstr(out.data, "0 applied, 3 already applied"));
    adi_buf_dispose(&out);

    assert_query(f->db,
                 "SELECT string_agg(service || version || name, ',' ORDER BY service, "
                 "version) FROM public.adi_migrations",
                 "alpha1init,alpha2add_note,beta1init");
    assert_query(f->db, "SELECT count(*) FROM alpha.items", "1");
    /* alpha's SET search_path did not leak into beta's file. */
    assert_query(f->db, "SELECT to_regclass('public.beta_probe') IS NOT NULL", "t");

    assert_int_equal(run(f->url, dir, "migrate", "--status", &out), 0);
    assert_int_equal(count(out.data, "applied 2"), 3);
    assert_null(strstr(out.data, "pending"));
    adi_buf_dispose(&out);
}

static void test_broken_file_is_rolled_back(void **state)
{
    fresh_t *f = *state;
    char dir[4096];
    fixture_path(dir, sizeof(dir), "broken");
    adi_buf_t out;
    assert_int_equal(run(f->url, dir, "migrate", NULL, &out), 1);
    assert_non_null(strstr(out.data, "002_broken.sql"));
    assert_non_null(strstr(out.data, "42601"));
    assert_null(strstr(out.data, "applying gamma 003"));
    adi_buf_dispose(&out);
    assert_query(f->db, "SELECT to_regclass('public.gamma_ok') IS NOT NULL", "t");
    assert_query(f->db, "SELECT to_regclass('public.gamma_half') IS NULL", "t");
    assert_query(f->db, "SELECT to_regclass('public.gamma_never') IS NULL", "t");
    assert_query(f->db, "SELECT string_agg(service || version, ',') FROM public.adi_migrations",
                 "gamma1");

    assert_int_equal(run(f->url, dir, "migrate", "--status", &out), 0);
    assert_int_equal(count(out.data, "pending"), 2);
    adi_buf_dispose(&out);
}

static void test_concurrent_runs_apply_once(void **state)
{
    fresh_t *f = *state;
    char dir[4096];
    fixture_path(dir, sizeof(dir), "ok");
    proc_t a = start(f->url, dir, "migrate", NULL);
    proc_t b = start(f->url, dir, "migrate", NULL);
    adi_buf_t oa, ob;
    assert_int_equal(finish(a, &oa), 0);
    assert_int_equal(finish(b, &ob), 0);
    assert_int_equal(count(oa.data, "applying ") + count(ob.data, "applying "), 3);
    adi_buf_dispose(&oa);
    adi_buf_dispose(&ob);
    assert_query(f->db, "SELECT count(*) FROM public.adi_migrations", "3");
}

static bool repo_has_migrations(void)
{
    DIR *d = opendir(services_dir);
    if (d == NULL)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s/migrations", services_dir, e->d_name);
        DIR *m = e->d_name[0] != '.' ? opendir(path) : NULL;
        if (m != NULL) {
            struct dirent *x;
            while (!found && (x = readdir(m)) != NULL)
                found = strstr(x->d_name, ".sql") != NULL;
            closedir(m);
        }
    }
    closedir(d);
    return found;
}

static void test_repo_migrations_twice(void **state)
{
    fresh_t *f = *state;
    if (!repo_has_migrations()) {
        print_message("no services/*/migrations yet: skipped\n");
        skip();
    }
    adi_buf_t out;
    int rc = run(f->url, services_dir, "migrate", NULL, &out);
    if (rc != 0)
        print_error("%s\n", out.data);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out.data, "applying "));
    adi_buf_dispose(&out);
    rc = run(f->url, services_dir, "migrate", NULL, &out);
    if (rc != 0)
        print_error("%s\n", out.data);
    assert_int_equal(rc, 0);
    assert_null(strstr(out.data, "applying "));
    assert_non_null(strstr(out.data, " 0 applied"));
    adi_buf_dispose(&out);
}

/*
 * The repository's migrations into several fresh databases of one cluster at once, as parallel
 * tests (or several environments sharing a server) do: the roles and their settings are
 * cluster-wide, so the runs meet on the same catalog rows; every run must still succeed.
 */
static void test_repo_migrations_in_parallel_databases(void **state)
{
    (void)state;
    if (!repo_has_migrations())
        skip();
    enum { N = 4, ROUNDS = 3 };
    for (int round = 0; round < ROUNDS; round++) {
        char names[N][64];
        char *urls[N];
        proc_t procs[N];
        for (int i = 0; i < N; i++) {
            snprintf(names[i], sizeof(names[i]), "adi_it_par_%ld_%d_%d", (long)getpid(), round, i);
            char sql[128];
            snprintf(sql, sizeof(sql), "CREATE DATABASE %s", names[i]);
            admin_sql(sql);
            urls[i] = url_with_db(env.database_url, names[i]);
            assert_non_null(urls[i]);
        }
        for (int i = 0; i < N; i++)
            procs[i] = start(urls[i], services_dir, "migrate", NULL);
        int failed = 0;
        for (int i = 0; i < N; i++) {
            adi_buf_t out;
            if (finish(procs[i], &out) != 0) {
                print_error("round %d, database %d:\n%s\n", round, i, out.data);
                failed++;
            }
            adi_buf_dispose(&out);
        }
        for (int i = 0; i < N; i++) {
            char sql[160];
            snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", names[i]);
            admin_sql(sql);
            free(urls[i]);
        }
        assert_int_equal(failed, 0);
    }
}

static void test_usage_and_config_errors(void **state)
{
    (void)state;
    char dir[4096];
    fixture_path(dir, sizeof(dir), "ok");
    adi_buf_t out;
    assert_int_equal(run(NULL, NULL, NULL, NULL, &out), 2);
    assert_non_null(strstr(out.data, "usage: adi-admin"));
    adi_buf_dispose(&out);
    assert_int_equal(run(NULL, NULL, "bogus", NULL, &out), 2);
    assert_non_null(strstr(out.data, "unknown command 'bogus'"));
    adi_buf_dispose(&out);
    assert_int_equal(run(NULL, NULL, "migrate", "--bogus", &out), 2);
    adi_buf_dispose(&out);
    assert_int_equal(run(NULL, NULL, "help", NULL, &out), 0);
    assert_non_null(strstr(out.data, "migrate"));
    adi_buf_dispose(&out);
    assert_int_equal(run(NULL, NULL, "--config-table", NULL, &out), 0);
    assert_non_null(strstr(out.data, "MIGRATIONS_DIR"));
    adi_buf_dispose(&out);
    assert_int_equal(run(NULL, "/nonexistent/adi", "migrate", NULL, &out), 1);
    assert_non_null(strstr(out.data, "/nonexistent/adi"));
    adi_buf_dispose(&out);
    /* An unreachable database: a clear message, without the password. */
    assert_int_equal(run("postgresql://u:pw-s3cr3t@127.0.0.1:1/x", dir, "migrate", NULL, &out), 1);
    assert_non_null(strstr(out.data, "cannot connect"));
    assert_null(strstr(out.data, "s3cr3t"));
    adi_buf_dispose(&out);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s <adi-admin> <fixtures dir> <repo services dir>\n", argv[0]);
        return 2;
    }
    admin_bin = argv[1];
    fixtures_dir = argv[2];
    services_dir = argv[3];
    if (adi_cfg_load(env_rows, 1, &env, stderr) != 0)
        return 2;
    /* start() rewrites DATABASE_URL in the environment: keep a copy of the harness URL. */
    char *url = adi_xstrdup(env.database_url);
    env.database_url = url;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_twice, fresh_setup, fresh_teardown),
        cmocka_unit_test_setup_teardown(test_broken_file_is_rolled_back, fresh_setup,
                                        fresh_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_runs_apply_once, fresh_setup,
                                        fresh_teardown),
        cmocka_unit_test_setup_teardown(test_repo_migrations_twice, fresh_setup, fresh_teardown),
        cmocka_unit_test(test_repo_migrations_in_parallel_databases),
        cmocka_unit_test(test_usage_and_config_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(url);
    return rc;
}
