/* heapwatch.h: the optional API an application may call when it runs under libheapwatch.so.
 *
 * The functions are declared weak: a program that uses them links and runs without the shim.
 * Call them through the macros, which do nothing (and yield -1) when the shim is not loaded:
 *
 *   #include <heapwatch.h>
 *   HEAPWATCH_SNAPSHOT("after warm-up");   // stored in heapwatch.<pid>.db when it returns
 *   HEAPWATCH_IGNORE(p);                     // p is never reported as a leak
 *   HEAPWATCH_REGISTER_ROOT(arena, len);     // scan memory the heap walk does not know
 */
#ifndef HEAPWATCH_H
#define HEAPWATCH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Take a profile snapshot now, labelled `label` (may be NULL; at most 200 bytes are kept),
 * and return once it is committed to the database: 0 on success, -1 if the shim is inert or
 * cannot write. Safe to call from any thread, not from a signal handler. */
int heapwatch_snapshot(const char *label) __attribute__((weak));

/* LeakSanitizer's __lsan_ignore_object: the live heap block that starts at p is treated as
 * reachable, and what it points to too (it is a root). 0 on success, -1 if p is not the start
 * of a live block the shim knows. */
int heapwatch_ignore(const void *p) __attribute__((weak));

/* LeakSanitizer's __lsan_register_root_region: scan [p, p + size) for heap pointers in every
 * heap walk, e.g. memory from mmap or a custom allocator that holds pointers into the heap.
 * Up to 1024 regions; 0 on success. Unregister with the same p and size. */
int heapwatch_register_root(const void *p, size_t size) __attribute__((weak));
int heapwatch_unregister_root(const void *p, size_t size) __attribute__((weak));

#ifdef __cplusplus
}
#endif

/* Whether the program runs under libheapwatch.so. */
#define HEAPWATCH_PRESENT() (heapwatch_snapshot != 0)
#define HEAPWATCH_SNAPSHOT(label) (heapwatch_snapshot ? heapwatch_snapshot(label) : -1)
#define HEAPWATCH_IGNORE(p) (heapwatch_ignore ? heapwatch_ignore(p) : -1)
#define HEAPWATCH_REGISTER_ROOT(p, size) (heapwatch_register_root ? heapwatch_register_root(p, size) : -1)
#define HEAPWATCH_UNREGISTER_ROOT(p, size) (heapwatch_unregister_root ? heapwatch_unregister_root(p, size) : -1)

#endif
