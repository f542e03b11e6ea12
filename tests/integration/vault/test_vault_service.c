/* SPDX-License-Identifier: MIT */
/*
 * The vault service in-process (adi_vault_core on libs/svc) against the harness Redis and
 * PostgreSQL, on a database of this test's own migrated by adi-admin (services/vault only):
 *
 *   argv[1] adi-admin   applies services/vault/migrations (MIGRATIONS_DIR = a folder linking it)
 *   argv[2] services/   the repository's services folder
 *
 * The service uses Redis database RDB so its stream names cannot meet a running suite.
 *
 * Covered: create/get/list/put/patch/delete round trips, the internal decrypt (service callers
 * only), ciphertexts in the database are not the plaintext and their nonces differ, a sealed box
 * copied into another row (or field) fails to open with a message that quotes nothing, tenant
 * scoping (another tenant sees nothing and gets 404), ADMIN for writes, the duplicate 400, the
 * DEK made once per tenant and stored only wrapped, a wrapped DEK moved to another tenant not
 * opening, and rotation (service callers only): a new DEK version, every box changed, every token
 * still opening, and a tenant whose re-encryption fails left on its old key while others rotate.
 */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adi/keys.h"
#include "adi/svc.h"
#include "itest.h"
#include "vault.h"

#define RDB     12
#define REPLIES "svc:{vault}:itest-client:rep"

static const char *admin_bin, *services_dir;

/* Everything the tests share. */
typedef struct world {
    char dbname[48];            /* this test's database */
    char mig_dir[512];          /* MIGRATIONS_DIR with a link to vault */
    char redis_url[256];        /* REDIS_URL with database RDB */
    char vault_url[256];        /* DATABASE_URL of the service (role adi_vault) */
    char key_b64[64];           /* the local KMS master key */
    adi_db_t *root;             /* admin connection to the harness database */
    adi_db_t *db;               /* admin connection to this test's database */
    adi_svc_t *svc;             /* the vault service */
    adi_svc_config_t cfg;       /* its common configuration */
    vault_cfg_t vcfg;           /* its own configuration */
    adi_svc_def_t def;          /* its declaration */
    adi_bus_t *bus;             /* test client */
    char after[ADI_BUS_ID_MAX]; /* read position on REPLIES */
} world_t;

static world_t W;

static adi_str_t admin_role[] = {{"ADMIN", 5}};
static adi_str_t viewer_role[] = {{"VIEWER", 6}};

/* A tenant with an admin, a viewer and the task runner acting for it. */
typedef struct acct {
    char id[37];          /* tenant id */
    char user[37];        /* admin user id */
    adi_principal admin;  /* ADMIN of the tenant */
    adi_principal viewer; /* VIEWER of the tenant */
    adi_principal runner; /* the task-runner service for the tenant */
} acct_t;

static void make_acct(acct_t *a)
{
    memset(a, 0, sizeof(*a));
    adi_uuid_v4(a->id);
    adi_uuid_v4(a->user);
    a->admin.tenant_id = adi_str_c(a->id);
    a->admin.user_id = adi_str_c(a->user);
    a->admin.email = ADI_STR("admin@example.com");
    a->admin.roles.items = admin_role;
    a->admin.roles.n = 1;
    a->viewer = a->admin;
    a->viewer.roles.items = viewer_role;
    a->runner.tenant_id = adi_str_c(a->id);
    a->runner.service = ADI_STR("task-runner");
}

static int run_wait(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void migrate(const char *admin_url)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("MIGRATIONS_DIR", W.mig_dir, 1);
        setenv("DATABASE_URL", admin_url, 1);
        execl(admin_bin, admin_bin, "migrate", (char *)NULL);
        _exit(127);
    }
    assert_int_equal(run_wait(pid), 0);
}

