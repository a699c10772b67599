/* This file implements opening and validating databases and resolving snapshot names.
 * A database is accepted only if SQLite reads it, meta.format says heapwatch and its
 * user_version is one this analyzer knows; everything else gets one message and exit 3. */
#define _GNU_SOURCE
#include "db.h"

#include <dirent.h>
#include <sqlite3.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../schema/chunk.h"
#include "../schema/schema.h"
#include "usage.h"

static void die_db(struct hwdb *db, const char *what)
{
    die(EXIT_INPUT, "cannot read '%s': %s%s%s", db->path, sqlite3_errmsg(db->sql), what ? ": " : "", what ? what : "");
}

/* Prepared statement helpers for opening and naming, which die with exit code 3 on SQL errors
 * (a corrupt file). The queries of reports are in db_query.c and return errors instead. */
static sqlite3_stmt *db_prepare(struct hwdb *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK)
        die_db(db, NULL);
    return st;
}

static bool db_step(struct hwdb *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return true;
    if (rc != SQLITE_DONE)
        die_db(db, NULL);
    return false;
}

static char *column_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return xstrdup(t ? (const char *)t : "");
}

/* Whether the database holds no table at all: an empty file, or one whose process was
 * killed while it created the tables (the shim writes them in one transaction, which such a
 * kill rolls back), as a pipeline's SIGPIPE kills a program at start-up. */
static bool no_tables(struct hwdb *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) != SQLITE_OK)
        return false;
    bool none = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == 0;
    sqlite3_finalize(st);
    return none;
}

static void validate(struct hwdb *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, "SELECT value FROM meta WHERE key = 'format'", -1, &st, NULL) != SQLITE_OK) {
        int code = sqlite3_errcode(db->sql);
        if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
            die(EXIT_INPUT, "cannot read '%s': not a database (corrupt or another kind of file)", db->path);
        if (no_tables(db))
            die(EXIT_INPUT, "cannot read '%s': no tables yet: its process is creating them this moment, or was"
                " killed while it did", db->path);
        die(EXIT_INPUT, "cannot read '%s': not a heapwatch database (%s)", db->path, sqlite3_errmsg(db->sql));
    }
    bool ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) &&
              !strcmp((const char *)sqlite3_column_text(st, 0), HW_DB_FORMAT);
    sqlite3_finalize(st);
    if (!ok)
        die(EXIT_INPUT, "cannot read '%s': not a heapwatch database", db->path);
    st = db_prepare(db, "PRAGMA user_version");
    int version = db_step(db, st) ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (version > HW_SCHEMA_VERSION)
        die(EXIT_INPUT, "cannot read '%s': schema version %d is newer than this heapwatch understands (%d); upgrade heapwatch",
            db->path, version, HW_SCHEMA_VERSION);
    if (version < 1)
        die(EXIT_INPUT, "cannot read '%s': unknown schema version %d", db->path, version);
    /* Version 1 had no reachability: its snapshot table lacks the columns every report reads.
     * Version 2 lacks only what version 3 added beside (module load_seq and unloaded_before,
     * the gap table), which reports do without; its "possibly lost" flag did not spread along
     * start pointers yet. Version 4 added TLS columns (module, thread), which queries ask for
     * only from 4 on; version 5 only extended the packed chunks (vtable pointer candidates,
     * pointers' target offsets): their decoders take db->version and read the new fields of
     * older databases as 0 (schema/chunk.h). Version 6 added the event_chunk table, which
     * only the event reports read (eventlog.c: an older database has no event log). Version 7
     * packs the stack nodes into stack_chunk; the stack table's rows are read still. Version 8
     * packs the per-stack counters into stack_count_chunk; snapshot_stack's rows are read still. */
    if (version < HW_SCHEMA_OLDEST_READ)
        die(EXIT_INPUT, "cannot read '%s': written by an older heapwatch (schema %d); this heapwatch reads schemas %d to %d",
            db->path, version, HW_SCHEMA_OLDEST_READ, HW_SCHEMA_VERSION);
    db->version = version;
    st = db_prepare(db, "SELECT pid, sample_rate, cmdline, exe FROM process");
    if (!db_step(db, st))
        die(EXIT_INPUT, "cannot read '%s': the process record is missing (incomplete database)", db->path);
    db->pid = sqlite3_column_int(st, 0);
    db->sample_rate = sqlite3_column_int64(st, 1);
    db->cmdline = column_text(st, 2);
    db->exe = column_text(st, 3);
    sqlite3_finalize(st);
}

