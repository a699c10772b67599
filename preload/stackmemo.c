/* This file implements the capture of an allocation's call stack (stackmemo.h) with each
 * thread's memo of its previous capture (unwind.h: struct hw_stack_memo).
 *
 * Consecutive allocations of a thread mostly share their outer frames: a loop allocates from
 * one frame, a recursion from the frames of its callers. The unwinder stops at the first frame
 * it finds in the memo at the same pc and canonical frame address, once its caller's
 * registers are the memo's and the stack words that unwinding the memo's outer frames read
 * (saved return addresses and rbps) still hold the same values (unwind.c: memo_chain_breaks);
 * the frames outside it are then the memo's. The depot's hash is folded from the outermost frame in, so the memo also
 * holds the hash of each of its frames' outer part, and only the new inner frames are hashed.
 * A program allocating at the bottom of 60 frames unwinds and hashes a few of them. The memo
 * keeps the shim's own frames too (the hook and the recording, dropped from the stack
 * itself), so that the next allocation from the same frame, through the same hook, matches
 * at the first frame and unwinds nothing.
 *
 * The memo is only kept for a capture on the thread's known stack, with no signal frame, that
 * ended at a frame whose rule ends the stack (or was cut at the depth limit), and of at most
 * HW_MEMO_DEPTH frames. A capture whose frames, with the memo's, pass the depth
 * limit keeps its innermost ones as always (the outer part changed: hashed whole). A signal
 * handler's allocation inside this thread's own capture neither reads nor writes the memo
 * (busy).
 * Context: HOOKSAFE (the memo is the calling thread's). */
#define _GNU_SOURCE
#include "stackmemo.h"

#include <stdatomic.h>
#include "depot.h"

/* Frame k of a capture into the memo's entry at. */
static inline void keep_frame(struct hw_stack_memo *m, uint32_t at, uintptr_t pc, uintptr_t cfa,
                              const struct hw_frame_reads *r, uint64_t hash)
{
    m->pc[at] = pc;
    m->cfa[at] = cfa;
    m->hash[at] = hash;
    m->rbp[at] = HW_MEMO_RBP(r->rbp);
    m->rbp_slot[at] = r->rbp_slot;
    m->kind[at] = r->kind;
}

/* Fold frames top - 1 down to 0 of a stack of total frames (innermost first; the first lead
 * are the shim's, which the hash leaves out) into h, the hash of the frames outside them;
 * when keep, each becomes the memo's entry total - 1 - k, the shim's with the whole stack's
 * hash. */
static uint64_t fold_and_keep(struct hw_stack_memo *m, const uintptr_t *pcs, const uintptr_t *cfas,
                              const struct hw_frame_reads *reads, uint32_t top, uint32_t total, uint32_t lead,
                              uint64_t h, bool keep)
{
    for (uint32_t k = top; k-- > 0;) {
        if (k >= lead)
            h = hw_depot_hash_step(h, pcs[k]);
        if (keep)
            keep_frame(m, total - 1 - k, pcs[k], cfas[k], &reads[k], h);
    }
    return h;
}

uint32_t hw_stack_memo_capture(struct hw_stack_memo *memo, uintptr_t *out, uint32_t max, uint64_t *hash)
{
    /* The stack of a hook inside malloc: the frames unwound, and at a cut the memo's after
     * them, never more than the unwinder fills. */
    uintptr_t pcs[HW_UNWIND_FRAMES], cfas[HW_UNWIND_FRAMES];
    struct hw_frame_reads reads[HW_UNWIND_FRAMES];
    if (max > HW_MAX_DEPTH)
        max = HW_MAX_DEPTH;
    struct hw_stack_memo *m = memo;
    bool mine = !m->busy;   /* else inside this thread's own capture: a signal handler's allocation */
    if (mine) {
        m->busy = true;
        atomic_signal_fence(memory_order_seq_cst);
    }
    struct hw_unwind_result res;
    hw_guard_enter();  /* libunwind (without _dl_find_object) may allocate on first use in a thread */
    uint32_t d = hw_unwind_capture_memo(pcs, cfas, reads, max, mine ? m : NULL, &res);
    hw_guard_leave();
    uint32_t total = d, lead = res.lead, o = 0;
    bool cut = res.cut, reuse = false;
    if (res.memo_at >= 0) {
        /* Frame d - 1 is the memo's frame o; the memo's frames o - 1 .. 0 follow it: frame
         * k >= d of the stack is the memo's frame total - 1 - k. */
        o = (uint32_t)res.memo_at;
        total = d + o;
        if (lead == d)   /* so far the shim's own: so are the memo's up to its first other */
            lead = total - (m->depth - m->lead);
        if (total - lead > max) {
            cut = true;   /* the innermost max frames: the outermost ones changed */
            total = lead + max < HW_UNWIND_FRAMES ? lead + max : HW_UNWIND_FRAMES;
            for (uint32_t k = d; k < total; k++) {
                uint32_t at = d + o - 1 - k;
                pcs[k] = m->pc[at];
                cfas[k] = m->cfa[at];
                reads[k] = (struct hw_frame_reads){ .rbp = HW_MEMO_RBP(m->rbp[at]), .rbp_slot = m->rbp_slot[at], .kind = m->kind[at] };
            }
            d = total;
        } else {
            reuse = true;   /* every frame outside d - 1 stays where it was */
            cut = m->cut;
        }
    }
    bool keep = mine && res.plain && !res.open_end && total <= HW_MEMO_DEPTH;
    uint64_t h;
    if (reuse) {
        /* Hash and keep the new frames only: frame k goes to index total - 1 - k. The
         * matched frame keeps its entry but for its rbp, which may have changed where no
         * frame outside it depends on it (memo_chain_breaks). */
        if (keep)
            m->rbp[o] = HW_MEMO_RBP(reads[d - 1].rbp);
        h = fold_and_keep(m, pcs, cfas, reads, d - 1, total, lead, m->hash[o], keep);
    } else {
        h = fold_and_keep(m, pcs, cfas, reads, total, total, lead, HW_DEPOT_HASH_SEED, keep);
    }
    /* Most stacks of a program with millions of them miss the depot's cache of 4 MiB: its
     * slot loads while the frames are copied. */
    hw_depot_prefetch(h);
    /* The frames but the shim's, outermost first: the memo's first n when it holds them all. */
    uint32_t n = total - lead;
    if (keep)
        for (uint32_t i = 0; i < n; i++)
            out[i] = m->pc[i];
    else
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k = total - 1 - i;
            out[i] = k < d ? pcs[k] : m->pc[total - 1 - k];   /* the memo's frames, as they were */
        }
    if (mine) {
        m->depth = keep ? total : 0;
        m->lead = lead;
        m->cut = cut;
        m->lo = res.lo;
        m->hi = res.hi;
        atomic_signal_fence(memory_order_seq_cst);
        m->busy = false;
    }
    *hash = h;
    return n;
}