/* One request to the vault, waiting for its reply (in `pool`). */
static adi_reply *call(adi_pool_t *pool, const adi_op_desc_t *op, adi_principal *p,
                       const void *body, const char *path_id)
{
    char id[37];
    adi_uuid_v4(id);
    adi_str_t b = body ? adi_proto_encode_pool(op->req, body, pool) : ADI_STR_NULL;
    adi_envelope env;
    itest_envelope(&env, id, op->name, REPLIES, adi_now_ms() + 60000, p, b);
    if (path_id != NULL) {
        vault_id_req params = {.id = adi_str_c(path_id)};
        env.params = adi_proto_encode_pool(&vault_id_req__desc, &params, pool);
    }
    itest_send(W.bus, "svc:{vault}:req", &env);
    return itest_wait(W.bus, REPLIES, id, W.after, pool);
}

/* The reply body decoded as `op`'s reply; fails unless the status is `status`. */
static void *ok(adi_pool_t *pool, const adi_op_desc_t *op, const adi_reply *r, int status)
{
    if (r->status != status) {
        const adi_reply_error *e = r->error;
        fail_msg("%s: status %d (%.*s), expected %d", op->name, (int)r->status,
                 e ? (int)e->message.len : 0, e ? e->message.ptr : "", status);
    }
    void *out = adi_pool_alloc(pool, op->rep->size);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_proto_decode(op->rep, r->body.ptr, r->body.len, pool, out, &err), ADI_OK);
    return out;
}

/* Fails unless `r` is a 400 with `message` on `field`. */
static void expect_field(const adi_reply *r, const char *field, const char *message)
{
    assert_int_equal(r->status, 400);
    assert_non_null(r->error);
    for (size_t i = 0; i < r->error->fields.n; i++)
        if (adi_str_eq_c(r->error->fields.items[i].field, field) &&
            adi_str_eq_c(r->error->fields.items[i].message, message))
            return;
    fail_msg("no 400 error \"%s\": \"%s\"", field, message);
}

static void expect_detail(const adi_reply *r, int status, const char *message)
{
    assert_int_equal(r->status, status);
    assert_non_null(r->error);
    if (message != NULL && !adi_str_eq_c(r->error->message, message))
        fail_msg("detail \"%.*s\", expected \"%s\"", (int)r->error->message.len,
                 r->error->message.ptr, message);
}

/* Creates a credential for `a` (201 expected) and returns it. */
static vault_credential *create(adi_pool_t *pool, acct_t *a, const char *provider,
                                const char *account, const char *access, const char *refresh)
{
    vault_create_req req;
    memset(&req, 0, sizeof(req));
    req.provider = adi_str_c(provider);
    req.account_id = adi_str_c(account);
    req.access_token = adi_str_c(access);
    req.refresh_token = refresh ? adi_str_c(refresh) : ADI_STR_NULL;
    req.expires_at = ADI_STR_NULL;
    adi_reply *r = call(pool, &adi_op_vault_create, &a->admin, &req, NULL);
    return ok(pool, &adi_op_vault_create, r, 201);
}

static vault_secret *decrypt(adi_pool_t *pool, acct_t *a, const char *id)
{
    vault_id_req req = {.id = adi_str_c(id)};
    return ok(pool, &adi_op_vault_decrypt,
              call(pool, &adi_op_vault_decrypt, &a->runner, &req, NULL), 200);
}

/* The stored box of `field` of credential `id` (hex text, in `pool`). */
static adi_str_t box_hex(adi_pool_t *pool, const char *id, const char *field)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT encode(%s, 'hex') FROM vault.platform_credentials "
             "WHERE id = $1::uuid",
             field);
    adi_str_t p = adi_str_c(id);
    adi_db_res_t *res = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_exec(W.db, pool, sql, 1, &p, &res, &err), ADI_OK);
    assert_int_equal(adi_db_nrows(res), 1);
    return adi_db_get(res, 0, 0);
}

/* ---- fixture ---------------------------------------------------------------------------- */

