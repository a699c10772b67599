/* This file implements the capture of an allocation's call stack (stackmemo.h) with each
 * thread's memo of its previous capture (unwind.h: struct hw_stack_memo).
 *
 * Consecutive allocations of a thread mostly share their outer frames: a loop allocates from
 * one frame, a recursion from the frames of its callers. The unwinder stops at the first frame
 * it finds in the memo at the same pc and canonical frame address, once the return addresses
 * saved on the stack still chain that frame to the memo's outermost one (a frame that
 * returned and was called again from elsewhere breaks the chain); the frames outside it are
 * then the memo's. The depot's hash is folded from the outermost frame in, so the memo also
 * holds the hash of each of its frames' outer part, and only the new inner frames are hashed.
 * A program allocating at the bottom of 60 frames unwinds and hashes a few of them.
 *
 * The memo is only kept for a capture on the thread's known stack, with no signal frame, and
 * of at most HW_MEMO_DEPTH frames. A capture whose frames, with the memo's, pass the depth
 * limit keeps its innermost ones as always (the outer part changed: hashed whole). A signal
 * handler's allocation inside this thread's own capture neither reads nor writes the memo
 * (busy).
 * Context: HOOKSAFE (the memo is the calling thread's). */
#define _GNU_SOURCE
#include "stackmemo.h"

#include <stdatomic.h>
#include "depot.h"

/* The hash of pcs[0..n-1] (innermost first); the memo becomes these frames when keep. */
static uint64_t hash_and_keep(struct hw_stack_memo *m, const uintptr_t *pcs, const uintptr_t *cfas, uint32_t n, bool keep)
{
    keep = keep && n <= HW_MEMO_DEPTH;
    uint64_t h = HW_DEPOT_HASH_SEED;
    for (uint32_t o = 0; o < n; o++) {
        uint32_t k = n - 1 - o;
        h = hw_depot_hash_step(h, pcs[k]);
        if (keep) {
            m->pc[o] = pcs[k];
            m->cfa[o] = cfas[k];
            m->hash[o] = h;
        }
    }
    m->depth = keep ? n : 0;
    return h;
}

uint32_t hw_stack_memo_capture(struct hw_stack_memo *memo, uintptr_t *pcs, uint32_t max, uint64_t *hash)
{
    uintptr_t cfas[HW_MAX_DEPTH];
    if (max > HW_MAX_DEPTH)
        max = HW_MAX_DEPTH;
    struct hw_stack_memo *m = memo, scratch;
    if (m->busy)
        m = &scratch;   /* inside this thread's own capture: a signal handler's allocation */
    else {
        m->busy = true;
        atomic_signal_fence(memory_order_seq_cst);
    }
    struct hw_unwind_result res;
    hw_guard_enter();  /* libunwind (without _dl_find_object) may allocate on first use in a thread */
    uint32_t d = hw_unwind_capture_memo(pcs, cfas, max, m == memo ? m : NULL, &res);
    hw_guard_leave();
    bool keep = m == memo && res.plain;
    uint32_t n = d;
    uint64_t h;
    bool cut = res.cut;
    if (res.memo_at >= 0) {
        /* Frame d - 1 is the memo's frame o; the memo's frames o - 1 .. 0 follow it. */
        uint32_t o = (uint32_t)res.memo_at, total = d + o;
        n = total < max ? total : max;
        for (uint32_t k = d; k < n; k++) {
            pcs[k] = m->pc[o - 1 - (k - d)];
            cfas[k] = m->cfa[o - 1 - (k - d)];
        }
        if (total <= max) {
            /* Every frame outside d - 1 stays where it was: hash and keep the new ones only. */
            keep = keep && n <= HW_MEMO_DEPTH;
            h = m->hash[o];
            for (uint32_t k = d - 1; k-- > 0;) {
                h = hw_depot_hash_step(h, pcs[k]);
                if (keep) {
                    uint32_t at = o + (d - 1 - k);
                    m->pc[at] = pcs[k];
                    m->cfa[at] = cfas[k];
                    m->hash[at] = h;
                }
            }
            m->depth = keep ? n : 0;
        } else {
            cut = true;   /* the innermost max frames: the outermost ones changed */
            h = hash_and_keep(m, pcs, cfas, n, keep);
        }
    } else {
        h = hash_and_keep(m, pcs, cfas, n, keep);
    }
    if (m == memo) {
        m->cut = cut;
        m->lo = res.lo;
        m->hi = res.hi;
        atomic_signal_fence(memory_order_seq_cst);
        m->busy = false;
    }
    *hash = h;
    return n;
}
