/* w_bigheap.c: a big live heap.
 * Allocates about 3 million objects (x scale) of 64..336 bytes (200 on average, so about
 * 600 MB requested), held in a pointer array and each linked to an earlier object, all live at
 * once; then takes a heapwatch snapshot labelled "bench" if the program runs under
 * libheapwatch.so (unless BENCH_NO_SNAPSHOT is set: bench.sh's record configuration measures
 * recording alone), then frees everything.
 * Usage: w_bigheap [scale]   Prints "allocs=N", the live bytes and a checksum on stdout.
 *
 * Built with -DLSAN_BUILD (clang -fsanitize=leak), the program instead runs LeakSanitizer's
 * leak check at the point where it would take the snapshot, and prints its duration on
 * stderr as "lsan_check_ms=T leaks=0|1"; stdout is the same as the normal build's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef LSAN_BUILD
#include <sanitizer/lsan_interface.h>
#endif
#include "bench.h"

#define DEFAULT_OBJECTS 3000000.0

/* Same declaration as include/heapwatch.h: weak, so NULL when the shim is not loaded. */
extern int heapwatch_snapshot(const char *label) __attribute__((weak));

struct obj {
    struct obj *next;
    uint32_t size; /* bytes requested for the whole object */
    uint32_t tag;
    unsigned char data[];
};

int main(int argc, char **argv)
{
    long nobj = (long)(DEFAULT_OBJECTS * bench_parse_scale(argc, argv));
    long allocs = 0;
    struct obj **objs = malloc((size_t)nobj * sizeof *objs);
    if (!objs) {
        fprintf(stderr, "w_bigheap: out of memory\n");
        return 1;
    }
    allocs++;
    uint64_t seed = 0x13198A2E03707344ULL, sum = 0;
    unsigned long long live_bytes = 0;

    for (long i = 0; i < nobj; i++) {
        uint64_t r = bench_rnd(&seed);
        uint32_t size = 64 + (uint32_t)((r >> 20) % 273); /* 64..336, mean 200 */
        struct obj *o = malloc(size);
        if (!o) {
            fprintf(stderr, "w_bigheap: out of memory after %ld objects\n", i);
            return 1;
        }
        allocs++;
        live_bytes += size;
        o->size = size;
        o->tag = (uint32_t)i;
        memset(o->data, (int)(r & 0xff), 32);
        o->data[size - sizeof *o - 1] = (unsigned char)i;
        o->next = i ? objs[(long)((r >> 40) % (uint64_t)i)] : NULL;
        objs[i] = o;
    }

    /* Read everything once, so the heap really is live. */
    for (long i = 0; i < nobj; i++) {
        const struct obj *o = objs[i];
        sum = sum * 31 + o->tag + o->data[o->size - sizeof *o - 1] + (o->next ? o->next->size : 0);
    }

    int snap = -2; /* -2: shim not loaded */
#ifdef LSAN_BUILD
    {
        double t0 = bench_now_s();
        int leaks = __lsan_do_recoverable_leak_check();
        double ms = (bench_now_s() - t0) * 1e3;
        fprintf(stderr, "lsan_check_ms=%.3f leaks=%d\n", ms, leaks);
    }
#else
    if (heapwatch_snapshot && !getenv("BENCH_NO_SNAPSHOT"))
        snap = heapwatch_snapshot("bench");
#endif

    for (long i = 0; i < nobj; i++)
        free(objs[i]);
    free(objs);
    printf("w_bigheap: allocs=%ld objects=%ld live_bytes=%llu snapshot=%d checksum=%016llx\n",
           allocs, nobj, live_bytes, snap, (unsigned long long)sum);
    return 0;
}