static int world_setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof(W));
    snprintf(W.after, sizeof(W.after), "0-0");
    itest_unique(W.dbname, sizeof(W.dbname), "tvault");
    snprintf(W.redis_url, sizeof(W.redis_url), "%s/%d", itest_env("REDIS_URL"), RDB);
    itest_redis_cleanup(RDB, "");

    snprintf(W.mig_dir, sizeof(W.mig_dir), "%s/%s-migrations", itest_env("ADI_TEST_DIR"), W.dbname);
    assert_int_equal(mkdir(W.mig_dir, 0755), 0);
    char from[1024], to[1024];
    snprintf(from, sizeof(from), "%s/vault", services_dir);
    snprintf(to, sizeof(to), "%s/vault", W.mig_dir);
    assert_int_equal(symlink(from, to), 0);
    W.root = itest_db();
    char sql[256], url[256];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", W.dbname);
    itest_sql(W.root, sql);
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%s/%s", itest_env("ADI_PG_PORT"),
             W.dbname);
    migrate(url);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_connect(url, &W.db, &err), ADI_OK);

    unsigned char raw[32];
    adi_random(raw, sizeof(raw));
    size_t n = 0;
    assert_int_equal(adi_b64_encode(raw, sizeof(raw), W.key_b64, sizeof(W.key_b64), &n, &err),
                     ADI_OK);
    snprintf(W.vault_url, sizeof(W.vault_url), "postgresql://adi_vault@127.0.0.1:%s/%s",
             itest_env("ADI_PG_PORT"), W.dbname);
    adi_svc_config_defaults(&W.cfg, 0);
    W.cfg.redis_url = W.redis_url;
    W.cfg.database_url = W.vault_url;
    W.cfg.workers = 3;
    W.cfg.consumer_name = "vault-itest";
    vault_cfg_defaults(&W.vcfg);
    W.vcfg.kms_local_key = W.key_b64;
    W.vcfg.dek_cache_size = 2; /* small: eviction is exercised */
    W.def = (adi_svc_def_t){.name = "vault",
                            .schema = "vault",
                            .handlers = vault_handlers,
                            .cfg_rows = vault_cfg_rows,
                            .ncfg_rows = vault_ncfg_rows,
                            .cfg = &W.vcfg,
                            .init = vault_init,
                            .fini = vault_fini};
    if (adi_svc_new(&W.def, &W.cfg, NULL, &W.svc, &err) != ADI_OK ||
        adi_svc_start(W.svc, &err) != ADI_OK)
        fail_msg("vault service: %s", err.message);
    adi_bus_opts_t bo = {.url = W.redis_url, .reply_stream = REPLIES};
    assert_int_equal(adi_bus_new(&bo, &W.bus, &err), ADI_OK);
    return 0;
}

