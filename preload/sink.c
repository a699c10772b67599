/* This file implements the shim's database writer. It runs guarded, on the helper thread, a
 * thread that asked for a snapshot, or a snapshot's fork child; the private SQLite allocates
 * from the shim's arena (arena.h), never from the real allocator, whose locks a fork child of
 * a stopped world may find held, and none of its memory ever shows up in the profile.
 *
 * Durability: WAL with synchronous=NORMAL and one transaction per snapshot, so a snapshot is
 * either whole or absent even if the process is killed mid-write: in that mode SQLite never
 * corrupts the database and keeps every commit across a crash of the process; only a power
 * loss may cost the last commits (sqlite.org/pragma.html#pragma_synchronous). The exit
 * snapshot of a database no write put in WAL mode commits in rollback mode at NORMAL, as
 * safe (write_quietly). Three steps run with synchronous=OFF, which a power loss may leave
 * corrupt rather than short: the creation of a database, before it holds any snapshot
 * (create_locked), the switch into WAL mode, which changes no data (to_wal), and the switch
 * out of it at exit once a synced checkpoint has copied every commit (finish_locked).
 * Pages are 16 KiB: a walked snapshot is tens of megabytes of chunk rows, which SQLite
 * writes as overflow pages, two system calls per page into the WAL and again at the
 * checkpoint. On the 3M-object heap, 4 KiB pages took 350 ms to write, 16 KiB 180-270 and
 * 64 KiB 150-240; but a small snapshot rewrites whole pages of several tables, and cost
 * 4.7, 5.4 and 7.5 ms respectively, which a signal storm multiplies. */
#define _GNU_SOURCE
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../schema/chunk.h"
#include "../schema/schema.h"
#include "depot.h"
#include "hw.h"
#include "arena.h"
#include "livetable.h"
#include "mark.h"
#include "modules.h"
#include "roots.h"
#include "options.h"
#include "real.h"
#include "sqlmutex.h"
#include "threads.h"

static sqlite3 *db;  /* open only inside hw_sink_create / hw_sink_write */
static bool quiet;   /* errors of writes are counted by the caller, not reported */
static int last_error;  /* SQLite's primary result code of the last failure */
static char last_message[HW_SINK_MESSAGE];  /* and what SQLite said */

void hw_sink_set_quiet(bool q) { quiet = q; }

const char *hw_sink_last_message(void) { return last_message; }

/* Remember a failure: its code (a write that failed for want of space counts as a full disk
 * whatever SQLite calls it: an I/O error on the WAL or its index) and SQLite's words. */
static void remember_failure(int code, const char *what)
{
    last_error = code ? code & 0xff : SQLITE_ERROR;
    if (db && (sqlite3_system_errno(db) == ENOSPC || sqlite3_system_errno(db) == EDQUOT))
        last_error = SQLITE_FULL;
    hw_fmt(last_message, sizeof last_message, "%s", what);
}

/* What a write returns when it fails: below -1, so that -1 stays "no write was attempted". */
static int64_t failure(void)
{
    return -1 - (int64_t)(last_error ? last_error : SQLITE_ERROR);
}

const char *hw_sink_failure(int64_t rc)
{
    switch ((int)(-rc - 1) & 0xff) {
    case SQLITE_FULL: return "disk full";
    case SQLITE_IOERR: return "I/O error";
    case SQLITE_CANTOPEN: return "cannot open the database";
    case SQLITE_NOMEM: return "out of memory";
    case SQLITE_BUSY: case SQLITE_LOCKED: return "database locked";
    default: return "database error";
    }
}

/* A database error: remembered, and said unless quiet. */
static void db_error(const char *what)
{
    remember_failure(db ? sqlite3_errcode(db) : SQLITE_ERROR, what);
    if (!quiet)
        hw_log("database error: %s", what);
}

/* Held around every use of the private SQLite and its arena: one thread at a time uses them.
 * fork does not wait for it (sqlmutex.h: it waits for SQLite's own mutexes); the prepare
 * handler tries it, to close the event writer's idle connection before the child copies it. */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;

void hw_sink_lock(void) { pthread_mutex_lock(&sink_lock); }
void hw_sink_unlock(void) { pthread_mutex_unlock(&sink_lock); }

/* Threads in hw_sink_lock_within (an _exit). The event writer, which takes the lock once per
 * chunk, lets them have it first: glibc's mutex is not fair, and a writer that retakes it at
 * once after each chunk kept such a waiter out for its whole wait. */
static _Atomic int urgent_waiters;
#define YIELD_MAX_NS 2000000000ull   /* the writer waits for them this long at most */

static void lock_after_urgent(void)
{
    uint64_t start = 0;
    while (atomic_load_explicit(&urgent_waiters, memory_order_relaxed)) {
        uint64_t now = hw_now_ns(CLOCK_MONOTONIC);
        if (!start)
            start = now;
        else if (now - start > YIELD_MAX_NS)
            break;
        struct timespec pause = { 0, 100000 };
        nanosleep(&pause, NULL);
    }
    hw_sink_lock();
}

static bool timed_lock(int ms)
{
    struct timespec until = hw_deadline_in_ms(ms);
    return pthread_mutex_timedlock(&sink_lock, &until) == 0;
}

bool hw_sink_lock_within(int ms)
{
    atomic_fetch_add_explicit(&urgent_waiters, 1, memory_order_relaxed);
    bool got = timed_lock(ms);
    atomic_fetch_sub_explicit(&urgent_waiters, 1, memory_order_relaxed);
    return got;
}

bool hw_sink_trylock(void) { return pthread_mutex_trylock(&sink_lock) == 0; }

