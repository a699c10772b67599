/* This file implements profiles from the event log (evprofile.h). */
#define _GNU_SOURCE
#include "evprofile.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../schema/chunk.h"
#include "eventlog.h"
#include "hmap.h"
#include "usage.h"

/* What one stack did up to the moment, in unbiased (weighted) units. */
struct acc {
    double alloc_objects, alloc_bytes, free_objects, free_bytes, temp_objects, temp_bytes;
};

struct upto {
    int64_t at_ns;
    int64_t max_events, events;   /* stop after max_events (0: no limit) */
    struct hmap stacks;           /* stack id -> struct acc */
};

static struct acc *acc_of(struct hmap *m, int64_t stack)
{
    struct acc *a = hmap_get(m, (uint64_t)stack);
    if (!a) {
        a = xcalloc(1, sizeof *a);
        hmap_put(m, (uint64_t)stack, a);
    }
    return a;
}

static int add_event(void *ctx, const struct ev_event *e)
{
    struct upto *u = ctx;
    if (e->time_ns > u->at_ns || (u->max_events && u->events >= u->max_events))
        return 1;
    u->events++;
    struct acc *a = acc_of(&u->stacks, e->stack);
    if (e->op == HW_EV_ALLOC) {
        a->alloc_objects += e->objects;
        a->alloc_bytes += e->bytes;
        return 0;
    }
    a->free_objects += e->objects;
    a->free_bytes += e->bytes;
    if (e->op == HW_EV_FREE_TEMP) {
        a->temp_objects += e->objects;
        a->temp_bytes += e->bytes;
    }
    return 0;
}

static void replay_upto(struct hwdb *db, int64_t at_ns, int64_t max_events, struct upto *u)
{
    memset(u, 0, sizeof *u);
    u->at_ns = at_ns;
    u->max_events = max_events;
    ev_replay(db, add_event, u, NULL);
}

static void release_upto(struct upto *u)
{
    HMAP_FOR_EACH(&u->stacks, i)
        free(u->stacks.vals[i]);
    if (u->stacks.has_zero)
        free(u->stacks.zero_val);
    hmap_clear(&u->stacks);
}

/* Visit every stack's accumulator, key 0 included. */
#define FOR_EACH_ACC(m, body)                                                     \
    do {                                                                          \
        for (size_t i_ = 0; i_ < (m)->cap; i_++)                                   \
            if ((m)->keys[i_]) {                                                  \
                int64_t stack = (int64_t)(m)->keys[i_];                           \
                const struct acc *a = (m)->vals[i_];                              \
                body;                                                             \
            }                                                                     \
        if ((m)->has_zero) {                                                      \
            int64_t stack = 0;                                                    \
            const struct acc *a = (m)->zero_val;                                  \
            body;                                                                 \
        }                                                                         \
    } while (0)

void profile_load_at(struct profile *p, struct hwdb *db, struct symcache *sc, int64_t at_ns, int64_t max_events,
                     const char *label)
{
    ev_require_log(db, "a report at a moment (--at)");
    memset(p, 0, sizeof *p);
    p->db = db;
    p->sc = sc;
    p->time_ns = at_ns;
    p->sample_rate = db->sample_rate;
    p->label = xstrdup(label);
    p->trigger = xstrdup("events");
    p->mode = xstrdup("events");
    p->temporaries = true;
    struct upto u;
    replay_upto(db, at_ns, max_events, &u);
    FOR_EACH_ACC(&u.stacks, {
        int64_t v[NV] = { 0 };
        v[V_ALLOC_OBJECTS] = llround(a->alloc_objects);
        v[V_ALLOC_SPACE] = llround(a->alloc_bytes);
        v[V_INUSE_OBJECTS] = llround(a->alloc_objects - a->free_objects);
        v[V_INUSE_SPACE] = llround(a->alloc_bytes - a->free_bytes);
        v[V_TEMP_OBJECTS] = llround(a->temp_objects);
        v[V_TEMP_SPACE] = llround(a->temp_bytes);
        profile_add_values(p, 0, stack, v);
    });
    profile_sort(p);
    release_upto(&u);
}

