/* SPDX-License-Identifier: MIT */
/*
 * The scheduler against the stack's Redis, in-process, with an injected clock so that minutes
 * pass instantly. Most cases drive schedulers by hand (tr_scheduler_tick) for determinism: one
 * leader among replicas, failover firing the due slot exactly once, a stale leader's fence
 * refused, interval slots, the catch-up cap, the built-in defaults and bad schedule files. One
 * case runs three threaded replicas and crashes the leader (its lease is left to expire).
 *
 * Every case uses its own key prefix and queue (both contain a unique token) in database 0,
 * except the defaults case, which must use the real queue "default" and so runs in database
 * DEFAULTS_DB and removes exactly the entries it added.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "scheduler.h"

#define DEFAULTS_DB 15
/* A whole minute (and hour, and 300 s) in epoch ms: 2027-01-15T08:00:00Z. */
#define T0 1800000000000LL
/* Long enough that no renewal happens during a hand-driven case. */
#define LONG_LEASE_MS 600000

/* One task read back from a stream. */
typedef struct seen {
    char entry[ADI_BUS_ID_MAX]; /* stream entry id */
    char id[37];                /* task id */
    char name[129];             /* task name */
    char request_id[160];       /* request id: sched:<schedule>:<slot ms> */
    char args[16];              /* args bytes (short) */
    size_t args_len;            /* their length */
} seen_t;

typedef struct fx {
    int db;           /* Redis database */
    char token[40];   /* unique part of every name */
    char prefix[48];  /* key prefix: <token>: */
    char queue[48];   /* queue: <token> */
    char stream[64];  /* tasks:<queue> */
    char file[256];   /* schedule file path */
    char url[256];    /* REDIS_URL with the database */
    atomic_llong now; /* the injected clock */
    adi_bus_t *bus;   /* the test's own client */
    char ids[64][37]; /* task ids seen (their state keys are removed at the end) */
    size_t nids;      /* entries of ids[] */
} fx_t;

static int64_t fake_now(void *arg)
{
    return (int64_t)atomic_load(&((fx_t *)arg)->now);
}

static void set_now(fx_t *f, int64_t ms)
{
    atomic_store(&f->now, (long long)ms);
}

static fx_t *fx_new(int db)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->db = db;
    itest_unique(f->token, sizeof(f->token), "sch");
    snprintf(f->prefix, sizeof(f->prefix), "%s:", f->token);
    snprintf(f->queue, sizeof(f->queue), "%s", f->token);
    snprintf(f->stream, sizeof(f->stream), ADI_KEY_TASKS_FMT, f->queue);
    snprintf(f->file, sizeof(f->file), "%s/%s.json", itest_env("ADI_TEST_DIR"), f->token);
    snprintf(f->url, sizeof(f->url), "%s/%d", itest_env("REDIS_URL"), db);
    set_now(f, T0 + 5000);
    adi_bus_opts_t o = {.url = f->url};
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_new(&o, &f->bus, &err) != ADI_OK)
        fail_msg("adi_bus_new: %s", err.message);
    return f;
}

static void fx_free(fx_t *f)
{
    for (size_t i = 0; i < f->nids; i++) {
        char key[64];
        snprintf(key, sizeof(key), ADI_KEY_TASK_STATE_FMT, f->ids[i]);
        const char *argv[2] = {"DEL", key};
        itest_redis_int(f->db, 2, argv);
    }
    itest_redis_cleanup(f->db, f->token);
    unlink(f->file);
    adi_bus_free(f->bus);
    free(f);
}

static void write_file(fx_t *f, const char *json)
{
    FILE *fp = fopen(f->file, "w");
    assert_non_null(fp);
    fputs(json, fp);
    fclose(fp);
}

/* Options of one test scheduler. */
typedef struct opts {
    const char *file;         /* schedule file, NULL = defaults */
    bool threaded;            /* run its thread */
    int64_t lease_ms;         /* 0 = LONG_LEASE_MS */
    int catchup;              /* 0 = default */
    bool keep_lease;          /* stop like a crash */
    const char *const *names; /* known tasks, or NULL */
    adi_metrics_t *metrics;   /* metrics, or NULL */
} opts_t;