/* Every database still open, closed at exit (a report that dies, or one that reads through a
 * snapshot name, does not close its own): SQLite's last close removes what WAL mode leaves
 * beside the file, and a connection never closed leaves it there. */
static struct hwdb **open_dbs;
static size_t nr_open, alloc_open;

static void close_all(void)
{
    while (nr_open)
        db_close(open_dbs[nr_open - 1]);
}

static void remember(struct hwdb *db)
{
    if (!alloc_open)
        atexit(close_all);
    ALLOC_GROW(open_dbs, nr_open + 1, alloc_open);
    open_dbs[nr_open++] = db;
}

static void forget(struct hwdb *db)
{
    for (size_t i = 0; i < nr_open; i++)
        if (open_dbs[i] == db) {
            open_dbs[i] = open_dbs[--nr_open];
            return;
        }
}

static struct hwdb *open_checked(const char *path, bool readonly)
{
    struct stat sb;
    if (stat(path, &sb) < 0)
        die(EXIT_INPUT, "cannot open '%s': %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        die(EXIT_INPUT, "cannot open '%s': not a regular file", path);
    if (sb.st_size == 0)
        die(EXIT_INPUT, "cannot read '%s': empty: the traced process could not write it (a full disk?), or is"
                        " creating it this moment", path);
    if (access(path, R_OK) < 0)
        die(EXIT_INPUT, "cannot open '%s': %s", path, strerror(errno));
    struct hwdb *db = xcalloc(1, sizeof *db);
    db->path = xstrdup(path);
    /* Read-write when possible, for the symbol cache; a live process may be writing too,
     * which WAL allows. */
    db->writable = !readonly && access(path, W_OK) == 0;
    int flags = db->writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    if (sqlite3_open_v2(path, &db->sql, flags, NULL) != SQLITE_OK)
        die(EXIT_INPUT, "cannot open '%s': %s", path, db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
    sqlite3_busy_timeout(db->sql, 10000);
    remember(db);
    validate(db);
    return db;
}

struct hwdb *db_open(const char *path)
{
    return open_checked(path, false);
}

struct hwdb *db_open_readonly(const char *path)
{
    return open_checked(path, true);
}

bool db_probe(const char *path, int *pid)
{
    sqlite3 *sql = NULL;
    sqlite3_stmt *st = NULL;
    bool ok = false;
    if (sqlite3_open_v2(path, &sql, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out_close;
    sqlite3_busy_timeout(sql, 2000);
    if (sqlite3_prepare_v2(sql, "SELECT (SELECT value FROM meta WHERE key = 'format'), (SELECT pid FROM process)",
                           -1, &st, NULL) != SQLITE_OK)
        goto out_close;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) && sqlite3_column_type(st, 1) == SQLITE_INTEGER &&
        !strcmp((const char *)sqlite3_column_text(st, 0), HW_DB_FORMAT)) {
        *pid = sqlite3_column_int(st, 1);
        ok = true;
    }
out_close:
    sqlite3_finalize(st);
    sqlite3_close(sql);
    return ok;
}

/* Integer column i, or 0 with *known false when it is NULL. */
static int64_t nullable(sqlite3_stmt *st, int i, bool *known)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        *known = false;
        return 0;
    }
    return sqlite3_column_int64(st, i);
}

