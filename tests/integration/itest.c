/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the bus and svc integration tests (see itest.h). Tests read the harness's
 * environment directly: they are not services, and the harness is their only configuration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "itest.h"

const char *itest_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        fail_msg("%s is not set: run the test through ctest (fixture stack)", name);
    return v;
}

void itest_unique(char *out, size_t n, const char *prefix)
{
    unsigned char r[4];
    adi_random(r, sizeof(r));
    snprintf(out, n, "%s%ldx%02x%02x%02x%02x", prefix, (long)getpid(), r[0], r[1], r[2], r[3]);
}

adi_bus_t *itest_bus(const char *reply_stream)
{
    adi_bus_opts_t o = {.url = itest_env("REDIS_URL"), .reply_stream = reply_stream};
    adi_bus_t *bus = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_new(&o, &bus, &err) != ADI_OK)
        fail_msg("adi_bus_new: %s", err.message);
    return bus;
}

/* A raw hiredis connection to REDIS_URL (host and port only) with database `db` selected. */
static redisContext *raw_redis(int db)
{
    const char *url = itest_env("REDIS_URL");
    char host[128] = "127.0.0.1";
    int port = 6379;
    if (sscanf(url, "redis://%127[^:/]:%d", host, &port) < 1)
        fail_msg("cannot parse REDIS_URL");
    redisContext *c = redisConnect(host, port);
    assert_non_null(c);
    if (c->err)
        fail_msg("redis connect: %s", c->errstr);
    char dbs[16];
    snprintf(dbs, sizeof(dbs), "%d", db);
    const char *argv[2] = {"SELECT", dbs};
    redisReply *r = redisCommandArgv(c, 2, argv, NULL);
    assert_non_null(r);
    freeReplyObject(r);
    return c;
}

long long itest_redis_int(int db, int argc, const char **argv)
{
    redisContext *c = raw_redis(db);
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

long long itest_redis_kill_db(int db)
{
    redisContext *c = raw_redis(0);
    const char *list[2] = {"CLIENT", "LIST"};
    redisReply *r = redisCommandArgv(c, 2, list, NULL);
    assert_non_null(r);
    assert_true(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
    char want[32];
    snprintf(want, sizeof(want), " db=%d ", db);
    long long killed = 0;
    for (char *line = r->str; line != NULL && *line;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        long long id = -1;
        if (strstr(line, want) != NULL && sscanf(line, "id=%lld", &id) == 1) {
            char ids[32];
            snprintf(ids, sizeof(ids), "%lld", id);
            const char *kill[4] = {"CLIENT", "KILL", "ID", ids};
            redisReply *k = redisCommandArgv(c, 4, kill, NULL);
            if (k != NULL && k->type == REDIS_REPLY_INTEGER)
                killed += k->integer;
            freeReplyObject(k);
        }
        line = nl ? nl + 1 : NULL;
    }
    freeReplyObject(r);
    redisFree(c);
    return killed;
}

void itest_redis_cleanup(int db, const char *needle)
{
    redisContext *c = raw_redis(db);
    char pattern[256];
    snprintf(pattern, sizeof(pattern), "*%s*", needle);
    char cursor[32] = "0";
    do {
        const char *argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
        redisReply *r = redisCommandArgv(c, 6, argv, NULL);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *del[2] = {"DEL", keys->element[i]->str};
            redisReply *d = redisCommandArgv(c, 2, del, NULL);
            freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
}

adi_db_t *itest_db(void)
{
    adi_db_t *db = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_connect(itest_env("DATABASE_URL"), &db, &err) != ADI_OK)
        fail_msg("adi_db_connect: %s", err.message);
    return db;
}

void itest_sql(adi_db_t *db, const char *sql)
{
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_exec_script(db, sql, &err) != ADI_OK)
        fail_msg("SQL failed (%s): %s [%s]", err.message, sql, adi_db_diag(db));
}

long long itest_sql_int(adi_db_t *db, const char *sql, const char *param)
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_str_t p = adi_str_c(param);
    adi_db_res_t *res = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_db_exec(db, &pool, sql, param ? 1 : 0, &p, &res, &err) != ADI_OK)
        fail_msg("SQL failed (%s): %s [%s]", err.message, sql, adi_db_diag(db));
    assert_int_equal(adi_db_nrows(res), 1);
    long long v = strtoll(adi_db_get(res, 0, 0).ptr, NULL, 10);
    adi_pool_dispose(&pool);
    return v;
}

