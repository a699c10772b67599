/* eventlog.h: reading the event log (schema 6, HEAPWATCH_EVENTS=1): every sampled allocation
 * and its free, the threads' streams merged into time order, each free matched with its
 * allocation, each event weighted so that sums are unbiased estimates in sampled mode (the
 * snapshot counters' weights: 1/(1-exp(-size/R)) objects and size times that in bytes) and
 * exact in full mode.
 *
 * The log streams: memory holds the blocks live at the moment (their allocation's size,
 * stack and time, to match frees) and about two chunks of events (the merge window), never
 * the whole log. Order across threads comes from the event clock: every event taken up to a
 * chunk's end is in that chunk or an earlier one, but for one whose thread was preempted
 * between taking its time and publishing it, which shows up with the shim's next drain (a
 * chunk may also hold events after its end: a lagging writer cuts its drain in pieces);
 * the merge waits one chunk for such events, and one later still is delivered at the time
 * of the last event delivered (counted in ev_stats.late). */
#ifndef HW_EVENTLOG_H
#define HW_EVENTLOG_H

#include <stdbool.h>
#include <stdint.h>
#include "db.h"

struct ev_event {
    unsigned op;            /* HW_EV_ALLOC, HW_EV_FREE, HW_EV_FREE_TEMP (schema/chunk.h) */
    int64_t time_ns;        /* CLOCK_REALTIME */
    int tid;
    uint64_t addr, size;    /* a free: its allocation's requested size */
    int64_t stack;          /* a free: its allocation's stack */
    int64_t alloc_ns;       /* a free: when its block was allocated */
    double objects, bytes;  /* the event's unbiased weight: what it adds (alloc) or takes away */
};

struct ev_stats {
    int64_t chunks, events;      /* read */
    int64_t first_ns, last_ns;   /* the log's extent: the first chunk's start, the last one's end */
    int64_t unmatched_frees;     /* frees of blocks the log never saw allocated (a fork child's
                                  * inherited blocks), left out */
    int64_t late;                /* events delivered after later ones (see above) */
    bool complete;               /* the process exited and wrote its last events (meta's
                                  * event_log_end); else it was killed, or still runs */
};

/* Called for each event in time order; a nonzero return stops the replay and is returned. */
typedef int ev_fn(void *ctx, const struct ev_event *e);

/* The log's extent from the chunk headers alone (fast); false when db has no event log. */
bool ev_log_extent(struct hwdb *db, struct ev_stats *st);
/* Dies (exit 3) with one message saying how to record one when db has no event log. */
void ev_require_log(struct hwdb *db, const char *what);
/* Say that db has no event log (what needs it), and why, as best the database tells; exits. */
_Noreturn void ev_no_log(struct hwdb *db, const char *what);
/* Replay the whole log; st (may be NULL) gets the figures. Dies with one message on a
 * corrupt chunk. Returns 0 or fn's stop value. */
int ev_replay(struct hwdb *db, ev_fn *fn, void *ctx, struct ev_stats *st);
/* The same, but a corrupt chunk stops it with -1 and its message, malloc'd, in *failure
 * (NULL otherwise): for a report that can do without the log. */
int ev_replay_soft(struct hwdb *db, ev_fn *fn, void *ctx, char **failure);

#endif
