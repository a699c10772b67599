/* This file implements `heapwatch ls`: the snapshots of a database. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd.h"
#include "options.h"
#include "report.h"
#include "usage.h"

static const char usage_ls[] = "usage: heapwatch ls [DB] [--json]";

int cmd_ls(int argc, char **argv)
{
    struct report_opts o;
    int first = report_opts_parse(&o, argc, argv, usage_ls);
    if (argc - first > 1)
        die_usage(usage_ls, "too many arguments");
    char *path = first < argc ? strdup(argv[first]) : db_default_path();
    struct hwdb *db = db_open(path);
    sqlite3_stmt *st = db_prepare(db,
        "SELECT s.id, s.time_ns, s.label, s.trigger, s.threads, s.live_objects, s.live_bytes, s.pause_ns, s.walk_ns,"
        " s.write_ns, coalesce(sum(c.alloc_objects - c.free_objects), 0), coalesce(sum(c.alloc_bytes - c.free_bytes), 0),"
        " coalesce(sum(c.alloc_objects), 0), coalesce(sum(c.alloc_bytes), 0), p.start_time_ns"
        " FROM snapshot s CROSS JOIN process p LEFT JOIN snapshot_stack c ON c.snapshot_id = s.id"
        " GROUP BY s.id ORDER BY s.id");
    struct json j;
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
        printf("%4s %9s %-9s %12s %10s %12s %12s %7s %8s  %s\n", "id", "time", "trigger", "live bytes", "live objs",
               "inuse (est)", "alloc (est)", "threads", "write ms", "label");
    }
    while (db_step(db, st)) {
        int64_t v[14];
        for (int i = 0; i < 14; i++)
            v[i] = sqlite3_column_int64(st, i);
        int64_t start = sqlite3_column_int64(st, 14);
        const char *label = (const char *)sqlite3_column_text(st, 2);
        const char *trigger = (const char *)sqlite3_column_text(st, 3);
        if (o.json) {
            json_begin_object(&j);
            json_key(&j, "id"); json_int(&j, v[0]);
            json_key(&j, "time_ns"); json_int(&j, v[1]);
            json_key(&j, "seconds_since_start"); json_double(&j, (double)(v[1] - start) / 1e9);
            json_key(&j, "label"); json_str(&j, label);
            json_key(&j, "trigger"); json_str(&j, trigger);
            json_key(&j, "threads"); json_int(&j, v[4]);
            json_key(&j, "live_objects"); json_int(&j, v[5]);
            json_key(&j, "live_bytes"); json_int(&j, v[6]);
            json_key(&j, "pause_ns"); json_int(&j, v[7]);
            json_key(&j, "walk_ns"); json_int(&j, v[8]);
            json_key(&j, "write_ns"); json_int(&j, v[9]);
            json_key(&j, "inuse_objects"); json_int(&j, v[10]);
            json_key(&j, "inuse_space"); json_int(&j, v[11]);
            json_key(&j, "alloc_objects"); json_int(&j, v[12]);
            json_key(&j, "alloc_space"); json_int(&j, v[13]);
            json_end_object(&j);
        } else {
            char a[32], b[32], c[32];
            printf("%4lld %8.2fs %-9s %12s %10lld %12s %12s %7lld %8.1f  %s\n", (long long)v[0], (double)(v[1] - start) / 1e9,
                   trigger, fmt_value(a, sizeof a, v[6], V_INUSE_SPACE), (long long)v[5],
                   fmt_value(b, sizeof b, v[11], V_INUSE_SPACE), fmt_value(c, sizeof c, v[13], V_ALLOC_SPACE),
                   (long long)v[4], (double)v[9] / 1e6, label ? label : "");
        }
    }
    sqlite3_finalize(st);
    if (o.json) {
        json_end_array(&j);
        json_end_object(&j);
        json_finish(&j);
    }
    db_close(db);
    free(path);
    return 0;
}
