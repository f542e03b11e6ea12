/* SPDX-License-Identifier: MIT */
/*
 * Request/reply over the bus from a synchronous client: a service-to-service call encodes an
 * envelope through the proto codec, XADDs it to the callee's request stream and then blocks on
 * its own reply stream until the reply carrying the same correlation id arrives or the deadline
 * passes. Replies to earlier calls that timed out may still arrive on the reply stream; they are
 * recognised by their id and skipped.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "adi/bus.h"
#include "adi/keys.h"
#include "adi/messages.h"
#include "bus_int.h"

#define REPLY_READ_COUNT 16

/* Decodes one reply entry; `*match` tells whether its correlation id is `id`. */
static adi_err check_entry(const adi_bus_entry_t *e, adi_str_t id, adi_pool_t *pool,
                           adi_reply **out, bool *match, adi_error_t *err)
{
    *match = false;
    *out = NULL;
    if (e->msg.ptr == NULL)
        return ADI_OK;
    adi_pool_t tmp;
    adi_pool_init(&tmp);
    adi_reply *peek = adi_pool_alloc(&tmp, sizeof(*peek));
    adi_error_t ignored;
    bool same = adi_proto_decode(&adi_reply__desc, e->msg.ptr, e->msg.len, &tmp, peek, &ignored) ==
                    ADI_OK &&
                adi_str_eq(peek->id, id);
    adi_pool_dispose(&tmp);
    if (!same)
        return ADI_OK;
    *match = true;
    /* The entry dies with its batch: copy it into the caller's pool and decode it there. */
    adi_str_t copy = adi_pool_strdup(pool, e->msg);
    adi_reply *rep = adi_pool_alloc(pool, sizeof(*rep));
    adi_err rc = adi_proto_decode(&adi_reply__desc, copy.ptr, copy.len, pool, rep, err);
    if (rc == ADI_OK)
        rc = adi_proto_check_required(&adi_reply__desc, rep, err);
    if (rc != ADI_OK)
        return adi_error_set(err, ADI_INTERNAL, "undecodable reply to request %.*s",
                             (int)(id.len > 64 ? 64 : id.len), id.ptr);
    *out = rep;
    return ADI_OK;
}

adi_err adi_bus_wait_reply(adi_bus_t *bus, const char *stream, adi_str_t id,
                           char after[ADI_BUS_ID_MAX], int64_t deadline_ms, adi_pool_t *pool,
                           adi_reply **out, adi_error_t *err)
{
    *out = NULL;
    for (;;) {
        int64_t left = deadline_ms - adi_now_ms();
        if (left <= 0)
            return adi_error_set(err, ADI_TIMEOUT, "No reply before the deadline.");
        adi_bus_batch_t batch;
        adi_err rc = adi_bus_read(bus, stream, after, REPLY_READ_COUNT,
                                  left > 600000 ? 600000 : (int)left, &batch, err);
        if (rc != ADI_OK) {
            adi_bus_batch_dispose(&batch);
            return rc;
        }
        for (size_t i = 0; i < batch.n; i++) {
            bool match = false;
            rc = check_entry(&batch.items[i], id, pool, out, &match, err);
            if (match || rc != ADI_OK) {
                /* Read on from just after the match next time. */
                adi_str_t eid = batch.items[i].id;
                if (eid.len < ADI_BUS_ID_MAX) {
                    memcpy(after, eid.ptr, eid.len);
                    after[eid.len] = '\0';
                }
                adi_bus_batch_dispose(&batch);
                return rc;
            }
        }
        adi_bus_batch_dispose(&batch);
    }
}

/*
 * The id to read the reply stream after: every entry whose millisecond part is at least that of
 * the request's own id, since the reply is written after the request on the same server.
 */
static void start_after(const char *req_id, char after[ADI_BUS_ID_MAX])
{
    unsigned long long ms = 0;
    if (sscanf(req_id, "%llu", &ms) != 1 || ms == 0) {
        snprintf(after, ADI_BUS_ID_MAX, "0-0");
        return;
    }
    snprintf(after, ADI_BUS_ID_MAX, "%llu-18446744073709551615", ms - 1);
}

