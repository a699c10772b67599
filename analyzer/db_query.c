/* This file implements the queries of db.h that reports run: every SELECT and INSERT the
 * analyzer makes outside opening a database is here, by name. Each returns 0, or -1 after
 * one error() naming the database (never exits), or what a row callback returned to stop
 * early, so that a long-lived front end can go on after a bad file and a test can inject
 * faults in one place. */
#define _GNU_SOURCE
#include "db.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include "../schema/chunk.h"
#include "usage.h"

/* A statement with its int64 parameters bound; NULL after error(). */
static sqlite3_stmt *query(struct hwdb *db, const char *sql, int nr_params, const int64_t *params)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK) {
        error("cannot read '%s': %s", db->path, sqlite3_errmsg(db->sql));
        sqlite3_finalize(st);
        return NULL;
    }
    for (int i = 0; i < nr_params; i++)
        sqlite3_bind_int64(st, i + 1, params[i]);
    return st;
}

/* sqlite3_step: 1 for a row, 0 at the end, -1 after error(). */
static int next_row(struct hwdb *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    error("cannot read '%s': %s", db->path, sqlite3_errmsg(db->sql));
    return -1;
}

/* Runs st to its end, handing each row to each_row; finalizes st. The result as above. */
static int for_rows(struct hwdb *db, sqlite3_stmt *st, int (*each_row)(sqlite3_stmt *st, void *args), void *args)
{
    if (!st)
        return -1;
    int rc = 0, stop = 0;
    while (!stop && (rc = next_row(db, st)) == 1)
        stop = each_row(st, args);
    sqlite3_finalize(st);
    return stop ? stop : rc;
}

/* ---- per-stack counters and unreachable blocks ---------------------------------------------- */

struct counters_args { db_counters_fn *fn; void *ctx; };

static int counters_row(sqlite3_stmt *st, void *args)
{
    struct counters_args *a = args;
    struct db_counters r = { sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                             sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4) };
    return a->fn(a->ctx, &r);
}

/* The rows of a snapshot's stack_count_chunk (schema 8), in the order written, each checked:
 * every value fits an int64 and nothing more is freed than allocated. */
typedef int count_row_fn(void *ctx, const struct hw_count_row *r);
struct count_chunk_args { struct hwdb *db; int64_t snap, next; count_row_fn *fn; void *ctx; };

static int corrupt_counts(const struct count_chunk_args *a, int64_t first, const char *what)
{
    error("cannot read '%s': snapshot %lld's stack_count_chunk at row %lld %s (corrupt database)", a->db->path,
          (long long)a->snap, (long long)first, what);
    return -1;
}

static int count_chunk_row(sqlite3_stmt *st, void *args)
{
    struct count_chunk_args *a = args;
    int64_t first = sqlite3_column_int64(st, 0), count = sqlite3_column_int64(st, 1);
    const uint8_t *p = sqlite3_column_blob(st, 2), *end = p + sqlite3_column_bytes(st, 2);
    if (first != a->next)
        return corrupt_counts(a, first, first < a->next ? "overlaps the one before" : "follows a gap");
    if (count < 1 || count > sqlite3_column_bytes(st, 2) / 7)
        return corrupt_counts(a, first, "has a bad row count");
    uint64_t prev = 0;
    for (int64_t i = 0; i < count; i++) {
        struct hw_count_row r;
        if (!p || !hw_count_get(&p, end, &prev, &r))
            return corrupt_counts(a, first, "is truncated or malformed");
        if ((r.stack | r.alloc_objects | r.alloc_bytes | r.alloc_samples) > INT64_MAX || r.free_objects > r.alloc_objects ||
            r.free_bytes > r.alloc_bytes || r.free_samples > r.alloc_samples)
            return corrupt_counts(a, first, "holds impossible counters");
        int stop = a->fn(a->ctx, &r);
        if (stop)
            return stop;
    }
    if (p != end)
        return corrupt_counts(a, first, "has bytes past its rows");
    a->next += count;
    return 0;
}

