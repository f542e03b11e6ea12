/* SPDX-License-Identifier: MIT */
/*
 * adi-tasks-bench: the task runner's no-op task throughput through one worker replica and its
 * enqueue-to-start latency (issue 6 point 9), against the Redis of a running suite (REDIS_URL).
 * bench/tasks.sh runs it beside the same measurement of Celery (bench/celery_noop.py).
 *
 * The replica is the command after "--" (adi-task-runner, its settings in the environment: the
 * queue --queue in TASK_QUEUES, TASK_WORKERS threads), started and stopped (SIGTERM) by this tool
 * so the queue can be filled before any worker runs:
 *
 *   throughput  --tasks "noop" tasks are enqueued (adi_tasks_enqueue, --producers threads) on an
 *               empty queue, then the replica starts and drains it; the rate is the task count
 *               over the span from the first STARTED to the last SUCCESS, as the tasks' state
 *               hashes record them (started_at_ms, finished_at_ms), so start-up is not counted
 *   latency     with the replica idle, --latency-tasks more are enqueued one at a time at --rate
 *               per second (open loop: each at its own due time, whatever the previous did);
 *               enqueue-to-start runs from the producer's wall clock just before the
 *               adi_tasks_enqueue call to the task's started_at_us (the runner's STARTED write,
 *               Redis's clock: the same host's clock here), as bench/celery_noop.py measures
 *               Celery; cross-checks in whole ms from the state hash: enqueued_at_ms to
 *               started_at_ms and to finished_at_ms (enqueue-to-success)
 *
 * Every task must end in SUCCESS. Prints the figures and writes them as JSON to --json FILE.
 * Exit 1 on a failed, missing or late task, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adi/bus.h"
#include "adi/config.h"
#include "adi/keys.h"
#include "adi/tasks.h"

#define MAX_PRODUCERS 64
#define MAX_TASKS     1000000
#define DRAIN_POLL_MS 20
#define STOP_WAIT_S   30

/* Settings from the environment. */
typedef struct bench_cfg {
    const char *redis_url; /* REDIS_URL: the Redis the replica serves */
} bench_cfg_t;

static const adi_cfg_row_t rows[] = {
    ADI_CFG(bench_cfg_t, redis_url, "REDIS_URL", STR, "redis://127.0.0.1:6379", ADI_CFG_SECRET, 0,
            0, "Redis URL of the suite under test"),
};

/* What a fill shares between its producer threads. */
typedef struct fill {
    const char *redis_url; /* REDIS_URL */
    const char *queue;     /* the bench queue */
    char (*ids)[37];       /* ids of the tasks, by index */
    size_t n;              /* tasks to enqueue */
    atomic_size_t next;    /* next index to enqueue */
    atomic_long errors;    /* failed enqueues */
} fill_t;

/* Figures of one set of tasks, from their state hashes. */
typedef struct states {
    long success, other, missing; /* tasks in SUCCESS, in another state, gone */
    int64_t first_start_ms;       /* earliest started_at_ms */
    int64_t last_finish_ms;       /* latest finished_at_ms */
    double *start_lat;            /* started_at_ms - enqueued_at_ms per SUCCESS task */
    double *done_lat;             /* finished_at_ms - enqueued_at_ms */
    double *client_lat;           /* started_at_us - the producer's clock before the call, ms */
    size_t nlat;                  /* entries of the arrays */
} states_t;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of the sorted `v` of `n` values (nearest rank), 0 when empty. */
static double quantile(const double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(q * (double)n);
    return v[i < n ? i : n - 1];
}

static adi_bus_t *connect_bus(const char *url)
{
    adi_bus_opts_t bo = {.url = url};
    adi_bus_t *bus = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_new(&bo, &bus, &err) != ADI_OK) {
        fprintf(stderr, "adi-tasks-bench: %s\n", err.message);
        return NULL;
    }
    return bus;
}

