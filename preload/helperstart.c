/* This file implements helperstart.h: whether a signal handler may start the helper thread in
 * a single-threaded program, and the timer that asks again.
 *
 * What pthread_create needs that an interrupted thread could be in the middle of: the
 * allocator (the thread's TLS and DTV come from calloc, which glibc runs without a lock while
 * the process has one thread), the dynamic linker's TLS lists, and the shim's own state. The
 * interrupted pc and every return address on the thread's stack tell which code it is in;
 * a return address into a signal trampoline below the innermost frame says the thread was
 * already in a handler, which may itself have interrupted malloc. Only glibc's own
 * waiting system calls are trusted inside libc: malloc and the dynamic linker make none of
 * them (their brk, mmap and file reads never wait interruptibly).
 * Context: SIGSAFE. */
#define _GNU_SOURCE
#include "helperstart.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include "record.h"
#include "stw.h"
#include "sys.h"
#include "unwind.h"

#define RETRY_NS 2000000             /* a request that could not start the helper is retried this late */
#define RETRY_WAIT_MAX_NS 500000000  /* ... and up to this late while the thread waits */
#define SCAN_FRAMES 256       /* frames looked at; a deeper stack is not judged */

static bool in_range(uintptr_t pc, uintptr_t lo, uintptr_t hi)
{
    return pc >= lo && pc < hi;
}

static bool in_shim_or_loader(uintptr_t pc)
{
    return in_range(pc, hw_self_text_lo, hw_self_text_hi) || hw_from_loader((const void *)pc);
}

static bool in_libc_or_allocator(uintptr_t pc)
{
    return in_range(pc, hw_libc_text_lo, hw_libc_text_hi) || in_range(pc, hw_malloc_text_lo, hw_malloc_text_hi);
}

/* System calls that wait for something outside the process. malloc, free and the dynamic
 * linker make none of them; futex is left out, as a lock's wait is one. */
static bool waits(long nr)
{
    switch (nr) {
    case SYS_read: case SYS_write: case SYS_readv: case SYS_writev: case SYS_pread64: case SYS_pwrite64:
    case SYS_recvfrom: case SYS_recvmsg: case SYS_recvmmsg: case SYS_sendto: case SYS_sendmsg:
    case SYS_accept: case SYS_accept4: case SYS_connect: case SYS_wait4: case SYS_waitid:
    case SYS_poll: case SYS_ppoll: case SYS_select: case SYS_pselect6:
    case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_nanosleep: case SYS_clock_nanosleep:
    case SYS_restart_syscall: case SYS_pause: case SYS_rt_sigsuspend: case SYS_rt_sigtimedwait:
    case SYS_msgrcv: case SYS_msgsnd: case SYS_semop: case SYS_semtimedop: case SYS_flock:
        return true;
    default:
        return false;
    }
}

/* The interrupted thread waits in (or is about to enter) such a system call: its pc is at a
 * `syscall` instruction with a waiting call's number in rax (about to enter it, or rewound by
 * the kernel to restart it after the handler), or just past one that the signal ended with
 * EINTR (only a wait ends so). Only libc's and the real allocator's code is looked at. */
static bool waiting_in_syscall(uintptr_t pc, long rax)
{
    uintptr_t lo = hw_libc_text_lo, hi = hw_libc_text_hi;
    if (!in_range(pc, lo, hi)) {
        lo = hw_malloc_text_lo;
        hi = hw_malloc_text_hi;
    }
    if (!in_range(pc, lo, hi))
        return false;
    const uint8_t *ip = (const uint8_t *)pc;
    if (pc + 2 <= hi && ip[0] == 0x0f && ip[1] == 0x05 && waits(rax))
        return true;
    return rax == -EINTR && pc - 2 >= lo && ip[-2] == 0x0f && ip[-1] == 0x05;
}

bool hw_helperstart_safe(const void *ucv, uintptr_t restorer, bool self)
{
    const ucontext_t *uc = ucv;
    if (!uc || hw_self.guard || hw_self.in_record || !hw_unwind_lockfree())
        return false;
    const greg_t *g = uc->uc_mcontext.gregs;
    uintptr_t pc = (uintptr_t)g[REG_RIP], sp = (uintptr_t)g[REG_RSP];
    uintptr_t lo = hw_self.stack_lo, hi = hw_self.stack_hi;
    if (!lo || sp < lo || sp >= hi)
        return false;   /* an alternate signal stack, a coroutine's: inside something else */
    if (in_shim_or_loader(pc))
        return false;
    if (in_libc_or_allocator(pc) && !self && !waiting_in_syscall(pc, (long)g[REG_RAX]))
        return false;
    uintptr_t pcs[SCAN_FRAMES], cfas[SCAN_FRAMES];
    struct hw_unwind_regs start = { .pc = pc, .sp = sp, .rbp = (uintptr_t)g[REG_RBP], .exact = true };
    uint32_t n = hw_unwind_frames(&start, lo, hi, pcs, cfas, SCAN_FRAMES);
    if (n == SCAN_FRAMES)
        return false;
    for (uint32_t i = 1; i < n; i++)
        if (pcs[i] == restorer || hw_from_loader((const void *)pcs[i]))
            return false;
    return true;
}

static int retry_timer;
static pid_t retry_pid;   /* the process whose timer retry_timer is: timers do not survive fork */
static long wait_retry_ns;

void hw_helperstart_retry_later(const void *ucv)
{
    pid_t pid = getpid();
    if (retry_pid != pid) {
        struct sigevent sev;
        memset(&sev, 0, sizeof sev);
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = HW_SUSPEND_SIGNAL;
        sev.sigev_value.sival_int = HW_SNAP_RETRY;
        sev._sigev_un._tid = hw_gettid();   /* sigev_notify_thread_id, which glibc 2.36 does not name */
        int id;
        if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id) < 0)
            return;   /* the thread's next allocation still starts the helper */
        retry_timer = id;
        retry_pid = pid;
        wait_retry_ns = RETRY_NS;
    }
    /* A thread that computes is looked at again soon: a signal costs it a few microseconds. A
     * waiting one would have its wait ended early each time (sigsuspend returns): it is
     * looked at twice as late each time. */
    const ucontext_t *uc = ucv;
    long ns = RETRY_NS;
    if (uc && waiting_in_syscall((uintptr_t)uc->uc_mcontext.gregs[REG_RIP], (long)uc->uc_mcontext.gregs[REG_RAX])) {
        ns = wait_retry_ns;
        wait_retry_ns = wait_retry_ns * 2 < RETRY_WAIT_MAX_NS ? wait_retry_ns * 2 : RETRY_WAIT_MAX_NS;
    }
    struct itimerspec its = { .it_value = { 0, ns } };
    syscall(SYS_timer_settime, retry_timer, 0, &its, NULL);
}
