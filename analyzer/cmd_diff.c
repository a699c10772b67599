/* This file implements `heapwatch diff A B`: what grew and shrank between two snapshots, by
 * site (--by owner: group_diff.c). Each row is B - A of the same key; rows are sorted by the
 * size of the change. When both snapshots had a heap walk, each row also carries the
 * unreachable (leaked) objects and bytes of its site (flat) in A and in B; otherwise those
 * are null in JSON and left out of the text. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmd.h"
#include "evprofile.h"
#include "group_reports.h"
#include "groupings.h"
#include "options.h"
#include "report.h"
#include "symcache.h"
#include "usage.h"

static const struct cmd_usage usage_diff = {
    "diff", "SNAP_A SNAP_B", "What grew and shrank between two snapshots: rows are B - A by site, with each site's\n"
    "leaked bytes in A and B; or, with --by owner, by the variables that retain the memory\n"
    "(and unreachable memory by site), with their bytes and objects in A and B.",
    "A snapshot is [DB:]ID: ID is a number, first, latest or -N; DB defaults to the newest\n"
    "heapwatch.*.db here. The two may come from different databases. With --moments, A and B\n"
    "are moments of the event log instead, [DB:]WHEN: peak, a time since its start (2.5s,\n"
    "300ms), @SECONDS since the epoch, or a snapshot's moment.", NULL,
};

struct side {
    struct hwdb *db;
    struct symcache *sc;
    struct profile p;
    struct rows rows;
};

/* A moment's database: the DB: prefix of [DB:]WHEN when it names a file, else the default;
 * *when is the rest. */
static struct hwdb *moment_db(const char *spec, const char **when)
{
    const char *colon = strrchr(spec, ':');
    char *path = colon ? xstrndup(spec, (size_t)(colon - spec)) : NULL;
    if (path && access(path, F_OK) == 0) {
        *when = colon + 1;
    } else {
        free(path);
        path = db_default_path();
        *when = spec;
    }
    struct hwdb *db = db_open(path);
    free(path);
    return db;
}

/* Load one side; a second side in the same database as `other` shares its symcache. */
static void load_side(struct side *s, const char *spec, const struct report_opts *o, bool moments,
                      const struct side *other)
{
    int64_t snap = 0;
    const char *when = NULL;
    if (moments)
        s->db = moment_db(spec, &when);
    else
        s->db = db_open_snapshot_spec(spec, &snap);
    if (other && other->db == s->db) {
        s->sc = other->sc;
        symcache_forget_missing_debug(s->sc);   /* the warning is about this side's stacks */
    } else {
        s->sc = symcache_open(s->db);
    }
    if (moments) {
        char *label;
        int64_t max_events, t = ev_resolve_at(s->db, when, &label, &max_events);
        profile_load_at(&s->p, s->db, s->sc, t, max_events, label);
        free(label);
    } else {
        profile_load(&s->p, s->db, s->sc, snap);
        if (VALUE_NEEDS_EVENTS(o->index))
            profile_add_temporaries(&s->p, true);
    }
    profile_require_index(&s->p, o->index);
    memset(&s->rows, 0, sizeof s->rows);
    report_aggregate(&s->p, o->by, &s->rows);
}

/* "3" for a snapshot, the moment's label ("peak", "2.5s") for a moment of the event log. */
static void side_name(const struct side *s, char *buf, size_t size)
{
    if (s->p.snapshot)
        snprintf(buf, size, "%lld", (long long)s->p.snapshot);
    else
        snprintf(buf, size, "%s", s->p.label);
}

static void side_json(struct json *j, const struct side *s)
{
    json_begin_object(j);
    json_key(j, "db"); json_str(j, s->db->path);
    json_key(j, "snapshot");
    if (s->p.snapshot)
        json_int(j, s->p.snapshot);
    else
        json_null(j);
    if (!s->p.snapshot) {   /* a moment of the event log */
        json_key(j, "label"); json_str(j, s->p.label);
        json_key(j, "time_ns"); json_int(j, s->p.time_ns);
    }
    json_key(j, "mode"); json_str(j, s->p.mode);
    json_key(j, "total"); values_json_known(j, s->p.total, profile_known(&s->p));
    json_end_object(j);
}

/* {"leaked_objects":N,"leaked_space":B} of the row with key on one side (0 when absent), or
 * null when that snapshot had no heap walk. */
static void side_leaks_json(struct json *j, struct side *s, uint64_t key)
{
    if (!s->p.marked) {
        json_null(j);
        return;
    }
    struct row *r = report_find(&s->rows, key);
    json_begin_object(j);
    json_key(j, "leaked_objects"); json_int(j, r ? r->flat[V_LEAKED_OBJECTS] : 0);
    json_key(j, "leaked_space"); json_int(j, r ? r->flat[V_LEAKED_SPACE] : 0);
    json_end_object(j);
}

