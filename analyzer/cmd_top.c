/* This file implements `heapwatch top`: pprof's top report of one snapshot. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "evprofile.h"
#include "options.h"
#include "report.h"
#include "symcache.h"
#include "top_report.h"
#include "top_types.h"
#include "usage.h"

static const struct cmd_usage usage_top = {
    "top", "[SNAP]", "Who holds (inuse) or allocated (alloc) the most, by function, line or stack, with flat\n"
    "and cumulative values, as pprof's top; or what the heap walk found by type (--by type).\n"
    "With an event log (HEAPWATCH_EVENTS=1): at any moment (--at), and the temporary allocations\n"
    "(--sample-index temporary_objects or temporary_space).",
    SNAP_OPERAND_HELP " With --at, SNAP names\nthe database only.", NULL,
};

void top_print_text(const struct profile *p, struct rows *rows, const struct report_opts *o)
{
    char a[32], b[32], c[32], name[4096];
    int64_t total = p->total[o->index];
    if (p->snapshot)
        printf("Snapshot %lld of %s (%s%s%s), %s, %s\n", (long long)p->snapshot, p->db->path, p->trigger,
               *p->label ? ": " : "", p->label, value_names[o->index], report_rate_text(p->sample_rate, a, sizeof a));
    else
        printf("At %s of %s (from the event log), %s, %s\n", p->label, p->db->path, value_names[o->index],
               report_rate_text(p->sample_rate, a, sizeof a));
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
    top_json_fields(&j, p, rows, o);
    json_end_object(&j);
    json_finish(&j);
}

void top_json_fields(struct json *j, const struct profile *p, struct rows *rows, const struct report_opts *o)
{
    json_key(j, "db");
    json_str(j, p->db->path);
    json_key(j, "snapshot");
    if (p->snapshot)
        json_int(j, p->snapshot);
    else
        json_null(j);
    json_key(j, "label");
    json_str(j, p->label);
    if (!p->snapshot) {   /* a moment of the event log */
        json_key(j, "time_ns");
        json_int(j, p->time_ns);
    }
    json_key(j, "sample_rate");
    json_int(j, p->sample_rate);
    json_key(j, "sample_index");
    json_str(j, value_names[o->index]);
    json_key(j, "by");
    json_str(j, report_by_names[o->by]);
    json_key(j, "mode");
    json_str(j, p->mode);
    json_key(j, "total");
    values_json_known(j, p->total, profile_known(p));
    json_key(j, "rows");
    json_begin_array(j);
    for (size_t i = 0; i < rows->nr && i < o->nodecount; i++) {
        json_begin_object(j);
        row_json_identity(j, &rows->v[i], o->by);
        json_key(j, "flat");
        values_json_known(j, rows->v[i].flat, profile_known(p));
        json_key(j, "cum");
        values_json_known(j, rows->v[i].cum, profile_known(p));
        json_end_object(j);
    }
    json_end_array(j);
}

int cmd_top(int argc, char **argv)
{
    struct report_opts o;
    report_opts_init(&o);
    const char *at = NULL;
    const struct opt opts[] = {
        OPT_STRING(0, "at", &at, "WHEN", "the heap at a moment, from the event log: peak, a time since its start"
                   " (2.5s, 300ms) or a snapshot"),
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
    if (o.by == BY_TYPE) {
        if (at)
            die_with_usage(opts, &usage_top, "--by type reports a snapshot's heap walk: it takes no --at");
        return top_by_type(argc ? argv[0] : "latest", &o);
    }
    struct hwdb *db;
    struct profile p;
    struct symcache *sc;
    if (at) {
        if (VALUE_NEEDS_WALK(o.index))
            die_with_usage(opts, &usage_top, "--at reports from the event log, which has no %s: only a snapshot's"
                           " heap walk does", value_names[o.index]);
        db = open_db_operand(argc, argv, opts, &usage_top);
        char *label;
        int64_t max_events, t = ev_resolve_at(db, at, &label, &max_events);
        sc = symcache_open(db);
        profile_load_at(&p, db, sc, t, max_events, label);
        free(label);
    } else {
        int64_t snap;
        db = db_open_snapshot_spec(argc ? argv[0] : "latest", &snap);
        sc = symcache_open(db);
        profile_load(&p, db, sc, snap);
        if (VALUE_NEEDS_EVENTS(o.index))
            profile_add_temporaries(&p, true);
    }
    profile_require_index(&p, o.index);
    struct rows rows = { 0 };
    report_aggregate(&p, o.by, &rows);
    report_sort(&rows, o.index, o.cum);
    if (o.json)
        print_json(&p, &rows, &o);
    else
        top_print_text(&p, &rows, &o);
    warn_missing_debug(sc);
    report_rows_release(&rows);
    profile_release(&p);
    symcache_close(sc);
    return 0;
}
