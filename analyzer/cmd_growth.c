/* This file implements `heapwatch growth`: which sites grow steadily over all snapshots.
 *
 * Each site's series (its flat value at every snapshot, 0 where absent) is tested with
 * Mann-Kendall and sloped with Theil-Sen (trend.h), then classified:
 *   growing    significant upward trend that still holds over the later half
 *   plateau    grew, then levelled off over the later half (a cache filling up)
 *   shrinking  significant downward trend
 *   churn      goes up and down without a trend (a sawtooth is not growth)
 *   stable     never changes
 * Each finding carries its evidence: slope, p-value, first and last values, the series. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "options.h"
#include "report.h"
#include "symcache.h"
#include "trend.h"
#include "usage.h"

#define ALPHA 0.05
#define MIN_SNAPSHOTS 4

static const struct cmd_usage usage_growth = {
    "growth", "[DB]", "Which sites grow steadily over all snapshots of a database: each site's series is tested\n"
    "for a trend (Mann-Kendall) and its slope measured (Theil-Sen), then classed as growing,\n"
    "plateau, shrinking, churn or stable.",
    "DB defaults to the newest heapwatch.*.db in the current directory.", NULL,
};

struct series {
    struct row id;     /* identity of the site (from the oldest profile that has it) */
    double *y;
    const char *cls;
    struct trend t, per_snap;
};

/* Range of y[from..n). */
static void range(const double *y, size_t from, size_t n, double *lo, double *hi)
{
    *lo = *hi = y[from];
    for (size_t i = from + 1; i < n; i++) {
        *lo = y[i] < *lo ? y[i] : *lo;
        *hi = y[i] > *hi ? y[i] : *hi;
    }
}

static const char *classify(const double *x, const double *y, size_t n, const struct trend *t)
{
    double lo, hi;
    range(y, 0, n, &lo, &hi);
    if (hi == lo)
        return "stable";
    if (t->p < ALPHA && t->slope < 0)
        return "shrinking";
    /* The later half: still rising, or levelled off near the top? */
    size_t half = n / 2;
    struct trend late;
    trend_fit(x + half, y + half, n - half, &late);
    double late_lo, late_hi;
    range(y, half, n, &late_lo, &late_hi);
    bool late_rising = late.p < ALPHA && late.slope > 0;
    bool late_flat = !late_rising && late_hi - late_lo <= 0.25 * (hi - lo) && late_lo >= lo + 0.75 * (hi - lo);
    if (t->p < ALPHA && t->slope > 0 && y[n - 1] > y[0] && !late_flat)
        return "growing";
    if (y[n - 1] > y[0] && late_flat)
        return "plateau";
    return "churn";
}

static int class_rank(const char *c)
{
    static const char *const order[] = { "growing", "plateau", "shrinking", "churn", "stable" };
    for (int i = 0; i < 5; i++)
        if (!strcmp(c, order[i]))
            return i;
    return 5;
}

static int cmp_series(const void *a, const void *b)
{
    const struct series *x = a, *y = b;
    int rx = class_rank(x->cls), ry = class_rank(y->cls);
    if (rx != ry)
        return rx - ry;
    return (y->t.slope > x->t.slope) - (y->t.slope < x->t.slope);
}

/* Append to keys the rows of per whose keys it lacks, in per's order: the union of the sites
 * of every snapshot, each with the identity of its first sighting. Only the identity is kept. */
static void add_new_keys(struct rows *keys, const struct rows *per)
{
    for (size_t i = 0; i < per->nr; i++) {
        if (report_find(keys, per->v[i].key))
            continue;
        ALLOC_GROW(keys->v, keys->nr + 1, keys->alloc);
        struct row *r = &keys->v[keys->nr++];
        *r = per->v[i];
        memset(r->flat, 0, sizeof r->flat);
        memset(r->cum, 0, sizeof r->cum);
        hmap_put(&keys->index, r->key, (void *)(uintptr_t)keys->nr);
    }
}

