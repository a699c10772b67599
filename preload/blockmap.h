/* blockmap.h: which live block holds an address, for the mark's conservative scan.
 *
 * The mark asks this once for every word it scans that falls between the lowest block and
 * the end of the highest, millions of times a snapshot; its cost is a cache miss or two, so
 * the structure is built for misses, not for instructions. Lookup cost bounds the mark: on
 * 0.8M reachable blocks (89 MB), a sorted array searched by bisection marked 0.15 GB/s and a
 * 4 KiB page index to the first block 0.28 GB/s, where rejecting a word by the heap's range
 * alone runs at 14 GB/s. (LeakSanitizer pays one miss on its allocator's chunk metadata.)
 *
 * A bitmap of block starts, one bit per 16-byte slot (glibc's alignment), in entries of 64
 * slots (1 KiB of address space) that also hold the number of blocks before them, so that a
 * pointer to a block's start is answered from one 16-byte entry: its index is that count plus
 * the set bits below. Entries exist only for the 1 MiB pages that hold a block start, found
 * through a page table per 4 GiB region. An interior pointer takes the nearest start below it
 * (at most NEAR bytes back) and checks that block's end; a block bigger than NEAR is also in
 * a short side list searched by bisection. Blocks that do not start 16-byte aligned, or a
 * heap whose pages would make the bitmap too big, fall back to bisection over all blocks:
 * slower, same answers.
 *
 * Built from the sorted, deduplicated blocks of a snapshot, in the shim's own mappings.
 * Context: SIGSAFE (no allocation through malloc, no locks). */
#ifndef HW_BLOCKMAP_H
#define HW_BLOCKMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "livetable.h"

#define HW_BM_SLOT_SHIFT 4     /* 16-byte slots */
#define HW_BM_ENTRY_SHIFT 10   /* 64 slots per entry */
#define HW_BM_PAGE_SHIFT 20    /* 1 MiB pages */
#define HW_BM_REGION_SHIFT 32  /* 4 GiB regions */
#define HW_BM_PAGES (1u << (HW_BM_REGION_SHIFT - HW_BM_PAGE_SHIFT))
#define HW_BM_ENTRIES (1u << (HW_BM_PAGE_SHIFT - HW_BM_ENTRY_SHIFT))
#define HW_BM_NEAR 4096        /* bytes an interior pointer is resolved back through the bitmap */
#define HW_BM_MAX_REGIONS 64

struct hw_bm_entry {
    uint64_t starts;  /* bit k: a block starts at the entry's base + 16 k */
    uint64_t before;  /* number of blocks that start below the entry's base */
};

struct hw_bm_region {
    uintptr_t base;   /* address >> HW_BM_REGION_SHIFT */
    uint32_t *page;   /* HW_BM_PAGES slots: 1 + page number in entry[], or 0 */
};

struct hw_blockmap {
    struct hw_bm_span { uintptr_t lo, hi; } *span;  /* block i is [lo, hi), sorted; hi > lo */
    size_t n;
    uintptr_t lo, hi;  /* [first block's start, the highest end) */
    struct hw_bm_entry *entry;  /* NULL: bisection only */
    size_t nr_pages;
    struct hw_bm_region region[HW_BM_MAX_REGIONS];
    unsigned nr_regions;
    uint32_t *big;     /* indices of the blocks bigger than HW_BM_NEAR, in address order */
    size_t nr_big, big_cap;
};

/* Build from n blocks sorted by address, without duplicates (size 0 counts as 1 byte).
 * False only when not even the span array could be mapped. */
bool hw_blockmap_build(struct hw_blockmap *m, const struct hw_live_entry *o, size_t n);
void hw_blockmap_release(struct hw_blockmap *m);
/* The slow paths of hw_blockmap_find. */
long hw_blockmap_bisect(const struct hw_blockmap *m, uintptr_t v);
long hw_blockmap_find_big(const struct hw_blockmap *m, uintptr_t v);

