/* SPDX-License-Identifier: MIT */
/*
 * libs/bus against a real redis-server: URL handling, consumer groups, reading, acknowledging,
 * reclaiming what a dead consumer left pending, backlog/lag reporting, the entry size bound,
 * reply matching that skips stale replies, call timeouts and reconnecting after a failure.
 * Every test uses its own stream names (unique per process) and deletes them at the end.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

typedef struct fix {
    char name[48];    /* unique token in every key of the test */
    char stream[128]; /* a request stream */
    char group[64];   /* its group */
    adi_bus_t *bus;   /* a client */
} fix_t;

static int setup(void **state)
{
    fix_t *f = calloc(1, sizeof(*f));
    itest_unique(f->name, sizeof(f->name), "tbus");
    snprintf(f->stream, sizeof(f->stream), ADI_KEY_REQ_FMT, f->name);
    snprintf(f->group, sizeof(f->group), "%s", f->name);
    char rep[160];
    snprintf(rep, sizeof(rep), "svc:{%s}:client:rep", f->name);
    f->bus = itest_bus(rep);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix_t *f = *state;
    adi_bus_free(f->bus);
    itest_redis_cleanup(0, f->name);
    free(f);
    return 0;
}

static void test_url_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://127.0.0.1:6379", "redis://",      "redis://h:0",       "redis://h:99999",
        "redis://h:12x",         "redis://h:1/x", "redis://u:%zz@h:1", NULL};
    for (int i = 0; bad[i]; i++) {
        adi_bus_opts_t o = {.url = bad[i]};
        adi_bus_t *bus = (adi_bus_t *)&o; /* must be NULLed */
        adi_error_t err;
        adi_error_clear(&err);
        assert_int_equal(adi_bus_new(&o, &bus, &err), ADI_INVALID);
        assert_null(bus);
        assert_null(strstr(err.message, "zz"));
    }
}

static void test_unreachable_then_backoff(void **state)
{
    (void)state;
    /* Port 1 on loopback refuses connections: the bus reports UNAVAILABLE and backs off. */
    adi_bus_opts_t o = {.url = "redis://:secretpw@127.0.0.1:1/2"};
    adi_bus_t *bus = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_bus_new(&o, &bus, &err), ADI_OK);
    assert_false(adi_bus_connected(bus));
    assert_false(adi_bus_ping(bus));
    assert_true(adi_bus_retry_in_ms(bus) > 0);
    assert_int_equal(adi_bus_ensure_group(bus, "x", "y", &err), ADI_UNAVAILABLE);
    assert_null(strstr(err.message, "secretpw"));
    adi_bus_free(bus);
}

static void test_group_read_ack_lag(void **state)
{
    fix_t *f = *state;
    adi_error_t err;
    adi_error_clear(&err);
    adi_bus_batch_t b;

    /* Reading before the group exists is NOT_FOUND; creating it twice is fine. */
    assert_int_equal(adi_bus_read_group(f->bus, f->stream, f->group, "c1", 1, 1, &b, &err),
                     ADI_NOT_FOUND);
    adi_bus_batch_dispose(&b);
    adi_bus_group_info_t gi;
    assert_int_equal(adi_bus_group_info(f->bus, f->stream, f->group, &gi, &err), ADI_NOT_FOUND);
    assert_int_equal(adi_bus_ensure_group(f->bus, f->stream, f->group, &err), ADI_OK);
    assert_int_equal(adi_bus_ensure_group(f->bus, f->stream, f->group, &err), ADI_OK);
    assert_int_equal(adi_bus_group_info(f->bus, f->stream, f->group, &gi, &err), ADI_OK);
    assert_int_equal(gi.lag, 0);
    assert_int_equal(gi.pending, 0);

    /* Nothing there: a short block returns no entry. */
    assert_int_equal(adi_bus_read_group(f->bus, f->stream, f->group, "c1", 4, 1, &b, &err), ADI_OK);
    assert_int_equal(b.n, 0);
    adi_bus_batch_dispose(&b);

    for (int i = 0; i < 5; i++) {
        char msg[16];
        snprintf(msg, sizeof(msg), "m%d", i);
        char id[ADI_BUS_ID_MAX];
        assert_int_equal(adi_bus_add(f->bus, f->stream, adi_str_c(msg), id, &err), ADI_OK);
        assert_true(strchr(id, '-') != NULL);
    }
    assert_int_equal(adi_bus_group_info(f->bus, f->stream, f->group, &gi, &err), ADI_OK);
    assert_int_equal(gi.lag, 5);
    assert_int_equal(gi.pending, 0);

    assert_int_equal(adi_bus_read_group(f->bus, f->stream, f->group, "c1", 2, 1000, &b, &err),
                     ADI_OK);
    assert_int_equal(b.n, 2);
    assert_true(adi_str_eq_c(b.items[0].msg, "m0"));
    assert_true(adi_str_eq_c(b.items[1].msg, "m1"));
    assert_int_equal(adi_bus_group_info(f->bus, f->stream, f->group, &gi, &err), ADI_OK);
    assert_int_equal(gi.lag, 3);
    assert_int_equal(gi.pending, 2);
    assert_int_equal(gi.consumers, 1);
    assert_int_equal(adi_bus_ack(f->bus, f->stream, f->group, b.items[0].id, &err), ADI_OK);
    adi_bus_batch_dispose(&b);
    adi_bus_batch_dispose(&b); /* twice is harmless */
    assert_int_equal(adi_bus_group_info(f->bus, f->stream, f->group, &gi, &err), ADI_OK);
    assert_int_equal(gi.pending, 1);
}

