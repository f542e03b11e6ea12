/* SPDX-License-Identifier: MIT */
/*
 * The key set: checks a configuration once at startup (secret size, PEM parsing, key type and
 * size against the pinned algorithm, matching private and public keys) so that signing and
 * verification never meet a key they cannot use. Also the small name tables of the library.
 */
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "jwt_int.h"

#define SECRET_MAX 1024
#define PEM_MAX    16384

static const char *const reason_names[] = {
#define XX(name, str) str,
    ADI_JWT_REASON_MAP(XX)
#undef XX
};

jwt_alg_t adi_jwt__libjwt_alg(adi_jwt_alg alg)
{
    switch (alg) {
    case ADI_JWT_HS256:
        return JWT_ALG_HS256;
    case ADI_JWT_RS256:
        return JWT_ALG_RS256;
    case ADI_JWT_ES256:
        return JWT_ALG_ES256;
    }
    return JWT_ALG_TERM;
}

const char *adi_jwt_alg_name(adi_jwt_alg alg)
{
    switch (alg) {
    case ADI_JWT_HS256:
        return "HS256";
    case ADI_JWT_RS256:
        return "RS256";
    case ADI_JWT_ES256:
        return "ES256";
    }
    return "";
}

adi_err adi_jwt_alg_parse(adi_str_t s, adi_jwt_alg *out, adi_error_t *err)
{
    static const adi_jwt_alg all[] = {ADI_JWT_HS256, ADI_JWT_RS256, ADI_JWT_ES256};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (adi_str_eq_c(s, adi_jwt_alg_name(all[i]))) {
            *out = all[i];
            return ADI_OK;
        }
    }
    return adi_error_set(err, ADI_INVALID, "JWT algorithm must be HS256, RS256 or ES256.");
}

const char *adi_jwt_type_name(adi_jwt_type t)
{
    return t == ADI_JWT_REFRESH ? "refresh" : "access";
}

const char *adi_jwt_token_class(adi_jwt_type t)
{
    return t == ADI_JWT_REFRESH ? "RefreshToken" : "AccessToken";
}

const char *adi_jwt_reason_name(adi_jwt_reason r)
{
    if ((unsigned)r >= ADI_JWT_R__COUNT)
        return "unknown";
    return reason_names[r];
}

const char *adi_jwt_reason_message(adi_jwt_reason r)
{
    if (r == ADI_JWT_R_OK)
        return "";
    return r == ADI_JWT_R_WRONG_TYPE ? ADI_JWT_MSG_WRONG_TYPE : ADI_JWT_MSG_INVALID;
}

void adi_jwt_error_body(adi_jwt_type expected, adi_jwt_reason reason, adi_buf_t *out)
{
    const char *msg = adi_jwt_reason_message(reason);
    if (msg[0] == '\0')
        msg = ADI_JWT_MSG_INVALID;
    if (expected == ADI_JWT_REFRESH) {
        adi_buf_printf(out, "{\"detail\":\"%s\",\"code\":\"%s\"}", msg, ADI_JWT_CODE);
        return;
    }
    adi_buf_printf(out,
                   "{\"detail\":\"%s\",\"code\":\"%s\",\"messages\":[{\"token_class\":\"%s\","
                   "\"token_type\":\"%s\",\"message\":\"%s\"}]}",
                   ADI_JWT_DETAIL, ADI_JWT_CODE, adi_jwt_token_class(expected),
                   adi_jwt_type_name(expected), msg);
}

/* Refuses to prompt for a pass phrase: encrypted keys are a configuration error here. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* Parses a PEM private (want_private) or public key; NULL when it does not parse. */
static EVP_PKEY *parse_pem(adi_str_t pem, bool want_private)
{
    BIO *bio = BIO_new_mem_buf(pem.ptr, (int)pem.len);
    if (bio == NULL)
        return NULL;
    EVP_PKEY *pkey = want_private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                                  : PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    /* Leave no parse errors on this thread's queue for libjwt or others to trip over. */
    ERR_clear_error();
    return pkey;
}

/* Checks that `pkey` fits `alg`; returns NULL or a message naming the problem. */
static const char *check_key_type(EVP_PKEY *pkey, adi_jwt_alg alg)
{
    if (alg == ADI_JWT_RS256) {
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
            return "RS256 needs an RSA key.";
        if (EVP_PKEY_get_bits(pkey) < 2048)
            return "RS256 needs an RSA key of at least 2048 bits.";
        return NULL;
    }
    char group[64] = "";
    size_t len = 0;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) != 1 ||
        strcmp(group, "prime256v1") != 0)
        return "ES256 needs an EC key on curve P-256.";
    return NULL;
}

