/* This file implements taking one snapshot (hw_snapshot_take), on the thread that asks for
 * it: the helper thread, an API caller or the exiting thread. When snapshots are taken (the
 * helper thread, the trigger signal, `heapwatch snap`, the interval) is trigger.c's.
 *
 * A snapshot with objects (the default) is a heap walk, shaped as Android's libmemunreachable
 * does it so that the pause does not grow with the heap (README.md, "How it works", has the
 * whole picture):
 *   1. inside a dl_iterate_phdr callback, so that we own the loader lock and no stopped thread
 *      can hold it (LeakSanitizer does the same), stop the world (stw.c);
 *   2. 'fork' (default): clone a child process (no atfork handlers, no SIGCHLD: exit signal
 *      0, so the application's wait() never sees it), resume the application at once; the
 *      child, a frozen copy of the heap, collects the counters, roots (roots.c) and marks
 *      (mark.c), then writes the snapshot (sink.c) and exits. The pause is the stop plus the
 *      clone, whatever the heap's size. The child commits to the WAL and reports the
 *      snapshot's id, and only then copies the WAL into the database file (the checkpoint:
 *      the same megabytes again, and an fsync), so that the snapshot is stored, and the
 *      caller of heapwatch_snapshot() free, without waiting for it. Nothing of it runs in
 *      the application's process: an application fork() meeting SQLite's global mutexes
 *      held would leave its child unable to write. Whoever takes the next snapshot, the
 *      helper thread, or exit waits for that child (reap_checkpointer), so no WAL outlives
 *      a process that exits.
 *      'inplace' (HEAPWATCH_SNAPSHOT=inplace): collect and mark while stopped, resume, write.
 * The child never calls the real allocator, whose arena locks a stopped thread may hold: its
 * work lives in the shim's mappings and its SQLite allocates from the shim's arena.
 *
 * Snapshots are serialised by write_lock; snap_lock is held only around stopping the world,
 * so that the application's fork() (whose prepare handler takes it) waits for a stop, never
 * for a write. */
#define _GNU_SOURCE
#include "snapshot.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "arena.h"
#include "depot.h"
#include "events.h"
#include "glibcheap.h"
#include "counts.h"
#include "record_arena.h"
#include "eventwriter.h"
#include "forkgate.h"
#include "livetable.h"
#include "loaderlock.h"
#include "mark.h"
#include "modules.h"
#include "options.h"
#include "output.h"
#include "real.h"
#include "roots.h"
#include "sink.h"
#include "stw.h"
#include "sys.h"
#include "threadhooks.h"
#include "threads.h"
#include "trigger.h"
#include "unwind.h"

#define STOP_TIMEOUT_MS 500      /* a thread that has not parked by then is reported unstopped:
                                  * generous, as a preempted thread on a loaded machine can take
                                  * 100 ms to run its handler */
#define CHILD_TIMEOUT_MS 600000  /* a snapshot child that writes for 10 minutes is stuck */
#define MAX_FRAMES 64
#define ARENA_RETRIES 50         /* stops retried while a thread holds one of glibc's arena locks */

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static bool exited, stw_ready, inplace;
static bool exec_pending;  /* between an exec's cleanup and its return: no snapshot (write_lock) */

/* Snapshots taken but not written since the last one that was (a full disk): reported once,
 * and recorded in the database with the next snapshot written (table gap). write_lock. */
static struct hw_gap gap;
static char write_message[HW_SINK_MESSAGE];  /* what SQLite said of the last failed write */
static struct hw_snapshot_data data = {
    .stacks = { .elem = sizeof(struct hw_stack_row) },
    .frames = { .elem = sizeof(struct hw_frame_row) },
};
static struct hw_heap heap;
static struct hw_roots roots;
static uintptr_t exit_lo, exit_hi;  /* libc's exit(), to find where the program called it */
/* A walk child that has reported its snapshot and is checkpointing, and its pipe (end of
 * file when it exits); -1 when none. Guarded by write_lock. */
static pid_t checkpointer = -1;
static int checkpointer_fd = -1;
/* This process's pid, set at start and in a fork child: a vfork child (the parent's memory,
 * no atfork handler) has another, and takes no snapshot. */
static pid_t process_pid;

/* ---- collection ------------------------------------------------------------------------------ */

/* Every stack's counters (the shared ones plus what the threads' caches hold: counts.h),
 * and the live table's totals. */
