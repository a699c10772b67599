/* This file implements heapgraph.h: decode a snapshot's object_chunk rows into per-block
 * arrays, its edge_chunk rows into root pointers and (by a counting sort on the source) a
 * compressed adjacency of block pointers, and read its roots, threads, frames and modules.
 * The arrays of what only some snapshots have (vtable pointers, interior target offsets) are
 * allocated when the first nonzero value comes, so that the others pay nothing for them. */
#define _GNU_SOURCE
#include "heapgraph.h"

#include <stdlib.h>
#include <string.h>
#include "../schema/chunk.h"
#include "usage.h"

static void corrupt(const struct heap_graph *g, const char *what)
{
    die(EXIT_INPUT, "cannot read '%s': %s in snapshot %lld (corrupt database)", g->db->path, what, (long long)g->snap);
}

static uint32_t saturate32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Grow an optional array a (NULL: not needed yet) of elem-sized entries from `have` entries
 * to `want`, the new ones zero. */
static void *grow_zeroed(void *a, size_t elem, size_t have, size_t want)
{
    if (!a)
        return NULL;
    a = xrealloc(a, want * elem);
    memset((char *)a + have * elem, 0, (want - have) * elem);
    return a;
}

/* ---- blocks ---- */

struct block_fill {
    struct heap_graph *g;
    size_t alloc;
};

static int take_object_chunk(void *ctx, const struct db_chunk *c)
{
    struct block_fill *f = ctx;
    struct heap_graph *g = f->g;
    const uint8_t *p = c->data, *end = c->data + c->len;
    if (c->key != (int64_t)g->nr_blocks || c->count < 0 || c->count > (int64_t)c->len ||
        (uint64_t)g->nr_blocks + (uint64_t)c->count >= HG_NONE)
        corrupt(g, "object_chunk rows out of sequence");
    size_t need = g->nr_blocks + (size_t)c->count;
    if (need > f->alloc) {
        size_t had = f->alloc;
        f->alloc = need + need / 2;
        g->addr = xrealloc(g->addr, f->alloc * sizeof *g->addr);
        g->size = xrealloc(g->size, f->alloc * sizeof *g->size);
        g->stack = xrealloc(g->stack, f->alloc * sizeof *g->stack);
        g->cls = xrealloc(g->cls, f->alloc);
        g->vptr = grow_zeroed(g->vptr, sizeof *g->vptr, had, f->alloc);
    }
    struct hw_chunk_cursor prev = { 0, 0 };
    for (int64_t i = 0; i < c->count; i++, g->nr_blocks++) {
        struct hw_chunk_block b;
        if (!hw_chunk_get_block(&p, end, &prev, &b))
            corrupt(g, "truncated object_chunk data");
        uint32_t k = g->nr_blocks;
        if (k && b.addr < g->addr[k - 1] + g->size[k - 1])
            corrupt(g, "blocks out of address order");
        g->addr[k] = b.addr;
        g->size[k] = b.size;
        g->stack[k] = (int64_t)b.stack;
        g->cls[k] = (uint8_t)(b.cls | b.flags << 2);
        if (b.vptr && !g->vptr)
            g->vptr = xcalloc(f->alloc, sizeof *g->vptr);
        if (g->vptr)
            g->vptr[k] = b.vptr;
    }
    if (p != end)
        corrupt(g, "an object_chunk with trailing bytes");
    return 0;
}

/* ---- pointers ---- */

/* Block pointers as they come (source, target, word, target offset; toff NULL while every
 * one so far points at its target's start), sorted into the adjacency afterwards. */
struct edge_fill {
    struct heap_graph *g;
    uint32_t *src, *dst, *word, *toff;
    size_t n, alloc, root_alloc;
    bool any;
};

