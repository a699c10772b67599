/* arena.c: a bump allocator freed all at once (arena.h).
 *
 * This file implements an arena as a chain of blocks of ARENA_BLOCK bytes; a request bigger
 * than a quarter block gets a block of its own, linked behind the current one so that the
 * current block keeps filling.
 *
 * Context: analyzer only; not thread-safe. */
#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usage.h"

#define ARENA_BLOCK (64 * 1024)

struct arena_block {
    struct arena_block *next;
    alignas(max_align_t) unsigned char data[];
};

void *arena_alloc(struct arena *a, size_t n)
{
    size_t align = alignof(max_align_t), need = (n + align - 1) & ~(align - 1);
    struct arena_block *b;

    if (need < n)
        die(EXIT_SYSTEM, "out of memory allocating %zu bytes", n);
    if (need > ARENA_BLOCK / 4) {
        b = xcalloc(1, sizeof(*b) + need);
        if (a->head) { /* behind the current block, which keeps filling */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            a->head = b;
            a->used = a->cap = 0;
        }
        return b->data;
    }
    if (!a->head || a->cap - a->used < need) {
        b = xmalloc(sizeof(*b) + ARENA_BLOCK);
        b->next = a->head;
        a->head = b;
        a->used = 0;
        a->cap = ARENA_BLOCK;
    }
    a->used += need;
    return memset(a->head->data + a->used - need, 0, need);
}

void *arena_dup(struct arena *a, const void *p, size_t n)
{
    void *q = arena_alloc(a, n);

    return n ? memcpy(q, p, n) : q;
}

void arena_clear(struct arena *a)
{
    struct arena_block *b = a->head;

    while (b) {
        struct arena_block *next = b->next;

        free(b);
        b = next;
    }
    *a = (struct arena){ 0 };
}
