/* events.c: programs whose allocation history is known exactly, for the event log
 * (t6100-events.sh). Each mode prints what it knows; every site is a function of its own whose
 * malloc is not a tail call, so that each names a row of `top --by function`.
 *
 *   events peak      site_keep: 10 x 1000 B, kept; snapshot "before"; site_burst: 50 x 2000 B,
 *                    then all freed (the peak: 110000 B in 60 objects, between the snapshots);
 *                    snapshot "after"; site_keep's freed. Prints "peak 110000 60".
 *   events burst     site_keep: 10 x 1000 B, kept; then site_temp: 100 blocks of 100000 B, each
 *                    freed at once (temporary): the peak is the first of them on top of the
 *                    kept ones, 110000 B in 11 objects, which no snapshot and no evenly spaced
 *                    timeline sees. Prints "burst 110000 11".
 *   events temps     site_temp: 1000 blocks of 64 B each freed before anything else happens
 *                    (temporary); site_pair: 100 times two blocks, both freed after both were
 *                    made (not temporary, as heaptrack counts: another allocation or free
 *                    comes between each block and its free); site_grow: one block realloc'd
 *                    50 times (each realloc frees the block just made: 50 temporary).
 *                    Prints "temps 1050".
 *   events phases    three phases, each held still for 300 ms, printed as "phase K START END"
 *                    (CLOCK_REALTIME ns of the still window): 1: site_a 20 x 100 B; 2: plus
 *                    site_b 30 x 200 B; 3: site_a freed, plus site_c 5 x 1000 B.
 *   events threads   8 threads, each 5000 blocks from site_thread (32..95 B): two in three
 *                    freed at once, every third kept and freed at the end by the next thread.
 *                    Prints "threads 40000".
 *   events sampled   site_big: 20000 x 1000 B kept, then freed; site_temp: 100000 x 256 B
 *                    temporaries. Prints "sampled 20000000 100000".
 *   events snaps     churn of site_temp blocks for 1.5 s with a snapshot every 30 ms (fewer on a
 *                    loaded machine, where each takes longer): the
 *                    event log's writer is busy all the while, and every snapshot's fork child
 *                    must find SQLite free (it hung on the writer's mutex once). Prints
 *                    "snaps N" (snapshots taken).
 *   events forever   site_a blocks, one every millisecond, freed 100 later, until killed;
 *                    prints "ready" after 1.5 s.
 *   events end HOW   site_keep: 10 x 1000 B, kept; site_temp: 5 x 100 B temporaries; then, at
 *                    once (no drain of the log has come yet), ends without exit(): HOW is
 *                    _exit, signal (a signal handler calls _exit) or exec (a snapshot "before",
 *                    then execl /bin/true). Prints nothing (stdio would allocate). */
#define _GNU_SOURCE
#include <heapwatch.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SITE(name)                                                    \
    __attribute__((noinline)) static char *name(size_t n)             \
    {                                                                 \
        char *p = malloc(n);                                          \
        if (!p)                                                       \
            abort();                                                  \
        p[0] = (char)__LINE__; /* no tail call; no two sites alike */ \
        return p;                                                     \
    }
SITE(site_keep)
SITE(site_burst)
SITE(site_temp)
SITE(site_pair)
SITE(site_a)
SITE(site_b)
SITE(site_c)
SITE(site_thread)
SITE(site_big)

