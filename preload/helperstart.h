/* helperstart.h: when a single-threaded program's helper thread may be started from a signal
 * handler, and the timer that asks again when it may not (trigger.c starts it).
 *
 * A process that glibc knows to be single-threaded runs malloc and free without their arena
 * locks; the shim's helper thread would end that (7% of a malloc/free loop), so in such a
 * process the helper starts only when something needs it: the program's first thread, or a
 * snapshot request (the trigger signal, `heapwatch snap`). A request arrives in a signal
 * handler, and pthread_create allocates and takes the loader's TLS lock: started from a
 * handler that interrupted malloc, it would corrupt the heap. So the handler starts it only
 * where the interrupted thread cannot be inside the allocator, the dynamic linker or the shim
 * (hw_helperstart_safe); elsewhere the thread's next allocation starts it, on its way in
 * (trigger.h: hw_trigger_start_wanted), and a timer signal asks again a little later, for a
 * thread that neither allocates nor waits. */
#ifndef HW_HELPERSTART_H
#define HW_HELPERSTART_H

#include <stdbool.h>
#include <stdint.h>
#include "hw.h"

/* Whether the thread that a signal interrupted at ucontext uc may start a thread from the
 * handler: glibc counts one thread in the process (with more it takes locks, which this one
 * may hold where it was); it is not inside the shim's state (guard, record section; a
 * wrapper of the shim's such as sigsuspend's may be on its stack); on its own stack no frame
 * is the dynamic linker's or a signal trampoline (restorer: the handler's return address);
 * and its innermost frame is not the shim's and is either
 *   - code that is neither libc's nor the real allocator's (the program's, a library's), or
 *   - a system call that may wait for the world (read, poll, fcntl, futex...: malloc makes
 *     none) where it blocked or is about to, or
 *   - right after a system call that sent or unblocked a signal (raise, kill, sigprocmask:
 *     where a signal the thread sent itself is delivered).
 * Context: SIGSAFE. */
bool hw_helperstart_safe(const void *uc, uintptr_t restorer) HW_SIGSAFE;

/* Send the calling thread, interrupted at ucontext uc, the suspend signal with HW_SNAP_RETRY
 * in 2 ms, or, if it is in a system call (a wait, which each try ends early), 2 ms, then
 * twice as late each time up to half a second (a one-shot POSIX timer, made on first use in each
 * process). Context: SIGSAFE. */
void hw_helperstart_retry_later(const void *uc) HW_SIGSAFE;

#endif
