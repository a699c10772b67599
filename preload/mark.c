/* This file implements the heap walk of mark.h.
 *
 * Lookup: the live blocks sorted by address (LSD radix sort, no allocation), a one-compare
 * rejection of values outside [lowest block, end of highest block), then a binary search for
 * the last block starting at or below the value. Interior pointers count (LeakSanitizer's and
 * memcheck's default); a block reached only through interior pointers is flagged, which is
 * memcheck's "possibly lost" among the reachable.
 *
 * Classes, memcheck's definitions (memcheck/mc_leakcheck.c; LeakSanitizer's are the same
 * except for cycles): a block reached from a root, directly or through other reached blocks,
 * is reachable. Every other block is scanned once in address order: the first unvisited one
 * found is a direct leak and everything it reaches that is not yet classified is indirect; a
 * direct leak reached later from another one becomes indirect. So a leaked list is one direct
 * head and indirect nodes, and an unreachable cycle that nothing else reaches is split into
 * one direct leak (the block at the lowest address) and indirect rest, where LeakSanitizer
 * reports every member of such a cycle as an indirect leak and no direct one.
 * Context: SIGSAFE. */
#define _GNU_SOURCE
#include "mark.h"

#include <string.h>

#define MIN_POINTER 4096

static void radix_sort(struct hw_live_entry *a, struct hw_live_entry *tmp, size_t n)
{
    /* 16-byte aligned blocks below 2^52: three 16-bit digits of addr >> 4. */
    static uint32_t count[1u << 16];
    for (int pass = 0; pass < 3; pass++) {
        unsigned shift = 4 + 16 * (unsigned)pass;
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++)
            count[(a[i].addr >> shift) & 0xffff]++;
        uint32_t sum = 0;
        for (size_t d = 0; d < (1u << 16); d++) {
            uint32_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            tmp[count[(a[i].addr >> shift) & 0xffff]++] = a[i];
        struct hw_live_entry *t = a;
        a = tmp;
        tmp = t;
    }
    /* after an odd number of passes the result is in the scratch array */
    memcpy(tmp, a, n * sizeof *a);
}

bool hw_heap_load(struct hw_heap *h)
{
    h->objects.elem = sizeof(struct hw_live_entry);
    h->edges.elem = sizeof(struct hw_edge);
    h->root_edges.elem = sizeof(struct hw_edge);
    hw_vec_clear(&h->root_edges);
    h->work.elem = sizeof(uint32_t);
    hw_vec_clear(&h->objects);
    hw_vec_clear(&h->edges);
    hw_vec_clear(&h->work);
    memset(h->count, 0, sizeof h->count);
    memset(h->bytes, 0, sizeof h->bytes);
    h->scanned_bytes = 0;
    h->incomplete = false;
    for (unsigned k = 0; k < hw_livetable_shards(); k++)
        if (!hw_livetable_copy_shard_stopped(k, &h->objects))
            return false;
    size_t n = h->objects.nr;
    if (n >= HW_EDGE_FROM_ROOT)
        return false;
    struct hw_live_entry *tmp = hw_map(n * sizeof *tmp + 1);
    if (!tmp)
        return false;
    radix_sort((struct hw_live_entry *)h->objects.data, tmp, n);
    hw_unmap(tmp, n * sizeof *tmp + 1);
    /* A thread that did not stop may have been caught mid-update of the table: an emptied
     * slot (address 0) or an entry met twice during a backward shift. Drop them. */
    struct hw_live_entry *o = (struct hw_live_entry *)h->objects.data;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (o[i].addr >= MIN_POINTER && (!kept || o[i].addr != o[kept - 1].addr))
            o[kept++] = o[i];
    h->objects.nr = n = kept;
    if (h->cls)
        hw_unmap(h->cls, 2 * h->cls_len);
    h->cls_len = n + 1;
    h->cls = hw_map(2 * h->cls_len);
    if (!h->cls)
        return false;
    h->flags = h->cls + h->cls_len;
    memset(h->cls, HW_UNVISITED, n);
    return true;
}

/* The lookup index: the address space is cut into 4 GiB regions and those into 64 KiB
 * granules; for each region that holds blocks, first[g] is the index of the first block at
 * or after granule g (first[GRANULES] = the first block after the region). A value is then
 * found with a short forward scan over the few blocks of its granule, in a dense array of
 * block bounds (one or two cache lines), instead of a search over the whole heap
 * (NOTES-shim.md 9: lookup cost bounds the mark). 4 MiB of index per 4 GiB region in use. */
#define REGION_SHIFT 32
#define GRANULE_SHIFT 12
#define GRANULES (1u << (REGION_SHIFT - GRANULE_SHIFT))
#define MAX_REGIONS 64

