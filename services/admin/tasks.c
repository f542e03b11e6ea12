/* SPDX-License-Identifier: MIT */
/*
 * The task subcommands of adi-admin (libs/tasks on REDIS_URL):
 *
 *   enqueue <task> [--queue Q] [--tenant ID] [--args JSON] [--delay-ms N] [--unique]
 *           [--max-attempts N] [--time-limit-ms N]      prints the new task's id
 *   task-status <id>                                      prints the task's state as JSON
 *   queues                                                every queue with its counts
 *   requeue-dead <queue> [--max N]                        dead letters back on their queue
 *
 * The task runner checks a task's name and args when it runs it (an unknown name or bad args
 * end as FAILURE), so any task can be enqueued from here, as ARCHITECTURE.md wants. Args are
 * never printed back.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adi/bus.h"
#include "adi/proto.h"
#include "adi/tasks.h"

#include "admin.h"

/* A client on REDIS_URL, or NULL after printing why (never the URL: it may hold a password). */
static adi_bus_t *connect_redis(const admin_cfg_t *cfg)
{
    adi_bus_opts_t o = {.url = cfg->redis_url};
    adi_bus_t *bus = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_new(&o, &bus, &err) != ADI_OK) {
        fprintf(stderr, "adi-admin: REDIS_URL: %s\n", err.message);
        return NULL;
    }
    return bus;
}

/* Parses a decimal integer in [min, max]; false (with a message) otherwise. */
static bool parse_int(const char *cmd, const char *opt, const char *s, int64_t min, int64_t max,
                      int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(stderr, "%s: %s must be an integer from %" PRId64 " to %" PRId64 "\n", cmd, opt,
                min, max);
        return false;
    }
    *out = (int64_t)v;
    return true;
}

/* Prints an adi_error_t's message and first field message to stderr. */
static void print_error(const char *cmd, const adi_error_t *err)
{
    if (err->nfields > 0)
        fprintf(stderr, "%s: %s: %s\n", cmd, err->fields[0].field, err->fields[0].message);
    else
        fprintf(stderr, "%s: %s\n", cmd, err->message);
}

int admin_enqueue(const admin_cfg_t *cfg, int argc, char **argv)
{
    const char *cmd = argv[0];
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: adi-admin enqueue <task> [--queue Q] [--tenant ID] [--args JSON] "
                        "[--delay-ms N] [--unique] [--max-attempts N] [--time-limit-ms N]\n");
        return ADMIN_EXIT_USAGE;
    }
    adi_task_spec_t spec = {.name = argv[1]};
    const char *json = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--unique") == 0) {
            spec.unique = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", cmd, a);
            return ADMIN_EXIT_USAGE;
        }
        const char *v = argv[++i];
        int64_t n = 0;
        if (strcmp(a, "--queue") == 0) {
            spec.queue = v;
        } else if (strcmp(a, "--tenant") == 0) {
            if (!adi_uuid_valid(adi_str_c(v))) {
                fprintf(stderr, "%s: --tenant must be a UUID\n", cmd);
                return ADMIN_EXIT_USAGE;
            }
            spec.tenant_id = v;
        } else if (strcmp(a, "--args") == 0) {
            json = v;
        } else if (strcmp(a, "--delay-ms") == 0) {
            if (!parse_int(cmd, a, v, 0, ADI_TASKS_DELAY_MAX_MS, &n))
                return ADMIN_EXIT_USAGE;
            spec.delay_ms = n;
        } else if (strcmp(a, "--max-attempts") == 0) {
            if (!parse_int(cmd, a, v, 1, 1000, &n))
                return ADMIN_EXIT_USAGE;
            spec.max_attempts = (int)n;
        } else if (strcmp(a, "--time-limit-ms") == 0) {
            if (!parse_int(cmd, a, v, 1, 86400000, &n))
                return ADMIN_EXIT_USAGE;
            spec.time_limit_ms = (int)n;
        } else {
            fprintf(stderr, "%s: unknown option %s\n", cmd, a);
            return ADMIN_EXIT_USAGE;
        }
    }
    if (spec.queue != NULL && !adi_tasks_queue_valid(spec.queue)) {
        fprintf(stderr, "%s: --queue must be 1-%d of a-z, 0-9, '_', '-' or '.'\n", cmd,
                ADI_TASKS_QUEUE_MAX);
        return ADMIN_EXIT_USAGE;
    }
    adi_error_t err;
    adi_error_clear(&err);
    adi_buf_t args;
    adi_buf_init(&args);
    int rc = ADMIN_EXIT_OK;
    adi_bus_t *bus = NULL;
    if (json != NULL) {
        /* The task's args: a JSON object, carried as a msgpack map. */
        if (adi_json_to_msgpack(json, strlen(json), &args, &err) != ADI_OK) {
            fprintf(stderr, "%s: --args: %s\n", cmd, err.message);
            rc = ADMIN_EXIT_USAGE;
            goto out;
        }
        spec.args = (adi_str_t){args.data, args.len};
    }
    bus = connect_redis(cfg);
    if (bus == NULL) {
        rc = ADMIN_EXIT_USAGE;
        goto out;
    }
    char id[37];
    adi_err e = adi_tasks_enqueue(bus, &spec, id, &err);
    if (e == ADI_INVALID) {
        print_error(cmd, &err);
        rc = ADMIN_EXIT_USAGE;
    } else if (e != ADI_OK) {
        print_error(cmd, &err);
        rc = ADMIN_EXIT_FAILED;
    } else {
        printf("%s\n", id);
    }
