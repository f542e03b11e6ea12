/* SPDX-License-Identifier: MIT */
/*
 * The gateway's two conversions. JSON -> msgpack parses with jansson (strict: duplicate keys,
 * invalid UTF-8 and integers beyond int64 are rejected; NUL characters are let through so that the
 * field validator can answer with DRF's "Null characters are not allowed.") and packs the tree
 * with msgpack-c's packer. msgpack -> JSON writes the text straight from the msgpack bytes with the
 * reader of proto_int.h (no intermediate tree), escaping strings with adi_buf_append_json_escaped
 * and printing floats as Python does, so replies look as the Django version's did.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "adi/proto.h"
#include "proto_int.h"

static int buf_write(void *data, const char *buf, size_t len)
{
    adi_buf_append(data, buf, len);
    return 0;
}

/* Undoes a failed conversion's partial output. */
static void truncate_to(adi_buf_t *out, size_t len)
{
    out->len = len;
    if (out->cap > 0)
        out->data[len] = '\0';
}

/* ---- JSON -> msgpack -------------------------------------------------------------------- */

/* Packs `j`, a value at nesting `depth` (1 for the top container). False when too deep. */
static bool pack_json(msgpack_packer *pk, json_t *j, int depth)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (depth > ADI_JSON_MAX_DEPTH)
            return false;
        const char *key;
        size_t key_len;
        json_t *v;
        msgpack_pack_map(pk, json_object_size(j));
        json_object_keylen_foreach(j, key, key_len, v)
        {
            msgpack_pack_str(pk, key_len);
            msgpack_pack_str_body(pk, key, key_len);
            if (!pack_json(pk, v, depth + 1))
                return false;
        }
        return true;
    }
    case JSON_ARRAY: {
        if (depth > ADI_JSON_MAX_DEPTH)
            return false;
        size_t n = json_array_size(j);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            if (!pack_json(pk, json_array_get(j, i), depth + 1))
                return false;
        return true;
    }
    case JSON_STRING: {
        size_t n = json_string_length(j);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, json_string_value(j), n);
        return true;
    }
    case JSON_INTEGER:
        msgpack_pack_int64(pk, (int64_t)json_integer_value(j));
        return true;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(j));
        return true;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return true;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return true;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        return true;
    }
    return true;
}

adi_err adi_json_to_msgpack(const char *json, size_t len, adi_buf_t *out, adi_error_t *err)
{
    json_error_t je;
    json_t *root = json_loadb(json != NULL ? json : "", json != NULL ? len : 0,
                              JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (root == NULL) {
        /* jansson appends " near '<input>'": cut it, so no part of the body is echoed back. */
        char *near = strstr(je.text, " near ");
        if (near != NULL)
            *near = '\0';
        return adi_error_set(err, ADI_INVALID, "JSON parse error - %s: line %d column %d (char %d)",
                             je.text, je.line, je.column, je.position);
    }
    size_t mark = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    bool ok = pack_json(&pk, root, 1);
    json_decref(root);
    if (!ok) {
        truncate_to(out, mark);
        return adi_error_set(err, ADI_INVALID, "JSON parse error - nesting deeper than %d levels",
                             ADI_JSON_MAX_DEPTH);
    }
    return ADI_OK;
}

/* ---- msgpack -> JSON -------------------------------------------------------------------- */

static void put_string(adi_buf_t *out, const char *s, size_t n)
{
    adi_buf_append(out, "\"", 1);
    adi_buf_append_json_escaped(out, s, n);
    adi_buf_append(out, "\"", 1);
}

/* Writes the value at r->p. Returns NULL, or the reason it cannot be converted. */
static const char *write_json(adi_mp_reader_t *r, adi_buf_t *out, int depth)
{
    adi_mp_item_t it;
    if (!adi_proto__mp_next(r, &it))
        return "Malformed message.";
    switch (it.type) {
    case ADI_MP_NIL:
        adi_buf_append(out, "null", 4);
        return NULL;
    case ADI_MP_BOOL:
        adi_buf_append_str(out, it.b ? "true" : "false");
        return NULL;
    case ADI_MP_UINT:
        adi_buf_printf(out, "%llu", (unsigned long long)it.u);
        return NULL;
    case ADI_MP_INT:
        adi_buf_printf(out, "%lld", (long long)it.i);
        return NULL;
    case ADI_MP_FLOAT: {
        if (!isfinite(it.f)) {
            adi_buf_append(out, "null", 4); /* JSON has no NaN or Infinity */
            return NULL;
        }
        char text[32];
        size_t n = adi_proto__fmt_double(it.f, text);
        adi_buf_append(out, text, n);
        return NULL;
    }
    case ADI_MP_STR:
    case ADI_MP_BIN:
        put_string(out, it.ptr, it.n);
        return NULL;
    case ADI_MP_EXT:
        return "Extension types cannot be converted to JSON.";
    case ADI_MP_ARRAY:
    case ADI_MP_MAP:
        break;
    }
    if (depth > ADI_PROTO__JSON_OUT_MAX_DEPTH)
        return "Nesting too deep.";
    bool map = it.type == ADI_MP_MAP;
    adi_buf_append(out, map ? "{" : "[", 1);
    for (uint32_t i = 0; i < it.n; i++) {
        if (i > 0)
            adi_buf_append(out, ",", 1);
        if (map) {
            adi_mp_item_t key;
            if (!adi_proto__mp_next(r, &key))
                return "Malformed message.";
            if (key.type != ADI_MP_STR)
                return "Map keys must be strings.";
            put_string(out, key.ptr, key.n);
            adi_buf_append(out, ":", 1);
        }
        const char *why = write_json(r, out, depth + 1);
        if (why != NULL)
            return why;
    }
    adi_buf_append(out, map ? "}" : "]", 1);
    return NULL;
}

adi_err adi_msgpack_to_json(const char *mp, size_t len, adi_buf_t *out, adi_error_t *err)
{
    adi_mp_reader_t r;
    size_t mark = out->len;
    adi_proto__mp_init(&r, mp, len);
    const char *why = len == 0 ? "Malformed message." : write_json(&r, out, 1);
    if (why == NULL && r.p != r.end)
        why = "Malformed message.";
    if (why != NULL) {
        truncate_to(out, mark);
        return adi_error_set(err, ADI_INVALID, "%s", why);
    }
    return ADI_OK;
}
