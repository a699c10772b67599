/* This file implements the shim's life cycle.
 *
 * The first interposed call initialises recording (hw_init_slow): it may come long before our
 * constructor, from ld.so (which allocates link maps and TLS through our malloc) or another
 * library's initialiser (the program's own libraries are constructed before a preloaded
 * one), so this part only resolves the real allocator, parses options and maps the tables. The constructor then
 * opens the database and starts the triggers; the destructor takes the exit snapshot. Our
 * destructor runs after the program's atexit handlers and static destructors; frees that come
 * later (other libraries' destructors) are simply not in any snapshot. The shim's state is
 * never freed at exit, so late calls stay safe.
 *
 * Inert cases: secure-exec (setuid) programs, HEAPWATCH_CHILDREN=0 in an exec'd child, and
 * failure to map the tables: every call is forwarded untouched. */
#define _GNU_SOURCE
#include "hw.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>
#include "depot.h"
#include "forkgate.h"
#include "livetable.h"
#include "modules.h"
#include "events.h"
#include "options.h"
#include "record_arena.h"
#include "real.h"
#include "record.h"
#include "roots.h"
#include "snapshot.h"
#include "stw.h"
#include "sys.h"
#include "threads.h"
#include "unwind.h"

_Atomic int hw_state;
uintptr_t hw_self_text_lo, hw_self_text_hi;
uintptr_t hw_libc_text_lo, hw_libc_text_hi, hw_malloc_text_lo, hw_malloc_text_hi;

extern char **__environ;

/* The initial environment when libc's is not set up yet: /proc/self/environ, split in place. */
static char **early_environ(void)
{
    static char buf[64 * 1024];
    static char *vec[1024];
    size_t n = hw_read_file("/proc/self/environ", buf, sizeof buf);
    if (!n)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < sizeof vec / sizeof vec[0]; i += strlen(buf + i) + 1)
        vec[k++] = buf + i;
    vec[k] = NULL;
    return vec;
}

/* The executable segment of module `info` that holds addr (any executable segment when addr
 * is 0): true with [*lo, *hi) set. */
static bool exec_segment(const struct dl_phdr_info *info, uintptr_t addr, uintptr_t *lo, uintptr_t *hi)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        uintptr_t a = info->dlpi_addr + p->p_vaddr, b = a + p->p_memsz;
        if (p->p_type == PT_LOAD && (p->p_flags & PF_X) && (!addr || (addr >= a && addr < b))) {
            *lo = a;
            *hi = b;
            return true;
        }
    }
    return false;
}

/* What initialisation learns from the loaded modules, in one pass: the shim's own text (its
 * frames are dropped from stacks), the modules of the real malloc and malloc_usable_size
 * (real.h: hw_real_usable), the text of libc and of the real malloc's module (helperstart.c)
 * and the dynamic linker's text (record.h: hw_loader_lo, by its name
 * as the analyzer's default suppression knows it). */
struct allocator_modules {
    const char *malloc_module, *usable_module;
};

static int scan_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct allocator_modules *m = arg;
    const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "";   /* "": the executable */
    const char *slash = strrchr(name, '/'), *base = slash ? slash + 1 : name;
    uintptr_t lo, hi;
    if (exec_segment(info, (uintptr_t)&hw_init_slow, &lo, &hi)) {
        hw_self_text_lo = lo;
        hw_self_text_hi = hi;
    }
    if (exec_segment(info, (uintptr_t)&getpid, &lo, &hi)) {
        hw_libc_text_lo = lo;
        hw_libc_text_hi = hi;
    }
    if (exec_segment(info, (uintptr_t)hw_real.malloc, &lo, &hi)) {
        m->malloc_module = name;
        hw_malloc_text_lo = lo;
        hw_malloc_text_hi = hi;
    }
    if (hw_real.malloc_usable_size && exec_segment(info, (uintptr_t)hw_real.malloc_usable_size, &lo, &hi))
        m->usable_module = name;
    if ((!strncmp(base, "ld-linux", 8) || !strncmp(base, "ld64.so.", 8) || !strncmp(base, "ld.so.", 6)) &&
        exec_segment(info, 0, &lo, &hi)) {
        hw_loader_lo = lo;
        hw_loader_len = hi - lo;
    }
    return 0;
}

static enum hw_usable scan_modules(void)
{
    struct allocator_modules m = { NULL, NULL };
    dl_iterate_phdr(scan_module, &m);
    hw_real_malloc_module = m.malloc_module && *m.malloc_module ? m.malloc_module : NULL;
    if (!hw_real_malloc_module || m.malloc_module != m.usable_module)
        return HW_USABLE_NONE;
    const char *base = strrchr(m.malloc_module, '/');
    base = base ? base + 1 : m.malloc_module;
    return !strncmp(base, "libc.so", 7) ? HW_USABLE_GLIBC : HW_USABLE_CALL;
}

/* Whether this process must stay inert. */
static bool must_stay_inert(void)
{
    if (getauxval(AT_SECURE))
        return true;
    if (!hw_opt.children && hw_opt.root_pid && hw_opt.root_pid != (uint64_t)getpid())
        return true;
    return false;
}

static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

