/* This file implements the unit test of preload/unwind.c and preload/cfi.c: the shim's own
 * unwinder must return exactly the frames libunwind returns, from the same place, through
 * every kind of frame a program has: plain recursion, libc's frames without frame pointers
 * (qsort's comparator, a dl_iterate_phdr callback), a frame with a variable-length array, a
 * realigned stack, a frame larger than the rule cache holds, a thread's outermost frames and
 * a signal handler's trampoline. Each case runs twice, so the second walk comes from the
 * rule cache, and once more after hw_unwind_forget. Unwinding from saved registers
 * (hw_unwind_frames) must match libunwind's cursor walk, and hw_unwind_caller_of must find a
 * caller's frame. Prints TAP. */
// LINK: preload/unwind.c preload/cfi.c preload/sys.c
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "unwind.h"

HW_TLS struct hw_thread hw_self;
uintptr_t hw_self_text_lo, hw_self_text_hi;

#define MAX 128

static const char *scenario;
static int mismatches, compared;

/* Our capture against unw_backtrace, both from this function's frame. */
static __attribute__((noinline)) void compare(void)
{
    uintptr_t ours[MAX];
    void *theirs[MAX];
    uint32_t n = hw_unwind_capture(ours, MAX);
    int m = unw_backtrace(theirs, MAX);
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
