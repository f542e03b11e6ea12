/* SPDX-License-Identifier: MIT */
/*
 * `adi-admin migrate`: applies each service's versioned SQL files
 * (MIGRATIONS_DIR/<service>/migrations/NNN_name.sql) in order, services in name order and each
 * service's files by version. Every file runs in its own transaction together with its row in
 * public.adi_migrations (service, version, name, checksum, applied_at), so a file is either applied
 * and recorded or neither; running again applies nothing. A session advisory lock serialises
 * concurrent runs on one database (a deploy Job racing an operator); runs on other databases of
 * the same cluster can meet on the cluster-wide roles, and a file that fails that way is run
 * again (up to five times). A file changed after it was applied is
 * reported, never re-run. The first failure stops the run: later files may depend on it.
 *
 * Migration files must not contain transaction control (BEGIN/COMMIT) of their own.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "admin.h"

#define MAX_FILE_BYTES (16u * 1024 * 1024)
#define MAX_SERVICE    63
#define MAX_NAME       127
#define MAX_VERSION    999999
/* The advisory lock held while migrating (two int4 keys: "adi", 1). */
#define LOCK_SQL "SELECT pg_advisory_lock(6873, 1)"
/* A file's session-level SETs (search_path, role) must not leak into the next file. */
#define RESET_SQL "RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION"

static const char create_sql[] = "CREATE TABLE IF NOT EXISTS public.adi_migrations ("
                                 " service text NOT NULL,"
                                 " version integer NOT NULL,"
                                 " name text NOT NULL,"
                                 " checksum text NOT NULL,"
                                 " applied_at timestamptz NOT NULL DEFAULT now(),"
                                 " PRIMARY KEY (service, version))";

/* One migration file found on disk. */
typedef struct mig_file {
    char service[MAX_SERVICE + 1]; /* directory name under MIGRATIONS_DIR */
    int version;                   /* NNN */
    char name[MAX_NAME + 1];       /* the part between NNN_ and .sql */
    char *path;                    /* full path, heap */
} mig_file_t;

/* Every migration file, sorted by service then version. */
typedef struct mig_set {
    mig_file_t *files; /* heap array */
    size_t n;          /* used entries */
    size_t cap;        /* allocated entries */
} mig_set_t;

static void set_dispose(mig_set_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->files[i].path);
    free(s->files);
}

static bool valid_chars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

/* Parses NNN_name.sql; false for anything else. */
static bool parse_file_name(const char *f, int *version, char name[MAX_NAME + 1])
{
    size_t len = strlen(f);
    size_t digits = strspn(f, "0123456789");
    if (digits == 0 || digits > 6 || f[digits] != '_' || len < digits + 6 ||
        strcmp(f + len - 4, ".sql") != 0)
        return false;
    const char *n = f + digits + 1;
    size_t nlen = len - digits - 1 - 4;
    if (nlen > MAX_NAME || !valid_chars(n, nlen))
        return false;
    *version = atoi(f);
    memcpy(name, n, nlen);
    name[nlen] = '\0';
    return *version > 0 && *version <= MAX_VERSION;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Adds the .sql files of one service; returns the number of problems reported. */
static int scan_service(mig_set_t *set, const char *root, const char *svc)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s/migrations", root, svc);
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "migrate: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        mig_file_t f = {0};
        if (!parse_file_name(e->d_name, &f.version, f.name)) {
            fprintf(stderr, "migrate: %s/%s: expected a name like 001_init.sql\n", dir, e->d_name);
            bad++;
            continue;
        }
        snprintf(f.service, sizeof(f.service), "%s", svc);
        size_t plen = strlen(dir) + 1 + len + 1;
        f.path = adi_xmalloc(plen);
        snprintf(f.path, plen, "%s/%s", dir, e->d_name);
        if (set->n == set->cap) {
            set->cap = set->cap ? set->cap * 2 : 16;
            set->files = adi_xrealloc(set->files, set->cap * sizeof(*set->files));
        }
        set->files[set->n++] = f;
    }
    closedir(d);
    return bad;
}

static int cmp_file(const void *a, const void *b)
{
    const mig_file_t *x = a, *y = b;
    int c = strcmp(x->service, y->service);
    if (c != 0)
        return c;
    return (x->version > y->version) - (x->version < y->version);
}

/* Finds every migration under `root`; returns the number of problems reported. */
static int scan(mig_set_t *set, const char *root)
{
    DIR *d = opendir(root);
    if (d == NULL) {
        fprintf(stderr, "migrate: MIGRATIONS_DIR %s: %s\n", root, strerror(errno));
        return 1;
    }
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char mdir[4096];
        snprintf(mdir, sizeof(mdir), "%s/%s/migrations", root, e->d_name);
        if (!is_dir(mdir))
            continue;
        if (strlen(e->d_name) > MAX_SERVICE || !valid_chars(e->d_name, strlen(e->d_name))) {
            fprintf(stderr, "migrate: %s: not a valid service name\n", e->d_name);
            bad++;
            continue;
        }
        bad += scan_service(set, root, e->d_name);
    }
    closedir(d);
    if (set->n > 0)
        qsort(set->files, set->n, sizeof(*set->files), cmp_file);
    for (size_t i = 1; i < set->n; i++) {
        if (strcmp(set->files[i].service, set->files[i - 1].service) == 0 &&
            set->files[i].version == set->files[i - 1].version) {
            fprintf(stderr, "migrate: %s and %s have the same version\n", set->files[i - 1].path,
                    set->files[i].path);
            bad++;
        }
    }
    if (bad == 0 && set->n == 0) {
        fprintf(stderr, "migrate: no migrations under %s (expected <service>/migrations/*.sql)\n",
                root);
        bad++;
    }
    return bad;
}

