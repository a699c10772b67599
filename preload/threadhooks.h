/* threadhooks.h: what the heap walk needs to know about the application's threads, learnt
 * where it is cheap and safe (at thread start, never while the world is stopped, since
 * pthread_getattr_np allocates): each thread's stack bounds and thread pointer, by tid.
 * Also keeps application threads from blocking the suspend signal (pthread_sigmask,
 * sigprocmask and sigsuspend are wrapped, as Boehm GC does). */
#ifndef HW_THREADHOOKS_H
#define HW_THREADHOOKS_H

#include <stdbool.h>
#include <stdint.h>
#include "hw.h"

/* Record the calling thread's stack bounds (guarded; allocates through the real malloc). */
void hw_threads_register_stack(void);
/* Stack [*lo, *hi) and thread pointer of thread tid, if registered. Context: SIGSAFE. */
bool hw_threads_stack_of(int tid, uintptr_t *lo, uintptr_t *hi, uintptr_t *tp) HW_SIGSAFE;

/* Hold the registry still across fork (prepare; parent and child release it). */
void hw_threads_lock_registry(void);
void hw_threads_unlock_registry(void);

#endif
