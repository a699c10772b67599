/* This file implements the interposed allocator entry points: the malloc family and the C++
 * operator new/delete family (all 20 symbols libstdc++ exports: plain, array, sized, aligned,
 * nothrow). Each forwards to the real allocator and records around it (record.c); nothing
 * else lives here.
 *
 * Fast path (every hook): the real allocator is resolved, the thread is not inside the shim
 * (guard == 0) and recording is active, which the thread's sampling countdown staying
 * positive implies (hw_guard_enter); otherwise the slow path. While the real functions are
 * being resolved, allocations come from the bootstrap pool (real.c). In arena mode
 * (record_arena.h) an unsampled small request is the real allocator's call and nothing else,
 * and a free reads the block's header (which glibc's free reads anyway) for the shim's cookie
 * or glibc's mmapped bit; in shadow mode the hooks keep the shadow map (record.h).
 *
 * operator new is implemented over the real malloc (so a C++ allocation is recorded once, at
 * the caller's frame); only when that fails does it defer to the real operator new, which
 * runs the new_handler and throws std::bad_alloc. This file is built with -fexceptions so
 * the exception unwinds through our frame and the guard cleanup runs.
 * Context: HOOKSAFE. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "hw.h"
#include "cookie.h"
#include "real.h"
#include "record.h"
#include "record_arena.h"

/* True when the real allocator can be called; false while it is being resolved. */
static inline bool real_ready(void)
{
    if (HW_LIKELY(hw_real.malloc != NULL))
        return true;
    hw_real_resolve();
    return hw_real.malloc != NULL;
}

#define recording hw_recording
#define forgetting hw_forgetting

/* Everything malloc does but the fast path: resolution, the bootstrap pool, the guard,
 * sampled blocks, the dynamic linker's blocks. */
static HW_NOINLINE void *malloc_slow(size_t size, const void *caller)
{
    if (HW_UNLIKELY(!real_ready()))
        return hw_pool_alloc(size, 16);
    if (hw_arena_mode)
        return hw_arena_mode_alloc(size, 0, false, caller);
    if (!recording())
        return hw_real.malloc(size);
    if (HW_UNLIKELY(hw_arena_mode))   /* recording() just initialised the shim, in arena mode */
        return hw_arena_mode_alloc(size, 0, false, caller);
    void *p = hw_real.malloc(size);
    if (HW_UNLIKELY(hw_from_loader(caller)) && p)
        hw_record_alloc_loader(p, size);
    else if (HW_LIKELY(p != NULL))
        hw_record_alloc_slow(p, size);
    return p;
}

/* malloc but its arena-mode fast path: the shadow map's fast path, and the slow path. */
static HW_NOINLINE void *malloc_rest(size_t size, const void *caller)
{
    int64_t left = hw_countdown_after(size);
    if (HW_LIKELY(left > 0) && !hw_arena_mode && HW_LIKELY(!hw_from_loader(caller))) {
        void *p = hw_real.malloc(size);
        if (HW_LIKELY(p != NULL))
            hw_record_alloc_unsampled(p, size, left);
        return p;
    }
    return malloc_slow(size, caller);
}

/* The arena-mode fast path is the whole of this function, so that it needs no frame: a
 * countdown, a range test of the caller and a tail call. */
HW_EXPORT void *malloc(size_t size)
{
    int64_t left = hw_countdown_after(size);   /* positive: active, unguarded, not sampled */
    if (HW_LIKELY(left > 0) && HW_LIKELY(size < hw_arena_small) &&
        HW_LIKELY(!hw_from_loader(__builtin_return_address(0)))) {
        hw_self.until_sample = left;   /* arena mode: the walk finds the block */
        return hw_real.malloc(size);
    }
    return malloc_rest(size, __builtin_return_address(0));
}