static int take_edge_chunk(void *ctx, const struct db_chunk *c)
{
    struct edge_fill *f = ctx;
    struct heap_graph *g = f->g;
    const uint8_t *p = c->data, *end = c->data + c->len;
    struct hw_chunk_edge_cursor cursor = { 0, 0, 0 };   /* each chunk starts afresh */
    f->any = true;
    for (int64_t i = 0; i < c->count; i++) {
        struct hw_chunk_edge e;
        if (!hw_chunk_get_edge_at(&p, end, g->db->version, &cursor, &e))
            corrupt(g, "truncated edge_chunk data");
        if (e.target >= g->nr_blocks)
            corrupt(g, "a pointer to a block that does not exist");
        if (e.target_offset && e.target_offset >= g->size[e.target])
            corrupt(g, "a pointer past the end of its target");
        if (e.from_root) {
            if (e.source < 1 || e.source > g->nr_roots)
                corrupt(g, "a pointer out of a root that does not exist");
            ALLOC_GROW(g->root_edges, g->nr_root_edges + 1, f->root_alloc);
            g->root_edges[g->nr_root_edges++] =
                (struct hg_root_edge){ .root = (uint32_t)e.source - 1, .target = (uint32_t)e.target, .offset = e.offset,
                                       .target_offset = saturate32(e.target_offset) };
            continue;
        }
        if (e.source >= g->nr_blocks || e.offset / 8 >= UINT32_MAX)
            corrupt(g, "a pointer out of a block that does not exist");
        if (f->n == f->alloc) {
            size_t had = f->alloc;
            f->alloc = f->alloc ? f->alloc * 2 : 4096;
            f->src = xrealloc(f->src, f->alloc * sizeof *f->src);
            f->dst = xrealloc(f->dst, f->alloc * sizeof *f->dst);
            f->word = xrealloc(f->word, f->alloc * sizeof *f->word);
            f->toff = grow_zeroed(f->toff, sizeof *f->toff, had, f->alloc);
        }
        if (e.target_offset && !f->toff)
            f->toff = xcalloc(f->alloc, sizeof *f->toff);
        if (f->toff)
            f->toff[f->n] = saturate32(e.target_offset);
        f->src[f->n] = (uint32_t)e.source;
        f->dst[f->n] = (uint32_t)e.target;
        f->word[f->n++] = (uint32_t)(e.offset / 8);
    }
    if (p != end)
        corrupt(g, "an edge_chunk with trailing bytes");
    return 0;
}

