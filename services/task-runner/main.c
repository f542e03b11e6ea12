/* SPDX-License-Identifier: MIT */
/*
 * adi-task-runner: the task-runner service (background tasks and schedules). It answers the
 * operations of its stream svc:{task-runner}:req, owns the Postgres schema "tasks" and runs on
 * libs/svc, which brings configuration, logging, the ops port, the worker threads and SIGTERM
 * draining. This file only declares the service; handlers live under ops/ and are listed in the
 * table below.
 */
#include "adi/svc.h"

/* Operations answered here (sys.health is answered by libs/svc for every service). */
static const adi_svc_handler_t *const handlers[] = {
    NULL,
};

static const adi_svc_def_t task_runner_def = {
    .name = "task-runner",
    .schema = "tasks",
    .ops_port = 9104,
    .handlers = handlers,
};

int main(int argc, char **argv)
{
    return adi_svc_run(&task_runner_def, argc, argv);
}
