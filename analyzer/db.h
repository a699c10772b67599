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
    char *cmdline, *exe;
};

/* Open and validate; dies with exit code 3 and one clear message on a missing, unreadable,
 * corrupt, foreign or too new database. */
struct hwdb *db_open(const char *path);
void db_close(struct hwdb *db);
/* The newest heapwatch.*.db in the current directory; dies (3) when there is none. */
char *db_default_path(void);
/* Split "[DB:]ID" into an opened database (cached: the same path opens once) and a snapshot
 * id that exists; dies (2 for syntax, 3 for unknown ids) otherwise. */
struct hwdb *db_open_snapshot_spec(const char *spec, int64_t *snap);
/* Resolve an ID spec within db; dies as above. */
int64_t db_resolve_snapshot(struct hwdb *db, const char *id);
/* All snapshot ids in order. */
int64_t *db_snapshot_ids(struct hwdb *db, size_t *nr);

/* The stack tree, loaded (or extended) so that it holds node `need`; dies if it cannot. */
const struct stack_tree *db_stack_tree(struct hwdb *db, uint64_t need);

/* Prepared statement helpers that die with exit code 3 on SQL errors (a corrupt file). */
sqlite3_stmt *db_prepare(struct hwdb *db, const char *sql);
/* sqlite3_step, dying on errors; true while there is a row. */
bool db_step(struct hwdb *db, sqlite3_stmt *st);

#endif
