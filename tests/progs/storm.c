/* storm.c: the programs of t5200-stop-the-world.sh, one mode per case. Every mode prints a
 * deterministic summary on stdout (the same with and without the shim, unless said), and
 * details that vary (tids, timings) on stderr, prefixed "storm:".
 *
 *   storm storm ITERS [FORKS]   6 worker threads churn the heap (malloc, calloc, realloc, free,
 *                               cross-thread frees through queues), each block tagged and
 *                               checked when freed; with FORKS, one more thread forks FORKS
 *                               children (_exit, exit, or exec of `storm child N`) meanwhile
 *   storm child N               exec'd by the forker: allocates, exits with status N % 100
 *   storm drive MS SECS CMD...  (run without the shim) starts CMD in its own process group,
 *                               waits until CMD has a SIGUSR2 handler, sends it SIGUSR2 every
 *                               MS ms until it exits; SIGKILLs the group after SECS seconds.
 *                               Exits with CMD's status; says how many signals it sent
 *   storm mask                  threads block every signal with pthread_sigmask, sigprocmask
 *                               and the raw rt_sigprocmask system call; API snapshots
 *   storm block                 threads blocked in read, pthread_cond_wait, a contended mutex,
 *                               and sleeping in nanosleep, clock_nanosleep, sleep, usleep,
 *                               poll, epoll_wait, select, pause while the main thread takes a
 *                               snapshot; lines "intr: ..." say how each sleep ended
 *   storm api THREADS ROUNDS    THREADS threads call heapwatch_snapshot() ROUNDS times each
 *   storm wait CHILDREN         forks CHILDREN children one at a time and reaps them with
 *                               wait()/waitpid(-1) while another thread takes snapshots;
 *                               counts SIGCHLD and any child that is not its own
 *   storm handler-early N       installs a SIGUSR2 handler before the shim's constructor runs
 *                               (from .preinit_array), then raises SIGUSR2 N times
 *   storm handler-main N        the same, with the handler installed in main() */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "heapwatch.h"

static const char *self_path;

static void die(const char *what)
{
    fprintf(stderr, "storm: %s: %s\n", what, strerror(errno));
    exit(99);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int gettid_(void) { return (int)syscall(SYS_gettid); }

/* ---- storm ----------------------------------------------------------------------------------- */

#define WORKERS 6
#define SLOTS 64
#define QCAP 128
#define CHECKED 80 /* bytes of each block checked on free */

struct hdr {
    uint64_t tag;  /* worker << 48 | allocation number */
    uint64_t size; /* current size of the block */
};

struct queue {
    pthread_mutex_t mu;
    void *ring[QCAP];
    unsigned head, tail;
};

static struct queue queues[WORKERS];
static void *slots[WORKERS][SLOTS]; /* globals: every held block is reachable */
static pthread_barrier_t start_barrier, end_barrier;
static _Atomic uint64_t total_sum, total_allocs, total_reallocs, total_handoffs, corrupt;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t pick_size(uint64_t r)
{
    unsigned k = (unsigned)(r % 1000);
    if (k < 800)
        return 16 + (r >> 10) % 240;
    if (k < 990)
        return 256 + (r >> 10) % 3840;
    return 65536 + (r >> 10) % 200000; /* some above the mmap threshold */
}

static void fill(unsigned char *p, uint64_t tag, size_t from, size_t size)
{
    size_t end = size < CHECKED ? size : CHECKED;
    for (size_t i = from; i < end; i++)
        p[i] = (unsigned char)(tag * 31 + i);
}

static int check(const unsigned char *p, uint64_t tag, size_t size)
{
    size_t end = size < CHECKED ? size : CHECKED;
    for (size_t i = sizeof(struct hdr); i < end; i++)
        if (p[i] != (unsigned char)(tag * 31 + i))
            return 0;
    return 1;
}

static void *new_block(int t, uint64_t *count, size_t size, int zeroed)
{
    unsigned char *p = zeroed ? calloc(1, size) : malloc(size);
    if (!p)
        die("malloc");
    if (zeroed) {
        size_t end = size < CHECKED ? size : CHECKED;
        for (size_t i = 0; i < end; i++)
            if (p[i])
                atomic_fetch_add(&corrupt, 1);
    }
    struct hdr *h = (struct hdr *)p;
    h->tag = (uint64_t)t << 48 | (*count)++;
    h->size = size;
    fill(p, h->tag, sizeof *h, size);
    return p;
}

/* Check a block, add it to the checksum and free it: every block is released exactly once,
 * by whichever thread holds it last, so the checksum does not depend on the interleaving. */
static void release(void *p, uint64_t *sum)
{
    struct hdr *h = p;
    if (!check(p, h->tag, h->size))
        atomic_fetch_add(&corrupt, 1);
    *sum += mix(h->tag ^ h->size << 20);
    free(p);
}

static int push(struct queue *q, void *p)
{
    pthread_mutex_lock(&q->mu);
    int ok = q->tail - q->head < QCAP;
    if (ok)
        q->ring[q->tail++ % QCAP] = p;
    pthread_mutex_unlock(&q->mu);
    return ok;
}

static void *pop(struct queue *q)
{
    void *p = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->head != q->tail)
        p = q->ring[q->head++ % QCAP];
    pthread_mutex_unlock(&q->mu);
    return p;
}

