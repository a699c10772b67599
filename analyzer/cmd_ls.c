/* This file implements `heapwatch ls`: the snapshots of a database. In text, "leaked" is
 * every unreachable byte (direct and indirect leaks, as LeakSanitizer's summary counts them)
 * and "-" when the snapshot had no heap walk; JSON keeps the snapshot table's columns. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd.h"
#include "options.h"
#include "report.h"
#include "usage.h"

static const struct cmd_usage usage_ls = {
    "ls", "[DB]", "The snapshots of a database: time, trigger, label, live bytes and objects, estimated inuse\n"
    "and alloc, reachable and leaked bytes, threads, pause and write time; and where snapshots\n"
    "were lost (a full disk).",
    "DB defaults to the newest heapwatch.*.db in the current directory.", NULL,
};

struct gap {
    int64_t after, lost, first_ns, last_ns;
    char *reason;
};

/* The gap table (schema 3): snapshots that could not be written, in order. */
static struct gap *load_gaps(struct hwdb *db, size_t *nr)
{
    struct gap *v = NULL;
    size_t alloc = 0;
    *nr = 0;
    if (db->version < 3)
        return NULL;
    sqlite3_stmt *st = db_prepare(db, "SELECT after_snapshot, lost, first_time_ns, last_time_ns, reason FROM gap"
                                      " ORDER BY after_snapshot");
    while (db_step(db, st)) {
        ALLOC_GROW(v, *nr + 1, alloc);
        const unsigned char *why = sqlite3_column_text(st, 4);
        v[(*nr)++] = (struct gap){ sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                   sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                                   xstrdup(why ? (const char *)why : "") };
    }
    sqlite3_finalize(st);
    return v;
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
    sqlite3_stmt *st = db_prepare(db,
        "SELECT s.id, coalesce(sum(c.alloc_objects - c.free_objects), 0), coalesce(sum(c.alloc_bytes - c.free_bytes), 0),"
        " coalesce(sum(c.alloc_objects), 0), coalesce(sum(c.alloc_bytes), 0), p.start_time_ns"
        " FROM snapshot s CROSS JOIN process p LEFT JOIN snapshot_stack c ON c.snapshot_id = s.id"
        " GROUP BY s.id ORDER BY s.id");
    size_t nr_gaps, next_gap = 0;
    struct gap *gaps = load_gaps(db, &nr_gaps);
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
        printf("%4s %9s %-9s %12s %10s %12s %12s %12s %12s %7s %8s %8s  %s\n", "id", "time", "trigger", "live bytes",
               "live objs", "inuse (est)", "alloc (est)", "reachable", "leaked", "threads", "pause ms", "write ms", "label");
    }
    while (db_step(db, st)) {
        int64_t id = sqlite3_column_int64(st, 0), v[4];
        for (int i = 0; i < 4; i++)
            v[i] = sqlite3_column_int64(st, 1 + i);
        int64_t start = sqlite3_column_int64(st, 5);
        struct snapshot_info si;
        if (!db_snapshot_info(db, id, &si))
            continue;   /* cannot happen inside one read transaction */
        for (; !o.json && next_gap < nr_gaps && gaps[next_gap].after < id; next_gap++)
            printf("     -- %lld snapshot(s) taken here could not be written (%s)\n", (long long)gaps[next_gap].lost,
                   gaps[next_gap].reason);
        if (o.json) {
            json_begin_object(&j);
            json_key(&j, "id"); json_int(&j, id);
            json_key(&j, "seconds_since_start"); json_double(&j, (double)(si.time_ns - start) / 1e9);
            snapshot_info_json(&j, &si);
            json_key(&j, "inuse_objects"); json_int(&j, v[0]);
            json_key(&j, "inuse_space"); json_int(&j, v[1]);
            json_key(&j, "alloc_objects"); json_int(&j, v[2]);
            json_key(&j, "alloc_space"); json_int(&j, v[3]);
            json_end_object(&j);
        } else {
            char a[32], b[32], c[32], d[32] = "-", e[32] = "-";
            if (si.marked) {
                fmt_value(d, sizeof d, si.reachable_bytes, V_INUSE_SPACE);
                fmt_value(e, sizeof e, si.leaked_bytes + si.indirect_bytes, V_INUSE_SPACE);
            }
            printf("%4lld %8.2fs %-9s %12s %10lld %12s %12s %12s %12s %7lld %8.1f %8.1f  %s\n", (long long)id,
                   (double)(si.time_ns - start) / 1e9, si.trigger, fmt_value(a, sizeof a, si.live_bytes, V_INUSE_SPACE),
                   (long long)si.live_objects, fmt_value(b, sizeof b, v[1], V_INUSE_SPACE),
                   fmt_value(c, sizeof c, v[3], V_ALLOC_SPACE), d, e, (long long)si.threads, (double)si.pause_ns / 1e6,
                   (double)si.write_ns / 1e6, si.label ? si.label : "");
        }
        snapshot_info_release(&si);
    }
    sqlite3_finalize(st);
    for (; !o.json && next_gap < nr_gaps; next_gap++)
        printf("     -- %lld snapshot(s) taken here could not be written (%s)\n", (long long)gaps[next_gap].lost,
               gaps[next_gap].reason);
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
    for (size_t i = 0; i < nr_gaps; i++)
        free(gaps[i].reason);
    free(gaps);
    db_close(db);
    return 0;
}
