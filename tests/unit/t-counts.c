/* This file implements the unit test of preload/counts.c, the per-stack counters' updates:
 * one thread adds straight to the shared counters; once threads count, each keeps pending
 * deltas that the readers add (hw_counts_pending: one entry per counter set, sorted, summed
 * over the threads' caches), that another set taking the slot sends to the shared counters,
 * and that a thread's end flushes whole; the totals stay exact through all of it, for 8
 * threads counting into the same few sets and into many (evicting each other's slots).
 * Prints TAP. */
// LINK: preload/counts.c preload/depot.c preload/forkgate.c preload/threads.c preload/sys.c
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "counts.h"
#include "harness.h"
#include "threadhooks.h"

_Atomic bool hw_program_threads;
void hw_stw_safepoint(void) {}

#define SETS 200
#define THREADS 8
#define ROUNDS 20000

static struct hw_stack_counters *set[SETS];
static uint64_t want_alloc[SETS], want_free[SETS];   /* samples each set must end with */
static pthread_barrier_t counted, checked;

/* The shared counters plus the pending deltas, as a snapshot reads them. */
static void totals(uint64_t *alloc, uint64_t *freed, uint64_t *bytes)
{
    struct hw_vec pending = { .elem = sizeof(struct hw_pending_counts) };
    hw_counts_pending(&pending);
    const struct hw_pending_counts *p = (const struct hw_pending_counts *)pending.data;
    for (int i = 0; i < SETS; i++) {
        alloc[i] = atomic_load(&set[i]->alloc_samples);
        freed[i] = atomic_load(&set[i]->free_samples);
        bytes[i] = atomic_load(&set[i]->alloc_bytes) - atomic_load(&set[i]->free_bytes);
    }
    for (size_t k = 0; k < pending.nr; k++)
        for (int i = 0; i < SETS; i++)
            if (hw_depot_counters_index(set[i]) == p[k].index) {
                alloc[i] += p[k].alloc_samples;
                freed[i] += p[k].free_samples;
                bytes[i] += p[k].alloc_bytes - p[k].free_bytes;
            }
    hw_vec_release(&pending);
}

static bool sorted_unique(void)
{
    struct hw_vec pending = { .elem = sizeof(struct hw_pending_counts) };
    hw_counts_pending(&pending);
    const struct hw_pending_counts *p = (const struct hw_pending_counts *)pending.data;
    bool ok = true;
    for (size_t k = 1; k < pending.nr; k++)
        ok &= p[k - 1].index < p[k].index;
    hw_vec_release(&pending);
    return ok;
}

static void *worker(void *arg)
{
    long t = (long)arg;
    hw_counts_thread_start();   /* as the shim's thread_start does */
    for (int r = 0; r < ROUNDS; r++) {
        int i = r % 4 == 0 ? (int)((r / 4 + t * 7) % SETS) : (int)(r % 3);   /* three hot sets, the rest spread */
        hw_record_enter();
        hw_counts_add(set[i], false, 1, 10);
        if (r % 2)
            hw_counts_add(set[i], true, 1, 10);
        hw_record_leave();
    }
    pthread_barrier_wait(&counted);   /* the main thread reads while every cache is still full */
    pthread_barrier_wait(&checked);
    return NULL;   /* the thread's end flushes its cache */
}

int main(void)
{
    CHECK(hw_depot_init(), "init");
    for (int i = 0; i < SETS; i++) {
        uintptr_t pcs[2] = { 0x1000 + 16 * (uintptr_t)i, 0x9000 };
        set[i] = hw_depot_counters(hw_depot_put(pcs, 2));
    }

    /* One thread: straight to the shared counters. */
    hw_counts_add(set[0], false, 1, 100);
    hw_counts_add(set[0], true, 1, 100);
    struct hw_vec pending = { .elem = sizeof(struct hw_pending_counts) };
    hw_counts_pending(&pending);
    CHECK(atomic_load(&set[0]->alloc_samples) == 1 && atomic_load(&set[0]->free_bytes) == 100 && pending.nr == 0,
          "a single thread adds to the shared counters; nothing is pending");
    hw_vec_release(&pending);
    want_alloc[0] = want_free[0] = 1;

    atomic_store(&hw_program_threads, true);   /* as pthread_create does */
    for (long t = 0; t < THREADS; t++)
        for (int r = 0; r < ROUNDS; r++) {
            int i = r % 4 == 0 ? (int)((r / 4 + t * 7) % SETS) : (int)(r % 3);
            want_alloc[i]++;
            want_free[i] += r % 2;
        }
    pthread_barrier_init(&counted, NULL, THREADS + 1);
    pthread_barrier_init(&checked, NULL, THREADS + 1);
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, worker, (void *)t);
    pthread_barrier_wait(&counted);

    static uint64_t alloc[SETS], freed[SETS], bytes[SETS];
    totals(alloc, freed, bytes);
    int wrong = 0;
    for (int i = 0; i < SETS; i++)
        wrong += alloc[i] != want_alloc[i] || freed[i] != want_free[i] || bytes[i] != 10 * (want_alloc[i] - want_free[i]);
    CHECK(!wrong, "8 threads paused with their caches full: shared plus pending counts are exact (%d sets wrong)", wrong);
    uint64_t shared_hot = atomic_load(&set[1]->alloc_samples);
    CHECK(shared_hot < want_alloc[1], "a hot set's counts wait in the caches (%llu of %llu shared)",
          (unsigned long long)shared_hot, (unsigned long long)want_alloc[1]);
    CHECK(sorted_unique(), "pending entries: one per set, sorted by index");

    pthread_barrier_wait(&checked);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    wrong = 0;
    for (int i = 0; i < SETS; i++)
        wrong += atomic_load(&set[i]->alloc_samples) != want_alloc[i] || atomic_load(&set[i]->free_samples) != want_free[i];
    hw_counts_pending(&pending);
    CHECK(!wrong && pending.nr == 0, "after the threads ended: every count is shared, none pending (%d wrong, %zu pending)",
          wrong, pending.nr);
    hw_vec_release(&pending);
    return done();
}
