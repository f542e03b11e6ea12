/* SPDX-License-Identifier: MIT */
/*
 * The auth service's configuration and state: its settings table (JWT algorithm and keys, token
 * lifetimes, the refresh reuse grace, the PBKDF2 cost and the bound on concurrent hashing), the
 * startup checks that turn them into a key set, the hashing gate that keeps a login storm from
 * occupying every worker (bounded slots, bounded waiters, one worker always left free), and the
 * table binding each auth operation to its handler in ops/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth.h"

/* ---- configuration ---------------------------------------------------------------------- */

#define CFG(field, env, type, def, flags, min, max, help)                                          \
    ADI_CFG(auth_cfg_t, field, env, type, def, flags, min, max, help)

const adi_cfg_row_t auth_cfg_rows[] = {
    CFG(jwt_algorithm, "JWT_ALGORITHM", STR, "HS256", 0, 0, 0,
        "token signature algorithm: HS256, RS256 or ES256"),
    CFG(jwt_signing_key, "JWT_SIGNING_KEY", STR, "", ADI_CFG_SECRET, 0, 0,
        "HS256 shared secret (required with HS256; the gateway holds the same)"),
    CFG(jwt_private_key_file, "JWT_PRIVATE_KEY_FILE", STR, "", 0, 0, 0,
        "PEM private key file (RS256/ES256; only the auth service holds it)"),
    CFG(jwt_public_key_file, "JWT_PUBLIC_KEY_FILE", STR, "", 0, 0, 0,
        "PEM public key file (RS256/ES256; optional, must match the private key)"),
    CFG(access_lifetime_s, "ACCESS_TOKEN_LIFETIME_S", INT, "1800", 0, 1, INT64_C(31536000),
        "access token lifetime in seconds"),
    CFG(refresh_lifetime_s, "REFRESH_TOKEN_LIFETIME_S", INT, "86400", 0, 1, INT64_C(31536000),
        "refresh token lifetime in seconds"),
    CFG(refresh_grace_s, "REFRESH_REUSE_GRACE_S", INT, "10", 0, 0, 3600,
        "seconds a just-rotated refresh token may be presented again without revoking its family"),
    CFG(password_iterations, "PASSWORD_ITERATIONS", INT, "720000", 0, 1, 10000000,
        "PBKDF2 iterations of new password hashes (fewer are upgraded at the next login)"),
    CFG(hash_concurrency, "PASSWORD_HASH_CONCURRENCY", INT, "0", 0, 0, 64,
        "password hashes computed at once; 0 means max(1, WORKERS/2)"),
    CFG(settle_after_s, "SETTLE_AFTER_S", INT, "60", 0, 1, 86400,
        "age (s) at which a user made for another service's request (signup, accept-invite) is "
        "kept or removed as that request committed or not"),
};
const size_t auth_ncfg_rows = sizeof(auth_cfg_rows) / sizeof(auth_cfg_rows[0]);

void auth_cfg_defaults(auth_cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->jwt_algorithm = "HS256";
    cfg->jwt_signing_key = "";
    cfg->jwt_private_key_file = "";
    cfg->jwt_public_key_file = "";
    cfg->access_lifetime_s = 1800;
    cfg->refresh_lifetime_s = 86400;
    cfg->refresh_grace_s = 10;
    cfg->password_iterations = ADI_PASSWORD_ITERATIONS;
    cfg->hash_concurrency = 0;
    cfg->settle_after_s = 60;
}

/* ---- startup ---------------------------------------------------------------------------- */

#define PEM_FILE_MAX 16384

