/* This file implements the heap walk of mark.h.
 *
 * The live blocks are sorted by address (LSD radix sort, no allocation) and looked up through
 * blockmap.h. Interior pointers count (LeakSanitizer's and memcheck's default); a reachable
 * block that no chain of start pointers reaches from a root is flagged: memcheck's "possibly
 * lost", which propagates, as in memcheck, to everything reached only through such a block.
 * So the flood runs in two passes, definite then possible, each block scanned once. The mark
 * stack is explicit; draining it prefetches the bounds and the first words of the blocks a
 * few places below its top.
 *
 * Classes, memcheck's definitions (memcheck/mc_leakcheck.c; LeakSanitizer's are the same
 * except for cycles): a block reached from a root, directly or through other reached blocks,
 * is reachable. Every other block is scanned once in address order: the first unvisited one
 * found is a direct leak and everything it reaches that is not yet classified is indirect; a
 * direct leak reached later from another one becomes indirect. So a leaked list is one direct
 * head and indirect nodes, and an unreachable cycle that nothing else reaches is split into
 * one direct leak (the block at the lowest address) and indirect rest, where LeakSanitizer
 * reports every member of such a cycle as an indirect leak and no direct one.
 *
 * For type inference the walk also keeps two facts it meets anyway: each pointer's offset
 * within its target (its value - the target's start), and each block's first word when it
 * points into a module's non-executable segments (roots.h, data): the vtable pointer of a C++
 * polymorphic object, or a false candidate that the analyzer drops. The word is read as the
 * block is scanned, so it costs a range check per block, not a memory access.
 * Context: SIGSAFE. */
#define _GNU_SOURCE
#include "mark.h"

#include <string.h>
#include "blockmap.h"
#include "cookie.h"
#include "glibcheap.h"
#include "real.h"
#include "shadow.h"
#include "maps.h"

#define MIN_POINTER 4096

/* While marking, cls[i] holds the block's state: its class in the low two bits (UNVISITED
 * until the flood or the classification reaches it) and two flags; hw_heap_mark splits it
 * into cls and flags at the end. One byte, so that a lookup's hit costs one more cache line,
 * not two. */
#define UNVISITED 3
#define CLASS_MASK 3
#define DEFINITE 4  /* reached from a root through start pointers only (memcheck: not "possibly lost") */
#define IGNORED 8
#define PARTLY_UNREADABLE 16  /* part of the block is not mapped readable (an mprotect'ed page) */
#define HW_MAX_STACK_BLOCKS 64  /* coroutine stacks the walk knows the stack pointer of */

/* The live table's blocks sorted by address: an LSD radix sort of 11-bit digits of addr >> 4
 * (glibc's blocks are 16-byte aligned, which blockmap.c checks: two blocks within the same
 * 16 bytes, which jemalloc and tcmalloc hand out, keep the table's order, which
 * hw_heap_load mends), that skips the
 * digits every block shares and reads its first pass straight from the table's slots, so
 * the table is read twice and the entries moved once per digit that varies; 11 bits keep
 * the 2048 destinations of a pass within the caches, where 16 bits made every write a miss. */
#define DIGIT_BITS 11
#define DIGITS 5  /* bits 4..58: user space, 5-level page tables included */
#define BUCKETS (1u << DIGIT_BITS)

static inline unsigned digit(uintptr_t addr, unsigned d)
{
    return (unsigned)(addr >> (4 + DIGIT_BITS * d)) & (BUCKETS - 1);
}

/* Sorted copy of the table's *n_out entries, in a new mapping of *n_out + 1; NULL if out of
 * memory. */
