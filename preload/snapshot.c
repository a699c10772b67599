/* This file implements profile snapshots and their triggers.
 *
 *   trigger                      who runs it
 *   HEAPWATCH_SIGNAL             handler writes a byte to a pipe (async-signal-safe) -> helper
 *   HEAPWATCH_INTERVAL           helper's poll timeout -> helper
 *   heapwatch_snapshot(label)    the calling thread, synchronously
 *   exit                         the destructor's thread, synchronously (init.c)
 *
 * All of them end in hw_snapshot_take, serialised by one mutex: collect the per-stack
 * counters and the live table into mmap'd vectors (walk), then write them in one transaction
 * (sink.c). The helper thread blocks every signal so it never takes the application's
 * (heaptrack KDE bug 378494) and keeps the guard set for its whole life.
 *
 * This recording-level snapshot does not stop the world: counters and objects are read while
 * other threads run, shard by shard, so a snapshot taken while threads allocate is consistent
 * per object but not across objects. */
#define _GNU_SOURCE
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "depot.h"
#include "livetable.h"
#include "options.h"
#include "sink.h"
#include "sys.h"

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static int wake_pipe[2] = { -1, -1 };
static pthread_t helper;
static bool helper_running, exited;
static int db_pid;          /* pid the open database belongs to */
static int forked_from;     /* parent's pid in a fork child, else 0 */
static struct hw_snapshot_data data = {
    .stacks = { .elem = sizeof(struct hw_stack_row) },
    .objects = { .elem = sizeof(struct hw_live_entry) },
};

/* ---- path and database ---------------------------------------------------------------------- */

/* Expand %p, %e and %% of pattern; returns whether the name contains the pid. */
static bool expand_path(char *out, size_t size, const char *pattern)
{
    char comm[PATH_MAX] = "", *slash;
    size_t n = 0;
    ssize_t len = readlink("/proc/self/exe", comm, sizeof comm - 1);
    comm[len > 0 ? len : 0] = '\0';
    slash = strrchr(comm, '/');
    const char *prog = slash ? slash + 1 : comm;
    bool has_pid = false;
    for (const char *p = pattern; *p && n + 1 < size; p++) {
        if (*p == '%' && p[1] == 'p') {
            n += (size_t)snprintf(out + n, size - n, "%d", getpid());
            has_pid = true;
            p++;
        } else if (*p == '%' && p[1] == 'e') {
            n += (size_t)snprintf(out + n, size - n, "%s", prog);
            p++;
        } else if (*p == '%' && p[1] == '%') {
            out[n++] = '%';
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n < size ? n : size - 1] = '\0';
    /* A fork child must not collide with its parent's file. */
    if (forked_from && !has_pid && n < size) {
        snprintf(out + n, size - n, ".%d", getpid());
        has_pid = true;
    }
    return has_pid;
}

/* Open this process's database if it is not open yet; false if it cannot be. */
static bool ensure_db(void)
{
    static int failed_pid;
    if (hw_sink_is_open() && db_pid == getpid())
        return true;
    if (failed_pid == getpid())
        return false;
    char path[PATH_MAX];
    bool has_pid = expand_path(path, sizeof path, hw_opt.out);
    /* A pid-named file can exist already when a program exec'd another without forking (same
     * pid): the new image gets name-2.db, name-3.db ... A fixed name is never reused. */
    int rc = hw_sink_open(path, forked_from, !has_pid);
    for (int n = 2; rc == -2 && n < 100; n++) {
        char alt[PATH_MAX];
        size_t len = strlen(path);
        bool db = len > 3 && !strcmp(path + len - 3, ".db");
        snprintf(alt, sizeof alt, "%.*s-%d%s", (int)(db ? len - 3 : len), path, n, db ? ".db" : "");
        rc = hw_sink_open(alt, forked_from, n == 99);
    }
    if (rc < 0) {
        failed_pid = getpid();
        return false;
    }
    db_pid = getpid();
    return true;
}

/* ---- collection ------------------------------------------------------------------------------ */

static void collect_counters(struct hw_snapshot_data *d)
{
    uint32_t n = hw_depot_counters_count();
    for (uint32_t i = 0; i < n; i++) {
        struct hw_stack_counters *c = hw_depot_counters_at(i);
        if (!atomic_load_explicit(&c->alloc_samples, memory_order_relaxed))
            continue;
        struct hw_stack_row *r = hw_vec_push(&d->stacks);
        if (!r)
            return;
        r->id = c->stack;
        /* Frees first: a free read after its allocation could make inuse negative. */
        r->free_samples = atomic_load_explicit(&c->free_samples, memory_order_relaxed);
        r->free_weight = atomic_load_explicit(&c->free_weight, memory_order_relaxed);
        r->free_bytes = atomic_load_explicit(&c->free_bytes, memory_order_relaxed);
        r->alloc_samples = atomic_load_explicit(&c->alloc_samples, memory_order_relaxed);
        r->alloc_weight = atomic_load_explicit(&c->alloc_weight, memory_order_relaxed);
        r->alloc_bytes = atomic_load_explicit(&c->alloc_bytes, memory_order_relaxed);
    }
}

static int count_threads(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *t = strstr(buf, "\nThreads:");
    return t ? atoi(t + 9) : 0;
}

long hw_snapshot_take(const char *trigger, const char *label)
{
    long id = -1;
    hw_guard_enter();
    pthread_mutex_lock(&snap_lock);
    if (exited || !ensure_db())
        goto out_unlock;
    struct hw_snapshot_data *d = &data;
    hw_vec_clear(&d->stacks);
    hw_vec_clear(&d->objects);
    d->trigger = trigger;
    snprintf(d->label, sizeof d->label, "%s", label ? label : "");
    d->time_ns = hw_now_ns(CLOCK_REALTIME);
    d->live_objects = d->live_bytes = 0;
    d->threads = count_threads();
    uint64_t t0 = hw_now_ns(CLOCK_MONOTONIC);
    collect_counters(d);
    d->with_objects = hw_opt.objects;
    if (!d->with_objects)
        hw_livetable_totals(&d->live_objects, &d->live_bytes);
    d->walk_ns = hw_now_ns(CLOCK_MONOTONIC) - t0;
    d->pause_ns = 0;  /* nothing is stopped at this level; each shard is held only while copied */
    id = (long)hw_sink_write(d);
out_unlock:
    pthread_mutex_unlock(&snap_lock);
    hw_guard_leave();
    return id;
}

/* ---- triggers -------------------------------------------------------------------------------- */

/* Context: SIGSAFE -- only notifies the helper thread. */
static void on_signal(int sig) HW_SIGSAFE;
static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    if (wake_pipe[1] >= 0) {
        char c = 's';
        ssize_t r = write(wake_pipe[1], &c, 1);  /* a full pipe already has a pending request */
        (void)r;
    }
    errno = saved;
}

