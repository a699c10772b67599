/* threads.h: the thread registry of threads.c: a small index per allocating thread (kept in
 * every live entry) mapped to its kernel tid, and the allocation sequence numbers, handed out
 * to each thread in blocks. Not to be confused with threadhooks.h (thread starts, stacks and
 * joins, for the heap walk).
 * Context: HOOKSAFE (hw_thread_tid: SIGSAFE). */
#ifndef HW_THREADS_H
#define HW_THREADS_H

#include <stdint.h>
#include "hw.h"

/* Map the tid table; once, at initialisation, before the first registration. */
void hw_threads_init(void) HW_HOOKSAFE;
/* Register the calling thread (index, tid) on its first recorded allocation. */
uint32_t hw_thread_register_slow(void) HW_HOOKSAFE;
static inline uint32_t hw_thread_index(void)
{
    return HW_LIKELY(hw_self.index) ? hw_self.index : hw_thread_register_slow();
}
/* Kernel tid of thread index i (0 if unknown). */
int hw_thread_tid(uint32_t index) HW_SIGSAFE;
/* Live blocks and their requested bytes, counted per thread on a cache line of its own: an
 * allocation adds to its thread's line, a free subtracts from the freeing thread's (which may
 * go negative), and the sum over every thread that ever allocated is the process's. Exact in
 * a stopped world; approximate while threads run. Threads beyond the first HW_LIVE_SLOTS
 * share one line, with atomic additions. A fork child inherits the counts of a thread that
 * vanished between its block's record and its count: off by those blocks, for the child's
 * snapshots without a heap walk only (a walked snapshot counts the blocks it walks). */
#define HW_LIVE_SLOTS 65536u
struct hw_live_count {
    _Atomic int64_t objects, bytes;
    bool shared;
    /* Updates nested in another (a signal handler's malloc on this thread, inside the outer
     * update's load and store): atomically, and apart, so that the outer store keeps them. */
    _Atomic int64_t nested_objects, nested_bytes;
} __attribute__((aligned(64)));
struct hw_live_count *hw_live_count_slow(void) HW_HOOKSAFE;
static inline void hw_live_add(int64_t objects, int64_t bytes)
{
    struct hw_live_count *c = HW_LIKELY(hw_self.live != NULL) ? hw_self.live : hw_live_count_slow();
    if (HW_UNLIKELY(!c))
        return;
    if (HW_UNLIKELY(hw_self.in_record > 1)) {
        atomic_fetch_add_explicit(&c->nested_objects, objects, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->nested_bytes, bytes, memory_order_relaxed);
    } else if (HW_LIKELY(!c->shared)) {   /* the owner alone writes: no read-modify-write needed */
        atomic_store_explicit(&c->objects, atomic_load_explicit(&c->objects, memory_order_relaxed) + objects,
                              memory_order_relaxed);
        atomic_store_explicit(&c->bytes, atomic_load_explicit(&c->bytes, memory_order_relaxed) + bytes,
                              memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&c->objects, objects, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->bytes, bytes, memory_order_relaxed);
    }
}
/* The sum of every thread's counters. Context: SIGSAFE. */
void hw_live_totals(uint64_t *objects, uint64_t *bytes) HW_SIGSAFE;

/* Next allocation sequence number; per-thread blocks keep the global counter uncontended. */
uint32_t hw_seq_next_slow(void) HW_HOOKSAFE;
static inline uint32_t hw_seq_next(void)
{
    return HW_LIKELY(hw_self.seq_next != hw_self.seq_end) ? hw_self.seq_next++ : hw_seq_next_slow();
}

#endif
