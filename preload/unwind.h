/* unwind.h: capture the calling thread's stack for an allocation. */
#ifndef HW_UNWIND_H
#define HW_UNWIND_H

#include <stdbool.h>
#include <stdint.h>
#include "hw.h"

void hw_unwind_init(void);
/* Fill pcs with up to max return addresses, innermost first, without the shim's own frames.
 * Must be called with the guard held (libunwind may allocate on first use). */
uint32_t hw_unwind_capture(uintptr_t *pcs, uint32_t max) HW_HOOKSAFE;
/* Unwind a stopped thread from its saved context (a kernel signal frame or getcontext's),
 * recording each frame's pc and canonical frame address; returns the number of frames.
 * Runs in a snapshot's walk (the world stopped, or its fork child). */
uint32_t hw_unwind_frames(void *ucontext, bool signal_frame, uintptr_t *pcs, uintptr_t *cfas, uint32_t max);

#endif
