/* This file implements the shadow map of shadow.h: installing regions and pages on first
 * write, the address-ordered scan of the heap walk, and the footprint.
 * Context: HOOKSAFE (mappings only, never the libc allocator); the scan is SIGSAFE. */
#define _GNU_SOURCE
#include "shadow.h"

#include <string.h>
#include "sys.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "hw_shadow_scan reads eight granules' bytes as one little-endian word"
#endif

struct hw_shadow_region *_Atomic hw_shadow_top[HW_SHADOW_REGIONS];
static _Atomic uint64_t nr_regions, nr_pages;

/* *slot, or a fresh zeroed mapping of len bytes installed there; whoever loses the race
 * unmaps its own. NULL when out of memory. */
static HW_COLD void *install(void *_Atomic *slot, size_t len, _Atomic uint64_t *count)
{
    void *mine = hw_map(len);
    if (!mine)
        return NULL;
    void *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(slot, &expected, mine, memory_order_acq_rel, memory_order_acquire)) {
        hw_unmap(mine, len);
        return expected;
    }
    atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
    return mine;
}

uint8_t *hw_shadow_make(uintptr_t addr)
{
    uint8_t *b = hw_shadow_find(addr);
    if (HW_LIKELY(b != NULL))
        return b;
    struct hw_shadow_region *_Atomic *top = &hw_shadow_top[addr >> HW_SHADOW_REGION_SHIFT];
    struct hw_shadow_region *r = atomic_load_explicit(top, memory_order_acquire);
    if (!r && !(r = install((void *_Atomic *)top, sizeof *r, &nr_regions)))
        return NULL;
    uint8_t *_Atomic *slot = &r->page[(addr >> HW_SHADOW_PAGE_SHIFT) & (HW_SHADOW_PAGES - 1)];
    uint8_t *page = atomic_load_explicit(slot, memory_order_acquire);
    if (!page && !(page = install((void *_Atomic *)slot, HW_SHADOW_PAGE_BYTES, &nr_pages)))
        return NULL;
    return &page[(addr >> HW_SHADOW_GRANULE_SHIFT) & (HW_SHADOW_PAGE_BYTES - 1)];
}

void hw_shadow_scan(bool (*fn)(uintptr_t addr, uint8_t byte, void *arg), void *arg)
{
    for (uintptr_t ri = 0; ri < HW_SHADOW_REGIONS; ri++) {
        struct hw_shadow_region *r = atomic_load_explicit(&hw_shadow_top[ri], memory_order_acquire);
        if (!r)
            continue;
        for (uintptr_t pi = 0; pi < HW_SHADOW_PAGES; pi++) {
            const uint8_t *page = atomic_load_explicit(&r->page[pi], memory_order_acquire);
            if (!page)
                continue;
            uintptr_t base = ri << HW_SHADOW_REGION_SHIFT | pi << HW_SHADOW_PAGE_SHIFT;
            /* Eight granules at a time: most words of a sparse heap's shadow are zero. */
            for (size_t w = 0; w < HW_SHADOW_PAGE_BYTES; w += 8) {
                uint64_t word;
                memcpy(&word, page + w, 8);
                while (word) {
                    unsigned shift = (unsigned)__builtin_ctzll(word) & ~7u;
                    uint8_t byte = (uint8_t)(word >> shift);
                    word &= ~(0xffull << shift);
                    size_t k = w + shift / 8;
                    if (!fn(base + (k << HW_SHADOW_GRANULE_SHIFT), byte, arg))
                        return;
                }
            }
        }
    }
}

uint64_t hw_shadow_footprint(void)
{
    return atomic_load_explicit(&nr_regions, memory_order_relaxed) * sizeof(struct hw_shadow_region) +
           atomic_load_explicit(&nr_pages, memory_order_relaxed) * HW_SHADOW_PAGE_BYTES;
}
