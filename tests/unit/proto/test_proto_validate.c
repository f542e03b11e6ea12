/* SPDX-License-Identifier: MIT */
/*
 * Every validation message of the decoder, worded as Django REST framework words it, on a
 * hand-written message with one field of every kind (proto_test.h): required, null, blank,
 * lengths in characters, e-mail, UUID, choices, date-times, integers and their ranges, booleans,
 * lists, nested messages, top-level types, RAW sizes, the nesting limit, and that all errors of a
 * message are collected with dotted field names.
 */
#include "proto_test.h"

const adi_msg_desc_t t_node_desc;
static const adi_field_desc_t t_node_fields[] = {
    PT_FD(t_node, child, ADI_FT_MSG, ADI_FMT_NONE, ADI_NULLABLE, 0, 0, 0, &t_node_desc, NULL),
    PT_FD(t_node, v, ADI_FT_INT, ADI_FMT_NONE, 0, 0, 100, 0, NULL, NULL),
};
const adi_msg_desc_t t_node_desc = {"t_node", sizeof(t_node), 2, t_node_fields};

/* A message nesting through a list, for the depth limit of lists. */
typedef struct t_tree t_tree;
struct t_tree {
    ADI_MSG_HEADER_
    struct {
        size_t n;
        t_tree *items;
    } kids; /* nested trees */
};
static const adi_msg_desc_t t_tree_desc;
static const adi_field_desc_t t_tree_fields[] = {
    PT_FD(t_tree, kids, ADI_FT_LIST, ADI_FMT_NONE, 0, 0, 4, 0, &t_tree_desc, NULL),
};
static const adi_msg_desc_t t_tree_desc = {"t_tree", sizeof(t_tree), 1, t_tree_fields};

