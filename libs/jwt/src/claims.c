/* SPDX-License-Identifier: MIT */
/*
 * Building the claims of a new token, and the checks on jti and role names that signing and
 * verification share.
 */
#include "jwt_int.h"

bool adi_jwt__jti_valid(const char *s, size_t n)
{
    if (s == NULL || n != ADI_JWT_JTI_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

bool adi_jwt__role_valid(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > ADI_JWT_ROLE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

void adi_jwt_claims_init(adi_jwt_claims_t *c, adi_jwt_type type, int64_t now_s, int64_t lifetime_s)
{
    memset(c, 0, sizeof(*c));
    c->token_type = type;
    c->iat = now_s;
    c->exp = now_s + lifetime_s;
    /* simplejwt's jti is uuid4().hex: the UUID without its dashes. */
    char uuid[37];
    adi_uuid_v4(uuid);
    size_t o = 0;
    for (size_t i = 0; uuid[i] != '\0'; i++) {
        if (uuid[i] != '-')
            c->jti[o++] = uuid[i];
    }
    c->jti[o] = '\0';
}

adi_err adi_jwt_claims_set_ids(adi_jwt_claims_t *c, adi_str_t user_id, adi_str_t tenant_id,
                               adi_error_t *err)
{
    if (!adi_uuid_valid(user_id))
        return adi_error_set(err, ADI_INVALID, "user_id must be a UUID.");
    bool no_tenant = tenant_id.ptr == NULL || tenant_id.len == 0;
    if (!no_tenant && !adi_uuid_valid(tenant_id))
        return adi_error_set(err, ADI_INVALID, "tenant_id must be a UUID.");
    memcpy(c->user_id, user_id.ptr, ADI_JWT_UUID_LEN);
    c->user_id[ADI_JWT_UUID_LEN] = '\0';
    if (no_tenant) {
        c->tenant_id[0] = '\0';
    } else {
        memcpy(c->tenant_id, tenant_id.ptr, ADI_JWT_UUID_LEN);
        c->tenant_id[ADI_JWT_UUID_LEN] = '\0';
    }
    return ADI_OK;
}

adi_err adi_jwt_claims_add_role(adi_jwt_claims_t *c, adi_str_t role, adi_error_t *err)
{
    if (!adi_jwt__role_valid(role.ptr, role.len))
        return adi_error_set(err, ADI_INVALID, "Role names are 1..%d characters of [A-Za-z0-9_].",
                             ADI_JWT_ROLE_MAX);
    if (c->nroles >= ADI_JWT_MAX_ROLES)
        return adi_error_set(err, ADI_INVALID, "A token carries at most %d roles.",
                             ADI_JWT_MAX_ROLES);
    memcpy(c->roles[c->nroles], role.ptr, role.len);
    c->roles[c->nroles][role.len] = '\0';
    c->nroles++;
    return ADI_OK;
}
