/* This file implements the root set of roots.h.
 *
 * Threads: a stopped thread's stack is scanned from its stack pointer minus the 128-byte red
 * zone to the top of its stack (registered at thread start, threadhooks.c; otherwise the
 * mapping that holds the stack pointer; one running on another stack, a coroutine's, has its
 * own stack scanned whole and the other from the stack pointer to the end of the heap block
 * or mapping that holds it). Its registers are what the kernel's signal frame saved, or the
 * callee-saved ones of a thread that stopped itself (stw.c). Static TLS and the thread
 * descriptor sit at the thread pointer (x86-64 glibc: TLS blocks below it, struct pthread
 * above, where compiler-rt's GetTls in sanitizer_linux_libcdep.cpp finds them too); for
 * threads other than the main one they are at the top of the stack mapping, and the stack
 * range stops where they begin. The DTV is scanned explicitly: the main thread's initial one
 * is not a heap block. An exited thread is not listed at all, so its stack is not a root; a
 * joinable one not joined yet keeps its descriptor (its return value) as a root, and the
 * arguments of threads being started are roots until they run (threadhooks.c).
 * Context: SIGSAFE except for dl_iterate_phdr (see roots.h). */
#define _GNU_SOURCE
#include "roots.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <string.h>
#include <unistd.h>
#include "glibcheap.h"
#include "maps.h"
#include "modules.h"
#include "real.h"
#include "spin.h"
#include "threadhooks.h"

#define TCB_SIZE 2496   /* sizeof(struct pthread) in glibc >= 2.32 (LeakSanitizer's figure) */
#define MAX_REGIONS 1024

const char *const hw_root_kind_names[] = { "global", "tls", "dtv", "stack", "registers", "altstack", "region",
                                           "exited_thread", "thread_start" };

static size_t static_tls_size = 4096 + TCB_SIZE;
/* The module of the real malloc when it is a library: glibc, whose malloc state the mark
 * filters (mark.c), or another allocator (jemalloc, tcmalloc), whose writable data is not a
 * root at all: its caches of free objects keep stale pointers to blocks handed out again
 * since (tcmalloc's transfer cache, jemalloc's tcache stacks above their top), which would
 * make leaked blocks reachable; an allocator holds no reference of the program's. As for
 * LeakSanitizer, whose allocator's state is its own and never scanned. */
static char allocator_module[PATH_MAX];
static bool allocator_is_glibc;

size_t hw_roots_static_tls_size(void)
{
    return static_tls_size;
}

static struct { uintptr_t lo, hi; } regions[MAX_REGIONS];
static unsigned nr_regions;
static _Atomic int regions_lock;

