/* stackshapes.c: allocations whose call stacks repeat, deepen, shorten, change call site at
 * one depth and leave a recursion by longjmp, through four allocation functions (each takes
 * its own path through the shim), on the main thread and on two others; the program prints
 * how many allocations each stack made, as the folded lines of the frames from run() in:
 * "run;once;rec;...;rec;site_a;alloc_by COUNT". t1000-exact.sh checks heapwatch's folded export against
 * them (the shim's stack memo, stackmemo.c, must never return another stack's frames).
 * Usage: stackshapes [rounds]   (default 3000) */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noipa))   /* no inlining, cloning or tail calls into other names */
#define BARRIER() __asm__ volatile("" ::: "memory")
#define MAX_DEPTH 24

static long counts[MAX_DEPTH + 1][2];   /* [depth][site]: allocations per stack, all threads */
static pthread_mutex_t counts_lock = PTHREAD_MUTEX_INITIALIZER;

static void *volatile sink;

static NOINLINE void *alloc_by(int kind)
{
    void *p = NULL;
    switch (kind) {
    case 0: p = malloc(40); break;
    case 1: p = calloc(3, 16); break;
    case 2: p = realloc(NULL, 56); break;
    default: if (posix_memalign(&p, 64, 72)) p = NULL; break;
    }
    sink = p;   /* a store after the call: no tail call, alloc_by keeps its frame */
    return p;
}

/* Two call sites at the same depth: the same caller's frame at the same address, returning
 * to different places. */
static NOINLINE void *site_a(int kind) { void *p = alloc_by(kind); BARRIER(); return p; }
static NOINLINE void *site_b(int kind) { void *p = alloc_by(kind); BARRIER(); return p; }

static __thread jmp_buf escape;   /* run()'s, in each thread */

static NOINLINE void rec(int d, int kind, int site, int jump, long *mine)
{
    if (d == 0) {
        void *p = site ? site_b(kind) : site_a(kind);
        free(p);
        mine[site]++;
        if (jump)
            longjmp(escape, 1);
        return;
    }
    rec(d - 1, kind, site, jump, mine + 2);
    BARRIER();
}

/* One allocation d levels deep; a jump comes back here by longjmp from the bottom. */
static NOINLINE void once(int d, int kind, int site, int jump, long *mine)
{
    if (!jump || !setjmp(escape))
        rec(d, kind, site, jump, mine);
    BARRIER();
}

static NOINLINE void run(unsigned seed, int rounds, long (*mine)[2])
{
    for (int i = 0; i < rounds; i++) {
        seed = seed * 1103515245u + 12345u;
        int d = (int)(seed >> 16) % (MAX_DEPTH + 1), kind = (int)(seed >> 8) & 3, site = (int)(seed >> 12) & 1;
        int jump = (seed >> 20) % 5 == 0;
        once(d, kind, site, jump, &mine[0][0]);   /* rec counts at mine[d][site] */
    }
}

struct job { unsigned seed; int rounds; long mine[MAX_DEPTH + 1][2]; };

static void add(long (*mine)[2])
{
    pthread_mutex_lock(&counts_lock);
    for (int d = 0; d <= MAX_DEPTH; d++)
        for (int s = 0; s < 2; s++)
            counts[d][s] += mine[d][s];
    pthread_mutex_unlock(&counts_lock);
}

static void *thread_main(void *arg)
{
    struct job *j = arg;
    run(j->seed, j->rounds, j->mine);
    return NULL;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 3000;
    static struct job jobs[3];
    pthread_t t[2];
    for (int i = 0; i < 3; i++) {
        jobs[i].seed = 7u + 1000u * (unsigned)i;
        jobs[i].rounds = rounds;
    }
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, thread_main, &jobs[i + 1]);
    run(jobs[0].seed, rounds, jobs[0].mine);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 3; i++)
        add(jobs[i].mine);
    /* rec(d) counted at mine + 2 * d levels: counts[d] are the allocations d levels deep */
    for (int d = 0; d <= MAX_DEPTH; d++)
        for (int s = 0; s < 2; s++) {
            if (!counts[d][s])
                continue;
            printf("run;once");
            for (int k = 0; k <= d; k++)
                printf(";rec");
            printf(";%s;alloc_by %ld\n", s ? "site_b" : "site_a", counts[d][s]);
        }
    return 0;
}
