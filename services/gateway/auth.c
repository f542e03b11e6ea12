/* SPDX-License-Identifier: MIT */
/*
 * The pure parts of the gateway's token checks: the Authorization header, the route access
 * decision, the principal, and the per-thread table of user token versions learnt from ev:auth.
 * Nothing here allocates on the request path: the header is sliced in place, the principal points
 * into the verified claims, and a version lookup is one hash probe sequence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_auth.h"

/* ---- Authorization header --------------------------------------------------------------- */

/* Python's bytes.split() separators. */
static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

gw_bearer_t gw_bearer_parse(adi_str_t header, adi_str_t *token)
{
    *token = ADI_STR_NULL;
    if (header.ptr == NULL)
        return GW_BEARER_NONE;
    adi_str_t parts[3];
    size_t n = 0;
    size_t i = 0;
    while (i < header.len && n < 3) {
        while (i < header.len && is_ws(header.ptr[i]))
            i++;
        if (i == header.len)
            break;
        size_t start = i;
        while (i < header.len && !is_ws(header.ptr[i]))
            i++;
        parts[n++] = (adi_str_t){header.ptr + start, i - start};
    }
    if (n == 0 || !adi_str_eq_c(parts[0], "Bearer"))
        return GW_BEARER_NONE;
    if (n != 2)
        return GW_BEARER_MALFORMED;
    *token = parts[1];
    return GW_BEARER_TOKEN;
}

void gw_render_bad_auth_header(adi_buf_t *out)
{
    adi_buf_printf(out, "{\"detail\":\"%s\",\"code\":\"%s\"}", GW_MSG_BAD_AUTH_HDR,
                   GW_CODE_BAD_AUTH_HDR);
}

/* ---- access decision and principal ------------------------------------------------------ */

gw_access_t gw_access_decide(gw_auth_t need, const adi_jwt_claims_t *c)
{
    if (need != ADI_ADMIN || c->is_superuser)
        return GW_ACCESS_OK;
    for (size_t i = 0; i < c->nroles && i < ADI_JWT_MAX_ROLES; i++)
        if (strcmp(c->roles[i], "ADMIN") == 0)
            return GW_ACCESS_OK;
    return GW_ACCESS_FORBIDDEN;
}

void gw_principal_from_claims(const adi_jwt_claims_t *c, adi_principal *p,
                              gw_principal_roles_t *roles)
{
    memset(p, 0, sizeof(*p));
    p->user_id = adi_str_c(c->user_id);
    if (c->tenant_id[0] != '\0')
        p->tenant_id = adi_str_c(c->tenant_id);
    size_t n = c->nroles < ADI_JWT_MAX_ROLES ? c->nroles : ADI_JWT_MAX_ROLES;
    for (size_t i = 0; i < n; i++)
        roles->items[i] = adi_str_c(c->roles[i]);
    p->roles.n = n;
    p->roles.items = roles->items;
    p->superuser = c->is_superuser;
    if (c->email[0] != '\0')
        p->email = adi_str_c(c->email);
}

void gw_principal_scope(const adi_jwt_claims_t *c, const char *client_ip, char out[GW_SCOPE_MAX])
{
    /* A UUID never reads "anon": the two forms cannot meet. */
    if (c == NULL)
        snprintf(out, GW_SCOPE_MAX, "anon/%s", client_ip != NULL ? client_ip : "");
    else
        snprintf(out, GW_SCOPE_MAX, "%s/%s", c->user_id, c->tenant_id);
}

/* ---- verified-token cache --------------------------------------------------------------- */

static uint64_t fnv1a(adi_str_t s)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < s.len; i++) {
        h ^= (unsigned char)s.ptr[i];
        h *= 1099511628211ULL;
    }
    return h != 0 ? h : 1; /* 0 marks an empty slot */
}

void gw_tcache_init(gw_tcache_t *c, int64_t leeway_s)
{
    c->slots = NULL;
    c->leeway_s = leeway_s;
}

