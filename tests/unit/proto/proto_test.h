/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the proto unit tests: building msgpack input with msgpack-c's packer, looking
 * up a field message in an adi_error_t, and hand-written descriptors for field kinds that the
 * bus messages of proto/<x>.def do not use (e-mail, UUID, choices, date-times, ranges, lists).
 */
#ifndef ADI_PROTO_TEST_H
#define ADI_PROTO_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "adi/messages.h"

/* ---- msgpack building ------------------------------------------------------------------- */

static inline int pt_write(void *data, const char *buf, size_t len)
{
    adi_buf_append(data, buf, len);
    return 0;
}

/* A packer writing into an adi_buf_t. */
typedef struct pt_mp {
    adi_buf_t buf;     /* the bytes */
    msgpack_packer pk; /* packer appending to buf */
} pt_mp_t;

static inline void pt_mp_init(pt_mp_t *m)
{
    adi_buf_init(&m->buf);
    msgpack_packer_init(&m->pk, &m->buf, pt_write);
}

static inline void pt_mp_dispose(pt_mp_t *m)
{
    adi_buf_dispose(&m->buf);
}

static inline void pt_str(pt_mp_t *m, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(&m->pk, n);
    msgpack_pack_str_body(&m->pk, s, n);
}

static inline void pt_strn(pt_mp_t *m, const char *s, size_t n)
{
    msgpack_pack_str(&m->pk, n);
    msgpack_pack_str_body(&m->pk, s, n);
}

/* ---- error lookups ---------------------------------------------------------------------- */

/* True when `err` holds `message` for `field`. */
static inline bool pt_has(const adi_error_t *err, const char *field, const char *message)
{
    for (size_t i = 0; i < err->nfields; i++)
        if (strcmp(err->fields[i].field, field) == 0 &&
            strcmp(err->fields[i].message, message) == 0)
            return true;
    return false;
}

/* Prints the errors, to make a failing assertion readable. */
static inline void pt_dump(const adi_error_t *err)
{
    fprintf(stderr, "code=%d message=%s\n", (int)err->code, err->message);
    for (size_t i = 0; i < err->nfields; i++)
        fprintf(stderr, "  %s: %s\n", err->fields[i].field, err->fields[i].message);
}

#define PT_ASSERT_HAS(err, field, msg)                                                             \
    do {                                                                                           \
        if (!pt_has((err), (field), (msg))) {                                                      \
            pt_dump(err);                                                                          \
            fail_msg("missing error %s: %s", (field), (msg));                                      \
        }                                                                                          \
    } while (0)

/* ---- hand-written test messages --------------------------------------------------------- */

/* A nested message: {name: str 1..4 required, n: int 0..9}. */
typedef struct t_sub {
    ADI_MSG_HEADER_
    adi_str_t name; /* required, 1..4 chars */
    int64_t n;      /* 0..9 */
} t_sub;

/* One of every field kind. */
typedef struct t_all {
    ADI_MSG_HEADER_
    adi_str_t s;     /* STR 2..5, required */
    adi_str_t blank; /* STR 0..10, blank allowed */
    adi_str_t email; /* EMAIL up to 254 */
    adi_str_t uuid;  /* UUID */
    adi_str_t color; /* ENUM red|green */
    adi_str_t when;  /* TIME */
    int64_t n;       /* INT -5..10 */
    bool b;          /* BOOL */
    bool nb;         /* BOOL, nullable */
    t_sub *sub;      /* MSG, nullable */
    struct {
        size_t n;
        t_sub *items;
    } subs;             /* LIST of t_sub, at most 2 */
    adi_strlist_t tags; /* STRLIST, at most 3 items of at most 4 chars */
    adi_str_t raw;      /* RAW, at most 16 bytes, nullable */
    adi_str_t ns;       /* STR, nullable */
} t_all;

enum {
    T_ALL_S,
    T_ALL_BLANK,
    T_ALL_EMAIL,
    T_ALL_UUID,
    T_ALL_COLOR,
    T_ALL_WHEN,
    T_ALL_N,
    T_ALL_B,
    T_ALL_NB,
    T_ALL_SUB,
    T_ALL_SUBS,
    T_ALL_TAGS,
    T_ALL_RAW,
    T_ALL_NS,
};

static const char *const t_colors[] = {"red", "green", NULL};

