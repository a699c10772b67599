/* This file implements the shim's database writer. It runs guarded, on the helper thread or
 * a thread that asked for a snapshot; the private SQLite is configured to allocate straight
 * from the real allocator, so none of its memory ever shows up in the profile.
 *
 * Durability: WAL with synchronous=NORMAL and one transaction per snapshot, so a snapshot is
 * either whole or absent even if the process is killed mid-write (NOTES-shim.md section 11). */
#define _GNU_SOURCE
#include "sink.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../schema/schema.h"
#include "depot.h"
#include "hw.h"
#include "livetable.h"
#include "options.h"
#include "real.h"

static sqlite3 *db;
static uint32_t stacks_written;
static int64_t snapshots_written;

/* Modules already in the database, by (load bias, path hash). */
struct known_module {
    uintptr_t bias;
    uint64_t path_hash;
};
static struct hw_vec known_modules = { .elem = sizeof(struct known_module) };

/* ---- private SQLite memory: the real allocator, bypassing our hooks ----------------------- */

static void *sq_malloc(int n) { return hw_real.malloc((size_t)n); }
static void sq_free(void *p) { hw_real.free(p); }
static void *sq_realloc(void *p, int n) { return hw_real.realloc(p, (size_t)n); }
static int sq_size(void *p) { return p && hw_real.malloc_usable_size ? (int)hw_real.malloc_usable_size(p) : 0; }
static int sq_roundup(int n) { return (n + 15) & ~15; }
static int sq_init(void *unused) { (void)unused; return SQLITE_OK; }
static void sq_shutdown(void *unused) { (void)unused; }

static int sqlite_setup(void)
{
    static bool done;
    if (done)
        return 0;
    static const sqlite3_mem_methods methods = {
        sq_malloc, sq_free, sq_realloc, sq_size, sq_roundup, sq_init, sq_shutdown, NULL
    };
    if (hw_real.malloc_usable_size)
        sqlite3_config(SQLITE_CONFIG_MALLOC, &methods);
    /* Our one connection is only used under snapshot.c's lock: SQLite's own mutexes would
     * only cost time (they showed as 6% of a full-mode run's exit snapshot). */
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    if (sqlite3_initialize() != SQLITE_OK)
        return -1;
    done = true;
    return 0;
}

static int exec(const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        hw_log("database error: %s", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *prepare(const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        hw_log("database error: %s", sqlite3_errmsg(db));
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
        hw_log("database error: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* ---- process and modules ------------------------------------------------------------------ */

static size_t read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    return n;
}

static int write_process(int forked_from)
{
    char exe[PATH_MAX] = "", cmd[8192], settings[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    size_t len = read_file("/proc/self/cmdline", cmd, sizeof cmd);
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
    sqlite3_bind_int64(st, 6, (int64_t)hw_sample_rate);
    sqlite3_bind_text(st, 7, settings, -1, SQLITE_TRANSIENT);
    if (forked_from)
        sqlite3_bind_int(st, 8, forked_from);
    int rc = step_done(st);
    sqlite3_finalize(st);
    return rc;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static void build_id_hex(const struct dl_phdr_info *info, char *out, size_t size)
{
    out[0] = '\0';
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *nh;
            const unsigned char *desc = (const unsigned char *)name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
                size_t n = 0;
                for (unsigned k = 0; k < nh->n_descsz && n + 3 <= size; k++)
                    n += (size_t)snprintf(out + n, size - n, "%02x", desc[k]);
                return;
            }
            p = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
}

struct module_ctx {
    sqlite3_stmt *mod, *seg;
    int64_t snapshot;  /* 0 = at start */
    int rc;
};

static int module_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct module_ctx *c = arg;
    char path[PATH_MAX], bid[128];
    const char *name = info->dlpi_name;
    if (!name || !*name) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        path[n > 0 ? n : 0] = '\0';
    } else if (strstr(name, "linux-vdso") || strstr(name, "linux-gate")) {
        snprintf(path, sizeof path, "[vdso]");
    } else {
        snprintf(path, sizeof path, "%s", name);
    }
    uint64_t ph = hash_str(path);
    struct known_module *km = (struct known_module *)known_modules.data;
    for (size_t i = 0; i < known_modules.nr; i++)
        if (km[i].bias == info->dlpi_addr && km[i].path_hash == ph)
            return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_LOAD && (p->p_flags & PF_X)) {
            uintptr_t s = info->dlpi_addr + p->p_vaddr, e = s + p->p_memsz;
            lo = s < lo ? s : lo;
            hi = e > hi ? e : hi;
        }
    }
    if (!hi)
        return 0;  /* no code: nothing to symbolize */
    build_id_hex(info, bid, sizeof bid);
    sqlite3_bind_text(c->mod, 1, path, -1, SQLITE_TRANSIENT);
    if (bid[0])
        sqlite3_bind_text(c->mod, 2, bid, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(c->mod, 2);
    sqlite3_bind_int64(c->mod, 3, (int64_t)info->dlpi_addr);
    sqlite3_bind_int64(c->mod, 4, (int64_t)lo);
    sqlite3_bind_int64(c->mod, 5, (int64_t)hi);
    if (c->snapshot)
        sqlite3_bind_int64(c->mod, 6, c->snapshot);
    else
        sqlite3_bind_null(c->mod, 6);
    if (step_done(c->mod) < 0) {
        c->rc = -1;
        return 1;
    }
    sqlite3_clear_bindings(c->mod);
    int64_t id = sqlite3_last_insert_rowid(db);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD)
            continue;
        sqlite3_bind_int64(c->seg, 1, id);
        sqlite3_bind_int64(c->seg, 2, (int64_t)(info->dlpi_addr + p->p_vaddr));
        sqlite3_bind_int64(c->seg, 3, (int64_t)(info->dlpi_addr + p->p_vaddr + p->p_memsz));
        sqlite3_bind_int(c->seg, 4, (int)(((p->p_flags & PF_R) ? 4 : 0) | ((p->p_flags & PF_W) ? 2 : 0) |
                                          ((p->p_flags & PF_X) ? 1 : 0)));
        if (step_done(c->seg) < 0) {
            c->rc = -1;
            return 1;
        }
    }
    struct known_module *slot = hw_vec_push(&known_modules);
    if (slot) {
        slot->bias = info->dlpi_addr;
        slot->path_hash = ph;
    }
    return 0;
}

