/* SPDX-License-Identifier: MIT */
/*
 * The audit log (API.md "Audit log"): the writer that consumes ev:audit, and the list.
 *
 * The writer is a libs/svc event consumer (group "tenant-audit"): every service publishes its
 * audit entries on ev:audit, and each entry is inserted in a transaction scoped to the event's
 * tenant, so row-level security checks it like any other write. Delivery is at-least-once; the
 * insert is idempotent on the event id (ON CONFLICT DO NOTHING), so a redelivered event adds
 * nothing. Metadata arrives as a msgpack map and is stored as a JSON object (anything else is
 * wrapped as {"value": ...}; unreadable metadata is stored as {} and logged).
 *
 * The list returns the caller's tenant's entries (row-level security), newest first, filtered by
 * `action` and `resource_type` when given (blank = no filter). A plain JSON array has no pages,
 * so the reply is bounded instead: the newest TENANT_AUDIT_MAX_ROWS entries, fewer if their
 * metadata would push the reply past TENANT_AUDIT_MAX_BYTES (the bus caps a reply at 4 MiB).
 */
#include <stdio.h>
#include <string.h>

#include "tenant.h"

/** Most entries one GET /api/audit-logs/ returns, and the byte budget of their text. */
#define TENANT_AUDIT_MAX_ROWS  5000
#define TENANT_AUDIT_MAX_BYTES (3u * 1024u * 1024u)

/* ---- the writer ------------------------------------------------------------------------- */

/* The event's metadata as JSON text in the pool: "{}" when absent or unreadable. */
static adi_str_t metadata_json(adi_ctx_t *ctx, const audit_event *ev)
{
    if (ev->metadata.ptr == NULL || ADI_IS_NULL(audit_event, ev, metadata))
        return ADI_STR("{}");
    adi_buf_t b;
    adi_buf_init(&b);
    adi_error_t err;
    adi_error_clear(&err);
    adi_str_t out = ADI_STR("{}");
    if (adi_msgpack_to_json(ev->metadata.ptr, ev->metadata.len, &b, &err) == ADI_OK)
        out = adi_pool_strdup(ctx->pool, (adi_str_t){b.data, b.len});
    else
        ADI_LOG(&ctx->log, ADI_LOG_WARN, "tenant.audit_metadata",
                "event %.*s: unreadable metadata stored as {}", (int)ev->id.len, ev->id.ptr);
    adi_buf_dispose(&b);
    return out;
}

static adi_err audit_write(adi_ctx_t *ctx, const audit_event *ev, adi_error_t *err)
{
    char us[24];
    snprintf(us, sizeof(us), "%lld", (long long)ev->created_at_us);
    bool has_user = ev->user_id.len > 0 && !ADI_IS_NULL(audit_event, ev, user_id);
    adi_str_t p[9] = {ev->id,
                      ev->tenant_id,
                      has_user ? ev->user_id : ADI_STR_NULL,
                      ev->user_email.ptr != NULL ? ev->user_email : ADI_STR(""),
                      ev->action,
                      ev->resource_type,
                      ev->resource_id.ptr != NULL ? ev->resource_id : ADI_STR(""),
                      metadata_json(ctx, ev),
                      adi_str_c(us)};
    return adi_db_exec(ctx->db, NULL,
                       "INSERT INTO tenant.audit_log (id, tenant_id, user_id, user_email, action, "
                       "resource_type, resource_id, metadata, created_at) "
                       "VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7, "
                       "CASE jsonb_typeof($8::jsonb) WHEN 'object' THEN $8::jsonb "
                       "ELSE jsonb_build_object('value', $8::jsonb) END, "
                       "timestamptz 'epoch' + $9::bigint * interval '1 microsecond') "
                       "ON CONFLICT (id) DO NOTHING",
                       9, p, NULL, err);
}

ADI_SVC_CONSUMER(tenant_audit_consumer, ADI_KEY_EV_AUDIT, TENANT_AUDIT_GROUP, audit_event,
                 tenant_id, audit_write);

/* ---- the list --------------------------------------------------------------------------- */

/* `s` when it holds something, else SQL NULL (no filter). */
static adi_str_t filter(adi_str_t s)
{
    return s.len > 0 ? s : ADI_STR_NULL;
}

/* Fills `e` from row `i`; returns the bytes it adds to the reply (roughly). */
static size_t entry_from(adi_ctx_t *ctx, const adi_db_res_t *res, int i, adi_buf_t *mp,
                         tenant_audit_entry *e)
{
    e->id = adi_db_get(res, i, 0);
    e->tenant = adi_db_get(res, i, 1);
    adi_str_t user_id = adi_db_get(res, i, 2);
    if (user_id.ptr != NULL) {
        e->user = adi_pool_alloc(ctx->pool, sizeof(*e->user));
        e->user->id = user_id;
        e->user->email = adi_db_get(res, i, 3);
    }
    e->action = adi_db_get(res, i, 4);
    e->resource_type = adi_db_get(res, i, 5);
    e->resource_id = adi_db_get(res, i, 6);
    adi_str_t json = adi_db_get(res, i, 7);
    adi_error_t err;
    adi_error_clear(&err);
    adi_buf_reset(mp);
    if (adi_json_to_msgpack(json.ptr, json.len, mp, &err) == ADI_OK)
        e->metadata = adi_pool_strdup(ctx->pool, (adi_str_t){mp->data, mp->len});
    else /* cannot happen for jsonb output; never fail the whole list for it */
        e->metadata = ADI_STR("\x80"); /* msgpack {} */
    e->created_at = tenant_iso(ctx->pool, adi_db_get(res, i, 8));
    return 200 + e->metadata.len + e->resource_id.len + (e->user ? e->user->email.len : 0);
}

static adi_err op_audit_list(adi_ctx_t *ctx, const tenant_audit_list_req *req,
                             tenant_audit_list *rep, adi_error_t *err)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", TENANT_AUDIT_MAX_ROWS);
    adi_str_t p[3] = {filter(req->action), filter(req->resource_type), adi_str_c(limit)};
    adi_db_res_t *res = NULL;
    adi_err rc = adi_db_exec(
        ctx->db, ctx->pool,
        "SELECT id, tenant_id, user_id, user_email, action, resource_type, resource_id, "
        "metadata::text, " TENANT_US(
            "created_at") " FROM tenant.audit_log "
                          "WHERE ($1::text IS NULL OR action = $1) AND ($2::text IS NULL OR "
                          "resource_type = $2) "
                          "ORDER BY created_at DESC, id DESC LIMIT $3::int",
        3, p, &res, err);
    if (rc != ADI_OK)
        return rc;
    int n = adi_db_nrows(res);
    tenant_audit_entry *items = adi_pool_alloc(ctx->pool, (size_t)n * sizeof(*items) + 1);
    adi_buf_t mp;
    adi_buf_init(&mp);
    size_t bytes = 0, used = 0;
    for (int i = 0; i < n && bytes < TENANT_AUDIT_MAX_BYTES; i++, used++)
        bytes += entry_from(ctx, res, i, &mp, &items[i]);
    adi_buf_dispose(&mp);
    rep->items.n = used;
    rep->items.items = items;
    return ADI_OK;
}

ADI_SVC_HANDLER(tenant_audit_list_row, adi_op_tenant_audit_list, tenant_audit_list_req,
                tenant_audit_list, op_audit_list);