static long iters;

__attribute__((noinline)) static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    uint64_t s = mix((uint64_t)t + 1) | 1, count = 0, sum = 0, reallocs = 0, handoffs = 0;
    void **slot = slots[t];
    pthread_barrier_wait(&start_barrier);
    for (long i = 0; i < iters; i++) {
        uint64_t r = next(&s);
        unsigned op = (unsigned)(r % 16), k = (unsigned)((r >> 4) % SLOTS);
        uint64_t r2 = next(&s);
        if (op <= 8) { /* malloc (or calloc) into slot k */
            if (slot[k])
                release(slot[k], &sum);
            slot[k] = new_block(t, &count, pick_size(r2), op >= 7);
        } else if (op <= 10) { /* realloc slot k */
            if (!slot[k])
                continue;
            struct hdr *h = slot[k];
            uint64_t tag = h->tag, old = h->size;
            size_t size = pick_size(r2);
            if (!check(slot[k], tag, old))
                atomic_fetch_add(&corrupt, 1);
            unsigned char *p = realloc(slot[k], size);
            if (!p)
                die("realloc");
            h = (struct hdr *)p;
            if (h->tag != tag || !check(p, tag, size < old ? size : old))
                atomic_fetch_add(&corrupt, 1);
            h->size = size;
            fill(p, tag, sizeof *h, size);
            slot[k] = p;
            reallocs++;
        } else if (op <= 12) { /* hand slot k to the next worker, which frees it */
            if (!slot[k])
                continue;
            handoffs++; /* attempted: a full queue makes the holder free it itself */
            if (!push(&queues[(t + 1) % WORKERS], slot[k]))
                release(slot[k], &sum);
            slot[k] = NULL;
        } else if (op <= 14) { /* free what the previous worker handed us */
            void *p = pop(&queues[t]);
            if (p)
                release(p, &sum);
        } else if (slot[k]) {
            release(slot[k], &sum);
            slot[k] = NULL;
        }
    }
    for (int k = 0; k < SLOTS; k++)
        if (slot[k])
            release(slot[k], &sum), slot[k] = NULL;
    atomic_fetch_add(&total_sum, sum);
    atomic_fetch_add(&total_allocs, count);
    atomic_fetch_add(&total_reallocs, reallocs);
    atomic_fetch_add(&total_handoffs, handoffs);
    pthread_barrier_wait(&end_barrier); /* the workers leave together */
    return NULL;
}

