/* db.h: opening heapwatch databases, naming snapshots, and the queries reports run. db.c and
 * db_query.c are the only analyzer files that talk to SQLite: every query has a name here.
 * Opening and naming die with one message (exit 2 or 3), as a one-shot command wants; the
 * queries return an error instead (below).
 *
 * A snapshot is named "[DB:]ID" where ID is a number, "first", "latest" or "-N" (N before
 * the latest), and DB defaults to the newest heapwatch.*.db in the current directory. */
#ifndef HW_DB_H
#define HW_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The stack tree (schema table stack): frames by node id, index 0 unused. */
struct stack_tree {
    uint64_t *pc;
    uint32_t *parent;
    size_t nr;   /* highest id loaded */
};

struct hwdb {
    struct sqlite3 *sql;
    struct stack_tree tree;
    char *path;
    bool writable;          /* analyzer caches can be stored */
    int64_t sample_rate;
    int pid;
    int version;            /* schema version (PRAGMA user_version) */
    char *cmdline, *exe;
};

/* Open and validate; dies with exit code 3 and one clear message on a missing, unreadable,
 * corrupt, foreign, too old or too new database. */
struct hwdb *db_open(const char *path);
/* The same, never writing (no symbol cache is stored): for a database a live process writes. */
struct hwdb *db_open_readonly(const char *path);
/* Whether path is a heapwatch database (any schema version) whose process row exists; sets
 * *pid to that row's pid. Never dies, never writes: for probing files of unknown kind. */
bool db_probe(const char *path, int *pid);
void db_close(struct hwdb *db);
/* The newest heapwatch.*.db in the current directory; dies (3) when there is none. */
char *db_default_path(void);
/* Split "[DB:]ID" into an opened database (cached: the same path opens once) and a snapshot
 * id that exists; dies (2 for syntax, 3 for unknown ids) otherwise. */
struct hwdb *db_open_snapshot_spec(const char *spec, int64_t *snap);
/* All snapshot ids in order. */
int64_t *db_snapshot_ids(struct hwdb *db, size_t *nr);

/* One row of the snapshot table. */
struct snapshot_info {
    int64_t id, time_ns;
    char *label;             /* NULL when none */
    char *trigger, *mode;    /* mode: 'fork' | 'inplace' | 'counters' */
    int64_t threads, threads_unstopped, live_objects, live_bytes;
    bool marked;             /* reachability totals present (a heap walk classified the objects) */
    int64_t reachable_objects, reachable_bytes, indirect_objects, indirect_bytes;
    int64_t leaked_objects, leaked_bytes;   /* direct leaks only */
    bool has_scanned;
    int64_t scanned_bytes, pause_ns, walk_ns, write_ns;
};
/* Load snapshot id; false (and *si zeroed) when there is no such snapshot. */
bool db_snapshot_info(struct hwdb *db, int64_t id, struct snapshot_info *si);
void snapshot_info_release(struct snapshot_info *si);
/* Dies (3) unless the snapshot was marked: "snapshot N was taken without a heap walk". */
void db_require_heap_walk(struct hwdb *db, const struct snapshot_info *si);
/* The highest snapshot id, 0 when there is none yet. */
int64_t db_max_snapshot(struct hwdb *db);

/* The stack tree, loaded (or extended) so that it holds node `need`; dies if it cannot. */
const struct stack_tree *db_stack_tree(struct hwdb *db, uint64_t need);

/* ---- queries (db_query.c) ------------------------------------------------------------------
 * Each returns 0; or -1 after printing one error naming the database (an SQL error: a corrupt
 * file), never exiting; or the first nonzero value a row callback returned, which stops the
 * query. Strings and blobs handed to a callback live until it returns. */

/* A snapshot_stack row: per-stack counters, already unbiased for sampling. */
struct db_counters {
    int64_t stack, alloc_objects, alloc_bytes, inuse_objects, inuse_bytes;
};
typedef int db_counters_fn(void *ctx, const struct db_counters *row);
/* The snapshot's counters by stack id: the packed rows (schema 8) in the order written, which
 * is not stack id order, then snapshot_stack's rows in stack id order. */
int db_each_stack_counters(struct hwdb *db, int64_t snap, db_counters_fn *fn, void *ctx);

/* Blocks of the object table grouped by class (1 indirect, 2 direct leak), whether
 * heapwatch_ignore()d, and stack. */
struct db_object_group {
    int64_t cls;
    bool ignored;
    int64_t stack, objects, bytes;
};
typedef int db_group_fn(void *ctx, const struct db_object_group *g);
/* Unreachable blocks that were not ignored, by stack alone (cls and ignored are 0), in stack order. */
int db_each_leaked_stack(struct hwdb *db, int64_t snap, db_group_fn *fn, void *ctx);
/* Every group of unreachable blocks (class != 0), by class, then stack. */
int db_each_unreachable_group(struct hwdb *db, int64_t snap, db_group_fn *fn, void *ctx);
/* Reachable blocks flagged possibly lost (and not ignored): count and bytes. */
int db_possibly_lost(struct hwdb *db, int64_t snap, int64_t *objects, int64_t *bytes);

/* One object_chunk row (key: its first block number) or edge_chunk row (key: its number);
 * data is packed as schema/chunk.h says. */
