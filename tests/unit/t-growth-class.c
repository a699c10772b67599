/* This file implements the unit test of analyzer/growth_class.c: the class of series whose
 * shape is known (the shapes t4000 and t2100 meet in real programs): a steady rise, a cache
 * that fills and stays full, a sawtooth, a constant, a fall, too few points, uneven times.
 * Prints TAP. */
// LINK: analyzer/growth_class.c analyzer/trend.c analyzer/json.c analyzer/usage.c
#define _GNU_SOURCE
#include <string.h>
#include "growth_class.h"
#include "harness.h"

static double xs[16];

/* The class of y[0..n) at x = 0, 1, 2... (or xs when uneven). */
static const char *cls(const double *y, size_t n, const double *x)
{
    struct growth_fit f;
    growth_fit(x ? x : xs, y, n, &f);
    return growth_class_names[f.cls];
}

int main(void)
{
    for (int i = 0; i < 16; i++)
        xs[i] = i;
    double rise[] = { 100, 200, 300, 400, 500, 600, 700, 800 };
    double fill[] = { 100, 200, 300, 300, 300, 300, 300, 300 };
    double saw[] = { 500, 0, 500, 0, 500, 0, 500, 0 };
    double flat[] = { 7, 7, 7, 7, 7, 7, 7, 7 };
    double fall[] = { 800, 700, 600, 500, 400, 300, 200, 100 };
    double noisy[] = { 100, 90, 210, 180, 320, 290, 400, 380 };
    double late[] = { 0, 0, 0, 0, 100, 200, 300, 400 };
    double uneven_x[] = { 0, 0.5, 3, 3.1, 9, 20, 20.5, 40 };

    CHECK(!strcmp(cls(rise, 8, NULL), "growing"), "a steady rise is growing");
    CHECK(!strcmp(cls(fill, 8, NULL), "plateau"), "a cache that fills for 3 snapshots, then stays full: plateau");
    CHECK(!strcmp(cls(saw, 8, NULL), "churn"), "a sawtooth is churn, not growth");
    CHECK(!strcmp(cls(flat, 8, NULL), "stable"), "a constant is stable");
    CHECK(!strcmp(cls(fall, 8, NULL), "shrinking"), "a steady fall is shrinking");
    CHECK(!strcmp(cls(noisy, 8, NULL), "growing"), "a noisy rise is growing");
    CHECK(!strcmp(cls(late, 8, NULL), "growing"), "growth that starts late is growing");
    CHECK(!strcmp(cls(rise, 8, uneven_x), "growing"), "uneven times: still growing");
    CHECK(!strcmp(cls(rise, 3, NULL), "insufficient"), "3 snapshots: insufficient");
    CHECK(strcmp(cls(rise, GROWTH_MIN_SNAPSHOTS, NULL), "insufficient"), "the minimum number of snapshots is classed");
    /* 4 rising points are not significant at 5% (p = 0.09); 5 are (p = 0.03). */
    CHECK(!strcmp(cls(rise, 5, NULL), "growing"), "5 rising snapshots are growing");

    struct growth_fit f;
    growth_fit(xs, rise, 8, &f);
    CHECK(f.per_snap.slope == 100 && f.t.slope == 100, "slopes per snapshot and per second (x = seconds): 100");
    growth_fit(uneven_x, rise, 8, &f);
    CHECK(f.per_snap.slope == 100, "the slope per snapshot ignores the times");
    growth_fit(xs, rise, 1, &f);
    CHECK(f.t.slope == 0 && f.per_snap.slope == 0 && f.cls == GROWTH_INSUFFICIENT, "one point: no trend");
    return done();
}