/* Work of a child: allocate and free a little, return a value that depends on it. */
static int child_work(int n)
{
    void *p[16];
    int v = 0;
    for (int i = 0; i < 16; i++) {
        p[i] = malloc(16 + (size_t)(n * 7 + i) % 500);
        if (!p[i])
            return 255;
        memset(p[i], i, 16);
    }
    for (int i = 0; i < 16; i++) {
        v += ((unsigned char *)p[i])[3];
        free(p[i]);
    }
    return v == 120 ? n % 100 : 255; /* 0+1+...+15 = 120 */
}

static long forks;
static long forks_ok;

static void *forker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start_barrier);
    for (long i = 0; i < forks; i++) {
        int n = (int)(i % 90) + 1;
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            switch (i % 3) {
            case 0: {
                char arg[16];
                snprintf(arg, sizeof arg, "%d", n);
                execl(self_path, self_path, "child", arg, (char *)NULL);
                _exit(254);
            }
            case 1:
                _exit(child_work(n));
            default:
                exit(child_work(n)); /* runs the shim's destructor: an exit snapshot */
            }
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR)
                die("waitpid");
        if (WIFEXITED(st) && WEXITSTATUS(st) == n % 100)
            forks_ok++;
        else
            fprintf(stderr, "storm: child %ld (mode %ld): status %#x\n", i, i % 3, st);
    }
    pthread_barrier_wait(&end_barrier);
    return NULL;
}

static int run_storm(int argc, char **argv)
{
    iters = argc > 2 ? atol(argv[2]) : 100000;
    forks = argc > 3 ? atol(argv[3]) : 0;
    int nthreads = WORKERS + (forks > 0);
    pthread_t th[WORKERS + 1];
    for (int q = 0; q < WORKERS; q++)
        pthread_mutex_init(&queues[q].mu, NULL);
    pthread_barrier_init(&start_barrier, NULL, (unsigned)nthreads);
    pthread_barrier_init(&end_barrier, NULL, (unsigned)nthreads);
    double t0 = now_s();
    for (int t = 0; t < WORKERS; t++)
        if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t))
            die("pthread_create");
    if (forks && pthread_create(&th[WORKERS], NULL, forker, NULL))
        die("pthread_create");
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    uint64_t sum = atomic_load(&total_sum);
    for (int q = 0; q < WORKERS; q++) {
        void *p;
        while ((p = pop(&queues[q])))
            release(p, &sum);
    }
    printf("storm: %d workers, %llu allocations, %llu reallocs, %llu handoffs, checksum %016llx, corrupt %llu\n",
           WORKERS, (unsigned long long)total_allocs, (unsigned long long)total_reallocs,
           (unsigned long long)total_handoffs, (unsigned long long)sum, (unsigned long long)corrupt);
    if (forks)
        printf("storm: %ld children, %ld exited as expected\n", forks, forks_ok);
    fprintf(stderr, "storm: %.2f s\n", now_s() - t0);
    return corrupt ? 1 : 3; /* a distinctive status, the same with and without the shim */
}

/* ---- drive ----------------------------------------------------------------------------------- */

/* Whether pid has a handler for sig (SigCgt in /proc/PID/status). */
static int catches(pid_t pid, int sig)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *c = strstr(buf, "SigCgt:");
    return c && (strtoull(c + 7, NULL, 16) >> (sig - 1) & 1);
}

