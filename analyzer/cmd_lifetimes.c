/* This file implements `heapwatch lifetimes`: how long each site's allocations lived, from
 * the event log: the freed ones in a histogram by decade, their median and 90th percentile,
 * and those still live when the log ends. One pass keeps a histogram per stack; stacks are
 * then summed into sites as `top` groups them. */
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

/* Decades: below 1us, 10us, ... 10s, then 10s and more. */
#define DECADES 9
static const int64_t decade_below[DECADES - 1] = { 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
                                                   10000000000 };
static const char *const decade_names[DECADES] = { "<1us", "<10us", "<100us", "<1ms", "<10ms", "<100ms", "<1s",
                                                   "<10s", ">=10s" };
/* Fine buckets for the percentiles: 8 per doubling, from 1 ns to 2^48 ns (3 days). */
#define FINE_PER_OCTAVE 8
#define FINE (48 * FINE_PER_OCTAVE + 1)

static const struct cmd_usage usage_lifetimes = {
    "lifetimes", "[DB]", "How long each site's allocations lived, from the event log (HEAPWATCH_EVENTS=1): the\n"
    "freed ones by decade, their median and 90th percentile, and those still live at the log's end.\n"
    "Counts are exact in full mode and unbiased estimates in sampled mode; percentiles are within\n"
    "5% (they come from buckets of 2^(1/8)).",
    "DB defaults to the newest heapwatch.*.db in the current directory.", NULL,
};

struct hist {
    double decade[DECADES], fine[FINE];
    double freed, live, freed_bytes;
};

static int fine_bucket(int64_t ns)
{
    if (ns < 1)
        return 0;
    int b = 1 + (int)floor(log2((double)ns) * FINE_PER_OCTAVE);
    return b < FINE ? b : FINE - 1;
}

static void hist_add(struct hist *h, const struct hist *x)
{
    for (int i = 0; i < DECADES; i++)
        h->decade[i] += x->decade[i];
    for (int i = 0; i < FINE; i++)
        h->fine[i] += x->fine[i];
    h->freed += x->freed;
    h->live += x->live;
    h->freed_bytes += x->freed_bytes;
}

/* The lifetime below which a fraction q of the freed objects fall: the geometric middle of
 * the fine bucket where the count crosses it. */
static int64_t percentile(const struct hist *h, double q)
{
    double want = q * h->freed, sum = 0;
    for (int b = 0; b < FINE; b++) {
        sum += h->fine[b];
        if (sum >= want && h->fine[b] > 0)
            return b == 0 ? 0 : llround(exp2(((double)b - 0.5) / FINE_PER_OCTAVE));
    }
    return 0;
}

struct lifetimes {
    struct hmap stacks;   /* stack id -> struct hist */
};

static struct hist *hist_of(struct lifetimes *l, int64_t stack)
{
    struct hist *h = hmap_get(&l->stacks, (uint64_t)stack);
    if (!h) {
        h = xcalloc(1, sizeof *h);
        hmap_put(&l->stacks, (uint64_t)stack, h);
    }
    return h;
}

static int on_event(void *ctx, const struct ev_event *e)
{
    struct lifetimes *l = ctx;
    struct hist *h = hist_of(l, e->stack);
    if (e->op == HW_EV_ALLOC) {
        h->live += e->objects;
        return 0;
    }
    int64_t life = e->time_ns - e->alloc_ns;
    int d = 0;
    while (d < DECADES - 1 && life >= decade_below[d])
        d++;
    h->decade[d] += e->objects;
    h->fine[fine_bucket(life)] += e->objects;
    h->freed += e->objects;
    h->freed_bytes += e->bytes;
    h->live -= e->objects;
    return 0;
}

struct site {
    uint64_t key;
    const struct frame *frame;
    struct hist h;
};

