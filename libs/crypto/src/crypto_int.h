/* SPDX-License-Identifier: MIT */
/*
 * Internals of libs/crypto shared between its source files. Not for use outside libs/crypto.
 */
#ifndef ADI_CRYPTO_INT_H
#define ADI_CRYPTO_INT_H

/**
 * Reports that an OpenSSL primitive which cannot fail on a sound installation (a digest, the
 * random generator) failed, and aborts: like OOM, this is fatal. `what` names the call.
 */
void adi_crypto__fatal(const char *what) __attribute__((noreturn));

#endif