static adi_err try_start(fx_t *f, const char *holder, const opts_t *o, tr_scheduler_t **out,
                         adi_error_t *err)
{
    tr_sched_config_t c = {
        .redis_url = f->url,
        .schedule_file = o->file,
        .lease_ms = o->lease_ms > 0 ? o->lease_ms : LONG_LEASE_MS,
        .holder = holder,
        .time_zone = "America/Jamaica",
        .now_ms = fake_now,
        .now_arg = f,
        .catchup_max = o->catchup,
        .task_names = o->names,
        .metrics = o->metrics,
        .key_prefix = f->prefix,
        .manual = !o->threaded,
        .keep_lease_on_stop = o->keep_lease,
    };
    adi_error_clear(err);
    return tr_scheduler_start(&c, out, err);
}

static tr_scheduler_t *start(fx_t *f, const char *holder, const opts_t *o)
{
    tr_scheduler_t *s = NULL;
    adi_error_t err;
    if (try_start(f, holder, o, &s, &err) != ADI_OK)
        fail_msg("tr_scheduler_start: %s", err.message);
    return s;
}

static tr_sched_tick_t tick(tr_scheduler_t *s)
{
    tr_sched_tick_t t;
    adi_error_t err;
    adi_error_clear(&err);
    if (tr_scheduler_tick(s, &t, &err) != ADI_OK)
        fail_msg("tr_scheduler_tick: %s", err.message);
    return t;
}

/* Runs a command on the test's client; the reply lives in `pool`. */
static adi_bus_value_t *cmd(fx_t *f, adi_pool_t *pool, int argc, const char **argv)
{
    adi_bus_value_t *v = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_command(f->bus, 0, argc, argv, NULL, pool, &v, &err) != ADI_OK)
        fail_msg("%s: %s", argv[0], err.message);
    return v;
}

static int64_t xlen(fx_t *f, const char *stream)
{
    const char *argv[2] = {"XLEN", stream};
    return itest_redis_int(f->db, 2, argv);
}

/*
 * Reads the entries of `stream` after `after` (advanced), waiting up to block_ms for the first,
 * into out[] (at most max); remembers their task ids for cleanup. With `slot` non-NULL only tasks
 * whose request id ends in ":<slot>" count (others' entries on a shared stream are skipped).
 * Returns how many were kept.
 */
static size_t read_tasks_of(fx_t *f, const char *stream, char after[ADI_BUS_ID_MAX], int block_ms,
                            seen_t *out, size_t max, const char *slot)
{
    adi_bus_batch_t batch;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_read(f->bus, stream, after, ADI_BUS_BATCH_MAX, block_ms, &batch, &err) != ADI_OK)
        fail_msg("adi_bus_read: %s", err.message);
    size_t n = 0;
    for (size_t i = 0; i < batch.n; i++) {
        adi_pool_t pool;
        adi_pool_init(&pool);
        task_msg t;
        memset(&t, 0, sizeof(t));
        const adi_bus_entry_t *e = &batch.items[i];
        assert_non_null(e->msg.ptr);
        if (adi_proto_decode(&task_msg__desc, e->msg.ptr, e->msg.len, &pool, &t, &err) != ADI_OK ||
            adi_proto_check_required(&task_msg__desc, &t, &err) != ADI_OK)
            fail_msg("task_msg: %s", err.message);
        char rid[160];
        snprintf(rid, sizeof(rid), "%.*s", (int)t.request_id.len, t.request_id.ptr);
        const char *colon = strrchr(rid, ':');
        if (slot != NULL && (colon == NULL || strcmp(colon + 1, slot) != 0)) {
            adi_pool_dispose(&pool);
            continue;
        }
        assert_true(n < max);
        seen_t *s = &out[n++];
        memset(s, 0, sizeof(*s));
        snprintf(s->entry, sizeof(s->entry), "%.*s", (int)e->id.len, e->id.ptr);
        snprintf(s->id, sizeof(s->id), "%.*s", (int)t.id.len, t.id.ptr);
        snprintf(s->name, sizeof(s->name), "%.*s", (int)t.name.len, t.name.ptr);
        snprintf(s->request_id, sizeof(s->request_id), "%s", rid);
        assert_true(t.args.len <= sizeof(s->args));
        memcpy(s->args, t.args.ptr, t.args.len);
        s->args_len = t.args.len;
        assert_true(adi_uuid_valid(t.id));
        assert_int_equal(t.attempt, 0);
        assert_true(t.enqueued_at_ms > 0);
        assert_true(f->nids < 64);
        snprintf(f->ids[f->nids++], 37, "%s", s->id);
        adi_pool_dispose(&pool);
    }
    adi_bus_batch_dispose(&batch);
    return n;
}

static size_t read_tasks(fx_t *f, const char *stream, char after[ADI_BUS_ID_MAX], int block_ms,
                         seen_t *out, size_t max)
{
    return read_tasks_of(f, stream, after, block_ms, out, max, NULL);
}