static struct hw_live_entry *sorted_blocks(size_t *n_out)
{
    uint32_t (*count)[BUCKETS] = hw_map(DIGITS * sizeof *count);
    if (!count)
        return NULL;
    size_t n = 0;
    uintptr_t first = 0;
    for (unsigned k = 0; k < hw_livetable_shards(); k++) {
        size_t nr;
        const struct hw_live_entry *slot = hw_livetable_slots_stopped(k, &nr);
        for (size_t i = 0; i < nr; i++) {
            uintptr_t a = slot[i].addr;
            if (!a)
                continue;
            first = a;
            n++;
            for (unsigned d = 0; d < DIGITS; d++)
                count[d][digit(a, d)]++;
        }
    }
    struct hw_live_entry *buf[2] = { hw_map_populated((n + 1) * sizeof **buf), hw_map_populated((n + 1) * sizeof **buf) };
    if (!buf[0] || !buf[1] || n >= HW_EDGE_FROM_ROOT) {
        hw_unmap(buf[0], (n + 1) * sizeof **buf);
        hw_unmap(buf[1], (n + 1) * sizeof **buf);
        hw_unmap(count, DIGITS * sizeof *count);
        return NULL;
    }
    int cur = -1;  /* which buffer holds the entries; -1: still in the table */
    for (unsigned d = 0; d < DIGITS; d++) {
        if (count[d][digit(first, d)] == n && cur >= 0)
            continue;  /* every block shares this digit (the first pass runs anyway: it copies) */
        uint32_t sum = 0;
        for (size_t b = 0; b < BUCKETS; b++) {
            uint32_t c = count[d][b];
            count[d][b] = sum;
            sum += c;
        }
        struct hw_live_entry *dst = buf[cur == 0];
        if (cur < 0) {
            for (unsigned k = 0; k < hw_livetable_shards(); k++) {
                size_t nr;
                const struct hw_live_entry *slot = hw_livetable_slots_stopped(k, &nr);
                for (size_t i = 0; i < nr; i++)
                    if (slot[i].addr)
                        dst[count[d][digit(slot[i].addr, d)]++] = slot[i];
            }
        } else {
            const struct hw_live_entry *src = buf[cur];
            for (size_t i = 0; i < n; i++)
                dst[count[d][digit(src[i].addr, d)]++] = src[i];
        }
        cur = cur == 0;
    }
    hw_unmap(count, DIGITS * sizeof *count);
    hw_unmap(buf[!cur], (n + 1) * sizeof **buf);
    *n_out = n;
    return buf[cur];
}

/* The merge of the shadow map's blocks with the live table's, in address order. */
struct merge {
    struct hw_vec *out;
    const struct hw_live_entry *table;   /* sorted */
    size_t n, next;
    bool ok;
    bool recorded_only;   /* hw_heap.recorded_only: plain chunks are left out */
};

static void emit(struct merge *m, const struct hw_live_entry *e)
{
    struct hw_live_entry *o = hw_vec_push(m->out);
    if (o)
        *o = *e;
    else
        m->ok = false;
}

/* One shadow byte: the table's entries below it, then its block. Its entry is taken only when
 * the byte says it has one; an entry at the address of a byte that does not (a stale one, left
 * by a thread that vanished at a fork between the two) is emitted after it and dropped as a
 * duplicate by hw_heap_load. A byte whose entry is missing gets the usable size. */
static bool take_shadow(uintptr_t addr, uint8_t byte, void *arg)
{
    struct merge *m = arg;
    while (m->next < m->n && m->table[m->next].addr < addr)
        emit(m, &m->table[m->next++]);
    if (!(byte & HW_SHADOW_LIVE))
        return m->ok;
    struct hw_live_entry e = { .addr = addr };
    if ((byte & HW_SHADOW_TABLE) && m->next < m->n && m->table[m->next].addr == addr) {
        e = m->table[m->next++];
    } else {
        size_t usable = hw_real_usable_size((const void *)addr);
        size_t slack = byte & HW_SHADOW_TABLE ? 0 : byte & HW_SHADOW_SLACK;
        e.size = usable >= slack ? usable - slack : usable;
    }
    if (byte & HW_SHADOW_IGNORED)
        e.ignored = 1;
    emit(m, &e);
    return m->ok;
}

/* Arena mode: an entry the table holds only to flag a plain block ignored (no size, no
 * stack); one that meets no chunk is stale (its block was freed) and is dropped. */
static bool ignore_only(const struct hw_live_entry *e)
{
    return !e->size && !e->stack && e->ignored;
}

/* Arena mode: the table's entries below addr, but the stale ignore-only ones. */
static void emit_table_below(struct merge *m, uintptr_t addr)
{
    while (m->next < m->n && m->table[m->next].addr < addr) {
        const struct hw_live_entry *t = &m->table[m->next++];
        if (!ignore_only(t))
            emit(m, t);
    }
}

