/* SPDX-License-Identifier: MIT */
/*
 * The vault service in-process (adi_vault_core on libs/svc) against the harness Redis and
 * PostgreSQL, on a database of this test's own migrated by adi-admin (services/vault only):
 *
 *   argv[1] adi-admin   applies services/vault/migrations (MIGRATIONS_DIR = a folder linking it)
 *   argv[2] services/   the repository's services folder
 *
 * The service uses Redis database 12 (the aws group 15) so its stream names cannot meet a running
 * suite or the other group.
 *
 * Covered: create/get/list/put/patch/delete round trips, the internal decrypt (service callers
 * only), ciphertexts in the database are not the plaintext and their nonces differ, a sealed box
 * copied into another row (or field) fails to open with a message that quotes nothing, tenant
 * scoping (another tenant sees nothing and gets 404), ADMIN for writes, the duplicate 400, the
 * DEK made once per tenant and stored only wrapped, a wrapped DEK moved to another tenant not
 * opening, and rotation (service callers only): a new DEK version, every box changed, every token
 * still opening, and a tenant whose re-encryption fails left on its old key while others rotate.
 * Key management (issue 5): rotation of one tenant (--tenant), pruning of the old key versions,
 * rotation idempotent by request id, vault.key_tenants, vault.decrypt_provider (newest, 404,
 * 403), rewrap with the local provider after a master-key change (old key moved to
 * KMS_LOCAL_PREVIOUS_KEYS; credentials untouched byte for byte; everything still opening once the
 * previous key is gone), and `adi-admin rotate-keys` / `rewrap-keys` run as processes against
 * this vault, progress lines and exit codes checked.
 *
 * With a third argument "aws" it runs the aws group instead, against the fake AWS server of the
 * `fakeaws` fixture (ADI_FAKE_AWS_*): one tenant's KMS failure during rotation (deny_context)
 * leaves it on its old key while the others rotate, and a rewrap from alias/adi-a to
 * alias/adi-b through ReEncrypt.
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "adi/keys.h"
#include "adi/svc.h"
#include "itest.h"
#include "vault.h"

#define RDB_LOCAL 12
#define RDB_AWS   15
#define REPLIES   "svc:{vault}:itest-client:rep"

static const char *admin_bin, *services_dir;
static const char *const migrated[] = {"vault", NULL}; /* the schemas this test's database has */
static bool aws_mode; /* the aws group: the aws provider against the fake AWS server */
static int rdb;       /* the Redis database of this run */