#define PT_FD(st, f, type, fmt, flags, min, max, ilen, sub, enums)                                 \
    {                                                                                              \
#f, type, fmt, (flags), (min), (max), (ilen), offsetof(st, f), sub, enums                  \
    }

static const adi_field_desc_t t_sub_fields[] = {
    PT_FD(t_sub, name, ADI_FT_STR, ADI_FMT_NONE, ADI_REQ, 1, 4, 0, NULL, NULL),
    PT_FD(t_sub, n, ADI_FT_INT, ADI_FMT_NONE, 0, 0, 9, 0, NULL, NULL),
};
static const adi_msg_desc_t t_sub_desc = {"t_sub", sizeof(t_sub), 2, t_sub_fields};

static const adi_field_desc_t t_all_fields[] = {
    PT_FD(t_all, s, ADI_FT_STR, ADI_FMT_NONE, ADI_REQ, 2, 5, 0, NULL, NULL),
    PT_FD(t_all, blank, ADI_FT_STR, ADI_FMT_NONE, ADI_BLANK, 0, 10, 0, NULL, NULL),
    PT_FD(t_all, email, ADI_FT_STR, ADI_FMT_EMAIL, 0, 0, 254, 0, NULL, NULL),
    PT_FD(t_all, uuid, ADI_FT_STR, ADI_FMT_UUID, 0, 0, 36, 0, NULL, NULL),
    PT_FD(t_all, color, ADI_FT_STR, ADI_FMT_ENUM, 0, 1, 64, 0, NULL, t_colors),
    PT_FD(t_all, when, ADI_FT_STR, ADI_FMT_TIME, 0, 0, 64, 0, NULL, NULL),
    PT_FD(t_all, n, ADI_FT_INT, ADI_FMT_NONE, 0, -5, 10, 0, NULL, NULL),
    PT_FD(t_all, b, ADI_FT_BOOL, ADI_FMT_NONE, 0, 0, 1, 0, NULL, NULL),
    PT_FD(t_all, nb, ADI_FT_BOOL, ADI_FMT_NONE, ADI_NULLABLE, 0, 1, 0, NULL, NULL),
    PT_FD(t_all, sub, ADI_FT_MSG, ADI_FMT_NONE, ADI_NULLABLE, 0, 0, 0, &t_sub_desc, NULL),
    PT_FD(t_all, subs, ADI_FT_LIST, ADI_FMT_NONE, 0, 0, 2, 0, &t_sub_desc, NULL),
    PT_FD(t_all, tags, ADI_FT_STRLIST, ADI_FMT_NONE, 0, 0, 3, 4, NULL, NULL),
    PT_FD(t_all, raw, ADI_FT_RAW, ADI_FMT_NONE, ADI_NULLABLE, 0, 16, 0, NULL, NULL),
    PT_FD(t_all, ns, ADI_FT_STR, ADI_FMT_NONE, ADI_NULLABLE, 0, 10, 0, NULL, NULL),
};
static const adi_msg_desc_t t_all_desc = {"t_all", sizeof(t_all), 14, t_all_fields};

/* A reply that is a plain list: ADI_ROOT. */
typedef struct t_rootlist {
    ADI_MSG_HEADER_
    struct {
        size_t n;
        t_sub *items;
    } items; /* the whole message */
} t_rootlist;

static const adi_field_desc_t t_rootlist_fields[] = {
    PT_FD(t_rootlist, items, ADI_FT_LIST, ADI_FMT_NONE, ADI_ROOT, 0, 100, 0, &t_sub_desc, NULL),
};
static const adi_msg_desc_t t_rootlist_desc = {"t_rootlist", sizeof(t_rootlist), 1,
                                               t_rootlist_fields};

/* A self-nesting message, for the depth limit. */
typedef struct t_node t_node;
struct t_node {
    ADI_MSG_HEADER_
    t_node *child; /* nested node */
    int64_t v;     /* payload */
};
extern const adi_msg_desc_t t_node_desc;

/* Decodes the bytes of `b` as `d` into `out` with a cleared `err`; returns the code. */
static inline adi_err pt_decode(const adi_msg_desc_t *d, const adi_buf_t *b, adi_pool_t *pool,
                                void *out, adi_error_t *err)
{
    adi_error_clear(err);
    return adi_proto_decode(d, b->data, b->len, pool, out, err);
}

#endif
