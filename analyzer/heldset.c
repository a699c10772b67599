/* This file implements heldset.h: decode the snapshot's object_chunk rows (class and stack of
 * every block, by block number), then its edge_chunk rows keeping only pointers between
 * unreachable blocks, then flood from the suppressed ones. */
#define _GNU_SOURCE
#include "heldset.h"

#include <stdlib.h>
#include <string.h>
#include "usage.h"

struct reader {
    const unsigned char *p, *end;
    struct hwdb *db;
    const char *table;
};

static uint64_t next_varint(struct reader *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; r->p < r->end && shift < 64; shift += 7) {
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    die(EXIT_INPUT, "cannot read '%s': truncated %s data (corrupt database)", r->db->path, r->table);
}

struct blocks {
    int64_t *stack, *size;
    unsigned char *cls;     /* class | flags << 2 */
    size_t n;
};

/* Every block's class, stack and size, in block-number order. False if there are none. */
static bool load_blocks(struct blocks *b, struct hwdb *db, int64_t snap)
{
    memset(b, 0, sizeof *b);
    sqlite3_stmt *st = db_prepare(db, "SELECT first, count, data FROM object_chunk WHERE snapshot_id = ? ORDER BY first");
    sqlite3_bind_int64(st, 1, snap);
    size_t alloc = 0;
    while (db_step(db, st)) {
        int64_t first = sqlite3_column_int64(st, 0), count = sqlite3_column_int64(st, 1);
        struct reader r = { sqlite3_column_blob(st, 2), NULL, db, "object_chunk" };
        r.end = r.p + sqlite3_column_bytes(st, 2);
        if (first != (int64_t)b->n || count < 0 || count > (int64_t)(r.end - r.p))
            die(EXIT_INPUT, "cannot read '%s': object_chunk rows out of sequence in snapshot %lld (corrupt database)",
                db->path, (long long)snap);
        if (b->n + (size_t)count > alloc) {
            alloc = (b->n + (size_t)count) * 2;
            b->stack = xrealloc(b->stack, alloc * sizeof *b->stack);
            b->size = xrealloc(b->size, alloc * sizeof *b->size);
            b->cls = xrealloc(b->cls, alloc);
        }
        for (int64_t k = 0; k < count; k++, b->n++) {
            next_varint(&r);                       /* address delta */
            b->size[b->n] = (int64_t)next_varint(&r);
            b->stack[b->n] = (int64_t)next_varint(&r);
            next_varint(&r);                       /* seq */
            next_varint(&r);                       /* tid */
            b->cls[b->n] = (unsigned char)next_varint(&r);
        }
        if (r.p != r.end)
            die(EXIT_INPUT, "cannot read '%s': object_chunk %lld of snapshot %lld has trailing bytes (corrupt database)",
                db->path, (long long)first, (long long)snap);
    }
    sqlite3_finalize(st);
    return b->n > 0;
}

static bool unreachable(const struct blocks *b, uint64_t k) { return (b->cls[k] & 3) == 1 || (b->cls[k] & 3) == 2; }

bool heldset_load(struct heldset *h, struct hwdb *db, int64_t snap, const struct hmap *suppressed_stacks)
{
    memset(h, 0, sizeof *h);
    struct blocks b;
    if (!load_blocks(&b, db, snap))
        return false;
    /* Pointers out of unreachable blocks into unreachable blocks, as (source, target) pairs;
     * then sorted into per-source lists (counting sort). */
    uint32_t *src = NULL, *dst = NULL;
    size_t ne = 0, ealloc = 0;
    bool any_edges = false;
    sqlite3_stmt *st = db_prepare(db, "SELECT count, data FROM edge_chunk WHERE snapshot_id = ? ORDER BY chunk");
    sqlite3_bind_int64(st, 1, snap);
    while (db_step(db, st)) {
        int64_t count = sqlite3_column_int64(st, 0);
        struct reader r = { sqlite3_column_blob(st, 1), NULL, db, "edge_chunk" };
        r.end = r.p + sqlite3_column_bytes(st, 1);
        any_edges = true;
        for (int64_t k = 0; k < count; k++) {
            uint64_t from = next_varint(&r);
            next_varint(&r);                       /* offset / 8 */
            uint64_t to = next_varint(&r);
            if (to >= b.n || (!(from & 1) && from / 2 >= b.n))
                die(EXIT_INPUT, "cannot read '%s': a pointer to or from block %llu of %zu in snapshot %lld (corrupt database)",
                    db->path, (unsigned long long)(to >= b.n ? to : from / 2), b.n, (long long)snap);
            if ((from & 1) || !unreachable(&b, from / 2) || !unreachable(&b, to))
                continue;
            if (ne == ealloc) {
                ealloc = ealloc ? 2 * ealloc : 1024;
                src = xrealloc(src, ealloc * sizeof *src);
                dst = xrealloc(dst, ealloc * sizeof *dst);
            }
            src[ne] = (uint32_t)(from / 2);
            dst[ne++] = (uint32_t)to;
        }
        if (r.p != r.end)
            die(EXIT_INPUT, "cannot read '%s': an edge_chunk of snapshot %lld has trailing bytes (corrupt database)",
                db->path, (long long)snap);
    }
    sqlite3_finalize(st);
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