static int world_teardown(void **state)
{
    (void)state;
    if (W.svc != NULL) {
        adi_svc_stop(W.svc);
        assert_true(adi_svc_wait(W.svc, 60000));
        adi_svc_free(W.svc);
    }
    adi_bus_free(W.bus);
    adi_db_free(W.db);
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", W.dbname);
    itest_sql(W.root, sql);
    adi_db_free(W.root);
    char path[1024];
    snprintf(path, sizeof(path), "%s/vault", W.mig_dir);
    unlink(path);
    rmdir(W.mig_dir);
    itest_redis_cleanup(RDB, "");
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_round_trip(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    make_acct(&a);
    vault_credential *c =
        create(&pool, &a, "META", "act_1", "EAAB-access-secret-1", "refresh-secret-1");
    assert_true(adi_uuid_valid(c->id));
    assert_true(adi_str_eq_c(c->provider, "META"));
    assert_true(adi_str_eq_c(c->account_id, "act_1"));
    assert_null(c->expires_at.ptr);
    char id[37];
    snprintf(id, sizeof(id), "%.*s", (int)c->id.len, c->id.ptr);

    /* The reply carries no token. */
    adi_reply *r = call(&pool, &adi_op_vault_get, &a.viewer, NULL, id);
    assert_int_equal(r->status, 200);
    assert_null(memmem(r->body.ptr, r->body.len, "secret", 6));
    vault_secret *s = decrypt(&pool, &a, id);
    assert_true(adi_str_eq_c(s->access_token, "EAAB-access-secret-1"));
    assert_true(adi_str_eq_c(s->refresh_token, "refresh-secret-1"));
    assert_true(adi_str_eq_c(s->tenant_id, a.id));

    /* Not the plaintext in the database; nonces differ between fields and rows. */
    vault_credential *c2 = create(&pool, &a, "GOOGLE", "act_2", "EAAB-access-secret-1", NULL);
    char id2[37];
    snprintf(id2, sizeof(id2), "%.*s", (int)c2->id.len, c2->id.ptr);
    adi_str_t h1 = box_hex(&pool, id, "access_token"), h2 = box_hex(&pool, id, "refresh_token");
    adi_str_t h3 = box_hex(&pool, id2, "access_token");
    assert_null(strstr(h1.ptr, "45414142")); /* "EAAB" in hex */
    assert_int_equal(
        itest_sql_int(W.db,
                      "SELECT count(*) FROM vault.platform_credentials "
                      "WHERE position(convert_to('secret', 'UTF8') in access_token) > 0",
                      NULL),
        0);
    assert_int_equal(h1.len, 2 * (20 + ADI_AEAD_OVERHEAD));
    assert_false(strncmp(h1.ptr, h2.ptr, 24) == 0);
    assert_false(strncmp(h1.ptr, h3.ptr, 24) == 0);
    assert_false(strcmp(h1.ptr, h3.ptr) == 0); /* same token, different box */
    /* One DEK for the tenant, stored wrapped (not 32 raw bytes). */
    assert_int_equal(itest_sql_int(W.db,
                                   "SELECT count(*) FROM vault.tenant_keys WHERE tenant_id = "
                                   "$1::uuid AND length(wrapped_dek) = 60",
                                   a.id),
                     1);

    /* List, put, patch, delete. */
    vault_credential_list *l =
        ok(&pool, &adi_op_vault_list, call(&pool, &adi_op_vault_list, &a.viewer, NULL, NULL), 200);
    assert_int_equal(l->items.n, 2);

    vault_put_req put;
    memset(&put, 0, sizeof(put));
    put.provider = ADI_STR("META");
    put.account_id = ADI_STR("act_1b");
    put.access_token = ADI_STR("new-access");
    put.refresh_token = ADI_STR_NULL;
    put.expires_at = ADI_STR("2030-01-02T03:04:05Z");
    c = ok(&pool, &adi_op_vault_put, call(&pool, &adi_op_vault_put, &a.admin, &put, id), 200);
    assert_true(adi_str_eq_c(c->account_id, "act_1b"));
    assert_non_null(c->expires_at.ptr);
    s = decrypt(&pool, &a, id);
    assert_true(adi_str_eq_c(s->access_token, "new-access"));
    assert_null(s->refresh_token.ptr); /* null cleared it */

    vault_patch_req patch;
    memset(&patch, 0, sizeof(patch));
    patch.refresh_token = ADI_STR("patched-refresh");
    patch._has = 1u << vault_patch_req__f_refresh_token;
    c = ok(&pool, &adi_op_vault_patch, call(&pool, &adi_op_vault_patch, &a.admin, &patch, id), 200);
    assert_true(adi_str_eq_c(c->account_id, "act_1b"));
    s = decrypt(&pool, &a, id);
    assert_true(adi_str_eq_c(s->access_token, "new-access"));
    assert_true(adi_str_eq_c(s->refresh_token, "patched-refresh"));

    /* Duplicates: 400 in DRF's words, by create and by update. */
    r = call(&pool, &adi_op_vault_create, &a.admin,
             &(vault_create_req){.provider = ADI_STR("GOOGLE"),
                                 .account_id = ADI_STR("act_2"),
                                 .access_token = ADI_STR("x")},
             NULL);
    expect_field(r, "non_field_errors", VAULT_MSG_UNIQUE);
    patch = (vault_patch_req){.provider = ADI_STR("GOOGLE"), .account_id = ADI_STR("act_2")};
    patch._has = (1u << vault_patch_req__f_provider) | (1u << vault_patch_req__f_account_id);
    expect_field(call(&pool, &adi_op_vault_patch, &a.admin, &patch, id), "non_field_errors",
                 VAULT_MSG_UNIQUE);

    /* Writes need ADMIN; the internal decrypt needs a service. */
    r = call(&pool, &adi_op_vault_delete, &a.viewer, NULL, id);
    expect_detail(r, 403, VAULT_MSG_NOT_ADMIN);
    vault_id_req idreq = {.id = adi_str_c(id)};
    r = call(&pool, &adi_op_vault_decrypt, &a.admin, &idreq, NULL);
    assert_true(r->status == 403 || r->status == 404);

    r = call(&pool, &adi_op_vault_delete, &a.admin, NULL, id);
    assert_int_equal(r->status, 204);
    expect_detail(call(&pool, &adi_op_vault_get, &a.admin, NULL, id), 404, VAULT_MSG_NOT_FOUND);
    expect_detail(call(&pool, &adi_op_vault_delete, &a.admin, NULL, id), 404, VAULT_MSG_NOT_FOUND);
    expect_detail(call(&pool, &adi_op_vault_get, &a.admin, NULL, "nope"), 404, VAULT_MSG_NOT_FOUND);
    adi_pool_dispose(&pool);
}

static void test_swap_fails(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    make_acct(&a);
    vault_credential *c1 = create(&pool, &a, "TIKTOK", "t1", "tiktok-secret-one", "r1-secret");
    vault_credential *c2 = create(&pool, &a, "TIKTOK", "t2", "tiktok-secret-two", NULL);
    char id1[37], id2[37];
    snprintf(id1, sizeof(id1), "%s", c1->id.ptr);
    snprintf(id2, sizeof(id2), "%s", c2->id.ptr);
    /* Copy row 1's box into row 2: same tenant, same key, another credential id. */
    adi_str_t p[2] = {adi_str_c(id1), adi_str_c(id2)};
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_exec(W.db, NULL,
                                 "UPDATE vault.platform_credentials SET access_token = "
                                 "(SELECT access_token FROM vault.platform_credentials "
                                 "WHERE id = $1::uuid) WHERE id = $2::uuid",
                                 2, p, NULL, &err),
                     ADI_OK);
    vault_id_req req = {.id = adi_str_c(id2)};
    adi_reply *r = call(&pool, &adi_op_vault_decrypt, &a.runner, &req, NULL);
    expect_detail(r, 500, NULL);
    assert_null(memmem(r->error->message.ptr, r->error->message.len, "secret", 6));
    /* The refresh box moved into the access field of its own row fails too. */
    assert_int_equal(adi_db_exec(W.db, NULL,
                                 "UPDATE vault.platform_credentials SET access_token = "
                                 "refresh_token WHERE id = $1::uuid",
                                 1, p, NULL, &err),
                     ADI_OK);
    req.id = adi_str_c(id1);
    expect_detail(call(&pool, &adi_op_vault_decrypt, &a.runner, &req, NULL), 500, NULL);
    adi_pool_dispose(&pool);
}

