/* This file implements the bootstrap of the real allocator. The first malloc arrives before
 * our constructor (ld.so, libc and other libraries' initialisers run first), and resolving the
 * real functions with dlsym may itself allocate on some glibc versions (heaptrack's DummyPool
 * comment; jemalloc#329). While resolution runs, allocations come from a static bump pool;
 * pool blocks are recognised by address and never handed to the real free.
 * Context: HOOKSAFE. */
#define _GNU_SOURCE
#include "real.h"

#include <dlfcn.h>
#include <string.h>

struct hw_real hw_real;
enum hw_usable hw_real_usable;
const char *hw_real_malloc_module;

/* glibc's own entry points, the fallback when RTLD_NEXT finds nothing (static-ish setups). */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

_Alignas(64) char hw_pool[HW_POOL_SIZE];
static _Atomic size_t pool_used;
static _Atomic int resolving;  /* thread id resolving, 0 = nobody */


/* Each pool block is preceded by a 16-byte header: its size, then a word with bit 3 set
 * (HW_POOL_MARK), where glibc keeps a chunk's size and never sets that bit: free's fast path
 * (interpose.c), which sends every header with it to the slow path, then needs no test of the
 * pool's address range. */
void *hw_pool_alloc(size_t size, size_t align)
{
    if (align < 16)
        align = 16;
    if (size > HW_POOL_SIZE || (align & (align - 1)))
        return NULL;
    size_t old = atomic_load(&pool_used), start, end;
    do {
        start = (old + 16 + align - 1) & ~(align - 1);
        end = start + ((size + 15) & ~(size_t)15);
        if (end > HW_POOL_SIZE)
            return NULL;  /* never abort: the caller sees ENOMEM */
    } while (!atomic_compare_exchange_weak(&pool_used, &old, end));
    uintptr_t mark = HW_POOL_MARK;
    memcpy(hw_pool + start - 16, &size, sizeof size);
    memcpy(hw_pool + start - 8, &mark, sizeof mark);
    return hw_pool + start;
}

size_t hw_pool_size(const void *p)
{
    size_t size;
    memcpy(&size, (const char *)p - 16, sizeof size);
    return size;
}

#define RESOLVE(name, fallback)                                            \
    do {                                                                   \
        void *sym = dlsym(RTLD_NEXT, #name);                               \
        if (!sym)                                                          \
            sym = (void *)(fallback);                                      \
        memcpy(&r.name, &sym, sizeof sym);                                 \
    } while (0)

void hw_real_resolve(void)
{
    static _Atomic int done;
    if (atomic_load_explicit(&done, memory_order_acquire))
        return;
    int expected = 0, me = 1;
    if (!atomic_compare_exchange_strong(&resolving, &expected, me)) {
        /* Another thread resolves; its results appear shortly. Our allocations meanwhile
         * come from the pool (callers check hw_real.malloc == NULL). */
        while (!atomic_load_explicit(&done, memory_order_acquire) && atomic_load(&resolving))
            __builtin_ia32_pause();
        return;
    }
    struct hw_real r = { 0 };
    hw_guard_enter();
    RESOLVE(malloc, __libc_malloc);
    RESOLVE(free, __libc_free);
    RESOLVE(calloc, __libc_calloc);
    RESOLVE(realloc, __libc_realloc);
    RESOLVE(memalign, __libc_memalign);
    RESOLVE(posix_memalign, NULL);
    RESOLVE(aligned_alloc, __libc_memalign);
    RESOLVE(valloc, __libc_valloc);
    RESOLVE(pvalloc, __libc_pvalloc);
    RESOLVE(malloc_usable_size, NULL);
    hw_guard_leave();
    /* Publish the other pointers before malloc: hooks test hw_real.malloc to know. */
    void *(*m)(size_t) = r.malloc;
    r.malloc = NULL;
    hw_real = r;
    atomic_thread_fence(memory_order_release);
    hw_real.malloc = m;
    atomic_store_explicit(&done, 1, memory_order_release);
    atomic_store(&resolving, 0);
}

void *hw_real_next(const char *name)
{
    hw_guard_enter();
    void *f = dlsym(RTLD_NEXT, name);
    hw_guard_leave();
    return f;
}