void gw_tcache_dispose(gw_tcache_t *c)
{
    free(c->slots);
    c->slots = NULL;
}

bool gw_tcache_get(gw_tcache_t *c, adi_str_t token, int64_t now_s, adi_jwt_claims_t *out)
{
    if (c->slots == NULL || token.ptr == NULL || token.len == 0 || token.len > GW_TCACHE_TOKEN_MAX)
        return false;
    uint64_t h = fnv1a(token);
    gw_tcache_slot_t *s = &c->slots[h & (GW_TCACHE_SLOTS - 1)];
    if (s->hash != h || s->len != token.len || memcmp(s->token, token.ptr, token.len) != 0)
        return false;
    if (s->claims.exp <= now_s - c->leeway_s) {
        s->hash = 0;
        return false;
    }
    *out = s->claims;
    return true;
}

void gw_tcache_put(gw_tcache_t *c, adi_str_t token, const adi_jwt_claims_t *claims)
{
    if (token.ptr == NULL || token.len == 0 || token.len > GW_TCACHE_TOKEN_MAX)
        return;
    if (c->slots == NULL)
        c->slots = adi_xcalloc(GW_TCACHE_SLOTS, sizeof(*c->slots));
    uint64_t h = fnv1a(token);
    gw_tcache_slot_t *s = &c->slots[h & (GW_TCACHE_SLOTS - 1)];
    s->hash = h;
    s->len = token.len;
    memcpy(s->token, token.ptr, token.len);
    s->claims = *claims;
}

