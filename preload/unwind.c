/* This file implements stack capture with libunwind's unw_backtrace, which walks with a
 * per-thread cache of frame shapes (tdep_trace) and costs a fraction of an unw_step loop
 * (NOTES-shim.md section 3). Frames inside libheapwatch.so are dropped by address rather than
 * by a fixed count, so inlining decisions of the compiler cannot shift the result.
 * Context: HOOKSAFE, called with the guard held. */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include "unwind.h"

#include <libunwind.h>

void hw_unwind_init(void)
{
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    unw_set_cache_size(unw_local_addr_space, 1024, 0);
}

uint32_t hw_unwind_capture(uintptr_t *pcs, uint32_t max)
{
    void *buf[HW_MAX_DEPTH + 16];
    int n = unw_backtrace(buf, (int)(max + 16 <= HW_MAX_DEPTH + 16 ? max + 16 : HW_MAX_DEPTH + 16));
    int skip = 0;
    while (skip < n && (uintptr_t)buf[skip] >= hw_self_text_lo && (uintptr_t)buf[skip] < hw_self_text_hi)
        skip++;
    uint32_t depth = 0;
    for (int i = skip; i < n && depth < max; i++)
        pcs[depth++] = (uintptr_t)buf[i];
    return depth;
}
