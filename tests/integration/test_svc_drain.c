/* SPDX-License-Identifier: MIT */
/*
 * SIGTERM draining of a real service binary: adi-auth (argv[1]) runs against the test Redis (its
 * own database, 9, so a suite running at the same time is not disturbed) and Postgres. Requests
 * are queued, the process is sent SIGTERM once it has answered one, and it must exit 0 leaving
 * nothing pending: every entry it took was answered and acknowledged, the others are still
 * undelivered. A second instance then answers the rest, so every request is answered once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

#define DB      9
#define NREQ    200
#define STREAM  "svc:{auth}:req"
#define REPLIES "svc:{auth}:drain-client:rep"

static const char *binary;

/* Starts adi-auth with the test environment; its output goes to <ADI_TEST_DIR>/<name>.log. */
static pid_t spawn(const char *redis_url, const char *consumer)
{
    char log[512];
    snprintf(log, sizeof(log), "%s/logs", itest_env("ADI_TEST_DIR"));
    mkdir(log, 0755);
    snprintf(log, sizeof(log), "%s/logs/%s.log", itest_env("ADI_TEST_DIR"), consumer);
    const char *dburl = itest_env("DATABASE_URL");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (f == NULL || dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
            _exit(126);
        setenv("REDIS_URL", redis_url, 1);
        setenv("DATABASE_URL", dburl, 1);
        setenv("OPS_PORT", "0", 1);
        setenv("WORKERS", "3", 1);
        setenv("CONSUMER_NAME", consumer, 1);
        setenv("SHUTDOWN_GRACE_MS", "20000", 1);
        /* adi-auth refuses to start without a signing key; the harness exports one, but a test
           run by hand may not have it. */
        setenv("JWT_SIGNING_KEY", "drain-test-signing-key-0123456789abcdef", 0);
        execl(binary, binary, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int stop_and_wait(pid_t pid)
{
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Reads every reply after `after`, marking ids "drain-<n>" as answered; returns new answers. */
static int collect(adi_bus_t *bus, char after[ADI_BUS_ID_MAX], bool answered[NREQ], int block_ms)
{
    int fresh = 0;
    adi_bus_batch_t b;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_bus_read(bus, REPLIES, after, 64, block_ms, &b, &err), ADI_OK);
    for (size_t i = 0; i < b.n; i++) {
        adi_pool_t pool;
        adi_pool_init(&pool);
        adi_reply *r = adi_pool_alloc(&pool, sizeof(*r));
        assert_int_equal(adi_proto_decode(&adi_reply__desc, b.items[i].msg.ptr, b.items[i].msg.len,
                                          &pool, r, &err),
                         ADI_OK);
        assert_int_equal(r->status, 200);
        sys_health_rep *h = adi_pool_alloc(&pool, sizeof(*h));
        assert_int_equal(
            adi_proto_decode(&sys_health_rep__desc, r->body.ptr, r->body.len, &pool, h, &err),
            ADI_OK);
        assert_true(adi_str_eq_c(h->service, "auth"));
        int n = -1;
        assert_int_equal(sscanf(r->id.ptr, "drain-%d", &n), 1);
        assert_true(n >= 0 && n < NREQ);
        assert_false(answered[n]); /* answered exactly once */
        answered[n] = true;
        fresh++;
        adi_pool_dispose(&pool);
    }
    adi_bus_batch_dispose(&b);
    return fresh;
}

static void test_sigterm_drains(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%s/%d", itest_env("ADI_REDIS_PORT"), DB);
    itest_redis_cleanup(DB, "{auth}");
    adi_bus_opts_t o = {.url = url};
    adi_bus_t *bus = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_bus_new(&o, &bus, &err), ADI_OK);
    assert_int_equal(adi_bus_ensure_group(bus, STREAM, "auth", &err), ADI_OK);

    for (int i = 0; i < NREQ; i++) {
        char id[32];
        snprintf(id, sizeof(id), "drain-%d", i);
        adi_envelope env;
        itest_envelope(&env, id, "sys.health", REPLIES, adi_now_ms() + 120000, NULL, ADI_STR_NULL);
        itest_send(bus, STREAM, &env);
    }

    bool answered[NREQ] = {false};
    char after[ADI_BUS_ID_MAX] = "0-0";
    pid_t a = spawn(url, "drain-a");
    int got = 0;
    while (got == 0)
        got += collect(bus, after, answered, 60000);
    assert_int_equal(stop_and_wait(a), 0);

    /* Nothing the first instance took is left pending: answered or never delivered. */
    adi_bus_group_info_t gi;
    assert_int_equal(adi_bus_group_info(bus, STREAM, "auth", &gi, &err), ADI_OK);
    assert_int_equal(gi.pending, 0);
    int n;
    while ((n = collect(bus, after, answered, 1)) > 0)
        got += n;
    assert_int_equal(got + gi.lag, NREQ);

    /* A second instance answers the rest. */
    if (got < NREQ) {
        pid_t b = spawn(url, "drain-b");
        while (got < NREQ)
            got += collect(bus, after, answered, 60000);
        assert_int_equal(stop_and_wait(b), 0);
    }
    assert_int_equal(got, NREQ);
    assert_int_equal(adi_bus_group_info(bus, STREAM, "auth", &gi, &err), ADI_OK);
    assert_int_equal(gi.pending, 0);
    assert_int_equal(gi.lag, 0);

    adi_bus_free(bus);
    itest_redis_cleanup(DB, "{auth}");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <path to adi-auth>\n", argv[0]);
        return 2;
    }
    binary = argv[1];
    signal(SIGPIPE, SIG_IGN); /* a killed Redis connection must not kill the test */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_drains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