/* Everything the tests share. */
typedef struct world {
    char dbname[48];            /* this test's database */
    char mig_dir[512];          /* MIGRATIONS_DIR with a link to vault */
    char redis_url[256];        /* REDIS_URL with database RDB */
    char vault_url[256];        /* DATABASE_URL of the service (role adi_vault) */
    char key_b64[64];           /* the local KMS master key */
    char prev_b64[64];          /* KMS_LOCAL_PREVIOUS_KEYS, "" when none */
    char key_id[64];            /* KMS_KEY_ID of the aws group */
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

/* One request to the vault with request id `id`, waiting for its reply (in `pool`). */
static adi_reply *call_id(adi_pool_t *pool, const adi_op_desc_t *op, adi_principal *p,
                          const void *body, const char *path_id, const char *id)
{
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

/* One request to the vault, waiting for its reply (in `pool`). */
static adi_reply *call(adi_pool_t *pool, const adi_op_desc_t *op, adi_principal *p,
                       const void *body, const char *path_id)
{
    char id[37];
    adi_uuid_v4(id);
    return call_id(pool, op, p, body, path_id, id);
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

/* Starts the vault service with W.def / W.cfg / W.vcfg. */
static void vault_start(void)
{
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_svc_new(&W.def, &W.cfg, NULL, &W.svc, &err) != ADI_OK ||
        adi_svc_start(W.svc, &err) != ADI_OK)
        fail_msg("vault service: %s", err.message);
}

/* Stops the vault service (its DEK cache goes with it). */
static void vault_stop(void)
{
    if (W.svc == NULL)
        return;
    adi_svc_stop(W.svc);
    assert_true(adi_svc_wait(W.svc, 60000));
    adi_svc_free(W.svc);
    W.svc = NULL;
}

/* A fresh random 256-bit key as base64 in `out`. */
static void random_key(char out[64])
{
    unsigned char raw[32];
    adi_random(raw, sizeof(raw));
    size_t n = 0;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_b64_encode(raw, sizeof(raw), out, 64, &n, &err), ADI_OK);
}

static int world_setup(void **state)
{
    (void)state;
    memset(&W, 0, sizeof(W));
    snprintf(W.after, sizeof(W.after), "0-0");
    itest_unique(W.dbname, sizeof(W.dbname), "tvault");
    snprintf(W.redis_url, sizeof(W.redis_url), "%s/%d", itest_env("REDIS_URL"), rdb);
    itest_redis_cleanup(rdb, "");

    itest_scratch_db(W.dbname, admin_bin, services_dir, migrated, W.mig_dir, sizeof(W.mig_dir),
                     &W.root, &W.db);
    adi_error_t err;
    adi_error_clear(&err);

    random_key(W.key_b64);
    snprintf(W.vault_url, sizeof(W.vault_url), "postgresql://adi_vault@127.0.0.1:%s/%s",
             itest_env("ADI_PG_PORT"), W.dbname);
    adi_svc_config_defaults(&W.cfg, 0);
    W.cfg.redis_url = W.redis_url;
    W.cfg.database_url = W.vault_url;
    W.cfg.workers = 3;
    W.cfg.consumer_name = "vault-itest";
    vault_cfg_defaults(&W.vcfg);
    W.vcfg.kms_local_key = W.key_b64;
    W.vcfg.kms_local_previous = W.prev_b64;
    W.vcfg.dek_cache_size = 2; /* small: eviction is exercised */
    if (aws_mode) {
        /* Static keys (first in the chain), a short retry budget: injected failures are quick. */
        W.vcfg.kms_provider = "aws";
        snprintf(W.key_id, sizeof(W.key_id), "alias/adi-a");
        W.vcfg.kms_key_id = W.key_id;
        W.vcfg.aws_region = itest_env("ADI_FAKE_AWS_REGION");
        W.vcfg.kms_endpoint = itest_env("ADI_FAKE_AWS_URL");
        W.vcfg.sts_endpoint = itest_env("ADI_FAKE_AWS_URL");
        W.vcfg.imds_disabled = true;
        W.vcfg.aws_access_key_id = itest_env("ADI_FAKE_AWS_ACCESS_KEY");
        W.vcfg.aws_secret_key = itest_env("ADI_FAKE_AWS_SECRET_KEY");
        W.vcfg.kms_max_attempts = 2;
        W.vcfg.kms_retry_base_ms = 1;
        W.vcfg.dek_cache_size = 64;
    }
    W.def = (adi_svc_def_t){.name = "vault",
                            .schema = "vault",
                            .handlers = vault_handlers,
                            .cfg_rows = vault_cfg_rows,
                            .ncfg_rows = vault_ncfg_rows,
                            .cfg = &W.vcfg,
                            .init = vault_init,
                            .fini = vault_fini};
    vault_start();
    adi_bus_opts_t bo = {.url = W.redis_url, .reply_stream = REPLIES};
    assert_int_equal(adi_bus_new(&bo, &W.bus, &err), ADI_OK);
    return 0;
}

static int world_teardown(void **state)
{
    (void)state;
    vault_stop();
    adi_bus_free(W.bus);
    itest_scratch_db_drop(W.dbname, W.mig_dir, migrated, W.root, W.db);
    itest_redis_cleanup(rdb, "");
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

/*
 * The transactional outbox (libs/svc): a credential's audit event is published and its outbox row
 * deleted; a row left behind (a process that died between COMMIT and XADD) is published by the
 * sweep of worker 0 and deleted.
 */
static void test_outbox(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a;
    make_acct(&a);
    (void)create(&pool, &a, "TIKTOK", "act_outbox", "tok-outbox-1", NULL);
    assert_int_equal(itest_sql_int(W.db, "SELECT count(*) FROM vault.adi_outbox", NULL), 0);

    char stream[64];
    itest_unique(stream, sizeof(stream), "itest:outbox");
    char sql[256];
    snprintf(sql, sizeof(sql),
             "INSERT INTO vault.adi_outbox (stream, msg, created_at) "
             "VALUES ('%s', '\\x01', now() - interval '1 minute')",
             stream);
    itest_sql(W.db, sql);
    const char *xlen[2] = {"XLEN", stream};
    long long n = 0, left = 1;
    for (int i = 0; i < 300 && (n != 1 || left != 0); i++) {
        usleep(100 * 1000); /* the sweep runs every 5 s */
        n = itest_redis_int(rdb, 2, xlen);
        left = itest_sql_int(W.db, "SELECT count(*) FROM vault.adi_outbox", NULL);
    }
    assert_int_equal(n, 1);
    assert_int_equal(left, 0);
    const char *del[2] = {"DEL", stream};
    itest_redis_int(rdb, 2, del);
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

/* ---- key management --------------------------------------------------------------------- */

/* The service principal the key operations are called as. */
static adi_principal key_admin = {.service = {"admin", 5}};

/* vault.rotate or vault.rewrap for `tenant` (NULL: every tenant), with request id `id`. */
static adi_reply *keys_call(adi_pool_t *pool, const adi_op_desc_t *op, const char *tenant,
                            const char *id)
{
    vault_keys_req req = {.tenant_id = tenant ? adi_str_c(tenant) : ADI_STR("")};
    char fresh[37];
    if (id == NULL) {
        adi_uuid_v4(fresh);
        id = fresh;
    }
    return call_id(pool, op, &key_admin, &req, NULL, id);
}

/* The id of `c` copied into `out`. */
static void id_of(const vault_credential *c, char out[37])
{
    snprintf(out, 37, "%.*s", (int)c->id.len, c->id.ptr);
}

/* Key versions of `tenant`. */
static long long nkeys(const char *tenant)
{
    return itest_sql_int(W.db, "SELECT count(*) FROM vault.tenant_keys WHERE tenant_id = $1::uuid",
                         tenant);
}

/* Current key version of `tenant`. */
static long long key_version(const char *tenant)
{
    return itest_sql_int(
        W.db, "SELECT max(version) FROM vault.tenant_keys WHERE tenant_id = $1::uuid", tenant);
}

/* Credentials whose key version is gone (the foreign key rules it out; checked anyway). */
static long long orphans(void)
{
    return itest_sql_int(W.db,
                         "SELECT count(*) FROM vault.platform_credentials c WHERE NOT EXISTS "
                         "(SELECT 1 FROM vault.tenant_keys k WHERE k.tenant_id = c.tenant_id "
                         "AND k.version = c.dek_version)",
                         NULL);
}

static void test_rotate_one_tenant_and_prune(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t t, u;
    make_acct(&t);
    make_acct(&u);
    char tc[37], uc[37];
    id_of(create(&pool, &t, "META", "one", "t-access", "t-refresh"), tc);
    id_of(create(&pool, &u, "META", "one", "u-access", NULL), uc);

    /* Bad and unknown tenant ids. */
    adi_reply *r = keys_call(&pool, &adi_op_vault_rotate, "not-a-uuid", NULL);
    expect_field(r, "tenant_id", "Must be a valid UUID.");
    char nobody[37];
    adi_uuid_v4(nobody);
    expect_detail(keys_call(&pool, &adi_op_vault_rotate, nobody, NULL), 404, VAULT_MSG_NOT_FOUND);

    /* Two rotations of T only: U stays on version 1. */
    for (int round = 2; round <= 3; round++) {
        vault_rotate_rep *rep = ok(&pool, &adi_op_vault_rotate,
                                   keys_call(&pool, &adi_op_vault_rotate, t.id, NULL), 200);
        assert_int_equal(rep->tenants, 1);
        assert_int_equal(rep->credentials, 1);
        assert_int_equal(rep->failed.n, 0);
        assert_int_equal(key_version(t.id), round);
        /* Pruned: only the current version is left, and nothing points at a missing one. */
        assert_int_equal(nkeys(t.id), 1);
        assert_int_equal(orphans(), 0);
    }
    assert_int_equal(key_version(u.id), 1);
    assert_int_equal(nkeys(u.id), 1);
    vault_secret *sec = decrypt(&pool, &t, tc);
    assert_true(adi_str_eq_c(sec->access_token, "t-access"));
    assert_true(adi_str_eq_c(sec->refresh_token, "t-refresh"));
    sec = decrypt(&pool, &u, uc);
    assert_true(adi_str_eq_c(sec->access_token, "u-access"));
    /* Crypto-shredding: the old box sealed under a pruned version has no key left. */
    assert_int_equal(itest_sql_int(W.db,
                                   "SELECT count(*) FROM vault.tenant_keys WHERE tenant_id = "
                                   "$1::uuid AND version < 3",
                                   t.id),
                     0);
    adi_pool_dispose(&pool);
}

static void test_rotate_idempotent(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t t;
    make_acct(&t);
    create(&pool, &t, "GOOGLE", "idem", "idem-access", NULL);
    char id[37];
    adi_uuid_v4(id);
    adi_reply *r1 = keys_call(&pool, &adi_op_vault_rotate, t.id, id);
    ok(&pool, &adi_op_vault_rotate, r1, 200);
    assert_int_equal(key_version(t.id), 2);
    /* The same request id again (a redelivery or a retry): the stored reply, no new version. */
    adi_reply *r2 = keys_call(&pool, &adi_op_vault_rotate, t.id, id);
    vault_rotate_rep *rep = ok(&pool, &adi_op_vault_rotate, r2, 200);
    assert_int_equal(rep->tenants, 1);
    assert_int_equal(rep->credentials, 1);
    assert_int_equal(r1->body.len, r2->body.len);
    assert_memory_equal(r1->body.ptr, r2->body.ptr, r1->body.len);
    assert_int_equal(key_version(t.id), 2);
    assert_int_equal(nkeys(t.id), 1);
    /* Another request id rotates again. */
    ok(&pool, &adi_op_vault_rotate, keys_call(&pool, &adi_op_vault_rotate, t.id, NULL), 200);
    assert_int_equal(key_version(t.id), 3);
    /* Two deliveries of one id at once (three workers): one rotation, two equal replies. */
    adi_uuid_v4(id);
    vault_keys_req kreq = {.tenant_id = adi_str_c(t.id)};
    adi_envelope env;
    itest_envelope(&env, id, adi_op_vault_rotate.name, REPLIES, adi_now_ms() + 60000, &key_admin,
                   adi_proto_encode_pool(&vault_keys_req__desc, &kreq, &pool));
    itest_send(W.bus, "svc:{vault}:req", &env);
    itest_send(W.bus, "svc:{vault}:req", &env);
    adi_reply *c1 = itest_wait(W.bus, REPLIES, id, W.after, &pool);
    adi_reply *c2 = itest_wait(W.bus, REPLIES, id, W.after, &pool);
    ok(&pool, &adi_op_vault_rotate, c1, 200);
    ok(&pool, &adi_op_vault_rotate, c2, 200);
    assert_int_equal(c1->body.len, c2->body.len);
    assert_memory_equal(c1->body.ptr, c2->body.ptr, c1->body.len);
    assert_int_equal(key_version(t.id), 4);
    assert_int_equal(nkeys(t.id), 1);
    /* The same id for another operation is refused. */
    assert_int_equal(keys_call(&pool, &adi_op_vault_rewrap, t.id, id)->status, 409);
    adi_pool_dispose(&pool);
}

static void test_key_tenants(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a, b, none;
    make_acct(&a);
    make_acct(&b);
    make_acct(&none);
    create(&pool, &a, "META", "kt", "kt-a", NULL);
    create(&pool, &b, "META", "kt", "kt-b", NULL);
    assert_int_equal(call(&pool, &adi_op_vault_key_tenants, &a.admin, NULL, NULL)->status, 403);
    vault_tenant_list *l = ok(&pool, &adi_op_vault_key_tenants,
                              call(&pool, &adi_op_vault_key_tenants, &key_admin, NULL, NULL), 200);
    assert_true(listed(&l->tenant_ids, a.id));
    assert_true(listed(&l->tenant_ids, b.id));
    assert_false(listed(&l->tenant_ids, none.id));
    for (size_t i = 1; i < l->tenant_ids.n; i++) /* in id order */
        assert_true(strcmp(l->tenant_ids.items[i - 1].ptr, l->tenant_ids.items[i].ptr) < 0);
    assert_int_equal(
        (long long)l->tenant_ids.n,
        itest_sql_int(W.db, "SELECT count(DISTINCT tenant_id) FROM vault.tenant_keys", NULL));
    adi_pool_dispose(&pool);
}

static void test_decrypt_provider(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t a, b;
    make_acct(&a);
    make_acct(&b);
    create(&pool, &a, "META", "older", "meta-old", NULL);
    char newest[37];
    id_of(create(&pool, &a, "META", "newer", "meta-new", "meta-new-refresh"), newest);
    create(&pool, &a, "GOOGLE", "g", "google-token", NULL);
    create(&pool, &b, "META", "b", "meta-of-b", NULL);

    vault_provider_req req = {.provider = ADI_STR("META")};
    vault_secret *s = ok(&pool, &adi_op_vault_decrypt_provider,
                         call(&pool, &adi_op_vault_decrypt_provider, &a.runner, &req, NULL), 200);
    assert_true(adi_str_eq_c(s->id, newest));
    assert_true(adi_str_eq_c(s->account_id, "newer"));
    assert_true(adi_str_eq_c(s->access_token, "meta-new"));
    assert_true(adi_str_eq_c(s->refresh_token, "meta-new-refresh"));
    assert_true(adi_str_eq_c(s->tenant_id, a.id));
    s = ok(&pool, &adi_op_vault_decrypt_provider,
           call(&pool, &adi_op_vault_decrypt_provider, &b.runner, &req, NULL), 200);
    assert_true(adi_str_eq_c(s->access_token, "meta-of-b"));
    /* None of that provider: 404; not a service: 403; not a provider: 400. */
    req.provider = ADI_STR("TIKTOK");
    expect_detail(call(&pool, &adi_op_vault_decrypt_provider, &a.runner, &req, NULL), 404,
                  VAULT_MSG_NOT_FOUND);
    req.provider = ADI_STR("META");
    expect_detail(call(&pool, &adi_op_vault_decrypt_provider, &a.admin, &req, NULL), 403, NULL);
    req.provider = ADI_STR("MYSPACE");
    assert_int_equal(call(&pool, &adi_op_vault_decrypt_provider, &a.runner, &req, NULL)->status,
                     400);
    adi_pool_dispose(&pool);
}

/* The hex of every wrapped DEK of `tenant`, version order, "|"-joined (in `pool`). */
static adi_str_t wrapped_hex(adi_pool_t *pool, const char *tenant)
{
    adi_str_t p = adi_str_c(tenant);
    adi_db_res_t *res = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_exec(W.db, pool,
                                 "SELECT string_agg(encode(wrapped_dek, 'hex'), '|' ORDER BY "
                                 "version) FROM vault.tenant_keys WHERE tenant_id = $1::uuid",
                                 1, &p, &res, &err),
                     ADI_OK);
    return adi_db_get(res, 0, 0);
}

/* Every credential column of `tenant` as text, id order (in `pool`). */
static adi_str_t creds_text(adi_pool_t *pool, const char *tenant)
{
    adi_str_t p = adi_str_c(tenant);
    adi_db_res_t *res = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_exec(W.db, pool,
                                 "SELECT string_agg(c::text, '|' ORDER BY c.id) FROM "
                                 "vault.platform_credentials c WHERE c.tenant_id = $1::uuid",
                                 1, &p, &res, &err),
                     ADI_OK);
    return adi_db_get(res, 0, 0);
}

/* The local provider's key id for the base64 master key `b64`. */
static void local_key_id(const char *b64, char out[64])
{
    adi_kms_config_t kc = {.provider = "local", .local_key = b64};
    adi_kms_t *k = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_kms_new(&kc, &k, &err), ADI_OK);
    snprintf(out, 64, "%s", adi_kms_key_id(k));
    adi_kms_free(k);
}

