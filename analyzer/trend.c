/* This file implements the Theil-Sen estimator and the Mann-Kendall trend test (see trend.h)
 * in O(n log n), so that a day of snapshots (2,880 at one every 30 s) is as quick as a dozen.
 *
 * Mann-Kendall's S = sum over pairs i < j of sign(y_j - y_i) = pairs - ties - 2 * inversions,
 * where inversions (i < j, y_i > y_j) are counted by a merge sort.
 * Theil-Sen's slope is the median of the pairwise slopes. The number of pairs whose slope is at
 * most s is the number of pairs i < j (x increasing) with y_j - s x_j <= y_i - s x_i: again
 * inversions, counted in O(n log n); it grows with s, so the k-th smallest slope is found by
 * bisection between the smallest and the largest slope, which are those of neighbouring points
 * once x is sorted. A median of exactly 0 is decided by exact comparisons first. Series of up
 * to EXACT_MAX points (and any with equal x values) take the exact quadratic route; beyond,
 * the bisection stops within a few units in the last place of the slope. */
#include "trend.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "usage.h"

#define EXACT_MAX 64

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Sort v[0..n) ascending with tmp as scratch; returns the pairs i < j with v[i] > v[j] (strict)
 * or, if `or_equal`, v[i] >= v[j]. */
static uint64_t inversions(double *v, double *tmp, size_t n, bool or_equal)
{
    if (n < 2)
        return 0;
    size_t half = n / 2;
    uint64_t count = inversions(v, tmp, half, or_equal) + inversions(v + half, tmp, n - half, or_equal);
    size_t i = 0, j = half, k = 0;
    while (i < half && j < n) {
        bool right_first = or_equal ? v[j] <= v[i] : v[j] < v[i];
        if (right_first) {
            count += half - i;  /* every left value from i on is above (or equal to) v[j] */
            tmp[k++] = v[j++];
        } else {
            tmp[k++] = v[i++];
        }
    }
    while (i < half)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
    return count;
}

/* Pairs i < j whose slope is at most s (x strictly increasing). */
static uint64_t slopes_at_most(const double *x, const double *y, size_t n, double s, double *z, double *tmp)
{
    for (size_t k = 0; k < n; k++)
        z[k] = y[k] - s * x[k];
    return inversions(z, tmp, n, true);
}

/* The k-th smallest pairwise slope (1-based), x strictly increasing (counted from x[0], for
 * precision). A slope of exactly 0, common in flat stretches of a series, is decided with
 * exact comparisons of y (rounding of y - s x for a tiny s must not turn a flat series into a
 * falling one); any other is found by bisection to a few units in the last place. */
static double kth_slope(const double *x, const double *y, size_t n, uint64_t k, double *z, double *tmp)
{
    memcpy(z, y, n * sizeof *z);
    uint64_t at_most_0 = inversions(z, tmp, n, true);   /* pairs with y_j <= y_i: slope <= 0 */
    memcpy(z, y, n * sizeof *z);
    uint64_t below_0 = inversions(z, tmp, n, false);    /* y_j < y_i: slope < 0 */
    if (below_0 < k && k <= at_most_0)
        return 0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i + 1 < n; i++) {
        double s = (y[i + 1] - y[i]) / (x[i + 1] - x[i]);
        lo = s < lo ? s : lo;
        hi = s > hi ? s : hi;
    }
    /* The answer's sign is known now: search only that side of 0. */
    if (k > at_most_0)
        lo = 0;
    else
        hi = 0;
    if (lo == hi)
        return lo;
    /* invariant: count(lo) < k <= count(hi) */
    if (k <= at_most_0)
        lo = nextafter(lo, -INFINITY);
    for (int it = 0; it < 200; it++) {
        double mid = lo + (hi - lo) / 2;
        if (mid <= lo || mid >= hi || hi - lo <= 4 * DBL_EPSILON * fmax(fabs(lo), fabs(hi)))
            break;
        if (slopes_at_most(x, y, n, mid, z, tmp) >= k)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

static double theil_sen_fast(const double *x0, const double *y, size_t n)
{
    double *x = xmalloc(n * sizeof *x), *z = xmalloc(n * sizeof *z), *tmp = xmalloc(n * sizeof *tmp);
    for (size_t i = 0; i < n; i++)
        x[i] = x0[i] - x0[0];
    uint64_t pairs = (uint64_t)n * (n - 1) / 2, k = (pairs + 1) / 2;
    double m = kth_slope(x, y, n, k, z, tmp);
    if (pairs % 2 == 0)
        m = (m + kth_slope(x, y, n, k + 1, z, tmp)) / 2;
    free(x);
    free(z);
    free(tmp);
    return m;
}

static double theil_sen_exact(const double *x, const double *y, size_t n)
{
    size_t pairs = n * (n - 1) / 2, k = 0;
    double *slopes = xmalloc((pairs ? pairs : 1) * sizeof *slopes);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (x[j] > x[i])
                slopes[k++] = (y[j] - y[i]) / (x[j] - x[i]);
    double m = k ? median(slopes, k) : 0;
    free(slopes);
    return m;
}

void trend_fit(const double *x, const double *y, size_t n, struct trend *out)
{
    bool distinct_x = true;
    for (size_t i = 0; i + 1 < n; i++)
        distinct_x &= x[i + 1] > x[i];
    out->slope = n <= EXACT_MAX || !distinct_x ? theil_sen_exact(x, y, n) : theil_sen_fast(x, y, n);
    double *resid = xmalloc(n * sizeof *resid);
    for (size_t i = 0; i < n; i++)
        resid[i] = y[i] - out->slope * x[i];
    out->intercept = median(resid, n);
    /* Mann-Kendall: S from the inversions; the variance's tie correction from groups of
     * equal y values. */
    double *sorted = xmalloc(n * sizeof *sorted), *tmp = xmalloc(n * sizeof *tmp);
    memcpy(sorted, y, n * sizeof *sorted);
    uint64_t inv = inversions(sorted, tmp, n, false);
    double nn = (double)n, var = nn * (nn - 1) * (2 * nn + 5), tied_pairs = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && sorted[j] == sorted[i])
            j++;
        double t = (double)(j - i);
        if (t > 1) {
            var -= t * (t - 1) * (2 * t + 5);
            tied_pairs += t * (t - 1) / 2;
        }
        i = j;
    }
    var /= 18;
    double s = nn * (nn - 1) / 2 - tied_pairs - 2 * (double)inv;
    out->s = s;
    if (var <= 0) {
        out->z = 0;
        out->p = 1;
    } else {
        out->z = s > 0 ? (s - 1) / sqrt(var) : s < 0 ? (s + 1) / sqrt(var) : 0;
        out->p = erfc(fabs(out->z) / sqrt(2));
    }
    free(resid);
    free(sorted);
    free(tmp);
}
