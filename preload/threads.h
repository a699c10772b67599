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
/* Next allocation sequence number; per-thread blocks keep the global counter uncontended. */
uint32_t hw_seq_next_slow(void) HW_HOOKSAFE;
static inline uint32_t hw_seq_next(void)
{
    return HW_LIKELY(hw_self.seq_next != hw_self.seq_end) ? hw_self.seq_next++ : hw_seq_next_slow();
}

#endif
