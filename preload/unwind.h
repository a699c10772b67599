/* unwind.h: capture the calling thread's stack for an allocation. */
#ifndef HW_UNWIND_H
#define HW_UNWIND_H

#include <stdint.h>
#include "hw.h"

void hw_unwind_init(void);
/* Fill pcs with up to max return addresses, innermost first, without the shim's own frames.
 * Must be called with the guard held (libunwind may allocate on first use). */
uint32_t hw_unwind_capture(uintptr_t *pcs, uint32_t max) HW_HOOKSAFE;

#endif
