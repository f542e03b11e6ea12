/* SPDX-License-Identifier: MIT */
/*
 * The tasks "sync_meta_example" and "sync_google_example", as the Django version had them: a sync
 * of one tenant's ad platform that, for now, proves the tenant's credential decrypts and records
 * that a sync was triggered.
 *
 * For one tenant (args tenant_id or the task's tenant_id):
 *   vault.decrypt_provider {provider} as the task runner acting for the tenant -> the newest
 *   credential of the provider, tokens in plaintext (they are wiped from the reply at once and
 *   never logged, stored or returned) -> an audit_event on ev:audit: action "sync_triggered",
 *   resource_type "sync", resource_id the provider, metadata {"provider": "META"}, no user.
 * A tenant without such a credential is a permanent failure ("No META credential."). The event's
 * id derives from the task id, so a task that runs again after a lost acknowledgement writes one
 * audit entry, not two. Result: {"provider": "META", "credential_id": "<id>"}.
 *
 * Without a tenant (the scheduled form, args {}): vault.key_tenants lists the tenants that have a
 * data key, and one tenant-scoped copy of the task is enqueued per tenant (unique per tenant, so
 * a copy still queued or running is not doubled). Result: {"tenants": n, "enqueued": n,
 * "already_queued": n}.
 */
#include <string.h>

#include "adi/keys.h"
#include "adi/tasks.h"
#include "tasks_int.h"

/* Proves the tenant's credential of `provider` decrypts, then records the audit entry. */
static adi_err sync_tenant(tr_task_ctx_t *ctx, const char *provider, adi_str_t tenant,
                           adi_error_t *err)
{
    vault_provider_req req = {.provider = adi_str_c(provider)};
    vault_secret secret;
    adi_str_t raw = ADI_STR_NULL;
    adi_err rc = tr_call(ctx, &adi_op_vault_decrypt_provider, tenant, &req, &secret, &raw, err);
    /* The tokens are in `raw` (the decoded strings point into it): wipe them now. */
    adi_str_t cred_id = rc == ADI_OK ? adi_pool_strdup(ctx->pool, secret.id) : ADI_STR_NULL;
    tr_wipe(raw);
    if (rc == ADI_NOT_FOUND) {
        adi_error_clear(err);
        return adi_error_set(err, ADI_NOT_FOUND, "No %s credential.", provider);
    }
    if (rc != ADI_OK)
        return rc;

    char id[37];
    tr_derived_uuid("sync_triggered", ctx->task->id, id);
    audit_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.id = adi_str_c(id);
    ev.tenant_id = tenant;
    ev.user_id = ADI_STR_NULL; /* encoded as null: no user triggered it */
    ev.user_email = ADI_STR("");
    ev.action = ADI_STR("sync_triggered");
    ev.resource_type = ADI_STR("sync");
    ev.resource_id = adi_str_c(provider);
    vault_provider_req meta = {.provider = adi_str_c(provider)}; /* {"provider": "META"} */
    ev.metadata = adi_proto_encode_pool(&vault_provider_req__desc, &meta, ctx->pool);
    ev.created_at_us = adi_now_us();
    adi_str_t msg = adi_proto_encode_pool(&audit_event__desc, &ev, ctx->pool);
    rc = adi_bus_add(ctx->bus, ADI_KEY_EV_AUDIT, msg, NULL, err);
    if (rc != ADI_OK)
        return rc;

    adi_buf_append_str(ctx->result, "{\"provider\":");
    tr_json_str(ctx->result, adi_str_c(provider));
    adi_buf_append_str(ctx->result, ",\"credential_id\":");
    tr_json_str(ctx->result, cred_id);
    adi_buf_append_str(ctx->result, "}");
    ADI_LOG(ctx->log, ADI_LOG_INFO, "task.sync_triggered", "%s credential %s decrypts", provider,
            cred_id.ptr);
    return ADI_OK;
}

/* The scheduled form: one tenant-scoped copy of this task per tenant with a data key. */
static adi_err sync_fan_out(tr_task_ctx_t *ctx, const tr_task_def_t *row, adi_error_t *err)
{
    vault_tenant_list list;
    adi_err rc = tr_call(ctx, &adi_op_vault_key_tenants, ADI_STR_NULL, NULL, &list, NULL, err);
    if (rc != ADI_OK)
        return rc;
    size_t enqueued = 0, held = 0;
    const char *request_id = ctx->task->request_id.len > 0
                                 ? tr_cstr(ctx->pool, ctx->task->request_id)
                                 : tr_cstr(ctx->pool, ctx->task->id);
    for (size_t i = 0; i < list.tenant_ids.n; i++) {
        adi_str_t tid = list.tenant_ids.items[i];
        task_tenant_args args = {.tenant_id = tid};
        adi_task_spec_t spec = {
            .queue = row->default_queue,
            .name = row->name,
            .args = adi_proto_encode_pool(&task_tenant_args__desc, &args, ctx->pool),
            .tenant_id = tr_cstr(ctx->pool, tid),
            .request_id = request_id,
            .unique = true,
        };
        char id[37];
        adi_error_t e;
        adi_error_clear(&e);
        rc = adi_tasks_enqueue(ctx->bus, &spec, id, &e);
        if (rc == ADI_CONFLICT) {
            held++; /* a copy for this tenant is still queued or running */
            continue;
        }
        if (rc != ADI_OK) {
            /* Retried: the copies already enqueued are unique, so they are not doubled. */
            return adi_error_set(err, rc == ADI_INVALID ? ADI_INTERNAL : rc,
                                 "Enqueuing %s for tenant %.*s failed: %s", row->name, (int)tid.len,
                                 tid.ptr, e.message);
        }
        enqueued++;
    }
    adi_buf_printf(ctx->result, "{\"tenants\":%zu,\"enqueued\":%zu,\"already_queued\":%zu}",
                   list.tenant_ids.n, enqueued, held);
    ADI_LOG(ctx->log, ADI_LOG_INFO, "task.sync_fan_out", "%s: %zu tenants, %zu enqueued", row->name,
            list.tenant_ids.n, enqueued);
    return ADI_OK;
}

static adi_err sync_run(tr_task_ctx_t *ctx, const tr_task_def_t *row, const char *provider,
                        const task_tenant_args *args, adi_error_t *err)
{
    adi_str_t tenant;
    adi_err rc = tr_task_tenant(ctx, args->tenant_id, &tenant, err);
    if (rc != ADI_OK)
        return rc;
    if (tenant.len == 0)
        return sync_fan_out(ctx, row, err);
    return sync_tenant(ctx, provider, tenant, err);
}

static adi_err sync_meta(tr_task_ctx_t *ctx, const task_tenant_args *args, adi_error_t *err)
{
    return sync_run(ctx, &tr_task_sync_meta, "META", args, err);
}

static adi_err sync_google(tr_task_ctx_t *ctx, const task_tenant_args *args, adi_error_t *err)
{
    return sync_run(ctx, &tr_task_sync_google, "GOOGLE", args, err);
}

TR_TASK(tr_task_sync_meta, "sync_meta_example", task_tenant_args, sync_meta, 5, 120000);
TR_TASK(tr_task_sync_google, "sync_google_example", task_tenant_args, sync_google, 5, 120000);
