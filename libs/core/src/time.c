/* SPDX-License-Identifier: MIT */
/*
 * Clocks and the one time formatter: ISO 8601 with microseconds and the configured zone's UTC
 * offset, as the Django version rendered times (2026-11-23T19:51:09.354026-05:00).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "adi/core.h"

int64_t adi_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t adi_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t adi_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void adi_time_zone_set(const char *tz)
{
    if (tz != NULL && tz[0] != '\0')
        setenv("TZ", tz, 1);
    tzset();
}

size_t adi_time_iso(int64_t us, char out[40])
{
    time_t secs = (time_t)(us / 1000000);
    int64_t frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    struct tm tm;
    localtime_r(&secs, &tm);
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    char fraction[8] = ""; /* Python's isoformat(): no ".000000" for a whole second */
    if (frac != 0)
        snprintf(fraction, sizeof(fraction), ".%06ld", (long)frac);
    int n = snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d%s%c%02ld:%02ld", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fraction, sign,
                     off / 3600, (off % 3600) / 60);
    return n < 0 ? 0 : (size_t)n;
}
