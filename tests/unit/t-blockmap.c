/* This file implements the unit test of preload/blockmap.c: synthetic heaps (addresses only;
 * the lookup never reads a block's memory) whose every block, every block's edges and
 * random values around them are looked up and compared with a plain search of the sorted
 * blocks. The heaps mix small, near-limit and big blocks, empty blocks, gaps that skip pages
 * and 4 GiB regions, blocks that cross a page or region boundary, and one misaligned block
 * that forces the bisection fallback. Prints TAP. */
// LINK: preload/blockmap.c preload/sys.c
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "blockmap.h"

#define MAX_BLOCKS 200000

static struct hw_live_entry blocks[MAX_BLOCKS];
static size_t nr;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void add(uintptr_t addr, uint64_t size)
{
    blocks[nr++] = (struct hw_live_entry){ .addr = addr, .size = size };
}

/* The reference: last block starting at or below v, if v is before its end. */
static long reference(uintptr_t v, bool *at_start)
{
    long lo = -1, hi = (long)nr;
    while (hi - lo > 1) {
        long mid = lo + (hi - lo) / 2;
        if (blocks[mid].addr <= v)
            lo = mid;
        else
            hi = mid;
    }
    *at_start = false;
    if (lo < 0)
        return -1;
    uint64_t size = blocks[lo].size ? blocks[lo].size : 1;
    if (v >= blocks[lo].addr + size)
        return -1;
    *at_start = v == blocks[lo].addr;
    return lo;
}

static unsigned mismatches;

static void probe(const struct hw_blockmap *m, uintptr_t v)
{
    bool s1, s2 = false;
    long want = reference(v, &s1);
    long got = hw_blockmap_find(m, v, &s2);
    if (got != want || (got >= 0 && s1 != s2)) {
        if (mismatches++ < 5)
            diag("value %#lx: want %ld%s, got %ld%s", (unsigned long)v, want, s1 ? " (start)" : "", got,
                 s2 ? " (start)" : "");
    }
}

/* Look up every block's start, interior words and edges, and random values. */
static unsigned probe_all(const struct hw_blockmap *m)
{
    mismatches = 0;
    for (size_t i = 0; i < nr; i++) {
        uintptr_t a = blocks[i].addr, s = blocks[i].size;
        uintptr_t vals[] = { a, a - 1, a - 16, a + 1, a + 8, a + 16, a + s / 2, a + s - 1, a + s, a + s + 16,
                             a + (s > 8 ? rnd() % s : 0) };
        for (size_t k = 0; k < sizeof vals / sizeof *vals; k++)
            probe(m, vals[k]);
    }
    uintptr_t lo = blocks[0].addr, span = blocks[nr - 1].addr + blocks[nr - 1].size - lo;
    for (int k = 0; k < 200000; k++)
        probe(m, lo - 4096 + rnd() % (span + 8192));
    return mismatches;
}

/* A heap from a seed: runs of small blocks, near-limit and big blocks, empty blocks, gaps of
 * every scale. */
static void make_heap(uint64_t seed, size_t count, uintptr_t start, unsigned region_jumps_per_100k)
{
    rng = seed;
    nr = 0;
    uintptr_t at = start;
    for (size_t i = 0; i < count; i++) {
        uint64_t r = rnd() % 1000;
        uint64_t size = r < 900 ? 16 + rnd() % 500
                        : r < 950 ? HW_BM_NEAR - 64 + rnd() % 128  /* either side of the limit */
                        : r < 970 ? 0
                        : r < 990 ? 8192 + rnd() % 200000
                        : 1 + rnd() % 15;
        add(at, size);
        uint64_t g = rnd() % 100000;
        uintptr_t gap = g < region_jumps_per_100k ? (uintptr_t)1 << 32
                        : g < 85000 ? 0 : g < 98000 ? rnd() % 4096 : g < 99700 ? rnd() % (3u << 20) : 0;
        at = (at + (size ? size : 1) + gap + 15) & ~(uintptr_t)15;
    }
}

int main(void)
{
    struct hw_blockmap m;

    nr = 0;
    CHECK(hw_blockmap_build(&m, blocks, 0), "an empty heap builds");
    bool s;
    CHECK(hw_blockmap_find(&m, 0x10000, &s) == -1, "an empty heap holds nothing");
    hw_blockmap_release(&m);

    for (uint64_t seed = 1; seed <= 4; seed++) {
        make_heap(seed * 0x2545F4914F6CDD1Dull, 50000, (uintptr_t)0x555500000000 + seed * 0xfff00, 50);
        CHECK(hw_blockmap_build(&m, blocks, nr), "heap %llu (%zu blocks) builds", (unsigned long long)seed, nr);
        CHECK(m.entry != NULL, "heap %llu uses the bitmap (%zu pages, %u regions, %zu big)",
              (unsigned long long)seed, m.nr_pages, m.nr_regions, m.nr_big);
        CHECK(probe_all(&m) == 0, "heap %llu: every lookup agrees with the reference", (unsigned long long)seed);
        hw_blockmap_release(&m);
    }

    /* Boundaries: a block ending exactly at a page and one at a region boundary; a big block
     * crossing a region boundary; a small block just after a big one in the same entry. */
    nr = 0;
    add(0x7f0000000000 - 64, 64);
    add(0x7f0000000000, 32);
    add(0x7f00000ffff0, 32);            /* crosses a 1 MiB page */
    add(0x7f00fffff000, 0x2000);        /* crosses a 4 GiB region */
    add(0x7f0100001000, 5000);
    add(0x7f0100001000 + 5008, 16);
    add(0x7f0100400000, 3 << 20);       /* big, spans pages without starts */
    CHECK(hw_blockmap_build(&m, blocks, nr), "boundary heap builds");
    CHECK(m.entry != NULL && m.nr_regions == 3, "boundary heap: bitmap over 3 regions (%u)", m.nr_regions);
    CHECK(probe_all(&m) == 0, "boundary heap: every lookup agrees with the reference");
    CHECK(hw_blockmap_find(&m, 0x7f0100400000 + (2 << 20) + 8, &s) == 6 && !s,
          "a pointer 2 MiB into a big block finds it");
    CHECK(hw_blockmap_find(&m, 0x7f0100000800, &s) == 3 && !s, "a pointer past a region boundary finds the block that crosses it");
    hw_blockmap_release(&m);

    /* More 4 GiB regions than the bitmap has room for: the bisection fallback. */
    make_heap(98, 20000, (uintptr_t)0x200000000000, 1000);
    CHECK(hw_blockmap_build(&m, blocks, nr), "heap over ~200 regions builds");
    CHECK(m.entry == NULL, "too many regions turn the bitmap off");
    CHECK(probe_all(&m) == 0, "many-region heap: every lookup agrees with the reference");
    hw_blockmap_release(&m);

    /* One block that is not 16-byte aligned: the bisection fallback, same answers. */
    make_heap(99, 20000, (uintptr_t)0x560000000000, 5);
    blocks[nr / 2].addr += 8;
    blocks[nr / 2].size = 8;
    CHECK(hw_blockmap_build(&m, blocks, nr), "misaligned heap builds");
    CHECK(m.entry == NULL, "a misaligned block turns the bitmap off");
    CHECK(probe_all(&m) == 0, "misaligned heap: every lookup agrees with the reference");
    hw_blockmap_release(&m);
    return done();
}
