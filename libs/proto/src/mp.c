/* SPDX-License-Identifier: MIT */
/*
 * The bounds-checked msgpack reader behind the decoder and the msgpack->JSON writer (see
 * proto_int.h for why it exists next to msgpack-c), and Python's float repr, which DRF's text for
 * numbers follows (a float sent to a string field, a float written to JSON).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_int.h"

void adi_proto__mp_init(adi_mp_reader_t *r, const char *buf, size_t len)
{
    r->p = (const unsigned char *)buf;
    r->end = buf != NULL ? r->p + len : r->p; /* no arithmetic on NULL */
}

static size_t left(const adi_mp_reader_t *r)
{
    return (size_t)(r->end - r->p);
}

/* Big-endian unsigned of `n` bytes (1, 2, 4 or 8); the caller has checked the length. */
static uint64_t be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads an `n`-byte big-endian length or value. */
static bool take(adi_mp_reader_t *r, size_t n, uint64_t *v)
{
    if (left(r) < n)
        return false;
    *v = be(r->p, n);
    r->p += n;
    return true;
}

/* Points it->ptr at `n` payload bytes and advances past them. */
static bool payload(adi_mp_reader_t *r, uint64_t n, adi_mp_item_t *it)
{
    if (n > left(r))
        return false;
    it->ptr = (const char *)r->p;
    it->n = (uint32_t)n;
    r->p += n;
    return true;
}

/* Records a signed integer, classifying non-negative values as UINT. */
static void set_int(adi_mp_item_t *it, int64_t v)
{
    if (v >= 0) {
        it->type = ADI_MP_UINT;
        it->u = (uint64_t)v;
    } else {
        it->type = ADI_MP_INT;
        it->i = v;
    }
}

/* A container header: the count must fit in the bytes that are left (every item takes >= 1). */
static bool container(adi_mp_reader_t *r, adi_mp_item_t *it, adi_mp_type t, uint64_t n)
{
    uint64_t need = t == ADI_MP_MAP ? 2 * n : n;
    if (need > left(r))
        return false;
    it->type = t;
    it->n = (uint32_t)n;
    return true;
}

/* EXT: the type byte then `n` bytes of data. */
static bool ext(adi_mp_reader_t *r, adi_mp_item_t *it, uint64_t n)
{
    uint64_t t;
    if (!take(r, 1, &t))
        return false;
    it->type = ADI_MP_EXT;
    it->ext = (int8_t)(uint8_t)t;
    return payload(r, n, it);
}

