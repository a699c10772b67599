/* This file implements stack capture for the shim (unwind.h) on x86-64.
 *
 * Each step finds the caller of a frame from its call-frame rule (cfi.h): the CFA is rsp or
 * rbp plus an offset, the return address and rbp are saved at offsets from it. Rules are
 * found through _dl_find_object and .eh_frame, which take no lock, so an allocation inside
 * a dl_iterate_phdr callback (the loader lock held) cannot deadlock against another thread
 * that allocates, as it did with libunwind, whose mutex is held across dl_iterate_phdr.
 * The rules of return addresses are cached by pc in one lock-free table of 64-bit words
 * (the pc's high bits as a tag, the rule packed in the low 32), so a stack of known frames
 * costs a table load and a stack read or two per frame: libunwind's own per-thread frame
 * cache did the same work.
 *
 * Safety: a frame's reads must stay on its thread's stack. When the stack's bounds are known
 * (threads started through pthread_create, and the main thread; threadhooks.c) every CFA and
 * saved slot is checked against them; otherwise the CFA must rise by less than STEP_MAX per
 * frame. Where no rule covers a pc (code generated at run time), a frame-pointer step is
 * tried, on a known stack only. Frames of the shim itself are dropped by address.
 * Without _dl_find_object (glibc older than 2.35) libunwind does the work, as before.
 * Context: HOOKSAFE and SIGSAFE: no lock, no allocation. */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include "unwind.h"

#include <libunwind.h>
#include <string.h>
#include <ucontext.h>
#include "cfi.h"
#include "sys.h"

#define STEP_MAX (4u << 20)        /* largest CFA rise accepted on a stack of unknown bounds */
#define CACHE_BITS 16
#define CACHE_SIZE (1u << CACHE_BITS)

static bool use_cfi;
static _Atomic uint64_t *cache;    /* CACHE_SIZE words: tag = pc >> 16 (high), rule (low) */

bool hw_unwind_lockfree(void)
{
    return use_cfi;
}

void hw_unwind_init(void *find_object)
{
    use_cfi = hw_cfi_init((hw_find_object_fn)find_object);
    if (use_cfi)
        cache = hw_map(CACHE_SIZE * sizeof *cache);
    if (!use_cfi || !cache) {
        use_cfi = false;
        unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
        unw_set_cache_size(unw_local_addr_space, 1024, 0);
    }
}

void hw_unwind_forget(void)
{
    if (cache)
        for (size_t i = 0; i < CACHE_SIZE; i++)
            atomic_store_explicit(&cache[i], 0, memory_order_relaxed);
}

/* ---- the rule cache -------------------------------------------------------------------- */

/* Packed rule: bit 0 valid, 1 CFA from rbp, 2 CFA dereferenced, 3 outermost frame, bits 4-11
 * k where rbp is saved at CFA - 8k (0: rbp unchanged), bits 12-31 the CFA offset (signed).
 * Only rules with the return address at CFA - 8 are cached: all that compilers emit. */
static uint32_t pack(const struct hw_cfi_rule *r)
{
    if (r->end)
        return 1u | 8u;
    if (r->signal || r->rbp_lost || r->ra_off != -8 || r->cfa_off < -(1 << 19) || r->cfa_off >= (1 << 19))
        return 0;
    uint32_t k = 0;
    if (r->rbp_saved) {
        if (r->rbp_off >= 0 || r->rbp_off % 8 || -r->rbp_off / 8 > 255)
            return 0;
        k = (uint32_t)(-r->rbp_off / 8);
    }
    return 1u | (r->cfa_reg == HW_DW_RBP ? 2u : 0) | (r->cfa_deref ? 4u : 0) | k << 4 |
           ((uint32_t)r->cfa_off & 0xfffffu) << 12;
}

