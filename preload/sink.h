/* sink.h: the shim's database writer; the only shim file that talks to SQLite (a private
 * copy linked into libheapwatch.so with hidden symbols, so a host that uses SQLite is never
 * affected). All functions run guarded, from the helper thread, an API caller, exit, or a
 * snapshot's fork child. */
#ifndef HW_SINK_H
#define HW_SINK_H

#include <stdbool.h>
#include <stdint.h>
#include "sys.h"

struct hw_heap;
struct hw_roots;

struct hw_frame_row {
    int tid;
    uint32_t depth;
    uintptr_t pc, cfa;
};

struct hw_snapshot_data {
    const char *trigger;         /* 'signal' | 'api' | 'interval' | 'exit' */
    const char *mode;            /* 'fork' | 'inplace' | 'counters' */
    char label[208];
    uint64_t time_ns, pause_ns, walk_ns;
    int threads, threads_unstopped;
    uint64_t live_objects, live_bytes;
    struct hw_vec stacks;        /* struct hw_stack_row */
    struct hw_heap *heap;        /* the marked heap; NULL for mode 'counters' */
    struct hw_roots *roots;      /* its roots and threads */
    struct hw_vec frames;        /* struct hw_frame_row */
    bool leave_checkpoint;       /* commit to the WAL only: hw_sink_checkpoint follows later */
    struct hw_gap {              /* snapshots lost since the last one written (a full disk) */
        uint64_t lost, first_ns, last_ns;
        const char *reason;
    } gap;
};

struct hw_stack_row {
    uint32_t id;
    uint64_t alloc_samples, free_samples, alloc_weight, free_weight, alloc_bytes, free_bytes;
};

/* Initialise the private SQLite, on the calling thread. Its OS layer reads SQLITE_TMPDIR
 * and TMPDIR with getenv, which may read an environ array that a setenv on another thread
 * is freeing: so this runs in the constructor, before the helper thread exists and while
 * the program has not started. 0, or -1 with a message. */
int hw_sink_init(void);
/* Create the database at path (already expanded): 0600, never through a symlink, never over
 * an existing file; write the schema, the process row and the modules, and close it. -1 with
 * one message on stderr on failure; -2 without a message if the file exists and the caller
 * asked to try another name itself (quiet_exists false). */
int hw_sink_create(const char *path, int forked_from, bool quiet_exists);
/* Open the database, write one snapshot (new stacks, new modules, counters, objects, roots,
 * threads, frames, edges, and the gap of snapshots lost before it) in one transaction and
 * close it; returns the snapshot id or, when it fails, -1 minus SQLite's primary result code
 * (hw_sink_failure says why, hw_sink_last_message what SQLite said; nothing is printed: the
 * caller reports it, once for a run of failures). The database keeps what was committed. Holds no connection between
 * calls: a snapshot may be written by a fork child, and SQLite connections must not cross a
 * fork. Allocates only from the shim's arena (arena.h), so it is safe in that child. */
int64_t hw_sink_write(const char *path, struct hw_snapshot_data *d);
/* One chunk of the event log (eventwriter.c): the clock at the previous drain and at this
 * one, the number of records, the inflated size and the deflated bytes. */
struct hw_ev_chunk {
    uint64_t start_ticks, start_ns, end_ticks, end_ns, events, raw_bytes;
    int codec;   /* 1: data is zlib of the raw_bytes; 0: it is them */
    const void *data;
    size_t len;
};
/* Append it (unless it has no events), with the stacks and modules written since, in one
 * transaction; final: the process is exiting, and meta's 'event_log_end' says the log ends
 * here. 0, or a negative code for hw_sink_failure (nothing is printed: the caller reports it,
 * with hw_sink_last_message). */
int64_t hw_sink_write_events(const char *path, const struct hw_ev_chunk *c, bool final);
/* Copy what the WAL holds into the database file and, when nobody else has it open, remove
 * the WAL. A snapshot written with leave_checkpoint is committed and readable without this:
 * the fork child runs it after reporting the snapshot's id, so that copying and syncing tens
 * of megabytes a second time is not part of the snapshot. 0, or -1 with a message. */
int hw_sink_checkpoint(const char *path);

/* The process is done with the database (exit, exec): take it out of WAL mode, so that a
 * reader creates no -wal and -shm files next to it. 0, or -1 if a reader had it open. */
int hw_sink_finish(const char *path);

/* Remove the database at path with its -wal and -shm files (one this process created and
 * could not finish, or one without snapshots before an exec). */
void hw_sink_remove(const char *path);
/* Why a write failed, from hw_sink_write's negative result: "disk full", "I/O error"... */
const char *hw_sink_failure(int64_t rc);
/* What SQLite said of the last failure ("" if nothing). */
#define HW_SINK_MESSAGE 160
const char *hw_sink_last_message(void);
/* While quiet, the writer's errors are not reported (a full disk: one message, not one per
 * snapshot); the snapshot side counts the lost ones instead. */
void hw_sink_set_quiet(bool quiet);

/* The lock every entry point above holds while it uses SQLite (one thread at a time uses
 * the private SQLite and its connections). A snapshot's walk child, cloned while the
 * snapshotting thread holds every path into SQLite, resets it (hw_sink_reset_in_clone). */
void hw_sink_lock(void);
void hw_sink_unlock(void);
bool hw_sink_trylock(void);
/* The lock, if it can be had within ms milliseconds (_exit: a process that ends waits for a
 * write under way, a short time). Such a waiter goes before the event writer's next chunk. */
bool hw_sink_lock_within(int ms);
/* fork: prepare waits, ms at most, until no thread holds a SQLite mutex (sqlmutex.h), and
 * takes SQLite's memory; false if a thread still held one. The child then never uses SQLite
 * (true: it may, on connections of its own; those of the parent's threads are forgotten). */
bool hw_sink_fork_prepare(int ms);
void hw_sink_fork_parent(void);
void hw_sink_fork_child(bool sqlite_ok);
/* A snapshot's walk child: SQLite was idle at the clone (no thread held a path into it); the
 * lock, the gate and the arena are made fresh all the same. */
void hw_sink_reset_in_clone(void);
/* Close the event writer's connection, which stays open between chunks: before a process is
 * cloned (a snapshot's walk child; _locked: the fork prepare handler, holding the lock), so
 * that no child inherits an open SQLite connection. */
void hw_sink_close_events(void);
void hw_sink_close_events_locked(void);

#endif