static int run_drive(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: storm drive MS SECS CMD...\n");
        return 2;
    }
    long ms = atol(argv[2]);
    double secs = atof(argv[3]);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        setpgid(0, 0);
        execvp(argv[4], argv + 4);
        _exit(127);
    }
    setpgid(pid, pid);
    double t0 = now_s();
    long sent = 0;
    int st = 0, ready = 0;
    for (;;) {
        /* the child is ours and unreaped until waitpid below: its pid cannot be reused */
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (now_s() - t0 > secs) {
            fprintf(stderr, "storm: timeout after %.0f s: killing process group %d\n", secs, (int)pid);
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        if (!ready)
            ready = catches(pid, SIGUSR2);
        if (ready && kill(pid, SIGUSR2) == 0)
            sent++;
        struct timespec ts = { 0, (ready ? ms : 1) * 1000000L };
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "storm: sent %ld signals\n", sent);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

/* ---- mask ------------------------------------------------------------------------------------ */

static _Atomic int mask_stop;
static pthread_barrier_t mask_barrier;
static _Atomic long mask_work[3];

static int raw_kept;

/* Whether sig is blocked in the calling thread, as the kernel sees it (SigBlk). */
static int blocked_now(int sig)
{
    char buf[4096];
    int fd = open("/proc/thread-self/status", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *b = strstr(buf, "SigBlk:");
    return b ? (int)(strtoull(b + 7, NULL, 16) >> (sig - 1) & 1) : -1;
}

static void *masker(void *arg)
{
    int kind = (int)(intptr_t)arg;
    sigset_t all;
    sigfillset(&all);
    if (kind == 0)
        pthread_sigmask(SIG_BLOCK, &all, NULL);
    else if (kind == 1)
        sigprocmask(SIG_SETMASK, &all, NULL);
    else
        syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, (size_t)(_NSIG / 8)); /* past any wrapper */
    static const char *names[] = { "pthread_sigmask", "sigprocmask", "rt_sigprocmask" };
    fprintf(stderr, "storm: tid %d %s\n", gettid_(), names[kind]);
    pthread_barrier_wait(&mask_barrier);
    /* keep allocating until told to stop: the unstopped thread runs on during snapshots */
    uint64_t s = (uint64_t)kind + 7;
    void *keep[32] = { 0 };
    long n = 0;
    while (!atomic_load(&mask_stop)) {
        unsigned k = (unsigned)(next(&s) % 32);
        free(keep[k]);
        keep[k] = malloc(16 + next(&s) % 1000);
        n++;
    }
    for (int k = 0; k < 32; k++)
        free(keep[k]);
    mask_work[kind] = n;
    if (kind == 2)
        raw_kept = blocked_now(SIGRTMAX - 3);
    return NULL;
}

static int run_mask(int argc, char **argv)
{
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    pthread_t th[3];
    pthread_barrier_init(&mask_barrier, NULL, 4);
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, masker, (void *)(intptr_t)i);
    pthread_barrier_wait(&mask_barrier);
    int ok = 0;
    for (int r = 0; r < rounds; r++) {
        struct timespec ts = { 0, 20000000 };
        nanosleep(&ts, NULL);
        ok += HEAPWATCH_SNAPSHOT("masked") == 0;
    }
    atomic_store(&mask_stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    int worked = mask_work[0] > 0 && mask_work[1] > 0 && mask_work[2] > 0;
    printf("mask: 3 threads joined, all worked: %s; the raw mask still blocks signal %d: %s\n",
           worked ? "yes" : "no", SIGRTMAX - 3, raw_kept == 1 ? "yes" : "no");
    fprintf(stderr, "storm: %d snapshots returned 0\n", ok);
    return 0;
}

/* ---- block ----------------------------------------------------------------------------------- */

enum { B_READ, B_COND, B_MUTEX, B_NANOSLEEP, B_CLOCK_NANOSLEEP, B_SLEEP, B_USLEEP, B_POLL, B_EPOLL,
       B_SELECT, B_PAUSE, B_N };
static const char *bnames[B_N] = { "read", "pthread_cond_wait", "pthread_mutex_lock", "nanosleep",
                                   "clock_nanosleep", "sleep", "usleep", "poll", "epoll_wait",
                                   "select", "pause" };
static _Atomic int btid[B_N];
static char bresult[B_N][160];
static int bpipe[2];
static pthread_mutex_t bmu = PTHREAD_MUTEX_INITIALIZER, held = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bcv = PTHREAD_COND_INITIALIZER;
static int bflag;
static _Atomic int released; /* the main thread has ended the test's waits itself */
#define NAP 2 /* seconds every sleeper asks for */

static void on_usr1(int sig) { (void)sig; }

/* How a sleep ended: "complete" when it ran its course (or was ended by the main thread),
 * else what the interruption looked like. */
static void sleep_result(int i, int rc, int err, double slept, double rem)
{
    if (atomic_load(&released) || (rc == 0 && slept >= NAP - 0.05)) {
        snprintf(bresult[i], sizeof bresult[i], "%s: complete", bnames[i]);
        return;
    }
    char extra[64] = "";
    if (rem >= 0)
        /* at least what the clock says is left; more by the time the thread spent stopped */
        snprintf(extra, sizeof extra, ", remaining time %s", rem >= NAP - slept - 0.01 && rem < NAP ? "reported" : "WRONG");
    snprintf(bresult[i], sizeof bresult[i], "%s: returned %d early, errno %s%s", bnames[i], rc,
             err == EINTR ? "EINTR" : err == 0 ? "0" : strerror(err), extra);
}

static void *blocker(void *arg)
{
    int i = (int)(intptr_t)arg;
    btid[i] = gettid_();
    double t0 = now_s();
    int rc = 0, err = 0;
    double rem = -1;
    switch (i) {
    case B_READ: {
        char buf[8] = "";
        ssize_t n = read(bpipe[0], buf, sizeof buf - 1);
        snprintf(bresult[i], sizeof bresult[i], "read: %zd bytes '%s'%s", n, buf, n < 0 ? strerror(errno) : "");
        return NULL;
    }
    case B_COND:
        pthread_mutex_lock(&bmu);
        while (!bflag)
            pthread_cond_wait(&bcv, &bmu);
        pthread_mutex_unlock(&bmu);
        snprintf(bresult[i], sizeof bresult[i], "pthread_cond_wait: woken with the flag set");
        return NULL;
    case B_MUTEX:
        rc = pthread_mutex_lock(&held);
        snprintf(bresult[i], sizeof bresult[i], "pthread_mutex_lock: %d after the holder let go: %s", rc,
                 atomic_load(&released) ? "yes" : "no");
        pthread_mutex_unlock(&held);
        return NULL;
    case B_NANOSLEEP: {
        struct timespec ts = { NAP, 0 }, r = { 0, 0 };
        rc = nanosleep(&ts, &r);
        err = rc ? errno : 0;
        rem = (double)r.tv_sec + (double)r.tv_nsec / 1e9;
        break;
    }
    case B_CLOCK_NANOSLEEP: {
        struct timespec ts = { NAP, 0 }, r = { 0, 0 };
        err = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &r); /* returns the error */
        rc = err ? -1 : 0;
        rem = (double)r.tv_sec + (double)r.tv_nsec / 1e9;
        break;
    }
    case B_SLEEP: {
        unsigned left = sleep(NAP);
        double slept = now_s() - t0;
        if (atomic_load(&released) || (left == 0 && slept >= NAP - 0.05))
            snprintf(bresult[i], sizeof bresult[i], "sleep: complete");
        else
            snprintf(bresult[i], sizeof bresult[i], "sleep: returned %u early", left);
        fprintf(stderr, "storm: sleep(%d) returned %u after %.3f s\n", NAP, left, slept);
        return NULL;
    }
    case B_USLEEP:
        rc = usleep(NAP * 1000000);
        err = rc ? errno : 0;
        break;
    case B_POLL:
        rc = poll(NULL, 0, NAP * 1000);
        err = rc < 0 ? errno : 0;
        break;
    case B_EPOLL: {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev;
        rc = epoll_wait(ep, &ev, 1, NAP * 1000);
        err = rc < 0 ? errno : 0;
        close(ep);
        break;
    }
    case B_SELECT: {
        struct timeval tv = { NAP, 0 };
        rc = select(0, NULL, NULL, NULL, &tv);
        err = rc < 0 ? errno : 0;
        break;
    }
    case B_PAUSE:
        rc = pause(); /* only a signal ends it: the main thread sends SIGUSR1 at the end */
        err = errno;
        break;
    }
    sleep_result(i, rc, err, now_s() - t0, rem);
    return NULL;
}

