/* trend.h: robust trend statistics for growth detection.
 * Theil-Sen slope (median of pairwise slopes: a few outliers cannot tilt it) and the
 * Mann-Kendall test (is there a monotonic trend at all, from the signs of all pairs), with the
 * normal approximation and tie correction. A sawtooth has as many falling pairs as rising
 * ones across its teeth, so it shows no trend. */
#ifndef HW_TREND_H
#define HW_TREND_H

#include <stddef.h>

struct trend {
    double slope;      /* Theil-Sen, y units per x unit */
    double intercept;  /* median(y - slope * x) */
    double s, z, p;    /* Mann-Kendall statistic, its z score and two-sided p-value */
};

/* n >= 2; x strictly increasing. */
void trend_fit(const double *x, const double *y, size_t n, struct trend *out);

#endif
