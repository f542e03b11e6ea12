/* SPDX-License-Identifier: MIT */
/*
 * Hostile and broken input: every truncation of a valid envelope, trailing bytes, reserved and
 * oversized headers (which must not turn into huge allocations), random bytes and random
 * mutations of valid messages through the decoder, the required check and the JSON writer, and
 * wrong types at the top. The rule under test: a clean ADI_INVALID or success, never a crash
 * (ASan and UBSan watch every run).
 */
#include "proto_test.h"

typedef struct fixture {
    adi_pool_t pool; /* arena of the test */
    adi_buf_t buf;   /* a valid encoded envelope */
    adi_error_t err; /* decoder errors */
} fixture_t;

/* A full envelope: principal with roles, params and a nested body. */
static void build_envelope(adi_buf_t *out)
{
    pt_mp_t body;
    pt_mp_init(&body);
    msgpack_pack_map(&body.pk, 3);
    pt_str(&body, "email");
    pt_str(&body, "someone@example.com");
    pt_str(&body, "list");
    msgpack_pack_array(&body.pk, 3);
    msgpack_pack_double(&body.pk, 1.25);
    msgpack_pack_int64(&body.pk, -70000);
    msgpack_pack_bin(&body.pk, 2);
    msgpack_pack_bin_body(&body.pk, "\x00\x01", 2);
    pt_str(&body, "nested");
    msgpack_pack_map(&body.pk, 1);
    pt_str(&body, "k");
    msgpack_pack_uint64(&body.pk, UINT64_MAX);
    adi_str_t roles[] = {ADI_STR("ADMIN")};
    adi_principal pr = {0};
    pr.user_id = ADI_STR("6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a11");
    pr.tenant_id = ADI_STR("0b7a9c52-1b0e-4b53-8c55-2f6a3b1d9e77");
    pr.roles = (adi_strlist_t){1, roles};
    adi_envelope env = {0};
    env.v = 1;
    env.id = ADI_STR("0b7a9c52-1b0e-4b53-8c55-2f6a3b1d9e77");
    env.op = ADI_STR("tenant.signup");
    env.reply_to = ADI_STR("gw:{host-1-0}:rep");
    env.deadline_ms = 1795481469354;
    env.trace_id = ADI_STR("trace");
    env.principal = &pr;
    env.params = ADI_STR("\x81\xa2id\xa1\x37");
    env.body = (adi_str_t){body.buf.data, body.buf.len};
    adi_proto_encode(&adi_envelope__desc, &env, out);
    pt_mp_dispose(&body);
}

