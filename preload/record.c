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
 * Every block, sampled or not, is tracked: snapshots walk the whole heap. An unsampled block
 * costs one byte of the shadow map (shadow.h), which says it is live and how much smaller
 * than its usable size it was asked for, so that its exact requested size comes back from
 * the allocator's usable size at its free and in the heap walk. Sampled blocks, and the few
 * whose slack does not fit the byte or that have no byte, keep an entry in the live table
 * (address, requested size, stack, sequence number, thread). Live objects and bytes are
 * counted per thread (threads.h).
 * Context: HOOKSAFE. */
#define _GNU_SOURCE
#include "record.h"

#include <math.h>
#include <time.h>
#include "depot.h"
#include "stackmemo.h"
#include "events.h"
#include "real.h"
#include "shadow.h"
#include "options.h"
#include "record_arena.h"
#include "sys.h"
#include "counts.h"
#include "threads.h"
#include "trigger.h"
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
bool hw_record_should_sample(size_t size)
{
    if (hw_opt.sample_rate == 1)
        return true;
    if (HW_UNLIKELY(hw_opt.sample_rate == 0)) {
        hw_self.until_sample = INT64_MAX / 2;   /* keeps hw_record_alloc on its fast path */
        return false;
    }
    if (HW_UNLIKELY(hw_self.until_sample == 0))
        hw_self.until_sample = next_gap();  /* first allocation of this thread */
    hw_self.until_sample -= (int64_t)(size ? size : 1);
    if (HW_LIKELY(hw_self.until_sample > 0))
        return false;
    hw_self.until_sample = next_gap();
    return true;
}

/* Each thread's previous stack (stackmemo.h). */
static HW_TLS struct hw_stack_memo stack_memo;

HW_NOINLINE uint32_t hw_record_capture(void)
{
    uintptr_t outer[HW_MAX_DEPTH];
    uint64_t hash;
    uint32_t depth = hw_stack_memo_capture(&stack_memo, outer, (uint32_t)hw_opt.stack_depth, &hash);
    uint32_t id = hw_depot_put_outer(hash, outer, depth);
    return hw_depot_counters(id) ? id : 0;
}

/* Add one sampled block of e's size to a counter triple, weighted (one expm1 per event). */
static void count(struct hw_stack_counters *c, bool is_free, const struct hw_live_entry *e)
{
    uint64_t weight = sample_weight(e->size);
    hw_counts_add(c, is_free, weight, weighted_bytes(e->size, weight));
}

/* Count a sampled block's allocation: the live table calls it under the shard's lock, arena
 * mode for a record in its block (cookie.h) inside the block's fork window. */
void hw_record_count_alloc(const struct hw_live_entry *e)
{
    struct hw_stack_counters *c = hw_depot_counters(e->stack);
    if (c)
        count(c, false, e);
    if (hw_events_on)
        hw_event_alloc(e);
}

/* Count a sampled block's free: the live table calls it under the shard's lock, arena mode
 * for a record in its block inside the block's fork window. */
void hw_record_count_free(const struct hw_live_entry *e)
{
    struct hw_stack_counters *c = hw_depot_counters(e->stack);
    if (c)
        count(c, true, e);
    if (hw_events_on)
        hw_event_free(e);
}

void hw_record_init(void)
{
    hw_livetable_set_counters(hw_record_count_alloc, hw_record_count_free);
}

/* Whether some block is in the live table without a shadow byte (its address is not
 * shadowed, or its shadow page could not be mapped): only then must a free whose byte is 0
 * look in the table. Never set with glibc's 16-byte aligned blocks. */
static _Atomic bool table_only_seen;

/* Set once, tested before: a store on every full-mode allocation kept its cache line, which
 * holds globals that every malloc and free reads, moving between the program's threads
 * (half of a two-thread malloc/free loop's time). */
static inline void note_table_only(void)
{
    if (!atomic_load_explicit(&table_only_seen, memory_order_relaxed))
        atomic_store_explicit(&table_only_seen, true, memory_order_relaxed);
}

/* The live table's path: sampled blocks, blocks whose slack does not fit their shadow byte,
 * blocks without one. */
static HW_NOINLINE void track_in_table(uintptr_t addr, size_t size, bool sampled, uint8_t *byte)
{
    uint32_t stack = sampled ? hw_record_capture() : 0;
    struct hw_live_entry e = hw_live_entry_make(addr, size, hw_thread_index(), false, stack, hw_seq_next());
    if (!byte)
        note_table_only();
    if (!hw_livetable_insert(&e)) {   /* counts a sampled allocation (hw_record_init) */
        /* The table could not grow: a byte alone still keeps the block in the walk. */
        size_t slack = byte ? hw_real_usable_size((void *)addr) - size : SIZE_MAX;
        if (slack <= HW_SHADOW_SLACK) {
            *byte = (uint8_t)(HW_SHADOW_LIVE | slack);
            hw_live_add(1, (int64_t)size);
        }
        return;
    }
    if (byte)
        *byte = HW_SHADOW_LIVE | HW_SHADOW_TABLE;
    hw_live_add(1, (int64_t)size);
}

