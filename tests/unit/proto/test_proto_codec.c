/* SPDX-License-Identifier: MIT */
/*
 * Round trips of the generated bus messages (envelope, reply, health reply) and of a message with
 * every field kind: encode -> decode gives the same values, presence and null bits are right,
 * strings and RAW values are zero-copy slices of the input, the encoding rules of proto.h hold,
 * required fields are reported with dotted paths, params merge over a body, ADI_ROOT messages
 * encode as their single value, and decode_obj / encode_pool behave like their byte versions.
 */
#include "proto_test.h"

#include "adi/keys.h"

typedef struct fixture {
    adi_pool_t pool; /* arena of the test */
    adi_buf_t buf;   /* encoder output */
    adi_error_t err; /* decoder errors */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = adi_xcalloc(1, sizeof(*f));
    adi_pool_init(&f->pool);
    adi_buf_init(&f->buf);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    adi_buf_dispose(&f->buf);
    adi_pool_dispose(&f->pool);
    free(f);
    return 0;
}

/* True when the slice lies inside the buffer (zero-copy decode). */
static bool inside(adi_str_t s, const adi_buf_t *b)
{
    return s.ptr >= b->data && s.ptr + s.len <= b->data + b->len;
}

static void assert_str(adi_str_t s, const char *want)
{
    assert_non_null(s.ptr);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.ptr, want, s.len);
}

static void test_envelope_round_trip(void **state)
{
    fixture_t *f = *state;
    /* A RAW body: {"email": "a@b.co", "n": [1, 2.5, null]} packed by msgpack-c. */
    pt_mp_t body;
    pt_mp_init(&body);
    msgpack_pack_map(&body.pk, 2);
    pt_str(&body, "email");
    pt_str(&body, "a@b.co");
    pt_str(&body, "n");
    msgpack_pack_array(&body.pk, 3);
    msgpack_pack_int(&body.pk, 1);
    msgpack_pack_double(&body.pk, 2.5);
    msgpack_pack_nil(&body.pk);
    pt_mp_t params;
    pt_mp_init(&params);
    msgpack_pack_map(&params.pk, 1);
    pt_str(&params, "id");
    pt_str(&params, "42");

    adi_str_t roles[] = {ADI_STR("ADMIN"), ADI_STR("VIEWER")};
    adi_principal pr = {0};
    pr.user_id = ADI_STR("6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a11");
    pr.tenant_id = ADI_STR("0b7a9c52-1b0e-4b53-8c55-2f6a3b1d9e77");
    pr.email = ADI_STR("admin@example.com");
    pr.roles = (adi_strlist_t){2, roles};
    pr.superuser = true;
    adi_envelope env = {0};
    env.v = ADI_PROTO_VERSION;
    env.id = ADI_STR("req-1");
    env.op = ADI_STR("auth.login");
    env.reply_to = ADI_STR("gw:{gw1-0}:rep");
    env.deadline_ms = 1795481469354;
    env.trace_id = ADI_STR("");
    env.client_ip = ADI_STR("127.0.0.1");
    env.principal = &pr;
    env.params = (adi_str_t){params.buf.data, params.buf.len};
    env.body = (adi_str_t){body.buf.data, body.buf.len};
    adi_proto_encode(&adi_envelope__desc, &env, &f->buf);

    adi_envelope got = {0};
    assert_int_equal(
        adi_proto_decode(&adi_envelope__desc, f->buf.data, f->buf.len, &f->pool, &got, &f->err),
        ADI_OK);
    assert_int_equal(adi_proto_check_required(&adi_envelope__desc, &got, &f->err), ADI_OK);
    assert_int_equal(got.v, 1);
    assert_str(got.id, "req-1");
    assert_str(got.op, "auth.login");
    assert_str(got.reply_to, "gw:{gw1-0}:rep");
    assert_int_equal(got.deadline_ms, 1795481469354);
    assert_str(got.trace_id, "");
    assert_str(got.client_ip, "127.0.0.1");
    assert_non_null(got.principal);
    assert_str(got.principal->user_id, "6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a11");
    assert_str(got.principal->email, "admin@example.com");
    assert_int_equal(got.principal->roles.n, 2);
    assert_str(got.principal->roles.items[1], "VIEWER");
    assert_true(got.principal->superuser);
    /* The principal had no service: a non-nullable unset string is omitted, so absent. */
    assert_null(got.principal->service.ptr);
    assert_false(ADI_HAS(adi_principal, got.principal, service));
    /* RAW values come back byte for byte, as slices of the input. */
    assert_int_equal(got.body.len, body.buf.len);
    assert_memory_equal(got.body.ptr, body.buf.data, body.buf.len);
    assert_int_equal(got.params.len, params.buf.len);
    assert_memory_equal(got.params.ptr, params.buf.data, params.buf.len);
    assert_true(inside(got.body, &f->buf));
    assert_true(inside(got.id, &f->buf));
    assert_true(inside(got.principal->roles.items[0], &f->buf));
    /* Every field was present, none nil. */
    assert_int_equal(got._has, (1u << adi_envelope__f__count) - 1);
    assert_int_equal(got._null, 0);
    assert_true(ADI_HAS(adi_envelope, &got, body));
    assert_false(ADI_IS_NULL(adi_envelope, &got, body));

    /* Re-encoding the decoded struct gives the same bytes. */
    adi_buf_t again;
    adi_buf_init(&again);
    adi_proto_encode(&adi_envelope__desc, &got, &again);
    assert_int_equal(again.len, f->buf.len);
    assert_memory_equal(again.data, f->buf.data, again.len);
    adi_buf_dispose(&again);
    pt_mp_dispose(&body);
    pt_mp_dispose(&params);
}