static int setup(void **state)
{
    fixture_t *f = adi_xcalloc(1, sizeof(*f));
    adi_pool_init(&f->pool);
    adi_buf_init(&f->buf);
    build_envelope(&f->buf);
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

/*
 * Decodes `n` bytes at `p` (a heap copy, so ASan sees any read past the end) in a pool of its own,
 * checks required fields on success and runs the JSON writer over the same bytes.
 */
static adi_err decode_copy(fixture_t *f, const adi_msg_desc_t *d, const char *p, size_t n)
{
    char *copy = adi_xmalloc(n ? n : 1);
    if (n > 0)
        memcpy(copy, p, n);
    void *out = adi_xcalloc(1, d->size);
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_clear(&f->err);
    adi_err rc = adi_proto_decode(d, copy, n, &pool, out, &f->err);
    if (rc == ADI_OK)
        adi_proto_check_required(d, out, &f->err);
    adi_buf_t json;
    adi_buf_init(&json);
    adi_error_t jerr;
    adi_error_clear(&jerr);
    adi_msgpack_to_json(copy, n, &json, &jerr);
    adi_buf_dispose(&json);
    adi_pool_dispose(&pool);
    free(out);
    free(copy);
    return rc;
}

static void assert_malformed(const adi_error_t *err)
{
    assert_int_equal(err->code, ADI_INVALID);
    assert_string_equal(err->message, "Malformed message.");
    assert_int_equal(err->nfields, 1);
    assert_string_equal(err->fields[0].field, "non_field_errors");
    assert_string_equal(err->fields[0].message, "Malformed message.");
}

static void test_every_truncation(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(decode_copy(f, &adi_envelope__desc, f->buf.data, f->buf.len), ADI_OK);
    for (size_t n = 0; n < f->buf.len; n++) {
        assert_int_equal(decode_copy(f, &adi_envelope__desc, f->buf.data, n), ADI_INVALID);
        assert_malformed(&f->err);
    }
}

static void test_trailing_bytes(void **state)
{
    fixture_t *f = *state;
    adi_buf_append(&f->buf, "\xc0", 1);
    assert_int_equal(decode_copy(f, &adi_envelope__desc, f->buf.data, f->buf.len), ADI_INVALID);
    assert_malformed(&f->err);
    adi_buf_t json;
    adi_buf_init(&json);
    assert_int_equal(adi_msgpack_to_json(f->buf.data, f->buf.len, &json, &f->err), ADI_INVALID);
    assert_int_equal(json.len, 0);
    adi_buf_dispose(&json);
}

static void test_bad_headers(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *bytes; /* input */
        size_t n;          /* length */
    } cases[] = {
        {"\xc1", 1},                 /* reserved */
        {"\x81\xa1v\xc1", 4},        /* reserved inside */
        {"\xdd\xff\xff\xff\xff", 5}, /* array32 of 4G items: no 96 GiB allocation */
        {"\xdf\xff\xff\xff\xff", 5}, /* map32 of 4G pairs */
        {"\x81\xa4subs\xdd\x7f\xff\xff\xff\x80", 11},
        {"\xdb\xff\xff\xff\xff", 5},     /* str32 longer than the input */
        {"\xc6\x00\x00\x01\x00xx", 7},   /* bin32 */
        {"\xc9\x00\x00\x00\x10\x01", 6}, /* ext32 */
        {"\xd8\x01", 2},                 /* fixext16 cut */
        {"\xcb\x00\x00", 3},             /* float64 cut */
        {"\x82\xa1v\x01", 4},            /* map missing its second pair */
        {"\xde\x00", 2},                 /* map16 header cut */
        {"", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(decode_copy(f, &adi_envelope__desc, cases[i].bytes, cases[i].n),
                         ADI_INVALID);
        assert_malformed(&f->err);
    }
    /* A NULL buffer is malformed too. */
    adi_envelope env = {0};
    adi_error_clear(&f->err);
    assert_int_equal(adi_proto_decode(&adi_envelope__desc, NULL, 0, &f->pool, &env, &f->err),
                     ADI_INVALID);
    assert_malformed(&f->err);
}

static void test_wrong_types(void **state)
{
    fixture_t *f = *state;
    /* The envelope with each field given a value of the wrong kind. */
    pt_mp_t m;
    pt_mp_init(&m);
    msgpack_pack_map(&m.pk, 6);
    pt_str(&m, "v");
    pt_str(&m, "one");
    pt_str(&m, "id");
    msgpack_pack_array(&m.pk, 0);
    pt_str(&m, "deadline_ms");
    msgpack_pack_int(&m.pk, -1);
    pt_str(&m, "principal");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_int(&m.pk, 1);
    pt_str(&m, "op");
    pt_str(&m, "");
    pt_str(&m, "params");
    msgpack_pack_int(&m.pk, 3);
    adi_envelope env = {0};
    assert_int_equal(pt_decode(&adi_envelope__desc, &m.buf, &f->pool, &env, &f->err), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "v", "A valid integer is required.");
    PT_ASSERT_HAS(&f->err, "id", "Not a valid string.");
    PT_ASSERT_HAS(&f->err, "deadline_ms", "Ensure this value is greater than or equal to 0.");
    PT_ASSERT_HAS(&f->err, "principal.non_field_errors",
                  "Invalid data. Expected a dictionary, but got list.");
    PT_ASSERT_HAS(&f->err, "op", "This field may not be blank.");
    assert_int_equal(f->err.nfields, 5); /* params is RAW: any msgpack value is accepted */
    pt_mp_dispose(&m);
}

/* xorshift64*: a fixed-seed generator, so every run tests the same inputs. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void test_random_bytes(void **state)
{
    fixture_t *f = *state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char buf[64];
    for (int i = 0; i < 20000; i++) {
        size_t n = rng_next(&seed) % sizeof(buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = (char)(rng_next(&seed) & 0xff);
        /* Bias towards maps so the field decoders run, not just the top-level check. */
        if (n > 0 && (i & 1))
            buf[0] = (char)(0x80 | (buf[0] & 0x0f));
        adi_err rc = decode_copy(f, &adi_envelope__desc, buf, n);
        assert_true(rc == ADI_OK || rc == ADI_INVALID);
        rc = decode_copy(f, &t_all_desc, buf, n);
        assert_true(rc == ADI_OK || rc == ADI_INVALID);
        if (rc == ADI_INVALID)
            assert_true(f->err.nfields > 0);
    }
}

static void test_mutations(void **state)
{
    fixture_t *f = *state;
    uint64_t seed = 42;
    char *m = adi_xmalloc(f->buf.len);
    for (int i = 0; i < 20000; i++) {
        memcpy(m, f->buf.data, f->buf.len);
        int flips = 1 + (int)(rng_next(&seed) % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = rng_next(&seed) % f->buf.len;
            if (rng_next(&seed) & 1)
                m[at] = (char)(rng_next(&seed) & 0xff);
            else
                m[at] ^= (char)(1u << (rng_next(&seed) % 8));
        }
        size_t n = (rng_next(&seed) % 8 == 0) ? rng_next(&seed) % f->buf.len : f->buf.len;
        adi_err rc = decode_copy(f, &adi_envelope__desc, m, n);
        assert_true(rc == ADI_OK || rc == ADI_INVALID);
        rc = decode_copy(f, &adi_reply__desc, m, n);
        assert_true(rc == ADI_OK || rc == ADI_INVALID);
    }
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailing_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutations, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
