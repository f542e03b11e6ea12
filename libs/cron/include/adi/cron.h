/* SPDX-License-Identifier: MIT */
/*
 * Cron expressions: the classic 5-field form (minute hour day-of-month month day-of-week) of
 * Vixie cron, parsed into bit sets, and the next fire time after an instant in the process's time
 * zone (TIME_ZONE, set at startup with adi_time_zone_set).
 *
 * Syntax of each field: a comma-separated list of items, each `*`, `*` + `/n`, `a`, `a-b`,
 * `a-b/n` or `a/n` (from a to the field's maximum every n). Months accept JAN..DEC and days of the
 * week SUN..SAT (any case); 0 and 7 both mean Sunday. The aliases @yearly (@annually), @monthly,
 * @weekly, @daily (@midnight) and @hourly stand for their usual expansions.
 *
 * The Vixie rule: when both day-of-month and day-of-week are restricted (their field does not
 * start with `*`), a day matches when EITHER matches; otherwise both must. As in Vixie cron, a
 * field written `*` + `/n` counts as unrestricted here.
 *
 * Daylight saving time: a matching local time that does not exist (the spring-forward gap) fires
 * at the first instant after the gap, once, however many matching times the gap swallowed; a local
 * time that occurs twice (fall back) fires once, at its first occurrence.
 *
 * adi_cron_parse is pure (no globals, no allocation, any bytes in), so it can be fuzzed directly.
 */
#ifndef ADI_CRON_H
#define ADI_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "adi/core.h"

/** Longest expression adi_cron_parse accepts, in bytes. */
#define ADI_CRON_MAX_LEN 256

/** A parsed expression: one bit per allowed value of each field. */
typedef struct adi_cron {
    uint64_t minutes;   /* bit m: minute m (0-59) matches */
    uint32_t hours;     /* bit h: hour h (0-23) matches */
    uint32_t days;      /* bit d: day of month d (1-31) matches */
    uint16_t months;    /* bit m: month m (1-12) matches */
    uint8_t weekdays;   /* bit w: day of week w (0-6, 0 = Sunday) matches */
    bool days_star;     /* the day-of-month field started with '*' (Vixie rule) */
    bool weekdays_star; /* the day-of-week field started with '*' (Vixie rule) */
} adi_cron_t;

/**
 * Parses `expr` (any bytes; surrounding blanks are ignored, fields are separated by blanks) into
 * `*out`, which is zeroed first and valid only on ADI_OK.
 * Errors: ADI_INVALID with a message naming the field and the problem ("hour: 25 is out of range
 * 0-23.") and the same text under that field (minute, hour, day_of_month, month, day_of_week, or
 * "cron" for the whole expression): an empty or over-long expression, a wrong number of fields,
 * an unknown alias, a bad number or name, a value out of range, a backwards range, a step of 0 or
 * larger than the field, an empty list item, or a day of month that never occurs in the selected
 * months (when day-of-week does not widen it).
 */
adi_err adi_cron_parse(adi_str_t expr, adi_cron_t *out, adi_error_t *err);

/**
 * The first instant strictly after `after_s` (seconds since the epoch) at which `c` fires, in the
 * process's time zone, with the DST rules above; always a whole minute in local time, or the end
 * of a DST gap. Thread-safe (localtime_r).
 * Errors: ADI_INVALID when `after_s` is outside years 1970..9999, ADI_NOT_FOUND when `c` never
 * fires (only possible for an adi_cron_t that adi_cron_parse did not produce).
 */
adi_err adi_cron_next(const adi_cron_t *c, int64_t after_s, int64_t *out_s, adi_error_t *err);

#endif
