/* forkstorm.c: forks while the shim is busy, from every angle that hung a child before:
 * at the first instruction of main (the helper thread is creating the database), from
 * several threads at once, while another thread takes snapshots (with HEAPWATCH_OBJECTS=0
 * or =inplace those write SQLite in this process), while a thread walks the loaded modules
 * with dl_iterate_phdr (glibc's fork leaves that lock held in the child), and while
 * children exit (each exit runs the child's own exit snapshot). Every child allocates and leaves through exit(), so its
 * destructors and its exit snapshot run; every third forks a grandchild first.
 *   forkstorm THREADS FORKS_PER_THREAD
 * Prints "forks N" and exits 0 when every child exited 0. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "heapwatch.h"

static int per_thread;
static atomic_int forks, failures;
static atomic_bool stop;

static void child_body(int n)
{
    char *p = malloc(64 + (size_t)n);
    memset(p, 1, 64);
    if (n % 3 == 0) {
        pid_t g = fork();
        if (g == 0) {
            char *q = malloc(32);
            q[0] = 1;
            exit(0);
        }
        int st;
        if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "forkstorm: grandchild %d: %s %d\n", (int)g, g < 0 ? "fork failed" : WIFEXITED(st) ? "exit" : "signal",
                    g < 0 ? 0 : WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            exit(2);
        }
    }
    exit(0);
}

static void one_fork(int n)
{
    pid_t c = fork();
    if (c == 0)
        child_body(n);
    int st;
    atomic_fetch_add(&forks, 1);
    if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) {
        atomic_fetch_add(&failures, 1);
        fprintf(stderr, "forkstorm: child %d: %s %d\n", (int)c, c < 0 ? "fork failed" : WIFEXITED(st) ? "exit" : "signal",
                c < 0 ? 0 : WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
}

static void *forker(void *arg)
{
    for (int i = 0; i < per_thread; i++) {
        void *keep = malloc(100 + (size_t)i);
        one_fork(i + (int)(intptr_t)arg);
        free(keep);
    }
    return NULL;
}

static int slow_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info;
    (void)size;
    for (volatile int i = 0; i < 2000; i++)
        ;
    (*(long *)data)++;
    return 0;
}

static void *iterator(void *arg)
{
    long n = 0;
    while (!atomic_load(&stop))
        dl_iterate_phdr(slow_cb, &n);
    return arg;
}

static void *snapshotter(void *arg)
{
    while (!atomic_load(&stop))
        HEAPWATCH_SNAPSHOT("storm");
    return arg;
}

int main(int argc, char **argv)
{
    one_fork(1);  /* first thing: the helper is creating this process's database */
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    per_thread = argc > 2 ? atoi(argv[2]) : 10;
    pthread_t snap, it, t[64];
    pthread_create(&snap, NULL, snapshotter, NULL);
    pthread_create(&it, NULL, iterator, NULL);
    for (int i = 0; i < threads && i < 64; i++)
        pthread_create(&t[i], NULL, forker, (void *)(intptr_t)(i * 1000));
    for (int i = 0; i < threads && i < 64; i++)
        pthread_join(t[i], NULL);
    atomic_store(&stop, true);
    pthread_join(snap, NULL);
    pthread_join(it, NULL);
    printf("forks %d\n", atomic_load(&forks));
    return atomic_load(&failures) ? 1 : 0;
}
