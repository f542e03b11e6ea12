/* SPDX-License-Identifier: MIT */
/*
 * Issuing tokens: the claims are checked with the same rules verification applies, turned into a
 * JSON payload with jansson and signed by libjwt with the configured algorithm and key.
 */
#include <stdlib.h>

#include <jansson.h>

#include "jwt_int.h"

/* Checks `c` as adi_jwt_verify would; returns NULL or a message naming the bad claim. */
static const char *check_claims(const adi_jwt_claims_t *c)
{
    if (c->token_type != ADI_JWT_ACCESS && c->token_type != ADI_JWT_REFRESH)
        return "token_type must be access or refresh.";
    if (!adi_uuid_valid(adi_str_c(c->user_id)))
        return "user_id must be a UUID.";
    if (c->tenant_id[0] != '\0' && !adi_uuid_valid(adi_str_c(c->tenant_id)))
        return "tenant_id must be a UUID.";
    if (!adi_jwt__jti_valid(c->jti, strnlen(c->jti, sizeof(c->jti))))
        return "jti must be 32 lower-case hex digits.";
    if (c->iat < 0 || c->exp <= c->iat)
        return "exp must be after iat.";
    if (c->nroles > ADI_JWT_MAX_ROLES)
        return "Too many roles.";
    for (size_t i = 0; i < c->nroles; i++) {
        if (!adi_jwt__role_valid(c->roles[i], strnlen(c->roles[i], sizeof(c->roles[i]))))
            return "Bad role name.";
    }
    return NULL;
}

/* The payload as compact JSON (malloc'd, caller frees), or NULL when jansson fails. */
static char *payload_json(const adi_jwt_claims_t *c)
{
    json_t *roles = json_array();
    for (size_t i = 0; roles != NULL && i < c->nroles; i++)
        json_array_append_new(roles, json_string(c->roles[i]));
    json_t *tenant = c->tenant_id[0] != '\0' ? json_string(c->tenant_id) : json_null();
    /* "o" steals roles and tenant, also when json_pack fails. */
    json_t *obj = json_pack("{s:s, s:I, s:I, s:s, s:s, s:o, s:o}", "token_type",
                            adi_jwt_type_name(c->token_type), "exp", (json_int_t)c->exp, "iat",
                            (json_int_t)c->iat, "jti", c->jti, "user_id", c->user_id, "tenant_id",
                            tenant, "roles", roles);
    if (obj == NULL)
        return NULL;
    if (c->ver > 0)
        json_object_set_new(obj, "ver", json_integer((json_int_t)c->ver));
    if (c->is_superuser)
        json_object_set_new(obj, "is_superuser", json_true());
    if (c->email[0] != '\0')
        json_object_set_new(obj, "email", json_string(c->email));
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return s;
}

adi_err adi_jwt_sign(const adi_jwt_t *j, const adi_jwt_claims_t *c, char *out, size_t out_cap,
                     size_t *out_len, adi_error_t *err)
{
    if (out != NULL && out_cap > 0)
        out[0] = '\0';
    if (out_len != NULL)
        *out_len = 0;
    if (j == NULL || !j->can_sign)
        return adi_error_set(err, ADI_INVALID, "This key set cannot sign tokens.");
    const char *msg = check_claims(c);
    if (msg != NULL)
        return adi_error_set(err, ADI_INVALID, "%s", msg);

    adi_err rc = ADI_INTERNAL;
    jwt_t *jwt = NULL;
    char *payload = payload_json(c);
    char *token = NULL;
    if (payload == NULL || jwt_new(&jwt) != 0)
        goto out;
    if (jwt_add_grants_json(jwt, payload) != 0 ||
        jwt_set_alg(jwt, adi_jwt__libjwt_alg(j->alg), j->sign_key.ptr, (int)j->sign_key.len) != 0)
        goto out;
    token = jwt_encode_str(jwt);
    if (token == NULL)
        goto out;
    size_t n = strlen(token);
    if (n > ADI_JWT_TOKEN_MAX || out == NULL || out_cap < n + 1) {
        rc = ADI_TOO_LARGE;
        goto out;
    }
    memcpy(out, token, n + 1);
    if (out_len != NULL)
        *out_len = n;
    rc = ADI_OK;
out:
    free(token);
    free(payload);
    /* jwt_free also wipes libjwt's copy of the key (jwt_scrub_key). */
    jwt_free(jwt);
    if (rc == ADI_TOO_LARGE)
        return adi_error_set(err, rc, "Output buffer too small for the token.");
    if (rc != ADI_OK)
        return adi_error_set(err, rc, "Token signing failed.");
    return ADI_OK;
}