/* One no-op task on `queue`; its id into `id`. */
static bool enqueue_noop(adi_bus_t *bus, const char *queue, char id[37])
{
    adi_task_spec_t spec = {.queue = queue, .name = "noop"};
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_tasks_enqueue(bus, &spec, id, &err) != ADI_OK) {
        fprintf(stderr, "adi-tasks-bench: enqueue: %s\n", err.message);
        return false;
    }
    return true;
}

static void *producer_main(void *arg)
{
    fill_t *f = arg;
    adi_bus_t *bus = connect_bus(f->redis_url);
    if (bus == NULL) {
        atomic_fetch_add(&f->errors, 1);
        return NULL;
    }
    for (;;) {
        size_t i = atomic_fetch_add(&f->next, 1);
        if (i >= f->n)
            break;
        if (!enqueue_noop(bus, f->queue, f->ids[i]))
            atomic_fetch_add(&f->errors, 1);
    }
    adi_bus_free(bus);
    return NULL;
}

/* Deletes the queue's stream, delayed set and dead letters: the run starts from nothing. */
static bool reset_queue(adi_bus_t *bus, const char *queue)
{
    char keys[3][128];
    snprintf(keys[0], sizeof(keys[0]), ADI_KEY_TASKS_FMT, queue);
    snprintf(keys[1], sizeof(keys[1]), ADI_KEY_TASKS_DELAYED_FMT, queue);
    snprintf(keys[2], sizeof(keys[2]), ADI_KEY_TASKS_DEAD_FMT, queue);
    adi_error_t err;
    adi_error_clear(&err);
    for (size_t i = 0; i < 3; i++) {
        if (adi_bus_del(bus, keys[i], &err) != ADI_OK) {
            fprintf(stderr, "adi-tasks-bench: DEL %s: %s\n", keys[i], err.message);
            return false;
        }
    }
    return true;
}

/* True when the replica `pid` has exited (reaped; `*status` gets its wait status). */
static bool child_gone(pid_t pid, int *status)
{
    return waitpid(pid, status, WNOHANG) == pid;
}

/*
 * Waits until `queue` holds no task (each is deleted when its outcome is recorded) or
 * `timeout_s` passes or the replica exits. True when drained.
 */
static bool wait_drained(adi_bus_t *bus, const char *queue, pid_t pid, double timeout_s)
{
    double t0 = mono_s();
    adi_error_t err;
    adi_error_clear(&err);
    while (mono_s() - t0 < timeout_s) {
        adi_task_queue_stats_t st;
        if (adi_tasks_queue_stats(bus, queue, &st, &err) != ADI_OK) {
            fprintf(stderr, "adi-tasks-bench: queue stats: %s\n", err.message);
            return false;
        }
        if (st.length == 0 && st.delayed == 0)
            return true;
        int status;
        if (child_gone(pid, &status)) {
            fprintf(stderr,
                    "adi-tasks-bench: the replica exited (status %d) with %lld tasks left\n",
                    status, (long long)st.length);
            return false;
        }
        sleep_s(DRAIN_POLL_MS / 1000.0);
    }
    fprintf(stderr, "adi-tasks-bench: the queue was not drained within %.0f s\n", timeout_s);
    return false;
}

/* The task's started_at_us (the runner's STARTED write, Redis's clock in us) into `*us`. */
static bool started_us(adi_bus_t *bus, const char *id, adi_pool_t *pool, int64_t *us)
{
    char key[64];
    snprintf(key, sizeof(key), ADI_KEY_TASK_STATE_FMT, id);
    const char *argv[] = {"HGET", key, "started_at_us"};
    adi_bus_value_t *v = NULL;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_bus_command(bus, 0, 3, argv, NULL, pool, &v, &err) != ADI_OK) {
        fprintf(stderr, "adi-tasks-bench: HGET %s: %s\n", key, err.message);
        return false;
    }
    if (v->type != ADI_BUS_V_STR) {
        fprintf(stderr, "adi-tasks-bench: task %s has no started_at_us (an older runner?)\n", id);
        return false;
    }
    *us = strtoll(v->s.ptr, NULL, 10);
    return true;
}

