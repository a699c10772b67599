/* This file implements the triggers: everything that decides when a snapshot is taken.
 * Taking one is snapshot.c's (hw_snapshot_take).
 *
 *   trigger                      who runs it
 *   HEAPWATCH_SIGNAL             on_signal numbers the request, writes 's' to the wake pipe
 *                                -> helper; a thread that signalled itself waits in the
 *                                handler until the world is stopped (wait_served)
 *   heapwatch snap PID           sigqueue of the suspend signal with HW_SNAP_REQUEST: stw.c's
 *                                handler calls hw_trigger_request, 'r' -> helper
 *   HEAPWATCH_INTERVAL           the helper's poll timeout -> helper
 *   heapwatch_snapshot(label)    the calling thread, synchronously (init.c)
 *   exit                         the destructor's thread, synchronously (hw_snapshot_at_exit)
 *
 * THE HELPER THREAD blocks every signal, so that it never takes one meant for the application
 * (heaptrack learnt this from KDE bug 378494), and keeps the guard set for its whole life.
 * It sleeps in poll on the wake pipe, whose bytes say what to do: 's' a snapshot for the
 * trigger signal, 'r' one for `heapwatch snap`, 'c' a checkpoint to wait for; all the bytes
 * one read returns are one wake-up. It never ends.
 *
 * WHEN IT STARTS. A process that glibc knows to be single-threaded runs malloc and free
 * without their arena locks; a helper from the start would cost such a program 7% of a
 * malloc/free loop. So unless something needs it from the start (glibc already has threads,
 * HEAPWATCH_INTERVAL, the event log), the helper is `lazy`: it starts at the program's first
 * pthread_create or thrd_create (hw_trigger_before_thread), or for the first request. A
 * request arrives in a signal handler (on_signal, hw_trigger_request), which starts the
 * helper there when helperstart.c says the interrupted thread allows it (start_for_request:
 * never once glibc counts a second thread, whose locks this one may hold); otherwise the
 * thread's next allocation starts it on its way in (hw_trigger_at_allocation), and a timer
 * signal (HW_SNAP_RETRY) asks again in a few milliseconds. Until the helper runs, the
 * database is made by the first snapshot (at the latest the exit one; a request still
 * pending at an exec or at exit is taken there), an application
 * thread's snapshot leaves its checkpointing child to the next snapshot or exit, and bytes
 * written to the wake pipe wait for the helper. Its states, and the function on each edge:
 *
 *                start_helper [hw_trigger_start at start-up, or when first needed (above);
 *                hw_trigger_restart_in_child in a fork child, the same]
 *    NO HELPER --------------------------------------------> CREATING
 *    (a fork child                                              |
 *     starts here)      hw_snapshot_create_output (skipped in   |
 *                       a fork child: most exec at once, so     |
 *                       theirs is made at its first snapshot)   v
 *                                   +-------------------------> WAITING (poll)
 *                                   |                           |  |  |
 *                                   |    poll timed out         |  |  |
 *                                   |    (HEAPWATCH_INTERVAL)   |  |  |
 *                                   +------- INTERVAL <---------+  |  |
 *                                   |  [hw_snapshot_take           |  |
 *                                   |   ("interval")]              |  |
 *                                   |    's' or 'r' read           |  |
 *                                   +------- SIGNAL <--------------+  |
 *                                   |  [hw_snapshot_take              |
 *                                   |   ("signal")]                   |
 *                                   |    only 'c' read                |
 *                                   +------- REAP <-------------------+
 *                                      [hw_snapshot_reap_checkpointer]
 *
 * REQUESTS (the trigger signal, `heapwatch snap`) are numbered as they arrive: `requested`
 * counts them, `served` is the number up to which they are served. A signal snapshot claims
 * every request made before it stops the world (`serving`), and whatever arrived before is in
 * the snapshot taken after it; one that finds everything it claims served already is not
 * taken, so a burst of signals costs one snapshot. A request's states:
 *
 *      REQUESTED -------------> CLAIMED -------------> SERVED
 *          |                                             ^
 *          +---------------------------------------------+
 *
 *   (none)    -> REQUESTED  [on_signal, hw_trigger_request: requested++, a byte to the helper]
 *   REQUESTED -> CLAIMED    [hw_trigger_claim: hw_snapshot_take of a signal snapshot, under
 *                            write_lock, just before it stops the world; at exit, the
 *                            exiting thread takes one for a request still pending
 *                            (hw_trigger_pending)]
 *   CLAIMED   -> SERVED     [hw_trigger_mark_served: the world is stopped (snapshot.c's
 *                            stop_cb), or the counters are read (take_counters), or the
 *                            snapshot could not be taken (the end of hw_snapshot_take), so
 *                            that nobody waits for it]
 *   REQUESTED -> SERVED     [hw_trigger_serve_all: at exit, when no snapshot will come]
 *
 * served_gen is the futex word a thread that signalled itself waits on in the handler
 * (wait_served), at most SELF_SIGNAL_WAIT_MS. A fork child forgets the parent's requests
 * (hw_trigger_forget_in_child).
 * Context: the signal handlers and what they call are SIGSAFE; the rest runs guarded. */
