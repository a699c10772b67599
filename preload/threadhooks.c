/* This file implements the thread registry of threadhooks.h and the wrappers that feed it.
 *
 * pthread_create is wrapped so that every new thread first records its stack bounds (from
 * pthread_getattr_np, which allocates and reads /proc: fine at thread start, never possible
 * with the world stopped); the main thread registers from the constructor. Entries are keyed
 * by tid and overwritten when a tid is reused; the heap walk checks that a stopped thread's
 * stack pointer lies within its entry before trusting it, and falls back to the mapping that
 * holds the stack pointer otherwise (a thread made by clone() directly, or C11 thrd_create,
 * which calls glibc's pthread_create internally). */
#define _GNU_SOURCE
#include "threadhooks.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <threads.h>
#include "counts.h"
#include "real.h"
#include "spin.h"
#include "stw.h"
#include "sys.h"
#include "trigger.h"

#define REG_SIZE (1u << 16)

struct reg_entry {
    int tid;
    uintptr_t lo, hi, tp;
};

static struct reg_entry *reg;
static _Atomic int reg_lock;

/* Joinable threads, by descriptor (pthread_t), with a count: +1 when one starts, -1 when it
 * is joined or detached. A detach may come before the thread has started: its entry then
 * goes to -1 and the start brings it back to 0. Under reg_lock. */
#define JOIN_SIZE (1u << 16)
struct join_entry {
    uintptr_t pd;
    int count;
    int tid;  /* the thread's, once it started */
};
static struct join_entry *joinable;

/* The pages of each table that ever held an entry (set under reg_lock, never cleared). A scan
 * reads only those: an untouched page of these mappings faults in the zero page when read,
 * and a scan of the whole tables (3 MiB) cost each snapshot 768 page faults, about a third of
 * a small program's exit snapshot. Entries never move to a page that held none: a removal
 * only shifts later members of a cluster back into slots they pass. */
#define PAGE_BITS(table_bytes) (((table_bytes) / 4096 + 63) / 64)
static uint64_t reg_pages[PAGE_BITS(REG_SIZE * sizeof(struct reg_entry))];
static uint64_t join_pages[PAGE_BITS(JOIN_SIZE * sizeof(struct join_entry))];

static void touch_page(uint64_t *pages, size_t offset)
{
    pages[offset / 4096 / 64] |= 1ull << (offset / 4096 % 64);
}

_Static_assert(4096 % sizeof(struct reg_entry) == 0 && 4096 % sizeof(struct join_entry) == 0,
               "no entry may straddle two pages");

/* The first slot at or after i, of a table of n entries of elem bytes, that lies on a page
 * ever touched; n if none. */
static uint32_t next_touched(const uint64_t *pages, uint32_t i, uint32_t n, size_t elem)
{
    while (i < n) {
        size_t page = (size_t)i * elem / 4096;
        if (pages[page / 64] >> (page % 64) & 1)
            return i;
        i = (uint32_t)((page + 1) * 4096 / elem);   /* the next page's first slot */
    }
    return n;
}

static uint32_t reg_hash(int tid) { return ((uint32_t)tid * 2654435761u) & (REG_SIZE - 1); }

static bool registry_ready(void)
{
    if (!reg) {
        hw_spin_lock(&reg_lock);
        if (!joinable)
            joinable = hw_map(JOIN_SIZE * sizeof *joinable);
        if (!reg)
            reg = hw_map(REG_SIZE * sizeof *reg);
        hw_spin_unlock(&reg_lock);
    }
    return reg && joinable;
}

static uint32_t join_hash(uintptr_t pd) { return (uint32_t)((pd >> 6) * 2654435761u) & (JOIN_SIZE - 1); }

/* Add delta to pd's count; an entry whose count reaches 0 is removed (backward shift). A
 * missing entry is created only when `create`: a start, or a detach that may have come before
 * the start (a join of a thread never counted, one created before the shim, changes nothing).
 * reg_lock held. */
