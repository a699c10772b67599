/* forkgate.h: keeps fork() from splitting a block's record between parent and child.
 *
 * Arena mode records a block in the block itself (cookie.h) and in its stack's counters,
 * around the real allocator's call: a malloc is glibc's chunk, then its cookie and record,
 * then its count; a free is its count, then its cookie cleared, then glibc's free. A fork
 * child inherits another thread's heap as it was at the fork, but never that thread, which
 * vanishes in the child: caught between two of those steps, a block is counted and not in
 * the heap, or in the heap as a plain block and not counted, for ever. (The live table had
 * the same problem, solved by holding its locks across the fork: the record and the count
 * changed under one lock. Here there is no lock on that path, and one taken per malloc and
 * free is what this design exists to avoid.)
 *
 * So each thread marks the steps as a window, and fork's prepare handler closes a gate and
 * waits until every other thread is out of its window; a thread that finds the gate closed
 * waits outside until the fork is done. The thread's side is two plain stores and a load:
 * an asymmetric fence (membarrier(2), as userspace RCU does) on the forking side orders them
 * against the gate; where membarrier is refused, the thread's side takes a full fence.
 * The forking thread's own windows pass the gate: its prepare handler, glibc's fork and the
 * atfork handlers that run between ours may free and allocate.
 * A window calls nothing but the real allocator, the block's own words, the counters, the
 * event log and, for a chunk glibc mmapped, the live table (whose locks the prepare handler
 * takes after the gate), so the wait is short; a thread stopped inside one (a debugger)
 * delays a fork by at most a second, then the fork goes on. The shim's prepare handler is
 * registered at the first allocation, before any other, so that it runs after every other
 * prepare handler (a thread at the gate may hold a lock such a handler takes); glibc's fork
 * itself takes locks after it, which the gate's bounded wait (hw_forkgate_wait) covers.
 * Context: HOOKSAFE; a window may nest (a signal handler's malloc inside one). */
#ifndef HW_FORKGATE_H
#define HW_FORKGATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include "hw.h"

/* Forks in their prepare handler now (closed while nonzero). */
extern HW_INTERNAL _Atomic int hw_fork_gate;
/* membarrier(2) was refused: the thread's side needs its own full fence. */
extern HW_INTERNAL bool hw_fork_gate_fenced;

/* Register for membarrier; once, at initialisation (after hw_threads_init). */
void hw_forkgate_init(void) HW_HOOKSAFE;
/* hw_window_open and hw_window_close for a thread without a slot of its own (not registered
 * yet, or beyond the registry's own slots: their shared slot takes atomic additions). */
void hw_window_open_slow(void) HW_HOOKSAFE;
void hw_window_close_slow(void) HW_HOOKSAFE;
/* The gate was closed: wait (outside the window) until no fork is preparing; false when
 * that took too long (20 ms; at once if this thread gave up on the same closing before), and
 * the window opens anyway. A thread waiting here may
 * hold a lock that the forking thread takes after the shim's prepare handler (glibc's stdio
 * list lock, which a thread flushing every stream holds while it waits for a stream's lock
 * held by a thread inside getline's malloc): a fork child may then inherit that one block
 * half-recorded, where waiting on would hang the program. */
bool hw_forkgate_wait(void) HW_HOOKSAFE;
/* Take spin lock l, which fork's prepare handler holds until the fork is done (the stack
 * depot's, the event log's), unless a fork holds it and the gate's bounded wait gives up:
 * false then, and the caller does without (a stack not interned, an event not logged). A
 * thread that waited for it for ever may hold what the fork takes after the shim's handler:
 * in t7000's stdio case a reader inside getline's malloc holds its stream and waits for the
 * depot, a thread in fflush(NULL) holds glibc's list lock and waits for that stream, and fork
 * waits for the list lock. */
bool hw_spin_lock_or_fork(_Atomic int *l) HW_HOOKSAFE;
/* Set by fork's prepare handler once it holds those locks, cleared before it releases them. */
extern HW_INTERNAL _Atomic bool hw_fork_holds_locks;

/* The thread's own slot is written by the thread alone, with one unlocked instruction (a
 * signal handler's window runs between two instructions and leaves the count as it found
 * it); the forking thread only reads it. */
static inline void hw_window_open(void)
{
    int *w = hw_self.window;
    if (HW_UNLIKELY(!w)) {
        hw_window_open_slow();
        return;
    }
    for (;;) {
        int outer = *(volatile int *)w;
        __asm__ volatile("incl %0" : "+m"(*w));
        if (outer)
            return;   /* nested: the outer window already passed the gate */
        if (HW_UNLIKELY(hw_fork_gate_fenced))
            atomic_thread_fence(memory_order_seq_cst);
        else
            atomic_signal_fence(memory_order_seq_cst);
        if (HW_LIKELY(!atomic_load_explicit(&hw_fork_gate, memory_order_relaxed)) || hw_self.forking)
            return;
        __asm__ volatile("decl %0" : "+m"(*w) : : "memory");
        if (!hw_forkgate_wait()) {
            __asm__ volatile("incl %0" : "+m"(*w) : : "memory");
            return;
        }
    }
}

static inline void hw_window_close(void)
{
    int *w = hw_self.window;
    if (HW_UNLIKELY(!w)) {
        hw_window_close_slow();
        return;
    }
    __asm__ volatile("decl %0" : "+m"(*w) : : "memory");
}

/* fork's prepare handler: close the gate and wait until every other thread is out of its
 * window (at most about a second); the parent's and the child's handlers open it again. */
void hw_forkgate_close(void) HW_HOOKSAFE;
void hw_forkgate_reopen_parent(void) HW_HOOKSAFE;
void hw_forkgate_reopen_child(void) HW_HOOKSAFE;

#endif
