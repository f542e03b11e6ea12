/* SPDX-License-Identifier: MIT */
/*
 * The message runtime. Every bus message (the envelope, the reply and every operation's request
 * and reply body) is declared once in proto/<x>.def with the ADI_MSG_BEGIN / ADI_F_* / ADI_MSG_END
 * macros. Including the .def files with different macro definitions yields the C structs and a
 * descriptor table per message; the generic codec below walks those tables to encode, decode and
 * validate (with DRF's field-level messages), so no service hand-packs msgpack or validates by
 * hand.
 *
 * Wire format: a message is a msgpack map keyed by the field names (the same names as the JSON the
 * gateway speaks), except a message whose only field is flagged ADI_ROOT, which encodes as that
 * field's value alone (a reply that is a plain JSON array).
 *
 * Ownership: decoded strings and RAW values point into the input buffer (zero-copy), which must
 * outlive the decoded struct; everything else a decoder allocates lives in the caller's pool.
 */
#ifndef ADI_PROTO_H
#define ADI_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adi/core.h"

struct msgpack_object;

typedef enum adi_ftype {
    ADI_FT_STR,     /* adi_str_t: UTF-8 text with a length range in characters and a format */
    ADI_FT_INT,     /* int64_t within [min, max] */
    ADI_FT_BOOL,    /* bool */
    ADI_FT_MSG,     /* pointer to a nested message (NULL when absent) */
    ADI_FT_LIST,    /* adi_list_t of nested messages, at most max items */
    ADI_FT_STRLIST, /* adi_strlist_t of strings, at most max items of at most (ilen) chars */
    ADI_FT_RAW,     /* adi_str_t holding one msgpack object of any type, at most max bytes */
} adi_ftype;

typedef enum adi_fmt {
    ADI_FMT_NONE = 0,
    ADI_FMT_EMAIL, /* "Enter a valid email address." */
    ADI_FMT_UUID,  /* "Must be a valid UUID." */
    ADI_FMT_ENUM,  /* one of the field's enum values: "\"X\" is not a valid choice." */
    ADI_FMT_TIME,  /* ISO 8601 date-time */
} adi_fmt;

enum {
    ADI_REQ = 1u << 0,      /* missing -> "This field is required." */
    ADI_NULLABLE = 1u << 1, /* null accepted on decode; absent encodes as nil */
    ADI_BLANK = 1u << 2,    /* "" accepted (otherwise "This field may not be blank.") */
    ADI_ROOT = 1u << 3,     /* the message encodes as this (only) field's value */
};

/** A list of nested messages; items is an array of n structs of the nested type. */
typedef struct adi_list {
    size_t n;    /* number of items */
    void *items; /* n consecutive structs of the element type */
} adi_list_t;

/** A list of strings. */
typedef struct adi_strlist {
    size_t n;         /* number of items */
    adi_str_t *items; /* n slices */
} adi_strlist_t;

typedef struct adi_msg_desc adi_msg_desc_t;

/** One field of a message, as generated from its ADI_F_* line. */
typedef struct adi_field_desc {
    const char *name; /* wire and JSON name */
    adi_ftype type;   /* storage and wire type */
    adi_fmt fmt;      /* string format check */
    unsigned flags;   /* ADI_REQ | ADI_NULLABLE | ADI_BLANK | ADI_ROOT */
    int64_t min, max; /* length (chars) for STR, value for INT, items for lists, bytes for RAW */
    int64_t ilen;     /* max chars of each STRLIST item */
    size_t offset;    /* offsetof the field in the struct */
    const adi_msg_desc_t *sub; /* element type for MSG and LIST */
    const char *const *enums;  /* NULL-terminated allowed values for ADI_FMT_ENUM */
} adi_field_desc_t;

/** A message type. */
struct adi_msg_desc {
    const char *name;               /* C type name */
    size_t size;                    /* sizeof the struct */
    size_t nfields;                 /* number of fields */
    const adi_field_desc_t *fields; /* the fields, in declaration order (bit i of _has) */
};

/*
 * Every generated struct starts with these two bitmasks (bit i = field i of the descriptor):
 * _has is set by the decoder for every key present (null included), _null for every nil.
 * Encoders ignore them: a STR/RAW/MSG field is written when its pointer is set, INT/BOOL/lists
 * always; an unset ADI_NULLABLE field is written as nil, another unset field is omitted.
 */
#define ADI_MSG_HEADER_                                                                            \
    uint32_t _has;  /* fields present in the decoded input */                                      \
    uint32_t _null; /* fields that were nil in the decoded input */

/* Field index constant generated for every field: <msg>__f_<field>. */
#define ADI_HAS(msg, m, f)     ((((m)->_has) >> msg##__f_##f) & 1u)
#define ADI_IS_NULL(msg, m, f) ((((m)->_null) >> msg##__f_##f) & 1u)

/* ---- codec ------------------------------------------------------------------------------ */