static void unpack(uint32_t v, struct hw_cfi_rule *r)
{
    memset(r, 0, sizeof *r);
    if (v & 8) {
        r->end = true;
        return;
    }
    r->cfa_reg = v & 2 ? HW_DW_RBP : HW_DW_RSP;
    r->cfa_deref = v & 4;
    r->ra_off = -8;
    uint32_t k = (v >> 4) & 0xff;
    r->rbp_saved = k != 0;
    r->rbp_off = -(int32_t)(8 * k);
    r->cfa_off = (int32_t)(v & 0xfffff000u) >> 12;
}

/* The rule of the frame at return address pc, from the cache or the tables. */
static bool rule_of_return(uintptr_t pc, struct hw_cfi_rule *r)
{
    uint64_t tag = (uint64_t)pc >> 16;
    size_t slot = (pc ^ (pc >> CACHE_BITS)) & (CACHE_SIZE - 1);
    bool cacheable = tag < (1ull << 32);
    if (cacheable) {
        /* The slot and the tag together name pc exactly: slot ^ (tag & mask) is pc's low bits. */
        uint64_t v = atomic_load_explicit(&cache[slot], memory_order_relaxed);
        if ((v >> 32) == tag && ((uint32_t)v & 1)) {
            unpack((uint32_t)v, r);
            return true;
        }
    }
    if (!hw_cfi_find(pc, false, r))
        return false;
    uint32_t packed = cacheable ? pack(r) : 0;
    if (packed)
        atomic_store_explicit(&cache[slot], tag << 32 | packed, memory_order_relaxed);
    return true;
}

/* ---- stepping -------------------------------------------------------------------------- */

struct walk {
    struct hw_unwind_regs f;
    uintptr_t lo, hi;   /* the stack's bounds, hi = 0 if unknown */
    /* What the last step read besides registers (the stack memo checks it is unchanged): */
    uint8_t kind;        /* HW_STEP_SP, HW_STEP_BP (the CFA from rsp or rbp plus an offset),
                          * HW_STEP_OTHER (a CFA read from memory, a signal frame, an odd
                          * return-address rule, a failed step), HW_STEP_END (an end rule) */
    uintptr_t rbp_slot;  /* where the caller's rbp came from; HW_RBP_KEPT or HW_RBP_LOST */
};

/* Whether [a, a + 8) may be read as part of the current frame's stack. */
static bool on_stack(const struct walk *w, uintptr_t a)
{
    if (a < w->f.sp || a & 7)
        return false;
    return w->hi ? a + 8 <= w->hi : a - w->f.sp < STEP_MAX;
}

static bool known_stack(const struct walk *w)
{
    return w->hi && w->f.sp >= w->lo && w->f.sp < w->hi;
}

/* A frame-pointer step, for code without call-frame information, on a known stack only. */
static bool fp_step(struct walk *w, uintptr_t *cfa)
{
    uintptr_t bp = w->f.rbp;
    if (!known_stack(w) || bp < w->f.sp || bp & 7 || bp + 16 > w->hi)
        return false;
    *cfa = bp + 16;
    w->kind = HW_STEP_BP;
    w->rbp_slot = bp;
    w->f.pc = ((const uintptr_t *)bp)[1];
    w->f.rbp = ((const uintptr_t *)bp)[0];
    w->f.sp = *cfa;
    w->f.exact = false;
    return w->f.pc != 0;
}

/* The interrupted registers of a signal trampoline's frame: its ucontext is at sp. */
static bool signal_step(struct walk *w)
{
    const ucontext_t *uc = (const ucontext_t *)w->f.sp;
    if (known_stack(w) && w->f.sp + sizeof *uc > w->hi)
        return false;
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    if (known_stack(w) && (sp < w->lo || sp >= w->hi))
        return false;  /* interrupted on another stack: stop */
    w->kind = HW_STEP_OTHER;
    w->rbp_slot = HW_RBP_LOST;
    w->f.pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    w->f.rbp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    w->f.sp = sp;
    w->f.exact = true;
    return w->f.pc != 0;
}