/* Reads a PEM file (at most PEM_FILE_MAX bytes) into `buf`; `what` names the setting. */
static adi_err read_pem(const char *path, const char *what, adi_buf_t *buf, adi_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return adi_error_set(err, ADI_INVALID, "%s: cannot open the file (%s)", what,
                             strerror(errno));
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && buf->len <= PEM_FILE_MAX)
        adi_buf_append(buf, chunk, n);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad)
        return adi_error_set(err, ADI_INVALID, "%s: cannot read the file", what);
    if (buf->len > PEM_FILE_MAX)
        return adi_error_set(err, ADI_INVALID, "%s: larger than %d bytes", what, PEM_FILE_MAX);
    return ADI_OK;
}

/* Builds the key set from the JWT_* settings. */
static adi_err make_keys(const auth_cfg_t *c, adi_jwt_t **out, adi_error_t *err)
{
    adi_jwt_config_t jc;
    memset(&jc, 0, sizeof(jc));
    if (adi_jwt_alg_parse(adi_str_c(c->jwt_algorithm), &jc.alg, err) != ADI_OK)
        return adi_error_set(err, ADI_INVALID, "JWT_ALGORITHM: expected HS256, RS256 or ES256");
    adi_buf_t priv, pub;
    adi_buf_init(&priv);
    adi_buf_init(&pub);
    adi_err rc = ADI_OK;
    if (jc.alg == ADI_JWT_HS256) {
        if (c->jwt_signing_key == NULL || c->jwt_signing_key[0] == '\0') {
            rc = adi_error_set(err, ADI_INVALID, "JWT_SIGNING_KEY is required with HS256");
            goto out;
        }
        jc.secret = adi_str_c(c->jwt_signing_key);
    } else {
        if (c->jwt_private_key_file == NULL || c->jwt_private_key_file[0] == '\0') {
            rc = adi_error_set(err, ADI_INVALID, "JWT_PRIVATE_KEY_FILE is required with %s",
                               c->jwt_algorithm);
            goto out;
        }
        rc = read_pem(c->jwt_private_key_file, "JWT_PRIVATE_KEY_FILE", &priv, err);
        if (rc == ADI_OK && c->jwt_public_key_file != NULL && c->jwt_public_key_file[0] != '\0')
            rc = read_pem(c->jwt_public_key_file, "JWT_PUBLIC_KEY_FILE", &pub, err);
        if (rc != ADI_OK)
            goto out;
        jc.private_key_pem = (adi_str_t){priv.data, priv.len};
        if (pub.len > 0)
            jc.public_key_pem = (adi_str_t){pub.data, pub.len};
    }
    rc = adi_jwt_new(out, &jc, err);
    if (rc != ADI_OK) {
        char why[ADI_ERROR_MSG_LEN];
        snprintf(why, sizeof(why), "%s", err != NULL ? err->message : "");
        rc = adi_error_set(err, ADI_INVALID, "JWT keys: %s", why);
    }
out:
    if (priv.data != NULL)
        OPENSSL_cleanse(priv.data, priv.cap);
    adi_buf_dispose(&priv);
    adi_buf_dispose(&pub);
    return rc;
}

adi_err auth_init(const adi_svc_config_t *common, void *cfg, void **app_out, adi_error_t *err)
{
    const auth_cfg_t *c = cfg;
    *app_out = NULL;
    adi_jwt_t *jwt = NULL;
    adi_err rc = make_keys(c, &jwt, err);
    if (rc != ADI_OK)
        return rc;
    auth_app_t *app = adi_xcalloc(1, sizeof(*app));
    app->jwt = jwt;
    app->access_lifetime_s = c->access_lifetime_s;
    app->refresh_lifetime_s = c->refresh_lifetime_s;
    app->refresh_grace_s = c->refresh_grace_s;
    app->iterations = (unsigned)c->password_iterations;
    app->settle_after_s = c->settle_after_s;
    int workers = (int)common->workers;
    int slots = (int)c->hash_concurrency;
    if (slots <= 0)
        slots = workers / 2 > 1 ? workers / 2 : 1;
    /* Hashing never takes every worker: one stays free for the operations that do not hash. */
    if (workers >= 2 && slots > workers - 1) {
        ADI_LOG(NULL, ADI_LOG_WARN, "auth.hash_concurrency",
                "PASSWORD_HASH_CONCURRENCY=%d lowered to %d (WORKERS - 1)", slots, workers - 1);
        slots = workers - 1;
    }
    app->hash_slots = slots;
    app->gate.free_slots = slots;
    app->gate.waiting = 0;
    app->gate.max_waiting = workers - slots - 1 > 0 ? workers - slots - 1 : 0;
    app->gate.wait_ms = AUTH_HASH_WAIT_MS;
    pthread_mutex_init(&app->gate.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&app->gate.cv, &ca);
    pthread_condattr_destroy(&ca);
    *app_out = app;
    return ADI_OK;
}