typedef struct fixture {
    adi_pool_t pool; /* arena of the test */
    pt_mp_t mp;      /* input being built */
    adi_error_t err; /* decoder errors */
    t_all out;       /* decoded message */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = adi_xcalloc(1, sizeof(*f));
    adi_pool_init(&f->pool);
    pt_mp_init(&f->mp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    pt_mp_dispose(&f->mp);
    adi_pool_dispose(&f->pool);
    free(f);
    return 0;
}

/* Starts {"key": <value>}: the caller packs the value, then calls run(). */
static msgpack_packer *one(fixture_t *f, const char *key)
{
    adi_buf_reset(&f->mp.buf);
    msgpack_pack_map(&f->mp.pk, 1);
    pt_str(&f->mp, key);
    return &f->mp.pk;
}

static adi_err run(fixture_t *f)
{
    memset(&f->out, 0, sizeof(f->out));
    return pt_decode(&t_all_desc, &f->mp.buf, &f->pool, &f->out, &f->err);
}

static adi_err one_str(fixture_t *f, const char *key, const char *v)
{
    one(f, key);
    pt_str(&f->mp, v);
    return run(f);
}

static adi_err one_strn(fixture_t *f, const char *key, const char *v, size_t n)
{
    one(f, key);
    pt_strn(&f->mp, v, n);
    return run(f);
}

static adi_err one_int(fixture_t *f, const char *key, int64_t v)
{
    msgpack_pack_int64(one(f, key), v);
    return run(f);
}

static adi_err one_double(fixture_t *f, const char *key, double v)
{
    msgpack_pack_double(one(f, key), v);
    return run(f);
}

/* The value as raw msgpack bytes. */
static adi_err one_raw(fixture_t *f, const char *key, const char *v, size_t n)
{
    one(f, key);
    adi_buf_append(&f->mp.buf, v, n);
    return run(f);
}

/* Asserts that decoding {key: str} fails with exactly `msg` for `key`. */
static void bad_str(fixture_t *f, const char *key, const char *v, const char *msg)
{
    if (one_str(f, key, v) != ADI_INVALID || !pt_has(&f->err, key, msg)) {
        pt_dump(&f->err);
        fail_msg("%s=\"%s\": expected \"%s\"", key, v, msg);
    }
}

static void good_str(fixture_t *f, const char *key, const char *v)
{
    if (one_str(f, key, v) != ADI_OK) {
        pt_dump(&f->err);
        fail_msg("%s=\"%s\" rejected", key, v);
    }
}

static void test_required(void **state)
{
    fixture_t *f = *state;
    msgpack_pack_map(&f->mp.pk, 0);
    assert_int_equal(run(f), ADI_OK);
    assert_int_equal(f->out._has, 0);
    assert_int_equal(adi_proto_check_required(&t_all_desc, &f->out, &f->err), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "s", "This field is required.");
    assert_int_equal(f->err.nfields, 1);
    assert_string_equal(f->err.message, "Invalid input.");
    /* null counts as present: the null check is the decoder's. */
    one_raw(f, "s", "\xc0", 1);
    adi_error_clear(&f->err);
    assert_int_equal(adi_proto_check_required(&t_all_desc, &f->out, &f->err), ADI_OK);
}

static void test_null(void **state)
{
    fixture_t *f = *state;
    static const char *const not_nullable[] = {"s", "blank", "email", "uuid", "color", "when",
                                               "n", "b",     "subs",  "tags", NULL};
    for (const char *const *k = not_nullable; *k != NULL; k++) {
        assert_int_equal(one_raw(f, *k, "\xc0", 1), ADI_INVALID);
        PT_ASSERT_HAS(&f->err, *k, "This field may not be null.");
        assert_int_equal(f->err.nfields, 1);
    }
    static const char *const nullable[] = {"nb", "sub", "raw", "ns", NULL};
    for (const char *const *k = nullable; *k != NULL; k++) {
        assert_int_equal(one_raw(f, *k, "\xc0", 1), ADI_OK);
        assert_int_equal(f->out._has, f->out._null);
        assert_int_not_equal(f->out._null, 0);
    }
    /* A nullable boolean reads DRF's null strings as null; others may not. */
    assert_int_equal(one_str(f, "nb", "null"), ADI_OK);
    assert_true((f->out._null >> T_ALL_NB) & 1u);
    assert_int_equal(one_str(f, "nb", ""), ADI_OK);
    assert_true((f->out._null >> T_ALL_NB) & 1u);
    bad_str(f, "b", "", "Must be a valid boolean.");
    bad_str(f, "b", "null", "Must be a valid boolean.");
}

static void test_blank(void **state)
{
    fixture_t *f = *state;
    bad_str(f, "s", "", "This field may not be blank.");
    assert_int_equal(f->err.nfields, 1); /* not also "at least 2 characters" */
    bad_str(f, "email", "", "This field may not be blank.");
    bad_str(f, "color", "", "\"\" is not a valid choice.");
    bad_str(f, "uuid", "", "Must be a valid UUID.");
    bad_str(f, "when", "",
            "Datetime has wrong format. Use one of these formats instead: "
            "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].");
    good_str(f, "blank", "");
    assert_non_null(f->out.blank.ptr);
    assert_int_equal(f->out.blank.len, 0);
    /* Whitespace is not blank (no trimming): internal messages are taken as they are. */
    good_str(f, "s", "  ");
}

/* Client input (adi_proto_decode_input) is trimmed as DRF's CharField and EmailField do. */
static void test_input_trimmed(void **state)
{
    fixture_t *f = *state;
    adi_buf_reset(&f->mp.buf);
    msgpack_pack_map(&f->mp.pk, 5);
    pt_str(&f->mp, "s");
    pt_str(&f->mp, " \t abc \r\n");
    pt_str(&f->mp, "email");
    pt_str(&f->mp, "  a@b.example ");
    pt_str(&f->mp, "blank");
    pt_str(&f->mp, "   ");
    pt_str(&f->mp, "uuid");
    pt_str(&f->mp, " 6f1c0f6e-9a51-4a87-bb1c-0d3b7a0c1a11");
    pt_str(&f->mp, "color");
    pt_str(&f->mp, "red ");
    memset(&f->out, 0, sizeof(f->out));
    assert_int_equal(adi_proto_decode_input(&t_all_desc, f->mp.buf.data, f->mp.buf.len, &f->pool,
                                            &f->out, &f->err),
                     ADI_INVALID);
    assert_true(adi_str_eq_c(f->out.s, "abc"));
    assert_true(adi_str_eq_c(f->out.email, "a@b.example"));
    assert_int_equal(f->out.blank.len, 0);
    /* UUIDs and choices are taken as sent, as DRF does: the spaces make them invalid. */
    assert_true(pt_has(&f->err, "uuid", "Must be a valid UUID."));
    assert_true(pt_has(&f->err, "color", "\"red \" is not a valid choice."));
    assert_int_equal(f->err.nfields, 2);

    /* Only whitespace: blank; the length is counted after trimming. */
    adi_error_clear(&f->err);
    adi_buf_reset(&f->mp.buf);
    msgpack_pack_map(&f->mp.pk, 1);
    pt_str(&f->mp, "s");
    pt_str(&f->mp, "        ");
    assert_int_equal(adi_proto_decode_input(&t_all_desc, f->mp.buf.data, f->mp.buf.len, &f->pool,
                                            &f->out, &f->err),
                     ADI_INVALID);
    assert_true(pt_has(&f->err, "s", "This field may not be blank."));
    adi_error_clear(&f->err);
    adi_buf_reset(&f->mp.buf);
    msgpack_pack_map(&f->mp.pk, 1);
    pt_str(&f->mp, "s");
    pt_str(&f->mp, "  a  ");
    assert_int_equal(adi_proto_decode_input(&t_all_desc, f->mp.buf.data, f->mp.buf.len, &f->pool,
                                            &f->out, &f->err),
                     ADI_INVALID);
    assert_true(pt_has(&f->err, "s", "Ensure this field has at least 2 characters."));
}

static void test_lengths(void **state)
{
    fixture_t *f = *state;
    bad_str(f, "s", "a", "Ensure this field has at least 2 characters.");
    bad_str(f, "s", "abcdef", "Ensure this field has no more than 5 characters.");
    good_str(f, "s", "abcde");
    /* Characters, not bytes: 5 two-byte and 5 four-byte characters fit, 6 do not. */
    good_str(f, "s", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    good_str(f, "s",
             "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
             "\xf0\x9f\x98\x80");
    bad_str(f, "s", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
            "Ensure this field has no more than 5 characters.");
    bad_str(f, "s", "\xc3\xa9", "Ensure this field has at least 2 characters.");
    /* A huge string is refused without being scanned. */
    size_t big = 70000;
    char *s = adi_xmalloc(big);
    memset(s, 'a', big);
    assert_int_equal(one_strn(f, "s", s, big), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "s", "Ensure this field has no more than 5 characters.");
    free(s);
}

static void test_not_a_string(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *bytes; /* msgpack value */
        size_t n;          /* its length */
    } bad[] = {
        {"\xc3", 1},                 /* true */
        {"\x91\x01", 2},             /* [1] */
        {"\x81\xa1k\x01", 4},        /* {"k": 1} */
        {"\xc4\x02hi", 4},           /* bin */
        {"\xd4\x01\x00", 3},         /* ext */
        {"\xa2\xff\xfe", 3},         /* invalid UTF-8 */
        {"\xa2\xc0\xaf", 3},         /* overlong */
        {"\xa3\xed\xa0\x80", 4},     /* surrogate */
        {"\xa2\xe2\x82", 3},         /* truncated sequence */
        {"\xa4\xf4\x90\x80\x80", 5}, /* above U+10FFFF */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(one_raw(f, "s", bad[i].bytes, bad[i].n), ADI_INVALID);
        PT_ASSERT_HAS(&f->err, "s", "Not a valid string.");
        assert_int_equal(f->err.nfields, 1);
    }
    /* Numbers become their Python text, as DRF's CharField does. */
    assert_int_equal(one_int(f, "s", 42), ADI_OK);
    assert_true(adi_str_eq(f->out.s, ADI_STR("42")));
    assert_int_equal(one_int(f, "s", -42), ADI_OK);
    assert_true(adi_str_eq(f->out.s, ADI_STR("-42")));
    assert_int_equal(one_double(f, "s", 1.5), ADI_OK);
    assert_true(adi_str_eq(f->out.s, ADI_STR("1.5")));
    assert_int_equal(one_double(f, "s", 3.0), ADI_OK);
    assert_true(adi_str_eq(f->out.s, ADI_STR("3.0")));
    assert_int_equal(one_raw(f, "s", "\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 9), ADI_OK);
    assert_true(adi_str_eq(f->out.s, ADI_STR("nan")));
    assert_int_equal(one_raw(f, "s", "\xcb\xff\xf0\x00\x00\x00\x00\x00\x00", 9), ADI_OK);
    assert_true(adi_str_eq(f->out.s, ADI_STR("-inf")));
    assert_int_equal(one_int(f, "s", 123456), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "s", "Ensure this field has no more than 5 characters.");
    /* NUL characters are refused (DRF's ProhibitNullCharactersValidator). */
    assert_int_equal(one_strn(f, "s", "a\0b", 3), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "s", "Null characters are not allowed.");
    /* The list item strings follow the same rules. */
    one(f, "tags");
    msgpack_pack_array(&f->mp.pk, 3);
    msgpack_pack_true(&f->mp.pk);
    adi_buf_append(&f->mp.buf, "\xa1\xff", 2);
    adi_buf_append(&f->mp.buf, "\x91\x81\xa1k\x90", 5);
    assert_int_equal(run(f), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "tags.0", "Not a valid string.");
    PT_ASSERT_HAS(&f->err, "tags.1", "Not a valid string.");
    PT_ASSERT_HAS(&f->err, "tags.2", "Not a valid string.");
    assert_int_equal(f->err.nfields, 3);
}

static void test_email(void **state)
{
    fixture_t *f = *state;
    static const char *const good[] = {
        "a@b.co",
        "first.last@sub.example.com",
        "x+y_z-w@example.museum",
        "o'hare@example.ie",
        "user@localhost",
        "\"quoted.name\"@example.com",
        "\"a\\\"b\"@example.com",
        "a@[127.0.0.1]",
        "a@[::1]",
        "u@xn--bcher-kva.ch",
        "u@b\xc3\xbc"
        "cher.ch",
        "UPPER@EXAMPLE.COM",
        "a@1.2.3.4.example",
        "a@b.c-d",
        NULL,
    };
    static const char *const bad[] = {
        "plain",
        "a@b",
        "a@.com",
        "a@b.c",
        "a b@c.com",
        "a@b c.com",
        ".a@b.com",
        "a.@b.com",
        "a..b@c.com",
        "a@-b.com",
        "a@b-.com",
        "a@b.com-",
        "a@b.com.",
        "@b.com",
        "a@",
        "@",
        "a@@b.com",
        "\xc3\xa9@b.com",
        "\"quoted name\"@example.com",
        "a@b..com",
        "a@[1.2.3]",
        "a@b_c.com",
        "a\"b@c.com",
        "a@b.c\xc3\xb6m ",
        NULL,
    };
    for (const char *const *e = good; *e != NULL; e++)
        good_str(f, "email", *e);
    good_str(f, "email", "\"a\\\tb\"@example.com"); /* an escaped tab */
    bad_str(f, "email", "\"a\\\"@example.com", "Enter a valid email address.");
    bad_str(f, "email", "\"a\\\n\"@example.com", "Enter a valid email address.");
    bad_str(f, "email", "a@[1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd]",
            "Enter a valid email address.");
    for (const char *const *e = bad; *e != NULL; e++)
        bad_str(f, "email", *e, "Enter a valid email address.");
    /* A 64-character label is too long. */
    char label[128];
    snprintf(label, sizeof(label), "a@%064d.com", 0);
    bad_str(f, "email", label, "Enter a valid email address.");
    snprintf(label, sizeof(label), "a@%063d.com", 0);
    good_str(f, "email", label);
    /* 254 characters are fine; 255 get both messages, as DRF's EmailField gives. */
    char longer[300];
    memset(longer, 'a', sizeof(longer));
    memcpy(longer + 242, "@example.com", 13);
    good_str(f, "email", longer);
    memcpy(longer + 243, "@example.com", 13);
    assert_int_equal(one_str(f, "email", longer), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "email", "Ensure this field has no more than 254 characters.");
    PT_ASSERT_HAS(&f->err, "email", "Enter a valid email address.");
    assert_int_equal(f->err.nfields, 2);
}

static void test_uuid(void **state)
{
    fixture_t *f = *state;
    good_str(f, "uuid", "6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a11");
    good_str(f, "uuid", "6F1C1F86-3C6E-4B8A-9E55-0C3F8E0E2A11");
    static const char *const bad[] = {"6f1c1f863c6e4b8a9e550c3f8e0e2a11",
                                      "6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a1",
                                      "6f1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a111",
                                      "6f1c1f86-3c6e-4b8a-9e55_0c3f8e0e2a11",
                                      "gf1c1f86-3c6e-4b8a-9e55-0c3f8e0e2a11",
                                      "not a uuid",
                                      NULL};
    for (const char *const *u = bad; *u != NULL; u++)
        bad_str(f, "uuid", *u, "Must be a valid UUID.");
    assert_int_equal(one_int(f, "uuid", 5), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "uuid", "Must be a valid UUID.");
    assert_int_equal(one_raw(f, "uuid", "\x90", 1), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "uuid", "Must be a valid UUID.");
}

static void test_choice(void **state)
{
    fixture_t *f = *state;
    good_str(f, "color", "red");
    good_str(f, "color", "green");
    bad_str(f, "color", "blue", "\"blue\" is not a valid choice.");
    bad_str(f, "color", "Red", "\"Red\" is not a valid choice.");
    bad_str(f, "color", "red ", "\"red \" is not a valid choice.");
    assert_int_equal(one_int(f, "color", 1), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "color", "\"1\" is not a valid choice.");
    assert_int_equal(one_raw(f, "color", "\xc3", 1), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "color", "\"True\" is not a valid choice.");
    /* A long value is echoed shortened, so the message still fits. */
    char v[300];
    memset(v, 'x', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    assert_int_equal(one_str(f, "color", v), ADI_INVALID);
    assert_int_equal(f->err.nfields, 1);
    const char *m = f->err.fields[0].message;
    assert_true(strncmp(m, "\"xxxx", 5) == 0);
    assert_non_null(strstr(m, "...\" is not a valid choice."));
    /* Cut on a character boundary: 100 three-byte characters, cut at 120 bytes -> 40 of them. */
    char wide[301];
    for (int i = 0; i < 100; i++)
        memcpy(wide + 3 * i, "\xe2\x82\xac", 3);
    wide[300] = '\0';
    assert_int_equal(one_str(f, "color", wide), ADI_INVALID);
    m = f->err.fields[0].message;
    assert_int_equal(strlen(m), 1 + 120 + strlen("...\" is not a valid choice."));
    /* Huge values are refused without being scanned. */
    size_t big = 70000;
    char *h = adi_xmalloc(big);
    memset(h, 'r', big);
    assert_int_equal(one_strn(f, "color", h, big), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "color",
                  "\"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr...\" is not a valid choice.");
    assert_int_equal(one_strn(f, "uuid", h, big), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "uuid", "Must be a valid UUID.");
    /* Found with fuzz_msg's error-reply check: the echo of a huge value (not checked as UTF-8)
     * cut a character in two, or copied invalid bytes, so the service's error reply failed the
     * gateway's decode. Only whole, valid characters are echoed. */
    memcpy(h + 31, "\xc3\xa9", 2);
    assert_int_equal(one_strn(f, "color", h, big), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "color",
                  "\"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr...\" is not a valid choice.");
    h[3] = '\xff';
    assert_int_equal(one_strn(f, "color", h, big), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "color", "\"rrr...\" is not a valid choice.");
    free(h);
}

static void test_datetime(void **state)
{
    fixture_t *f = *state;
    static const char *const good[] = {
        "2026-11-23T19:51:09.354026-05:00",
        "2026-11-23T19:51",
        "2026-11-23 19:51:09Z",
        "2026-1-2T3:4:5",
        "2024-02-29T00:00:00+0530",
        "2026-11-23T19:51:09,5+05",
        "2026-11-23T19:51:09.123456789012Z",
        "2000-02-29T23:59:59 -05:00",
        NULL,
    };
    static const char *const bad[] = {
        "2026-11-23",
        "2025-02-29T00:00",
        "1900-02-29T00:00",
        "2026-13-01T00:00",
        "2026-00-01T00:00",
        "2026-04-31T00:00",
        "2026-11-23T24:00",
        "2026-11-23T19:60",
        "2026-11-23T19:51:60",
        "yesterday",
        "2026-11-23T19:51:09+24:00",
        "2026-11-23T19:51:09.1234567890123Z",
        "0000-01-01T00:00",
        "2026-11-23T19:51:09+5",
        "2026-11-23T19:51:09.",
        "2026-11-23T19:51:09Zjunk",
        "26-11-23T19:51",
        NULL,
    };
    const char *msg = "Datetime has wrong format. Use one of these formats instead: "
                      "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].";
    for (const char *const *t = good; *t != NULL; t++)
        good_str(f, "when", *t);
    for (const char *const *t = bad; *t != NULL; t++)
        bad_str(f, "when", *t, msg);
    assert_int_equal(one_int(f, "when", 1700000000), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "when", msg);
}

/* Asserts {n: <str>} decodes to `want`. */
static void int_text(fixture_t *f, const char *text, int64_t want)
{
    if (one_str(f, "n", text) != ADI_OK) {
        pt_dump(&f->err);
        fail_msg("n=\"%s\" rejected", text);
    }
    assert_int_equal(f->out.n, want);
}

static void test_integer(void **state)
{
    fixture_t *f = *state;
    const char *invalid = "A valid integer is required.";
    const char *le = "Ensure this value is less than or equal to 10.";
    const char *ge = "Ensure this value is greater than or equal to -5.";
    assert_int_equal(one_int(f, "n", 10), ADI_OK);
    assert_int_equal(f->out.n, 10);
    assert_int_equal(one_int(f, "n", -5), ADI_OK);
    assert_int_equal(f->out.n, -5);
    assert_int_equal(one_int(f, "n", 11), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "n", le);
    assert_int_equal(one_int(f, "n", -6), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "n", ge);
    assert_int_equal(one_int(f, "n", INT64_MIN), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "n", ge);
    assert_int_equal(one_raw(f, "n", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "n", le);
    /* Strings as DRF's IntegerField reads them (query parameters arrive as strings). */
    int_text(f, "7", 7);
    int_text(f, " 7 ", 7);
    int_text(f, "7.0", 7);
    int_text(f, "7.00  ", 7);
    int_text(f, "7.", 7);
    int_text(f, "+7", 7);
    int_text(f, "-5", -5);
    int_text(f, "1_0", 10);
    int_text(f, "007", 7);
    static const char *const bad[] = {"7.5", "abc", "",    " ",     "1e1",  "0x1",      "1__0",
                                      "_1",  "1_",  "--1", "7.0.0", "1. 0", "\xc3\xa9", NULL};
    for (const char *const *b = bad; *b != NULL; b++)
        bad_str(f, "n", *b, invalid);
    bad_str(f, "n", "99999999999999999999999", le);
    bad_str(f, "n", "-99999999999999999999999", ge);
    bad_str(f, "n", "11", le);
    char big[1002];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    bad_str(f, "n", big, "String value too large.");
    /* Floats: integral values are accepted, as str(3.0) == "3.0" is for DRF. */
    assert_int_equal(one_double(f, "n", 3.0), ADI_OK);
    assert_int_equal(f->out.n, 3);
    assert_int_equal(one_double(f, "n", -0.0), ADI_OK);
    assert_int_equal(f->out.n, 0);
    static const double badf[] = {3.5, 1e20, -0.5};
    for (size_t i = 0; i < sizeof(badf) / sizeof(badf[0]); i++) {
        assert_int_equal(one_double(f, "n", badf[i]), ADI_INVALID);
        PT_ASSERT_HAS(&f->err, "n", invalid);
    }
    assert_int_equal(one_raw(f, "n", "\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 9), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "n", invalid);                                 /* NaN */
    assert_int_equal(one_raw(f, "n", "\xca\x40\x40\x00\x00", 5), ADI_OK); /* float32 3.0 */
    assert_int_equal(f->out.n, 3);
    static const char *const badraw[] = {"\xc3", "\x90", "\x80", "\xc4\x01\x31"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(one_raw(f, "n", badraw[i], strlen(badraw[i]) ? strlen(badraw[i]) : 1),
                         ADI_INVALID);
        PT_ASSERT_HAS(&f->err, "n", invalid);
    }
}

static void test_boolean(void **state)
{
    fixture_t *f = *state;
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "on", "1", "t", "Y", NULL};
    static const char *const no[] = {"false", "False", "FALSE", "no", "off", "0", "f", "N", NULL};
    for (const char *const *s = yes; *s != NULL; s++) {
        f->out.b = false;
        good_str(f, "b", *s);
        assert_true(f->out.b);
    }
    for (const char *const *s = no; *s != NULL; s++) {
        good_str(f, "b", *s);
        assert_false(f->out.b);
    }
    assert_int_equal(one_raw(f, "b", "\xc3", 1), ADI_OK);
    assert_true(f->out.b);
    assert_int_equal(one_int(f, "b", 1), ADI_OK);
    assert_true(f->out.b);
    assert_int_equal(one_int(f, "b", 0), ADI_OK);
    assert_false(f->out.b);
    assert_int_equal(one_double(f, "b", 1.0), ADI_OK);
    assert_true(f->out.b);
    const char *msg = "Must be a valid boolean.";
    bad_str(f, "b", "maybe", msg);
    bad_str(f, "b", "yES", msg);
    assert_int_equal(one_int(f, "b", 2), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "b", msg);
    assert_int_equal(one_int(f, "b", -1), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "b", msg);
    assert_int_equal(one_double(f, "b", 0.5), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "b", msg);
    assert_int_equal(one_raw(f, "b", "\x90", 1), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "b", msg);
}

static void test_lists(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *bytes; /* msgpack value */
        size_t n;          /* length */
        const char *type;  /* Python type name */
    } notlist[] = {
        {"\xa1x", 2, "str"},
        {"\x80", 1, "dict"},
        {"\x05", 1, "int"},
        {"\xc3", 1, "bool"},
        {"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 9, "float"},
        {"\xc4\x00", 2, "bytes"},
    };
    for (size_t i = 0; i < sizeof(notlist) / sizeof(notlist[0]); i++) {
        char msg[96];
        snprintf(msg, sizeof(msg), "Expected a list of items but got type \"%s\".",
                 notlist[i].type);
        assert_int_equal(one_raw(f, "subs", notlist[i].bytes, notlist[i].n), ADI_INVALID);
        PT_ASSERT_HAS(&f->err, "subs", msg);
        assert_int_equal(one_raw(f, "tags", notlist[i].bytes, notlist[i].n), ADI_INVALID);
        PT_ASSERT_HAS(&f->err, "tags", msg);
    }
    /* Too many items. */
    assert_int_equal(one_raw(f, "subs", "\x93\x80\x80\x80", 4), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "subs", "Ensure this field has no more than 2 elements.");
    assert_int_equal(one_raw(f, "tags", "\x94\xa1x\xa1x\xa1x\xa1x", 9), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "tags", "Ensure this field has no more than 3 elements.");
    assert_int_equal(f->err.nfields, 1);
    /* Item errors carry the index. */
    one(f, "tags");
    msgpack_pack_array(&f->mp.pk, 3);
    pt_str(&f->mp, "toolong");
    msgpack_pack_nil(&f->mp.pk);
    pt_str(&f->mp, "");
    assert_int_equal(run(f), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "tags.0", "Ensure this field has no more than 4 characters.");
    PT_ASSERT_HAS(&f->err, "tags.1", "This field may not be null.");
    PT_ASSERT_HAS(&f->err, "tags.2", "This field may not be blank.");
    one(f, "subs");
    msgpack_pack_array(&f->mp.pk, 2);
    pt_str(&f->mp, "x");
    msgpack_pack_map(&f->mp.pk, 2);
    pt_str(&f->mp, "name");
    pt_str(&f->mp, "");
    pt_str(&f->mp, "n");
    msgpack_pack_int(&f->mp.pk, 10);
    assert_int_equal(run(f), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "subs.0.non_field_errors",
                  "Invalid data. Expected a dictionary, but got str.");
    PT_ASSERT_HAS(&f->err, "subs.1.name", "This field may not be blank.");
    PT_ASSERT_HAS(&f->err, "subs.1.n", "Ensure this value is less than or equal to 9.");
    /* Empty lists are fine. */
    assert_int_equal(one_raw(f, "tags", "\x90", 1), ADI_OK);
    assert_int_equal(f->out.tags.n, 0);
    assert_int_equal(one_raw(f, "subs", "\x90", 1), ADI_OK);
    assert_int_equal(f->out.subs.n, 0);
}

static void test_nested(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(one_str(f, "sub", "str"), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "sub.non_field_errors",
                  "Invalid data. Expected a dictionary, but got str.");
    assert_int_equal(one_raw(f, "sub", "\x91\x01", 2), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "sub.non_field_errors",
                  "Invalid data. Expected a dictionary, but got list.");
    one(f, "sub");
    msgpack_pack_map(&f->mp.pk, 2);
    pt_str(&f->mp, "name");
    pt_str(&f->mp, "toolong");
    pt_str(&f->mp, "n");
    pt_str(&f->mp, "x");
    assert_int_equal(run(f), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "sub.name", "Ensure this field has no more than 4 characters.");
    PT_ASSERT_HAS(&f->err, "sub.n", "A valid integer is required.");
    /* Required fields of a nested message are checked too. */
    assert_int_equal(one_raw(f, "sub", "\x80", 1), ADI_OK);
    assert_int_equal(adi_proto_check_required(&t_all_desc, &f->out, &f->err), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "sub.name", "This field is required.");
}

static void test_top_level_types(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *bytes; /* msgpack value */
        size_t n;          /* length */
        const char *type;  /* Python type name */
    } tops[] = {
        {"\xa1x", 2, "str"},     {"\x05", 1, "int"},
        {"\xff", 1, "int"},      {"\x91\x01", 2, "list"},
        {"\xc2", 1, "bool"},     {"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 9, "float"},
        {"\xc0", 1, "NoneType"}, {"\xc4\x00", 2, "bytes"},
    };
    for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
        char msg[96];
        snprintf(msg, sizeof(msg), "Invalid data. Expected a dictionary, but got %s.",
                 tops[i].type);
        t_all out = {0};
        adi_error_clear(&f->err);
        assert_int_equal(
            adi_proto_decode(&t_all_desc, tops[i].bytes, tops[i].n, &f->pool, &out, &f->err),
            ADI_INVALID);
        PT_ASSERT_HAS(&f->err, "non_field_errors", msg);
        assert_int_equal(f->err.nfields, 1);
    }
}

static void test_collect_all(void **state)
{
    fixture_t *f = *state;
    msgpack_pack_map(&f->mp.pk, 6);
    pt_str(&f->mp, "s");
    pt_str(&f->mp, "");
    pt_str(&f->mp, "email");
    pt_str(&f->mp, "bad");
    pt_str(&f->mp, "n");
    msgpack_pack_int(&f->mp.pk, 100);
    pt_str(&f->mp, "subs");
    pt_str(&f->mp, "x");
    pt_str(&f->mp, "color");
    pt_str(&f->mp, "blue");
    pt_str(&f->mp, "b");
    msgpack_pack_true(&f->mp.pk);
    assert_int_equal(run(f), ADI_INVALID);
    assert_int_equal(f->err.code, ADI_INVALID);
    assert_string_equal(f->err.message, "Invalid input.");
    assert_int_equal(f->err.nfields, 5);
    PT_ASSERT_HAS(&f->err, "s", "This field may not be blank.");
    PT_ASSERT_HAS(&f->err, "email", "Enter a valid email address.");
    PT_ASSERT_HAS(&f->err, "n", "Ensure this value is less than or equal to 10.");
    PT_ASSERT_HAS(&f->err, "subs", "Expected a list of items but got type \"str\".");
    PT_ASSERT_HAS(&f->err, "color", "\"blue\" is not a valid choice.");
    assert_true(f->out.b); /* valid fields are still decoded */

    /* More errors than adi_error_t holds: the extra ones are dropped, nothing breaks. */
    adi_buf_reset(&f->mp.buf);
    msgpack_pack_array(&f->mp.pk, 40);
    for (int i = 0; i < 40; i++)
        msgpack_pack_int(&f->mp.pk, i);
    t_rootlist out = {0};
    assert_int_equal(pt_decode(&t_rootlist_desc, &f->mp.buf, &f->pool, &out, &f->err), ADI_INVALID);
    assert_int_equal(f->err.nfields, ADI_ERROR_MAX_FIELDS);
    PT_ASSERT_HAS(&f->err, "0.non_field_errors",
                  "Invalid data. Expected a dictionary, but got int.");
}

static void test_raw_size(void **state)
{
    fixture_t *f = *state;
    char s[16];
    memset(s, 'r', sizeof(s));
    assert_int_equal(one_strn(f, "raw", s, 15), ADI_OK); /* 16 bytes with its header */
    assert_int_equal(f->out.raw.len, 16);
    assert_int_equal(one_strn(f, "raw", s, 16), ADI_INVALID);
    PT_ASSERT_HAS(&f->err, "raw", "Ensure this field has no more than 16 bytes.");
    /* Any type goes. */
    assert_int_equal(one_raw(f, "raw", "\x81\xa1k\x92\xc3\xc0", 6), ADI_OK);
    assert_int_equal(f->out.raw.len, 6);
}

/* Packs `levels` nested t_node maps. */
static void pack_nodes(pt_mp_t *m, int levels)
{
    for (int i = 0; i < levels; i++) {
        msgpack_pack_map(&m->pk, i + 1 < levels ? 2 : 1);
        pt_str(m, "v");
        msgpack_pack_int(&m->pk, i);
        if (i + 1 < levels)
            pt_str(m, "child");
    }
}

static void test_depth(void **state)
{
    fixture_t *f = *state;
    t_node out = {0};
    pack_nodes(&f->mp, 16);
    assert_int_equal(pt_decode(&t_node_desc, &f->mp.buf, &f->pool, &out, &f->err), ADI_OK);
    const t_node *n = &out;
    int levels = 1;
    while (n->child != NULL) {
        n = n->child;
        levels++;
    }
    assert_int_equal(levels, 16);
    assert_int_equal(n->v, 15);

    adi_buf_reset(&f->mp.buf);
    pack_nodes(&f->mp, 17);
    memset(&out, 0, sizeof(out));
    assert_int_equal(pt_decode(&t_node_desc, &f->mp.buf, &f->pool, &out, &f->err), ADI_INVALID);
    assert_int_equal(f->err.nfields, 1);
    assert_string_equal(f->err.fields[0].message, "Nesting too deep.");

    /* Lists count: {"kids": [{"kids": [...]}]}: the top map, then a list and a map per level. */
    for (int lv = 7; lv <= 9; lv++) {
        adi_buf_reset(&f->mp.buf);
        for (int i = 0; i < lv; i++) {
            msgpack_pack_map(&f->mp.pk, 1);
            pt_str(&f->mp, "kids");
            msgpack_pack_array(&f->mp.pk, 1);
        }
        msgpack_pack_map(&f->mp.pk, 0);
        t_tree tree = {0};
        /* 8 levels put the innermost map at depth 17, 7 keep it at 15. */
        adi_err rc = pt_decode(&t_tree_desc, &f->mp.buf, &f->pool, &tree, &f->err);
        assert_int_equal(rc, lv <= 7 ? ADI_OK : ADI_INVALID);
        if (rc != ADI_OK)
            assert_string_equal(f->err.fields[0].message, "Nesting too deep.");
    }

    /* Deep values the decoder does not interpret (unknown keys, RAW) are skipped, not refused. */
    adi_buf_reset(&f->mp.buf);
    msgpack_pack_map(&f->mp.pk, 2);
    pt_str(&f->mp, "deep");
    for (int i = 0; i < 5000; i++)
        msgpack_pack_array(&f->mp.pk, 1);
    msgpack_pack_nil(&f->mp.pk);
    pt_str(&f->mp, "raw");
    for (int i = 0; i < 8; i++)
        msgpack_pack_array(&f->mp.pk, 1);
    msgpack_pack_nil(&f->mp.pk);
    assert_int_equal(run(f), ADI_OK);
    assert_int_equal(f->out.raw.len, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blank, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_trimmed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_email, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uuid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_datetime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boolean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_top_level_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collect_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_depth, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
