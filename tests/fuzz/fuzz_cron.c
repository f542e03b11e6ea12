/* SPDX-License-Identifier: MIT */
/*
 * The task runner's schedule expressions: adi_cron_parse on any bytes, then adi_cron_next from a
 * few instants in a zone with daylight saving time (America/New_York, so the gap and overlap
 * rules run). Invariants beyond "no crash, no leak, no UB": a refusal names a field; a parsed
 * expression has every field non-empty and within its range, always fires (adi_cron_next finds a
 * time strictly after the instant asked about, on a whole minute of local time or at the end of
 * a DST gap), and its next time after that is later still.
 */
#include <string.h>

#include "adi/cron.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    adi_time_zone_set("America/New_York");
    return 0;
}

static void next_after(const adi_cron_t *c, int64_t after)
{
    int64_t t = 0, t2 = 0;
    adi_error_t err;
    adi_error_clear(&err);
    FUZZ_CHECK(adi_cron_next(c, after, &t, &err) == ADI_OK);
    FUZZ_CHECK(t > after);
    /* Local minutes here are whole UTC minutes too (the zone's offsets are whole hours). */
    FUZZ_CHECK(t % 60 == 0);
    adi_error_clear(&err);
    FUZZ_CHECK(adi_cron_next(c, t, &t2, &err) == ADI_OK);
    FUZZ_CHECK(t2 > t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    adi_cron_t c;
    adi_error_t err;
    adi_error_clear(&err);
    if (adi_cron_parse((adi_str_t){(const char *)data, size}, &c, &err) != ADI_OK) {
        FUZZ_CHECK(err.code == ADI_INVALID && err.message[0] != '\0' && err.nfields > 0);
        return 0;
    }
    FUZZ_CHECK(size <= ADI_CRON_MAX_LEN);
    FUZZ_CHECK(c.minutes != 0 && c.minutes >> 60 == 0);
    FUZZ_CHECK(c.hours != 0 && c.hours >> 24 == 0);
    FUZZ_CHECK(c.days != 0 && (c.days & 1u) == 0);
    FUZZ_CHECK(c.months != 0 && (c.months & 1u) == 0 && c.months >> 13 == 0);
    FUZZ_CHECK(c.weekdays != 0 && c.weekdays >> 7 == 0);
    next_after(&c, 0);
    next_after(&c, 1700000000); /* 2023-11-14 */
    next_after(&c, 1710054000); /* 2024-03-10 02:00 EST: the spring-forward gap */
    next_after(&c, 1730611800); /* 2024-11-03 01:30 EDT: the repeated hour */
    return 0;
}
