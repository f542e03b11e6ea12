/* SPDX-License-Identifier: MIT */
/*
 * The user subcommands of adi-admin, working on the auth service's tables directly as the admin
 * role (as Django's manage.py did on its own models):
 *
 *   create-user --tenant T --email E --password-env VAR [--role R] [--first-name F]
 *               [--last-name L] [--superuser]                prints the new user's id
 *   createsuperuser --email E --password-env VAR [--tenant T]
 *                                                            Django's createsuperuser
 *   deactivate-user --email E [--tenant T]                   deactivates, bumps the token version,
 *                                                            revokes refresh tokens, ev:auth
 *   delete-user --email E [--tenant T]                       deletes (roles and refresh tokens
 *                                                            cascade), ev:auth "deleted"
 *
 * Passwords come from the environment variable named on the command line (read through
 * libs/config), never from argv, and are hashed in Django's pbkdf2_sha256 format with
 * PASSWORD_ITERATIONS. Input is checked by the same proto validation as the service's user
 * provisioning (e-mail format, UUIDs, password length, role names). Every write runs in one
 * transaction scoped to the user's tenant, so row-level security holds even for an admin role
 * that does not bypass it. A deactivation or deletion is published on ev:auth (REDIS_URL) after the
 * commit, so the gateway refuses the user's access tokens at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "adi/bus.h"
#include "adi/config.h"
#include "adi/crypto.h"
#include "adi/messages.h"

#include "admin.h"

/* The tenant scope that selects tenant-less rows (services/auth/auth.h AUTH_NO_TENANT). */
#define NO_TENANT "00000000-0000-0000-0000-000000000000"

/* What the options of the user subcommands say. */
typedef struct user_opts {
    const char *tenant;       /* --tenant, NULL when absent */
    const char *email;        /* --email */
    const char *password_env; /* --password-env: name of the variable holding the password */
    const char *role;         /* --role, NULL when absent */
    const char *first_name;   /* --first-name */
    const char *last_name;    /* --last-name */
    bool superuser;           /* --superuser (createsuperuser implies it) */
} user_opts_t;

/* True when `opt` is one of the space-separated words of `allowed`. */
static bool allowed_opt(const char *allowed, const char *opt)
{
    size_t n = strlen(opt);
    for (const char *p = allowed; n > 0 && (p = strstr(p, opt)) != NULL; p += n)
        if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* Parses `argv` (argv[0] is the subcommand); `allowed` lists the accepted options. */
static bool parse_opts(int argc, char **argv, const char *allowed, user_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!allowed_opt(allowed, a)) {
            fprintf(stderr, "%s: unknown option %s\n", argv[0], a);
            return false;
        }
        if (strcmp(a, "--superuser") == 0) {
            o->superuser = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", argv[0], a);
            return false;
        }
        const char *v = argv[++i];
        const char **slot = strcmp(a, "--tenant") == 0         ? &o->tenant
                            : strcmp(a, "--email") == 0        ? &o->email
                            : strcmp(a, "--password-env") == 0 ? &o->password_env
                            : strcmp(a, "--role") == 0         ? &o->role
                            : strcmp(a, "--first-name") == 0   ? &o->first_name
                                                               : &o->last_name;
        *slot = v;
    }
    return true;
}

/* The password from the variable named by --password-env (read through libs/config). */
typedef struct pw_env {
    const char *password; /* the value; points into the environment */
} pw_env_t;

static const char *read_password(const char *cmd, const char *var)
{
    if (var == NULL) {
        fprintf(stderr, "%s: --password-env VAR is required (the password is read from $VAR)\n",
                cmd);
        return NULL;
    }
    adi_cfg_row_t row = {var,
                         ADI_CFG_STR,
                         NULL,
                         ADI_CFG_REQUIRED | ADI_CFG_SECRET,
                         0,
                         0,
                         offsetof(pw_env_t, password),
                         "password"};
    pw_env_t out = {NULL};
    if (adi_cfg_load(&row, 1, &out, stderr) != 0)
        return NULL;
    return out.password;
}