/*
 * A caller's reply stream lives only while the caller does: each successful call (the reply
 * stream exists then) gives it a TTL of ADI_BUS__REPLY_TTL_MS, refreshed at most once every
 * ADI_BUS__REPLY_REFRESH_MS, so a killed process leaves no stream behind (found by
 * tests/faults: svc:{S}:<consumer>:rep of kill -9'd replicas stayed forever). Best effort: a
 * failure here is the next call's to retry.
 */
static void keep_reply_stream(adi_bus_t *bus, const char *reply_stream)
{
    int64_t now = adi_mono_ms();
    if (bus->reply_ttl_at_ms != 0 && now - bus->reply_ttl_at_ms < ADI_BUS__REPLY_REFRESH_MS)
        return;
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%d", ADI_BUS__REPLY_TTL_MS);
    const char *argv[3] = {"PEXPIRE", reply_stream, ttl};
    redisReply *r = NULL;
    adi_error_t inner;
    adi_error_clear(&inner);
    if (adi_bus__command(bus, 0, 3, argv, NULL, &r, &inner) == ADI_OK) {
        if (r->type != REDIS_REPLY_ERROR)
            bus->reply_ttl_at_ms = now;
        freeReplyObject(r);
    }
}

adi_err adi_bus_call_req(adi_bus_t *bus, const adi_bus_request_t *req, adi_pool_t *pool,
                         adi_reply **out, adi_error_t *err)
{
    *out = NULL;
    const char *reply_stream = adi_bus__reply_stream(bus);
    if (reply_stream == NULL)
        return adi_error_set(err, ADI_INTERNAL, "bus client has no reply stream");
    if (req->service == NULL || req->op == NULL || strlen(req->service) > 64 ||
        strlen(req->op) > 64)
        return adi_error_set(err, ADI_INVALID, "call needs a service and an operation");

    char gen_id[37];
    const char *id = req->id;
    if (id == NULL) {
        adi_uuid_v4(gen_id);
        id = gen_id;
    }
    if (strlen(id) > 128 || (req->trace_id != NULL && strlen(req->trace_id) > 128))
        return adi_error_set(err, ADI_INVALID, "request or trace id too long");

    adi_envelope env;
    memset(&env, 0, sizeof(env));
    adi_principal principal;
    env.v = ADI_PROTO_VERSION;
    env.id = adi_str_c(id);
    env.op = adi_str_c(req->op);
    env.reply_to = adi_str_c(reply_stream);
    env.deadline_ms = req->deadline_ms;
    env.trace_id = adi_str_c(req->trace_id);
    if (req->principal != NULL) {
        principal = *req->principal;
        env.principal = &principal;
    }
    env.params = req->params;
    env.body = req->body;

    char stream[128];
    snprintf(stream, sizeof(stream), ADI_KEY_REQ_FMT, req->service);
    adi_buf_t buf;
    adi_buf_init(&buf);
    adi_proto_encode(&adi_envelope__desc, &env, &buf);
    char req_entry[ADI_BUS_ID_MAX];
    adi_err rc = adi_bus_add(bus, stream, (adi_str_t){buf.data, buf.len}, req_entry, err);
    adi_buf_dispose(&buf);
    if (rc != ADI_OK)
        return rc;

    char after[ADI_BUS_ID_MAX];
    start_after(req_entry, after);
    rc = adi_bus_wait_reply(bus, reply_stream, env.id, after, req->deadline_ms, pool, out, err);
    if (rc == ADI_OK)
        keep_reply_stream(bus, reply_stream);
    return rc;
}

adi_err adi_bus_call(adi_bus_t *bus, const char *service, const char *op,
                     const adi_principal *principal, adi_str_t body, int64_t deadline_ms,
                     adi_pool_t *pool, adi_reply **out, adi_error_t *err)
{
    adi_bus_request_t req = {
        .service = service,
        .op = op,
        .principal = principal,
        .params = ADI_STR_NULL,
        .body = body,
        .deadline_ms = deadline_ms,
    };
    return adi_bus_call_req(bus, &req, pool, out, err);
}
