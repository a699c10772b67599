/* This file implements the per-stack counters' updates (counts.h).
 *
 * Design notes (invariants):
 *  1. A thread's cache is a page of CACHE_SLOTS slots, direct-mapped by counter set. Only
 *     its thread writes it, inside record sections. Caches are linked into `caches` for
 *     good: a reader walks them without a lock, and a thread that ends leaves its cache
 *     empty and free for the next thread to take.
 *  2. A slot's deltas go to the shared counters (locked adds) before another set takes the
 *     slot: a set's count is the shared counters plus the deltas in at most one slot of
 *     each cache.
 *  3. Single-threaded programs skip the caches: plain adds to the shared counters, which no
 *     other thread writes; one add instruction each, which a signal handler on the same
 *     thread cannot split. A thread started behind pthread_create's back (glibc's own, for
 *     a SIGEV_THREAD timer) turns that off at its first count; a plain add of the first
 *     thread that began just before may then lose one concurrent update of the same counter.
 *  4. Only threads that went through hw_counts_thread_start have caches (taken outside
 *     record sections); the others add to the shared counters with locked adds. */
#define _GNU_SOURCE
#include "counts.h"

#include <string.h>
#include "threadhooks.h"

#define CACHE_SLOTS 64

struct slot {
    struct hw_stack_counters *c;   /* NULL: empty */
    uint64_t v[6];                 /* alloc samples, weight, bytes; free samples, weight, bytes */
};

struct cache {
    struct cache *next;            /* every cache ever made */
    _Atomic bool in_use;
    struct slot slot[CACHE_SLOTS];
};

static struct cache *_Atomic caches;
static __thread struct cache *mine __attribute__((tls_model("initial-exec")));

/* What C++ thread_local destructors use: called at the thread's end (return or pthread_exit),
 * and unlike a pthread key it takes none of the program's (t5400 checks its key numbers). */
extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso);
extern void *__dso_handle;

static void flush_slot(struct slot *s)
{
    struct hw_stack_counters *c = s->c;
    _Atomic uint64_t *to[6] = { &c->alloc_samples, &c->alloc_weight, &c->alloc_bytes,
                                &c->free_samples, &c->free_weight, &c->free_bytes };
    for (int k = 0; k < 6; k++)
        if (s->v[k])
            atomic_fetch_add_explicit(to[k], s->v[k], memory_order_relaxed);
    memset(s, 0, sizeof *s);
}

/* At the thread's end: the cache's deltas go to the shared counters. */
static void thread_exit(void *arg)
{
    struct cache *c = arg;
    hw_record_enter();
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (c->slot[i].c)
            flush_slot(&c->slot[i]);
    if (mine == c)
        mine = NULL;
    hw_record_leave();
    atomic_store_explicit(&c->in_use, false, memory_order_release);
}


/* Take or make a cache for the calling thread; NULL when out of memory. */
static struct cache *take_cache(void)
{
    struct cache *c;
    for (c = atomic_load_explicit(&caches, memory_order_acquire); c; c = c->next) {
        bool expected = false;
        if (!atomic_load_explicit(&c->in_use, memory_order_relaxed) &&
            atomic_compare_exchange_strong(&c->in_use, &expected, true))
            break;
    }
    if (!c) {
        if (!(c = hw_map(sizeof *c)))
            return NULL;
        atomic_store_explicit(&c->in_use, true, memory_order_relaxed);
        c->next = atomic_load_explicit(&caches, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&caches, &c->next, c, memory_order_release, memory_order_relaxed))
            ;
    }
    mine = c;
    hw_guard_enter();   /* it allocates its list entry */
    __cxa_thread_atexit_impl(thread_exit, c, &__dso_handle);
    hw_guard_leave();
    return c;
}

void hw_counts_thread_start(void)
{
    if (!mine && atomic_load(&hw_program_threads))
        take_cache();
}

