/* heapwatch.h: the optional API an application may call when it runs under libheapwatch.so.
 *
 * The functions are declared weak: a program that uses them links and runs without the shim.
 * Call them through the macros, which do nothing (and yield -1) when the shim is not loaded:
 *
 *   #include <heapwatch.h>
 *   HEAPWATCH_SNAPSHOT("after warm-up");   // stored in heapwatch.<pid>.db when it returns
 */
#ifndef HEAPWATCH_H
#define HEAPWATCH_H

#ifdef __cplusplus
extern "C" {
#endif

/* Take a profile snapshot now, labelled `label` (may be NULL; at most 200 bytes are kept),
 * and return once it is committed to the database: 0 on success, -1 if the shim is inert or
 * cannot write. Safe to call from any thread, not from a signal handler. */
int heapwatch_snapshot(const char *label) __attribute__((weak));

#ifdef __cplusplus
}
#endif

/* Whether the program runs under libheapwatch.so. */
#define HEAPWATCH_PRESENT() (heapwatch_snapshot != 0)
#define HEAPWATCH_SNAPSHOT(label) (heapwatch_snapshot ? heapwatch_snapshot(label) : -1)

#endif
