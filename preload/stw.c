/* This file implements stopping and resuming the world (stw.h).
 *
 * Handshake: the stopper publishes a slot per thread (tid -> slot hash, read by the handler),
 * sends the suspend signal with tgkill, and counts parked threads through a futex word; a
 * parked thread waits on the resume generation with FUTEX_WAIT, so nothing but system calls
 * runs while the world is stopped. Real-time signals queue, so a sent signal is never lost;
 * a thread that does not park within the timeout (it blocked the signal with a raw system
 * call, or is stuck in the kernel) is reported unstopped.
 *
 * The handler is installed with SA_RESTART and a full sa_mask. Blocking calls that the kernel
 * never restarts after a handler (epoll_wait, nanosleep, poll... signal(7)) return EINTR in a
 * stopped thread, as under every in-process stop-the-world (Boehm GC, ART); README.md says so.
 * Context: the handler, park and the safepoint are SIGSAFE; the stopper runs while other
 * threads are stopped and only makes system calls. */
#define _GNU_SOURCE
#include "stw.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "sys.h"

#define MAX_THREADS (1u << 16)
#define HASH_SIZE (1u << 17)

static struct {
    _Atomic int active;              /* a stop is in progress */
    _Atomic uint32_t resume_gen;     /* bumped on resume; parked threads wait for it to move */
    _Atomic uint32_t parked;         /* threads parked in this stop (futex word) */
    struct hw_stopped_thread *slots; /* MAX_THREADS, mmap'd once */
    _Atomic uint32_t *hash;          /* HASH_SIZE: slot index + 1 by tid, 0 = empty */
    uint32_t nr;
} world;

static hw_stw_request_fn *request_handler;