out:
    adi_bus_free(bus);
    adi_buf_dispose(&args);
    return rc;
}

/* Appends "key": "value" (JSON-escaped), or null for an absent value. */
static void json_str(adi_buf_t *b, const char *key, adi_str_t v, bool comma)
{
    adi_buf_printf(b, "%s\"%s\": ", comma ? ", " : "", key);
    if (v.ptr == NULL) {
        adi_buf_append_str(b, "null");
        return;
    }
    adi_buf_append_str(b, "\"");
    adi_buf_append_json_escaped(b, v.ptr, v.len);
    adi_buf_append_str(b, "\"");
}

/* Appends "key": <ms> as an ISO 8601 string in TIME_ZONE, or null for 0. */
static void json_time(adi_buf_t *b, const char *key, int64_t ms)
{
    adi_buf_printf(b, ", \"%s\": ", key);
    if (ms <= 0) {
        adi_buf_append_str(b, "null");
        return;
    }
    char iso[40];
    adi_time_iso(ms * 1000, iso);
    adi_buf_printf(b, "\"%s\"", iso);
}

int admin_task_status(const admin_cfg_t *cfg, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: adi-admin task-status <id>\n");
        return ADMIN_EXIT_USAGE;
    }
    if (!adi_uuid_valid(adi_str_c(argv[1]))) {
        fprintf(stderr, "%s: the id must be a UUID\n", argv[0]);
        return ADMIN_EXIT_USAGE;
    }
    adi_bus_t *bus = connect_redis(cfg);
    if (bus == NULL)
        return ADMIN_EXIT_USAGE;
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_task_state_t st;
    adi_error_t err;
    adi_error_clear(&err);
    int rc = ADMIN_EXIT_OK;
    adi_err e = adi_tasks_state_get(bus, argv[1], &pool, &st, &err);
    if (e == ADI_NOT_FOUND) {
        fprintf(stderr, "%s: no task %s (unknown, or its state expired)\n", argv[0], argv[1]);
        rc = ADMIN_EXIT_FAILED;
    } else if (e != ADI_OK) {
        print_error(argv[0], &err);
        rc = ADMIN_EXIT_FAILED;
    } else {
        adi_buf_t b;
        adi_buf_init(&b);
        adi_buf_append_str(&b, "{");
        json_str(&b, "id", st.id, false);
        json_str(&b, "state", st.state, true);
        json_str(&b, "name", st.name, true);
        json_str(&b, "queue", st.queue, true);
        json_str(&b, "tenant_id", st.tenant_id.len > 0 ? st.tenant_id : ADI_STR_NULL, true);
        adi_buf_printf(&b, ", \"attempt\": %" PRId64 ", \"max_attempts\": %" PRId64, st.attempt,
                       st.max_attempts);
        /* The result is JSON text the runner checked before storing it. */
        adi_buf_append_str(&b, ", \"result\": ");
        if (st.result.ptr != NULL && st.result.len > 0)
            adi_buf_append(&b, st.result.ptr, st.result.len);
        else
            adi_buf_append_str(&b, "null");
        json_str(&b, "error", st.error, true);
        json_str(&b, "worker", st.worker, true);
        json_time(&b, "enqueued_at", st.enqueued_at_ms);
        json_time(&b, "due_at", st.due_at_ms);
        json_time(&b, "started_at", st.started_at_ms);
        json_time(&b, "finished_at", st.finished_at_ms);
        adi_buf_printf(&b, ", \"expires_in_s\": %" PRId64 "}\n", st.ttl_s);
        fwrite(b.data, 1, b.len, stdout);
        adi_buf_dispose(&b);
    }
    adi_pool_dispose(&pool);
    adi_bus_free(bus);
    return rc;
}

