/* SPDX-License-Identifier: MIT */
/*
 * The task runner's task table: what a background task is to the workers that run it. A task is
 * a task_msg on tasks:<queue> (proto/tasks.def); its `name` selects a row of the table below, its
 * `args` (a msgpack map) are decoded and checked against the row's message descriptor before the
 * task function runs, so a task function never touches msgpack or Redis commands itself.
 *
 * Outcome of a task function:
 *   ADI_OK                                  SUCCESS (result = ctx->result's JSON text, if any)
 *   ADI_INVALID, ADI_NOT_FOUND, ADI_FORBIDDEN, ADI_CONFLICT
 *                                           permanent: FAILURE at once, to the dead-letter stream
 *   anything else (ADI_UNAVAILABLE, ADI_TIMEOUT, ADI_INTERNAL, ...)
 *                                           retried with backoff until max_attempts, then FAILURE
 *                                           and the dead-letter stream
 * The error's message is stored as the task's `error` and logged: it must never hold a secret.
 */
#ifndef ADI_TASK_RUNNER_TASK_H
#define ADI_TASK_RUNNER_TASK_H

#include <stdint.h>

#include "adi/bus.h"
#include "adi/core.h"
#include "adi/log.h"
#include "adi/messages.h"

/** The task runner's settings and shared state a task may read (task_runner.h defines it). */
typedef struct tr_app tr_app_t;

/** What a running task gets. */
typedef struct tr_task_ctx {
    const tr_app_t *app;     /* settings (SMTP_URL, ...) and shared state */
    adi_bus_t *bus;          /* this worker's own Redis client: adi_bus_call, adi_bus_add */
    adi_pool_t *pool;        /* memory released when the task ends */
    const adi_logctx_t *log; /* log context carrying the task id, name and tenant */
    const task_msg *task;    /* the task (id, name, attempt, tenant_id, request_id, ...) */
    int64_t deadline_ms;     /* end of the task's time limit: no call may wait past it */
    adi_buf_t *result;       /* optional JSON text stored as the task's result on SUCCESS */
} tr_task_ctx_t;

/** A task function: `args` is the decoded args message of its row (NULL when it has none). */
typedef adi_err (*tr_task_fn)(tr_task_ctx_t *ctx, const void *args, adi_error_t *err);

/** One row of the task table. */
typedef struct tr_task_def {
    const char *name;           /* task name, e.g. "send_invitation_email" */
    const adi_msg_desc_t *args; /* descriptor args are decoded and checked with, or NULL */
    size_t args_size;           /* sizeof the args struct (0 when args is NULL) */
    tr_task_fn fn;              /* the task */
    int max_attempts;           /* default when the task_msg says 0 (>= 1) */
    int time_limit_ms;          /* default when the task_msg says 0 */
    const char *default_queue;  /* queue it is enqueued on by default, e.g. "default" */
} tr_task_def_t;

/** Defines the task row `row` for function `fn` taking args message `args_t` (adi_empty: none). */
#define TR_TASK(row, name_, args_t, fn_, attempts, limit_ms)                                       \
    static adi_err row##_thunk_(tr_task_ctx_t *ctx, const void *args, adi_error_t *err)            \
    {                                                                                              \
        return fn_(ctx, (const args_t *)args, err);                                                \
    }                                                                                              \
    const tr_task_def_t row = {(name_),    &args_t##__desc, sizeof(args_t), row##_thunk_,          \
                               (attempts), (limit_ms),      "default"}

/** Every task the runner knows (NULL-terminated), defined in tasks/. */
extern const tr_task_def_t *const tr_tasks[];

#endif