bool hw_init_slow(void)
{
    int expected = HW_UNINIT;
    if (!atomic_compare_exchange_strong(&hw_state, &expected, HW_INITIALIZING))
        return atomic_load(&hw_state) == HW_ACTIVE;
    hw_guard_enter();
    hw_real_resolve();
    hw_options_parse(__environ ? __environ : early_environ());
    int next = HW_INERT;
    if (!must_stay_inert()) {
        hw_threads_init();
        hw_forkgate_init();
        if (hw_livetable_init() && hw_depot_init() && hw_modules_init()) {
            hw_record_init();
            hw_events_init();
            hw_unwind_init(dlsym(RTLD_DEFAULT, "_dl_find_object"));
            hw_real_usable = scan_modules();
            hw_arena_init();
            next = HW_ACTIVE;
        } else {
            hw_log("cannot map its tables; recording is off");
        }
    }
    atomic_store_explicit(&hw_state, next, memory_order_release);
    if (next == HW_ACTIVE)
        pthread_atfork(fork_prepare, fork_parent, fork_child);   /* guarded: its own allocation is ours */
    hw_guard_leave();
    return next == HW_ACTIVE;
}

/* The pid this image's shim serves: a vfork child that calls exit() runs our destructor in
 * its parent's memory, where it must do nothing. */
static int served_pid;

/* The fork handlers are registered at initialisation (the first allocation), before any
 * library's constructor registers its own, so that the shim's prepare handler runs after
 * every other one (they run in the reverse order of registration): its fork gate
 * (forkgate.h) then closes when the other handlers hold their locks already, and a thread
 * waiting at it cannot hold one of them. They act once the constructor has started the
 * snapshot side; fork_handled keeps a fork's three calls consistent. */
static bool fork_handlers_on, fork_handled;

static void fork_prepare(void)
{
    fork_handled = fork_handlers_on;
    if (!fork_handled)
        return;
    hw_guard_enter();
    hw_snapshot_atfork_prepare();
}

static void fork_parent(void)
{
    if (!fork_handled)
        return;
    hw_snapshot_atfork_parent();
    hw_guard_leave();
}

static void fork_child(void)
{
    served_pid = getpid();
    if (!fork_handled)
        return;
    hw_snapshot_atfork_child();
    hw_guard_leave();
}

__attribute__((constructor)) static void hw_constructor(void)
{
    if (!hw_active())
        return;
    hw_guard_enter();
    if (!hw_opt.children && !hw_opt.root_pid) {
        char pid[32];
        snprintf(pid, sizeof pid, "%d", getpid());
        setenv("HEAPWATCH_ROOT_PID", pid, 1);  /* exec'd children see it and stay inert */
    }
    served_pid = getpid();
    hw_guard_leave();
    hw_snapshot_start();
    fork_handlers_on = true;
}

__attribute__((destructor)) static void hw_destructor(void)
{
    if (atomic_load(&hw_state) == HW_ACTIVE && getpid() == served_pid)
        hw_snapshot_at_exit();
}

/* ---- public API ------------------------------------------------------------------------------- */

/* heapwatch_snapshot() saves its caller's callee-saved registers first thing, before any
 * prologue can overwrite them, and passes them on with the caller's stack pointer: the
 * caller's stack starts above the return address, so none of the shim's frames is scanned
 * (LeakSanitizer's caller_sp), and only registers the caller may hold live across the call
 * are roots. The layout is struct hw_saved_regs. */
__attribute__((used, visibility("hidden"))) int hw_snapshot_api(const char *label, const struct hw_saved_regs *regs);
int hw_snapshot_api(const char *label, const struct hw_saved_regs *regs)
{
    if (!hw_active())
        return -1;
    struct hw_caller c = { .sp = regs->sp, .regs = *regs, .have_regs = true };
    return hw_snapshot_take("api", label, &c) > 0 ? 0 : -1;
}

HW_EXPORT __attribute__((naked)) int heapwatch_snapshot(const char *label)
{
    (void)label;
    __asm__("subq $72, %rsp\n\t"
            ".cfi_adjust_cfa_offset 72\n\t"
            "movq %rbx, 0(%rsp)\n\t"
            "movq %rbp, 8(%rsp)\n\t"
            "movq %r12, 16(%rsp)\n\t"
            "movq %r13, 24(%rsp)\n\t"
            "movq %r14, 32(%rsp)\n\t"
            "movq %r15, 40(%rsp)\n\t"
            "leaq 80(%rsp), %rax\n\t"   /* the caller's sp once we return */
            "movq %rax, 48(%rsp)\n\t"
            "movq 72(%rsp), %rax\n\t"   /* the return address */
            "movq %rax, 56(%rsp)\n\t"
            "movq %rsp, %rsi\n\t"
            "call hw_snapshot_api\n\t"
            "addq $72, %rsp\n\t"
            ".cfi_adjust_cfa_offset -72\n\t"
            "ret");
}

HW_EXPORT int heapwatch_ignore(const void *p)
{
    if (!hw_active() || !p)
        return -1;
    return hw_record_set_ignored(p) ? 0 : -1;
}

HW_EXPORT int heapwatch_register_root(const void *p, size_t size)
{
    if (!hw_active() || !p || !size)
        return -1;
    return hw_roots_register((uintptr_t)p, size) ? 0 : -1;
}

HW_EXPORT int heapwatch_unregister_root(const void *p, size_t size)
{
    if (!hw_active() || !p)
        return -1;
    return hw_roots_unregister((uintptr_t)p, size) ? 0 : -1;
}