/* Validates the user with the proto checks of auth.user_provision; prints every problem. */
static bool validate(const char *cmd, const user_opts_t *o, const char *password)
{
    auth_user_provision_req q;
    memset(&q, 0, sizeof(q));
    q.tenant_id = adi_str_c(o->tenant != NULL ? o->tenant : NO_TENANT);
    q.email = adi_str_c(o->email);
    q.password = adi_str_c(password);
    q.first_name = adi_str_c(o->first_name != NULL ? o->first_name : "");
    q.last_name = adi_str_c(o->last_name != NULL ? o->last_name : "");
    q.role = adi_str_c(o->role);
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_str_t enc = adi_proto_encode_pool(&auth_user_provision_req__desc, &q, &pool);
    auth_user_provision_req back;
    memset(&back, 0, sizeof(back));
    adi_error_t err;
    adi_error_clear(&err);
    adi_err rc =
        adi_proto_decode(&auth_user_provision_req__desc, enc.ptr, enc.len, &pool, &back, &err);
    if (rc == ADI_OK)
        rc = adi_proto_check_required(&auth_user_provision_req__desc, &back, &err);
    for (size_t i = 0; i < err.nfields; i++)
        fprintf(stderr, "%s: %s: %s\n", cmd,
                strcmp(err.fields[i].field, "tenant_id") == 0 ? "--tenant" : err.fields[i].field,
                err.fields[i].message);
    adi_pool_dispose(&pool);
    return rc == ADI_OK;
}

/* Django's normalize_email: the domain part lower-cased. */
static void normalize_email(const char *in, char *out, size_t cap)
{
    snprintf(out, cap, "%s", in);
    char *at = strrchr(out, '@');
    for (char *c = at; c != NULL && *c != '\0'; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
}

/* Inserts the user (and its role) in one transaction; prints the id. */
static int insert_user(const admin_cfg_t *cfg, const char *cmd, const user_opts_t *o,
                       const char *hash)
{
    adi_db_t *db = admin_connect(cfg);
    if (db == NULL)
        return ADMIN_EXIT_FAILED;
    char email[256];
    normalize_email(o->email, email, sizeof(email));
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    adi_db_res_t *res = NULL;
    adi_str_t p[6] = {adi_str_c(o->tenant),
                      adi_str_c(email),
                      adi_str_c(hash),
                      adi_str_c(o->first_name ? o->first_name : ""),
                      adi_str_c(o->last_name ? o->last_name : ""),
                      o->superuser ? ADI_STR("t") : ADI_STR("f")};
    adi_err rc = adi_db_begin(db, adi_str_c(o->tenant ? o->tenant : NO_TENANT), &err);
    if (rc == ADI_OK)
        rc = adi_db_exec(db, &pool,
                         "INSERT INTO auth.users (tenant_id, email, password, first_name, "
                         "last_name, is_superuser) VALUES ($1::uuid, $2, $3, $4, $5, $6::boolean) "
                         "RETURNING id",
                         6, p, &res, &err);
    adi_str_t id = rc == ADI_OK ? adi_db_get(res, 0, 0) : ADI_STR_NULL;
    if (rc == ADI_OK && o->role != NULL) {
        adi_str_t rp[3] = {id, p[0], adi_str_c(o->role)};
        rc = adi_db_exec(db, NULL,
                         "INSERT INTO auth.user_roles (user_id, tenant_id, role) "
                         "VALUES ($1::uuid, $2::uuid, $3)",
                         3, rp, NULL, &err);
    }
    if (rc == ADI_OK)
        rc = adi_db_commit(db, &err);
    if (rc == ADI_CONFLICT)
        fprintf(stderr, "%s: a user with this e-mail already exists in that tenant\n", cmd);
    else if (rc != ADI_OK)
        fprintf(stderr, "%s: %s (%s)\n", cmd, err.message, adi_db_diag(db));
    else
        printf("%s\n", id.ptr);
    adi_db_rollback(db);
    adi_pool_dispose(&pool);
    adi_db_free(db);
    return rc == ADI_OK ? ADMIN_EXIT_OK : ADMIN_EXIT_FAILED;
}

/* The shared path of create-user and createsuperuser once the options are parsed. */
static int create(const admin_cfg_t *cfg, const char *cmd, const user_opts_t *o)
{
    if (o->email == NULL) {
        fprintf(stderr, "%s: --email is required\n", cmd);
        return ADMIN_EXIT_USAGE;
    }
    const char *password = read_password(cmd, o->password_env);
    if (password == NULL || !validate(cmd, o, password))
        return ADMIN_EXIT_USAGE;
    char hash[ADI_PASSWORD_ENCODED_MAX];
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_password_hash(adi_str_c(password), (unsigned)cfg->password_iterations, hash,
                          sizeof(hash), &err) != ADI_OK) {
        fprintf(stderr, "%s: %s\n", cmd, err.message);
        return ADMIN_EXIT_USAGE;
    }
    int rc = insert_user(cfg, cmd, o, hash);
    OPENSSL_cleanse(hash, sizeof(hash));
    return rc;
}