bool adi_proto__mp_next(adi_mp_reader_t *r, adi_mp_item_t *it)
{
    memset(it, 0, sizeof(*it));
    if (left(r) < 1)
        return false;
    unsigned char b = *r->p++;
    uint64_t v;
    if (b <= 0x7f) {
        it->type = ADI_MP_UINT;
        it->u = b;
        return true;
    }
    if (b >= 0xe0) {
        it->type = ADI_MP_INT;
        it->i = (int64_t)(int8_t)b;
        return true;
    }
    if (b >= 0x80 && b <= 0x8f)
        return container(r, it, ADI_MP_MAP, b & 0x0f);
    if (b >= 0x90 && b <= 0x9f)
        return container(r, it, ADI_MP_ARRAY, b & 0x0f);
    if (b >= 0xa0 && b <= 0xbf) {
        it->type = ADI_MP_STR;
        return payload(r, b & 0x1f, it);
    }
    switch (b) {
    case 0xc0:
        it->type = ADI_MP_NIL;
        return true;
    case 0xc2:
    case 0xc3:
        it->type = ADI_MP_BOOL;
        it->b = b == 0xc3;
        return true;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        it->type = ADI_MP_BIN;
        return take(r, (size_t)1 << (b - 0xc4), &v) && payload(r, v, it);
    case 0xc7:
    case 0xc8:
    case 0xc9:
        return take(r, (size_t)1 << (b - 0xc7), &v) && ext(r, it, v);
    case 0xca: {
        if (!take(r, 4, &v))
            return false;
        uint32_t bits = (uint32_t)v;
        float f;
        memcpy(&f, &bits, sizeof(f));
        it->type = ADI_MP_FLOAT;
        it->f = f;
        return true;
    }
    case 0xcb: {
        if (!take(r, 8, &v))
            return false;
        double d;
        memcpy(&d, &v, sizeof(d));
        it->type = ADI_MP_FLOAT;
        it->f = d;
        return true;
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (!take(r, (size_t)1 << (b - 0xcc), &v))
            return false;
        it->type = ADI_MP_UINT;
        it->u = v;
        return true;
    case 0xd0:
        if (!take(r, 1, &v))
            return false;
        set_int(it, (int8_t)(uint8_t)v);
        return true;
    case 0xd1:
        if (!take(r, 2, &v))
            return false;
        set_int(it, (int16_t)(uint16_t)v);
        return true;
    case 0xd2:
        if (!take(r, 4, &v))
            return false;
        set_int(it, (int32_t)(uint32_t)v);
        return true;
    case 0xd3:
        if (!take(r, 8, &v))
            return false;
        set_int(it, (int64_t)v);
        return true;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return ext(r, it, (uint64_t)1 << (b - 0xd4));
    case 0xd9:
    case 0xda:
    case 0xdb:
        it->type = ADI_MP_STR;
        return take(r, (size_t)1 << (b - 0xd9), &v) && payload(r, v, it);
    case 0xdc:
    case 0xdd:
        return take(r, b == 0xdc ? 2 : 4, &v) && container(r, it, ADI_MP_ARRAY, v);
    case 0xde:
    case 0xdf:
        return take(r, b == 0xde ? 2 : 4, &v) && container(r, it, ADI_MP_MAP, v);
    default: /* 0xc1 is reserved and never valid */
        return false;
    }
}

bool adi_proto__mp_skip(adi_mp_reader_t *r)
{
    /* Values still to read; each container's count is bounded by the bytes left, so this is too. */
    uint64_t pending = 1;
    adi_mp_item_t it;
    while (pending > 0) {
        if (!adi_proto__mp_next(r, &it))
            return false;
        pending--;
        if (it.type == ADI_MP_ARRAY)
            pending += it.n;
        else if (it.type == ADI_MP_MAP)
            pending += 2 * (uint64_t)it.n;
    }
    return true;
}

const char *adi_proto__py_type(adi_mp_type t)
{
    switch (t) {
    case ADI_MP_NIL:
        return "NoneType";
    case ADI_MP_BOOL:
        return "bool";
    case ADI_MP_UINT:
    case ADI_MP_INT:
        return "int";
    case ADI_MP_FLOAT:
        return "float";
    case ADI_MP_STR:
        return "str";
    case ADI_MP_ARRAY:
        return "list";
    case ADI_MP_MAP:
        return "dict";
    case ADI_MP_BIN:
    case ADI_MP_EXT:
        break;
    }
    return "bytes";
}

size_t adi_proto__fmt_double(double x, char out[32])
{
    if (isnan(x))
        return (size_t)snprintf(out, 32, "nan");
    if (isinf(x))
        return (size_t)snprintf(out, 32, "%s", x < 0 ? "-inf" : "inf");
    if (x == 0)
        return (size_t)snprintf(out, 32, "%s", signbit(x) ? "-0.0" : "0.0");

    /* The shortest number of significant digits that reads back as exactly x. */
    char sci[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(sci, sizeof(sci), "%.*e", prec - 1, x);
        if (strtod(sci, NULL) == x)
            break;
    }
    /* Split "-d.ddde+XX" into sign, digits and the decimal exponent. */
    const char *s = sci;
    bool neg = *s == '-';
    if (neg)
        s++;
    char digits[20];
    size_t nd = 0;
    for (; *s != 'e' && *s != '\0'; s++)
        if (*s != '.' && nd < sizeof(digits) - 1)
            digits[nd++] = *s;
    digits[nd] = '\0';
    int e = *s == 'e' ? atoi(s + 1) : 0;
    int decpt = e + 1; /* x = 0.digits * 10^decpt */

    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (decpt > -4 && decpt <= 16) {
        /* Fixed notation, always with a fractional part, as Python prints floats. */
        if (decpt <= 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -decpt; i++)
                out[o++] = '0';
            memcpy(out + o, digits, nd);
            o += nd;
        } else if ((size_t)decpt >= nd) {
            memcpy(out + o, digits, nd);
            o += nd;
            for (size_t i = nd; i < (size_t)decpt; i++)
                out[o++] = '0';
            out[o++] = '.';
            out[o++] = '0';
        } else {
            memcpy(out + o, digits, (size_t)decpt);
            o += (size_t)decpt;
            out[o++] = '.';
            memcpy(out + o, digits + decpt, nd - (size_t)decpt);
            o += nd - (size_t)decpt;
        }
        out[o] = '\0';
        return o;
    }
    out[o++] = digits[0];
    if (nd > 1) {
        out[o++] = '.';
        memcpy(out + o, digits + 1, nd - 1);
        o += nd - 1;
    }
    int n = snprintf(out + o, 32 - o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    return o + (size_t)n;
}
