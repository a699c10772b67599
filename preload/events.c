/* This file implements the event log's recording side (events.h).
 *
 * A thread's queue is a list of blocks with one producer (the thread) and one consumer (the
 * writer). The thread encodes a record past its tail block's `mark` and then publishes it
 * with a release store of the new mark; the writer reads up to the mark with an acquire load.
 * No record spans two blocks: a record that does not fit starts a new block, which the
 * thread links with a release store after the old block's last mark store, so a writer that
 * sees the link reads the mark once more and then owns the old block whole. Nothing on the thread's
 * side waits for the writer: a thread whose writer lags takes more blocks.
 *
 * A thread that exits (the key destructor) marks its queue exited; the writer retires it once
 * drained. Blocks and queues are recycled through free lists under short spin locks, taken
 * only once per block (64 KiB of records) or per thread.
 * Context: HOOKSAFE; drain and the fork handlers run guarded. */
#define _GNU_SOURCE
#include "events.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>
#include "../schema/chunk.h"
#include "forkgate.h"
#include "options.h"
#include "record_arena.h"
#include "spin.h"
#include "threads.h"
#include "trigger.h"

#define BLOCK_BYTES (64 * 1024 - 64)
#define DRAIN_PERIOD_NS 1000000000ull   /* a kill -9 loses at most this much */
#define DRAIN_BLOCKS 32                 /* or as soon as this many blocks (2 MiB) wait */
#define CUT_MARGIN_NS 100000000ull      /* no piece of a drain ends this close to its end */

/* A block's mark: records << 32 | bytes, published together, so that the writer counts
 * records without decoding them. */
#define MARK_BYTES(m) ((uint32_t)(m))
#define MARK_RECORDS(m) ((uint32_t)((m) >> 32))

struct ev_block {
    struct ev_block *_Atomic next;   /* the thread's next block; NULL while this is its tail */
    _Atomic uint64_t mark;           /* what is published: MARK_RECORDS records, MARK_BYTES bytes */
    uint64_t first_ticks;            /* no record in the block was taken before this (the time
                                      * of the thread's record before the block): where a drain
                                      * too big for one chunk is cut (hw_events_drain_piece) */
    uint8_t data[BLOCK_BYTES];
};

struct hw_ev_queue {
    struct hw_ev_queue *next_all;    /* arrivals, then the registry (registry_lock) */
    struct ev_block *head;           /* writer: the first block with bytes it has not read */
    uint64_t head_read;              /* writer: the mark of head up to which it drained */
    struct ev_block *tail;           /* thread: the block it appends to */
    uint64_t stream;                 /* its number in the log (schema/chunk.h) */
    int tid;
    _Atomic bool exited;
};

bool hw_events_on;
static bool use_tsc;
static pthread_key_t exit_key;
static bool have_exit_key;

static _Atomic int registry_lock, free_lock;
static struct hw_ev_queue *registry;          /* every live queue the writer has taken in */
static struct hw_ev_queue *_Atomic arrivals;  /* queues made since, pushed without a lock */
static struct hw_ev_queue *free_queues;        /* free_lock */
static struct ev_block *free_blocks;          /* free_lock, linked through next */
static _Atomic uint32_t blocks_waiting;       /* blocks linked since the last drain */
static _Atomic uint64_t streams;              /* queues ever made: the next stream number */
static _Atomic bool wake_sent;
static uint64_t last_ticks, last_ns, last_mono; /* the previous drain (writer) */

/* In units of 32 cycles or 16 ns (schema/chunk.h). */
uint64_t hw_event_ticks(void)
{
    return use_tsc ? __rdtsc() >> 5 : hw_now_ns(CLOCK_MONOTONIC) >> 4;
}

