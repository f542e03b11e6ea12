/* SPDX-License-Identifier: MIT */
/*
 * Background tasks on Redis, the producer's and the operator's side (issue 6): enqueueing a task
 * (now, after a delay, optionally unique), reading its state, the delayed-task mover the task
 * runner's workers rely on, queue statistics and requeueing dead letters. The consumer side (the
 * workers) lives in services/task-runner.
 *
 * Layout (keys in adi/keys.h): queue q is the stream tasks:<q> (field "m" = a task_msg, consumer
 * group "task-runner"); delayed and retried tasks wait in the sorted set tasks:<q>:delayed
 * (member = the task_msg bytes, score = due time in ms by Redis's clock) until the mover XADDs
 * them; tasks out of attempts land on tasks:<q>:dead (fields "m" and "error"). A task's state is
 * the hash task:<id> (state, name, queue, tenant_id, attempt, max_attempts, result, error, times),
 * every write of which sets its TTL. A unique task holds task:unique:<name>:<hex SHA-256 of
 * tenant_id NUL args> = <id> while it is queued or running.
 *
 * Task streams are never trimmed (no MAXLEN: trimming would drop waiting tasks); the workers
 * delete each entry in the script that acknowledges it, so a stream holds exactly the tasks that
 * wait or run. Only the dead-letter stream is capped (MAXLEN ~).
 *
 * Every multi-key change is one Lua script, so a task is never half-enqueued: the unique lock, the
 * PENDING state and the XADD (or ZADD) happen together or not at all. Times in scripts come from
 * Redis (TIME), so producers, movers and workers on different hosts agree on what "due" means.
 */
#ifndef ADI_TASKS_H
#define ADI_TASKS_H

#include <stdbool.h>
#include <stdint.h>

#include "adi/bus.h"
#include "adi/core.h"

/** Most bytes of a task's args (msgpack map), as task_msg allows. */
#define ADI_TASKS_ARGS_MAX 65536
/** Most bytes of a task's result (JSON text) kept in its state. */
#define ADI_TASKS_RESULT_MAX 65536
/** Most bytes of a task's error text kept in its state and on the dead-letter stream. */
#define ADI_TASKS_ERROR_MAX 512
/** Longest queue name ([a-z0-9_.-]). */
#define ADI_TASKS_QUEUE_MAX 64
/** Longest delay of a delayed task (one year). */
#define ADI_TASKS_DELAY_MAX_MS (366LL * 24 * 3600 * 1000)
/** Default TTL of a task's state hash (a day), and of a unique lock beyond the task's delay. */
#define ADI_TASKS_STATE_TTL_S   86400
#define ADI_TASKS_UNIQUE_TTL_MS (3600LL * 1000)
/** The default queue. */
#define ADI_TASKS_DEFAULT_QUEUE "default"

/** What to enqueue. Strings are borrowed for the call; zero values pick the defaults. */
typedef struct adi_task_spec {
    const char *queue;      /* queue name, NULL or "" = "default" */
    const char *name;       /* task name (1-128 characters), e.g. "sync_meta_example" */
    adi_str_t args;         /* msgpack map (at most ADI_TASKS_ARGS_MAX bytes); ptr NULL = none */
    const char *tenant_id;  /* tenant the task works for, NULL or "" for none (<= 36 chars) */
    const char *request_id; /* request that caused it (logs), NULL or "" (<= 128 chars) */
    int max_attempts;       /* 0 = the task's default, else 1..1000 */
    int time_limit_ms;      /* 0 = the task's default, else 1..86400000 */
    int64_t delay_ms;       /* 0 = now (XADD); > 0: waits in the delayed set (<= DELAY_MAX) */
    bool unique;            /* refuse while a copy (same name, tenant and args) is queued/running */
    int64_t unique_ttl_ms;  /* lock lifetime beyond delay_ms, 0 = ADI_TASKS_UNIQUE_TTL_MS */
    int64_t state_ttl_s;    /* TTL of the PENDING state beyond the delay, 0 = a day */
    const char *id;         /* the task's id chosen by the caller (a lower-case UUID, e.g. from
                               adi_tasks_derive_id), NULL or "" = a fresh random one */
} adi_task_spec_t;

/**
 * Enqueues a task: validates `spec`, takes spec->id or makes a fresh id (written to `id`, 36
 * characters + NUL), encodes the task_msg (attempt 0, enqueued_at_ms now) and runs one script that
 * takes the unique lock (when asked), writes the PENDING state and XADDs the task to
 * tasks:<queue> (or ZADDs it to tasks:<queue>:delayed, due now + delay_ms by Redis's clock).
 * When the state hash task:<id> already exists the script changes nothing and the call succeeds
 * with that id: a producer that derives the id from its request (adi_tasks_derive_id) can repeat
 * the call after a redelivery without ever making a second task (as long as the first one's state
 * is kept, ADI_TASKS_STATE_TTL_S by default).
 * Errors: ADI_INVALID (bad queue, task name or id, args that are not one msgpack map or too large,
 * out-of-range numbers; field messages name the field), ADI_CONFLICT (unique, and a copy holds
 * the lock: `id` then holds that copy's id), ADI_UNAVAILABLE (Redis), ADI_INTERNAL.
 */
adi_err adi_tasks_enqueue(adi_bus_t *bus, const adi_task_spec_t *spec, char id[37],
                          adi_error_t *err);

