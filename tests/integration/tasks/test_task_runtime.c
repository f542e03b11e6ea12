/* SPDX-License-Identifier: MIT */
/*
 * The task runner's queue runtime (services/task-runner/runtime.c) in-process against the
 * harness Redis, with a task table of this test's own, and libs/tasks (enqueue, state, mover,
 * dead letters) as producers and operators use it. Every test works on a queue named uniquely
 * for it in Redis database RDB, so tests and a running suite never meet.
 *
 * Covered: success with result, state transitions and TTL, metrics; retries with backoff until
 * success; the RETRY state; final failure to the dead-letter stream and requeueing it; permanent
 * failure; unknown task; bad args; entries that are not tasks; delayed tasks not run before they
 * are due; uniqueness; the time limit; a long task never run twice while its worker lives (the
 * heartbeat) although other workers sweep; a worker process killed mid-task (another worker runs
 * it once after the visibility timeout); draining (the running task finishes, the waiting one
 * stays queued) and handing back what outlives the drain deadline.
 *
 * Waiting is on conditions (a task's state, a runtime's counters), polled with a bound, never on
 * a fixed sleep. The scenario tasks that take time (a long task, one that overruns its limit)
 * are themselves the thing under test.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adi/keys.h"
#include "adi/ops.h"
#include "adi/tasks.h"
#include "itest.h"
#include "task_runner.h"

#define RDB     13
#define WAIT_MS 60000

/* ---- the test's task table ---------------------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static atomic_int runs_ok, runs_flaky, runs_fail, runs_perm, runs_args, runs_slow, runs_over;
static int slow_started;     /* runs of t_slow that began (under mu) */
static const void *slow_app; /* ctx->app of the last t_slow run (under mu) */
static bool slow_release;    /* t_slow may return (under mu) */
static int started_fd = -1;  /* in a forked child: t_slow reports here, then blocks */

static adi_err t_ok(tr_task_ctx_t *ctx, const adi_empty *args, adi_error_t *err)
{
    (void)args, (void)err;
    atomic_fetch_add(&runs_ok, 1);
    adi_buf_append_str(ctx->result, "{\"ok\":true}");
    return ADI_OK;
}
TR_TASK(row_ok, "t_ok", adi_empty, t_ok, 0, 0);

/* Fails (retryable) on its first two attempts. */
static adi_err t_flaky(tr_task_ctx_t *ctx, const adi_empty *args, adi_error_t *err)
{
    (void)args;
    atomic_fetch_add(&runs_flaky, 1);
    if (ctx->task->attempt < 2)
        return adi_error_set(err, ADI_UNAVAILABLE, "Not yet (attempt %d).",
                             (int)ctx->task->attempt);
    return ADI_OK;
}
TR_TASK(row_flaky, "t_flaky", adi_empty, t_flaky, 5, 0);

static adi_err t_fail(tr_task_ctx_t *ctx, const adi_empty *args, adi_error_t *err)
{
    (void)ctx, (void)args;
    atomic_fetch_add(&runs_fail, 1);
    return adi_error_set(err, ADI_INTERNAL, "Boom.");
}
TR_TASK(row_fail, "t_fail", adi_empty, t_fail, 3, 0);

static adi_err t_perm(tr_task_ctx_t *ctx, const adi_empty *args, adi_error_t *err)
{
    (void)ctx, (void)args;
    atomic_fetch_add(&runs_perm, 1);
    return adi_error_set(err, ADI_NOT_FOUND, "No such thing.");
}
TR_TASK(row_perm, "t_perm", adi_empty, t_perm, 5, 0);

static adi_err t_args(tr_task_ctx_t *ctx, const task_send_invitation_args *args, adi_error_t *err)
{
    (void)err;
    atomic_fetch_add(&runs_args, 1);
    adi_buf_printf(ctx->result, "{\"invitation_id\":\"%.*s\"}", (int)args->invitation_id.len,
                   args->invitation_id.ptr);
    return ADI_OK;
}
TR_TASK(row_args, "t_args", task_send_invitation_args, t_args, 0, 0);

