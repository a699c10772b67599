/* This file implements the unit test of preload/shadow.c, the shadow map of block starts:
 * bytes at the first and last granule of a page and of a region, in the lowest and highest
 * shadowed regions, what is not covered, the scan's address order, and 8 threads that set
 * and clear the bytes of neighbouring blocks (interleaved granules, across page and region
 * boundaries) at once, each thread keeping a plain set of its own blocks to check the final
 * scan against. Prints TAP. */
// LINK: preload/shadow.c preload/sys.c
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "shadow.h"

#define G (1ul << HW_SHADOW_GRANULE_SHIFT)
#define PAGE (1ul << HW_SHADOW_PAGE_SHIFT)
#define REGION (1ul << HW_SHADOW_REGION_SHIFT)

struct seen {
    uintptr_t addr[64];
    uint8_t byte[64];
    size_t n;
};

static bool collect(uintptr_t addr, uint8_t byte, void *arg)
{
    struct seen *s = arg;
    if (s->n < 64) {
        s->addr[s->n] = addr;
        s->byte[s->n] = byte;
    }
    s->n++;
    return true;
}

struct stop_at {
    size_t n;
};

static bool first_only(uintptr_t addr, uint8_t byte, void *arg)
{
    (void)addr, (void)byte;
    ((struct stop_at *)arg)->n++;
    return false;
}

/* Threads: each owns the granules g with g % THREADS == id in [BASE, BASE + SPAN). */
#define THREADS 8
#define SPAN (2 * PAGE + 64 * G)
#define BASE (3 * REGION - PAGE - 32 * G)   /* crosses a page and a region boundary */
#define GRANULES (SPAN / G)

static uint8_t expect[GRANULES];   /* per granule: the byte its owner left */

static void *churn(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t x = 0x9e3779b97f4a7c15ull * (id + 1);
    for (int round = 0; round < 200000; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t g = (size_t)(x % (GRANULES / THREADS)) * THREADS + id;
        uintptr_t a = BASE + g * G;
        if (expect[g]) {
            *hw_shadow_find(a) = 0;   /* free */
            expect[g] = 0;
        } else {
            uint8_t v = (uint8_t)(HW_SHADOW_LIVE | (x >> 40 & HW_SHADOW_SLACK));
            *hw_shadow_make(a) = v;   /* malloc */
            expect[g] = v;
        }
    }
    return NULL;
}

struct check {
    size_t bad, n;
};

static bool compare(uintptr_t addr, uint8_t byte, void *arg)
{
    struct check *c = arg;
    c->n++;
    if (addr < BASE || addr >= BASE + SPAN || expect[(addr - BASE) / G] != byte)
        c->bad++;
    return true;
}

int main(void)
{
    struct seen s = { .n = 0 };
    hw_shadow_scan(collect, &s);
    CHECK(s.n == 0 && hw_shadow_footprint() == 0, "empty: nothing to scan, nothing mapped");
    CHECK(hw_shadow_get(0x10000) == 0 && hw_shadow_find(0x10000) == NULL, "an unmapped page reads 0");
    CHECK(!hw_shadow_covers(0) && !hw_shadow_covers(0x1008) && !hw_shadow_covers(1ul << 48) && hw_shadow_covers(0x1010),
          "covered: 16-byte aligned, nonzero, below 2^48");

    /* Edges: first and last granule of a page, of a region, of the address space. */
    const uintptr_t edges[] = { G, PAGE - G, PAGE, 5 * REGION - G, 5 * REGION, (1ul << 48) - G };
    const size_t ne = sizeof edges / sizeof edges[0];
    for (size_t i = 0; i < ne; i++)
        *hw_shadow_make(edges[i]) = (uint8_t)(HW_SHADOW_LIVE | i);
    bool all = true;
    for (size_t i = 0; i < ne; i++) {
        all &= hw_shadow_get(edges[i]) == (uint8_t)(HW_SHADOW_LIVE | i);
        for (int side = -1; side <= 1; side += 2) {   /* neighbours that are not edges stay 0 */
            uintptr_t n = edges[i] + (uintptr_t)(side * (long)G);
            bool edge = false;
            for (size_t k = 0; k < ne; k++)
                edge |= edges[k] == n;
            if (hw_shadow_covers(n) && !edge)
                all &= hw_shadow_get(n) == 0;
        }
    }
    CHECK(all, "each edge granule holds its own byte; its neighbours stay 0");
    s.n = 0;
    hw_shadow_scan(collect, &s);
    all = s.n == ne;
    for (size_t i = 0; i < ne && all; i++)
        all = s.addr[i] == edges[i] && s.byte[i] == (uint8_t)(HW_SHADOW_LIVE | i);
    CHECK(all, "the scan finds exactly them, in address order, with their bytes");
    uint64_t footprint = hw_shadow_footprint();
    CHECK(footprint == 4 * sizeof(struct hw_shadow_region) + 5ull * HW_SHADOW_PAGE_BYTES,
          "4 regions and 5 pages mapped, nothing more (%llu bytes)", (unsigned long long)footprint);
    for (size_t i = 0; i < ne; i++)
        *hw_shadow_find(edges[i]) = 0;
    s.n = 0;
    hw_shadow_scan(collect, &s);
    CHECK(s.n == 0, "cleared bytes are not found");

    struct stop_at stop = { 0 };
    *hw_shadow_make(7 * REGION) = HW_SHADOW_LIVE;
    *hw_shadow_make(7 * REGION + G) = HW_SHADOW_LIVE;
    hw_shadow_scan(first_only, &stop);
    CHECK(stop.n == 1, "a visitor that returns false stops the scan");
    *hw_shadow_find(7 * REGION) = 0;
    *hw_shadow_find(7 * REGION + G) = 0;

    /* Neighbouring blocks of 8 threads, each checked against its own plain set. */
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    size_t live = 0;
    for (size_t g = 0; g < GRANULES; g++)
        live += expect[g] != 0;
    struct check c = { 0, 0 };
    hw_shadow_scan(compare, &c);
    CHECK(c.bad == 0 && c.n == live, "8 threads on interleaved granules: the scan equals the union of their sets"
          " (%zu live, %zu found, %zu wrong)", live, c.n, c.bad);
    return done();
}