void itest_envelope(adi_envelope *env, const char *id, const char *op, const char *reply_to,
                    int64_t deadline_ms, adi_principal *principal, adi_str_t body)
{
    memset(env, 0, sizeof(*env));
    env->v = ADI_PROTO_VERSION;
    env->id = adi_str_c(id);
    env->op = adi_str_c(op);
    env->reply_to = adi_str_c(reply_to);
    env->deadline_ms = deadline_ms;
    env->principal = principal;
    env->body = body;
}

void itest_send(adi_bus_t *bus, const char *stream, const adi_envelope *env)
{
    adi_buf_t buf;
    adi_buf_init(&buf);
    adi_proto_encode(&adi_envelope__desc, env, &buf);
    adi_error_t err;
    adi_error_clear(&err);
    adi_err rc = adi_bus_add(bus, stream, (adi_str_t){buf.data, buf.len}, NULL, &err);
    adi_buf_dispose(&buf);
    if (rc != ADI_OK)
        fail_msg("XADD to %s: %s", stream, err.message);
}

adi_reply *itest_wait(adi_bus_t *bus, const char *reply_stream, const char *id,
                      char after[ADI_BUS_ID_MAX], adi_pool_t *pool)
{
    adi_reply *rep = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_wait_reply(bus, reply_stream, adi_str_c(id), after, adi_now_ms() + 60000, pool,
                           &rep, &err) != ADI_OK)
        fail_msg("no reply to %s: %s", id, err.message);
    return rep;
}

int itest_wait_child(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

void itest_scratch_db(const char *name, const char *admin_bin, const char *services_dir,
                      const char *const *services, char *mig_dir, size_t n, adi_db_t **root,
                      adi_db_t **db)
{
    snprintf(mig_dir, n, "%s/%s-migrations", itest_env("ADI_TEST_DIR"), name);
    assert_int_equal(mkdir(mig_dir, 0755), 0);
    for (size_t i = 0; services[i] != NULL; i++) {
        char from[1024], to[1024];
        snprintf(from, sizeof(from), "%s/%s", services_dir, services[i]);
        snprintf(to, sizeof(to), "%s/%s", mig_dir, services[i]);
        assert_int_equal(symlink(from, to), 0);
    }
    *root = itest_db();
    char sql[256], url[256];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    itest_sql(*root, sql);
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%s/%s", itest_env("ADI_PG_PORT"),
             name);
    itest_migrate(admin_bin, mig_dir, url);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_db_connect(url, db, &err), ADI_OK);
}

void itest_scratch_db_drop(const char *name, const char *mig_dir, const char *const *services,
                           adi_db_t *root, adi_db_t *db)
{
    adi_db_free(db);
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    itest_sql(root, sql);
    adi_db_free(root);
    for (size_t i = 0; services[i] != NULL; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", mig_dir, services[i]);
        unlink(path);
    }
    rmdir(mig_dir);
}

pid_t itest_spawn_auth(const char *auth_bin, const char *name, const char *redis_url,
                       const char *dbname, int workers, const char *const *extra)
{
    char log[512], url[256], key[65], nworkers[16];
    snprintf(log, sizeof(log), "%s/logs", itest_env("ADI_TEST_DIR"));
    mkdir(log, 0755);
    snprintf(log, sizeof(log), "%s/logs/%s.log", itest_env("ADI_TEST_DIR"), name);
    snprintf(url, sizeof(url), "postgresql://adi_auth@127.0.0.1:%s/%s", itest_env("ADI_PG_PORT"),
             dbname);
    snprintf(nworkers, sizeof(nworkers), "%d", workers);
    unsigned char raw[32];
    adi_random(raw, sizeof(raw));
    for (int i = 0; i < 32; i++)
        snprintf(key + 2 * i, 3, "%02x", raw[i]);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (f == NULL || dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
            _exit(126);
        setenv("REDIS_URL", redis_url, 1);
        setenv("DATABASE_URL", url, 1);
        setenv("OPS_PORT", "0", 1);
        setenv("WORKERS", nworkers, 1);
        setenv("CONSUMER_NAME", name, 1);
        setenv("JWT_SIGNING_KEY", key, 1);
        setenv("PASSWORD_ITERATIONS", "1000", 1);
        for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
            putenv((char *)(uintptr_t)extra[i]); /* the child execs at once */
        execl(auth_bin, auth_bin, (char *)NULL);
        _exit(127);
    }
    return pid;
}

void itest_migrate(const char *admin_bin, const char *mig_dir, const char *admin_url)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("MIGRATIONS_DIR", mig_dir, 1);
        setenv("DATABASE_URL", admin_url, 1);
        execl(admin_bin, admin_bin, "migrate", (char *)NULL);
        _exit(127);
    }
    assert_int_equal(itest_wait_child(pid), 0);
}