/* The clock in ticks and in ns at one moment, as nearly as reads can tell: the pair is read
 * three times, ticks around the ns, and the tightest kept, its ticks the midpoint. A writer
 * preempted between two plain reads (a loaded machine: a test suite at -j2) had its ns late by
 * the preemption, and every event interpolated from the pair moved later with it: the last
 * events before the exit snapshot sorted after it, and a report at that snapshot lost them
 * (t6100's sampled temporaries, 30% of the count once in CI). */
static void clock_pair(uint64_t *ticks, uint64_t *ns)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 3; i++) {
        uint64_t before = hw_event_ticks(), now = hw_now_ns(CLOCK_REALTIME), after = hw_event_ticks();
        if (after - before < best) {
            best = after - before;
            *ticks = before + best / 2;
            *ns = now;
        }
    }
}

/* Whether the kernel keeps time with the TSC: then it is constant-rate and synchronised
 * across CPUs (the kernel checks both before it chooses it), and reading it costs a third of
 * a vDSO clock_gettime. */
static bool kernel_uses_tsc(void)
{
    char buf[64];
    size_t n = hw_read_file("/sys/devices/system/clocksource/clocksource0/current_clocksource", buf, sizeof buf - 1);
    buf[n] = '\0';
    return !strncmp(buf, "tsc", 3) && (buf[3] == '\n' || buf[3] == '\0');
}

static void queue_exit(void *q);

void hw_events_init(void)
{
    hw_events_on = hw_opt.events && hw_opt.sample_rate != 0;
    if (!hw_events_on)
        return;
    use_tsc = kernel_uses_tsc();
    have_exit_key = pthread_key_create(&exit_key, queue_exit) == 0;
    clock_pair(&last_ticks, &last_ns);
    last_mono = hw_now_ns(CLOCK_MONOTONIC);
}

/* A block from the free list, or a fresh mapping. A fork holds the list's lock from its
 * prepare handler to its parent's, and a thread gives up waiting for it after 20 ms
 * (forkgate.h), while a fork of a big process on a loaded machine takes longer: the block is
 * then mapped, not the event dropped. A dropped allocation left its free unmatched in the log
 * (t7000's forklag: up to 121 in 1 run of 5, one per block a churning thread held across the
 * fork). */
static struct ev_block *block_new(void)
{
    struct ev_block *b = NULL;
    if (hw_spin_lock_or_fork(&free_lock)) {
        b = free_blocks;
        if (b)
            free_blocks = atomic_load_explicit(&b->next, memory_order_relaxed);
        hw_spin_unlock(&free_lock);
    }
    if (!b && !(b = hw_map(sizeof *b)))
        return NULL;
    atomic_store_explicit(&b->next, NULL, memory_order_relaxed);
    atomic_store_explicit(&b->mark, 0, memory_order_relaxed);
    b->first_ticks = 0;
    return b;
}

static void block_free(struct ev_block *b)
{
    hw_spin_lock(&free_lock);
    atomic_store_explicit(&b->next, free_blocks, memory_order_relaxed);
    free_blocks = b;
    hw_spin_unlock(&free_lock);
}

/* The calling thread's queue, made on its first event; NULL when out of memory. */
static struct hw_ev_queue *queue_of_thread(void)
{
    struct hw_ev_queue *q = hw_self.evq;
    if (HW_LIKELY(q != NULL))
        return q;
    if (hw_spin_lock_or_fork(&free_lock)) {   /* else a fork holds it: a fresh one (block_new) */
        q = free_queues;
        if (q)
            free_queues = q->next_all;
        hw_spin_unlock(&free_lock);
    }
    if (!q && !(q = hw_map(sizeof *q)))
        return NULL;
    struct ev_block *b = block_new();
    if (!b)
        return NULL;   /* q stays mapped: one page, on an out-of-memory path */
    memset(q, 0, sizeof *q);
    q->head = q->tail = b;
    q->tid = hw_gettid();
    q->stream = atomic_fetch_add_explicit(&streams, 1, memory_order_relaxed) + 1;
    /* A new stream: its first record is a delta from 0. */
    hw_self.ev_ticks = hw_self.ev_addr = hw_self.ev_stack = 0;
    /* Pushed on the arrivals without a lock, which a fork may hold for longer than a thread
     * waits (block_new): a thread's first events came to nothing while a fork lasted. The
     * writer takes the arrivals into the registry (take_arrivals). */
    struct hw_ev_queue *first = atomic_load_explicit(&arrivals, memory_order_relaxed);
    do
        q->next_all = first;
    while (!atomic_compare_exchange_weak_explicit(&arrivals, &first, q, memory_order_release, memory_order_relaxed));
    hw_self.evq = q;
    if (have_exit_key)
        pthread_setspecific(exit_key, q);   /* our key is one of the first: no allocation */
    return q;
}

