/* SPDX-License-Identifier: MIT */
/*
 * Audit entries of the auth service (login, role_assigned, role_revoked) on ev:audit, queued with
 * adi_svc_publish so they leave only after the request's transaction committed. The tenant
 * service writes them to its audit log. An entry names the acting user and its e-mail, which
 * access tokens do not carry, so the actor's e-mail is looked up here.
 */
#include <string.h>

#include "auth.h"

/* The metadata of role audit entries, {"role": "<ROLE>"}, encoded by the proto codec. */
typedef struct role_meta {
    ADI_MSG_HEADER_
    adi_str_t role; /* ADMIN, ANALYST or VIEWER */
} role_meta_t;

static const adi_field_desc_t role_meta_fields[] = {
    {"role", ADI_FT_STR, ADI_FMT_NONE, ADI_REQ, 1, 16, 0, offsetof(role_meta_t, role), NULL, NULL},
};

static const adi_msg_desc_t role_meta_desc = {"role_meta", sizeof(role_meta_t), 1,
                                              role_meta_fields};

void auth_audit(adi_ctx_t *ctx, adi_str_t tenant_id, adi_str_t actor_id, adi_str_t actor_email,
                const char *action, const char *resource_type, adi_str_t resource_id,
                adi_str_t role)
{
    if (tenant_id.ptr == NULL || tenant_id.len == 0)
        return;
    char id[37];
    adi_uuid_v4(id);
    audit_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.id = adi_pool_strdup(ctx->pool, adi_str_c(id));
    ev.tenant_id = tenant_id;
    ev.user_id = actor_id.ptr != NULL && actor_id.len > 0 ? actor_id : ADI_STR_NULL;
    ev.user_email = actor_email.ptr != NULL ? actor_email : ADI_STR("");
    ev.action = adi_str_c(action);
    ev.resource_type = adi_str_c(resource_type);
    ev.resource_id = resource_id.ptr != NULL ? resource_id : ADI_STR("");
    if (role.ptr != NULL) {
        role_meta_t meta;
        memset(&meta, 0, sizeof(meta));
        meta.role = role;
        ev.metadata = adi_proto_encode_pool(&role_meta_desc, &meta, ctx->pool);
    }
    ev.created_at_us = adi_now_us();
    adi_svc_publish(ctx, ADI_KEY_EV_AUDIT, &audit_event__desc, &ev);
}

adi_str_t auth_actor_email(adi_ctx_t *ctx)
{
    const adi_principal *p = ctx->principal;
    if (p == NULL || !adi_uuid_valid(p->user_id))
        return ADI_STR("");
    if (p->email.ptr != NULL && p->email.len > 0)
        return p->email;
    adi_db_res_t *res = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_exec(ctx->db, ctx->pool, "SELECT email FROM auth.users WHERE id = $1::uuid", 1,
                    &p->user_id, &res, &err) != ADI_OK ||
        adi_db_nrows(res) == 0)
        return ADI_STR("");
    return adi_db_get(res, 0, 0);
}
