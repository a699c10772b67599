/* This file implements helperstart.h: whether a signal handler may start the helper thread in
 * a single-threaded program, and the timer that asks again.
 *
 * What pthread_create needs that an interrupted thread could be in the middle of: the
 * allocator (the thread's TLS and DTV come from calloc, which glibc runs without a lock while
 * the process has one thread), the dynamic linker's TLS lists, and the shim's own state. The
 * interrupted pc and every return address on the thread's stack tell which code it is in;
 * a return address into a signal trampoline below the innermost frame says the thread was
 * already in a handler, which may itself have interrupted malloc. Inside libc only two
 * places are trusted, by the instruction and rax the signal frame holds: a waiting system
 * call, and the return of one that sent or unblocked a signal; malloc makes neither. Who
 * sent the signal does not matter: one the thread sent itself while it was blocked (from a
 * handler with a full mask) is delivered wherever that handler had interrupted, malloc
 * included. All of it holds only while glibc counts one thread: with more, glibc takes
 * locks that the interrupted thread may hold, and the helper then starts at an allocation.
 * Context: SIGSAFE. */
#define _GNU_SOURCE
#include "helperstart.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/single_threaded.h>
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

/* System calls that may wait for something outside the process, which neither malloc nor
 * free nor the dynamic linker makes (theirs are brk, mmap, munmap, mremap, madvise,
 * mprotect, getrandom; fork's clone is left out too). futex is in: with one thread, no lock
 * of glibc's can be contended, so a futex wait is the program's own (a process-shared
 * semaphore, a condition). */
static bool waits(long nr)
{
    switch (nr) {
    case SYS_read: case SYS_write: case SYS_readv: case SYS_writev: case SYS_pread64: case SYS_pwrite64:
    case SYS_preadv: case SYS_pwritev: case SYS_preadv2: case SYS_pwritev2:
    case SYS_recvfrom: case SYS_recvmsg: case SYS_recvmmsg: case SYS_sendto: case SYS_sendmsg: case SYS_sendmmsg:
    case SYS_accept: case SYS_accept4: case SYS_connect: case SYS_wait4: case SYS_waitid:
    case SYS_poll: case SYS_ppoll: case SYS_select: case SYS_pselect6:
    case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_epoll_pwait2: case SYS_nanosleep: case SYS_clock_nanosleep:
    case SYS_restart_syscall: case SYS_pause: case SYS_rt_sigsuspend: case SYS_rt_sigtimedwait:
    case SYS_msgrcv: case SYS_msgsnd: case SYS_semop: case SYS_semtimedop: case SYS_flock: case SYS_fcntl:
    case SYS_futex: case SYS_open: case SYS_openat: case SYS_ioctl: case SYS_mq_timedreceive: case SYS_mq_timedsend:
    case SYS_io_getevents: case SYS_io_pgetevents: case SYS_splice: case SYS_tee: case SYS_sendfile:
        return true;
    default:
        return false;
    }
}

/* System calls after whose success a pending signal is delivered at once: unblocking it, or
 * sending it to oneself (raise, kill, pthread_kill). malloc makes none of them. */
static bool sends_or_unblocks(uint32_t nr)
{
    return nr == SYS_rt_sigprocmask || nr == SYS_kill || nr == SYS_tkill || nr == SYS_tgkill ||
           nr == SYS_rt_sigqueueinfo || nr == SYS_rt_tgsigqueueinfo;
}

/* The text [lo, hi) of libc or of the real allocator's module that holds pc; false if neither. */
static bool libc_text(uintptr_t pc, uintptr_t *lo, uintptr_t *hi)
{
    *lo = hw_libc_text_lo, *hi = hw_libc_text_hi;
    if (in_range(pc, *lo, *hi))
        return true;
    *lo = hw_malloc_text_lo, *hi = hw_malloc_text_hi;
    return in_range(pc, *lo, *hi);
}

/* Where in a system call of libc's (or the allocator's) the interrupted thread is. */
enum syscall_state {
    NOT_IN_SYSCALL,
    IN_OTHER_SYSCALL,   /* at or just past a `syscall` instruction, none of the below */
    WAITING,            /* at a `syscall` of a waiting call (about to enter it, or rewound by
                         * the kernel to restart it after the handler), or just past one that
                         * the signal ended with EINTR (only a wait ends so) */
    SIGNAL_SENT,        /* just past a successful `mov $NR, %eax; syscall` that unblocked or
                         * sent a signal: where glibc's raise, kill and sigprocmask deliver */
};

static enum syscall_state syscall_state(uintptr_t pc, long rax)
{
    uintptr_t lo, hi;
    if (!libc_text(pc, &lo, &hi))
        return NOT_IN_SYSCALL;
    const uint8_t *ip = (const uint8_t *)pc;
    bool at = pc + 2 <= hi && ip[0] == 0x0f && ip[1] == 0x05;
    bool past = pc - 2 >= lo && ip[-2] == 0x0f && ip[-1] == 0x05;
    if (at && waits(rax))
        return WAITING;
    if (past && rax == -EINTR)
        return WAITING;
    if (past && rax == 0 && pc - 7 >= lo && ip[-7] == 0xb8) {
        uint32_t nr;
        memcpy(&nr, ip - 6, sizeof nr);
        if (sends_or_unblocks(nr))
            return SIGNAL_SENT;
    }
    return at || past ? IN_OTHER_SYSCALL : NOT_IN_SYSCALL;
}

bool hw_helperstart_safe(const void *ucv, uintptr_t restorer)
{
    const ucontext_t *uc = ucv;
    /* With a second thread glibc takes its locks, which this thread may hold where it was:
     * pthread_create's calloc would wait for itself. */
    if (!uc || !__libc_single_threaded || hw_self.guard || hw_self.in_record || !hw_unwind_lockfree())
        return false;
    const greg_t *g = uc->uc_mcontext.gregs;
    uintptr_t pc = (uintptr_t)g[REG_RIP], sp = (uintptr_t)g[REG_RSP];
    uintptr_t lo = hw_self.stack_lo, hi = hw_self.stack_hi;
    if (!lo || sp < lo || sp >= hi)
        return false;   /* an alternate signal stack, a coroutine's: inside something else */
    if (in_shim_or_loader(pc))
        return false;
    uintptr_t text_lo, text_hi;
    if (libc_text(pc, &text_lo, &text_hi)) {
        enum syscall_state st = syscall_state(pc, (long)g[REG_RAX]);
        if (st != WAITING && st != SIGNAL_SENT)
            return false;
    }
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
    /* A thread that computes is looked at again soon: a signal costs it a few microseconds. One
     * in a system call may be waiting, and would have its wait ended early each time
     * (sigsuspend returns): it is looked at twice as late each time. */
    const ucontext_t *uc = ucv;
    long ns = RETRY_NS;
    if (uc && syscall_state((uintptr_t)uc->uc_mcontext.gregs[REG_RIP], (long)uc->uc_mcontext.gregs[REG_RAX]) != NOT_IN_SYSCALL) {
        ns = wait_retry_ns;
        wait_retry_ns = wait_retry_ns * 2 < RETRY_WAIT_MAX_NS ? wait_retry_ns * 2 : RETRY_WAIT_MAX_NS;
    }
    struct itimerspec its = { .it_value = { 0, ns } };
    syscall(SYS_timer_settime, retry_timer, 0, &its, NULL);
}
