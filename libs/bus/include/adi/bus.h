/* SPDX-License-Identifier: MIT */
/*
 * The bus: requests and replies over Redis streams, from a worker thread. An adi_bus_t is one
 * synchronous hiredis connection (redisContext) owned by one thread. It connects on first use,
 * and after a failure it drops the connection and reconnects on a later call with exponential
 * backoff, so a Redis restart is survived without restarting the process. Every command has a
 * reply timeout; blocking reads add their BLOCK time to it.
 *
 * Stream entries carry one field, ADI_STREAM_FIELD ("m"), holding a msgpack adi_envelope (request
 * streams) or adi_reply (reply streams). Payloads are bounded by ADI_BUS_MAX_ENTRY in both
 * directions. Envelopes and replies are built and parsed only through the proto codec
 * (adi_envelope__desc, adi_reply__desc).
 *
 * The process must ignore SIGPIPE (hiredis writes to sockets with write(2)); adi_svc_run does.
 */
#ifndef ADI_BUS_H
#define ADI_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "adi/core.h"
#include "adi/keys.h"
#include "adi/messages.h"

/** Largest payload of one stream entry (request envelope or reply), in bytes. */
#define ADI_BUS_MAX_ENTRY (4u * 1024u * 1024u)
/** Most entries one read or reclaim returns. */
#define ADI_BUS_BATCH_MAX 64
/** Room for a stream entry id ("<ms>-<seq>") plus its NUL. */
#define ADI_BUS_ID_MAX 48

/** One Redis connection, used by one thread at a time. */
typedef struct adi_bus adi_bus_t;

/** How to reach Redis and how to write. Zero values pick the defaults. */
typedef struct adi_bus_opts {
    const char *url;          /* redis://[[user]:password@]host[:port][/db]; copied */
    int connect_timeout_ms;   /* connect timeout, default 2000 */
    int command_timeout_ms;   /* reply timeout beyond a command's own BLOCK time, default 5000 */
    int64_t maxlen;           /* approximate cap (MAXLEN ~) of every XADD, default 100000 */
    const char *reply_stream; /* this client's own reply stream for adi_bus_call, or NULL; copied */
} adi_bus_opts_t;

/** One stream entry. Borrowed from the batch that holds it: valid until its dispose. */
typedef struct adi_bus_entry {
    adi_str_t id;   /* entry id, NUL-terminated */
    adi_str_t msg;  /* the "m" field's bytes; ptr NULL when absent, deleted or too large */
    bool too_large; /* the "m" field exceeded ADI_BUS_MAX_ENTRY (msg.ptr is then NULL) */
} adi_bus_entry_t;

/**
 * Entries returned by one read or reclaim, in caller storage. The read functions initialise it;
 * after any of them returns (success or not) call adi_bus_batch_dispose once.
 */
typedef struct adi_bus_batch {
    size_t n;                                 /* entries in items[] */
    adi_bus_entry_t items[ADI_BUS_BATCH_MAX]; /* the entries, in stream order */
    void *reply_;                             /* private: the redisReply the items point into */
} adi_bus_batch_t;

/** What XINFO GROUPS says about one consumer group. */
typedef struct adi_bus_group_info {
    int64_t consumers;    /* consumers known to the group */
    int64_t pending;      /* entries delivered but not yet acknowledged */
    int64_t lag;          /* entries not yet delivered to the group; -1 when Redis cannot tell */
    int64_t entries_read; /* entries delivered so far; -1 when Redis cannot tell */
} adi_bus_group_info_t;

/** A request for adi_bus_call_req. Every pointer is borrowed for the duration of the call. */
typedef struct adi_bus_request {
    const char *service;            /* target service: XADD to svc:{service}:req */
    const char *op;                 /* wire name of the operation ("auth.user_get") */
    const char *id;                 /* request (correlation) id; NULL generates a UUID */
    const char *trace_id;           /* trace id for the callee's logs, or NULL */
    const adi_principal *principal; /* the caller as the callee sees it, or NULL */
    adi_str_t params;               /* msgpack map of path/query parameters, ptr NULL for none */
    adi_str_t body;                 /* msgpack request body, ptr NULL for none */
    int64_t deadline_ms;            /* absolute deadline, epoch ms (adi_now_ms) */
} adi_bus_request_t;