/* Arena mode: one in-use chunk of glibc's, in address order. A chunk behind the shim's cookie
 * is a recorded block with its record in its header (INLINE: taken from there), one whose
 * record is in the table (which gives it in address order), or the shim's own. */
static bool take_chunk(uintptr_t block, size_t usable, void *arg)
{
    struct merge *m = arg;
    uintptr_t cookie = ((const uintptr_t *)block)[1];
    if (hw_is_cookie(cookie)) {
        size_t off = hw_cookie_off(cookie);
        if (hw_cookie_kind(cookie) != HW_COOKIE_INLINE || off < HW_COOKIE_RECORD_OFF || off > usable ||
            ((const uintptr_t *)(block + off))[-1] != cookie)
            return m->ok;   /* TABLE or INTERNAL; or a plain block whose data look like a cookie */
        uintptr_t p = block + off;
        emit_table_below(m, p);
        struct hw_live_entry e = hw_cookie_record((const void *)p);
        if (m->next < m->n && m->table[m->next].addr == p && ignore_only(&m->table[m->next]))
            m->next++;   /* a stale flag of a plain block that was freed: this one is not it */
        emit(m, &e);
        return m->ok;
    }
    emit_table_below(m, block);
    struct hw_live_entry e = { .addr = block, .size = usable };
    if (m->next < m->n && m->table[m->next].addr == block) {
        const struct hw_live_entry *t = &m->table[m->next++];
        e.ignored = t->ignored;
    }
    if (!m->recorded_only)
        emit(m, &e);
    return m->ok;
}

bool hw_heap_load(struct hw_heap *h, const uintptr_t *tcaches, size_t ntc)
{
    hw_vec_release(&h->objects);
    h->objects.elem = sizeof(struct hw_live_entry);
    h->edges.elem = sizeof(struct hw_edge);
    h->root_edges.elem = sizeof(struct hw_edge);
    h->wide.elem = h->root_wide.elem = sizeof(struct hw_wide_edge);
    hw_vec_clear(&h->root_edges);
    hw_vec_clear(&h->wide);
    hw_vec_clear(&h->root_wide);
    h->work.elem = sizeof(uint32_t);
    h->possible.elem = sizeof(uint32_t);
    hw_vec_clear(&h->edges);
    hw_vec_clear(&h->work);
    hw_vec_clear(&h->possible);
    memset(h->count, 0, sizeof h->count);
    memset(h->bytes, 0, sizeof h->bytes);
    h->scanned_bytes = 0;
    h->incomplete = false;
    /* The table's blocks (sampled, and those the shadow cannot describe), sorted; then the
     * shadow map, already in address order, with the table's merged in. */
    size_t nt;
    struct hw_live_entry *table = sorted_blocks(&nt);
    if (!table)
        return false;
    /* The radix sort ignores an address's low 4 bits: two blocks of one granule (8-byte
     * aligned allocators' smallest blocks, which the table holds) may still be inverted. */
    for (size_t i = 1; i < nt; i++)
        for (size_t j = i; j > 0 && table[j - 1].addr > table[j].addr; j--) {
            struct hw_live_entry t = table[j];
            table[j] = table[j - 1];
            table[j - 1] = t;
        }
    struct merge m = { &h->objects, table, nt, 0, true, h->recorded_only };
    if (tcaches) {   /* arena mode */
        int rc = hw_glibcheap_walk(tcaches, ntc, take_chunk, &m);
        if (rc < 0) {
            hw_log("cannot walk glibc's heap (%s): snapshot without a heap walk", hw_glibcheap_strerror(rc));
            hw_unmap(table, (nt + 1) * sizeof *table);
            return false;
        }
        emit_table_below(&m, UINTPTR_MAX);   /* no block starts at UINTPTR_MAX: that is all of them */
    } else {
        hw_shadow_scan(take_shadow, &m);
        while (m.ok && m.next < m.n)
            emit(&m, &m.table[m.next++]);
    }
    hw_unmap(table, (nt + 1) * sizeof *table);
    size_t n = h->objects.nr;
    if (!m.ok || n >= HW_EDGE_FROM_ROOT)
        return false;
    struct hw_live_entry *o = (struct hw_live_entry *)h->objects.data;
    /* A thread that did not stop may have been caught mid-update of the table: an emptied
     * slot (address 0) or an entry met twice during a backward shift. Drop them. */
    size_t kept = 0;
    h->live_bytes = 0;
    for (size_t i = 0; i < n; i++)
        if (o[i].addr >= MIN_POINTER && (!kept || o[i].addr != o[kept - 1].addr)) {
            h->live_bytes += o[i].size;
            o[kept++] = o[i];
        }
    h->objects.nr = n = kept;
    if (h->cls)
        hw_unmap(h->cls, 2 * h->cls_len);
    h->cls_len = n + 1;
    h->cls = hw_map_populated(2 * h->cls_len);
    if (!h->cls)
        return false;
    if (h->vptr)
        hw_unmap(h->vptr, h->vptr_len);
    /* Not populated: pages of it are only touched where blocks have a candidate. */
    h->vptr_len = (n + 1) * sizeof *h->vptr;
    h->vptr = hw_map(h->vptr_len);  /* NULL: no vptrs this time, nothing else lost */
    h->flags = h->cls + h->cls_len;
    memset(h->cls, UNVISITED, n);
    return true;
}

