/* This file implements the Theil-Sen estimator and the Mann-Kendall trend test (see trend.h).
 * O(n^2) in the number of snapshots, which stays in the hundreds. */
#include "trend.h"

#include <math.h>
#include <stdlib.h>
#include "usage.h"

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

void trend_fit(const double *x, const double *y, size_t n, struct trend *out)
{
    size_t pairs = n * (n - 1) / 2, k = 0;
    double *slopes = xmalloc((pairs ? pairs : 1) * sizeof *slopes);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            double dx = x[j] - x[i], dy = y[j] - y[i];
            if (dx > 0)
                slopes[k++] = dy / dx;
            s += (dy > 0) - (dy < 0);
        }
    out->slope = k ? median(slopes, k) : 0;
    double *resid = xmalloc(n * sizeof *resid);
    for (size_t i = 0; i < n; i++)
        resid[i] = y[i] - out->slope * x[i];
    out->intercept = median(resid, n);
    /* Variance with tie correction: groups of equal y values. */
    double *sorted = xmalloc(n * sizeof *sorted);
    for (size_t i = 0; i < n; i++)
        sorted[i] = y[i];
    qsort(sorted, n, sizeof *sorted, cmp_double);
    double nn = (double)n, var = nn * (nn - 1) * (2 * nn + 5);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && sorted[j] == sorted[i])
            j++;
        double t = (double)(j - i);
        if (t > 1)
            var -= t * (t - 1) * (2 * t + 5);
        i = j;
    }
    var /= 18;
    out->s = s;
    if (var <= 0) {
        out->z = 0;
        out->p = 1;
    } else {
        out->z = s > 0 ? (s - 1) / sqrt(var) : s < 0 ? (s + 1) / sqrt(var) : 0;
        out->p = erfc(fabs(out->z) / sqrt(2));
    }
    free(slopes);
    free(resid);
    free(sorted);
}
