/* This file implements the stack depot.
 *
 * Design notes (invariants):
 *  1. Nodes (pc, parent, counters slot) live in an append-only array reserved up front
 *     (NORESERVE: only the used prefix costs memory); node ids never change.
 *  2. A node's children are found through a list threaded through the nodes (first_child,
 *     next_sibling) while it has at most FANOUT_LIST of them, and through the edge index
 *     (parent, pc) -> node, an open-addressing table that doubles when 3/4 full, once it has
 *     more (first_child = MANY). The list is the common case and the reason: a stack seen for
 *     the first time mostly extends nodes made moments ago, which are in the cache, where a
 *     hash probe per frame missed it (a program with millions of distinct deep stacks spent
 *     80% of its interning in those misses). Both are only touched under the depot lock.
 *  3. The fast path is a direct-mapped cache from the 64-bit hash of the whole stack to its
 *     id, read without locks seqlock-style: a writer clears the hash, stores the id, then
 *     publishes the hash; a reader accepts the id only if the hash is the same before and
 *     after reading it. Two distinct stacks of one process sharing a 64-bit hash would be
 *     merged; with n stacks that happens with probability about n^2 / 2^65.
 *  4. Counter slots are created under the lock for ids handed out by hw_depot_put and are
 *     published with release order through the node's slot index.
 * Context: HOOKSAFE. */
#define _GNU_SOURCE
#include "depot.h"

#include <string.h>
#include "forkgate.h"
#include "spin.h"
#include "sys.h"

#define MAX_NODES (1u << 26)
#define MAX_COUNTERS (1u << 24)
#define CACHE_BITS 18
#define CACHE_SLOTS (1u << CACHE_BITS)
#define FANOUT_LIST 8          /* children kept in a node's list; more go to the edge index */
#define MANY UINT32_MAX        /* first_child of a node whose children are in the edge index */

struct node {
    uintptr_t pc;
    uint32_t parent;
    _Atomic uint32_t counters;  /* 1-based slot in counters[], 0 = none */
    uint32_t first_child;       /* newest child, 0 = none, MANY = see the edge index; lock held */
    uint32_t next_sibling;      /* the parent's next older child, 0 = none; lock held */
};

struct edge {
    uintptr_t pc;
    uint32_t parent;
    uint32_t node;  /* 0 = empty */
};

struct cache_slot {
    _Atomic uint64_t hash;
    _Atomic uint32_t id;
};

static struct node *nodes;                 /* index = node id */
static _Atomic uint32_t nr_nodes;
static struct hw_stack_counters *counters; /* index = slot - 1 */
static _Atomic uint32_t nr_counters;
static struct edge *edges;
static uint32_t edge_mask, nr_edges;
static struct cache_slot *cache;
static _Atomic int lock;

bool hw_depot_init(void)
{
    nodes = hw_map((size_t)MAX_NODES * sizeof *nodes);
    counters = hw_map((size_t)MAX_COUNTERS * sizeof *counters);
    cache = hw_map(CACHE_SLOTS * sizeof *cache);
    edge_mask = (1u << 12) - 1;
    edges = hw_map((edge_mask + 1) * sizeof *edges);
    return nodes && counters && cache && edges;
}

static inline uint32_t edge_hash(uint32_t parent, uintptr_t pc)
{
    uint64_t h = ((uint64_t)pc ^ ((uint64_t)parent << 40) ^ parent) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32);
}

/* Double the edge index; under the lock. */
static HW_COLD bool grow_edges(void)
{
    uint32_t slots = (edge_mask + 1) * 2, mask = slots - 1;
    struct edge *n = hw_map((size_t)slots * sizeof *n);
    if (!n)
        return false;
    for (uint32_t i = 0; i <= edge_mask; i++) {
        if (!edges[i].node)
            continue;
        uint32_t k = edge_hash(edges[i].parent, edges[i].pc) & mask;
        while (n[k].node)
            k = (k + 1) & mask;
        n[k] = edges[i];
    }
    hw_unmap(edges, (size_t)(edge_mask + 1) * sizeof *edges);
    edges = n;
    edge_mask = mask;
    return true;
}

/* Room in the edge index for n more edges; false when it could not grow. Under the lock. */
static bool edge_room(uint32_t n)
{
    while ((uint64_t)(nr_edges + n) * 4 > (uint64_t)(edge_mask + 1) * 3)
        if (!grow_edges())
            return false;
    return true;
}

/* Add node id (parent, pc) to the edge index, which has room for it. Under the lock. */
static void index_edge(uint32_t parent, uintptr_t pc, uint32_t id)
{
    uint32_t k = edge_hash(parent, pc) & edge_mask;
    while (edges[k].node)
        k = (k + 1) & edge_mask;
    edges[k].pc = pc;
    edges[k].parent = parent;
    edges[k].node = id;
    nr_edges++;
}

/* A node's listed children, and the one about to be made, move to the edge index; false when it
 * could not grow (the list stays). Under the lock. */
static HW_COLD bool index_children(uint32_t parent, uint32_t listed)
{
    if (!edge_room(listed + 1))
        return false;
    for (uint32_t n = nodes[parent].first_child; n; n = nodes[n].next_sibling)
        index_edge(parent, nodes[n].pc, n);
    nodes[parent].first_child = MANY;
    return true;
}