/* The walk is bound by memory latency, not bandwidth (0.15-0.28 GB/s measured on a
 * pointer-dense heap, blockmap.h): every pointer found costs a bitmap entry and a state byte
 * at random places, and every block popped its words. So a found value goes through two short
 * queues, its bitmap entry prefetched on entering the first and its state byte on entering the
 * second, and is acted on only when it leaves the second: some sixteen lookups are in flight
 * at once instead of one. Draining the mark stack prefetches the bounds and then the first
 * words of the blocks a few places below its top. The order in which pointers are acted on
 * changes nothing: reachability, the flags and the classification are properties of the graph,
 * not of the visit order. */
#define QUEUE 8           /* each queue's length: a power of two */
#define PREFETCH_SPAN 16
#define PREFETCH_BODY 8
#define PREFETCH_LINES 4  /* of a block's words */

/* FLOOD: from the roots, through start pointers (definitely reachable); an interior pointer
 * makes its target possibly reachable, to be scanned in POSSIBLE once every definite block is
 * known. POSSIBLE: from the possibly reachable blocks; whatever they reach is possibly
 * reachable too, start pointers or not (memcheck's lc_push_if_a_chunk_ptr with
 * is_prior_definite false). CLASSIFY: the unreachable rest. */
enum scan_mode { FLOOD, POSSIBLE, CLASSIFY };

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
    const struct hw_roots *roots;  /* its mappings say what is readable */
    const struct hw_range *data;   /* roots->data: where vtable pointers point */
    size_t nr_data;
    uintptr_t gap_lo, gap_len;     /* the widest gap between two of them */
    uint8_t *st;           /* h->cls: the state bytes */
    enum scan_mode mode;
    uint32_t head;         /* CLASSIFY: the direct leak being flooded */
    bool glibc_chunks;     /* blocks are glibc's chunks (next_chunk_header) */
    struct queue lookup;   /* waiting for their bitmap entry */
    struct queue act;      /* resolved, waiting for their state byte */
    /* Heap blocks that are a thread's stack (a coroutine's): below the thread's stack pointer
     * (red zone aside) lies nothing live, only returned frames, and, for the thread that
     * takes the snapshot, the walk's own frames, which hold pointers to whatever block it is
     * looking at (the fork child runs on a copy of that stack). Scanned from `from` up. */
    struct { uint32_t block; uintptr_t from; } stack_block[HW_MAX_STACK_BLOCKS];
    unsigned nr_stack_blocks;
};

static inline void push_to(struct hw_heap *h, struct hw_vec *v, uint32_t i)
{
    uint32_t *w = hw_vec_push(v);
    if (w)
        *w = i;
    else
        h->incomplete = true;
}

