/* This file implements `heapwatch diff A B`: what grew and shrank between two snapshots, by
 * site. Each row is B - A of the same key; rows are sorted by the size of the change. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "options.h"
#include "report.h"
#include "usage.h"

static const char usage_diff[] =
    "usage: heapwatch diff SNAP_A SNAP_B [--sample-index NAME] [--by function|line|stack] [--nodecount N]\n"
    "                      [--json] [--exit-code]\n"
    "  rows are B - A; --exit-code exits 1 when the chosen value grew";

struct side {
    struct hwdb *db;
    struct symcache *sc;
    struct profile p;
    struct rows rows;
};

static void load_side(struct side *s, const char *spec, enum report_by by)
{
    int64_t snap;
    s->db = db_open_snapshot_spec(spec, &snap);
    s->sc = symcache_open(s->db);
    profile_load(&s->p, s->db, s->sc, snap);
    memset(&s->rows, 0, sizeof s->rows);
    report_aggregate(&s->p, by, &s->rows);
}

static void release_side(struct side *s)
{
    report_rows_release(&s->rows);
    profile_release(&s->p);
    symcache_close(s->sc);
}

/* delta rows: flat = B.flat - A.flat, cum = B.cum - A.cum; identity from whichever has it. */
static void build_delta(struct side *a, struct side *b, struct rows *out)
{
    memset(out, 0, sizeof *out);
    for (int pass = 0; pass < 2; pass++) {
        struct rows *src = pass ? &a->rows : &b->rows;
        for (size_t i = 0; i < src->nr; i++) {
            struct row *r = &src->v[i];
            if (report_find(out, r->key))
                continue;
            ALLOC_GROW(out->v, out->nr + 1, out->alloc);
            struct row *d = &out->v[out->nr++];
            *d = *r;
            memset(d->flat, 0, sizeof d->flat);
            memset(d->cum, 0, sizeof d->cum);
            struct row *ra = report_find(&a->rows, r->key), *rb = report_find(&b->rows, r->key);
            for (int k = 0; k < NV; k++) {
                d->flat[k] = (rb ? rb->flat[k] : 0) - (ra ? ra->flat[k] : 0);
                d->cum[k] = (rb ? rb->cum[k] : 0) - (ra ? ra->cum[k] : 0);
            }
            hmap_put(&out->index, d->key, (void *)(uintptr_t)out->nr);
        }
    }
}

int cmd_diff(int argc, char **argv)
{
    struct report_opts o;
    int first = report_opts_parse(&o, argc, argv, usage_diff);
    if (argc - first != 2)
        die_usage(usage_diff, "diff needs two snapshots");
    struct side a, b;
    load_side(&a, argv[first], o.by);
    load_side(&b, argv[first + 1], o.by);
    struct rows d;
    build_delta(&a, &b, &d);
    report_sort(&d, o.index, o.cum);
    int64_t total[NV];
    for (int k = 0; k < NV; k++)
        total[k] = b.p.total[k] - a.p.total[k];
    char x[32], y[32], z[32], name[4096];
    if (o.json) {
        struct json j;
        json_init(&j, stdout);
        json_begin_object(&j);
        json_key(&j, "a");
        json_begin_object(&j);
        json_key(&j, "db"); json_str(&j, a.db->path);
        json_key(&j, "snapshot"); json_int(&j, a.p.snapshot);
        json_key(&j, "total"); values_json(&j, a.p.total);
        json_end_object(&j);
        json_key(&j, "b");
        json_begin_object(&j);
        json_key(&j, "db"); json_str(&j, b.db->path);
        json_key(&j, "snapshot"); json_int(&j, b.p.snapshot);
        json_key(&j, "total"); values_json(&j, b.p.total);
        json_end_object(&j);
        json_key(&j, "sample_index"); json_str(&j, value_names[o.index]);
        json_key(&j, "by"); json_str(&j, report_by_names[o.by]);
        json_key(&j, "delta"); values_json(&j, total);
        json_key(&j, "rows");
        json_begin_array(&j);
        for (size_t i = 0; i < d.nr && i < o.nodecount; i++) {
            if (!d.v[i].flat[o.index] && !d.v[i].cum[o.index])
                continue;
            json_begin_object(&j);
            row_json_identity(&j, &d.v[i], o.by);
            json_key(&j, "flat"); values_json(&j, d.v[i].flat);
            json_key(&j, "cum"); values_json(&j, d.v[i].cum);
            json_end_object(&j);
        }
        json_end_array(&j);
        json_end_object(&j);
        json_finish(&j);
    } else {
        printf("Diff %s:%lld -> %s:%lld, %s: %s -> %s (%s%s)\n", a.db->path, (long long)a.p.snapshot, b.db->path,
               (long long)b.p.snapshot, value_names[o.index], fmt_value(x, sizeof x, a.p.total[o.index], o.index),
               fmt_value(y, sizeof y, b.p.total[o.index], o.index), total[o.index] >= 0 ? "+" : "",
               fmt_value(z, sizeof z, total[o.index], o.index));
        printf("%12s %12s  %s\n", "flat delta", "cum delta", report_by_names[o.by]);
        size_t shown = 0;
        for (size_t i = 0; i < d.nr && shown < o.nodecount; i++) {
            const struct row *r = &d.v[i];
            if (!r->flat[o.index] && !r->cum[o.index])
                continue;
            shown++;
            char f1[40], f2[40];
            snprintf(f1, sizeof f1, "%s%s", r->flat[o.index] > 0 ? "+" : "", fmt_value(x, sizeof x, r->flat[o.index], o.index));
            snprintf(f2, sizeof f2, "%s%s", r->cum[o.index] > 0 ? "+" : "", fmt_value(y, sizeof y, r->cum[o.index], o.index));
            printf("%12s %12s  %s\n", f1, f2, row_name(r, o.by, name, sizeof name));
        }
        if (!shown)
            printf("(no change)\n");
    }
    int rc = o.exit_code && total[o.index] > 0 ? EXIT_FINDINGS : 0;
    warn_missing_debug(b.sc);
    report_rows_release(&d);
    release_side(&b);
    release_side(&a);
    return rc;
}
