/* SPDX-License-Identifier: MIT */
/*
 * Internals of libs/cron shared between its source files: proleptic Gregorian calendar
 * arithmetic. Not for use outside libs/cron.
 */
#ifndef ADI_CRON_INT_H
#define ADI_CRON_INT_H

#include <stdint.h>

/** Days in `month` (1-12) of `year`. */
int adi_cron__days_in_month(int64_t year, int month);

/** Days from 1970-01-01 to year-month-day (negative before). */
int64_t adi_cron__days_from_civil(int64_t year, int month, int day);

/** The date `days` days after 1970-01-01. */
void adi_cron__civil_from_days(int64_t days, int64_t *year, int *month, int *day);

#endif