bool db_snapshot_info(struct hwdb *db, int64_t id, struct snapshot_info *si)
{
    sqlite3_stmt *st = db_prepare(db,
        "SELECT time_ns, label, trigger, mode, threads, threads_unstopped, live_objects, live_bytes,"
        " reachable_objects, reachable_bytes, indirect_objects, indirect_bytes, leaked_objects, leaked_bytes,"
        " scanned_bytes, pause_ns, walk_ns, write_ns FROM snapshot WHERE id = ?");
    sqlite3_bind_int64(st, 1, id);
    bool found = db_step(db, st);
    memset(si, 0, sizeof *si);
    if (found) {
        const unsigned char *label = sqlite3_column_text(st, 1);
        si->id = id;
        si->time_ns = sqlite3_column_int64(st, 0);
        si->label = label ? xstrdup((const char *)label) : NULL;
        si->trigger = column_text(st, 2);
        si->mode = column_text(st, 3);
        si->threads = sqlite3_column_int64(st, 4);
        si->threads_unstopped = sqlite3_column_int64(st, 5);
        si->live_objects = sqlite3_column_int64(st, 6);
        si->live_bytes = sqlite3_column_int64(st, 7);
        si->marked = strcmp(si->mode, "counters") != 0;
        int64_t *reach[] = { &si->reachable_objects, &si->reachable_bytes, &si->indirect_objects,
                             &si->indirect_bytes, &si->leaked_objects, &si->leaked_bytes };
        for (int i = 0; i < 6; i++)
            *reach[i] = nullable(st, 8 + i, &si->marked);
        si->has_scanned = true;
        si->scanned_bytes = nullable(st, 14, &si->has_scanned);
        si->pause_ns = sqlite3_column_int64(st, 15);
        si->walk_ns = sqlite3_column_int64(st, 16);
        si->write_ns = sqlite3_column_int64(st, 17);
    }
    sqlite3_finalize(st);
    return found;
}

void snapshot_info_release(struct snapshot_info *si)
{
    free(si->label);
    free(si->trigger);
    free(si->mode);
    memset(si, 0, sizeof *si);
}

void db_require_heap_walk(struct hwdb *db, const struct snapshot_info *si)
{
    if (si->marked) {
        /* The packed blocks must all be there: rows deleted by hand or lost to corruption
         * would make every report of this snapshot silently wrong. The walk's own totals count
         * them (live_objects comes from the live table's counters, which a thread that did not
         * stop may have moved meanwhile). */
        int64_t walked = si->reachable_objects + si->indirect_objects + si->leaked_objects;
        int64_t blocks;
        if (db_chunk_blocks(db, si->id, &blocks) < 0)
            exit(EXIT_INPUT);
        if (blocks != walked)
            die(EXIT_INPUT, "cannot read '%s': snapshot %lld holds %lld of its %lld blocks (object_chunk rows missing:"
                " corrupt database)", db->path, (long long)si->id, (long long)blocks, (long long)walked);
        return;
    }
    if (!strcmp(si->mode, "counters"))
        die(EXIT_INPUT, "snapshot %lld was taken without a heap walk (HEAPWATCH_OBJECTS=0)", (long long)si->id);
    die(EXIT_INPUT, "cannot read '%s': snapshot %lld (mode '%s') has no reachability totals (corrupt database)",
        db->path, (long long)si->id, si->mode);
}

int64_t db_max_snapshot(struct hwdb *db)
{
    sqlite3_stmt *st = db_prepare(db, "SELECT coalesce(max(id), 0) FROM snapshot");
    int64_t id = db_step(db, st) ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return id;
}

/* The highest node id of the stack rows and, from schema 7, the stack chunks. */
static uint64_t max_stack_node(struct hwdb *db)
{
    /* A node takes at least two bytes, and the chunks follow each other from the rows' last
     * id: a chunk that claims more nodes than its bytes hold, or that starts beyond every node
     * the others hold, is corrupt (load_stack_chunks says so) and must not size the tables. */
    sqlite3_stmt *st = db_prepare(db, db->version >= 7 ? "SELECT max(coalesce((SELECT max(id) FROM stack), 0),"
                                                       " coalesce((SELECT max(first + count - 1) FROM stack_chunk"
                                                       " WHERE count <= length(data) / 2 AND first <= 1 +"
                                                       " (SELECT coalesce(max(id), 0) FROM stack) +"
                                                       " (SELECT total(min(count, length(data) / 2)) FROM stack_chunk)), 0))"
                                                     : "SELECT coalesce(max(id), 0) FROM stack");
    int64_t max = db_step(db, st) ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (max < 0 || max > UINT32_MAX)
        die(EXIT_INPUT, "cannot read '%s': stack ids out of range (corrupt database)", db->path);
    return (uint64_t)max;
}