#define _GNU_SOURCE
#include "trigger.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "events.h"
#include "helperstart.h"
#include "options.h"
#include "output.h"
#include "snapshot.h"
#include "sys.h"

#define EVENTS_POLL_MS 250         /* the helper checks whether the event log is due this often */
#define SELF_SIGNAL_WAIT_MS 5000  /* a thread that signalled itself waits at most this long */

static int wake_pipe[2] = { -1, -1 };
static pthread_t helper;
static _Atomic int helper_tid;
#define HELPER_START_WAIT_NS 2000000000ull   /* 0 until the helper runs: start_helper waits for it */
static _Atomic uintptr_t helper_tp;
static bool helper_running;
/* Whether the helper waits until it is needed: set at start in a process that glibc knows
 * to be single-threaded (helperstart.h), with no interval and no event log. */
static bool lazy;
static _Atomic bool helper_started;    /* start_helper ran, or runs, in this process */
_Atomic bool hw_trigger_helper_wanted;  /* a request waits for an allocation to start it */

static _Atomic uint64_t requested, served;
static _Atomic uint64_t released;   /* waiters in the handler with tickets up to this go on unserved */
static _Atomic uint32_t served_gen;
static uint64_t serving;  /* the requests the snapshot under way serves; write_lock (snapshot.c) */

bool hw_trigger_helper_running(void) { return helper_running; }
int hw_trigger_helper_tid(void) { return atomic_load_explicit(&helper_tid, memory_order_acquire); }
uintptr_t hw_trigger_helper_tp(void) { return helper_running ? atomic_load(&helper_tp) : 0; }

/* Tell the helper thread what to do: 's' a snapshot for the trigger signal, 'r' one for
 * `heapwatch snap`, 'c' a checkpoint. Context: SIGSAFE. */
static void wake_helper(char what)
{
    if (wake_pipe[1] >= 0) {
        ssize_t r = write(wake_pipe[1], &what, 1);  /* a full pipe already has a pending request */
        (void)r;
    }
}

void hw_trigger_wake_for_checkpoint(void) { wake_helper('c'); }
void hw_trigger_wake_for_events(void) { wake_helper('e'); }

/* ---- requests -------------------------------------------------------------------------------- */

void hw_trigger_claim(bool signal)
{
    serving = signal ? atomic_load(&requested) : 0;
}

bool hw_trigger_claimed_served(void)
{
    return serving <= atomic_load(&served);
}

/* The world is stopped (or, without a heap walk, the counters are read): the requests this
 * snapshot serves are served. Context: SIGSAFE. */