/* A long task: runs until the test releases it (in a forked child: until it is killed). */
static adi_err t_slow(tr_task_ctx_t *ctx, const adi_empty *args, adi_error_t *err)
{
    (void)args, (void)err;
    atomic_fetch_add(&runs_slow, 1);
    if (started_fd >= 0) {
        ssize_t n = write(started_fd, "s", 1);
        (void)n;
        for (;;)
            pause(); /* the parent kills this process */
    }
    pthread_mutex_lock(&mu);
    slow_started++;
    slow_app = ctx->app;
    pthread_cond_broadcast(&cv);
    while (!slow_release)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return ADI_OK;
}
TR_TASK(row_slow, "t_slow", adi_empty, t_slow, 1, 0);

/* Overruns its 100 ms limit (it waits past its deadline), then claims success. */
static adi_err t_over(tr_task_ctx_t *ctx, const adi_empty *args, adi_error_t *err)
{
    (void)args, (void)err;
    atomic_fetch_add(&runs_over, 1);
    pthread_mutex_lock(&mu);
    while (adi_now_ms() <= ctx->deadline_ms + 50) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cv, &mu, &ts);
    }
    pthread_mutex_unlock(&mu);
    return ADI_OK;
}
TR_TASK(row_over, "t_over", adi_empty, t_over, 2, 100);

static const tr_task_def_t *const table[] = {&row_ok,   &row_flaky, &row_fail, &row_perm,
                                             &row_args, &row_slow,  &row_over, NULL};

/* ---- fixture ------------------------------------------------------------------------------ */

typedef struct fx {
    char redis_url[256];   /* REDIS_URL with database RDB */
    char queue[48];        /* this test's queue */
    char stream[96];       /* tasks:<queue> */
    char delayed[112];     /* tasks:<queue>:delayed */
    char dead[112];        /* tasks:<queue>:dead */
    const char *queues[1]; /* {queue} for the runtime */
    adi_bus_t *bus;        /* the test's client */
    char ids[32][37];      /* tasks enqueued (their state keys are deleted at the end) */
    int nids;              /* used entries of ids[] */
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->redis_url, sizeof(f->redis_url), "%s/%d", itest_env("REDIS_URL"), RDB);
    itest_unique(f->queue, sizeof(f->queue), "tq");
    snprintf(f->stream, sizeof(f->stream), ADI_KEY_TASKS_FMT, f->queue);
    snprintf(f->delayed, sizeof(f->delayed), ADI_KEY_TASKS_DELAYED_FMT, f->queue);
    snprintf(f->dead, sizeof(f->dead), ADI_KEY_TASKS_DEAD_FMT, f->queue);
    f->queues[0] = f->queue;
    adi_bus_opts_t o = {.url = f->redis_url};
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_bus_new(&o, &f->bus, &err), ADI_OK);
    atomic_store(&runs_ok, 0);
    atomic_store(&runs_flaky, 0);
    atomic_store(&runs_fail, 0);
    atomic_store(&runs_perm, 0);
    atomic_store(&runs_args, 0);
    atomic_store(&runs_slow, 0);
    atomic_store(&runs_over, 0);
    pthread_mutex_lock(&mu);
    slow_started = 0;
    slow_app = NULL;
    slow_release = false;
    pthread_mutex_unlock(&mu);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    itest_redis_cleanup(RDB, f->queue);
    for (int i = 0; i < f->nids; i++) {
        char key[64];
        snprintf(key, sizeof(key), ADI_KEY_TASK_STATE_FMT, f->ids[i]);
        const char *del[2] = {"DEL", key};
        itest_redis_int(RDB, 2, del);
    }
    adi_bus_free(f->bus);
    free(f);
    return 0;
}