static void test_rewrap_local(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t t, u;
    make_acct(&t);
    make_acct(&u);
    char tc[2][37], uc[37];
    id_of(create(&pool, &t, "META", "rw1", "rw-access-1", "rw-refresh-1"), tc[0]);
    id_of(create(&pool, &t, "GOOGLE", "rw2", "rw-access-2", NULL), tc[1]);
    ok(&pool, &adi_op_vault_rotate, keys_call(&pool, &adi_op_vault_rotate, t.id, NULL), 200);
    id_of(create(&pool, &u, "TIKTOK", "rw3", "rw-access-3", NULL), uc);
    adi_str_t wt = wrapped_hex(&pool, t.id), wu = wrapped_hex(&pool, u.id);
    adi_str_t ct = creds_text(&pool, t.id), cu = creds_text(&pool, u.id);
    char old_id[64], new_id[64];
    local_key_id(W.key_b64, old_id);

    /* A new master key; the old one only in KMS_LOCAL_PREVIOUS_KEYS. Restarting empties the
       DEK cache, so every decrypt below unwraps. */
    vault_stop();
    memcpy(W.prev_b64, W.key_b64, sizeof(W.prev_b64));
    random_key(W.key_b64);
    local_key_id(W.key_b64, new_id);
    assert_string_not_equal(old_id, new_id);
    vault_start();
    vault_secret *s = decrypt(&pool, &t, tc[0]);
    assert_true(adi_str_eq_c(s->access_token, "rw-access-1"));

    vault_rewrap_rep *rep =
        ok(&pool, &adi_op_vault_rewrap, keys_call(&pool, &adi_op_vault_rewrap, NULL, NULL), 200);
    assert_false(listed(&rep->failed, t.id));
    assert_false(listed(&rep->failed, u.id));
    assert_true(rep->tenants >= 2);
    assert_true(rep->keys >= 2);
    /* Every wrapped DEK of T and U changed, under the new key id; credentials untouched. */
    adi_str_t wt2 = wrapped_hex(&pool, t.id), wu2 = wrapped_hex(&pool, u.id);
    assert_int_equal(wt2.len, wt.len);
    assert_false(adi_str_eq(wt, wt2));
    assert_false(adi_str_eq(wu, wu2));
    adi_str_t kp[3] = {adi_str_c(t.id), adi_str_c(u.id), adi_str_c(new_id)};
    adi_db_res_t *res = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_exec(W.db, &pool,
                                 "SELECT count(*) FILTER (WHERE kms_key_id = $3), count(*) FROM "
                                 "vault.tenant_keys WHERE tenant_id IN ($1::uuid, $2::uuid)",
                                 3, kp, &res, &err),
                     ADI_OK);
    assert_string_equal(adi_db_get(res, 0, 0).ptr, adi_db_get(res, 0, 1).ptr);
    assert_true(adi_str_eq(ct, creds_text(&pool, t.id)));
    assert_true(adi_str_eq(cu, creds_text(&pool, u.id)));

    /* Only the new key from now on: everything still opens. */
    vault_stop();
    W.prev_b64[0] = '\0';
    vault_start();
    s = decrypt(&pool, &t, tc[0]);
    assert_true(adi_str_eq_c(s->access_token, "rw-access-1"));
    assert_true(adi_str_eq_c(s->refresh_token, "rw-refresh-1"));
    s = decrypt(&pool, &t, tc[1]);
    assert_true(adi_str_eq_c(s->access_token, "rw-access-2"));
    s = decrypt(&pool, &u, uc);
    assert_true(adi_str_eq_c(s->access_token, "rw-access-3"));
    /* Rewrap is internal. */
    assert_int_equal(call(&pool, &adi_op_vault_rewrap, &t.admin, NULL, NULL)->status, 403);
    adi_pool_dispose(&pool);
}

