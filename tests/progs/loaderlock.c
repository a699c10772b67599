/* loaderlock.c: one thread allocates inside dl_iterate_phdr callbacks (holding glibc's loader
 * lock) while others allocate through ever new call paths and create threads (thread creation
 * takes the loader lock too). An unwinder that takes a lock of its own and then the loader
 * lock (libunwind's did, on every frame-cache miss) deadlocks against the first thread.
 *   loaderlock ROUNDS
 * Prints "done" and exits 0; natively it ends in a fraction of a second. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_bool stop;
static int rounds;

static int cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info;
    (void)size;
    void *p[64];
    for (int i = 0; i < 64; i++)
        p[i] = malloc(10 * (size_t)i + 1);  /* the loader lock is held here */
    for (int i = 0; i < 64; i++)
        free(p[i]);
    (*(long *)data)++;
    return 0;
}

static void *iterator(void *arg)
{
    long n = 0;
    while (!atomic_load(&stop))
        dl_iterate_phdr(cb, &n);
    return arg;
}

static void *leaf(void *arg)
{
    char *p = malloc(48);
    memset(p, 1, 48);
    free(p);
    return arg;
}

/* Distinct return addresses at each depth: frame-cache misses in every new thread. */
__attribute__((noinline)) static void *deep(int d)
{
    if (d == 0)
        return malloc(32);
    void *p = deep(d - 1);
    free(p);
    return malloc(16 * (size_t)d);
}

static void *worker(void *arg)
{
    for (int i = 0; i < rounds; i++) {
        free(deep(i % 24));
        pthread_t t;
        pthread_create(&t, NULL, leaf, NULL);
        pthread_join(t, NULL);
    }
    return arg;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atoi(argv[1]) : 300;
    pthread_t it, w[3];
    pthread_create(&it, NULL, iterator, NULL);
    for (int i = 0; i < 3; i++)
        pthread_create(&w[i], NULL, worker, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(w[i], NULL);
    atomic_store(&stop, true);
    pthread_join(it, NULL);
    puts("done");
    return 0;
}