/* The nodes of stack_chunk above t->nr, up to max (schema.sql, schema/chunk.h). */
static void load_stack_chunks(struct hwdb *db, struct stack_tree *t, uint64_t max)
{
    sqlite3_stmt *st = db_prepare(db, "SELECT first, count, data FROM stack_chunk WHERE first + count - 1 > ? ORDER BY first");
    sqlite3_bind_int64(st, 1, (int64_t)t->nr);
    while (db_step(db, st)) {
        int64_t first = sqlite3_column_int64(st, 0), count = sqlite3_column_int64(st, 1);
        const uint8_t *p = sqlite3_column_blob(st, 2), *end = p + sqlite3_column_bytes(st, 2);
        if (first < 1 || count < 1 || count > sqlite3_column_bytes(st, 2) / 2 || (uint64_t)(first - 1) + (uint64_t)count > max)
            die(EXIT_INPUT, "cannot read '%s': malformed stack chunk at node %lld (corrupt database)", db->path, (long long)first);
        for (uint64_t id = (uint64_t)first; id < (uint64_t)first + (uint64_t)count; id++) {
            uint64_t parent, delta;
            if (!p || !hw_stack_get_node(&p, end, id, &parent, &delta))
                die(EXIT_INPUT, "cannot read '%s': stack chunk at node %lld is truncated or malformed at node %llu"
                    " (corrupt database)", db->path, (long long)first, (unsigned long long)id);
            t->pc[id] = (parent ? t->pc[parent] : 0) + delta;
            t->parent[id] = (uint32_t)parent;
        }
        if (p != end)
            die(EXIT_INPUT, "cannot read '%s': stack chunk at node %lld has bytes past its %lld nodes (corrupt database)",
                db->path, (long long)first, (long long)count);
    }
    sqlite3_finalize(st);
}

const struct stack_tree *db_stack_tree(struct hwdb *db, uint64_t need)
{
    struct stack_tree *t = &db->tree;
    if (need <= t->nr && t->pc)
        return t;
    uint64_t max = max_stack_node(db);
    if (need > max)
        die(EXIT_INPUT, "cannot read '%s': stack %llu is missing (corrupt database)", db->path, (unsigned long long)need);
    t->pc = xrealloc(t->pc, (max + 1) * sizeof *t->pc);
    t->parent = xrealloc(t->parent, (max + 1) * sizeof *t->parent);
    for (uint64_t id = t->nr ? t->nr + 1 : 0; id <= max; id++) {
        t->pc[id] = 0;
        t->parent[id] = 0;
    }
    sqlite3_stmt *st = db_prepare(db, "SELECT id, parent, pc FROM stack WHERE id > ? ORDER BY id");
    sqlite3_bind_int64(st, 1, (int64_t)t->nr);
    while (db_step(db, st)) {
        uint64_t id = (uint64_t)sqlite3_column_int64(st, 0), parent = (uint64_t)sqlite3_column_int64(st, 1);
        if (id > max || parent >= id)
            die(EXIT_INPUT, "cannot read '%s': malformed stack %llu (corrupt database)", db->path, (unsigned long long)id);
        t->pc[id] = (uint64_t)sqlite3_column_int64(st, 2);
        t->parent[id] = (uint32_t)parent;
    }
    sqlite3_finalize(st);
    if (db->version >= 7)
        load_stack_chunks(db, t, max);
    t->nr = max;
    return t;
}