/* Record modules not yet in the database; inside the caller's transaction. */
static int write_modules(int64_t snapshot)
{
    struct module_ctx c = { 0 };
    c.snapshot = snapshot;
    c.mod = prepare("INSERT INTO module(path, build_id, load_bias, text_start, text_end, first_snapshot)"
                    " VALUES (?,?,?,?,?,?)");
    c.seg = prepare("INSERT INTO module_segment(module_id, start, end, flags) VALUES (?,?,?,?)");
    if (c.mod && c.seg)
        dl_iterate_phdr(module_cb, &c);
    else
        c.rc = -1;
    sqlite3_finalize(c.mod);
    sqlite3_finalize(c.seg);
    return c.rc;
}

/* ---- open / write / close ----------------------------------------------------------------- */

int hw_sink_open(const char *path, int forked_from, bool quiet_exists)
{
    if (sqlite_setup() < 0) {
        hw_log("cannot initialise SQLite; no snapshots will be written");
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && !quiet_exists)
        return -2;
    if (fd < 0) {
        hw_log("cannot create '%s': %s; no snapshots will be written", path, strerror(errno));
        return -1;
    }
    close(fd);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
        hw_log("cannot open '%s': %s; no snapshots will be written", path, db ? sqlite3_errmsg(db) : "out of memory");
        goto out_close;
    }
    sqlite3_busy_timeout(db, 5000);
    char meta[512];
    snprintf(meta, sizeof meta,
             "INSERT INTO meta VALUES ('format','%s'),('schema_version','%d'),('heapwatch_version','%s');"
             "PRAGMA user_version=%d;",
             HW_DB_FORMAT, HW_SCHEMA_VERSION, HW_VERSION, HW_SCHEMA_VERSION);
    if (exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384; BEGIN") < 0)
        goto out_close;
    if (exec(hw_schema_sql) < 0 || exec(meta) < 0 || write_process(forked_from) < 0 || write_modules(0) < 0) {
        exec("ROLLBACK");
        goto out_close;
    }
    if (exec("COMMIT") < 0)
        goto out_close;
    stacks_written = 0;
    snapshots_written = 0;
    return 0;
out_close:
    sqlite3_close(db);
    db = NULL;
    return -1;
}

bool hw_sink_is_open(void) { return db != NULL; }