/* Whether thread tid sits in a system call (/proc/self/task/TID/syscall: a number, not
 * "running"), and in a sleeping state. */
static int blocked_in_syscall(int tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    if (n <= 0 || buf[0] < '0' || buf[0] > '9')
        return 0;
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] == 'S';
}

static int run_block(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    if (pipe(bpipe) < 0)
        die("pipe");
    pthread_mutex_lock(&held); /* held across the snapshot */
    pthread_t th[B_N];
    for (int i = 0; i < B_N; i++)
        pthread_create(&th[i], NULL, blocker, (void *)(intptr_t)i);
    /* wait until every thread sleeps in its system call */
    double t0 = now_s();
    for (int i = 0; i < B_N; i++)
        while (!atomic_load(&btid[i]) || !blocked_in_syscall(btid[i])) {
            if (now_s() - t0 > 5) {
                fprintf(stderr, "storm: thread %s never blocked\n", bnames[i]);
                break;
            }
            usleep(1000);
        }
    int snap = HEAPWATCH_SNAPSHOT("blocked");
    fprintf(stderr, "storm: snapshot: %d, after %.3f s\n", snap, now_s() - t0);
    struct timespec ts = { 0, 100000000 };
    nanosleep(&ts, NULL); /* let the threads run on (or not) */
    snap = HEAPWATCH_SNAPSHOT("blocked-2");
    /* now end the waits the test itself owns */
    atomic_store(&released, 1);
    if (write(bpipe[1], "data", 4) != 4)
        die("write");
    pthread_mutex_lock(&bmu);
    bflag = 1;
    pthread_cond_signal(&bcv);
    pthread_mutex_unlock(&bmu);
    pthread_mutex_unlock(&held);
    pthread_kill(th[B_PAUSE], SIGUSR1);
    /* the sleepers that were not interrupted end by themselves */
    for (int i = 0; i < B_N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < B_N; i++) {
        int intr = i >= B_NANOSLEEP;
        printf("%s%s\n", intr ? "intr: " : "", bresult[i]);
    }
    return 0;
}