/**
 * Parses `opts` and allocates a client; no I/O happens here (the first command connects).
 * On success `*out` owns the client (free with adi_bus_free).
 * Errors: ADI_INVALID when the URL is not redis://[[user]:password@]host[:port][/db] (the message
 * never repeats the password).
 */
adi_err adi_bus_new(const adi_bus_opts_t *opts, adi_bus_t **out, adi_error_t *err);

/** Closes the connection and frees `bus`. NULL is a no-op. */
void adi_bus_free(adi_bus_t *bus);

/** True when a connection is currently established (no I/O). */
bool adi_bus_connected(const adi_bus_t *bus);

/**
 * Milliseconds until the next reconnect attempt is allowed (0 when connected or when a call may
 * connect now). Callers that loop on ADI_UNAVAILABLE sleep this long (bounded) between tries.
 */
int64_t adi_bus_retry_in_ms(const adi_bus_t *bus);

/** PING round trip (connecting first if needed): true when Redis answered. */
bool adi_bus_ping(adi_bus_t *bus);

/**
 * XGROUP CREATE stream group 0 MKSTREAM; an existing group (BUSYGROUP) is success. The group
 * starts at the beginning of the stream, so entries written before it existed are delivered.
 * Errors: ADI_UNAVAILABLE (no connection, or the reconnect backoff has not elapsed),
 * ADI_INTERNAL (Redis refused the command, e.g. the key holds another type).
 */
adi_err adi_bus_ensure_group(adi_bus_t *bus, const char *stream, const char *group,
                             adi_error_t *err);

/**
 * XREADGROUP GROUP group consumer COUNT count BLOCK block_ms STREAMS stream >: new entries for
 * this consumer (count is clamped to 1..ADI_BUS_BATCH_MAX, block_ms to >= 1). No entry within
 * block_ms is success with batch->n == 0.
 * Errors: ADI_NOT_FOUND when the stream or group does not exist (NOGROUP: ensure the group and
 * read again), ADI_UNAVAILABLE (connection), ADI_INTERNAL (unexpected reply).
 */
adi_err adi_bus_read_group(adi_bus_t *bus, const char *stream, const char *group,
                           const char *consumer, int count, int block_ms, adi_bus_batch_t *batch,
                           adi_error_t *err);

/**
 * XAUTOCLAIM stream group consumer min_idle_ms cursor COUNT count: takes over entries pending
 * for longer than min_idle_ms with any consumer. `cursor` (start with "0-0") is updated to where
 * the next call continues ("0-0" again after a full sweep). Entries deleted from the stream while
 * pending are dropped from the pending list by Redis and not returned.
 * Errors: as adi_bus_read_group.
 */
adi_err adi_bus_reclaim(adi_bus_t *bus, const char *stream, const char *group, const char *consumer,
                        int64_t min_idle_ms, int count, char cursor[ADI_BUS_ID_MAX],
                        adi_bus_batch_t *batch, adi_error_t *err);

/**
 * XREAD COUNT count BLOCK block_ms STREAMS stream after: entries after id `after` (no group),
 * e.g. for a reply stream. `after` is advanced to the last returned id.
 * Errors: ADI_UNAVAILABLE, ADI_INTERNAL.
 */
adi_err adi_bus_read(adi_bus_t *bus, const char *stream, char after[ADI_BUS_ID_MAX], int count,
                     int block_ms, adi_bus_batch_t *batch, adi_error_t *err);

/** Frees what a read left in `batch` (its entries become invalid). Safe to call twice. */
void adi_bus_batch_dispose(adi_bus_batch_t *batch);

