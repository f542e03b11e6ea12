/* SPDX-License-Identifier: MIT */
/*
 * A tiny command-line front end to libs/jwt, used only by the PyJWT interoperability test
 * (pyjwt_interop.py) to sign tokens that PyJWT must accept and to verify tokens PyJWT made:
 *
 *   jwt_cli sign ALG KEYFILE TYPE USER_ID TENANT_ID|- ROLES|- IAT LIFETIME
 *       prints the token; KEYFILE is the HS256 secret or the PEM private key
 *   jwt_cli verify ALG KEYFILE TYPE NOW LEEWAY < token
 *       prints the claims as one JSON line and exits 0, or prints "reject <reason> <claim>"
 *       and exits 1; KEYFILE is the HS256 secret or the PEM public key
 *
 * ROLES is a comma-separated list. Exit status 2 means a usage or configuration error.
 */
#include <stdio.h>
#include <stdlib.h>

#include "adi/jwt.h"

/* Reads a whole file (at most 64 KiB) into a malloc'd buffer; exits 2 on failure. */
static char *slurp(FILE *f, const char *what, size_t *len)
{
    size_t cap = 65536;
    char *buf = adi_xmalloc(cap + 1);
    *len = fread(buf, 1, cap, f);
    if (ferror(f) || *len == cap) {
        fprintf(stderr, "jwt_cli: cannot read %s\n", what);
        exit(2);
    }
    buf[*len] = '\0';
    return buf;
}

/* Builds the key set for ALG from KEYFILE (secret, private or public PEM as the command needs). */
static adi_jwt_t *load(const char *alg_name, const char *path, bool for_signing, int64_t leeway)
{
    adi_jwt_config_t cfg = {.leeway_s = leeway};
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_jwt_alg_parse(adi_str_c(alg_name), &cfg.alg, &err) != ADI_OK) {
        fprintf(stderr, "jwt_cli: %s\n", err.message);
        exit(2);
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "jwt_cli: cannot open %s\n", path);
        exit(2);
    }
    size_t len = 0;
    char *key = slurp(f, path, &len);
    fclose(f);
    adi_str_t k = {key, len};
    if (cfg.alg == ADI_JWT_HS256)
        cfg.secret = k;
    else if (for_signing)
        cfg.private_key_pem = k;
    else
        cfg.public_key_pem = k;
    adi_jwt_t *j = NULL;
    adi_err rc = adi_jwt_new(&j, &cfg, &err);
    free(key);
    if (rc != ADI_OK) {
        fprintf(stderr, "jwt_cli: key set: %s\n", err.message);
        exit(2);
    }
    return j;
}

static adi_jwt_type parse_type(const char *s)
{
    if (strcmp(s, "access") == 0)
        return ADI_JWT_ACCESS;
    if (strcmp(s, "refresh") == 0)
        return ADI_JWT_REFRESH;
    fprintf(stderr, "jwt_cli: type must be access or refresh\n");
    exit(2);
}

static int cmd_sign(char **argv)
{
    adi_jwt_t *j = load(argv[0], argv[1], true, 0);
    adi_jwt_claims_t c;
    adi_jwt_claims_init(&c, parse_type(argv[2]), strtoll(argv[6], NULL, 10),
                        strtoll(argv[7], NULL, 10));
    adi_error_t err;
    adi_error_clear(&err);
    const char *tenant = strcmp(argv[4], "-") == 0 ? "" : argv[4];
    if (adi_jwt_claims_set_ids(&c, adi_str_c(argv[3]), adi_str_c(tenant), &err) != ADI_OK)
        goto fail;
    if (strcmp(argv[5], "-") != 0) {
        const char *p = argv[5];
        while (*p != '\0') {
            const char *comma = strchr(p, ',');
            size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
            if (adi_jwt_claims_add_role(&c, (adi_str_t){p, n}, &err) != ADI_OK)
                goto fail;
            p += n + (comma != NULL ? 1 : 0);
        }
    }
    char tok[ADI_JWT_TOKEN_MAX + 1];
    if (adi_jwt_sign(j, &c, tok, sizeof(tok), NULL, &err) != ADI_OK)
        goto fail;
    printf("%s\n", tok);
    adi_jwt_free(j);
    return 0;
fail:
    fprintf(stderr, "jwt_cli: %s\n", err.message);
    adi_jwt_free(j);
    return 2;
}

static int cmd_verify(char **argv)
{
    adi_jwt_t *j = load(argv[0], argv[1], false, strtoll(argv[4], NULL, 10));
    size_t len = 0;
    char *tok = slurp(stdin, "stdin", &len);
    while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r'))
        len--;
    adi_jwt_claims_t c;
    adi_jwt_verdict_t why;
    adi_err rc = adi_jwt_verify(j, (adi_str_t){tok, len}, parse_type(argv[2]),
                                strtoll(argv[3], NULL, 10), &c, &why, NULL);
    free(tok);
    adi_jwt_free(j);
    if (rc != ADI_OK) {
        printf("reject %s %s\n", adi_jwt_reason_name(why.reason),
               why.claim != NULL ? why.claim : "-");
        return 1;
    }
    /* Every string below was validated to a safe alphabet, so no JSON escaping is needed. */
    printf("{\"token_type\":\"%s\",\"user_id\":\"%s\",\"tenant_id\":",
           adi_jwt_type_name(c.token_type), c.user_id);
    if (c.tenant_id[0] != '\0')
        printf("\"%s\"", c.tenant_id);
    else
        printf("null");
    printf(",\"jti\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"roles\":[", c.jti, (long long)c.iat,
           (long long)c.exp);
    for (size_t i = 0; i < c.nroles; i++)
        printf("%s\"%s\"", i > 0 ? "," : "", c.roles[i]);
    printf("]}\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 10 && strcmp(argv[1], "sign") == 0)
        return cmd_sign(argv + 2);
    if (argc == 7 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argv + 2);
    fprintf(stderr, "usage: jwt_cli sign ALG KEYFILE TYPE USER_ID TENANT_ID|- ROLES|- IAT "
                    "LIFETIME\n       jwt_cli verify ALG KEYFILE TYPE NOW LEEWAY < token\n");
    return 2;
}
