/* This file implements the live-object table.
 *
 * Design notes (invariants):
 *  1. A block lives in shard (hash(addr) >> SHIFT); within it, linear probing from
 *     hash(addr) & mask. Deletion shifts later entries of the same cluster backwards, so there
 *     are no tombstones and probe chains stay short.
 *  2. A shard's lock protects its slots, count and bytes; nothing else. Shards grow at 3/4
 *     load into a fresh mapping of twice the size (growth is the cold path).
 *  3. free() must remove the entry *before* the real free, or another thread could receive the
 *     same address from malloc and insert it first (heaptrack's free hook makes the same point).
 *  4. Memory: 24-byte entries at 3/8..3/4 load = 32..64 bytes a block (64 right after a
 *     growth, ~45 on average); see hw_livetable_footprint.
 * Context: HOOKSAFE -- runs inside malloc/free; no libc allocation, no stdio. */
#define _GNU_SOURCE
#include "livetable.h"

#include <string.h>
#include "forkgate.h"
#include "spin.h"
#include "sys.h"

#define SHARD_BITS 7
#define NSHARDS (1u << SHARD_BITS)
/* One page a shard to begin with: in sampled mode the table holds only the sampled blocks, a
 * few thousand, and a larger start cost every program a page fault a slot it touched (3 MiB and
 * about 10 ms of faults at 1024). Full mode grows it; growth is the cold path. */
#define INITIAL_SLOTS 128

struct shard {
    _Atomic int lock;
    uint32_t mask;  /* slots - 1 */
    uint64_t count;
    uint64_t bytes;
    struct hw_live_entry *slots;
} __attribute__((aligned(64)));

static struct shard shards[NSHARDS];
static struct hw_live_entry *first_slots;   /* every shard's first INITIAL_SLOTS, one mapping */
static void (*count_alloc)(const struct hw_live_entry *), (*count_free)(const struct hw_live_entry *);

void hw_livetable_set_counters(void (*alloc)(const struct hw_live_entry *), void (*freed)(const struct hw_live_entry *))
{
    count_alloc = alloc;
    count_free = freed;
}