/* "sched:<schedule>:<slot>" */
static void expect_request(const seen_t *s, const char *schedule, int64_t slot)
{
    char want[160];
    snprintf(want, sizeof(want), "sched:%s:%lld", schedule, (long long)slot);
    assert_string_equal(s->request_id, want);
}

static void test_single_leader(void **state)
{
    (void)state;
    fx_t *f = fx_new(0);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"schedules\": [{\"name\": \"tick\", \"task\": \"noop\", \"every_s\": 60, "
             "\"queue\": \"%s\", \"args\": {\"x\": 1}}]}",
             f->queue);
    write_file(f, json);
    adi_metrics_t *metrics = adi_metrics_new("task-runner");
    opts_t o = {.file = f->file};
    opts_t om = {.file = f->file, .metrics = metrics};
    tr_scheduler_t *a = start(f, "replica-a", &om);
    tr_scheduler_t *b = start(f, "replica-b", &o);
    tr_scheduler_t *c = start(f, "replica-c", &o);

    tr_sched_tick_t t = tick(a);
    assert_true(t.leader);
    assert_true(t.fence > 0);
    assert_int_equal(t.fired, 0); /* never run before: starts now, no backfill */
    assert_int_equal(t.schedules, 1);
    assert_false(tick(b).leader);
    assert_false(tick(c).leader);

    set_now(f, T0 + 60000);
    for (int round = 0; round < 3; round++) {
        t = tick(b);
        assert_false(t.leader);
        assert_int_equal(t.fired, 0);
        assert_int_equal(tick(c).fired, 0);
        t = tick(a);
        assert_true(t.leader);
        assert_int_equal(t.fired, round == 0 ? 1 : 0);
    }
    assert_true(tr_scheduler_is_leader(a));
    assert_false(tr_scheduler_is_leader(b));
    adi_buf_t text;
    adi_buf_init(&text);
    adi_metrics_render(metrics, &text);
    assert_non_null(strstr(text.data, "adi_scheduler_leader{service=\"task-runner\"} 1\n"));
    assert_non_null(strstr(text.data, "adi_scheduler_fired_total{service=\"task-runner\","
                                      "schedule=\"tick\"} 1\n"));
    adi_buf_dispose(&text);

    assert_int_equal(xlen(f, f->stream), 1);
    char after[ADI_BUS_ID_MAX] = "0-0";
    seen_t seen[4];
    assert_int_equal(read_tasks(f, f->stream, after, 1, seen, 4), 1);
    assert_string_equal(seen[0].name, "noop");
    expect_request(&seen[0], "tick", T0 + 60000);
    assert_int_equal(seen[0].args_len, 4); /* msgpack {"x": 1} */
    assert_memory_equal(seen[0].args, "\x81\xa1x\x01", 4);

    /* The PENDING state, with its TTL of a day. */
    adi_pool_t pool;
    adi_pool_init(&pool);
    char key[64];
    snprintf(key, sizeof(key), ADI_KEY_TASK_STATE_FMT, seen[0].id);
    const char *hget[3] = {"HGET", key, "state"};
    adi_bus_value_t *v = cmd(f, &pool, 3, hget);
    assert_int_equal(v->type, ADI_BUS_V_STR);
    assert_string_equal(v->s.ptr, "PENDING");
    const char *hq[3] = {"HGET", key, "queue"};
    assert_string_equal(cmd(f, &pool, 3, hq)->s.ptr, f->queue);
    const char *ttl[2] = {"TTL", key};
    long long secs = itest_redis_int(0, 2, ttl);
    assert_true(secs > 0 && secs <= TR_SCHED_STATE_TTL_S);
    adi_pool_dispose(&pool);

    /* Stopping the leader releases the lease: the next replica takes over at once. */
    tr_scheduler_stop(a);
    adi_buf_init(&text);
    adi_metrics_render(metrics, &text);
    assert_non_null(strstr(text.data, "adi_scheduler_leader{service=\"task-runner\"} 0\n"));
    adi_buf_dispose(&text);
    adi_metrics_free(metrics);
    t = tick(b);
    assert_true(t.leader);
    assert_int_equal(t.fired, 0);
    tr_scheduler_stop(b);
    tr_scheduler_stop(c);
    char leader[96];
    snprintf(leader, sizeof(leader), "%s%s", f->prefix, ADI_KEY_SCHED_LEADER);
    const char *exists[2] = {"EXISTS", leader};
    assert_int_equal(itest_redis_int(0, 2, exists), 0);
    fx_free(f);
}

