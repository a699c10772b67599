/* heldset.h: which unreachable blocks of a walked snapshot are held by suppressed ones.
 *
 * LeakSanitizer (since it reruns its check with suppressed stacks, lsan_common.cpp
 * CheckForLeaks) treats a suppressed leak as ignored: what it points to, directly or not,
 * is no longer a leak either, so a suppressed library allocation does not surface as the
 * indirect leaks it holds. heapwatch does the same from the snapshot's packed blocks and
 * pointers (schema: object_chunk, edge_chunk): starting from every unreachable block whose
 * allocation stack is suppressed, it follows pointers through unreachable blocks only. */
#ifndef HW_HELDSET_H
#define HW_HELDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "db.h"
#include "hmap.h"

struct held_block {
    int64_t stack_id;
    int64_t size;
    int cls;                /* 1 indirect, 2 direct */
};

struct heldset {
    struct held_block *blocks;   /* the unreachable blocks held by a suppressed one, roots excluded */
    size_t nr;
};

/* Fill h for snapshot snap, the roots being the unreachable blocks whose stack id is a key
 * of suppressed_stacks. False (h empty) if the snapshot's blocks or pointers were not
 * stored packed; dies (3) on a malformed chunk. */
bool heldset_load(struct heldset *h, struct hwdb *db, int64_t snap, const struct hmap *suppressed_stacks);
void heldset_release(struct heldset *h);

#endif