/* The thread-exit key's destructor: later events of this thread (other keys' destructors)
 * start a new queue. */
static void queue_exit(void *q)
{
    if (hw_self.evq == q) {
        hw_self.evq = NULL;
        hw_self.ev_pos = NULL;
    }
    atomic_store_explicit(&((struct hw_ev_queue *)q)->exited, true, memory_order_release);
}

/* The time of an event of this thread. Reading the clock costs more than the rest of a record
 * (about 30 ns in a VM), so while the process has one thread with events, an event takes the
 * time of the thread's previous one unless 16 events went by, or the coarse clock (a jiffy, a
 * few ms) moved, since the clock was read: its time is at most that early, never late. Once
 * a second thread has events, every event reads the clock: a block allocated by one thread
 * and freed by another, or freed by one and allocated again by another, must sort in the
 * order it happened (schema/chunk.h). */
#define STALE_EVENTS 16
static _Atomic uint32_t time_epoch;   /* snapshots begun: an event after one reads the clock */

void hw_events_new_moment(void)
{
    atomic_fetch_add_explicit(&time_epoch, 1, memory_order_relaxed);
}

static inline uint64_t event_time(void)
{
    bool exact = atomic_load_explicit(&streams, memory_order_relaxed) > 1;
    uint32_t epoch = atomic_load_explicit(&time_epoch, memory_order_relaxed);
    if (!exact && hw_self.ev_ticks && hw_self.ev_epoch == epoch && ++hw_self.ev_stale < STALE_EVENTS) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        uint64_t coarse = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        if (coarse == hw_self.ev_coarse)
            return hw_self.ev_ticks;
        hw_self.ev_coarse = coarse;
    }
    hw_self.ev_stale = 0;
    hw_self.ev_epoch = epoch;
    return hw_event_ticks();
}

/* Make room for a record in the calling thread's queue: its tail block, or a new one when the
 * tail is full; sets hw_self.ev_block, ev_pos, ev_end and ev_records. False when out of
 * memory. */
static HW_NOINLINE bool make_room(void)
{
    struct hw_ev_queue *q = queue_of_thread();
    if (!q)
        return false;
    struct ev_block *b = q->tail;
    uint64_t mark = atomic_load_explicit(&b->mark, memory_order_relaxed);
    if (MARK_BYTES(mark) + HW_EV_RECORD_MAX > BLOCK_BYTES) {
        struct ev_block *nb = block_new();
        if (!nb)
            return false;
        nb->first_ticks = hw_self.ev_ticks;   /* published with the link */
        atomic_store_explicit(&b->next, nb, memory_order_release);
        q->tail = b = nb;
        mark = 0;
        if (atomic_fetch_add_explicit(&blocks_waiting, 1, memory_order_relaxed) + 1 >= DRAIN_BLOCKS &&
            !atomic_exchange_explicit(&wake_sent, true, memory_order_relaxed))
            hw_trigger_wake_for_events();
    }
    hw_self.ev_block = b;
    hw_self.ev_pos = b->data + MARK_BYTES(mark);
    hw_self.ev_end = b->data + BLOCK_BYTES - HW_EV_RECORD_MAX;
    hw_self.ev_records = MARK_RECORDS(mark);
    return true;
}