void hw_trigger_mark_served(void)
{
    if (serving > atomic_load(&served)) {
        atomic_store(&served, serving);
        atomic_fetch_add(&served_gen, 1);
        syscall(SYS_futex, &served_gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    }
}

void hw_trigger_release_waiters(void)
{
    atomic_store(&released, atomic_load(&requested));
    atomic_fetch_add(&served_gen, 1);
    syscall(SYS_futex, &served_gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void hw_trigger_serve_all(void)
{
    serving = atomic_load(&requested);
    hw_trigger_mark_served();
}

bool hw_trigger_pending(void)
{
    return atomic_load(&requested) > atomic_load(&served);
}

static void start_for_request(void *uc, uintptr_t restorer) HW_SIGSAFE;

/* ---- the signal handlers --------------------------------------------------------------------- */

/* Wait until request `ticket` is served, or SELF_SIGNAL_WAIT_MS have passed (the helper may
 * be unable to stop the world meanwhile: if this thread holds the loader lock, say).
 * Context: SIGSAFE. */
static void wait_served(uint64_t ticket)
{
    uint64_t deadline = hw_now_ns(CLOCK_MONOTONIC) + SELF_SIGNAL_WAIT_MS * 1000000ull;
    for (;;) {
        uint32_t gen = atomic_load(&served_gen);
        if (atomic_load(&served) >= ticket || atomic_load(&released) >= ticket)
            return;
        uint64_t now = hw_now_ns(CLOCK_MONOTONIC);
        if (now >= deadline)
            return;
        struct timespec ts = { (time_t)((deadline - now) / 1000000000u), (long)((deadline - now) % 1000000000u) };
        syscall(SYS_futex, &served_gen, FUTEX_WAIT_PRIVATE, gen, &ts, NULL, 0);
    }
}

/* The trigger signal. One the program sent itself (raise, kill(getpid()), pthread_kill)
 * asks for a snapshot of this moment: the thread waits here until the world is stopped,
 * so the snapshot shows the heap as it was when the signal was sent. Context: SIGSAFE. */
static void on_signal(int sig, siginfo_t *si, void *uc) HW_SIGSAFE;
static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    int saved = errno;
    uint64_t ticket = atomic_fetch_add(&requested, 1) + 1;
    wake_helper('s');
    bool self = si && si->si_pid == getpid() && (si->si_code == SI_TKILL || si->si_code == SI_USER);
    if (!helper_running)
        start_for_request(uc, (uintptr_t)__builtin_return_address(0));
    /* Not inside the shim: a thread in a record section holds a table's lock, and one with
     * the guard set may hold the snapshot's own locks; neither could let the world stop. */
    if (self && helper_running && hw_gettid() != hw_trigger_helper_tid() && !hw_self.in_record && !hw_self.guard)
        wait_served(ticket);
    errno = saved;
}

/* Context: SIGSAFE -- a snapshot request from `heapwatch snap`, or the retry timer's signal
 * (stw.c's handler). */
void hw_trigger_request(bool retry, void *uc, uintptr_t restorer)
{
    if (!retry) {
        atomic_fetch_add(&requested, 1);
        wake_helper('r');
    }
    if (!helper_running)
        start_for_request(uc, restorer);
}

/* ---- the helper thread ----------------------------------------------------------------------- */

static void *helper_main(void *unused)
{
    bool pipe_lost = false;
    (void)unused;
    hw_guard_enter();  /* for life: everything this thread allocates is ours */
    atomic_store_explicit(&helper_tid, hw_gettid(), memory_order_release);
    atomic_store(&helper_tp, (uintptr_t)pthread_self());
    /* The database is created now, so that `heapwatch snap` finds it; a fork child's waits for
     * its first snapshot, as most fork children exec at once. */
    if (!hw_output_forked_from())
        hw_snapshot_create_output();
    uint64_t period = hw_opt.interval * 1000000000ull;
    uint64_t next = period ? hw_now_ns(CLOCK_MONOTONIC) + period : 0;
    for (;;) {
        int timeout = -1;
        uint64_t now = hw_now_ns(CLOCK_MONOTONIC);
        if (period)
            timeout = next > now ? (int)((next - now + 999999) / 1000000) : 0;
        if (hw_events_on && (timeout < 0 || timeout > EVENTS_POLL_MS))
            timeout = EVENTS_POLL_MS;   /* the event log is drained about once a second */
        struct pollfd pfd = { .fd = pipe_lost ? -1 : wake_pipe[0], .events = POLLIN };
        int rc = poll(&pfd, 1, timeout);
        if (rc > 0 && (pfd.revents & POLLNVAL)) {
            /* The program closed it (closefrom, or every descriptor up to the limit): polling it
             * again would return at once, for ever. Only timed work remains. */
            pipe_lost = true;
            hw_log("the program closed the shim's wake-up pipe; snapshots on signal and from heapwatch snap stop");
        } else if (rc > 0) {
            char buf[64];
            ssize_t r = read(wake_pipe[0], buf, sizeof buf);  /* coalesce a burst of signals */
            bool requested = r > 0 && memchr(buf, 'r', (size_t)r);
            bool snapshot = requested || (r > 0 && memchr(buf, 's', (size_t)r));
            if (snapshot)
                hw_snapshot_take("signal", requested ? "heapwatch snap" : NULL, NULL);
            else if (r > 0 && memchr(buf, 'c', (size_t)r))
                hw_snapshot_reap_checkpointer();   /* the checkpointing child of an application thread's snapshot */
        }
        if (period && hw_now_ns(CLOCK_MONOTONIC) >= next) {
            hw_snapshot_take("interval", NULL, NULL);
            next += period;
            now = hw_now_ns(CLOCK_MONOTONIC);
            if (next < now)
                next = now + period;  /* a slow write must not cause a burst */
        }
        if (hw_events_due())
            hw_snapshot_flush_events();
    }
    return NULL;
}

static bool open_pipe(void)
{
    /* An end the program closed before it moved out of reach (EBADF: a double close of its
     * own) is tried once more: a helper polling -1 would never wake. */
    if (hw_pipe_high(wake_pipe, O_CLOEXEC | O_NONBLOCK) ||
        (errno == EBADF && hw_pipe_high(wake_pipe, O_CLOEXEC | O_NONBLOCK)))
        return true;
    hw_log("cannot create the trigger pipe: %s; only API and exit snapshots", strerror(errno));
    return false;
}

/* Whether the helper must run from the start: glibc already runs malloc with its locks (a
 * thread was started, or this is a multi-threaded program's fork child), or it has work of
 * its own (the interval, the event log). */
static bool helper_needed_now(void)
{
    return !__libc_single_threaded || hw_opt.interval || hw_events_on;
}

/* Start the helper thread, once per process (a signal handler may start it while the thread
 * it interrupted was on its way here: the first one through does it). From a signal handler
 * only where hw_helperstart_safe says so. */
static void start_helper(void)
{
    if (wake_pipe[0] < 0 || atomic_exchange(&helper_started, true))
        return;
    atomic_store(&hw_trigger_helper_wanted, false);
    hw_guard_enter();
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    atomic_store(&helper_tid, 0);
    helper_running = pthread_create(&helper, &attr, helper_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Until the helper knows its tid, a stop of the world would count it as a thread of the
     * program that does not stop (it blocks every signal): a fork child that exits at once
     * took its exit snapshot so. It starts in well under a millisecond. */
    uint64_t until = hw_now_ns(CLOCK_MONOTONIC) + HELPER_START_WAIT_NS;
    while (helper_running && !atomic_load(&helper_tid) && hw_now_ns(CLOCK_MONOTONIC) < until)
        sched_yield();
    if (!helper_running)
        hw_log("cannot start the helper thread; only API and exit snapshots");
    hw_guard_leave();
}

/* A request came (the trigger signal, `heapwatch snap`, the retry timer) and no helper runs:
 * start it from this handler if the interrupted thread allows, else have its next allocation
 * start it, and the timer ask again. Context: SIGSAFE. */
static void start_for_request(void *uc, uintptr_t restorer)
{
    if (!lazy || atomic_load(&helper_started) || !hw_trigger_pending())
        return;
    if (hw_helperstart_safe(uc, restorer)) {
        start_helper();
        return;
    }
    atomic_store(&hw_trigger_helper_wanted, true);
    hw_self.until_sample = 0;          /* the thread's next allocation takes its slow path, */
    hw_self.until_sample_saved = 0;    /* also after a guarded section it may be in */
    hw_helperstart_retry_later(uc);
}

void hw_trigger_start_wanted(void)
{
    if (atomic_exchange(&hw_trigger_helper_wanted, false) && hw_trigger_pending())
        start_helper();
}

void hw_trigger_before_thread(void)
{
    if (lazy && !atomic_load(&helper_started))
        start_helper();
}

/* ---- the trigger signal ---------------------------------------------------------------------- */

static _Atomic int installed_signal;  /* the trigger signal while our handler holds it */
static struct sigaction program_view;  /* what the program last set for it meanwhile: SIG_DFL at first */
static pid_t installed_pid;            /* the process whose handler it is: a vfork child, sharing
                                        * this memory, changes only its own */

bool hw_trigger_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (!sig || atomic_load(&installed_signal) != sig || (act && act->sa_handler != SIG_DFL) ||
        getpid() != installed_pid)
        return false;
    if (old)
        *old = program_view;
    if (act)
        program_view = *act;
    return true;
}

void hw_trigger_signal_taken_over(int sig, struct sigaction *old)
{
    if (old && old->sa_sigaction == on_signal)
        *old = program_view;   /* not the shim's handler, which the program never set */
    int expected = sig;
    if (!sig || getpid() != installed_pid || !atomic_compare_exchange_strong(&installed_signal, &expected, 0))
        return;
    hw_log("the program takes signal %d for itself (a handler of its own, or SIG_IGN); snapshots on signal are"
           " off (set HEAPWATCH_SIGNAL to another signal)", sig);
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
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_RESTART | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    installed_pid = getpid();
    if (sigaction(sig, &sa, NULL) == 0)
        atomic_store(&installed_signal, sig);
}

/* Open the wake pipe, then start the helper now, or leave it until needed (`lazy`). */
static void start_or_defer_helper(void)
{
    if (!open_pipe())
        return;
    lazy = !helper_needed_now();
    if (!lazy)
        start_helper();
}

void hw_trigger_start(void)
{
    start_or_defer_helper();
    install_signal();
}

/* ---- fork child ------------------------------------------------------------------------------ */

void hw_trigger_forget_in_child(void)
{
    installed_pid = getpid();   /* the handler is inherited: now this process's */
    if (wake_pipe[0] >= 0) {
        close(wake_pipe[0]);
        close(wake_pipe[1]);
        wake_pipe[0] = wake_pipe[1] = -1;
    }
    atomic_store(&requested, 0);  /* the parent's requests are the parent's */
    atomic_store(&served, 0);
}

void hw_trigger_restart_in_child(bool start)
{
    helper_running = false;
    atomic_store(&helper_tp, 0);
    atomic_store(&helper_started, false);
    atomic_store(&hw_trigger_helper_wanted, false);
    lazy = false;
    if (start)
        start_or_defer_helper();
}
