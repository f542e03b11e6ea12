/* SPDX-License-Identifier: MIT */
/*
 * What the task files under services/task-runner/tasks/ share; not for use outside this folder
 * (the runtime only sees tr_tasks[] from task.h). The rows of the tasks, the settings the
 * mail task reads from the runner's state, and the helpers every task is written with: calling
 * another service as the task runner acting for a tenant (bounded by the task's deadline, the
 * callee's error turned into a task outcome as task.h defines them), the tenant a task works
 * for, wiping plaintext secrets, deterministic ids, and JSON results.
 */
#ifndef ADI_TR_TASKS_INT_H
#define ADI_TR_TASKS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "task.h"

/** The bus name the task runner calls other services as (principal.service). */
#define TR_SERVICE "task-runner"

/* The task rows (one file each; tasks.c lists them in tr_tasks[]). */
extern const tr_task_def_t tr_task_rotate_deks;           /* rotate_deks.c */
extern const tr_task_def_t tr_task_sync_meta;             /* sync.c */
extern const tr_task_def_t tr_task_sync_google;           /* sync.c */
extern const tr_task_def_t tr_task_send_invitation_email; /* send_invitation_email.c */
extern const tr_task_def_t tr_task_noop;                  /* noop.c */

/** The runner's settings the mail task uses (borrowed from the runner's state). */
typedef struct tr_mail_settings {
    const char *smtp_url;     /* SMTP_URL: smtp:// or smtps:// URL, "" = log instead of sending */
    const char *smtp_from;    /* SMTP_FROM: "Name <addr>" or "addr" */
    int64_t smtp_timeout_ms;  /* SMTP_TIMEOUT_MS: bound of one delivery */
    const char *app_base_url; /* APP_BASE_URL: base of the accept link */
} tr_mail_settings_t;

/** Used when the runner's settings leave SMTP_FROM / APP_BASE_URL empty. */
#define TR_DEFAULT_SMTP_FROM    "ADinsights <no-reply@adinsights.local>"
#define TR_DEFAULT_APP_BASE_URL "http://localhost:5173"

/** Reads the mail settings out of the runner's state `app` (never NULL members). */
void tr_mail_settings(const tr_app_t *app, tr_mail_settings_t *out);

/**
 * Calls `op` (of its own service) as the task runner acting for `tenant_id` (ADI_STR_NULL or ""
 * for none) with `req` (type op->req, NULL for none), waiting until the task's deadline; a 2xx
 * reply body is decoded into `rep` (type op->rep, zeroed first; NULL to ignore it). When `raw` is
 * not NULL it receives the reply body bytes (in ctx->pool) so a caller holding secrets can wipe
 * them with tr_wipe. The trace id is the task's request id, so the callee's log lines carry it.
 * Errors: the callee's error with its message, prefixed with the op name, and its code turned
 * into a task outcome: 400/404/403/409 stay permanent, other 4xx but 429 become ADI_INVALID
 * (permanent), 429 and 5xx stay retryable; ADI_TIMEOUT when the deadline passes first (also
 * before sending); ADI_UNAVAILABLE (Redis); ADI_INTERNAL (an unreadable reply).
 */
adi_err tr_call(tr_task_ctx_t *ctx, const adi_op_desc_t *op, adi_str_t tenant_id, const void *req,
                void *rep, adi_str_t *raw, adi_error_t *err);

/**
 * The tenant a task works for: `arg` (its args' tenant_id) or the task's tenant_id, "" when
 * neither is set. Errors: ADI_INVALID when both are set and differ, or the task's is not a UUID.
 */
adi_err tr_task_tenant(const tr_task_ctx_t *ctx, adi_str_t arg, adi_str_t *out, adi_error_t *err);

/** Overwrites the bytes of `s` (pool or heap memory the task owns) with zeros. */
void tr_wipe(adi_str_t s);

/**
 * A UUID derived (adi_uuid_derive) from SHA-256 of `kind`, "\n" and `key`: the same inputs
 * give the same id, so a task that runs again after a lost acknowledgement repeats its ids
 * (e.g. an audit event the writer then inserts once). Writes 36 characters plus NUL.
 */
void tr_derived_uuid(const char *kind, adi_str_t key, char out[37]);

/** A NUL-terminated copy of `s` in `pool` ("" for an absent slice). */
const char *tr_cstr(adi_pool_t *pool, adi_str_t s);

/** Appends `s` to `b` as a JSON string (quotes included). */
void tr_json_str(adi_buf_t *b, adi_str_t s);

#endif
