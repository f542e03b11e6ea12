/* SPDX-License-Identifier: MIT */
/*
 * Every message decoder: the first input byte picks one message type of proto/messages.def (the
 * whole descriptor table, built here from the same .def files the library expands), the rest is
 * the msgpack a peer would send. Invariants beyond "no crash, no leak, no UB":
 *   - a refused message says why (a message or at least one field error), and the error reply a
 *     service makes of it decodes at the gateway (fuzz_reply.h);
 *   - an accepted one, after the required-field check, encodes to bytes that decode again, and
 *     that second decode encodes to the very same bytes (encode . decode is a fixed point);
 *   - whatever it encodes to converts to JSON or is refused with a message, never half-written.
 */
#include <string.h>

#include "adi/messages.h"
#include "adi/proto.h"
#include "fuzz.h"
#include "fuzz_reply.h"

/* The descriptor of every message, in messages.def order. */
#define ADI_MSG_BEGIN(m) &m##__desc,
#define ADI_MSG_END(m)
#define ADI_F_STR(...)
#define ADI_F_ENUM(...)
#define ADI_F_INT(...)
#define ADI_F_BOOL(...)
#define ADI_F_MSG(...)
#define ADI_F_LIST(...)
#define ADI_F_STRLIST(...)
#define ADI_F_RAW(...)
static const adi_msg_desc_t *const all_msgs[] = {
#include "messages.def"
};
#undef ADI_MSG_BEGIN
#undef ADI_MSG_END
#undef ADI_F_STR
#undef ADI_F_ENUM
#undef ADI_F_INT
#undef ADI_F_BOOL
#undef ADI_F_MSG
#undef ADI_F_LIST
#undef ADI_F_STRLIST
#undef ADI_F_RAW

#define NMSGS (sizeof(all_msgs) / sizeof(all_msgs[0]))

/* Decodes `len` bytes as `d` into a fresh struct in `pool`; NULL when refused (err says why). */
static void *decode(const adi_msg_desc_t *d, const char *buf, size_t len, adi_pool_t *pool,
                    adi_error_t *err)
{
    void *msg = adi_pool_alloc(pool, d->size > 0 ? d->size : 1);
    adi_error_clear(err);
    if (adi_proto_decode(d, buf, len, pool, msg, err) != ADI_OK) {
        FUZZ_CHECK(err->code == ADI_INVALID);
        FUZZ_CHECK(err->message[0] != '\0' || err->nfields > 0);
        fuzz_check_error_reply(err);
        return NULL;
    }
    return msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const adi_msg_desc_t *d = all_msgs[data[0] % NMSGS];
    /* A private copy, so a decoded slice read past the input is caught by ASan. */
    char *in = malloc(size - 1 > 0 ? size - 1 : 1);
    memcpy(in, data + 1, size - 1);

    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_buf_t enc1, enc2, json;
    adi_buf_init(&enc1);
    adi_buf_init(&enc2);
    adi_buf_init(&json);
    adi_error_t err;

    void *msg = decode(d, in, size - 1, &pool, &err);
    if (msg == NULL)
        goto out;
    adi_error_clear(&err);
    if (adi_proto_check_required(d, msg, &err) != ADI_OK) {
        FUZZ_CHECK(err.code == ADI_INVALID && err.nfields > 0);
        fuzz_check_error_reply(&err);
        goto out;
    }
    adi_proto_encode(d, msg, &enc1);
    void *again = decode(d, enc1.data, enc1.len, &pool, &err);
    if (again == NULL) {
        fprintf(stderr, "%s: re-decoding its own encoding failed: %s %s: %s\n", d->name,
                err.message, err.nfields > 0 ? err.fields[0].field : "",
                err.nfields > 0 ? err.fields[0].message : "");
        FUZZ_CHECK(!"an accepted message re-decodes");
    }
    adi_error_clear(&err);
    FUZZ_CHECK(adi_proto_check_required(d, again, &err) == ADI_OK);
    adi_proto_encode(d, again, &enc2);
    FUZZ_CHECK(enc1.len == enc2.len && memcmp(enc1.data, enc2.data, enc1.len) == 0);

    adi_buf_append(&json, "x", 1);
    adi_error_clear(&err);
    if (adi_msgpack_to_json(enc1.data, enc1.len, &json, &err) != ADI_OK)
        FUZZ_CHECK(json.len == 1 && err.code == ADI_INVALID && err.message[0] != '\0');

out:
    adi_buf_dispose(&json);
    adi_buf_dispose(&enc2);
    adi_buf_dispose(&enc1);
    adi_pool_dispose(&pool);
    free(in);
    return 0;
}
