/* SPDX-License-Identifier: MIT */
/*
 * Task queues on Redis, the producer's and operator's side (see adi/tasks.h): enqueueing (one
 * script for lock, state and XADD/ZADD), reading a task's state, the delayed-task mover, queue
 * statistics, listing queues and requeueing dead letters. Task messages are built and checked
 * only through the proto codec (task_msg), so what a producer writes is exactly what the
 * workers accept. Args are never logged or put into an error message.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adi/crypto.h"
#include "adi/keys.h"
#include "adi/messages.h"
#include "adi/tasks.h"

#define DEFAULT_MAXLEN 100000
#define KEY_MAX        256
#define QUEUES_MAX     1000

/* Lua helpers every script starts with: Redis's clock in ms and integer formatting. */
#define LUA_PRELUDE                                                                                \
    "local function s(n) return string.format('%d', n) end\n"                                      \
    "local t = redis.call('TIME')\n"                                                               \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/*
 * KEYS: stream, delayed, state, unique. ARGV: id, task bytes, delay_ms, unique (1/0), lock ttl
 * ms, state ttl s, (unused), name, queue, tenant, max_attempts, request_id.
 * Returns {1, now} when enqueued, {0, holder id} when the unique lock is held, {2, now} when the
 * task's state already exists (a repeated enqueue of a caller-chosen id: nothing changes).
 */
static const char enqueue_lua[] = LUA_PRELUDE
    "if redis.call('EXISTS', KEYS[3]) == 1 then return {2, now} end\n"
    "if ARGV[4] == '1' then\n"
    "  if not redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', ARGV[5]) then\n"
    "    return {0, redis.call('GET', KEYS[4]) or ''}\n"
    "  end\n"
    "end\n"
    "local delay = tonumber(ARGV[3])\n"
    "redis.call('HSET', KEYS[3], 'id', ARGV[1], 'state', 'PENDING', 'name', ARGV[8],\n"
    "  'queue', ARGV[9], 'tenant_id', ARGV[10], 'attempt', '0', 'max_attempts', ARGV[11],\n"
    "  'request_id', ARGV[12], 'enqueued_at_ms', s(now), 'updated_at_ms', s(now))\n"
    "redis.call('EXPIRE', KEYS[3], s(tonumber(ARGV[6]) + math.ceil(delay / 1000)))\n"
    "if delay > 0 then\n"
    "  redis.call('HSET', KEYS[3], 'due_at_ms', s(now + delay))\n"
    "  redis.call('ZADD', KEYS[2], s(now + delay), ARGV[2])\n"
    "else\n"
    "  redis.call('XADD', KEYS[1], '*', 'm', ARGV[2])\n"
    "end\n"
    "return {1, now}\n";

/* KEYS: delayed, stream. ARGV: limit. Returns how many moved. */
static const char move_lua[] = LUA_PRELUDE
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', s(now), 'LIMIT', 0, ARGV[1])\n"
    "for i = 1, #due do\n"
    "  redis.call('XADD', KEYS[2], '*', 'm', due[i])\n"
    "  redis.call('ZREM', KEYS[1], due[i])\n"
    "end\n"
    "return #due\n";

/* KEYS: dead, stream, state. ARGV: dead entry id, new task bytes, (unused), state ttl s. */
static const char requeue_lua[] = LUA_PRELUDE
    "if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "redis.call('XADD', KEYS[2], '*', 'm', ARGV[2])\n"
    "redis.call('HSET', KEYS[3], 'state', 'PENDING', 'attempt', '0', 'updated_at_ms', s(now))\n"
    "redis.call('HDEL', KEYS[3], 'error', 'result', 'finished_at_ms', 'due_at_ms')\n"
    "redis.call('EXPIRE', KEYS[3], ARGV[4])\n"
    "return 1\n";

bool adi_tasks_queue_valid(const char *q)
{
    if (q == NULL || q[0] == '\0' || strlen(q) > ADI_TASKS_QUEUE_MAX)
        return false;
    for (const char *p = q; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
              *p == '.'))
            return false;
    return true;
}

