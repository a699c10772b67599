/* This file implements the private allocator of arena.h.
 *
 * Each block has a 16-byte header holding its class (or, for a mapped block, its mapping
 * length). Freed blocks go to a per-class free list and are reused; memory is never returned
 * for classed blocks (SQLite's footprint is a few MiB and steady across snapshots). The
 * classes reach 128 KiB so that a 64 KiB database page and its header is one. A few freed
 * mappings are kept for reuse: a snapshot inserts dozens of megabyte-sized records, and
 * mapping, faulting in and unmapping each one cost more than SQLite's own work on it.
 * Context: HOOKSAFE. */
#define _GNU_SOURCE
#include "arena.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "spin.h"
#include "sys.h"

#define HEADER 16
#define MIN_SHIFT 5                       /* smallest block: 32 bytes including the header */
#define MAX_SHIFT 17                      /* largest classed block: 128 KiB */
#define NCLASSES (MAX_SHIFT - MIN_SHIFT + 1)
#define SLAB (1u << 20)
#define MAPPED_CLASS 0xffu
#define KEPT_MAPPINGS 4
#define KEPT_BYTES ((size_t)16 << 20)

struct header {
    size_t len;       /* mapped: total mapping length (unused for classed blocks) */
    size_t cls;       /* class index or MAPPED_CLASS */
};

struct free_block {
    struct free_block *next;
};

static _Atomic int lock;
static struct free_block *free_lists[NCLASSES];
static char *slab_cur, *slab_end;
static struct header *kept[KEPT_MAPPINGS];  /* freed mappings, for reuse */
static size_t kept_bytes;

/* A kept mapping of at least len bytes and not more than twice that, or NULL. Lock held. */
static struct header *reuse_mapping(size_t len)
{
    for (unsigned k = 0; k < KEPT_MAPPINGS; k++) {
        struct header *h = kept[k];
        if (h && h->len >= len && h->len / 2 <= len) {
            kept[k] = NULL;
            kept_bytes -= h->len;
            return h;
        }
    }
    return NULL;
}

/* Keep a freed mapping if there is room; false if the caller must unmap it. Lock held. */
static bool keep_mapping(struct header *h)
{
    if (h->len > KEPT_BYTES - kept_bytes)
        return false;
    for (unsigned k = 0; k < KEPT_MAPPINGS; k++) {
        if (!kept[k]) {
            kept[k] = h;
            kept_bytes += h->len;
            return true;
        }
    }
    return false;
}

static unsigned class_of(size_t total)
{
    unsigned c = 0;
    while (((size_t)1 << (MIN_SHIFT + c)) < total)
        c++;
    return c;
}

static void *carve(unsigned c)
{
    size_t sz = (size_t)1 << (MIN_SHIFT + c);
    if ((size_t)(slab_end - slab_cur) < sz) {
        char *s = hw_map(SLAB);
        if (!s)
            return NULL;
        slab_cur = s;  /* the tail of the old slab is abandoned: at most one block's worth */
        slab_end = s + SLAB;
    }
    void *p = slab_cur;
    slab_cur += sz;
    return p;
}

void *hw_arena_alloc(size_t n)
{
    size_t total = n + HEADER;
    if (total < n)
        return NULL;
    struct header *h;
    if (total > ((size_t)1 << MAX_SHIFT)) {
        size_t len = (total + 4095) & ~(size_t)4095;
        hw_spin_lock(&lock);
        h = reuse_mapping(len);
        hw_spin_unlock(&lock);
        if (h)
            return (char *)h + HEADER;
        h = hw_map(len);
        if (!h)
            return NULL;
        h->len = len;
        h->cls = MAPPED_CLASS;
        return (char *)h + HEADER;
    }
    unsigned c = class_of(total);
    hw_spin_lock(&lock);
    struct free_block *f = free_lists[c];
    if (f) {
        free_lists[c] = f->next;
        h = (struct header *)f;
    } else {
        h = carve(c);
    }
    hw_spin_unlock(&lock);
    if (!h)
        return NULL;
    h->cls = c;
    return (char *)h + HEADER;
}

void hw_arena_free(void *p)
{
    if (!p)
        return;
    struct header *h = (struct header *)((char *)p - HEADER);
    if (h->cls == MAPPED_CLASS) {
        hw_spin_lock(&lock);
        bool kept_it = keep_mapping(h);
        hw_spin_unlock(&lock);
        if (!kept_it)
            hw_unmap(h, h->len);
        return;
    }
    HW_ASSERT(h->cls < NCLASSES);
    struct free_block *f = (struct free_block *)h;
    hw_spin_lock(&lock);
    f->next = free_lists[h->cls];
    free_lists[h->cls] = f;
    hw_spin_unlock(&lock);
}

size_t hw_arena_size(const void *p)
{
    if (!p)
        return 0;
    const struct header *h = (const struct header *)((const char *)p - HEADER);
    if (h->cls == MAPPED_CLASS)
        return h->len - HEADER;
    return ((size_t)1 << (MIN_SHIFT + h->cls)) - HEADER;
}

void *hw_arena_realloc(void *p, size_t n)
{
    if (!p)
        return hw_arena_alloc(n);
    size_t have = hw_arena_size(p);
    if (n <= have && n >= have / 2)
        return p;
    void *q = hw_arena_alloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, n < have ? n : have);
    hw_arena_free(p);
    return q;
}

void hw_arena_lock(void)
{
    hw_spin_lock(&lock);
}

void hw_arena_unlock(void)
{
    hw_spin_unlock(&lock);
}

void hw_arena_reset_lock(void)
{
    hw_spin_unlock(&lock);
}