__attribute__((noinline)) static char *site_grow(char *p, size_t n)
{
    char *q = realloc(p, n);
    if (!q)
        abort();
    q[0] = 1;
    return q;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void snap(const char *label)
{
    if (heapwatch_snapshot)
        heapwatch_snapshot(label);
}

static int peak(void)
{
    char *keep[10], *burst[50];
    for (int i = 0; i < 10; i++)
        keep[i] = site_keep(1000);
    snap("before");
    for (int i = 0; i < 50; i++)
        burst[i] = site_burst(2000);
    for (int i = 0; i < 50; i++)
        free(burst[i]);
    snap("after");
    for (int i = 0; i < 10; i++)
        free(keep[i]);
    printf("peak 110000 60\n");
    return 0;
}

static int burst(void)
{
    char *keep[10];
    for (int i = 0; i < 10; i++)
        keep[i] = site_keep(1000);
    for (int i = 0; i < 100; i++)
        free(site_temp(100000));
    for (int i = 0; i < 10; i++)
        free(keep[i]);
    printf("burst 110000 11\n");
    return 0;
}

static int temps(void)
{
    for (int i = 0; i < 1000; i++)
        free(site_temp(64));
    for (int i = 0; i < 100; i++) {
        char *a = site_pair(48), *b = site_pair(49);
        free(a);
        free(b);
    }
    char *g = NULL;
    for (int i = 1; i <= 50; i++)
        g = site_grow(g, (size_t)i * 16);
    free(g);
    printf("temps 1050\n");
    return 0;
}

static void still(int k)
{
    long long start = now_ns();
    usleep(300000);
    printf("phase %d %lld %lld\n", k, start, now_ns());
}

static int phases(void)
{
    char *a[20], *b[30], *c[5];
    for (int i = 0; i < 20; i++)
        a[i] = site_a(100);
    still(1);
    for (int i = 0; i < 30; i++)
        b[i] = site_b(200);
    still(2);
    for (int i = 0; i < 20; i++)
        free(a[i]);
    for (int i = 0; i < 5; i++)
        c[i] = site_c(1000);
    still(3);
    for (int i = 0; i < 30; i++)
        free(b[i]);
    for (int i = 0; i < 5; i++)
        free(c[i]);
    return 0;
}

#define THREADS 8
#define PER_THREAD 5000
static char *kept[THREADS][PER_THREAD / 3 + 1];
static pthread_barrier_t barrier;

static void *thread_main(void *arg)
{
    int t = (int)(long)arg, nk = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        char *p = site_thread(32 + (size_t)(i % 64));
        if (i % 3 == 2)
            kept[t][nk++] = p;
        else
            free(p);
    }
    pthread_barrier_wait(&barrier);
    int next = (t + 1) % THREADS;   /* free the next thread's kept blocks */
    for (int i = 0; i < PER_THREAD / 3 + 1 && kept[next][i]; i++)
        free(kept[next][i]);
    return NULL;
}

static int threads(void)
{
    pthread_t th[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, thread_main, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    printf("threads %d\n", THREADS * PER_THREAD);
    return 0;
}

static int sampled(void)
{
    static char *big[20000];
    for (int i = 0; i < 20000; i++)
        big[i] = site_big(1000);
    for (int i = 0; i < 20000; i++)
        free(big[i]);
    for (int i = 0; i < 100000; i++)
        free(site_temp(256));
    printf("sampled 20000000 100000\n");
    return 0;
}

static int snaps(void)
{
    static char *ring[256];
    long long start = now_ns(), last = start;
    int n = 0;
    for (unsigned i = 0; now_ns() - start < 1500000000LL; i++) {
        free(ring[i % 256]);
        ring[i % 256] = site_temp(16 + i % 200);
        if ((i & 1023) == 0 && now_ns() - last > 30000000LL) {
            snap("churn");
            n++;
            last = now_ns();
        }
    }
    for (int i = 0; i < 256; i++)
        free(ring[i]);
    printf("snaps %d\n", n);
    return 0;
}

static __attribute__((noreturn)) int forever(void)
{
    static char *ring[100];
    long long start = now_ns();
    bool said = false;
    for (unsigned i = 0;; i++) {
        free(ring[i % 100]);
        ring[i % 100] = site_a(64);
        usleep(1000);
        if (!said && now_ns() - start > 1500000000LL) {
            printf("ready\n");
            fflush(stdout);
            said = true;
        }
    }
}

static void end_in_handler(int sig)
{
    (void)sig;
    _exit(0);
}

static char *ended_kept[10];   /* reachable at the end */

static int end_without_exit(const char *how)
{
    for (int i = 0; i < 10; i++)
        ended_kept[i] = site_keep(1000);
    for (int i = 0; i < 5; i++)
        free(site_temp(100));
    if (!strcmp(how, "_exit"))
        _exit(0);
    if (!strcmp(how, "signal")) {
        signal(SIGUSR1, end_in_handler);
        raise(SIGUSR1);
    }
    if (!strcmp(how, "exec")) {
        snap("before");
        execl("/bin/true", "true", (char *)NULL);
    }
    return 2;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "peak"))
        return peak();
    if (!strcmp(mode, "temps"))
        return temps();
    if (!strcmp(mode, "burst"))
        return burst();
    if (!strcmp(mode, "phases"))
        return phases();
    if (!strcmp(mode, "threads"))
        return threads();
    if (!strcmp(mode, "sampled"))
        return sampled();
    if (!strcmp(mode, "snaps"))
        return snaps();
    if (!strcmp(mode, "forever"))
        return forever();
    if (!strcmp(mode, "end") && argc > 2)
        return end_without_exit(argv[2]);
    fprintf(stderr, "usage: events peak|burst|temps|phases|threads|sampled|snaps|forever|end HOW\n");
    return 2;
}