static int cmp_site(const void *a, const void *b)
{
    const struct site *x = a, *y = b;
    double vx = x->h.freed + x->h.live, vy = y->h.freed + y->h.live;
    if (vx != vy)
        return vx > vy ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

static const char *fmt_ns(char *buf, size_t size, int64_t ns)
{
    if (ns < 1000)
        snprintf(buf, size, "%lldns", (long long)ns);
    else if (ns < 1000000)
        snprintf(buf, size, "%.1fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, size, "%.1fms", (double)ns / 1e6);
    else
        snprintf(buf, size, "%.2fs", (double)ns / 1e9);
    return buf;
}

static struct site *group_sites(struct hwdb *db, struct symcache *sc, struct lifetimes *l, enum report_by by,
                                size_t *nr_out)
{
    struct profile p = { .db = db, .sc = sc, .sample_rate = db->sample_rate };
    int64_t zero[NV] = { 0 };
    HMAP_FOR_EACH(&l->stacks, i)
        profile_add_values(&p, 0, (int64_t)l->stacks.keys[i], zero);
    struct site *sites = NULL;
    size_t nr = 0, alloc = 0;
    struct hmap index = { 0 };
    for (size_t i = 0; i < p.nr; i++) {
        const struct frame *f = NULL;
        uint64_t key = report_flat_key(&p.samples[i], by, &f);
        if (!key)
            continue;
        uintptr_t at = (uintptr_t)hmap_get(&index, key);
        if (!at) {
            ALLOC_GROW(sites, nr + 1, alloc);
            memset(&sites[nr], 0, sizeof sites[nr]);
            sites[nr].key = key;
            sites[nr].frame = f;
            at = ++nr;
            hmap_put(&index, key, (void *)at);
        }
        hist_add(&sites[at - 1].h, hmap_get(&l->stacks, (uint64_t)p.samples[i].stack_id));
    }
    if (nr)
        qsort(sites, nr, sizeof *sites, cmp_site);
    hmap_clear(&index);
    profile_release(&p);
    *nr_out = nr;
    return sites;
}

static void print_text(struct hwdb *db, struct site *sites, size_t nr, size_t shown, enum report_by by)
{
    char a[32], b[32], name[4096];
    printf("Lifetimes of %s (%s), from the event log, %s\n", db->path, db->cmdline,
           report_rate_text(db->sample_rate, a, sizeof a));
    printf("%9s %9s %9s", "freed", "median", "p90");
    for (int d = 0; d < DECADES; d++)
        printf(" %7s", decade_names[d]);
    printf(" %8s  %s\n", "live", report_by_names[by]);
    for (size_t s = 0; s < nr && s < shown; s++) {
        const struct hist *h = &sites[s].h;
        struct row r = { .key = sites[s].key, .function = sites[s].frame->function, .file = sites[s].frame->file,
                         .line = sites[s].frame->line };
        printf("%9lld %9s %9s", llround(h->freed), h->freed > 0 ? fmt_ns(a, sizeof a, percentile(h, 0.5)) : "-",
               h->freed > 0 ? fmt_ns(b, sizeof b, percentile(h, 0.9)) : "-");
        for (int d = 0; d < DECADES; d++)
            printf(" %7lld", llround(h->decade[d]));
        printf(" %8lld  %s\n", llround(h->live), row_name(&r, by, name, sizeof name));
    }
}

static void print_json(struct hwdb *db, struct site *sites, size_t nr, size_t shown, enum report_by by)
{
    struct json j;
    json_init(&j, stdout);
    json_begin_object(&j);
    json_key(&j, "db"); json_str(&j, db->path);
    json_key(&j, "sample_rate"); json_int(&j, db->sample_rate);
    json_key(&j, "by"); json_str(&j, report_by_names[by]);
    json_key(&j, "sites");
    json_begin_array(&j);
    for (size_t s = 0; s < nr && s < shown; s++) {
        const struct hist *h = &sites[s].h;
        struct row r = { .key = sites[s].key, .function = sites[s].frame->function, .file = sites[s].frame->file,
                         .line = sites[s].frame->line };
        json_begin_object(&j);
        row_json_identity(&j, &r, by);
        json_key(&j, "freed"); json_int(&j, llround(h->freed));
        json_key(&j, "freed_bytes"); json_int(&j, llround(h->freed_bytes));
        json_key(&j, "live"); json_int(&j, llround(h->live));
        json_key(&j, "median_ns");
        h->freed > 0 ? json_int(&j, percentile(h, 0.5)) : json_null(&j);
        json_key(&j, "p90_ns");
        h->freed > 0 ? json_int(&j, percentile(h, 0.9)) : json_null(&j);
        json_key(&j, "histogram");
        json_begin_array(&j);
        for (int d = 0; d < DECADES; d++) {
            json_begin_object(&j);
            json_key(&j, "below_ns");
            d < DECADES - 1 ? json_int(&j, decade_below[d]) : json_null(&j);
            json_key(&j, "objects"); json_int(&j, llround(h->decade[d]));
            json_end_object(&j);
        }
        json_end_array(&j);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_end_object(&j);
    json_finish(&j);
}

int cmd_lifetimes(int argc, char **argv)
{
    struct report_opts o;
    report_opts_init(&o);
    o.by = BY_FUNCTION;
    const struct opt opts[] = {
        OPT_REPORT_BY(&o.by),
        OPT_NODECOUNT(&o.nodecount),
        OPT_JSON(&o.json),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_lifetimes, 0);
    report_opts_finish(&o);
    if (o.by != BY_FUNCTION && o.by != BY_LINE)
        die_with_usage(opts, &usage_lifetimes, "lifetimes group sites --by function or --by line");
    struct hwdb *db = open_db_operand(argc, argv, opts, &usage_lifetimes);
    ev_require_log(db, "lifetimes");
    struct lifetimes l = { 0 };
    ev_replay(db, on_event, &l, NULL);
    struct symcache *sc = symcache_open(db);
    size_t nr;
    struct site *sites = group_sites(db, sc, &l, o.by, &nr);
    if (o.json)
        print_json(db, sites, nr, o.nodecount, o.by);
    else
        print_text(db, sites, nr, o.nodecount, o.by);
    warn_missing_debug(sc);
    free(sites);
    HMAP_FOR_EACH(&l.stacks, i)
        free(l.stacks.vals[i]);
    hmap_clear(&l.stacks);
    symcache_close(sc);
    db_close(db);
    return 0;
}
