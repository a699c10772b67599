/* w_churn2.c: the churn of w_churn.c on two threads.
 * Each thread does about 10 million malloc/free pairs (x scale) of 16..256 bytes over its own
 * ring of 1024 slots. Usage: w_churn2 [scale]   Prints "allocs=N" and a checksum on stdout. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

#define SLOTS 1024
#define THREADS 2
#define DEFAULT_PAIRS_PER_THREAD 10000000.0

struct job {
    long pairs;
    uint64_t seed;
    uint64_t sum;
    long allocs;
    int failed;
};

static void *churn(void *arg)
{
    struct job *j = arg;
    unsigned char *slot[SLOTS];
    memset(slot, 0, sizeof slot);
    uint64_t seed = j->seed, sum = 0;
    long allocs = 0;

    for (long i = 0; i < j->pairs; i++) {
        uint64_t r = bench_rnd(&seed);
        unsigned idx = (unsigned)(r & (SLOTS - 1));
        size_t size = 16 + (size_t)((r >> 10) % 241); /* 16..256 */
        if (slot[idx]) {
            sum += slot[idx][0] ^ slot[idx][1];
            free(slot[idx]);
        }
        unsigned char *p = malloc(size);
        if (!p) {
            j->failed = 1;
            break;
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
        }
    }
    j->sum = sum;
    j->allocs = allocs;
    return NULL;
}

int main(int argc, char **argv)
{
    long pairs = (long)(DEFAULT_PAIRS_PER_THREAD * bench_parse_scale(argc, argv));
    struct job jobs[THREADS];
    pthread_t tid[THREADS];

    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (struct job){.pairs = pairs, .seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1)};
        int rc = pthread_create(&tid[t], NULL, churn, &jobs[t]);
        if (rc != 0) {
            fprintf(stderr, "w_churn2: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }
    uint64_t sum = 0;
    long allocs = 0;
    int failed = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(tid[t], NULL);
        sum = sum * 31 + jobs[t].sum;
        allocs += jobs[t].allocs;
        failed |= jobs[t].failed;
    }
    if (failed) {
        fprintf(stderr, "w_churn2: out of memory\n");
        return 1;
    }
    printf("w_churn2: allocs=%ld checksum=%016llx\n", allocs, (unsigned long long)sum);
    return 0;
}