/* Runs adi-admin with `args` (NULL-terminated) against this vault; its output in `out`. */
static int admin_run(char *out, size_t cap, const char *const *args)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        setenv("REDIS_URL", W.redis_url, 1);
        const char *argv[8] = {admin_bin};
        for (int i = 0; args[i] != NULL && i < 6; i++)
            argv[i + 1] = args[i];
        execv(admin_bin, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while ((got = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(fds[0]);
    return itest_wait_child(pid);
}

static void test_admin_cli(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    acct_t t, f;
    make_acct(&t);
    make_acct(&f);
    char tc[37];
    id_of(create(&pool, &t, "META", "cli1", "cli-access-1", NULL), tc);
    create(&pool, &t, "GOOGLE", "cli2", "cli-access-2", "cli-refresh-2");
    /* F cannot rotate: a damaged box. */
    adi_str_t fid = create(&pool, &f, "META", "cli", "cli-f", NULL)->id;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_exec(W.db, NULL,
                                 "UPDATE vault.platform_credentials SET access_token = "
                                 "decode(repeat('cd', 40), 'hex') WHERE id = $1::uuid",
                                 1, &fid, NULL, &err),
                     ADI_OK);
    static char out[1 << 16];
    char line[256];
    long long before = key_version(t.id);

    /* One tenant. */
    const char *one[] = {"rotate-keys", "--tenant", t.id, NULL};
    assert_int_equal(admin_run(out, sizeof(out), one), 0);
    snprintf(line, sizeof(line), "[1/1] %s: rotated, 2 credentials\n", t.id);
    if (strstr(out, line) == NULL)
        fail_msg("no \"%s\" in:\n%s", line, out);
    assert_non_null(strstr(out, "rotate-keys: 1 of 1 tenant rotated (2 credentials), 0 failed"));
    assert_int_equal(key_version(t.id), before + 1);

    /* Every tenant: F fails (exit 1), T rotates, a line per tenant and a summary. */
    long long n =
        itest_sql_int(W.db, "SELECT count(DISTINCT tenant_id) FROM vault.tenant_keys", NULL);
    const char *all[] = {"rotate-keys", NULL};
    assert_int_equal(admin_run(out, sizeof(out), all), 1);
    snprintf(line, sizeof(line), "/%lld] %s: FAILED (kept its old key)\n", n, f.id);
    if (strstr(out, line) == NULL)
        fail_msg("no \"%s\" in:\n%s", line, out);
    snprintf(line, sizeof(line), "/%lld] %s: rotated, 2 credentials\n", n, t.id);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "[%lld/%lld] ", n, n);
    assert_non_null(strstr(out, line));
    assert_non_null(strstr(out, "rotate-keys: "));
    assert_int_equal(key_version(t.id), before + 2);
    assert_int_equal(key_version(f.id), 1);
    vault_secret *s = decrypt(&pool, &t, tc);
    assert_true(adi_str_eq_c(s->access_token, "cli-access-1"));

    /* Rewrap of one tenant; bad arguments; a tenant without a key. */
    const char *rw[] = {"rewrap-keys", "--tenant", t.id, NULL};
    assert_int_equal(admin_run(out, sizeof(out), rw), 0);
    snprintf(line, sizeof(line), "[1/1] %s: rewrapped, 1 key\n", t.id);
    if (strstr(out, line) == NULL)
        fail_msg("no \"%s\" in:\n%s", line, out);
    const char *bad[] = {"rewrap-keys", "--tenant", "nope", NULL};
    assert_int_equal(admin_run(out, sizeof(out), bad), 2);
    const char *bad2[] = {"rotate-keys", "--all", NULL};
    assert_int_equal(admin_run(out, sizeof(out), bad2), 2);
    char nobody[37];
    adi_uuid_v4(nobody);
    const char *none[] = {"rotate-keys", "--tenant", nobody, NULL};
    assert_int_equal(admin_run(out, sizeof(out), none), 1);
    assert_non_null(strstr(out, "has no data key"));
    adi_pool_dispose(&pool);
}

