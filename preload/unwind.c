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
    /* The outermost frame of a thread started through our pthread_create is ours too. */
    while (n > skip && (uintptr_t)buf[n - 1] >= hw_self_text_lo && (uintptr_t)buf[n - 1] < hw_self_text_hi)
        n--;
    uint32_t depth = 0;
    for (int i = skip; i < n && depth < max; i++)
        pcs[depth++] = (uintptr_t)buf[i];
    return depth;
}

uint32_t hw_unwind_frames(void *ucontext, bool signal_frame, uintptr_t *pcs, uintptr_t *cfas, uint32_t max)
{
    unw_cursor_t cur;
    if (unw_init_local2(&cur, (unw_context_t *)ucontext, signal_frame ? UNW_INIT_SIGNAL_FRAME : 0) < 0)
        return 0;
    uint32_t n = 0;
    do {
        unw_word_t pc = 0, cfa = 0;
        if (unw_get_reg(&cur, UNW_REG_IP, &pc) < 0 || !pc)
            break;
        unw_get_reg(&cur, UNW_X86_64_CFA, &cfa);
        pcs[n] = (uintptr_t)pc;
        cfas[n] = (uintptr_t)cfa;
        n++;
    } while (n < max && unw_step(&cur) > 0);
    return n;
}