uintptr_t hw_loader_lo, hw_loader_len;

static void record_alloc_slow(void *p, size_t size);

/* The shim initialised itself inside the very call that allocated p (its first recording()),
 * and chose arena mode: p is glibc's plain block, which no walk of the shadow map will read.
 * The hooks send such a call to arena mode when they still can (interpose.c: malloc and
 * calloc always, so hw_record_alloc_loader never sees one); posix_memalign and operator new
 * cannot, and their block stays plain. */
static inline bool arena_mode_came_late(void)
{
    return HW_UNLIKELY(hw_arena_mode);
}

void hw_record_alloc_loader(void *p, size_t size)
{
    if (hw_opt.sample_rate <= 1) {   /* every block has its stack already, or none is wanted */
        int64_t left = hw_countdown_after(size);
        if (left > 0)
            hw_record_alloc_unsampled(p, size, left);
        else
            record_alloc_slow(p, size);   /* not hw_record_alloc_slow: no helper starts here */
        return;
    }
    uintptr_t addr = (uintptr_t)p;
    hw_record_enter();
    hw_event_note_allocation();
    uint8_t *byte = hw_shadow_covers(addr) ? hw_shadow_make(addr) : NULL;
    struct hw_live_entry e = {
        .addr = addr, .size = size, .thread = hw_thread_index(), .seq = hw_seq_next(),
        .stack = hw_record_capture(), .uncounted = 1,
    };
    if (!byte)
        note_table_only();
    if (hw_livetable_insert(&e)) {
        if (byte)
            *byte = HW_SHADOW_LIVE | HW_SHADOW_TABLE;
        hw_live_add(1, (int64_t)size);
    }
    hw_record_leave();
}

void hw_record_alloc_slow(void *p, size_t size)
{
    if (arena_mode_came_late())
        return;
    hw_trigger_at_allocation(false);   /* the dynamic linker's blocks come through hw_record_alloc_loader */
    record_alloc_slow(p, size);
}

static void record_alloc_slow(void *p, size_t size)
{
    uintptr_t addr = (uintptr_t)p;
    hw_record_enter();
    hw_event_note_allocation();
    bool sampled = hw_record_should_sample(size);
    /* In full mode every block has a table entry: a shadow byte would only add its cost. */
    uint8_t *byte = hw_shadow_covers(addr) && hw_opt.sample_rate != 1 ? hw_shadow_make(addr) : NULL;
    size_t usable = byte && !sampled ? hw_real_usable_size(p) : 0;
    if (HW_LIKELY(usable >= size && usable - size <= HW_SHADOW_SLACK && byte && !sampled)) {
        *byte = (uint8_t)(HW_SHADOW_LIVE | (usable - size));
        hw_live_add(1, (int64_t)size);
    } else {
        track_in_table(addr, size, sampled, byte);
    }
    hw_record_leave();
}

bool hw_record_free_slow(void *p, size_t *size_out)
{
    uintptr_t addr = (uintptr_t)p;
    struct hw_live_entry e;
    size_t size = 0;
    bool tracked = false;
    hw_record_enter();
    uint8_t *byte = hw_shadow_covers(addr) ? hw_shadow_find(addr) : NULL;
    uint8_t v = byte ? *byte : 0;
    if (HW_LIKELY(v & HW_SHADOW_LIVE)) {
        *byte = 0;   /* before the real free: the address may be handed out again at once */
        if (HW_LIKELY(!(v & HW_SHADOW_TABLE))) {
            size = hw_real_usable_size(p) - (v & HW_SHADOW_SLACK);
            tracked = true;
        } else if (hw_livetable_remove(addr, &e)) {   /* counts a sampled free */
            size = e.size;
            tracked = true;
        }
    } else if (HW_UNLIKELY(atomic_load_explicit(&table_only_seen, memory_order_relaxed)) &&
               hw_livetable_remove(addr, &e)) {
        size = e.size;
        tracked = true;
    }
    if (tracked)
        hw_live_add(-1, -(int64_t)size);
    hw_record_leave();
    if (size_out)
        *size_out = size;
    return tracked;
}

bool hw_record_set_ignored(const void *p)
{
    if (hw_arena_mode)
        return hw_arena_mode_ignore(p);
    uintptr_t addr = (uintptr_t)p;
    bool found;
    hw_record_enter();
    uint8_t *byte = hw_shadow_covers(addr) ? hw_shadow_find(addr) : NULL;
    if (byte && (*byte & HW_SHADOW_LIVE)) {
        __atomic_fetch_or(byte, HW_SHADOW_IGNORED, __ATOMIC_RELAXED);
        found = true;
    } else {
        found = hw_livetable_set_ignored(addr);
    }
    hw_record_leave();
    return found;
}
