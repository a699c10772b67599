/* This file implements the unit test of analyzer/trend.c: the Theil-Sen slope and intercept
 * and the Mann-Kendall statistic, z score and p-value, on series whose answers are known:
 * exact lines (rising, falling, uneven x), constants, a sawtooth, outliers, ties, two points.
 * Long series (beyond 64 points the slope comes from counting inversions, not from every pair)
 * are checked against a plain all-pairs computation written here: noisy lines, sawtooths,
 * steps with many ties, a constant, up to 3,000 points. Prints TAP. */
// LINK: analyzer/trend.c analyzer/usage.c
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "harness.h"
#include "trend.h"

#define N 64
static double xs[N], ys[N];

static struct trend fit(size_t n)
{
    struct trend t;
    trend_fit(xs, ys, n, &t);
    return t;
}

static bool near(double a, double b, double eps)
{
    return fabs(a - b) <= eps * (1 + fabs(b));
}

/* Mann-Kendall variance without ties: n(n-1)(2n+5)/18. */
static double var_no_ties(double n)
{
    return n * (n - 1) * (2 * n + 5) / 18;
}

static void test_lines(void)
{
    for (int i = 0; i < 20; i++) {
        xs[i] = i;
        ys[i] = 3 * i + 7;
    }
    struct trend t = fit(20);
    CHECK(t.slope == 3 && t.intercept == 7, "line 3x+7: slope %g, intercept %g", t.slope, t.intercept);
    CHECK(t.s == 190, "line: S = n(n-1)/2 = 190 (got %g)", t.s);
    CHECK(near(t.z, 189 / sqrt(var_no_ties(20)), 1e-12), "line: z = (S-1)/sqrt(var) (got %g)", t.z);
    CHECK(t.p < 0.01 && t.p > 0, "line: p < 0.01 (p = %g)", t.p);

    /* Uneven x (snapshots are not evenly spaced in time). */
    for (int i = 0; i < 15; i++) {
        xs[i] = 1000 + i * i * 2.5;
        ys[i] = 0.25 * xs[i] - 40;
    }
    t = fit(15);
    CHECK(near(t.slope, 0.25, 1e-12) && near(t.intercept, -40, 1e-9),
          "uneven x: slope %g, intercept %g", t.slope, t.intercept);
    CHECK(t.p < 0.01, "uneven x: p = %g", t.p);

    for (int i = 0; i < 12; i++) {
        xs[i] = i * 10;
        ys[i] = 100 - 5 * xs[i];
    }
    t = fit(12);
    CHECK(t.slope == -5 && t.intercept == 100, "falling line: slope %g, intercept %g", t.slope,
          t.intercept);
    CHECK(t.s == -66 && t.z < 0, "falling line: S = -66, negative z (S %g, z %g)", t.s, t.z);
    CHECK(near(t.z, -65 / sqrt(var_no_ties(12)), 1e-12) && t.p < 0.01,
          "falling line: z %g, p %g", t.z, t.p);

    /* Real byte counts: large values, small slope. */
    for (int i = 0; i < 30; i++) {
        xs[i] = 1.7e9 + i * 60;          /* unix time, one snapshot a minute */
        ys[i] = 5e8 + i * 60 * 1024.0;   /* +1 KiB a second */
    }
    t = fit(30);
    CHECK(near(t.slope, 1024, 1e-9) && t.p < 1e-6, "big numbers: slope %g bytes/s, p %g", t.slope, t.p);
}

static void test_no_trend(void)
{
    for (int i = 0; i < 10; i++) {
        xs[i] = i;
        ys[i] = 4096;
    }
    struct trend t = fit(10);
    CHECK(t.slope == 0 && t.intercept == 4096, "constant: slope 0, intercept 4096");
    CHECK(t.s == 0 && t.z == 0 && t.p == 1, "constant: S 0, z 0, p = 1 (p = %g)", t.p);

    /* Sawtooth 0,10,20,0,10,20,... over 12 points: rising inside each tooth, but as many
     * falling as rising pairs across teeth. S = 12, three groups of 4 ties. */
    for (int i = 0; i < 12; i++) {
        xs[i] = i;
        ys[i] = (i % 3) * 10;
    }
    t = fit(12);
    double var = (12.0 * 11 * 29 - 3 * (4.0 * 3 * 13)) / 18;
    CHECK(t.s == 12 && near(t.z, 11 / sqrt(var), 1e-12), "sawtooth: S = 12, tie-corrected z %g",
          t.z);
    CHECK(t.p > 0.05, "sawtooth: no significant trend (p = %g)", t.p);
    CHECK(fabs(t.slope) < 5, "sawtooth: slope %g well below the teeth's 10/step", t.slope);

    /* Alternating: 0, 1, 0, 1, ... */
    for (int i = 0; i < 20; i++) {
        xs[i] = i;
        ys[i] = i % 2;
    }
    t = fit(20);
    CHECK(t.p > 0.05, "alternating 0/1: no trend (S %g, p %g)", t.s, t.p);

    /* A symmetric hump goes up then down: no monotonic trend. */
    for (int i = 0; i < 21; i++) {
        xs[i] = i;
        ys[i] = 100 - (i - 10) * (i - 10);
    }
    t = fit(21);
    CHECK(t.s == 0 && t.p == 1 && t.slope == 0, "symmetric hump: S %g, p %g, slope %g", t.s, t.p,
          t.slope);
}

