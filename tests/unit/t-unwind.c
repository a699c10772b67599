/* This file implements the unit test of preload/unwind.c and preload/cfi.c: the shim's own
 * unwinder must return exactly the frames libunwind returns, from the same place, through
 * every kind of frame a program has: plain recursion, libc's frames without frame pointers
 * (qsort's comparator, a dl_iterate_phdr callback), a frame with a variable-length array, a
 * realigned stack, a frame larger than the rule cache holds, a thread's outermost frames and
 * a signal handler's trampoline. Each case runs twice, so the second walk comes from the
 * rule cache, and once more after hw_unwind_forget. Unwinding from saved registers
 * (hw_unwind_frames) must match libunwind's cursor walk, and hw_unwind_caller_of must find a
 * caller's frame. A capture with the thread's memo of its previous one (stackmemo.c) must
 * give libunwind's frames too, and the depot hash of them, every time: after the same stack,
 * after a deeper or shallower one, after a longjmp out of a recursion, cut at a depth limit,
 * and above frames whose size varies (alloca, a realigned stack) under callers whose frames
 * differ. Prints TAP. */
// LINK: preload/unwind.c preload/cfi.c preload/sys.c preload/stackmemo.c preload/depot.c preload/forkgate.c preload/threads.c
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include "depot.h"
#include "harness.h"
#include "stackmemo.h"
#include "unwind.h"

uintptr_t hw_self_text_lo, hw_self_text_hi;   /* hw_self comes with threads.c, which the depot needs */

#define MAX 128

static const char *scenario;
static int mismatches, compared;
static __thread struct hw_stack_memo memo;
static uint32_t memo_max = MAX;   /* the depth limit of the memo's captures */
static int memo_mismatches, memo_compared;

/* The memo's capture against unw_backtrace's frames: ours has one more frame inside,
 * hw_stack_memo_capture's own (libunwind's frame 0 is in compare, as ours[1] is). */
static void compare_memo(void *const *theirs, int m)
{
    uintptr_t ours[MAX];
    uint64_t hash;
    uint32_t n = hw_stack_memo_capture(&memo, ours, memo_max, &hash);
    uint32_t want = (uint32_t)m + 1 < memo_max ? (uint32_t)m + 1 : memo_max;
    for (uint32_t i = 0; i < n / 2; i++) {   /* ours comes outermost first */
        uintptr_t t = ours[i];
        ours[i] = ours[n - 1 - i];
        ours[n - 1 - i] = t;
    }
    bool same = n == want && n > 2;
    for (uint32_t i = 2; same && i < n; i++)
        same = ours[i] == (uintptr_t)theirs[i - 1];
    uint64_t h = HW_DEPOT_HASH_SEED;
    for (uint32_t i = n; i-- > 0;)
        h = hw_depot_hash_step(h, ours[i]);
    memo_compared++;
    if (!same || h != hash) {
        memo_mismatches++;
        diag("%s, with the memo (max %u): %u frames, libunwind %d + 1; hash %s", scenario, memo_max, n, m,
             h == hash ? "right" : "wrong");
        for (int i = 0; i < (int)n || i <= m; i++)
            diag("  %2d %#lx %#lx", i, i < (int)n ? (unsigned long)ours[i] : 0ul,
                 i >= 1 && i <= m ? (unsigned long)theirs[i - 1] : 0ul);
    }
}

/* Our capture against unw_backtrace, both from this function's frame. */
static __attribute__((noinline)) void compare(void)
{
    uintptr_t ours[MAX], cfas[MAX];
    struct hw_frame_reads reads[MAX];
    void *theirs[MAX];
    struct hw_unwind_result res;
    uint32_t n = hw_unwind_capture_memo(ours, cfas, reads, MAX, NULL, &res);
    int m = unw_backtrace(theirs, MAX);
    compare_memo(theirs, m);
    compared++;
    /* Frame 0 is this function at two different calls. */
    bool same = (int)n == m && n > 1;
    for (uint32_t i = 1; same && i < n; i++)
        same = ours[i] == (uintptr_t)theirs[i];
    if (!same) {
        mismatches++;
        diag("%s: ours %u frames, libunwind %d", scenario, n, m);
        for (int i = 0; i < (int)n || i < m; i++)
            diag("  %2d %#lx %#lx", i, i < (int)n ? (unsigned long)ours[i] : 0ul,
                 i < m ? (unsigned long)theirs[i] : 0ul);
    }
}

