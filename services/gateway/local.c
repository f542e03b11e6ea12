/* SPDX-License-Identifier: MIT */
/*
 * Routes the gateway answers itself. /api/health/version/ and /api/timezone/ report configuration;
 * the others are aggregates of bus calls, each call a slot of r->calls in the pending table, sent
 * by call_send and answered through gw_local_reply, under the route's one deadline timer:
 *  - /api/health/ sends sys.health to every service of ADI_SERVICE_NAMES at once and answers when
 *    all have replied or when the route's short deadline fires, naming the services that stayed
 *    silent (503 "degraded");
 *  - /api/me/ asks auth (auth.me) for the user and the tenant service (tenant.get) for the tenant
 *    record of the principal's tenant, both at once, and answers {user, tenant_id, tenant}. With a
 *    superuser's X-Tenant-Id the tenant is the one auth.me answers, so tenant.get follows auth.me.
 *    No tenant, or tenant.get's 404, gives "tenant": null; auth.me's error is the answer; a
 *    tenant.get that fails (5xx, not sent) or has not answered by the deadline gives 503.
 * Dispatch is a table indexed by the route's GW_LOCAL_* value.
 */
#include <string.h>

#include <msgpack.h>

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

/*
 * Sends the envelope of operation `op` for slot `slot` of r->calls to `service`, with the caller's
 * principal, `params` (a msgpack map, or empty) and body {}. The call's outcome arrives through
 * gw_local_reply. Returns false (nothing sent) when the pending table refuses it.
 */
static bool call_send(gw_req_t *r, size_t slot, const char *service, const adi_op_desc_t *op,
                      adi_str_t params)
{
    gw_thread_t *t = r->t;
    gw_call_t *c = &r->calls[slot];
    c->owner = r;
    c->slot = slot;
    adi_uuid_v4(c->id);
    c->id_len = 36;
    if (gw_pending_add(t, c) != ADI_OK)
        return false;
    adi_principal principal;
    gw_principal_roles_t proles;
    if (r->authed)
        gw_principal_from_claims(&r->claims, &principal, &proles);
    adi_envelope e;
    memset(&e, 0, sizeof(e));
    e.v = ADI_PROTO_VERSION;
    e.id = (adi_str_t){c->id, c->id_len};
    e.op = adi_str_c(op->name);
    e.reply_to = adi_str_c(t->rep_stream);
    e.deadline_ms = r->deadline_ms;
    e.trace_id = adi_str_c(r->request_id);
    e.principal = r->authed ? &principal : NULL;
    e.params = params;
    e.body = (adi_str_t){"\x80", 1}; /* {} */
    adi_buf_t env;
    adi_buf_init(&env);
    adi_proto_encode(&adi_envelope__desc, &e, &env);
    gw_bus_send(t, c, service, &env);
    adi_buf_dispose(&env);
    return true;
}

static void health_reply(gw_call_t *c, const adi_reply *rep)
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
    for (size_t i = 0; i < ADI_SERVICE_COUNT && !r->responded; i++) {
        if (!call_send(r, i, gw_service_names[i], &adi_op_sys_health, ADI_STR_NULL))
            health_reply(&r->calls[i], NULL);
    }
}

/* ---- GET /api/me/ ------------------------------------------------------------------------ */

enum { ME_AUTH = 0, ME_TENANT = 1 }; /* slots of r->calls */

/* Appends the msgpack object `o` to the packer, or nil when `o` is NULL. */
static void me_pack(msgpack_packer *pk, const msgpack_object *o)
{
    if (o == NULL)
        msgpack_pack_nil(pk);
    else
        msgpack_pack_object(pk, *o);
}

/* Both parts are in: answers auth.me's map with "tenant" added (the tenant record or null). */
static void me_finish(gw_req_t *r)
{
    if (r->responded)
        return;
    msgpack_unpacked user, tenant;
    msgpack_unpacked_init(&user);
    msgpack_unpacked_init(&tenant);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    adi_buf_t json;
    adi_buf_init(&json);
    adi_error_t err;
    adi_error_clear(&err);
    bool ok = msgpack_unpack_next(&user, r->me_user.data, r->me_user.len, NULL) ==
                  MSGPACK_UNPACK_SUCCESS &&
              user.data.type == MSGPACK_OBJECT_MAP;
    bool has_tenant = r->me_tenant.len > 0;
    if (ok && has_tenant)
        ok = msgpack_unpack_next(&tenant, r->me_tenant.data, r->me_tenant.len, NULL) ==
             MSGPACK_UNPACK_SUCCESS;
    if (ok) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        const msgpack_object_map *m = &user.data.via.map;
        uint32_t n = 0;
        for (uint32_t i = 0; i < m->size; i++) /* a "tenant" of auth's is replaced */
            n += !(m->ptr[i].key.type == MSGPACK_OBJECT_STR && m->ptr[i].key.via.str.size == 6 &&
                   memcmp(m->ptr[i].key.via.str.ptr, "tenant", 6) == 0);
        msgpack_pack_map(&pk, n + 1);
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object_kv *kv = &m->ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 6 &&
                memcmp(kv->key.via.str.ptr, "tenant", 6) == 0)
                continue;
            msgpack_pack_object(&pk, kv->key);
            msgpack_pack_object(&pk, kv->val);
        }
        msgpack_pack_str(&pk, 6);
        msgpack_pack_str_body(&pk, "tenant", 6);
        me_pack(&pk, has_tenant ? &tenant.data : NULL);
        ok = adi_msgpack_to_json(sb.data, sb.size, &json, &err) == ADI_OK;
    }
    if (ok) {
        gw_respond(r, 200, json.data, json.len, NULL);
    } else {
        adi_logctx_t lc = {r->request_id, NULL, adi_op_auth_me.name, 0, r->request_id};
        ADI_LOG(&lc, ADI_LOG_ERROR, "gw.bad_reply_body", "%s",
                err.message[0] ? err.message : "GET /api/me/: unreadable part");
        gw_respond_error(r, 500, "server_error", GW_MSG_SERVER_ERROR);
    }
    adi_buf_dispose(&json);
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&tenant);
    msgpack_unpacked_destroy(&user);
}