static void test_failover_fires_due_slot_once(void **state)
{
    (void)state;
    fx_t *f = fx_new(0);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"schedules\": [{\"name\": \"m\", \"task\": \"noop\", \"every_s\": 60, "
             "\"queue\": \"%s\"}]}",
             f->queue);
    write_file(f, json);
    opts_t o = {.file = f->file};
    tr_scheduler_t *a = start(f, "replica-a", &o);
    tr_scheduler_t *b = start(f, "replica-b", &o);
    tr_sched_tick_t ta = tick(a);
    assert_true(ta.leader);
    assert_false(tick(b).leader);

    /* A fires S1, then dies without a word: its lease runs out (here: the key goes away). */
    set_now(f, T0 + 60000 + 1000);
    assert_int_equal(tick(a).fired, 1);
    char leader[96];
    snprintf(leader, sizeof(leader), "%s%s", f->prefix, ADI_KEY_SCHED_LEADER);
    const char *del[2] = {"DEL", leader};
    assert_int_equal(itest_redis_int(0, 2, del), 1);

    /* B takes over after S2 became due: it fires S2 only (S1 ran already). */
    set_now(f, T0 + 120000 + 1000);
    tr_sched_tick_t tb = tick(b);
    assert_true(tb.leader);
    assert_true(tb.fence > ta.fence);
    assert_int_equal(tb.fired, 1);
    assert_int_equal(tick(b).fired, 0);

    /* A comes back believing it leads: its fire is refused by the fence, and it steps down. */
    ta = tick(a);
    assert_false(ta.leader);
    assert_int_equal(ta.fired, 0);
    assert_int_equal(ta.refused, 1);
    assert_int_equal(tick(a).fired, 0);

    /* S3: only B fires. */
    set_now(f, T0 + 180000 + 1000);
    assert_int_equal(tick(a).fired, 0);
    assert_int_equal(tick(b).fired, 1);
    assert_int_equal(tick(a).fired, 0);

    /* B stops (releasing), A takes over and fires S4 once. */
    tr_scheduler_stop(b);
    set_now(f, T0 + 240000 + 1000);
    ta = tick(a);
    assert_true(ta.leader);
    assert_int_equal(ta.fired, 1);
    assert_int_equal(tick(a).fired, 0);

    char after[ADI_BUS_ID_MAX] = "0-0";
    seen_t seen[8];
    assert_int_equal(read_tasks(f, f->stream, after, 1, seen, 8), 4);
    for (int i = 0; i < 4; i++)
        expect_request(&seen[i], "m", T0 + 60000 * (i + 1));
    tr_scheduler_stop(a);
    fx_free(f);
}

static void test_stale_fence_refused(void **state)
{
    (void)state;
    fx_t *f = fx_new(0);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"schedules\": [{\"name\": \"s\", \"task\": \"noop\", \"cron\": \"* * * * *\", "
             "\"queue\": \"%s\"}]}",
             f->queue);
    write_file(f, json);
    opts_t o = {.file = f->file};
    tr_scheduler_t *a = start(f, "replica-a", &o);
    tr_scheduler_t *b = start(f, "replica-b", &o);
    assert_true(tick(a).leader);

    /* A's lease is lost and B leads with a newer fence before anything is due. */
    char leader[96];
    snprintf(leader, sizeof(leader), "%s%s", f->prefix, ADI_KEY_SCHED_LEADER);
    const char *del[2] = {"DEL", leader};
    itest_redis_int(0, 2, del);
    assert_true(tick(b).leader);

    char last[96];
    snprintf(last, sizeof(last), "%s" ADI_KEY_SCHED_LAST_FMT, f->prefix, "s");
    adi_pool_t pool;
    adi_pool_init(&pool);
    const char *get[2] = {"GET", last};
    char before[32];
    snprintf(before, sizeof(before), "%s", cmd(f, &pool, 2, get)->s.ptr);

    /* The stale leader tries first: refused, nothing written. */
    set_now(f, T0 + 60000);
    tr_sched_tick_t t = tick(a);
    assert_int_equal(t.refused, 1);
    assert_int_equal(t.fired, 0);
    assert_false(t.leader);
    assert_false(tr_scheduler_is_leader(a));
    assert_int_equal(xlen(f, f->stream), 0);
    assert_string_equal(cmd(f, &pool, 2, get)->s.ptr, before);

    /* The real leader fires the slot. */
    assert_int_equal(tick(b).fired, 1);
    assert_int_equal(xlen(f, f->stream), 1);
    char after[ADI_BUS_ID_MAX] = "0-0";
    seen_t seen[2];
    assert_int_equal(read_tasks(f, f->stream, after, 1, seen, 2), 1);
    expect_request(&seen[0], "s", T0 + 60000);
    adi_pool_dispose(&pool);
    tr_scheduler_stop(a);
    tr_scheduler_stop(b);
    fx_free(f);
}