static long futex(_Atomic uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

static uint32_t tid_hash(int tid) { return ((uint32_t)tid * 2654435761u) & (HASH_SIZE - 1); }

/* Context: SIGSAFE. */
static struct hw_stopped_thread *slot_of(int tid)
{
    for (uint32_t i = tid_hash(tid);; i = (i + 1) & (HASH_SIZE - 1)) {
        uint32_t v = atomic_load_explicit(&world.hash[i], memory_order_acquire);
        if (!v)
            return NULL;
        if (world.slots[v - 1].tid == tid)
            return &world.slots[v - 1];
    }
}

static struct hw_stopped_thread *slot_add(int tid)
{
    if (world.nr >= MAX_THREADS)
        return NULL;
    struct hw_stopped_thread *t = &world.slots[world.nr];
    memset(t, 0, sizeof *t);
    t->tid = tid;
    atomic_store_explicit(&t->state, HW_T_SIGNALED, memory_order_relaxed);
    uint32_t i = tid_hash(tid);
    while (atomic_load_explicit(&world.hash[i], memory_order_relaxed))
        i = (i + 1) & (HASH_SIZE - 1);
    atomic_store_explicit(&world.hash[i], ++world.nr, memory_order_release);
    return t;
}

/* What a parking thread leaves for the walk: where it stopped and its registers. */
struct park_info {
    uintptr_t sp, pc, rbp;
    bool exact_pc, signal_frame;
    uintptr_t regs_lo, regs_hi, fpu_lo, fpu_hi;
    const struct hw_saved_regs *saved;  /* a thread that stopped itself: copied into its slot */
};

/* Park the calling thread until the world resumes. Context: SIGSAFE. */
static void park(const struct park_info *p)
{
    uint32_t gen = atomic_load(&world.resume_gen);  /* before `active`: see hw_stw_resume */
    if (!atomic_load(&world.active))
        return;
    struct hw_stopped_thread *t = slot_of(hw_gettid());
    if (!t || atomic_load(&t->state) != HW_T_SIGNALED)
        return;  /* a stray or duplicate signal, or the stopper gave up on us */
    t->sp = p->sp;
    t->pc = p->pc;
    t->rbp = p->rbp;
    t->exact_pc = p->exact_pc;
    t->signal_frame = p->signal_frame;
    t->fpu_lo = p->fpu_lo;
    t->fpu_hi = p->fpu_hi;
    if (p->saved) {
        memcpy(t->saved, p->saved, sizeof t->saved);
        t->regs_lo = (uintptr_t)t->saved;
        t->regs_hi = (uintptr_t)(t->saved + HW_SAVED_REG_WORDS);
    } else {
        t->regs_lo = p->regs_lo;
        t->regs_hi = p->regs_hi;
    }
    t->tp = (uintptr_t)pthread_self();
    stack_t ss;
    if (sigaltstack(NULL, &ss) == 0 && !(ss.ss_flags & SS_DISABLE) && ss.ss_size) {
        t->alt_lo = (uintptr_t)ss.ss_sp;
        t->alt_hi = t->alt_lo + ss.ss_size;
    }
    int expected = HW_T_SIGNALED;  /* the stopper may declare us unstopped meanwhile */
    if (!atomic_compare_exchange_strong(&t->state, &expected, HW_T_STOPPED))
        return;
    atomic_fetch_add(&world.parked, 1);
    futex(&world.parked, FUTEX_WAKE_PRIVATE, 1, NULL);
    while (atomic_load(&world.resume_gen) == gen)
        futex(&world.resume_gen, FUTEX_WAIT_PRIVATE, gen, NULL);
}

/* The size of the FPU/SSE/AVX state the kernel saved at fp: the xsave size its software
 * bytes give (struct _fpx_sw_bytes at byte 464: magic1, extended_size, xfeatures (8 bytes),
 * xstate_size), or the 512-byte legacy area. */
static size_t fpu_state_size(const void *fp)
{
    const struct _fpx_sw_bytes *sw = (const struct _fpx_sw_bytes *)((const char *)fp + 464);
    if (sw->magic1 == FP_XSTATE_MAGIC1 && sw->xstate_size >= 512 && sw->xstate_size <= 64 * 1024)
        return sw->xstate_size;
    return 512;
}

/* Context: SIGSAFE. */
static void on_suspend(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    int saved = errno;
    if (si->si_code == SI_QUEUE && si->si_value.sival_int == HW_SNAP_REQUEST) {
        if (request_handler)
            request_handler(false, ucv, (uintptr_t)__builtin_return_address(0));
    } else if (si->si_code == SI_TIMER && si->si_value.sival_int == HW_SNAP_RETRY) {
        if (request_handler)
            request_handler(true, ucv, (uintptr_t)__builtin_return_address(0));
    } else if (si->si_code == SI_TKILL && si->si_pid == getpid()) {
        if (hw_self.in_record) {
            /* Mid-update of the shim's tables: park when leaving them (hw_record_leave). */
            atomic_store_explicit(&hw_self.stop_deferred, 1, memory_order_relaxed);
        } else {
            /* The kernel saved the interrupted registers in the signal frame: the general
             * ones in the ucontext, the FPU/SSE/AVX state where uc_mcontext.fpregs points.
             * Only those are scanned, not the frame's padding. */
            ucontext_t *uc = ucv;
            const greg_t *g = uc->uc_mcontext.gregs;
            struct park_info p = { .sp = (uintptr_t)g[REG_RSP], .pc = (uintptr_t)g[REG_RIP],
                                   .rbp = (uintptr_t)g[REG_RBP], .exact_pc = true, .signal_frame = true,
                                   .regs_lo = (uintptr_t)g, .regs_hi = (uintptr_t)(g + NGREG) };
            if (uc->uc_mcontext.fpregs) {
                p.fpu_lo = (uintptr_t)uc->uc_mcontext.fpregs;
                p.fpu_hi = p.fpu_lo + fpu_state_size(uc->uc_mcontext.fpregs);
            }
            park(&p);
        }
    }
    errno = saved;
}

void hw_stw_safepoint(void)
{
    atomic_store_explicit(&hw_self.stop_deferred, 0, memory_order_relaxed);
    int saved = errno;
    /* Our callers' callee-saved registers are either still in the registers, saved here, or
     * in the shim frames above this one, which are scanned from sp. */
    struct hw_saved_regs regs;
    HW_SAVE_REGS(&regs);
    struct park_info p = { .sp = regs.sp, .pc = regs.pc, .rbp = regs.rbp, .saved = &regs };
    park(&p);
    errno = saved;
}

bool hw_stw_init(hw_stw_request_fn *request_fn)
{
    world.slots = hw_map(MAX_THREADS * sizeof *world.slots);
    world.hash = hw_map(HASH_SIZE * sizeof *world.hash);
    if (!world.slots || !world.hash)
        return false;
    request_handler = request_fn;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_suspend;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    return sigaction(HW_SUSPEND_SIGNAL, &sa, NULL) == 0;
}

void hw_stw_unblock_in(sigset_t *set)
{
    if (set)
        sigdelset(set, HW_SUSPEND_SIGNAL);
}

/* ---- the stopper --------------------------------------------------------------------------- */

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* /proc/self/task, opened once per process at the top of the descriptor table and rewound for
 * every stop. Opened for every stop, it sat at a low number while other threads ran: a close
 * of a stale number of the program's landed on it, the program made a pipe at that number,
 * and our close took the pipe from it (bash under a storm of snapshot signals: "cannot
 * duplicate fd 3 to fd 0", 2 runs in 15). A fork child's copy names its parent's threads and
 * is replaced; one the program closed, or took over, is forgotten, never closed. Only the
 * stopper uses it (under snapshot.c's lock). */
static int task_fd = -1, task_pid;

static int task_dir(bool fresh)
{
    int pid = getpid();
    if (!fresh && task_fd >= 0 && task_pid == pid && lseek(task_fd, 0, SEEK_SET) == 0)
        return task_fd;
    if (task_fd >= 0 && task_pid != pid)
        close(task_fd);
    task_fd = hw_fd_high(open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    task_pid = pid;
    return task_fd;
}

/* Signal every thread of /proc/self/task not seen yet; returns how many were new. */
static unsigned signal_new_threads(int self, int except)
{
    static char buf[16384];  /* only the stopper (under snapshot.c's lock) uses it */
    int fd = task_dir(false);
    if (fd < 0)
        return 0;
    unsigned added = 0;
    pid_t pid = getpid();
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n < 0 && (fd = task_dir(true)) >= 0)   /* not the directory any more: the program's */
        n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    for (; n > 0; n = syscall(SYS_getdents64, fd, buf, sizeof buf)) {
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            off += d->d_reclen;
            int tid = 0;
            for (const char *c = d->d_name; *c >= '0' && *c <= '9'; c++)
                tid = tid * 10 + (*c - '0');
            if (tid <= 0 || tid == self || tid == except || slot_of(tid))
                continue;
            struct hw_stopped_thread *t = slot_add(tid);
            if (!t)
                continue;
            added++;
            if (syscall(SYS_tgkill, pid, tid, HW_SUSPEND_SIGNAL) < 0)
                atomic_store(&t->state, HW_T_GONE);
        }
    }
    return added;
}

/* Whether thread tid still runs (not exited, not a zombie thread-group leader). */
static bool thread_alive(int tid)
{
    if (syscall(SYS_tgkill, getpid(), tid, 0) < 0)
        return false;
    char path[64], stat[512];
    hw_fmt(path, sizeof path, "/proc/self/task/%d/stat", tid);
    if (!hw_read_file(path, stat, sizeof stat))
        return false;
    const char *rp = strrchr(stat, ')');  /* comm may hold spaces and parentheses */
    return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

static uint32_t count_waiting(void)
{
    uint32_t waiting = 0;
    for (uint32_t i = 0; i < world.nr; i++)
        waiting += atomic_load(&world.slots[i].state) == HW_T_SIGNALED;
    return waiting;
}

void hw_stw_stop(struct hw_world *w, int except_tid, const struct hw_caller *caller, int timeout_ms)
{
    for (uint32_t i = 0; i < world.nr; i++) {
        uint32_t h = tid_hash(world.slots[i].tid);
        while (atomic_load(&world.hash[h]))
            atomic_store(&world.hash[h], 0), h = (h + 1) & (HASH_SIZE - 1);
    }
    world.nr = 0;
    atomic_store(&world.parked, 0);
    int self = hw_gettid();
    struct hw_stopped_thread *me = caller ? slot_add(self) : NULL;
    if (me) {
        atomic_store(&me->state, HW_T_CALLER);
        me->sp = caller->sp;
        me->pc = caller->regs.pc;
        me->rbp = caller->regs.rbp;
        if (caller->have_regs) {
            memcpy(me->saved, &caller->regs, sizeof me->saved);
            me->regs_lo = (uintptr_t)me->saved;
            me->regs_hi = (uintptr_t)(me->saved + HW_SAVED_REG_WORDS);
        }
        me->tp = (uintptr_t)pthread_self();
        stack_t ss;
        if (sigaltstack(NULL, &ss) == 0 && !(ss.ss_flags & SS_DISABLE) && ss.ss_size) {
            me->alt_lo = (uintptr_t)ss.ss_sp;
            me->alt_hi = me->alt_lo + ss.ss_size;
        }
    }
    atomic_store(&world.active, 1);
    uint64_t deadline = hw_now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000u;
    /* Relist until a pass finds no new thread and every signalled thread has parked: a thread
     * created meanwhile by a not yet stopped thread shows up in a later pass. */
    for (unsigned pass = 0; pass < 64; pass++) {
        unsigned added = signal_new_threads(self, except_tid);
        for (;;) {
            uint32_t seen = atomic_load(&world.parked);
            if (!count_waiting() || hw_now_ns(CLOCK_MONOTONIC) >= deadline)
                break;
            struct timespec ts = { 0, 1000000 };
            futex(&world.parked, FUTEX_WAIT_PRIVATE, seen, &ts);
        }
        if (!added && !count_waiting())
            break;
        if (hw_now_ns(CLOCK_MONOTONIC) >= deadline)
            break;
    }
    w->unstopped = 0;
    for (uint32_t i = 0; i < world.nr; i++) {
        struct hw_stopped_thread *t = &world.slots[i];
        if (atomic_load(&t->state) != HW_T_SIGNALED)
            continue;
        int to = thread_alive(t->tid) ? HW_T_UNSTOPPED : HW_T_GONE;
        int expected = HW_T_SIGNALED;
        if (atomic_compare_exchange_strong(&t->state, &expected, to) && to == HW_T_UNSTOPPED)
            w->unstopped++;
    }
    w->threads = world.slots;
    w->nr = world.nr;
}

void hw_stw_resume(void)
{
    /* `active` goes first: a late thread that reads the old generation then sees no stop. */
    atomic_store(&world.active, 0);
    atomic_fetch_add(&world.resume_gen, 1);
    futex(&world.resume_gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}
