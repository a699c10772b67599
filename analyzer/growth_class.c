/* This file implements growth_class.h: the trend tests of a series and the rule that turns
 * them into a class. */
#include "growth_class.h"
#include "json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "usage.h"

#define ALPHA 0.05

const char *const growth_class_names[] = { "growing", "plateau", "shrinking", "churn", "stable", "insufficient" };

/* Range of y[from..n). */
static void range(const double *y, size_t from, size_t n, double *lo, double *hi)
{
    *lo = *hi = y[from];
    for (size_t i = from + 1; i < n; i++) {
        *lo = y[i] < *lo ? y[i] : *lo;
        *hi = y[i] > *hi ? y[i] : *hi;
    }
}

static enum growth_class classify(const double *x, const double *y, size_t n, const struct trend *t)
{
    double lo, hi;
    range(y, 0, n, &lo, &hi);
    if (hi == lo)
        return GROWTH_STABLE;
    if (t->p < ALPHA && t->slope < 0)
        return GROWTH_SHRINKING;
    /* The later half: still rising, or levelled off near the top? */
    size_t half = n / 2;
    struct trend late;
    trend_fit(x + half, y + half, n - half, &late);
    double late_lo, late_hi;
    range(y, half, n, &late_lo, &late_hi);
    bool late_rising = late.p < ALPHA && late.slope > 0;
    bool late_flat = !late_rising && late_hi - late_lo <= 0.25 * (hi - lo) && late_lo >= lo + 0.75 * (hi - lo);
    if (t->p < ALPHA && t->slope > 0 && y[n - 1] > y[0] && !late_flat)
        return GROWTH_GROWING;
    if (y[n - 1] > y[0] && late_flat)
        return GROWTH_PLATEAU;
    return GROWTH_CHURN;
}

void growth_fit(const double *x, const double *y, size_t n, struct growth_fit *out)
{
    memset(out, 0, sizeof *out);
    if (n >= 2) {
        double *xi = xmalloc(n * sizeof *xi);
        for (size_t i = 0; i < n; i++)
            xi[i] = (double)i;
        trend_fit(x, y, n, &out->t);
        trend_fit(xi, y, n, &out->per_snap);
        free(xi);
    }
    out->cls = n < GROWTH_MIN_SNAPSHOTS ? GROWTH_INSUFFICIENT : classify(x, y, n, &out->t);
}

void growth_fit_json(struct json *j, const struct growth_fit *f, const double *y, size_t n)
{
    json_key(j, "slope_per_second"); json_double(j, f->t.slope);
    json_key(j, "slope_per_snapshot"); json_double(j, f->per_snap.slope);
    json_key(j, "mann_kendall_s"); json_double(j, f->t.s);
    json_key(j, "z"); json_double(j, f->t.z);
    json_key(j, "p_value"); json_double(j, f->t.p);
    json_key(j, "first"); json_int(j, n ? (int64_t)y[0] : 0);
    json_key(j, "last"); json_int(j, n ? (int64_t)y[n - 1] : 0);
    json_key(j, "series");
    json_begin_array(j);
    for (size_t i = 0; i < n; i++)
        json_int(j, (int64_t)y[i]);
    json_end_array(j);
}
