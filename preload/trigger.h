/* trigger.h: when snapshots are taken. The helper thread, the trigger signal
 * (HEAPWATCH_SIGNAL), `heapwatch snap` requests and the interval timer (HEAPWATCH_INTERVAL)
 * live in trigger.c; taking one snapshot is snapshot.c's (snapshot.h). The numbered requests
 * (requested/served) are kept here; snapshot.c claims and serves them as it takes a snapshot.
 * Unless marked, every function runs guarded. */
#ifndef HW_TRIGGER_H
#define HW_TRIGGER_H

#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "hw.h"

/* Start the helper thread (or, in a process glibc knows to be single-threaded, with no
 * interval and no event log, leave it until it is needed: helperstart.h), then install the
 * trigger signal's handler; once, at the end of hw_snapshot_start. Each failure is said once
 * on stderr: without a helper only API and exit snapshots are taken. */
void hw_trigger_start(void);
/* A snapshot request from `heapwatch snap` (the suspend signal with HW_SNAP_REQUEST), or the
 * retry timer's signal (HW_SNAP_RETRY, retry true): stw.c's handler calls it, given to
 * hw_stw_init, with the interrupted thread's ucontext and the handler's return address.
 * Context: SIGSAFE. */
void hw_trigger_request(bool retry, void *uc, uintptr_t restorer) HW_SIGSAFE;
/* The program starts a thread (pthread_create, unguarded): a helper left for later starts
 * first, as malloc is about to take its locks anyway. */
void hw_trigger_before_thread(void);
/* A request waits for the helper, which the handler could not start where the thread was:
 * the allocation hooks' slow paths call hw_trigger_at_allocation outside the real allocator
 * (from_loader: the dynamic linker asked, holding its locks) to start it there. */
extern HW_INTERNAL _Atomic bool hw_trigger_helper_wanted;
void hw_trigger_start_wanted(void);
static inline void hw_trigger_at_allocation(bool from_loader)
{
    if (HW_UNLIKELY(atomic_load_explicit(&hw_trigger_helper_wanted, memory_order_relaxed)) &&
        !hw_self.guard && !hw_self.in_record && !from_loader)
        hw_trigger_start_wanted();
}
/* The application installed a handler for sig, or SIG_IGN (sigaction/signal wrappers; old is
 * what the real sigaction reported): if the shim had sig for snapshots, say once that
 * snapshots on signal are off, and report to the program what it had set. Context: SIGSAFE. */
void hw_trigger_signal_taken_over(int sig, struct sigaction *old) HW_SIGSAFE;
/* The program's sigaction for sig, while the shim's handler holds it as the trigger signal:
 * setting SIG_DFL, or asking, is answered here (true), keeping the shim's handler, which
 * stands for the default the program had when the shim took the signal: the program is told
 * what it set last (SIG_DFL at first). So a program (git, xargs, Python's subprocess) that
 * resets every signal to its default, often in a child about to exec, costs no message and
 * keeps snapshots on signal. False otherwise: the real sigaction follows. Context: SIGSAFE. */
bool hw_trigger_sigaction(int sig, const struct sigaction *act, struct sigaction *old) HW_SIGSAFE;

/* The helper thread: whether it runs, and its tid (the stop-the-world leaves it running; it
 * blocks every signal). Context: SIGSAFE. */
bool hw_trigger_helper_running(void) HW_SIGSAFE;
/* The helper thread's thread pointer (pthread_self), 0 until it runs: its tcache is glibc's
 * too (arena mode, mark.c). Context: SIGSAFE. */
uintptr_t hw_trigger_helper_tp(void) HW_SIGSAFE;
int hw_trigger_helper_tid(void) HW_SIGSAFE;
/* Ask the helper to wait for the walk child still checkpointing (an application thread's
 * snapshot, which does not wait itself). Context: SIGSAFE. */
void hw_trigger_wake_for_checkpoint(void) HW_SIGSAFE;
/* Ask the helper to drain the event log now (a thread has filled several blocks). */
void hw_trigger_wake_for_events(void) HW_SIGSAFE;

/* Requests, for hw_snapshot_take under its write_lock. A snapshot claims the requests made so
 * far if it is a signal snapshot (signal true), none otherwise; hw_trigger_claimed_served
 * then says whether another snapshot already served all it claimed (nothing left to do). */
void hw_trigger_claim(bool signal);
bool hw_trigger_claimed_served(void);
/* The claimed requests are served: the world is stopped, or the counters read, or the
 * snapshot was given up. Wakes the threads that signalled themselves and wait in the
 * handler. Context: SIGSAFE (called with the world stopped). */
void hw_trigger_mark_served(void) HW_SIGSAFE;
/* Let the threads waiting in the trigger's handler for their own signal's snapshot go on
 * before it is taken: one may hold a lock the snapshot needs (it was interrupted inside
 * malloc with an arena locked). Context: SIGSAFE. */
void hw_trigger_release_waiters(void) HW_SIGSAFE;
/* No snapshot will come (exit): every request made so far is served. write_lock held. */
void hw_trigger_serve_all(void);
/* Whether a request is still unserved (at exit, the exiting thread takes it). */
bool hw_trigger_pending(void);

/* In a fork child (atfork child handler, single-threaded): the parent's pipe and requests
 * are the parent's; forget them. Later in the same handler, hw_trigger_restart_in_child
 * starts the child's own helper (start: false after the exit snapshot). */
void hw_trigger_forget_in_child(void);
void hw_trigger_restart_in_child(bool start);

#endif
