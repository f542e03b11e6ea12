/* SPDX-License-Identifier: MIT */
/*
 * Internals of libs/proto, not for use outside libs/proto: a bounds-checked msgpack reader and the
 * number and text helpers shared by the codec (codec.c) and the JSON converter (json.c).
 *
 * Why a reader of our own next to msgpack-c: msgpack_unpack materialises the whole tree before we
 * can look at it, allocates container arrays from the untrusted count (a 5-byte array header asks
 * for 96 GiB, which aborts under ASan), stops at a fixed depth of 32 (shallower than an envelope
 * wrapping a JSON body of ADI_JSON_MAX_DEPTH levels), and does not report where a value starts and
 * ends, which zero-copy RAW fields need. This reader walks the bytes in place, never allocates,
 * rejects a container count that the remaining bytes cannot hold, and skips values iteratively
 * (no recursion, so no depth limit is needed to skip). Encoding uses msgpack-c's packer.
 */
#ifndef ADI_PROTO_INT_H
#define ADI_PROTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adi/proto.h"

/** Containers the decoder interprets as messages may nest this deep (proto.h: 16). */
#define ADI_PROTO__MAX_DEPTH 16
/** A string longer than this many bytes is rejected without looking at it (proto.h: 64 KiB). */
#define ADI_PROTO__MAX_STR_BYTES 65536
/** adi_msgpack_to_json refuses input nested deeper than this (two JSON bodies' worth). */
#define ADI_PROTO__JSON_OUT_MAX_DEPTH (2 * ADI_JSON_MAX_DEPTH)

/** The msgpack type families. */
typedef enum adi_mp_type {
    ADI_MP_NIL,
    ADI_MP_BOOL,
    ADI_MP_UINT,  /* non-negative integer (any width) */
    ADI_MP_INT,   /* negative integer */
    ADI_MP_FLOAT, /* float 32 or 64, widened to double */
    ADI_MP_STR,
    ADI_MP_BIN,
    ADI_MP_ARRAY,
    ADI_MP_MAP,
    ADI_MP_EXT,
} adi_mp_type;

/** One item head: a whole scalar, or a container's header (its items follow in the input). */
typedef struct adi_mp_item {
    adi_mp_type type; /* family */
    bool b;           /* BOOL value */
    uint64_t u;       /* UINT value */
    int64_t i;        /* INT value (negative) */
    double f;         /* FLOAT value */
    const char *ptr;  /* STR/BIN/EXT payload (points into the input) */
    uint32_t n;       /* STR/BIN/EXT payload bytes, ARRAY items, MAP pairs */
    int8_t ext;       /* EXT type code */
} adi_mp_item_t;

/** A cursor over msgpack bytes; p advances as items are read. */
typedef struct adi_mp_reader {
    const unsigned char *p;   /* next byte to read */
    const unsigned char *end; /* one past the last byte */
} adi_mp_reader_t;

/** Starts a reader over `len` bytes at `buf`. */
void adi_proto__mp_init(adi_mp_reader_t *r, const char *buf, size_t len);

/**
 * Reads one item head at r->p and advances past it (past the payload for STR/BIN/EXT, past the
 * header only for ARRAY/MAP). Returns false, leaving r unspecified, for truncated input, the
 * reserved byte 0xc1, or a container whose count the remaining bytes cannot possibly hold (so a
 * count is always bounded by the input size before anyone allocates for it).
 */
bool adi_proto__mp_next(adi_mp_reader_t *r, adi_mp_item_t *it);

/** Skips one complete value of any depth at r->p, iteratively. Returns false when malformed. */
bool adi_proto__mp_skip(adi_mp_reader_t *r);

/** The Python type name DRF uses for a value of this family ("str", "int", "dict", ...). */
const char *adi_proto__py_type(adi_mp_type t);

/**
 * Formats `x` as Python's repr() does (the shortest text that reads back as the same double:
 * "0.1", "3.0", "1e+16", "-0.0", "inf", "nan"), NUL-terminated. Returns the length.
 */
size_t adi_proto__fmt_double(double x, char out[32]);

#endif