static void test_reclaim_from_dead_consumer(void **state)
{
    fix_t *f = *state;
    adi_error_t err;
    adi_error_clear(&err);
    adi_bus_batch_t b;
    assert_int_equal(adi_bus_ensure_group(f->bus, f->stream, f->group, &err), ADI_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(adi_bus_add(f->bus, f->stream, ADI_STR("work"), NULL, &err), ADI_OK);

    /* A consumer takes all three and dies without acknowledging. */
    adi_bus_t *dead = itest_bus(NULL);
    assert_int_equal(adi_bus_read_group(dead, f->stream, f->group, "dead", 3, 1000, &b, &err),
                     ADI_OK);
    assert_int_equal(b.n, 3);
    adi_bus_batch_dispose(&b);
    adi_bus_free(dead);

    /* A live consumer with min-idle 0 takes them over, cursor-driven. */
    char cursor[ADI_BUS_ID_MAX] = "";
    size_t got = 0;
    do {
        assert_int_equal(
            adi_bus_reclaim(f->bus, f->stream, f->group, "live", 0, 2, cursor, &b, &err), ADI_OK);
        for (size_t i = 0; i < b.n; i++) {
            assert_true(adi_str_eq_c(b.items[i].msg, "work"));
            assert_int_equal(adi_bus_ack(f->bus, f->stream, f->group, b.items[i].id, &err), ADI_OK);
        }
        got += b.n;
        adi_bus_batch_dispose(&b);
    } while (strcmp(cursor, "0-0") != 0);
    assert_int_equal(got, 3);
    adi_bus_group_info_t gi;
    assert_int_equal(adi_bus_group_info(f->bus, f->stream, f->group, &gi, &err), ADI_OK);
    assert_int_equal(gi.pending, 0);

    /* A huge min-idle claims nothing. */
    assert_int_equal(adi_bus_add(f->bus, f->stream, ADI_STR("more"), NULL, &err), ADI_OK);
    assert_int_equal(adi_bus_read_group(f->bus, f->stream, f->group, "x", 1, 1000, &b, &err),
                     ADI_OK);
    adi_bus_batch_dispose(&b);
    snprintf(cursor, sizeof(cursor), "0-0");
    assert_int_equal(
        adi_bus_reclaim(f->bus, f->stream, f->group, "live", 3600000, 10, cursor, &b, &err),
        ADI_OK);
    assert_int_equal(b.n, 0);
    adi_bus_batch_dispose(&b);
}

static void test_size_bound(void **state)
{
    fix_t *f = *state;
    adi_error_t err;
    adi_error_clear(&err);
    size_t n = ADI_BUS_MAX_ENTRY + 1;
    char *big = calloc(1, n);
    assert_int_equal(adi_bus_add(f->bus, f->stream, (adi_str_t){big, n}, NULL, &err),
                     ADI_TOO_LARGE);
    assert_int_equal(adi_bus_reply_ack(f->bus, f->stream, (adi_str_t){big, n}, f->stream, f->group,
                                       ADI_STR("1-1"), &err),
                     ADI_TOO_LARGE);
    free(big);
}

/* Writes a reply with correlation id `id` to `stream`. */
static void put_reply(adi_bus_t *bus, const char *stream, const char *id, int status)
{
    adi_reply r;
    memset(&r, 0, sizeof(r));
    r.v = ADI_PROTO_VERSION;
    r.id = adi_str_c(id);
    r.status = status;
    adi_buf_t buf;
    adi_buf_init(&buf);
    adi_proto_encode(&adi_reply__desc, &r, &buf);
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_bus_add(bus, stream, (adi_str_t){buf.data, buf.len}, NULL, &err), ADI_OK);
    adi_buf_dispose(&buf);
}

