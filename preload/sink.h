/* sink.h: the shim's database writer; the only shim file that talks to SQLite (a private
 * copy linked into libheapwatch.so with hidden symbols, so a host that uses SQLite is never
 * affected). All functions run guarded, from the helper thread, an API caller or exit, and
 * are serialised by the caller (snapshot.c's lock). */
#ifndef HW_SINK_H
#define HW_SINK_H

#include <stdbool.h>
#include <stdint.h>
#include "sys.h"

struct hw_snapshot_data {
    const char *trigger;         /* 'signal' | 'api' | 'interval' | 'exit' */
    char label[208];
    uint64_t time_ns, pause_ns, walk_ns;
    int threads;
    bool with_objects;           /* stream every live object from the live table */
    uint64_t live_objects, live_bytes;  /* set by hw_sink_write when with_objects */
    struct hw_vec stacks;        /* struct hw_stack_row */
    struct hw_vec objects;       /* scratch: one shard of struct hw_live_entry at a time */
};

struct hw_stack_row {
    uint32_t id;
    uint64_t alloc_samples, free_samples, alloc_weight, free_weight, alloc_bytes, free_bytes;
};

/* Create the database at path (already expanded): 0600, never through a symlink, never over
 * an existing file. Writes the schema, the process row and the modules. -1 with one message
 * on stderr on failure; -2 without a message if the file exists
 * and the caller asked to try another name itself (quiet_exists false). */
int hw_sink_open(const char *path, int forked_from, bool quiet_exists);
bool hw_sink_is_open(void);
/* Write one snapshot (new stacks, new modules, counters, objects) in one transaction;
 * returns the snapshot id, or -1 (message on stderr, the database keeps what was committed). */
int64_t hw_sink_write(struct hw_snapshot_data *d);
/* Checkpoint and close (at exit). */
void hw_sink_close(void);
/* In a fork child: forget the parent's connection without touching it (SQLite connections
 * must not cross fork; closing could checkpoint or delete the parent's WAL). */
void hw_sink_abandon(void);

#endif
