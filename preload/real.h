/* real.h: the allocator functions the shim forwards to (found with dlsym(RTLD_NEXT), so an
 * application linked with tcmalloc or jemalloc keeps its allocator), and the bootstrap pool
 * that serves the few allocations made while dlsym itself runs. */
#ifndef HW_REAL_H
#define HW_REAL_H

#include <stdbool.h>
#include <stddef.h>
#include "hw.h"

struct hw_real {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*memalign)(size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
};
extern struct hw_real hw_real;

/* Resolve hw_real once; safe to call from any hook, any number of times. */
void hw_real_resolve(void) HW_HOOKSAFE;

/* The function `name` after ours (dlsym(RTLD_NEXT), guarded: it may allocate). Not for a
 * hook's fast path: resolve once and keep the pointer. */
void *hw_real_next(const char *name);

/* The bootstrap pool: used only while hw_real_resolve runs. */
bool hw_pool_owns(const void *p) HW_SIGSAFE;
void *hw_pool_alloc(size_t size, size_t align) HW_HOOKSAFE;
size_t hw_pool_size(const void *p) HW_SIGSAFE;

#endif
