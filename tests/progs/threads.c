/* threads.c: 8 threads allocate and free concurrently (mixed sizes, some blocks freed by
 * another thread than the one that allocated them). At the end every block is freed, so the
 * profile's inuse must be exactly zero and exactly THREADS*ROUNDS*PER allocations made. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "heapwatch.h"

#define THREADS 8
#define ROUNDS 200
#define PER 250

static void *handoff[THREADS][PER];
static pthread_barrier_t barrier;
static long requested[THREADS];

__attribute__((noinline)) static void *worker(void *arg)
{
    long t = (long)(intptr_t)arg;
    unsigned seed = (unsigned)t * 7919u + 1;
    for (int r = 0; r < ROUNDS; r++) {
        void *mine[PER];
        for (int i = 0; i < PER; i++) {
            size_t size = 16 + (rand_r(&seed) % 2000);
            requested[t] += (long)size;
            mine[i] = malloc(size); /* SITE:worker */
        }
        for (int i = 0; i < PER; i += 2)
            free(mine[i]);
        for (int i = 1; i < PER; i += 2)
            handoff[t][i] = mine[i];
        pthread_barrier_wait(&barrier);
        /* free the odd blocks of the next thread: cross-thread frees */
        long victim = (t + 1) % THREADS;
        for (int i = 1; i < PER; i += 2)
            free(handoff[victim][i]);
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

int main(void)
{
    pthread_t tid[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (long t = 0; t < THREADS; t++)
        pthread_create(&tid[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(tid[t], NULL);
    HEAPWATCH_SNAPSHOT("joined");
    long total = 0;
    for (int t = 0; t < THREADS; t++)
        total += requested[t];
    printf("%d threads done, %ld bytes requested\n", THREADS, total);
    return 0;
}
