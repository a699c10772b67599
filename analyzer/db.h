/* db.h: opening heapwatch databases and naming snapshots. The only analyzer file (with
 * symcache.c, which stores its cache through db->sql) that talks to SQLite.
 *
 * A snapshot is named "[DB:]ID" where ID is a number, "first", "latest" or "-N" (N before
 * the latest), and DB defaults to the newest heapwatch.*.db in the current directory. */
#ifndef HW_DB_H
#define HW_DB_H

#include <sqlite3.h>
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
    sqlite3 *sql;
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

/* Prepared statement helpers that die with exit code 3 on SQL errors (a corrupt file). */
sqlite3_stmt *db_prepare(struct hwdb *db, const char *sql);
/* sqlite3_step, dying on errors; true while there is a row. */
bool db_step(struct hwdb *db, sqlite3_stmt *st);

#endif