/* free but its arena-mode fast path. */
static HW_NOINLINE void free_rest(void *p)
{
    if (HW_UNLIKELY(!p || hw_pool_owns(p)))
        return;
    if (hw_arena_mode) {
        if (((uintptr_t *)p)[-1] & HW_COOKIE_SLOW_BITS) {
            hw_arena_mode_free(p);
            return;
        }
        hw_self.arena_frees++;
        hw_real.free(p);
        return;
    }
    if (HW_UNLIKELY(!hw_record_free_fast(p, NULL)) && forgetting())
        hw_record_free_slow(p, NULL);
    void (*real_free)(void *) = hw_real.free;
    if (HW_LIKELY(real_free != NULL))   /* always: a block that is not the pool's came from it */
        real_free(p);
}

/* The arena-mode fast path: the header glibc's free reads anyway says the block is glibc's
 * own and in an arena (no cookie, not mmapped). A bootstrap-pool block's header word has the
 * cookie's bit (HW_POOL_MARK), so it takes the slow path, which knows it. The thread's count
 * of frees is the event log's (its temporaries, events.c): one increment of a TLS word, where
 * sending every free to the slow path while the log was on cost a call and its tests. */
_Static_assert(HW_POOL_MARK & HW_COOKIE_SLOW_BITS, "a pool block must take free's slow path");

HW_EXPORT void free(void *p)
{
    if (HW_LIKELY(hw_arena_mode) && HW_LIKELY(p != NULL) &&
        !(((uintptr_t *)p)[-1] & HW_COOKIE_SLOW_BITS)) {
        hw_self.arena_frees++;
        hw_real.free(p);
        return;
    }
    free_rest(p);
}

HW_EXPORT void *calloc(size_t n, size_t size)
{
    if (HW_UNLIKELY(!real_ready())) {
        size_t total;
        if (__builtin_mul_overflow(n, size, &total)) {
            errno = ENOMEM;
            return NULL;
        }
        return hw_pool_alloc(total, 16);  /* pool memory is never reused: already zero */
    }
    if (hw_arena_mode) {
        size_t total;
        if (__builtin_mul_overflow(n, size, &total))
            return hw_real.calloc(n, size);   /* its ENOMEM */
        int64_t left = hw_countdown_after(total);
        if (HW_LIKELY(left > 0) && total < hw_arena_small && !hw_from_loader(__builtin_return_address(0))) {
            hw_self.until_sample = left;
            return hw_real.calloc(n, size);
        }
        return hw_arena_mode_alloc(total, 0, true, __builtin_return_address(0));
    }
    if (!recording())
        return hw_real.calloc(n, size);
    size_t total;
    if (HW_UNLIKELY(hw_arena_mode) && !__builtin_mul_overflow(n, size, &total))   /* recording() just
                                                    * initialised the shim, in arena mode */
        return hw_arena_mode_alloc(total, 0, true, __builtin_return_address(0));
    void *p = hw_real.calloc(n, size);
    if (HW_UNLIKELY(hw_from_loader(__builtin_return_address(0))) && p)
        hw_record_alloc_loader(p, n * size);
    else if (HW_LIKELY(p != NULL))
        hw_record_alloc(p, n * size);
    return p;
}

/* realloc of a bootstrap-pool block: move it to the real heap, never free the pool slot. */
static void *realloc_from_pool(void *old, size_t size)
{
    void *p = malloc(size);
    if (p) {
        size_t have = hw_pool_size(old);
        memcpy(p, old, have < size ? have : size);
    }
    return p;
}

