/* SPDX-License-Identifier: MIT */
/*
 * The tenant service's declaration and the helpers its handlers share (see tenant.h): the
 * handler table (signup, tenants list/get, invitations, accept-invite, audit-log list, the facts
 * of an invitation mail), the audit consumer of ev:audit, principal checks, the transaction's
 * tenant scope, times in TIME_ZONE, audit events, invitation tokens and the signup's tenant id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "adi/crypto.h"
#include "adi/keys.h"
#include "tenant.h"

/* Operations answered here (sys.health is answered by libs/svc for every service). */
static const adi_svc_handler_t *const handlers[] = {
    &tenant_signup_row,
    &tenant_list_row,
    &tenant_get_row,
    &tenant_invite_row,
    &tenant_accept_invite_row,
    &tenant_audit_list_row,
    &tenant_invitation_mail_row,
    NULL,
};

/* Event streams read here: the audit entries of every service. */
static const adi_svc_consumer_t *const consumers[] = {
    &tenant_audit_consumer,
    NULL,
};

const adi_svc_def_t tenant_def = {
    .name = "tenant",
    .schema = "tenant",
    .ops_port = 9102,
    .handlers = handlers,
    .consumers = consumers,
};

bool tenant_is_superuser(const adi_principal *p)
{
    return p != NULL && p->superuser;
}

bool tenant_is_admin(const adi_principal *p)
{
    if (p == NULL)
        return false;
    if (p->superuser)
        return true;
    for (size_t i = 0; i < p->roles.n; i++)
        if (adi_str_eq_c(p->roles.items[i], "ADMIN"))
            return true;
    return false;
}

adi_err tenant_scope(adi_ctx_t *ctx, adi_str_t tenant_id, adi_error_t *err)
{
    return adi_db_exec(ctx->db, NULL, "SELECT set_config('app.tenant_id', $1, true)", 1, &tenant_id,
                       NULL, err);
}

adi_str_t tenant_iso(adi_pool_t *pool, adi_str_t us)
{
    if (us.ptr == NULL)
        return ADI_STR_NULL;
    char iso[40];
    size_t n = adi_time_iso(strtoll(us.ptr, NULL, 10), iso);
    return adi_pool_strdup(pool, (adi_str_t){iso, n});
}

void tenant_rename_field(adi_error_t *err, const char *from, const char *to)
{
    for (size_t i = 0; i < err->nfields; i++)
        if (strcmp(err->fields[i].field, from) == 0)
            snprintf(err->fields[i].field, sizeof(err->fields[i].field), "%s", to);
}

void tenant_audit(adi_ctx_t *ctx, adi_str_t tenant_id, adi_str_t user_id, adi_str_t user_email,
                  const char *action, const char *resource_type, adi_str_t resource_id,
                  const tenant_audit_meta *meta)
{
    char id[37];
    adi_uuid_v4(id);
    audit_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.id = adi_str_c(id);
    ev.tenant_id = tenant_id;
    ev.user_id = user_id.len > 0 ? user_id : ADI_STR_NULL;
    ev.user_email = user_email.ptr != NULL ? user_email : ADI_STR("");
    ev.action = adi_str_c(action);
    ev.resource_type = adi_str_c(resource_type);
    ev.resource_id = resource_id.ptr != NULL ? resource_id : ADI_STR("");
    if (meta != NULL)
        ev.metadata = adi_proto_encode_pool(&tenant_audit_meta__desc, meta, ctx->pool);
    ev.created_at_us = adi_now_us();
    adi_svc_publish(ctx, ADI_KEY_EV_AUDIT, &audit_event__desc, &ev);
}

void tenant_new_token(char out[TENANT_TOKEN_LEN + 1])
{
    unsigned char raw[32];
    unsigned char b64[48]; /* 4 * ceil(32 / 3) = 44 plus NUL */
    adi_random(raw, sizeof(raw));
    int n = EVP_EncodeBlock(b64, raw, (int)sizeof(raw));
    ADI_ASSERT(n == 44 && b64[43] == '=');
    for (int i = 0; i < 43; i++) {
        char c = (char)b64[i];
        out[i] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    out[43] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(b64, sizeof(b64));
}

void tenant_signup_id(const adi_ctx_t *ctx, char out[37])
{
    char input[512];
    int n =
        snprintf(input, sizeof(input), "tenant.signup\n%s\n%s", ctx->client_ip, ctx->request_id);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(input) ? (size_t)n : sizeof(input) - 1;
    adi_uuid_derive((adi_str_t){input, len}, out);
}
