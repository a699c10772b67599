/* spin.h: a test-and-test-and-set lock for the shim's short critical sections. Falls back to
 * sched_yield so a preempted holder is not starved by spinners on a 2-core machine.
 * Context: HOOKSAFE (never allocates). */
#ifndef HW_SPIN_H
#define HW_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

/* One attempt: whether the lock is now the caller's. */
static inline bool hw_spin_try(_Atomic int *l)
{
    return !atomic_exchange_explicit(l, 1, memory_order_acquire);
}

/* One wait of a spinner that found the lock held; n counts its waits: a pause, and a yield
 * from the 64th on. */
static inline void hw_spin_backoff(unsigned *n)
{
    if (++*n < 64)
        __builtin_ia32_pause();
    else
        sched_yield();
}

static inline void hw_spin_lock(_Atomic int *l)
{
    for (unsigned n = 0; !hw_spin_try(l);)
        while (atomic_load_explicit(l, memory_order_relaxed))
            hw_spin_backoff(&n);
}

static inline void hw_spin_unlock(_Atomic int *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

#endif
