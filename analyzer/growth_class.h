/* growth_class.h: how one series of values over snapshots is classed, for `growth` by site
 * and by owner (group_growth.c).
 *
 * The series is tested with Mann-Kendall and sloped with Theil-Sen (trend.h), then classed:
 *   growing    significant upward trend that still holds over the later half
 *   plateau    grew, then levelled off over the later half (a cache filling up)
 *   shrinking  significant downward trend
 *   churn      goes up and down without a trend (a sawtooth is not growth)
 *   stable     never changes
 *   insufficient  fewer than GROWTH_MIN_SNAPSHOTS points: no claim is made
 * The enum's order is the order reports list the classes in. */
#ifndef HW_GROWTH_CLASS_H
#define HW_GROWTH_CLASS_H

#include <stddef.h>
#include "trend.h"

#define GROWTH_MIN_SNAPSHOTS 4

enum growth_class {
    GROWTH_GROWING, GROWTH_PLATEAU, GROWTH_SHRINKING, GROWTH_CHURN, GROWTH_STABLE, GROWTH_INSUFFICIENT
};
extern const char *const growth_class_names[];   /* "growing", "plateau", ... "insufficient" */

/* The evidence of one series and its class. */
struct growth_fit {
    struct trend t;          /* against x (seconds) */
    struct trend per_snap;   /* against the snapshot's position 0, 1, 2... */
    enum growth_class cls;
};

/* Fit and class y[0..n) against x[0..n) (strictly increasing). With n < 2 the trends are 0. */
void growth_fit(const double *x, const double *y, size_t n, struct growth_fit *out);

/* The evidence of a series' fit into an open JSON object: "slope_per_second",
 * "slope_per_snapshot", "mann_kendall_s", "z", "p_value", "first", "last", "series". */
struct json;
void growth_fit_json(struct json *j, const struct growth_fit *f, const double *y, size_t n);

#endif
