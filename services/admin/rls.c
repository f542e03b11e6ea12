/* SPDX-License-Identifier: MIT */
/*
 * `adi-admin enable-rls [--dry-run]`: makes sure row-level security guards every tenant-scoped
 * table of every schema, as the Django command did, printing every statement it applies.
 *
 * A table is tenant-scoped when it has a tenant_id column; a table named `tenants` with an id
 * column is the tenant record itself and is keyed by id. For each one it enables and forces
 * row-level security (forced, so the owner is bound too) and adds the tenant policy
 *
 *     CREATE POLICY adi_tenant_isolation ON <table>
 *         USING (<key> = nullif(current_setting('app.tenant_id', true), '')::uuid)
 *         WITH CHECK (<same>)
 *
 * unless the table already has that policy under any name (a permissive policy for all commands
 * and roles whose expressions are exactly that). A policy named adi_tenant_isolation that says
 * anything else (weakened by hand, say) is dropped and made again, printed like the rest. It is
 * idempotent: what is in place already is left alone and not printed, so a second run applies
 * nothing. Everything runs in one transaction under an advisory lock, so it is all or nothing and
 * concurrent runs do not trip over each other. A key column that is not uuid is compared as text.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"

/* The tenant-scoped tables with what is already in place, quoted for SQL by the server. */
static const char discover_sql[] =
    "WITH t AS ("
    " SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qname,"
    "  CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
    "   AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped)"
    "   THEN 'tenant_id' ELSE 'id' END AS key,"
    "  c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p')"
    "  AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    "  AND n.nspname NOT LIKE 'pg\\_%'"
    "  AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
    "        AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped)"
    "       OR (c.relname = 'tenants' AND EXISTS (SELECT 1 FROM pg_attribute a"
    "        WHERE a.attrelid = c.oid AND a.attname = 'id' AND a.attnum > 0"
    "        AND NOT a.attisdropped))))"
    "SELECT t.qname, quote_ident(t.key),"
    " (SELECT format_type(a.atttypid, a.atttypmod) = 'uuid' FROM pg_attribute a"
    "   WHERE a.attrelid = t.oid AND a.attname = t.key),"
    " t.enabled, t.forced,"
    /* the tenant policy, under any name, as the server prints it back (uuid or text key) */
    " EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = t.oid AND p.polpermissive"
    "   AND p.polcmd = '*' AND p.polroles = '{0}'"
    "   AND pg_get_expr(p.polqual, p.polrelid) IN ("
    "    format('(%I = (NULLIF(current_setting(''app.tenant_id''::text, true),"
    " ''''::text))::uuid)', t.key),"
    "    format('(%I = NULLIF(current_setting(''app.tenant_id''::text, true), ''''::text))',"
    "     t.key),"
    "    format('((%I)::text = NULLIF(current_setting(''app.tenant_id''::text, true),"
    " ''''::text))', t.key))"
    "   AND pg_get_expr(p.polwithcheck, p.polrelid) = pg_get_expr(p.polqual, p.polrelid)),"
    " EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = t.oid"
    "   AND p.polname = 'adi_tenant_isolation')"
    " FROM t ORDER BY t.qname";

/* Prints and (unless dry) runs one statement; returns false after printing the failure. */
static bool apply(adi_db_t *db, const char *sql, bool dry, int *applied)
{
    printf("%s;\n", sql);
    fflush(stdout);
    (*applied)++;
    if (dry)
        return true;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_exec_script(db, sql, &err) != ADI_OK) {
        const char *diag = adi_db_diag(db);
        fprintf(stderr, "enable-rls: %s%s%s\n", err.message, diag[0] ? " " : "", diag);
        return false;
    }
    return true;
}

/* Brings one table (row `r` of the discovery) up to the rule; statements are built in `pool`. */
static bool secure_table(adi_db_t *db, adi_pool_t *pool, const adi_db_res_t *res, int r, bool dry,
                         int *applied)
{
    const char *table = adi_db_get(res, r, 0).ptr;
    const char *key = adi_db_get(res, r, 1).ptr;
    bool is_uuid = adi_str_eq_c(adi_db_get(res, r, 2), "t");
    if (!adi_str_eq_c(adi_db_get(res, r, 3), "t") &&
        !apply(db, adi_pool_printf(pool, "ALTER TABLE %s ENABLE ROW LEVEL SECURITY", table).ptr,
               dry, applied))
        return false;
    if (!adi_str_eq_c(adi_db_get(res, r, 4), "t") &&
        !apply(db, adi_pool_printf(pool, "ALTER TABLE %s FORCE ROW LEVEL SECURITY", table).ptr, dry,
               applied))
        return false;
    if (adi_str_eq_c(adi_db_get(res, r, 5), "t"))
        return true;
    /* Our name, other words: not the tenant policy any more. */
    if (adi_str_eq_c(adi_db_get(res, r, 6), "t") &&
        !apply(db, adi_pool_printf(pool, "DROP POLICY adi_tenant_isolation ON %s", table).ptr, dry,
               applied))
        return false;
    const char *expr =
        is_uuid
            ? adi_pool_printf(pool, "%s = nullif(current_setting('app.tenant_id', true), '')::uuid",
                              key)
                  .ptr
            : adi_pool_printf(pool, "%s::text = nullif(current_setting('app.tenant_id', true), '')",
                              key)
                  .ptr;
    return apply(db,
                 adi_pool_printf(pool,
                                 "CREATE POLICY adi_tenant_isolation ON %s USING (%s) "
                                 "WITH CHECK (%s)",
                                 table, expr, expr)
                     .ptr,
                 dry, applied);
}

static int run(adi_db_t *db, bool dry)
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    adi_db_res_t *res = NULL;
    int rc = ADMIN_EXIT_FAILED, applied = 0;
    if (adi_db_begin(db, ADI_STR_NULL, &err) != ADI_OK ||
        adi_db_exec(db, NULL, "SELECT pg_advisory_xact_lock(6873, 2)", 0, NULL, NULL, &err) !=
            ADI_OK ||
        adi_db_exec(db, &pool, discover_sql, 0, NULL, &res, &err) != ADI_OK) {
        fprintf(stderr, "enable-rls: %s %s\n", err.message, adi_db_diag(db));
        goto out;
    }
    int n = adi_db_nrows(res);
    for (int r = 0; r < n; r++)
        if (!secure_table(db, &pool, res, r, dry, &applied))
            goto out;
    if (adi_db_commit(db, &err) != ADI_OK) {
        fprintf(stderr, "enable-rls: %s %s\n", err.message, adi_db_diag(db));
        goto out;
    }
    printf("-- enable-rls: %d tenant-scoped tables, %d statements %s\n", n, applied,
           dry ? "would be applied (dry run)" : "applied");
    rc = ADMIN_EXIT_OK;
out:
    adi_db_rollback(db);
    adi_pool_dispose(&pool);
    return rc;
}

int admin_enable_rls(const admin_cfg_t *cfg, int argc, char **argv)
{
    bool dry = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry = true;
        } else {
            fprintf(stderr, "usage: adi-admin enable-rls [--dry-run]\n");
            return ADMIN_EXIT_USAGE;
        }
    }
    adi_db_t *db = admin_connect(cfg);
    if (db == NULL)
        return ADMIN_EXIT_FAILED;
    int rc = run(db, dry);
    adi_db_free(db);
    return rc;
}
