/* This file implements the unit test of preload/mark.c: a small heap whose reachability is
 * known exactly, built from blocks of this test's own heap registered in the live table, and
 * one root range. Checks every class and flag (a chain held by a root; a leaked list: one
 * direct head and indirect nodes; an unreachable cycle split at its lowest address; a direct
 * leak absorbed as indirect when another leaked block points at it; a self-pointing leak; an
 * interior pointer and what only such a block holds (memcheck's possibly lost, propagated);
 * a block reached both ways; an ignored block and what it reaches; a block bigger than the lookup's
 * granule reached far inside), the per-class totals and the edges from the root with their
 * offsets in the source and in the target (past 32 bits too, in reserved address space);
 * and the first words kept as vtable pointer candidates: only those that point into the
 * modules' data ranges given. Prints TAP. */
// LINK: preload/glibcheap.c preload/maps.c preload/mark.c preload/blockmap.c preload/livetable.c preload/shadow.c preload/real.c preload/forkgate.c preload/threads.c preload/sys.c
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "harness.h"
#include "maps.h"
#include "mark.h"

struct blk {
    struct blk *p[4];
    char pad[32];
};

static void *root_area[8];
static const uint64_t fake_vtable[4] = { 1, 2, 3, 4 };  /* stands for a module's .data.rel.ro */
static struct hw_live_entry entries[64];
static unsigned nr;

/* Register p as a live block of size bytes. */
static void *track_at(void *p, size_t size)
{
    struct hw_live_entry e = { .addr = (uintptr_t)p, .size = size, .stack = ++nr, .seq = nr };
    entries[nr - 1] = e;
    hw_livetable_insert(&e);
    return p;
}

static void *track(size_t size)
{
    return track_at(calloc(1, size), size);
}

static long index_of(const struct hw_heap *h, const void *p)
{
    const struct hw_live_entry *o = (const struct hw_live_entry *)h->objects.data;
    for (size_t i = 0; i < h->objects.nr; i++)
        if (o[i].addr == (uintptr_t)p)
            return (long)i;
    return -1;
}

static int cls(const struct hw_heap *h, const void *p) { long i = index_of(h, p); return i < 0 ? -1 : h->cls[i]; }
static int flags(const struct hw_heap *h, const void *p) { long i = index_of(h, p); return i < 0 ? -1 : h->flags[i]; }

