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
 * a stopped world; approximate while threads run. A thread adds to its own line with one
 * unlocked add instruction per counter: nobody else writes it, and a signal handler's update
 * on the same thread runs between two instructions, never inside one, so none is lost (the
 * readers load with relaxed atomics). Threads beyond the first HW_LIVE_SLOTS - 1 share the
 * last line, with atomic additions. A fork child inherits the counts of a thread that
 * vanished between its block's shadow byte and its count: off by those blocks, for the
 * child's snapshots without a heap walk only (a walked snapshot counts the blocks it walks). */
#define HW_LIVE_SLOTS 65536u
struct hw_live_count {
    int64_t objects, bytes;
    int window;   /* the thread's fork window (forkgate.h): its own line, as the counts */
} __attribute__((aligned(64)));
/* The line of thread index i (the shared last one beyond), NULL if unmapped; and how many
 * indices were handed out. Context: SIGSAFE. */
struct hw_live_count *hw_live_line(uint32_t i) HW_SIGSAFE;
uint32_t hw_threads_registered(void) HW_SIGSAFE;
/* Registers the thread's line, or adds to the shared one (hw_self.live stays NULL there). */
void hw_live_add_slow(int64_t objects, int64_t bytes) HW_HOOKSAFE;
static inline __attribute__((always_inline)) void hw_live_add(int64_t objects, int64_t bytes)
{
    struct hw_live_count *c = hw_self.live;
    if (HW_LIKELY(c != NULL)) {
        __asm__("addq %1, %0" : "+m"(c->objects) : "er"(objects));
        __asm__("addq %1, %0" : "+m"(c->bytes) : "er"(bytes));
    } else {
        hw_live_add_slow(objects, bytes);
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