static void test_robust(void)
{
    for (int i = 0; i < 20; i++) {
        xs[i] = i;
        ys[i] = 2 * i + 1;
    }
    ys[10] = 1e12;
    struct trend t = fit(20);
    CHECK(t.slope == 2 && t.intercept == 1, "one huge outlier: slope %g, intercept %g", t.slope,
          t.intercept);
    CHECK(t.p < 0.01, "one huge outlier: still a trend (p %g)", t.p);

    ys[10] = 21;
    ys[3] = -1e12;
    ys[17] = 1e15;
    t = fit(20);
    CHECK(t.slope == 2 && t.intercept == 1, "two outliers, both ways: slope %g", t.slope);

    /* Noise around a line: slope close to the truth. */
    srand(1);
    for (int i = 0; i < N; i++) {
        xs[i] = i;
        ys[i] = 1000 + 50 * i + (rand() % 201 - 100);
    }
    t = fit(N);
    CHECK(fabs(t.slope - 50) < 5 && t.p < 1e-6, "noisy line: slope %g near 50, p %g", t.slope, t.p);
}

static void test_small_and_ties(void)
{
    xs[0] = 0, xs[1] = 1;
    ys[0] = 0, ys[1] = 5;
    struct trend t = fit(2);
    CHECK(t.slope == 5 && t.intercept == 0 && t.s == 1, "two points: slope 5, S 1");
    CHECK(t.z == 0 && t.p == 1, "two points: continuity correction gives z 0, p 1 (z %g)", t.z);

    ys[1] = 0;
    t = fit(2);
    CHECK(t.slope == 0 && t.s == 0 && t.p == 1, "two equal points: no trend");

    /* Steps with ties: 0,0,1,1,2,2,3,3. S counts only unequal pairs; var removes 4 pairs. */
    for (int i = 0; i < 8; i++) {
        xs[i] = i;
        ys[i] = i / 2;
    }
    t = fit(8);
    double var = (8.0 * 7 * 21 - 4 * (2.0 * 1 * 9)) / 18;
    CHECK(t.s == 24 && near(t.z, 23 / sqrt(var), 1e-12), "steps with ties: S %g, z %g", t.s, t.z);
    CHECK(near(t.p, erfc(23 / sqrt(var) / sqrt(2)), 1e-12), "p is the two-sided normal tail (%g)",
          t.p);
    CHECK(t.slope == 0.5, "steps of 1 every 2: slope 0.5 (got %g)", t.slope);

    /* Mostly flat with one late rise: few pairs rise, none fall. */
    for (int i = 0; i < 10; i++) {
        xs[i] = i;
        ys[i] = i < 9 ? 7 : 8;
    }
    t = fit(10);
    CHECK(t.s == 9 && t.slope == 0, "flat then one step: S 9, slope 0 (S %g)", t.s);
}

/* All pairs, the definition: Theil-Sen median slope and Mann-Kendall S. */
static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void reference(const double *x, const double *y, size_t n, double *slope, double *s)
{
    size_t k = 0;
    double *v = malloc(n * (n - 1) / 2 * sizeof *v);
    *s = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            v[k++] = (y[j] - y[i]) / (x[j] - x[i]);
            *s += (y[j] > y[i]) - (y[j] < y[i]);
        }
    qsort(v, k, sizeof *v, cmp_d);
    *slope = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
    free(v);
}

static uint64_t rng = 88172645463325252ull;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void test_long_series(void)
{
    static const size_t sizes[] = { 65, 100, 257, 1000, 3000 };  /* 3,000: one kind, the reference is slow */
    static double x[3000], y[3000];
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (int kind = 0; kind < (n > 1000 ? 1 : 4); kind++) {
            double t0 = 1.7e9;
            for (size_t i = 0; i < n; i++) {
                x[i] = t0 + 30.0 * i + uniform();  /* snapshot times: every 30 s, jittered */
                switch (kind) {
                case 0: y[i] = 1e6 + 4096.0 * i + 5e5 * (uniform() - 0.5); break;    /* noisy growth */
                case 1: y[i] = 1e6 + (double)((i * 37) % 50) * 1e4; break;            /* sawtooth */
                case 2: y[i] = (double)(i / 25) * 1000; break;                         /* steps: ties */
                default: y[i] = 123456; break;                                          /* constant */
                }
            }
            struct trend t;
            trend_fit(x, y, n, &t);
            double slope, s;
            reference(x, y, n, &slope, &s);
            CHECK(t.s == s && near(t.slope, slope, 1e-9),
                  "%zu points, series %d: S %g (all pairs %g), slope %.12g (all pairs %.12g)", n, kind, t.s, s,
                  t.slope, slope);
        }
    }
}

/* Flat, then a few steps up at the end, beyond 64 points: most pairs are flat, so the median
 * slope is exactly 0 (not a tiny slope of either sign that rounding makes of it), and no
 * falling pair exists, so S is positive. */
static void test_long_flat(void)
{
    static double x[100], y[100];
    for (size_t i = 0; i < 100; i++) {
        x[i] = 1.7e9 + 30.0 * i;
        y[i] = i < 80 ? 52428800 : 52428800 + 4096.0 * (double)(i - 79);
    }
    struct trend t;
    trend_fit(x, y, 100, &t);
    CHECK(t.slope == 0 && t.s > 0, "100 points, flat then rising: slope exactly 0 (%g), S %g > 0", t.slope, t.s);
    for (size_t i = 0; i < 100; i++)
        y[i] = 0;
    trend_fit(x, y, 100, &t);
    CHECK(t.slope == 0 && t.s == 0, "100 zeros: slope 0 (%g), S 0", t.slope);
}

int main(void)
{
    test_long_series();
    test_long_flat();
    test_lines();
    test_no_trend();
    test_robust();
    test_small_and_ties();
    return done();
}