/* A runtime on the fixture's queue (started), consumer names <queue>-<name>-t<N>. */
static tr_runtime_t *runtime(fx_t *f, const char *name, int workers, int64_t visibility_ms,
                             int64_t retry_base_ms, const tr_app_t *app, adi_metrics_t *m)
{
    static char bases[8][96];
    static int next;
    char *base = bases[next++ % 8];
    snprintf(base, 96, "%s-%s", f->queue, name);
    tr_runtime_config_t c = {
        .redis_url = f->redis_url,
        .queues = f->queues,
        .nqueues = 1,
        .workers = workers,
        .visibility_ms = visibility_ms,
        .max_attempts = 5,
        .time_limit_ms = 30000,
        .retry_base_ms = retry_base_ms,
        .retry_max_ms = retry_base_ms * 4,
        .result_ttl_s = 600,
        .consumer_base = base,
        .tasks = table,
        .app = app,
        .metrics = m,
    };
    tr_runtime_t *rt = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (tr_runtime_new(&c, &rt, &err) != ADI_OK)
        fail_msg("tr_runtime_new: %s", err.message);
    assert_int_equal(tr_runtime_start(rt, &err), ADI_OK);
    return rt;
}

/* Enqueues task `name` on the fixture's queue; returns its id (kept for cleanup). */
static const char *enqueue(fx_t *f, adi_task_spec_t spec)
{
    spec.queue = f->queue;
    assert_true(f->nids < 32);
    char *id = f->ids[f->nids++];
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_tasks_enqueue(f->bus, &spec, id, &err) != ADI_OK)
        fail_msg("enqueue %s: %s", spec.name, err.message);
    return id;
}

static adi_str_t mp_args_invitation(adi_pool_t *pool, const char *uuid)
{
    task_send_invitation_args a = {.invitation_id = adi_str_c(uuid)};
    return adi_proto_encode_pool(&task_send_invitation_args__desc, &a, pool);
}

