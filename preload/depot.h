/* depot.h: the stack depot. Interns call stacks into stable 32-bit ids (1, 2, 3 ...) and
 * keeps Go-style cumulative counters per stack: sampled allocations and frees, as raw sample
 * counts and as unbiased estimates (objects in 1/65536 units, bytes rounded).
 * Lookups are lock-free; a new stack takes one mutex. Memory comes from mappings. */
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
};

struct hw_stack {
    uint64_t hash;
    uint32_t depth;
    uint32_t id;
    struct hw_stack_counters c;
    uintptr_t pcs[];
};

bool hw_depot_init(void) HW_HOOKSAFE;
/* Intern pcs[0..depth-1]; returns the id (>= 1), or 0 if the depot is full. */
uint32_t hw_depot_put(const uintptr_t *pcs, uint32_t depth) HW_HOOKSAFE;
/* The stack with that id, or NULL. */
struct hw_stack *hw_depot_get(uint32_t id) HW_SIGSAFE;
/* Highest id handed out so far. */
uint32_t hw_depot_count(void) HW_SIGSAFE;
void hw_depot_lock(void) HW_HOOKSAFE;
void hw_depot_unlock(void) HW_HOOKSAFE;

#endif