/* A fork child born while another thread of the parent held one of SQLite's mutexes would
 * wait for it for ever: it must never use SQLite. Set once in such a child; every entry
 * point then fails at once. */
static bool unusable;
static sqlite3 *events_db;

bool hw_sink_fork_prepare(int ms)
{
    bool ok = hw_sqlmutex_fork_prepare(ms);
    /* SQLite's memory, which SQLite takes with or without a mutex of its own held (then the
     * spin lasts until that thread's allocation is done). */
    hw_arena_lock();
    return ok;
}

void hw_sink_fork_parent(void)
{
    hw_arena_unlock();
    hw_sqlmutex_fork_parent();
}

void hw_sink_reset_in_clone(void)
{
    pthread_mutex_init(&sink_lock, NULL);
    atomic_store(&urgent_waiters, 0);   /* threads the child does not have */
    hw_arena_reset_lock();
    hw_sqlmutex_fork_child();
}

void hw_sink_fork_child(bool sqlite_ok)
{
    hw_sink_reset_in_clone();
    /* A connection another thread of the parent was using is the parent's: forgotten, never
     * closed here (closing touches its files and locks). */
    db = NULL;
    events_db = NULL;
    /* A child that may not use SQLite has SQLite's mutexes copied held for good: its own
     * children may not either, whatever their fork saw. */
    unusable = unusable || !sqlite_ok;
}

/* ---- private SQLite memory: the shim's arena ------------------------------------------------ */

static void *sq_malloc(int n) { return hw_arena_alloc((size_t)n); }
static void sq_free(void *p) { hw_arena_free(p); }
static void *sq_realloc(void *p, int n) { return hw_arena_realloc(p, (size_t)n); }
static int sq_size(void *p) { return (int)hw_arena_size(p); }
static int sq_roundup(int n) { return (n + 15) & ~15; }
static int sq_init(void *unused) { (void)unused; return SQLITE_OK; }
static void sq_shutdown(void *unused) { (void)unused; }

/* SQLite's open(2) (its unix VFS lets a program replace it): the shim's database descriptors
 * live where a program's double close cannot reach them (sys.h, hw_fd_high). */
static int open_high(const char *path, int flags, int mode)
{
    return hw_fd_high(open(path, flags, mode));
}

