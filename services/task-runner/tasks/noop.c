/* SPDX-License-Identifier: MIT */
/*
 * The task "noop": does nothing and succeeds, with no result. Operators enqueue it (adi-admin) as
 * a health probe of the queue path: a noop that reaches SUCCESS proves a worker serves the queue,
 * and its state's enqueued/started/finished times show how long the trip took. bench/tasks.sh
 * measures the runner's task throughput and enqueue-to-start latency with it. It takes no
 * arguments (a map with keys is refused by the args check) and no tenant, and is not one of the
 * tasks a tenant may trigger through the REST API.
 */
#include "tasks_int.h"

static adi_err noop(tr_task_ctx_t *ctx, const adi_empty *args, adi_error_t *err)
{
    (void)ctx;
    (void)args;
    (void)err;
    return ADI_OK;
}

/* One attempt (nothing in it can fail), a short time limit. */
TR_TASK(tr_task_noop, "noop", adi_empty, noop, 1, 10000);
