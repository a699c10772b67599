/* eventwriter.h: the event log's writer: drains the threads' queues (events.h), deflates the
 * records and appends them to the database as one event_chunk row (sink.c). The helper thread
 * calls it about once a second and when threads have filled several blocks; the exiting
 * thread calls it last, before the database is closed.
 * The caller holds the snapshots' write lock, which also keeps one drain at a time.
 * Context: guarded (it allocates through zlib and SQLite). */
#ifndef HW_EVENTWRITER_H
#define HW_EVENTWRITER_H

#include <stdbool.h>

/* Drain and write whatever is waiting (the caller holds the snapshots' write lock:
 * hw_snapshot_flush_events, or the exit's close); a failed write is reported once and its events are
 * dropped (the log then has a hole, which the next chunk's start time shows). final: the
 * process is exiting, and the database says the log is complete. */
void hw_events_write(bool final);

#endif