static void *helper_main(void *unused)
{
    (void)unused;
    hw_guard_enter();  /* for life: everything this thread allocates is ours */
    uint64_t period = hw_opt.interval * 1000000000ull;
    uint64_t next = period ? hw_now_ns(CLOCK_MONOTONIC) + period : 0;
    for (;;) {
        int timeout = -1;
        if (period) {
            uint64_t now = hw_now_ns(CLOCK_MONOTONIC);
            timeout = next > now ? (int)((next - now + 999999) / 1000000) : 0;
        }
        struct pollfd pfd = { .fd = wake_pipe[0], .events = POLLIN };
        int rc = poll(&pfd, 1, timeout);
        if (rc > 0) {
            char buf[64];
            ssize_t r = read(wake_pipe[0], buf, sizeof buf);  /* coalesce a burst of signals */
            (void)r;
            hw_snapshot_take("signal", NULL);
        } else if (rc == 0) {
            hw_snapshot_take("interval", NULL);
            next += period;
            uint64_t now = hw_now_ns(CLOCK_MONOTONIC);
            if (next < now)
                next = now + period;  /* a slow write must not cause a burst */
        }
    }
    return NULL;
}

static void start_helper(void)
{
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        hw_log("cannot create the trigger pipe: %s; only API and exit snapshots", strerror(errno));
        return;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    helper_running = pthread_create(&helper, &attr, helper_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!helper_running)
        hw_log("cannot start the helper thread; only API and exit snapshots");
}

static void install_signal(void)
{
    int sig = (int)hw_opt.signal;
    if (!sig)
        return;
    struct sigaction cur;
    if (sigaction(sig, NULL, &cur) < 0)
        return;
    if (cur.sa_handler != SIG_DFL) {
        hw_log("signal %d already has a handler in this program; snapshots on signal are off"
               " (set HEAPWATCH_SIGNAL to another signal)", sig);
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

void hw_snapshot_start(void)
{
    hw_guard_enter();
    ensure_db();
    start_helper();
    install_signal();
    hw_guard_leave();
}

void hw_snapshot_at_exit(void)
{
    if (hw_opt.at_exit)
        hw_snapshot_take("exit", NULL);
    hw_guard_enter();
    pthread_mutex_lock(&snap_lock);
    exited = true;  /* later triggers (signals during exit, other threads) write nothing */
    if (db_pid == getpid())
        hw_sink_close();
    pthread_mutex_unlock(&snap_lock);
    hw_guard_leave();
}

/* ---- fork ------------------------------------------------------------------------------------ */

void hw_snapshot_atfork_prepare(void)
{
    pthread_mutex_lock(&snap_lock);
    hw_depot_lock();
    hw_livetable_lock_all();
}

void hw_snapshot_atfork_parent(void)
{
    hw_livetable_unlock_all();
    hw_depot_unlock();
    pthread_mutex_unlock(&snap_lock);
}

/* The child: its own database (opened at its first snapshot), its own helper and pipe. */
void hw_snapshot_atfork_child(void)
{
    hw_livetable_reset_locks();
    hw_depot_unlock();
    pthread_mutex_init(&snap_lock, NULL);
    forked_from = db_pid ? db_pid : getppid();
    hw_sink_abandon();
    db_pid = 0;
    if (wake_pipe[0] >= 0) {
        close(wake_pipe[0]);
        close(wake_pipe[1]);
        wake_pipe[0] = wake_pipe[1] = -1;
    }
    helper_running = false;
    if (!exited) {
        hw_guard_enter();
        start_helper();
        hw_guard_leave();
    }
}