/* Append one record to the calling thread's queue. The thread keeps where it writes
 * (hw_self.ev_pos), so that a record costs its encoding and one release store of the
 * block's mark. */
static inline __attribute__((always_inline)) void put(unsigned op, const struct hw_live_entry *e)
{
    if (hw_self.ev_busy)
        return;   /* a signal handler's allocation inside ours: dropped, not interleaved */
    hw_self.ev_busy = true;
    atomic_signal_fence(memory_order_seq_cst);   /* a handler's event sees it before anything moves */
    if (HW_UNLIKELY(!hw_self.ev_pos || hw_self.ev_pos > hw_self.ev_end) && !make_room())
        goto out;
    struct ev_block *b = hw_self.ev_block;
    struct hw_ev_cursor c = { hw_self.ev_ticks, hw_self.ev_addr, hw_self.ev_stack };
    struct hw_ev_record r = { .op = op, .ticks = event_time(), .addr = e->addr, .size = e->size, .stack = e->stack };
    uint8_t *end = hw_ev_put(hw_self.ev_pos, &c, &r);
    hw_self.ev_ticks = c.ticks;
    hw_self.ev_addr = c.addr;
    hw_self.ev_stack = c.stack;
    hw_self.ev_pos = end;
    atomic_store_explicit(&b->mark, (uint64_t)++hw_self.ev_records << 32 | (uint64_t)(end - b->data), memory_order_release);
out:
    atomic_signal_fence(memory_order_seq_cst);
    hw_self.ev_busy = false;
}

/* What every allocation and free of this thread moves, besides the countdown and the slow
 * path's count: its live object count (threads.h), or in arena mode, where nothing counts
 * live blocks, its count of frees. */
static int64_t thread_objects(void)
{
    if (hw_arena_mode)
        return (int64_t)hw_self.arena_frees;
    if (!hw_self.live)
        hw_live_add(0, 0);   /* registers the thread's count (its first allocation comes here first) */
    return hw_self.live ? __atomic_load_n(&hw_self.live->objects, __ATOMIC_RELAXED) : INT64_MIN;
}

void hw_event_alloc(const struct hw_live_entry *e)
{
    put(HW_EV_ALLOC, e);
    /* Called before the block is counted (record.c): its own count comes after. */
    hw_self.ev_last_seq = e->seq;
    hw_self.ev_last_countdown = hw_self.until_sample;
    hw_self.ev_last_slow = hw_self.slow_allocs;
    hw_self.ev_last_objects = thread_objects();
}

void hw_event_free(const struct hw_live_entry *e)
{
    /* Temporary, as heaptrack counts it: the free comes right after its allocation, with no
     * other allocation or free of this thread in between (heaptrack looks at its global trace;
     * per thread, threads do not make each other's blocks temporary or not). Sampled or not,
     * every allocation moves the countdown (fast path) or the slow-path count, and every
     * allocation and free moves the thread's live count, which is its own block's count
     * higher than at its allocation if nothing happened since. A thread beyond the live
     * count's slots has no count: none of its frees is temporary. */
    int64_t objects = thread_objects();
    bool temporary = e->seq == hw_self.ev_last_seq && e->thread == hw_self.index &&
                     hw_self.until_sample == hw_self.ev_last_countdown && hw_self.slow_allocs == hw_self.ev_last_slow &&
                     objects != INT64_MIN && objects == hw_self.ev_last_objects + (hw_arena_mode ? 0 : 1);
    put(temporary ? HW_EV_FREE_TEMP : HW_EV_FREE, e);
    hw_self.ev_last_seq = 0;
}

bool hw_events_due(void)
{
    if (!hw_events_on)
        return false;
    return atomic_load_explicit(&blocks_waiting, memory_order_relaxed) >= DRAIN_BLOCKS ||
           hw_now_ns(CLOCK_MONOTONIC) - last_mono >= DRAIN_PERIOD_NS;
}

