/* SPDX-License-Identifier: MIT */
/*
 * The task runner's scheduler (Celery beat, highly available): periodic tasks from a schedule
 * file, fired by exactly one leader among any number of replicas.
 *
 * Schedule file (SCHEDULE_FILE, JSON):
 *   {"schedules": [
 *     {"name": "rotate-deks", "task": "rotate_deks", "cron": "0 3 * * 0",
 *      "queue": "default", "args": {}, "enabled": true},
 *     {"name": "poll", "task": "sync_meta_example", "every_s": 900}]}
 * name (1-64 of [A-Za-z0-9_.:-], unique) and task (1-128 of the same) are required; exactly one
 * of cron (5-field expression or @alias, libs/cron, in the process's TIME_ZONE) or every_s
 * (1..31536000 seconds; slots are the multiples of every_s since the epoch) is required; queue
 * (1-64 of [a-z0-9_.-], default "default"), args (a JSON object, default {}) and enabled
 * (default true) are optional; any other member is an error. Without a file the defaults are
 * rotate-deks (rotate_deks, "0 3 * * 0"), sync-meta-example and sync-google-example
 * (sync_meta_example / sync_google_example, "0 * * * *"), all with args {} on "default".
 *
 * HA: every replica runs one scheduler thread with its own Redis client. The leader holds
 * sched:leader (SET NX PX lease, value = holder id, extended every lease/3 by a compare-and-extend
 * script) and gets a fencing token from INCR sched:fence on each acquisition. A fire is one
 * script: if the fence moved on it is refused (leadership lost); if sched:last:<name> is already
 * at or past the slot it is a no-op; else it stores the slot as the last run, XADDs the task_msg to
 * tasks:<queue> and writes its PENDING state (task:<id>, TTL a day). A new leader fires every slot
 * due since the stored last run, at most catchup_max of them (the latest; older ones are skipped
 * and logged as coalesced), so a failover neither skips nor repeats a run. A schedule never run
 * before starts from the time its first leader sees it (no backfill). Stopping releases the lease
 * so another replica takes over at once.
 *
 * Times: the injectable clock decides which slots are due; the lease runs on Redis's clock.
 */
#ifndef ADI_TASK_RUNNER_SCHEDULER_H
#define ADI_TASK_RUNNER_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "adi/core.h"
#include "adi/log.h"
#include "adi/ops.h"

/** Default lease of the leader, in ms (SCHEDULER_LEASE_MS). */
#define TR_SCHED_LEASE_MS 15000
/** Shortest lease accepted, in ms. */
#define TR_SCHED_LEASE_MIN_MS 300
/** Default number of due slots one schedule fires after a gap. */
#define TR_SCHED_CATCHUP_MAX 3
/** TTL of the PENDING state a fire writes, in seconds. */
#define TR_SCHED_STATE_TTL_S 86400
/** Most schedules one file holds. */
#define TR_SCHED_MAX 256

/** What a scheduler is built from. Strings are copied; pointers to objects are borrowed. */
typedef struct tr_sched_config {
    const char *redis_url;         /* REDIS_URL (required) */
    const char *schedule_file;     /* SCHEDULE_FILE; NULL or "" = the built-in defaults */
    int64_t lease_ms;              /* SCHEDULER_LEASE_MS; 0 = TR_SCHED_LEASE_MS */
    const char *holder;            /* this replica's unique id, e.g. CONSUMER_NAME (required) */
    const char *time_zone;         /* TIME_ZONE, for logs: cron times use the process's zone */
    adi_metrics_t *metrics;        /* where to count fires, or NULL; must outlive the scheduler */
    const adi_logctx_t *log;       /* log context (copied; its strings must outlive it), or NULL */
    int64_t (*now_ms)(void *arg);  /* wall clock in epoch ms deciding what is due; NULL = real */
    void *now_arg;                 /* argument of now_ms */
    int catchup_max;               /* due slots one schedule fires after a gap; 0 = default */
    int64_t stream_maxlen;         /* MAXLEN ~ of the task streams; 0 = 100000 */
    const char *const *task_names; /* NULL-terminated known task names to check, or NULL */
    const char *key_prefix;        /* prefix of the sched:* keys (tests isolate with it), or NULL */
    bool manual;                   /* no thread: the caller drives tr_scheduler_tick (tests) */
    bool keep_lease_on_stop;       /* stop without releasing the lease (tests: a crash) */
} tr_sched_config_t;

/** A running scheduler. */
typedef struct tr_scheduler tr_scheduler_t;

/** What one tick did (for tests and logs). */
typedef struct tr_sched_tick {
    bool leader;      /* this replica leads after the tick */
    int64_t fence;    /* its fencing token, 0 when not leading */
    int fired;        /* tasks enqueued by this tick */
    int refused;      /* fires refused because the fence had moved on */
    int coalesced;    /* due slots skipped by the catch-up cap */
    size_t schedules; /* enabled schedules */
} tr_sched_tick_t;

/**
 * Loads and checks the schedules (the file, or the defaults), creates the Redis client (no I/O
 * yet) and, unless cfg->manual, starts the scheduler thread, which ticks every min(1 s, lease/3),
 * connecting and retrying by itself while Redis is down. On success `*out` is the caller's
 * (tr_scheduler_stop).
 * Errors: ADI_INVALID with a message naming the entry and field ("schedules[1] \"nightly\": cron:
 * hour: 25 is out of range 0-23.") for a bad file, or naming the bad setting (missing holder or
 * Redis URL, lease below TR_SCHED_LEASE_MIN_MS); ADI_NOT_FOUND (the file cannot be read);
 * ADI_TOO_LARGE (file over 1 MiB); ADI_INTERNAL (the thread could not start).
 */
adi_err tr_scheduler_start(const tr_sched_config_t *cfg, tr_scheduler_t **out, adi_error_t *err);

/**
 * Runs one round synchronously: renews or acquires the lease, and when leading fires what is due.
 * Only for a scheduler started with cfg->manual (tests). `out` may be NULL.
 * Errors: ADI_UNAVAILABLE / ADI_INTERNAL from Redis (the round stops there; the next one retries).
 */
adi_err tr_scheduler_tick(tr_scheduler_t *s, tr_sched_tick_t *out, adi_error_t *err);

/** True while this scheduler believes it leads (any thread may ask). */
bool tr_scheduler_is_leader(const tr_scheduler_t *s);

/**
 * Stops the thread (waiting for the round in progress), releases the lease when holding it
 * (unless keep_lease_on_stop) and frees `s`. NULL is a no-op.
 */
void tr_scheduler_stop(tr_scheduler_t *s);

#endif
