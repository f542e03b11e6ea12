/* SPDX-License-Identifier: MIT */
/*
 * The gateway's request-line path: the input is "METHOD path[?query]" (or any bytes), split at
 * the first space and the first '?'. The method goes through gw_method_parse, the path through the
 * route trie (gw_router_match over the real routes.def table); a match then has its query and path
 * parameters parsed, packed as the envelope's params map and decoded into the route's request
 * type, as the service would; a miss renders the 404 or 405 body. The header parsers of the same
 * request (Idempotency-Key, X-Request-ID, Content-Type) read the whole input too. Invariants
 * beyond "no crash, no leak, no UB": captured parameters lie inside the path, a match names a
 * route of the table with the method asked for, rendered bodies are JSON, the packed params decode
 * as msgpack, and a parsed Idempotency-Key lies inside its header and is 1..128 bytes.
 */
#include <string.h>

#include <jansson.h>

#include "adi/proto.h"
#include "fuzz.h"
#include "fuzz_reply.h"
#include "gw_parse.h"
#include "gw_render.h"
#include "gw_router.h"

static gw_router_t *router;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    adi_error_t err;
    adi_error_clear(&err);
    if (gw_router_new(gw_routes, gw_routes_count, &router, &err) != ADI_OK) {
        fprintf(stderr, "routes.def does not compile: %s\n", err.message);
        abort();
    }
    return 0;
}

static void check_json(const adi_buf_t *b)
{
    json_error_t je;
    json_t *v = json_loadb(b->data, b->len, JSON_ALLOW_NUL, &je);
    if (v == NULL) {
        fprintf(stderr, "not JSON (%s): %.*s\n", je.text, (int)b->len, b->data);
        FUZZ_CHECK(!"rendered body is JSON");
    }
    json_decref(v);
}

static bool inside(adi_str_t s, adi_str_t whole)
{
    return s.ptr >= whole.ptr && s.ptr + s.len <= whole.ptr + whole.len;
}

/* The matched route's parameters, packed and decoded as the service would. */
static void params(const gw_match_t *m, adi_str_t path, adi_str_t query, bool has_query)
{
    gw_params_t *p = malloc(sizeof(*p));
    gw_params_init(p);
    adi_buf_t mp;
    adi_buf_init(&mp);
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    if (has_query && gw_params_add_query(p, query, &err) != ADI_OK) {
        FUZZ_CHECK(err.code == ADI_INVALID && err.message[0] != '\0');
        goto out;
    }
    for (size_t i = 0; i < m->nparams; i++) {
        FUZZ_CHECK(inside(m->params[i].value, path) && m->params[i].value.len > 0);
        if (gw_params_add_path(p, m->params[i].name, m->params[i].value, &err) != ADI_OK) {
            FUZZ_CHECK(err.code == ADI_INVALID && err.message[0] != '\0');
            goto out;
        }
    }
    FUZZ_CHECK(p->n <= GW_MAX_PARAMS && p->used <= GW_PARAMS_BYTES);
    gw_params_pack(p, &mp);
    FUZZ_CHECK(mp.len > 0);
    const adi_msg_desc_t *d = m->route->op != NULL ? m->route->op->req : &adi_empty__desc;
    void *req = adi_pool_alloc(&pool, d->size > 0 ? d->size : 1);
    adi_error_clear(&err);
    if (adi_proto_decode(d, mp.data, mp.len, &pool, req, &err) != ADI_OK) {
        FUZZ_CHECK(err.code == ADI_INVALID && err.nfields + (err.message[0] != '\0') > 0);
        fuzz_check_error_reply(&err);
    }
    /* The params map is a msgpack map of strings: it always converts to JSON. */
    adi_buf_t json;
    adi_buf_init(&json);
    adi_error_clear(&err);
    FUZZ_CHECK(adi_msgpack_to_json(mp.data, mp.len, &json, &err) == ADI_OK);
    check_json(&json);
    adi_buf_dispose(&json);
out:
    adi_pool_dispose(&pool);
    adi_buf_dispose(&mp);
    free(p);
}

static void headers(adi_str_t value)
{
    adi_str_t key;
    adi_error_t err;
    adi_error_clear(&err);
    if (gw_idem_key_parse(value, &key, &err) == ADI_OK)
        FUZZ_CHECK(inside(key, value) && key.len >= 1 && key.len <= GW_IDEM_KEY_MAX);
    else
        FUZZ_CHECK(err.code == ADI_INVALID && err.message[0] != '\0');
    if (gw_request_id_valid(value))
        FUZZ_CHECK(value.len >= 1 && value.len <= GW_REQUEST_ID_MAX);
    (void)gw_content_type_is_json(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    adi_str_t in = {(const char *)data, size};
    headers(in);

    const char *sp = memchr(in.ptr, ' ', in.len);
    adi_str_t method = sp != NULL ? (adi_str_t){in.ptr, (size_t)(sp - in.ptr)} : ADI_STR("GET");
    adi_str_t target = sp != NULL ? (adi_str_t){sp + 1, in.len - (size_t)(sp + 1 - in.ptr)} : in;
    const char *q = target.len > 0 ? memchr(target.ptr, '?', target.len) : NULL;
    adi_str_t path = q != NULL ? (adi_str_t){target.ptr, (size_t)(q - target.ptr)} : target;
    adi_str_t query = q != NULL ? (adi_str_t){q + 1, target.len - path.len - 1} : ADI_STR_NULL;

    gw_method_t m = gw_method_parse(method);
    gw_match_t match;
    adi_buf_t b;
    adi_buf_init(&b);
    switch (gw_router_match(router, m, path, &match)) {
    case GW_MATCH_NOT_FOUND:
        gw_render_not_found(&b, path);
        check_json(&b);
        break;
    case GW_MATCH_METHOD: {
        char allow[64];
        size_t n = gw_allow_header(match.allowed, allow);
        FUZZ_CHECK(n > 0 && n < sizeof(allow) && strlen(allow) == n);
        gw_render_method_not_allowed(&b, method);
        check_json(&b);
        break;
    }
    case GW_MATCH_OK:
        FUZZ_CHECK(match.index < gw_routes_count && match.route == &gw_routes[match.index]);
        FUZZ_CHECK(match.route->method == (m == GW_M_HEAD ? GW_M_GET : m));
        FUZZ_CHECK(match.nparams <= GW_MAX_PATH_PARAM);
        params(&match, path, query, q != NULL);
        break;
    }
    adi_buf_dispose(&b);
    return 0;
}
