/* SPDX-License-Identifier: MIT */
/*
 * The adi_svc_def_t hooks that tie the queue runtime (runtime.c, with the table tr_tasks of
 * tasks/) and the scheduler (scheduler.c) to the service's life: init checks the settings and
 * builds the state, start launches the workers and the scheduler with the service's metrics,
 * stop (SIGTERM) makes the workers take nothing new, and fini drains them within
 * SHUTDOWN_GRACE_MS of the stop, handing back what is still running (and then exits 1, as libs/svc
 * does when draining outlasts the grace period), then stops the scheduler.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "task_runner.h"
#if defined(TR_HAVE_SCHEDULER)
#include "scheduler.h"
#endif

adi_err tr_init(const adi_svc_config_t *common, void *cfgp, void **out, adi_error_t *err)
{
    const tr_cfg_t *cfg = cfgp;
    *out = NULL;
    if (cfg->retry_max_ms < cfg->retry_base_ms)
        return adi_error_set(err, ADI_INVALID, "TASK_RETRY_MAX_MS must be >= TASK_RETRY_BASE_MS");
    tr_app_t *app = adi_xcalloc(1, sizeof(*app));
    app->cfg = *cfg;
    app->common = *common;
    adi_err rc = tr_queues_parse(cfg->task_queues, app->queues, &app->nqueues, err);
    if (rc != ADI_OK) {
        free(app);
        return rc;
    }
    if (common->consumer_name != NULL && common->consumer_name[0] != '\0') {
        snprintf(app->consumer_base, sizeof(app->consumer_base), "%s", common->consumer_name);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(app->consumer_base, sizeof(app->consumer_base), "%s-%ld", host, (long)getpid());
    }
    *out = app;
    return ADI_OK;
}

#if defined(TR_HAVE_SCHEDULER)
/* Starts the scheduler when enabled (its errors, e.g. a bad SCHEDULE_FILE, stop the process). */
static adi_err start_scheduler(tr_app_t *app, adi_error_t *err)
{
    if (!app->cfg.scheduler_enabled)
        return ADI_OK;
    /* The scheduler checks schedules name tasks the workers know. */
    static const char *names[64];
    size_t n = 0;
    for (const tr_task_def_t *const *p = tr_tasks; *p != NULL && n + 1 < 64; p++)
        names[n++] = (*p)->name;
    names[n] = NULL;
    tr_sched_config_t sc = {
        .redis_url = app->common.redis_url,
        .schedule_file = app->cfg.schedule_file,
        .lease_ms = app->cfg.scheduler_lease_ms,
        .holder = app->consumer_base,
        .time_zone = app->common.time_zone,
        .metrics = app->metrics,
        .stream_maxlen = app->common.stream_maxlen,
        .task_names = names,
    };
    tr_scheduler_t *s = NULL;
    adi_err rc = tr_scheduler_start(&sc, &s, err);
    if (rc == ADI_OK)
        app->scheduler = s;
    return rc;
}
#endif

adi_err tr_start(void *p, adi_metrics_t *metrics, adi_error_t *err)
{
    tr_app_t *app = p;
    app->metrics = metrics;
    const char *queues[TR_QUEUES_MAX];
    for (size_t i = 0; i < app->nqueues; i++)
        queues[i] = app->queues[i];
    tr_runtime_config_t rc_cfg = {
        .redis_url = app->common.redis_url,
        .queues = queues,
        .nqueues = app->nqueues,
        .workers = (int)app->cfg.task_workers,
        .visibility_ms = app->cfg.visibility_ms,
        .max_attempts = (int)app->cfg.max_attempts,
        .time_limit_ms = app->cfg.time_limit_ms,
        .retry_base_ms = app->cfg.retry_base_ms,
        .retry_max_ms = app->cfg.retry_max_ms,
        .result_ttl_s = app->cfg.result_ttl_s,
        .stream_maxlen = app->common.stream_maxlen,
        .consumer_base = app->consumer_base,
        .tasks = tr_tasks,
        .app = app,
        .metrics = metrics,
    };
    adi_err rc = tr_runtime_new(&rc_cfg, &app->runtime, err);
    if (rc == ADI_OK)
        rc = tr_runtime_start(app->runtime, err);
#if defined(TR_HAVE_SCHEDULER)
    if (rc == ADI_OK)
        rc = start_scheduler(app, err);
#endif
    if (rc != ADI_OK)
        return rc;
    size_t ntasks = 0;
    for (const tr_task_def_t *const *t = tr_tasks; *t != NULL; t++)
        ntasks++;
    ADI_LOG(NULL, ADI_LOG_INFO, "task_runner.started",
            "%" PRId64 " task workers (consumers %s-t*) on %s, %zu tasks known, scheduler %s",
            app->cfg.task_workers, app->consumer_base, app->cfg.task_queues, ntasks,
            app->scheduler != NULL ? "on" : "off");
    return ADI_OK;
}

void tr_stop(void *p)
{
    tr_app_t *app = p;
    if (app->stop_at_ms == 0)
        app->stop_at_ms = adi_mono_ms();
    if (app->runtime != NULL)
        tr_runtime_stop(app->runtime);
}

void tr_fini(void *p)
{
    tr_app_t *app = p;
    if (app->runtime != NULL) {
        tr_stop(app);
        int64_t deadline = app->stop_at_ms + app->common.shutdown_grace_ms;
        if (!tr_runtime_drain(app->runtime, deadline)) {
            ADI_LOG(NULL, ADI_LOG_ERROR, "task_runner.shutdown_timeout",
                    "tasks still running after %" PRId64 " ms were handed back; exiting",
                    app->common.shutdown_grace_ms);
#if defined(TR_HAVE_SCHEDULER)
            tr_scheduler_stop(app->scheduler); /* release the lease before going */
#endif
            _exit(1);
        }
        tr_runtime_stats_t st;
        tr_runtime_stats(app->runtime, &st);
        ADI_LOG(NULL, ADI_LOG_INFO, "task_runner.stopped",
                "%" PRId64 " tasks run: %" PRId64 " succeeded, %" PRId64 " retried, %" PRId64
                " failed",
                st.runs, st.succeeded, st.retried, st.failed);
        tr_runtime_free(app->runtime);
    }
#if defined(TR_HAVE_SCHEDULER)
    tr_scheduler_stop(app->scheduler);
#endif
    free(app);
}
