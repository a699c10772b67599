/* hw.h: internal header of libheapwatch.so: visibility, context markers, branch hints, the
 * per-thread state and the process-wide state every module shares.
 *
 * Context tiers: each function is marked on its prototype (the empty macros below state the
 * contract where it is declared, for the reader and for grep), and each file says its tier in
 * its opening comment:
 *   HW_SIGSAFE  may run in a signal handler, with the world stopped or in a snapshot's fork
 *               child: no allocation, no stdio, no locks (a suspended thread may hold any
 *               of them); system calls and the shim's own mappings only (the rules of
 *               signal-safety(7), as in compiler-rt's sanitizer_libc.h and Boehm GC's
 *               pthread_stop_world.c)
 *   HW_HOOKSAFE may run inside an interposed allocator call: no libc allocation, no stdio,
 *               no getenv, no dlsym or dlopen once initialised; only the shim's own short
 *               locks. `make check-contexts` holds the files of the Makefile's HOOKSAFE_SRCS
 *               to it: their objects may not call malloc, calloc, realloc, free, *printf,
 *               getenv, fopen or dlsym (real.c and interpose.c, which reach the real
 *               allocator, excepted)
 *   (unmarked)  guarded: runs with the per-thread guard set (the shim's own threads, init,
 *               exit, fork handlers), so anything it allocates goes to the real allocator
 *               unrecorded, as in heaptrack's timer thread. */
#ifndef HW_H
#define HW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HW_EXPORT __attribute__((visibility("default")))
/* On every extern declaration of the shim's own data: -fvisibility=hidden marks definitions
 * only, and a declaration it does not know to be local is reached through the GOT, an extra
 * instruction (a load before the linker relaxes it) on every hook's fast path. */
#define HW_INTERNAL __attribute__((visibility("hidden")))
#define HW_LIKELY(x) __builtin_expect(!!(x), 1)
#define HW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HW_SIGSAFE
#define HW_HOOKSAFE
#define HW_NOINLINE __attribute__((noinline))
#define HW_COLD __attribute__((noinline, cold))
/* Initial-exec TLS never calls __tls_get_addr, whose slow path mallocs (gperftools PR #1080). */
#define HW_TLS __thread __attribute__((tls_model("initial-exec")))
/* Internal corruption only; the shim otherwise degrades and never aborts. */
#define HW_ASSERT(c) do { if (HW_UNLIKELY(!(c))) __builtin_trap(); } while (0)

#define HW_MAX_DEPTH 128

/* Per-thread state, kept small: initial-exec TLS comes out of glibc's static TLS surplus. */
struct hw_thread {
    int guard;                  /* > 0: inside the shim, allocations pass through unrecorded */
    uint32_t index;             /* 1-based thread index (0 = not registered yet) */
    int64_t until_sample;       /* bytes left before the next sampled allocation; 0 while the
                                 * guard is set, so that a hook's fast path (taken only when it
                                 * stays positive) needs no other test */
    int64_t until_sample_saved; /* its value when the guard was set */
    uint64_t rng;               /* xorshift64* state, 0 = not seeded */
    uint32_t seq_next, seq_end; /* block of allocation sequence numbers owned by this thread */
    int in_record;              /* > 0: inside the live table / depot / counters (stw.h) */
    _Atomic int stop_deferred;  /* the suspend signal came while in_record: park on leaving */
    uintptr_t stack_lo, stack_hi;  /* this thread's stack, once known (threadhooks.c); 0 = unknown */
    struct hw_live_count *live;    /* this thread's live counters (threads.h); NULL until registered */
    int *window;                /* this thread's fork window count (forkgate.h); NULL until registered */
    int window_shared_depth;    /* the same, for a thread that shares the last slot */
    bool forking;               /* this thread closed the fork gate: its own windows pass */
    uint32_t gate_given_up;     /* the gate's closing (its epoch) this thread stopped waiting for */
    /* The event log (events.c): this thread's queue and its place in its stream (the previous
     * record's ticks and address); its latest sampled allocation (seq, and the countdown,
     * slow_allocs and its live count right after it), which a free compares to tell a
     * temporary allocation. */
    struct hw_ev_queue *evq;
    /* Where the next record goes: in block ev_block (events.c) from ev_pos, while ev_pos is
     * at most ev_end (a whole record fits), with ev_records records before it. NULL ev_pos:
     * look the queue up again (a new thread, a queue retired, a fork child). */
    void *ev_block;
    uint8_t *ev_pos, *ev_end;
    uint32_t ev_records;
    uint64_t ev_ticks, ev_addr, ev_stack;
    uint64_t ev_coarse;         /* CLOCK_MONOTONIC_COARSE at the last free that read it */
    uint32_t ev_stale;          /* frees since the clock was last read */
    uint32_t ev_epoch;          /* the snapshot count (events.c, time_epoch) when it was */
    uint64_t slow_allocs, ev_last_slow;
    int64_t ev_last_countdown, ev_last_objects;
    uint32_t ev_last_seq;
    bool ev_busy;               /* inside hw_event_*: a nested call (a signal handler) is dropped */
    uint64_t arena_frees;       /* arena mode: frees of this thread (the event log's temporaries) */
    uint32_t sql_mutexes;       /* SQLite mutexes this thread holds (sqlmutex.c) */
};
extern HW_INTERNAL HW_TLS struct hw_thread hw_self;  /* defined in threads.c; the registry is threads.h */

/* The guard also parks the sampling countdown at 0, which sends every hook to its slow path,
 * where the guard is tested. A signal handler's allocation between the two steps of either
 * function at worst moves the countdown: sampling stays a Poisson process. */
static inline void hw_guard_enter(void)
{
    if (hw_self.guard++ == 0) {
        hw_self.until_sample_saved = hw_self.until_sample;
        hw_self.until_sample = 0;
    }
}
static inline void hw_guard_leave(void)
{
    if (--hw_self.guard == 0)
        hw_self.until_sample = hw_self.until_sample_saved;
}

/* Brackets around every update of the shim's tables: a stop-the-world never catches a thread
 * between them (it parks at the closing bracket instead; stw.c). */
void hw_stw_safepoint(void) HW_SIGSAFE;
static inline void hw_record_enter(void) { hw_self.in_record++; atomic_signal_fence(memory_order_seq_cst); }
static inline void hw_record_leave(void)
{
    atomic_signal_fence(memory_order_seq_cst);
    if (--hw_self.in_record == 0 && HW_UNLIKELY(atomic_load_explicit(&hw_self.stop_deferred, memory_order_relaxed)))
        hw_stw_safepoint();
}

/* Process-wide state. */
enum hw_state { HW_UNINIT = 0, HW_INITIALIZING, HW_ACTIVE, HW_INERT };
extern HW_INTERNAL _Atomic int hw_state;
extern HW_INTERNAL uintptr_t hw_self_text_lo, hw_self_text_hi;  /* our own code, to drop our frames */
/* libc's code and the real malloc's module's (the same with glibc), set once at start-up. */
extern HW_INTERNAL uintptr_t hw_libc_text_lo, hw_libc_text_hi, hw_malloc_text_lo, hw_malloc_text_hi;

/* init.c: initialise on the first hook call; returns true when recording is active. */
bool hw_init_slow(void) HW_HOOKSAFE;
static inline bool hw_active(void)
{
    int s = atomic_load_explicit(&hw_state, memory_order_acquire);
    if (HW_LIKELY(s == HW_ACTIVE))
        return true;
    return s == HW_UNINIT ? hw_init_slow() : false;
}

#endif
