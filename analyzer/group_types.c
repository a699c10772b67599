/* This file implements the type grouping of groupings.h: a walked snapshot's memory by the
 * type heaptypes.h infers for each block (as `types` groups them: "struct node",
 * "struct node[]", "char[]", "(unknown)"), reachable and unreachable memory apart, so that
 * `growth --by type` tells a type that accumulates from a type that leaks.
 *
 * Identity across snapshots: the type's name (and whether unreachable). Untyped memory is one
 * "(unknown)" row here: `types` splits it by allocation site for one snapshot. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "groupings.h"
#include "heapgraph.h"
#include "heaptypes.h"
#include "owners.h"
#include "snapmodel.h"
#include "usage.h"

struct type_sum {
    const char *type;   /* interned in ht */
    bool lost;
    uint64_t bytes, objects;
};

void group_types(const struct heap_graph *g, struct group_ctx *ctx, struct group_rows *out)
{
    struct owner_set os;
    memset(&os, 0, sizeof os);
    struct heap_types ht;
    snap_types(&ht, g, ctx->sym, &os);
    struct hmap at = { 0 };   /* group name (interned in ht) << 1 | unreachable -> sum index + 1 */
    struct type_sum *sums = NULL;
    size_t nr = 0, alloc = 0;
    for (uint32_t k = 0; k < g->nr_blocks; k++) {
        if (g->cls[k] >> 2 & 2)
            continue;   /* heapwatch_ignore()d: left out, as in every report */
        const char *type = ht_block_group(&ht, k);
        bool lost = hg_unreachable(g, k);
        uint64_t id = (uint64_t)(uintptr_t)type << 1 | lost;
        uintptr_t i = (uintptr_t)hmap_get(&at, id);
        if (!i) {
            ALLOC_GROW(sums, nr + 1, alloc);
            sums[nr++] = (struct type_sum){ type, lost, 0, 0 };
            hmap_put(&at, id, (void *)(uintptr_t)(i = nr));
        }
        sums[i - 1].bytes += g->size[k];
        sums[i - 1].objects++;
    }
    for (size_t i = 0; i < nr; i++) {
        char *key = xasprintf("type\x1f%s\x1f%s", sums[i].type, sums[i].lost ? "unreachable" : "reachable");
        struct group_row r = {
            .key = strpool_intern(ctx->pool, key),
            .kind = sums[i].lost ? "leak" : "type",
            .name = strpool_intern(ctx->pool, sums[i].type),
            .unreachable = sums[i].lost,
            .bytes = sums[i].bytes,
            .objects = sums[i].objects,
        };
        free(key);
        group_rows_add(out, &r);
    }
    free(sums);
    hmap_clear(&at);
    heap_types_release(&ht);
    owners_release(&os);
}
