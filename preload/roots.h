/* roots.h: the root set of a heap walk: writable segments of every module but the shim, each
 * thread's static TLS, DTV, stack from its stack pointer, saved registers and sigaltstack, and
 * the regions registered through heapwatch_register_root(). That is LeakSanitizer's root set
 * (compiler-rt/lib/lsan/lsan_common.cpp, lsan_common_linux.cpp), plus the DTVs: ld.so
 * allocates dynamic TLS blocks and DTVs through our malloc, and only a DTV points to them.
 * Every range is clipped to readable mappings, so a wrong guess can never fault.
 * Context: built while the world is stopped: SIGSAFE apart from dl_iterate_phdr, which the
 * caller may only use while it owns the loader lock (snapshot.c). */
#ifndef HW_ROOTS_H
#define HW_ROOTS_H

#include <stdbool.h>
#include <stdint.h>
#include "stw.h"
#include "sys.h"
#include "unwind.h"

enum hw_root_kind { HW_ROOT_GLOBAL, HW_ROOT_TLS, HW_ROOT_DTV, HW_ROOT_STACK, HW_ROOT_REGISTERS,
                    HW_ROOT_ALTSTACK, HW_ROOT_REGION, HW_ROOT_EXITED_THREAD, HW_ROOT_THREAD_START };
extern const char *const hw_root_kind_names[];

struct hw_root {
    uintptr_t lo, hi;
    int kind;
    int tid;               /* per-thread kinds */
    uintptr_t module_bias; /* HW_ROOT_GLOBAL: the module's load bias ... */
    const char *module;    /* ... and its dlpi_name ("" = the executable) */
    uint32_t module_seq;   /* ... and its load (modules.h), 0 if unknown */
    uintptr_t clip_at;     /* a stack found by its stack pointer alone (this one), which may lie
                            * in a heap block (a coroutine's stack): the mark ends the root with
                            * that block; 0 otherwise */
};

/* What the walk learnt about a thread, for the thread table. */
struct hw_thread_info {
    int tid;
    int state;             /* enum hw_thread_state */
    uintptr_t sp, pc, stack_lo, stack_hi;
    uintptr_t tp;                 /* its thread pointer (%fs base), 0 if unknown */
    struct hw_unwind_regs start;  /* where to unwind its frames from ... */
    bool have_start;              /* ... if it stopped */
};

/* An address range [lo, hi). */
struct hw_range {
    uintptr_t lo, hi;
};

struct hw_roots {
    struct hw_vec roots;    /* struct hw_root */
    struct hw_vec threads;  /* struct hw_thread_info */
    struct hw_vec maps;     /* struct hw_mapping (maps.h): what the walk may read */
    struct hw_vec live_tp;  /* scratch: uintptr_t thread pointers of the listed threads */
    /* struct hw_range: the non-executable PT_LOAD segments of every loaded module, the shim
     * and the allocator included, sorted, disjoint (adjacent ones merged): where a C++ object's
     * vtable pointer points (.data.rel.ro, or .rodata without relocations). Not roots. */
    struct hw_vec data;
    /* The real allocator is glibc's malloc, whose chunks carry their size in the word before
     * the block and are followed by the next chunk's header (mark.c: next_chunk_header). */
    bool glibc_chunks;
};

/* Build the root set of the stopped world w. */
void hw_roots_collect(struct hw_roots *r, const struct hw_world *w);

/* Look up the static TLS size and the real allocator's module (call once at start,
 * allocation allowed). */
void hw_roots_init(void);
/* Bytes of static TLS below the thread pointer, TCB included (after hw_roots_init: glibc's
 * figure; before it, a small default). Context: SIGSAFE. */
size_t hw_roots_static_tls_size(void) HW_SIGSAFE;
/* heapwatch_register_root / heapwatch_unregister_root. */
bool hw_roots_register(uintptr_t lo, uintptr_t len);
bool hw_roots_unregister(uintptr_t lo, uintptr_t len);

/* Hold the registered regions still across fork (prepare; parent and child release them). */
void hw_roots_lock_regions(void);
void hw_roots_unlock_regions(void);

#endif