struct db_chunk {
    int64_t key, count;
    const uint8_t *data;
    size_t len;
};
typedef int db_chunk_fn(void *ctx, const struct db_chunk *c);
int db_each_object_chunk(struct hwdb *db, int64_t snap, db_chunk_fn *fn, void *ctx);
int db_each_edge_chunk(struct hwdb *db, int64_t snap, db_chunk_fn *fn, void *ctx);
/* One event_chunk row (schema 6): the clock pairs at its start and end, its record count,
 * its inflated size and its deflated data. */
struct db_event_chunk {
    int64_t id, start_ticks, start_ns, end_ticks, end_ns, events, raw_bytes, codec;
    const uint8_t *data;
    size_t len;
};
typedef int db_event_chunk_fn(void *ctx, const struct db_event_chunk *c);
/* Every event chunk in the order written; none in a database older than schema 6. */
int db_each_event_chunk(struct hwdb *db, db_event_chunk_fn *fn, void *ctx);
/* The log's extent from the chunks' headers alone: chunks, events, first start and last end
 * (CLOCK_REALTIME ns); all 0 without a log. */
int db_event_log_extent(struct hwdb *db, int64_t *chunks, int64_t *events, int64_t *first_ns, int64_t *last_ns);
/* meta's value for key, malloc'd; NULL when there is none. */
char *db_meta_value(struct hwdb *db, const char *key);
/* Whether the process ran with the event log on (its settings say EVENTS=1). */
bool db_recorded_events(struct hwdb *db);
/* The number of blocks the snapshot's object_chunk rows hold. */
int db_chunk_blocks(struct hwdb *db, int64_t snap, int64_t *blocks);

/* A snapshot's estimated totals (sums of its counters) and the process start, for ls. */
struct db_snapshot_totals {
    int64_t id, inuse_objects, inuse_bytes, alloc_objects, alloc_bytes, process_start_ns;
};
typedef int db_totals_fn(void *ctx, const struct db_snapshot_totals *t);
int db_each_snapshot_totals(struct hwdb *db, db_totals_fn *fn, void *ctx);

/* Snapshots that could not be written (the gap table, schema 3; none before). */
struct db_gap {
    int64_t after, lost, first_ns, last_ns;
    char *reason;
};
int db_gaps(struct hwdb *db, struct db_gap **gaps, size_t *nr);
void db_gaps_release(struct db_gap *gaps, size_t nr);
/* The newest snapshot with an id above `above` that began at or after time_ns; 0 if none. */
int db_snapshot_since(struct hwdb *db, int64_t above, int64_t time_ns, int64_t *id);

/* A module load (the module table); build_id may be NULL. */
struct db_module {
    int64_t id;
    const char *path, *build_id;
    uint64_t bias, start, end;
    int64_t load_seq;   /* schema 2: the row id */
    uint64_t tls_modid, tls_size, tls_offset;   /* schema 4; 0 when none, unknown or dynamic */
};
typedef int db_module_fn(void *ctx, const struct db_module *m);
int db_each_module(struct hwdb *db, db_module_fn *fn, void *ctx);

/* A heap walk's roots (table root), in id order. */
struct db_root {
    int64_t id;
    const char *kind;
    int64_t module_id;  /* 0 when none */
    int tid;            /* 0 when none */
    uint64_t start, end;
};
typedef int db_root_fn(void *ctx, const struct db_root *r);
int db_each_root(struct hwdb *db, int64_t snap, db_root_fn *fn, void *ctx);

/* A heap walk's threads (table thread) and their frames (table frame), by tid then depth. */
struct db_thread {
    int tid;
    const char *state;
    uint64_t sp, pc, stack_start, stack_end, tp;   /* 0 when unknown */
};
typedef int db_thread_fn(void *ctx, const struct db_thread *t);
int db_each_thread(struct hwdb *db, int64_t snap, db_thread_fn *fn, void *ctx);
typedef int db_frame_fn(void *ctx, int tid, int depth, uint64_t pc, uint64_t cfa);
int db_each_frame(struct hwdb *db, int64_t snap, db_frame_fn *fn, void *ctx);

/* The analyzer's symbol cache (table cache_frame_v2, created in a writable database): frames
 * by pc, innermost first, in (pc, frame) order. No cache is not an error. */
typedef int db_cached_frame_fn(void *ctx, uint64_t pc, const char *function, const char *file, int line);
int db_each_cached_frame(struct hwdb *db, db_cached_frame_fn *fn, void *ctx);
/* Storing: NULL when the cache cannot be written now (read-only, or the traced process holds
 * the write lock); the cache is only ever a shortcut, so nothing here reports errors. */
struct db_cache_writer;
struct db_cache_writer *db_cache_begin(struct hwdb *db);
void db_cache_put(struct db_cache_writer *w, uint64_t pc, int idx, const char *function, const char *file, int line);
void db_cache_commit(struct db_cache_writer *w);

/* The analyzer's per-snapshot results (inferred types...), as blobs in table cache_blob_v1
 * keyed by (kind, snapshot), valid for one `version` of the code that made them. Get: a
 * malloc'd copy in *data, or false (none, another version, a read-only database without
 * the table). Put: silently nothing when the database is read-only or busy: a cache is only
 * ever a shortcut. */
bool db_cache_blob_get(struct hwdb *db, const char *kind, int64_t snap, const char *version, void **data, size_t *len);
void db_cache_blob_put(struct hwdb *db, const char *kind, int64_t snap, const char *version, const void *data, size_t len);

#endif
