/* This file implements loading a snapshot's leaks: one pass over its object rows, grouped by
 * class, heapwatch_ignore() flag and (for unreachable objects only) allocation stack; each
 * unreachable group's stack is symbolized and checked against the suppressions, and when
 * one matches, the blocks the suppressed ones hold are taken out of the rest (heldset.h). */
#define _GNU_SOURCE
#include "leaks.h"

#include <stdlib.h>
#include <string.h>
#include "heldset.h"
#include "hmap.h"
#include "usage.h"

const char *const leak_kind_names[] = { "direct", "indirect" };

static int cmp_rows(const void *a, const void *b)
{
    const struct leak_row *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind == LEAK_DIRECT ? -1 : 1;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    return (x->stack_id > y->stack_id) - (x->stack_id < y->stack_id);
}

/* One group of unreachable objects, by class and allocation stack. */
struct group {
    enum leak_kind kind;
    int64_t stack_id, objects, bytes;
    struct suppression *sup;    /* the rule that matches its stack, or NULL */
    struct location *locs[PROFILE_MAX_DEPTH];
    int depth;
};

/* A group that is no leak: charged to its suppression. */
static void add_suppressed(struct leak_report *r, const struct group *g)
{
    g->sup->objects += g->objects;
    g->sup->bytes += g->bytes;
    r->total.suppressed_objects += g->objects;
    r->total.suppressed_bytes += g->bytes;
}

/* A group that is a leak: a row. */
static void add_row(struct leak_report *r, const struct group *g)
{
    if (!g->objects)
        return;  /* every block of it held by a suppressed one */
    if (g->kind == LEAK_DIRECT) {
        r->total.leaked_objects += g->objects;
        r->total.leaked_bytes += g->bytes;
    } else {
        r->total.indirect_objects += g->objects;
        r->total.indirect_bytes += g->bytes;
    }
    int skip = profile_wrapper_frames((struct location **)g->locs, g->depth);
    ALLOC_GROW(r->rows, r->nr + 1, r->alloc);
    struct leak_row *row = &r->rows[r->nr++];
    memset(row, 0, sizeof *row);
    row->kind = g->kind;
    row->objects = g->objects;
    row->bytes = g->bytes;
    row->stack_id = g->stack_id;
    row->stack.stack_id = g->stack_id;
    row->stack.depth = g->depth - skip;
    row->stack.locs = xmalloc((size_t)(row->stack.depth ? row->stack.depth : 1) * sizeof *row->stack.locs);
    memcpy(row->stack.locs, g->locs + skip, (size_t)row->stack.depth * sizeof *row->stack.locs);
}

/* Take out of the groups the blocks that suppressed blocks hold (heldset.h): they count as
 * suppressed, not charged to a rule (LeakSanitizer counts only what a rule matched). */
static void drop_held(struct leak_report *r, struct hwdb *db, int64_t snap, struct group *g, size_t ng)
{
    struct hmap suppressed = { 0 }, by_key = { 0 };
    for (size_t i = 0; i < ng; i++) {
        if (g[i].sup)
            hmap_put(&suppressed, (uint64_t)g[i].stack_id, &g[i]);
        else
            hmap_put(&by_key, (uint64_t)g[i].stack_id << 1 | (g[i].kind == LEAK_DIRECT), &g[i]);
    }
    struct heldset h;
    if (suppressed.nr && heldset_load(&h, db, snap, &suppressed)) {
        for (size_t k = 0; k < h.nr; k++) {
            struct group *x = hmap_get(&by_key, (uint64_t)h.blocks[k].stack_id << 1 | (h.blocks[k].cls == 2));
            if (!x || x->objects <= 0)
                die(EXIT_INPUT, "cannot read '%s': snapshot %lld's packed blocks disagree with its object rows"
                    " (corrupt database)", db->path, (long long)snap);
            x->objects--;
            x->bytes -= h.blocks[k].size;
            r->total.suppressed_objects++;
            r->total.suppressed_bytes += h.blocks[k].size;
        }
        heldset_release(&h);
    }
    hmap_clear(&suppressed);
    hmap_clear(&by_key);
}