static void check_case(const char *name, void (*run)(void))
{
    scenario = name;
    mismatches = compared = 0;
    run();
    run();  /* from the rule cache */
    hw_unwind_forget();
    run();
    CHECK(compared >= 3 && mismatches == 0, "%s: same frames as libunwind (%d walks)", name, compared);
}

/* The memo's captures of one case, after the others' (the memo holds the last one taken). */
static void check_memo(const char *name)
{
    CHECK(memo_compared >= 3 && memo_mismatches == 0, "%s: with the memo, libunwind's frames and their hash (%d walks)",
          name, memo_compared);
    memo_compared = memo_mismatches = 0;
}

/* ---- the memo: stacks that share outer frames, and stacks that only seem to ------------- */

static __attribute__((noinline)) int dive(int d, int leaf_site)
{
    if (d == 0) {
        if (leaf_site)
            compare();
        else
            compare();
        return 0;
    }
    int r = (d & 1) ? dive(d - 1, leaf_site) : dive(d - 1, !leaf_site);
    __asm__ volatile("" ::: "memory");
    return r + 1;
}

static jmp_buf escape;
static volatile int jump = 1;   /* volatile: a function that can only longjmp out reads as endless recursion to gcc */
static __attribute__((noinline)) void dive_and_jump(int d)
{
    if (d == 0) {
        compare();
        if (jump)
            longjmp(escape, 1);
        return;
    }
    dive_and_jump(d - 1);
    __asm__ volatile("" ::: "memory");
}

/* Frames whose size varies at run time, reached from one call site by callers whose frames
 * differ in size: a realigned stack and an alloca. The same inner frames then sit at the same
 * CFA while their callers' CFAs moved (found from rbp): the memo's old return-address slots
 * lie in the new frames' padding and may still hold the old addresses. */
static __attribute__((noinline)) void realigned_callee(void)
{
    _Alignas(64) volatile char buf[64];
    buf[0] = 1;
    compare();
    __asm__ volatile("" : : "r"(buf) : "memory");
}
static __attribute__((noinline)) void alloca_callee(int n)
{
    volatile char *p = __builtin_alloca((size_t)n);
    p[0] = 1;
    compare();
    __asm__ volatile("" : : "r"(p) : "memory");
}
static __attribute__((noinline)) void caller_small(int n)
{
    if (n)
        alloca_callee(n);
    else
        realigned_callee();
    __asm__ volatile("" ::: "memory");
}
static __attribute__((noinline)) void caller_big(int n)
{
    volatile char pad[40];
    pad[0] = 0;
    if (n)
        alloca_callee(n);
    else
        realigned_callee();
    __asm__ volatile("" : : "r"(pad) : "memory");
}
static void (*volatile callers[2])(int) = { caller_small, caller_big };
static __attribute__((noinline)) void drive_callers(int shift, int n)
{
    volatile char *pad = __builtin_alloca((size_t)shift * 16 + 16);
    pad[0] = 0;
    for (volatile int i = 0; i < 2; i++)
        callers[i](n);   /* one call site, two callers */
    __asm__ volatile("" : : "r"(pad) : "memory");
}
static void case_memo_moving_frames(void)
{
    for (int shift = 0; shift < 8; shift++) {
        drive_callers(shift, 0);
        drive_callers(shift, 16 + 16 * (shift & 3));
        drive_callers(shift, 48);
    }
}

/* A frame without call-frame information, whose caller is found through its frame pointer
 * or not at all: with rbp = 0 the walk stops there, with a frame pointer it goes on. The
 * memo of the first must not cut the second short. */
__asm__(".text\n.globl unwind_test_tramp\n.type unwind_test_tramp,@function\nunwind_test_tramp:\n"
        " push %rbp\n"
        " test %rsi,%rsi\n jz 1f\n mov %rsp,%rbp\n jmp 2f\n1: xor %ebp,%ebp\n2:\n"
        " call *%rdi\n"
        " pop %rbp\n ret\n.size unwind_test_tramp,.-unwind_test_tramp\n");
void unwind_test_tramp(void (*fn)(void), long use_fp);

static __thread struct hw_stack_memo fresh_memo;
static uint32_t tramp_frames[2];   /* with the thread's memo, with a fresh one */

