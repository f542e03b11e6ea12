/* SPDX-License-Identifier: MIT */
/*
 * A stream entry's field "m" as both ends of the bus read it. As a service worker does
 * (libs/svc worker.c): decode the adi_envelope, check its required fields, look the operation up
 * and decode the envelope's body and then its params over it into the operation's request type,
 * then check the request's required fields. As the gateway does with a reply (services/gateway
 * bus.c, handler.c): decode the adi_reply, check it, then render its body to JSON (2xx) or its
 * error to the API.md error body. Invariants beyond "no crash, no leak, no UB": every refusal
 * says why in an error reply the gateway can decode (fuzz_reply.h), and every rendered body is a
 * JSON value (jansson reads it back; integers beyond int64 and "\u0000" in object keys, which JSON
 * allows but jansson does not read, excepted).
 */
#include <string.h>

#include <jansson.h>

#include "adi/messages.h"
#include "adi/proto.h"
#include "fuzz.h"
#include "fuzz_reply.h"
#include "gw_render.h"

static void refused(const adi_error_t *err)
{
    FUZZ_CHECK(err->code == ADI_INVALID);
    FUZZ_CHECK(err->message[0] != '\0' || err->nfields > 0);
    fuzz_check_error_reply(err);
}

/* `text` must read back as JSON. */
static void check_json(const adi_buf_t *text)
{
    json_error_t je;
    json_t *v = json_loadb(text->data, text->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (v == NULL && strstr(je.text, "too big") == NULL &&
        strstr(je.text, "NUL byte in object key") == NULL) {
        fprintf(stderr, "not JSON (%s): %.*s\n", je.text, (int)text->len, text->data);
        FUZZ_CHECK(!"rendered body is JSON");
    }
    json_decref(v);
}

static void as_request(const char *in, size_t len)
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_error_t err;
    adi_error_clear(&err);
    adi_envelope *env = adi_pool_alloc(&pool, sizeof(*env));
    if (adi_proto_decode(&adi_envelope__desc, in, len, &pool, env, &err) != ADI_OK ||
        adi_proto_check_required(&adi_envelope__desc, env, &err) != ADI_OK) {
        refused(&err);
        goto out;
    }
    const adi_op_desc_t *op = adi_op_find(env->op);
    if (op == NULL)
        goto out;
    void *req = adi_pool_alloc(&pool, op->req->size > 0 ? op->req->size : 1);
    adi_err rc = ADI_OK;
    if (env->body.ptr != NULL && env->body.len > 0 && !ADI_IS_NULL(adi_envelope, env, body))
        rc = adi_proto_decode(op->req, env->body.ptr, env->body.len, &pool, req, &err);
    if (rc == ADI_OK && env->params.ptr != NULL && env->params.len > 0 &&
        !ADI_IS_NULL(adi_envelope, env, params))
        rc = adi_proto_decode(op->req, env->params.ptr, env->params.len, &pool, req, &err);
    if (rc == ADI_OK)
        rc = adi_proto_check_required(op->req, req, &err);
    if (rc != ADI_OK)
        refused(&err);
out:
    adi_pool_dispose(&pool);
}

static void as_reply(const char *in, size_t len)
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_buf_t b;
    adi_buf_init(&b);
    adi_error_t err;
    adi_error_clear(&err);
    adi_reply rep;
    memset(&rep, 0, sizeof(rep));
    if (adi_proto_decode(&adi_reply__desc, in, len, &pool, &rep, &err) != ADI_OK ||
        adi_proto_check_required(&adi_reply__desc, &rep, &err) != ADI_OK) {
        refused(&err);
        goto out;
    }
    int status = (int)rep.status;
    if (status >= 200 && status < 300) {
        if (rep.body.ptr != NULL && status != 204) {
            adi_error_clear(&err);
            if (adi_msgpack_to_json(rep.body.ptr, rep.body.len, &b, &err) == ADI_OK)
                check_json(&b);
            else
                FUZZ_CHECK(b.len == 0 && err.message[0] != '\0');
        }
    } else {
        int st = gw_render_reply_error_code(status >= 400 ? status : 500, rep.error,
                                            (len & 1) ? "token_not_valid" : NULL, &b);
        FUZZ_CHECK(st >= 400 && st <= 599);
        check_json(&b);
    }
out:
    adi_buf_dispose(&b);
    adi_pool_dispose(&pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy, so a decoded slice read past the input is caught by ASan. */
    char *in = malloc(size > 0 ? size : 1);
    memcpy(in, data, size);
    as_request(in, size);
    as_reply(in, size);
    free(in);
    return 0;
}
