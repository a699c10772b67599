/* counts.h: updates of the per-stack counters (depot.h) by the threads that allocate and free.
 *
 * A counter that every thread adds to with a locked instruction is a cache line that moves
 * from core to core on every allocation: two threads allocating from one site spent half of
 * full mode's time there. So, once the program has threads of its own, each thread adds to a
 * small cache of pending deltas of its own, keyed by counter set, and adds a set's deltas to
 * the shared counters only when another set takes its slot, or when the thread ends. Readers
 * add the pending deltas of every thread (hw_counts_pending): exact in a stopped world, whose
 * threads never stop inside an update (the updates run in record sections, stw.h);
 * approximate while threads run, as the shared counters are. A fork child keeps its parent's
 * threads' caches, and so their deltas. While the program has one thread, it adds to the
 * shared counters with plain add instructions instead.
 * Context: HOOKSAFE; hw_counts_pending SIGSAFE. */
#ifndef HW_COUNTS_H
#define HW_COUNTS_H

#include <stdbool.h>
#include <stdint.h>
#include "depot.h"
#include "hw.h"
#include "sys.h"

/* Give the calling thread its cache, once the program has threads: a thread of the program
 * as it starts, or one about to start another. Never in a record section: registering the
 * cache's flush at the thread's end takes the loader lock, which a thread in dlopen holds
 * while it allocates. A thread without a cache (started behind pthread_create's back) adds
 * to the shared counters directly. */
void hw_counts_thread_start(void);
/* Count one sampled block (weight, weighted bytes) into c's allocation or free triple. In a
 * record section. */
void hw_counts_add(struct hw_stack_counters *c, bool is_free, uint64_t weight, uint64_t bytes) HW_HOOKSAFE;

/* Pending deltas of one counter set (index: its place in the depot's counters). */
struct hw_pending_counts {
    uint64_t index;   /* first: the sort key */
    uint64_t alloc_samples, alloc_weight, alloc_bytes, free_samples, free_weight, free_bytes;
};
/* Every thread's pending deltas, one entry per counter set, sorted by index, into out (elem =
 * sizeof(struct hw_pending_counts)). */
void hw_counts_pending(struct hw_vec *out) HW_SIGSAFE;

#endif