static void test_tenant_scope(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a, b;
    make_acct(&a);
    make_acct(&b);
    vault_credential *c = create(&pool, &a, "LINKEDIN", "shared", "li-secret-a", NULL);
    char id[37];
    snprintf(id, sizeof(id), "%s", c->id.ptr);
    /* B may use the same (provider, account_id): unique per tenant. */
    create(&pool, &b, "LINKEDIN", "shared", "li-secret-b", NULL);
    expect_detail(call(&pool, &adi_op_vault_get, &b.admin, NULL, id), 404, VAULT_MSG_NOT_FOUND);
    expect_detail(call(&pool, &adi_op_vault_delete, &b.admin, NULL, id), 404, VAULT_MSG_NOT_FOUND);
    vault_id_req req = {.id = adi_str_c(id)};
    expect_detail(call(&pool, &adi_op_vault_decrypt, &b.runner, &req, NULL), 404,
                  VAULT_MSG_NOT_FOUND);
    vault_credential_list *l =
        ok(&pool, &adi_op_vault_list, call(&pool, &adi_op_vault_list, &b.viewer, NULL, NULL), 200);
    assert_int_equal(l->items.n, 1);
    assert_false(adi_str_eq_c(l->items.items[0].id, id));
    /* A's wrapped DEK moved to B does not unwrap (the tenant id is the encryption context). */
    adi_str_t p[2] = {adi_str_c(a.id), adi_str_c(b.id)};
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_exec(W.db, NULL,
                                 "UPDATE vault.tenant_keys SET wrapped_dek = (SELECT wrapped_dek "
                                 "FROM vault.tenant_keys WHERE tenant_id = $1::uuid) "
                                 "WHERE tenant_id = $2::uuid",
                                 2, p, NULL, &err),
                     ADI_OK);
    /* Evict B's cached DEK: the cache holds two; touch two other tenants. */
    acct_t x, y;
    make_acct(&x);
    make_acct(&y);
    create(&pool, &x, "META", "x", "x-secret", NULL);
    create(&pool, &y, "META", "y", "y-secret", NULL);
    create(&pool, &x, "META", "x2", "x-secret", NULL);
    create(&pool, &y, "META", "y2", "y-secret", NULL);
    l = ok(&pool, &adi_op_vault_list, call(&pool, &adi_op_vault_list, &b.viewer, NULL, NULL), 200);
    req.id = l->items.items[0].id;
    expect_detail(call(&pool, &adi_op_vault_decrypt, &b.runner, &req, NULL), 500, NULL);
    adi_pool_dispose(&pool);
}