/* Reads a whole migration file (bounded) into a NUL-terminated heap string; NULL on failure. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "migrate: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > MAX_FILE_BYTES) {
        fprintf(stderr, "migrate: %s: not a readable file under 16 MiB\n", path);
        fclose(f);
        return NULL;
    }
    char *buf = adi_xmalloc((size_t)st.st_size + 1);
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    /* The file may have grown since fstat: anything beyond is an error, not a silent cut. */
    bool failed = ferror(f) != 0 || n != (size_t)st.st_size || fgetc(f) != EOF;
    fclose(f);
    if (failed || memchr(buf, '\0', n) != NULL) {
        fprintf(stderr, "migrate: %s: %s\n", path,
                failed ? "read error or changed while read" : "contains a NUL byte");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static void print_failure(const char *what, adi_db_t *db, const adi_error_t *err)
{
    const char *diag = adi_db_diag(db);
    fprintf(stderr, "migrate: %s: %s%s%s\n", what, err->message, diag[0] ? " " : "", diag);
}

static int apply_once(adi_db_t *db, const mig_file_t *f, const char *sql, bool may_retry,
                      bool *again);

/*
 * Whether a failed file may simply be run again: roles are cluster-wide, so migrations of two
 * databases of one cluster running at once (the advisory lock is per database) can meet on a
 * role's catalog row ("tuple concurrently updated", XX000), or deadlock or fail to serialise;
 * the file rolled back, and files are safe to apply twice.
 */
static bool retryable(const adi_db_t *db)
{
    const char *s = adi_db_sqlstate(db);
    return strcmp(s, "XX000") == 0 || strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0;
}

/* Applies one file and its record in one transaction, again after a retryable failure. */
static int apply(adi_db_t *db, const mig_file_t *f, const char *sql)
{
    int rc = ADMIN_EXIT_FAILED;
    for (int attempt = 1; attempt <= 5; attempt++) {
        bool again = false;
        rc = apply_once(db, f, sql, attempt < 5, &again);
        if (!again)
            break;
        fprintf(stderr, "migrate: %s: concurrent change of a shared catalog; again (%d)\n", f->path,
                attempt);
        struct timespec ts = {0, 50000000L * attempt};
        nanosleep(&ts, NULL);
    }
    return rc;
}

/* One try of apply: `*again` when it failed retryably and `may_retry`, nothing printed then. */
static int apply_once(adi_db_t *db, const mig_file_t *f, const char *sql, bool may_retry,
                      bool *again)
{
    adi_error_t err;
    adi_error_clear(&err);
    char version[16];
    snprintf(version, sizeof(version), "%d", f->version);
    adi_str_t params[] = {adi_str_c(f->service), adi_str_c(version), adi_str_c(f->name),
                          adi_str_c(sql)};
    if (adi_db_begin(db, ADI_STR_NULL, &err) != ADI_OK) {
        print_failure(f->path, db, &err);
        return ADMIN_EXIT_FAILED;
    }
    if (adi_db_exec_script(db, sql, &err) != ADI_OK ||
        adi_db_exec(db, NULL,
                    "INSERT INTO public.adi_migrations (service, version, name, checksum) "
                    "VALUES ($1, $2::integer, $3, md5($4))",
                    4, params, NULL, &err) != ADI_OK ||
        adi_db_commit(db, &err) != ADI_OK) {
        *again = may_retry && retryable(db);
        if (!*again)
            print_failure(f->path, db, &err);
        adi_db_rollback(db);
        return ADMIN_EXIT_FAILED;
    }
    if (adi_db_exec_script(db, RESET_SQL, &err) != ADI_OK) {
        print_failure("reset after migration", db, &err);
        return ADMIN_EXIT_FAILED;
    }
    return ADMIN_EXIT_OK;
}

/* Looks up whether `f` is applied: 1 applied, 0 pending, -1 error; `changed` if edited since. */
static int applied(adi_db_t *db, const mig_file_t *f, const char *sql, bool *changed, char when[64])
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    char version[16];
    snprintf(version, sizeof(version), "%d", f->version);
    adi_str_t params[] = {adi_str_c(f->service), adi_str_c(version),
                          sql != NULL ? adi_str_c(sql) : ADI_STR("")};
    adi_db_res_t *res = NULL;
    int rc = -1;
    if (adi_db_exec(db, &pool,
                    "SELECT checksum = md5($3), applied_at::text FROM public.adi_migrations "
                    "WHERE service = $1 AND version = $2::integer",
                    3, params, &res, &err) != ADI_OK) {
        print_failure(f->path, db, &err);
        goto out;
    }
    rc = adi_db_nrows(res) > 0;
    if (rc == 1) {
        *changed = sql != NULL && !adi_str_eq_c(adi_db_get(res, 0, 0), "t");
        snprintf(when, 64, "%s", adi_db_get(res, 0, 1).ptr);
    }
out:
    adi_pool_dispose(&pool);
    return rc;
}

