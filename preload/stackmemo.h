/* stackmemo.h: an allocation's call stack, interned in the depot, unwinding and hashing only
 * the frames it does not share with the thread's previous one (stackmemo.c). */
#ifndef HW_STACKMEMO_H
#define HW_STACKMEMO_H

#include <stdint.h>
#include "hw.h"
#include "unwind.h"

/* Fill out with the calling thread's stack, outermost frame first, up to its max innermost
 * frames, without the shim's own (the frames hw_unwind_capture_memo gives, in the depot's
 * order), using and updating the thread's memo (which must be the calling thread's own,
 * zeroed before its first use); *hash is the stack's depot hash (hw_depot_put_outer).
 * Returns the number of frames. */
uint32_t hw_stack_memo_capture(struct hw_stack_memo *memo, uintptr_t *out, uint32_t max, uint64_t *hash) HW_HOOKSAFE;

#endif
