/* SPDX-License-Identifier: MIT */
/*
 * The task runner's settings, its shared state (struct tr_app, what a task may read through
 * ctx->app) and the queue runtime: worker threads that take tasks from the tasks:<queue> streams
 * and run them through a task table (task.h), plus one keeper thread per runtime that keeps the
 * claims of running tasks fresh, moves due delayed tasks onto their streams and updates the
 * queue gauges.
 *
 * Guarantees (issue 6):
 *   - a task is acknowledged only in the script that durably records its outcome (SUCCESS,
 *     RETRY with its delayed copy, or FAILURE with its dead letter), so a crash loses nothing;
 *   - the keeper re-claims the entry of every running task every visibility/3, so XAUTOCLAIM by
 *     other workers (min idle = the visibility timeout) takes only the tasks of dead workers; an
 *     outcome is recorded only while this worker still owns the entry (checked in the script);
 *   - retries wait in the delayed set (full-jitter exponential backoff), scheduled atomically
 *     with the acknowledgement; after the last attempt the task goes to the dead-letter stream;
 *   - stopping takes no new task, lets running ones finish, and hands back (re-queues at once)
 *     what has not finished by the deadline.
 * The runtime takes its task table as an argument, so tests run it with tables of their own;
 * the service passes tr_tasks (tasks/tasks.c).
 */
#ifndef ADI_TASK_RUNNER_H
#define ADI_TASK_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "adi/ops.h"
#include "adi/svc.h"
#include "adi/tasks.h"
#include "task.h"

/** Most queues one runtime serves. */
#define TR_QUEUES_MAX 16
/** Most worker threads of one runtime. */
#define TR_WORKERS_MAX 64

/** The task runner's own settings (environment, rows in task_runner.c). */
typedef struct tr_cfg {
    const char *task_queues;    /* TASK_QUEUES: comma-separated queues served, "default" */
    int64_t task_workers;       /* TASK_WORKERS: task worker threads per replica */
    int64_t visibility_ms;      /* TASK_VISIBILITY_MS: a silent claim this old is taken over */
    int64_t max_attempts;       /* TASK_MAX_ATTEMPTS: default when neither task nor row says */
    int64_t time_limit_ms;      /* TASK_TIME_LIMIT_MS: default when neither task nor row says */
    int64_t retry_base_ms;      /* TASK_RETRY_BASE_MS: first retry's backoff cap */
    int64_t retry_max_ms;       /* TASK_RETRY_MAX_MS: largest backoff cap */
    int64_t result_ttl_s;       /* TASK_RESULT_TTL_S: TTL of every task state write */
    const char *smtp_url;       /* SMTP_URL: smtp(s)://[user:password@]host[:port], "" = log */
    const char *smtp_from;      /* SMTP_FROM: sender of the invitation mail */
    int64_t smtp_timeout_ms;    /* SMTP_TIMEOUT_MS: bound of one mail delivery */
    const char *app_base_url;   /* APP_BASE_URL: base of the invitation's accept link */
    bool scheduler_enabled;     /* SCHEDULER_ENABLED: run the (HA) scheduler in this replica */
    const char *schedule_file;  /* SCHEDULE_FILE: JSON schedules, "" = the defaults */
    int64_t scheduler_lease_ms; /* SCHEDULER_LEASE_MS: the leader's lease */
} tr_cfg_t;

/** The queue runtime (workers and keeper). */
typedef struct tr_runtime tr_runtime_t;

/** The service's state: ctx->app of a task. Built by tr_init, freed by tr_fini. */
struct tr_app {
    tr_cfg_t cfg;                                        /* the settings above */
    adi_svc_config_t common;                             /* REDIS_URL, CONSUMER_NAME, ... */
    char consumer_base[128];                             /* CONSUMER_NAME or hostname-pid */
    char queues[TR_QUEUES_MAX][ADI_TASKS_QUEUE_MAX + 1]; /* TASK_QUEUES, parsed */
    size_t nqueues;                                      /* entries of queues[] */
    adi_metrics_t *metrics;                              /* the service's metrics (tr_start) */
    tr_runtime_t *runtime;                               /* the workers, NULL before tr_start */
    void *scheduler;    /* the scheduler (tr_scheduler_t *), NULL when disabled or not built */
    int64_t stop_at_ms; /* monotonic time tr_stop was called, 0 before */
};

/** The settings rows (TASK_*, SMTP_*, APP_BASE_URL, SCHEDULER_*, SCHEDULE_FILE). */
extern const adi_cfg_row_t tr_cfg_rows[];
extern const size_t tr_ncfg_rows;

/** Fills `cfg` with the documented defaults. */
void tr_cfg_defaults(tr_cfg_t *cfg);

/**
 * Splits a comma-separated queue list (spaces around names ignored) into `out`.
 * Errors: ADI_INVALID when empty, a name is not 1-64 of [a-z0-9_.-], a name repeats, or there
 * are more than TR_QUEUES_MAX.
 */
adi_err tr_queues_parse(const char *list, char out[TR_QUEUES_MAX][ADI_TASKS_QUEUE_MAX + 1],
                        size_t *n, adi_error_t *err);

