/* This file implements heldset.h: decode the snapshot's object_chunk rows (class and stack of
 * every block, by block number), then its edge_chunk rows keeping only pointers between
 * unreachable blocks, then flood from the suppressed ones. */
#define _GNU_SOURCE
#include "heldset.h"

#include <stdlib.h>
#include <string.h>
#include "../schema/chunk.h"
#include "usage.h"

struct blocks {
    struct hwdb *db;
    int64_t snap;
    int64_t *stack, *size;
    unsigned char *cls;     /* class | flags << 2 */
    size_t n, alloc;
};

static int take_object_chunk(void *ctx, const struct db_chunk *c)
{
    struct blocks *b = ctx;
    const uint8_t *p = c->data, *end = c->data + c->len;
    if (c->key != (int64_t)b->n || c->count < 0 || c->count > (int64_t)c->len)
        die(EXIT_INPUT, "cannot read '%s': object_chunk rows out of sequence in snapshot %lld (corrupt database)",
            b->db->path, (long long)b->snap);
    if (b->n + (size_t)c->count > b->alloc) {
        b->alloc = (b->n + (size_t)c->count) * 2;
        b->stack = xrealloc(b->stack, b->alloc * sizeof *b->stack);
        b->size = xrealloc(b->size, b->alloc * sizeof *b->size);
        b->cls = xrealloc(b->cls, b->alloc);
    }
    struct hw_chunk_cursor prev = { 0, 0 };
    for (int64_t k = 0; k < c->count; k++, b->n++) {
        struct hw_chunk_block block;
        if (!hw_chunk_get_block(&p, end, &prev, &block))
            die(EXIT_INPUT, "cannot read '%s': truncated object_chunk data (corrupt database)", b->db->path);
        b->size[b->n] = (int64_t)block.size;
        b->stack[b->n] = (int64_t)block.stack;
        b->cls[b->n] = (unsigned char)(block.cls | block.flags << 2);
    }
    if (p != end)
        die(EXIT_INPUT, "cannot read '%s': object_chunk %lld of snapshot %lld has trailing bytes (corrupt database)",
            b->db->path, (long long)c->key, (long long)b->snap);
    return 0;
}

/* Every block's class, stack and size, in block-number order. False if there are none. */
static bool load_blocks(struct blocks *b, struct hwdb *db, int64_t snap)
{
    memset(b, 0, sizeof *b);
    b->db = db;
    b->snap = snap;
    if (db_each_object_chunk(db, snap, take_object_chunk, b) < 0)
        exit(EXIT_INPUT);
    return b->n > 0;
}

static bool unreachable(const struct blocks *b, uint64_t k) { return (b->cls[k] & 3) == 1 || (b->cls[k] & 3) == 2; }

/* Pointers out of unreachable blocks into unreachable blocks, as (source, target) pairs. */
struct inner_edges {
    const struct blocks *b;
    uint32_t *src, *dst;
    size_t n, alloc;
    bool any;   /* the snapshot has edge rows at all */
};

static int take_edge_chunk(void *ctx, const struct db_chunk *c)
{
    struct inner_edges *ie = ctx;
    const struct blocks *b = ie->b;
    const uint8_t *p = c->data, *end = c->data + c->len;
    struct hw_chunk_edge_cursor cursor = { 0, 0, 0 };   /* each chunk starts afresh */
    ie->any = true;
    for (int64_t k = 0; k < c->count; k++) {
        struct hw_chunk_edge e;
        if (!hw_chunk_get_edge_at(&p, end, b->db->version, &cursor, &e))
            die(EXIT_INPUT, "cannot read '%s': truncated edge_chunk data (corrupt database)", b->db->path);
        if (e.target >= b->n || (!e.from_root && e.source >= b->n))
            die(EXIT_INPUT, "cannot read '%s': a pointer to or from block %llu of %zu in snapshot %lld (corrupt database)",
                b->db->path, (unsigned long long)(e.target >= b->n ? e.target : e.source), b->n, (long long)b->snap);
        if (e.from_root || !unreachable(b, e.source) || !unreachable(b, e.target))
            continue;
        if (ie->n == ie->alloc) {
            ie->alloc = ie->alloc ? 2 * ie->alloc : 1024;
            ie->src = xrealloc(ie->src, ie->alloc * sizeof *ie->src);
            ie->dst = xrealloc(ie->dst, ie->alloc * sizeof *ie->dst);
        }
        ie->src[ie->n] = (uint32_t)e.source;
        ie->dst[ie->n++] = (uint32_t)e.target;
    }
    if (p != end)
        die(EXIT_INPUT, "cannot read '%s': an edge_chunk of snapshot %lld has trailing bytes (corrupt database)",
            b->db->path, (long long)b->snap);
    return 0;
}

bool heldset_load(struct heldset *h, struct hwdb *db, int64_t snap, const struct hmap *suppressed_stacks)
{
    memset(h, 0, sizeof *h);
    struct blocks b;
    if (!load_blocks(&b, db, snap))
        return false;
    /* Then sorted into per-source lists (counting sort). */
    struct inner_edges ie = { .b = &b };
    if (db_each_edge_chunk(db, snap, take_edge_chunk, &ie) < 0)
        exit(EXIT_INPUT);
    uint32_t *src = ie.src, *dst = ie.dst;
    size_t ne = ie.n;
    bool any_edges = ie.any;
    if (any_edges) {
        size_t *start = xcalloc(b.n + 1, sizeof *start);
        for (size_t e = 0; e < ne; e++)
            start[src[e] + 1]++;
        for (size_t k = 0; k < b.n; k++)
            start[k + 1] += start[k];
        uint32_t *out = xmalloc((ne ? ne : 1) * sizeof *out);
        size_t *fill = xmalloc((b.n + 1) * sizeof *fill);
        memcpy(fill, start, (b.n + 1) * sizeof *fill);
        for (size_t e = 0; e < ne; e++)
            out[fill[src[e]]++] = dst[e];
        free(fill);
        /* Flood from the suppressed blocks; 1 = a root of the flood, 2 = held by one. */
        unsigned char *mark = xcalloc(b.n, 1);
        uint32_t *work = xmalloc(b.n * sizeof *work);
        size_t top = 0;
        for (size_t k = 0; k < b.n; k++) {
            if (unreachable(&b, k) && !(b.cls[k] & (2 << 2)) && hmap_get(suppressed_stacks, (uint64_t)b.stack[k])) {
                mark[k] = 1;
                work[top++] = (uint32_t)k;
            }
        }
        while (top) {
            uint32_t k = work[--top];
            for (size_t e = start[k]; e < start[k + 1]; e++) {
                if (mark[out[e]])
                    continue;
                mark[out[e]] = 2;
                work[top++] = out[e];
            }
        }
        size_t alloc = 0;
        for (size_t k = 0; k < b.n; k++) {
            if (mark[k] != 2)
                continue;
            ALLOC_GROW(h->blocks, h->nr + 1, alloc);
            h->blocks[h->nr++] = (struct held_block){ .stack_id = b.stack[k], .size = b.size[k], .cls = b.cls[k] & 3 };
        }
        free(mark);
        free(work);
        free(out);
        free(start);
    }
    free(src);
    free(dst);
    free(b.stack);
    free(b.size);
    free(b.cls);
    return any_edges;
}

void heldset_release(struct heldset *h)
{
    free(h->blocks);
    memset(h, 0, sizeof *h);
}
