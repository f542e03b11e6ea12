/* SPDX-License-Identifier: MIT */
/*
 * A tiny command-line front end to libs/crypto's password hashes, used only by
 * password_interop.py to check them against Python's hashlib (Django's own derivation):
 *
 *   crypto_cli hash ITERATIONS < password      prints a pbkdf2_sha256$... hash
 *   crypto_cli verify ENCODED ITERATIONS < password
 *       prints "match upgrade=0|1" (exit 0), "nomatch" (exit 1) or "invalid" (exit 3)
 *
 * The password is stdin without its trailing newline. Exit status 2 means a usage error.
 */
#include <stdio.h>
#include <stdlib.h>

#include "adi/crypto.h"

/* Reads stdin (at most ADI_PASSWORD_MAX_LEN + 1 bytes) without a trailing newline. */
static adi_str_t read_password(char *buf, size_t cap)
{
    size_t n = fread(buf, 1, cap, stdin);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    return (adi_str_t){buf, n};
}

int main(int argc, char **argv)
{
    static char buf[ADI_PASSWORD_MAX_LEN + 2];
    if (argc == 3 && strcmp(argv[1], "hash") == 0) {
        char out[ADI_PASSWORD_ENCODED_MAX];
        adi_error_t err;
        adi_error_clear(&err);
        if (adi_password_hash(read_password(buf, sizeof(buf)), (unsigned)strtoul(argv[2], NULL, 10),
                              out, sizeof(out), &err) != ADI_OK) {
            fprintf(stderr, "crypto_cli: %s\n", err.message);
            return 2;
        }
        printf("%s\n", out);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "verify") == 0) {
        bool match = false, upgrade = false;
        if (adi_password_verify(read_password(buf, sizeof(buf)), adi_str_c(argv[2]),
                                (unsigned)strtoul(argv[3], NULL, 10), &match, &upgrade,
                                NULL) != ADI_OK) {
            printf("invalid\n");
            return 3;
        }
        if (!match) {
            printf("nomatch\n");
            return 1;
        }
        printf("match upgrade=%d\n", upgrade ? 1 : 0);
        return 0;
    }
    fprintf(stderr, "usage: crypto_cli hash ITERATIONS < password\n"
                    "       crypto_cli verify ENCODED ITERATIONS < password\n");
    return 2;
}