static __attribute__((noinline)) uint32_t capture_with(struct hw_stack_memo *m)
{
    uintptr_t out[MAX];
    uint64_t hash;
    uint32_t n = hw_stack_memo_capture(m, out, MAX, &hash);
    __asm__ volatile("" ::: "memory");
    return n;
}
static __attribute__((noinline)) void tramp_leaf(void)
{
    memset(&fresh_memo, 0, sizeof fresh_memo);
    for (volatile int i = 0; i < 2; i++)
        tramp_frames[i] = capture_with(i ? &fresh_memo : &memo);
    __asm__ volatile("" ::: "memory");
}

static void check_open_end(void)
{
    bool same = true;
    uint32_t got[2][2];
    for (volatile long round = 0; round < 2; round++) {
        unwind_test_tramp(tramp_leaf, round);
        got[round][0] = tramp_frames[0];
        got[round][1] = tramp_frames[1];
        same = same && tramp_frames[0] == tramp_frames[1];
    }
    CHECK(same && got[1][1] > got[0][1],
          "a walk that stopped at a frame without rules (rbp 0) does not cut short the next from there"
          " (rbp a frame pointer): %u/%u then %u/%u frames, memo/fresh", got[0][0], got[0][1], got[1][0], got[1][1]);
}

static void case_memo_depths(void)
{
    static const int depths[] = { 30, 30, 29, 31, 10, 30, 45, 44, 2, 45 };
    for (unsigned i = 0; i < sizeof depths / sizeof depths[0]; i++)
        dive(depths[i], (int)i & 1);
    if (!setjmp(escape))
        dive_and_jump(30);
    dive(30, 0);   /* the frames the longjmp abandoned, overwritten at the same addresses */
    if (!setjmp(escape))
        dive_and_jump(31);
    dive(31, 1);
}


/* ---- the cases -------------------------------------------------------------------------- */

static __attribute__((noinline)) int recurse(int d)
{
    if (d == 0) {
        compare();
        return 0;
    }
    int r = recurse(d - 1);
    __asm__ volatile("" ::: "memory");
    return r + 1;
}
static void case_recursion(void) { recurse(40); }

static int cmp_calls;
static int by_value(const void *a, const void *b)
{
    if (!cmp_calls++)
        compare();
    return *(const int *)a - *(const int *)b;
}
static void case_qsort(void)
{
    int v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (i * 37) % 64;
    cmp_calls = 0;
    qsort(v, 64, sizeof v[0], by_value);
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)info;
    (void)size;
    (void)arg;
    compare();
    return 1;
}
static void case_phdr(void) { dl_iterate_phdr(phdr_cb, NULL); }

static __attribute__((noinline)) void vla(int n)
{
    volatile char buf[n];
    buf[0] = 1;
    compare();
    __asm__ volatile("" : : "r"(buf) : "memory");
}
static void case_vla(void) { vla(100 + scenario[0]); }

static __attribute__((noinline)) void aligned(void)
{
    _Alignas(64) volatile char buf[256];
    buf[0] = 1;
    compare();
    __asm__ volatile("" : : "r"(buf) : "memory");
}
static __attribute__((noinline, force_align_arg_pointer)) void realigned(void) { aligned(); }
static void case_realigned(void) { realigned(); }

static __attribute__((noinline)) void big_frame(void)
{
    volatile char buf[1 << 20];  /* beyond the cache's CFA offsets */
    buf[0] = 1;
    buf[sizeof buf - 1] = 2;
    compare();
}
static void case_big(void) { big_frame(); }

static void *thread_fn(void *arg)
{
    compare();
    return arg;
}
static void case_thread(void)
{
    pthread_t t;
    pthread_create(&t, NULL, thread_fn, NULL);
    pthread_join(t, NULL);
}

static void on_usr1(int sig)
{
    (void)sig;
    compare();
}
static void case_signal(void)
{
    struct sigaction sa = { .sa_handler = on_usr1 };
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
}

/* ---- unwinding from saved registers ----------------------------------------------------- */