static void join_adjust_locked(uintptr_t pd, int delta, bool create, int tid)
{
    uint32_t i = join_hash(pd), n = 0;
    while (joinable[i].pd && joinable[i].pd != pd && n++ < JOIN_SIZE)
        i = (i + 1) & (JOIN_SIZE - 1);
    if (n >= JOIN_SIZE)
        return;  /* full: this thread goes untracked */
    if (!joinable[i].pd) {
        if (!create)
            return;
        touch_page(join_pages, (size_t)i * sizeof *joinable);
        joinable[i].pd = pd;
        joinable[i].count = 0;
        joinable[i].tid = 0;
    }
    if (tid)
        joinable[i].tid = tid;
    joinable[i].count += delta;
    if (joinable[i].count)
        return;
    /* Remove slot i, moving later members of its cluster back into the hole. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & (JOIN_SIZE - 1); joinable[j].pd; j = (j + 1) & (JOIN_SIZE - 1)) {
        uint32_t home = join_hash(joinable[j].pd);
        if (((j - home) & (JOIN_SIZE - 1)) >= ((j - hole) & (JOIN_SIZE - 1))) {
            joinable[hole] = joinable[j];
            hole = j;
        }
    }
    joinable[hole].pd = 0;
    joinable[hole].count = 0;
}

static void join_adjust(uintptr_t pd, int delta, bool create, int tid)
{
    if (!registry_ready())
        return;
    hw_record_enter();  /* a stop must not catch the table half-written */
    hw_spin_lock(&reg_lock);
    join_adjust_locked(pd, delta, create, tid);
    hw_spin_unlock(&reg_lock);
    hw_record_leave();
}

size_t hw_threads_registry_size(void) { return REG_SIZE; }

void hw_threads_each_tp(void (*fn)(uintptr_t tp, void *arg), void *arg)
{
    if (!reg)
        return;
    for (uint32_t i = next_touched(reg_pages, 0, REG_SIZE, sizeof *reg); i < REG_SIZE;
         i = next_touched(reg_pages, i + 1, REG_SIZE, sizeof *reg))
        if (reg[i].tid && reg[i].tp)
            fn(reg[i].tp, arg);
}

void hw_threads_each_joinable(void (*fn)(uintptr_t pd, int tid, void *arg), void *arg)
{
    if (!joinable)
        return;
    for (uint32_t i = next_touched(join_pages, 0, JOIN_SIZE, sizeof *joinable); i < JOIN_SIZE;
         i = next_touched(join_pages, i + 1, JOIN_SIZE, sizeof *joinable))
        if (joinable[i].pd && joinable[i].count > 0)
            fn(joinable[i].pd, joinable[i].tid, arg);
}

void hw_threads_register_stack(void)
{
    if (!registry_ready())
        return;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return;
    int rc = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return;
    int tid = hw_gettid();
    hw_self.stack_lo = (uintptr_t)addr;
    hw_self.stack_hi = (uintptr_t)addr + size;
    hw_record_enter();  /* a stop must not catch the table half-written */
    hw_spin_lock(&reg_lock);
    uint32_t i = reg_hash(tid), n = 0;
    while (reg[i].tid && reg[i].tid != tid && n++ < REG_SIZE)
        i = (i + 1) & (REG_SIZE - 1);
    if (n < REG_SIZE) {
        touch_page(reg_pages, (size_t)i * sizeof *reg);
        reg[i].lo = (uintptr_t)addr;
        reg[i].hi = (uintptr_t)addr + size;
        reg[i].tp = (uintptr_t)pthread_self();
        reg[i].tid = tid;
    }
    hw_spin_unlock(&reg_lock);
    hw_record_leave();
}

void hw_threads_lock_registry(void) { hw_spin_lock(&reg_lock); }
void hw_threads_unlock_registry(void) { hw_spin_unlock(&reg_lock); }

bool hw_threads_stack_of(int tid, uintptr_t *lo, uintptr_t *hi, uintptr_t *tp)
{
    if (!reg)
        return false;
    uint32_t i = reg_hash(tid);
    for (uint32_t n = 0; reg[i].tid && n < REG_SIZE; n++, i = (i + 1) & (REG_SIZE - 1)) {
        if (reg[i].tid == tid) {
            *lo = reg[i].lo;
            *hi = reg[i].hi;
            *tp = reg[i].tp;
            return true;
        }
    }
    return false;
}

