/* SPDX-License-Identifier: MIT */
/*
 * The settle chore: users that auth.user_provision made for another service's request stay
 * provisional (auth.users.settle_caller/settle_key) until that request is known to have
 * committed. Once such a user is SETTLE_AFTER_S old, well past any request deadline, the chore
 * asks the caller `sys.settled {key}` (libs/svc answers it from its idempotency table, fencing a
 * request that has not committed so that it never will) and then, in one transaction under the
 * user's tenant, either clears the mark (committed) or deletes the user with its roles and
 * refresh tokens and publishes ev:auth "deleted" (not committed: a signup or accept-invite that
 * failed after its user was made). A caller that does not answer is asked again next time.
 */
#include <string.h>

#include "auth.h"

/* Users settled per run at most: the chore runs between requests on worker 0. */
#define SETTLE_BATCH 32

/* Keeps (committed) or removes the provisional user `id` of `tenant_id` marked with `key`. */
static adi_err settle_one(adi_ctx_t *ctx, adi_str_t id, adi_str_t tenant_id, adi_str_t key,
                          bool committed, adi_error_t *err)
{
    adi_err rc = adi_db_begin(ctx->db, tenant_id, err);
    if (rc != ADI_OK)
        return rc;
    adi_str_t p[2] = {id, key};
    adi_db_res_t *res = NULL;
    /* Matched on the key too: only the mark this run read is acted upon. */
    rc = adi_db_exec(ctx->db, ctx->pool,
                     "SELECT 1 FROM auth.users WHERE id = $1::uuid AND settle_key = $2 FOR UPDATE",
                     2, p, &res, err);
    if (rc == ADI_OK && adi_db_nrows(res) == 1) {
        if (committed) {
            rc = adi_db_exec(ctx->db, NULL,
                             "UPDATE auth.users SET settle_caller = NULL, settle_key = NULL "
                             "WHERE id = $1::uuid",
                             1, p, NULL, err);
        } else {
            /* Tokens it may have been issued meanwhile stop at the gateway at once. */
            rc = auth_bump_version(ctx, id, tenant_id, "deleted", err);
            if (rc == ADI_OK)
                rc = adi_db_exec(ctx->db, NULL, "DELETE FROM auth.users WHERE id = $1::uuid", 1, p,
                                 NULL, err);
            if (rc == ADI_OK)
                ADI_LOG(&ctx->log, ADI_LOG_WARN, "auth.user_unsettled",
                        "user %.*s was made for a request that never committed; removed",
                        (int)id.len, id.ptr);
        }
    }
    if (rc != ADI_OK) {
        adi_db_rollback(ctx->db);
        return rc;
    }
    return adi_svc_commit(ctx, err);
}

adi_err auth_settle_chore(adi_ctx_t *ctx, adi_error_t *err)
{
    const auth_app_t *app = ctx->app;
    char age[24], limit[24];
    snprintf(age, sizeof(age), "%lld", (long long)app->settle_after_s);
    snprintf(limit, sizeof(limit), "%d", SETTLE_BATCH);
    adi_str_t q[2] = {adi_str_c(age), adi_str_c(limit)};
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(ctx->db, ctx->pool,
                             "SELECT id, coalesce(tenant_id::text, ''), settle_caller, settle_key "
                             "FROM auth.users_unsettled($1::integer, $2::integer)",
                             2, q, &res, err);
    if (rc != ADI_OK)
        return rc;
    for (int i = 0; i < adi_db_nrows(res); i++) {
        adi_str_t id = adi_db_get(res, i, 0);
        adi_str_t caller = adi_pool_strdup(ctx->pool, adi_db_get(res, i, 2));
        sys_settled_req req = {.key = adi_db_get(res, i, 3)};
        sys_settled_rep rep;
        rc = adi_svc_call(ctx, &adi_op_sys_settled, caller.ptr, &req, &rep, err);
        if (rc == ADI_OK)
            rc = settle_one(ctx, id, adi_db_get(res, i, 1), req.key, rep.committed, err);
        if (rc != ADI_OK)
            return rc; /* the caller or the database is in trouble: next run */
    }
    return ADI_OK;
}
