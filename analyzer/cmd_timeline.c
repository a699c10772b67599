/* This file implements `heapwatch timeline`: memory in use over the run, from the event log,
 * at evenly spaced moments (or after every event), in total and for the sites that held the
 * most at some moment. One pass over the log keeps each stack's value at each moment; the
 * sites come from aggregating those stacks moment by moment, as `top` does. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../schema/chunk.h"
#include "cmd.h"
#include "eventlog.h"
#include "hmap.h"
#include "options.h"
#include "report.h"
#include "symcache.h"
#include "usage.h"

#define BAR_WIDTH 50
#define MAX_POINTS 100000

static const struct cmd_usage usage_timeline = {
    "timeline", "[DB]", "Memory in use over the run, from the event log (HEAPWATCH_EVENTS=1): in total and for\n"
    "the sites that held the most, at evenly spaced moments or after every event. Exact in full\n"
    "mode, an unbiased estimate in sampled mode.",
    "DB defaults to the newest heapwatch.*.db in the current directory.", NULL,
};

struct stack_series {
    int64_t stack;
    double objects, bytes;   /* now */
    double *values;          /* at each point, of the chosen sample index */
};

struct timeline {
    int index;               /* V_INUSE_SPACE or V_INUSE_OBJECTS */
    size_t points, next;     /* points; the next one to fill */
    int64_t first_ns, span_ns;
    double objects, bytes;   /* in use now, in total */
    double *total_objects, *total_bytes;
    struct hmap stacks;      /* stack id -> struct stack_series */
    bool every_change;
    struct json *j;          /* --every-change --json: the open points array (text: printed as it goes) */
};

static int64_t point_time(const struct timeline *t, size_t k)
{
    return t->first_ns + (int64_t)((double)t->span_ns * (double)(k + 1) / (double)t->points);
}

static void fill_point(struct timeline *t, size_t k)
{
    t->total_objects[k] = t->objects;
    t->total_bytes[k] = t->bytes;
    HMAP_FOR_EACH(&t->stacks, i) {
        struct stack_series *s = t->stacks.vals[i];
        s->values[k] = t->index == V_INUSE_OBJECTS ? s->objects : s->bytes;
    }
}

static struct stack_series *series_of(struct timeline *t, int64_t stack)
{
    /* Stack ids start at 1: key 0 never comes (the shim logs sampled blocks only). */
    struct stack_series *s = hmap_get(&t->stacks, (uint64_t)stack);
    if (!s) {
        s = xcalloc(1, sizeof *s);
        s->stack = stack;
        s->values = xcalloc(t->points ? t->points : 1, sizeof *s->values);
        hmap_put(&t->stacks, (uint64_t)stack, s);
    }
    return s;
}

static void print_change(struct timeline *t, int64_t time_ns)
{
    if (t->j) {
        json_begin_object(t->j);
        json_key(t->j, "time_ns"); json_int(t->j, time_ns);
        json_key(t->j, "offset_ns"); json_int(t->j, time_ns - t->first_ns);
        json_key(t->j, "inuse_objects"); json_int(t->j, llround(t->objects));
        json_key(t->j, "inuse_space"); json_int(t->j, llround(t->bytes));
        json_end_object(t->j);
    } else {
        char a[32];
        printf("%12.6fs %12s\n", (double)(time_ns - t->first_ns) / 1e9,
               fmt_value(a, sizeof a, llround(t->index == V_INUSE_OBJECTS ? t->objects : t->bytes), t->index));
    }
}

static int on_event(void *ctx, const struct ev_event *e)
{
    struct timeline *t = ctx;
    if (!t->every_change)
        while (t->next < t->points && e->time_ns > point_time(t, t->next))
            fill_point(t, t->next++);
    double sign = e->op == HW_EV_ALLOC ? 1 : -1;
    t->objects += sign * e->objects;
    t->bytes += sign * e->bytes;
    if (t->every_change) {
        print_change(t, e->time_ns);
        return 0;
    }
    struct stack_series *s = series_of(t, e->stack);
    s->objects += sign * e->objects;
    s->bytes += sign * e->bytes;
    return 0;
}

/* ---- sites ------------------------------------------------------------------------------- */

