/* threadhooks.h: what the heap walk needs to know about the application's threads, learnt
 * where it is cheap and safe (at thread start, never while the world is stopped, since
 * pthread_getattr_np allocates): each thread's stack bounds and thread pointer, by tid.
 * Also tracks joinable threads until they are joined (their descriptors hold their return
 * values), and keeps application threads from blocking the suspend signal (pthread_sigmask,
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

/* Call fn with the thread pointer of every thread ever registered in this process or, in a
 * fork child, in its parent (their memory came along; their threads did not). No lock: for a
 * stopped world or its fork child. Context: SIGSAFE. */
void hw_threads_each_tp(void (*fn)(uintptr_t tp, void *arg), void *arg) HW_SIGSAFE;
/* The most threads hw_threads_each_tp can report. */
size_t hw_threads_registry_size(void) HW_SIGSAFE;
/* Call fn for each descriptor (pthread_t) of a joinable thread that started and was not
 * joined or detached yet, with its tid: an exited one keeps its return value there until it
 * is joined. Context: SIGSAFE, for a stopped world (no lock). */
void hw_threads_each_joinable(void (*fn)(uintptr_t pd, int tid, void *arg), void *arg) HW_SIGSAFE;
/* In a fork child: the parent's joinable threads and thread starts are not the child's. */
void hw_threads_forget_in_child(void);
/* Set once the program started a thread of its own (pthread_create but the shim's helper):
 * until then its counters need no atomic read-modify-writes (record.c). */
extern HW_INTERNAL _Atomic bool hw_program_threads;
/* The slots that hold the start routine and argument of threads being created, [*lo, *hi)
 * (empty when none was ever used): a root. Context: SIGSAFE. */
void hw_threads_starting(uintptr_t *lo, uintptr_t *hi) HW_SIGSAFE;
/* Hold the registry still across fork (prepare; parent and child release it). */
void hw_threads_lock_registry(void);
void hw_threads_unlock_registry(void);

#endif
