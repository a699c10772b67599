/* This file implements the stack depot.
 *
 * Design notes (invariants):
 *  1. The index is a fixed open-addressing array of (hash, id) pairs reserved up front
 *     (NORESERVE: only touched pages cost memory). A slot is published by storing its id and
 *     then its hash with release order; readers load the hash with acquire order, so a reader
 *     that sees a hash also sees its id and the stack record behind it.
 *  2. Records are appended to a bump arena and never move or die: ids are stable for the
 *     life of the process, which is what the database's stack table needs.
 *  3. A hash match is confirmed by comparing the PCs, so two stacks never share an id.
 *  4. Only insertion takes the mutex (a spin lock: the depot is used inside malloc).
 * Context: HOOKSAFE. */
#define _GNU_SOURCE
#include "depot.h"

#include <string.h>
#include "spin.h"
#include "sys.h"

#define INDEX_BITS 21
#define INDEX_SLOTS (1u << INDEX_BITS)
#define MAX_STACKS (INDEX_SLOTS / 2)
#define ARENA_BYTES (1ull << 33)  /* reserved, touched as used */

static _Atomic uint64_t *index_hash;
static uint32_t *index_id;
static struct hw_stack **by_id;
static char *arena;
static uint64_t arena_used;
static _Atomic uint32_t nr_stacks;
static _Atomic int lock;

bool hw_depot_init(void)
{
    index_hash = hw_map(INDEX_SLOTS * sizeof *index_hash);
    index_id = hw_map(INDEX_SLOTS * sizeof *index_id);
    by_id = hw_map((MAX_STACKS + 1) * sizeof *by_id);
    arena = hw_map(ARENA_BYTES);
    return index_hash && index_id && by_id && arena;
}

static inline uint64_t hash_pcs(const uintptr_t *pcs, uint32_t depth)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ depth;
    for (uint32_t i = 0; i < depth; i++) {
        h ^= pcs[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
    }
    return h ? h : 1;  /* 0 marks an empty slot */
}

static inline bool same(const struct hw_stack *s, const uintptr_t *pcs, uint32_t depth)
{
    return s->depth == depth && !memcmp(s->pcs, pcs, depth * sizeof *pcs);
}

/* Probe for hash; returns the id of a matching stack, 0 with *slot = first empty slot. */
static uint32_t probe(uint64_t h, const uintptr_t *pcs, uint32_t depth, uint32_t *slot)
{
    for (uint32_t i = (uint32_t)h & (INDEX_SLOTS - 1);; i = (i + 1) & (INDEX_SLOTS - 1)) {
        uint64_t k = atomic_load_explicit(&index_hash[i], memory_order_acquire);
        if (!k) {
            *slot = i;
            return 0;
        }
        if (k == h && same(by_id[index_id[i]], pcs, depth))
            return index_id[i];
    }
}

static HW_NOINLINE uint32_t put_slow(uint64_t h, const uintptr_t *pcs, uint32_t depth)
{
    uint32_t slot, id;
    hw_spin_lock(&lock);
    id = probe(h, pcs, depth, &slot);
    if (id)
        goto out_unlock;
    uint32_t n = atomic_load_explicit(&nr_stacks, memory_order_relaxed);
    size_t need = (sizeof(struct hw_stack) + depth * sizeof *pcs + 15) & ~(size_t)15;
    if (n + 1 >= MAX_STACKS || arena_used + need > ARENA_BYTES)
        goto out_unlock;  /* full: the allocation is counted as unsampled */
    struct hw_stack *s = (struct hw_stack *)(arena + arena_used);
    arena_used += need;
    s->hash = h;
    s->depth = depth;
    s->id = id = n + 1;
    memcpy(s->pcs, pcs, depth * sizeof *pcs);
    by_id[id] = s;
    index_id[slot] = id;
    atomic_store_explicit(&nr_stacks, id, memory_order_release);
    atomic_store_explicit(&index_hash[slot], h, memory_order_release);
out_unlock:
    hw_spin_unlock(&lock);
    return id;
}

uint32_t hw_depot_put(const uintptr_t *pcs, uint32_t depth)
{
    uint64_t h = hash_pcs(pcs, depth);
    uint32_t slot, id = probe(h, pcs, depth, &slot);
    return id ? id : put_slow(h, pcs, depth);
}

struct hw_stack *hw_depot_get(uint32_t id)
{
    if (!id || id > atomic_load_explicit(&nr_stacks, memory_order_acquire))
        return NULL;
    return by_id[id];
}

uint32_t hw_depot_count(void)
{
    return atomic_load_explicit(&nr_stacks, memory_order_acquire);
}

void hw_depot_lock(void) { hw_spin_lock(&lock); }
void hw_depot_unlock(void) { hw_spin_unlock(&lock); }
