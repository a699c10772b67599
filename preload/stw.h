/* stw.h: stopping the world in-process, with a signal handshake (NOTES-shim.md section 7).
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
 * HW_SNAP_REQUEST, asks for a snapshot (`heapwatch snap PID`). */
#ifndef HW_STW_H
#define HW_STW_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <ucontext.h>
#include "hw.h"

/* Bytes below a thread's stack pointer that the x86-64 ABI lets leaf code use (the red
 * zone): live data for a thread interrupted by a signal. */
#define HW_RED_ZONE 128

#define HW_SUSPEND_SIGNAL (SIGRTMAX - 3)
#define HW_SNAP_REQUEST 0x68770001

enum hw_thread_state {
    HW_T_SIGNALED = 1,  /* signal sent, not parked yet */
    HW_T_STOPPED,       /* parked in the handler or at a safepoint */
    HW_T_GONE,          /* exited (or a zombie) before it could park */
    HW_T_UNSTOPPED,     /* did not park in time; it runs on */
    HW_T_CALLER,        /* the thread that stopped the world */
};

struct hw_stopped_thread {
    int tid;
    _Atomic int state;
    uintptr_t sp, pc;            /* where it was interrupted */
    uintptr_t regs_lo, regs_hi;  /* its saved registers: the signal frame, or a ucontext */
    uintptr_t tp;                /* thread pointer (pthread_self) */
    uintptr_t alt_lo, alt_hi;    /* sigaltstack buffer, 0 if none */
    ucontext_t *uc;              /* saved context, valid while stopped */
    bool signal_frame;           /* stopped by the signal: uc is the kernel's frame, and the
                                  * 128-byte red zone below sp may hold live data */
};

struct hw_world {
    struct hw_stopped_thread *threads;  /* nr entries, in the order found */
    uint32_t nr;
    uint32_t unstopped;
};

/* Install the suspend handler; request_fn is called (in a signal handler) for snapshot
 * requests from other processes. False if the signal could not be taken. */
bool hw_stw_init(void (*request_fn)(void));
/* Stop every thread but the caller and `except_tid` (the shim's helper, which blocks all
 * signals). When the caller is an application thread, caller_uc holds its registers (from
 * getcontext in a frame that stays live), caller_sp is where its own stack starts (the
 * shim's frames below it are not scanned) and it is listed as HW_T_CALLER; NULL when the
 * caller is the shim's helper, which is not part of the application. Waits at
 * most timeout_ms for threads that do not park. Never fails: threads that could not be
 * stopped are reported as HW_T_UNSTOPPED. */
void hw_stw_stop(struct hw_world *w, int except_tid, ucontext_t *caller_uc, uintptr_t caller_sp, int timeout_ms);
void hw_stw_resume(void) HW_SIGSAFE;

/* Remove the suspend signal from a mask the application is about to install, so that no
 * application thread can refuse to stop. */
void hw_stw_unblock_in(sigset_t *set) HW_SIGSAFE;

/* getcontext for a heap walk: keep only what can hold a live value across a call (the
 * callee-saved registers, stack and instruction pointers); argument and scratch registers
 * would carry stale pointers and hide leaks. Context: SIGSAFE. */
void hw_stw_clean_context(ucontext_t *uc) HW_SIGSAFE;
/* The calling thread's registers for a snapshot or a safepoint: a macro, so that getcontext
 * runs in the caller's own frame, which stays live while the world is stopped. */
#define HW_CALLER_CONTEXT(uc) (getcontext(uc), hw_stw_clean_context(uc))

/* The safepoint: called when the thread leaves the shim with a stop pending. */
void hw_stw_safepoint(void) HW_SIGSAFE;

#endif