/* ---- wrappers ------------------------------------------------------------------------------ */

struct start {
    void *(*fn)(void *);
    void *arg;
    bool joinable;
    _Atomic bool used;
};

/* Threads being started: between pthread_create and its first instruction a thread's argument
 * is held only here, so these slots are a root (kind 'thread_start'); a free slot is zeroed,
 * so that no stale argument is scanned. When every slot is taken, the real malloc serves
 * (unscanned, so such an argument may look leaked for that moment). */
#define STARTS 4096
static struct start *starts;
static _Atomic uint32_t starts_hwm;  /* slots ever used: the root's extent */

static struct start *start_slot(void)
{
    if (!starts) {
        hw_spin_lock(&reg_lock);
        if (!starts)
            starts = hw_map(STARTS * sizeof *starts);
        hw_spin_unlock(&reg_lock);
    }
    for (uint32_t i = 0; starts && i < STARTS; i++) {
        bool expected = false;
        if (atomic_compare_exchange_strong(&starts[i].used, &expected, true)) {
            uint32_t hwm = atomic_load(&starts_hwm);
            while (hwm <= i && !atomic_compare_exchange_weak(&starts_hwm, &hwm, i + 1))
                ;
            return &starts[i];
        }
    }
    struct start *s = hw_real.malloc(sizeof *s);
    if (s)
        atomic_store(&s->used, true);
    return s;
}

static void start_release(struct start *s)
{
    if (starts && s >= starts && s < starts + STARTS) {
        s->fn = NULL;
        s->arg = NULL;
        atomic_store(&s->used, false);
    } else {
        hw_real.free(s);
    }
}

void hw_threads_forget_in_child(void)
{
    /* Only what was ever written: clearing the whole tables made every fork child fault in
     * 1.1 MiB of pages. */
    for (size_t k = 0; joinable && k < sizeof join_pages * 8; k++)
        if (join_pages[k / 64] >> (k % 64) & 1)
            memset((char *)joinable + k * 4096, 0, 4096);
    if (starts)   /* whole: a slot may have been claimed just before the fork, its hwm not yet raised */
        memset(starts, 0, STARTS * sizeof *starts);
    atomic_store(&starts_hwm, 0);
}

void hw_threads_starting(uintptr_t *lo, uintptr_t *hi)
{
    *lo = (uintptr_t)starts;
    *hi = starts ? (uintptr_t)(starts + atomic_load(&starts_hwm)) : 0;
}

static void *thread_start(void *p)
{
    struct start s = *(struct start *)p;
    hw_guard_enter();
    start_release(p);
    if (atomic_load(&hw_state) == HW_ACTIVE) {
        hw_threads_register_stack();
        /* Counted here, not by the creator after pthread_create returns: the thread cannot
         * have exited and been joined before this. */
        if (s.joinable)
            join_adjust((uintptr_t)pthread_self(), 1, true, hw_gettid());
        hw_counts_thread_start();
    }
    hw_guard_leave();
    return s.fn(s.arg);
}

_Atomic bool hw_program_threads;

HW_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    static int (*real_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (!real_create && !(real_create = hw_real_next("pthread_create")))
        return EAGAIN;
    if (!hw_self.guard)   /* the program's own thread, not the shim's helper */
        atomic_store(&hw_program_threads, true);   /* before the thread can count anything */
    if (!hw_active() || !hw_real.malloc)
        return real_create(th, attr, fn, arg);
    if (!hw_self.guard) {
        hw_trigger_before_thread();   /* a helper left for later starts now */
        hw_counts_thread_start();     /* this thread counts alongside the new one from now on */
    }
    hw_guard_enter();
    struct start *s = start_slot();
    hw_guard_leave();
    if (!s)
        return real_create(th, attr, fn, arg);
    s->fn = fn;
    s->arg = arg;
    int detach = PTHREAD_CREATE_JOINABLE;
    if (attr)
        pthread_attr_getdetachstate(attr, &detach);
    s->joinable = detach == PTHREAD_CREATE_JOINABLE;
    int rc = real_create(th, attr, thread_start, s);
    if (rc != 0)
        start_release(s);
    return rc;
}

