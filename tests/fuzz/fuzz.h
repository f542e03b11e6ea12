/* SPDX-License-Identifier: MIT */
/*
 * What every libFuzzer target of tests/fuzz shares: the entry points libFuzzer calls (declared
 * here so -Wmissing-prototypes stays on) and FUZZ_CHECK, the invariant check that turns a broken
 * promise of the code under test into a crash libFuzzer reports with its reproducer.
 */
#ifndef ADI_FUZZ_H
#define ADI_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/** libFuzzer's per-input entry point: runs the code under test on data[0..size). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/** libFuzzer's optional one-time set-up, before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts (a crash for libFuzzer, with the reproducer saved) when `cond` does not hold. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
