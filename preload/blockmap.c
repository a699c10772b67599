/* This file implements the block lookup of blockmap.h. Context: SIGSAFE. */
#define _GNU_SOURCE
#include "blockmap.h"

#include <string.h>
#include "sys.h"

/* Past this many bytes of bitmap entries (16 KiB per 1 MiB page holding a block start) the
 * bitmap costs more than it saves: a heap of huge blocks scattered one per page. */
#define MAX_ENTRY_BYTES ((size_t)512 << 20)

long hw_blockmap_bisect(const struct hw_blockmap *m, uintptr_t v)
{
    size_t lo = 0, hi = m->n;
    if (!hi || m->span[0].lo > v)
        return -1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->span[mid].lo <= v)
            lo = mid;
        else
            hi = mid;
    }
    return v < m->span[lo].hi ? (long)lo : -1;
}

long hw_blockmap_find_big(const struct hw_blockmap *m, uintptr_t v)
{
    size_t lo = 0, hi = m->nr_big;
    if (!hi || m->span[m->big[0]].lo > v)
        return -1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->span[m->big[mid]].lo <= v)
            lo = mid;
        else
            hi = mid;
    }
    uint32_t i = m->big[lo];
    return v < m->span[i].hi ? (long)i : -1;
}

static void release_bitmap(struct hw_blockmap *m)
{
    for (unsigned k = 0; k < m->nr_regions; k++)
        hw_unmap(m->region[k].page, HW_BM_PAGES * sizeof *m->region[k].page);
    m->nr_regions = 0;
    hw_unmap(m->entry, m->nr_pages * HW_BM_ENTRIES * sizeof *m->entry + 1);
    m->entry = NULL;
    m->nr_pages = 0;
    hw_unmap(m->big, m->big_cap * sizeof *m->big + 1);
    m->big = NULL;
    m->big_cap = 0;
    m->nr_big = 0;
}

/* The start bitmap over m->span; false (and nothing kept) where it cannot be built. */
static bool build_bitmap(struct hw_blockmap *m)
{
    size_t pages = 0, big = 0;
    uintptr_t last_page = UINTPTR_MAX;
    for (size_t i = 0; i < m->n; i++) {
        if (m->span[i].lo & ((1u << HW_BM_SLOT_SHIFT) - 1))
            return false;  /* not glibc's alignment: bisection answers it */
        uintptr_t page = m->span[i].lo >> HW_BM_PAGE_SHIFT;
        pages += page != last_page;
        last_page = page;
        big += m->span[i].hi - m->span[i].lo > HW_BM_NEAR;
    }
    if (pages * HW_BM_ENTRIES * sizeof *m->entry > MAX_ENTRY_BYTES || m->n > UINT32_MAX)
        return false;
    m->entry = hw_map_populated(pages * HW_BM_ENTRIES * sizeof *m->entry + 1);
    m->nr_pages = pages;
    m->big = hw_map(big * sizeof *m->big + 1);
    m->big_cap = big;
    if (!m->entry || !m->big) {
        release_bitmap(m);
        return false;
    }
    /* Pages are numbered in address order, so counting starts page by page, entry by entry,
     * gives each entry the number of blocks below it. */
    size_t page_no = 0;
    last_page = UINTPTR_MAX;
    struct hw_bm_region *r = NULL;
    for (size_t i = 0; i < m->n; i++) {
        uintptr_t a = m->span[i].lo;
        if (!r || r->base != a >> HW_BM_REGION_SHIFT) {
            if (m->nr_regions == HW_BM_MAX_REGIONS) {
                release_bitmap(m);
                return false;
            }
            r = &m->region[m->nr_regions++];
            r->base = a >> HW_BM_REGION_SHIFT;
            r->page = hw_map(HW_BM_PAGES * sizeof *r->page);
            if (!r->page) {
                m->nr_regions--;
                release_bitmap(m);
                return false;
            }
        }
        if (a >> HW_BM_PAGE_SHIFT != last_page) {
            last_page = a >> HW_BM_PAGE_SHIFT;
            r->page[last_page & (HW_BM_PAGES - 1)] = (uint32_t)++page_no;
        }
        struct hw_bm_entry *e = &m->entry[(page_no - 1) * HW_BM_ENTRIES + ((a >> HW_BM_ENTRY_SHIFT) & (HW_BM_ENTRIES - 1))];
        e->starts |= 1ull << ((a >> HW_BM_SLOT_SHIFT) & 63);
        if (m->span[i].hi - a > HW_BM_NEAR)
            m->big[m->nr_big++] = (uint32_t)i;
    }
    uint64_t before = 0;
    for (size_t k = 0; k < pages * HW_BM_ENTRIES; k++) {
        m->entry[k].before = before;
        before += hw_bm_popcount(m->entry[k].starts);
    }
    return true;
}

bool hw_blockmap_build(struct hw_blockmap *m, const struct hw_live_entry *o, size_t n)
{
    memset(m, 0, sizeof *m);
    m->n = n;
    m->span = hw_map_populated(n * sizeof *m->span + 1);
    if (!m->span)
        return false;
    for (size_t i = 0; i < n; i++) {
        m->span[i].lo = o[i].addr;
        m->span[i].hi = o[i].addr + (o[i].size ? o[i].size : 1);
        if (!i || m->span[i].hi > m->hi)
            m->hi = m->span[i].hi;
    }
    m->lo = n ? m->span[0].lo : 0;
    build_bitmap(m);
    return true;
}

void hw_blockmap_release(struct hw_blockmap *m)
{
    release_bitmap(m);
    hw_unmap(m->span, m->n * sizeof *m->span + 1);
    m->span = NULL;
    m->n = 0;
}