int main(void)
{
    CHECK(hw_livetable_init(), "live table maps");
    /* a chain held by the root: A -> B -> C */
    struct blk *a = track(sizeof *a), *b = track(sizeof *b), *c = track(sizeof *c);
    a->p[0] = b;
    b->p[2] = c;
    root_area[1] = a;
    /* a leaked list: head -> n1 -> n2 */
    struct blk *head = track(sizeof *head), *n1 = track(sizeof *n1), *n2 = track(sizeof *n2);
    head->p[0] = n1;
    n1->p[0] = n2;
    /* an unreachable cycle x <-> y */
    struct blk *x = track(sizeof *x), *y = track(sizeof *y);
    x->p[1] = y;
    y->p[1] = x;
    /* p -> q, both unreachable: p direct, q indirect whichever the walk visits first */
    struct blk *q = track(sizeof *q), *p = track(sizeof *p);
    p->p[3] = q;
    /* a leak that points only at itself */
    struct blk *self = track(sizeof *self);
    self->p[0] = self;
    /* an interior pointer from the root, to a block that holds another by its start: both
     * possibly lost (memcheck propagates it) */
    struct blk *in = track(sizeof *in), *inheld = track(sizeof *inheld);
    root_area[3] = (char *)in + 24;
    in->p[1] = inheld;
    /* reached through an interior pointer from the root and by its start from c: definite */
    struct blk *up = track(sizeof *up);
    root_area[6] = (char *)up + 8;
    c->p[3] = up;
    /* an ignored block and what it holds */
    struct blk *ig = track(sizeof *ig), *held = track(sizeof *held);
    ig->p[0] = held;
    CHECK(hw_livetable_set_ignored((uintptr_t)ig), "set_ignored finds a live block");
    CHECK(!hw_livetable_set_ignored((uintptr_t)ig + 8), "set_ignored refuses an interior address");
    /* a block bigger than a 4 KiB granule, reached 90 KiB inside */
    char *big = track(100 * 1024);
    root_area[5] = big + 90 * 1024;
    /* an unreferenced block, to count */
    void *lone = track(40);
    /* held by a: an "object" whose first word points into a module's data (a vtable), one
     * whose first word points elsewhere, one pointing into the data but misaligned */
    struct blk *poly = track(sizeof *poly), *plain = track(sizeof *plain), *odd = track(sizeof *odd);
    poly->p[0] = (struct blk *)&fake_vtable[2];
    plain->p[0] = (struct blk *)root_area;
    odd->p[0] = (struct blk *)((char *)&fake_vtable[2] + 4);
    a->p[1] = poly;
    a->p[2] = plain;
    a->p[3] = odd;

    struct hw_roots roots = { .roots = { .elem = sizeof(struct hw_root) } };
    struct hw_root *r = hw_vec_push(&roots.roots);
    *r = (struct hw_root){ .lo = (uintptr_t)root_area, .hi = (uintptr_t)(root_area + 8), .kind = HW_ROOT_REGION };
    roots.data.elem = sizeof(struct hw_range);
    struct hw_range *d = hw_vec_push(&roots.data);
    *d = (struct hw_range){ (uintptr_t)fake_vtable, (uintptr_t)(fake_vtable + 4) };

    struct hw_heap h = { 0 };
    CHECK(hw_heap_load(&h, NULL, 0), "load copies and sorts the live table");
    CHECK(h.objects.nr == nr, "every tracked block loaded (%zu of %u)", h.objects.nr, nr);
    const struct hw_live_entry *o = (const struct hw_live_entry *)h.objects.data;
    bool sorted = true;
    for (size_t i = 1; i < h.objects.nr; i++)
        sorted &= o[i - 1].addr < o[i].addr;
    CHECK(sorted, "blocks sorted by address");
    hw_heap_mark(&h, &roots);

    CHECK(cls(&h, a) == HW_REACHABLE && cls(&h, b) == HW_REACHABLE && cls(&h, c) == HW_REACHABLE,
          "a chain held by a root is reachable");
    CHECK(cls(&h, head) == HW_LEAKED && cls(&h, n1) == HW_INDIRECT && cls(&h, n2) == HW_INDIRECT,
          "a leaked list: direct head, indirect nodes");
    void *lower = x < y ? (void *)x : (void *)y, *upper = x < y ? (void *)y : (void *)x;
    CHECK(cls(&h, lower) == HW_LEAKED && cls(&h, upper) == HW_INDIRECT,
          "an unreachable cycle: the lowest address is the direct leak, the rest indirect");
    CHECK(cls(&h, p) == HW_LEAKED && cls(&h, q) == HW_INDIRECT, "a leak pointed to by another leak is indirect (%s first)",
          q < p ? "q" : "p");
    CHECK(cls(&h, self) == HW_LEAKED, "a block pointing only at itself is a direct leak");
    CHECK(cls(&h, in) == HW_REACHABLE && flags(&h, in) == HW_FLAG_INTERIOR_ONLY,
          "an interior pointer keeps a block, flagged possibly lost");
    CHECK(cls(&h, inheld) == HW_REACHABLE && flags(&h, inheld) == HW_FLAG_INTERIOR_ONLY,
          "what only a possibly lost block holds is possibly lost too, start pointer or not");
    CHECK(cls(&h, up) == HW_REACHABLE && flags(&h, up) == 0,
          "a block also reached by start pointers from a root is not possibly lost");
    CHECK(flags(&h, a) == 0, "a block reached through its start is not flagged");
    CHECK(cls(&h, ig) == HW_REACHABLE && flags(&h, ig) == HW_FLAG_IGNORED && cls(&h, held) == HW_REACHABLE,
          "an ignored block is a root: reachable, flagged, and so is what it holds");
    CHECK(cls(&h, big) == HW_REACHABLE, "a block bigger than a granule is found from far inside");
    CHECK(cls(&h, lone) == HW_LEAKED, "an unreferenced block is a direct leak");
    CHECK(h.count[HW_REACHABLE] == 12 && h.count[HW_INDIRECT] == 4 && h.count[HW_LEAKED] == 5,
          "class totals 12/4/5 (got %lu/%lu/%lu)", (unsigned long)h.count[0], (unsigned long)h.count[1],
          (unsigned long)h.count[2]);
    uint64_t leaked_bytes = 4 * sizeof(struct blk) + 40;
    CHECK(h.bytes[HW_LEAKED] == leaked_bytes, "leaked bytes %lu", (unsigned long)h.bytes[HW_LEAKED]);

    /* edges from the root: slots 1, 3 and 5, at their byte offsets */
    const struct hw_edge *e = (const struct hw_edge *)h.root_edges.data;
    CHECK(h.root_edges.nr == 4, "four edges from the root (%zu)", h.root_edges.nr);
    bool offsets = h.root_edges.nr == 4 && e[0].word == 1 && e[1].word == 3 && e[2].word == 5 &&
                   e[3].word == 6 &&
                   e[0].dst == (uint32_t)index_of(&h, a) && (e[0].src & HW_EDGE_FROM_ROOT);
    CHECK(offsets, "root edges carry their offsets and targets");
    CHECK(h.root_edges.nr == 4 && e[0].target_offset == 0 && e[1].target_offset == 24 &&
          e[2].target_offset == 90 * 1024 && e[3].target_offset == 8,
          "root edges carry where they point in their targets: 0 for a start, the interior offset otherwise");
    /* block edges: a->b, a->poly, a->plain, a->odd, b->c, c->up, in->inheld, head->n1, n1->n2,
     * x->y, y->x, p->q, ig->held (self-pointers are not edges) */
    CHECK(h.edges.nr == 13, "thirteen edges between blocks (%zu)", h.edges.nr);
    const struct hw_edge *be = (const struct hw_edge *)h.edges.data;
    bool starts = true;
    for (size_t i = 0; i < h.edges.nr; i++)
        starts &= be[i].target_offset == 0;
    CHECK(starts, "pointers to blocks' starts have target offset 0");
    CHECK(h.vptr && h.vptr[index_of(&h, poly)] == (uintptr_t)&fake_vtable[2],
          "a block whose first word points into a module's data keeps it as its vptr");
    CHECK(h.vptr && !h.vptr[index_of(&h, plain)] && !h.vptr[index_of(&h, odd)] && !h.vptr[index_of(&h, a)] &&
          !h.vptr[index_of(&h, lone)],
          "blocks whose first word points elsewhere, or is misaligned, or is a heap pointer or 0, have none");
    CHECK(!h.incomplete, "the walk completed");
    CHECK(!h.wide.nr && !h.root_wide.nr, "no edge needed wide offsets");
    hw_heap_release(&h);

    /* Offsets past 32 bits: a 5 GiB block pointed to 4.5 GiB in, and a 33 GiB block holding a
     * pointer 32.5 GiB in. Reserved address space only (PROT_NONE), with a readable page
     * where the walk reads; the walk skips the rest as unreadable (real mappings this time). */
    const size_t G = (size_t)1 << 30;
    char *huge = mmap(NULL, 5 * G, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    char *vast = mmap(NULL, 33 * G, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (huge == MAP_FAILED || vast == MAP_FAILED || mprotect(huge, 4096, PROT_READ | PROT_WRITE) ||
        mprotect(vast + 32 * G + G / 2, 4096, PROT_READ | PROT_WRITE)) {
        diag("cannot reserve 38 GiB of address space: wide offsets not checked");
        return done();
    }
    *(void **)(vast + 32 * G + G / 2) = a;
    track_at(huge, 5 * G);
    track_at(vast, 33 * G);
    static void *far[2];
    far[0] = huge + 4 * G + G / 2;
    far[1] = huge;
    struct hw_roots roots2 = { .roots = { .elem = sizeof(struct hw_root) }, .maps = { .elem = sizeof(struct hw_mapping) } };
    r = hw_vec_push(&roots2.roots);
    *r = (struct hw_root){ .lo = (uintptr_t)far, .hi = (uintptr_t)(far + 2), .kind = HW_ROOT_REGION };
    hw_maps_read(&roots2.maps);
    struct hw_heap h2 = { 0 };
    CHECK(hw_heap_load(&h2, NULL, 0) && roots2.maps.nr, "a second walk, with huge blocks and the real mappings");
    hw_heap_mark(&h2, &roots2);
    e = (const struct hw_edge *)h2.root_edges.data;
    uint64_t off[2] = { 0, 0 }, toff[2] = { 0, 0 };
    size_t next_wide = 0;
    for (size_t i = 0; i < h2.root_edges.nr && i < 2; i++)
        hw_edge_offsets(&e[i], &h2.root_wide, &next_wide, &off[i], &toff[i]);
    CHECK(h2.root_edges.nr == 2 && e[0].word == HW_EDGE_WIDE && e[1].word == 1 && h2.root_wide.nr == 1,
          "a pointer 4.5 GiB into its target is a wide edge, the next one is not");
    CHECK(off[0] == 0 && toff[0] == 4 * G + G / 2 && off[1] == 8 && toff[1] == 0 && next_wide == 1,
          "hw_edge_offsets reads both kinds: 4.5 GiB exactly, then 0");
    bool found = false;
    next_wide = 0;
    e = (const struct hw_edge *)h2.edges.data;
    for (size_t i = 0; i < h2.edges.nr; i++) {
        uint64_t o64, t64;
        hw_edge_offsets(&e[i], &h2.wide, &next_wide, &o64, &t64);
        if (e[i].src == (uint32_t)index_of(&h2, vast))
            found = e[i].dst == (uint32_t)index_of(&h2, a) && o64 == 32 * G + G / 2 && t64 == 0;
    }
    CHECK(found && h2.wide.nr == 1 && next_wide == 1, "a pointer 32.5 GiB into its source: a wide edge, exact");
    CHECK(cls(&h2, huge) == HW_REACHABLE && !h2.incomplete, "the huge block is reached from 4.5 GiB inside");
    hw_heap_release(&h2);
    return done();
}