static void collect_counters(struct hw_snapshot_data *d)
{
    hw_live_totals(&d->live_objects, &d->live_bytes);
    struct hw_vec pending = { .elem = sizeof(struct hw_pending_counts) };
    hw_counts_pending(&pending);
    const struct hw_pending_counts *p = (const struct hw_pending_counts *)pending.data, *p_end = p + pending.nr;
    uint32_t n = hw_depot_counters_count();
    for (uint32_t i = 0; i < n; i++) {
        struct hw_stack_counters *c = hw_depot_counters_at(i);
        struct hw_stack_row row = {
            .id = c->stack,
            /* Frees first: a free read after its allocation could make inuse negative. */
            .free_samples = atomic_load_explicit(&c->free_samples, memory_order_relaxed),
            .free_weight = atomic_load_explicit(&c->free_weight, memory_order_relaxed),
            .free_bytes = atomic_load_explicit(&c->free_bytes, memory_order_relaxed),
            .alloc_samples = atomic_load_explicit(&c->alloc_samples, memory_order_relaxed),
            .alloc_weight = atomic_load_explicit(&c->alloc_weight, memory_order_relaxed),
            .alloc_bytes = atomic_load_explicit(&c->alloc_bytes, memory_order_relaxed),
        };
        for (; p < p_end && p->index < i; p++)
            ;
        if (p < p_end && p->index == i) {
            row.free_samples += p->free_samples, row.free_weight += p->free_weight, row.free_bytes += p->free_bytes;
            row.alloc_samples += p->alloc_samples, row.alloc_weight += p->alloc_weight, row.alloc_bytes += p->alloc_bytes;
        }
        /* While threads run (a snapshot without a heap walk), a free flushed from one
         * thread's cache can be read before its allocation, still in another's: never more
         * freed than allocated. A stopped world reads every count whole. */
        if (row.free_samples > row.alloc_samples)
            row.free_samples = row.alloc_samples;
        if (row.free_weight > row.alloc_weight)
            row.free_weight = row.alloc_weight;
        if (row.free_bytes > row.alloc_bytes)
            row.free_bytes = row.alloc_bytes;
        if (!row.alloc_samples)
            continue;
        struct hw_stack_row *r = hw_vec_push(&d->stacks);
        if (!r)
            break;
        *r = row;
    }
    hw_vec_release(&pending);
}

static int count_threads(void)
{
    char buf[4096];
    hw_read_file("/proc/self/status", buf, sizeof buf);
    const char *t = strstr(buf, "\nThreads:");
    return t ? atoi(t + 9) : 0;
}

/* The live blocks of the stopped world w (arena mode: its threads' tcaches are glibc's). */
static bool load_heap(const struct hw_world *w)
{
    if (!hw_arena_mode)
        return hw_heap_load(&heap, NULL, 0);
    size_t n = 0, len = 0;
    heap.recorded_only = hw_opt.sample_rate == 1;   /* full mode: every block it knows has a record */
    uintptr_t *tc = hw_arena_tcaches(w, &roots.maps, &n, &len);
    bool ok = tc && hw_heap_load(&heap, tc, n);
    if (tc)
        hw_unmap(tc, len);
    return ok;
}

/* Roots, marks and frames of the stopped world (or of the fork child's frozen copy of it).
 * Context: the world is stopped; no allocation. */
static void walk(struct hw_snapshot_data *d, const struct hw_world *w)
{
    uint64_t t0 = hw_now_ns(CLOCK_MONOTONIC);
    collect_counters(d);
    d->threads_unstopped = (int)w->unstopped;
    d->threads = 0;
    for (uint32_t i = 0; i < w->nr; i++)
        d->threads += atomic_load(&w->threads[i].state) != HW_T_GONE;
    hw_roots_collect(&roots, w);
    if (!roots.maps.nr) {
        /* Without the mappings there are no roots: every block would look leaked. */
        hw_log("cannot read /proc/self/maps: snapshot without a heap walk");
        d->mode = "counters";
    } else if (load_heap(w)) {
        /* The live totals of a walked snapshot are the walk's own count, exact in the stopped
         * world, rather than the per-thread counters: in a fork child of a threaded program,
         * a thread that vanished mid-allocation leaves a block counted in one and not the
         * other (threads.h). */
        d->live_objects = heap.objects.nr;
        d->live_bytes = heap.live_bytes;
        hw_heap_mark(&heap, &roots);
        d->heap = &heap;
        d->roots = &roots;
        if (heap.incomplete)
            hw_log("out of memory during a heap walk: some leaks may be reported as reachable");
    } else {
        hw_log("cannot load the live blocks: snapshot without a heap walk");
        d->mode = "counters";
    }
    const struct hw_thread_info *t = (const struct hw_thread_info *)roots.threads.data;
    for (size_t i = 0; i < roots.threads.nr; i++) {
        if (!t[i].have_start)
            continue;
        uintptr_t pcs[MAX_FRAMES], cfas[MAX_FRAMES];
        uint32_t n = hw_unwind_frames(&t[i].start, t[i].stack_lo, t[i].stack_hi, pcs, cfas, MAX_FRAMES);
        for (uint32_t k = 0; k < n; k++) {
            struct hw_frame_row *f = hw_vec_push(&d->frames);
            if (f)
                *f = (struct hw_frame_row){ .tid = t[i].tid, .depth = k, .pc = pcs[k], .cfa = cfas[k] };
        }
    }
    d->walk_ns = hw_now_ns(CLOCK_MONOTONIC) - t0;
}