/* Reads the states of `n` tasks; `client_us` (may be NULL): the producer's clock per task. */
static bool read_states(adi_bus_t *bus, char (*ids)[37], const int64_t *client_us, size_t n,
                        states_t *s)
{
    memset(s, 0, sizeof(*s));
    s->start_lat = calloc(n ? n : 1, sizeof(double));
    s->done_lat = calloc(n ? n : 1, sizeof(double));
    s->client_lat = calloc(n ? n : 1, sizeof(double));
    if (s->start_lat == NULL || s->done_lat == NULL || s->client_lat == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        adi_pool_t pool;
        adi_pool_init(&pool);
        adi_task_state_t st;
        adi_error_t err;
        adi_error_clear(&err);
        adi_err rc = adi_tasks_state_get(bus, ids[i], &pool, &st, &err);
        if (rc == ADI_NOT_FOUND) {
            s->missing++;
        } else if (rc != ADI_OK) {
            fprintf(stderr, "adi-tasks-bench: state of %s: %s\n", ids[i], err.message);
            adi_pool_dispose(&pool);
            return false;
        } else if (!adi_str_eq_c(st.state, "SUCCESS")) {
            if (s->other++ == 0)
                fprintf(stderr, "adi-tasks-bench: task %s is %.*s (%.*s)\n", ids[i],
                        (int)st.state.len, st.state.ptr, (int)st.error.len,
                        st.error.ptr != NULL ? st.error.ptr : "");
        } else {
            s->success++;
            if (s->first_start_ms == 0 || st.started_at_ms < s->first_start_ms)
                s->first_start_ms = st.started_at_ms;
            if (st.finished_at_ms > s->last_finish_ms)
                s->last_finish_ms = st.finished_at_ms;
            s->start_lat[s->nlat] = (double)(st.started_at_ms - st.enqueued_at_ms);
            s->done_lat[s->nlat] = (double)(st.finished_at_ms - st.enqueued_at_ms);
            if (client_us != NULL) {
                int64_t us = 0;
                if (!started_us(bus, ids[i], &pool, &us)) {
                    adi_pool_dispose(&pool);
                    return false;
                }
                s->client_lat[s->nlat] = (double)(us - client_us[i]) / 1000.0;
            }
            s->nlat++;
        }
        adi_pool_dispose(&pool);
    }
    qsort(s->start_lat, s->nlat, sizeof(double), cmp_double);
    qsort(s->done_lat, s->nlat, sizeof(double), cmp_double);
    qsort(s->client_lat, s->nlat, sizeof(double), cmp_double);
    return true;
}

static void states_free(states_t *s)
{
    free(s->start_lat);
    free(s->done_lat);
    free(s->client_lat);
}