void hw_roots_init(void)
{
    void (*info)(size_t *, size_t *) = (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    size_t size = 0, align = 0;
    if (info)
        info(&size, &align);
    if (size > TCB_SIZE && size < (64u << 20))
        static_tls_size = size;
    const char *module = hw_real_malloc_module;   /* never the executable (real.h) */
    if (module) {
        const char *slash = strrchr(module, '/'), *base = slash ? slash + 1 : module;
        /* Only libraries known to be allocators and nothing else: a program's own library that
         * defines malloc may also hold the program's globals. */
        static const char *const allocators[] = { "libjemalloc.so", "libtcmalloc", "libmimalloc.so" };
        allocator_is_glibc = !strncmp(base, "libc.so", 7);
        bool known = allocator_is_glibc;
        for (size_t i = 0; i < sizeof allocators / sizeof allocators[0]; i++)
            known |= !strncmp(base, allocators[i], strlen(allocators[i]));
        if (known)
            hw_fmt(allocator_module, sizeof allocator_module, "%s", module);
    }
}

void hw_roots_lock_regions(void) { hw_spin_lock(&regions_lock); }
void hw_roots_unlock_regions(void) { hw_spin_unlock(&regions_lock); }

bool hw_roots_register(uintptr_t lo, uintptr_t len)
{
    bool ok = false;
    hw_record_enter();
    hw_spin_lock(&regions_lock);
    if (nr_regions < MAX_REGIONS && len) {
        regions[nr_regions].lo = lo;
        regions[nr_regions].hi = lo + len;
        nr_regions++;
        ok = true;
    }
    hw_spin_unlock(&regions_lock);
    hw_record_leave();
    return ok;
}

bool hw_roots_unregister(uintptr_t lo, uintptr_t len)
{
    bool ok = false;
    hw_record_enter();
    hw_spin_lock(&regions_lock);
    for (unsigned i = 0; i < nr_regions; i++) {
        if (regions[i].lo == lo && regions[i].hi == lo + len) {
            regions[i] = regions[--nr_regions];
            ok = true;
            break;
        }
    }
    hw_spin_unlock(&regions_lock);
    hw_record_leave();
    return ok;
}

/* Add [lo, hi) as roots, split at unreadable holes. */
static struct hw_root *add_root_of(struct hw_roots *r, int kind, int tid, uintptr_t lo, uintptr_t hi, uintptr_t bias,
                                   const char *module)
{
    const struct hw_module *mod = kind == HW_ROOT_GLOBAL ? hw_modules_loaded(bias) : NULL;
    struct hw_root *first = NULL;
    lo = (lo + 7) & ~(uintptr_t)7;
    while (lo < hi) {
        const struct hw_mapping *m = hw_maps_from(&r->maps, lo);
        if (!m)
            return first;
        if (m->lo > lo) {  /* a hole: go on at the next mapping */
            lo = m->lo;
            continue;
        }
        uintptr_t end = m->hi < hi ? m->hi : hi;
        if (m->readable) {
            struct hw_root *root = hw_vec_push(&r->roots);
            if (!root)
                return first;
            *root = (struct hw_root){ .lo = lo, .hi = end, .kind = kind, .tid = tid, .module_bias = bias,
                                      .module = module, .module_seq = mod ? mod->seq : 0 };
            if (!first)
                first = root;
        }
        lo = end;
    }
    return first;
}

static struct hw_root *add_root(struct hw_roots *r, int kind, int tid, uintptr_t lo, uintptr_t hi, uintptr_t bias,
                                const char *module)
{
    return add_root_of(r, kind, tid, lo, hi, bias, module);
}

/* ---- globals ---------------------------------------------------------------------------------- */

/* Record the module's non-executable segments in r->data, for the vtable pointers. */
static void module_data(struct hw_roots *r, const struct dl_phdr_info *info)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD || (p->p_flags & PF_X) || !p->p_memsz)
            continue;
        struct hw_range *d = hw_vec_push(&r->data);
        if (!d)
            return;  /* fewer candidates: blocks of those modules' classes stay untyped */
        d->lo = info->dlpi_addr + p->p_vaddr;
        d->hi = d->lo + p->p_memsz;
    }
}

/* Sort r->data by address and merge what touches (an insertion sort: a few hundred ranges,
 * mostly in order already; no allocation). */
static void sort_data(struct hw_roots *r)
{
    struct hw_range *d = (struct hw_range *)r->data.data;
    size_t n = r->data.nr, kept = 0;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && d[j - 1].lo > d[j].lo; j--) {
            struct hw_range t = d[j];
            d[j] = d[j - 1];
            d[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        if (kept && d[i].lo <= d[kept - 1].hi) {
            if (d[i].hi > d[kept - 1].hi)
                d[kept - 1].hi = d[i].hi;
        } else {
            d[kept++] = d[i];
        }
    }
    r->data.nr = kept;
}

/* A module's writable data as roots, but glibc's main_arena (hw_glibcheap_main_arena). */
static void add_globals(struct hw_roots *r, uintptr_t lo, uintptr_t hi, const struct dl_phdr_info *info)
{
    uintptr_t ex_lo, ex_hi;
    if (hw_glibcheap_main_arena(&ex_lo, &ex_hi) && ex_lo < hi && ex_hi > lo) {
        if (ex_lo > lo)
            add_root_of(r, HW_ROOT_GLOBAL, 0, lo, ex_lo, info->dlpi_addr, info->dlpi_name);
        if (ex_hi < hi)
            add_root_of(r, HW_ROOT_GLOBAL, 0, ex_hi, hi, info->dlpi_addr, info->dlpi_name);
        return;
    }
    add_root_of(r, HW_ROOT_GLOBAL, 0, lo, hi, info->dlpi_addr, info->dlpi_name);
}