static int each_count_row(struct hwdb *db, int64_t snap, count_row_fn *fn, void *ctx)
{
    struct count_chunk_args a = { db, snap, 0, fn, ctx };
    if (db->version < 8)
        return 0;
    return for_rows(db, query(db, "SELECT first, count, data FROM stack_count_chunk WHERE snapshot_id = ? ORDER BY first",
                              1, &snap), count_chunk_row, &a);
}

static int counters_of_chunk_row(void *args, const struct hw_count_row *r)
{
    struct counters_args *a = args;
    struct db_counters c = { (int64_t)r->stack, (int64_t)r->alloc_objects, (int64_t)r->alloc_bytes,
                             (int64_t)(r->alloc_objects - r->free_objects), (int64_t)(r->alloc_bytes - r->free_bytes) };
    return a->fn(a->ctx, &c);
}

int db_each_stack_counters(struct hwdb *db, int64_t snap, db_counters_fn *fn, void *ctx)
{
    struct counters_args a = { fn, ctx };
    int rc = each_count_row(db, snap, counters_of_chunk_row, &a);
    if (rc)
        return rc;
    return for_rows(db, query(db, "SELECT stack_id, alloc_objects, alloc_bytes, alloc_objects - free_objects,"
                                  " alloc_bytes - free_bytes FROM snapshot_stack WHERE snapshot_id = ? ORDER BY stack_id",
                              1, &snap), counters_row, &a);
}

struct group_args { db_group_fn *fn; void *ctx; };

static int group_row(sqlite3_stmt *st, void *args)
{
    struct group_args *a = args;
    struct db_object_group g = { sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1) != 0,
                                 sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4) };
    return a->fn(a->ctx, &g);
}

int db_each_leaked_stack(struct hwdb *db, int64_t snap, db_group_fn *fn, void *ctx)
{
    struct group_args a = { fn, ctx };
    return for_rows(db, query(db, "SELECT 0, 0, stack_id, count(*), sum(size) FROM object WHERE snapshot_id = ?"
                                  " AND class IN (1, 2) AND flags & 2 = 0 GROUP BY stack_id ORDER BY stack_id",
                              1, &snap), group_row, &a);
}

int db_each_unreachable_group(struct hwdb *db, int64_t snap, db_group_fn *fn, void *ctx)
{
    struct group_args a = { fn, ctx };
    return for_rows(db, query(db, "SELECT class, flags & 2 != 0 AS ignored, stack_id, count(*), sum(size) FROM object"
                                  " WHERE snapshot_id = ? AND class != 0 GROUP BY class, ignored, stack_id"
                                  " ORDER BY class, stack_id",
                              1, &snap), group_row, &a);
}

static int two_counts_row(sqlite3_stmt *st, void *args)
{
    int64_t *v = args;
    v[0] = sqlite3_column_int64(st, 0);
    v[1] = sqlite3_column_int64(st, 1);
    return 0;
}

int db_possibly_lost(struct hwdb *db, int64_t snap, int64_t *objects, int64_t *bytes)
{
    int64_t v[2] = { 0, 0 };
    int rc = for_rows(db, query(db, "SELECT count(*), coalesce(sum(size), 0) FROM object WHERE snapshot_id = ?"
                                    " AND class = 0 AND flags & 1 != 0 AND flags & 2 = 0", 1, &snap),
                      two_counts_row, v);
    *objects = v[0];
    *bytes = v[1];
    return rc;
}

/* ---- packed blocks and pointers (schema/chunk.h decodes them) ------------------------------- */

struct chunk_args { db_chunk_fn *fn; void *ctx; };

static int chunk_row(sqlite3_stmt *st, void *args)
{
    struct chunk_args *a = args;
    struct db_chunk c = { sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_blob(st, 2),
                          (size_t)sqlite3_column_bytes(st, 2) };
    return a->fn(a->ctx, &c);
}

int db_each_object_chunk(struct hwdb *db, int64_t snap, db_chunk_fn *fn, void *ctx)
{
    struct chunk_args a = { fn, ctx };
    return for_rows(db, query(db, "SELECT first, count, data FROM object_chunk WHERE snapshot_id = ? ORDER BY first",
                              1, &snap), chunk_row, &a);
}

