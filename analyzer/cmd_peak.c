/* This file implements `heapwatch peak`: when the heap in use was largest, from the event
 * log, and who held it at that moment (the rows of `top --at peak`). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd.h"
#include "eventlog.h"
#include "evprofile.h"
#include "options.h"
#include "report.h"
#include "symcache.h"
#include "top_report.h"
#include "usage.h"

static const struct cmd_usage usage_peak = {
    "peak", "[DB]", "When the heap in use peaked, and who held it then, from the event log\n"
    "(HEAPWATCH_EVENTS=1): exact in full mode, an estimate in sampled mode (where the largest\n"
    "of many estimates leans high).",
    "DB defaults to the newest heapwatch.*.db in the current directory.", NULL,
};

/* The snapshots just before and just after t (0: none). */
static void around(struct hwdb *db, int64_t t, int64_t *before, int64_t *after)
{
    size_t nr;
    int64_t *ids = db_snapshot_ids(db, &nr);
    *before = *after = 0;
    for (size_t i = 0; i < nr; i++) {
        struct snapshot_info si;
        if (!db_snapshot_info(db, ids[i], &si))
            continue;
        if (si.time_ns <= t)
            *before = ids[i];
        else if (!*after)
            *after = ids[i];
        snapshot_info_release(&si);
    }
    free(ids);
}

static void print_peak_text(const struct ev_peak *pk, const struct ev_stats *st, int index, int64_t before,
                            int64_t after)
{
    char a[32], b[32], when[64];
    time_t secs = (time_t)(pk->time_ns / 1000000000);
    struct tm tm;
    localtime_r(&secs, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    printf("Peak of %s: %s in %s objects at %.3fs (%s.%03lld)", value_names[index],
           fmt_value(a, sizeof a, llround(pk->bytes), V_INUSE_SPACE),
           fmt_value(b, sizeof b, llround(pk->objects), V_INUSE_OBJECTS),
           (double)(pk->time_ns - st->first_ns) / 1e9, when, (long long)(pk->time_ns / 1000000 % 1000));
    if (before && after)
        printf(", between snapshots %lld and %lld\n", (long long)before, (long long)after);
    else if (before)
        printf(", after snapshot %lld\n", (long long)before);
    else if (after)
        printf(", before snapshot %lld\n", (long long)after);
    else
        printf("\n");
}

int cmd_peak(int argc, char **argv)
{
    struct report_opts o;
    report_opts_init(&o);
    const struct opt opts[] = {
        OPT_SAMPLE_INDEX(&o.index, "inuse_space (default) or inuse_objects: what peaks"),
        OPT_REPORT_BY(&o.by),
        OPT_BOOL(0, "cum", &o.cum, "sort by cumulative value (the site and what it calls)"),
        OPT_NODECOUNT(&o.nodecount),
        OPT_JSON(&o.json),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_peak, 0);
    report_opts_finish(&o);
    if (o.index != V_INUSE_SPACE && o.index != V_INUSE_OBJECTS)
        die_with_usage(opts, &usage_peak, "the peak is of inuse_space or inuse_objects, not %s", value_names[o.index]);
    if (o.by == BY_TYPE)
        die_with_usage(opts, &usage_peak, "--by type reports a snapshot's heap walk; the peak comes from the event log");
    struct hwdb *db = open_db_operand(argc, argv, opts, &usage_peak);
    struct ev_peak pk;
    ev_find_peak(db, o.index, &pk);
    struct ev_stats st;
    ev_log_extent(db, &st);
    int64_t before, after;
    around(db, pk.time_ns, &before, &after);
    struct symcache *sc = symcache_open(db);
    struct profile p;
    profile_load_at(&p, db, sc, pk.time_ns, pk.events, "peak");
    struct rows rows = { 0 };
    report_aggregate(&p, o.by, &rows);
    report_sort(&rows, o.index, o.cum);
    if (o.json) {
        struct json j;
        json_init(&j, stdout);
        json_begin_object(&j);
        json_key(&j, "peak");
        json_begin_object(&j);
        json_key(&j, "time_ns"); json_int(&j, pk.time_ns);
        json_key(&j, "offset_ns"); json_int(&j, pk.time_ns - st.first_ns);
        json_key(&j, "inuse_space"); json_int(&j, llround(pk.bytes));
        json_key(&j, "inuse_objects"); json_int(&j, llround(pk.objects));
        json_key(&j, "events_before"); json_int(&j, pk.events);
        json_key(&j, "snapshot_before"); before ? json_int(&j, before) : json_null(&j);
        json_key(&j, "snapshot_after"); after ? json_int(&j, after) : json_null(&j);
        json_end_object(&j);
        top_json_fields(&j, &p, &rows, &o);
        json_end_object(&j);
        json_finish(&j);
    } else {
        print_peak_text(&pk, &st, o.index, before, after);
        top_print_text(&p, &rows, &o);
    }
    warn_missing_debug(sc);
    report_rows_release(&rows);
    profile_release(&p);
    symcache_close(sc);
    db_close(db);
    return 0;
}
