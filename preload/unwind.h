/* unwind.h: call stacks of the shim's own making: the calling thread's at an allocation, and a
 * stopped thread's (pc and canonical frame address of each frame) at a snapshot. */
#ifndef HW_UNWIND_H
#define HW_UNWIND_H

#include <stdbool.h>
#include <stdint.h>
#include "hw.h"

/* Where a frame is: its pc (exact: the instruction itself, as for the innermost frame or one
 * a signal interrupted; otherwise a return address), stack pointer and rbp. */
struct hw_unwind_regs {
    uintptr_t pc, sp, rbp;
    bool exact;
};

/* Once, guarded, at initialisation, with glibc's _dl_find_object (2.35+, from dlsym);
 * without it (NULL), fall back to libunwind, which may wait for the loader lock inside
 * malloc. */
void hw_unwind_init(void *find_object);
/* Fill pcs with up to max return addresses of the calling thread, innermost first, without
 * the shim's own frames. Takes no lock and never allocates (with _dl_find_object). */
uint32_t hw_unwind_capture(uintptr_t *pcs, uint32_t max) HW_HOOKSAFE;
/* Unwind from `start`, on a stack whose bounds are [stack_lo, stack_hi) (0, 0 if unknown),
 * recording each frame's pc and canonical frame address (0 when the last frame's is
 * unknown); returns the number of frames. For a stopped thread, in a snapshot's walk. */
uint32_t hw_unwind_frames(const struct hw_unwind_regs *start, uintptr_t stack_lo, uintptr_t stack_hi,
                          uintptr_t *pcs, uintptr_t *cfas, uint32_t max) HW_SIGSAFE;
/* Walk up the calling thread's stack to the frame of the function at [fn_lo, fn_hi) and
 * give the registers of its caller as they are when it returns: sp is where the caller's
 * own frame begins. False if the function is not on the stack. */
bool hw_unwind_caller_of(uintptr_t fn_lo, uintptr_t fn_hi, struct hw_unwind_regs *out) HW_SIGSAFE;
/* Drop every cached frame rule: after a dlclose, another module may be mapped where the
 * unloaded one was. */
void hw_unwind_forget(void) HW_SIGSAFE;

#endif
