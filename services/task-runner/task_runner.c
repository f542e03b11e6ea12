/* SPDX-License-Identifier: MIT */
/*
 * The task runner's settings: the configuration rows (the README table comes from
 * `adi-task-runner --config-table`), their defaults, and parsing TASK_QUEUES.
 */
#include <stdio.h>
#include <string.h>

#include "task_runner.h"

#define CFG(field, env, type, def, flags, min, max, help)                                          \
    ADI_CFG(tr_cfg_t, field, env, type, def, flags, min, max, help)

const adi_cfg_row_t tr_cfg_rows[] = {
    CFG(task_queues, "TASK_QUEUES", STR, "default", 0, 0, 0,
        "comma-separated task queues (streams tasks:<q>) this replica serves, in priority order"),
    CFG(task_workers, "TASK_WORKERS", INT, "4", 0, 1, TR_WORKERS_MAX,
        "task worker threads per replica (one Redis connection each)"),
    CFG(visibility_ms, "TASK_VISIBILITY_MS", INT, "30000", 0, 100, INT64_C(3600000),
        "a task whose worker stopped refreshing its claim this long is run by another worker"),
    CFG(max_attempts, "TASK_MAX_ATTEMPTS", INT, "5", 0, 1, 1000,
        "attempts of a task whose message and row set none"),
    CFG(time_limit_ms, "TASK_TIME_LIMIT_MS", INT, "300000", 0, 1, INT64_C(86400000),
        "time limit of a task whose message and row set none"),
    CFG(retry_base_ms, "TASK_RETRY_BASE_MS", INT, "1000", 0, 1, INT64_C(86400000),
        "backoff cap of the first retry (doubles per attempt, full jitter)"),
    CFG(retry_max_ms, "TASK_RETRY_MAX_MS", INT, "600000", 0, 1, INT64_C(86400000),
        "largest backoff cap"),
    CFG(result_ttl_s, "TASK_RESULT_TTL_S", INT, "86400", 0, 1, INT64_C(31536000),
        "seconds a task's state and result are kept after each change"),
    CFG(smtp_url, "SMTP_URL", STR, "", ADI_CFG_SECRET, 0, 0,
        "smtp:// or smtps:// server of the invitation mail (user:password allowed); empty logs "
        "instead of sending"),
    CFG(smtp_from, "SMTP_FROM", STR, "ADinsights <no-reply@adinsights.local>", 0, 0, 0,
        "sender of the invitation mail"),
    CFG(smtp_timeout_ms, "SMTP_TIMEOUT_MS", INT, "10000", 0, 100, INT64_C(600000),
        "bound of one mail delivery"),
    CFG(app_base_url, "APP_BASE_URL", STR, "http://localhost:5173", 0, 0, 0,
        "base of the invitation's accept link (<base>/accept-invite?token=...)"),
    CFG(scheduler_enabled, "SCHEDULER_ENABLED", BOOL, "1", 0, 0, 0,
        "run the periodic-task scheduler in this replica (one leader among all fires)"),
    CFG(schedule_file, "SCHEDULE_FILE", STR, "", 0, 0, 0,
        "JSON file of periodic tasks; empty means the defaults (rotate_deks weekly, the syncs "
        "hourly)"),
    CFG(scheduler_lease_ms, "SCHEDULER_LEASE_MS", INT, "15000", 0, 300, INT64_C(600000),
        "the scheduler leader's lease (a dead leader is replaced within it)"),
};
const size_t tr_ncfg_rows = sizeof(tr_cfg_rows) / sizeof(tr_cfg_rows[0]);

void tr_cfg_defaults(tr_cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->task_queues = "default";
    cfg->task_workers = 4;
    cfg->visibility_ms = 30000;
    cfg->max_attempts = 5;
    cfg->time_limit_ms = 300000;
    cfg->retry_base_ms = 1000;
    cfg->retry_max_ms = 600000;
    cfg->result_ttl_s = 86400;
    cfg->smtp_url = "";
    cfg->smtp_from = "ADinsights <no-reply@adinsights.local>";
    cfg->smtp_timeout_ms = 10000;
    cfg->app_base_url = "http://localhost:5173";
    cfg->scheduler_enabled = true;
    cfg->schedule_file = "";
    cfg->scheduler_lease_ms = 15000;
}

adi_err tr_queues_parse(const char *list, char out[TR_QUEUES_MAX][ADI_TASKS_QUEUE_MAX + 1],
                        size_t *n, adi_error_t *err)
{
    *n = 0;
    const char *p = list != NULL ? list : "";
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 0 && end == NULL && *n > 0)
            break; /* a trailing comma */
        if (*n >= TR_QUEUES_MAX)
            return adi_error_set(err, ADI_INVALID, "TASK_QUEUES: at most %d queues", TR_QUEUES_MAX);
        if (len == 0 || len > ADI_TASKS_QUEUE_MAX)
            return adi_error_set(err, ADI_INVALID,
                                 "TASK_QUEUES: each queue is 1-%d of a-z, 0-9, '_', '-' or '.'",
                                 ADI_TASKS_QUEUE_MAX);
        memcpy(out[*n], p, len);
        out[*n][len] = '\0';
        if (!adi_tasks_queue_valid(out[*n]))
            return adi_error_set(err, ADI_INVALID,
                                 "TASK_QUEUES: each queue is 1-%d of a-z, 0-9, '_', '-' or '.'",
                                 ADI_TASKS_QUEUE_MAX);
        for (size_t k = 0; k < *n; k++)
            if (strcmp(out[k], out[*n]) == 0)
                return adi_error_set(err, ADI_INVALID, "TASK_QUEUES names %s twice", out[k]);
        (*n)++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return ADI_OK;
}
