/* w_churn.c: single-threaded churn of small blocks.
 * About 20 million malloc/free pairs (x scale) of 16..256 bytes over a ring of 1024 slots.
 * Usage: w_churn [scale]   Prints "allocs=N" and a checksum on stdout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

#define SLOTS 1024
#define DEFAULT_PAIRS 20000000.0

int main(int argc, char **argv)
{
    long pairs = (long)(DEFAULT_PAIRS * bench_parse_scale(argc, argv));
    static unsigned char *slot[SLOTS];
    uint64_t seed = 0x9E3779B97F4A7C15ULL, sum = 0;
    long allocs = 0;

    for (long i = 0; i < pairs; i++) {
        uint64_t r = bench_rnd(&seed);
        unsigned idx = (unsigned)(r & (SLOTS - 1));
        size_t size = 16 + (size_t)((r >> 10) % 241); /* 16..256 */
        if (slot[idx]) {
            sum += slot[idx][0] ^ slot[idx][1];
            free(slot[idx]);
        }
        unsigned char *p = malloc(size);
        if (!p) {
            fprintf(stderr, "w_churn: out of memory\n");
            return 1;
        }
        allocs++;
        p[0] = (unsigned char)r;
        p[1] = (unsigned char)size;
        p[size - 1] = (unsigned char)i;
        slot[idx] = p;
    }
    for (unsigned i = 0; i < SLOTS; i++) {
        if (slot[i]) {
            sum += slot[i][0];
            free(slot[i]);
            slot[i] = NULL;
        }
    }
    printf("w_churn: allocs=%ld checksum=%016llx\n", allocs, (unsigned long long)sum);
    return 0;
}