void auth_fini(void *p)
{
    auth_app_t *app = p;
    if (app == NULL)
        return;
    adi_jwt_free(app->jwt);
    pthread_cond_destroy(&app->gate.cv);
    pthread_mutex_destroy(&app->gate.mu);
    free(app);
}

/* ---- the hashing gate ------------------------------------------------------------------- */

adi_err auth_gate_enter(adi_ctx_t *ctx, adi_error_t *err)
{
    auth_app_t *app = ctx->app;
    int64_t wait_ms = app->gate.wait_ms;
    int64_t left = ctx->deadline_ms - adi_now_ms();
    if (left < wait_ms)
        wait_ms = left > 0 ? left : 0;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(wait_ms / 1000);
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&app->gate.mu);
    /* Slots full: wait only while waiters leave a worker free, else refuse at once. */
    if (app->gate.free_slots == 0 && app->gate.waiting < app->gate.max_waiting && wait_ms > 0) {
        app->gate.waiting++;
        int rc = 0;
        while (app->gate.free_slots == 0 && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&app->gate.cv, &app->gate.mu, &until);
        app->gate.waiting--;
    }
    bool got = app->gate.free_slots > 0;
    if (got)
        app->gate.free_slots--;
    pthread_mutex_unlock(&app->gate.mu);
    if (!got) {
        adi_metrics_count(ctx->metrics, "adi_auth_hash_rejected_total", NULL, 1);
        return adi_error_set(err, ADI_BUSY, AUTH_MSG_BUSY);
    }
    return ADI_OK;
}

void auth_gate_leave(adi_ctx_t *ctx)
{
    auth_app_t *app = ctx->app;
    pthread_mutex_lock(&app->gate.mu);
    app->gate.free_slots++;
    pthread_cond_signal(&app->gate.cv);
    pthread_mutex_unlock(&app->gate.mu);
}

adi_err auth_hash_password(adi_ctx_t *ctx, adi_str_t password, adi_str_t *out, adi_error_t *err)
{
    const auth_app_t *app = ctx->app;
    *out = ADI_STR_NULL;
    adi_err rc = auth_gate_enter(ctx, err);
    if (rc != ADI_OK)
        return rc;
    char *buf = adi_pool_alloc(ctx->pool, ADI_PASSWORD_ENCODED_MAX);
    rc = adi_password_hash(password, app->iterations, buf, ADI_PASSWORD_ENCODED_MAX, err);
    auth_gate_leave(ctx);
    if (rc != ADI_OK)
        return adi_error_field(err, "password", "Ensure this field has no more than %d characters.",
                               ADI_PASSWORD_MAX_LEN);
    *out = adi_str_c(buf);
    return ADI_OK;
}

/* ---- handler table ---------------------------------------------------------------------- */

const adi_svc_handler_t *const auth_handlers[] = {
    &auth_login_row,
    &auth_token_row,
    &auth_refresh_row,
    &auth_me_row,
    &auth_users_list_row,
    &auth_users_get_row,
    &auth_users_create_row,
    &auth_roles_list_row,
    &auth_roles_create_row,
    &auth_roles_assign_row,
    &auth_roles_delete_row,
    &auth_user_provision_row,
    NULL,
};