static int sqlite_setup(void)
{
    static bool done;
    if (done)
        return 0;
    static const sqlite3_mem_methods methods = {
        sq_malloc, sq_free, sq_realloc, sq_size, sq_roundup, sq_init, sq_shutdown, NULL
    };
    sqlite3_config(SQLITE_CONFIG_MALLOC, &methods);
    if (hw_sqlmutex_install() != SQLITE_OK)
        return -1;   /* without the gate a fork could not tell when SQLite is safe to copy */
    /* Each connection is used by one thread: SQLite's per-connection mutexes would only cost
     * time (they showed as 6% of a full-mode run's exit snapshot). */
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    /* Nor are its allocation statistics read: keeping them takes a global mutex on every
     * sqlite3_malloc and sqlite3_free (5% of writing a snapshot of many stacks). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (sqlite3_initialize() != SQLITE_OK)
        return -1;
    sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
    if (vfs && vfs->iVersion >= 3 && vfs->xSetSystemCall)
        vfs->xSetSystemCall(vfs, "open", (sqlite3_syscall_ptr)open_high);
    done = true;
    return 0;
}

static int exec(const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        db_error(err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

/* Undo the transaction, if SQLite has not already (a failed COMMIT on a full disk rolls back
 * by itself): a ROLLBACK's own error would replace the failure's message. */
static void rollback(void)
{
    if (db && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static sqlite3_stmt *prepare(const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_error(sqlite3_errmsg(db));
        return NULL;
    }
    return st;
}

/* Step a statement that returns no rows, then reset it for reuse. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        db_error(sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* ---- process and modules ------------------------------------------------------------------ */

static int write_process(int forked_from)
{
    char exe[PATH_MAX] = "", cmd[8192], settings[4096];
    hw_self_exe(exe, sizeof exe);
    size_t len = hw_read_file("/proc/self/cmdline", cmd, sizeof cmd);
    for (size_t i = 0; i + 1 < len; i++)
        if (!cmd[i])
            cmd[i] = ' ';
    hw_options_render(settings, sizeof settings);
    sqlite3_stmt *st = prepare("INSERT INTO process(pid, ppid, exe, cmdline, start_time_ns, sample_rate,"
                               " settings, forked_from) VALUES (?,?,?,?,?,?,?,?)");
    if (!st)
        return -1;
    sqlite3_bind_int(st, 1, getpid());
    sqlite3_bind_int(st, 2, getppid());
    sqlite3_bind_text(st, 3, exe, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, cmd, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, (int64_t)hw_now_ns(CLOCK_REALTIME));
    sqlite3_bind_int64(st, 6, (int64_t)hw_opt.sample_rate);
    sqlite3_bind_text(st, 7, settings, -1, SQLITE_TRANSIENT);
    if (forked_from)
        sqlite3_bind_int(st, 8, forked_from);
    int rc = step_done(st);
    sqlite3_finalize(st);
    return rc;
}

static void bind_or_null(sqlite3_stmt *st, int k, bool have, uint64_t v)
{
    if (have)
        sqlite3_bind_int64(st, k, (int64_t)v);
    else
        sqlite3_bind_null(st, k);
}

/* Record the registry's modules (modules.h) that the database does not have yet, and mark
 * those unloaded since; inside the caller's transaction. snapshot: the snapshot being
 * written, 0 at creation; an unload is dated by the first snapshot taken after it. */
static int write_modules(int64_t snapshot)
{
    sqlite3_stmt *mod = prepare("INSERT INTO module(path, build_id, load_bias, text_start, text_end, first_snapshot,"
                                " load_seq, unloaded_before, tls_modid, tls_size, tls_offset)"
                                " VALUES (?,?,?,?,?,?,?,?,?,?,?)");
    sqlite3_stmt *seg = prepare("INSERT INTO module_segment(module_id, start, end, flags) VALUES (?,?,?,?)");
    sqlite3_stmt *known = prepare("SELECT id, unloaded_before IS NULL FROM module WHERE load_seq = ?");
    sqlite3_stmt *gone = prepare("UPDATE module SET unloaded_before = ? WHERE id = ?");
    int rc = mod && seg && known && gone ? 0 : -1;
    int64_t dated = snapshot ? snapshot : 1;
    for (uint32_t i = 0; !rc && i < hw_modules_count(); i++) {
        const struct hw_module *m = hw_modules_at(i);
        if (!m->text_hi)
            continue;  /* no code: nothing to symbolize */
        bool loaded = atomic_load(&m->loaded);
        sqlite3_bind_int64(known, 1, m->seq);
        int found = sqlite3_step(known);
        int64_t id = found == SQLITE_ROW ? sqlite3_column_int64(known, 0) : 0;
        bool was_loaded = found == SQLITE_ROW && sqlite3_column_int(known, 1);
        sqlite3_reset(known);
        if (id) {
            if (was_loaded && !loaded) {
                sqlite3_bind_int64(gone, 1, dated);
                sqlite3_bind_int64(gone, 2, id);
                rc = step_done(gone);
            }
            continue;
        }
        sqlite3_bind_text(mod, 1, m->path, -1, SQLITE_STATIC);
        if (m->build_id[0])
            sqlite3_bind_text(mod, 2, m->build_id, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(mod, 2);
        sqlite3_bind_int64(mod, 3, (int64_t)m->bias);
        sqlite3_bind_int64(mod, 4, (int64_t)m->text_lo);
        sqlite3_bind_int64(mod, 5, (int64_t)m->text_hi);
        bind_or_null(mod, 6, snapshot != 0, (uint64_t)snapshot);
        sqlite3_bind_int64(mod, 7, m->seq);
        bind_or_null(mod, 8, !loaded, (uint64_t)dated);
        bind_or_null(mod, 9, m->tls_modid != 0, m->tls_modid);
        bind_or_null(mod, 10, m->tls_modid != 0, m->tls_size);
        bind_or_null(mod, 11, m->tls_offset != 0, m->tls_offset);
        if ((rc = step_done(mod)) < 0)
            break;
        sqlite3_clear_bindings(mod);
        id = sqlite3_last_insert_rowid(db);
        for (unsigned k = 0; !rc && k < m->nr_segments; k++) {
            sqlite3_bind_int64(seg, 1, id);
            sqlite3_bind_int64(seg, 2, (int64_t)m->segment[k].lo);
            sqlite3_bind_int64(seg, 3, (int64_t)m->segment[k].hi);
            sqlite3_bind_int(seg, 4, m->segment[k].flags);
            rc = step_done(seg);
        }
    }
    sqlite3_finalize(mod);
    sqlite3_finalize(seg);
    sqlite3_finalize(known);
    sqlite3_finalize(gone);
    return rc;
}

/* ---- create / write ------------------------------------------------------------------------ */

static int init_locked(void)
{
    if (sqlite_setup() < 0) {
        hw_log("cannot initialise SQLite; no snapshots will be written");
        return -1;
    }
    return 0;
}

/* The event writer's connection, kept open from one chunk to the next (sink lock): reopening
 * the database makes SQLite rebuild its WAL index by reading and checksumming the whole WAL,
 * up to EVENTS_CHECKPOINT_BYTES of it, for every chunk (in the bench's full-mode churn that
 * was a fifth of the process's time). Every other use of SQLite closes it first, so that one
 * connection at most is open. A snapshot's walk child clone closes it before, and so does the
 * fork prepare handler unless a chunk is being written: that child forgets it
 * (hw_sink_fork_child). */
static char events_path[PATH_MAX];

static void close_events_locked(void)
{
    if (!events_db)
        return;
    int on;
    sqlite3_db_config(events_db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &on);   /* no sync */
    sqlite3_close(events_db);
    events_db = NULL;
}

void hw_sink_close_events_locked(void) { close_events_locked(); }

void hw_sink_close_events(void)
{
    hw_sink_lock();
    close_events_locked();
    hw_sink_unlock();
}

static int open_db(const char *path)
{
    close_events_locked();
    if (init_locked() < 0)
        return -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
        remember_failure(db ? sqlite3_errcode(db) : SQLITE_NOMEM, db ? sqlite3_errmsg(db) : "out of memory");
        if (!quiet)
            hw_log("cannot open '%s': %s; no snapshots will be written", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        db = NULL;
        return -1;
    }
    sqlite3_busy_timeout(db, 60000);
    if (exec("PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384") < 0) {
        sqlite3_close(db);
        db = NULL;
        return -1;
    }
    return 0;
}

static void close_db(void)
{
    sqlite3_close(db);
    db = NULL;
}

void hw_sink_remove(const char *path)
{
    char side[PATH_MAX + 8];
    unlink(path);
    hw_fmt(side, sizeof side, "%s-wal", path);
    unlink(side);
    hw_fmt(side, sizeof side, "%s-shm", path);
    unlink(side);
}

static int create_locked(const char *path, int forked_from, bool quiet_exists)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && !quiet_exists)
        return -2;
    if (fd < 0) {
        hw_log("cannot create '%s': %s; no snapshots will be written", path, strerror(errno));
        return -1;
    }
    close(fd);
    /* One message for whatever fails below, said at the end. */
    bool was_quiet = quiet;
    quiet = true;
    last_error = 0;
    int rc = -1;
    if (open_db(path) < 0)
        goto out;
    /* The page size stays with the file, set before the first table. Nothing in a file being
     * created needs syncing: a power loss before its first snapshot's checkpoint (which syncs
     * the file whole) loses no snapshot. At synchronous=NORMAL the switch to WAL and the
     * closing checkpoint cost seven fdatasyncs, 3 ms a process on ext4 here, which every
     * short-lived program paid at its exit. The file is made in rollback mode, so its pages
     * are written once, not into a new -wal and again at a checkpoint; the first write that
     * needs WAL mode enters it (to_wal), and a file no write put in it is left alone at the
     * end (finish_locked). */
    if (exec("PRAGMA synchronous=OFF; PRAGMA page_size=16384") < 0)
        goto out;
    char meta[512];
    hw_fmt(meta, sizeof meta,
           "INSERT INTO meta VALUES ('format','%s'),('schema_version','%d'),('heapwatch_version','%s');"
           "PRAGMA user_version=%d;",
           HW_DB_FORMAT, HW_SCHEMA_VERSION, HW_VERSION, HW_SCHEMA_VERSION);
    if (exec("BEGIN") < 0)
        goto out;
    if (exec(hw_schema_sql) < 0 || exec(meta) < 0 || write_process(forked_from) < 0 || write_modules(0) < 0) {
        rollback();
        goto out;
    }
    rc = exec("COMMIT");
out:
    close_db();
    quiet = was_quiet;
    if (rc < 0) {
        /* A database without its schema helps nobody (a full disk at start): remove it, so
         * no reader meets an empty or foreign-looking file. */
        hw_sink_remove(path);
        hw_log("cannot create '%s': %s (%s); no snapshots will be written", path, hw_sink_failure(failure()),
               last_message);
    }
    return rc;
}

/* Whether the file's header says rollback mode (its read and write versions, bytes 18 and 19,
 * are 1; WAL mode's are 2): no write entered WAL mode (to_wal), or one left it. */
static bool in_rollback_mode(const char *path)
{
    char header[21];   /* hw_read_file reads one byte less than its buffer */
    return hw_read_file(path, header, sizeof header) == 20 && header[18] == 1 && header[19] == 1;
}

/* WAL mode, for a write that readers must not block (a snapshot, a chunk of events): a no-op
 * once the file is in it. The switch changes no data, so it needs no sync (create_locked). */
static int to_wal(void)
{
    return exec("PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
}

static int64_t query_int(const char *sql)
{
    sqlite3_stmt *st = prepare(sql);
    int64_t v = -1;
    int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else if (st)   /* e.g. a WAL index that cannot grow on a full disk: said as such */
        db_error(sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return v;
}

/* A scratch buffer in our own mapping, big enough for one chunk. */
static uint8_t *chunk_buffer(size_t need)
{
    static uint8_t *buf;
    static size_t cap;
    if (cap < need) {
        if (buf)
            hw_unmap(buf, cap);
        buf = hw_map(need);
        cap = buf ? need : 0;
    }
    return buf;
}

#define STACK_CHUNK 65536u   /* nodes a stack_chunk row holds at most */

/* Write stack-tree nodes interned since the last committed snapshot, packed (schema.sql:
 * stack_chunk). */
static int write_stacks(void)
{
    int64_t have = query_int("SELECT coalesce(max(first + count - 1), 0) FROM stack_chunk");
    uint32_t n = hw_depot_count();
    if (have < 0)
        return -1;
    if (n <= (uint64_t)have)
        return 0;
    sqlite3_stmt *st = prepare("INSERT INTO stack_chunk(first, count, data) VALUES (?,?,?)");
    uint8_t *buf = chunk_buffer(STACK_CHUNK * HW_STACK_NODE_MAX);
    int rc = st && buf ? 0 : -1;
    for (uint32_t first = (uint32_t)have + 1; first <= n && !rc; ) {
        uint32_t count = n - first + 1 < STACK_CHUNK ? n - first + 1 : STACK_CHUNK;
        uint8_t *p = buf;
        for (uint32_t id = first; id < first + count; id++) {
            uintptr_t pc, parent_pc = 0;
            uint32_t parent, grandparent;
            hw_depot_node(id, &pc, &parent);
            if (parent)
                hw_depot_node(parent, &parent_pc, &grandparent);
            p = hw_stack_put_node(p, id, parent, pc, parent_pc);
        }
        sqlite3_bind_int64(st, 1, first);
        sqlite3_bind_int64(st, 2, count);
        sqlite3_bind_blob(st, 3, buf, (int)(p - buf), SQLITE_STATIC);
        rc = step_done(st);
        first += count;
    }
    sqlite3_finalize(st);
    return rc;
}

/* One packed chunk row: (snapshot, key, count, data). */
static int insert_chunk(sqlite3_stmt *st, int64_t snap, int64_t key, size_t count, const uint8_t *data, size_t len)
{
    sqlite3_bind_int64(st, 1, snap);
    sqlite3_bind_int64(st, 2, key);
    sqlite3_bind_int64(st, 3, (int64_t)count);
    sqlite3_bind_blob(st, 4, data, (int)len, SQLITE_STATIC);
    return step_done(st);
}

#define COUNT_CHUNK 65536u   /* stack_count_chunk rows hold at most this many stacks */

/* The snapshot's per-stack counters, packed (schema.sql: stack_count_chunk; schema 8). A
 * program with millions of stacks wrote as many snapshot_stack rows, about 0.4 us each: a
 * second of w_deep's exit snapshot in full mode. */
static int write_counters(int64_t snap, const struct hw_vec *rows)
{
    sqlite3_stmt *st = prepare("INSERT INTO stack_count_chunk(snapshot_id, first, count, data) VALUES (?,?,?,?)");
    uint8_t *buf = chunk_buffer(COUNT_CHUNK * HW_COUNT_ROW_MAX);
    const struct hw_stack_row *r = (const struct hw_stack_row *)rows->data;
    int rc = st && buf ? 0 : -1;
    for (size_t first = 0; first < rows->nr && !rc; first += COUNT_CHUNK) {
        size_t end = first + COUNT_CHUNK < rows->nr ? first + COUNT_CHUNK : rows->nr;
        uint8_t *p = buf;
        uint64_t prev = 0;
        for (size_t i = first; i < end; i++)
            p = hw_count_put(p, &prev, &(struct hw_count_row){
                .stack = r[i].id,
                .alloc_objects = (r[i].alloc_weight + HW_WEIGHT_ONE / 2) / HW_WEIGHT_ONE,
                .alloc_bytes = r[i].alloc_bytes,
                .free_objects = (r[i].free_weight + HW_WEIGHT_ONE / 2) / HW_WEIGHT_ONE,
                .free_bytes = r[i].free_bytes,
                .alloc_samples = r[i].alloc_samples,
                .free_samples = r[i].free_samples });
        rc = insert_chunk(st, snap, (int64_t)first, end - first, buf, (size_t)(p - buf));
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- packed blocks and edges (schema/chunk.h, schema.sql: object_chunk, edge_chunk) ------- */

#define OBJECT_CHUNK 65536u
#define EDGE_CHUNK 262144u

static int write_objects(int64_t snap, const struct hw_heap *h)
{
    sqlite3_stmt *chunk = prepare("INSERT INTO object_chunk(snapshot_id, first, count, data) VALUES (?,?,?,?)");
    sqlite3_stmt *row = prepare("INSERT INTO object(snapshot_id, address, size, stack_id, seq, tid, class, flags)"
                                " VALUES (?,?,?,?,?,?,?,?)");
    uint8_t *buf = chunk_buffer(OBJECT_CHUNK * HW_CHUNK_BLOCK_MAX);
    int rc = chunk && row && buf ? 0 : -1;
    const struct hw_live_entry *e = (const struct hw_live_entry *)h->objects.data;
    for (size_t first = 0; first < h->objects.nr && !rc; first += OBJECT_CHUNK) {
        size_t end = first + OBJECT_CHUNK < h->objects.nr ? first + OBJECT_CHUNK : h->objects.nr;
        uint8_t *p = buf;
        struct hw_chunk_cursor cursor = { 0, 0 };
        for (size_t i = first; i < end && !rc; i++) {
            int tid = hw_thread_tid((uint32_t)e[i].thread);
            p = hw_chunk_put_block(p, &cursor, &(struct hw_chunk_block){
                .addr = e[i].addr, .size = e[i].size, .stack = e[i].stack, .seq = e[i].seq,
                .tid = (unsigned)tid, .cls = h->cls[i], .flags = h->flags[i], .vptr = h->vptr ? h->vptr[i] : 0 });
            if (h->cls[i] == HW_REACHABLE && !h->flags[i])
                continue;
            sqlite3_bind_int64(row, 1, snap);
            sqlite3_bind_int64(row, 2, (int64_t)e[i].addr);
            sqlite3_bind_int64(row, 3, (int64_t)e[i].size);
            sqlite3_bind_int64(row, 4, e[i].stack);
            sqlite3_bind_int64(row, 5, e[i].seq);
            sqlite3_bind_int(row, 6, tid);
            sqlite3_bind_int(row, 7, h->cls[i]);
            sqlite3_bind_int(row, 8, h->flags[i]);
            rc = step_done(row);
        }
        if (rc)
            break;
        rc = insert_chunk(chunk, snap, (int64_t)first, end - first, buf, (size_t)(p - buf));
    }
    sqlite3_finalize(chunk);
    sqlite3_finalize(row);
    return rc;
}

static int write_edge_chunks(sqlite3_stmt *st, int64_t snap, const struct hw_vec *edges, const struct hw_vec *wide,
                             int64_t *chunk_no)
{
    const struct hw_edge *e = (const struct hw_edge *)edges->data;
    uint8_t *buf = chunk_buffer(EDGE_CHUNK * HW_CHUNK_EDGE_MAX);
    size_t next_wide = 0;
    if (!buf)
        return -1;
    for (size_t first = 0; first < edges->nr; first += EDGE_CHUNK) {
        size_t end = first + EDGE_CHUNK < edges->nr ? first + EDGE_CHUNK : edges->nr;
        uint8_t *p = buf;
        struct hw_chunk_edge_cursor cursor = { 0, 0, 0 };
        for (size_t i = first; i < end; i++) {
            bool from_root = e[i].src & HW_EDGE_FROM_ROOT;
            uint64_t offset, target_offset;
            hw_edge_offsets(&e[i], wide, &next_wide, &offset, &target_offset);
            /* Root ids are 1-based (the root table's ids); the walk counts roots from 0. */
            p = hw_chunk_put_edge_at(p, &cursor, &(struct hw_chunk_edge){
                .from_root = from_root,
                .source = from_root ? (uint64_t)(e[i].src & ~HW_EDGE_FROM_ROOT) + 1 : (uint64_t)e[i].src,
                .offset = offset, .target = e[i].dst, .target_offset = target_offset });
        }
        if (insert_chunk(st, snap, (*chunk_no)++, end - first, buf, (size_t)(p - buf)) < 0)
            return -1;
    }
    return 0;
}

static int write_edges(int64_t snap, const struct hw_heap *h)
{
    sqlite3_stmt *st = prepare("INSERT INTO edge_chunk(snapshot_id, chunk, count, data) VALUES (?,?,?,?)");
    int64_t chunk_no = 0;
    int rc = st ? 0 : -1;
    if (!rc)
        rc = write_edge_chunks(st, snap, &h->root_edges, &h->root_wide, &chunk_no);
    if (!rc)
        rc = write_edge_chunks(st, snap, &h->edges, &h->wide, &chunk_no);
    sqlite3_finalize(st);
    return rc;
}

/* The module id of a global root, by the load the walk found it in. */
static int64_t module_id_of(sqlite3_stmt *q, uint32_t seq)
{
    if (!seq)
        return 0;
    sqlite3_bind_int64(q, 1, seq);
    int64_t id = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    return id;
}

static int write_roots(int64_t snap, const struct hw_roots *r)
{
    sqlite3_stmt *st = prepare("INSERT INTO root(snapshot_id, id, kind, module_id, tid, start, end)"
                               " VALUES (?,?,?,?,?,?,?)");
    sqlite3_stmt *q = prepare("SELECT id FROM module WHERE load_seq = ?");
    int rc = st && q ? 0 : -1;
    const struct hw_root *root = (const struct hw_root *)r->roots.data;
    uint32_t last_seq = UINT32_MAX;
    int64_t last_id = 0;
    for (size_t i = 0; i < r->roots.nr && !rc; i++) {
        sqlite3_bind_int64(st, 1, snap);
        sqlite3_bind_int64(st, 2, (int64_t)i + 1);
        sqlite3_bind_text(st, 3, hw_root_kind_names[root[i].kind], -1, SQLITE_STATIC);
        if (root[i].kind == HW_ROOT_GLOBAL) {
            if (root[i].module_seq != last_seq) {
                last_seq = root[i].module_seq;
                last_id = module_id_of(q, last_seq);
            }
            bind_or_null(st, 4, last_id != 0, (uint64_t)last_id);
            sqlite3_bind_null(st, 5);
        } else {
            sqlite3_bind_null(st, 4);
            bind_or_null(st, 5, root[i].tid != 0, (uint64_t)root[i].tid);
        }
        sqlite3_bind_int64(st, 6, (int64_t)root[i].lo);
        sqlite3_bind_int64(st, 7, (int64_t)root[i].hi);
        rc = step_done(st);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(q);
    return rc;
}

static const char *thread_state_name(int state)
{
    switch (state) {
    case HW_T_STOPPED: return "stopped";
    case HW_T_CALLER: return "caller";
    default: return "unstopped";
    }
}

static int write_threads(int64_t snap, const struct hw_roots *r, const struct hw_vec *frames)
{
    sqlite3_stmt *st = prepare("INSERT INTO thread(snapshot_id, tid, state, sp, pc, stack_start, stack_end, tp)"
                               " VALUES (?,?,?,?,?,?,?,?)");
    sqlite3_stmt *fr = prepare("INSERT INTO frame(snapshot_id, tid, depth, pc, cfa) VALUES (?,?,?,?,?)");
    int rc = st && fr ? 0 : -1;
    const struct hw_thread_info *t = (const struct hw_thread_info *)r->threads.data;
    for (size_t i = 0; i < r->threads.nr && !rc; i++) {
        sqlite3_bind_int64(st, 1, snap);
        sqlite3_bind_int(st, 2, t[i].tid);
        sqlite3_bind_text(st, 3, thread_state_name(t[i].state), -1, SQLITE_STATIC);
        bind_or_null(st, 4, t[i].sp != 0, t[i].sp);
        bind_or_null(st, 5, t[i].pc != 0, t[i].pc);
        bind_or_null(st, 6, t[i].stack_hi != 0, t[i].stack_lo);
        bind_or_null(st, 7, t[i].stack_hi != 0, t[i].stack_hi);
        bind_or_null(st, 8, t[i].tp != 0, t[i].tp);
        rc = step_done(st);
    }
    const struct hw_frame_row *f = (const struct hw_frame_row *)frames->data;
    for (size_t i = 0; i < frames->nr && !rc; i++) {
        sqlite3_bind_int64(fr, 1, snap);
        sqlite3_bind_int(fr, 2, f[i].tid);
        sqlite3_bind_int(fr, 3, (int)f[i].depth);
        sqlite3_bind_int64(fr, 4, (int64_t)f[i].pc);
        sqlite3_bind_int64(fr, 5, (int64_t)f[i].cfa);
        rc = step_done(fr);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(fr);
    return rc;
}

static int64_t write_quietly(const char *path, struct hw_snapshot_data *d);

static int write_gap(int64_t after, const struct hw_gap *g)
{
    sqlite3_stmt *st = prepare("INSERT INTO gap(after_snapshot, lost, first_time_ns, last_time_ns, reason)"
                               " VALUES (?,?,?,?,?)");
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (int64_t)g->lost);
    sqlite3_bind_int64(st, 3, (int64_t)g->first_ns);
    sqlite3_bind_int64(st, 4, (int64_t)g->last_ns);
    sqlite3_bind_text(st, 5, g->reason ? g->reason : "unknown", -1, SQLITE_STATIC);
    int rc = step_done(st);
    sqlite3_finalize(st);
    return rc;
}

static int64_t write_locked(const char *path, struct hw_snapshot_data *d)
{
    last_error = 0;
    last_message[0] = '\0';
    /* The caller reports a failed write, once for a run of them (snapshot.c): say nothing. */
    bool was_quiet = quiet;
    quiet = true;
    int64_t id = write_quietly(path, d);
    quiet = was_quiet;
    return id;
}

static int64_t write_quietly(const char *path, struct hw_snapshot_data *d)
{
    if (open_db(path) < 0)
        return failure();
    uint64_t t0 = hw_now_ns(CLOCK_MONOTONIC);
    sqlite3_stmt *st = NULL;
    int64_t snap = -1;
    /* WAL mode: a database made in rollback mode (create_locked), or left in it before an
     * exec that failed. But the exit snapshot of a database that no write has put in WAL
     * mode (a short process's only snapshot) stays in rollback mode: WAL mode would cost a
     * new -wal and -shm, a second connection to copy the WAL into the file, and a third at
     * the end to leave WAL mode again. A commit in rollback mode is as safe from a crash
     * (sqlite.org/atomiccommit.html); a reader holding the file only delays it. */
    bool stays_rollback = !strcmp(d->trigger, "exit") && in_rollback_mode(path);
    if (!stays_rollback && to_wal() < 0)
        goto out_failed;
    if (d->leave_checkpoint) {
        int on;
        sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, &on);
        exec("PRAGMA wal_autocheckpoint=0");
    }
    /* IMMEDIATE: take the write lock now, so the id read below stays ours. */
    if (exec("BEGIN IMMEDIATE") < 0)
        goto out_failed;
    snap = query_int("SELECT coalesce(max(id), 0) + 1 FROM snapshot");
    st = prepare("INSERT INTO snapshot(id, time_ns, label, trigger, mode, threads, threads_unstopped,"
                 " live_objects, live_bytes, reachable_objects, reachable_bytes, indirect_objects,"
                 " indirect_bytes, leaked_objects, leaked_bytes, scanned_bytes, pause_ns, walk_ns, write_ns)"
                 " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    const struct hw_heap *h = d->heap;
    if (snap <= 0 || !st || write_stacks() < 0 || write_modules(snap) < 0 || write_counters(snap, &d->stacks) < 0)
        goto out_rollback;
    if (h && (write_objects(snap, h) < 0 || write_roots(snap, d->roots) < 0 ||
              write_threads(snap, d->roots, &d->frames) < 0 || write_edges(snap, h) < 0))
        goto out_rollback;
    if (d->gap.lost && write_gap(snap - 1, &d->gap) < 0)
        goto out_rollback;
    sqlite3_bind_int64(st, 1, snap);
    sqlite3_bind_int64(st, 2, (int64_t)d->time_ns);
    if (d->label[0])
        sqlite3_bind_text(st, 3, d->label, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->trigger, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, d->mode, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, d->threads);
    sqlite3_bind_int(st, 7, d->threads_unstopped);
    sqlite3_bind_int64(st, 8, (int64_t)d->live_objects);
    sqlite3_bind_int64(st, 9, (int64_t)d->live_bytes);
    for (int c = 0; c < 3; c++) {
        bind_or_null(st, 10 + 2 * c, h, h ? h->count[c] : 0);
        bind_or_null(st, 11 + 2 * c, h, h ? h->bytes[c] : 0);
    }
    bind_or_null(st, 16, h, h ? h->scanned_bytes : 0);
    sqlite3_bind_int64(st, 17, (int64_t)d->pause_ns);
    sqlite3_bind_int64(st, 18, (int64_t)d->walk_ns);
    sqlite3_bind_int64(st, 19, (int64_t)(hw_now_ns(CLOCK_MONOTONIC) - t0));
    if (step_done(st) < 0)
        goto out_rollback;
    if (exec("COMMIT") < 0)
        goto out_rollback;
    /* The row's write time so far leaves the commit out: amend it (a few pages more). Not
     * in rollback mode, where a commit is three fdatasyncs more: that write time leaves the
     * commit out. */
    sqlite3_finalize(st);
    st = stays_rollback ? NULL : prepare("UPDATE snapshot SET write_ns = ? WHERE id = ?");
    if (st) {
        sqlite3_bind_int64(st, 1, (int64_t)(hw_now_ns(CLOCK_MONOTONIC) - t0));
        sqlite3_bind_int64(st, 2, snap);
        step_done(st);
    }
    goto out;
out_rollback:
    rollback();
out_failed:
    snap = failure();
out:
    sqlite3_finalize(st);
    close_db();
    return snap;
}

/* One chunk of the event log, with the stacks and modules its records name, in one
 * transaction: a chunk is readable on its own, even if no snapshot follows (a kill -9). */
/* Event chunks come every second or faster: closing the connection after each would copy
 * the WAL into the database and sync it every time. The WAL is checkpointed once this many
 * bytes of chunks have gone into it since the last checkpoint (and by every snapshot's
 * checkpoint, and at the end). */
#define EVENTS_CHECKPOINT_BYTES (32u << 20)
static uint64_t events_since_checkpoint;

static int write_events_core(const char *path, const struct hw_ev_chunk *c, bool final)
{
    if (events_db && !strcmp(events_path, path)) {
        db = events_db;
        events_db = NULL;
    } else if (open_db(path) < 0) {
        return -1;
    }
    int rc = -1;
    sqlite3_stmt *st = NULL;
    events_since_checkpoint += c->len;
    bool checkpoint = final || events_since_checkpoint >= EVENTS_CHECKPOINT_BYTES;
    if (checkpoint)
        events_since_checkpoint = 0;
    int on;
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, !checkpoint, &on);
    if (to_wal() < 0 || exec("PRAGMA wal_autocheckpoint=0") < 0 || exec("BEGIN IMMEDIATE") < 0)
        goto out;
    int64_t next_snapshot = query_int("SELECT coalesce(max(id), 0) + 1 FROM snapshot");
    st = prepare("INSERT INTO event_chunk(start_ticks, start_ns, end_ticks, end_ns, events, raw_bytes, codec, data)"
                 " VALUES (?,?,?,?,?,?,?,?)");
    if (next_snapshot <= 0 || !st || write_stacks() < 0 || write_modules(next_snapshot) < 0) {
        rollback();
        goto out;
    }
    if (final) {   /* the reader can tell a log that ended with the process from a cut one */
        char sql[128];
        hw_fmt(sql, sizeof sql, "INSERT OR REPLACE INTO meta VALUES ('event_log_end', '%llu')",
               (unsigned long long)c->end_ns);
        if (exec(sql) < 0) {
            rollback();
            goto out;
        }
    }
    if (!c->events) {
        if (exec("COMMIT") < 0)
            goto out;
        rc = 0;
        goto out;
    }
    sqlite3_bind_int64(st, 1, (int64_t)c->start_ticks);
    sqlite3_bind_int64(st, 2, (int64_t)c->start_ns);
    sqlite3_bind_int64(st, 3, (int64_t)c->end_ticks);
    sqlite3_bind_int64(st, 4, (int64_t)c->end_ns);
    sqlite3_bind_int64(st, 5, (int64_t)c->events);
    sqlite3_bind_int64(st, 6, (int64_t)c->raw_bytes);
    sqlite3_bind_int(st, 7, c->codec);
    sqlite3_bind_blob(st, 8, c->data, (int)c->len, SQLITE_STATIC);
    if (step_done(st) < 0 || exec("COMMIT") < 0) {
        rollback();
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    if (rc == 0 && !final && strlen(path) < sizeof events_path) {
        if (checkpoint)   /* PASSIVE: never waits for a reader (a walk child's checkpoint) */
            sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        memcpy(events_path, path, strlen(path) + 1);
        events_db = db;   /* kept for the next chunk */
        db = NULL;
    } else {
        close_db();   /* the last chunk checkpoints as it closes */
    }
    return rc;
}

/* Quiet: the event writer reports a failure itself, once, and ends the log there. */
static int64_t write_events_locked(const char *path, const struct hw_ev_chunk *c, bool final)
{
    bool was_quiet = quiet;
    quiet = true;
    int rc = write_events_core(path, c, final);
    quiet = was_quiet;
    return rc < 0 ? failure() : 0;
}

static int checkpoint_locked(const char *path)
{
    if (in_rollback_mode(path))
        return 0;   /* no WAL to copy: an exit snapshot committed in rollback mode */
    if (open_db(path) < 0)
        return -1;
    /* PASSIVE never waits for a reader; closing the last connection then removes the WAL. */
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && !quiet)
        hw_log("cannot checkpoint '%s': %s", path, sqlite3_errmsg(db));
    close_db();
    return rc == SQLITE_OK ? 0 : -1;
}

/* The process is done with its database: leave WAL mode, so that readers never need (and never
 * leave behind) -wal and -shm files. A reader holding it open keeps it in WAL mode. A file in
 * rollback mode has nothing to leave: it is not opened. */
static int finish_locked(const char *path)
{
    if (in_rollback_mode(path))
        return 0;
    if (open_db(path) < 0)
        return -1;
    /* Every commit into the database file first, synced as any checkpoint (none to copy: no
     * sync); then the switch itself needs no sync, since it changes no data: a power loss
     * before it reaches the disk leaves a database in WAL mode, which readers handle. At
     * synchronous=NORMAL the switch cost three fdatasyncs at every exit. */
    int frames = -1, copied = -2;
    bool all_in = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied) == SQLITE_OK &&
                  frames == copied;   /* else the switch copies the rest, synced as at NORMAL */
    char *err = NULL;
    int rc = sqlite3_exec(db, all_in ? "PRAGMA synchronous=OFF; PRAGMA journal_mode=DELETE" : "PRAGMA journal_mode=DELETE",
                          NULL, NULL, &err);
    sqlite3_free(err);  /* busy: a reader has it; WAL mode stays, which is harmless */
    close_db();
    return rc == SQLITE_OK ? 0 : -1;
}

/* ---- the locked entry points ------------------------------------------------------------ */

int hw_sink_init(void)
{
    hw_sink_lock();
    int rc = init_locked();
    hw_sink_unlock();
    return rc;
}

int hw_sink_create(const char *path, int forked_from, bool quiet_exists)
{
    if (unusable) {
        hw_log("cannot create '%s': this process was forked while another thread of its parent held one of"
               " SQLite's locks for over a second, and may not use SQLite; no snapshots will be written", path);
        return -1;
    }
    hw_sink_lock();
    int rc = create_locked(path, forked_from, quiet_exists);
    hw_sink_unlock();
    return rc;
}

int64_t hw_sink_write(const char *path, struct hw_snapshot_data *d)
{
    if (unusable)
        return -1 - SQLITE_MISUSE;
    hw_sink_lock();
    int64_t id = write_locked(path, d);
    hw_sink_unlock();
    return id;
}

int64_t hw_sink_write_events(const char *path, const struct hw_ev_chunk *c, bool final)
{
    if (unusable)
        return -1 - SQLITE_MISUSE;
    lock_after_urgent();
    int64_t rc = write_events_locked(path, c, final);
    hw_sink_unlock();
    return rc;
}

int hw_sink_checkpoint(const char *path)
{
    if (unusable)
        return -1;
    hw_sink_lock();
    int rc = checkpoint_locked(path);
    hw_sink_unlock();
    return rc;
}

int hw_sink_finish(const char *path)
{
    if (unusable)
        return -1;
    hw_sink_lock();
    int rc = finish_locked(path);
    hw_sink_unlock();
    return rc;
}