/**
 * XACK stream group id.
 * Errors: ADI_UNAVAILABLE, ADI_INTERNAL.
 */
adi_err adi_bus_ack(adi_bus_t *bus, const char *stream, const char *group, adi_str_t id,
                    adi_error_t *err);

/**
 * XADD stream MAXLEN ~ <maxlen> * m <msg>. When `id_out` is not NULL it receives the new id.
 * Errors: ADI_TOO_LARGE (msg longer than ADI_BUS_MAX_ENTRY), ADI_UNAVAILABLE, ADI_INTERNAL.
 */
adi_err adi_bus_add(adi_bus_t *bus, const char *stream, adi_str_t msg, char id_out[ADI_BUS_ID_MAX],
                    adi_error_t *err);

/**
 * Writes a reply and then acknowledges the request it answers, pipelined on one connection so
 * Redis applies the XACK only after the XADD: XADD reply_stream MAXLEN ~ N * m <msg>; XACK stream
 * group id. Success means both were applied.
 * Errors: as adi_bus_add and adi_bus_ack.
 */
adi_err adi_bus_reply_ack(adi_bus_t *bus, const char *reply_stream, adi_str_t msg,
                          const char *stream, const char *group, adi_str_t id, adi_error_t *err);

/**
 * Removes `consumer` from the group when it holds no pending entry (XPENDING ... consumer, then
 * XGROUP DELCONSUMER), so consumers of stopped processes do not pile up. A consumer that still
 * holds entries is left alone, for another consumer to reclaim them.
 * Errors: ADI_CONFLICT (it still holds entries), ADI_NOT_FOUND (no such stream or group),
 * ADI_UNAVAILABLE, ADI_INTERNAL.
 */
adi_err adi_bus_retire_consumer(adi_bus_t *bus, const char *stream, const char *group,
                                const char *consumer, adi_error_t *err);

/**
 * DEL key (e.g. a reply stream nobody will read again).
 * Errors: ADI_UNAVAILABLE, ADI_INTERNAL.
 */
adi_err adi_bus_del(adi_bus_t *bus, const char *key, adi_error_t *err);

/**
 * XINFO GROUPS stream, for the entry of `group`: consumers, pending and lag (the backlog).
 * Errors: ADI_NOT_FOUND (no such stream or group), ADI_UNAVAILABLE, ADI_INTERNAL.
 */
adi_err adi_bus_group_info(adi_bus_t *bus, const char *stream, const char *group,
                           adi_bus_group_info_t *out, adi_error_t *err);

/**
 * Waits on `stream` (XREAD BLOCK) for the reply whose id equals `id`, skipping stale replies of
 * earlier calls, until `deadline_ms`. `after` is the id to read after and is advanced. The reply
 * is copied into `pool` and decoded there: `*out` and everything it points to live until the pool
 * is disposed.
 * Errors: ADI_TIMEOUT (deadline passed), ADI_UNAVAILABLE, ADI_INTERNAL (an undecodable reply with
 * the matching id).
 */
adi_err adi_bus_wait_reply(adi_bus_t *bus, const char *stream, adi_str_t id,
                           char after[ADI_BUS_ID_MAX], int64_t deadline_ms, adi_pool_t *pool,
                           adi_reply **out, adi_error_t *err);

/**
 * A service-to-service call: encodes an envelope (protocol ADI_PROTO_VERSION, reply_to = this
 * client's reply stream), XADDs it to svc:{req->service}:req and waits for the reply with the
 * same correlation id (see adi_bus_wait_reply). A reply with an error status is still success
 * here: the caller reads (*out)->status and (*out)->error. `*out` lives in `pool`.
 * Errors: ADI_INVALID (missing service/op, or ids too long), ADI_TOO_LARGE (envelope over
 * ADI_BUS_MAX_ENTRY), ADI_INTERNAL (no reply stream configured), ADI_TIMEOUT, ADI_UNAVAILABLE.
 */