void profile_add_temporaries(struct profile *p, bool required)
{
    struct ev_stats st;
    if (!ev_log_extent(p->db, &st))
        return;
    struct upto u;
    if (required) {
        replay_upto(p->db, p->time_ns, 0, &u);
    } else {
        memset(&u, 0, sizeof u);
        u.at_ns = p->time_ns;
        char *failure;
        if (ev_replay_soft(p->db, add_event, &u, &failure) < 0 && failure) {
            warning("%s: reporting without the temporary values", failure);
            free(failure);
            release_upto(&u);
            return;
        }
    }
    size_t sorted = p->nr;
    FOR_EACH_ACC(&u.stacks, {
        int64_t v[NV] = { 0 };
        v[V_TEMP_OBJECTS] = llround(a->temp_objects);
        v[V_TEMP_SPACE] = llround(a->temp_bytes);
        if (v[V_TEMP_OBJECTS] || v[V_TEMP_SPACE])
            profile_add_values(p, sorted, stack, v);
    });
    profile_sort(p);
    p->temporaries = true;
    release_upto(&u);
}

struct peak_ctx {
    int index;
    double objects, bytes;
    int64_t events;
    struct ev_peak best;
    bool any;
};

static int track_peak(void *ctx, const struct ev_event *e)
{
    struct peak_ctx *c = ctx;
    double sign = e->op == HW_EV_ALLOC ? 1 : -1;
    c->objects += sign * e->objects;
    c->bytes += sign * e->bytes;
    c->events++;
    double v = c->index == V_INUSE_OBJECTS ? c->objects : c->bytes;
    double best = c->index == V_INUSE_OBJECTS ? c->best.objects : c->best.bytes;
    if (!c->any || v > best) {
        c->best = (struct ev_peak){ e->time_ns, c->objects, c->bytes, c->events };
        c->any = true;
    }
    return 0;
}

void ev_find_peak(struct hwdb *db, int index, struct ev_peak *pk)
{
    ev_require_log(db, "the peak");
    struct peak_ctx c = { .index = index };
    ev_replay(db, track_peak, &c, NULL);
    *pk = c.best;
}

int64_t ev_resolve_at(struct hwdb *db, const char *spec, char **label, int64_t *max_events)
{
    struct ev_stats st;
    *max_events = 0;
    ev_require_log(db, "--at");
    ev_log_extent(db, &st);
    if (!strcmp(spec, "peak")) {
        struct ev_peak pk;
        ev_find_peak(db, V_INUSE_SPACE, &pk);
        *label = xstrdup("peak");
        *max_events = pk.events;
        return pk.time_ns;
    }
    if (spec[0] == '@') {   /* absolute: seconds since the epoch (CLOCK_REALTIME), to the nanosecond */
        const char *q = spec + 1;
        int64_t secs = 0, frac = 0, scale = 1000000000;
        bool digits = false;
        for (; *q >= '0' && *q <= '9' && secs <= (INT64_MAX / 1000000000 - 9) / 10; q++, digits = true)
            secs = secs * 10 + (*q - '0');
        if (*q == '.')
            for (q++; *q >= '0' && *q <= '9'; q++)
                if (scale > 1) {
                    scale /= 10;
                    frac += (*q - '0') * scale;
                }
        if (!digits || *q)
            die(EXIT_USAGE, "bad --at '%s': expected @SECONDS since the epoch, e.g. @1765000000.25", spec);
        *label = xstrdup(spec);
        return secs * 1000000000 + frac;
    }
    char *end;
    double v = strtod(spec, &end);
    if (end != spec && *end && isfinite(v) && v >= 0) {
        double scale = !strcmp(end, "s") ? 1e9 : !strcmp(end, "ms") ? 1e6 : !strcmp(end, "us") ? 1e3 : 0;
        if (scale) {
            *label = xstrdup(spec);
            return st.first_ns + (int64_t)llround(v * scale);
        }
    }
    /* A snapshot of this database: a number, first, latest or -N. */
    bool snapshot_like = !strcmp(spec, "first") || !strcmp(spec, "latest") || (*spec && strspn(spec + (*spec == '-'), "0123456789") == strlen(spec + (*spec == '-')) && spec[*spec == '-']);
    if (!snapshot_like)
        die(EXIT_USAGE, "bad --at '%s': expected peak, a time since the event log's start (2.5s, 300ms, 1500us)"
            " or a snapshot (a number, first, latest or -N)", spec);
    char *full = xasprintf("%s:%s", db->path, spec);
    int64_t snap;
    struct hwdb *same = db_open_snapshot_spec(full, &snap);
    free(full);
    struct snapshot_info si;
    if (!db_snapshot_info(same, snap, &si))
        die(EXIT_INPUT, "no snapshot %lld in '%s'", (long long)snap, db->path);
    int64_t t = si.time_ns;
    *label = xasprintf("snapshot %lld", (long long)snap);
    snapshot_info_release(&si);
    db_close(same);
    return t;
}
