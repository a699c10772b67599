/* depot.h: the stack depot. Call stacks are interned into a prefix tree of frames (a node is
 * one return address plus its caller's node), so deep recursive programs with millions of
 * distinct stacks share their common outer frames, as heaptrack's trace tree does. A stack
 * id is the id of its innermost node: ids are stable for the process's life and the database
 * stores the same tree (schema.sql: stack_chunk).
 *
 * Each stack that allocations were charged to has Go-style cumulative counters: sampled
 * allocations and frees, as raw sample counts and as unbiased estimates (objects in
 * 1/HW_WEIGHT_ONE units, bytes rounded). Memory comes from mappings, never malloc. */
#ifndef HW_DEPOT_H
#define HW_DEPOT_H

#include <stdbool.h>
#include <stdint.h>
#include "hw.h"

#define HW_WEIGHT_ONE 65536u  /* fixed-point unit of the object estimates */

struct hw_stack_counters {
    _Atomic uint64_t alloc_samples, free_samples;
    _Atomic uint64_t alloc_weight, free_weight;  /* objects * HW_WEIGHT_ONE */
    _Atomic uint64_t alloc_bytes, free_bytes;    /* unbiased bytes */
    uint32_t stack;                              /* the stack id these belong to */
};

bool hw_depot_init(void) HW_HOOKSAFE;
/* Intern pcs[0..depth-1] (innermost first); returns the stack id (>= 1), or 0 when the depot
 * is full or the stack is empty. Lock-free when the stack was seen recently; otherwise takes the depot lock. */
uint32_t hw_depot_put(const uintptr_t *pcs, uint32_t depth) HW_HOOKSAFE;
/* The same for outer[0..depth-1], the frames outermost first, given the stack's hash:
 * HW_DEPOT_HASH_SEED folded through hw_depot_hash_step with each pc from the outermost frame
 * in, so that a caller that knows the hash of a stack's outer frames (stackmemo.c) hashes
 * only the frames below them. */
uint32_t hw_depot_put_outer(uint64_t hash, const uintptr_t *outer, uint32_t depth) HW_HOOKSAFE;
/* Start loading the cache slot of a stack whose hash is known before its frames are: the put
 * that follows then finds it in the cache. */
void hw_depot_prefetch(uint64_t hash) HW_HOOKSAFE;
#define HW_DEPOT_HASH_SEED 0x9e3779b97f4a7c15ull
static inline uint64_t hw_depot_hash_step(uint64_t h, uintptr_t pc)
{
    h ^= pc;
    h *= 0xff51afd7ed558ccdull;
    return h ^ h >> 33;
}
/* The counters of a stack id returned by hw_depot_put, or NULL. */
struct hw_stack_counters *hw_depot_counters(uint32_t id) HW_SIGSAFE;
/* The place of a counter set among all of them (as hw_depot_counters_at numbers them). */
uint32_t hw_depot_counters_index(const struct hw_stack_counters *c) HW_SIGSAFE;
/* Number of counter sets, and the i-th (0-based) in creation order. */
uint32_t hw_depot_counters_count(void) HW_SIGSAFE;
struct hw_stack_counters *hw_depot_counters_at(uint32_t i) HW_SIGSAFE;
/* Number of tree nodes; node ids are 1..count. */
uint32_t hw_depot_count(void) HW_SIGSAFE;
/* The frame of node id: its pc and its caller's node (0 at the outermost frame). */
void hw_depot_node(uint32_t id, uintptr_t *pc, uint32_t *parent) HW_SIGSAFE;
/* Bytes of memory the depot has touched (for the bench's per-object accounting). */
uint64_t hw_depot_footprint(void) HW_SIGSAFE;
void hw_depot_lock(void) HW_HOOKSAFE;
void hw_depot_unlock(void) HW_HOOKSAFE;

#endif
