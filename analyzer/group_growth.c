/* This file implements growth_by_group (group_reports.h): which owners (or types) grow
 * steadily over the walked snapshots of a database, and which sites leak more and more.
 *
 * Snapshots are taken one at a time: load the graph, group it (groupings.h), keep the rows'
 * values, release the graph, so memory stays one snapshot's graph plus a series per row.
 * Each row's series (0 where the row is absent) is classed by growth_class.h and named for
 * what it means here:
 *   accumulation  a variable's (reachable) memory grows steadily     (growing)
 *   leak          unreachable memory of a site grows, or grew        (growing or plateau)
 *   cache         a variable's memory grew, then levelled off        (plateau)
 *   shrinking, churn, stable, insufficient                           (as growth by site)
 * JSON gives both: "class" (the name above) and "trend" (growth_class.h's). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db.h"
#include "group_reports.h"
#include "groupings.h"
#include "growth_class.h"
#include "profile.h"
#include "symbolize.h"
#include "symcache.h"
#include "usage.h"

struct series {
    struct group_row id;   /* identity and display fields of its first sighting */
    double *y;             /* by walked snapshot */
    struct growth_fit fit;
};

struct walk_growth {
    const struct grouping *gr;
    int index;             /* V_INUSE_SPACE or V_INUSE_OBJECTS */
    int64_t *walked, *skipped;
    size_t nr_walked, nr_skipped, nr_ids;
    double *x;             /* seconds since the first walked snapshot */
    struct series *ser;
    size_t nr_ser, alloc_ser;
    struct hmap index_of;  /* row key -> series index + 1 */
    struct strpool pool;   /* the rows' strings */
};

static const char *class_name(const struct series *s)
{
    switch (s->fit.cls) {
    case GROWTH_GROWING: return s->id.unreachable ? "leak" : "accumulation";
    case GROWTH_PLATEAU: return s->id.unreachable ? "leak" : "cache";
    default: return growth_class_names[s->fit.cls];
    }
}

/* The values of one walked snapshot's rows at position w of every series. */
static void add_snapshot(struct walk_growth *wg, const struct group_rows *rows, size_t w)
{
    for (size_t i = 0; i < rows->nr; i++) {
        const struct group_row *r = &rows->v[i];
        uintptr_t at = (uintptr_t)hmap_get(&wg->index_of, (uint64_t)(uintptr_t)r->key);
        if (!at) {
            ALLOC_GROW(wg->ser, wg->nr_ser + 1, wg->alloc_ser);
            struct series *s = &wg->ser[wg->nr_ser++];
            memset(s, 0, sizeof *s);
            s->id = *r;
            s->y = xcalloc(wg->nr_ids, sizeof *s->y);
            at = wg->nr_ser;
            hmap_put(&wg->index_of, (uint64_t)(uintptr_t)r->key, (void *)at);
        }
        wg->ser[at - 1].y[w] = (double)(wg->index == V_INUSE_OBJECTS ? r->objects : r->bytes);
    }
}

