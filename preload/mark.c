/* This file implements the heap walk of mark.h.
 *
 * The live blocks are sorted by address (LSD radix sort, no allocation) and looked up through
 * blockmap.h. Interior pointers count (LeakSanitizer's and memcheck's default); a block
 * reached only through interior pointers is flagged, which is memcheck's "possibly lost"
 * among the reachable. The mark stack is explicit; draining it prefetches the bounds and the
 * first words of the blocks a few places below its top.
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
#include "blockmap.h"

#define MIN_POINTER 4096

/* While marking, cls[i] holds the block's state: its class in the low two bits (UNVISITED
 * until the flood or the classification reaches it) and two flags; hw_heap_mark splits it
 * into cls and flags at the end. One byte, so that a lookup's hit costs one more cache line,
 * not two. */
#define UNVISITED 3
#define CLASS_MASK 3
#define REACHED_AT_START 4  /* some pointer held the block's first byte */
#define IGNORED 8

/* LSD radix sort by address, 16 bits a pass, skipping the passes whose digit is the same for
 * every block (the top one always, usually one more). Sorts in place, using tmp as scratch.
 * False if the histograms cannot be mapped. */
static bool radix_sort(struct hw_live_entry *a, struct hw_live_entry *tmp, size_t n)
{
    uint32_t (*count)[1u << 16] = hw_map(4 * sizeof *count);
    if (!count)
        return false;
    for (size_t i = 0; i < n; i++)
        for (unsigned d = 0; d < 4; d++)
            count[d][(a[i].addr >> (16 * d)) & 0xffff]++;
    struct hw_live_entry *src = a, *dst = tmp;
    for (unsigned d = 0; d < 4; d++) {
        if (n && count[d][(a[0].addr >> (16 * d)) & 0xffff] == n)
            continue;
        uint32_t sum = 0;
        for (size_t k = 0; k < (1u << 16); k++) {
            uint32_t c = count[d][k];
            count[d][k] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[d][(src[i].addr >> (16 * d)) & 0xffff]++] = src[i];
        struct hw_live_entry *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
    hw_unmap(count, 4 * sizeof *count);
    return true;
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
    bool sorted = tmp && radix_sort((struct hw_live_entry *)h->objects.data, tmp, n);
    hw_unmap(tmp, n * sizeof *tmp + 1);
    if (!sorted)
        return false;
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
    memset(h->cls, UNVISITED, n);
    return true;
}

/* The walk is bound by memory latency, not bandwidth (NOTES-shim.md 9): every pointer found
 * costs a bitmap entry and a state byte at random places, and every block popped its words.
 * So a found value goes through two short queues, its bitmap entry prefetched on entering the
 * first and its state byte on entering the second, and is acted on only when it leaves the
 * second: some sixteen lookups are in flight at once instead of one. Draining the mark stack
 * prefetches the bounds and then the first words of the blocks a few places below its top.
 * The order in which pointers are acted on changes nothing: reachability, the flags and the
 * classification are properties of the graph, not of the visit order. */
#define QUEUE 8           /* each queue's length: a power of two */
#define PREFETCH_SPAN 16
#define PREFETCH_BODY 8

enum scan_mode { FLOOD, CLASSIFY };

struct found {
    uintptr_t v;       /* the value */
    uint64_t offset;   /* of the word within its source */
    uint32_t src;      /* block index, or HW_EDGE_FROM_ROOT | root index */
    uint32_t dst;      /* block index, once resolved */
    const struct hw_bm_entry *entry;
    bool at_start;
};

struct queue {
    struct found slot[QUEUE];
    unsigned head, nr;
};

struct marker {
    struct hw_heap *h;
    const struct hw_blockmap *m;
    uint8_t *st;           /* h->cls: the state bytes */
    enum scan_mode mode;
    uint32_t head;         /* CLASSIFY: the direct leak being flooded */
    struct queue lookup;   /* waiting for their bitmap entry */
    struct queue act;      /* resolved, waiting for their state byte */
};

static inline void push_work(struct hw_heap *h, uint32_t i)
{
    uint32_t *w = hw_vec_push(&h->work);
    if (w)
        *w = i;
    else
        h->incomplete = true;
}

static inline struct found *queue_push(struct queue *q)
{
    return &q->slot[(q->head + q->nr++) & (QUEUE - 1)];
}

static inline struct found queue_pop(struct queue *q)
{
    struct found f = q->slot[q->head];
    q->head = (q->head + 1) & (QUEUE - 1);
    q->nr--;
    return f;
}

/* The oldest resolved pointer: record its edge, mark its target per mode. */
static void act_oldest(struct marker *k)
{
    struct found f = queue_pop(&k->act);
    struct hw_heap *h = k->h;
    if (h->record_edges) {
        struct hw_edge *e = hw_vec_push(f.src & HW_EDGE_FROM_ROOT ? &h->root_edges : &h->edges);
        if (e)
            *e = (struct hw_edge){ .src = f.src, .dst = f.dst, .offset = f.offset };
        else
            h->incomplete = true;
    }
    uint8_t s = k->st[f.dst];
    if (k->mode == FLOOD) {
        if (f.at_start && !(s & REACHED_AT_START))
            k->st[f.dst] = s |= REACHED_AT_START;
        if ((s & CLASS_MASK) != UNVISITED)
            return;
        k->st[f.dst] = (uint8_t)((s & ~CLASS_MASK) | HW_REACHABLE);
    } else {
        uint8_t cls = s & CLASS_MASK;
        if (f.dst == k->head || cls == HW_REACHABLE || cls == HW_INDIRECT)
            return;
        k->st[f.dst] = (uint8_t)((s & ~CLASS_MASK) | HW_INDIRECT);
        if (cls == HW_LEAKED)
            return;  /* an earlier head: what it reaches is indirect already */
    }
    if (f.at_start)
        __builtin_prefetch((const void *)f.v);
    push_work(h, f.dst);
}

/* The oldest found value: resolve it to a block (its entry should be cached by now). */
static void resolve_oldest(struct marker *k)
{
    struct found f = queue_pop(&k->lookup);
    long i = hw_blockmap_resolve(k->m, f.v, f.entry, &f.at_start);
    if (i < 0 || (uint32_t)i == f.src)
        return;
    f.dst = (uint32_t)i;
    __builtin_prefetch(&k->st[i]);
    if (k->act.nr == QUEUE)
        act_oldest(k);
    *queue_push(&k->act) = f;
}

/* Scan the words of [lo, hi) from source src, base the address offsets count from. */
static void scan(struct marker *k, uintptr_t lo, uintptr_t hi, uint32_t src, uintptr_t base)
{
    const struct hw_blockmap *m = k->m;
    lo = (lo + 7) & ~(uintptr_t)7;
    k->h->scanned_bytes += hi > lo ? hi - lo : 0;
    for (uintptr_t a = lo; a + 8 <= hi; a += 8) {
        uintptr_t v = *(const uintptr_t *)a;
        if (!hw_blockmap_covers(m, v))
            continue;
        const struct hw_bm_entry *e = hw_blockmap_entry(m, v);
        __builtin_prefetch(e);
        if (k->lookup.nr == QUEUE)
            resolve_oldest(k);
        *queue_push(&k->lookup) = (struct found){ .v = v, .offset = a - base, .src = src, .entry = e };
    }
}

/* Scan everything the mark stack and the queues hold, and what that reaches. */
static void drain(struct marker *k)
{
    struct hw_heap *h = k->h;
    const struct hw_blockmap *m = k->m;
    for (;;) {
        while (h->work.nr) {
            size_t top = --h->work.nr;
            const uint32_t *w = (const uint32_t *)h->work.data;
            uint32_t i = w[top];
            if (top >= PREFETCH_SPAN)
                __builtin_prefetch(&m->span[w[top - PREFETCH_SPAN]]);
            if (top >= PREFETCH_BODY)
                __builtin_prefetch((const void *)m->span[w[top - PREFETCH_BODY]].lo);
            /* span[i].hi is one past the start for an empty block: no word to scan either way */
            scan(k, m->span[i].lo, m->span[i].hi, i, m->span[i].lo);
        }
        if (k->lookup.nr)
            resolve_oldest(k);
        else if (k->act.nr)
            act_oldest(k);
        else
            return;
    }
}

void hw_heap_mark(struct hw_heap *h, const struct hw_roots *roots)
{
    const struct hw_live_entry *o = (const struct hw_live_entry *)h->objects.data;
    size_t n = h->objects.nr;
    uint8_t *st = h->cls;
    struct hw_blockmap m;
    if (!hw_blockmap_build(&m, o, n)) {
        /* Nothing can be looked up. Claiming leaks would be a lie: call everything reachable. */
        h->incomplete = true;
        memset(h->cls, HW_REACHABLE, n);
        memset(h->flags, 0, n);
        return;
    }
    struct marker k = { .h = h, .m = &m, .st = st, .mode = FLOOD };
    const struct hw_root *r = (const struct hw_root *)roots->roots.data;
    for (size_t j = 0; j < roots->roots.nr; j++) {
        /* drained root by root: root edges come out in root order */
        scan(&k, r[j].lo, r[j].hi, HW_EDGE_FROM_ROOT | (uint32_t)j, r[j].lo & ~(uintptr_t)7);
        drain(&k);
    }
    /* Ignored blocks are roots of their own (LeakSanitizer's __lsan_ignore_object). */
    for (size_t i = 0; i < n; i++) {
        if (!o[i].ignored)
            continue;
        st[i] |= REACHED_AT_START | IGNORED;
        if ((st[i] & CLASS_MASK) == UNVISITED) {
            st[i] = (uint8_t)((st[i] & ~CLASS_MASK) | HW_REACHABLE);
            push_work(h, (uint32_t)i);
        }
        drain(&k);
    }
    k.mode = CLASSIFY;
    for (size_t i = 0; i < n; i++) {
        if ((st[i] & CLASS_MASK) != UNVISITED)
            continue;
        st[i] = (uint8_t)((st[i] & ~CLASS_MASK) | HW_LEAKED);
        k.head = (uint32_t)i;
        scan(&k, o[i].addr, o[i].addr + o[i].size, (uint32_t)i, o[i].addr);
        drain(&k);
    }
    hw_blockmap_release(&m);
    /* Final classes and flags: 1 = reachable only through interior pointers, 2 = ignored. */
    for (size_t i = 0; i < n; i++) {
        uint8_t s = st[i], cls = s & CLASS_MASK;
        h->cls[i] = cls;
        h->flags[i] = (uint8_t)((s & REACHED_AT_START) || cls != HW_REACHABLE ? 0 : HW_FLAG_INTERIOR_ONLY) |
                      (s & IGNORED ? HW_FLAG_IGNORED : 0);
        h->count[cls]++;
        h->bytes[cls] += o[i].size;
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
