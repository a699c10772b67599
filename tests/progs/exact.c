/* exact.c: allocations with exactly known counts, sizes and lines, through every entry point
 * of the C allocator. Each site is on its own line; tests/t1000-exact.sh knows them by the
 * marker comments "SITE:name". Frees are chosen so that alloc and inuse differ. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapwatch.h"

#define N 100
void *keep[16][N];  /* external linkage: allocations cannot be elided */

__attribute__((noinline)) static void use_malloc(void)
{
    for (int i = 0; i < N; i++)
        keep[0][i] = malloc(48); /* SITE:malloc */
    for (int i = 0; i < N; i += 2)
        free(keep[0][i]);
}

__attribute__((noinline)) static void use_calloc(void)
{
    for (int i = 0; i < N; i++)
        keep[1][i] = calloc(10, 12); /* SITE:calloc */
    for (int i = 0; i < 30; i++)
        free(keep[1][i]);
}

__attribute__((noinline)) static void use_realloc(void)
{
    for (int i = 0; i < N; i++) {
        char *p = malloc(16); /* SITE:realloc_start */
        p = realloc(p, 32); /* SITE:realloc_grow */
        p = realloc(p, 64); /* SITE:realloc_grow2 */
        keep[2][i] = p;
    }
}

__attribute__((noinline)) static void use_aligned(void)
{
    for (int i = 0; i < N; i++) {
        void *p;
        if (posix_memalign(&p, 64, 200) == 0) /* SITE:posix_memalign */
            keep[3][i] = p;
        keep[4][i] = aligned_alloc(128, 256); /* SITE:aligned_alloc */
        keep[5][i] = memalign(32, 100); /* SITE:memalign */
        keep[6][i] = valloc(300); /* SITE:valloc */
        keep[7][i] = strdup("0123456789"); /* SITE:strdup */
    }
    for (int i = 0; i < 10; i++)
        free(keep[6][i]);
}

int main(void)
{
    use_malloc();
    use_calloc();
    use_realloc();
    use_aligned();
    int rc = HEAPWATCH_SNAPSHOT("done");
    printf("snapshot %s\n", rc == 0 ? "taken" : "unavailable");
    return 0;
}
