/* SPDX-License-Identifier: MIT */
/*
 * Next fire times. The search walks local wall-clock minutes (calendar arithmetic, no time zone)
 * from the minute after `after`, day by day, and maps each matching local time to an instant with
 * the UTC offsets localtime_r reports around it: one instant is the normal case, two mean the
 * local time repeats (fall back: the first one after `after` wins, so it fires once), none means
 * it falls into a spring-forward gap, which fires at the end of the gap. The walk covers a whole
 * 400-year Gregorian cycle, so any day/weekday combination that can occur is found.
 */
#include <time.h>

#include "adi/cron.h"
#include "cron_int.h"

/* Largest instant accepted: 9999-12-31T23:59:59Z. */
#define MAX_INSTANT 253402300799LL
/* One Gregorian cycle (every date on every weekday) plus a year. */
#define HORIZON_DAYS (146097 + 366)

int adi_cron__days_in_month(int64_t year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return 29;
    return days[month - 1];
}

/* Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms). */
int64_t adi_cron__days_from_civil(int64_t year, int month, int day)
{
    int64_t y = year - (month <= 2 ? 1 : 0);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void adi_cron__civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2 ? 1 : 0);
}

/* UTC offset (seconds east) of the process's zone at instant t. */
static long offset_at(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (localtime_r(&tt, &tm) == NULL)
        return 0;
    return tm.tm_gmtoff;
}

/* Day of the week (0 = Sunday) of `days` after 1970-01-01, a Thursday. */
static int weekday(int64_t days)
{
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* The Vixie rule: both must match when either field is '*', else either may. */
static bool day_matches(const adi_cron_t *c, int day, int wday)
{
    bool dom = (c->days >> day) & 1u;
    bool dow = (c->weekdays >> wday) & 1u;
    if (c->days_star || c->weekdays_star)
        return dom && dow;
    return dom || dow;
}

/*
 * Maps local wall time `local` (seconds, as if it were UTC) to the first instant after `after`
 * that shows it, or to the end of the DST gap that swallowed it. False when neither is after
 * `after`.
 */
static bool resolve(int64_t local, int64_t after, int64_t *out)
{
    /* The offsets in force a day before and a day after cover every instant showing `local`. */
    long oa = offset_at(local - 86400);
    long ob = offset_at(local + 86400);
    int64_t cand[2];
    int n = 0;
    if (offset_at(local - oa) == oa)
        cand[n++] = local - oa;
    if (ob != oa && offset_at(local - ob) == ob)
        cand[n++] = local - ob;
    if (n == 2 && cand[1] < cand[0]) {
        int64_t x = cand[0];
        cand[0] = cand[1];
        cand[1] = x;
    }
    for (int i = 0; i < n; i++) {
        if (cand[i] > after) {
            *out = cand[i];
            return true;
        }
    }
    if (n > 0 || oa == ob)
        return false;
    /* A gap: find the transition between the two candidate instants by bisection. */
    int64_t lo = local - (oa > ob ? oa : ob);
    int64_t hi = local - (oa > ob ? ob : oa);
    long olo = offset_at(lo);
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (offset_at(mid) == olo)
            lo = mid;
        else
            hi = mid;
    }
    int64_t t = hi;
    if (t % 60 != 0)
        t += 60 - t % 60;
    if (t <= after)
        return false;
    *out = t;
    return true;
}

adi_err adi_cron_next(const adi_cron_t *c, int64_t after_s, int64_t *out_s, adi_error_t *err)
{
    *out_s = 0;
    if (after_s < 0 || after_s > MAX_INSTANT)
        return adi_error_set(err, ADI_INVALID, "instant %lld is outside years 1970-9999.",
                             (long long)after_s);
    time_t tt = (time_t)after_s;
    struct tm tm;
    if (localtime_r(&tt, &tm) == NULL)
        return adi_error_set(err, ADI_INVALID, "instant %lld has no local time.",
                             (long long)after_s);
    int64_t day = adi_cron__days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    int from = tm.tm_hour * 60 + tm.tm_min + 1; /* minute of the day to start at */
    if (from >= 24 * 60) {
        day++;
        from = 0;
    }
    for (int64_t i = 0; i <= HORIZON_DAYS; i++, day++, from = 0) {
        int64_t y;
        int mon;
        int d;
        adi_cron__civil_from_days(day, &y, &mon, &d);
        if (!((c->months >> mon) & 1u) || !day_matches(c, d, weekday(day)))
            continue;
        for (int h = from / 60; h < 24; h++) {
            if (!((c->hours >> h) & 1u))
                continue;
            for (int m = (h == from / 60 ? from % 60 : 0); m < 60; m++) {
                if (!((c->minutes >> m) & 1u))
                    continue;
                int64_t t;
                if (resolve(day * 86400 + h * 3600 + m * 60, after_s, &t)) {
                    *out_s = t;
                    return ADI_OK;
                }
            }
        }
    }
    return adi_error_set(err, ADI_NOT_FOUND, "the expression never fires.");
}