/* ---- the aws provider against the fake AWS server (group "aws") --------------------------- */

/* Collects a curl answer. */
static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    adi_buf_t *b = arg;
    adi_buf_append(b, data, size * n);
    return size * n;
}

/* POST (body non-NULL) or GET `path` of the fake AWS server; its answer in `out` (caller's). */
static void fake_http(const char *path, const char *body, adi_buf_t *out)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", itest_env("ADI_FAKE_AWS_URL"), path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    long status = 0;
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

/* POST /_control with the JSON object `body`. */
static void fake_control(const char *body)
{
    adi_buf_t b;
    adi_buf_init(&b);
    fake_http("/_control", body, &b);
    adi_buf_dispose(&b);
}

/* GET /_stats -> kms.<op>: the KMS requests of `op` the fake answered so far. */
static long long fake_kms_count(const char *op)
{
    adi_buf_t b;
    adi_buf_init(&b);
    fake_http("/_stats", NULL, &b);
    json_error_t jerr;
    json_t *doc = json_loadb(b.data, b.len, 0, &jerr);
    assert_non_null(doc);
    json_t *v = json_object_get(json_object_get(doc, "kms"), op);
    long long n = json_is_integer(v) ? (long long)json_integer_value(v) : 0;
    json_decref(doc);
    adi_buf_dispose(&b);
    return n;
}