/* ---- token versions --------------------------------------------------------------------- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Parses a canonical UUID (8-4-4-4-12 hex digits, any case) into 16 bytes. */
static bool uuid_bytes(adi_str_t s, uint8_t out[16])
{
    if (s.ptr == NULL || s.len != 36)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s.ptr[i] != '-')
                return false;
            i++;
            continue;
        }
        int hi = hexval(s.ptr[i]);
        int lo = hexval(s.ptr[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[o++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return o == 16;
}

/* splitmix64 finaliser over both halves: user ids are random, but not every issuer's must be. */
static size_t slot_of(const uint8_t id[16], size_t cap)
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    uint64_t z = a ^ (b * 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (size_t)z & (cap - 1);
}

static gw_vtable_entry_t *find(const gw_vtable_t *v, const uint8_t id[16])
{
    if (v->slots == NULL)
        return NULL;
    for (size_t i = slot_of(id, v->cap), k = 0; k < v->cap; i = (i + 1) & (v->cap - 1), k++) {
        gw_vtable_entry_t *e = &v->slots[i];
        if (!e->used)
            return NULL;
        if (memcmp(e->id, id, 16) == 0)
            return e;
    }
    return NULL;
}

/* Inserts a copy of `src` (its id absent) into slots of capacity cap. */
static void place(gw_vtable_entry_t *slots, size_t cap, const gw_vtable_entry_t *src)
{
    size_t i = slot_of(src->id, cap);
    while (slots[i].used)
        i = (i + 1) & (cap - 1);
    slots[i] = *src;
}

/*
 * Rebuilds the table into `cap` slots keeping the entries not older than `cutoff_ms` and, when
 * `evict` is set, also dropping the oldest kept entry (whose time raises the floor).
 */
static void rebuild(gw_vtable_t *v, size_t cap, int64_t cutoff_ms, bool evict)
{
    gw_vtable_entry_t *oldest = NULL;
    if (evict) {
        for (size_t i = 0; i < v->cap; i++) {
            gw_vtable_entry_t *e = &v->slots[i];
            if (e->used && e->seen_ms >= cutoff_ms &&
                (oldest == NULL || e->seen_ms < oldest->seen_ms))
                oldest = e;
        }
        if (oldest != NULL && oldest->seen_ms / 1000 > v->floor_s)
            v->floor_s = oldest->seen_ms / 1000;
    }
    gw_vtable_entry_t *slots = adi_xcalloc(cap, sizeof(*slots));
    size_t n = 0;
    for (size_t i = 0; v->slots != NULL && i < v->cap; i++) {
        gw_vtable_entry_t *e = &v->slots[i];
        if (!e->used || e->seen_ms < cutoff_ms || e == oldest)
            continue;
        place(slots, cap, e);
        n++;
    }
    free(v->slots);
    v->slots = slots;
    v->cap = cap;
    v->n = n;
}

/* Makes room for one more entry (load factor at most 3/4). */
static void make_room(gw_vtable_t *v, int64_t now_ms)
{
    if (v->slots == NULL) {
        rebuild(v, 16 <= v->max_slots ? 16 : v->max_slots, INT64_MIN, false);
        return;
    }
    if ((v->n + 1) * 4 <= v->cap * 3)
        return;
    int64_t cutoff = now_ms - v->ttl_ms;
    /* First drop what has expired, in place; grow only when that does not free a quarter. */
    rebuild(v, v->cap, cutoff, false);
    while ((v->n + 1) * 4 > v->cap * 3 && v->cap < v->max_slots)
        rebuild(v, v->cap * 2, cutoff, false);
    while ((v->n + 1) * 4 > v->cap * 3)
        rebuild(v, v->cap, cutoff, true);
}

void gw_vtable_init(gw_vtable_t *v, size_t max_slots, int64_t ttl_ms)
{
    memset(v, 0, sizeof(*v));
    size_t m = 16;
    while (m * 2 <= max_slots)
        m *= 2;
    v->max_slots = m;
    v->ttl_ms = ttl_ms;
}

void gw_vtable_dispose(gw_vtable_t *v)
{
    free(v->slots);
    v->slots = NULL;
    v->cap = 0;
    v->n = 0;
}

adi_err gw_vtable_note(gw_vtable_t *v, adi_str_t user_id, int64_t version, int64_t event_ms,
                       int64_t now_ms)
{
    uint8_t id[16];
    if (!uuid_bytes(user_id, id) || version < 0)
        return ADI_INVALID;
    gw_vtable_entry_t *e = find(v, id);
    if (e != NULL) {
        if (version > e->version)
            e->version = version;
        if (event_ms > e->seen_ms)
            e->seen_ms = event_ms;
        return ADI_OK;
    }
    make_room(v, now_ms);
    gw_vtable_entry_t fresh = {.used = true, .version = version, .seen_ms = event_ms};
    memcpy(fresh.id, id, 16);
    place(v->slots, v->cap, &fresh);
    v->n++;
    return ADI_OK;
}

bool gw_vtable_allows(const gw_vtable_t *v, adi_str_t user_id, int64_t ver, int64_t iat_s)
{
    if (v->floor_s > 0 && iat_s <= v->floor_s)
        return false;
    uint8_t id[16];
    if (!uuid_bytes(user_id, id))
        return false;
    const gw_vtable_entry_t *e = find(v, id);
    return e == NULL || ver >= e->version;
}

int64_t gw_vtable_get(const gw_vtable_t *v, adi_str_t user_id)
{
    uint8_t id[16];
    if (!uuid_bytes(user_id, id))
        return -1;
    const gw_vtable_entry_t *e = find(v, id);
    return e != NULL ? e->version : -1;
}

void gw_vtable_history_id(int64_t now_ms, int64_t ttl_ms, char *out, size_t cap)
{
    int64_t start = now_ms - ttl_ms;
    if (start <= 0)
        snprintf(out, cap, "0-0");
    else
        snprintf(out, cap, "%lld-0", (long long)start);
}

bool gw_stream_id_ms(adi_str_t id, int64_t *ms)
{
    *ms = 0;
    size_t i = 0;
    int64_t v = 0;
    while (i < id.len && id.ptr[i] >= '0' && id.ptr[i] <= '9' && i < 18) {
        v = v * 10 + (id.ptr[i] - '0');
        i++;
    }
    if (i == 0 || i >= id.len || id.ptr[i] != '-')
        return false;
    *ms = v;
    return true;
}