/* Waits until task `id` is in state `want`; its state ends up in `out` (pool memory). */
static void wait_state(fx_t *f, const char *id, const char *want, adi_pool_t *pool,
                       adi_task_state_t *out)
{
    int64_t until = adi_mono_ms() + WAIT_MS;
    for (;;) {
        adi_error_t err;
        adi_error_clear(&err);
        adi_err rc = adi_tasks_state_get(f->bus, id, pool, out, &err);
        if (rc == ADI_OK && adi_str_eq_c(out->state, want))
            return;
        if (adi_mono_ms() > until)
            fail_msg("task %s never reached %s (now %.*s)", id, want,
                     rc == ADI_OK ? (int)out->state.len : 4,
                     rc == ADI_OK ? out->state.ptr : "none");
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Waits until pred(arg) holds, polling with a bound. */
static void wait_for(bool (*pred)(void *), void *arg, const char *what)
{
    int64_t until = adi_mono_ms() + WAIT_MS;
    while (!pred(arg)) {
        if (adi_mono_ms() > until)
            fail_msg("timed out waiting for %s", what);
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static bool slow_has_started(void *arg)
{
    int want = *(int *)arg;
    pthread_mutex_lock(&mu);
    bool ok = slow_started >= want;
    pthread_mutex_unlock(&mu);
    return ok;
}

static void release_slow(void)
{
    pthread_mutex_lock(&mu);
    slow_release = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static long long redis_int(const char *cmd, const char *key)
{
    const char *argv[2] = {cmd, key};
    return itest_redis_int(RDB, 2, argv);
}

static adi_task_queue_stats_t stats_of(fx_t *f)
{
    adi_task_queue_stats_t st;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_tasks_queue_stats(f->bus, f->queue, &st, &err), ADI_OK);
    return st;
}

static void stop_runtime(tr_runtime_t *rt)
{
    assert_true(tr_runtime_drain(rt, adi_mono_ms() + WAIT_MS));
    tr_runtime_free(rt);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_success_state_ttl_metrics(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    const char *id = enqueue(f, (adi_task_spec_t){.name = "t_ok", .request_id = "req-1"});
    adi_task_state_t st;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_tasks_state_get(f->bus, id, &pool, &st, &err), ADI_OK);
    assert_true(adi_str_eq_c(st.state, "PENDING"));
    assert_true(adi_str_eq_c(st.name, "t_ok"));
    assert_true(adi_str_eq_c(st.queue, f->queue));
    assert_true(st.enqueued_at_ms > 0);
    assert_true(st.ttl_s > 0);

    adi_metrics_t *m = adi_metrics_new("itest");
    tr_runtime_t *rt = runtime(f, "a", 2, 30000, 50, NULL, m);
    wait_state(f, id, "SUCCESS", &pool, &st);
    assert_true(adi_str_eq_c(st.result, "{\"ok\":true}"));
    assert_null(st.error.ptr);
    assert_int_equal(st.attempt, 0);
    assert_true(st.started_at_ms >= st.enqueued_at_ms);
    assert_true(st.finished_at_ms >= st.started_at_ms);
    assert_true(st.ttl_s > 0 && st.ttl_s <= 600);
    assert_non_null(st.worker.ptr);
    assert_non_null(strstr(st.worker.ptr, f->queue));
    adi_task_queue_stats_t qs = stats_of(f);
    assert_int_equal(qs.length, 0); /* acknowledged entries are deleted */
    assert_int_equal(qs.pending, 0);
    assert_int_equal(qs.dead, 0);
    stop_runtime(rt);
    assert_int_equal(atomic_load(&runs_ok), 1);

    adi_buf_t b;
    adi_buf_init(&b);
    adi_metrics_render(m, &b);
    assert_non_null(strstr(b.data, "adi_tasks_total{service=\"itest\",task=\"t_ok\","
                                   "outcome=\"success\"} 1"));
    adi_buf_dispose(&b);
    adi_metrics_free(m);
    adi_pool_dispose(&pool);
}

static void test_retry_then_success(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    tr_runtime_t *rt = runtime(f, "a", 2, 30000, 20, NULL, NULL);
    const char *id = enqueue(f, (adi_task_spec_t){.name = "t_flaky"});
    adi_task_state_t st;
    wait_state(f, id, "SUCCESS", &pool, &st);
    assert_int_equal(st.attempt, 2);
    assert_int_equal(atomic_load(&runs_flaky), 3);
    tr_runtime_stats_t rs;
    tr_runtime_stats(rt, &rs);
    assert_int_equal(rs.retried, 2);
    assert_int_equal(rs.succeeded, 1);
    assert_null(st.error.ptr); /* a success clears the last attempt's error */
    adi_task_queue_stats_t qs = stats_of(f);
    assert_int_equal(qs.delayed, 0);
    assert_int_equal(qs.length, 0);
    stop_runtime(rt);
    adi_pool_dispose(&pool);
}

static void test_retry_state(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    /* Backoff caps of a minute: the retry waits in the delayed set. */
    tr_runtime_t *rt = runtime(f, "a", 1, 30000, 60000, NULL, NULL);
    const char *id = enqueue(f, (adi_task_spec_t){.name = "t_fail"});
    adi_task_state_t st;
    wait_state(f, id, "RETRY", &pool, &st);
    assert_true(adi_str_eq_c(st.error, "Boom."));
    assert_true(st.attempt >= 1);
    assert_true(st.due_at_ms > 0);
    stop_runtime(rt);
    adi_task_queue_stats_t qs = stats_of(f);
    assert_int_equal(qs.pending, 0);
    assert_int_equal(qs.delayed + qs.length, 1); /* waiting for its retry, nowhere else */
    adi_pool_dispose(&pool);
}

static bool failed_six_times(void *arg)
{
    (void)arg;
    return atomic_load(&runs_fail) >= 6;
}

static void test_dead_letter_and_requeue(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    tr_runtime_t *rt = runtime(f, "a", 2, 30000, 10, NULL, NULL);
    const char *id = enqueue(f, (adi_task_spec_t){.name = "t_fail"});
    adi_task_state_t st;
    wait_state(f, id, "FAILURE", &pool, &st);
    assert_true(adi_str_eq_c(st.error, "Boom."));
    assert_int_equal(st.attempt, 2);
    assert_int_equal(atomic_load(&runs_fail), 3);
    adi_task_queue_stats_t qs = stats_of(f);
    assert_int_equal(qs.dead, 1);
    assert_int_equal(qs.length, 0);
    assert_int_equal(qs.delayed, 0);

    /* The dead letter holds the task (its last attempt) and the error. */
    adi_bus_value_t *v = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    const char *range[4] = {"XRANGE", f->dead, "-", "+"};
    assert_int_equal(adi_bus_command(f->bus, 0, 4, range, NULL, &pool, &v, &err), ADI_OK);
    assert_int_equal(v->n, 1);
    const adi_bus_value_t *kv = &v->items[0].items[1];
    assert_int_equal(kv->n, 4);
    assert_true(adi_str_eq_c(kv->items[0].s, "m"));
    assert_true(adi_str_eq_c(kv->items[2].s, "error"));
    assert_true(adi_str_eq_c(kv->items[3].s, "Boom."));
    task_msg *t = adi_pool_alloc(&pool, sizeof(*t));
    assert_int_equal(
        adi_proto_decode(&task_msg__desc, kv->items[1].s.ptr, kv->items[1].s.len, &pool, t, &err),
        ADI_OK);
    assert_true(adi_str_eq_c(t->id, id));
    assert_int_equal(t->attempt, 2);

    /* Requeued: attempts start over, and it dies again after three more runs. */
    int64_t moved = 0, skipped = 0;
    assert_int_equal(adi_tasks_requeue_dead(f->bus, f->queue, 10, &moved, &skipped, &err), ADI_OK);
    assert_int_equal(moved, 1);
    assert_int_equal(skipped, 0);
    wait_for(failed_six_times, NULL, "three more runs of the requeued task");
    wait_state(f, id, "FAILURE", &pool, &st);
    stop_runtime(rt);
    assert_int_equal(atomic_load(&runs_fail), 6);
    qs = stats_of(f);
    assert_int_equal(qs.dead, 1);
    adi_pool_dispose(&pool);
}

static void test_permanent_unknown_bad_args(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    tr_runtime_t *rt = runtime(f, "a", 2, 30000, 10, NULL, NULL);
    const char *perm = enqueue(f, (adi_task_spec_t){.name = "t_perm"});
    const char *unknown = enqueue(f, (adi_task_spec_t){.name = "no_such_task"});
    const char *noargs = enqueue(f, (adi_task_spec_t){.name = "t_args"});
    const char *good =
        enqueue(f, (adi_task_spec_t){
                       .name = "t_args",
                       .args = mp_args_invitation(&pool, "6f1c1d7e-2b1a-4c55-9a43-7d1b9b2c0e11")});
    adi_task_state_t st;
    wait_state(f, perm, "FAILURE", &pool, &st);
    assert_true(adi_str_eq_c(st.error, "No such thing."));
    assert_int_equal(st.attempt, 0);
    wait_state(f, unknown, "FAILURE", &pool, &st);
    assert_true(adi_str_eq_c(st.error, "Unknown task."));
    wait_state(f, noargs, "FAILURE", &pool, &st);
    assert_non_null(strstr(st.error.ptr, "Invalid arguments"));
    assert_non_null(strstr(st.error.ptr, "invitation_id"));
    wait_state(f, good, "SUCCESS", &pool, &st);
    assert_true(
        adi_str_eq_c(st.result, "{\"invitation_id\":\"6f1c1d7e-2b1a-4c55-9a43-7d1b9b2c0e11\"}"));
    stop_runtime(rt);
    assert_int_equal(atomic_load(&runs_perm), 1);
    assert_int_equal(atomic_load(&runs_args), 1);
    adi_task_queue_stats_t qs = stats_of(f);
    assert_int_equal(qs.dead, 3);
    assert_int_equal(qs.length, 0);
    adi_pool_dispose(&pool);
}

static void test_entries_that_are_not_tasks(void **state)
{
    fx_t *f = *state;
    const char *garbage[5] = {"XADD", f->stream, "*", "m", "\xc1not msgpack"};
    const char *nofield[5] = {"XADD", f->stream, "*", "x", "y"};
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_bus_value_t *v = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_bus_command(f->bus, 0, 5, garbage, NULL, &pool, &v, &err), ADI_OK);
    assert_int_equal(adi_bus_command(f->bus, 0, 5, nofield, NULL, &pool, &v, &err), ADI_OK);
    const char *ok = enqueue(f, (adi_task_spec_t){.name = "t_ok"});
    tr_runtime_t *rt = runtime(f, "a", 1, 30000, 10, NULL, NULL);
    adi_task_state_t st;
    wait_state(f, ok, "SUCCESS", &pool, &st); /* served after both bad entries */
    stop_runtime(rt);
    adi_task_queue_stats_t qs = stats_of(f);
    assert_int_equal(qs.dead, 2);
    assert_int_equal(qs.length, 0);
    const char *range[4] = {"XRANGE", f->dead, "-", "+"};
    assert_int_equal(adi_bus_command(f->bus, 0, 4, range, NULL, &pool, &v, &err), ADI_OK);
    assert_int_equal(v->n, 2);
    assert_non_null(strstr(v->items[0].items[1].items[3].s.ptr, "Malformed task"));
    assert_true(adi_str_eq_c(v->items[1].items[1].items[3].s, "Entry has no task."));
    adi_pool_dispose(&pool);
}

static void test_delayed_not_early(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    tr_runtime_t *rt = runtime(f, "a", 1, 30000, 10, NULL, NULL);
    const char *id = enqueue(f, (adi_task_spec_t){.name = "t_ok", .delay_ms = 700});
    adi_task_state_t st;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_tasks_state_get(f->bus, id, &pool, &st, &err), ADI_OK);
    int64_t due = st.due_at_ms;
    assert_true(due >= st.enqueued_at_ms + 700);
    wait_state(f, id, "SUCCESS", &pool, &st);
    /* Both times come from Redis's clock (the mover's and the worker's scripts). */
    assert_true(st.started_at_ms >= due);
    stop_runtime(rt);
    adi_pool_dispose(&pool);
}

static void test_unique(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    const char *tenant = "0b7a9d5e-6c1f-4f8e-9d2a-3e4b5c6d7e8f";
    const char *first = enqueue(
        f, (adi_task_spec_t){
               .name = "t_ok", .unique = true, .tenant_id = tenant, .args = ADI_STR("\x80")});
    adi_task_spec_t again = {.queue = f->queue,
                             .name = "t_ok",
                             .unique = true,
                             .tenant_id = tenant,
                             .args = ADI_STR("\x80")};
    char holder[37];
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_tasks_enqueue(f->bus, &again, holder, &err), ADI_CONFLICT);
    assert_string_equal(holder, first);
    /* Another tenant's copy is another task. */
    const char *other =
        enqueue(f, (adi_task_spec_t){.name = "t_ok", .unique = true, .args = ADI_STR("\x80")});
    tr_runtime_t *rt = runtime(f, "a", 2, 30000, 10, NULL, NULL);
    adi_task_state_t st;
    wait_state(f, first, "SUCCESS", &pool, &st);
    wait_state(f, other, "SUCCESS", &pool, &st);
    stop_runtime(rt);
    /* Done: the lock is gone, a new copy may be queued. */
    enqueue(f, (adi_task_spec_t){
                   .name = "t_ok", .unique = true, .tenant_id = tenant, .args = ADI_STR("\x80")});
    assert_int_equal(atomic_load(&runs_ok), 2);
    char key[256];
    assert_true(adi_tasks_unique_key("t_ok", adi_str_c(tenant), ADI_STR("\x80"), key, sizeof(key)));
    const char *del[2] = {"DEL", key};
    assert_int_equal(itest_redis_int(RDB, 2, del), 1); /* held by the last copy */
    adi_pool_dispose(&pool);
}

static void test_bad_specs(void **state)
{
    fx_t *f = *state;
    char id[37];
    adi_error_t err;
    adi_task_spec_t bad[] = {
        {.queue = "Bad Queue", .name = "t_ok"},
        {.queue = f->queue, .name = ""},
        {.queue = f->queue, .name = "t_ok", .args = ADI_STR("\x91\x01")}, /* an array */
        {.queue = f->queue, .name = "t_ok", .args = ADI_STR("\x81")},     /* truncated */
        {.queue = f->queue, .name = "t_ok", .delay_ms = -1},
        {.queue = f->queue, .name = "t_ok", .max_attempts = 1001},
        {.queue = f->queue, .name = "t_ok", .tenant_id = "0123456789012345678901234567890123456"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        adi_error_clear(&err);
        assert_int_equal(adi_tasks_enqueue(f->bus, &bad[i], id, &err), ADI_INVALID);
        assert_true(err.nfields > 0);
    }
    assert_int_equal(redis_int("XLEN", f->stream), 0);
}

static void test_time_limit(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    tr_runtime_t *rt = runtime(f, "a", 1, 30000, 10, NULL, NULL);
    const char *id = enqueue(f, (adi_task_spec_t){.name = "t_over"});
    adi_task_state_t st;
    wait_state(f, id, "FAILURE", &pool, &st);
    assert_true(adi_str_eq_c(st.error, "Time limit exceeded."));
    assert_int_equal(st.attempt, 1);
    assert_int_equal(atomic_load(&runs_over), 2);
    stop_runtime(rt);
    adi_pool_dispose(&pool);
}

/* The long-task test: counters of the runtime that does not run the task. */
typedef struct hb_watch {
    tr_runtime_t *owner, *other;    /* who runs the task, who sweeps */
    int64_t owner_hb, other_sweeps; /* counters when the watch began */
} hb_watch_t;

static bool owner_beat_thrice(void *arg)
{
    hb_watch_t *h = arg;
    tr_runtime_stats_t s;
    tr_runtime_stats(h->owner, &s);
    return s.heartbeats >= h->owner_hb + 4;
}

static bool other_swept(void *arg)
{
    hb_watch_t *h = arg;
    tr_runtime_stats_t s;
    tr_runtime_stats(h->other, &s);
    return s.sweeps >= h->other_sweeps + 4;
}

static void test_long_task_not_rerun_while_alive(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    static tr_app_t app_a, app_b;
    tr_runtime_t *a = runtime(f, "a", 1, 1500, 10, &app_a, NULL);
    tr_runtime_t *b = runtime(f, "b", 1, 1500, 10, &app_b, NULL);
    const char *id = enqueue(f, (adi_task_spec_t){.name = "t_slow"});
    int one = 1;
    wait_for(slow_has_started, &one, "the long task to start");
    adi_task_state_t st;
    wait_state(f, id, "STARTED", &pool, &st);
    pthread_mutex_lock(&mu);
    bool in_a = slow_app == &app_a;
    pthread_mutex_unlock(&mu);
    hb_watch_t h = {.owner = in_a ? a : b, .other = in_a ? b : a};
    tr_runtime_stats_t s;
    tr_runtime_stats(h.owner, &s);
    h.owner_hb = s.heartbeats;
    /* Longer than the visibility timeout passes (4 heartbeats = 4/3 of it), then the other
       runtime sweeps several times: it must take nothing over. */
    wait_for(owner_beat_thrice, &h, "heartbeats of the running task");
    tr_runtime_stats(h.other, &s);
    h.other_sweeps = s.sweeps;
    wait_for(other_swept, &h, "sweeps of the other runtime");
    release_slow();
    wait_state(f, id, "SUCCESS", &pool, &st);
    stop_runtime(a);
    stop_runtime(b);
    assert_int_equal(atomic_load(&runs_slow), 1);
    pthread_mutex_lock(&mu);
    assert_int_equal(slow_started, 1);
    pthread_mutex_unlock(&mu);
    adi_pool_dispose(&pool);
}

static void test_killed_worker_rerun_once(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    const char *id = enqueue(f, (adi_task_spec_t){.name = "t_slow"});
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The victim: a runtime whose worker reports the task started, then blocks in it. */
        close(fds[0]);
        started_fd = fds[1];
        tr_runtime_t *victim = runtime(f, "victim", 1, 600, 10, NULL, NULL);
        (void)victim;
        for (;;)
            pause();
    }
    close(fds[1]);
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    assert_int_equal(poll(&p, 1, WAIT_MS), 1);
    char c = 0;
    assert_int_equal(read(fds[0], &c, 1), 1);
    close(fds[0]);
    adi_task_state_t st;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_tasks_state_get(f->bus, id, &pool, &st, &err), ADI_OK);
    assert_true(adi_str_eq_c(st.state, "STARTED"));
    assert_non_null(strstr(st.worker.ptr, "victim"));
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);

    /* The survivor takes the entry over after the visibility timeout and runs it once. */
    release_slow();
    tr_runtime_t *rt = runtime(f, "survivor", 2, 600, 10, NULL, NULL);
    wait_state(f, id, "SUCCESS", &pool, &st);
    assert_int_equal(st.attempt, 0); /* a takeover is not a retry */
    assert_non_null(strstr(st.worker.ptr, "survivor"));
    tr_runtime_stats_t rs;
    tr_runtime_stats(rt, &rs);
    stop_runtime(rt);
    assert_int_equal(rs.reclaimed, 1);
    assert_int_equal(rs.runs, 1);
    assert_int_equal(atomic_load(&runs_slow), 1); /* this process ran it once */
    adi_task_queue_stats_t qs = stats_of(f);
    assert_int_equal(qs.length, 0);
    assert_int_equal(qs.pending, 0);
    adi_pool_dispose(&pool);
}

