/* SPDX-License-Identifier: MIT */
/*
 * The task runner's request handlers (issue 6 "API"): tasks.enqueue (POST /api/tasks/) lets a
 * tenant admin trigger one of the tasks a tenant may run, in the caller's tenant; tasks.get
 * (GET /api/tasks/{id}/) reads a task's state, 404 for an unknown task or another tenant's.
 * main.c lists the rows in the service's handler table.
 */
#ifndef ADI_TR_TASKS_API_H
#define ADI_TR_TASKS_API_H

#include "adi/svc.h"

/** Most bytes of the args of a task enqueued through the API (msgpack, as converted from JSON). */
#define TR_API_ARGS_MAX 16384

/** Prefix of the seed a task id is derived from: "tasks.enqueue:<tenant>/<user>/<request id>". */
#define TR_API_ID_SEED "tasks.enqueue:"

/* Handler rows (ops/tasks_api.c). */
ADI_SVC_HANDLER_DECL(tr_enqueue_row); /* tasks.enqueue: ADMIN, 202 {id} */
ADI_SVC_HANDLER_DECL(tr_get_row); /* tasks.get: ADMIN, {id, name, state, result, error, attempt} */

#endif