static void test_envelope_nulls(void **state)
{
    fixture_t *f = *state;
    adi_envelope env = {0};
    env.v = 1;
    env.id = ADI_STR("x");
    env.op = ADI_STR("sys.health");
    env.reply_to = ADI_STR("r");
    adi_proto_encode(&adi_envelope__desc, &env, &f->buf);

    /* principal, params and body are nullable: unset, they travel as nil. */
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;
    msgpack_zone_init(&zone, 1024);
    assert_int_equal(msgpack_unpack(f->buf.data, f->buf.len, &off, &zone, &obj),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(obj.type, MSGPACK_OBJECT_MAP);
    /* v id op reply_to deadline_ms principal params body; trace_id/client_ip omitted */
    assert_int_equal(obj.via.map.size, 8);
    int nils = 0;
    for (uint32_t i = 0; i < obj.via.map.size; i++)
        if (obj.via.map.ptr[i].val.type == MSGPACK_OBJECT_NIL)
            nils++;
    assert_int_equal(nils, 3);
    msgpack_zone_destroy(&zone);

    adi_envelope got = {0};
    assert_int_equal(
        adi_proto_decode(&adi_envelope__desc, f->buf.data, f->buf.len, &f->pool, &got, &f->err),
        ADI_OK);
    assert_null(got.principal);
    assert_null(got.body.ptr);
    assert_true(ADI_HAS(adi_envelope, &got, principal));
    assert_true(ADI_IS_NULL(adi_envelope, &got, principal));
    assert_true(ADI_IS_NULL(adi_envelope, &got, params));
    assert_true(ADI_IS_NULL(adi_envelope, &got, body));
    assert_false(ADI_HAS(adi_envelope, &got, trace_id));
    assert_false(ADI_IS_NULL(adi_envelope, &got, id));
    assert_int_equal(adi_proto_check_required(&adi_envelope__desc, &got, &f->err), ADI_OK);
}

static void test_reply_round_trip(void **state)
{
    fixture_t *f = *state;
    adi_reply_field fields[2] = {{0}, {0}};
    fields[0].field = ADI_STR("email");
    fields[0].message = ADI_STR("Enter a valid email address.");
    fields[1].field = ADI_STR("password");
    fields[1].message = ADI_STR("This field is required.");
    adi_reply_error e = {0};
    e.code = ADI_STR("invalid");
    e.message = ADI_STR("Invalid input.");
    e.fields.n = 2;
    e.fields.items = fields;
    adi_reply rep = {0};
    rep.v = 1;
    rep.id = ADI_STR("req-9");
    rep.status = 400;
    rep.error = &e;
    adi_proto_encode(&adi_reply__desc, &rep, &f->buf);

    adi_reply got = {0};
    assert_int_equal(
        adi_proto_decode(&adi_reply__desc, f->buf.data, f->buf.len, &f->pool, &got, &f->err),
        ADI_OK);
    assert_int_equal(adi_proto_check_required(&adi_reply__desc, &got, &f->err), ADI_OK);
    assert_int_equal(got.status, 400);
    assert_null(got.body.ptr);
    assert_true(ADI_IS_NULL(adi_reply, &got, body));
    assert_non_null(got.error);
    assert_str(got.error->code, "invalid");
    assert_int_equal(got.error->fields.n, 2);
    assert_str(got.error->fields.items[0].message, "Enter a valid email address.");
    assert_str(got.error->fields.items[1].field, "password");

    /* A success reply whose body is a list. */
    adi_buf_reset(&f->buf);
    pt_mp_t body;
    pt_mp_init(&body);
    msgpack_pack_array(&body.pk, 2);
    pt_str(&body, "a");
    msgpack_pack_map(&body.pk, 0);
    adi_reply ok = {0};
    ok.v = 1;
    ok.id = ADI_STR("req-10");
    ok.status = 200;
    ok.body = (adi_str_t){body.buf.data, body.buf.len};
    adi_proto_encode(&adi_reply__desc, &ok, &f->buf);
    adi_reply got2 = {0};
    assert_int_equal(
        adi_proto_decode(&adi_reply__desc, f->buf.data, f->buf.len, &f->pool, &got2, &f->err),
        ADI_OK);
    assert_null(got2.error);
    assert_true(ADI_IS_NULL(adi_reply, &got2, error));
    assert_int_equal(got2.body.len, body.buf.len);
    assert_memory_equal(got2.body.ptr, body.buf.data, body.buf.len);
    pt_mp_dispose(&body);
}

static void test_health_enum(void **state)
{
    fixture_t *f = *state;
    sys_health_rep h = {0};
    h.service = ADI_STR("auth");
    h.status = ADI_STR("ok");
    h.version = ADI_STR("0.1.0");
    h.database = true;
    adi_proto_encode(&sys_health_rep__desc, &h, &f->buf);
    sys_health_rep got = {0};
    assert_int_equal(
        adi_proto_decode(&sys_health_rep__desc, f->buf.data, f->buf.len, &f->pool, &got, &f->err),
        ADI_OK);
    assert_str(got.status, "ok");
    assert_true(got.database);
    assert_null(got.consumer.ptr);

    adi_buf_reset(&f->buf);
    h.status = ADI_STR("broken");
    adi_proto_encode(&sys_health_rep__desc, &h, &f->buf);
    sys_health_rep bad = {0};
    assert_int_equal(
        adi_proto_decode(&sys_health_rep__desc, f->buf.data, f->buf.len, &f->pool, &bad, &f->err),
        ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "status", "\"broken\" is not a valid choice.");
}

/* A t_all with every field set, and its decoded copy compared field by field. */
static void test_all_kinds_round_trip(void **state)
{
    fixture_t *f = *state;
    t_sub subs[2] = {{0}, {0}};
    subs[0].name = ADI_STR("ab");
    subs[0].n = 3;
    subs[1].name = ADI_STR("cd");
    subs[1].n = 9;
    t_sub one = {0};
    one.name = ADI_STR("x");
    adi_str_t tags[] = {ADI_STR("t1"), ADI_STR("\xc3\xa9t\xc3\xa9")};
    t_all in = {0};
    in.s = ADI_STR("h\xc3\xa9llo"); /* 5 characters, 6 bytes */
    in.blank = ADI_STR("");
    in.email = ADI_STR("user.name+tag@example.co.uk");
    in.uuid = ADI_STR("6F1C1F86-3C6E-4B8A-9E55-0C3F8E0E2A11");
    in.color = ADI_STR("green");
    in.when = ADI_STR("2026-11-23T19:51:09.354026-05:00");
    in.n = -5;
    in.b = true;
    in.nb = false;
    in.sub = &one;
    in.subs.n = 2;
    in.subs.items = subs;
    in.tags = (adi_strlist_t){2, tags};
    in.raw = ADI_STR("\x93\x01\xc0\xa1x"); /* [1, nil, "x"] */
    in.ns = ADI_STR_NULL;
    adi_proto_encode(&t_all_desc, &in, &f->buf);

    t_all got = {0};
    assert_int_equal(pt_decode(&t_all_desc, &f->buf, &f->pool, &got, &f->err), ADI_OK);
    assert_int_equal(adi_proto_check_required(&t_all_desc, &got, &f->err), ADI_OK);
    assert_true(adi_str_eq(got.s, in.s));
    assert_true(adi_str_eq(got.blank, in.blank));
    assert_true(adi_str_eq(got.email, in.email));
    assert_true(adi_str_eq(got.uuid, in.uuid));
    assert_true(adi_str_eq(got.color, in.color));
    assert_true(adi_str_eq(got.when, in.when));
    assert_int_equal(got.n, -5);
    assert_true(got.b);
    assert_false(got.nb);
    assert_non_null(got.sub);
    assert_true(adi_str_eq(got.sub->name, ADI_STR("x")));
    assert_int_equal(got.subs.n, 2);
    assert_true(adi_str_eq(got.subs.items[1].name, ADI_STR("cd")));
    assert_int_equal(got.subs.items[1].n, 9);
    assert_int_equal(got.tags.n, 2);
    assert_true(adi_str_eq(got.tags.items[1], tags[1]));
    assert_true(adi_str_eq(got.raw, in.raw));
    assert_true(inside(got.raw, &f->buf));
    assert_null(got.ns.ptr);
    assert_true((got._null >> T_ALL_NS) & 1u);
    assert_int_equal(got._has, (1u << 14) - 1);
}

static void test_encode_rules(void **state)
{
    fixture_t *f = *state;
    /* Nothing set: INT, BOOL and lists always; nullable STR/MSG/RAW as nil; the rest omitted. */
    t_all in = {0};
    adi_proto_encode(&t_all_desc, &in, &f->buf);
    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;
    msgpack_zone_init(&zone, 1024);
    assert_int_equal(msgpack_unpack(f->buf.data, f->buf.len, &off, &zone, &obj),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(obj.type, MSGPACK_OBJECT_MAP);
    /* n b nb subs tags (always) + sub raw ns (nil) */
    assert_int_equal(obj.via.map.size, 8);
    for (uint32_t i = 0; i < obj.via.map.size; i++) {
        const msgpack_object_kv *kv = &obj.via.map.ptr[i];
        const char *k = kv->key.via.str.ptr;
        size_t kl = kv->key.via.str.size;
        if ((kl == 3 && memcmp(k, "sub", 3) == 0) || (kl == 3 && memcmp(k, "raw", 3) == 0) ||
            (kl == 2 && memcmp(k, "ns", 2) == 0))
            assert_int_equal(kv->val.type, MSGPACK_OBJECT_NIL);
        else if (kl == 4 && (memcmp(k, "subs", 4) == 0 || memcmp(k, "tags", 4) == 0))
            assert_int_equal(kv->val.type, MSGPACK_OBJECT_ARRAY);
    }
    msgpack_zone_destroy(&zone);

    /* Decoding it back: required s is missing. */
    t_all got = {0};
    assert_int_equal(pt_decode(&t_all_desc, &f->buf, &f->pool, &got, &f->err), ADI_OK);
    assert_int_equal(adi_proto_check_required(&t_all_desc, &got, &f->err), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "s", "This field is required.");
    assert_int_equal(f->err.nfields, 1);

    /* The empty message is an empty map. */
    adi_buf_reset(&f->buf);
    adi_empty e = {0};
    adi_proto_encode(&adi_empty__desc, &e, &f->buf);
    assert_int_equal(f->buf.len, 1);
    assert_int_equal((unsigned char)f->buf.data[0], 0x80);
}

static void test_required_nested(void **state)
{
    fixture_t *f = *state;
    /* {"v": 1, "error": {"fields": [{"field": "a", "message": ""}, {}]}} */
    pt_mp_t m;
    pt_mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    pt_str(&m, "v");
    msgpack_pack_int(&m.pk, 1);
    pt_str(&m, "error");
    msgpack_pack_map(&m.pk, 1);
    pt_str(&m, "fields");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_map(&m.pk, 2);
    pt_str(&m, "field");
    pt_str(&m, "a");
    pt_str(&m, "message");
    pt_str(&m, "");
    msgpack_pack_map(&m.pk, 0);
    adi_reply got = {0};
    assert_int_equal(pt_decode(&adi_reply__desc, &m.buf, &f->pool, &got, &f->err), ADI_OK);
    assert_int_equal(adi_proto_check_required(&adi_reply__desc, &got, &f->err), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "id", "This field is required.");
    PT_ASSERT_HAS(&f->err, "status", "This field is required.");
    PT_ASSERT_HAS(&f->err, "error.code", "This field is required.");
    PT_ASSERT_HAS(&f->err, "error.fields.1.field", "This field is required.");
    PT_ASSERT_HAS(&f->err, "error.fields.1.message", "This field is required.");
    assert_false(pt_has(&f->err, "v", "This field is required."));
    assert_false(pt_has(&f->err, "error.fields.0.field", "This field is required."));
    assert_int_equal(f->err.nfields, 5);
    assert_int_equal(f->err.code, ADI_INVALID);
    pt_mp_dispose(&m);
}

static void test_params_over_body(void **state)
{
    fixture_t *f = *state;
    /* body {"s": "body", "n": 1, "sub": {"name": "b", "n": 2}, "blank": "keep"} */
    pt_mp_t body;
    pt_mp_init(&body);
    msgpack_pack_map(&body.pk, 4);
    pt_str(&body, "s");
    pt_str(&body, "body");
    pt_str(&body, "n");
    msgpack_pack_int(&body.pk, 1);
    pt_str(&body, "sub");
    msgpack_pack_map(&body.pk, 2);
    pt_str(&body, "name");
    pt_str(&body, "b");
    pt_str(&body, "n");
    msgpack_pack_int(&body.pk, 2);
    pt_str(&body, "blank");
    pt_str(&body, "keep");
    /* params are strings: {"n": "7", "s": "path", "sub": {"n": "5"}} */
    pt_mp_t params;
    pt_mp_init(&params);
    msgpack_pack_map(&params.pk, 3);
    pt_str(&params, "n");
    pt_str(&params, "7");
    pt_str(&params, "s");
    pt_str(&params, "path");
    pt_str(&params, "sub");
    msgpack_pack_map(&params.pk, 1);
    pt_str(&params, "n");
    pt_str(&params, "5");

    t_all got = {0};
    assert_int_equal(pt_decode(&t_all_desc, &body.buf, &f->pool, &got, &f->err), ADI_OK);
    assert_int_equal(pt_decode(&t_all_desc, &params.buf, &f->pool, &got, &f->err), ADI_OK);
    assert_int_equal(adi_proto_check_required(&t_all_desc, &got, &f->err), ADI_OK);
    assert_true(adi_str_eq(got.s, ADI_STR("path")));
    assert_int_equal(got.n, 7);
    assert_true(adi_str_eq(got.blank, ADI_STR("keep")));
    assert_true(adi_str_eq(got.sub->name, ADI_STR("b")));
    assert_int_equal(got.sub->n, 5);
    pt_mp_dispose(&body);
    pt_mp_dispose(&params);
}

static void test_root_message(void **state)
{
    fixture_t *f = *state;
    t_sub items[3] = {{0}, {0}, {0}};
    items[0].name = ADI_STR("a");
    items[1].name = ADI_STR("b");
    items[1].n = 1;
    items[2].name = ADI_STR("c");
    t_rootlist in = {0};
    in.items.n = 3;
    in.items.items = items;
    adi_proto_encode(&t_rootlist_desc, &in, &f->buf);
    assert_int_equal((unsigned char)f->buf.data[0], 0x93); /* a plain array of 3 */

    t_rootlist got = {0};
    assert_int_equal(pt_decode(&t_rootlist_desc, &f->buf, &f->pool, &got, &f->err), ADI_OK);
    assert_int_equal(got.items.n, 3);
    assert_true(adi_str_eq(got.items.items[2].name, ADI_STR("c")));
    assert_int_equal(got.items.items[1].n, 1);
    assert_int_equal(adi_proto_check_required(&t_rootlist_desc, &got, &f->err), ADI_OK);

    /* A map where the list belongs, and a bad item. */
    pt_mp_t m;
    pt_mp_init(&m);
    msgpack_pack_map(&m.pk, 0);
    t_rootlist bad = {0};
    assert_int_equal(pt_decode(&t_rootlist_desc, &m.buf, &f->pool, &bad, &f->err), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "non_field_errors", "Expected a list of items but got type \"dict\".");
    adi_buf_reset(&m.buf);
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_map(&m.pk, 1);
    pt_str(&m, "name");
    pt_str(&m, "toolong");
    pt_str(&m, "x");
    assert_int_equal(pt_decode(&t_rootlist_desc, &m.buf, &f->pool, &bad, &f->err), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "0.name", "Ensure this field has no more than 4 characters.");
    PT_ASSERT_HAS(&f->err, "1.non_field_errors",
                  "Invalid data. Expected a dictionary, but got str.");
    pt_mp_dispose(&m);
}

static void test_decode_obj_and_encode_pool(void **state)
{
    fixture_t *f = *state;
    sys_health_rep h = {0};
    h.service = ADI_STR("vault");
    h.status = ADI_STR("degraded");
    adi_str_t enc = adi_proto_encode_pool(&sys_health_rep__desc, &h, &f->pool);
    assert_non_null(enc.ptr);

    msgpack_zone zone;
    msgpack_object obj;
    size_t off = 0;
    msgpack_zone_init(&zone, 1024);
    assert_int_equal(msgpack_unpack(enc.ptr, enc.len, &off, &zone, &obj), MSGPACK_UNPACK_SUCCESS);
    sys_health_rep got = {0};
    adi_error_clear(&f->err);
    assert_int_equal(adi_proto_decode_obj(&sys_health_rep__desc, &obj, &f->pool, &got, &f->err),
                     ADI_OK);
    msgpack_zone_destroy(&zone); /* decode_obj's results live in the pool, not the zone */
    assert_true(adi_str_eq(got.service, ADI_STR("vault")));
    assert_true(adi_str_eq(got.status, ADI_STR("degraded")));

    /* A RAW field filled from encode_pool, inside an envelope. */
    adi_envelope env = {0};
    env.v = 1;
    env.id = ADI_STR("i");
    env.op = ADI_STR("sys.health");
    env.reply_to = ADI_STR("r");
    env.body = enc;
    adi_proto_encode(&adi_envelope__desc, &env, &f->buf);
    adi_envelope genv = {0};
    assert_int_equal(pt_decode(&adi_envelope__desc, &f->buf, &f->pool, &genv, &f->err), ADI_OK);
    sys_health_rep inner = {0};
    assert_int_equal(adi_proto_decode(&sys_health_rep__desc, genv.body.ptr, genv.body.len, &f->pool,
                                      &inner, &f->err),
                     ADI_OK);
    assert_true(adi_str_eq(inner.service, ADI_STR("vault")));
}

static void test_unknown_keys_ignored(void **state)
{
    fixture_t *f = *state;
    pt_mp_t m;
    pt_mp_init(&m);
    msgpack_pack_map(&m.pk, 5);
    pt_str(&m, "zzz");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_map(&m.pk, 1);
    pt_str(&m, "s");
    msgpack_pack_int(&m.pk, 1);
    msgpack_pack_nil(&m.pk);
    msgpack_pack_int(&m.pk, 7); /* a non-string key */
    pt_str(&m, "seven");
    msgpack_pack_array(&m.pk, 1); /* a container key */
    msgpack_pack_int(&m.pk, 1);
    msgpack_pack_true(&m.pk);
    pt_str(&m, "s");
    pt_str(&m, "okay");
    pt_strn(&m, "s\0x", 3); /* not "s" */
    msgpack_pack_int(&m.pk, 5);
    t_all got = {0};
    assert_int_equal(pt_decode(&t_all_desc, &m.buf, &f->pool, &got, &f->err), ADI_OK);
    assert_true(adi_str_eq(got.s, ADI_STR("okay")));
    assert_int_equal(got._has, 1u << T_ALL_S);
    pt_mp_dispose(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_envelope_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope_nulls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_enum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_kinds_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params_over_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_obj_and_encode_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys_ignored, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