int db_each_edge_chunk(struct hwdb *db, int64_t snap, db_chunk_fn *fn, void *ctx)
{
    struct chunk_args a = { fn, ctx };
    return for_rows(db, query(db, "SELECT chunk, count, data FROM edge_chunk WHERE snapshot_id = ? ORDER BY chunk",
                              1, &snap), chunk_row, &a);
}

struct event_chunk_args { db_event_chunk_fn *fn; void *ctx; };

static int event_chunk_row(sqlite3_stmt *st, void *args)
{
    struct event_chunk_args *a = args;
    struct db_event_chunk c = {
        sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
        sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5),
        sqlite3_column_int64(st, 6), sqlite3_column_int64(st, 7), sqlite3_column_blob(st, 8),
        (size_t)sqlite3_column_bytes(st, 8),
    };
    return a->fn(a->ctx, &c);
}

int db_each_event_chunk(struct hwdb *db, db_event_chunk_fn *fn, void *ctx)
{
    if (db->version < 6)
        return 0;
    struct event_chunk_args a = { fn, ctx };
    return for_rows(db, query(db, "SELECT id, start_ticks, start_ns, end_ticks, end_ns, events, raw_bytes, codec, data"
                                  " FROM event_chunk ORDER BY id", 0, NULL), event_chunk_row, &a);
}

static int four_counts_row(sqlite3_stmt *st, void *args)
{
    int64_t *v = args;
    for (int i = 0; i < 4; i++)
        v[i] = sqlite3_column_int64(st, i);
    return 0;
}

int db_event_log_extent(struct hwdb *db, int64_t *chunks, int64_t *events, int64_t *first_ns, int64_t *last_ns)
{
    int64_t v[4] = { 0, 0, 0, 0 };
    int rc = db->version < 6 ? 0 :
             for_rows(db, query(db, "SELECT count(*), coalesce(sum(events), 0), coalesce(min(start_ns), 0),"
                                    " coalesce(max(end_ns), 0) FROM event_chunk", 0, NULL), four_counts_row, v);
    *chunks = v[0];
    *events = v[1];
    *first_ns = v[2];
    *last_ns = v[3];
    return rc;
}

static int text_row(sqlite3_stmt *st, void *args)
{
    const unsigned char *v = sqlite3_column_text(st, 0);
    *(char **)args = v ? xstrdup((const char *)v) : NULL;
    return 0;
}

char *db_meta_value(struct hwdb *db, const char *key)
{
    sqlite3_stmt *st = query(db, "SELECT value FROM meta WHERE key = ?", 0, NULL);
    if (st)
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    char *value = NULL;
    if (for_rows(db, st, text_row, &value) < 0)
        exit(EXIT_INPUT);
    return value;
}

bool db_recorded_events(struct hwdb *db)
{
    char *settings = NULL;
    if (for_rows(db, query(db, "SELECT settings FROM process", 0, NULL), text_row, &settings) < 0)
        exit(EXIT_INPUT);
    bool on = false, sampling = true;   /* SAMPLE_RATE=0 records no stacks, and no events */
    for (const char *line = settings; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
        if (!strncmp(line, "EVENTS=", 7))
            on = line[7] != '0';
        if (!strncmp(line, "SAMPLE_RATE=", 12))
            sampling = strncmp(line + 12, "0\n", 2) && strcmp(line + 12, "0");
    }
    free(settings);
    return on && sampling;
}

int db_chunk_blocks(struct hwdb *db, int64_t snap, int64_t *blocks)
{
    int64_t v[2] = { -1, 0 };
    int rc = for_rows(db, query(db, "SELECT coalesce(sum(count), 0), 0 FROM object_chunk WHERE snapshot_id = ?", 1, &snap),
                      two_counts_row, v);
    *blocks = v[0];
    return rc;
}

/* ---- the snapshot list ---------------------------------------------------------------------- */

struct totals_args { struct hwdb *db; db_totals_fn *fn; void *ctx; };