static void test_wait_reply_skips_stale(void **state)
{
    fix_t *f = *state;
    char rs[160];
    snprintf(rs, sizeof(rs), "svc:{%s}:client:rep", f->name);
    put_reply(f->bus, rs, "stale-1", 504);
    assert_int_equal(adi_bus_add(f->bus, rs, ADI_STR("not msgpack \xc1"), NULL, NULL), ADI_OK);
    put_reply(f->bus, rs, "wanted", 201);
    put_reply(f->bus, rs, "later", 200);

    adi_pool_t pool;
    adi_pool_init(&pool);
    char after[ADI_BUS_ID_MAX] = "";
    adi_reply *r = itest_wait(f->bus, rs, "wanted", after, &pool);
    assert_int_equal(r->status, 201);
    assert_true(adi_str_eq_c(r->id, "wanted"));
    /* Reading on continues after the match. */
    r = itest_wait(f->bus, rs, "later", after, &pool);
    assert_int_equal(r->status, 200);
    adi_pool_dispose(&pool);
}

static void test_call_times_out(void **state)
{
    fix_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_reply *r = (adi_reply *)f;
    adi_error_t err;
    adi_error_clear(&err);
    /* Nobody serves this stream: the call ends at its deadline with ADI_TIMEOUT. */
    assert_int_equal(adi_bus_call(f->bus, f->name, "x.op", NULL, ADI_STR_NULL, adi_now_ms() + 50,
                                  &pool, &r, &err),
                     ADI_TIMEOUT);
    assert_null(r);
    /* A client without a reply stream cannot call. */
    adi_bus_t *plain = itest_bus(NULL);
    assert_int_equal(adi_bus_call(plain, f->name, "x.op", NULL, ADI_STR_NULL, adi_now_ms() + 50,
                                  &pool, &r, &err),
                     ADI_INTERNAL);
    adi_bus_free(plain);
    adi_pool_dispose(&pool);
}

static void test_reconnects_and_selects_db(void **state)
{
    fix_t *f = *state;
    /* A client on database 13 (this test's own): its connection is killed under it. */
    char url[256];
    snprintf(url, sizeof(url), "%s/13", itest_env("REDIS_URL"));
    adi_bus_opts_t o = {.url = url};
    adi_bus_t *bus = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_bus_new(&o, &bus, &err), ADI_OK);
    assert_true(adi_bus_ping(bus));
    assert_true(adi_bus_connected(bus));
    assert_true(itest_redis_kill_db(13) >= 1);

    /* The first command finds the connection dead; the next one reconnects (and reselects). */
    assert_false(adi_bus_ping(bus));
    assert_true(adi_bus_ping(bus));
    assert_int_equal(adi_bus_add(bus, f->stream, ADI_STR("x"), NULL, &err), ADI_OK);
    const char *exists[2] = {"EXISTS", f->stream};
    assert_int_equal(itest_redis_int(13, 2, exists), 1);
    assert_int_equal(itest_redis_int(0, 2, exists), 0);
    itest_redis_cleanup(13, f->name);
    adi_bus_free(bus);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a killed Redis connection must not kill the test */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_errors),
        cmocka_unit_test(test_unreachable_then_backoff),
        cmocka_unit_test_setup_teardown(test_group_read_ack_lag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_from_dead_consumer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_reply_skips_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnects_and_selects_db, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
