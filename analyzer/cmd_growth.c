/* This file implements `heapwatch growth`: which sites grow steadily over all snapshots
 * (--by owner: group_growth.c).
 *
 * Each site's series (its flat value at every snapshot, 0 where absent) is fitted and classed
 * by growth_class.h: growing, plateau, shrinking, churn or stable. Each finding carries its
 * evidence: slope, p-value, first and last values, the series. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "group_reports.h"
#include "groupings.h"
#include "growth_class.h"
#include "options.h"
#include "report.h"
#include "symcache.h"
#include "usage.h"

static const struct cmd_usage usage_growth = {
    "growth", "[DB]", "Which sites grow steadily over all snapshots of a database: each site's series is tested\n"
    "for a trend (Mann-Kendall) and its slope measured (Theil-Sen), then classed as growing,\n"
    "plateau, shrinking, churn or stable. With --by owner, over the snapshots with a heap walk:\n"
    "which variables accumulate (their retained memory grows), which sites leak (their\n"
    "unreachable memory grows), which caches filled up (cache), and churn.",
    "DB defaults to the newest heapwatch.*.db in the current directory.", NULL,
};

struct series {
    struct row id;     /* identity of the site (from the oldest profile that has it) */
    double *y;
    struct growth_fit fit;
};

static int cmp_series(const void *a, const void *b)
{
    const struct series *x = a, *y = b;
    if (x->fit.cls != y->fit.cls)
        return (int)x->fit.cls - (int)y->fit.cls;
    return (y->fit.t.slope > x->fit.t.slope) - (y->fit.t.slope < x->fit.t.slope);
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
        OPT_REPORT_BY_WALK(&o.by),
        OPT_BOOL(0, "all", &o.all, "list every class, not only growing and plateau"),
        OPT_NODECOUNT(&o.nodecount),
        OPT_JSON(&o.json),
        OPT_BOOL(0, "exit-code", &o.exit_code, "exit 1 when something grows"),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_growth, 0);
    report_opts_finish(&o);
    if (grouping_of(o.by))
        check_walk_options(opts, &usage_growth, &o);
    struct hwdb *db = open_db_operand(argc, argv, opts, &usage_growth);
    if (grouping_of(o.by)) {
        int rc = growth_by_group(db, &o);
        db_close(db);
        return rc;
    }
    struct symcache *sc = symcache_open(db);
    size_t n;
    int64_t *ids = db_snapshot_ids(db, &n);
    double *x = xcalloc(n ? n : 1, sizeof *x);
    struct rows *per = xcalloc(n ? n : 1, sizeof *per);
    struct profile *profs = xcalloc(n ? n : 1, sizeof *profs);
    struct rows keys = { 0 };
    for (size_t i = 0; i < n; i++) {
        profile_load(&profs[i], db, sc, ids[i]);
        profile_require_index(&profs[i], o.index);
        x[i] = (double)(profs[i].time_ns - profs[0].time_ns) / 1e9;
        if (i && x[i] <= x[i - 1])
            x[i] = x[i - 1] + 1e-9;  /* keep x strictly increasing */
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
        growth_fit(x, s->y, n, &s->fit);
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
        if (n < GROWTH_MIN_SNAPSHOTS)
            printf("(at least %d snapshots are needed to tell growth from noise)\n", GROWTH_MIN_SNAPSHOTS);
        printf("%-10s %14s %12s %12s %8s  %s\n", "class", "slope/snapshot", "first", "last", "p", "site");
    }
    size_t shown = 0;
    for (size_t k = 0; k < nser; k++) {
        struct series *s = &ser[k];
        growing = growing || s->fit.cls == GROWTH_GROWING;
        if (!o.all && s->fit.cls != GROWTH_GROWING && s->fit.cls != GROWTH_PLATEAU)
            continue;
        if (shown++ >= o.nodecount)
            continue;
        if (o.json) {
            json_begin_object(&j);
            row_json_identity(&j, &s->id, o.by);
            json_key(&j, "class"); json_str(&j, growth_class_names[s->fit.cls]);
            growth_fit_json(&j, &s->fit, s->y, n);
            json_end_object(&j);
        } else {
            char sl[40];
            snprintf(sl, sizeof sl, "%s%s", s->fit.per_snap.slope > 0 ? "+" : "",
                     fmt_value(c, sizeof c, (int64_t)llround(s->fit.per_snap.slope), o.index));
            printf("%-10s %14s %12s %12s %8.2g  %s\n", growth_class_names[s->fit.cls], sl, fmt_value(a, sizeof a, (int64_t)s->y[0], o.index),
                   fmt_value(b, sizeof b, (int64_t)s->y[n ? n - 1 : 0], o.index), s->fit.t.p, row_name(&s->id, o.by, name, sizeof name));
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
    free(ids);
    symcache_close(sc);
    db_close(db);
    return o.exit_code && growing ? EXIT_FINDINGS : 0;
}