static int add_to_totals(void *args, const struct hw_count_row *r)
{
    struct db_snapshot_totals *t = args;
    if (__builtin_add_overflow(t->inuse_objects, (int64_t)(r->alloc_objects - r->free_objects), &t->inuse_objects) ||
        __builtin_add_overflow(t->inuse_bytes, (int64_t)(r->alloc_bytes - r->free_bytes), &t->inuse_bytes) ||
        __builtin_add_overflow(t->alloc_objects, (int64_t)r->alloc_objects, &t->alloc_objects) ||
        __builtin_add_overflow(t->alloc_bytes, (int64_t)r->alloc_bytes, &t->alloc_bytes))
        return 1;
    return 0;
}

static int totals_row(sqlite3_stmt *st, void *args)
{
    struct totals_args *a = args;
    struct db_snapshot_totals t = { sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                                    sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5) };
    int rc = each_count_row(a->db, t.id, add_to_totals, &t);
    if (rc == 1)
        error("cannot read '%s': snapshot %lld's totals do not fit in 64 bits (corrupt database)", a->db->path,
              (long long)t.id);
    if (rc)
        return -1;
    return a->fn(a->ctx, &t);
}

int db_each_snapshot_totals(struct hwdb *db, db_totals_fn *fn, void *ctx)
{
    struct totals_args a = { db, fn, ctx };
    return for_rows(db, query(db, "SELECT s.id, coalesce(sum(c.alloc_objects - c.free_objects), 0),"
                                  " coalesce(sum(c.alloc_bytes - c.free_bytes), 0), coalesce(sum(c.alloc_objects), 0),"
                                  " coalesce(sum(c.alloc_bytes), 0), p.start_time_ns"
                                  " FROM snapshot s CROSS JOIN process p LEFT JOIN snapshot_stack c ON c.snapshot_id = s.id"
                                  " GROUP BY s.id ORDER BY s.id", 0, NULL), totals_row, &a);
}

struct gaps_args { struct db_gap *v; size_t nr, alloc; };

static int gap_row(sqlite3_stmt *st, void *args)
{
    struct gaps_args *a = args;
    const unsigned char *why = sqlite3_column_text(st, 4);
    ALLOC_GROW(a->v, a->nr + 1, a->alloc);
    a->v[a->nr++] = (struct db_gap){ sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                                     sqlite3_column_int64(st, 3), xstrdup(why ? (const char *)why : "") };
    return 0;
}

int db_gaps(struct hwdb *db, struct db_gap **gaps, size_t *nr)
{
    struct gaps_args a = { NULL, 0, 0 };
    int rc = 0;
    if (db->version >= 3)   /* the gap table came with schema 3 */
        rc = for_rows(db, query(db, "SELECT after_snapshot, lost, first_time_ns, last_time_ns, reason FROM gap"
                                    " ORDER BY after_snapshot", 0, NULL), gap_row, &a);
    *gaps = a.v;
    *nr = a.nr;
    return rc;
}

void db_gaps_release(struct db_gap *gaps, size_t nr)
{
    for (size_t i = 0; i < nr; i++)
        free(gaps[i].reason);
    free(gaps);
}

static int one_id_row(sqlite3_stmt *st, void *args)
{
    *(int64_t *)args = sqlite3_column_int64(st, 0);
    return 0;
}

int db_snapshot_since(struct hwdb *db, int64_t above, int64_t time_ns, int64_t *id)
{
    const int64_t params[] = { above, time_ns };
    *id = 0;
    return for_rows(db, query(db, "SELECT coalesce(max(id), 0) FROM snapshot WHERE id > ? AND time_ns >= ?", 2, params),
                    one_id_row, id);
}

/* ---- modules and the symbol cache ----------------------------------------------------------- */

struct module_args { db_module_fn *fn; void *ctx; };

static int module_row(sqlite3_stmt *st, void *args)
{
    struct module_args *a = args;
    struct db_module m = { sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
                           (const char *)sqlite3_column_text(st, 2), (uint64_t)sqlite3_column_int64(st, 3),
                           (uint64_t)sqlite3_column_int64(st, 4), (uint64_t)sqlite3_column_int64(st, 5),
                           sqlite3_column_int64(st, 6), (uint64_t)sqlite3_column_int64(st, 7),
                           (uint64_t)sqlite3_column_int64(st, 8), (uint64_t)sqlite3_column_int64(st, 9) };
    return a->fn(a->ctx, &m);
}

