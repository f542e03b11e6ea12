/* SPDX-License-Identifier: MIT */
/*
 * The AWS credential sources of libs/kms (kms_int.h), each of which reads text from outside the
 * process: the first input byte picks the parser, the rest is its input:
 *   0: an STS AssumeRoleWithWebIdentity answer (XML, libxml2);
 *   1: an IMDS security-credentials document (JSON, jansson);
 *   2: a shared credentials file (INI, inih), for profile "default" or (bit 2) "prod";
 *   3: an expiration time (ISO 8601).
 * Bit 3 passes a NULL adi_error_t, as the provider does for some calls. Invariants beyond "no
 * crash, no leak, no UB": accepted credentials have a 1..128 character alphanumeric access key
 * id and a 1..512 byte secret, an STS error code fits its buffer, and a refusal says why.
 */
#include <string.h>

#include "fuzz.h"
#include "kms_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    adi_kms__global_init();
    return 0;
}

static void check_creds(adi_kms__creds_t *c)
{
    size_t n = strlen(c->access_key_id);
    FUZZ_CHECK(n >= 1 && n <= ADI_KMS__AKID_MAX);
    for (size_t i = 0; i < n; i++) {
        char ch = c->access_key_id[i];
        FUZZ_CHECK((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                   (ch >= '0' && ch <= '9'));
    }
    FUZZ_CHECK(c->secret.len >= 1 && c->secret.len <= ADI_KMS__SECRET_MAX);
    FUZZ_CHECK(c->token.len <= ADI_KMS__TOKEN_MAX);
    adi_kms__creds_t copy;
    memset(&copy, 0, sizeof(copy));
    adi_kms__creds_copy(&copy, c);
    adi_kms__creds_dispose(&copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    size_t n = size - 1;
    /* A NUL-terminated copy (the credentials file parser reads a C string). */
    char *text = malloc(n + 1);
    memcpy(text, data + 1, n);
    text[n] = '\0';
    adi_error_t e;
    adi_error_clear(&e);
    adi_error_t *err = (mode & 8) ? NULL : &e;
    adi_kms__creds_t c;
    memset(&c, 0, sizeof(c));
    adi_err rc = ADI_OK;
    switch (mode & 3) {
    case 0: {
        char code[64];
        rc = adi_kms__parse_sts(text, n, &c, code, sizeof(code), err);
        FUZZ_CHECK(strnlen(code, sizeof(code)) < sizeof(code));
        FUZZ_CHECK(rc == ADI_OK || rc == ADI_INVALID || rc == ADI_UNAVAILABLE);
        break;
    }
    case 1:
        rc = adi_kms__parse_imds(text, n, &c, err);
        FUZZ_CHECK(rc == ADI_OK || rc == ADI_INVALID);
        break;
    case 2:
        rc = adi_kms__parse_shared_credentials(text, (mode & 4) ? "prod" : "default", &c, err);
        FUZZ_CHECK(rc == ADI_OK || rc == ADI_INVALID || rc == ADI_NOT_FOUND);
        break;
    case 3: {
        int64_t ms = -1;
        rc = adi_kms__parse_time((adi_str_t){text, n}, &ms, err);
        FUZZ_CHECK(rc == ADI_OK || rc == ADI_INVALID);
        goto out;
    }
    }
    if (rc == ADI_OK)
        check_creds(&c);
    else if (err != NULL)
        FUZZ_CHECK(e.code == rc && e.message[0] != '\0');
    adi_kms__creds_dispose(&c);
out:
    free(text);
    return 0;
}