static int globals_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct hw_roots *r = arg;
    uintptr_t relro_lo = 0, relro_hi = 0;
    module_data(r, info);
    if (allocator_module[0] && info->dlpi_name && !strcmp(info->dlpi_name, allocator_module) && !allocator_is_glibc)
        return 0;   /* another allocator's own state (allocator_module) */
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + p->p_vaddr;
        if (p->p_type == PT_LOAD && (p->p_flags & PF_X) && hw_self_text_lo >= lo && hw_self_text_lo < lo + p->p_memsz)
            return 0;  /* the shim itself: its state is not the application's */
        if (p->p_type == PT_GNU_RELRO) {
            relro_lo = lo;
            relro_hi = lo + p->p_memsz;
        }
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD || !(p->p_flags & PF_W) || !p->p_memsz)
            continue;
        uintptr_t lo = info->dlpi_addr + p->p_vaddr, hi = lo + p->p_memsz;
        /* RELRO is read-only after relocation: addresses of code and data, never the heap. */
        if (relro_hi > lo && relro_lo < hi) {
            if (relro_lo > lo)
                add_globals(r, lo, relro_lo, info);
            lo = relro_hi;
        }
        if (lo < hi)
            add_globals(r, lo, hi, info);
    }
    return 0;
}

/* ---- threads ---------------------------------------------------------------------------------- */

static void thread_roots(struct hw_roots *r, const struct hw_stopped_thread *t)
{
    int state = atomic_load(&t->state);
    if (state == HW_T_GONE || state == HW_T_SIGNALED)
        return;
    uintptr_t lo = 0, hi = 0, tp = t->tp, reg_tp = 0;
    bool stopped = state != HW_T_UNSTOPPED;
    bool known = hw_threads_stack_of(t->tid, &lo, &hi, &reg_tp);
    /* Stopped with its stack pointer off its own stack (and off its sigaltstack): either a
     * stale registry entry of a reused tid, or this very thread running on another stack,
     * a coroutine's (swapcontext, fibers), which may be a heap block. */
    uintptr_t off_lo = 0, off_hi = 0;
    if (known && stopped && (t->sp < lo || t->sp > hi) && !(t->alt_lo <= t->sp && t->sp < t->alt_hi)) {
        const struct hw_mapping *m = hw_maps_of(&r->maps, t->sp);
        if (t->tp && reg_tp == t->tp && m) {
            off_lo = m->lo;
            off_hi = m->hi;
        } else {
            known = false;
        }
    }
    if (!known && stopped) {
        const struct hw_mapping *m = hw_maps_of(&r->maps, t->sp);
        if (m) {
            lo = m->lo;
            hi = m->hi;
        }
    }
    if (!tp)
        tp = reg_tp;
    uintptr_t *live = tp ? hw_vec_push(&r->live_tp) : NULL;
    if (live)
        *live = tp;
    struct hw_thread_info *ti = hw_vec_push(&r->threads);
    if (ti)
        *ti = (struct hw_thread_info){ .tid = t->tid, .state = state, .sp = stopped ? t->sp : 0,
                                       .pc = stopped ? t->pc : 0,
                                       .stack_lo = off_hi ? off_lo : lo, .stack_hi = off_hi ? off_hi : hi,
                                       .tp = tp,
                                       .have_start = stopped,
                                       .start = { .pc = t->pc, .sp = t->sp, .rbp = t->rbp, .exact = t->exact_pc } };
    uintptr_t tls_lo = 0, tls_hi = 0;
    if (tp) {
        tls_lo = tp + TCB_SIZE - static_tls_size;
        tls_hi = tp + TCB_SIZE;
        /* TCB_SIZE is an upper bound (glibc 2.36's struct pthread is 2368 bytes); a thread's
         * descriptor ends its stack mapping, and what lies past it is another mapping (the
         * shim's own memory, which holds copies of a stopped caller's registers). */
        const struct hw_mapping *own = hw_maps_of(&r->maps, tp);
        if (own && tls_hi > own->hi)
            tls_hi = own->hi;
    }
    /* A thread interrupted by the signal may have live data in the red zone below its
     * stack pointer; one that stopped itself (caller, safepoint) has none there. */
    uintptr_t red = t->signal_frame ? HW_RED_ZONE : 0;
    if (hi > lo) {
        uintptr_t from = lo;
        if (stopped && t->sp >= lo && t->sp <= hi)
            from = t->sp - red > lo ? t->sp - red : lo;
        uintptr_t to = hi;
        if (tls_lo > from && tls_lo < to)
            to = tls_lo;  /* the descriptor and TLS at the top of a thread's stack: kind 'tls' */
        add_root(r, HW_ROOT_STACK, t->tid, from, to, 0, NULL);
    }
    if (off_hi) {
        /* Its own stack was scanned whole above (the frames that switched away live there,
         * somewhere); the other one from the stack pointer up, ended by the mark at the end
         * of the heap block it may be. */
        uintptr_t from = t->sp - red > off_lo ? t->sp - red : off_lo;
        struct hw_root *s = add_root(r, HW_ROOT_STACK, t->tid, from, off_hi, 0, NULL);
        if (s)
            s->clip_at = t->sp;
    }
    if (t->regs_hi > t->regs_lo)
        add_root(r, HW_ROOT_REGISTERS, t->tid, t->regs_lo, t->regs_hi, 0, NULL);
    if (t->fpu_hi > t->fpu_lo)
        add_root(r, HW_ROOT_REGISTERS, t->tid, t->fpu_lo, t->fpu_hi, 0, NULL);
    if (tp) {
        add_root(r, HW_ROOT_TLS, t->tid, tls_lo, tls_hi, 0, NULL);
        /* tcbhead_t.dtv at tp+8 points at dtv[1]; dtv[-1].counter is its length; 16-byte slots. */
        const struct hw_mapping *m = hw_maps_of(&r->maps, tp + 8);
        if (m && m->readable) {
            uintptr_t dtv = *(const uintptr_t *)(tp + 8);
            const struct hw_mapping *d = hw_maps_of(&r->maps, dtv - 16);
            if (d && d->readable && dtv >= d->lo + 16) {
                uintptr_t len = *(const uintptr_t *)(dtv - 16);
                if (len < (1u << 20))
                    add_root(r, HW_ROOT_DTV, t->tid, dtv - 16, dtv + 16 * (len + 1), 0, NULL);
            }
        }
    }
    if (t->alt_hi > t->alt_lo)
        add_root(r, HW_ROOT_ALTSTACK, t->tid, t->alt_lo, t->alt_hi, 0, NULL);
}

