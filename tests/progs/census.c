/* census.c: live blocks whose number and requested bytes are known exactly, whatever the
 * sampling, for tests/t1500-shadow.sh. Built as census-O0/-O2 with glibc's malloc, and by
 * that test also linked with jemalloc or tcmalloc when Debian has them.
 *
 *   census
 *     snapshot "baseline"   after stdio's own buffers exist
 *     one thread: blocks of sizes whose slack (usable - requested) covers 0 to above 31, and
 *       big ones (mmapped by glibc), through malloc, calloc, realloc (grown and shrunk),
 *       posix_memalign, aligned_alloc and memalign; a third freed again; a list of LIST
 *       nodes whose head is dropped (1 direct leak, LIST - 1 indirect) and DIRECT single
 *       direct leaks
 *     snapshot "census"     the delta from "baseline" is the first line printed
 *     THREADS threads allocate PER blocks each, wait for each other, then each frees a
 *       third of the next thread's blocks (cross-thread frees) and keeps the rest
 *     snapshot "threads"    after the threads are joined; the second line printed
 *
 * Printed: "census objects=N bytes=B direct=D direct_bytes=DB indirect=I indirect_bytes=IB
 * usable=U direct_usable=DU indirect_usable=IU" (the same blocks' usable sizes)
 * and "threads objects=N bytes=B": what each snapshot adds to the one before (the threads'
 * line counts only their blocks; thread creation's own allocations vary with glibc). */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clear_stack.h"
#include "heapwatch.h"

#define BLOCKS 3000
#define LIST 10
#define DIRECT 5
#define THREADS 4
#define PER 4000

static const size_t sizes[] = { 0, 1, 7, 8, 9, 16, 17, 24, 25, 40, 41, 56, 100, 255, 500, 1000, 1024,
                                4000, 40000, 140000, 300000 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

void *kept[BLOCKS];                 /* external linkage: reachable from a global */
void *thread_kept[THREADS][PER];
static long objects, bytes;         /* what census keeps (and leaks), requested sizes */
static long direct, direct_bytes, indirect, indirect_bytes;
/* The same in the allocator's usable sizes (malloc_usable_size), which the sampled mode's
 * arena walk reports for the blocks it did not sample: a walk's bytes lie between the two. */
static long usable, direct_usable, indirect_usable;

struct node {
    struct node *next;
    char pad[40];
};

/* One block of `size` requested bytes through the entry point `way`; NULL only on failure. */
static void *allocate(unsigned way, size_t size)
{
    void *p = NULL;
    switch (way % 6) {
    case 0: return malloc(size);
    case 1: return calloc(1, size);
    case 2: p = realloc(NULL, size / 2 + 1); return realloc(p, size ? size : 1);   /* grown */
    case 3: p = malloc(size + 100); return realloc(p, size ? size : 1);        /* shrunk */
    case 4: return posix_memalign(&p, 64, size) ? NULL : p;
    default: return way % 12 == 5 ? aligned_alloc(256, (size + 255) & ~(size_t)255) : memalign(32, size);
    }
}

static size_t requested(unsigned way, size_t size)
{
    if ((way % 6 == 2 || way % 6 == 3) && !size)   /* realloc(p, 0) would free */
        return 1;
    if (way % 12 == 5)
        return (size + 255) & ~(size_t)255;
    return size;
}

__attribute__((noinline)) static void one_thread(void)
{
    for (unsigned i = 0; i < BLOCKS; i++) {
        size_t size = sizes[i % NSIZES];
        kept[i] = allocate(i / NSIZES, size);
        if (!kept[i])
            abort();
        /* No stale pointer left in a kept block, up to its usable end: tcmalloc links free
         * objects through their first word, which malloc hands back as it was, and glibc
         * leaves a bin's links in bytes past the request (an aligned block's can be 40), which
         * the arena walk scans (README: "How sampled mode knows every live block"). */
        memset(kept[i], 0x5a, malloc_usable_size(kept[i]));
        objects++;
        bytes += (long)requested(i / NSIZES, size);
        usable += (long)malloc_usable_size(kept[i]);
    }
    for (unsigned i = 0; i < BLOCKS; i += 3) {
        objects--;
        bytes -= (long)requested(i / NSIZES, sizes[i % NSIZES]);
        usable -= (long)malloc_usable_size(kept[i]);
        free(kept[i]);
        kept[i] = NULL;
    }
    struct node *head = NULL;
    for (int i = 0; i < LIST; i++) {
        struct node *n = calloc(1, sizeof *n);
        __asm__ volatile("" : : "g"(n) : "memory");   /* an allocation the compiler must keep */
        n->next = head;
        *(head ? &indirect_usable : &direct_usable) += (long)malloc_usable_size(n);
        head = n;
    }
    direct += 1, indirect += LIST - 1;
    direct_bytes += sizeof(struct node), indirect_bytes += (LIST - 1) * (long)sizeof(struct node);
    for (int i = 0; i < DIRECT; i++) {
        void *volatile p = malloc(72);
        memset(p, 0x5a, 72);
        direct_usable += (long)malloc_usable_size(p);
        p = NULL;
    }
    direct += DIRECT, direct_bytes += DIRECT * 72;
    objects += LIST + DIRECT;
    bytes += LIST * (long)sizeof(struct node) + DIRECT * 72;
    usable += direct_usable + indirect_usable;
    head = NULL;
}

static pthread_barrier_t all_allocated;
static _Atomic long thread_objects, thread_bytes;

static void *worker(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    long o = 0, b = 0;
    for (unsigned i = 0; i < PER; i++) {
        unsigned way = t + i;
        size_t size = sizes[(i * 7 + t) % NSIZES] % 5000;   /* no mmapped blocks: quick */
        thread_kept[t][i] = allocate(way, size);
        if (!thread_kept[t][i])
            abort();
        memset(thread_kept[t][i], 0x5a, requested(way, size));
        o++, b += (long)requested(way, size);
    }
    pthread_barrier_wait(&all_allocated);
    unsigned other = (t + 1) % THREADS;   /* free a third of the next thread's blocks */
    for (unsigned i = 0; i < PER; i += 3) {
        o--, b -= (long)requested(other + i, sizes[(i * 7 + other) % NSIZES] % 5000);
        free(thread_kept[other][i]);
        thread_kept[other][i] = NULL;
    }
    thread_objects += o;
    thread_bytes += b;
    return NULL;
}

int main(void)
{
    printf("census: start\n");
    fflush(stdout);
    HEAPWATCH_SNAPSHOT("baseline");
    one_thread();
    clear_stack();
    HEAPWATCH_SNAPSHOT("census");
    printf("census objects=%ld bytes=%ld direct=%ld direct_bytes=%ld indirect=%ld indirect_bytes=%ld usable=%ld"
           " direct_usable=%ld indirect_usable=%ld\n", objects, bytes, direct, direct_bytes, indirect, indirect_bytes,
           usable, direct_usable, indirect_usable);
    fflush(stdout);
    pthread_barrier_init(&all_allocated, NULL, THREADS);
    pthread_t th[THREADS];
    for (unsigned t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t);
    for (unsigned t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    HEAPWATCH_SNAPSHOT("threads");
    printf("threads objects=%ld bytes=%ld\n", (long)thread_objects, (long)thread_bytes);
    return 0;
}
