/* This file implements the thread registry: each thread that allocates gets a small index
 * (stored in 22 bits of every live entry) mapped to its kernel tid, and blocks of allocation
 * sequence numbers so that numbering does not bounce one cache line between cores (threads.h).
 * It also defines hw_self, the per-thread state of hw.h.
 * Context: HOOKSAFE. */
#define _GNU_SOURCE
#include "threads.h"

#include "sys.h"

#define MAX_THREADS (1u << 22)  /* the live entry keeps 22 bits of thread index */
#define SEQ_BLOCK 1024

HW_TLS struct hw_thread hw_self;

static _Atomic int *tids;
static _Atomic uint32_t nr_threads;
static _Atomic uint32_t seq_counter = 1;
static struct hw_live_count *live_counts;   /* HW_LIVE_SLOTS, by thread index; the last shared */

void hw_threads_init(void)
{
    tids = hw_map(MAX_THREADS * sizeof *tids);
    live_counts = hw_map(HW_LIVE_SLOTS * sizeof *live_counts);
}

void hw_live_add_slow(int64_t objects, int64_t bytes)
{
    if (!live_counts)
        return;
    uint32_t i = hw_thread_index();
    struct hw_live_count *line = hw_live_line(i);
    if (i < HW_LIVE_SLOTS - 1) {
        hw_self.live = line;
        hw_live_add(objects, bytes);
        return;
    }
    struct hw_live_count *shared = line;
    __atomic_fetch_add(&shared->objects, objects, __ATOMIC_RELAXED);
    __atomic_fetch_add(&shared->bytes, bytes, __ATOMIC_RELAXED);
}

void hw_live_totals(uint64_t *objects, uint64_t *bytes)
{
    int64_t o = 0, b = 0;
    uint32_t n = atomic_load_explicit(&nr_threads, memory_order_relaxed) + 1;   /* indices 1..nr_threads */
    if (live_counts) {
        for (uint32_t i = 0; i < HW_LIVE_SLOTS; i++) {
            if (i >= n && i != HW_LIVE_SLOTS - 1)
                i = HW_LIVE_SLOTS - 1;   /* the rest were never used, but the shared one */
            const struct hw_live_count *c = &live_counts[i];
            o += __atomic_load_n(&c->objects, __ATOMIC_RELAXED);
            b += __atomic_load_n(&c->bytes, __ATOMIC_RELAXED);
        }
    }
    *objects = o > 0 ? (uint64_t)o : 0;
    *bytes = b > 0 ? (uint64_t)b : 0;
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

struct hw_live_count *hw_live_line(uint32_t i)
{
    if (!live_counts)
        return NULL;
    return &live_counts[i < HW_LIVE_SLOTS - 1 ? i : HW_LIVE_SLOTS - 1];
}

uint32_t hw_threads_registered(void)
{
    return atomic_load_explicit(&nr_threads, memory_order_relaxed);
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