static void test_every_s(void **state)
{
    (void)state;
    fx_t *f = fx_new(0);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"schedules\": [{\"name\": \"five\", \"task\": \"noop\", \"every_s\": 300, "
             "\"queue\": \"%s\"}, {\"name\": \"off\", \"task\": \"noop\", \"every_s\": 1, "
             "\"queue\": \"%s\", \"enabled\": false}]}",
             f->queue, f->queue);
    write_file(f, json);
    opts_t o = {.file = f->file};
    tr_scheduler_t *a = start(f, "replica-a", &o);
    set_now(f, T0 + 1000);
    tr_sched_tick_t t = tick(a);
    assert_int_equal(t.schedules, 1);
    assert_int_equal(t.fired, 0);
    /* Slots are the multiples of 300 s: due exactly at the slot, not a millisecond before. */
    set_now(f, T0 + 299999);
    assert_int_equal(tick(a).fired, 0);
    set_now(f, T0 + 300000);
    assert_int_equal(tick(a).fired, 1);
    set_now(f, T0 + 599999);
    assert_int_equal(tick(a).fired, 0);
    set_now(f, T0 + 600500);
    assert_int_equal(tick(a).fired, 1);
    assert_int_equal(tick(a).fired, 0);

    char after[ADI_BUS_ID_MAX] = "0-0";
    seen_t seen[4];
    assert_int_equal(read_tasks(f, f->stream, after, 1, seen, 4), 2);
    expect_request(&seen[0], "five", T0 + 300000);
    expect_request(&seen[1], "five", T0 + 600000);
    /* No args given: an empty map. */
    assert_int_equal(seen[0].args_len, 1);
    assert_int_equal((unsigned char)seen[0].args[0], 0x80);
    tr_scheduler_stop(a);
    fx_free(f);
}

static void test_catch_up_cap(void **state)
{
    (void)state;
    fx_t *f = fx_new(0);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"schedules\": [{\"name\": \"minutely\", \"task\": \"noop\", \"every_s\": 60, "
             "\"queue\": \"%s\"}, {\"name\": \"fively\", \"task\": \"noop\", "
             "\"cron\": \"*/5 * * * *\", \"queue\": \"%s\"}]}",
             f->queue, f->queue);
    write_file(f, json);
    opts_t o = {.file = f->file, .catchup = 3};
    tr_scheduler_t *a = start(f, "replica-a", &o);
    set_now(f, T0);
    assert_true(tick(a).leader);
    tr_scheduler_stop(a);

    /* Nobody leads for an hour; the next leader fires only the latest 3 slots of each. */
    tr_scheduler_t *b = start(f, "replica-b", &o);
    set_now(f, T0 + 3600000);
    tr_sched_tick_t t = tick(b);
    assert_true(t.leader);
    assert_int_equal(t.fired, 6);
    assert_int_equal(t.coalesced, (60 - 3) + (12 - 3));
    t = tick(b);
    assert_int_equal(t.fired, 0);
    assert_int_equal(t.coalesced, 0);

    char after[ADI_BUS_ID_MAX] = "0-0";
    seen_t seen[8];
    assert_int_equal(read_tasks(f, f->stream, after, 1, seen, 8), 6);
    for (int i = 0; i < 3; i++) {
        expect_request(&seen[i], "minutely", T0 + 3600000 - 60000 * (2 - i));
        expect_request(&seen[3 + i], "fively", T0 + 3600000 - 300000 * (2 - i));
    }
    tr_scheduler_stop(b);
    fx_free(f);
}

