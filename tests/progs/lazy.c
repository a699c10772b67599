/* lazy.c: a single-threaded program that spends its time in one kind of place, for the shim's
 * lazily started helper thread (t5510).
 *
 *   lazy MODE   says "ready", then until its standard input reaches end of file spends its
 *               time in MODE:
 *     read        blocked in read(2) on standard input
 *     sigsuspend  in sigsuspend, woken every 50 ms by its own SIGALRM to look at its input
 *     own         in its own arithmetic, no call at all between looks at its input
 *     libc        in memset over 1 MiB, again and again, never allocating
 *     alloc       in malloc and free
 *     thread      starts a thread that blocks in read on a pipe, then as `read`
 *
 * Then it prints "MODE threads=A,B single=S,T": the threads of the process (/proc/self/task)
 * right after "ready" and at the end, and glibc's __libc_single_threaded at both moments. */
#define _GNU_SOURCE
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <unistd.h>

static volatile unsigned long sink;
static int pipe_fd[2];

static int threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Whether standard input has reached end of file (without blocking unless `wait`). */
static int input_ended(int wait)
{
    struct pollfd p = { .fd = 0, .events = POLLIN };
    if (poll(&p, 1, wait ? -1 : 0) <= 0)
        return 0;
    char buf[64];
    return read(0, buf, sizeof buf) <= 0;
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void *blocked(void *arg)
{
    (void)arg;
    char c;
    ssize_t r = read(pipe_fd[0], &c, 1);
    (void)r;
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "read";
    pthread_t th;
    if (!strcmp(mode, "thread")) {
        if (pipe(pipe_fd) || pthread_create(&th, NULL, blocked, NULL))
            return 1;
    }
    int threads_before = threads(), single_before = __libc_single_threaded;
    printf("ready\n");
    fflush(stdout);
    static unsigned char big[1 << 20];
    if (!strcmp(mode, "read") || !strcmp(mode, "thread")) {
        while (!input_ended(1))
            ;
    } else if (!strcmp(mode, "sigsuspend")) {
        sigset_t alarm_set, empty;
        sigemptyset(&alarm_set);
        sigaddset(&alarm_set, SIGALRM);
        sigemptyset(&empty);
        signal(SIGALRM, on_alarm);
        sigprocmask(SIG_BLOCK, &alarm_set, NULL);
        do {
            ualarm(50000, 0);
            sigsuspend(&empty);
        } while (!input_ended(0));
    } else if (!strcmp(mode, "own")) {
        do {
            for (unsigned long i = 0; i < 20000000; i++)
                sink += i * i;
        } while (!input_ended(0));
    } else if (!strcmp(mode, "libc")) {
        do {
            for (int i = 0; i < 100; i++)
                memset(big, (int)sink++, sizeof big);
        } while (!input_ended(0));
    } else if (!strcmp(mode, "alloc")) {
        do {
            for (int i = 0; i < 100000; i++) {
                void *p = malloc(16 + (size_t)(i & 1023));
                sink += (unsigned long)p;
                free(p);
            }
        } while (!input_ended(0));
    } else {
        fprintf(stderr, "lazy: unknown mode '%s'\n", mode);
        return 2;
    }
    if (!strcmp(mode, "thread")) {
        if (write(pipe_fd[1], "x", 1) != 1 || pthread_join(th, NULL))
            return 1;
    }
    printf("%s threads=%d,%d single=%d,%d\n", mode, threads_before, threads(), single_before, __libc_single_threaded);
    return 0;
}
