/* glibcheap.h: the live blocks of glibc's malloc, found by walking its own arenas from chunk
 * headers (as the chap tool does on core files), so that the sampled mode needs no record
 * per unsampled malloc or free: the walk runs with the world stopped or in a fork child, where
 * the heap is frozen.
 *
 * For glibc 2.35 to 2.41 on x86-64 (the layouts of malloc_state, malloc_par, heap_info and
 * tcache_perthread_struct are the same in all of them; 2.34 lacks malloc_par's huge page
 * fields and 2.42 reworked the tcache). hw_glibcheap_probe learns, at init, where glibc keeps
 * what the walk reads (main_arena and mp_ are not exported, tcache_key is random, the tcache
 * pointer is a static TLS variable of libc) and checks every guess; the walk checks every
 * header it follows and returns an error rather than crash or loop on an inconsistency.
 *
 * What the walk reports: every in-use chunk of every arena (the main heap from mp_.sbrk_base
 * to main_arena.top, then every heap of every other arena, found from the heap of its top
 * chunk along heap_info.prev), as (user pointer, usable size = malloc_usable_size), in
 * increasing address order over all heaps. Left out: free chunks (the next chunk's
 * PREV_INUSE clear), top chunks, fenceposts, the chunks in the fastbins (each arena's
 * fastbinsY lists, safe-linking demangled), the chunks in the tcaches and the tcache structs
 * themselves of the threads whose tcache_perthread_struct the caller passes.
 *   - A chunk is left out as "in a tcache" only when it is on one of the lists of the structs
 *     passed: the key word (user word 1 == tcache_key) alone is not proof, since glibc does
 *     not clear it when a thread's exit flushes its tcache into a fastbin and malloc later
 *     hands that chunk out again straight from the fastbin. So the caller must pass the
 *     tcache of every live thread (a thread's struct is *(uintptr_t *)(tp + tpoff), see
 *     hw_glibcheap_tcache_tpoff); one left out shows its cached chunks and its struct as live.
 *     A thread inside tcache_thread_shutdown (exiting) has already cleared its pointer: its
 *     struct and the chunks not yet flushed show as live.
 *   - mmapped chunks (requests above the mmap threshold) are NOT reachable from the arenas
 *     (glibc keeps no list of them): the caller tracks those itself.
 *   - A main heap that is not contiguous (sbrk failed and glibc fell back to mmap, or
 *     something else moved the break: fenceposts in the main heap) is refused
 *     (HW_GLIBCHEAP_ENONCONTIG).
 *   - It cannot work under valgrind or any other replacement of malloc (probe fails).
 * Context: probe runs once in normal context (may call malloc and free); the rest is
 * SIGSAFE: no allocation (scratch space comes from mmap), no locks, no stdio. */
#ifndef HW_GLIBCHEAP_H
#define HW_GLIBCHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hw.h"

/* Errors of hw_glibcheap_walk, all negative. */
enum {
    HW_GLIBCHEAP_ENOPROBE = -1,    /* the probe did not succeed */
    HW_GLIBCHEAP_EARENA = -2,      /* arena list inconsistent */
    HW_GLIBCHEAP_EHEAP = -3,       /* heap_info chain or heap bounds inconsistent */
    HW_GLIBCHEAP_ECHUNK = -4,      /* a chunk header inconsistent */
    HW_GLIBCHEAP_EFASTBIN = -5,    /* a fastbin list inconsistent */
    HW_GLIBCHEAP_ETCACHE = -6,     /* a tcache inconsistent (a thread stopped inside tcache_put
                                    * or tcache_get, or in tcache_init before its memset:
                                    * resume the world and retry) */
    HW_GLIBCHEAP_ENOMEM = -7,      /* no scratch mapping */
    HW_GLIBCHEAP_ENONCONTIG = -8,  /* main heap not contiguous: unsupported */
    HW_GLIBCHEAP_EEXCLUDED = -9,   /* a fastbin or tcache chunk that is not a chunk of the walk,
                                    * or on two lists at once */
};