void db_close(struct hwdb *db)
{
    if (!db)
        return;
    forget(db);
    free(db->tree.pc);
    free(db->tree.parent);
    sqlite3_close(db->sql);
    free(db->path);
    free(db->cmdline);
    free(db->exe);
    free(db);
}

char *db_default_path(void)
{
    DIR *d = opendir(".");
    if (!d)
        die(EXIT_INPUT, "cannot list the current directory: %s", strerror(errno));
    char *best = NULL;
    struct timespec best_time = { 0, 0 };
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "heapwatch.", 10) || len < 13 || strcmp(e->d_name + len - 3, ".db"))
            continue;
        struct stat sb;
        if (stat(e->d_name, &sb) < 0 || !S_ISREG(sb.st_mode))
            continue;
        if (!best || sb.st_mtim.tv_sec > best_time.tv_sec ||
            (sb.st_mtim.tv_sec == best_time.tv_sec && sb.st_mtim.tv_nsec > best_time.tv_nsec)) {
            free(best);
            best = xstrdup(e->d_name);
            best_time = sb.st_mtim;
        }
    }
    closedir(d);
    if (!best)
        die(EXIT_INPUT, "no heapwatch.*.db in the current directory; name a database");
    return best;
}

int64_t *db_snapshot_ids(struct hwdb *db, size_t *nr)
{
    sqlite3_stmt *st = db_prepare(db, "SELECT id FROM snapshot ORDER BY id");
    int64_t *ids = NULL;
    size_t n = 0, alloc = 0;
    while (db_step(db, st)) {
        ALLOC_GROW(ids, n + 1, alloc);
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    *nr = n;
    return ids;
}

/* Resolve an ID spec within db; dies as db_open_snapshot_spec says. */
static int64_t db_resolve_snapshot(struct hwdb *db, const char *id)
{
    size_t n;
    int64_t *ids = db_snapshot_ids(db, &n), result = 0;
    char *end;
    if (!n)
        die(EXIT_INPUT, "'%s' has no snapshots yet", db->path);
    if (!strcmp(id, "latest")) {
        result = ids[n - 1];
    } else if (!strcmp(id, "first")) {
        result = ids[0];
    } else {
        errno = 0;
        long long v = strtoll(id, &end, 10);
        if (!*id || *end || errno)
            die(EXIT_USAGE, "bad snapshot '%s': expected a number, 'first', 'latest' or -N", id);
        if (v < 0) {
            if ((size_t)-v >= n)
                die(EXIT_INPUT, "no snapshot %s in '%s': it has %zu snapshot%s", id, db->path, n, n == 1 ? "" : "s");
            result = ids[n - 1 + (size_t)v];
        } else {
            for (size_t i = 0; i < n; i++)
                if (ids[i] == v)
                    result = v;
            if (!result)
                die(EXIT_INPUT, "no snapshot %lld in '%s' (it has %lld to %lld)", v, db->path,
                    (long long)ids[0], (long long)ids[n - 1]);
        }
    }
    free(ids);
    return result;
}

struct hwdb *db_open_snapshot_spec(const char *spec, int64_t *snap)
{
    static struct hwdb *cache[8];
    static size_t cached;
    const char *colon = strrchr(spec, ':');
    struct stat sb;
    char *path;
    const char *id;
    if (colon) {
        path = xstrndup(spec, (size_t)(colon - spec));
        id = colon + 1;
    } else if (stat(spec, &sb) == 0 && S_ISREG(sb.st_mode)) {
        path = xstrdup(spec);  /* a database alone names its latest snapshot */
        id = "latest";
    } else {
        path = db_default_path();
        id = spec;
    }
    if (!*id)
        id = "latest";
    struct hwdb *db = NULL;
    for (size_t i = 0; i < cached; i++)
        if (!strcmp(cache[i]->path, path))
            db = cache[i];
    if (!db) {
        db = db_open(path);
        if (cached < 8)
            cache[cached++] = db;
    }
    free(path);
    *snap = db_resolve_snapshot(db, id);
    return db;
}
