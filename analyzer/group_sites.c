/* This file implements group_unreachable_sites (groupings.h): a walked snapshot's
 * unreachable blocks by the allocation site `top --by line` would name: the leaf frame of
 * their stack once allocator wrappers are dropped. The stacks of one snapshot are named once
 * each; several stacks with one leaf site make one row. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include "groupings.h"
#include "heapgraph.h"
#include "profile.h"
#include "usage.h"

/* The frame `top --by line` charges stack's blocks to; "(unsampled)" without a stack. */
static const struct frame *site_frame(struct group_ctx *ctx, int64_t stack)
{
    static const struct frame unsampled = { "(unsampled)", NULL, 0 };
    struct location *locs[PROFILE_MAX_DEPTH];
    int depth = profile_stack(ctx->db, ctx->sc, stack, locs, PROFILE_MAX_DEPTH);
    if (depth <= 0)
        return &unsampled;
    const struct location *leaf = locs[profile_wrapper_frames(locs, depth)];
    return leaf->nframes ? &leaf->frames[0] : &unsampled;
}

static void site_row(struct group_ctx *ctx, int64_t stack, struct group_row *r)
{
    const struct frame *f = site_frame(ctx, stack);
    char *k = xasprintf("leak\x1f%s\x1f%s\x1f%d", f->function, f->file ? f->file : "", f->line);
    *r = (struct group_row){
        .key = strpool_intern(ctx->pool, k),
        .kind = "leak",
        .name = strpool_intern(ctx->pool, f->function),
        .function = strpool_intern(ctx->pool, f->function),
        .file = strpool_intern(ctx->pool, f->file),
        .line = f->line,
        .unreachable = true,
    };
    free(k);
}

void group_unreachable_sites(const struct heap_graph *g, struct group_ctx *ctx, struct group_rows *out)
{
    struct hmap by_stack = { 0 };   /* stack id -> index + 1 into rows */
    struct group_row *rows = NULL;
    size_t nr = 0, alloc = 0;
    for (uint32_t k = 0; k < g->nr_blocks; k++) {
        if (!hg_unreachable(g, k) || (g->cls[k] >> 2 & 2))
            continue;   /* reachable, or heapwatch_ignore()d: never a leak */
        uint64_t stack = (uint64_t)(g->stack[k] > 0 ? g->stack[k] : 0);
        uintptr_t at = (uintptr_t)hmap_get(&by_stack, stack);
        if (!at) {
            ALLOC_GROW(rows, nr + 1, alloc);
            site_row(ctx, (int64_t)stack, &rows[nr]);
            hmap_put(&by_stack, stack, (void *)(uintptr_t)++nr);
            at = nr;
        }
        rows[at - 1].bytes += g->size[k];
        rows[at - 1].objects++;
    }
    for (size_t i = 0; i < nr; i++)
        group_rows_add(out, &rows[i]);
    hmap_clear(&by_stack);
    free(rows);
}