int cmd_growth(int argc, char **argv)
{
    struct report_opts o;
    report_opts_init(&o);
    const struct opt opts[] = {
        OPT_SAMPLE_INDEX(&o.index, SAMPLE_INDEX_HELP),
        OPT_REPORT_BY(&o.by),
        OPT_BOOL(0, "all", &o.all, "list every class, not only growing and plateau"),
        OPT_NODECOUNT(&o.nodecount),
        OPT_JSON(&o.json),
        OPT_BOOL(0, "exit-code", &o.exit_code, "exit 1 when something grows"),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_growth, 0);
    report_opts_finish(&o);
    struct hwdb *db = open_db_operand(argc, argv, opts, &usage_growth);
    struct symcache *sc = symcache_open(db);
    size_t n;
    int64_t *ids = db_snapshot_ids(db, &n);
    double *x = xcalloc(n ? n : 1, sizeof *x), *xi = xcalloc(n ? n : 1, sizeof *xi);
    struct rows *per = xcalloc(n ? n : 1, sizeof *per);
    struct profile *profs = xcalloc(n ? n : 1, sizeof *profs);
    struct rows keys = { 0 };
    for (size_t i = 0; i < n; i++) {
        profile_load(&profs[i], db, sc, ids[i]);
        profile_require_index(&profs[i], o.index);
        x[i] = (double)(profs[i].time_ns - profs[0].time_ns) / 1e9;
        if (i && x[i] <= x[i - 1])
            x[i] = x[i - 1] + 1e-9;  /* keep x strictly increasing */
        xi[i] = (double)i;
        report_aggregate(&profs[i], o.by, &per[i]);
        add_new_keys(&keys, &per[i]);
    }
    struct series *ser = xcalloc(keys.nr ? keys.nr : 1, sizeof *ser);
    size_t nser = 0;
    for (size_t k = 0; k < keys.nr; k++) {
        struct series *s = &ser[nser];
        s->id = keys.v[k];
        s->y = xcalloc(n ? n : 1, sizeof *s->y);
        for (size_t i = 0; i < n; i++) {
            struct row *r = report_find(&per[i], keys.v[k].key);
            s->y[i] = r ? (double)r->flat[o.index] : 0;
        }
        if (n >= 2) {
            trend_fit(x, s->y, n, &s->t);
            trend_fit(xi, s->y, n, &s->per_snap);
        }
        s->cls = n < MIN_SNAPSHOTS ? "insufficient" : classify(x, s->y, n, &s->t);
        bool zero = true;
        for (size_t i = 0; i < n; i++)
            zero = zero && s->y[i] == 0;
        if (zero) {
            free(s->y);
            continue;  /* a site with only cum value: not an allocation site */
        }
        nser++;
    }
    qsort(ser, nser, sizeof *ser, cmp_series);
    bool growing = false;
    char a[32], b[32], c[32], name[4096];
    struct json j;
    if (o.json) {
        json_init(&j, stdout);
        json_begin_object(&j);
        json_key(&j, "db"); json_str(&j, db->path);
        json_key(&j, "sample_index"); json_str(&j, value_names[o.index]);
        json_key(&j, "by"); json_str(&j, report_by_names[o.by]);
        json_key(&j, "snapshots");
        json_begin_array(&j);
        for (size_t i = 0; i < n; i++)
            json_int(&j, ids[i]);
        json_end_array(&j);
        json_key(&j, "rows");
        json_begin_array(&j);
    } else {
        printf("Growth over %zu snapshot%s of %s (%s, by %s, %.1f s)\n", n, n == 1 ? "" : "s", db->path,
               value_names[o.index], report_by_names[o.by], n ? x[n - 1] : 0.0);
        if (n < MIN_SNAPSHOTS)
            printf("(at least %d snapshots are needed to tell growth from noise)\n", MIN_SNAPSHOTS);
        printf("%-10s %14s %12s %12s %8s  %s\n", "class", "slope/snapshot", "first", "last", "p", "site");
    }
    size_t shown = 0;
    for (size_t k = 0; k < nser; k++) {
        struct series *s = &ser[k];
        growing = growing || !strcmp(s->cls, "growing");
        if (!o.all && strcmp(s->cls, "growing") && strcmp(s->cls, "plateau"))
            continue;
        if (shown++ >= o.nodecount)
            continue;
        if (o.json) {
            json_begin_object(&j);
            row_json_identity(&j, &s->id, o.by);
            json_key(&j, "class"); json_str(&j, s->cls);
            json_key(&j, "slope_per_second"); json_double(&j, s->t.slope);
            json_key(&j, "slope_per_snapshot"); json_double(&j, s->per_snap.slope);
            json_key(&j, "mann_kendall_s"); json_double(&j, s->t.s);
            json_key(&j, "z"); json_double(&j, s->t.z);
            json_key(&j, "p_value"); json_double(&j, s->t.p);
            json_key(&j, "first"); json_int(&j, n ? (int64_t)s->y[0] : 0);
            json_key(&j, "last"); json_int(&j, n ? (int64_t)s->y[n - 1] : 0);
            json_key(&j, "series");
            json_begin_array(&j);
            for (size_t i = 0; i < n; i++)
                json_int(&j, (int64_t)s->y[i]);
            json_end_array(&j);
            json_end_object(&j);
        } else {
            char sl[40];
            snprintf(sl, sizeof sl, "%s%s", s->per_snap.slope > 0 ? "+" : "",
                     fmt_value(c, sizeof c, (int64_t)llround(s->per_snap.slope), o.index));
            printf("%-10s %14s %12s %12s %8.2g  %s\n", s->cls, sl, fmt_value(a, sizeof a, (int64_t)s->y[0], o.index),
                   fmt_value(b, sizeof b, (int64_t)s->y[n ? n - 1 : 0], o.index), s->t.p, row_name(&s->id, o.by, name, sizeof name));
        }
    }
    if (o.json) {
        json_end_array(&j);
        json_end_object(&j);
        json_finish(&j);
    } else if (!shown) {
        printf("(nothing grows)\n");
    }
    warn_missing_debug(sc);
    for (size_t k = 0; k < nser; k++)
        free(ser[k].y);
    free(ser);
    for (size_t i = 0; i < n; i++) {
        report_rows_release(&per[i]);
        profile_release(&profs[i]);
    }
    report_rows_release(&keys);
    free(per);
    free(profs);
    free(x);
    free(xi);
    free(ids);
    symcache_close(sc);
    db_close(db);
    return o.exit_code && growing ? EXIT_FINDINGS : 0;
}