struct stop_ctx {
    struct hw_snapshot_data *d;
    const struct hw_caller *caller;
    struct hw_world world;
    int to_child[2], from_child[2];
    char message[HW_SINK_MESSAGE];  /* what the walk child's write said when it failed */
    pid_t child;
    int pipe_errno;   /* why the pipes could not be made (open_pipes) */
    uint64_t pause_ns;
    bool fork;  /* the walk runs in a child: 'fork' mode, or 'inplace' with a thread that runs on */
};

/* The snapshot's fork child. Never returns. */
static __attribute__((noreturn)) void child_main(struct stop_ctx *c)
{
    prctl(PR_SET_NAME, "heapwatch-walk", 0, 0, 0);
    /* The parent's ends: with its copy of the write end open, a child whose parent was killed
     * between the clone and the pause's write (a kill -9, a timeout's) waited for the pause
     * for ever, a process left behind for good. Now the read meets end of file. */
    close(c->to_child[1]);
    close(c->from_child[0]);
    /* Cloned while this thread held every path into SQLite (write_lock), so SQLite is idle;
     * its locks are made fresh all the same. */
    hw_sink_reset_in_clone();
    c->d->leave_checkpoint = true;  /* it follows, once the parent has the id */
    walk(c->d, &c->world);
    uint64_t pause = 0;
    if (read(c->to_child[0], &pause, sizeof pause) == sizeof pause)
        c->d->pause_ns = pause;
    int64_t id = hw_sink_write(hw_output_path(), c->d);
    char report[sizeof id + HW_SINK_MESSAGE];
    memcpy(report, &id, sizeof id);
    hw_fmt(report + sizeof id, HW_SINK_MESSAGE, "%s", id > 0 ? "" : hw_sink_last_message());
    ssize_t r = write(c->from_child[1], report, sizeof report);
    (void)r;
    /* The program runs on and writes its heap: every page this child still shares would be
     * copied for it (a program that frees a 600 MB heap after a snapshot paid 150,000 copies
     * while the checkpoint ran). */
    if (hw_arena_mode)
        hw_glibcheap_release();
    if (id > 0)
        hw_sink_checkpoint(hw_output_path());
    syscall(SYS_exit_group, id > 0 ? 0 : 1);
    __builtin_unreachable();
}

/* The walk asks the real allocator for the usable size of unsampled blocks (real.h). glibc's
 * is a read of the chunk header; jemalloc's may set up the calling thread's own state on its
 * first call, taking the allocator's locks, which a stopped thread may hold, and which stay
 * held in the walk's child. So the walking thread calls it once before the world stops. */