int db_each_module(struct hwdb *db, db_module_fn *fn, void *ctx)
{
    struct module_args a = { fn, ctx };
    /* Schema 2 had no load_seq: each row was one load, numbered by its id. */
    /* Schema 2 had no load_seq: each row was one load, numbered by its id. Before schema 4
     * nothing said where TLS lives (NULL reads as 0). */
    const char *sql = db->version >= 4 ? "SELECT id, path, build_id, load_bias, text_start, text_end, load_seq,"
                                         " tls_modid, tls_size, tls_offset FROM module"
                      : db->version >= 3 ? "SELECT id, path, build_id, load_bias, text_start, text_end, load_seq,"
                                           " NULL, NULL, NULL FROM module"
                                         : "SELECT id, path, build_id, load_bias, text_start, text_end, id,"
                                           " NULL, NULL, NULL FROM module";
    return for_rows(db, query(db, sql, 0, NULL), module_row, &a);
}

/* ---- a heap walk's roots, threads and frames ------------------------------------------------- */

struct root_args { db_root_fn *fn; void *ctx; };

static int root_row(sqlite3_stmt *st, void *args)
{
    struct root_args *a = args;
    struct db_root r = { sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
                         sqlite3_column_int64(st, 2), sqlite3_column_int(st, 3),
                         (uint64_t)sqlite3_column_int64(st, 4), (uint64_t)sqlite3_column_int64(st, 5) };
    return a->fn(a->ctx, &r);
}

int db_each_root(struct hwdb *db, int64_t snap, db_root_fn *fn, void *ctx)
{
    struct root_args a = { fn, ctx };
    return for_rows(db, query(db, "SELECT id, kind, coalesce(module_id, 0), coalesce(tid, 0), start, end FROM root"
                                  " WHERE snapshot_id = ? ORDER BY id", 1, &snap), root_row, &a);
}

struct thread_args { db_thread_fn *fn; void *ctx; };

static int thread_row(sqlite3_stmt *st, void *args)
{
    struct thread_args *a = args;
    struct db_thread t = { sqlite3_column_int(st, 0), (const char *)sqlite3_column_text(st, 1),
                           (uint64_t)sqlite3_column_int64(st, 2), (uint64_t)sqlite3_column_int64(st, 3),
                           (uint64_t)sqlite3_column_int64(st, 4), (uint64_t)sqlite3_column_int64(st, 5),
                           (uint64_t)sqlite3_column_int64(st, 6) };
    return a->fn(a->ctx, &t);
}

int db_each_thread(struct hwdb *db, int64_t snap, db_thread_fn *fn, void *ctx)
{
    struct thread_args a = { fn, ctx };
    return for_rows(db, query(db, db->version >= 4
                                      ? "SELECT tid, state, sp, pc, stack_start, stack_end, tp FROM thread"
                                        " WHERE snapshot_id = ? ORDER BY tid"
                                      : "SELECT tid, state, sp, pc, stack_start, stack_end, NULL FROM thread"
                                        " WHERE snapshot_id = ? ORDER BY tid",
                              1, &snap), thread_row, &a);
}

struct frame_args { db_frame_fn *fn; void *ctx; };

static int frame_row(sqlite3_stmt *st, void *args)
{
    struct frame_args *a = args;
    return a->fn(a->ctx, sqlite3_column_int(st, 0), sqlite3_column_int(st, 1), (uint64_t)sqlite3_column_int64(st, 2),
                 (uint64_t)sqlite3_column_int64(st, 3));
}

int db_each_frame(struct hwdb *db, int64_t snap, db_frame_fn *fn, void *ctx)
{
    struct frame_args a = { fn, ctx };
    return for_rows(db, query(db, "SELECT tid, depth, pc, cfa FROM frame WHERE snapshot_id = ? ORDER BY tid, depth",
                              1, &snap), frame_row, &a);
}

struct cached_args { db_cached_frame_fn *fn; void *ctx; };