/* Starts argv[0] with its output appended to `log` (or inherited when NULL). */
static pid_t spawn(char **argv, const char *log)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (log != NULL) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
    }
    execv(argv[0], argv);
    fprintf(stderr, "adi-tasks-bench: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* SIGTERM, then SIGKILL after STOP_WAIT_S; true when it exited 0 by itself. */
static bool stop_child(pid_t pid)
{
    int status = 0;
    if (child_gone(pid, &status))
        return false;
    kill(pid, SIGTERM);
    double t0 = mono_s();
    while (!child_gone(pid, &status)) {
        if (mono_s() - t0 > STOP_WAIT_S) {
            fprintf(stderr, "adi-tasks-bench: the replica ignored SIGTERM: killed\n");
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return false;
        }
        sleep_s(0.05);
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: adi-tasks-bench [--queue Q] [--tasks N] [--producers P] [--latency-tasks M]\n"
            "                       [--rate R] [--timeout S] [--json FILE] [--log FILE]\n"
            "                       -- /path/to/adi-task-runner\n"
            "  REDIS_URL and the replica's settings (TASK_QUEUES=Q, TASK_WORKERS, ...) come\n"
            "  from the environment; see bench/tasks.sh\n");
}

int main(int argc, char **argv)
{
    const char *queue = "bench", *json = NULL, *log = NULL;
    long ntasks = 20000, nlat = 1000, producers = 4;
    double rate = 50, timeout_s = 300;
    char **cmd = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            cmd = &argv[i + 1];
            break;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--queue") == 0)
            queue = v;
        else if (strcmp(argv[i - 1], "--tasks") == 0)
            ntasks = atol(v);
        else if (strcmp(argv[i - 1], "--producers") == 0)
            producers = atol(v);
        else if (strcmp(argv[i - 1], "--latency-tasks") == 0)
            nlat = atol(v);
        else if (strcmp(argv[i - 1], "--rate") == 0)
            rate = atof(v);
        else if (strcmp(argv[i - 1], "--timeout") == 0)
            timeout_s = atof(v);
        else if (strcmp(argv[i - 1], "--json") == 0)
            json = v;
        else if (strcmp(argv[i - 1], "--log") == 0)
            log = v;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (cmd == NULL || cmd[0] == NULL || ntasks < 1 || ntasks > MAX_TASKS || nlat < 1 ||
        nlat > MAX_TASKS || producers < 1 || producers > MAX_PRODUCERS || rate <= 0 ||
        timeout_s <= 0 || !adi_tasks_queue_valid(queue)) {
        fprintf(stderr,
                "adi-tasks-bench: need -- <runner>, --tasks and --latency-tasks 1..%d, "
                "--producers 1..%d, --rate > 0, a valid --queue\n",
                MAX_TASKS, MAX_PRODUCERS);
        return 2;
    }
    bench_cfg_t cfg;
    if (adi_cfg_load(rows, sizeof(rows) / sizeof(rows[0]), &cfg, stderr) != 0)
        return 2;
    adi_bus_t *bus = connect_bus(cfg.redis_url);
    if (bus == NULL)
        return 1;

    int status = 1;
    pid_t pid = -1;
    states_t thr = {0}, lat = {0};
    char(*ids)[37] = calloc((size_t)ntasks, sizeof(*ids));
    char(*lat_ids)[37] = calloc((size_t)nlat, sizeof(*lat_ids));
    int64_t *client_us = calloc((size_t)nlat, sizeof(int64_t));
    if (ids == NULL || lat_ids == NULL || client_us == NULL)
        abort();
    if (!reset_queue(bus, queue))
        goto out;

    /* ---- throughput: fill, then start the replica and let it drain the queue ---- */
    printf("adi-task-runner: enqueueing %ld noop tasks on tasks:%s (%ld producers)\n", ntasks,
           queue, producers);
    fflush(stdout);
    fill_t f = {.redis_url = cfg.redis_url, .queue = queue, .ids = ids, .n = (size_t)ntasks};
    atomic_init(&f.next, 0);
    atomic_init(&f.errors, 0);
    pthread_t th[MAX_PRODUCERS];
    double t0 = mono_s();
    for (long i = 0; i < producers; i++)
        if (pthread_create(&th[i], NULL, producer_main, &f) != 0)
            abort();
    for (long i = 0; i < producers; i++)
        pthread_join(th[i], NULL);
    double fill_s = mono_s() - t0;
    if (atomic_load(&f.errors) > 0) {
        fprintf(stderr, "adi-tasks-bench: %ld enqueues failed\n", atomic_load(&f.errors));
        goto out;
    }
    double enqueue_rate = (double)ntasks / fill_s;
    printf("  enqueued in %.2f s (%.0f/s); starting %s\n", fill_s, enqueue_rate, cmd[0]);
    fflush(stdout);
    pid = spawn(cmd, log);
    if (pid < 0) {
        perror("fork");
        goto out;
    }
    if (!wait_drained(bus, queue, pid, timeout_s) ||
        !read_states(bus, ids, NULL, (size_t)ntasks, &thr))
        goto out;
    if (thr.success != ntasks) {
        fprintf(stderr, "adi-tasks-bench: %ld of %ld tasks succeeded (%ld other, %ld missing)\n",
                thr.success, ntasks, thr.other, thr.missing);
        goto out;
    }
    double span_s = (double)(thr.last_finish_ms - thr.first_start_ms) / 1000.0;
    double per_sec = span_s > 0 ? (double)ntasks / span_s : 0;
    printf("  throughput %.0f tasks/s (%ld tasks, first start to last success %.3f s)\n", per_sec,
           ntasks, span_s);
    fflush(stdout);

    /* ---- latency: paced enqueues to the idle replica ---- */
    printf("adi-task-runner: %ld noop tasks at %.0f/s, one at a time\n", nlat, rate);
    fflush(stdout);
    t0 = mono_s();
    for (long i = 0; i < nlat; i++) {
        sleep_s(t0 + (double)i / rate - mono_s());
        client_us[i] = adi_now_us();
        if (!enqueue_noop(bus, queue, lat_ids[i]))
            goto out;
    }
    if (!wait_drained(bus, queue, pid, timeout_s) ||
        !read_states(bus, lat_ids, client_us, (size_t)nlat, &lat))
        goto out;
    if (lat.success != nlat) {
        fprintf(stderr, "adi-tasks-bench: %ld of %ld tasks succeeded (%ld other, %ld missing)\n",
                lat.success, nlat, lat.other, lat.missing);
        goto out;
    }
    /* Enqueue-to-start: the producer's clock before the call to started_at_us (us). */
    double p50 = quantile(lat.client_lat, lat.nlat, 0.50);
    double p99 = quantile(lat.client_lat, lat.nlat, 0.99);
    double mean = 0;
    for (size_t i = 0; i < lat.nlat; i++)
        mean += lat.client_lat[i];
    mean /= (double)(lat.nlat ? lat.nlat : 1);
    /* Cross-checks in whole ms from the state hash: enqueued_at_ms to started_at_ms (start) and
     * to finished_at_ms (success). */
    double h50 = quantile(lat.start_lat, lat.nlat, 0.50);
    double h99 = quantile(lat.start_lat, lat.nlat, 0.99);
    double d50 = quantile(lat.done_lat, lat.nlat, 0.50);
    double d99 = quantile(lat.done_lat, lat.nlat, 0.99);
    printf("  enqueue-to-start p50 %.2f ms  p99 %.2f ms  mean %.2f ms\n", p50, p99, mean);
    printf("  state hash (whole ms): enqueue-to-start p50 %.0f ms  p99 %.0f ms; enqueue-to-success "
           "p50 %.0f ms  p99 %.0f ms\n",
           h50, h99, d50, d99);
    status = 0;
    if (json != NULL) {
        FILE *jf = fopen(json, "w");
        if (jf == NULL) {
            perror(json);
            status = 1;
        } else {
            fprintf(jf,
                    "{\n  \"tasks\": %ld,\n  \"producers\": %ld,\n  \"enqueue_per_sec\": %.1f,\n"
                    "  \"per_sec\": %.1f,\n  \"span_s\": %.3f,\n"
                    "  \"latency\": {\"tasks\": %ld, \"rate_per_sec\": %.1f,\n"
                    "    \"start_p50_ms\": %.3f, \"start_p99_ms\": %.3f, \"start_mean_ms\": %.3f,\n"
                    "    \"state_start_p50_ms\": %.0f, \"state_start_p99_ms\": %.0f,\n"
                    "    \"done_p50_ms\": %.0f, \"done_p99_ms\": %.0f}\n}\n",
                    ntasks, producers, enqueue_rate, per_sec, span_s, nlat, rate, p50, p99, mean,
                    h50, h99, d50, d99);
            fclose(jf);
        }
    }

out:
    if (pid > 0 && !stop_child(pid)) {
        fprintf(stderr, "adi-tasks-bench: the replica did not stop cleanly (see its log)\n");
        status = 1;
    }
    states_free(&thr);
    states_free(&lat);
    reset_queue(bus, queue);
    free(ids);
    free(lat_ids);
    free(client_us);
    adi_bus_free(bus);
    return status;
}