int admin_create_user(const admin_cfg_t *cfg, int argc, char **argv)
{
    user_opts_t o;
    if (!parse_opts(argc, argv,
                    "--tenant --email --password-env --role --first-name --last-name --superuser",
                    &o))
        return ADMIN_EXIT_USAGE;
    if (o.tenant == NULL) {
        fprintf(stderr, "%s: --tenant is required (use createsuperuser for a user without one)\n",
                argv[0]);
        return ADMIN_EXIT_USAGE;
    }
    return create(cfg, argv[0], &o);
}

int admin_createsuperuser(const admin_cfg_t *cfg, int argc, char **argv)
{
    user_opts_t o;
    if (!parse_opts(argc, argv, "--tenant --email --password-env --first-name --last-name", &o))
        return ADMIN_EXIT_USAGE;
    o.superuser = true;
    return create(cfg, argv[0], &o);
}

/* ---- deactivate-user, delete-user ------------------------------------------------------- */

/* The user's tenant: --tenant, or the only account of the e-mail (auth.login_lookup). */
static bool find_tenant(adi_db_t *db, adi_pool_t *pool, const user_opts_t *o, const char *cmd,
                        adi_str_t *tenant_id)
{
    if (o->tenant != NULL) {
        *tenant_id = adi_str_c(o->tenant);
        return true;
    }
    adi_db_res_t *res = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    adi_str_t email = adi_str_c(o->email);
    if (adi_db_exec(db, pool, "SELECT coalesce(tenant_id::text, '') FROM auth.login_lookup($1)", 1,
                    &email, &res, &err) != ADI_OK) {
        fprintf(stderr, "%s: %s (%s)\n", cmd, err.message, adi_db_diag(db));
        return false;
    }
    if (adi_db_nrows(res) != 1) {
        fprintf(stderr, "%s: %s\n", cmd,
                adi_db_nrows(res) == 0 ? "no user has this e-mail"
                                       : "several tenants have this e-mail: pass --tenant");
        return false;
    }
    *tenant_id = adi_db_get(res, 0, 0);
    return true;
}

/* Publishes the deactivation or deletion on ev:auth. */
static bool publish(const admin_cfg_t *cfg, const char *cmd, const auth_event *ev)
{
    adi_bus_t *bus = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    adi_buf_t b;
    adi_buf_init(&b);
    adi_proto_encode(&auth_event__desc, ev, &b);
    adi_bus_opts_t bo = {.url = cfg->redis_url};
    adi_err rc = adi_bus_new(&bo, &bus, &err);
    if (rc == ADI_OK)
        rc = adi_bus_add(bus, ADI_KEY_EV_AUTH, (adi_str_t){b.data, b.len}, NULL, &err);
    if (rc != ADI_OK)
        fprintf(stderr,
                "%s: the user is %s, but publishing on " ADI_KEY_EV_AUTH
                " failed (%s): access tokens stay valid until they expire\n",
                cmd, ev->kind.ptr, err.message);
    adi_bus_free(bus);
    adi_buf_dispose(&b);
    return rc == ADI_OK;
}

