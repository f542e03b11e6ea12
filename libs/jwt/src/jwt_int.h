/* SPDX-License-Identifier: MIT */
/*
 * Internals of libs/jwt shared between its source files: the key set and the claim checks that
 * signing and verification must agree on. Not for use outside libs/jwt.
 */
#ifndef ADI_JWT_INT_H
#define ADI_JWT_INT_H

#include <jwt.h>

#include "adi/crypto.h"
#include "adi/jwt.h"

/** The key set behind adi_jwt_t; immutable after adi_jwt_new. */
struct adi_jwt {
    adi_jwt_alg alg;         /* pinned algorithm */
    bool can_sign;           /* sign_key holds a signing key */
    adi_secret_t sign_key;   /* HS256: the secret; RS/ES: the private key PEM (len 0 if none) */
    adi_secret_t verify_key; /* HS256: the secret; RS/ES: the public key PEM */
    size_t sig_len;          /* exact length of a valid signature in bytes (32, 64, modulus) */
    int64_t leeway_s;        /* clock-skew tolerance in seconds */
};

/** libjwt's value for `alg`. */
jwt_alg_t adi_jwt__libjwt_alg(adi_jwt_alg alg);

/** True when s[0..n) is a jti as simplejwt makes them: 32 lower-case hex digits. */
bool adi_jwt__jti_valid(const char *s, size_t n);

/** True when s[0..n) is a role name: 1..ADI_JWT_ROLE_MAX characters of [A-Za-z0-9_]. */
bool adi_jwt__role_valid(const char *s, size_t n);

#endif