static inline const struct hw_bm_entry *hw_bm_entry_of(const struct hw_blockmap *m, uintptr_t v)
{
    uintptr_t base = v >> HW_BM_REGION_SHIFT;
    for (unsigned k = 0; k < m->nr_regions; k++) {
        if (m->region[k].base != base)
            continue;
        uint32_t pg = m->region[k].page[(v >> HW_BM_PAGE_SHIFT) & (HW_BM_PAGES - 1)];
        if (!pg)
            return NULL;
        return &m->entry[(size_t)(pg - 1) * HW_BM_ENTRIES + ((v >> HW_BM_ENTRY_SHIFT) & (HW_BM_ENTRIES - 1))];
    }
    return NULL;
}

/* Set bits of x. The shim is built for baseline x86-64, where __builtin_popcountll is a call
 * into libgcc: this is the same few instructions, inline. */
static inline unsigned hw_bm_popcount(uint64_t x)
{
    x -= (x >> 1) & 0x5555555555555555ull;
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

/* Whether v lies within [lowest start, highest end): the one compare most words fail. */
static inline bool hw_blockmap_covers(const struct hw_blockmap *m, uintptr_t v)
{
    return v >= m->lo && v < m->hi;
}

/* The bitmap entry a covered v resolves through (NULL if none or no bitmap): a caller may
 * prefetch it, then call hw_blockmap_resolve a little later. */
static inline const struct hw_bm_entry *hw_blockmap_entry(const struct hw_blockmap *m, uintptr_t v)
{
    return m->entry ? hw_bm_entry_of(m, v) : NULL;
}

/* Index of the block whose [start, end) holds the covered v, or -1, given e =
 * hw_blockmap_entry(m, v); *at_start tells whether v is the block's first byte. */
static inline long hw_blockmap_resolve(const struct hw_blockmap *m, uintptr_t v, const struct hw_bm_entry *e,
                                       bool *at_start)
{
    long i;
    if (!m->entry) {
        i = hw_blockmap_bisect(m, v);
        *at_start = i >= 0 && m->span[i].lo == v;
        return i;
    }
    /* The nearest block start at or below v: in v's own entry, or up to HW_BM_NEAR back. */
    unsigned slot = (unsigned)(v >> HW_BM_SLOT_SHIFT) & 63;
    uint64_t below = e ? e->starts & ((2ull << slot) - 1) : 0;
    if (below) {
        unsigned top = 63 - (unsigned)__builtin_clzll(below);
        i = (long)(e->before + hw_bm_popcount(below) - 1);
        uintptr_t start = (v >> HW_BM_ENTRY_SHIFT << HW_BM_ENTRY_SHIFT) + ((uintptr_t)top << HW_BM_SLOT_SHIFT);
        if (start == v) {
            *at_start = true;
            return i;
        }
    } else {
        i = -1;
        uintptr_t mask = ((uintptr_t)1 << HW_BM_ENTRY_SHIFT) - 1;
        uintptr_t at = v & ~mask;
        for (unsigned k = 0; k < HW_BM_NEAR >> HW_BM_ENTRY_SHIFT && at > (m->lo & ~mask); k++) {
            at -= mask + 1;
            e = hw_bm_entry_of(m, at);
            if (e && e->starts) {
                i = (long)(e->before + hw_bm_popcount(e->starts) - 1);
                break;
            }
        }
    }
    *at_start = false;
    if (i >= 0 && v < m->span[i].hi)
        return i;
    return m->nr_big ? hw_blockmap_find_big(m, v) : -1;
}

/* Index of the block whose [start, end) holds v, or -1. */
static inline long hw_blockmap_find(const struct hw_blockmap *m, uintptr_t v, bool *at_start)
{
    if (!hw_blockmap_covers(m, v))
        return -1;
    return hw_blockmap_resolve(m, v, hw_blockmap_entry(m, v), at_start);
}

#endif