HW_EXPORT void *realloc(void *old, size_t size)
{
    if (HW_UNLIKELY(!real_ready())) {
        void *p = hw_pool_alloc(size, 16);
        if (p && old)
            memcpy(p, old, hw_pool_size(old) < size ? hw_pool_size(old) : size);
        return p;
    }
    if (old && hw_pool_owns(old))
        return realloc_from_pool(old, size);
    if (!old)
        return malloc(size);
    if (hw_arena_mode) {
        int64_t left = hw_countdown_after(size);
        if (HW_LIKELY(left > 0) && size < hw_arena_small && !(((uintptr_t *)old)[-1] & HW_COOKIE_SLOW_BITS)) {
            hw_self.until_sample = left;
            hw_self.arena_frees++;
            return hw_real.realloc(old, size);
        }
        return hw_arena_mode_realloc(old, size, __builtin_return_address(0));
    }
    if (!recording()) {
        if (forgetting())
            hw_record_free(old, NULL);   /* the new block passes through unrecorded */
        return hw_real.realloc(old, size);
    }
    if (HW_UNLIKELY(hw_arena_mode))   /* recording() just initialised the shim, in arena mode */
        return hw_arena_mode_realloc(old, size, __builtin_return_address(0));
    /* Take the old entry out (and count its free) first: another thread could be handed `old`
     * as soon as the real realloc releases it. realloc(p, 0) frees. If the real realloc fails
     * the old block is recorded again as a new allocation: a rare ENOMEM costs one extra
     * counted allocation rather than a record section held across the real allocator, where a
     * stop-the-world would have to wait for an arena lock (stw.h). */
    size_t old_size;
    bool tracked = hw_record_free(old, &old_size);
    void *p = hw_real.realloc(old, size);
    if (!p && size) {
        if (tracked)
            hw_record_alloc(old, old_size);
    } else if (p) {
        hw_record_alloc(p, size);
    }
    return p;
}

HW_EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(old, total);
}

/* The alignment arena mode allocates a sampled block with: a power of two of at least 16; 0
 * for one the real function must judge (it fails it, or rounds it as glibc's memalign does). */
static size_t arena_alignment(size_t align)
{
    if (!align || (align & (align - 1)) || align > ((size_t)1 << 40))
        return 0;
    return align < 16 ? 16 : align;
}

/* Shared body of the aligned allocators; `alloc` is the real function to call. */
#define ALIGNED_BODY(align, size, call)                                   \
    if (HW_UNLIKELY(!real_ready()))                                       \
        return hw_pool_alloc(size, align);                                \
    if (hw_arena_mode) {                                                  \
        int64_t left_ = hw_countdown_after(size);                         \
        size_t a_ = arena_alignment(align);                               \
        if (!a_ || (HW_LIKELY(left_ > 0) && size < hw_arena_small &&      \
                    a_ < hw_arena_small)) {                               \
            if (a_)                                                       \
                hw_self.until_sample = left_;                             \
            return call;                                                  \
        }                                                                 \
        return hw_arena_mode_alloc(size, a_, false, __builtin_return_address(0)); \
    }                                                                     \
    if (!recording())                                                     \
        return call;                                                      \
    if (HW_UNLIKELY(hw_arena_mode) && arena_alignment(align))             \
        return hw_arena_mode_alloc(size, arena_alignment(align), false,   \
                                   __builtin_return_address(0));          \
    void *p = call;                                                       \
    if (HW_LIKELY(p != NULL))                                             \
        hw_record_alloc(p, size);                                         \
    return p

HW_EXPORT void *memalign(size_t align, size_t size)
{
    ALIGNED_BODY(align, size, hw_real.memalign(align, size));
}

HW_EXPORT void *aligned_alloc(size_t align, size_t size)
{
    ALIGNED_BODY(align, size, hw_real.aligned_alloc(align, size));
}

HW_EXPORT void *valloc(size_t size)
{
    ALIGNED_BODY(4096, size, hw_real.valloc(size));
}

HW_EXPORT void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t rounded = size ? (size + page - 1) & ~(page - 1) : page;   /* what pvalloc gives */
    if (rounded < size)
        rounded = size;   /* overflow: the real pvalloc fails it */
    ALIGNED_BODY(page, rounded, hw_real.pvalloc(size));
}