struct region {
    uintptr_t base;      /* v >> REGION_SHIFT */
    uint32_t *first;     /* GRANULES + 1 entries */
};

struct range_ctx {
    const struct hw_live_entry *o;
    struct span { uintptr_t lo, hi; } *span;  /* [o[i].addr, end), dense: one cache line per 4 */
    size_t n;
    uintptr_t lo, hi;  /* [first block, end of the last-ending block) */
    struct region regions[MAX_REGIONS];
    unsigned nr_regions;
    uintptr_t max_size; /* largest block: how far back a containing block can start */
};

static bool build_index(struct range_ctx *c)
{
    c->nr_regions = 0;
    for (size_t i = 0; i < c->n;) {
        uintptr_t base = c->o[i].addr >> REGION_SHIFT;
        if (c->nr_regions == MAX_REGIONS)
            return false;
        struct region *r = &c->regions[c->nr_regions++];
        r->base = base;
        r->first = hw_map((GRANULES + 1) * sizeof *r->first);
        if (!r->first)
            return false;
        size_t j = i;
        for (uint32_t g = 0; g <= GRANULES; g++) {
            uintptr_t start = (base << REGION_SHIFT) + ((uintptr_t)g << GRANULE_SHIFT);
            while (j < c->n && c->o[j].addr < start && (c->o[j].addr >> REGION_SHIFT) == base)
                j++;
            r->first[g] = (uint32_t)j;
        }
        while (j < c->n && (c->o[j].addr >> REGION_SHIFT) == base)
            j++;
        r->first[GRANULES] = (uint32_t)j;
        i = j;
    }
    return true;
}

static void free_index(struct range_ctx *c)
{
    for (unsigned k = 0; k < c->nr_regions; k++)
        hw_unmap(c->regions[k].first, (GRANULES + 1) * sizeof *c->regions[k].first);
    c->nr_regions = 0;
}

static long find_block_slow(const struct range_ctx *c, uintptr_t v)
{
    size_t lo = 0, hi = c->n;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (c->span[mid].lo <= v)
            lo = mid;
        else
            hi = mid;
    }
    /* Blocks bigger than a granule can hold v although a later block starts before it. */
    for (size_t k = lo + 1; k-- > 0 && c->span[k].lo + c->max_size > v;)
        if (v >= c->span[k].lo && v < c->span[k].hi)
            return (long)k;
    return -1;
}

/* Index of the block holding address v, or -1. */
static inline long find_block(const struct range_ctx *c, uintptr_t v)
{
    if (v < c->lo || v >= c->hi)
        return -1;
    uintptr_t base = v >> REGION_SHIFT;
    const struct region *r = NULL;
    for (unsigned k = 0; k < c->nr_regions; k++) {
        if (c->regions[k].base == base) {
            r = &c->regions[k];
            break;
        }
    }
    if (!r)
        return find_block_slow(c, v);
    uint32_t g = (uint32_t)((v >> GRANULE_SHIFT) & (GRANULES - 1));
    size_t i = r->first[g], end = r->first[g + 1];
    while (i < end && c->span[i].lo <= v)
        i++;
    /* i - 1 is the last block starting at or before v (maybe in an earlier granule) */
    if (i > 0 && v < c->span[i - 1].hi && v >= c->span[i - 1].lo)
        return (long)(i - 1);
    if (c->max_size > (1u << GRANULE_SHIFT))
        return find_block_slow(c, v);
    return -1;
}

enum scan_mode { FLOOD, CLASSIFY };

/* Scan the words of [lo, hi) from source src; mark what it reaches per mode. */
static void scan(struct hw_heap *h, const struct range_ctx *c, uintptr_t lo, uintptr_t hi, uint32_t src,
                 enum scan_mode mode, uint32_t head)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    h->scanned_bytes += hi > lo ? hi - lo : 0;
    for (uintptr_t a = lo; a + 8 <= hi; a += 8) {
        uintptr_t v = *(const uintptr_t *)a;
        if (v < MIN_POINTER)
            continue;
        long i = find_block(c, v);
        if (i < 0 || (uint32_t)i == src)
            continue;
        if (h->record_edges) {
            struct hw_edge *e = hw_vec_push(src & HW_EDGE_FROM_ROOT ? &h->root_edges : &h->edges);
            if (e) {
                uintptr_t base = src & HW_EDGE_FROM_ROOT ? lo & ~(uintptr_t)7 : c->o[src].addr;
                *e = (struct hw_edge){ .src = src, .dst = (uint32_t)i, .offset = a - base };
            } else {
                h->incomplete = true;
            }
        }
        bool start = v == c->o[i].addr;
        if (mode == FLOOD) {
            if (start)
                h->flags[i] |= 1;  /* provisional: reached through its start */
            if (h->cls[i] != HW_UNVISITED)
                continue;
            h->cls[i] = HW_REACHABLE;
        } else {
            if ((uint32_t)i == head || h->cls[i] == HW_REACHABLE || h->cls[i] == HW_INDIRECT)
                continue;
            bool earlier_head = h->cls[i] == HW_LEAKED;
            h->cls[i] = HW_INDIRECT;
            if (earlier_head)
                continue;  /* what it reaches is indirect already */
        }
        uint32_t *w = hw_vec_push(&h->work);
        if (w)
            *w = (uint32_t)i;
        else
            h->incomplete = true;
    }
}

