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
    sqlite3_stmt *st = db_prepare(db,
        "SELECT class, flags & 2 != 0 AS ignored, stack_id, count(*), sum(size) FROM object"
        " WHERE snapshot_id = ? AND class != 0 GROUP BY class, ignored, stack_id ORDER BY class, stack_id");
    sqlite3_bind_int64(st, 1, snap);
    struct group *g = NULL;
    size_t ng = 0, galloc = 0;
    bool any_suppressed = false;
    struct hmap first_group = { 0 };   /* stack id -> index + 1 of its first group */
    while (db_step(db, st)) {
        int64_t cls = sqlite3_column_int64(st, 0), stack = sqlite3_column_int64(st, 2);
        int64_t objects = sqlite3_column_int64(st, 3), bytes = sqlite3_column_int64(st, 4);
        if (cls != 1 && cls != 2) {
            die(EXIT_INPUT, "cannot read '%s': object class %lld in snapshot %lld (corrupt database)", db->path,
                (long long)cls, (long long)snap);
        } else if (stack < 0) {
            die(EXIT_INPUT, "cannot read '%s': bad stack id %lld (corrupt database)", db->path, (long long)stack);
        } else if (sqlite3_column_int(st, 1)) {
            t->suppressed_objects += objects;   /* heapwatch_ignore()d */
            t->suppressed_bytes += bytes;
        } else {
            ALLOC_GROW(g, ng + 1, galloc);
            struct group *x = &g[ng++];
            x->kind = cls == 2 ? LEAK_DIRECT : LEAK_INDIRECT;
            x->stack_id = stack;
            x->objects = objects;
            x->bytes = bytes;
            size_t first = (uintptr_t)hmap_get(&first_group, (uint64_t)stack);
            if (first) {
                /* The stack's other class: its frames and its rule are known already. */
                const struct group *y = &g[first - 1];
                x->depth = y->depth;
                memcpy(x->locs, y->locs, (size_t)y->depth * sizeof *y->locs);
                x->sup = y->sup;
            } else {
                x->depth = profile_stack(db, sc, stack, x->locs, PROFILE_MAX_DEPTH);
                x->sup = suppressions_match_stack(sup, x->locs, x->depth);
                hmap_put(&first_group, (uint64_t)stack, (void *)(uintptr_t)ng);
            }
            any_suppressed |= x->sup != NULL;
        }
    }
    sqlite3_finalize(st);
    hmap_clear(&first_group);
    st = db_prepare(db, "SELECT count(*), coalesce(sum(size), 0) FROM object"
                        " WHERE snapshot_id = ? AND class = 0 AND flags & 1 != 0 AND flags & 2 = 0");
    sqlite3_bind_int64(st, 1, snap);
    if (db_step(db, st)) {
        t->possible_objects = sqlite3_column_int64(st, 0);
        t->possible_bytes = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (any_suppressed)
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