/**
 * Decodes msgpack bytes `buf` into `out` (a zeroed struct of type `d`, or one already partly
 * filled: keys present in `buf` overwrite, so path parameters can be merged over a body) and
 * checks types, lengths, ranges and formats. Required fields are NOT checked here (see
 * adi_proto_check_required) so that several sources can be merged first.
 * Errors: ADI_INVALID with per-field messages (DRF wording) for bad input, including malformed or
 * trailing bytes, a non-map where a map is expected, nesting deeper than 16, or more than 64 KiB
 * of strings in one field. Never crashes on any input.
 */
adi_err adi_proto_decode(const adi_msg_desc_t *d, const char *buf, size_t len, adi_pool_t *pool,
                         void *out, adi_error_t *err);

/**
 * adi_proto_decode as a DRF serializer reads a client's input: the value of a plain or e-mail
 * string field (CharField, EmailField) loses its surrounding whitespace before it is checked
 * (trim_whitespace, DRF's default), so " a@b.example " is an e-mail and "   " is blank. UUIDs,
 * choices and datetimes are taken as sent, as DRF does. For requests; internal messages are
 * decoded as they are.
 */
adi_err adi_proto_decode_input(const adi_msg_desc_t *d, const char *buf, size_t len,
                               adi_pool_t *pool, void *out, adi_error_t *err);

/** Like adi_proto_decode, from an already unpacked object that lives as long as `out`. */
adi_err adi_proto_decode_obj(const adi_msg_desc_t *d, const struct msgpack_object *obj,
                             adi_pool_t *pool, void *out, adi_error_t *err);

/** Checks that every ADI_REQ field of `msg` (recursively) was present: "This field is required." */
adi_err adi_proto_check_required(const adi_msg_desc_t *d, const void *msg, adi_error_t *err);

/** Appends the msgpack encoding of `msg` (type `d`) to `out`. Cannot fail. */
void adi_proto_encode(const adi_msg_desc_t *d, const void *msg, adi_buf_t *out);

/** Encodes `msg` into pool memory, e.g. to fill a RAW field. */
adi_str_t adi_proto_encode_pool(const adi_msg_desc_t *d, const void *msg, adi_pool_t *pool);

/* ---- JSON <-> msgpack (gateway) ---------------------------------------------------------- */

#define ADI_JSON_MAX_DEPTH 32

/**
 * Converts JSON text to msgpack, appended to `out`. Rejects (ADI_INVALID, message suitable for
 * `{"detail": ...}`) malformed JSON, invalid UTF-8, duplicate keys, nesting deeper than
 * ADI_JSON_MAX_DEPTH and integers outside int64. Floats stay floats. Never crashes.
 */
adi_err adi_json_to_msgpack(const char *json, size_t len, adi_buf_t *out, adi_error_t *err);

/**
 * Converts one msgpack object (bytes `mp`) to JSON text appended to `out`. Map keys must be
 * strings; bin becomes a string; ext is rejected. Errors: ADI_INVALID for malformed input.
 */
adi_err adi_msgpack_to_json(const char *mp, size_t len, adi_buf_t *out, adi_error_t *err);

/* ---- generation macros (used by adi/messages.h) ------------------------------------------ */

/* Each proto/<x>.def is a list of:
 *   ADI_MSG_BEGIN(msg)
 *     ADI_F_STR(msg, field, minchars, maxchars, ADI_FMT_x, flags)
 *     ADI_F_ENUM(msg, field, enumvar, flags)          enumvar: NULL-terminated const char *const[]
 *     ADI_F_INT(msg, field, min, max, flags)
 *     ADI_F_BOOL(msg, field, flags)
 *     ADI_F_MSG(msg, field, submsg, flags)
 *     ADI_F_LIST(msg, field, submsg, maxitems, flags)
 *     ADI_F_STRLIST(msg, field, maxitems, maxchars, flags)
 *     ADI_F_RAW(msg, field, maxbytes, flags)
 *   ADI_MSG_END(msg)
 * and proto/ops.def is a list of ADI_OP(name, "svc.op", reqmsg, repmsg, flags).
 */

/** Operation flags. */
enum {
    ADI_OP_MUTATING = 1u << 0, /* redelivery returns the stored reply instead of running again */
    ADI_OP_INTERNAL = 1u << 1, /* only callable by a service principal, never routed */
    ADI_OP_SECRET = 1u << 2,   /* the reply carries secrets (tokens): never stored for replay,
                                  neither by libs/svc nor under a gateway Idempotency-Key */
};

/** An operation: its wire name and its request and reply types. */
typedef struct adi_op_desc {
    const char *name;          /* "auth.login" */
    const char *service;       /* "auth": the service whose stream carries it */
    const adi_msg_desc_t *req; /* request body type */
    const adi_msg_desc_t *rep; /* reply body type */
    unsigned flags;            /* ADI_OP_* */
} adi_op_desc_t;

/** Looks an operation up by wire name (hash table built from proto/ops.def); NULL if unknown. */
const adi_op_desc_t *adi_op_find(adi_str_t name);

#endif