/* Group every walked snapshot of db into the series. */
static void load_series(struct walk_growth *wg, struct hwdb *db)
{
    int64_t *ids = db_snapshot_ids(db, &wg->nr_ids);
    size_t n = wg->nr_ids ? wg->nr_ids : 1;
    wg->walked = xcalloc(n, sizeof *wg->walked);
    wg->skipped = xcalloc(n, sizeof *wg->skipped);
    wg->x = xcalloc(n, sizeof *wg->x);
    struct group_ctx ctx = { .db = db, .sc = symcache_open(db), .sym = sym_new(), .pool = &wg->pool };
    int64_t t0 = 0;
    for (size_t i = 0; i < wg->nr_ids; i++) {
        struct snapshot_info si;
        if (!db_snapshot_info(db, ids[i], &si))
            die(EXIT_INPUT, "no snapshot %lld in '%s'", (long long)ids[i], db->path);
        struct group_rows rows = { 0 };
        if (!group_snapshot(wg->gr, &ctx, &si, &rows)) {
            wg->skipped[wg->nr_skipped++] = ids[i];
            snapshot_info_release(&si);
            continue;
        }
        size_t w = wg->nr_walked++;
        wg->walked[w] = ids[i];
        if (!w)
            t0 = si.time_ns;
        wg->x[w] = (double)(si.time_ns - t0) / 1e9;
        if (w && wg->x[w] <= wg->x[w - 1])
            wg->x[w] = wg->x[w - 1] + 1e-9;   /* keep x strictly increasing */
        add_snapshot(wg, &rows, w);
        group_rows_release(&rows);
        snapshot_info_release(&si);
    }
    warn_missing_debug(ctx.sc);
    symcache_close(ctx.sc);
    sym_free(ctx.sym);
    free(ids);
    if (wg->nr_ids && !wg->nr_walked)
        die(EXIT_INPUT, "no snapshot of '%s' has a heap walk (HEAPWATCH_OBJECTS=0): --by %s needs one", db->path,
            wg->gr->name);
    if (wg->nr_skipped) {
        char list[256];
        size_t len = 0;
        for (size_t i = 0; i < wg->nr_skipped && len < sizeof list - 32; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%lld", i ? ", " : "", (long long)wg->skipped[i]);
        if (len >= sizeof list - 32)
            snprintf(list + len, sizeof list - len, ", ...");
        warning("snapshot%s %s of '%s' ha%s no heap walk: left out of growth by %s", wg->nr_skipped > 1 ? "s" : "",
                list, db->path, wg->nr_skipped > 1 ? "ve" : "s", wg->gr->name);
    }
}

static int cmp_series(const void *a, const void *b)
{
    const struct series *x = a, *y = b;
    if (x->fit.cls != y->fit.cls)
        return (int)x->fit.cls - (int)y->fit.cls;
    if (x->fit.t.slope != y->fit.t.slope)
        return x->fit.t.slope > y->fit.t.slope ? -1 : 1;
    return strcmp(x->id.key, y->id.key);
}

static bool listed(const struct series *s, const struct report_opts *o)
{
    return o->all || s->fit.cls == GROWTH_GROWING || s->fit.cls == GROWTH_PLATEAU;
}

static void json_ids(struct json *j, const char *key, const int64_t *ids, size_t nr)
{
    json_key(j, key);
    json_begin_array(j);
    for (size_t i = 0; i < nr; i++)
        json_int(j, ids[i]);
    json_end_array(j);
}

static void print_json(const struct walk_growth *wg, const char *path, const struct report_opts *o)
{
    size_t n = wg->nr_walked, shown = 0;
    struct json j;
    json_init(&j, stdout);
    json_begin_object(&j);
    json_key(&j, "db"); json_str(&j, path);
    json_key(&j, "sample_index"); json_str(&j, value_names[wg->index]);
    json_key(&j, "by"); json_str(&j, wg->gr->name);
    json_ids(&j, "snapshots", wg->walked, wg->nr_walked);
    json_ids(&j, "skipped", wg->skipped, wg->nr_skipped);
    json_key(&j, "rows");
    json_begin_array(&j);
    for (size_t k = 0; k < wg->nr_ser; k++) {
        const struct series *s = &wg->ser[k];
        if (!listed(s, o) || shown++ >= o->nodecount)
            continue;
        json_begin_object(&j);
        group_row_json_identity(&j, &s->id);
        json_key(&j, "class"); json_str(&j, class_name(s));
        json_key(&j, "trend"); json_str(&j, growth_class_names[s->fit.cls]);
        growth_fit_json(&j, &s->fit, s->y, n);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_end_object(&j);
    json_finish(&j);
}

static void print_text(const struct walk_growth *wg, const char *path, const struct report_opts *o)
{
    size_t n = wg->nr_walked, shown = 0;
    char a[32], b[32], c[32], sl[40], name[4096];
    printf("Growth over %zu snapshot%s of %s (%s, by %s, %.1f s)\n", n, n == 1 ? "" : "s", path,
           value_names[wg->index], wg->gr->name, n ? wg->x[n - 1] : 0.0);
    if (wg->nr_skipped)
        printf("(%zu snapshot%s without a heap walk left out)\n", wg->nr_skipped, wg->nr_skipped == 1 ? "" : "s");
    if (n < GROWTH_MIN_SNAPSHOTS)
        printf("(at least %d snapshots are needed to tell growth from noise)\n", GROWTH_MIN_SNAPSHOTS);
    printf("%-12s %14s %12s %12s %8s  %-12s  %s\n", "class", "slope/snapshot", "first", "last", "p", "kind", wg->gr->name);
    for (size_t k = 0; k < wg->nr_ser; k++) {
        const struct series *s = &wg->ser[k];
        if (!listed(s, o) || shown++ >= o->nodecount)
            continue;
        snprintf(sl, sizeof sl, "%s%s", s->fit.per_snap.slope > 0 ? "+" : "",
                 fmt_value(c, sizeof c, (int64_t)llround(s->fit.per_snap.slope), wg->index));
        printf("%-12s %14s %12s %12s %8.2g  %-12s  %s\n", class_name(s), sl,
               fmt_value(a, sizeof a, n ? (int64_t)s->y[0] : 0, wg->index),
               fmt_value(b, sizeof b, n ? (int64_t)s->y[n - 1] : 0, wg->index), s->fit.t.p, s->id.kind,
               group_row_text(&s->id, name, sizeof name));
    }
    if (!shown)
        printf("(nothing grows)\n");
}

int growth_by_group(struct hwdb *db, const struct report_opts *o)
{
    struct walk_growth wg = { .gr = grouping_of(o->by), .index = o->index };
    if (!wg.gr || !wg.gr->fn)
        BUG("growth by %s: not a heap-walk grouping", report_by_names[o->by]);
    load_series(&wg, db);
    bool growing = false;
    for (size_t k = 0; k < wg.nr_ser; k++) {
        struct series *s = &wg.ser[k];
        growth_fit(wg.x, s->y, wg.nr_walked, &s->fit);
        growing = growing || s->fit.cls == GROWTH_GROWING;
    }
    if (wg.nr_ser)
        qsort(wg.ser, wg.nr_ser, sizeof *wg.ser, cmp_series);
    if (o->json)
        print_json(&wg, db->path, o);
    else
        print_text(&wg, db->path, o);
    for (size_t k = 0; k < wg.nr_ser; k++)
        free(wg.ser[k].y);
    free(wg.ser);
    hmap_clear(&wg.index_of);
    strpool_clear(&wg.pool);
    free(wg.walked);
    free(wg.skipped);
    free(wg.x);
    return o->exit_code && growing ? EXIT_FINDINGS : 0;
}