HW_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    if (HW_UNLIKELY(!real_ready())) {
        if (align % sizeof(void *) || (align & (align - 1)))
            return EINVAL;
        *out = hw_pool_alloc(size, align);
        return *out ? 0 : ENOMEM;
    }
    if (hw_arena_mode && !(align % sizeof(void *)) && !(align & (align - 1))) {
        int64_t left = hw_countdown_after(size);
        size_t a = arena_alignment(align);
        if (!a || (HW_LIKELY(left > 0) && size < hw_arena_small && a < hw_arena_small)) {
            if (a)
                hw_self.until_sample = left;
            return hw_real.posix_memalign(out, align, size);
        }
        void *p = hw_arena_mode_alloc(size, a, false, __builtin_return_address(0));
        if (!p)
            return ENOMEM;
        *out = p;
        return 0;
    }
    int rc = hw_real.posix_memalign ? hw_real.posix_memalign(out, align, size) : ENOSYS;
    if (rc == 0 && recording())
        hw_record_alloc(*out, size);
    return rc;
}

HW_EXPORT size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (hw_pool_owns(p))
        return hw_pool_size(p);
    if (hw_arena_mode)
        return hw_arena_mode_usable(p);
    return real_ready() && hw_real.malloc_usable_size ? hw_real.malloc_usable_size(p) : 0;
}

/* The program may lower glibc's mmap threshold: arena mode must then send smaller requests
 * to its slow path, where an mmapped chunk gets its table entry. */
HW_EXPORT int mallopt(int param, int value)
{
    static int (*real_mallopt)(int, int);
    if (!real_mallopt) {
        real_mallopt = hw_real_next("mallopt");
        if (!real_mallopt)
            return 0;
    }
    int rc = real_mallopt(param, value);
    if (rc && param == -3 /* M_MMAP_THRESHOLD */ && value >= 0)
        hw_arena_threshold_changed((size_t)value);
    return rc;
}

/* ---- C++ operators ---------------------------------------------------------------------- */

static void guard_cleanup(int *unused)
{
    (void)unused;
    hw_guard_leave();
}

/* The allocation failed: let the real operator (libstdc++, tcmalloc...) run the new_handler
 * and throw or return NULL, then record what it eventually returns. */
static HW_COLD void *new_slow(const char *symbol, size_t size, size_t align, bool nothrow)
{
    void *p;
    {
        __attribute__((cleanup(guard_cleanup))) int guard = (hw_guard_enter(), 0);
        (void)guard;
        void *fn = dlsym(RTLD_NEXT, symbol);
        if (!fn)
            return NULL;
        if (align) {
            static const char nt;
            p = nothrow ? ((void *(*)(size_t, size_t, const void *))fn)(size, align, &nt)
                        : ((void *(*)(size_t, size_t))fn)(size, align);
        } else {
            static const char nt;
            p = nothrow ? ((void *(*)(size_t, const void *))fn)(size, &nt)
                        : ((void *(*)(size_t))fn)(size);
        }
    }
    if (p && recording())
        hw_record_alloc(p, size);
    return p;
}

static inline void *new_fast(size_t size)
{
    int64_t left = hw_countdown_after(size);   /* positive: active, unguarded, not sampled */
    if (HW_LIKELY(left > 0)) {
        if (HW_LIKELY(size < hw_arena_small)) {
            hw_self.until_sample = left;
            return hw_real.malloc(size ? size : 1);
        }
        if (hw_arena_mode)
            return hw_arena_mode_alloc(size ? size : 1, 0, false, __builtin_return_address(0));
        void *p = hw_real.malloc(size ? size : 1);
        if (HW_LIKELY(p != NULL))
            hw_record_alloc_unsampled(p, size, left);
        return p;
    }
    if (HW_UNLIKELY(!real_ready()))
        return hw_pool_alloc(size, 16);
    if (hw_arena_mode)
        return hw_arena_mode_alloc(size ? size : 1, 0, false, __builtin_return_address(0));
    void *p = hw_real.malloc(size ? size : 1);
    if (HW_LIKELY(p != NULL) && recording())
        hw_record_alloc_slow(p, size);
    return p;
}