static inline uint64_t hash_addr(uintptr_t a)
{
    uint64_t h = (uint64_t)a >> 4;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

/* The shard of a block: by the 4 KiB page it lies in, not by the block itself. Threads whose
 * allocator gives them memory of their own (glibc's per-thread arenas, jemalloc's and
 * tcmalloc's thread caches) then meet on a shard only where their pages hash together; a shard
 * per block bounced every shard's lock and slots between the cores (two threads churning in
 * full mode ran 1.3x longer). Coarser regions would part such threads entirely, but crowd a
 * small heap into a few shards, whose probing at their usual load costs more than spreading
 * saves (2 MiB regions made one thread churning 1,024 blocks 1.4x slower). */
#define SHARD_REGION_BITS 12
static inline struct shard *shard_of(uintptr_t addr)
{
    uint64_t r = (uint64_t)addr >> SHARD_REGION_BITS;
    r *= 0x9e3779b97f4a7c15ull;
    return &shards[r >> (64 - SHARD_BITS)];
}

bool hw_livetable_init(void)
{
    /* populated: a first touch from malloc would fault, and in a threaded program the copy of
     * the zero page it read costs a TLB shootdown on every other CPU. One mapping for all
     * shards: a mapping each was 128 mmap calls, a tenth of a short program's time. */
    first_slots = hw_map_populated((size_t)NSHARDS * INITIAL_SLOTS * sizeof(struct hw_live_entry));
    if (!first_slots)
        return false;
    for (unsigned i = 0; i < NSHARDS; i++) {
        shards[i].slots = first_slots + (size_t)i * INITIAL_SLOTS;
        shards[i].mask = INITIAL_SLOTS - 1;
    }
    return true;
}

static void place(struct hw_live_entry *slots, uint32_t mask, const struct hw_live_entry *e)
{
    uint32_t i = (uint32_t)hash_addr(e->addr) & mask;
    while (slots[i].addr)
        i = (i + 1) & mask;
    slots[i] = *e;
}

/* Double the shard's capacity; called with its lock held. */
static HW_COLD bool grow(struct shard *s)
{
    uint32_t old_slots = s->mask + 1, new_slots = old_slots * 2;
    if (new_slots < old_slots)
        return false;
    struct hw_live_entry *n = hw_map_populated((size_t)new_slots * sizeof *n);
    if (!n)
        return false;
    for (uint32_t i = 0; i < old_slots; i++)
        if (s->slots[i].addr)
            place(n, new_slots - 1, &s->slots[i]);
    if (s->slots < first_slots || s->slots >= first_slots + (size_t)NSHARDS * INITIAL_SLOTS)
        hw_unmap(s->slots, (size_t)old_slots * sizeof *n);   /* a shard's first slots stay: 3 KiB */
    s->slots = n;
    s->mask = new_slots - 1;
    return true;
}

/* The slot holding addr in shard s, or the empty slot that ends its probe run. Lock held. */
static inline uint32_t find_slot(const struct shard *s, uint64_t h, uintptr_t addr)
{
    uint32_t i = (uint32_t)h & s->mask;
    while (s->slots[i].addr && s->slots[i].addr != addr)
        i = (i + 1) & s->mask;
    return i;
}

bool hw_livetable_insert(const struct hw_live_entry *e)
{
    uint64_t h = hash_addr(e->addr);
    struct shard *s = shard_of(e->addr);
    if (!hw_spin_lock_or_fork(&s->lock))
        return false;   /* a fork holds the table (forkgate.h): the block goes unrecorded */
    if (HW_UNLIKELY((s->count + 1) * 4 > (uint64_t)(s->mask + 1) * 3) && !grow(s)) {
        hw_spin_unlock(&s->lock);
        return false;
    }
    uint32_t i = find_slot(s, h, e->addr);
    if (!s->slots[i].addr) {
        s->count++;
    } else {
        s->bytes -= s->slots[i].size;  /* stale entry of a block freed behind our back */
    }
    s->slots[i] = *e;
    s->bytes += e->size;
    if (count_alloc && hw_live_entry_counted(e))
        count_alloc(e);
    hw_spin_unlock(&s->lock);
    return true;
}

bool hw_livetable_remove(uintptr_t addr, struct hw_live_entry *out)
{
    uint64_t h = hash_addr(addr);
    struct shard *s = shard_of(addr);
    if (!hw_spin_lock_or_fork(&s->lock))
        return false;   /* a fork holds the table: the entry stays, stale (insert replaces it) */
    uint32_t mask = s->mask, i = find_slot(s, h, addr);
    struct hw_live_entry *slots = s->slots;
    if (!slots[i].addr) {
        hw_spin_unlock(&s->lock);
        return false;
    }
    *out = slots[i];
    s->count--;
    s->bytes -= out->size;
    if (count_free && hw_live_entry_counted(out))
        count_free(out);
    /* Backward-shift deletion: pull later entries of the cluster into the hole when their
     * home slot is not cyclically between the hole and their position. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & mask; slots[j].addr; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)hash_addr(slots[j].addr) & mask;
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            slots[hole] = slots[j];
            hole = j;
        }
    }
    slots[hole].addr = 0;
    hw_spin_unlock(&s->lock);
    return true;
}

void hw_livetable_visit(bool (*fn)(const struct hw_live_entry *, void *), void *arg)
{
    for (unsigned k = 0; k < NSHARDS; k++) {
        struct shard *s = &shards[k];
        hw_spin_lock(&s->lock);
        for (uint32_t i = 0; i <= s->mask; i++) {
            if (s->slots[i].addr && !fn(&s->slots[i], arg)) {
                hw_spin_unlock(&s->lock);
                return;
            }
        }
        hw_spin_unlock(&s->lock);
    }
}

unsigned hw_livetable_shards(void) { return NSHARDS; }

bool hw_livetable_copy_shard(unsigned k, struct hw_vec *out)
{
    struct shard *s = &shards[k];
    bool ok = true;
    hw_spin_lock(&s->lock);
    for (uint32_t i = 0; i <= s->mask && ok; i++) {
        if (!s->slots[i].addr)
            continue;
        struct hw_live_entry *e = hw_vec_push(out);
        if (e)
            *e = s->slots[i];
        ok = e != NULL;
    }
    hw_spin_unlock(&s->lock);
    return ok;
}

const struct hw_live_entry *hw_livetable_slots_stopped(unsigned k, size_t *nr)
{
    *nr = (size_t)shards[k].mask + 1;
    return shards[k].slots;
}

bool hw_livetable_set_ignored(uintptr_t addr)
{
    uint64_t h = hash_addr(addr);
    struct shard *s = shard_of(addr);
    hw_spin_lock(&s->lock);
    uint32_t i = find_slot(s, h, addr);
    bool found = s->slots[i].addr != 0;
    if (found)
        s->slots[i].ignored = 1;
    hw_spin_unlock(&s->lock);
    return found;
}

void hw_livetable_totals(uint64_t *objects, uint64_t *bytes)
{
    uint64_t o = 0, b = 0;
    for (unsigned k = 0; k < NSHARDS; k++) {
        o += __atomic_load_n(&shards[k].count, __ATOMIC_RELAXED);
        b += __atomic_load_n(&shards[k].bytes, __ATOMIC_RELAXED);
    }
    *objects = o;
    *bytes = b;
}

uint64_t hw_livetable_footprint(void)
{
    uint64_t f = 0;
    for (unsigned k = 0; k < NSHARDS; k++)
        f += (uint64_t)(shards[k].mask + 1) * sizeof(struct hw_live_entry);
    return f;
}

void hw_livetable_lock_all(void)
{
    for (unsigned k = 0; k < NSHARDS; k++)
        hw_spin_lock(&shards[k].lock);
}

void hw_livetable_unlock_all(void)
{
    for (unsigned k = 0; k < NSHARDS; k++)
        hw_spin_unlock(&shards[k].lock);
}