/**
 * The backoff before retry number attempt+1 (attempt = the run that just failed, 0-based):
 * full jitter, a value in [0, min(max_ms, base_ms * 2^attempt)] picked by `rnd` (uniform
 * random bits). Never negative, never overflows.
 */
int64_t tr_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint64_t rnd);

/** The row of task `name` in the NULL-terminated `tasks`, or NULL. */
const tr_task_def_t *tr_task_find(const tr_task_def_t *const *tasks, adi_str_t name);

/** What a runtime is built from. Strings and the table are borrowed for its whole life. */
typedef struct tr_runtime_config {
    const char *redis_url;             /* REDIS_URL */
    const char *const *queues;         /* queues served, in priority order */
    size_t nqueues;                    /* 1..TR_QUEUES_MAX */
    int workers;                       /* worker threads, 1..TR_WORKERS_MAX */
    int64_t visibility_ms;             /* claim idle time before others take a task over */
    int max_attempts;                  /* default attempts (>= 1) */
    int64_t time_limit_ms;             /* default time limit (>= 1) */
    int64_t retry_base_ms;             /* backoff base (>= 1) */
    int64_t retry_max_ms;              /* backoff cap (>= base) */
    int64_t result_ttl_s;              /* TTL of every state write (>= 1) */
    int64_t stream_maxlen;             /* MAXLEN ~ of XADDs, 0 = 100000 */
    const char *consumer_base;         /* consumer names are <consumer_base>-t<N> */
    const tr_task_def_t *const *tasks; /* NULL-terminated task table */
    const tr_app_t *app;               /* handed to tasks as ctx->app, may be NULL */
    adi_metrics_t *metrics;            /* where tasks are counted, may be NULL */
} tr_runtime_config_t;

/** Counters of one runtime (for tests and logs). */
typedef struct tr_runtime_stats {
    int64_t runs;        /* task functions called */
    int64_t succeeded;   /* SUCCESS recorded */
    int64_t retried;     /* RETRY recorded */
    int64_t failed;      /* FAILURE recorded (dead letters included) */
    int64_t lost;        /* outcomes not recorded: the claim had been taken over */
    int64_t reclaimed;   /* entries taken over from other consumers */
    int64_t sweeps;      /* reclaim sweeps (XAUTOCLAIM) run */
    int64_t heartbeats;  /* claims refreshed by the keeper */
    int64_t handed_back; /* entries re-queued when stopping */
    int64_t moved;       /* delayed tasks moved onto their streams by this keeper */
} tr_runtime_stats_t;

/**
 * Checks `cfg` and builds a runtime (one Redis client per worker and one for the keeper; no I/O
 * yet). On success `*out` is the caller's (tr_runtime_free).
 * Errors: ADI_INVALID (a bad value, naming it; a bad REDIS_URL).
 */
adi_err tr_runtime_new(const tr_runtime_config_t *cfg, tr_runtime_t **out, adi_error_t *err);

/**
 * Starts the workers and the keeper. Each connects by itself and retries with backoff while
 * Redis is down. Errors: ADI_INTERNAL (a thread could not be created; nothing is left running,
 * or already started).
 */
adi_err tr_runtime_start(tr_runtime_t *rt, adi_error_t *err);

/** Asks the workers to take no new task (running ones go on). Never blocks; idempotent. */
void tr_runtime_stop(tr_runtime_t *rt);

/**
 * After tr_runtime_stop: waits until every worker has finished its task and left, or until the
 * monotonic time `deadline_ms` (adi_mono_ms). Tasks still running then are handed back: their
 * entries go back on their streams at once for another worker (each in one script, only while
 * this worker still owns them), and their outcome, whenever the function returns, is discarded.
 * Then stops the keeper. Returns true when every worker had finished.
 */
bool tr_runtime_drain(tr_runtime_t *rt, int64_t deadline_ms);

/** Copies the counters. */
void tr_runtime_stats(const tr_runtime_t *rt, tr_runtime_stats_t *out);

/**
 * Stops (if needed), joins every thread (waiting for task functions still running: a caller that
 * cannot wait exits the process instead) and frees `rt`. NULL is a no-op.
 */
void tr_runtime_free(tr_runtime_t *rt);

/* ---- the service's hooks (adi_svc_def_t) ------------------------------------------------- */

/** init: parses TASK_QUEUES and checks the settings, builds the state. No thread starts here. */
adi_err tr_init(const adi_svc_config_t *common, void *cfg, void **app, adi_error_t *err);

/** start: starts the workers (table tr_tasks) and, when enabled, the scheduler. */
adi_err tr_start(void *app, adi_metrics_t *metrics, adi_error_t *err);

/** stop (SIGTERM): the workers take no new task; the grace period starts now. */
void tr_stop(void *app);

/**
 * fini: drains the workers until SHUTDOWN_GRACE_MS after tr_stop (handing back what is still
 * running; the process then exits 1 as libs/svc does), stops the scheduler, frees the state.
 */
void tr_fini(void *app);

#endif