static void test_drain_finishes_running(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    tr_runtime_t *rt = runtime(f, "a", 1, 30000, 10, NULL, NULL);
    const char *slow = enqueue(f, (adi_task_spec_t){.name = "t_slow"});
    const char *ok = enqueue(f, (adi_task_spec_t){.name = "t_ok"});
    int one = 1;
    wait_for(slow_has_started, &one, "the long task to start");
    tr_runtime_stop(rt);
    release_slow();
    assert_true(tr_runtime_drain(rt, adi_mono_ms() + WAIT_MS));
    adi_task_state_t st;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_tasks_state_get(f->bus, slow, &pool, &st, &err), ADI_OK);
    assert_true(adi_str_eq_c(st.state, "SUCCESS"));
    assert_int_equal(adi_tasks_state_get(f->bus, ok, &pool, &st, &err), ADI_OK);
    assert_true(adi_str_eq_c(st.state, "PENDING"));
    adi_task_queue_stats_t qs = stats_of(f);
    assert_int_equal(qs.length, 1);
    assert_int_equal(qs.pending, 0);
    adi_bus_group_info_t gi;
    assert_int_equal(adi_bus_group_info(f->bus, f->stream, ADI_TASKS_GROUP, &gi, &err), ADI_OK);
    assert_int_equal(gi.consumers, 0); /* it left the group */
    tr_runtime_free(rt);
    assert_int_equal(atomic_load(&runs_ok), 0);
    adi_pool_dispose(&pool);
}