/* The child of parent for pc, created if needed; 0 when full. Under the lock. */
static uint32_t child(uint32_t parent, uintptr_t pc)
{
    unsigned listed = 0;
    if (nodes[parent].first_child == MANY) {
        for (uint32_t k = edge_hash(parent, pc) & edge_mask; edges[k].node; k = (k + 1) & edge_mask)
            if (edges[k].parent == parent && edges[k].pc == pc)
                return edges[k].node;
    } else {
        for (uint32_t n = nodes[parent].first_child; n; n = nodes[n].next_sibling, listed++)
            if (nodes[n].pc == pc)
                return n;
    }
    uint32_t id = atomic_load_explicit(&nr_nodes, memory_order_relaxed) + 1;
    if (id >= MAX_NODES)
        return 0;
    if (listed >= FANOUT_LIST && !index_children(parent, listed))
        return 0;
    if (nodes[parent].first_child == MANY) {
        if (!edge_room(1))
            return 0;
        index_edge(parent, pc, id);
        nodes[id].next_sibling = 0;
    } else {
        nodes[id].next_sibling = nodes[parent].first_child;
        nodes[parent].first_child = id;
    }
    nodes[id].pc = pc;
    nodes[id].parent = parent;
    nodes[id].first_child = 0;
    atomic_store_explicit(&nr_nodes, id, memory_order_release);
    return id;
}

/* The path of the last stack interned (outermost first), under the lock: consecutive new
 * stacks usually share their outer frames, so only the differing inner frames need a child
 * lookup. */
static uintptr_t last_pcs[HW_MAX_DEPTH];
static uint32_t last_ids[HW_MAX_DEPTH], last_depth;

/* A stack's hash as the cache keeps it: 0 marks an empty slot. */
static inline uint64_t cache_hash(uint64_t h) { return h ? h : 1; }
static inline struct cache_slot *slot_of(uint64_t h) { return &cache[h & (CACHE_SLOTS - 1)]; }

/* outer[0..depth-1]: the stack's frames, outermost first. */
static HW_NOINLINE uint32_t put_slow(uint64_t h, const uintptr_t *outer, uint32_t depth)
{
    if (!hw_spin_lock_or_fork(&lock))
        return 0;   /* a fork holds the depot and may wait for a lock this thread holds */
    uint32_t id = 0, k = 0;
    while (k < depth && k < last_depth && last_pcs[k] == outer[k])
        id = last_ids[k++];
    for (; k < depth; k++) {
        id = child(id, outer[k]);
        if (!id) {
            last_depth = 0;
            goto out_unlock;
        }
        last_pcs[k] = outer[k];
        last_ids[k] = id;
    }
    last_depth = depth;
    if (!atomic_load_explicit(&nodes[id].counters, memory_order_relaxed)) {
        uint32_t slot = atomic_load_explicit(&nr_counters, memory_order_relaxed);
        if (slot >= MAX_COUNTERS) {
            id = 0;
            goto out_unlock;
        }
        counters[slot].stack = id;
        atomic_store_explicit(&nr_counters, slot + 1, memory_order_release);
        atomic_store_explicit(&nodes[id].counters, slot + 1, memory_order_release);
    }
    struct cache_slot *c = slot_of(h);
    atomic_store_explicit(&c->hash, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&c->id, id, memory_order_relaxed);
    atomic_store_explicit(&c->hash, h, memory_order_release);
out_unlock:
    hw_spin_unlock(&lock);
    return id;
}

void hw_depot_prefetch(uint64_t h)
{
    __builtin_prefetch(slot_of(cache_hash(h)));
}

uint32_t hw_depot_put_outer(uint64_t h, const uintptr_t *outer, uint32_t depth)
{
    if (!depth || depth > HW_MAX_DEPTH)
        return 0;
    h = cache_hash(h);
    struct cache_slot *c = slot_of(h);
    if (atomic_load_explicit(&c->hash, memory_order_acquire) == h) {
        uint32_t id = atomic_load_explicit(&c->id, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&c->hash, memory_order_relaxed) == h)
            return id;
    }
    return put_slow(h, outer, depth);
}

uint32_t hw_depot_put(const uintptr_t *pcs, uint32_t depth)
{
    uintptr_t outer[HW_MAX_DEPTH];
    if (depth > HW_MAX_DEPTH)
        depth = HW_MAX_DEPTH;   /* the innermost frames */
    uint64_t h = HW_DEPOT_HASH_SEED;
    for (uint32_t k = 0; k < depth; k++)
        h = hw_depot_hash_step(h, outer[k] = pcs[depth - 1 - k]);
    return hw_depot_put_outer(h, outer, depth);
}

struct hw_stack_counters *hw_depot_counters(uint32_t id)
{
    if (!id || id > atomic_load_explicit(&nr_nodes, memory_order_acquire))
        return NULL;
    uint32_t slot = atomic_load_explicit(&nodes[id].counters, memory_order_acquire);
    return slot ? &counters[slot - 1] : NULL;
}

uint32_t hw_depot_counters_index(const struct hw_stack_counters *c)
{
    return (uint32_t)(c - counters);
}

uint32_t hw_depot_counters_count(void)
{
    return atomic_load_explicit(&nr_counters, memory_order_acquire);
}

struct hw_stack_counters *hw_depot_counters_at(uint32_t i)
{
    return i < hw_depot_counters_count() ? &counters[i] : NULL;
}

uint32_t hw_depot_count(void)
{
    return atomic_load_explicit(&nr_nodes, memory_order_acquire);
}

void hw_depot_node(uint32_t id, uintptr_t *pc, uint32_t *parent)
{
    *pc = nodes[id].pc;
    *parent = nodes[id].parent;
}

uint64_t hw_depot_footprint(void)
{
    return (uint64_t)hw_depot_count() * sizeof(struct node) + (uint64_t)hw_depot_counters_count() * sizeof(struct hw_stack_counters) +
           (uint64_t)(edge_mask + 1) * sizeof(struct edge);
}

void hw_depot_lock(void) { hw_spin_lock(&lock); }
void hw_depot_unlock(void) { hw_spin_unlock(&lock); }
