/* mark.h: the heap walk of a snapshot: sort the live table, scan the roots conservatively,
 * flood what they reach, classify the rest. The scheme is LeakSanitizer's (an explicit mark
 * stack, aligned words only, interior pointers count: FloodFillTag and ClassifyAllChunks in
 * compiler-rt/lib/lsan/lsan_common.cpp) with memcheck's classes (mark.c says which).
 *
 * Runs with the world stopped (HEAPWATCH_SNAPSHOT=inplace) or in the snapshot's fork child;
 * everything lives in the shim's own mappings. Context: SIGSAFE (no allocation, no locks). */
#ifndef HW_MARK_H
#define HW_MARK_H

#include <stdbool.h>
#include <stdint.h>
#include "livetable.h"
#include "roots.h"
#include "sys.h"

enum hw_class { HW_REACHABLE = 0, HW_INDIRECT = 1, HW_LEAKED = 2 };
#define HW_FLAG_INTERIOR_ONLY 1  /* reachable, but not through start pointers alone: memcheck's
                                  * "possibly lost" (an interior pointer on every path from a root) */
#define HW_FLAG_IGNORED 2        /* heapwatch_ignore() */

#define HW_EDGE_FROM_ROOT 0x80000000u

/* A pointer the mark found: 16 bytes, as there are millions. Its two offsets fit 32 bits
 * but in a source of 32 GiB or more, or 4 GiB or more into its target: such an edge has both
 * word and target_offset HW_EDGE_WIDE, and its exact offsets are the next entry of the wide
 * vector that goes with its edge vector (root_wide with root_edges, wide with edges), in the
 * same order. hw_edge_offsets reads either kind. */
struct hw_edge {
    uint32_t src;      /* object index, or HW_EDGE_FROM_ROOT | root index */
    uint32_t dst;      /* object index */
    uint32_t word;     /* byte offset of the pointer within the source / 8 */
    uint32_t target_offset;  /* the pointer's value - the target's address (0: its start) */
};
_Static_assert(sizeof(struct hw_edge) == 16, "an edge must stay compact");

#define HW_EDGE_WIDE UINT32_MAX

struct hw_wide_edge {
    uint64_t offset;         /* bytes */
    uint64_t target_offset;
};

struct hw_heap {
    struct hw_vec objects;  /* struct hw_live_entry, sorted by address */
    uint8_t *cls, *flags;   /* one each per object */
    size_t cls_len;         /* bytes mapped for cls and for flags */
    /* Per object, its first word when that points into a module's non-executable segments (a
     * C++ vtable pointer, or a false candidate: a pointer to a global); 0 otherwise. Mapped
     * zero-filled and only touched for such objects, so a heap without any costs no memory. */
    uint64_t *vptr;
    size_t vptr_len;        /* bytes mapped for vptr */
    struct hw_vec root_edges, edges;  /* struct hw_edge: from roots; from blocks */
    struct hw_vec root_wide, wide;    /* struct hw_wide_edge: their wide offsets, in order */
    struct hw_vec work;     /* uint32_t mark stack */
    struct hw_vec possible; /* uint32_t blocks first reached through an interior pointer */
    uint64_t count[3], bytes[3];  /* per class */
    uint64_t scanned_bytes;
    uint64_t live_bytes;    /* the objects' sizes, summed by hw_heap_load */
    bool incomplete;        /* ran out of memory somewhere: classes may say reachable too often */
    /* Set by the caller before hw_heap_load, in arena mode: only blocks the shim recorded are
     * objects (full mode, where it records every block). A plain chunk is then one it never
     * saw (allocated before it started) or a free one that a stopped world shows in use (the
     * tcache of a thread stopped while it exits): the shadow map, which full mode used
     * before, never showed either, and the counts and the walk agree. */
    bool recorded_only;
};

/* The byte offsets of e within its source and its target. Call it for the edges of one
 * vector in order, with that vector's wide vector and *next_wide = 0 before the first. */
static inline void hw_edge_offsets(const struct hw_edge *e, const struct hw_vec *wide, size_t *next_wide,
                                   uint64_t *offset, uint64_t *target_offset)
{
    if (e->word != HW_EDGE_WIDE) {
        *offset = (uint64_t)e->word * 8;
        *target_offset = e->target_offset;
        return;
    }
    const struct hw_wide_edge *w = (const struct hw_wide_edge *)wide->data + (*next_wide)++;
    *offset = w->offset;
    *target_offset = w->target_offset;
}

/* The live blocks, in address order (the world is stopped, or this is its fork child): the
 * live table's, merged with the shadow map's or, in arena mode (tcaches not NULL), with
 * glibc's in-use chunks, the threads' tcaches (hw_arena_tcaches) left out. False if out of memory, or glibc's heap
 * could not be walked. */
bool hw_heap_load(struct hw_heap *h, const uintptr_t *tcaches, size_t ntc);
/* Mark from the roots and classify every object. Roots with clip_at are ended at the end of
 * the block that holds clip_at. */
void hw_heap_mark(struct hw_heap *h, struct hw_roots *roots);
void hw_heap_release(struct hw_heap *h);

#endif
