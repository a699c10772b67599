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
extern uintptr_t hw_loader_lo, hw_loader_len;
static inline bool hw_from_loader(const void *return_address)
{
    return (uintptr_t)return_address - hw_loader_lo < hw_loader_len;
}
/* An allocation whose caller is the dynamic linker. */
void hw_record_alloc_loader(void *p, size_t size) HW_HOOKSAFE;

/* The whole of recording an allocation and a free (record.c); the hooks call the inline fast
 * paths below, which handle an unsampled block whose shadow page exists, and fall back to
 * these for everything else. */
void hw_record_alloc_slow(void *p, size_t size) HW_HOOKSAFE;
bool hw_record_free_slow(void *p, size_t *size) HW_HOOKSAFE;

/* A new block p of `size` requested bytes. Called after the real allocator succeeded. The
 * fast path: not sampled (the thread's byte countdown stays above zero), a shadowed address
 * whose page exists, a slack that fits the byte: one byte store and the thread's counters. */
static inline __attribute__((always_inline)) void hw_record_alloc(void *p, size_t size)
{
    uintptr_t addr = (uintptr_t)p;
    int64_t left = hw_self.until_sample - (int64_t)(size + !size);
    if (HW_LIKELY(left > 0) && HW_LIKELY(hw_shadow_covers(addr))) {
        hw_record_enter();
        uint8_t *byte = hw_shadow_find(addr);
        size_t slack = hw_real_usable_size(p) - size;   /* wraps when unknown (0): too big */
        if (HW_LIKELY(byte != NULL) && HW_LIKELY(slack <= HW_SHADOW_SLACK)) {
            hw_self.until_sample = left;
            *byte = (uint8_t)(HW_SHADOW_LIVE | slack);
            hw_live_add(1, (int64_t)size);
            hw_record_leave();
            return;
        }
        hw_record_leave();
    }
    hw_record_alloc_slow(p, size);
}

/* Block p is about to be released: call before the real free (livetable.c note 3). Whether
 * it was tracked; its requested size goes to *size unless size is NULL. The fast path: a
 * block that only its shadow byte describes. */
static inline __attribute__((always_inline)) bool hw_record_free(void *p, size_t *size)
{
    uintptr_t addr = (uintptr_t)p;
    if (HW_LIKELY(hw_shadow_covers(addr))) {
        hw_record_enter();
        uint8_t *byte = hw_shadow_find(addr);
        uint8_t v = byte ? *byte : 0;
        if (HW_LIKELY((v & (HW_SHADOW_LIVE | HW_SHADOW_TABLE)) == HW_SHADOW_LIVE)) {
            *byte = 0;   /* before the real free: the address may be handed out again at once */
            size_t n = hw_real_usable_size(p) - (v & HW_SHADOW_SLACK);
            hw_live_add(-1, -(int64_t)n);
            hw_record_leave();
            if (size)
                *size = n;
            return true;
        }
        hw_record_leave();
    }
    return hw_record_free_slow(p, size);
}
/* heapwatch_ignore(p): flag the live block that starts at p; false if there is none. */
bool hw_record_set_ignored(const void *p) HW_HOOKSAFE;
/* Let the live table count allocations and frees under its locks (once, at init). */
void hw_record_init(void) HW_HOOKSAFE;

#endif