static void test_drain_hands_back(void **state)
{
    fx_t *f = *state;
    adi_pool_t pool;
    adi_pool_init(&pool);
    tr_runtime_t *a = runtime(f, "a", 1, 30000, 10, NULL, NULL);
    const char *id = enqueue(f, (adi_task_spec_t){.name = "t_slow"});
    int one = 1;
    wait_for(slow_has_started, &one, "the long task to start");
    assert_false(tr_runtime_drain(a, adi_mono_ms() + 100));
    tr_runtime_stats_t rs;
    tr_runtime_stats(a, &rs);
    assert_int_equal(rs.handed_back, 1);
    adi_task_queue_stats_t qs = stats_of(f);
    assert_int_equal(qs.length, 1); /* back on the stream, for anyone */
    assert_int_equal(qs.pending, 0);
    adi_task_state_t st;
    adi_error_t err;
    adi_error_clear(&err);
    assert_int_equal(adi_tasks_state_get(f->bus, id, &pool, &st, &err), ADI_OK);
    assert_true(adi_str_eq_c(st.state, "PENDING"));

    release_slow(); /* the abandoned run returns now; its outcome is discarded */
    tr_runtime_t *b = runtime(f, "b", 1, 30000, 10, NULL, NULL);
    wait_state(f, id, "SUCCESS", &pool, &st);
    assert_non_null(strstr(st.worker.ptr, "-b-"));
    tr_runtime_free(a);
    stop_runtime(b);
    adi_pool_dispose(&pool);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success_state_ttl_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_and_requeue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_unknown_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entries_that_are_not_tasks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delayed_not_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_specs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_task_not_rerun_while_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_worker_rerun_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_finishes_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_hands_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