/* ---- api ------------------------------------------------------------------------------------- */

static int api_rounds;
static _Atomic int api_ok, api_fail;

static void *api_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int r = 0; r < api_rounds; r++) {
        char label[32];
        snprintf(label, sizeof label, "t%d.%d", t, r);
        void *p = malloc(100 + (size_t)r);
        if (HEAPWATCH_SNAPSHOT(label) == 0)
            atomic_fetch_add(&api_ok, 1);
        else
            atomic_fetch_add(&api_fail, 1);
        free(p);
    }
    return NULL;
}

static int run_api(int argc, char **argv)
{
    int n = argc > 2 ? atoi(argv[2]) : 4;
    api_rounds = argc > 3 ? atoi(argv[3]) : 10;
    pthread_t th[64];
    if (n > 64)
        n = 64;
    for (int t = 0; t < n; t++)
        pthread_create(&th[t], NULL, api_thread, (void *)(intptr_t)t);
    for (int t = 0; t < n; t++)
        pthread_join(th[t], NULL);
    printf("api: %d calls returned 0, %d failed\n", api_ok, api_fail);
    return 0;
}

/* ---- wait ------------------------------------------------------------------------------------ */

static volatile sig_atomic_t sigchld_count;
static _Atomic int wait_done;

static void on_sigchld(int sig)
{
    (void)sig;
    sigchld_count++;
}

static void *snapper(void *arg)
{
    (void)arg;
    long n = 0;
    while (!atomic_load(&wait_done))
        n += HEAPWATCH_SNAPSHOT("during-wait") == 0;
    fprintf(stderr, "storm: %ld API snapshots during the waits\n", n);
    return NULL;
}