static inline void *new_aligned_fast(size_t size, size_t align)
{
    if (HW_UNLIKELY(!real_ready()))
        return hw_pool_alloc(size, align);
    size_t rounded = (size + align - 1) & ~(align - 1);
    if (hw_arena_mode) {
        int64_t left = hw_countdown_after(size);
        size_t a = arena_alignment(align);
        if (!a || (HW_LIKELY(left > 0) && rounded < hw_arena_small && a < hw_arena_small)) {
            if (a)
                hw_self.until_sample = left;
            return hw_real.aligned_alloc(align, rounded ? rounded : align);
        }
        return hw_arena_mode_alloc(rounded ? rounded : align, a, false, __builtin_return_address(0));
    }
    void *p = hw_real.aligned_alloc(align, rounded ? rounded : align);
    if (HW_LIKELY(p != NULL) && recording())
        hw_record_alloc(p, size);
    return p;
}

static inline void delete_any(void *p)
{
    free(p);
}

#define NEW(sym, ...) HW_EXPORT void *sym(__VA_ARGS__)
NEW(_Znwm, size_t n) { void *p = new_fast(n); return p ? p : new_slow("_Znwm", n, 0, false); }
NEW(_Znam, size_t n) { void *p = new_fast(n); return p ? p : new_slow("_Znam", n, 0, false); }
NEW(_ZnwmRKSt9nothrow_t, size_t n, const void *nt)
{ (void)nt; void *p = new_fast(n); return p ? p : new_slow("_ZnwmRKSt9nothrow_t", n, 0, true); }
NEW(_ZnamRKSt9nothrow_t, size_t n, const void *nt)
{ (void)nt; void *p = new_fast(n); return p ? p : new_slow("_ZnamRKSt9nothrow_t", n, 0, true); }
NEW(_ZnwmSt11align_val_t, size_t n, size_t a)
{ void *p = new_aligned_fast(n, a); return p ? p : new_slow("_ZnwmSt11align_val_t", n, a, false); }
NEW(_ZnamSt11align_val_t, size_t n, size_t a)
{ void *p = new_aligned_fast(n, a); return p ? p : new_slow("_ZnamSt11align_val_t", n, a, false); }
NEW(_ZnwmSt11align_val_tRKSt9nothrow_t, size_t n, size_t a, const void *nt)
{ (void)nt; void *p = new_aligned_fast(n, a); return p ? p : new_slow("_ZnwmSt11align_val_tRKSt9nothrow_t", n, a, true); }
NEW(_ZnamSt11align_val_tRKSt9nothrow_t, size_t n, size_t a, const void *nt)
{ (void)nt; void *p = new_aligned_fast(n, a); return p ? p : new_slow("_ZnamSt11align_val_tRKSt9nothrow_t", n, a, true); }

#define DELETE(sym, ...) HW_EXPORT void sym(void *p, ##__VA_ARGS__)
DELETE(_ZdlPv) { delete_any(p); }
DELETE(_ZdaPv) { delete_any(p); }
DELETE(_ZdlPvm, size_t n) { (void)n; delete_any(p); }
DELETE(_ZdaPvm, size_t n) { (void)n; delete_any(p); }
DELETE(_ZdlPvRKSt9nothrow_t, const void *nt) { (void)nt; delete_any(p); }
DELETE(_ZdaPvRKSt9nothrow_t, const void *nt) { (void)nt; delete_any(p); }
DELETE(_ZdlPvSt11align_val_t, size_t a) { (void)a; delete_any(p); }
DELETE(_ZdaPvSt11align_val_t, size_t a) { (void)a; delete_any(p); }
DELETE(_ZdlPvmSt11align_val_t, size_t n, size_t a) { (void)n; (void)a; delete_any(p); }
DELETE(_ZdaPvmSt11align_val_t, size_t n, size_t a) { (void)n; (void)a; delete_any(p); }
DELETE(_ZdlPvSt11align_val_tRKSt9nothrow_t, size_t a, const void *nt) { (void)a; (void)nt; delete_any(p); }
DELETE(_ZdaPvSt11align_val_tRKSt9nothrow_t, size_t a, const void *nt) { (void)a; (void)nt; delete_any(p); }