/*
 * deactivate-user (`deleting` false) and delete-user (true). Both end the user's access at once:
 * the access tokens are self-contained JWTs that the gateway verifies without asking auth, so
 * whatever ends an account must publish on ev:auth a token version above every version issued.
 * A deleted row keeps no version to bump: the event carries its last version + 1, and the
 * user's roles and refresh tokens go with the row (ON DELETE CASCADE).
 */
static int end_user(const admin_cfg_t *cfg, int argc, char **argv, bool deleting)
{
    const char *cmd = deleting ? "delete-user" : "deactivate-user";
    user_opts_t o;
    if (!parse_opts(argc, argv, "--tenant --email", &o))
        return ADMIN_EXIT_USAGE;
    if (o.email == NULL || (o.tenant != NULL && !adi_uuid_valid(adi_str_c(o.tenant)))) {
        fprintf(stderr, "%s: --email is required, --tenant must be a UUID\n", cmd);
        return ADMIN_EXIT_USAGE;
    }
    adi_db_t *db = admin_connect(cfg);
    if (db == NULL)
        return ADMIN_EXIT_FAILED;
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    adi_str_t tenant_id;
    adi_db_res_t *res = NULL;
    adi_err rc = find_tenant(db, &pool, &o, cmd, &tenant_id) ? ADI_OK : ADI_NOT_FOUND;
    /* The tenant is matched explicitly too: an admin role may bypass row-level security. */
    adi_str_t p[2] = {adi_str_c(o.email), tenant_id};
    if (rc == ADI_OK)
        rc = adi_db_begin(db, tenant_id.len > 0 ? tenant_id : ADI_STR(NO_TENANT), &err);
    if (rc == ADI_OK)
        rc = adi_db_exec(db, &pool,
                         deleting ? "DELETE FROM auth.users WHERE lower(email) = lower($1) "
                                    "AND tenant_id IS NOT DISTINCT FROM nullif($2, '')::uuid "
                                    "RETURNING id, token_version + 1"
                                  : "UPDATE auth.users SET is_active = false, updated_at = now(), "
                                    "token_version = token_version + 1 WHERE lower(email) = "
                                    "lower($1) AND tenant_id IS NOT DISTINCT FROM "
                                    "nullif($2, '')::uuid RETURNING id, token_version",
                         2, p, &res, &err);
    if (rc == ADI_OK && adi_db_nrows(res) != 1) {
        fprintf(stderr, "%s: no user has this e-mail in that tenant\n", cmd);
        rc = ADI_NOT_FOUND;
    }
    adi_str_t id = rc == ADI_OK ? adi_db_get(res, 0, 0) : ADI_STR_NULL;
    if (rc == ADI_OK && !deleting)
        rc = adi_db_exec(db, NULL,
                         "UPDATE auth.refresh_tokens SET revoked_at = now() "
                         "WHERE user_id = $1::uuid AND revoked_at IS NULL",
                         1, &id, NULL, &err);
    if (rc == ADI_OK)
        rc = adi_db_commit(db, &err);
    if (rc != ADI_OK && rc != ADI_NOT_FOUND)
        fprintf(stderr, "%s: %s (%s)\n", cmd, err.message, adi_db_diag(db));
    adi_db_rollback(db);
    if (rc == ADI_OK) {
        auth_event ev = {.user_id = id,
                         .tenant_id = tenant_id,
                         .kind = deleting ? ADI_STR("deleted") : ADI_STR("deactivated"),
                         .version = strtoll(adi_db_get(res, 0, 1).ptr, NULL, 10)};
        printf("%s %s (token version %lld)\n", ev.kind.ptr, id.ptr, (long long)ev.version);
        if (!publish(cfg, cmd, &ev))
            rc = ADI_UNAVAILABLE;
    }
    adi_pool_dispose(&pool);
    adi_db_free(db);
    return rc == ADI_OK ? ADMIN_EXIT_OK : ADMIN_EXIT_FAILED;
}

int admin_deactivate_user(const admin_cfg_t *cfg, int argc, char **argv)
{
    return end_user(cfg, argc, argv, false);
}

int admin_delete_user(const admin_cfg_t *cfg, int argc, char **argv)
{
    return end_user(cfg, argc, argv, true);
}