/**
 * A task id derived from `seed` (adi_uuid_derive: the first 16 bytes of SHA-256(seed) as a
 * lower-case UUID with the v4 bits), written as 36 characters plus NUL. The same
 * seed always gives the same id, e.g. "tasks.enqueue:" + the request's scoped id, so a redelivered
 * request enqueues under the id its first delivery used.
 */
void adi_tasks_derive_id(adi_str_t seed, char out[37]);

/** True when `q` is a valid queue name: 1-64 of [a-z0-9_.-]. */
bool adi_tasks_queue_valid(const char *q);

/**
 * Writes the unique-lock key of task `name` for `tenant_id` (NULL/"" for none) and `args`
 * (task:unique:<name>:<hex SHA-256 of tenant_id, a NUL byte and the args bytes>) into `out`.
 * Returns false when it does not fit in `n` bytes.
 */
bool adi_tasks_unique_key(const char *name, adi_str_t tenant_id, adi_str_t args, char *out,
                          size_t n);

/** A task's state as its hash holds it. Strings live in the pool given to adi_tasks_state_get. */
typedef struct adi_task_state {
    adi_str_t id;           /* task id */
    adi_str_t state;        /* PENDING, STARTED, RETRY, SUCCESS or FAILURE */
    adi_str_t name;         /* task name */
    adi_str_t queue;        /* queue */
    adi_str_t tenant_id;    /* tenant, "" for none */
    adi_str_t result;       /* JSON text of the result (SUCCESS), ptr NULL when none */
    adi_str_t error;        /* error text (RETRY, FAILURE), ptr NULL when none */
    adi_str_t worker;       /* consumer that ran it last, ptr NULL when not started */
    int64_t attempt;        /* attempt of the current or last run (0 = the first); RETRY: the
                               attempt that runs next */
    int64_t max_attempts;   /* attempts allowed, 0 when not known yet */
    int64_t enqueued_at_ms; /* epoch ms, 0 when unknown */
    int64_t due_at_ms;      /* when a delayed or retried task is due, 0 when not delayed */
    int64_t started_at_ms;  /* start of the last run, 0 when not started */
    int64_t finished_at_ms; /* SUCCESS/FAILURE time, 0 before */
    int64_t ttl_s;          /* seconds the state is kept, -1 when it has no TTL */
} adi_task_state_t;

/**
 * Reads task `id`'s state (strings copied into `pool`).
 * Errors: ADI_INVALID (not a UUID), ADI_NOT_FOUND (unknown or expired), ADI_UNAVAILABLE,
 * ADI_INTERNAL.
 */
adi_err adi_tasks_state_get(adi_bus_t *bus, const char *id, adi_pool_t *pool, adi_task_state_t *out,
                            adi_error_t *err);

/**
 * The mover: one script moves up to `limit` (1..1000) delayed tasks of `queue` that are due (by
 * Redis's clock) from tasks:<queue>:delayed to the stream tasks:<queue> and removes them from
 * the set, atomically, so concurrent movers never move one twice. `*moved` (may be NULL)
 * receives how many moved.
 * Errors: ADI_INVALID (bad queue or limit), ADI_UNAVAILABLE, ADI_INTERNAL.
 */
adi_err adi_tasks_move_due(adi_bus_t *bus, const char *queue, int limit, int64_t *moved,
                           adi_error_t *err);

/** Counts of one queue. */
typedef struct adi_task_queue_stats {
    int64_t length;  /* entries on the stream: waiting plus running (acknowledged ones are gone) */
    int64_t pending; /* delivered to a worker and not yet acknowledged (running) */
    int64_t waiting; /* not yet delivered: length - pending */
    int64_t delayed; /* in the delayed set (delayed or waiting for a retry) */
    int64_t dead;    /* on the dead-letter stream */
} adi_task_queue_stats_t;

/**
 * Counts of `queue` (a missing stream or group counts as empty).
 * Errors: ADI_INVALID (bad queue), ADI_UNAVAILABLE, ADI_INTERNAL.
 */
adi_err adi_tasks_queue_stats(adi_bus_t *bus, const char *queue, adi_task_queue_stats_t *out,
                              adi_error_t *err);

/**
 * The queues that exist in Redis (streams tasks:<q>, their delayed sets or dead-letter streams),
 * sorted, in `pool`: `*names` gets an array of `*n` NUL-terminated names (at most 1000).
 * Errors: ADI_UNAVAILABLE, ADI_INTERNAL.
 */
adi_err adi_tasks_queues(adi_bus_t *bus, adi_pool_t *pool, const char ***names, size_t *n,
                         adi_error_t *err);

/**
 * Requeues up to `max` (1..10000) dead letters of `queue`, oldest first: each decodable task_msg
 * goes back on tasks:<queue> with attempt 0 and state PENDING, and leaves the dead-letter stream
 * in the same script (so two operators never requeue one twice). Entries whose message does not
 * decode are left where they are and counted in `*skipped`. Either count pointer may be NULL.
 * Errors: ADI_INVALID (bad queue or max), ADI_UNAVAILABLE, ADI_INTERNAL.
 */
adi_err adi_tasks_requeue_dead(adi_bus_t *bus, const char *queue, int max, int64_t *moved,
                               int64_t *skipped, adi_error_t *err);

#endif