static inline void push_work(struct hw_heap *h, uint32_t i)
{
    push_to(h, &h->work, i);
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

/* Record f's edge (mark.h, struct hw_edge); out of memory, drop it. */
static void record_edge(struct marker *k, const struct found *f)
{
    struct hw_heap *h = k->h;
    bool root = f->src & HW_EDGE_FROM_ROOT;
    uint64_t toff = f->at_start ? 0 : f->v - k->m->span[f->dst].lo;
    struct hw_edge *e = hw_vec_push(root ? &h->root_edges : &h->edges);
    if (!e) {
        h->incomplete = true;
        return;
    }
    if (HW_LIKELY(f->offset / 8 < HW_EDGE_WIDE && toff < HW_EDGE_WIDE)) {
        *e = (struct hw_edge){ .src = f->src, .dst = f->dst, .word = (uint32_t)(f->offset / 8),
                               .target_offset = (uint32_t)toff };
        return;
    }
    struct hw_wide_edge *w = hw_vec_push(root ? &h->root_wide : &h->wide);
    if (!w) {
        (root ? &h->root_edges : &h->edges)->nr--;
        h->incomplete = true;
        return;
    }
    *w = (struct hw_wide_edge){ .offset = f->offset, .target_offset = toff };
    *e = (struct hw_edge){ .src = f->src, .dst = f->dst, .word = HW_EDGE_WIDE, .target_offset = HW_EDGE_WIDE };
}

/* The oldest resolved pointer: record its edge, mark its target per mode. */
static void act_oldest(struct marker *k)
{
    struct found f = queue_pop(&k->act);
    struct hw_heap *h = k->h;
    record_edge(k, &f);
    uint8_t s = k->st[f.dst];
    if (k->mode == FLOOD) {
        if (!f.at_start) {
            if ((s & CLASS_MASK) == UNVISITED) {
                k->st[f.dst] = (uint8_t)((s & ~CLASS_MASK) | HW_REACHABLE);
                push_to(h, &h->possible, f.dst);
            }
            return;
        }
        if (s & DEFINITE)
            return;
        /* unvisited, or possibly reachable and not scanned yet: POSSIBLE skips it later */
        k->st[f.dst] = (uint8_t)((s & ~CLASS_MASK) | HW_REACHABLE | DEFINITE);
    } else if (k->mode == POSSIBLE) {
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

/* Whether v is the address of the glibc chunk that follows block i. Its header (the
 * previous chunk's size field and the size field) overlaps the last 8 bytes of i's chunk,
 * which i may use when its size is 16k + 1..8: then main_arena.top, a bin's fd/bk or
 * last_remainder point inside i without referring to it, and so do the stale links a chunk
 * kept from its time in a bin (fd, bk, fd_nextsize, bk_nextsize: its first four words) in
 * bytes its new owner never wrote, which hid a leaked list behind a live block that had held
 * them (t1500). Such a value is glibc's bookkeeping wherever it is found; a program's own
 * pointer there is one to the block's last word, an interior pointer beside the start
 * pointer that any owner of a block keeps. The chunk's size is in the word before the
 * block; mmapped chunks (bit 1) have no neighbour. */
static bool next_chunk_header(const struct marker *k, uint32_t i, uintptr_t v)
{
    uintptr_t lo = k->m->span[i].lo, next;
    if (hw_maps_readable_end(&k->roots->maps, lo - 8, &next) < lo)
        return false;
    uintptr_t size = *(const uintptr_t *)(lo - 8);
    if (hw_is_cookie(size)) {   /* the shim's block: its chunk starts off bytes earlier */
        uintptr_t chunk = lo - hw_cookie_off(size);
        if (chunk < 4096 + 8 || hw_maps_readable_end(&k->roots->maps, chunk - 8, &next) < lo)
            return false;
        lo = chunk;
        size = *(const uintptr_t *)(lo - 8);
    }
    return !(size & 2) && v == lo - 16 + (size & ~(uintptr_t)7);
}

/* The oldest found value: resolve it to a block (its entry should be cached by now). */
static void resolve_oldest(struct marker *k)
{
    struct found f = queue_pop(&k->lookup);
    long i = hw_blockmap_resolve(k->m, f.v, f.entry, &f.at_start);
    if (i < 0 || (uint32_t)i == f.src)
        return;
    if (k->glibc_chunks && !f.at_start && next_chunk_header(k, (uint32_t)i, f.v))
        return;  /* malloc's bookkeeping, not a reference from the program */
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

/* Whether v lies in a module's non-executable segments (bisection of the sorted ranges).
 * Most first words are heap pointers, and the main heap (brk) lies in the widest gap, between
 * the executable and the libraries: one compare rejects them, where the bisection took a
 * few nanoseconds per block (10 ms of the bench's 3M blocks). */
static bool in_module_data(const struct marker *k, uintptr_t v)
{
    size_t lo = 0, hi = k->nr_data;
    if (!hi || v < k->data[0].lo || v >= k->data[hi - 1].hi || v - k->gap_lo < k->gap_len)
        return false;
    while (lo < hi) {  /* the first range that ends above v */
        size_t mid = lo + (hi - lo) / 2;
        if (k->data[mid].hi <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < k->nr_data && v >= k->data[lo].lo;
}

/* Keep block i's first word, at lo, if it may be a vtable pointer: 8-aligned and pointing
 * into a module's data. The scan reads that word next, so it is no extra miss. */
static inline void note_vptr(struct marker *k, uint32_t i, uintptr_t lo, uintptr_t hi)
{
    uintptr_t next;
    if (!k->h->vptr || hi - lo < 8 || (lo & 7))
        return;
    if ((k->st[i] & PARTLY_UNREADABLE) && hw_maps_readable_end(&k->roots->maps, lo, &next) < lo + 8)
        return;
    uintptr_t v = *(const uintptr_t *)lo;
    if (!(v & 7) && in_module_data(k, v))
        k->h->vptr[i] = v;
}

/* Scan block i's readable parts: a program may mprotect a page inside a block (a guard page
 * of a coroutine stack it allocated), and reading it would kill the walk. */
static void scan_block(struct marker *k, uint32_t i)
{
    uintptr_t lo = k->m->span[i].lo, hi = lo + ((const struct hw_live_entry *)k->h->objects.data)[i].size;
    uintptr_t from = lo;
    note_vptr(k, i, lo, hi);
    for (unsigned j = 0; j < k->nr_stack_blocks; j++)
        if (k->stack_block[j].block == i && k->stack_block[j].from > from)
            from = (k->stack_block[j].from + 7) & ~(uintptr_t)7;
    if (!(k->st[i] & PARTLY_UNREADABLE)) {
        scan(k, from < hi ? from : hi, hi, i, lo);
        return;
    }
    for (uintptr_t a = from, next; a < hi;) {
        uintptr_t end = hw_maps_readable_end(&k->roots->maps, a, &next);
        if (!end) {
            a = next;
            continue;
        }
        end = end < hi ? end : hi;
        scan(k, a, end, i, lo);
        a = end;
    }
}

/* Flag the blocks that are not wholly readable memory, walking blocks and mappings in
 * address order. */
static void flag_unreadable(struct marker *k)
{
    uintptr_t run_lo = 0, run_hi = 0, next;
    const struct hw_live_entry *o = (const struct hw_live_entry *)k->h->objects.data;
    for (size_t i = 0; i < k->h->objects.nr; i++) {
        uintptr_t lo = k->m->span[i].lo, hi = lo + o[i].size;
        if (lo < run_lo || lo >= run_hi) {
            run_lo = lo;
            run_hi = hw_maps_readable_end(&k->roots->maps, lo, &next);
        }
        if (hi > run_hi)
            k->st[i] |= PARTLY_UNREADABLE;
    }
}

/* The block that holds address a, or -1. */
static long block_at(const struct hw_blockmap *m, uintptr_t a)
{
    bool at_start;
    if (!hw_blockmap_covers(m, a))
        return -1;
    return hw_blockmap_resolve(m, a, hw_blockmap_entry(m, a), &at_start);
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
            if (top >= PREFETCH_BODY) {
                const struct hw_bm_span *b = &m->span[w[top - PREFETCH_BODY]];
                for (uintptr_t line = b->lo & ~(uintptr_t)63; line < b->hi && line < b->lo + PREFETCH_LINES * 64; line += 64)
                    __builtin_prefetch((const void *)line);
            }
            scan_block(k, i);
        }
        if (k->lookup.nr)
            resolve_oldest(k);
        else if (k->act.nr)
            act_oldest(k);
        else
            return;
    }
}

/* The final classes and flags out of the state bytes (1 = possibly lost: reachable, but not
 * through start pointers alone; 2 = ignored), and the per-class totals. */
static void split_states(struct hw_heap *h)
{
    const struct hw_live_entry *o = (const struct hw_live_entry *)h->objects.data;
    for (size_t i = 0; i < h->objects.nr; i++) {
        uint8_t s = h->cls[i], cls = s & CLASS_MASK;
        h->cls[i] = cls;
        h->flags[i] = (uint8_t)((s & DEFINITE) || cls != HW_REACHABLE ? 0 : HW_FLAG_INTERIOR_ONLY) |
                      (s & IGNORED ? HW_FLAG_IGNORED : 0);
        h->count[cls]++;
        h->bytes[cls] += o[i].size;
    }
}

void hw_heap_mark(struct hw_heap *h, struct hw_roots *roots)
{
    const struct hw_live_entry *o = (const struct hw_live_entry *)h->objects.data;
    size_t n = h->objects.nr;
    uint8_t *st = h->cls;
    struct hw_blockmap m;
    if (!hw_blockmap_build(&m, o, n)) {
        /* Nothing can be looked up. Claiming leaks would be a lie: call everything reachable. */
        h->incomplete = true;
        for (size_t i = 0; i < n; i++)
            st[i] = HW_REACHABLE | DEFINITE | (o[i].ignored ? IGNORED : 0);
        split_states(h);
        return;
    }
    struct marker k = { .h = h, .m = &m, .roots = roots, .st = st, .mode = FLOOD,
                        .data = (const struct hw_range *)roots->data.data, .nr_data = roots->data.nr,
                        .glibc_chunks = roots->glibc_chunks };
    for (size_t j = 1; j < k.nr_data; j++)
        if (k.data[j].lo - k.data[j - 1].hi > k.gap_len) {
            k.gap_lo = k.data[j - 1].hi;
            k.gap_len = k.data[j].lo - k.data[j - 1].hi;
        }
    flag_unreadable(&k);
    struct hw_root *r = (struct hw_root *)roots->roots.data;
    for (size_t j = 0; j < roots->roots.nr; j++) {
        if (r[j].clip_at) {
            /* a coroutine's stack in a heap block: its end is the block's */
            long b = block_at(&m, r[j].clip_at);
            if (b >= 0) {
                uintptr_t end = m.span[b].lo + o[b].size;
                r[j].hi = end < r[j].hi ? end : r[j].hi;
                if (k.nr_stack_blocks < HW_MAX_STACK_BLOCKS)
                    k.stack_block[k.nr_stack_blocks++] = (typeof(k.stack_block[0])){ (uint32_t)b, r[j].lo };
            }
        }
        /* drained root by root: root edges come out in root order */
        scan(&k, r[j].lo, r[j].hi, HW_EDGE_FROM_ROOT | (uint32_t)j, (r[j].lo + 7) & ~(uintptr_t)7);
        drain(&k);
    }
    /* Ignored blocks are roots of their own (LeakSanitizer's __lsan_ignore_object). */
    for (size_t i = 0; i < n; i++) {
        if (!o[i].ignored)
            continue;
        if (!(st[i] & DEFINITE))
            push_work(h, (uint32_t)i);
        st[i] = (uint8_t)((st[i] & ~CLASS_MASK) | HW_REACHABLE | DEFINITE | IGNORED);
        drain(&k);
    }
    /* Every definitely reachable block is known: scan the possibly reachable ones. */
    k.mode = POSSIBLE;
    const uint32_t *p = (const uint32_t *)h->possible.data;
    for (size_t j = 0; j < h->possible.nr; j++) {
        if (st[p[j]] & DEFINITE)
            continue;  /* upgraded, and scanned as definite */
        push_work(h, p[j]);
        drain(&k);
    }
    k.mode = CLASSIFY;
    for (size_t i = 0; i < n; i++) {
        if ((st[i] & CLASS_MASK) != UNVISITED)
            continue;
        st[i] = (uint8_t)((st[i] & ~CLASS_MASK) | HW_LEAKED);
        k.head = (uint32_t)i;
        scan_block(&k, (uint32_t)i);
        drain(&k);
    }
    hw_blockmap_release(&m);
    split_states(h);
}

void hw_heap_release(struct hw_heap *h)
{
    hw_vec_release(&h->objects);
    hw_vec_release(&h->edges);
    hw_vec_release(&h->root_edges);
    hw_vec_release(&h->wide);
    hw_vec_release(&h->root_wide);
    hw_vec_release(&h->work);
    hw_vec_release(&h->possible);
    if (h->cls)
        hw_unmap(h->cls, 2 * h->cls_len);
    h->cls = h->flags = NULL;
    if (h->vptr)
        hw_unmap(h->vptr, h->vptr_len);
    h->vptr = NULL;
}