/* One block's records that a drain took: bytes and records between two marks. */
struct hw_ev_span {
    struct ev_block *block;
    uint64_t from, to;       /* marks */
    bool whole;              /* the thread had moved on to a next block: this one is done */
};

/* A queue as a drain took it: its spans, in order, and how far pieces have consumed them. */
struct hw_ev_taken {
    struct hw_ev_queue *q;
    size_t first, end;       /* its spans in d->spans */
    size_t next;             /* the first not yet in a piece */
    size_t piece_first;      /* the first in the piece being built */
    bool exited;             /* its thread had exited before the drain read it */
    bool complete;           /* the drain took all it had published (not out of memory) */
};

static inline uint32_t span_bytes(const struct hw_ev_span *sp)
{
    return MARK_BYTES(sp->to) - MARK_BYTES(sp->from);
}

/* The queues made since the last call join the registry, newest first. registry_lock held,
 * or in a fork child. */
static void take_arrivals(void)
{
    struct hw_ev_queue *in = atomic_exchange_explicit(&arrivals, NULL, memory_order_acquire);
    if (!in)
        return;
    struct hw_ev_queue *last = in;
    while (last->next_all)
        last = last->next_all;
    last->next_all = registry;
    registry = in;
}

void hw_events_drain_begin(struct hw_ev_drain *d)
{
    memset(d, 0, sizeof *d);
    d->spans.elem = sizeof(struct hw_ev_span);
    d->queues.elem = sizeof(struct hw_ev_taken);
    d->start_ticks = d->piece_ticks = last_ticks;
    d->start_ns = last_ns;
    /* The clock first: every record published before the queues are read below was taken
     * before end_ticks. */
    clock_pair(&last_ticks, &last_ns);
    d->end_ticks = last_ticks;
    d->end_ns = last_ns;
    uint64_t mono = hw_now_ns(CLOCK_MONOTONIC);
    d->span_ns = mono - last_mono;
    last_mono = mono;
    /* A record is published a few instructions after its thread read the clock, unless the
     * thread was preempted in between: one read before end_ticks may be published after the
     * queues are read, and comes with the next drain. The reader waits for it as long as it
     * is later than the end of the chunk before the one it comes in (schema.sql,
     * event_chunk): no piece but the last ends within CUT_MARGIN_NS of the drain's end, so a
     * thread preempted for less than that is not late. */
    d->cut_limit = d->start_ticks;
    if (d->span_ns > CUT_MARGIN_NS && d->end_ticks > d->start_ticks) {
        double ticks_per_ns = (double)(d->end_ticks - d->start_ticks) / (double)d->span_ns;
        d->cut_limit = d->end_ticks - (uint64_t)(ticks_per_ns * CUT_MARGIN_NS);
    }
    atomic_store_explicit(&blocks_waiting, 0, memory_order_relaxed);
    atomic_store_explicit(&wake_sent, false, memory_order_relaxed);
    hw_spin_lock(&registry_lock);
    take_arrivals();
    struct hw_ev_queue *list = registry;
    hw_spin_unlock(&registry_lock);
    /* Only this writer changes the registry (and a fork's child): the list stays as it is
     * until the retirements of hw_events_drain_end. */
    for (struct hw_ev_queue *q = list; q; q = q->next_all) {
        struct hw_ev_taken *t = hw_vec_push(&d->queues);
        if (!t) {
            d->failed = true;
            return;
        }
        *t = (struct hw_ev_taken){ .q = q, .first = d->spans.nr, .next = d->spans.nr, .piece_first = d->spans.nr,
                                   .exited = atomic_load_explicit(&q->exited, memory_order_acquire) };
        uint64_t from = q->head_read;
        for (struct ev_block *b = q->head; b;) {
            uint64_t mark = atomic_load_explicit(&b->mark, memory_order_acquire);
            struct ev_block *next = atomic_load_explicit(&b->next, memory_order_acquire);
            if (next)   /* the thread has moved on: its last store to mark came before the link */
                mark = atomic_load_explicit(&b->mark, memory_order_acquire);
            if (mark != from || next) {
                struct hw_ev_span *sp = hw_vec_push(&d->spans);
                if (!sp) {
                    d->failed = true;
                    break;
                }
                *sp = (struct hw_ev_span){ .block = b, .from = from, .to = mark, .whole = next != NULL };
                d->events += MARK_RECORDS(mark) - MARK_RECORDS(from);
                d->bytes += span_bytes(sp);
            }
            b = next;
            from = 0;
        }
        t->end = d->spans.nr;
        t->complete = !d->failed;
        if (d->failed)
            return;
    }
}