static void warm_usable_size(void)
{
    if (hw_real_usable != HW_USABLE_CALL)
        return;
    void *p = hw_real.malloc(16);
    if (p) {
        hw_real.malloc_usable_size(p);
        hw_real.free(p);
    }
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void close_pipes(struct stop_ctx *c)
{
    for (int i = 0; i < 2; i++) {
        close_fd(&c->to_child[i]);
        close_fd(&c->from_child[i]);
    }
}

/* The pipes to and from the walk child, made while the world is stopped: no thread of the
 * program can close or take their numbers in the moment before they move out of its reach
 * (sys.h, hw_fd_high). Made before the stop, a double close of the program's in that moment
 * closed one of ours (a pipe end of -1: the snapshot waited 10 minutes for its child, exit 30
 * s for the snapshot), or had the shim move, and close, a pipe the program had just made in
 * its place (bash lost its pipe to cat: "cannot duplicate fd 3 to fd 0"). The checkpointer's
 * pipe outlives the snapshot: out of reach too. False, with pipe_errno (EBADF: one was closed
 * all the same, by a thread that did not stop), if they could not be made.
 * Context: world stopped. */
static bool open_pipes(struct stop_ctx *c)
{
    if (hw_pipe_high(c->to_child, O_CLOEXEC) && hw_pipe_high(c->from_child, O_CLOEXEC))
        return true;
    c->pipe_errno = errno;
    close_pipes(c);
    return false;
}

/* Runs inside dl_iterate_phdr: we own the loader lock while the world is stopped. */
static int stop_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)info;
    (void)size;
    struct stop_ctx *c = arg;  /* called once: returning non-zero ends the iteration */
    /* The modules as the walk's roots will see them: the loader lock is ours, so no dlopen or
     * dlclose comes between this and the roots. */
    hw_modules_refresh();
    uint64_t t0 = hw_now_ns(CLOCK_MONOTONIC);
    hw_stw_stop(&c->world, hw_trigger_helper_tid(), c->caller, STOP_TIMEOUT_MS);
    /* Arena mode walks glibc's heap: not while a stopped thread is inside malloc or free with
     * an arena locked, halfway through changing it. Let the world run a moment and stop it
     * again; after ARENA_RETRIES the walk goes ahead, and fails cleanly if it meets the half
     * change (a snapshot without a heap walk). Naps that doubled up to 5 ms (100 ms in all)
     * made the storm of t5200 find a thread unstopped after 500 ms in 2 runs of 5; not kept.
     * t5510's c11 case met the half change about 1 run in 100 under load, for another reason
     * (below): no nap could help there. */
    for (int i = 0; hw_arena_mode && i < ARENA_RETRIES && hw_glibcheap_busy(); i++) {
        /* A thread waiting in the trigger's handler for this very snapshot (it signalled the
         * process) may hold the lock itself, interrupted inside malloc: it waited for ever,
         * the lock with it, and the walk met its half change (t5510's c11 case, 1 run in
         * 100 under load). It goes on, and its snapshot shows a moment a little later. */
        if (i == 0)
            hw_trigger_release_waiters();
        hw_stw_resume();
        struct timespec ts = { 0, 200000 };
        nanosleep(&ts, NULL);
        hw_stw_stop(&c->world, hw_trigger_helper_tid(), c->caller, STOP_TIMEOUT_MS);
    }
    hw_trigger_mark_served();
    /* A thread that did not stop keeps changing the live table and may unmap what the walk
     * reads: walk a frozen copy of the process instead, whatever the mode. */
    c->fork = !inplace || c->world.unstopped > 0;
    c->d->mode = c->fork ? "fork" : "inplace";
    if (!c->fork) {
        walk(c->d, &c->world);
    } else if (open_pipes(c)) {
        /* fork() without atfork handlers and without SIGCHLD (exit signal 0) */
        c->child = (pid_t)syscall(SYS_clone, 0, NULL, NULL, NULL, 0);
        if (c->child == 0)
            child_main(c);
        if (c->child < 0 && c->world.unstopped == 0) {
            /* No child to be had (ENOMEM in a pid namespace whose init has exited, as
             * `unshare -p -f` leaves its child; a process limit): the walk runs here, in
             * place, as the world is stopped already. The exit snapshot of such a program
             * lost its walk, and said so on its stderr. */
            close_pipes(c);
            c->fork = false;
            c->d->mode = "inplace";
            walk(c->d, &c->world);
        }
    }
    hw_stw_resume();
    c->pause_ns = hw_now_ns(CLOCK_MONOTONIC) - t0;
    return 1;
}

/* Wait until the walk child's pipe fd has data or end of file; false if the child got stuck
 * (it is killed). */
