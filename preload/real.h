/* real.h: the allocator functions the shim forwards to (found with dlsym(RTLD_NEXT), so an
 * application linked with tcmalloc or jemalloc keeps its allocator), and the bootstrap pool
 * that serves the few allocations made while dlsym itself runs. */
#ifndef HW_REAL_H
#define HW_REAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
extern HW_INTERNAL struct hw_real hw_real;

/* How a block's usable size is known (init.c decides, from where the real functions live):
 *   GLIBC  the real malloc is glibc's: read from the chunk header, the word before the block
 *          (malloc/malloc.c: size | flags; bit 1 = mmapped, whose header is two words), which
 *          malloc and free touch anyway, where malloc_usable_size would also read the next
 *          chunk's header at the far end of the block;
 *   CALL   the real malloc_usable_size comes from the same library as the real malloc
 *          (jemalloc, tcmalloc): call it;
 *   NONE   anything else (a program's own malloc without one): unknown, every block then
 *          keeps its size in the live table. */
enum hw_usable { HW_USABLE_NONE, HW_USABLE_GLIBC, HW_USABLE_CALL };
extern HW_INTERNAL enum hw_usable hw_real_usable;
/* The loaded library that holds the real malloc (its dl_phdr_info name; NULL if none, or the
 * executable). Set by init.c with hw_real_usable. */
extern HW_INTERNAL const char *hw_real_malloc_module;

/* The usable size of live block p, from the real allocator; 0 when it cannot say.
 * Context: SIGSAFE with glibc (a read of the chunk header). */
static inline size_t hw_real_usable_size(const void *p)
{
    if (HW_LIKELY(hw_real_usable == HW_USABLE_GLIBC)) {
        uintptr_t header = ((const uintptr_t *)p)[-1];
        return (header & ~(uintptr_t)7) - (header & 2 ? 2 * sizeof header : sizeof header);
    }
    return hw_real_usable == HW_USABLE_CALL ? hw_real.malloc_usable_size((void *)p) : 0;
}

/* Resolve hw_real once; safe to call from any hook, any number of times. */
void hw_real_resolve(void) HW_HOOKSAFE;

/* The function `name` after ours (dlsym(RTLD_NEXT), guarded: it may allocate). Not for a
 * hook's fast path: resolve once and keep the pointer. */
void *hw_real_next(const char *name);

/* The bootstrap pool: used only while hw_real_resolve runs. */
#define HW_POOL_SIZE (64 * 1024)
extern HW_INTERNAL char hw_pool[HW_POOL_SIZE];
static inline bool hw_pool_owns(const void *p)
{
    return (uintptr_t)p - (uintptr_t)hw_pool < HW_POOL_SIZE;
}
void *hw_pool_alloc(size_t size, size_t align) HW_HOOKSAFE;
/* The word before every pool block: bit 3, which glibc's chunk header never has (cookie.h). */
#define HW_POOL_MARK ((uintptr_t)8)
size_t hw_pool_size(const void *p) HW_SIGSAFE;

#endif
