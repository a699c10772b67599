/* membw.c: this machine's single-thread memory read speed, for comparison with the heap walk's
 * scan speed (which is single-threaded too).
 *
 *   membw [MiB]        (default 512)
 *
 * Over an array of MiB mebibytes of uint64 (written once first, so every page is present):
 *   seq_read_GBps   sequential read: sum of every word, best of 3 passes, 1e9 bytes per second;
 *   rand_read_GBps  independent reads of one word in each of N random 64-byte lines (the loads
 *                   do not depend on each other, so the CPU overlaps them), counted as 64 bytes
 *                   a line, best of 3;
 *   latency_ns      dependent loads: a pointer chase along a random cycle through every line
 *                   of the array (each load's address comes from the previous load; 2^20 steps),
 *                   best of 3.
 * Prints one line on stdout: "seq_read_GBps=X rand_read_GBps=Y latency_ns=Z mib=M".
 * Exits 0, or 1 if the array cannot be allocated. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

#define LINE_WORDS 8 /* 64-byte lines */
#define PASSES 3

/* Keeps a result alive without printing it. */
static volatile uint64_t sink;

int main(int argc, char **argv)
{
    long mib = 512;
    if (argc > 1) {
        char *end;
        mib = strtol(argv[1], &end, 10);
        if (end == argv[1] || *end != '\0' || mib < 16 || mib > 65536) {
            fprintf(stderr, "usage: %s [MiB: 16..65536]\n", argv[0]);
            return 2;
        }
    }
    size_t words = (size_t)mib << 17; /* MiB * 2^20 / 8 */
    size_t bytes = words * sizeof(uint64_t);
    size_t lines = words / LINE_WORDS;
    uint64_t *a = aligned_alloc(64, bytes);
    if (!a) {
        fprintf(stderr, "membw: cannot allocate %ld MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < words; i++)
        a[i] = i;

    /* Sequential read: four independent sums, so the adds are not the limit. */
    double best_seq = 1e30;
    for (int pass = 0; pass < PASSES; pass++) {
        double t0 = bench_now_s();
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i < words; i += 4) {
            s0 += a[i];
            s1 += a[i + 1];
            s2 += a[i + 2];
            s3 += a[i + 3];
        }
        double t = bench_now_s() - t0;
        sink = s0 + s1 + s2 + s3;
        if (t < best_seq)
            best_seq = t;
    }

    /* Random independent line reads: as many reads as there are lines. */
    double best_rand = 1e30;
    uint64_t seed = 0x243F6A8885A308D3ULL;
    for (int pass = 0; pass < PASSES; pass++) {
        double t0 = bench_now_s();
        uint64_t s = 0;
        for (size_t i = 0; i < lines; i++)
            s += a[(bench_rnd(&seed) % lines) * LINE_WORDS];
        double t = bench_now_s() - t0;
        sink = s;
        if (t < best_rand)
            best_rand = t;
    }

    /* Dependent loads: Sattolo's algorithm makes one cycle through every line; the first word
     * of each line holds the index of the next line's first word. */
    uint32_t *perm = malloc(lines * sizeof *perm);
    double best_lat = 1e30;
    if (perm) {
        for (size_t i = 0; i < lines; i++)
            perm[i] = (uint32_t)i;
        for (size_t i = lines - 1; i > 0; i--) {
            size_t j = bench_rnd(&seed) % i;
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (size_t i = 0; i < lines; i++)
            a[(size_t)i * LINE_WORDS] = (uint64_t)perm[i] * LINE_WORDS;
        free(perm);
        size_t steps = lines < (2u << 20) ? lines / 2 : (size_t)1 << 20; /* plenty */
        for (int pass = 0; pass < PASSES; pass++) {
            double t0 = bench_now_s();
            uint64_t p = 0;
            for (size_t i = 0; i < steps; i++)
                p = a[p];
            double t = bench_now_s() - t0;
            sink = p;
            if (t < best_lat)
                best_lat = t;
        }
        best_lat = best_lat / (double)steps * 1e9;
    }

    printf("seq_read_GBps=%.2f rand_read_GBps=%.2f latency_ns=%.1f mib=%ld\n",
           (double)bytes / best_seq / 1e9, (double)lines * 64 / best_rand / 1e9,
           perm ? best_lat : 0.0, mib);
    free(a);
    return 0;
}
