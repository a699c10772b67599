/* This file implements `heapwatch ls`: the snapshots of a database. In text, "leaked" is
 * every unreachable byte (direct and indirect leaks, as LeakSanitizer's summary counts them)
 * and "-" when the snapshot had no heap walk; JSON keeps the snapshot table's columns. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd.h"
#include "db.h"
#include "json.h"
#include "options.h"
#include "report.h"
#include "usage.h"

static const struct cmd_usage usage_ls = {
    "ls", "[DB]", "The snapshots of a database: time, trigger, label, live bytes and objects, estimated inuse\n"
    "and alloc, reachable and leaked bytes, threads, pause and write time; and where snapshots\n"
    "were lost (a full disk).",
    "DB defaults to the newest heapwatch.*.db in the current directory.", NULL,
};

/* The listing under way: its options and output, and the gaps not printed yet. */
struct listing {
    struct hwdb *db;
    const struct report_opts *o;
    struct json *j;
    const struct db_gap *gaps;
    size_t nr_gaps, next_gap;
};

/* In text, the gaps before snapshot id, where they happened. */
static void print_gaps_before(struct listing *l, int64_t id)
{
    for (; l->next_gap < l->nr_gaps && l->gaps[l->next_gap].after < id; l->next_gap++)
        printf("     -- %lld snapshot(s) taken here could not be written (%s)\n",
               (long long)l->gaps[l->next_gap].lost, l->gaps[l->next_gap].reason);
}

static int list_one(void *ctx, const struct db_snapshot_totals *t)
{
    struct listing *l = ctx;
    struct json *j = l->j;
    int64_t id = t->id, start = t->process_start_ns;
    struct snapshot_info si;
    if (!db_snapshot_info(l->db, id, &si))
        return 0;   /* cannot happen inside one read transaction */
    if (l->o->json) {
        json_begin_object(j);
        json_key(j, "id"); json_int(j, id);
        json_key(j, "seconds_since_start"); json_double(j, (double)(si.time_ns - start) / 1e9);
        snapshot_info_json(j, &si);
        json_key(j, "inuse_objects"); json_int(j, t->inuse_objects);
        json_key(j, "inuse_space"); json_int(j, t->inuse_bytes);
        json_key(j, "alloc_objects"); json_int(j, t->alloc_objects);
        json_key(j, "alloc_space"); json_int(j, t->alloc_bytes);
        json_end_object(j);
    } else {
        char a[32], b[32], c[32], d[32] = "-", e[32] = "-";
        print_gaps_before(l, id);
        if (si.marked) {
            fmt_value(d, sizeof d, si.reachable_bytes, V_INUSE_SPACE);
            fmt_value(e, sizeof e, si.leaked_bytes + si.indirect_bytes, V_INUSE_SPACE);
        }
        /* The label last, and nothing after the pause columns when there is none (no trailing
         * blanks). */
        printf("%4lld %8.2fs %-9s %12s %10lld %12s %12s %12s %12s %7lld %8.1f %8.1f%s%s\n", (long long)id,
               (double)(si.time_ns - start) / 1e9, si.trigger, fmt_value(a, sizeof a, si.live_bytes, V_INUSE_SPACE),
               (long long)si.live_objects, fmt_value(b, sizeof b, t->inuse_bytes, V_INUSE_SPACE),
               fmt_value(c, sizeof c, t->alloc_bytes, V_ALLOC_SPACE), d, e, (long long)si.threads,
               (double)si.pause_ns / 1e6, (double)si.write_ns / 1e6, si.label && *si.label ? "  " : "",
               si.label ? si.label : "");
    }
    snapshot_info_release(&si);
    return 0;
}

int cmd_ls(int argc, char **argv)
{
    struct report_opts o;
    report_opts_init(&o);
    const struct opt opts[] = {
        OPT_JSON(&o.json),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_ls, 0);
    struct hwdb *db = open_db_operand(argc, argv, opts, &usage_ls);
    size_t nr_gaps;
    struct db_gap *gaps;
    if (db_gaps(db, &gaps, &nr_gaps) < 0)
        exit(EXIT_INPUT);
    struct json j;
    struct listing l = { db, &o, &j, gaps, nr_gaps, 0 };
    char rate[96];
    if (o.json) {
        json_init(&j, stdout);
        json_begin_object(&j);
        json_key(&j, "db"); json_str(&j, db->path);
        json_key(&j, "pid"); json_int(&j, db->pid);
        json_key(&j, "cmdline"); json_str(&j, db->cmdline);
        json_key(&j, "sample_rate"); json_int(&j, db->sample_rate);
        json_key(&j, "snapshots");
        json_begin_array(&j);
    } else {
        printf("%s: pid %d, %s\n  %s\n", db->path, db->pid, db->cmdline, report_rate_text(db->sample_rate, rate, sizeof rate));
        printf("%4s %9s %-9s %12s %10s %12s %12s %12s %12s %7s %8s %8s  %s\n", "id", "time", "trigger", "live bytes",
               "live objs", "inuse (est)", "alloc (est)", "reachable", "leaked", "threads", "pause ms", "write ms", "label");
    }
    if (db_each_snapshot_totals(db, list_one, &l) < 0)
        exit(EXIT_INPUT);
    if (!o.json)
        print_gaps_before(&l, INT64_MAX);
    if (o.json) {
        json_end_array(&j);
        json_key(&j, "gaps");
        json_begin_array(&j);
        for (size_t i = 0; i < nr_gaps; i++) {
            json_begin_object(&j);
            json_key(&j, "after_snapshot"); json_int(&j, gaps[i].after);
            json_key(&j, "lost"); json_int(&j, gaps[i].lost);
            json_key(&j, "first_time_ns"); json_int(&j, gaps[i].first_ns);
            json_key(&j, "last_time_ns"); json_int(&j, gaps[i].last_ns);
            json_key(&j, "reason"); json_str(&j, gaps[i].reason);
            json_end_object(&j);
        }
        json_end_array(&j);
        json_end_object(&j);
        json_finish(&j);
    }
    db_gaps_release(gaps, nr_gaps);
    db_close(db);
    return 0;
}
