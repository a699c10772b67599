/* stw.h: stopping the world in-process, with a signal handshake: Boehm GC's (bdwgc
 * pthread_stop_world.c: signal every thread, each parks in the handler with its registers
 * saved, the stopper waits for every acknowledgement), no ptrace, so it works in containers
 * and under gdb or strace.
 *
 * The stopper lists the threads from /proc/self/task (raw getdents64: no allocation), sends
 * each the suspend signal with tgkill and waits for every one to park in the handler, where
 * its registers sit in the kernel's signal frame on its own stack; it relists until no new
 * thread appears. A thread interrupted inside the shim's recording (live table, stack depot,
 * counters) does not park there: it parks when it leaves the shim (a safepoint), so a stopped
 * world never has a half-recorded allocation and needs no lock of the shim's own.
 *
 * While the world is stopped the stopper must not take any lock another thread may hold: no
 * malloc, no stdio, no mutexes; only system calls and the shim's own mappings.
 *
 * The same real-time signal, sent from another process with sigqueue and the value
 * HW_SNAP_REQUEST, asks for a snapshot (`heapwatch snap PID`); sent by the shim's own timer
 * with HW_SNAP_RETRY, it asks again to start the helper thread for one (helperstart.h). */
#ifndef HW_STW_H
#define HW_STW_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "hw.h"

/* Bytes below a thread's stack pointer that the x86-64 ABI lets leaf code use (the red
 * zone): live data for a thread interrupted by a signal. */
#define HW_RED_ZONE 128

#define HW_SUSPEND_SIGNAL (SIGRTMAX - 3)
#define HW_SNAP_REQUEST 0x68770001
#define HW_SNAP_RETRY   0x68770002   /* helperstart.c's timer: a request waits for its helper */

enum hw_thread_state {
    HW_T_SIGNALED = 1,  /* signal sent, not parked yet */
    HW_T_STOPPED,       /* parked in the handler or at a safepoint */
    HW_T_GONE,          /* exited (or a zombie) before it could park */
    HW_T_UNSTOPPED,     /* did not park in time; it runs on */
    HW_T_CALLER,        /* the thread that stopped the world */
};

/* Callee-saved registers of a thread that stops itself (an API caller, a safepoint), with
 * the stack pointer and pc where it did: what its callers may hold live across the call.
 * Argument and scratch registers are dead across a call and are not kept: stale pointers
 * there would hide leaks. */
struct hw_saved_regs {
    uintptr_t rbx, rbp, r12, r13, r14, r15;
    uintptr_t sp, pc;
};
#define HW_SAVED_REG_WORDS 6  /* the words of hw_saved_regs that are registers to scan */

/* Save the calling function's callee-saved registers and where it is into *r (a macro, so
 * that it runs in that function's own frame). Context: SIGSAFE. */
#define HW_SAVE_REGS(r)                                                                   \
    __asm__ volatile("movq %%rbx, 0(%0)\n\tmovq %%rbp, 8(%0)\n\tmovq %%r12, 16(%0)\n\t"     \
                     "movq %%r13, 24(%0)\n\tmovq %%r14, 32(%0)\n\tmovq %%r15, 40(%0)\n\t"   \
                     "movq %%rsp, 48(%0)\n\tleaq 0(%%rip), %%rax\n\tmovq %%rax, 56(%0)"      \
                     : : "r"(r) : "rax", "memory")

/* The thread that asks for a stop, when it is an application thread (API, exit). */
struct hw_caller {
    uintptr_t sp;                  /* its own stack starts here: the shim's frames below are not scanned */
    struct hw_saved_regs regs;     /* at its call into the shim */
    bool have_regs;                /* false at exit: nothing the program held in registers is live */
};

struct hw_stopped_thread {
    int tid;
    _Atomic int state;
    uintptr_t sp, pc, rbp;       /* where it was interrupted, or stopped itself */
    bool exact_pc;               /* pc is the interrupted instruction (a signal), not a return address */
    uintptr_t regs_lo, regs_hi;  /* its saved general registers: the signal frame's, or `saved` */
    uintptr_t fpu_lo, fpu_hi;    /* its FPU/SSE/AVX state in the signal frame, 0 if none */
    uintptr_t saved[HW_SAVED_REG_WORDS];  /* callee-saved registers of a thread that stopped itself */
    uintptr_t tp;                /* thread pointer (pthread_self) */
    uintptr_t alt_lo, alt_hi;    /* sigaltstack buffer, 0 if none */
    bool signal_frame;           /* stopped by the signal: the 128-byte red zone below sp may
                                  * hold live data */
};

struct hw_world {
    struct hw_stopped_thread *threads;  /* nr entries, in the order found */
    uint32_t nr;
    uint32_t unstopped;
};

/* Install the suspend handler; request_fn is called (in a signal handler) for snapshot
 * requests from other processes (retry false) and for helperstart.c's timer (retry true),
 * with the interrupted thread's ucontext and the handler's return address (the signal
 * trampoline). False if the signal could not be taken. */
typedef void hw_stw_request_fn(bool retry, void *uc, uintptr_t restorer);
bool hw_stw_init(hw_stw_request_fn *request_fn);
/* Stop every thread but the caller and `except_tid` (the shim's helper, which blocks all
 * signals). When the caller is an application thread, `caller` says where its stack starts
 * and holds its registers, and it is listed as HW_T_CALLER; NULL when the caller is the
 * shim's helper, which is not part of the application. Waits at most timeout_ms for threads
 * that do not park. Never fails: threads that could not be stopped are reported as
 * HW_T_UNSTOPPED. */
void hw_stw_stop(struct hw_world *w, int except_tid, const struct hw_caller *caller, int timeout_ms);
void hw_stw_resume(void) HW_SIGSAFE;

/* Remove the suspend signal from a mask the application is about to install, so that no
 * application thread can refuse to stop. */
void hw_stw_unblock_in(sigset_t *set) HW_SIGSAFE;

/* The safepoint: called when the thread leaves the shim with a stop pending. */
void hw_stw_safepoint(void) HW_SIGSAFE;

#endif
