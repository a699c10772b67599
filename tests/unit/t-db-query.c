/* This file implements the unit test of analyzer/db_query.c, the one seam through which the
 * analyzer's reports read SQLite: a database built here from schema.sql with rows whose
 * values are known (blocks and pointers packed with schema/chunk.h) reads back through every
 * query; then faults are injected (tables dropped, a row callback that stops) and each query
 * must return its error instead of exiting, so that the process goes on. Prints TAP. */
// LINK: analyzer/db.c analyzer/db_query.c analyzer/usage.c build/schema_sql.c
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../schema/chunk.h"
#include "../schema/schema.h"
#include "db.h"
#include "harness.h"

static void exec(sqlite3 *sql, const char *s)
{
    char *err = NULL;
    if (sqlite3_exec(sql, s, NULL, NULL, &err) != SQLITE_OK) {
        printf("Bail out! %s: %s\n", s, err);
        exit(1);
    }
}

/* A stack_count_chunk row of snapshot 1 holding rows[0 .. n - 1], as the shim packs them. */
static void put_count_chunk(sqlite3 *sql, int64_t first, const struct hw_count_row *rows, int n)
{
    uint8_t buf[4 * HW_COUNT_ROW_MAX], *p = buf;
    uint64_t prev = 0;
    for (int i = 0; i < n; i++)
        p = hw_count_put(p, &prev, &rows[i]);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(sql, "INSERT INTO stack_count_chunk(snapshot_id, first, count, data) VALUES (1, ?, ?, ?)", -1, &st,
                       NULL);
    sqlite3_bind_int64(st, 1, first);
    sqlite3_bind_int(st, 2, n);
    sqlite3_bind_blob(st, 3, buf, (int)(p - buf), SQLITE_TRANSIENT);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

/* A database with one walked snapshot: blocks 0 (reachable, stack 1), 1 (direct leak, stack
 * 2), 2 (indirect, stack 2, held by 1), 3 (reachable, possibly lost); a root points to 0. */
static void build(const char *path)
{
    sqlite3 *sql;
    unlink(path);
    sqlite3_open(path, &sql);
    exec(sql, hw_schema_sql);
    char meta[256];
    snprintf(meta, sizeof meta, "INSERT INTO meta VALUES ('format','%s'); PRAGMA user_version=%d;", HW_DB_FORMAT,
             HW_SCHEMA_VERSION);
    exec(sql, meta);
    exec(sql, "INSERT INTO process VALUES (77, 1, '/bin/x', 'x', 1000, 1, '', NULL);"
              "INSERT INTO module(id, path, build_id, load_bias, text_start, text_end, load_seq)"
              " VALUES (1, '/bin/x', 'abcd', 4096, 8192, 16384, 1);"
              "INSERT INTO snapshot(id, time_ns, trigger, mode, threads, threads_unstopped, live_objects, live_bytes,"
              " reachable_objects, reachable_bytes, indirect_objects, indirect_bytes, leaked_objects, leaked_bytes,"
              " scanned_bytes, pause_ns, walk_ns, write_ns)"
              " VALUES (1, 5000, 'api', 'fork', 1, 0, 4, 100, 2, 40, 1, 30, 1, 30, 100, 1, 1, 1);"
              "INSERT INTO snapshot_stack VALUES (1, 1, 10, 500, 4, 100, 10, 6), (1, 2, 2, 60, 0, 0, 2, 2);"
              "INSERT INTO object VALUES (1, 4112, 30, 2, 2, 77, 2, 0), (1, 4144, 30, 2, 3, 77, 1, 0),"
              " (1, 4176, 20, 1, 4, 77, 0, 1);"
              "INSERT INTO gap VALUES (1, 3, 6000, 7000, 'disk full');");
    const struct hw_chunk_block blocks[4] = {
        { 4096, 20, 1, 1, 77, 0, 0, 0 }, { 4112, 30, 2, 2, 77, 2, 0, 0 }, { 4144, 30, 2, 3, 77, 1, 0, 0 }, { 4176, 20, 1, 4, 77, 0, 1, 0 },
    };
    const struct hw_chunk_edge edges[2] = { { true, 1, 0, 0, 0 }, { false, 1, 8, 2, 0 } };
    uint8_t buf[512], *p = buf;
    struct hw_chunk_cursor prev = { 0, 0 };
    for (int i = 0; i < 4; i++)
        p = hw_chunk_put_block(p, &prev, &blocks[i]);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(sql, "INSERT INTO object_chunk(snapshot_id, first, count, data) VALUES (1, 0, 4, ?)", -1, &st, NULL);
    sqlite3_bind_blob(st, 1, buf, (int)(p - buf), SQLITE_TRANSIENT);
    sqlite3_step(st);
    sqlite3_finalize(st);
    p = buf;
    struct hw_chunk_edge_cursor edge_cursor = { 0, 0, 0 };
    for (int i = 0; i < 2; i++)
        p = hw_chunk_put_edge_at(p, &edge_cursor, &edges[i]);
    sqlite3_prepare_v2(sql, "INSERT INTO edge_chunk(snapshot_id, chunk, count, data) VALUES (1, 0, 2, ?)", -1, &st, NULL);
    sqlite3_bind_blob(st, 1, buf, (int)(p - buf), SQLITE_TRANSIENT);
    sqlite3_step(st);
    sqlite3_finalize(st);
    /* Packed counters (schema 8) beside the rows: stacks 4 and 3 in one chunk, 6 in the next. */
    const struct hw_count_row counts[3] = {
        { .stack = 4, .alloc_objects = 5, .alloc_bytes = 50, .free_objects = 1, .free_bytes = 10, .alloc_samples = 5,
          .free_samples = 1 },
        { .stack = 3, .alloc_objects = 1, .alloc_bytes = 7, .alloc_samples = 1 },
        { .stack = 6, .alloc_objects = 2, .alloc_bytes = 2, .free_objects = 2, .free_bytes = 2, .alloc_samples = 2,
          .free_samples = 2 },
    };
    put_count_chunk(sql, 0, counts, 2);
    put_count_chunk(sql, 2, counts + 2, 1);
    sqlite3_close(sql);
}

static int sum_counters(void *ctx, const struct db_counters *r)
{
    int64_t *v = ctx;
    v[0] += r->stack * 1000 + r->inuse_bytes;
    v[1] += r->alloc_objects;
    return 0;
}

static int sum_groups(void *ctx, const struct db_object_group *g)
{
    int64_t *v = ctx;
    v[0] += g->cls * 100 + g->stack * 10 + g->objects;
    v[1] += g->bytes;
    return 0;
}

static int count_blocks(void *ctx, const struct db_chunk *c)
{
    int64_t *v = ctx;
    const uint8_t *p = c->data;
    struct hw_chunk_cursor prev = { 0, 0 };
    struct hw_chunk_block b;
    for (int64_t k = 0; k < c->count; k++)
        if (hw_chunk_get_block(&p, c->data + c->len, &prev, &b))
            v[0] += (int64_t)b.size, v[1] += b.cls;
    return 0;
}

static int count_edges(void *ctx, const struct db_chunk *c)
{
    int64_t *v = ctx;
    const uint8_t *p = c->data;
    struct hw_chunk_edge e;
    struct hw_chunk_edge_cursor cursor = { 0, 0, 0 };
    for (int64_t k = 0; k < c->count; k++)
        if (hw_chunk_get_edge_at(&p, c->data + c->len, HW_SCHEMA_VERSION, &cursor, &e))
            v[0] += e.from_root, v[1] += (int64_t)(e.target + e.offset);
    return 0;
}

struct db_totals_seen {
    int calls;
    struct db_snapshot_totals t;
};

static int take_totals(void *ctx, const struct db_snapshot_totals *t)
{
    struct db_totals_seen *seen = ctx;
    seen->calls++;
    seen->t = *t;
    return 0;
}

static int stop_at_first(void *ctx, const struct db_counters *r)
{
    (void)r;
    ++*(int *)ctx;
    return 42;
}

static int take_module(void *ctx, const struct db_module *m)
{
    char *out = ctx;
    snprintf(out, 128, "%lld %s %s %llu %llu %llu %lld", (long long)m->id, m->path, m->build_id,
             (unsigned long long)m->bias, (unsigned long long)m->start, (unsigned long long)m->end,
             (long long)m->load_seq);
    return 0;
}

static int take_frame(void *ctx, uint64_t pc, const char *function, const char *file, int line)
{
    char *out = ctx;
    snprintf(out + strlen(out), 128 - strlen(out), "[%llx %s %s %d]", (unsigned long long)pc, function,
             file ? file : "-", line);
    return 0;
}

int main(void)
{
    char path[] = "/tmp/hw-t-db-query-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    build(path);
    struct hwdb *db = db_open(path);
    int64_t v[2] = { 0, 0 }, a, b;

    CHECK(db_each_stack_counters(db, 1, sum_counters, v) == 0 &&
          v[0] == 1000 + 400 + 2000 + 60 + 4000 + 40 + 3000 + 7 + 6000 + 0 && v[1] == 12 + 5 + 1 + 2,
          "stack counters: inuse = alloc - free, every row and every packed row");
    struct db_totals_seen seen = { 0 };
    CHECK(db_each_snapshot_totals(db, take_totals, &seen) == 0 && seen.calls == 1 &&
          seen.t.inuse_objects == 6 + 2 + 4 + 1 && seen.t.inuse_bytes == 400 + 60 + 40 + 7 &&
          seen.t.alloc_objects == 12 + 8 && seen.t.alloc_bytes == 560 + 59 && seen.t.process_start_ns == 1000,
          "snapshot totals: the rows' and the packed rows' sums");
    {   /* Broken packed counters: each one error, never a wrong answer. */
        static const char *const breaks[] = {
            "UPDATE stack_count_chunk SET first = 3 WHERE first = 2",
            "DELETE FROM stack_count_chunk WHERE first = 0",
            "UPDATE stack_count_chunk SET data = substr(data, 1, length(data) - 1) WHERE first = 0",
            "UPDATE stack_count_chunk SET data = data || x'00' WHERE first = 2",
            "UPDATE stack_count_chunk SET count = 3 WHERE first = 0",
            "UPDATE stack_count_chunk SET data = x'0c010102020102' WHERE first = 2",
        };
        static const char *const why[] = { "a gap", "a missing first chunk", "a cut chunk", "trailing bytes",
                                           "a count past its data", "more freed than allocated" };
        for (size_t i = 0; i < sizeof breaks / sizeof breaks[0]; i++) {
            sqlite3_exec(db->sql, "SAVEPOINT brk", NULL, NULL, NULL);
            sqlite3_exec(db->sql, breaks[i], NULL, NULL, NULL);
            v[0] = v[1] = 0;
            diag("expect an error:");
            fflush(stdout);
            int rc_counters = db_each_stack_counters(db, 1, sum_counters, v);
            fflush(stderr);
            diag("expect an error:");
            fflush(stdout);
            int rc_totals = db_each_snapshot_totals(db, take_totals, &seen);
            fflush(stderr);
            CHECK(rc_counters == -1 && rc_totals == -1, "packed counters with %s: -1 from both queries", why[i]);
            sqlite3_exec(db->sql, "ROLLBACK TO brk; RELEASE brk", NULL, NULL, NULL);
        }
    }
    v[0] = v[1] = 0;
    v[0] = v[1] = 0;
    CHECK(db_each_leaked_stack(db, 1, sum_groups, v) == 0 && v[0] == 20 + 2 && v[1] == 60,
          "leaked stacks: both classes of stack 2 in one row");
    v[0] = v[1] = 0;
    CHECK(db_each_unreachable_group(db, 1, sum_groups, v) == 0 && v[0] == (100 + 20 + 1) + (200 + 20 + 1) && v[1] == 60,
          "unreachable groups: one per class");
    CHECK(db_possibly_lost(db, 1, &a, &b) == 0 && a == 1 && b == 20, "possibly lost: the flagged reachable block");
    v[0] = v[1] = 0;
    CHECK(db_each_object_chunk(db, 1, count_blocks, v) == 0 && v[0] == 100 && v[1] == 3, "object chunks decode");
    v[0] = v[1] = 0;
    CHECK(db_each_edge_chunk(db, 1, count_edges, v) == 0 && v[0] == 1 && v[1] == 0 + 2 + 8, "edge chunks decode");
    CHECK(db_chunk_blocks(db, 1, &a) == 0 && a == 4, "chunk block count");
    struct db_gap *gaps;
    size_t nr;
    CHECK(db_gaps(db, &gaps, &nr) == 0 && nr == 1 && gaps[0].lost == 3 && !strcmp(gaps[0].reason, "disk full"), "gaps");
    db_gaps_release(gaps, nr);
    CHECK(db_snapshot_since(db, 0, 5000, &a) == 0 && a == 1 && db_snapshot_since(db, 0, 5001, &b) == 0 && b == 0,
          "snapshot since: by time");
    char text[128] = "";
    CHECK(db_each_module(db, take_module, text) == 0 && !strcmp(text, "1 /bin/x abcd 4096 8192 16384 1"), "modules");
    struct db_cache_writer *w = db_cache_begin(db);
    if (w) {
        db_cache_put(w, 0x2010, 0, "inner", "a.c", 3);
        db_cache_put(w, 0x2010, 1, "outer", NULL, 9);
        db_cache_commit(w);
    }
    text[0] = '\0';
    CHECK(w && db_each_cached_frame(db, take_frame, text) == 0 && !strcmp(text, "[2010 inner a.c 3][2010 outer - 9]"),
          "the symbol cache stores and reads back frames in order");

    int calls = 0;
    CHECK(db_each_stack_counters(db, 1, stop_at_first, &calls) == 42 && calls == 1,
          "a callback's nonzero result stops the query and is returned");

    /* Faults: the tables go away under the open database; every query says so and returns. */
    sqlite3_exec(db->sql, "DROP TABLE object_chunk; DROP TABLE edge_chunk; DROP TABLE object; DROP TABLE gap;"
                          "DROP TABLE snapshot_stack; DROP TABLE module; DROP TABLE cache_frame_v2",
                 NULL, NULL, NULL);
    diag("expect seven errors:");
    fflush(stdout);
    CHECK(db_each_object_chunk(db, 1, count_blocks, v) == -1, "object_chunk gone: -1, no exit");
    CHECK(db_each_edge_chunk(db, 1, count_edges, v) == -1, "edge_chunk gone: -1, no exit");
    CHECK(db_each_unreachable_group(db, 1, sum_groups, v) == -1, "object gone: -1, no exit");
    CHECK(db_gaps(db, &gaps, &nr) == -1 && nr == 0, "gap gone: -1, no gaps");
    db_gaps_release(gaps, nr);
    CHECK(db_each_stack_counters(db, 1, sum_counters, v) == -1, "snapshot_stack gone: -1, no exit");
    CHECK(db_each_module(db, take_module, text) == -1, "module gone: -1, no exit");
    CHECK(db_chunk_blocks(db, 1, &a) == -1, "chunk count: -1, no exit");
    CHECK(db_each_cached_frame(db, take_frame, text) == 0, "no symbol cache is not an error");
    CHECK(db_snapshot_since(db, 0, 0, &a) == 0 && a == 1, "the database is still usable after the errors");
    db_close(db);
    unlink(path);
    return done();
}