static void test_kms_local(void **state)
{
    (void)state;
    adi_error_t err;
    adi_error_clear(&err);
    adi_kms_t *k = NULL;
    adi_kms_config_t bad = {.provider = "aws", .local_key = W.key_b64}; /* no KMS_KEY_ID */
    assert_int_equal(adi_kms_new(&bad, &k, &err), ADI_INVALID);
    adi_kms_config_t none = {.provider = "local", .local_key = "", .local_key_file = ""};
    assert_int_equal(adi_kms_new(&none, &k, &err), ADI_INVALID);
    adi_kms_config_t shortk = {.provider = "local", .local_key = "AAAA"};
    assert_int_equal(adi_kms_new(&shortk, &k, &err), ADI_INVALID);
    assert_null(strstr(err.message, "AAAA"));
    adi_kms_config_t good = {.provider = "local", .local_key = W.key_b64};
    assert_int_equal(adi_kms_new(&good, &k, &err), ADI_OK);
    adi_secret_t dek, back;
    unsigned char wrapped[ADI_KMS_WRAPPED_MAX];
    size_t wlen = 0;
    assert_int_equal(adi_kms_generate(k, ADI_STR("tenant-1"), &dek, wrapped, &wlen, &err), ADI_OK);
    assert_int_equal(dek.len, 32);
    adi_str_t w = {(const char *)wrapped, wlen};
    assert_int_equal(adi_kms_unwrap(k, ADI_STR("tenant-1"), w, &back, &err), ADI_OK);
    assert_memory_equal(dek.ptr, back.ptr, 32);
    adi_secret_dispose(&back);
    assert_int_equal(adi_kms_unwrap(k, ADI_STR("tenant-2"), w, &back, &err), ADI_INVALID);
    adi_secret_dispose(&dek);
    adi_kms_free(k);
}