int admin_queues(const admin_cfg_t *cfg, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: adi-admin queues\n");
        return ADMIN_EXIT_USAGE;
    }
    adi_bus_t *bus = connect_redis(cfg);
    if (bus == NULL)
        return ADMIN_EXIT_USAGE;
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    const char **names = NULL;
    size_t n = 0;
    int rc = ADMIN_EXIT_OK;
    if (adi_tasks_queues(bus, &pool, &names, &n, &err) != ADI_OK) {
        print_error(argv[0], &err);
        rc = ADMIN_EXIT_FAILED;
        goto out;
    }
    printf("%-24s %10s %10s %10s %10s\n", "queue", "waiting", "running", "delayed", "dead");
    for (size_t i = 0; i < n; i++) {
        adi_task_queue_stats_t st;
        if (adi_tasks_queue_stats(bus, names[i], &st, &err) != ADI_OK) {
            print_error(argv[0], &err);
            rc = ADMIN_EXIT_FAILED;
            goto out;
        }
        printf("%-24s %10" PRId64 " %10" PRId64 " %10" PRId64 " %10" PRId64 "\n", names[i],
               st.waiting, st.pending, st.delayed, st.dead);
    }
out:
    adi_pool_dispose(&pool);
    adi_bus_free(bus);
    return rc;
}

int admin_requeue_dead(const admin_cfg_t *cfg, int argc, char **argv)
{
    const char *cmd = argv[0];
    int64_t max = 1000;
    if (argc != 2 && !(argc == 4 && strcmp(argv[2], "--max") == 0)) {
        fprintf(stderr, "usage: adi-admin requeue-dead <queue> [--max N]\n");
        return ADMIN_EXIT_USAGE;
    }
    if (!adi_tasks_queue_valid(argv[1])) {
        fprintf(stderr, "%s: the queue must be 1-%d of a-z, 0-9, '_', '-' or '.'\n", cmd,
                ADI_TASKS_QUEUE_MAX);
        return ADMIN_EXIT_USAGE;
    }
    if (argc == 4 && !parse_int(cmd, "--max", argv[3], 1, 10000, &max))
        return ADMIN_EXIT_USAGE;
    adi_bus_t *bus = connect_redis(cfg);
    if (bus == NULL)
        return ADMIN_EXIT_USAGE;
    adi_error_t err;
    adi_error_clear(&err);
    int64_t moved = 0, skipped = 0;
    int rc = ADMIN_EXIT_OK;
    if (adi_tasks_requeue_dead(bus, argv[1], (int)max, &moved, &skipped, &err) != ADI_OK) {
        print_error(cmd, &err);
        rc = ADMIN_EXIT_FAILED;
    }
    printf("requeued %" PRId64 " dead letters of %s", moved, argv[1]);
    if (skipped > 0)
        printf(" (%" PRId64 " left: not decodable as tasks)", skipped);
    printf("\n");
    adi_bus_free(bus);
    return rc;
}