/* Sort v's words (a shell sort: no allocation). */
static void sort_words(struct hw_vec *v)
{
    uintptr_t *a = (uintptr_t *)v->data;
    for (size_t gap = v->nr / 2; gap; gap /= 2)
        for (size_t i = gap; i < v->nr; i++)
            for (size_t j = i; j >= gap && a[j - gap] > a[j]; j -= gap) {
                uintptr_t t = a[j];
                a[j] = a[j - gap];
                a[j - gap] = t;
            }
}

static bool has_word(const struct hw_vec *v, uintptr_t x)
{
    const uintptr_t *a = (const uintptr_t *)v->data;
    size_t lo = 0, hi = v->nr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->nr && a[lo] == x;
}

/* A joinable thread that has exited but is not joined yet: its descriptor holds its return
 * value (struct pthread's result) until pthread_join takes it. Not its stack: it is dead. */
static void exited_thread_root(uintptr_t pd, int tid, void *arg)
{
    struct hw_roots *r = arg;
    if (!has_word(&r->live_tp, pd))
        add_root(r, HW_ROOT_EXITED_THREAD, tid, pd, pd + TCB_SIZE, 0, NULL);
}

void hw_roots_collect(struct hw_roots *r, const struct hw_world *w)
{
    r->live_tp.elem = sizeof(uintptr_t);
    hw_vec_clear(&r->live_tp);
    r->roots.elem = sizeof(struct hw_root);
    r->threads.elem = sizeof(struct hw_thread_info);
    r->maps.elem = sizeof(struct hw_mapping);
    r->data.elem = sizeof(struct hw_range);
    hw_vec_clear(&r->roots);
    hw_vec_clear(&r->threads);
    hw_vec_clear(&r->data);
    r->glibc_chunks = allocator_is_glibc;
    hw_maps_read(&r->maps);
    dl_iterate_phdr(globals_cb, r);
    sort_data(r);
    for (uint32_t i = 0; i < w->nr; i++)
        thread_roots(r, &w->threads[i]);
    sort_words(&r->live_tp);
    hw_threads_each_joinable(exited_thread_root, r);
    uintptr_t start_lo, start_hi;
    hw_threads_starting(&start_lo, &start_hi);
    if (start_hi > start_lo)
        add_root(r, HW_ROOT_THREAD_START, 0, start_lo, start_hi, 0, NULL);
    for (unsigned i = 0; i < nr_regions; i++)  /* the world is stopped: nobody holds the lock */
        add_root(r, HW_ROOT_REGION, 0, regions[i].lo, regions[i].hi, 0, NULL);
}