/* Write stack-tree nodes interned since the last commit, up to *upto (set here). */
static int write_stacks(uint32_t *upto)
{
    uint32_t n = *upto = hw_depot_count();
    if (n <= stacks_written)
        return 0;
    sqlite3_stmt *st = prepare("INSERT INTO stack(id, parent, pc) VALUES (?,?,?)");
    if (!st)
        return -1;
    for (uint32_t id = stacks_written + 1; id <= n; id++) {
        uintptr_t pc;
        uint32_t parent;
        hw_depot_node(id, &pc, &parent);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, parent);
        sqlite3_bind_int64(st, 3, (int64_t)pc);
        if (step_done(st) < 0) {
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

static int write_counters(int64_t snap, const struct hw_vec *rows)
{
    sqlite3_stmt *st = prepare("INSERT INTO snapshot_stack VALUES (?,?,?,?,?,?,?,?)");
    if (!st)
        return -1;
    const struct hw_stack_row *r = (const struct hw_stack_row *)rows->data;
    int rc = 0;
    for (size_t i = 0; i < rows->nr && !rc; i++) {
        sqlite3_bind_int64(st, 1, snap);
        sqlite3_bind_int64(st, 2, r[i].id);
        sqlite3_bind_int64(st, 3, (int64_t)((r[i].alloc_weight + HW_WEIGHT_ONE / 2) / HW_WEIGHT_ONE));
        sqlite3_bind_int64(st, 4, (int64_t)r[i].alloc_bytes);
        sqlite3_bind_int64(st, 5, (int64_t)((r[i].free_weight + HW_WEIGHT_ONE / 2) / HW_WEIGHT_ONE));
        sqlite3_bind_int64(st, 6, (int64_t)r[i].free_bytes);
        sqlite3_bind_int64(st, 7, (int64_t)r[i].alloc_samples);
        sqlite3_bind_int64(st, 8, (int64_t)r[i].free_samples);
        rc = step_done(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int write_shard(sqlite3_stmt *st, int64_t snap, struct hw_snapshot_data *d);

/* Stream the live table into the object table one shard at a time, counting as it goes. */
static int write_objects(int64_t snap, struct hw_snapshot_data *d)
{
    sqlite3_stmt *st = prepare("INSERT INTO object(snapshot_id, address, size, stack_id, seq, tid)"
                               " VALUES (?,?,?,?,?,?)");
    if (!st)
        return -1;
    int rc = 0;
    d->live_objects = d->live_bytes = 0;
    for (unsigned k = 0; k < hw_livetable_shards() && !rc; k++) {
        hw_vec_clear(&d->objects);
        if (!hw_livetable_copy_shard(k, &d->objects)) {
            hw_log("out of memory copying the live table; snapshot abandoned");
            rc = -1;
            break;
        }
        rc = write_shard(st, snap, d);
    }
    sqlite3_finalize(st);
    return rc;
}

static int write_shard(sqlite3_stmt *st, int64_t snap, struct hw_snapshot_data *d)
{
    const struct hw_live_entry *e = (const struct hw_live_entry *)d->objects.data;
    int rc = 0;
    for (size_t i = 0; i < d->objects.nr && !rc; i++) {
        d->live_objects++;
        d->live_bytes += e[i].size;
        sqlite3_bind_int64(st, 1, snap);
        sqlite3_bind_int64(st, 2, (int64_t)e[i].addr);
        sqlite3_bind_int64(st, 3, (int64_t)e[i].size);
        sqlite3_bind_int64(st, 4, e[i].stack);
        sqlite3_bind_int64(st, 5, e[i].seq);
        sqlite3_bind_int(st, 6, hw_thread_tid((uint32_t)e[i].thread));
        rc = step_done(st);
    }
    return rc;
}

int64_t hw_sink_write(struct hw_snapshot_data *d)
{
    if (!db)
        return -1;
    uint64_t t0 = hw_now_ns(CLOCK_MONOTONIC);
    int64_t snap = snapshots_written + 1;
    if (exec("BEGIN") < 0)
        return -1;
    sqlite3_stmt *st = prepare("INSERT INTO snapshot(id, time_ns, label, trigger, threads, live_objects,"
                               " live_bytes, pause_ns, walk_ns, write_ns, mode, threads_unstopped)"
                               " VALUES (?,?,?,?,?,?,?,?,?,?,'counters',0)");
    uint32_t upto = stacks_written;
    if (!st || write_stacks(&upto) < 0 || write_modules(snap) < 0 || write_counters(snap, &d->stacks) < 0 ||
        (d->with_objects && write_objects(snap, d) < 0))
        goto out_rollback;
    sqlite3_bind_int64(st, 1, snap);
    sqlite3_bind_int64(st, 2, (int64_t)d->time_ns);
    if (d->label[0])
        sqlite3_bind_text(st, 3, d->label, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->trigger, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, d->threads);
    sqlite3_bind_int64(st, 6, (int64_t)d->live_objects);
    sqlite3_bind_int64(st, 7, (int64_t)d->live_bytes);
    sqlite3_bind_int64(st, 8, (int64_t)d->pause_ns);
    sqlite3_bind_int64(st, 9, (int64_t)d->walk_ns);
    sqlite3_bind_int64(st, 10, (int64_t)(hw_now_ns(CLOCK_MONOTONIC) - t0));
    if (step_done(st) < 0)
        goto out_rollback;
    sqlite3_finalize(st);
    if (exec("COMMIT") < 0)
        goto out_rollback_nostmt;
    stacks_written = upto;
    snapshots_written = snap;
    return snap;
out_rollback:
    sqlite3_finalize(st);
out_rollback_nostmt:
    exec("ROLLBACK");
    return -1;
}

void hw_sink_close(void)
{
    if (!db)
        return;
    sqlite3_close(db);
    db = NULL;
}

void hw_sink_abandon(void)
{
    db = NULL;
    hw_vec_release(&known_modules);
    stacks_written = 0;
}
