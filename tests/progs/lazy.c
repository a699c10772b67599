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
 *     lock        blocked in fcntl(F_SETLKW) on a file that a child process it forked holds
 *                 locked until the input ends
 *   lazy deep-exec  300 calls deep (deeper than the shim looks for signal frames, so that a
 *                 request cannot start the helper from the handler) says "ready" from there
 *                 (not before: a request between the two would find a shallow stack and start
 *                 the helper), blocked in read until the input ends; then execs /bin/true
 *   lazy raised   no input: 3 million malloc/free pairs, while a SIGALRM handler with a full
 *                 mask raises SIGUSR2 once: the signal is delivered where the handler had
 *                 interrupted the loop, inside malloc or free more often than not
 *   lazy c11      no input: a thread started with thrd_create sends the process SIGUSR2
 *                 while main runs 3 million malloc/free pairs
 *
 * Then it prints "MODE threads=A,B single=S,T": the threads of the process (/proc/self/task)
 * right after "ready" and at the end, and glibc's __libc_single_threaded at both moments. */
#define _GNU_SOURCE
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <threads.h>
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

static volatile int raised;

static void raise_once(int sig)
{
    (void)sig;
    if (!raised) {
        raised = 1;
        raise(SIGUSR2);   /* blocked here (full mask): delivered when this handler returns */
    }
}

static void churn(void)
{
    static void *slot[4096];
    unsigned long x = 1;
    for (long i = 0; i < 3000000; i++) {
        x = x * 6364136223846793005ULL + 1;
        unsigned k = (unsigned)(x >> 33) & 4095;
        free(slot[k]);
        slot[k] = malloc((x >> 20) & 8191);
    }
}

static int signal_process(void *arg)
{
    (void)arg;
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);   /* so that main takes it */
    struct timespec ts = { 0, 20000000 };
    nanosleep(&ts, NULL);
    kill(getpid(), SIGUSR2);
    nanosleep(&ts, NULL);
    return 0;
}

/* depth nested calls, then "ready" and a wait for the end of the input; returns the depth
 * reached. */
__attribute__((noinline)) static int deep_wait(int depth)
{
    volatile int here = depth;
    if (depth > 0)
        return deep_wait(depth - 1) + (here > 0);
    printf("ready\n");
    fflush(stdout);
    while (!input_ended(1))
        ;
    return 0;
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
    if (!strcmp(mode, "raised")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = raise_once;
        sigfillset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = { { 0, 0 }, { 0, 2000 } };
        setitimer(ITIMER_REAL, &it, NULL);
        churn();
        printf("raised %d\n", raised);
        return 0;
    }
    if (!strcmp(mode, "c11")) {
        thrd_t t;
        if (thrd_create(&t, signal_process, NULL) != thrd_success)
            return 1;
        churn();
        thrd_join(t, NULL);
        printf("c11 done\n");
        return 0;
    }
    if (!strcmp(mode, "deep-exec")) {
        if (deep_wait(300) != 300)
            return 1;
        execl("/bin/true", "true", (char *)NULL);
        return 1;
    }
    pid_t holder = -1;
    int lock_fd = -1;
    struct flock whole = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (!strcmp(mode, "lock")) {
        char path[] = "/tmp/lazy-lock-XXXXXX";
        int sync[2];
        if ((lock_fd = mkstemp(path)) < 0 || pipe(sync))
            return 1;
        unlink(path);
        if ((holder = fork()) == 0) {   /* holds the lock until the input ends */
            fcntl(lock_fd, F_SETLK, &whole);
            if (write(sync[1], "x", 1) != 1)
                _exit(1);
            while (!input_ended(1))
                ;
            _exit(0);
        }
        char c;
        if (holder < 0 || read(sync[0], &c, 1) != 1)
            return 1;
    }
    pthread_t th;
    if (!strcmp(mode, "thread")) {
        if (pipe(pipe_fd) || pthread_create(&th, NULL, blocked, NULL))
            return 1;
    }
    int threads_before = threads(), single_before = __libc_single_threaded;
    printf("ready\n");
    fflush(stdout);
    static unsigned char big[1 << 20];
    if (!strcmp(mode, "lock")) {
        if (fcntl(lock_fd, F_SETLKW, &whole) != 0 || waitpid(holder, NULL, 0) != holder)
            return 1;
    } else if (!strcmp(mode, "read") || !strcmp(mode, "thread")) {
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
