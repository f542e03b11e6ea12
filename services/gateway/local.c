/* SPDX-License-Identifier: MIT */
/*
 * Routes the gateway answers itself. /api/health/version/ and /api/timezone/ report configuration;
 * /api/health/ is an aggregate: it sends sys.health to every service of ADI_SERVICE_NAMES at once
 * (each its own bus call in the pending table) and answers when all have replied or when the
 * route's short deadline fires, naming the services that stayed silent (503 "degraded").
 * Dispatch is a table indexed by the route's GW_LOCAL_* value.
 */
#include <string.h>

#include "adi/log.h"
#include "adi/proto.h"
#include "gw.h"

typedef void (*local_fn)(gw_req_t *r, size_t route_index);

static void respond_json_field(gw_req_t *r, const char *name, const char *value)
{
    adi_buf_t b;
    adi_buf_init(&b);
    adi_buf_printf(&b, "{\"%s\": \"", name);
    adi_buf_append_json_escaped(&b, value, strlen(value));
    adi_buf_append_str(&b, "\"}");
    gw_respond(r, 200, b.data, b.len, NULL);
    adi_buf_dispose(&b);
}

static void version(gw_req_t *r, size_t route_index)
{
    (void)route_index;
    respond_json_field(r, "version", r->t->gw->cfg.app_version);
}

static void timezone_(gw_req_t *r, size_t route_index)
{
    (void)route_index;
    respond_json_field(r, "timezone", r->t->gw->cfg.time_zone);
}

static void health_finish(gw_req_t *r)
{
    if (r->responded)
        return;
    adi_buf_t b;
    adi_buf_init(&b);
    bool ok = gw_render_health(r->health, ADI_SERVICE_COUNT, &b);
    gw_respond(r, ok ? 200 : 503, b.data, b.len, NULL);
    adi_buf_dispose(&b);
}

static void on_health_timeout(h2o_timeout_entry_t *entry)
{
    gw_req_t *r = H2O_STRUCT_FROM_MEMBER(gw_req_t, timer, entry);
    r->timer_linked = false;
    health_finish(r);
}

void gw_local_health_reply(gw_call_t *c, const adi_reply *rep)
{
    gw_req_t *r = c->owner;
    if (r->responded || c->slot >= ADI_SERVICE_COUNT)
        return;
    gw_health_entry_t *e = &r->health[c->slot];
    if (rep != NULL) {
        /* Any reply proves the service consumes its stream; only a good "ok" is healthy. */
        e->answered = true;
        if (rep->status == 200 && rep->body.ptr != NULL) {
            adi_pool_t pool;
            adi_pool_init(&pool);
            sys_health_rep h;
            memset(&h, 0, sizeof(h));
            adi_error_t err;
            adi_error_clear(&err);
            if (adi_proto_decode(&sys_health_rep__desc, rep->body.ptr, rep->body.len, &pool, &h,
                                 &err) == ADI_OK) {
                e->ok = adi_str_eq_c(h.status, "ok");
                e->database = h.database;
                size_t n =
                    h.version.len < sizeof(e->version) - 1 ? h.version.len : sizeof(e->version) - 1;
                if (h.version.ptr != NULL)
                    memcpy(e->version, h.version.ptr, n);
                e->version[n] = '\0';
            }
            adi_pool_dispose(&pool);
        }
    }
    if (r->health_left > 0)
        r->health_left--;
    if (r->health_left == 0)
        health_finish(r);
}

static void health(gw_req_t *r, size_t route_index)
{
    gw_thread_t *t = r->t;
    gw_t *gw = t->gw;
    for (size_t i = 0; i < ADI_SERVICE_COUNT; i++) {
        memset(&r->health[i], 0, sizeof(r->health[i]));
        r->health[i].service = gw_service_names[i];
    }
    if (!gw_bus_ready(t)) {
        health_finish(r);
        return;
    }
    size_t dclass = gw->route_class[route_index];
    r->deadline_ms = adi_now_ms() + gw->deadlines[dclass];
    r->health_left = ADI_SERVICE_COUNT;
    r->ncalls = ADI_SERVICE_COUNT;
    gw_req_arm_timer(r, dclass, on_health_timeout);
    adi_buf_t env;
    adi_buf_init(&env);
    for (size_t i = 0; i < ADI_SERVICE_COUNT && !r->responded; i++) {
        gw_call_t *c = &r->calls[i];
        c->owner = r;
        c->slot = i;
        adi_uuid_v4(c->id);
        c->id_len = 36;
        if (gw_pending_add(t, c) != ADI_OK) {
            gw_local_health_reply(c, NULL);
            continue;
        }
        adi_envelope e;
        memset(&e, 0, sizeof(e));
        e.v = ADI_PROTO_VERSION;
        e.id = (adi_str_t){c->id, c->id_len};
        e.op = adi_str_c(adi_op_sys_health.name);
        e.reply_to = adi_str_c(t->rep_stream);
        e.deadline_ms = r->deadline_ms;
        e.trace_id = adi_str_c(r->request_id);
        e.body = (adi_str_t){"\x80", 1}; /* {} */
        adi_buf_reset(&env);
        adi_proto_encode(&adi_envelope__desc, &e, &env);
        gw_bus_send(t, c, gw_service_names[i], &env);
    }
    adi_buf_dispose(&env);
}

static const local_fn locals[GW_LOCAL__COUNT] = {
    [GW_LOCAL_HEALTH] = health,
    [GW_LOCAL_VERSION] = version,
    [GW_LOCAL_TIMEZONE] = timezone_,
};

void gw_local_serve(gw_req_t *r, size_t route_index)
{
    gw_local_t l = r->route->local;
    if (ADI_NEVER(l <= GW_LOCAL_NONE || l >= GW_LOCAL__COUNT || locals[l] == NULL)) {
        gw_respond_error(r, 500, "server_error", GW_MSG_SERVER_ERROR);
        return;
    }
    locals[l](r, route_index);
}
