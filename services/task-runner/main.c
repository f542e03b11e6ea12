/* SPDX-License-Identifier: MIT */
/*
 * adi-task-runner: the task-runner service (background tasks and schedules). It runs on libs/svc,
 * which brings configuration, logging, the ops port, the request workers (sys.health on
 * svc:{task-runner}:req) and SIGTERM draining, and owns the Postgres schema "tasks". Its real work
 * is the queue runtime (runtime.c: task workers on tasks:<queue> streams, the table tr_tasks of
 * tasks/) and the scheduler (scheduler.c), tied to the service's life by the hooks in
 * task_runner.c; its request handlers (ops/) let tenant admins trigger tasks and read their state.
 */
#include "ops/tasks_api.h"
#include "task_runner.h"

/* Operations answered here (sys.health is answered by libs/svc for every service). */
static const adi_svc_handler_t *const handlers[] = {
    &tr_enqueue_row, /* POST /api/tasks/ (ops/tasks_api.c) */
    &tr_get_row,     /* GET /api/tasks/{id}/ */
    NULL,
};

int main(int argc, char **argv)
{
    static tr_cfg_t cfg;
    tr_cfg_defaults(&cfg);
    const adi_svc_def_t def = {
        .name = "task-runner",
        .schema = "tasks",
        .ops_port = 9104,
        .handlers = handlers,
        .cfg_rows = tr_cfg_rows,
        .ncfg_rows = tr_ncfg_rows,
        .cfg = &cfg,
        .init = tr_init,
        .fini = tr_fini,
        .start = tr_start,
        .stop = tr_stop,
    };
    return adi_svc_run(&def, argc, argv);
}