/* Append n bytes to the piece. */
static bool append(struct hw_vec *raw, const void *bytes, size_t n)
{
    while (raw->alloc - raw->nr < n) {   /* grow (doubling), then give the byte back */
        if (!hw_vec_grow_push(raw))
            return false;
        raw->nr--;
    }
    if (bytes)
        memcpy(raw->data + raw->nr, bytes, n);
    raw->nr += n;
    return true;
}

/* Append queue t's spans [piece_first, next) to the piece as one segment: stream, tid, length,
 * records. */
static bool put_segment(const struct hw_ev_drain *d, struct hw_ev_taken *t, struct hw_ev_piece *p)
{
    const struct hw_ev_span *spans = (const struct hw_ev_span *)d->spans.data;
    uint64_t len = 0;
    for (size_t i = t->piece_first; i < t->next; i++)
        len += span_bytes(&spans[i]);
    if (!len)
        return true;
    uint8_t head[3 * HW_VARINT_MAX];
    uint8_t *h = hw_varint_put(head, t->q->stream);
    h = hw_varint_put(h, (uint64_t)t->q->tid);
    h = hw_varint_put(h, len);
    if (!append(&p->raw, head, (size_t)(h - head)))
        return false;
    for (size_t i = t->piece_first; i < t->next; i++) {
        const struct hw_ev_span *sp = &spans[i];
        p->events += MARK_RECORDS(sp->to) - MARK_RECORDS(sp->from);
        if (!append(&p->raw, sp->block->data + MARK_BYTES(sp->from), span_bytes(sp)))
            return false;
    }
    return true;
}

/* The time a piece ends at ticks has, between the drain's two clock readings. */
static uint64_t piece_ns(const struct hw_ev_drain *d, uint64_t ticks)
{
    if (ticks >= d->end_ticks || d->end_ticks <= d->start_ticks)
        return d->end_ns;
    double f = (double)(ticks - d->start_ticks) / (double)(d->end_ticks - d->start_ticks);
    return d->start_ns + (uint64_t)(f * (double)(d->end_ns - d->start_ns));
}

/* A drain bigger than `cap` bytes goes out in pieces cut in time, so that the writer holds the
 * database (and an _exit waits for it) one piece at a time, and a piece's memory is bounded.
 * The blocks of every queue are taken in the order of their first_ticks; a piece that stops
 * before a block whose first_ticks is F ends at F - 1 (or at the drain's end): every record
 * taken up to a piece's end is in that piece or an earlier one, the promise a chunk's end
 * makes to the reader (records after it may come with it, and wait for later chunks in the
 * reader's merge, as those of a preempted thread do). */
