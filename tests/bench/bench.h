/* bench.h: what the benchmark programs share (C and C++), so that every one of them times,
 * draws random numbers and reads its scale argument the same way.
 *
 *   bench_now_s()                 CLOCK_MONOTONIC in seconds
 *   bench_rnd(&state)             xorshift64* (Vigna): the next of a fixed sequence per seed,
 *                                 so a workload does the same allocations on every run
 *   bench_parse_scale(argc, argv) the optional scale argument (0 < scale <= 1000, default 1);
 *                                 anything else prints the usage and exits 2
 * All static inline: each program uses what it needs and the rest costs nothing. */
#ifndef HEAPWATCH_BENCH_H
#define HEAPWATCH_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t bench_rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline double bench_parse_scale(int argc, char **argv)
{
    if (argc < 2)
        return 1.0;
    char *end;
    double s = strtod(argv[1], &end);
    if (end == argv[1] || *end != '\0' || !(s > 0.0) || s > 1000.0) {
        fprintf(stderr, "usage: %s [scale>0]\n", argv[0]);
        exit(2);
    }
    return s;
}

#endif
