/* sampling.c: known allocation totals at three sites, for checking sampled estimates.
 *   small: 200000 x 64 B, every other one freed       alloc 12800000 B, inuse 6400000 B
 *   large: 300 x 256 KiB, 200 freed                    alloc 78643200 B, inuse 26214400 B
 *   mixed: 100000 allocations on one line, 100 of 1 MiB and 99900 of 64 B; the large ones
 *          freed: alloc 110251200 B (100000 objects), inuse 6393600 B (99900 objects).
 *          One stack with very different sizes is where per-bucket-average unbiasing goes
 *          wrong (Go issue 26618); per-sample weights do not. */
#include <stdio.h>
#include <stdlib.h>
#include "heapwatch.h"

void *small[200000], *large[300], *mixed[100000];

__attribute__((noinline)) static void alloc_small(void)
{
    for (int i = 0; i < 200000; i++)
        small[i] = malloc(64);
    for (int i = 0; i < 200000; i += 2)
        free(small[i]);
}

__attribute__((noinline)) static void alloc_large(void)
{
    for (int i = 0; i < 300; i++) {
        large[i] = malloc(256 * 1024);
        if (i % 3)
            free(large[i]);
    }
}

__attribute__((noinline)) static void alloc_mixed(void)
{
    for (int i = 0; i < 100000; i++) {
        mixed[i] = malloc(i % 1000 == 0 ? 1 << 20 : 64);
        if (i % 1000 == 0)
            free(mixed[i]);
    }
}

int main(void)
{
    alloc_small();
    alloc_large();
    alloc_mixed();
    HEAPWATCH_SNAPSHOT("done");
    puts("done");
    return 0;
}
