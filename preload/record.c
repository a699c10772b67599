/* This file implements recording of allocations and frees.
 *
 * Sampling, as Go (runtime/malloc.go, nextSample), tcmalloc and jemalloc do it: each thread
 * draws an exponential gap of mean R bytes (HEAPWATCH_SAMPLE_RATE) and counts allocated bytes
 * down through it; the allocation that crosses zero is sampled and a fresh gap is drawn. This is a Poisson process over allocated
 * bytes, so an allocation of s bytes is sampled with probability 1 - exp(-s/R) whatever its
 * neighbours, and weighting each sample by the inverse of that probability, per sample (not
 * per bucket average, which is what Go issue 26618 got wrong for mixed sizes), gives unbiased
 * estimates of objects and bytes. A free is weighed with the same formula from the size kept
 * in the live table, so inuse = alloc - free stays unbiased.
 *
 * Every block, sampled or not, goes into the live table: snapshots walk the whole heap.
 * Context: HOOKSAFE. */
#define _GNU_SOURCE
#include "record.h"

#include <math.h>
#include <time.h>
#include "depot.h"
#include "options.h"
#include "sys.h"
#include "threads.h"
#include "unwind.h"

static _Atomic uint64_t seed_counter;

static uint64_t next_random(void)
{
    uint64_t x = hw_self.rng;
    if (HW_UNLIKELY(!x)) {
        uint64_t base = hw_opt.seed ? hw_opt.seed : hw_now_ns(CLOCK_MONOTONIC) ^ ((uint64_t)hw_gettid() << 32);
        x = base + 0x9e3779b97f4a7c15ull * (atomic_fetch_add(&seed_counter, 1) + 1);
        x = x ? x : 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    hw_self.rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* An exponential gap with mean hw_opt.sample_rate bytes. */
static int64_t next_gap(void)
{
    double u = ((double)(next_random() >> 11) + 0.5) / 9007199254740992.0;  /* (0,1) */
    double g = -log(u) * (double)hw_opt.sample_rate;
    return g > 4e18 ? (int64_t)4e18 : (int64_t)g + 1;
}

/* The sampling weight of an allocation of `size` bytes: 1/(1-exp(-size/R)), in
 * HW_WEIGHT_ONE units; exactly HW_WEIGHT_ONE when every allocation is recorded. */
static uint64_t sample_weight(uint64_t size)
{
    if (hw_opt.sample_rate <= 1)
        return HW_WEIGHT_ONE;
    double p = -expm1(-(double)(size ? size : 1) / (double)hw_opt.sample_rate);
    return (uint64_t)llround(HW_WEIGHT_ONE / p);
}

/* Unbiased bytes for one sampled block of `size` bytes whose weight is `weight`: the same
 * weight as its object count, so both estimates come from one expm1 per event. */
static uint64_t weighted_bytes(uint64_t size, uint64_t weight)
{
    if (hw_opt.sample_rate <= 1)
        return size;
    return (uint64_t)llround((double)weight * (double)size / HW_WEIGHT_ONE);
}

/* Decide whether this allocation is sampled; keeps the per-thread byte countdown. */
static inline bool should_sample(size_t size)
{
    if (hw_opt.sample_rate == 1)
        return true;
    if (HW_UNLIKELY(hw_opt.sample_rate == 0))
        return false;
    if (HW_UNLIKELY(hw_self.until_sample == 0))
        hw_self.until_sample = next_gap();  /* first allocation of this thread */
    hw_self.until_sample -= (int64_t)(size ? size : 1);
    if (HW_LIKELY(hw_self.until_sample > 0))
        return false;
    hw_self.until_sample = next_gap();
    return true;
}

static HW_NOINLINE uint32_t capture(void)
{
    uintptr_t pcs[HW_MAX_DEPTH];
    hw_guard_enter();  /* libunwind may allocate on first use in a thread */
    uint32_t depth = hw_unwind_capture(pcs, (uint32_t)hw_opt.stack_depth);
    hw_guard_leave();
    uint32_t id = hw_depot_put(pcs, depth);
    return hw_depot_counters(id) ? id : 0;
}

/* Add one sampled block of e's size to a counter triple, weighted (one expm1 per event). */
static void count(_Atomic uint64_t *samples, _Atomic uint64_t *weights, _Atomic uint64_t *bytes,
                  const struct hw_live_entry *e)
{
    uint64_t weight = sample_weight(e->size);
    atomic_fetch_add_explicit(samples, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(weights, weight, memory_order_relaxed);
    atomic_fetch_add_explicit(bytes, weighted_bytes(e->size, weight), memory_order_relaxed);
}

/* Count a sampled block's allocation; the live table calls it under the shard's lock. */
static void count_alloc(const struct hw_live_entry *e)
{
    struct hw_stack_counters *c = hw_depot_counters(e->stack);
    if (c)
        count(&c->alloc_samples, &c->alloc_weight, &c->alloc_bytes, e);
}

/* Count a sampled block's free; the live table calls it under the shard's lock. */
static void count_free(const struct hw_live_entry *e)
{
    struct hw_stack_counters *c = hw_depot_counters(e->stack);
    if (c)
        count(&c->free_samples, &c->free_weight, &c->free_bytes, e);
}

void hw_record_init(void)
{
    hw_livetable_set_counters(count_alloc, count_free);
}

void hw_record_alloc(void *p, size_t size)
{
    struct hw_live_entry e;
    hw_record_enter();
    e.addr = (uintptr_t)p;
    e.size = size;
    e.thread = hw_thread_index();
    e.ignored = 0;
    e.seq = hw_seq_next();
    e.stack = should_sample(size) ? capture() : 0;
    hw_livetable_insert(&e);
    hw_record_leave();
}

bool hw_record_free(void *p, struct hw_live_entry *out)
{
    struct hw_live_entry e;
    hw_record_enter();
    bool tracked = hw_livetable_remove((uintptr_t)p, out ? out : &e);  /* counts the free (hw_record_init) */
    hw_record_leave();
    return tracked;
}