static int cached_row(sqlite3_stmt *st, void *args)
{
    struct cached_args *a = args;
    return a->fn(a->ctx, (uint64_t)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 2),
                 (const char *)sqlite3_column_text(st, 3), sqlite3_column_int(st, 4));
}

/* The cache is the analyzer's own table, made in a database it may write. */
static void create_cache_table(struct hwdb *db)
{
    if (db->writable)
        sqlite3_exec(db->sql, "CREATE TABLE IF NOT EXISTS cache_frame_v2(pc INTEGER, idx INTEGER,"
                     " function TEXT, file TEXT, line INTEGER, PRIMARY KEY(pc, idx)) WITHOUT ROWID", NULL, NULL, NULL);
}

int db_each_cached_frame(struct hwdb *db, db_cached_frame_fn *fn, void *ctx)
{
    create_cache_table(db);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, "SELECT pc, idx, function, file, line FROM cache_frame_v2 ORDER BY pc, idx",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return 0;   /* no cache yet (a read-only database): the cache is only ever a shortcut */
    }
    struct cached_args a = { fn, ctx };
    return for_rows(db, st, cached_row, &a);
}

struct db_cache_writer {
    struct hwdb *db;
    sqlite3_stmt *insert;
};

struct db_cache_writer *db_cache_begin(struct hwdb *db)
{
    create_cache_table(db);
    if (!db->writable || sqlite3_exec(db->sql, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return NULL;   /* the traced process is writing: the cache can wait */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, "INSERT OR REPLACE INTO cache_frame_v2 VALUES (?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
        return NULL;
    }
    struct db_cache_writer *w = xmalloc(sizeof *w);
    *w = (struct db_cache_writer){ db, st };
    return w;
}

void db_cache_put(struct db_cache_writer *w, uint64_t pc, int idx, const char *function, const char *file, int line)
{
    sqlite3_bind_int64(w->insert, 1, (int64_t)pc);
    sqlite3_bind_int(w->insert, 2, idx);
    sqlite3_bind_text(w->insert, 3, function, -1, SQLITE_STATIC);
    if (file)
        sqlite3_bind_text(w->insert, 4, file, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(w->insert, 4);
    sqlite3_bind_int(w->insert, 5, line);
    sqlite3_step(w->insert);   /* a row that cannot be stored is resolved again next time */
    sqlite3_reset(w->insert);
}

void db_cache_commit(struct db_cache_writer *w)
{
    sqlite3_finalize(w->insert);
    sqlite3_exec(w->db->sql, "COMMIT", NULL, NULL, NULL);
    free(w);
}

static void create_blob_table(struct hwdb *db)
{
    if (db->writable)
        sqlite3_exec(db->sql, "CREATE TABLE IF NOT EXISTS cache_blob_v1(kind TEXT, snapshot_id INTEGER, version TEXT,"
                     " data BLOB, PRIMARY KEY(kind, snapshot_id))", NULL, NULL, NULL);
}

bool db_cache_blob_get(struct hwdb *db, const char *kind, int64_t snap, const char *version, void **data, size_t *len)
{
    create_blob_table(db);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->sql, "SELECT data FROM cache_blob_v1 WHERE kind = ? AND snapshot_id = ? AND version = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return false;
    }
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, snap);
    sqlite3_bind_text(st, 3, version, -1, SQLITE_STATIC);
    bool found = false;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *len = (size_t)sqlite3_column_bytes(st, 0);
        *data = xmalloc(*len ? *len : 1);
        if (*len)
            memcpy(*data, sqlite3_column_blob(st, 0), *len);
        found = true;
    }
    sqlite3_finalize(st);
    return found;
}

void db_cache_blob_put(struct hwdb *db, const char *kind, int64_t snap, const char *version, const void *data, size_t len)
{
    create_blob_table(db);
    sqlite3_stmt *st;
    if (!db->writable ||
        sqlite3_prepare_v2(db->sql, "INSERT OR REPLACE INTO cache_blob_v1 VALUES (?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, snap);
    sqlite3_bind_text(st, 3, version, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 4, data, len, SQLITE_STATIC);
    sqlite3_step(st);   /* busy or full: computed again next time */
    sqlite3_finalize(st);
}
