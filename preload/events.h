/* events.h: the event log's recording side (HEAPWATCH_EVENTS=1): every sampled allocation and
 * its free, in each thread's order, with the event clock (schema/chunk.h, event_chunk).
 *
 * Each thread appends records to its own queue of blocks without a lock; the writer
 * (eventwriter.c: the helper thread about once a second, the exiting thread at the end)
 * drains every queue into chunks of a few megabytes at most. The hooks call hw_event_alloc
 * and hw_event_free from the live table's counting callbacks (record.c), so exactly the
 * counted samples have events.
 * Context: HOOKSAFE; the drain functions and the fork handlers run guarded. */
#ifndef HW_EVENTS_H
#define HW_EVENTS_H

#include <stdbool.h>
#include <stdint.h>
#include "hw.h"
#include "livetable.h"
#include "sys.h"

/* Whether events are recorded (HEAPWATCH_EVENTS=1 and sampling on), set by hw_events_init. */
extern HW_INTERNAL bool hw_events_on;

/* Choose the clock, create the thread-exit key; once, at initialisation. */
void hw_events_init(void) HW_HOOKSAFE;

/* The event clock: the CPU's time-stamp counter when the kernel keeps time with it (constant
 * and synchronised across CPUs), else CLOCK_MONOTONIC in nanoseconds. */
uint64_t hw_event_ticks(void) HW_SIGSAFE;

/* A snapshot takes its time now: every event after this reads the clock, rather than take
 * its thread's previous time, so that it sorts after the snapshot's moment. Context: SIGSAFE. */
void hw_events_new_moment(void) HW_SIGSAFE;
/* A counted sampled block was allocated, or is being freed, by the calling thread. */
void hw_event_alloc(const struct hw_live_entry *e) HW_HOOKSAFE;
void hw_event_free(const struct hw_live_entry *e) HW_HOOKSAFE;
/* Every allocation of this thread on the slow path (sampled or not) counts here, so that a
 * free can tell whether the thread allocated since its latest sampled block. */
static inline void hw_event_note_allocation(void) { hw_self.slow_allocs++; }

/* What one drain took from every queue, and the clock at the previous drain and at this one.
 * The writer takes it in pieces (hw_events_drain_piece), each one chunk of the log. */
struct hw_ev_drain {
    uint64_t start_ticks, start_ns, end_ticks, end_ns;   /* CLOCK_REALTIME ns */
    uint64_t span_ns;    /* CLOCK_MONOTONIC since the previous drain */
    uint64_t events, bytes;   /* in all its pieces */
    /* events.c's: */
    struct hw_vec spans, queues;
    uint64_t piece_ticks;     /* where the next piece starts */
    uint64_t cut_limit;       /* no piece but the last ends later */
    bool done, failed;
};
/* One piece of a drain: the segments (stream, tid, length, records) of the threads with
 * records in it, and the clock it spans. */
struct hw_ev_piece {
    uint64_t start_ticks, start_ns, end_ticks, end_ns, events;
    bool last;           /* the drain's last piece: it ends where the drain does */
    struct hw_vec raw;   /* bytes; the caller releases it */
};
/* Take what every queue has published (the writer's side; one writer at a time: the caller
 * serialises). */
void hw_events_drain_begin(struct hw_ev_drain *d);
/* The drain's next piece, of about cap bytes at most (a block more when one thread's blocks
 * all begin at the same time); false when none is left, or when out of memory. */
bool hw_events_drain_piece(struct hw_ev_drain *d, struct hw_ev_piece *p, size_t cap);
/* Done with the drain, written or not: its blocks go back to the free list, and the queues
 * of threads that exited retire. */
void hw_events_drain_end(struct hw_ev_drain *d);
/* Whether a drain is due: a second since the last one, or a few megabytes waiting. */
bool hw_events_due(void) HW_SIGSAFE;

void hw_events_atfork_prepare(void);
void hw_events_atfork_parent(void);
/* The child: the parent's threads are gone and their events are the parent's. */
void hw_events_atfork_child(void);

#endif