/* The text in the first column of the first row of `sql` (no parameters), in `pool`. */
static adi_str_t sql_text(adi_pool_t *pool, const char *sql)
{
    adi_db_res_t *res = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_exec(W.db, pool, sql, 0, NULL, &res, &err), ADI_OK);
    return adi_db_get(res, 0, 0);
}

/* The key id the aws provider reports for KMS_KEY_ID `key_id` (no network call). */
static void aws_key_id(const char *key_id, char out[256])
{
    adi_kms_config_t kc = {.provider = "aws",
                           .key_id = key_id,
                           .region = W.vcfg.aws_region,
                           .endpoint = W.vcfg.kms_endpoint,
                           .imds_disabled = true,
                           .access_key_id = W.vcfg.aws_access_key_id,
                           .secret_access_key = W.vcfg.aws_secret_key};
    adi_kms_t *k = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_kms_new(&kc, &k, &err), ADI_OK);
    snprintf(out, 256, "%s", adi_kms_key_id(k));
    adi_kms_free(k);
}

static acct_t aws_a, aws_b, aws_c; /* the aws group's tenants */
static char aws_ids[4][37];        /* their credentials: a, a, b, c */

static void test_aws_rotate_one_failure(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    fake_control("{\"reset\": true}");
    make_acct(&aws_a);
    make_acct(&aws_b);
    make_acct(&aws_c);
    id_of(create(&pool, &aws_a, "META", "a1", "aws-a-1", "aws-a-1-refresh"), aws_ids[0]);
    id_of(create(&pool, &aws_a, "GOOGLE", "a2", "aws-a-2", NULL), aws_ids[1]);
    id_of(create(&pool, &aws_b, "META", "b1", "aws-b-1", NULL), aws_ids[2]);
    id_of(create(&pool, &aws_c, "TIKTOK", "c1", "aws-c-1", NULL), aws_ids[3]);
    assert_int_equal(fake_kms_count("GenerateDataKey"), 3);
    char a_key[256];
    aws_key_id("alias/adi-a", a_key);
    assert_int_equal(itest_sql_int(W.db,
                                   "SELECT count(*) FROM vault.tenant_keys WHERE kms_key_id "
                                   "<> $1",
                                   a_key),
                     0);

    /* B's KMS calls fail (500, retried, then given up): B keeps its key, A and C rotate. */
    char body[128];
    snprintf(body, sizeof(body), "{\"deny_context\": \"%s\"}", aws_b.id);
    fake_control(body);
    vault_rotate_rep *rep =
        ok(&pool, &adi_op_vault_rotate, keys_call(&pool, &adi_op_vault_rotate, NULL, NULL), 200);
    assert_int_equal(rep->tenants, 2);
    assert_int_equal(rep->credentials, 3);
    assert_int_equal(rep->failed.n, 1);
    assert_true(listed(&rep->failed, aws_b.id));
    assert_int_equal(key_version(aws_a.id), 2);
    assert_int_equal(key_version(aws_c.id), 2);
    assert_int_equal(nkeys(aws_a.id), 1);
    assert_int_equal(key_version(aws_b.id), 1);
    assert_int_equal(nkeys(aws_b.id), 1);
    assert_int_equal(itest_sql_int(W.db,
                                   "SELECT count(*) FROM vault.platform_credentials "
                                   "WHERE tenant_id = $1::uuid AND dek_version = 1",
                                   aws_b.id),
                     1);
    vault_secret *s = decrypt(&pool, &aws_a, aws_ids[0]);
    assert_true(adi_str_eq_c(s->access_token, "aws-a-1"));
    assert_true(adi_str_eq_c(s->refresh_token, "aws-a-1-refresh"));
    s = decrypt(&pool, &aws_c, aws_ids[3]);
    assert_true(adi_str_eq_c(s->access_token, "aws-c-1"));

    /* With an empty DEK cache, B's credential needs KMS: 503 without any detail. */
    vault_stop();
    vault_start();
    vault_id_req req = {.id = adi_str_c(aws_ids[2])};
    adi_reply *r = call(&pool, &adi_op_vault_decrypt, &aws_b.runner, &req, NULL);
    expect_detail(r, 503, VAULT_MSG_KMS_DOWN);
    /* KMS is back: B opens, and rotates. */
    fake_control("{\"deny_context\": null}");
    s = decrypt(&pool, &aws_b, aws_ids[2]);
    assert_true(adi_str_eq_c(s->access_token, "aws-b-1"));
    rep = ok(&pool, &adi_op_vault_rotate, keys_call(&pool, &adi_op_vault_rotate, aws_b.id, NULL),
             200);
    assert_int_equal(rep->tenants, 1);
    assert_int_equal(key_version(aws_b.id), 2);
    adi_pool_dispose(&pool);
}

