/* This file implements the thread registry: each thread that allocates gets a small index
 * (stored in 23 bits of every live entry) mapped to its kernel tid, and blocks of allocation
 * sequence numbers so that numbering does not bounce one cache line between cores (threads.h).
 * It also defines hw_self, the per-thread state of hw.h.
 * Context: HOOKSAFE. */
#define _GNU_SOURCE
#include "threads.h"

#include "sys.h"

#define MAX_THREADS (1u << 23)  /* the live entry keeps 23 bits of thread index */
#define SEQ_BLOCK 1024

HW_TLS struct hw_thread hw_self;

static _Atomic int *tids;
static _Atomic uint32_t nr_threads;
static _Atomic uint32_t seq_counter = 1;

void hw_threads_init(void)
{
    tids = hw_map(MAX_THREADS * sizeof *tids);
}

uint32_t hw_thread_register_slow(void)
{
    uint32_t i = atomic_fetch_add(&nr_threads, 1) + 1;
    if (i >= MAX_THREADS)
        i = MAX_THREADS - 1;  /* shared overflow index: tid becomes ambiguous, nothing breaks */
    if (tids)
        atomic_store_explicit(&tids[i], hw_gettid(), memory_order_relaxed);
    hw_self.index = i;
    return i;
}

int hw_thread_tid(uint32_t index)
{
    return tids && index < MAX_THREADS ? atomic_load_explicit(&tids[index], memory_order_relaxed) : 0;
}

uint32_t hw_seq_next_slow(void)
{
    uint32_t start = atomic_fetch_add_explicit(&seq_counter, SEQ_BLOCK, memory_order_relaxed);
    hw_self.seq_next = start + 1;
    hw_self.seq_end = start + SEQ_BLOCK;
    return start;
}