static inline void add_unshared(_Atomic uint64_t *c, uint64_t v)
{
    __asm__("addq %1, %0" : "+m"(*(uint64_t *)c) : "er"(v));
}

/* Whether only one thread counts: no thread started through pthread_create, and no second
 * thread seen here (glibc starts some behind its back, for a SIGEV_THREAD timer). */
static inline bool one_counting_thread(void)
{
    static _Atomic uintptr_t counting_thread;   /* its TLS block's address */
    if (HW_UNLIKELY(atomic_load_explicit(&hw_program_threads, memory_order_relaxed)))
        return false;
    uintptr_t me = (uintptr_t)&hw_self, expected = 0;
    if (HW_UNLIKELY(me != atomic_load_explicit(&counting_thread, memory_order_relaxed)) &&
        !atomic_compare_exchange_strong(&counting_thread, &expected, me)) {
        atomic_store(&hw_program_threads, true);
        return false;
    }
    return true;
}

void hw_counts_add(struct hw_stack_counters *c, bool is_free, uint64_t weight, uint64_t bytes)
{
    if (HW_LIKELY(one_counting_thread())) {
        if (is_free) {
            add_unshared(&c->free_samples, 1);
            add_unshared(&c->free_weight, weight);
            add_unshared(&c->free_bytes, bytes);
        } else {
            add_unshared(&c->alloc_samples, 1);
            add_unshared(&c->alloc_weight, weight);
            add_unshared(&c->alloc_bytes, bytes);
        }
        return;
    }
    struct cache *cache = mine;
    if (HW_UNLIKELY(!cache)) {   /* no cache (hw_counts_thread_start), or it ended already */
        _Atomic uint64_t *t = is_free ? &c->free_samples : &c->alloc_samples;
        atomic_fetch_add_explicit(t, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(is_free ? &c->free_weight : &c->alloc_weight, weight, memory_order_relaxed);
        atomic_fetch_add_explicit(is_free ? &c->free_bytes : &c->alloc_bytes, bytes, memory_order_relaxed);
        return;
    }
    struct slot *s = &cache->slot[((uintptr_t)c / sizeof *c) % CACHE_SLOTS];
    if (s->c != c) {
        if (s->c)
            flush_slot(s);
        s->c = c;
    }
    uint64_t *v = s->v + (is_free ? 3 : 0);
    v[0] += 1;
    v[1] += weight;
    v[2] += bytes;
}

void hw_counts_pending(struct hw_vec *out)
{
    for (struct cache *c = atomic_load_explicit(&caches, memory_order_acquire); c; c = c->next)
        for (int i = 0; i < CACHE_SLOTS; i++) {
            const struct slot *s = &c->slot[i];
            struct hw_stack_counters *sc = s->c;
            if (!sc)
                continue;
            struct hw_pending_counts *p = hw_vec_push(out);
            if (!p)
                goto sort;   /* out of memory: what fits, still sorted */
            p->index = hw_depot_counters_index(sc);
            p->alloc_samples = s->v[0], p->alloc_weight = s->v[1], p->alloc_bytes = s->v[2];
            p->free_samples = s->v[3], p->free_weight = s->v[4], p->free_bytes = s->v[5];
        }
sort:;
    struct hw_pending_counts *a = (struct hw_pending_counts *)out->data;
    size_t n = out->nr;
    hw_sort_by_first_word(a, n, sizeof *a);
    /* One entry per counter set: the same set may wait in several threads' caches. */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept && a[kept - 1].index == a[i].index) {
            struct hw_pending_counts *k = &a[kept - 1];
            k->alloc_samples += a[i].alloc_samples, k->alloc_weight += a[i].alloc_weight;
            k->alloc_bytes += a[i].alloc_bytes, k->free_samples += a[i].free_samples;
            k->free_weight += a[i].free_weight, k->free_bytes += a[i].free_bytes;
        } else {
            a[kept++] = a[i];
        }
    }
    out->nr = kept;
}