static int run_migrate(adi_db_t *db, const mig_set_t *set)
{
    adi_error_t err;
    adi_error_clear(&err);
    /* Serialise concurrent runs before touching the table (CREATE IF NOT EXISTS races). */
    if (adi_db_exec_script(db, LOCK_SQL, &err) != ADI_OK ||
        adi_db_exec_script(db, create_sql, &err) != ADI_OK) {
        print_failure("public.adi_migrations", db, &err);
        return ADMIN_EXIT_FAILED;
    }
    int rc = ADMIN_EXIT_OK;
    size_t done = 0, skipped = 0;
    for (size_t i = 0; i < set->n && rc == ADMIN_EXIT_OK; i++) {
        const mig_file_t *f = &set->files[i];
        char *sql = read_file(f->path);
        if (sql == NULL) {
            rc = ADMIN_EXIT_FAILED;
            break;
        }
        bool changed = false;
        char when[64] = "";
        int state = applied(db, f, sql, &changed, when);
        if (state < 0) {
            rc = ADMIN_EXIT_FAILED;
        } else if (state == 1) {
            skipped++;
            if (changed)
                fprintf(stderr, "migrate: warning: %s changed after it was applied (%s)\n", f->path,
                        when);
        } else {
            printf("migrate: applying %s %03d_%s\n", f->service, f->version, f->name);
            fflush(stdout);
            rc = apply(db, f, sql);
            if (rc == ADMIN_EXIT_OK)
                done++;
        }
        free(sql);
    }
    (void)adi_db_exec_script(db, "SELECT pg_advisory_unlock_all()", &err);
    if (rc == ADMIN_EXIT_OK)
        printf("migrate: %zu applied, %zu already applied\n", done, skipped);
    return rc;
}

/* Lists every file as applied or pending, then records whose file is gone. */
static int run_status(adi_db_t *db, const mig_set_t *set)
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    adi_db_res_t *res = NULL;
    int rc = ADMIN_EXIT_FAILED;
    if (adi_db_exec(db, &pool, "SELECT to_regclass('public.adi_migrations') IS NOT NULL", 0, NULL,
                    &res, &err) != ADI_OK) {
        print_failure("public.adi_migrations", db, &err);
        goto out;
    }
    bool have_table = adi_str_eq_c(adi_db_get(res, 0, 0), "t");
    printf("%-16s %-8s %-32s %s\n", "service", "version", "name", "state");
    for (size_t i = 0; i < set->n; i++) {
        const mig_file_t *f = &set->files[i];
        char *sql = read_file(f->path);
        bool changed = false;
        char when[64] = "";
        int state = have_table ? applied(db, f, sql, &changed, when) : 0;
        free(sql);
        if (state < 0)
            goto out;
        printf("%-16s %03d      %-32s %s%s%s\n", f->service, f->version, f->name,
               state ? "applied " : "pending", when, changed ? " (file changed since)" : "");
    }
    if (have_table) {
        if (adi_db_exec(db, &pool,
                        "SELECT service, version::text, name FROM public.adi_migrations "
                        "ORDER BY service, version",
                        0, NULL, &res, &err) != ADI_OK) {
            print_failure("public.adi_migrations", db, &err);
            goto out;
        }
        for (int r = 0; r < adi_db_nrows(res); r++) {
            const char *svc = adi_db_get(res, r, 0).ptr;
            int version = atoi(adi_db_get(res, r, 1).ptr);
            bool found = false;
            for (size_t i = 0; i < set->n && !found; i++)
                found = strcmp(set->files[i].service, svc) == 0 && set->files[i].version == version;
            if (!found)
                printf("%-16s %03d      %-32s applied, file missing\n", svc, version,
                       adi_db_get(res, r, 2).ptr);
        }
    }
    rc = ADMIN_EXIT_OK;
out:
    adi_pool_dispose(&pool);
    return rc;
}

int admin_migrate(const admin_cfg_t *cfg, int argc, char **argv)
{
    bool status = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--status") == 0) {
            status = true;
        } else {
            fprintf(stderr, "usage: adi-admin migrate [--status]\n");
            return ADMIN_EXIT_USAGE;
        }
    }
    mig_set_t set = {0};
    if (scan(&set, cfg->migrations_dir) != 0) {
        set_dispose(&set);
        return ADMIN_EXIT_FAILED;
    }
    adi_db_t *db = admin_connect(cfg);
    if (db == NULL) {
        set_dispose(&set);
        return ADMIN_EXIT_FAILED;
    }
    int rc = status ? run_status(db, &set) : run_migrate(db, &set);
    adi_db_free(db);
    set_dispose(&set);
    return rc;
}