/* Move w to the caller of its frame; *cfa is the frame's canonical frame address. False at
 * the outermost frame, or where the stack cannot be followed safely. */
static bool step(struct walk *w, uintptr_t *cfa)
{
    struct hw_cfi_rule r;
    *cfa = 0;
    w->kind = HW_STEP_OTHER;   /* until a step succeeds: a stop the stack's contents decided */
    w->rbp_slot = HW_RBP_LOST;
    bool found = w->f.exact ? hw_cfi_find(w->f.pc, true, &r) : rule_of_return(w->f.pc, &r);
    if (!found)
        return fp_step(w, cfa);
    if (r.end) {
        w->kind = HW_STEP_END;   /* the outermost frame by its pc alone */
        return false;
    }
    if (r.signal)
        return signal_step(w);
    uintptr_t base = r.cfa_reg == HW_DW_RSP ? w->f.sp : w->f.rbp;
    if (!base)
        return false;
    uintptr_t c = base + (intptr_t)r.cfa_off;
    if (r.cfa_deref) {
        if (!on_stack(w, c))
            return false;
        c = *(const uintptr_t *)c;
    }
    if (c <= w->f.sp || (c & 7) || !on_stack(w, c - 8) || (w->hi && c > w->hi))
        return false;
    uintptr_t ra_at = c + (intptr_t)r.ra_off, rbp_at = c + (intptr_t)r.rbp_off;
    if (!on_stack(w, ra_at) || (r.rbp_saved && !on_stack(w, rbp_at)))
        return false;
    *cfa = c;
    w->kind = r.cfa_deref || r.ra_off != -8 ? HW_STEP_OTHER : r.cfa_reg == HW_DW_RSP ? HW_STEP_SP : HW_STEP_BP;
    w->rbp_slot = r.rbp_saved ? rbp_at : r.rbp_lost ? HW_RBP_LOST : HW_RBP_KEPT;
    w->f.pc = *(const uintptr_t *)ra_at;
    if (r.rbp_saved)
        w->f.rbp = *(const uintptr_t *)rbp_at;
    else if (r.rbp_lost)
        w->f.rbp = 0;
    w->f.sp = c;
    w->f.exact = false;
    return w->f.pc != 0;
}

static bool in_shim(uintptr_t pc)
{
    return pc >= hw_self_text_lo && pc < hw_self_text_hi;
}

/* ---- libunwind, without _dl_find_object ------------------------------------------------ */

static uint32_t capture_libunwind(uintptr_t *pcs, uint32_t max)
{
    void *buf[HW_MAX_DEPTH + 16];
    int n = unw_backtrace(buf, (int)(max + 16 <= HW_MAX_DEPTH + 16 ? max + 16 : HW_MAX_DEPTH + 16));
    int skip = 0;
    while (skip < n && in_shim((uintptr_t)buf[skip]))
        skip++;
    while (n > skip && in_shim((uintptr_t)buf[n - 1]))
        n--;
    uint32_t depth = 0;
    for (int i = skip; i < n && depth < max; i++)
        pcs[depth++] = (uintptr_t)buf[i];
    return depth;
}