struct site {
    uint64_t key;
    const char *function, *file;
    int line;
    int64_t peak;
    int64_t *values;
};

static int cmp_series(const void *a, const void *b)
{
    const struct stack_series *x = *(struct stack_series *const *)a, *y = *(struct stack_series *const *)b;
    return (x->stack > y->stack) - (x->stack < y->stack);
}

static int cmp_site_peak(const void *a, const void *b)
{
    const struct site *x = a, *y = b;
    if (x->peak != y->peak)
        return x->peak > y->peak ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

/* The profile's sample values at point k, aggregated by site into rows. */
static void rows_at(struct profile *p, struct stack_series **ss, const struct timeline *t, size_t k,
                    enum report_by by, struct rows *rows)
{
    for (size_t i = 0; i < p->nr; i++)
        p->samples[i].v[t->index] = llround(ss[i]->values[k]);
    memset(rows, 0, sizeof *rows);
    report_aggregate(p, by, rows);
}

/* The top sites by their largest value at any point, each with its values at every point. */
static struct site *top_sites(struct hwdb *db, struct symcache *sc, struct timeline *t, enum report_by by,
                              size_t top, size_t *nr_out)
{
    size_t n = t->stacks.nr;
    struct stack_series **ss = xmalloc((n ? n : 1) * sizeof *ss);
    size_t m = 0;
    HMAP_FOR_EACH(&t->stacks, i)
        ss[m++] = t->stacks.vals[i];
    qsort(ss, m, sizeof *ss, cmp_series);
    struct profile p = { .db = db, .sc = sc, .sample_rate = db->sample_rate };
    int64_t zero[NV] = { 0 };
    for (size_t i = 0; i < m; i++)
        profile_add_values(&p, 0, ss[i]->stack, zero);
    profile_sort(&p);   /* samples now line up with ss, both by stack id */
    struct site *sites = NULL;
    size_t nr = 0, alloc = 0;
    struct hmap index = { 0 };   /* row key -> site index + 1 */
    for (size_t k = 0; k < t->points; k++) {
        struct rows rows;
        rows_at(&p, ss, t, k, by, &rows);
        for (size_t r = 0; r < rows.nr; r++) {
            const struct row *row = &rows.v[r];
            uintptr_t at = (uintptr_t)hmap_get(&index, row->key);
            if (!at) {
                ALLOC_GROW(sites, nr + 1, alloc);
                sites[nr] = (struct site){ row->key, row->function, row->file, row->line, 0, NULL };
                at = ++nr;
                hmap_put(&index, row->key, (void *)at);
            }
            if (row->flat[t->index] > sites[at - 1].peak)
                sites[at - 1].peak = row->flat[t->index];
        }
        report_rows_release(&rows);
    }
    if (nr)
        qsort(sites, nr, sizeof *sites, cmp_site_peak);
    while (nr && sites[nr - 1].peak <= 0)
        nr--;   /* sites that never held anything at a point */
    if (nr > top)
        nr = top;
    for (size_t s = 0; s < nr; s++)
        sites[s].values = xcalloc(t->points ? t->points : 1, sizeof *sites[s].values);
    for (size_t k = 0; k < t->points && nr; k++) {
        struct rows rows;
        rows_at(&p, ss, t, k, by, &rows);
        for (size_t s = 0; s < nr; s++) {
            struct row *row = report_find(&rows, sites[s].key);
            sites[s].values[k] = row ? row->flat[t->index] : 0;
        }
        report_rows_release(&rows);
    }
    hmap_clear(&index);
    profile_release(&p);
    free(ss);
    *nr_out = nr;
    return sites;
}

/* ---- output ------------------------------------------------------------------------------ */

static void print_text(struct hwdb *db, const struct timeline *t, const struct ev_stats *st, struct site *sites,
                       size_t nr, enum report_by by)
{
    char a[32], name[4096];
    const double *total = t->index == V_INUSE_OBJECTS ? t->total_objects : t->total_bytes;
    double max = 0;
    for (size_t k = 0; k < t->points; k++)
        max = total[k] > max ? total[k] : max;
    printf("Timeline of %s (%s): %s over %.3fs, %zu points, %s\n", db->path, db->cmdline, value_names[t->index],
           (double)t->span_ns / 1e9, t->points, report_rate_text(db->sample_rate, a, sizeof a));
    printf("Event log: %lld events in %lld chunk%s%s; %s\n", (long long)st->events, (long long)st->chunks,
           st->chunks == 1 ? "" : "s",
           db->sample_rate <= 1 ? " (every allocation: exact)" : " (sampled: estimates)",
           st->complete ? "complete (the process exited)"
                        : "it ends without the process's exit (killed, or still running: the last second's"
                          " events may be missing)");
    printf("%12s %12s  each mark is %s; a letter is a site below, '.' the rest\n", "time", value_names[t->index],
           fmt_value(a, sizeof a, llround(max / BAR_WIDTH), t->index));
    for (size_t k = 0; k < t->points; k++) {
        char bar[BAR_WIDTH + 1];
        size_t used = 0;
        double shown = 0;
        for (size_t s = 0; s < nr && s < 26; s++) {
            shown += (double)sites[s].values[k];
            size_t upto = max > 0 ? (size_t)llround(shown / max * BAR_WIDTH) : 0;
            while (used < upto && used < BAR_WIDTH)
                bar[used++] = (char)('A' + s);
        }
        size_t all = max > 0 ? (size_t)llround(total[k] / max * BAR_WIDTH) : 0;
        while (used < all && used < BAR_WIDTH)
            bar[used++] = '.';
        bar[used] = '\0';
        printf("%11.3fs %12s  %s\n", (double)(point_time(t, k) - t->first_ns) / 1e9,
               fmt_value(a, sizeof a, llround(total[k]), t->index), bar);
    }
    if (nr)
        printf("Sites, by the most each held at a point:\n");
    for (size_t s = 0; s < nr; s++) {
        struct row r = { .key = sites[s].key, .function = sites[s].function, .file = sites[s].file, .line = sites[s].line };
        printf("  %c %12s  %s\n", s < 26 ? (char)('A' + s) : ' ', fmt_value(a, sizeof a, sites[s].peak, t->index),
               row_name(&r, by, name, sizeof name));
    }
    if (st->unmatched_frees)
        printf("(%lld frees of blocks allocated before the log began were left out)\n", (long long)st->unmatched_frees);
}

static void print_json(struct hwdb *db, const struct timeline *t, const struct ev_stats *st, struct site *sites,
                       size_t nr, enum report_by by)
{
    struct json j;
    json_init(&j, stdout);
    json_begin_object(&j);
    json_key(&j, "db"); json_str(&j, db->path);
    json_key(&j, "sample_rate"); json_int(&j, db->sample_rate);
    json_key(&j, "sample_index"); json_str(&j, value_names[t->index]);
    json_key(&j, "by"); json_str(&j, report_by_names[by]);
    json_key(&j, "first_ns"); json_int(&j, t->first_ns);
    json_key(&j, "span_ns"); json_int(&j, t->span_ns);
    json_key(&j, "log");
    json_begin_object(&j);
    json_key(&j, "chunks"); json_int(&j, st->chunks);
    json_key(&j, "events"); json_int(&j, st->events);
    json_key(&j, "unmatched_frees"); json_int(&j, st->unmatched_frees);
    json_key(&j, "late"); json_int(&j, st->late);
    json_key(&j, "complete"); json_bool(&j, st->complete);
    json_end_object(&j);
    json_key(&j, "points");
    json_begin_array(&j);
    for (size_t k = 0; k < t->points; k++) {
        json_begin_object(&j);
        json_key(&j, "time_ns"); json_int(&j, point_time(t, k));
        json_key(&j, "offset_ns"); json_int(&j, point_time(t, k) - t->first_ns);
        json_key(&j, "inuse_objects"); json_int(&j, llround(t->total_objects[k]));
        json_key(&j, "inuse_space"); json_int(&j, llround(t->total_bytes[k]));
        json_end_object(&j);
    }
    json_end_array(&j);
    json_key(&j, "sites");
    json_begin_array(&j);
    for (size_t s = 0; s < nr; s++) {
        json_begin_object(&j);
        struct row r = { .key = sites[s].key, .function = sites[s].function, .file = sites[s].file, .line = sites[s].line };
        row_json_identity(&j, &r, by);
        json_key(&j, "peak"); json_int(&j, sites[s].peak);
        json_key(&j, "values");
        json_begin_array(&j);
        for (size_t k = 0; k < t->points; k++)
            json_int(&j, sites[s].values[k]);
        json_end_array(&j);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_end_object(&j);
    json_finish(&j);
}

static const char *parse_count(const char *arg, size_t *out, size_t max)
{
    char *end;
    unsigned long long v = strtoull(arg, &end, 10);
    if (end == arg || *end || *arg == '-' || !v || v > max)
        return "expected a number from 1 to the limit";
    *out = (size_t)v;
    return NULL;
}

static const char *parse_points(const struct opt *opt, const char *arg)
{
    return parse_count(arg, opt->value, MAX_POINTS) ? xasprintf("--points: expected 1 to %d, not '%s'", MAX_POINTS, arg)
                                                     : NULL;
}

static const char *parse_top(const struct opt *opt, const char *arg)
{
    return parse_count(arg, opt->value, 26) ? xasprintf("--top: expected 1 to 26, not '%s'", arg) : NULL;
}

int cmd_timeline(int argc, char **argv)
{
    struct report_opts o;
    report_opts_init(&o);
    o.by = BY_FUNCTION;
    size_t points = 24, top = 5;
    bool every = false;
    const struct opt opts[] = {
        OPT_SAMPLE_INDEX(&o.index, "inuse_space (default) or inuse_objects: what is charted"),
        OPT_REPORT_BY(&o.by),
        OPT_CALLBACK(0, "points", &points, "N", "moments charted, evenly spaced over the log (default 24)", parse_points),
        OPT_CALLBACK(0, "top", &top, "N", "sites charted apart, by the most each held (default 5, at most 26)",
                     parse_top),
        OPT_BOOL(0, "every-change", &every, "the total after every event instead (no sites)"),
        OPT_JSON(&o.json),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_timeline, 0);
    if (o.index != V_INUSE_SPACE && o.index != V_INUSE_OBJECTS)
        die_with_usage(opts, &usage_timeline, "a timeline charts inuse_space or inuse_objects, not %s",
                       value_names[o.index]);
    if (o.by != BY_FUNCTION && o.by != BY_LINE)
        die_with_usage(opts, &usage_timeline, "a timeline groups sites --by function or --by line");
    struct hwdb *db = open_db_operand(argc, argv, opts, &usage_timeline);
    ev_require_log(db, "a timeline");
    struct ev_stats st;
    ev_log_extent(db, &st);
    struct timeline t = { .index = o.index, .points = every ? 0 : points, .first_ns = st.first_ns,
                          .span_ns = st.last_ns - st.first_ns, .every_change = every };
    t.total_objects = xcalloc(points, sizeof *t.total_objects);
    t.total_bytes = xcalloc(points, sizeof *t.total_bytes);
    struct json j;
    if (every && o.json) {
        json_init(&j, stdout);
        json_begin_object(&j);
        json_key(&j, "db"); json_str(&j, db->path);
        json_key(&j, "first_ns"); json_int(&j, t.first_ns);
        json_key(&j, "points");
        json_begin_array(&j);
        t.j = &j;
    } else if (every) {
        printf("%12s %12s\n", "time", value_names[o.index]);
    }
    ev_replay(db, on_event, &t, &st);
    if (every) {
        if (o.json) {
            json_end_array(&j);
            json_end_object(&j);
            json_finish(&j);
        }
    } else {
        while (t.next < t.points)
            fill_point(&t, t.next++);
        struct symcache *sc = symcache_open(db);
        size_t nr;
        struct site *sites = top_sites(db, sc, &t, o.by, top, &nr);
        if (o.json)
            print_json(db, &t, &st, sites, nr, o.by);
        else
            print_text(db, &t, &st, sites, nr, o.by);
        warn_missing_debug(sc);
        for (size_t s = 0; s < nr; s++)
            free(sites[s].values);
        free(sites);
        symcache_close(sc);
    }
    HMAP_FOR_EACH(&t.stacks, i) {
        struct stack_series *s = t.stacks.vals[i];
        free(s->values);
        free(s);
    }
    hmap_clear(&t.stacks);
    free(t.total_objects);
    free(t.total_bytes);
    db_close(db);
    return 0;
}