/* The groups of unreachable blocks being read, for take_group. */
struct groups {
    struct leak_report *r;
    struct hwdb *db;
    struct symcache *sc;
    int64_t snap;
    struct suppressions *sup;
    struct group *g;
    size_t ng, galloc;
    bool any_suppressed;
    struct hmap first_group;   /* stack id -> index + 1 of its first group */
};

static int take_group(void *ctx, const struct db_object_group *row)
{
    struct groups *gs = ctx;
    struct leak_totals *t = &gs->r->total;
    if (row->cls != 1 && row->cls != 2)
        die(EXIT_INPUT, "cannot read '%s': object class %lld in snapshot %lld (corrupt database)", gs->db->path,
            (long long)row->cls, (long long)gs->snap);
    if (row->stack < 0)
        die(EXIT_INPUT, "cannot read '%s': bad stack id %lld (corrupt database)", gs->db->path, (long long)row->stack);
    if (row->ignored) {
        t->suppressed_objects += row->objects;   /* heapwatch_ignore()d */
        t->suppressed_bytes += row->bytes;
        return 0;
    }
    ALLOC_GROW(gs->g, gs->ng + 1, gs->galloc);
    struct group *x = &gs->g[gs->ng++];
    x->kind = row->cls == 2 ? LEAK_DIRECT : LEAK_INDIRECT;
    x->stack_id = row->stack;
    x->objects = row->objects;
    x->bytes = row->bytes;
    size_t first = (uintptr_t)hmap_get(&gs->first_group, (uint64_t)row->stack);
    if (first) {
        /* The stack's other class: its frames and its rule are known already. */
        const struct group *y = &gs->g[first - 1];
        x->depth = y->depth;
        memcpy(x->locs, y->locs, (size_t)y->depth * sizeof *y->locs);
        x->sup = y->sup;
    } else {
        x->depth = profile_stack(gs->db, gs->sc, row->stack, x->locs, PROFILE_MAX_DEPTH);
        x->sup = suppressions_match_stack(gs->sup, x->locs, x->depth);
        hmap_put(&gs->first_group, (uint64_t)row->stack, (void *)(uintptr_t)gs->ng);
    }
    gs->any_suppressed |= x->sup != NULL;
    return 0;
}

void leaks_load(struct leak_report *r, struct hwdb *db, struct symcache *sc, int64_t snap, struct suppressions *sup)
{
    memset(r, 0, sizeof *r);
    if (!db_snapshot_info(db, snap, &r->info))
        die(EXIT_INPUT, "no snapshot %lld in '%s'", (long long)snap, db->path);
    db_require_heap_walk(db, &r->info);
    /* The object table holds, as rows, only the blocks that are not plainly reachable (schema:
     * the rest are packed in object_chunk), so live and reachable totals come from the
     * snapshot row and the rows give the leaks, grouped by stack. */
    struct leak_totals *t = &r->total;
    t->live_objects = r->info.live_objects;
    t->live_bytes = r->info.live_bytes;
    t->reachable_objects = r->info.reachable_objects;
    t->reachable_bytes = r->info.reachable_bytes;
    struct groups gs = { .r = r, .db = db, .sc = sc, .snap = snap, .sup = sup };
    if (db_each_unreachable_group(db, snap, take_group, &gs) < 0 ||
        db_possibly_lost(db, snap, &t->possible_objects, &t->possible_bytes) < 0)
        exit(EXIT_INPUT);
    hmap_clear(&gs.first_group);
    struct group *g = gs.g;
    size_t ng = gs.ng;
    if (gs.any_suppressed)
        drop_held(r, db, snap, g, ng);
    for (size_t i = 0; i < ng; i++) {
        if (g[i].sup)
            add_suppressed(r, &g[i]);
        else
            add_row(r, &g[i]);
    }
    free(g);
    if (r->nr)
        qsort(r->rows, r->nr, sizeof *r->rows, cmp_rows);
}

void leaks_release(struct leak_report *r)
{
    for (size_t i = 0; i < r->nr; i++)
        free(r->rows[i].stack.locs);
    free(r->rows);
    snapshot_info_release(&r->info);
    memset(r, 0, sizeof *r);
}
