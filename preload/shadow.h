/* shadow.h: the shadow map of block starts: one byte per 16-byte granule of the heap's
 * address space, as AddressSanitizer's shadow memory, saying whether a live block starts
 * there and what the shim knows of it.
 *
 * malloc writes its block's byte and free clears it, with plain byte stores: two blocks
 * never start in the same granule (blocks that do not start on one go to the live table
 * instead, record.c), so no lock and no atomic read-modify-write is needed; the allocator's
 * own synchronisation orders a free before the next malloc of the same address. Neighbouring
 * blocks share shadow cache lines, where a hash entry per block touched a random line each
 * time and evicted the program's own working set.
 *
 * Layout: a static top level of 2^16 regions of 4 GiB (user addresses below 2^48; higher
 * ones are not shadowed), each region a 32 KiB table of 4096 pages of 1 MiB, each page a 64
 * KiB mapping of its granules' bytes. Regions and pages are mapped when first written and
 * installed with a compare-and-swap; they are never unmapped, so a reader never sees one go.
 * The heap walk scans the installed pages in address order: the shadow is the sorted set of
 * live block starts, for free. Memory: 1/16 of the address span the heap touches, in 1 MiB
 * steps (a heap of 32-byte blocks: 2 bytes a block).
 * Context: HOOKSAFE; the lookups and the scan are SIGSAFE. */
#ifndef HW_SHADOW_H
#define HW_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hw.h"

#define HW_SHADOW_GRANULE_SHIFT 4
#define HW_SHADOW_PAGE_SHIFT 20
#define HW_SHADOW_REGION_SHIFT 32
#define HW_SHADOW_ADDR_BITS 48
#define HW_SHADOW_REGIONS (1u << (HW_SHADOW_ADDR_BITS - HW_SHADOW_REGION_SHIFT))
#define HW_SHADOW_PAGES (1u << (HW_SHADOW_REGION_SHIFT - HW_SHADOW_PAGE_SHIFT))
#define HW_SHADOW_PAGE_BYTES (1u << (HW_SHADOW_PAGE_SHIFT - HW_SHADOW_GRANULE_SHIFT))

/* The byte of a granule. 0: no live block starts there. */
#define HW_SHADOW_LIVE 0x80      /* a live block starts at the granule */
#define HW_SHADOW_TABLE 0x40     /* the live table holds its entry (sampled, or slack too big) */
#define HW_SHADOW_IGNORED 0x20   /* heapwatch_ignore()d */
#define HW_SHADOW_SLACK 0x1f     /* without TABLE: usable size - requested size, 0..31 */

struct hw_shadow_region {
    uint8_t *_Atomic page[HW_SHADOW_PAGES];
};

extern HW_INTERNAL struct hw_shadow_region *_Atomic hw_shadow_top[HW_SHADOW_REGIONS];

/* Whether addr can have a byte: 16-byte aligned, below 2^48, not 0. */
static inline bool hw_shadow_covers(uintptr_t addr)
{
    return !(addr & ((1u << HW_SHADOW_GRANULE_SHIFT) - 1)) && addr && !(addr >> HW_SHADOW_ADDR_BITS);
}

/* The byte of addr (covered) if its page exists, else NULL. Context: SIGSAFE. */
static inline uint8_t *hw_shadow_find(uintptr_t addr)
{
    struct hw_shadow_region *r = atomic_load_explicit(&hw_shadow_top[addr >> HW_SHADOW_REGION_SHIFT],
                                                      memory_order_acquire);
    if (HW_UNLIKELY(!r))
        return NULL;
    uint8_t *page = atomic_load_explicit(&r->page[(addr >> HW_SHADOW_PAGE_SHIFT) & (HW_SHADOW_PAGES - 1)],
                                         memory_order_acquire);
    if (HW_UNLIKELY(!page))
        return NULL;
    return &page[(addr >> HW_SHADOW_GRANULE_SHIFT) & (HW_SHADOW_PAGE_BYTES - 1)];
}

/* The byte of addr (covered), 0 when its page does not exist. Context: SIGSAFE. */
static inline uint8_t hw_shadow_get(uintptr_t addr)
{
    const uint8_t *b = hw_shadow_find(addr);
    return b ? *b : 0;
}

/* The byte of addr (covered), its region and page mapped if need be; NULL only when out of
 * memory. */
uint8_t *hw_shadow_make(uintptr_t addr) HW_HOOKSAFE;

/* Visit every nonzero byte in address order: fn(addr, byte, arg); fn returns false to stop.
 * For a stopped world or its fork child (bytes written meanwhile may or may not be seen).
 * Context: SIGSAFE. */
void hw_shadow_scan(bool (*fn)(uintptr_t addr, uint8_t byte, void *arg), void *arg) HW_SIGSAFE;

/* Bytes mapped for regions and pages. Context: SIGSAFE. */
uint64_t hw_shadow_footprint(void) HW_SIGSAFE;

#endif