static void drain(struct hw_heap *h, const struct range_ctx *c, enum scan_mode mode, uint32_t head)
{
    while (h->work.nr) {
        uint32_t i = ((uint32_t *)h->work.data)[--h->work.nr];
        scan(h, c, c->o[i].addr, c->o[i].addr + c->o[i].size, i, mode, head);
    }
}

void hw_heap_mark(struct hw_heap *h, const struct hw_roots *roots)
{
    struct range_ctx c = { .o = (const struct hw_live_entry *)h->objects.data, .n = h->objects.nr };
    if (c.n) {
        c.lo = c.o[0].addr;
        for (size_t i = 0; i < c.n; i++) {
            uintptr_t end = c.o[i].addr + (c.o[i].size ? c.o[i].size : 1);
            if (end > c.hi)
                c.hi = end;
            if (c.o[i].size > c.max_size)
                c.max_size = c.o[i].size;
        }
    }
    c.span = hw_map(c.n * sizeof *c.span + 1);
    if (c.span) {
        for (size_t i = 0; i < c.n; i++) {
            c.span[i].lo = c.o[i].addr;
            c.span[i].hi = c.o[i].addr + (c.o[i].size ? c.o[i].size : 1);
        }
        if (!build_index(&c)) {
            free_index(&c);
            c.nr_regions = 0;  /* fall back to searching the whole table: slower, same answers */
        }
    } else {
        /* Nothing can be looked up. Claiming leaks would be a lie: call everything reachable. */
        h->incomplete = true;
        memset(h->cls, HW_REACHABLE, c.n);
    }
    const struct hw_root *r = (const struct hw_root *)roots->roots.data;
    for (size_t k = 0; k < roots->roots.nr && c.span; k++) {
        scan(h, &c, r[k].lo, r[k].hi, HW_EDGE_FROM_ROOT | (uint32_t)k, FLOOD, 0);
        drain(h, &c, FLOOD, 0);
    }
    /* Ignored blocks are roots of their own (LeakSanitizer's __lsan_ignore_object). */
    for (size_t i = 0; i < c.n; i++) {
        if (!c.o[i].ignored)
            continue;
        h->flags[i] |= 1 | (HW_FLAG_IGNORED << 1);
        if (h->cls[i] == HW_UNVISITED) {
            h->cls[i] = HW_REACHABLE;
            uint32_t *w = hw_vec_push(&h->work);
            if (w)
                *w = (uint32_t)i;
        }
        drain(h, &c, FLOOD, 0);
    }
    for (size_t i = 0; i < c.n; i++) {
        if (h->cls[i] != HW_UNVISITED)
            continue;
        h->cls[i] = HW_LEAKED;
        scan(h, &c, c.o[i].addr, c.o[i].addr + c.o[i].size, (uint32_t)i, CLASSIFY, (uint32_t)i);
        drain(h, &c, CLASSIFY, (uint32_t)i);
    }
    free_index(&c);
    if (c.span)
        hw_unmap(c.span, c.n * sizeof *c.span + 1);
    /* Final flags: 1 = reachable only through interior pointers, 2 = ignored. */
    for (size_t i = 0; i < c.n; i++) {
        uint8_t f = h->flags[i];
        h->flags[i] = (uint8_t)(((f & 1) || h->cls[i] != HW_REACHABLE ? 0 : HW_FLAG_INTERIOR_ONLY) |
                                ((f >> 1) & HW_FLAG_IGNORED));
        h->count[h->cls[i]]++;
        h->bytes[h->cls[i]] += c.o[i].size;
    }
}

void hw_heap_release(struct hw_heap *h)
{
    hw_vec_release(&h->objects);
    hw_vec_release(&h->edges);
    hw_vec_release(&h->root_edges);
    hw_vec_release(&h->work);
    if (h->cls)
        hw_unmap(h->cls, 2 * h->cls_len);
    h->cls = h->flags = NULL;
}