/* Writes the public half of `pkey` as a PEM into `dst`; false on failure. */
static bool public_pem(EVP_PKEY *pkey, adi_secret_t *dst)
{
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem == NULL)
        return false;
    char *data = NULL;
    bool ok = PEM_write_bio_PUBKEY(mem, pkey) == 1;
    long n = ok ? BIO_get_mem_data(mem, &data) : 0;
    ok = ok && n > 0;
    if (ok)
        adi_secret_init(dst, data, (size_t)n);
    BIO_free(mem);
    return ok;
}

/* Fills the asymmetric keys of `j` from `cfg`; returns NULL or the failure message. */
static const char *load_pem_keys(adi_jwt_t *j, const adi_jwt_config_t *cfg)
{
    adi_str_t priv = cfg->private_key_pem, pub = cfg->public_key_pem;
    bool have_priv = priv.ptr != NULL && priv.len > 0;
    bool have_pub = pub.ptr != NULL && pub.len > 0;
    if (!have_priv && !have_pub)
        return "A PEM private or public key is required for this algorithm.";
    if (priv.len > PEM_MAX || pub.len > PEM_MAX)
        return "PEM key too large.";
    EVP_PKEY *sk = NULL, *pk = NULL;
    const char *msg = NULL;
    if (have_priv) {
        sk = parse_pem(priv, true);
        if (sk == NULL) {
            msg = "Private key is not an unencrypted PEM key.";
            goto out;
        }
        msg = check_key_type(sk, cfg->alg);
        if (msg != NULL)
            goto out;
    }
    if (have_pub) {
        pk = parse_pem(pub, false);
        if (pk == NULL) {
            msg = "Public key is not a PEM public key.";
            goto out;
        }
        msg = check_key_type(pk, cfg->alg);
        if (msg != NULL)
            goto out;
        if (sk != NULL && EVP_PKEY_eq(sk, pk) != 1) {
            msg = "Private and public keys do not match.";
            goto out;
        }
    }
    EVP_PKEY *any = pk != NULL ? pk : sk;
    j->sig_len = cfg->alg == ADI_JWT_ES256 ? 64 : (size_t)EVP_PKEY_get_size(any);
    if (have_pub) {
        adi_secret_init(&j->verify_key, pub.ptr, pub.len);
    } else if (!public_pem(sk, &j->verify_key)) {
        msg = "Could not derive the public key.";
        goto out;
    }
    if (have_priv) {
        adi_secret_init(&j->sign_key, priv.ptr, priv.len);
        j->can_sign = true;
    }
out:
    EVP_PKEY_free(sk);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return msg;
}

adi_err adi_jwt_new(adi_jwt_t **out, const adi_jwt_config_t *cfg, adi_error_t *err)
{
    *out = NULL;
    if (cfg == NULL)
        return adi_error_set(err, ADI_INVALID, "JWT configuration missing.");
    if (cfg->alg != ADI_JWT_HS256 && cfg->alg != ADI_JWT_RS256 && cfg->alg != ADI_JWT_ES256)
        return adi_error_set(err, ADI_INVALID, "JWT algorithm must be HS256, RS256 or ES256.");
    if (cfg->leeway_s < 0 || cfg->leeway_s > ADI_JWT_LEEWAY_MAX)
        return adi_error_set(err, ADI_INVALID, "JWT leeway must be 0..%d seconds.",
                             ADI_JWT_LEEWAY_MAX);
    adi_jwt_t *j = adi_xcalloc(1, sizeof(*j));
    j->alg = cfg->alg;
    j->leeway_s = cfg->leeway_s;
    if (cfg->alg == ADI_JWT_HS256) {
        /* An empty key would make libjwt skip the signature check: never allow one. */
        if (cfg->secret.ptr == NULL || cfg->secret.len == 0 || cfg->secret.len > SECRET_MAX) {
            free(j);
            return adi_error_set(err, ADI_INVALID, "JWT secret must be 1..%d bytes.", SECRET_MAX);
        }
        adi_secret_init(&j->sign_key, cfg->secret.ptr, cfg->secret.len);
        adi_secret_init(&j->verify_key, cfg->secret.ptr, cfg->secret.len);
        j->can_sign = true;
        j->sig_len = ADI_SHA256_LEN;
    } else {
        const char *msg = load_pem_keys(j, cfg);
        if (msg != NULL) {
            adi_jwt_free(j);
            return adi_error_set(err, ADI_INVALID, "%s", msg);
        }
    }
    *out = j;
    return ADI_OK;
}

void adi_jwt_free(adi_jwt_t *j)
{
    if (j == NULL)
        return;
    adi_secret_dispose(&j->sign_key);
    adi_secret_dispose(&j->verify_key);
    free(j);
}

adi_jwt_alg adi_jwt_get_alg(const adi_jwt_t *j)
{
    return j->alg;
}

bool adi_jwt_can_sign(const adi_jwt_t *j)
{
    return j->can_sign;
}