/* C11's thrd_create reaches glibc's pthread_create internally, past the wrapper above: a
 * helper left for later (trigger.h) starts here all the same. */
HW_EXPORT int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
    static int (*real_thrd)(thrd_t *, thrd_start_t, void *);
    if (!real_thrd && !(real_thrd = hw_real_next("thrd_create")))
        return thrd_error;
    if (!hw_self.guard && hw_active() && hw_real.malloc)
        hw_trigger_before_thread();
    return real_thrd(thr, fn, arg);
}

/* A joined or detached thread's descriptor is no longer a root (roots.c). */
#define JOIN_OR_DETACH(name, params, args, detach)                           \
    HW_EXPORT int name params                                                \
    {                                                                        \
        static int (*real) params;                                           \
        if (!real && !(real = hw_real_next(#name)))                          \
            return ENOSYS;                                                   \
        int rc = real args;                                                  \
        if (rc == 0 && atomic_load(&hw_state) == HW_ACTIVE)                  \
            join_adjust((uintptr_t)th, -1, detach, 0);                       \
        return rc;                                                           \
    }
JOIN_OR_DETACH(pthread_join, (pthread_t th, void **ret), (th, ret), false)
JOIN_OR_DETACH(pthread_tryjoin_np, (pthread_t th, void **ret), (th, ret), false)
JOIN_OR_DETACH(pthread_timedjoin_np, (pthread_t th, void **ret, const struct timespec *t), (th, ret, t), false)
JOIN_OR_DETACH(pthread_clockjoin_np, (pthread_t th, void **ret, clockid_t c, const struct timespec *t), (th, ret, c, t), false)
JOIN_OR_DETACH(pthread_detach, (pthread_t th), (th), true)

/* The suspend signal stays deliverable whatever mask the application installs: returns set,
 * or *copy without the suspend signal. The shim's own calls (guard set: the libunwind fallback saving and
 * restoring the mask around dl_iterate_phdr) pass through untouched, or restoring a mask the
 * application set with a raw rt_sigprocmask would unblock the signal behind its back. */
static const sigset_t *without_suspend(const sigset_t *set, sigset_t *copy)
{
    if (!set || hw_self.guard || atomic_load(&hw_state) != HW_ACTIVE || !sigismember(set, HW_SUSPEND_SIGNAL))
        return set;
    *copy = *set;
    hw_stw_unblock_in(copy);
    return copy;
}

HW_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    static int (*real)(int, const sigset_t *, sigset_t *);
    if (!real && !(real = hw_real_next("pthread_sigmask")))
        return EINVAL;
    sigset_t copy;
    return real(how, how == SIG_UNBLOCK ? set : without_suspend(set, &copy), old);
}

HW_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    static int (*real)(int, const sigset_t *, sigset_t *);
    if (!real && !(real = hw_real_next("sigprocmask")))
        return errno = ENOSYS, -1;
    sigset_t copy;
    return real(how, how == SIG_UNBLOCK ? set : without_suspend(set, &copy), old);
}

HW_EXPORT int sigsuspend(const sigset_t *set)
{
    static int (*real)(const sigset_t *);
    if (!real && !(real = hw_real_next("sigsuspend")))
        return errno = ENOSYS, -1;
    sigset_t copy;
    return real(without_suspend(set, &copy));
}

/* An application handler for the snapshot signal replaces ours: say so once. */
HW_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    static int (*real)(int, const struct sigaction *, struct sigaction *);
    if (!real && !(real = hw_real_next("sigaction")))
        return errno = ENOSYS, -1;
    if (!hw_self.guard && hw_trigger_sigaction(sig, act, old))
        return 0;
    int rc = real(sig, act, old);
    if (rc == 0 && act && !hw_self.guard)
        hw_trigger_signal_taken_over(sig, old);
    return rc;
}

HW_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    struct sigaction sa, old;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, sig);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;  /* glibc's signal(): BSD semantics */
    if (sigaction(sig, &sa, &old) < 0)
        return SIG_ERR;
    return old.sa_handler;
}