static bool wait_child(pid_t child, int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int rc;
    while ((rc = poll(&pfd, 1, CHILD_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    if (rc == 0) {
        hw_log("the snapshot writer (pid %d) is stuck; killed it", child);
        kill(child, SIGKILL);
    }
    return rc > 0;
}

/* Wait until the walk child whose pipe is fd exits, and reap it; its wait status. */
static int reap_child(pid_t child, int fd)
{
    wait_child(child, fd);
    int status = 0;
    while (waitpid(child, &status, __WALL) < 0 && errno == EINTR)
        ;
    return status;
}

/* Wait for the walk child still checkpointing, if any. write_lock held. */
static void reap_checkpointer(void)
{
    if (checkpointer < 0)
        return;
    reap_child(checkpointer, checkpointer_fd);
    close(checkpointer_fd);
    checkpointer = checkpointer_fd = -1;
}

/* Wait for the snapshot child's id: its write's result (hw_sink_write), or -1 if it died or
 * got stuck. On success the child goes on to checkpoint: it becomes the checkpointer, with
 * its pipe. */
static int64_t await_child(struct stop_ctx *c)
{
    int64_t id = -1;
    char report[sizeof id + HW_SINK_MESSAGE];
    bool said = wait_child(c->child, c->from_child[0]) && read(c->from_child[0], report, sizeof report) == sizeof report;
    if (said) {
        memcpy(&id, report, sizeof id);
        report[sizeof report - 1] = '\0';
        hw_fmt(c->message, sizeof c->message, "%s", report + sizeof id);
    }
    if (said && id > 0) {
        checkpointer = c->child;
        checkpointer_fd = c->from_child[0];
        c->from_child[0] = -1;
        return id;
    }
    int status = reap_child(c->child, c->from_child[0]);
    if (said)
        return id;  /* the write failed; the child said why */
    if (WIFSIGNALED(status))
        hw_log("the snapshot writer (pid %d) died of signal %d: this snapshot is lost", c->child, WTERMSIG(status));
    return -1;
}

static int64_t take_walked(struct hw_snapshot_data *d, const struct hw_caller *caller)
{
    struct stop_ctx c = { .d = d, .caller = caller, .child = -1,
                          .to_child = { -1, -1 }, .from_child = { -1, -1 } };
    /* The pipes exist only while snap_lock is held (the fork prepare handler takes it): an
     * application fork child never inherits the write end whose end of file tells that the
     * walk child has gone, or waiting for it would wait for that child too. */
    hw_sink_close_events();   /* the walk child must not inherit an open connection */
    pthread_mutex_lock(&snap_lock);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);  /* the child must not run the application's handlers */
    warm_usable_size();   /* before the loader lock: the allocator may want it */
    dl_iterate_phdr(stop_cb, &c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (c.fork && c.child > 0) {
        ssize_t w = write(c.to_child[1], &c.pause_ns, sizeof c.pause_ns);
        (void)w;
    }
    close_fd(&c.to_child[0]);
    close_fd(&c.to_child[1]);
    close_fd(&c.from_child[1]);
    pthread_mutex_unlock(&snap_lock);
    d->pause_ns = c.pause_ns;
    int64_t id;
    if (!c.fork) {
        id = hw_sink_write(hw_output_path(), d);
        hw_fmt(write_message, sizeof write_message, "%s", hw_sink_last_message());
        hw_heap_release(&heap);  /* now, not at the next load: that one runs with the world stopped */
    } else if (c.child < 0) {
        if (c.pipe_errno == EBADF)
            hw_fmt(write_message, sizeof write_message, "a pipe for the snapshot writer was closed by the program as it was made");
        else
            hw_fmt(write_message, sizeof write_message, "cannot %s the snapshot writer: %s",
                   c.pipe_errno ? "make a pipe for" : "fork", strerror(c.pipe_errno ? c.pipe_errno : errno));
        id = -1;
    } else {
        id = await_child(&c);
        hw_fmt(write_message, sizeof write_message, "%s", c.message);
    }
    close_pipes(&c);
    return id;
}

static int64_t take_counters(struct hw_snapshot_data *d)
{
    uint64_t t0 = hw_now_ns(CLOCK_MONOTONIC);
    d->mode = "counters";
    d->threads = count_threads() - (hw_trigger_helper_running() ? 1 : 0);
    d->threads_unstopped = 0;
    collect_counters(d);
    hw_trigger_mark_served();  /* a thread that signalled itself has waited until its counters were read */
    d->walk_ns = hw_now_ns(CLOCK_MONOTONIC) - t0;
    d->pause_ns = 0;  /* nothing is stopped without a heap walk */
    int64_t id = hw_sink_write(hw_output_path(), d);
    hw_fmt(write_message, sizeof write_message, "%s", hw_sink_last_message());
    return id;
}

/* After a write: count a lost snapshot, or close a gap. A full disk gives one message, not
 * one per snapshot, and the writer stays quiet until a snapshot is written again. */
static void note_result(long id, uint64_t time_ns)
{
    if (id > 0) {
        hw_output_note_snapshot();
        if (gap.lost)
            hw_log("snapshots are written again: %llu were lost before snapshot %ld (%s)",
                   (unsigned long long)gap.lost, id, gap.reason);
        memset(&gap, 0, sizeof gap);
        hw_sink_set_quiet(false);
        return;
    }
    const char *why = id < -1 ? hw_sink_failure(id) : "the snapshot writer failed";
    if (!gap.lost) {
        hw_log("a snapshot could not be written (%s%s%s); more failures are counted, not reported, and the gap is"
               " recorded with the next snapshot written", why, write_message[0] ? ": " : "", write_message);
        gap.first_ns = time_ns;
    }
    gap.lost++;
    gap.last_ns = time_ns;
    gap.reason = why;
    hw_sink_set_quiet(true);
}

/* No snapshot after this one: wait for the last walk child's checkpoint (its WAL is in the
 * database file before the process ends), refuse later triggers (signals during exit, other
 * threads) and release anyone waiting for a snapshot that will not come. write_lock held. */
static void close_for_exit(void)
{
    hw_events_write(true, false);   /* the last events: after this snapshot's, before the database closes */
    reap_checkpointer();
    /* A program that ends before the helper made its database still gets one (but a fork
     * child's, made at its first snapshot or events only). */
    if (!hw_output_ready() && !hw_output_forked_from() && !exec_pending)
        hw_output_ensure();
    if (hw_output_ready())
        hw_sink_finish(hw_output_path());
    exited = true;
    hw_trigger_serve_all();
}

/* Take a snapshot. caller: the calling application thread, or NULL when the helper asks. */
/* write_lock for an application thread: bounded, since it may hold a lock the snapshot under
 * way needs (the loader lock, inside a dl_iterate_phdr callback): a snapshot that cannot start
 * within APP_WAIT_S is given up, not waited for. The helper waits as long as it takes. */
#define APP_WAIT_S 30
static bool lock_for(const struct hw_caller *caller)
{
    if (!caller) {
        pthread_mutex_lock(&write_lock);
        return true;
    }
    struct timespec until = hw_deadline_in_ms(APP_WAIT_S * 1000);
    if (pthread_mutex_timedlock(&write_lock, &until) == 0)
        return true;
    hw_log("a snapshot could not start: another has been under way for %d s", APP_WAIT_S);
    return false;
}

long hw_snapshot_take(const char *trigger, const char *label, const struct hw_caller *caller)
{
    long id = -1;
    hw_guard_enter();
    if (!lock_for(caller)) {
        hw_guard_leave();
        return -1;
    }
    hw_trigger_claim(!strcmp(trigger, "signal"));
    if (exited || exec_pending || (!strcmp(trigger, "signal") && hw_trigger_claimed_served()) ||
        !hw_output_ensure())
        goto out_unlock;  /* after the exit snapshot, or the requests are served already */
    struct hw_snapshot_data *d = &data;
    hw_vec_clear(&d->stacks);
    hw_vec_clear(&d->frames);
    d->heap = NULL;
    d->roots = NULL;
    d->trigger = trigger;
    snprintf(d->label, sizeof d->label, "%s", label ? label : "");
    reap_checkpointer();  /* one checkpoint at a time, in snapshot order */
    if (!hw_opt.objects || !stw_ready)
        hw_modules_refresh();  /* for the rows (a heap walk refreshes while it holds the loader lock) */
    d->time_ns = hw_now_ns(CLOCK_REALTIME);
    hw_events_new_moment();   /* no later event may take a time from before it (events.c) */
    d->leave_checkpoint = false;
    d->gap = gap;
    if (hw_opt.objects && stw_ready)
        id = (long)take_walked(d, caller);
    else
        id = (long)take_counters(d);
    note_result(id, d->time_ns);
    /* The walk child checkpoints after reporting: the helper waits for it, now or once this
     * application thread has its answer; exit waits in hw_snapshot_at_exit. */
    if (!strcmp(trigger, "exit")) {
        close_for_exit();  /* in the same hold of write_lock: nothing comes between */
    } else if (checkpointer >= 0) {
        if (hw_gettid() == hw_trigger_helper_tid())
            reap_checkpointer();
        else if (hw_trigger_helper_running())
            hw_trigger_wake_for_checkpoint();
        /* else no helper (not started yet, or it could not be): the next snapshot, an exec
         * or exit waits for the child, and this thread goes back to the program now */
    }
out_unlock:
    hw_trigger_mark_served();  /* a signal snapshot that could not be taken releases its waiters all the same */
    pthread_mutex_unlock(&write_lock);
    hw_guard_leave();
    return id;
}

/* ---- for the helper thread (trigger.c) ------------------------------------------------------- */

void hw_snapshot_create_output(void)
{
    pthread_mutex_lock(&write_lock);
    /* Not after exit, which made it or chose not to, nor once an exec removed it: exit_group
     * and the exec would cut a late one short, leaving a file without its tables. */
    if (!exited && !exec_pending)
        hw_output_ensure();
    pthread_mutex_unlock(&write_lock);
}

void hw_snapshot_flush_events(void)
{
    /* write_lock: a snapshot's fork child is cloned holding it, and must not inherit SQLite's
     * own mutexes held by this thread's write (it would wait on them for ever). */
    pthread_mutex_lock(&write_lock);
    /* The last events went with close_for_exit; an exec under way removed the database, and
     * a new one would be cut short by it (this process's events end with its image). */
    if (exited || exec_pending) {
        pthread_mutex_unlock(&write_lock);
        return;
    }
    if (!hw_output_ready())
        hw_output_ensure();   /* a fork child's database, at its first events */
    hw_events_write(false, false);
    pthread_mutex_unlock(&write_lock);
}

void hw_snapshot_reap_checkpointer(void)
{
    pthread_mutex_lock(&write_lock);
    reap_checkpointer();
    pthread_mutex_unlock(&write_lock);
}

/* ---- start, exec, exit ----------------------------------------------------------------------- */

/* libc's exit() and its size, from its dynamic symbol. */
static void find_exit(void)
{
    void *fn = dlsym(RTLD_NEXT, "exit");
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (fn && dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) && sym && sym->st_size) {
        exit_lo = (uintptr_t)fn;
        exit_hi = exit_lo + sym->st_size;
    }
}

void hw_snapshot_start(void)
{
    hw_guard_enter();
    find_exit();
    hw_exechooks_init();
    if (!strcmp(hw_opt.snapshot, "inplace"))
        inplace = true;
    else if (strcmp(hw_opt.snapshot, "fork"))
        hw_log("HEAPWATCH_SNAPSHOT=%s: expected fork or inplace; using fork", hw_opt.snapshot);
    hw_roots_init();
    hw_loaderlock_init();
    hw_modules_refresh();
    hw_threads_register_stack();  /* the main thread's */
    stw_ready = hw_stw_init(hw_trigger_request);
    if (!stw_ready)
        hw_log("cannot install the suspend signal %d: snapshots without a heap walk", (int)HW_SUSPEND_SIGNAL);
    hw_sink_init();  /* here, not on the helper: it reads the environment (sink.h) */
    process_pid = getpid();
    hw_trigger_start();
    hw_guard_leave();
}

void hw_snapshot_pending_before_exec(void)
{
    if (getpid() == process_pid && hw_trigger_pending()) {
        struct hw_caller c = { .sp = (uintptr_t)__builtin_frame_address(0) };
        hw_snapshot_take("signal", "pending at exec", &c);
    }
}

bool hw_snapshot_before_exec(void)
{
    /* A vfork child shares its parent's memory and locks: it leaves them alone. */
    if (getpid() != process_pid)
        return false;
    hw_guard_enter();
    pthread_mutex_lock(&write_lock);
    reap_checkpointer();  /* no walk child left writing a WAL behind the new image */
    if (hw_output_droppable()) {
        hw_output_before_exec();
    } else if (hw_output_ready()) {
        if (!exited)
            hw_events_write(true, true);   /* this image's last events, which end its log */
        hw_sink_finish(hw_output_path());
    }
    exec_pending = true;  /* until the exec returns, which it does only when it failed */
    pthread_mutex_unlock(&write_lock);
    hw_guard_leave();
    return true;
}

#define QUICK_EXIT_WAIT_MS 2000

/* An _exit: the events still queued are written, with the log's end, as exit() writes them
 * (a shell's exit builtin, a forked worker: their last second of events was lost), unless
 * another thread holds write_lock until `until` (a lagging writer's drain). No snapshot comes
 * after. */
static void write_last_events(const struct timespec *until)
{
    hw_guard_enter();
    if (pthread_mutex_timedlock(&write_lock, until) == 0) {
        if (!exited && !exec_pending) {
            hw_events_write(true, true);
            exited = true;
        }
        pthread_mutex_unlock(&write_lock);
    }
    hw_guard_leave();
}

void hw_snapshot_before_quick_exit(void)
{
    if (atomic_load(&hw_state) != HW_ACTIVE || hw_self.guard || getpid() != process_pid)
        return;
    /* One bound for both waits, write_lock's and the sink lock's, as when an _exit only
     * waited for the latter; writing what is queued takes its own time, as at exit(). */
    uint64_t start = hw_now_ns(CLOCK_MONOTONIC);
    if (hw_events_on) {
        struct timespec until = hw_deadline_in_ms(QUICK_EXIT_WAIT_MS);
        write_last_events(&until);
    }
    uint64_t spent_ms = (hw_now_ns(CLOCK_MONOTONIC) - start) / 1000000u;
    /* Taken for good: the process ends holding it. A lock held by this very thread (a signal
     * handler's _exit inside the shim) is ruled out by the guard test above. */
    hw_sink_lock_within(spent_ms < QUICK_EXIT_WAIT_MS ? QUICK_EXIT_WAIT_MS - (int)spent_ms : 1);
}

void hw_snapshot_exec_failed(void)
{
    hw_guard_enter();
    pthread_mutex_lock(&write_lock);
    exec_pending = false;
    pthread_mutex_unlock(&write_lock);
    hw_guard_leave();
}

void hw_snapshot_at_exit(void)
{
    /* The exiting thread's stack counts from where exit() was called: the frames below,
     * exit's and the destructors', reuse the stack of functions that returned before it, and
     * their leftovers would hide leaks. Nothing in its registers is live either. */
    struct hw_caller c = { .sp = (uintptr_t)__builtin_frame_address(0) };
    struct hw_unwind_regs at;
    if (exit_hi && hw_unwind_caller_of(exit_lo, exit_hi, &at)) {
        c.sp = at.sp;
        c.regs.pc = at.pc;
        c.regs.rbp = at.rbp;
    } else {
        HW_SAVE_REGS(&c.regs);
    }
    /* A request the helper has not served yet is taken now, before the exit snapshot, by this
     * thread (it is the snapshot's caller). */
    if (hw_trigger_pending())
        hw_snapshot_take("signal", "pending at exit", &c);
    if (hw_opt.at_exit) {
        hw_snapshot_take("exit", NULL, &c);  /* ends with close_for_exit */
        return;
    }
    hw_guard_enter();
    pthread_mutex_lock(&write_lock);
    close_for_exit();
    pthread_mutex_unlock(&write_lock);
    hw_guard_leave();
}

/* ---- fork ------------------------------------------------------------------------------------ */

/* Between prepare and parent/child this thread holds every lock of the shim, so that the
 * child starts with none of them held by a thread it does not have: the stop, the private
 * SQLite's (its mutexes through the gate of sqlmutex.h, its memory, and sink_lock unless
 * another thread is writing), and the tables. It is a record section, so a stop-the-world
 * arriving meanwhile waits for it to end (stw.h). Order: snap, then the tables, as
 * everywhere else; sink_lock, which comes before snap_lock elsewhere, only tried. */
static int forking_tid;  /* the thread in fork(), as the parent knows it */
static bool fork_has_sink;  /* the prepare handler got sink_lock */
static bool fork_sqlite_ok;  /* ... or at least no thread held a SQLite mutex */
#define FORK_SQLITE_WAIT_MS 1000  /* a fork waits this long for SQLite's mutexes */

void hw_snapshot_atfork_prepare(void)
{
    /* glibc runs the prepare handlers of concurrent forks at the same time: from snap_lock on,
     * one at a time (the statics here are that fork's). */
    pthread_mutex_lock(&snap_lock);
    forking_tid = hw_gettid();
    /* Another thread may be writing: the event log, a snapshot in inplace or counters mode,
     * the database's creation. fork does not wait for the write (that took up to a second),
     * only for SQLite's mutexes (sqlmutex.h); the child never touches the connection. When
     * nobody writes, the events connection is closed, so that no child inherits it. A try
     * only: the lock comes before snap_lock. */
    fork_has_sink = hw_sink_trylock();
    if (fork_has_sink)
        hw_sink_close_events_locked();
    fork_sqlite_ok = hw_sink_fork_prepare(FORK_SQLITE_WAIT_MS);
    hw_forkgate_close();   /* before the locks a window may take (the table's, the log's) */
    hw_record_enter();
    hw_modules_lock();
    hw_threads_lock_registry();
    hw_roots_lock_regions();
    hw_depot_lock();
    hw_livetable_lock_all();
    hw_events_atfork_prepare();
    atomic_store(&hw_fork_holds_locks, true);
}

void hw_snapshot_atfork_parent(void)
{
    atomic_store(&hw_fork_holds_locks, false);
    hw_events_atfork_parent();
    hw_livetable_unlock_all();
    hw_depot_unlock();
    hw_roots_unlock_regions();
    hw_threads_unlock_registry();
    hw_modules_unlock();
    hw_record_leave();
    hw_forkgate_reopen_parent();
    hw_sink_fork_parent();
    if (fork_has_sink)
        hw_sink_unlock();
    pthread_mutex_unlock(&snap_lock);
}

/* The child: its own database (opened at its first snapshot), its own helper and pipe. */
void hw_snapshot_atfork_child(void)
{
    atomic_store(&hw_fork_holds_locks, false);
    hw_forkgate_reopen_child();
    hw_events_atfork_child();
    hw_events_writer_atfork_child();
    hw_livetable_unlock_all();
    hw_depot_unlock();
    hw_roots_unlock_regions();
    hw_threads_unlock_registry();
    hw_modules_unlock();
    hw_sink_fork_child(fork_sqlite_ok);
    hw_loaderlock_after_fork(forking_tid);
    hw_self.in_record = 0;
    atomic_store(&hw_self.stop_deferred, 0);
    pthread_mutex_init(&snap_lock, NULL);
    pthread_mutex_init(&write_lock, NULL);  /* the helper may have held it mid-write */
    hw_output_forget_in_child();
    process_pid = getpid();
    hw_trigger_forget_in_child();  /* the parent's wake pipe and requests */
    if (checkpointer_fd >= 0)
        close(checkpointer_fd);  /* the parent's child, not ours */
    checkpointer = checkpointer_fd = -1;
    /* Another thread of the parent may have been between a snapshot's steps: a vector being
     * moved by mremap, the heap being released after an inplace write. Their pointers may
     * name memory the child does not have: forget them (what they map, if anything, stays). */
    memset(&heap, 0, sizeof heap);
    memset(&roots, 0, sizeof roots);
    data.stacks = (struct hw_vec){ .elem = sizeof(struct hw_stack_row) };
    data.frames = (struct hw_vec){ .elem = sizeof(struct hw_frame_row) };
    memset(&gap, 0, sizeof gap);  /* the parent's lost snapshots are the parent's */
    hw_sink_set_quiet(false);
    exec_pending = false;
    hw_threads_forget_in_child();  /* the parent's joinable threads and thread starts */
    hw_arena_keep_parent_tcaches();  /* before a new thread may reuse a parent's TCB */
    hw_trigger_restart_in_child(!exited);  /* its own helper */
}
