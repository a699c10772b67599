/* stackmemo.h: an allocation's call stack, interned in the depot, unwinding and hashing only
 * the frames it does not share with the thread's previous one (stackmemo.c). */
#ifndef HW_STACKMEMO_H
#define HW_STACKMEMO_H

#include <stdint.h>
#include "hw.h"
#include "unwind.h"

/* Fill pcs with the calling thread's stack, up to max frames, innermost first, without the
 * shim's own (as hw_unwind_capture does), using and updating the thread's memo (which must
 * be the calling thread's own, zeroed before its first use); *hash is the stack's depot hash
 * (hw_depot_put_hashed). Returns the number of frames. */
uint32_t hw_stack_memo_capture(struct hw_stack_memo *memo, uintptr_t *pcs, uint32_t max, uint64_t *hash) HW_HOOKSAFE;

#endif
