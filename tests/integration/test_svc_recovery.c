/* SPDX-License-Identifier: MIT */
/*
 * Outages survived in place: a service's workers keep answering after their Redis restarts (a
 * redis-server of this test's own, on a free port, restarted empty: the consumer group is made
 * again) and after PostgreSQL drops their connections (pg_terminate_backend on the connections
 * carrying this test's application_name), with no restart of the service.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adi/svc.h"
#include "itest.h"

static adi_op_desc_t op_ping = {"r.ping", NULL, &adi_reply_field__desc, &adi_reply_field__desc,
                                ADI_OP_MUTATING};

/* Runs a statement in the request's transaction and echoes the field. */
static adi_err r_ping(adi_ctx_t *ctx, const adi_reply_field *req, adi_reply_field *rep,
                      adi_error_t *err)
{
    adi_err rc = adi_db_exec(ctx->db, NULL, "SELECT 1", 0, NULL, NULL, err);
    rep->field = req->field;
    rep->message = ADI_STR("pong");
    return rc;
}

ADI_SVC_HANDLER(row_ping, op_ping, adi_reply_field, adi_reply_field, r_ping);
static const adi_svc_handler_t *const handlers[] = {&row_ping, NULL};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t start_redis(int port, const char *dir)
{
    char ports[16], log[512];
    snprintf(ports, sizeof(ports), "%d", port);
    snprintf(log, sizeof(log), "%s/redis.log", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "a", stdout);
        if (f == NULL || dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
            _exit(126);
        execlp("redis-server", "redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", dir, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_redis(pid_t pid)
{
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
}

/* Polls until Redis answers (the bus's own reconnect backoff paces the tries). */
static void wait_redis(adi_bus_t *bus)
{
    int64_t until = adi_mono_ms() + 60000;
    while (!adi_bus_ping(bus)) {
        if (adi_mono_ms() > until)
            fail_msg("redis-server did not come up");
        int64_t ms = adi_bus_retry_in_ms(bus);
        struct timespec ts = {0, (long)(ms > 0 ? ms : 10) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static adi_reply *ping(adi_bus_t *bus, const char *stream, const char *reply, const char *id,
                       adi_pool_t *pool)
{
    adi_reply_field m;
    memset(&m, 0, sizeof(m));
    m.field = adi_str_c(id);
    m.message = ADI_STR("");
    adi_envelope env;
    itest_envelope(&env, id, "r.ping", reply, adi_now_ms() + 60000, NULL,
                   adi_proto_encode_pool(&adi_reply_field__desc, &m, pool));
    itest_send(bus, stream, &env);
    char after[ADI_BUS_ID_MAX] = "0-0";
    return itest_wait(bus, reply, id, after, pool);
}

static void test_outages(void **state)
{
    (void)state;
    char name[48], dir[512], url[128], stream[128], reply[160], dburl[512], sql[512];
    itest_unique(name, sizeof(name), "trec");
    op_ping.service = name;
    snprintf(dir, sizeof(dir), "%s/%s", itest_env("ADI_TEST_DIR"), name);
    assert_int_equal(mkdir(dir, 0700), 0);
    int port = free_port();
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    snprintf(stream, sizeof(stream), ADI_KEY_REQ_FMT, name);
    snprintf(reply, sizeof(reply), "svc:{%s}:client:rep", name);
    const char *base = itest_env("DATABASE_URL");
    snprintf(dburl, sizeof(dburl), "%s%capplication_name=%s", base, strchr(base, '?') ? '&' : '?',
             name);

    adi_db_t *admin = itest_db();
    snprintf(sql, sizeof(sql),
             "CREATE SCHEMA %s; CREATE TABLE %s.adi_idempotency (request_id text PRIMARY KEY,"
             " op text NOT NULL, reply bytea NOT NULL, created_at timestamptz DEFAULT now())",
             name, name);
    itest_sql(admin, sql);

    pid_t redis = start_redis(port, dir);
    adi_bus_opts_t o = {.url = url, .reply_stream = reply};
    adi_bus_t *bus = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_bus_new(&o, &bus, &err), ADI_OK);
    wait_redis(bus);

    adi_svc_def_t def = {.name = name, .schema = name, .handlers = handlers};
    adi_svc_config_t cfg;
    adi_svc_config_defaults(&cfg, 0);
    cfg.redis_url = url;
    cfg.database_url = dburl;
    cfg.workers = 2;
    cfg.consumer_name = name;
    adi_svc_t *svc = NULL;
    assert_int_equal(adi_svc_new(&def, &cfg, NULL, &svc, &err), ADI_OK);
    assert_int_equal(adi_svc_start(svc, &err), ADI_OK);

    adi_pool_t pool;
    adi_pool_init(&pool);
    assert_int_equal(ping(bus, stream, reply, "before", &pool)->status, 200);

    /* Redis restarts empty: the workers reconnect and make the group again. */
    stop_redis(redis);
    redis = start_redis(port, dir);
    wait_redis(bus);
    assert_int_equal(ping(bus, stream, reply, "after-redis-1", &pool)->status, 200);
    assert_int_equal(ping(bus, stream, reply, "after-redis-2", &pool)->status, 200);

    /* PostgreSQL drops the workers' connections: the next requests are still answered. */
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE application_name = $1");
    assert_true(itest_sql_int(admin, sql, name) >= 1);
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof(id), "after-pg-%d", i);
        assert_int_equal(ping(bus, stream, reply, id, &pool)->status, 200);
    }
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.adi_idempotency", name);
    assert_int_equal(itest_sql_int(admin, sql, NULL), 7);

    adi_svc_stop(svc);
    assert_true(adi_svc_wait(svc, 60000));
    adi_svc_free(svc);
    adi_pool_dispose(&pool);
    adi_bus_free(bus);
    stop_redis(redis);
    snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", name);
    itest_sql(admin, sql);
    adi_db_free(admin);
    char log[600];
    snprintf(log, sizeof(log), "%s/redis.log", dir);
    unlink(log);
    rmdir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