static int run_wait(int argc, char **argv)
{
    int children = argc > 2 ? atoi(argv[2]) : 50;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    /* only the main thread takes SIGCHLD, so each one is handled before its wait returns */
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, &old);
    pthread_t th;
    pthread_create(&th, NULL, snapper, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    int own = 0, foreign = 0, bad_status = 0, extra = 0, counted = 0;
    for (int i = 0; i < children; i++) {
        int before = sigchld_count;
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            usleep(500 + (unsigned)(i % 5) * 500); /* overlap the snapshots' writers */
            _exit(i % 100);
        }
        int st;
        pid_t w;
        do
            w = (i % 2) ? wait(&st) : waitpid(-1, &st, 0);
        while (w < 0 && errno == EINTR);
        if (w == pid) {
            own++;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != i % 100)
                bad_status++;
        } else {
            foreign++;
            fprintf(stderr, "storm: wait returned %d (%s), not my child %d\n", (int)w,
                    w < 0 ? strerror(errno) : "?", (int)pid);
        }
        counted += sigchld_count - before == 1;
        /* no child left: another wait must say so at once */
        w = (i % 2) ? waitpid(-1, &st, WNOHANG) : wait(&st);
        if (!(w < 0 && errno == ECHILD)) {
            extra++;
            fprintf(stderr, "storm: wait with no child of mine returned %d (%s)\n", (int)w,
                    w < 0 ? strerror(errno) : "a child");
        }
    }
    atomic_store(&wait_done, 1);
    pthread_join(th, NULL);
    printf("wait: %d children, %d reaped, %d foreign, %d bad status, %d waits found a child that is not mine,"
           " %d SIGCHLD (one per child: %d)\n", children, own, foreign, bad_status, extra, (int)sigchld_count,
           counted);
    return 0;
}

/* ---- handler --------------------------------------------------------------------------------- */

static volatile sig_atomic_t usr2_count;

static void on_usr2(int sig)
{
    (void)sig;
    usr2_count++;
}

static void install_usr2(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
}

/* Runs before any library's constructor, the shim's included (glibc passes argc, argv). */
static void early(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc > 1 && !strcmp(argv[1], "handler-early"))
        install_usr2();
}
__attribute__((section(".preinit_array"), used)) static void (*const preinit)(int, char **, char **) = early;

static int run_handler(int argc, char **argv)
{
    int n = argc > 2 ? atoi(argv[2]) : 5;
    if (!strcmp(argv[1], "handler-main"))
        install_usr2();
    for (int i = 0; i < n; i++) {
        raise(SIGUSR2);
        kill(getpid(), SIGUSR2);
        struct timespec ts = { 0, 1000000 };
        for (int w = 0; w < 100 && usr2_count < 2 * (i + 1); w++)
            nanosleep(&ts, NULL);
    }
    printf("handler: %d signals raised, %d handled by the program\n", 2 * n, (int)usr2_count);
    return 0;
}

int main(int argc, char **argv)
{
    self_path = argv[0];
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "storm";
    if (!strcmp(mode, "storm"))
        return run_storm(argc, argv);
    if (!strcmp(mode, "child"))
        return child_work(argc > 2 ? atoi(argv[2]) : 0);
    if (!strcmp(mode, "drive"))
        return run_drive(argc, argv);
    if (!strcmp(mode, "mask"))
        return run_mask(argc, argv);
    if (!strcmp(mode, "block"))
        return run_block(argc, argv);
    if (!strcmp(mode, "api"))
        return run_api(argc, argv);
    if (!strcmp(mode, "wait"))
        return run_wait(argc, argv);
    if (!strncmp(mode, "handler-", 8))
        return run_handler(argc, argv);
    fprintf(stderr, "storm: unknown mode %s\n", mode);
    return 2;
}