static int cmp_root_edge(const void *a, const void *b)
{
    const struct hg_root_edge *x = a, *y = b;
    if (x->root != y->root)
        return x->root < y->root ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Counting sort of the block pointers by source; within a source, the mark wrote them in
 * offset order, which a stable sort keeps. The raw arrays are freed as soon as possible:
 * they are the peak of the load. */
static void build_adjacency(struct heap_graph *g, struct edge_fill *f)
{
    uint32_t n = g->nr_blocks;
    g->nr_edges = f->n;
    g->edge_first = xcalloc((size_t)n + 1, sizeof *g->edge_first);
    if (f->n >= UINT32_MAX)
        corrupt(g, "more pointers than heapwatch can hold");
    for (size_t e = 0; e < f->n; e++)
        g->edge_first[f->src[e] + 1]++;
    for (uint32_t k = 0; k < n; k++)
        g->edge_first[k + 1] += g->edge_first[k];
    g->edge_target = xmalloc((f->n ? f->n : 1) * sizeof *g->edge_target);
    g->edge_word = xmalloc((f->n ? f->n : 1) * sizeof *g->edge_word);
    if (f->toff)
        g->edge_toff = xmalloc((f->n ? f->n : 1) * sizeof *g->edge_toff);
    uint32_t *fill = xmalloc(((size_t)n + 1) * sizeof *fill);
    memcpy(fill, g->edge_first, ((size_t)n + 1) * sizeof *fill);
    for (size_t e = 0; e < f->n; e++) {
        uint32_t at = fill[f->src[e]]++;
        g->edge_target[at] = f->dst[e];
        g->edge_word[at] = f->word[e];
        if (f->toff)
            g->edge_toff[at] = f->toff[e];
    }
    free(fill);
    free(f->src);
    free(f->dst);
    free(f->word);
    free(f->toff);
    qsort(g->root_edges, g->nr_root_edges, sizeof *g->root_edges, cmp_root_edge);
}

/* ---- roots, modules, threads, frames ---- */

struct root_fill {
    struct heap_graph *g;
    size_t alloc;
};

static enum hg_root_kind root_kind(const char *name)
{
    static const char *const names[] = { "global", "tls", "dtv", "stack", "registers", "altstack", "region",
                                         "exited_thread", "thread_start" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (name && !strcmp(name, names[i]))
            return (enum hg_root_kind)i;
    return HG_ROOT_OTHER;
}

static uint32_t module_index(const struct heap_graph *g, int64_t id)
{
    for (uint32_t i = 0; i < g->nr_modules; i++)
        if (g->modules[i].id == id)
            return i;
    return HG_NONE;
}

static int take_root(void *ctx, const struct db_root *r)
{
    struct root_fill *f = ctx;
    struct heap_graph *g = f->g;
    if (r->id != (int64_t)g->nr_roots + 1)
        corrupt(g, "root ids out of sequence");
    ALLOC_GROW(g->roots, g->nr_roots + 1, f->alloc);
    g->roots[g->nr_roots++] = (struct hg_root){ .kind = root_kind(r->kind),
                                                .module = r->module_id ? module_index(g, r->module_id) : HG_NONE,
                                                .tid = r->tid, .start = r->start, .end = r->end };
    return 0;
}

struct module_fill {
    struct heap_graph *g;
    size_t alloc;
};

static int take_module(void *ctx, const struct db_module *m)
{
    struct module_fill *f = ctx;
    struct heap_graph *g = f->g;
    ALLOC_GROW(g->modules, g->nr_modules + 1, f->alloc);
    g->modules[g->nr_modules++] = (struct hg_module){
        .id = m->id, .path = xstrdup(m->path ? m->path : "?"), .build_id = m->build_id ? xstrdup(m->build_id) : NULL,
        .bias = m->bias, .text_start = m->start, .text_end = m->end, .tls_modid = m->tls_modid,
        .tls_size = m->tls_size, .tls_offset = m->tls_offset };
    return 0;
}

struct thread_fill {
    struct heap_graph *g;
    size_t alloc, frames_alloc;
};

static int take_thread(void *ctx, const struct db_thread *t)
{
    struct thread_fill *f = ctx;
    struct heap_graph *g = f->g;
    ALLOC_GROW(g->threads, g->nr_threads + 1, f->alloc);
    g->threads[g->nr_threads++] = (struct hg_thread){ .tid = t->tid, .state = xstrdup(t->state ? t->state : "?"),
                                                      .sp = t->sp, .tp = t->tp, .stack_start = t->stack_start,
                                                      .stack_end = t->stack_end };
    return 0;
}

static int take_frame(void *ctx, int tid, int depth, uint64_t pc, uint64_t cfa)
{
    struct thread_fill *f = ctx;
    struct hg_thread *t = (struct hg_thread *)hg_thread(f->g, tid);
    if (!t || depth != (int)t->nr_frames)
        return 0;   /* frames of a thread not listed, or with a hole: only the unbroken prefix */
    t->frames = xrealloc(t->frames, (t->nr_frames + 1) * sizeof *t->frames);
    t->frames[t->nr_frames++] = (struct hg_frame){ .pc = pc, .cfa = cfa };
    return 0;
}

bool heap_graph_load(struct heap_graph *g, struct hwdb *db, int64_t snap)
{
    memset(g, 0, sizeof *g);
    g->db = db;
    g->snap = snap;
    struct module_fill mf = { g, 0 };
    struct root_fill rf = { g, 0 };
    struct thread_fill tf = { g, 0, 0 };
    if (db_each_module(db, take_module, &mf) < 0 || db_each_root(db, snap, take_root, &rf) < 0 ||
        db_each_thread(db, snap, take_thread, &tf) < 0 || db_each_frame(db, snap, take_frame, &tf) < 0)
        exit(EXIT_INPUT);
    struct block_fill bf = { g, 0 };
    if (db_each_object_chunk(db, snap, take_object_chunk, &bf) < 0)
        exit(EXIT_INPUT);
    struct edge_fill ef = { .g = g };
    if (db_each_edge_chunk(db, snap, take_edge_chunk, &ef) < 0)
        exit(EXIT_INPUT);
    if (!g->nr_blocks && !ef.any) {
        free(ef.src);
        free(ef.dst);
        free(ef.word);
        free(ef.toff);
        heap_graph_release(g);
        return false;
    }
    build_adjacency(g, &ef);
    return true;
}

void heap_graph_release(struct heap_graph *g)
{
    free(g->addr);
    free(g->size);
    free(g->stack);
    free(g->cls);
    free(g->vptr);
    free(g->edge_first);
    free(g->edge_target);
    free(g->edge_word);
    free(g->edge_toff);
    free(g->root_edges);
    free(g->roots);
    for (uint32_t i = 0; i < g->nr_modules; i++) {
        free(g->modules[i].path);
        free(g->modules[i].build_id);
    }
    free(g->modules);
    for (uint32_t i = 0; i < g->nr_threads; i++) {
        free(g->threads[i].state);
        free(g->threads[i].frames);
    }
    free(g->threads);
    memset(g, 0, sizeof *g);
}

uint32_t hg_block_at(const struct heap_graph *g, uint64_t a)
{
    uint32_t lo = 0, hi = g->nr_blocks;
    while (lo < hi) {   /* the first block starting above a */
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->addr[mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo || a - g->addr[lo - 1] >= (g->size[lo - 1] ? g->size[lo - 1] : 1))
        return HG_NONE;
    return lo - 1;
}

const struct hg_thread *hg_thread(const struct heap_graph *g, int tid)
{
    for (uint32_t i = 0; i < g->nr_threads; i++)
        if (g->threads[i].tid == tid)
            return &g->threads[i];
    return NULL;
}

uint32_t hg_module_of_pc(const struct heap_graph *g, uint64_t pc)
{
    for (uint32_t i = g->nr_modules; i-- > 0;)
        if (pc >= g->modules[i].text_start && pc < g->modules[i].text_end)
            return i;
    return HG_NONE;
}
