/* SPDX-License-Identifier: MIT */
/*
 * JSON -> msgpack, the gateway's first step on every request body (adi_json_to_msgpack), and the
 * way back (adi_msgpack_to_json) that renders every reply. The input is any bytes taken as a
 * request body. Invariants beyond "no crash, no leak, no UB":
 *   - a rejected body leaves the output buffer as it was, with a message;
 *   - an accepted body converts back to JSON, and that JSON converts to the very same msgpack
 *     (strings, integers, floats via Python's repr, nesting and key order survive the trip);
 *   - the body classification the gateway makes on the converted bytes (gw_body_type) and the
 *     login throttle's lookup of "username" (gw_body_string_member) accept whatever came out.
 */
#include <string.h>

#include "adi/proto.h"
#include "fuzz.h"
#include "gw_login.h"
#include "gw_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    adi_buf_t mp, text, back;
    adi_buf_init(&mp);
    adi_buf_init(&text);
    adi_buf_init(&back);
    adi_error_t err;
    adi_error_clear(&err);

    /* A prefix already in the buffer must survive a failed conversion untouched. */
    adi_buf_append(&mp, "\xc0", 1);
    if (adi_json_to_msgpack(json, size, &mp, &err) != ADI_OK) {
        FUZZ_CHECK(err.code == ADI_INVALID && err.message[0] != '\0');
        FUZZ_CHECK(mp.len == 1);
        goto out;
    }
    FUZZ_CHECK(mp.len > 1);
    const char *body = mp.data + 1;
    size_t body_len = mp.len - 1;

    const char *type = gw_body_type(body, body_len);
    adi_str_t user;
    bool found = gw_body_string_member(body, body_len, "username", &user);
    FUZZ_CHECK(!found ||
               (type == NULL && user.ptr >= body && user.ptr + user.len <= body + body_len));

    /* Back to JSON, and that JSON to the same msgpack. */
    adi_error_clear(&err);
    FUZZ_CHECK(adi_msgpack_to_json(body, body_len, &text, &err) == ADI_OK);
    FUZZ_CHECK(text.len > 0 && strlen(text.data) == text.len);
    adi_error_clear(&err);
    if (adi_json_to_msgpack(text.data, text.len, &back, &err) != ADI_OK) {
        fprintf(stderr, "re-conversion failed: %s\n%.*s\n", err.message, (int)text.len, text.data);
        FUZZ_CHECK(!"msgpack_to_json output is valid JSON");
    }
    FUZZ_CHECK(back.len == body_len && memcmp(back.data, body, body_len) == 0);

out:
    adi_buf_dispose(&back);
    adi_buf_dispose(&text);
    adi_buf_dispose(&mp);
    return 0;
}