bool hw_events_drain_piece(struct hw_ev_drain *d, struct hw_ev_piece *p, size_t cap)
{
    p->raw.elem = 1;
    p->raw.nr = 0;
    p->events = 0;
    if (d->failed || d->done)
        return false;
    const struct hw_ev_span *spans = (const struct hw_ev_span *)d->spans.data;
    struct hw_ev_taken *queues = (struct hw_ev_taken *)d->queues.data;
    uint64_t bytes = 0, end = d->end_ticks;
    for (;;) {
        struct hw_ev_taken *oldest = NULL;
        uint64_t oldest_ticks = 0;
        for (size_t i = 0; i < d->queues.nr; i++) {
            struct hw_ev_taken *t = &queues[i];
            if (t->next < t->end && (!oldest || spans[t->next].block->first_ticks < oldest_ticks))
                oldest = t, oldest_ticks = spans[t->next].block->first_ticks;
        }
        if (!oldest) {
            d->done = true;   /* the last piece ends with the drain */
            break;
        }
        uint32_t more = span_bytes(&spans[oldest->next]);
        if (bytes && bytes + more > cap &&
            oldest_ticks - 1 > d->piece_ticks && oldest_ticks - 1 <= d->cut_limit) {
            end = oldest_ticks - 1;
            break;
        }
        bytes += more;
        oldest->next++;
    }
    for (size_t i = 0; i < d->queues.nr; i++) {
        if (!put_segment(d, &queues[i], p)) {
            d->failed = true;
            return false;
        }
        queues[i].piece_first = queues[i].next;
    }
    p->start_ticks = d->piece_ticks;
    p->start_ns = piece_ns(d, d->piece_ticks);
    p->end_ticks = end;
    p->end_ns = piece_ns(d, end);
    p->last = d->done;
    d->piece_ticks = end;
    return true;
}

void hw_events_drain_end(struct hw_ev_drain *d)
{
    const struct hw_ev_span *spans = (const struct hw_ev_span *)d->spans.data;
    struct hw_ev_taken *queues = (struct hw_ev_taken *)d->queues.data;
    for (size_t i = 0; i < d->queues.nr; i++) {
        struct hw_ev_taken *t = &queues[i];
        struct hw_ev_queue *q = t->q;
        /* Taken is consumed, written or not: a failed write loses its events (the writer
         * reports the first failure; out of memory here is silent). */
        for (size_t k = t->first; k < t->end; k++) {
            if (spans[k].whole) {
                q->head = atomic_load_explicit(&spans[k].block->next, memory_order_relaxed);
                q->head_read = 0;
                block_free(spans[k].block);
            } else {
                q->head_read = spans[k].to;
            }
        }
        if (!t->exited || !t->complete)
            continue;
        /* Retire it: its thread is gone and everything it published is drained. */
        hw_spin_lock(&registry_lock);
        struct hw_ev_queue **l = &registry;
        while (*l != q)
            l = &(*l)->next_all;
        *l = q->next_all;
        hw_spin_unlock(&registry_lock);
        block_free(q->head);
        hw_spin_lock(&free_lock);
        q->next_all = free_queues;
        free_queues = q;
        hw_spin_unlock(&free_lock);
    }
    hw_vec_release(&d->spans);
    hw_vec_release(&d->queues);
}

void hw_events_atfork_prepare(void)
{
    hw_spin_lock(&registry_lock);
    hw_spin_lock(&free_lock);
}

void hw_events_atfork_parent(void)
{
    hw_spin_unlock(&free_lock);
    hw_spin_unlock(&registry_lock);
}

void hw_events_atfork_child(void)
{
    hw_spin_unlock(&free_lock);
    hw_spin_unlock(&registry_lock);
    if (!hw_events_on)
        return;
    /* What is waiting is the parent's to write. The other threads do not exist here: their
     * queues retire at the first drain; this thread starts a new stream in a new queue. */
    take_arrivals();
    for (struct hw_ev_queue *q = registry; q; q = q->next_all) {
        q->head = q->tail;
        q->head_read = atomic_load_explicit(&q->tail->mark, memory_order_relaxed);
        atomic_store_explicit(&q->exited, true, memory_order_relaxed);
    }
    hw_self.evq = NULL;
    hw_self.ev_pos = NULL;
    hw_self.ev_last_seq = 0;
    atomic_store(&blocks_waiting, 0);
    atomic_store(&wake_sent, false);
    clock_pair(&last_ticks, &last_ns);
    last_mono = hw_now_ns(CLOCK_MONOTONIC);
}