/* Learn and check what the walk needs; false (see hw_glibcheap_failure) if anything is not as
 * expected, and the caller must keep its own records. Idempotent. Context: normal, calls
 * malloc and free. */
bool hw_glibcheap_probe(void);
/* Why the probe failed ("" when it did not). */
const char *hw_glibcheap_failure(void) HW_SIGSAFE;

/* glibc's mmap threshold now (malloc_par.mmap_threshold: requests at or above it may be
 * mmapped chunks, which no arena lists); 0 before a successful probe. Context: SIGSAFE. */
size_t hw_glibcheap_mmap_threshold(void) HW_SIGSAFE;

/* Offset from the thread pointer (fs base) of libc's per-thread `tcache` pointer: a thread's
 * struct is *(uintptr_t *)((char *)tp + tpoff), 0 while the thread has none. Valid after a
 * successful probe. Context: SIGSAFE. */
intptr_t hw_glibcheap_tcache_tpoff(void) HW_SIGSAFE;
/* The calling thread's tcache_perthread_struct (0 if none yet). Context: SIGSAFE. */
uintptr_t hw_glibcheap_my_tcache(void) HW_SIGSAFE;

/* Whether any arena's mutex is held now (by a stopped thread inside malloc or free: resume
 * the world briefly and retry). false before a successful probe. Context: SIGSAFE. */
bool hw_glibcheap_busy(void) HW_SIGSAFE;

/* Where main_arena (glibc's malloc_state of the main heap) lies, [*lo, *hi); false before a
 * successful probe. It only ever points at free chunks and the top chunk, and at heap
 * addresses where chunks once began (last_remainder, bins emptied since): never a reference
 * of the program's, and a stale one can land inside a live block. Context: SIGSAFE. */
bool hw_glibcheap_main_arena(uintptr_t *lo, uintptr_t *hi) HW_SIGSAFE;

/* The arenas (main first, then along main_arena.next): up to max addresses into out; returns
 * how many there are, or a negative error. For tests and diagnostics. Context: SIGSAFE. */
int hw_glibcheap_arenas(uintptr_t *out, size_t max) HW_SIGSAFE;

/* Call fn(user pointer, usable size, arg) for every in-use chunk (see above), in increasing
 * address order; fn returns false to stop. tcache_structs: the tcache_perthread_struct of
 * every live thread (zeros are skipped). Returns the number of calls made, or a negative
 * error (HW_GLIBCHEAP_E*). Context: SIGSAFE, the world stopped or a fork child (the heap
 * must not change during the walk). */
int hw_glibcheap_walk(const uintptr_t *tcache_structs, size_t n,
                      bool (*fn)(uintptr_t block, size_t usable, void *arg), void *arg) HW_SIGSAFE;
const char *hw_glibcheap_strerror(int err) HW_SIGSAFE;
/* Drop this process's pages of every arena's heaps (MADV_DONTNEED): the walk's fork child, done
 * with the heap once its snapshot is committed, so that the program's writes from then on
 * no longer copy the pages it still shared with the child. Returns the number of heaps, or a
 * negative error. Context: SIGSAFE, a fork child that no longer reads the heap. */
int hw_glibcheap_release(void) HW_SIGSAFE;

/* What the last walk saw. */
struct hw_glibcheap_stats {
    size_t arenas, heaps;          /* arenas, and heaps (the main heap counts as one) */
    size_t chunks;                 /* chunks walked, top and fenceposts excluded */
    size_t in_use;                 /* reported */
    size_t free;                   /* free in a bin (next chunk's PREV_INUSE clear) */
    size_t fastbin, tcache;        /* left out: in a fastbin, in a tcache list */
    size_t tcache_structs;         /* left out: the structs passed */
    size_t tcache_skipped;         /* structs passed that did not check out (not excluded) */
    size_t stale_key;              /* reported although user word 1 == tcache_key */
    size_t scratch_bytes;          /* mapped for the walk's sorted lists */
};
void hw_glibcheap_last_stats(struct hw_glibcheap_stats *out) HW_SIGSAFE;

#endif
