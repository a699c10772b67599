/* This file implements the fork gate of forkgate.h.
 * Context: HOOKSAFE. */
#define _GNU_SOURCE
#include "forkgate.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "spin.h"
#include "sys.h"
#include "threads.h"

#define DRAIN_LIMIT_NS 1000000000ull   /* a fork waits this long at most for a window */

_Atomic int hw_fork_gate;
bool hw_fork_gate_fenced = true;   /* until membarrier is registered */

/* Register this process for membarrier's private expedited command (per address space: a
 * fork child registers again). */
static void register_membarrier(void)
{
    int saved = errno;
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    hw_fork_gate_fenced = !(cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                            syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0);
    errno = saved;
}

void hw_forkgate_init(void)
{
    register_membarrier();
}

void hw_window_open_slow(void)
{
    uint32_t i = hw_thread_index();
    struct hw_live_count *line = hw_live_line(i);
    if (!line)
        return;   /* no slots: this thread's windows go unguarded */
    if (i < HW_LIVE_SLOTS - 1) {
        hw_self.window = &line->window;
        hw_window_open();
        return;
    }
    if (hw_self.window_shared_depth++ > 0)
        return;
    for (;;) {
        __atomic_add_fetch(&line->window, 1, __ATOMIC_SEQ_CST);   /* locked: a full fence too */
        if (!atomic_load(&hw_fork_gate) || hw_self.forking)
            return;
        __atomic_sub_fetch(&line->window, 1, __ATOMIC_RELEASE);
        if (!hw_forkgate_wait()) {
            __atomic_add_fetch(&line->window, 1, __ATOMIC_SEQ_CST);
            return;
        }
    }
}

void hw_window_close_slow(void)
{
    struct hw_live_count *line = hw_live_line(hw_self.index);
    if (line && hw_self.index && --hw_self.window_shared_depth == 0)
        __atomic_sub_fetch(&line->window, 1, __ATOMIC_RELEASE);
}

#define GATE_WAIT_LIMIT_NS 20000000ull   /* a fork of a big process copies its page tables for ms */

_Atomic uint32_t hw_fork_gate_epoch;   /* closings of the gate */

bool hw_forkgate_wait(void)
{
    uint32_t epoch = atomic_load_explicit(&hw_fork_gate_epoch, memory_order_acquire);
    if (hw_self.gate_given_up == epoch)
        return false;   /* it waited this closing out once: a lock cycle, no second wait */
    uint64_t start = 0;
    for (unsigned spins = 0; atomic_load_explicit(&hw_fork_gate, memory_order_acquire); spins++) {
        sched_yield();
        if (!(spins & 15)) {   /* the clock only now and then */
            uint64_t now = hw_now_ns(CLOCK_MONOTONIC);
            if (!start) {
                start = now;
            } else if (now - start > GATE_WAIT_LIMIT_NS) {
                hw_self.gate_given_up = epoch;
                return false;
            }
        }
    }
    return true;
}

_Atomic bool hw_fork_holds_locks;

bool hw_spin_lock_or_fork(_Atomic int *l)
{
    for (unsigned n = 0; !hw_spin_try(l);) {
        while (atomic_load_explicit(l, memory_order_relaxed)) {
            /* Only a fork's hold is waited out with a bound: another thread's is short, and
             * the fork itself may be waiting for this thread's window. */
            if (atomic_load_explicit(&hw_fork_holds_locks, memory_order_relaxed) && !hw_self.forking) {
                /* the parent's and child's handlers release the lock before they open the gate */
                if (!hw_forkgate_wait())
                    return false;
                continue;
            }
            hw_spin_backoff(&n);
        }
    }
    return true;
}

void hw_forkgate_close(void)
{
    hw_self.forking = true;
    atomic_fetch_add(&hw_fork_gate_epoch, 1);
    atomic_fetch_add(&hw_fork_gate, 1);
    if (!hw_fork_gate_fenced) {
        int saved = errno;
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
            hw_fork_gate_fenced = true;   /* from now on the threads fence themselves; this
                                           * once, a window opened meanwhile may be missed */
        errno = saved;
    }
    uint32_t self = hw_self.index, n = hw_threads_registered();
    uint64_t start = hw_now_ns(CLOCK_MONOTONIC);
    bool late = false;
    /* Indices 1..n, and the shared last line when some thread is beyond the own ones. */
    for (uint32_t i = 1; i <= n && i < HW_LIVE_SLOTS; i++) {
        if (i == self && i < HW_LIVE_SLOTS - 1)
            continue;   /* its own window (a signal handler's fork) goes on in both processes */
        const struct hw_live_count *line = hw_live_line(i);
        if (!line)
            return;
        int own = self && line == hw_live_line(self) ? hw_self.window_shared_depth > 0 : 0;
        while (__atomic_load_n(&line->window, __ATOMIC_ACQUIRE) > own && !late) {
            sched_yield();
            late = hw_now_ns(CLOCK_MONOTONIC) - start > DRAIN_LIMIT_NS;
        }
    }
    if (late)
        hw_log("fork: a thread stayed inside malloc or free for a second; the child's counts may be off by its block");
}

void hw_forkgate_reopen_parent(void)
{
    hw_self.forking = false;
    atomic_fetch_sub(&hw_fork_gate, 1);
}

void hw_forkgate_reopen_child(void)
{
    hw_self.forking = false;
    /* The other threads do not exist here: a window one of them was left in (the wait for it
     * gave up) must not hold up every fork of this child and its own children. */
    uint32_t self = hw_self.index, n = hw_threads_registered();
    for (uint32_t i = 1; i <= n && i < HW_LIVE_SLOTS; i++) {
        struct hw_live_count *line = hw_live_line(i);
        if (!line)
            break;
        if (i != self || i == HW_LIVE_SLOTS - 1)
            line->window = line == hw_live_line(self) && self ? hw_self.window_shared_depth > 0 : 0;
    }
    atomic_store(&hw_fork_gate, 0);
    if (!hw_fork_gate_fenced)
        register_membarrier();
}
