/* This file implements `heapwatch top`: pprof's top report of one snapshot. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "options.h"
#include "report.h"
#include "symcache.h"
#include "top_types.h"
#include "usage.h"

static const struct cmd_usage usage_top = {
    "top", "[SNAP]", "Who holds (inuse) or allocated (alloc) the most, by function, line or stack, with flat\n"
    "and cumulative values, as pprof's top; or what the heap walk found by type (--by type).",
    SNAP_OPERAND_HELP, NULL,
};

static void print_text(const struct profile *p, struct rows *rows, const struct report_opts *o)
{
    char a[32], b[32], c[32], name[4096];
    int64_t total = p->total[o->index];
    printf("Snapshot %lld of %s (%s%s%s), %s, %s\n", (long long)p->snapshot, p->db->path, p->trigger,
           *p->label ? ": " : "", p->label, value_names[o->index], report_rate_text(p->sample_rate, a, sizeof a));
    size_t shown = rows->nr < o->nodecount ? rows->nr : o->nodecount;
    int64_t shown_flat = 0;
    for (size_t i = 0; i < shown; i++)
        shown_flat += rows->v[i].flat[o->index];
    printf("Showing %zu of %zu nodes, accounting for %s (%.2f%%) of %s total\n", shown, rows->nr,
           fmt_value(a, sizeof a, shown_flat, o->index), total ? 100.0 * (double)shown_flat / (double)total : 0.0,
           fmt_value(b, sizeof b, total, o->index));
    printf("%12s %7s %7s %12s %7s  %s\n", "flat", "flat%", "sum%", "cum", "cum%", report_by_names[o->by]);
    double sum = 0;
    for (size_t i = 0; i < shown; i++) {
        const struct row *r = &rows->v[i];
        double pf = total ? 100.0 * (double)r->flat[o->index] / (double)total : 0;
        double pc = total ? 100.0 * (double)r->cum[o->index] / (double)total : 0;
        sum += pf;
        printf("%12s %6.2f%% %6.2f%% %12s %6.2f%%  %s\n", fmt_value(a, sizeof a, r->flat[o->index], o->index), pf,
               sum, fmt_value(c, sizeof c, r->cum[o->index], o->index), pc, row_name(r, o->by, name, sizeof name));
    }
}

static void print_json(const struct profile *p, struct rows *rows, const struct report_opts *o)
{
    struct json j;
    json_init(&j, stdout);
    json_begin_object(&j);
    json_key(&j, "db");
    json_str(&j, p->db->path);
    json_key(&j, "snapshot");
    json_int(&j, p->snapshot);
    json_key(&j, "label");
    json_str(&j, p->label);
    json_key(&j, "sample_rate");
    json_int(&j, p->sample_rate);
    json_key(&j, "sample_index");
    json_str(&j, value_names[o->index]);
    json_key(&j, "by");
    json_str(&j, report_by_names[o->by]);
    json_key(&j, "mode");
    json_str(&j, p->mode);
    json_key(&j, "total");
    values_json_known(&j, p->total, p->marked);
    json_key(&j, "rows");
    json_begin_array(&j);
    for (size_t i = 0; i < rows->nr && i < o->nodecount; i++) {
        json_begin_object(&j);
        row_json_identity(&j, &rows->v[i], o->by);
        json_key(&j, "flat");
        values_json_known(&j, rows->v[i].flat, p->marked);
        json_key(&j, "cum");
        values_json_known(&j, rows->v[i].cum, p->marked);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_end_object(&j);
    json_finish(&j);
}

int cmd_top(int argc, char **argv)
{
    struct report_opts o;
    report_opts_init(&o);
    const struct opt opts[] = {
        OPT_SAMPLE_INDEX(&o.index, SAMPLE_INDEX_HELP),
        OPT_REPORT_BY(&o.by),
        OPT_BOOL(0, "cum", &o.cum, "sort by cumulative value (the site and what it calls)"),
        OPT_NODECOUNT(&o.nodecount),
        OPT_JSON(&o.json),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_top, 0);
    report_opts_finish(&o);
    if (argc > 1)
        die_with_usage(opts, &usage_top, "too many arguments");
    if (o.by == BY_TYPE)
        return top_by_type(argc ? argv[0] : "latest", &o);
    int64_t snap;
    struct hwdb *db = db_open_snapshot_spec(argc ? argv[0] : "latest", &snap);
    struct symcache *sc = symcache_open(db);
    struct profile p;
    profile_load(&p, db, sc, snap);
    profile_require_index(&p, o.index);
    struct rows rows = { 0 };
    report_aggregate(&p, o.by, &rows);
    report_sort(&rows, o.index, o.cum);
    if (o.json)
        print_json(&p, &rows, &o);
    else
        print_text(&p, &rows, &o);
    warn_missing_debug(sc);
    report_rows_release(&rows);
    profile_release(&p);
    symcache_close(sc);
    return 0;
}