adi_err adi_bus_call_req(adi_bus_t *bus, const adi_bus_request_t *req, adi_pool_t *pool,
                         adi_reply **out, adi_error_t *err);

/**
 * adi_bus_call_req with a generated request id and no params: calls `op` of `service` with the
 * msgpack `body` as `principal`, waiting until `deadline_ms`.
 */
adi_err adi_bus_call(adi_bus_t *bus, const char *service, const char *op,
                     const adi_principal *principal, adi_str_t body, int64_t deadline_ms,
                     adi_pool_t *pool, adi_reply **out, adi_error_t *err);

/* ---- generic commands (added for libs/tasks and the task runner) -------------------------- */

/** The kinds of a reply value of adi_bus_command / adi_bus_eval. */
typedef enum adi_bus_vtype {
    ADI_BUS_V_NIL,   /* nil (a missing key, an empty read, a Lua false) */
    ADI_BUS_V_INT,   /* an integer (Lua numbers are truncated to integers by Redis) */
    ADI_BUS_V_STR,   /* a bulk or status string */
    ADI_BUS_V_ARRAY, /* an array (a Lua table) */
} adi_bus_vtype;

/** One reply value, copied into the caller's pool (valid until the pool is disposed). */
typedef struct adi_bus_value {
    adi_bus_vtype type;          /* what it is */
    int64_t i;                   /* ADI_BUS_V_INT: the value */
    adi_str_t s;                 /* ADI_BUS_V_STR: the bytes, NUL-terminated (len excludes it) */
    size_t n;                    /* ADI_BUS_V_ARRAY: number of items */
    struct adi_bus_value *items; /* ADI_BUS_V_ARRAY: the items */
} adi_bus_value_t;

/** Most arguments one adi_bus_command or adi_bus_eval call passes (keys and arguments). */
#define ADI_BUS_ARGV_MAX 128
/** Deepest nesting of a reply adi_bus_command copies. */
#define ADI_BUS_VALUE_DEPTH 8

/**
 * Runs one Redis command (argv form, binary-safe: `lens` NULL means every argument is a C string)
 * waiting block_ms (for blocking commands, else 0) plus the command timeout, and copies the reply
 * into `pool` as `*out`. An error reply is an error here, never a value.
 * Errors: ADI_INVALID (argc outside 1..ADI_BUS_ARGV_MAX), ADI_TOO_LARGE (arguments over
 * ADI_BUS_MAX_ENTRY bytes), ADI_UNAVAILABLE (connection, or a transient error reply such as
 * LOADING), ADI_INTERNAL (an error reply: "<COMMAND> failed: <first 120 bytes of it>", or a
 * reply nested deeper than ADI_BUS_VALUE_DEPTH).
 */
adi_err adi_bus_command(adi_bus_t *bus, int block_ms, int argc, const char **argv,
                        const size_t *lens, adi_pool_t *pool, adi_bus_value_t **out,
                        adi_error_t *err);

/**
 * EVALSHA of the Lua `script` with `nkeys` keys followed by the other arguments of argv (argc in
 * all, binary-safe as adi_bus_command), loading it (SCRIPT LOAD) on first use per connection and
 * again after NOSCRIPT (a restarted Redis). `script` must stay valid and unchanged as long as the
 * client lives (a string literal): its address keys the client's cache of script digests. The
 * reply is copied into `pool` as `*out`.
 * Errors: ADI_INVALID (no script, nkeys outside 0..argc, argc over ADI_BUS_ARGV_MAX - 3), and
 * those of adi_bus_command ("script failed: ..." for an error the script raised).
 */
adi_err adi_bus_eval(adi_bus_t *bus, const char *script, int nkeys, int argc, const char **argv,
                     const size_t *lens, adi_pool_t *pool, adi_bus_value_t **out, adi_error_t *err);

#endif