bool adi_tasks_unique_key(const char *name, adi_str_t tenant_id, adi_str_t args, char *out,
                          size_t n)
{
    /* SHA-256 over tenant, a NUL separator and the args bytes, incrementally via one buffer. */
    adi_buf_t b;
    adi_buf_init(&b);
    if (tenant_id.ptr != NULL)
        adi_buf_append(&b, tenant_id.ptr, tenant_id.len);
    adi_buf_append(&b, "", 1);
    if (args.ptr != NULL)
        adi_buf_append(&b, args.ptr, args.len);
    unsigned char d[ADI_SHA256_LEN];
    adi_sha256(b.data, b.len, d);
    adi_buf_dispose(&b);
    char hex[2 * ADI_SHA256_LEN + 1];
    for (size_t i = 0; i < ADI_SHA256_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    int w = snprintf(out, n, ADI_KEY_TASK_UNIQUE_FMT, name, hex);
    return w > 0 && (size_t)w < n;
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

void adi_tasks_derive_id(adi_str_t seed, char out[37])
{
    adi_uuid_derive(seed, out);
}

/* True when `id` is a UUID in lower case (the form task ids and their state keys use). */
static bool id_valid(const char *id)
{
    if (!adi_uuid_valid(adi_str_c(id)))
        return false;
    for (const char *p = id; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            return false;
    return true;
}

/* Checks the spec's numbers and names; field messages name what is wrong. */
static adi_err check_spec(const adi_task_spec_t *s, const char *queue, adi_error_t *err)
{
    if (!adi_tasks_queue_valid(queue))
        adi_error_field(err, "queue", "Enter 1-%d of a-z, 0-9, '_', '-' or '.'.",
                        ADI_TASKS_QUEUE_MAX);
    if (s->name == NULL || s->name[0] == '\0')
        adi_error_field(err, "name", "This field is required.");
    if (s->args.ptr != NULL && s->args.len > ADI_TASKS_ARGS_MAX)
        adi_error_field(err, "args", "Ensure this field has no more than %d bytes.",
                        ADI_TASKS_ARGS_MAX);
    if (s->max_attempts < 0 || s->max_attempts > 1000)
        adi_error_field(err, "max_attempts", "Ensure this value is between 0 and 1000.");
    if (s->time_limit_ms < 0 || s->time_limit_ms > 86400000)
        adi_error_field(err, "time_limit_ms", "Ensure this value is between 0 and 86400000.");
    if (s->delay_ms < 0 || s->delay_ms > ADI_TASKS_DELAY_MAX_MS)
        adi_error_field(err, "delay_ms", "Ensure this value is between 0 and %lld.",
                        (long long)ADI_TASKS_DELAY_MAX_MS);
    if (s->id != NULL && s->id[0] != '\0' && !id_valid(s->id))
        adi_error_field(err, "id", "Must be a valid UUID.");
    if (s->unique_ttl_ms < 0 || s->state_ttl_s < 0)
        adi_error_field(err, "non_field_errors", "TTLs may not be negative.");
    if (err != NULL && err->code != ADI_OK)
        return err->code;
    if (s->args.ptr != NULL && s->args.len > 0) {
        /* One well-formed msgpack map (decoding it as an empty message checks exactly that). */
        adi_pool_t pool;
        adi_pool_init(&pool);
        adi_empty *e = adi_pool_alloc(&pool, sizeof(*e));
        adi_error_t derr;
        adi_error_clear(&derr);
        adi_err rc = adi_proto_decode(&adi_empty__desc, s->args.ptr, s->args.len, &pool, e, &derr);
        adi_pool_dispose(&pool);
        if (rc != ADI_OK)
            return adi_error_field(err, "args", "Expected a dictionary of items.");
    }
    return ADI_OK;
}

/* Keys of queue q. */
static void queue_keys(const char *q, char stream[KEY_MAX], char delayed[KEY_MAX],
                       char dead[KEY_MAX])
{
    if (stream != NULL)
        snprintf(stream, KEY_MAX, ADI_KEY_TASKS_FMT, q);
    if (delayed != NULL)
        snprintf(delayed, KEY_MAX, ADI_KEY_TASKS_DELAYED_FMT, q);
    if (dead != NULL)
        snprintf(dead, KEY_MAX, ADI_KEY_TASKS_DEAD_FMT, q);
}

static adi_err unexpected(const char *what, adi_error_t *err)
{
    return adi_error_set(err, ADI_INTERNAL, "%s: unexpected reply", what);
}

adi_err adi_tasks_enqueue(adi_bus_t *bus, const adi_task_spec_t *spec, char id[37],
                          adi_error_t *err)
{
    id[0] = '\0';
    const char *queue =
        spec->queue != NULL && spec->queue[0] != '\0' ? spec->queue : ADI_TASKS_DEFAULT_QUEUE;
    adi_err rc = check_spec(spec, queue, err);
    if (rc != ADI_OK)
        return rc;

    adi_pool_t pool;
    adi_pool_init(&pool);
    char tid[37];
    if (spec->id != NULL && spec->id[0] != '\0')
        memcpy(tid, spec->id, sizeof(tid)); /* 36 characters and NUL: checked by check_spec */
    else
        adi_uuid_v4(tid);
    task_msg t;
    memset(&t, 0, sizeof(t));
    t.id = adi_str_c(tid);
    t.name = adi_str_c(spec->name);
    t.args = spec->args.ptr != NULL && spec->args.len > 0 ? spec->args : ADI_STR_NULL;
    t.max_attempts = spec->max_attempts;
    t.time_limit_ms = spec->time_limit_ms;
    t.tenant_id = adi_str_c(or_empty(spec->tenant_id));
    t.request_id = adi_str_c(or_empty(spec->request_id));
    t.enqueued_at_ms = adi_now_ms();
    adi_str_t bytes = adi_proto_encode_pool(&task_msg__desc, &t, &pool);

    /* What the workers will accept: check the encoded message with the same descriptor. */
    task_msg *back = adi_pool_alloc(&pool, sizeof(*back));
    rc = adi_proto_decode(&task_msg__desc, bytes.ptr, bytes.len, &pool, back, err);
    if (rc == ADI_OK)
        rc = adi_proto_check_required(&task_msg__desc, back, err);
    if (rc != ADI_OK)
        goto out;

    char stream[KEY_MAX], delayed[KEY_MAX], state[KEY_MAX], unique[KEY_MAX];
    queue_keys(queue, stream, delayed, NULL);
    snprintf(state, sizeof(state), ADI_KEY_TASK_STATE_FMT, tid);
    if (!adi_tasks_unique_key(spec->name, t.tenant_id, t.args, unique, sizeof(unique))) {
        rc = adi_error_field(err, "name", "Ensure this field has no more than 128 characters.");
        goto out;
    }
    int64_t lock_ms =
        spec->delay_ms + (spec->unique_ttl_ms > 0 ? spec->unique_ttl_ms : ADI_TASKS_UNIQUE_TTL_MS);
    char delays[24], locks[24], ttls[24], maxlens[24], attempts[16];
    snprintf(delays, sizeof(delays), "%" PRId64, spec->delay_ms);
    snprintf(locks, sizeof(locks), "%" PRId64, lock_ms);
    snprintf(ttls, sizeof(ttls), "%" PRId64,
             spec->state_ttl_s > 0 ? spec->state_ttl_s : (int64_t)ADI_TASKS_STATE_TTL_S);
    snprintf(maxlens, sizeof(maxlens), "%d", DEFAULT_MAXLEN);
    snprintf(attempts, sizeof(attempts), "%d", spec->max_attempts);
    const char *argv[16] = {stream,   delayed,
                            state,    unique,
                            tid,      bytes.ptr,
                            delays,   spec->unique ? "1" : "0",
                            locks,    ttls,
                            maxlens,  spec->name,
                            queue,    or_empty(spec->tenant_id),
                            attempts, or_empty(spec->request_id)};
    size_t lens[16];
    for (int i = 0; i < 16; i++)
        lens[i] = strlen(argv[i]);
    lens[5] = bytes.len;
    adi_bus_value_t *v = NULL;
    rc = adi_bus_eval(bus, enqueue_lua, 4, 16, argv, lens, &pool, &v, err);
    if (rc != ADI_OK)
        goto out;
    if (v->type != ADI_BUS_V_ARRAY || v->n != 2 || v->items[0].type != ADI_BUS_V_INT) {
        rc = unexpected("enqueue", err);
        goto out;
    }
    /* {2, now}: the task exists already (a repeated enqueue of its id), which is a success. */
    if (v->items[0].i == 0) {
        const adi_bus_value_t *holder = &v->items[1];
        if (holder->type == ADI_BUS_V_STR && holder->s.len == 36)
            memcpy(id, holder->s.ptr, 37);
        rc = adi_error_set(err, ADI_CONFLICT, "Task %s is already queued or running as %s.",
                           spec->name, id[0] ? id : "another task");
        goto out;
    }
    memcpy(id, tid, sizeof(tid));
out:
    adi_pool_dispose(&pool);
    return rc;
}

/* ---- state -------------------------------------------------------------------------------- */

static int64_t to_i64(adi_str_t s)
{
    if (s.ptr == NULL)
        return 0;
    return strtoll(s.ptr, NULL, 10);
}

adi_err adi_tasks_state_get(adi_bus_t *bus, const char *id, adi_pool_t *pool, adi_task_state_t *out,
                            adi_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (id == NULL || !adi_uuid_valid(adi_str_c(id)))
        return adi_error_set(err, ADI_INVALID, "Must be a valid UUID.");
    char key[KEY_MAX];
    snprintf(key, sizeof(key), ADI_KEY_TASK_STATE_FMT, id);
    const char *hget[2] = {"HGETALL", key};
    adi_bus_value_t *v = NULL;
    adi_err rc = adi_bus_command(bus, 0, 2, hget, NULL, pool, &v, err);
    if (rc != ADI_OK)
        return rc;
    if (v->type != ADI_BUS_V_ARRAY || v->n % 2 != 0)
        return unexpected("HGETALL", err);
    if (v->n == 0)
        return adi_error_set(err, ADI_NOT_FOUND, "Not found.");
    for (size_t i = 0; i + 1 < v->n; i += 2) {
        const adi_bus_value_t *k = &v->items[i], *val = &v->items[i + 1];
        if (k->type != ADI_BUS_V_STR || val->type != ADI_BUS_V_STR)
            continue;
        adi_str_t f = k->s, s = val->s;
        if (adi_str_eq_c(f, "id"))
            out->id = s;
        else if (adi_str_eq_c(f, "state"))
            out->state = s;
        else if (adi_str_eq_c(f, "name"))
            out->name = s;
        else if (adi_str_eq_c(f, "queue"))
            out->queue = s;
        else if (adi_str_eq_c(f, "tenant_id"))
            out->tenant_id = s;
        else if (adi_str_eq_c(f, "result"))
            out->result = s;
        else if (adi_str_eq_c(f, "error"))
            out->error = s;
        else if (adi_str_eq_c(f, "worker"))
            out->worker = s;
        else if (adi_str_eq_c(f, "attempt"))
            out->attempt = to_i64(s);
        else if (adi_str_eq_c(f, "max_attempts"))
            out->max_attempts = to_i64(s);
        else if (adi_str_eq_c(f, "enqueued_at_ms"))
            out->enqueued_at_ms = to_i64(s);
        else if (adi_str_eq_c(f, "due_at_ms"))
            out->due_at_ms = to_i64(s);
        else if (adi_str_eq_c(f, "started_at_ms"))
            out->started_at_ms = to_i64(s);
        else if (adi_str_eq_c(f, "finished_at_ms"))
            out->finished_at_ms = to_i64(s);
    }
    if (out->id.ptr == NULL)
        out->id = adi_pool_strdup(pool, adi_str_c(id));
    if (out->tenant_id.ptr == NULL)
        out->tenant_id = ADI_STR("");
    const char *ttl[2] = {"TTL", key};
    rc = adi_bus_command(bus, 0, 2, ttl, NULL, pool, &v, err);
    if (rc != ADI_OK)
        return rc;
    out->ttl_s = v->type == ADI_BUS_V_INT ? v->i : -1;
    return ADI_OK;
}

/* ---- mover, stats, queues, dead letters --------------------------------------------------- */

adi_err adi_tasks_move_due(adi_bus_t *bus, const char *queue, int limit, int64_t *moved,
                           adi_error_t *err)
{
    if (moved != NULL)
        *moved = 0;
    if (!adi_tasks_queue_valid(queue) || limit < 1 || limit > 1000)
        return adi_error_set(err, ADI_INVALID, "bad queue or limit");
    char stream[KEY_MAX], delayed[KEY_MAX], limits[16];
    queue_keys(queue, stream, delayed, NULL);
    snprintf(limits, sizeof(limits), "%d", limit);
    const char *argv[3] = {delayed, stream, limits};
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_bus_value_t *v = NULL;
    adi_err rc = adi_bus_eval(bus, move_lua, 2, 3, argv, NULL, &pool, &v, err);
    if (rc == ADI_OK && v->type != ADI_BUS_V_INT)
        rc = unexpected("mover", err);
    if (rc == ADI_OK && moved != NULL)
        *moved = v->i;
    adi_pool_dispose(&pool);
    return rc;
}

/* The integer reply of a one-key command (XLEN, ZCARD); a missing key counts 0. */
static adi_err count_of(adi_bus_t *bus, const char *cmd, const char *key, int64_t *out,
                        adi_error_t *err)
{
    *out = 0;
    const char *argv[2] = {cmd, key};
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_bus_value_t *v = NULL;
    adi_err rc = adi_bus_command(bus, 0, 2, argv, NULL, &pool, &v, err);
    if (rc == ADI_OK) {
        if (v->type == ADI_BUS_V_INT)
            *out = v->i;
        else
            rc = unexpected(cmd, err);
    }
    adi_pool_dispose(&pool);
    return rc;
}

adi_err adi_tasks_queue_stats(adi_bus_t *bus, const char *queue, adi_task_queue_stats_t *out,
                              adi_error_t *err)
{
    memset(out, 0, sizeof(*out));
    if (!adi_tasks_queue_valid(queue))
        return adi_error_set(err, ADI_INVALID, "bad queue name");
    char stream[KEY_MAX], delayed[KEY_MAX], dead[KEY_MAX];
    queue_keys(queue, stream, delayed, dead);
    adi_err rc = count_of(bus, "XLEN", stream, &out->length, err);
    if (rc == ADI_OK)
        rc = count_of(bus, "ZCARD", delayed, &out->delayed, err);
    if (rc == ADI_OK)
        rc = count_of(bus, "XLEN", dead, &out->dead, err);
    if (rc != ADI_OK)
        return rc;
    adi_bus_group_info_t gi;
    rc = adi_bus_group_info(bus, stream, ADI_TASKS_GROUP, &gi, err);
    if (rc == ADI_NOT_FOUND) {
        adi_error_clear(err);
        gi.pending = 0;
    } else if (rc != ADI_OK) {
        return rc;
    }
    out->pending = gi.pending;
    out->waiting = out->length > out->pending ? out->length - out->pending : 0;
    return ADI_OK;
}

/* The queue a key names (tasks:<q>, tasks:<q>:delayed, tasks:<q>:dead) into q, or false. */
static bool queue_of_key(adi_str_t key, char q[ADI_TASKS_QUEUE_MAX + 1])
{
    static const char prefix[] = "tasks:";
    if (key.len <= sizeof(prefix) - 1 || memcmp(key.ptr, prefix, sizeof(prefix) - 1) != 0)
        return false;
    const char *p = key.ptr + sizeof(prefix) - 1;
    size_t n = key.len - (sizeof(prefix) - 1);
    const char *colon = memchr(p, ':', n);
    size_t qlen = colon != NULL ? (size_t)(colon - p) : n;
    if (colon != NULL) {
        adi_str_t rest = {colon, n - qlen};
        if (!adi_str_eq_c(rest, ":delayed") && !adi_str_eq_c(rest, ":dead"))
            return false;
    }
    if (qlen == 0 || qlen > ADI_TASKS_QUEUE_MAX)
        return false;
    memcpy(q, p, qlen);
    q[qlen] = '\0';
    return adi_tasks_queue_valid(q);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

adi_err adi_tasks_queues(adi_bus_t *bus, adi_pool_t *pool, const char ***names, size_t *n,
                         adi_error_t *err)
{
    *names = NULL;
    *n = 0;
    const char **list = adi_pool_alloc(pool, QUEUES_MAX * sizeof(*list));
    size_t count = 0;
    char cursor[32] = "0";
    adi_err rc = ADI_OK;
    /* Bounded: a keyspace of a few million keys is swept in at most this many rounds. */
    for (int round = 0; round < 100000; round++) {
        adi_pool_t tmp;
        adi_pool_init(&tmp);
        const char *argv[6] = {"SCAN", cursor, "MATCH", "tasks:*", "COUNT", "1000"};
        adi_bus_value_t *v = NULL;
        rc = adi_bus_command(bus, 0, 6, argv, NULL, &tmp, &v, err);
        if (rc == ADI_OK &&
            (v->type != ADI_BUS_V_ARRAY || v->n != 2 || v->items[0].type != ADI_BUS_V_STR ||
             v->items[0].s.len >= 32 || v->items[1].type != ADI_BUS_V_ARRAY))
            rc = unexpected("SCAN", err);
        if (rc != ADI_OK) {
            adi_pool_dispose(&tmp);
            return rc;
        }
        memcpy(cursor, v->items[0].s.ptr, v->items[0].s.len + 1);
        const adi_bus_value_t *keys = &v->items[1];
        for (size_t i = 0; i < keys->n && count < QUEUES_MAX; i++) {
            char q[ADI_TASKS_QUEUE_MAX + 1];
            if (keys->items[i].type != ADI_BUS_V_STR || !queue_of_key(keys->items[i].s, q))
                continue;
            bool seen = false;
            for (size_t j = 0; j < count && !seen; j++)
                seen = strcmp(list[j], q) == 0;
            if (!seen)
                list[count++] = adi_pool_strdup(pool, adi_str_c(q)).ptr;
        }
        adi_pool_dispose(&tmp);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    qsort(list, count, sizeof(*list), cmp_names);
    *names = list;
    *n = count;
    return ADI_OK;
}

adi_err adi_tasks_requeue_dead(adi_bus_t *bus, const char *queue, int max, int64_t *moved,
                               int64_t *skipped, adi_error_t *err)
{
    if (moved != NULL)
        *moved = 0;
    if (skipped != NULL)
        *skipped = 0;
    if (!adi_tasks_queue_valid(queue) || max < 1 || max > 10000)
        return adi_error_set(err, ADI_INVALID, "bad queue or count");
    char stream[KEY_MAX], dead[KEY_MAX], counts[16], maxlens[24], ttls[24];
    queue_keys(queue, stream, NULL, dead);
    snprintf(maxlens, sizeof(maxlens), "%d", DEFAULT_MAXLEN);
    snprintf(ttls, sizeof(ttls), "%d", ADI_TASKS_STATE_TTL_S);
    char after[ADI_BUS_ID_MAX + 1] = "-";
    int64_t done = 0, bad = 0;
    adi_err rc = ADI_OK;
    while (rc == ADI_OK && done + bad < max) {
        int want = max - (int)(done + bad);
        snprintf(counts, sizeof(counts), "%d", want > 100 ? 100 : want);
        adi_pool_t pool;
        adi_pool_init(&pool);
        const char *range[6] = {"XRANGE", dead, after, "+", "COUNT", counts};
        adi_bus_value_t *v = NULL;
        rc = adi_bus_command(bus, 0, 6, range, NULL, &pool, &v, err);
        if (rc == ADI_OK && v->type != ADI_BUS_V_ARRAY)
            rc = unexpected("XRANGE", err);
        size_t got = rc == ADI_OK ? v->n : 0;
        for (size_t i = 0; rc == ADI_OK && i < got; i++) {
            const adi_bus_value_t *e = &v->items[i];
            if (e->type != ADI_BUS_V_ARRAY || e->n != 2 || e->items[0].type != ADI_BUS_V_STR ||
                e->items[0].s.len >= ADI_BUS_ID_MAX || e->items[1].type != ADI_BUS_V_ARRAY) {
                rc = unexpected("XRANGE", err);
                break;
            }
            adi_str_t eid = e->items[0].s;
            /* Continue after this id next round ("(" = exclusive). */
            snprintf(after, sizeof(after), "(%s", eid.ptr);
            adi_str_t m = ADI_STR_NULL;
            const adi_bus_value_t *kv = &e->items[1];
            for (size_t k = 0; k + 1 < kv->n; k += 2)
                if (kv->items[k].type == ADI_BUS_V_STR && adi_str_eq_c(kv->items[k].s, "m") &&
                    kv->items[k + 1].type == ADI_BUS_V_STR)
                    m = kv->items[k + 1].s;
            task_msg *t = adi_pool_alloc(&pool, sizeof(*t));
            adi_error_t derr;
            adi_error_clear(&derr);
            if (m.ptr == NULL || m.len == 0 ||
                adi_proto_decode(&task_msg__desc, m.ptr, m.len, &pool, t, &derr) != ADI_OK ||
                adi_proto_check_required(&task_msg__desc, t, &derr) != ADI_OK) {
                bad++;
                continue;
            }
            t->attempt = 0;
            adi_str_t bytes = adi_proto_encode_pool(&task_msg__desc, t, &pool);
            char state[KEY_MAX];
            snprintf(state, sizeof(state), ADI_KEY_TASK_STATE_FMT,
                     adi_pool_strdup(&pool, t->id).ptr);
            const char *argv[7] = {dead, stream, state, eid.ptr, bytes.ptr, maxlens, ttls};
            size_t lens[7];
            for (int j = 0; j < 7; j++)
                lens[j] = strlen(argv[j]);
            lens[4] = bytes.len;
            adi_bus_value_t *r = NULL;
            rc = adi_bus_eval(bus, requeue_lua, 3, 7, argv, lens, &pool, &r, err);
            if (rc == ADI_OK && r->type == ADI_BUS_V_INT && r->i == 1)
                done++;
        }
        adi_pool_dispose(&pool);
        if (got == 0)
            break;
    }
    if (moved != NULL)
        *moved = done;
    if (skipped != NULL)
        *skipped = bad;
    return rc;
}
