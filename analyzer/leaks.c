/* This file implements loading a snapshot's leaks: one pass over its object rows, grouped by
 * class, heapwatch_ignore() flag and (for unreachable objects only) allocation stack; each
 * unreachable group's stack is symbolized and checked against the suppressions. */
#define _GNU_SOURCE
#include "leaks.h"

#include <stdlib.h>
#include <string.h>
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

/* One group of unreachable objects: suppressed (charged to its suppression) or a row. */
static void add_group(struct leak_report *r, struct hwdb *db, struct symcache *sc, struct suppressions *sup,
                      enum leak_kind kind, int64_t stack_id, int64_t objects, int64_t bytes)
{
    struct location *locs[PROFILE_MAX_DEPTH];
    int depth = profile_stack(db, sc, stack_id, locs, PROFILE_MAX_DEPTH);
    struct suppression *x = suppressions_match_stack(sup, locs, depth);
    if (x) {
        x->objects += objects;
        x->bytes += bytes;
        r->total.suppressed_objects += objects;
        r->total.suppressed_bytes += bytes;
        return;
    }
    if (kind == LEAK_DIRECT) {
        r->total.leaked_objects += objects;
        r->total.leaked_bytes += bytes;
    } else {
        r->total.indirect_objects += objects;
        r->total.indirect_bytes += bytes;
    }
    int skip = profile_wrapper_frames(locs, depth);
    ALLOC_GROW(r->rows, r->nr + 1, r->alloc);
    struct leak_row *row = &r->rows[r->nr++];
    memset(row, 0, sizeof *row);
    row->kind = kind;
    row->objects = objects;
    row->bytes = bytes;
    row->stack_id = stack_id;
    row->stack.stack_id = stack_id;
    row->stack.depth = depth - skip;
    row->stack.locs = xmalloc((size_t)(row->stack.depth ? row->stack.depth : 1) * sizeof *locs);
    memcpy(row->stack.locs, locs + skip, (size_t)row->stack.depth * sizeof *locs);
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
            add_group(r, db, sc, sup, cls == 2 ? LEAK_DIRECT : LEAK_INDIRECT, stack, objects, bytes);
        }
    }
    sqlite3_finalize(st);
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
