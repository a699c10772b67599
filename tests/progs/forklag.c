/* forklag.c: forks while the event log's writer is busy. Three threads allocate and free as
 * fast as they can (with HEAPWATCH_SAMPLE_RATE=1 and HEAPWATCH_EVENTS=1 they make tens of
 * megabytes of events a second, so the writer is always inside SQLite, and behind); the main
 * thread forks children that allocate and exit() (each writes its exit snapshot).
 *   forklag FORKS
 * Prints "forks N worst_ms W" (the longest fork() call, in milliseconds) and exits 0 when
 * every child exited 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_bool stop;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void *churn(void *arg)
{
    (void)arg;
    void *slot[64] = { 0 };
    for (unsigned i = 0; !atomic_load_explicit(&stop, memory_order_relaxed); i++) {
        unsigned k = i % 64;
        free(slot[k]);
        slot[k] = malloc(16 + i % 200);
    }
    for (int k = 0; k < 64; k++)
        free(slot[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 40;
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, churn, NULL);
    double worst = 0;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        pid_t c = fork();
        if (c == 0) {
            char *p = malloc(100);
            memset(p, 0, 100);
            exit(0);
        }
        double ms = now_ms() - t0;
        if (ms > worst)
            worst = ms;
        int st = 0;
        if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
        usleep(10000);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    printf("forks %d worst_ms %.0f\n", n - bad, worst);
    return bad != 0;
}