/* True when `id` is among `l`. */
static bool listed(const adi_strlist_t *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (adi_str_eq_c(l->items[i], id))
            return true;
    return false;
}

static void test_rotate(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t g, f;
    make_acct(&g);
    make_acct(&f);
    char ids[2][37];
    adi_str_t before[2][2];
    for (int i = 0; i < 2; i++) {
        vault_credential *c = create(&pool, &g, i ? "GOOGLE" : "META", "rot",
                                     i ? "rot-access-1" : "rot-access-0", i ? NULL : "rot-ref-0");
        snprintf(ids[i], sizeof(ids[i]), "%s", c->id.ptr);
        before[i][0] = box_hex(&pool, ids[i], "access_token");
    }
    before[0][1] = box_hex(&pool, ids[0], "refresh_token");
    /* Tenant F's credential is damaged: its rotation fails and is rolled back. */
    vault_credential *fc = create(&pool, &f, "META", "bad", "f-secret", NULL);
    adi_str_t fid = fc->id;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_exec(W.db, NULL,
                                 "UPDATE vault.platform_credentials SET access_token = "
                                 "decode(repeat('ab', 40), 'hex') WHERE id = $1::uuid",
                                 1, &fid, NULL, &err),
                     ADI_OK);

    /* Clients cannot rotate; a service can. */
    assert_int_equal(call(&pool, &adi_op_vault_rotate, &g.admin, NULL, NULL)->status, 403);
    adi_principal svc = {.service = ADI_STR("admin")};
    vault_rotate_rep *rep =
        ok(&pool, &adi_op_vault_rotate, call(&pool, &adi_op_vault_rotate, &svc, NULL, NULL), 200);
    assert_true(rep->tenants >= 1);
    assert_true(rep->credentials >= 2);
    assert_true(listed(&rep->failed, f.id));
    assert_false(listed(&rep->failed, g.id));

    /* G: new key version, every box changed, every token still opens. */
    assert_int_equal(itest_sql_int(W.db,
                                   "SELECT max(version) FROM vault.tenant_keys "
                                   "WHERE tenant_id = $1::uuid",
                                   g.id),
                     2);
    assert_int_equal(itest_sql_int(W.db,
                                   "SELECT count(*) FROM vault.platform_credentials "
                                   "WHERE tenant_id = $1::uuid AND dek_version = 2",
                                   g.id),
                     2);
    for (int i = 0; i < 2; i++)
        assert_false(adi_str_eq(box_hex(&pool, ids[i], "access_token"), before[i][0]));
    assert_false(adi_str_eq(box_hex(&pool, ids[0], "refresh_token"), before[0][1]));
    vault_secret *s = decrypt(&pool, &g, ids[0]);
    assert_true(adi_str_eq_c(s->access_token, "rot-access-0"));
    assert_true(adi_str_eq_c(s->refresh_token, "rot-ref-0"));
    s = decrypt(&pool, &g, ids[1]);
    assert_true(adi_str_eq_c(s->access_token, "rot-access-1"));
    assert_null(s->refresh_token.ptr);
    /* F: still on its old key, nothing half-done. */
    assert_int_equal(itest_sql_int(W.db,
                                   "SELECT count(*) FROM vault.tenant_keys WHERE tenant_id = "
                                   "$1::uuid AND version = 1 AND rotated_at IS NULL",
                                   f.id),
                     1);
    assert_int_equal(itest_sql_int(W.db,
                                   "SELECT count(*) FROM vault.tenant_keys "
                                   "WHERE tenant_id = $1::uuid",
                                   f.id),
                     1);
    adi_pool_dispose(&pool);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s ADI_ADMIN SERVICES_DIR\n", argv[0]);
        return 2;
    }
    admin_bin = argv[1];
    services_dir = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_swap_fails),
        cmocka_unit_test(test_tenant_scope), cmocka_unit_test(test_kms_local),
        cmocka_unit_test(test_rotate),
    };
    return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
