/* SPDX-License-Identifier: MIT */
/*
 * The task "rotate_deks" (scheduled weekly by default): asks the vault to give every tenant that
 * has a data key a new one and to re-encrypt the tenant's credentials under it (vault.rotate, an
 * internal operation, called as the task-runner service). With a tenant (args tenant_id or the
 * task's tenant_id) only that tenant is rotated.
 *
 * The vault rotates tenant by tenant and keeps a tenant whose rotation fails on its old key, so a
 * partial failure is still a finished task: the result says how many tenants rotated, how many
 * credentials were re-encrypted and which tenants failed,
 *     {"rotated": 3, "credentials": 7, "failed": ["<tenant id>", ...]}
 * and a warning names how many failed. A failed call is retried (the vault unreachable, 5xx)
 * unless the vault refused the request itself (4xx: permanent).
 */
#include "tasks_int.h"

static adi_err rotate_deks(tr_task_ctx_t *ctx, const task_tenant_args *args, adi_error_t *err)
{
    adi_str_t tenant;
    adi_err rc = tr_task_tenant(ctx, args->tenant_id, &tenant, err);
    if (rc != ADI_OK)
        return rc;
    vault_keys_req req = {.tenant_id = tenant};
    vault_rotate_rep rep;
    /* The call itself is the service's, not a tenant's: the tenant travels in the request. */
    rc = tr_call(ctx, &adi_op_vault_rotate, ADI_STR_NULL, &req, &rep, NULL, err);
    if (rc != ADI_OK)
        return rc;

    adi_buf_printf(ctx->result, "{\"rotated\":%lld,\"credentials\":%lld,\"failed\":[",
                   (long long)rep.tenants, (long long)rep.credentials);
    for (size_t i = 0; i < rep.failed.n; i++) {
        if (i > 0)
            adi_buf_append(ctx->result, ",", 1);
        tr_json_str(ctx->result, rep.failed.items[i]);
    }
    adi_buf_append_str(ctx->result, "]}");
    if (rep.failed.n > 0)
        ADI_LOG(ctx->log, ADI_LOG_WARN, "task.rotate_partial",
                "%lld tenants rotated, %zu kept their old key (see the task's result)",
                (long long)rep.tenants, rep.failed.n);
    else
        ADI_LOG(ctx->log, ADI_LOG_INFO, "task.rotated",
                "%lld tenants rotated, %lld credentials re-encrypted", (long long)rep.tenants,
                (long long)rep.credentials);
    return ADI_OK;
}

/* Three attempts within ten minutes each: a rotation of every tenant may take a while. */
TR_TASK(tr_task_rotate_deks, "rotate_deks", task_tenant_args, rotate_deks, 3, 600000);
