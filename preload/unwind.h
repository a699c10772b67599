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
/* A thread's previous capture (stackmemo.c keeps it), indexed from its outermost frame (0)
 * in, so that a capture which shares its outer frames leaves them where they are: each
 * frame's pc and canonical frame address (cfa[] falls from index 0 in), and the depot hash of
 * the frames 0..o that are not the shim's (depot.h). Its innermost `lead` frames are the
 * shim's own (hooks, recording), which a capture from the same hook at the same depth
 * shares whole. Taken on the known stack [lo, hi), with every return address at CFA - 8 (no
 * signal frame among them). */
#define HW_MEMO_DEPTH 80
/* Where a frame's CFA came from; for the outermost frame, why the walk ended there */
enum { HW_STEP_SP, HW_STEP_BP, HW_STEP_OTHER, HW_STEP_END };
#define HW_RBP_KEPT 0   /* the caller's rbp is the frame's own (no slot read) */
#define HW_RBP_LOST 1   /* unknown (0) */

/* What unwinding a frame read besides its pc and CFA: the frame's rbp, where its caller's
 * rbp came from (a stack address, or HW_RBP_KEPT, HW_RBP_LOST) and how its CFA was found. */
struct hw_frame_reads {
    uintptr_t rbp, rbp_slot;
    uint8_t kind;
};

struct hw_stack_memo {
    uint32_t depth;      /* frames kept; 0 = none */
    uint32_t lead;       /* of which the shim's own, innermost */
    bool cut;            /* stopped at its max: the stack goes on beyond frame 0 */
    bool busy;           /* being read or written: a capture in a signal handler keeps off */
    uintptr_t lo, hi;
    uintptr_t pc[HW_MEMO_DEPTH], cfa[HW_MEMO_DEPTH];
    uint64_t hash[HW_MEMO_DEPTH];
    uintptr_t rbp[HW_MEMO_DEPTH], rbp_slot[HW_MEMO_DEPTH];   /* struct hw_frame_reads, */
    uint8_t kind[HW_MEMO_DEPTH];                             /* per frame */
};
/* The memo lives in TLS, which heap walks scan as a root, and a frame's rbp may be a heap
 * pointer (code without frame pointers keeps data in rbp): kept complemented, it points
 * nowhere and keeps no block alive. */
#define HW_MEMO_RBP(v) (~(uintptr_t)(v))

/* What hw_unwind_capture_memo found besides the frames. */
struct hw_unwind_result {
    int32_t memo_at;   /* >= 0: the last frame unwound is the memo's frame memo_at, and every
                        * frame outside it is the memo's as well; -1: unwound to the end */
    uint32_t lead;     /* the first `lead` frames unwound are the shim's own */
    bool cut;          /* stopped at max frames that are not the shim's, with more beyond */
    bool open_end;     /* unwound to the end, but not to a frame whose rule ends the stack */
    bool plain;        /* every frame unwound returns to CFA - 8, on the known stack [lo, hi) */
    uintptr_t lo, hi;
};

#define HW_UNWIND_FRAMES (HW_MAX_DEPTH + 16)   /* frames hw_unwind_capture_memo may fill */

/* Fill pcs with the calling thread's return addresses (its caller's first), innermost first,
 * cfas with each frame's canonical frame address and reads with what unwinding it read: the
 * shim's own leading frames (res->lead of them), then up to max others. Takes no lock and
 * never allocates (with _dl_find_object; without it, libunwind's frames, without the shim's
 * and without CFAs). Stops at the first frame that memo (may be NULL) has at the same pc and
 * CFA, once its caller's registers are the memo's and the stack words that unwinding the
 * memo's frames outside it read still hold what they held: unwinding on would give the
 * memo's frames, which are then this stack's too. */
uint32_t hw_unwind_capture_memo(uintptr_t *pcs, uintptr_t *cfas, struct hw_frame_reads *reads, uint32_t max,
                                const struct hw_stack_memo *memo, struct hw_unwind_result *res) HW_HOOKSAFE;
/* Unwind from `start`, on a stack whose bounds are [stack_lo, stack_hi) (0, 0 if unknown),
 * recording each frame's pc and canonical frame address (0 when the last frame's is
 * unknown); returns the number of frames. For a stopped thread, in a snapshot's walk. */
uint32_t hw_unwind_frames(const struct hw_unwind_regs *start, uintptr_t stack_lo, uintptr_t stack_hi,
                          uintptr_t *pcs, uintptr_t *cfas, uint32_t max) HW_SIGSAFE;
/* Walk up the calling thread's stack to the frame of the function at [fn_lo, fn_hi) and
 * give the registers of its caller as they are when it returns: sp is where the caller's
 * own frame begins. False if the function is not on the stack. */
bool hw_unwind_caller_of(uintptr_t fn_lo, uintptr_t fn_hi, struct hw_unwind_regs *out) HW_SIGSAFE;
/* Whether unwinding takes no lock (_dl_find_object): a signal handler may unwind any thread. */
bool hw_unwind_lockfree(void) HW_SIGSAFE;
/* Drop every cached frame rule: after a dlclose, another module may be mapped where the
 * unloaded one was. */
void hw_unwind_forget(void) HW_SIGSAFE;

#endif