static void test_defaults(void **state)
{
    (void)state;
    fx_t *f = fx_new(DEFAULTS_DB);
    /*
     * Sunday 2026-11-29 02:30 in Jamaica (-05:00) is 07:30Z; a random number of weeks later, so
     * that another run sharing the queue "default" fires other slots (its tasks are skipped).
     */
    struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 29, .tm_hour = 7, .tm_min = 30};
    uint16_t weeks;
    adi_random(&weeks, sizeof(weeks));
    int64_t t0 = ((int64_t)timegm(&tm) + (int64_t)(weeks % 4096) * 7 * 86400) * 1000;
    char slot1[24];
    char slot2[24];
    snprintf(slot1, sizeof(slot1), "%lld", (long long)(t0 + 30 * 60000));
    snprintf(slot2, sizeof(slot2), "%lld", (long long)(t0 + 90 * 60000));
    set_now(f, t0);
    char stream[64];
    snprintf(stream, sizeof(stream), ADI_KEY_TASKS_FMT, "default");
    /* Read only what this case adds to the shared queue "default". */
    adi_pool_t pool;
    adi_pool_init(&pool);
    const char *exists[2] = {"EXISTS", stream};
    bool existed = itest_redis_int(f->db, 2, exists) == 1;
    const char *xadd[5] = {"XADD", stream, "*", "x", "marker"};
    char after[ADI_BUS_ID_MAX];
    snprintf(after, sizeof(after), "%s", cmd(f, &pool, 5, xadd)->s.ptr);
    const char *xdel_marker[3] = {"XDEL", stream, after};
    cmd(f, &pool, 3, xdel_marker);

    opts_t o = {0};
    tr_scheduler_t *a = start(f, "replica-a", &o);
    tr_sched_tick_t t = tick(a);
    assert_int_equal(t.schedules, 3);
    assert_int_equal(t.fired, 0);
    /* 03:00:30 local on a Sunday: rotate_deks (weekly) and both hourly syncs. */
    set_now(f, t0 + 30 * 60000 + 30000);
    t = tick(a);
    assert_int_equal(t.fired, 3);
    seen_t seen[8];
    size_t n = read_tasks_of(f, stream, after, 1, seen, 8, slot1);
    assert_int_equal(n, 3);
    const char *want[3][2] = {{"rotate_deks", "rotate-deks"},
                              {"sync_meta_example", "sync-meta-example"},
                              {"sync_google_example", "sync-google-example"}};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(seen[i].name, want[i][0]);
        expect_request(&seen[i], want[i][1], t0 + 30 * 60000);
        assert_int_equal(seen[i].args_len, 1); /* {} */
    }
    /* 04:00: the syncs only. */
    set_now(f, t0 + 90 * 60000);
    assert_int_equal(tick(a).fired, 2);
    seen_t more[4];
    assert_int_equal(read_tasks_of(f, stream, after, 1, more, 4, slot2), 2);
    assert_string_equal(more[0].name, "sync_meta_example");
    assert_string_equal(more[1].name, "sync_google_example");
    tr_scheduler_stop(a);

    for (size_t i = 0; i < 3; i++) {
        const char *xdel[3] = {"XDEL", stream, seen[i].entry};
        cmd(f, &pool, 3, xdel);
    }
    for (size_t i = 0; i < 2; i++) {
        const char *xdel[3] = {"XDEL", stream, more[i].entry};
        cmd(f, &pool, 3, xdel);
    }
    if (!existed && xlen(f, stream) == 0) {
        const char *del[2] = {"DEL", stream};
        cmd(f, &pool, 2, del);
    }
    adi_pool_dispose(&pool);
    fx_free(f);
}

/* Starting with `json` as the file fails with `code` and a message equal to `want`. */
static void bad_file(fx_t *f, const char *json, const char *const *names, adi_err code,
                     const char *want, const char *field)
{
    write_file(f, json);
    opts_t o = {.file = f->file, .names = names};
    tr_scheduler_t *s = NULL;
    adi_error_t err;
    adi_err rc = try_start(f, "replica-a", &o, &s, &err);
    if (rc != code)
        fail_msg("%s: got %s (%s), want %s", json, adi_err_name(rc), err.message,
                 adi_err_name(code));
    assert_null(s);
    if (strncmp(err.message, want, strlen(want)) != 0)
        fail_msg("%s:\n got  %s\n want %s", json, err.message, want);
    if (field != NULL) {
        assert_true(err.nfields >= 1);
        assert_string_equal(err.fields[0].field, field);
    }
}