static __attribute__((noinline)) void from_registers(void)
{
    unw_context_t ctx;
    unw_cursor_t cur;
    unw_getcontext(&ctx);
    struct hw_unwind_regs start = { .pc = (uintptr_t)ctx.uc_mcontext.gregs[REG_RIP],
                                    .sp = (uintptr_t)ctx.uc_mcontext.gregs[REG_RSP],
                                    .rbp = (uintptr_t)ctx.uc_mcontext.gregs[REG_RBP], .exact = true };
    uintptr_t pcs[MAX], cfas[MAX];
    uint32_t n = hw_unwind_frames(&start, hw_self.stack_lo, hw_self.stack_hi, pcs, cfas, MAX);
    /* libunwind's UNW_X86_64_CFA is the frame's own stack pointer, which is the DWARF CFA of
     * the frame below it: ours for frame k is libunwind's for frame k + 1. */
    unw_init_local(&cur, &ctx);
    uintptr_t their_pc[MAX], their_sp[MAX];
    uint32_t m = 0, same = 0;
    do {
        unw_word_t pc, sp;
        unw_get_reg(&cur, UNW_REG_IP, &pc);
        unw_get_reg(&cur, UNW_X86_64_CFA, &sp);
        their_pc[m] = pc;
        their_sp[m] = sp;
        m++;
    } while (unw_step(&cur) > 0 && m < MAX);
    for (uint32_t k = 0; k < n && k < m; k++) {
        if (pcs[k] == their_pc[k] && (k + 1 >= m || cfas[k] == their_sp[k + 1]))
            same++;
        else
            diag("frame %u: ours pc %#lx cfa %#lx, libunwind pc %#lx", k, (unsigned long)pcs[k],
                 (unsigned long)cfas[k], (unsigned long)their_pc[k]);
    }
    CHECK(n == m && same == n, "frames from saved registers: %u of libunwind's %u frames match (pc and cfa)", same, m);
}

static uintptr_t marker_lo, marker_hi;
static int caller_found;
static __attribute__((noinline)) void inner_probe(uintptr_t expect_sp)
{
    struct hw_unwind_regs at;
    caller_found = hw_unwind_caller_of(marker_lo, marker_hi, &at) && at.sp == expect_sp;
}
static __attribute__((noinline)) void marker(uintptr_t expect_sp)
{
    inner_probe(expect_sp);
    __asm__ volatile("" ::: "memory");
}
static __attribute__((noinline)) void marker_end(void) {}
static __attribute__((noinline)) void call_marker(void)
{
    /* The sp this function has once marker returns: its own, read right before the call. */
    uintptr_t sp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    marker(sp);
}

int main(void)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    hw_self.stack_lo = (uintptr_t)addr;
    hw_self.stack_hi = (uintptr_t)addr + size;
    void *find_object = dlsym(RTLD_DEFAULT, "_dl_find_object");
    if (!find_object) {
        /* glibc before 2.35: the shim unwinds with libunwind, and this test would compare
         * libunwind with itself. */
        puts("1..0 # SKIP no _dl_find_object in this glibc");
        return 0;
    }
    hw_unwind_init(find_object);

    check_case("recursion 40 deep", case_recursion);
    check_case("qsort comparator (libc without frame pointers)", case_qsort);
    check_case("dl_iterate_phdr callback", case_phdr);
    check_case("variable-length array", case_vla);
    check_case("realigned stack", case_realigned);
    check_case("1 MiB frame", case_big);
    check_case("thread start", case_thread);
    check_case("signal handler", case_signal);
    check_memo("every case above");
    check_case("recursions of varying depth, from two sites, and after longjmps", case_memo_depths);
    check_memo("recursions of varying depth, from two sites, and after longjmps");
    check_case("a realigned and an alloca frame under callers of two sizes", case_memo_moving_frames);
    check_memo("a realigned and an alloca frame under callers of two sizes");
    memo_max = 16;
    check_case("recursions, cut at 16 frames", case_memo_depths);
    check_memo("recursions, cut at 16 frames");
    memo_max = 40;
    check_case("recursions around a cut at 40 frames", case_memo_depths);
    check_memo("recursions around a cut at 40 frames");
    memo_max = MAX;
    check_open_end();
    from_registers();

    marker_lo = (uintptr_t)marker;
    marker_hi = (uintptr_t)marker_end > marker_lo ? (uintptr_t)marker_end : marker_lo + 64;
    call_marker();
    CHECK(caller_found, "hw_unwind_caller_of: the caller's sp once the function returns");
    marker_lo = marker_hi = 1;
    inner_probe(0);
    CHECK(!caller_found, "hw_unwind_caller_of: false when the function is not on the stack");
    return done();
}