static int64_t side_leaked_space(struct side *s, uint64_t key)
{
    struct row *r = report_find(&s->rows, key);
    return r ? r->flat[V_LEAKED_SPACE] : 0;
}

static void release_side(struct side *s, const struct side *other)
{
    report_rows_release(&s->rows);
    profile_release(&s->p);
    if (!other || s->sc != other->sc)
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
    report_opts_init(&o);
    bool moments = false;
    const struct opt opts[] = {
        OPT_SAMPLE_INDEX(&o.index, SAMPLE_INDEX_HELP),
        OPT_REPORT_BY_WALK(&o.by),
        OPT_BOOL(0, "moments", &moments, "A and B are moments of the event log (peak, 2.5s, @SECONDS, a snapshot)"),
        OPT_BOOL(0, "cum", &o.cum, "sort by the change of the cumulative value"),
        OPT_NODECOUNT(&o.nodecount),
        OPT_JSON(&o.json),
        OPT_BOOL(0, "exit-code", &o.exit_code, "exit 1 when the chosen value grew"),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_diff, 0);
    report_opts_finish(&o);
    if (argc != 2)
        die_with_usage(opts, &usage_diff, "diff needs two snapshots");
    if (moments && (grouping_of(o.by) || VALUE_NEEDS_WALK(o.index)))
        die_with_usage(opts, &usage_diff, "--moments diffs the event log, which has no heap walk: no --by %s, no %s",
                       report_by_names[o.by], value_names[o.index]);
    if (grouping_of(o.by)) {
        check_walk_options(opts, &usage_diff, &o);
        if (o.cum)
            die_with_usage(opts, &usage_diff, "--cum has no meaning with --by %s", report_by_names[o.by]);
        return diff_by_group(argv[0], argv[1], &o);
    }
    struct side a, b;
    load_side(&a, argv[0], &o, moments, NULL);
    load_side(&b, argv[1], &o, moments, &a);
    unsigned walked = profile_known(&a.p) & profile_known(&b.p);
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
        side_json(&j, &a);
        json_key(&j, "b");
        side_json(&j, &b);
        json_key(&j, "sample_index"); json_str(&j, value_names[o.index]);
        json_key(&j, "by"); json_str(&j, report_by_names[o.by]);
        json_key(&j, "delta"); values_json_known(&j, total, walked);
        json_key(&j, "rows");
        json_begin_array(&j);
        for (size_t i = 0; i < d.nr && i < o.nodecount; i++) {
            if (!d.v[i].flat[o.index] && !d.v[i].cum[o.index])
                continue;
            json_begin_object(&j);
            row_json_identity(&j, &d.v[i], o.by);
            json_key(&j, "flat"); values_json_known(&j, d.v[i].flat, walked);
            json_key(&j, "cum"); values_json_known(&j, d.v[i].cum, walked);
            json_key(&j, "a"); side_leaks_json(&j, &a, d.v[i].key);
            json_key(&j, "b"); side_leaks_json(&j, &b, d.v[i].key);
            json_end_object(&j);
        }
        json_end_array(&j);
        json_end_object(&j);
        json_finish(&j);
    } else {
        char na[64], nb[64];
        side_name(&a, na, sizeof na);
        side_name(&b, nb, sizeof nb);
        printf("Diff %s:%s -> %s:%s, %s: %s -> %s (%s%s)\n", a.db->path, na, b.db->path, nb,
               value_names[o.index], fmt_value(x, sizeof x, a.p.total[o.index], o.index),
               fmt_value(y, sizeof y, b.p.total[o.index], o.index), total[o.index] >= 0 ? "+" : "",
               fmt_value(z, sizeof z, total[o.index], o.index));
        if (walked & VALUES_WALKED)
            printf("%12s %12s %12s %12s  %s\n", "flat delta", "cum delta", "leaked A", "leaked B", report_by_names[o.by]);
        else
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
            if (walked & VALUES_WALKED) {
                char la[32], lb[32];
                fmt_value(la, sizeof la, side_leaked_space(&a, r->key), V_LEAKED_SPACE);
                fmt_value(lb, sizeof lb, side_leaked_space(&b, r->key), V_LEAKED_SPACE);
                printf("%12s %12s %12s %12s  %s\n", f1, f2, la, lb, row_name(r, o.by, name, sizeof name));
            } else {
                printf("%12s %12s  %s\n", f1, f2, row_name(r, o.by, name, sizeof name));
            }
        }
        if (!shown)
            printf("(no change)\n");
    }
    int rc = o.exit_code && total[o.index] > 0 ? EXIT_FINDINGS : 0;
    warn_missing_debug(b.sc);
    report_rows_release(&d);
    release_side(&b, &a);
    release_side(&a, NULL);
    return rc;
}