static void test_bad_files(void **state)
{
    (void)state;
    fx_t *f = fx_new(0);
    static const char *const names[] = {"noop", "rotate_deks", NULL};
    static const struct {
        const char *json, *want, *field;
    } cases[] = {
        {"{", "Schedule file: line ", NULL},
        {"{\"schedules\": [], \"schedules\": []}", "Schedule file: line 1", NULL},
        {"[]", "Schedule file: expected {\"schedules\": [...]} and nothing else.", NULL},
        {"{\"schedules\": {}}", "Schedule file: expected {\"schedules\"", NULL},
        {"{\"schedules\": [], \"more\": 1}", "Schedule file: expected {\"schedules\"", NULL},
        {"{\"schedules\": [{\"name\": \"nightly\", \"task\": \"noop\", \"cron\": \"0 25 * * *\"}]}",
         "schedules[0] \"nightly\": cron: hour: 25 is out of range 0-23.", "schedules[0].cron"},
        {"{\"schedules\": [{\"name\": \"n\", \"task\": \"noop\", \"cron\": \"0 3 * *\"}]}",
         "schedules[0] \"n\": cron: expected 5 fields", "schedules[0].cron"},
        {"{\"schedules\": [{\"name\": \"n\", \"task\": \"noop\", \"cron\": 5}]}",
         "schedules[0] \"n\": cron: must be a string", "schedules[0].cron"},
        {"{\"schedules\": [{\"name\": \"n\", \"task\": \"noop\", \"cron\": \"* * * * *\", "
         "\"every_s\": 5}]}",
         "schedules[0] \"n\": cron: give exactly one of cron and every_s.", "schedules[0].cron"},
        {"{\"schedules\": [{\"name\": \"n\", \"task\": \"noop\"}]}",
         "schedules[0] \"n\": cron: give exactly one of cron and every_s.", "schedules[0].cron"},
        {"{\"schedules\": [{\"name\": \"a\", \"task\": \"noop\", \"every_s\": 5}, "
         "{\"name\": \"b\", \"task\": \"noop\", \"every_s\": 0}]}",
         "schedules[1] \"b\": every_s: must be an integer between 1 and 31536000 (seconds).",
         "schedules[1].every_s"},
        {"{\"schedules\": [{\"name\": \"b\", \"task\": \"noop\", \"every_s\": \"60\"}]}",
         "schedules[0] \"b\": every_s: must be an integer", "schedules[0].every_s"},
        {"{\"schedules\": [{\"name\": \"b\", \"task\": \"noop\", \"every_s\": 1.5}]}",
         "schedules[0] \"b\": every_s: must be an integer", "schedules[0].every_s"},
        {"{\"schedules\": [{\"name\": \"n\", \"every_s\": 5}]}",
         "schedules[0] \"n\": task: This field is required.", "schedules[0].task"},
        {"{\"schedules\": [{\"name\": \"n\", \"task\": \"nope\", \"every_s\": 5}]}",
         "schedules[0] \"n\": task: unknown task \"nope\".", "schedules[0].task"},
        {"{\"schedules\": [{\"name\": \"n\", \"task\": \"no op\", \"every_s\": 5}]}",
         "schedules[0] \"n\": task: must be 1-128 characters", "schedules[0].task"},
        {"{\"schedules\": [{\"task\": \"noop\", \"every_s\": 5}]}",
         "schedules[0]: name: This field is required.", "schedules[0].name"},
        {"{\"schedules\": [{\"name\": \"a b\", \"task\": \"noop\", \"every_s\": 5}]}",
         "schedules[0]: name: must be 1-64 characters", "schedules[0].name"},
        {"{\"schedules\": [{\"name\": \"n\", \"task\": \"noop\", \"evry_s\": 5}]}",
         "schedules[0] \"n\": evry_s: unknown member (allowed: name, task, cron, every_s, queue, "
         "args, enabled).",
         "schedules[0].evry_s"},
        {"{\"schedules\": [{\"name\": \"n\", \"task\": \"noop\", \"every_s\": 5, "
         "\"queue\": \"Default\"}]}",
         "schedules[0] \"n\": queue: must be 1-64 characters of a-z 0-9 _ . -",
         "schedules[0].queue"},
        {"{\"schedules\": [{\"name\": \"n\", \"task\": \"noop\", \"every_s\": 5, \"args\": []}]}",
         "schedules[0] \"n\": args: must be a JSON object.", "schedules[0].args"},
        {"{\"schedules\": [{\"name\": \"n\", \"task\": \"noop\", \"every_s\": 5, "
         "\"enabled\": \"yes\"}]}",
         "schedules[0] \"n\": enabled: must be true or false.", "schedules[0].enabled"},
        {"{\"schedules\": [{\"name\": \"n\", \"task\": \"noop\", \"every_s\": 5}, "
         "{\"name\": \"n\", \"task\": \"noop\", \"every_s\": 6}]}",
         "schedules[1] \"n\": name: repeats the name of schedules[0].", "schedules[1].name"},
        {"{\"schedules\": [7]}", "schedules[0]: schedule: must be a JSON object.",
         "schedules[0].schedule"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        bad_file(f, cases[i].json, names, ADI_INVALID, cases[i].want, cases[i].field);

    /* A missing file, and settings that are not the file's. */
    unlink(f->file);
    opts_t o = {.file = f->file};
    tr_scheduler_t *s = NULL;
    adi_error_t err;
    assert_int_equal(try_start(f, "replica-a", &o, &s, &err), ADI_NOT_FOUND);
    assert_non_null(strstr(err.message, "cannot be read"));
    o.file = NULL;
    assert_int_equal(try_start(f, "", &o, &s, &err), ADI_INVALID);
    assert_non_null(strstr(err.message, "holder id"));
    o.lease_ms = 100;
    assert_int_equal(try_start(f, "replica-a", &o, &s, &err), ADI_INVALID);
    assert_string_equal(err.message, "SCHEDULER_LEASE_MS must be at least 300.");
    assert_null(s);

    /* An empty list and disabled entries are fine. */
    write_file(f, "{\"schedules\": [{\"name\": \"n\", \"task\": \"noop\", \"every_s\": 5, "
                  "\"enabled\": false}]}");
    opts_t ok = {.file = f->file};
    s = start(f, "replica-a", &ok);
    tr_sched_tick_t t = tick(s);
    assert_int_equal(t.schedules, 0);
    tr_scheduler_stop(s);
    fx_free(f);
}

/* Waits (blocking reads, up to 60 s) for `want` more tasks on the fixture's stream. */
static void wait_tasks(fx_t *f, char after[ADI_BUS_ID_MAX], seen_t *out, size_t want)
{
    size_t got = 0;
    for (int i = 0; i < 60 && got < want; i++)
        got += read_tasks(f, f->stream, after, 1000, out + got, want - got);
    assert_int_equal(got, want);
}

static void test_threaded_replicas_leader_crash(void **state)
{
    (void)state;
    fx_t *f = fx_new(0);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"schedules\": [{\"name\": \"m\", \"task\": \"noop\", \"every_s\": 60, "
             "\"queue\": \"%s\"}]}",
             f->queue);
    write_file(f, json);
    /* The schedule last ran at T0; S1 = T0 + 60 s is due. */
    adi_pool_t pool;
    adi_pool_init(&pool);
    char last[96];
    snprintf(last, sizeof(last), "%s" ADI_KEY_SCHED_LAST_FMT, f->prefix, "m");
    char t0[24];
    snprintf(t0, sizeof(t0), "%lld", T0);
    const char *set[3] = {"SET", last, t0};
    cmd(f, &pool, 3, set);
    set_now(f, T0 + 60000 + 500);

    opts_t o = {.file = f->file, .threaded = true, .lease_ms = 3000, .keep_lease = true};
    tr_scheduler_t *r[3];
    r[0] = start(f, "replica-1", &o);
    r[1] = start(f, "replica-2", &o);
    r[2] = start(f, "replica-3", &o);
    char after[ADI_BUS_ID_MAX] = "0-0";
    seen_t seen[4];
    wait_tasks(f, after, seen, 1);
    expect_request(&seen[0], "m", T0 + 60000);

    int leaders = 0;
    int li = -1;
    for (int i = 0; i < 3; i++) {
        if (tr_scheduler_is_leader(r[i])) {
            leaders++;
            li = i;
        }
    }
    assert_int_equal(leaders, 1);
    /* The leader crashes (its lease stays until it expires); S2 becomes due. */
    tr_scheduler_stop(r[li]);
    r[li] = NULL;
    set_now(f, T0 + 120000 + 500);
    wait_tasks(f, after, seen + 1, 1);
    expect_request(&seen[1], "m", T0 + 120000);
    for (int i = 0; i < 3; i++)
        tr_scheduler_stop(r[i]);
    /* Each slot exactly once, across all replicas. */
    assert_int_equal(xlen(f, f->stream), 2);
    adi_pool_dispose(&pool);
    fx_free(f);
}

int main(void)
{
    adi_log_init("task-runner", ADI_LOG_WARN);
    adi_time_zone_set("America/Jamaica");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_leader),
        cmocka_unit_test(test_failover_fires_due_slot_once),
        cmocka_unit_test(test_stale_fence_refused),
        cmocka_unit_test(test_every_s),
        cmocka_unit_test(test_catch_up_cap),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_threaded_replicas_leader_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
