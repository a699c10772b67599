/* record.h: what the hooks do around the real allocator: sample, capture, count, track. */
#ifndef HW_RECORD_H
#define HW_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "hw.h"
#include "livetable.h"
#include "real.h"
#include "shadow.h"
#include "threads.h"

/* The dynamic linker's executable text ([lo, lo + len), set at initialisation): its blocks
 * (a thread's DTV, dlerror's message, link maps) get a stack even when not sampled, so that
 * a leak report can tell them from the program's (the default suppression of blocks
 * allocated by the dynamic linker), without being counted as samples. */
extern HW_INTERNAL uintptr_t hw_loader_lo, hw_loader_len;
static inline bool hw_from_loader(const void *return_address)
{
    return (uintptr_t)return_address - hw_loader_lo < hw_loader_len;
}
/* An allocation whose caller is the dynamic linker. */
void hw_record_alloc_loader(void *p, size_t size) HW_HOOKSAFE;

/* Whether an allocation is recorded: not inside the shim, and the shim active. */
static inline bool hw_recording(void)
{
    return HW_LIKELY(!hw_self.guard) && hw_active();
}

/* Whether a free must be recorded: also under the guard (the shim's own calls, dlsym's
 * dlerror string), where allocations pass through unrecorded but a block recorded before
 * must still be forgotten, or its record would outlive it (a phantom block whose size the
 * walk would read from memory that is no longer one). Never hw_active(): a free must not
 * initialise the shim (it may run inside the resolution of the real functions), and before
 * initialisation nothing was recorded. */
static inline bool hw_forgetting(void)
{
    return HW_LIKELY(atomic_load_explicit(&hw_state, memory_order_acquire) == HW_ACTIVE);
}

/* The sampling decision for an allocation of `size` bytes (the thread's countdown moves),
 * and the calling thread's stack as a depot id (0: none); inside a record section. */
bool hw_record_should_sample(size_t size) HW_HOOKSAFE;
uint32_t hw_record_capture(void) HW_HOOKSAFE;
/* Count a recorded block's allocation or free in its stack's counters (weighted in sampled
 * mode) and log its event: what the live table does for an entry it takes in or gives up,
 * for a record kept elsewhere (cookie.h); inside a record section. */
struct hw_live_entry;
void hw_record_count_alloc(const struct hw_live_entry *e) HW_HOOKSAFE;
void hw_record_count_free(const struct hw_live_entry *e) HW_HOOKSAFE;

/* The whole of recording an allocation and a free (record.c); the hooks call the inline fast
 * paths below, which handle an unsampled block whose shadow page exists, and fall back to
 * these for everything else. */
void hw_record_alloc_slow(void *p, size_t size) HW_HOOKSAFE;
bool hw_record_free_slow(void *p, size_t *size) HW_HOOKSAFE;

/* THE FAST PATHS. A stopped world (stw.c) may catch a thread anywhere in them: they hold no
 * lock and change the shim's state with single stores, so there is no half-recorded block to
 * see, and they need no record brackets. A block's shadow byte is its one record for a heap
 * walk: before the store the block is not yet allocated as far as a snapshot can tell, after
 * it it is. The thread's counters are a separate view for the snapshots that do not walk
 * (threads.h): the block counts from its add instruction on. */

/* An unsampled block: p of `size` requested bytes, just returned by the real allocator, where
 * `left` = this thread's countdown minus the block's bytes is positive (hooks compute it
 * before calling the real allocator: a positive countdown implies the shim is active, this
 * thread is not inside it and sampling is on, see hw_guard_enter). The common case costs a
 * shadow lookup, a header read, a byte store and two adds; the rest (no shadow page yet,
 * slack too big for the byte, an unaligned block) goes to the slow path, which samples with
 * the countdown as it was. */
static inline __attribute__((always_inline)) void hw_record_alloc_unsampled(void *p, size_t size, int64_t left)
{
    uintptr_t addr = (uintptr_t)p;
    if (HW_LIKELY(hw_shadow_covers(addr))) {
        uint8_t *byte = hw_shadow_find(addr);
        size_t slack = hw_real_usable_size(p) - size;   /* wraps when unknown (0): too big */
        if (HW_LIKELY(byte != NULL) && HW_LIKELY(slack <= HW_SHADOW_SLACK)) {
            hw_self.until_sample = left;
            *byte = (uint8_t)(HW_SHADOW_LIVE | slack);
            hw_live_add(1, (int64_t)size);
            return;
        }
    }
    hw_record_alloc_slow(p, size);
}

/* The countdown after an allocation of `size` bytes: positive means the fast path. */
static inline int64_t hw_countdown_after(size_t size)
{
    return hw_self.until_sample - (int64_t)(size + !size);
}

/* A new block p of `size` requested bytes, from a hook that has checked that recording is on
 * (not guarded, active). Called after the real allocator succeeded. */
static inline __attribute__((always_inline)) void hw_record_alloc(void *p, size_t size)
{
    int64_t left = hw_countdown_after(size);
    if (HW_LIKELY(left > 0))
        hw_record_alloc_unsampled(p, size, left);
    else
        hw_record_alloc_slow(p, size);
}

/* Block p is about to be released: the fast path, for a block that only its shadow byte
 * describes. Whether it handled p; its requested size goes to *size unless size is NULL.
 * Needs no test of the shim's state: before initialisation no shadow page exists. */
static inline __attribute__((always_inline)) bool hw_record_free_fast(void *p, size_t *size)
{
    uintptr_t addr = (uintptr_t)p;
    if (HW_LIKELY(hw_shadow_covers(addr))) {
        uint8_t *byte = hw_shadow_find(addr);
        if (HW_LIKELY(byte != NULL)) {
            uint8_t v = *byte;
            if (HW_LIKELY((v & (HW_SHADOW_LIVE | HW_SHADOW_TABLE)) == HW_SHADOW_LIVE)) {
                *byte = 0;   /* before the real free: the address may be handed out again at once */
                size_t n = hw_real_usable_size(p) - (v & HW_SHADOW_SLACK);
                hw_live_add(-1, -(int64_t)n);
                if (size)
                    *size = n;
                return true;
            }
        }
    }
    return false;
}

/* Block p is about to be released: call before the real free (livetable.c note 3), when the
 * shim is active. Whether it was tracked; its requested size goes to *size unless size is
 * NULL. */
static inline __attribute__((always_inline)) bool hw_record_free(void *p, size_t *size)
{
    return hw_record_free_fast(p, size) || hw_record_free_slow(p, size);
}
/* heapwatch_ignore(p): flag the live block that starts at p; false if there is none. */
bool hw_record_set_ignored(const void *p) HW_HOOKSAFE;
/* Let the live table count allocations and frees under its locks (once, at init). */
void hw_record_init(void) HW_HOOKSAFE;

#endif