static void test_aws_rewrap(void **state)
{
    (void)state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_str_t wrapped = sql_text(&pool, "SELECT string_agg(encode(wrapped_dek, 'hex'), '|' ORDER "
                                        "BY tenant_id, version) FROM vault.tenant_keys");
    adi_str_t creds = sql_text(&pool, "SELECT string_agg(c::text, '|' ORDER BY c.id) FROM "
                                      "vault.platform_credentials c");
    long long keys = itest_sql_int(W.db, "SELECT count(*) FROM vault.tenant_keys", NULL);
    long long tenants =
        itest_sql_int(W.db, "SELECT count(DISTINCT tenant_id) FROM vault.tenant_keys", NULL);
    assert_int_equal(keys, 3);
    long long reencrypts = fake_kms_count("ReEncrypt");

    /* KMS_KEY_ID changes to alias/adi-b: old DEKs still open (the blob names its key). */
    vault_stop();
    snprintf(W.key_id, sizeof(W.key_id), "alias/adi-b");
    vault_start();
    vault_secret *s = decrypt(&pool, &aws_a, aws_ids[1]);
    assert_true(adi_str_eq_c(s->access_token, "aws-a-2"));

    /* adi-admin rewrap-keys: every tenant, ReEncrypt once per key version. */
    static char out[1 << 14];
    const char *args[] = {"rewrap-keys", NULL};
    int rc = admin_run(out, sizeof(out), args);
    if (rc != 0)
        fail_msg("rewrap-keys exited %d:\n%s", rc, out);
    char line[256];
    snprintf(line, sizeof(line), "[1/%lld] ", tenants);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "[%lld/%lld] ", tenants, tenants);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line), "%s: rewrapped, 1 key\n", aws_c.id);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof(line),
             "rewrap-keys: %lld of %lld tenants rewrapped (%lld keys), 0 failed", tenants, tenants,
             keys);
    if (strstr(out, line) == NULL)
        fail_msg("no \"%s\" in:\n%s", line, out);
    assert_int_equal(fake_kms_count("ReEncrypt"), reencrypts + keys);

    char b_key[256];
    aws_key_id("alias/adi-b", b_key);
    assert_int_equal(itest_sql_int(W.db,
                                   "SELECT count(*) FROM vault.tenant_keys WHERE kms_key_id "
                                   "= $1",
                                   b_key),
                     keys);
    adi_str_t wrapped2 = sql_text(&pool, "SELECT string_agg(encode(wrapped_dek, 'hex'), '|' ORDER "
                                         "BY tenant_id, version) FROM vault.tenant_keys");
    assert_false(adi_str_eq(wrapped, wrapped2));
    assert_int_equal(itest_sql_int(W.db,
                                   "SELECT count(*) FROM vault.tenant_keys k WHERE "
                                   "position(encode(k.wrapped_dek, 'hex') in $1) > 0",
                                   wrapped.ptr),
                     0); /* every single one changed */
    assert_true(adi_str_eq(creds, sql_text(&pool, "SELECT string_agg(c::text, '|' ORDER BY c.id) "
                                                  "FROM vault.platform_credentials c")));

    /* A cold cache: every credential opens through the re-wrapped DEKs. */
    vault_stop();
    vault_start();
    acct_t *owner[4] = {&aws_a, &aws_a, &aws_b, &aws_c};
    const char *want[4] = {"aws-a-1", "aws-a-2", "aws-b-1", "aws-c-1"};
    for (int i = 0; i < 4; i++) {
        s = decrypt(&pool, owner[i], aws_ids[i]);
        assert_true(adi_str_eq_c(s->access_token, want[i]));
    }
    adi_pool_dispose(&pool);
}

int main(int argc, char **argv)
{
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "aws") == 0)) {
        fprintf(stderr, "usage: %s ADI_ADMIN SERVICES_DIR [aws]\n", argv[0]);
        return 2;
    }
    admin_bin = argv[1];
    services_dir = argv[2];
    aws_mode = argc == 4;
    rdb = aws_mode ? RDB_AWS : RDB_LOCAL;
    if (aws_mode) {
        const struct CMUnitTest aws[] = {
            cmocka_unit_test(test_aws_rotate_one_failure),
            cmocka_unit_test(test_aws_rewrap),
        };
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = cmocka_run_group_tests(aws, world_setup, world_teardown);
        curl_global_cleanup();
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_swap_fails),
        cmocka_unit_test(test_outbox),
        cmocka_unit_test(test_tenant_scope),
        cmocka_unit_test(test_kms_local),
        cmocka_unit_test(test_rotate),
        cmocka_unit_test(test_rotate_one_tenant_and_prune),
        cmocka_unit_test(test_rotate_idempotent),
        cmocka_unit_test(test_key_tenants),
        cmocka_unit_test(test_decrypt_provider),
        cmocka_unit_test(test_rewrap_local),
        cmocka_unit_test(test_admin_cli),
    };
    return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