/* Packs {"id": tenant_id} (a msgpack map of strings) into `out`. */
static void me_tenant_params(adi_str_t tenant_id, adi_buf_t *out)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "id", 2);
    msgpack_pack_str(&pk, tenant_id.len);
    msgpack_pack_str_body(&pk, tenant_id.ptr, tenant_id.len);
    adi_buf_append(out, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* Admits and sends tenant.get for `tenant_id`; answers 503 when that is not possible. */
static void me_ask_tenant(gw_req_t *r, adi_str_t tenant_id)
{
    adi_err admit = gw_bus_admit(r->t, adi_op_tenant_get.service);
    if (admit != ADI_OK) {
        gw_respond_error(r, 503, "unavailable",
                         admit == ADI_BUSY ? GW_MSG_OVERLOADED : GW_MSG_UNAVAILABLE);
        return;
    }
    adi_buf_t params;
    adi_buf_init(&params);
    me_tenant_params(tenant_id, &params);
    if (!call_send(r, ME_TENANT, adi_op_tenant_get.service, &adi_op_tenant_get,
                   (adi_str_t){params.data, params.len}))
        gw_respond_error(r, 503, "unavailable", GW_MSG_OVERLOADED);
    adi_buf_dispose(&params);
}

static void me_auth_reply(gw_req_t *r, const adi_reply *rep)
{
    if (rep == NULL) {
        gw_respond_error(r, 503, "unavailable", GW_MSG_UNAVAILABLE);
        return;
    }
    if (rep->status < 200 || rep->status >= 300) {
        gw_respond_reply_error(r, rep, NULL); /* auth.me's refusal is the answer */
        return;
    }
    /* Checked against auth_me_rep: the tenant id is needed, and garbage is not passed on. */
    adi_pool_t pool;
    adi_pool_init(&pool);
    auth_me_rep me;
    memset(&me, 0, sizeof(me));
    adi_error_t err;
    adi_error_clear(&err);
    if (rep->body.ptr == NULL || adi_proto_decode(&auth_me_rep__desc, rep->body.ptr, rep->body.len,
                                                  &pool, &me, &err) != ADI_OK) {
        adi_logctx_t lc = {r->request_id, NULL, adi_op_auth_me.name, 0, r->request_id};
        ADI_LOG(&lc, ADI_LOG_ERROR, "gw.bad_reply_body", "%s",
                err.message[0] ? err.message : "empty body");
        gw_respond_error(r, 500, "server_error", GW_MSG_SERVER_ERROR);
        goto out;
    }
    adi_buf_append(&r->me_user, rep->body.ptr, rep->body.len);
    r->me_user_done = true;
    if (r->me_serial) {
        if (me.tenant_id.len > 0)
            me_ask_tenant(r, me.tenant_id);
        else
            r->me_tenant_done = true;
    }
    if (r->me_tenant_done)
        me_finish(r);
out:
    adi_pool_dispose(&pool);
}

static void me_tenant_reply(gw_req_t *r, const adi_reply *rep)
{
    if (rep == NULL || rep->status >= 500) {
        gw_respond_error(r, 503, "unavailable", GW_MSG_UNAVAILABLE);
        return;
    }
    if (rep->status == 404) {
        adi_buf_reset(&r->me_tenant); /* "tenant": null */
    } else if (rep->status < 200 || rep->status >= 300) {
        gw_respond_reply_error(r, rep, NULL);
        return;
    } else {
        adi_pool_t pool;
        adi_pool_init(&pool);
        tenant_info ti;
        memset(&ti, 0, sizeof(ti));
        adi_error_t err;
        adi_error_clear(&err);
        bool ok =
            rep->body.ptr != NULL && adi_proto_decode(&tenant_info__desc, rep->body.ptr,
                                                      rep->body.len, &pool, &ti, &err) == ADI_OK;
        adi_pool_dispose(&pool);
        if (!ok) {
            adi_logctx_t lc = {r->request_id, NULL, adi_op_tenant_get.name, 0, r->request_id};
            ADI_LOG(&lc, ADI_LOG_ERROR, "gw.bad_reply_body", "%s",
                    err.message[0] ? err.message : "empty body");
            gw_respond_error(r, 500, "server_error", GW_MSG_SERVER_ERROR);
            return;
        }
        adi_buf_append(&r->me_tenant, rep->body.ptr, rep->body.len);
    }
    r->me_tenant_done = true;
    if (r->me_user_done)
        me_finish(r);
}

static void me_reply(gw_call_t *c, const adi_reply *rep)
{
    gw_req_t *r = c->owner;
    if (r->responded || r->req == NULL)
        return;
    if (c->slot == ME_AUTH)
        me_auth_reply(r, rep);
    else if (c->slot == ME_TENANT)
        me_tenant_reply(r, rep);
}

static void on_me_timeout(h2o_timeout_entry_t *entry)
{
    gw_req_t *r = H2O_STRUCT_FROM_MEMBER(gw_req_t, timer, entry);
    r->timer_linked = false;
    /* auth.me silent: the route timed out; only tenant.get missing: the tenant part is missing. */
    if (!r->me_user_done)
        gw_respond_error(r, 504, "timeout", GW_MSG_TIMEOUT);
    else
        gw_respond_error(r, 503, "unavailable", GW_MSG_UNAVAILABLE);
}

static void me(gw_req_t *r, size_t route_index)
{
    gw_thread_t *t = r->t;
    gw_t *gw = t->gw;
    h2o_req_t *req = r->req;
    /* X-Tenant-Id is honoured for superusers only; nobody sets tenant_override otherwise. */
    adi_buf_t params;
    adi_buf_init(&params);
    gw_params_t *p = adi_xmalloc(sizeof(*p));
    gw_params_init(p);
    ssize_t h = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-tenant-id"), -1);
    if (h >= 0 && r->authed && r->claims.is_superuser && req->headers.entries[h].value.len > 0) {
        adi_error_t err;
        adi_error_clear(&err);
        static const adi_str_t name = ADI_STR("tenant_override");
        adi_str_t v = {req->headers.entries[h].value.base, req->headers.entries[h].value.len};
        if (gw_params_add_literal(p, name, v, &err) != ADI_OK) {
            adi_buf_t b;
            adi_buf_init(&b);
            gw_render_detail(&b, "Invalid X-Tenant-Id header.", 27);
            gw_respond(r, 400, b.data, b.len, NULL);
            adi_buf_dispose(&b);
            goto out;
        }
        r->me_serial = true;
    }
    gw_params_pack(p, &params);

    /* Without an override the tenant is the principal's: both calls leave at once. */
    r->me_tenant_ask = !r->me_serial && r->authed && r->claims.tenant_id[0] != '\0';
    r->me_tenant_done = !r->me_serial && !r->me_tenant_ask;
    adi_err admit = gw_bus_ready(t) ? gw_bus_admit(t, adi_op_auth_me.service) : ADI_UNAVAILABLE;
    if (admit == ADI_OK && r->me_tenant_ask)
        admit = gw_bus_admit(t, adi_op_tenant_get.service);
    if (admit != ADI_OK) {
        gw_respond_error(r, 503, "unavailable",
                         admit == ADI_BUSY ? GW_MSG_OVERLOADED : GW_MSG_UNAVAILABLE);
        goto out;
    }
    size_t dclass = gw->route_class[route_index];
    r->deadline_ms = adi_now_ms() + gw->deadlines[dclass];
    r->ncalls = 2;
    gw_req_arm_timer(r, dclass, on_me_timeout);
    if (!call_send(r, ME_AUTH, adi_op_auth_me.service, &adi_op_auth_me,
                   (adi_str_t){params.data, params.len})) {
        gw_respond_error(r, 503, "unavailable", GW_MSG_OVERLOADED);
        goto out;
    }
    if (r->me_tenant_ask && !r->responded)
        me_ask_tenant(r, adi_str_c(r->claims.tenant_id));
out:
    free(p);
    adi_buf_dispose(&params);
}

static const local_fn locals[GW_LOCAL__COUNT] = {
    [GW_LOCAL_HEALTH] = health,
    [GW_LOCAL_VERSION] = version,
    [GW_LOCAL_TIMEZONE] = timezone_,
    [GW_LOCAL_ME] = me,
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

void gw_local_reply(gw_call_t *c, const adi_reply *rep)
{
    switch (c->owner->route->local) {
    case GW_LOCAL_HEALTH:
        health_reply(c, rep);
        return;
    case GW_LOCAL_ME:
        me_reply(c, rep);
        return;
    default:
        return;
    }
}
