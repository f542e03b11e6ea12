/* SPDX-License-Identifier: MIT */
/*
 * The task table the task runner's workers run (task.h): one row per task, each defined in its
 * own file of this folder; and the one place that reads the runner's settings for the tasks
 * (task_runner.h's struct tr_app), so the task files depend on tasks_int.h only.
 */
#include "task_runner.h"
#include "tasks_int.h"

const tr_task_def_t *const tr_tasks[] = {
    &tr_task_rotate_deks,           &tr_task_sync_meta, &tr_task_sync_google,
    &tr_task_send_invitation_email, &tr_task_noop,      NULL,
};

void tr_mail_settings(const tr_app_t *app, tr_mail_settings_t *out)
{
    const tr_cfg_t *c = app != NULL ? &app->cfg : NULL;
    out->smtp_url = c != NULL && c->smtp_url != NULL ? c->smtp_url : "";
    out->smtp_from = c != NULL && c->smtp_from != NULL && c->smtp_from[0] != '\0'
                         ? c->smtp_from
                         : TR_DEFAULT_SMTP_FROM;
    out->smtp_timeout_ms = c != NULL && c->smtp_timeout_ms > 0 ? c->smtp_timeout_ms : 10000;
    out->app_base_url = c != NULL && c->app_base_url != NULL && c->app_base_url[0] != '\0'
                            ? c->app_base_url
                            : TR_DEFAULT_APP_BASE_URL;
}
