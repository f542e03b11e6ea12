/* SPDX-License-Identifier: MIT */
/*
 * The trip every refusal makes: a service turns the adi_error_t of a failed decode into an error
 * reply exactly as libs/svc worker.c does (code, message, one item per field error), the gateway
 * decodes that reply, checks it and renders its body. Whatever a decoder says about bad input,
 * that trip must succeed, or the client gets a 500 instead of its 400. Needs adi::proto and
 * adi_gateway_core; included by the targets that decode untrusted messages.
 */
#ifndef ADI_FUZZ_REPLY_H
#define ADI_FUZZ_REPLY_H

#include <string.h>

#include "adi/messages.h"
#include "adi/proto.h"
#include "fuzz.h"
#include "gw_render.h"

/* Aborts when the error reply built from `e` does not survive the gateway's decode. */
static inline void fuzz_check_error_reply(const adi_error_t *e)
{
    adi_pool_t pool;
    adi_pool_init(&pool);
    adi_reply_error re;
    memset(&re, 0, sizeof(re));
    re.code = adi_str_c(adi_err_name(e->code));
    re.message = adi_str_c(e->message);
    re.fields.n = e->nfields;
    re.fields.items = adi_pool_alloc(&pool, (e->nfields + 1) * sizeof(*re.fields.items));
    for (size_t i = 0; i < e->nfields; i++) {
        re.fields.items[i].field = adi_str_c(e->fields[i].field);
        re.fields.items[i].message = adi_str_c(e->fields[i].message);
    }
    adi_reply rep;
    memset(&rep, 0, sizeof(rep));
    rep.v = 1;
    rep.id = ADI_STR("fuzz-1");
    rep.status = adi_err_http(e->code);
    rep.error = &re;
    adi_buf_t b;
    adi_buf_init(&b);
    adi_proto_encode(&adi_reply__desc, &rep, &b);

    adi_reply back;
    memset(&back, 0, sizeof(back));
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_proto_decode(&adi_reply__desc, b.data, b.len, &pool, &back, &err) != ADI_OK ||
        adi_proto_check_required(&adi_reply__desc, &back, &err) != ADI_OK) {
        fprintf(stderr, "error reply refused by the gateway: %s / %s: %s\n", err.message,
                err.nfields > 0 ? err.fields[0].field : "",
                err.nfields > 0 ? err.fields[0].message : "");
        FUZZ_CHECK(!"an error reply decodes at the gateway");
    }
    /* A buffer of its own: the decoded reply's strings point into b. */
    adi_buf_t body;
    adi_buf_init(&body);
    FUZZ_CHECK(gw_render_reply_error((int)back.status, back.error, &body) == (int)back.status);
    FUZZ_CHECK(body.len > 0);
    adi_buf_dispose(&body);
    adi_buf_dispose(&b);
    adi_pool_dispose(&pool);
}

#endif
