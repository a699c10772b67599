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
 * hw_snapshot_flush_events, the exit's close, an _exit or an exec); a chunk that cannot be
 * written is reported once and ends the log. The database is created for events that come
 * before it exists. final: the image is ending (exit, _exit, exec), and the database says the
 * log is complete. quick: stored as they are, never compressed, since zlib allocates through
 * malloc, and an _exit may come from a signal handler that interrupted malloc in this very
 * thread. */
void hw_events_write(bool final, bool quick);
/* A fork child: the writer's buffers are the parent's (events.h's hw_events_atfork_child). */
void hw_events_writer_atfork_child(void);

#endif