static uint32_t frames_libunwind(const struct hw_unwind_regs *start, uintptr_t *pcs, uintptr_t *cfas, uint32_t max)
{
    ucontext_t uc;
    unw_cursor_t cur;
    memset(&uc, 0, sizeof uc);
    uc.uc_mcontext.gregs[REG_RIP] = (greg_t)start->pc;
    uc.uc_mcontext.gregs[REG_RSP] = (greg_t)start->sp;
    uc.uc_mcontext.gregs[REG_RBP] = (greg_t)start->rbp;
    if (unw_init_local2(&cur, (unw_context_t *)&uc, start->exact ? UNW_INIT_SIGNAL_FRAME : 0) < 0)
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

/* ---- entry points ---------------------------------------------------------------------- */

/* Whether unwinding on from the memo's frame o - 1, whose registers (pc, sp = cfa[o], rbp)
 * are those the memo had there (the caller checked), would give the memo's frames again out
 * to its frame 0: a step is a function of a frame's registers and of the stack words it
 * reads, the saved return address (at cfa - 8) and the caller's saved rbp, so each of those
 * must still hold what the memo's capture read (its CFA read from memory, a signal frame:
 * not checked). A frame whose CFA comes from rbp needs its rbp to be the memo's (a frame with
 * a variable size: alloca, a realigned stack): the one the match found, or the last one read
 * back from a save slot, unchanged. Returns -1 when it would, else the frame at which it may not
 * (a frame that the unwinder may still find at its own pc and CFA). Reads only within the
 * known stack [lo, hi). */
static int32_t memo_chain_breaks(const struct hw_stack_memo *m, int32_t o, bool rbp_same, uintptr_t lo, uintptr_t hi)
{
    for (int32_t k = o - 1; k > 0; k--) {
        uintptr_t ra_at = m->cfa[k] - 8, slot = m->rbp_slot[k];
        if (m->kind[k] == HW_STEP_OTHER || (m->kind[k] == HW_STEP_BP && !rbp_same))
            return k;
        if (ra_at < lo || ra_at + 8 > hi || *(const uintptr_t *)ra_at != m->pc[k - 1])
            return k;
        if (slot != HW_RBP_KEPT && slot != HW_RBP_LOST) {
            if (slot < lo || slot + 8 > hi)
                return k;
            /* Another value matters only to a frame further out whose CFA comes from rbp
             * before a frame restores rbp again (code without frame pointers keeps data in
             * rbp: a loop counter differs at every call) */
            rbp_same = HW_MEMO_RBP(*(const uintptr_t *)slot) == m->rbp[k - 1];
        } else if (slot == HW_RBP_LOST) {
            rbp_same = true;   /* 0 then and now */
        }
    }
    return -1;
}

uint32_t hw_unwind_capture_memo(uintptr_t *pcs, uintptr_t *cfas, struct hw_frame_reads *reads, uint32_t max,
                                const struct hw_stack_memo *m, struct hw_unwind_result *res)
{
    *res = (struct hw_unwind_result){ .memo_at = -1 };
    if (!use_cfi) {
        uint32_t depth = capture_libunwind(pcs, max);
        for (uint32_t i = 0; i < depth; i++)
            cfas[i] = 0;
        return depth;
    }
    const uintptr_t *fp = __builtin_frame_address(0);
    struct walk w = { .f = { .pc = fp[1], .sp = (uintptr_t)(fp + 2), .rbp = fp[0] },
                      .lo = hw_self.stack_lo, .hi = hw_self.stack_hi };
    if (w.hi && (w.f.sp < w.lo || w.f.sp >= w.hi))
        w.hi = w.lo = 0;  /* running on another stack (sigaltstack, a coroutine) */
    res->lo = w.lo;
    res->hi = w.hi;
    res->plain = w.hi != 0;
    /* The memo's frames are looked for from its innermost out, as the CFAs rise. */
    int32_t o = m && m->depth && w.hi && m->lo == w.lo && m->hi == w.hi ? (int32_t)m->depth - 1 : -1;
    uint32_t depth = 0, recorded = 0;
    uintptr_t cfa;
    for (unsigned n = 0; n < HW_UNWIND_FRAMES; n++) {
        uintptr_t pc = w.f.pc;
        if (recorded == 0 && in_shim(pc)) {
            res->lead++;   /* the shim's own frames: hooks, recording */
        } else {
            if (recorded == max) {
                res->cut = true;
                break;
            }
            recorded++;
        }
        uintptr_t rbp = w.f.rbp;
        pcs[depth++] = pc;
        bool more = step(&w, &cfa);
        cfas[depth - 1] = cfa;
        reads[depth - 1] = (struct hw_frame_reads){ .rbp = rbp, .rbp_slot = w.rbp_slot, .kind = w.kind };
        if (o >= 0 && cfa) {
            while (o >= 0 && m->cfa[o] < cfa)
                o--;
            /* The same CFA with another pc is the same caller calling from elsewhere: the
             * frames outside may still be the memo's. */
            if (o >= 0 && m->cfa[o] == cfa && m->pc[o] == pc) {
                /* The frames the stack would have, and how many of them the shim's: */
                uint32_t total = depth + (uint32_t)o;
                uint32_t lead = res->lead < depth ? res->lead : total - (m->depth - m->lead);
                /* A cut memo lacks what lies outside its frame 0: usable only when this stack
                 * reaches max with the memo's frames (no frame further out can). */
                if ((m->cut && total - lead < max) || ((uint32_t)o >= m->depth - m->lead) != (res->lead == depth)) {
                    o = -1;   /* and a shim frame matches only as one of the leading shim frames */
                } else if (o == 0 ? !more || m->cut : more && w.f.pc == m->pc[o - 1] && !w.f.exact) {
                    /* The caller's registers as the memo had them: its pc, its sp (this CFA),
                     * and its rbp if that is the memo's. */
                    int32_t broken = o == 0 ? -1 : memo_chain_breaks(m, o, HW_MEMO_RBP(w.f.rbp) == m->rbp[o - 1], w.lo, w.hi);
                    if (broken < 0) {
                        res->memo_at = o;
                        return depth;
                    }
                    o = broken;   /* the memo's frame broken may still come, at its own pc and CFA */
                } else {
                    o--;   /* this frame's caller changed: look outside it */
                }
            }
        }
        if (!more)
            break;
        if (!cfa || w.f.exact)
            res->plain = false;   /* a signal frame, or a CFA unknown, before the end */
    }
    /* A memo must end where the walk ends for the pc alone (an end rule): one that ended
     * because of what the stack held (no rule and no frame pointer, a bad address) could go
     * on another time from the same frame. */
    res->open_end = !res->cut && w.kind != HW_STEP_END;
    /* The outermost frame of a thread started through our pthread_create is ours too. */
    while (depth > res->lead && in_shim(pcs[depth - 1])) {
        depth--;
        res->open_end = true;
    }
    return depth;
}

uint32_t hw_unwind_frames(const struct hw_unwind_regs *start, uintptr_t stack_lo, uintptr_t stack_hi,
                          uintptr_t *pcs, uintptr_t *cfas, uint32_t max)
{
    if (!use_cfi)
        return frames_libunwind(start, pcs, cfas, max);
    struct walk w = { .f = *start, .lo = stack_lo, .hi = stack_hi };
    if (w.hi && (w.f.sp < w.lo || w.f.sp >= w.hi))
        w.hi = w.lo = 0;
    uint32_t n = 0;
    while (n < max && w.f.pc) {
        pcs[n] = w.f.pc;
        bool more = step(&w, &cfas[n]);
        n++;
        if (!more)
            break;
    }
    return n;
}

bool hw_unwind_caller_of(uintptr_t fn_lo, uintptr_t fn_hi, struct hw_unwind_regs *out)
{
    if (!use_cfi)
        return false;
    const uintptr_t *fp = __builtin_frame_address(0);
    struct walk w = { .f = { .pc = fp[1], .sp = (uintptr_t)(fp + 2), .rbp = fp[0] },
                      .lo = hw_self.stack_lo, .hi = hw_self.stack_hi };
    if (w.hi && (w.f.sp < w.lo || w.f.sp >= w.hi))
        w.hi = w.lo = 0;
    uintptr_t cfa;
    for (unsigned n = 0; n < 4 * HW_MAX_DEPTH; n++) {
        bool in_fn = w.f.pc - 1 >= fn_lo && w.f.pc - 1 < fn_hi;
        if (!step(&w, &cfa))
            return false;
        if (in_fn) {
            *out = w.f;
            return true;
        }
    }
    return false;
}
