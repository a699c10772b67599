/* This file implements the unit test of what analyzer/heapgraph.h reads for type inference
 * (schema 5): tests/progs/vptrs.cpp (-O0 and -O2) runs under the shim (libheapwatch.so of
 * the top directory), in fork and in inplace snapshot mode, and its snapshot is loaded with
 * heap_graph_load. Checked: every polymorphic object has its vtable pointer, which
 * dv_vtable_class names as its class after the module's load bias is taken off (ns::Derived1,
 * ns::Derived2, ns::Base, and a run of Derived1 side by side); a plain C struct has none, or
 * a candidate that names no class; pointers to a block's start have target offset 0, the
 * interior pointers (from a global and from a block, 16 bytes in) have 16. Then the same
 * database rewritten in schema 4's format (chunks re-encoded without the new fields,
 * user_version 4) loads with the same blocks and pointers, no vtable pointers and offsets 0.
 * Prints TAP.
 *
 * Build and run from the top directory, after `make all` and `make -C tests progs`:
 *   make -C tests units && tests/unit/bin/t-heapgraph
 * The shim and the program are found from this binary's place (tests/unit/bin/../../..).
 * T_HEAPGRAPH_KEEP=1 keeps the temporary directory. */
// LINK: analyzer/heapgraph.c analyzer/db.c analyzer/db_query.c analyzer/usage.c
// LINK: analyzer/symbolize.c analyzer/symbolize_elf.c analyzer/symbolize_dwarf.c
// LINK: analyzer/symbolize_lines.c analyzer/symbolize_vars.c analyzer/symbolize_types.c
// LINK: analyzer/symbolize_typenames.c analyzer/symbolize_locals.c analyzer/symbolize_objsyms.c
// LINK: analyzer/arena.c analyzer/hmap.c
#define _GNU_SOURCE
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../schema/schema.h"
#include "../schema/chunk.h"
#include "db.h"
#include "dwarfvars.h"
#include "harness.h"
#include "fixture.h"
#include "heapgraph.h"
#include "symbolize.h"
#include "usage.h"

#define MAXV 64

static char top[PATH_MAX], work[PATH_MAX];

/* The "kind name value" lines the program printed. */
struct out {
    char key[MAXV][64];
    uint64_t val[MAXV];
    int nr;
};

static uint64_t get(const struct out *o, const char *key)
{
    for (int i = 0; i < o->nr; i++)
        if (!strcmp(o->key[i], key))
            return o->val[i];
    printf("Bail out! the program printed no '%s'\n", key);
    exit(1);
}

static bool run(const char *prog, const char *db, const char *mode, struct out *o)
{
    char *txt = xasprintf("%s/out.txt", work);
    int rc = sh("cd '%s' && env LD_PRELOAD='%s/libheapwatch.so' HEAPWATCH_OUT='%s' HEAPWATCH_SAMPLE_RATE=1"
                " HEAPWATCH_AT_EXIT=0 HEAPWATCH_SNAPSHOT=%s '%s' >'%s'",
                work, top, db, mode, prog, txt);
    FILE *f = fopen(txt, "r");
    char line[256], kind[32], name[32];
    unsigned long long v;
    o->nr = 0;
    bool taken = false;
    while (f && fgets(line, sizeof line, f) && o->nr < MAXV) {
        if (!strncmp(line, "snapshot ", 9)) {
            taken = !strcmp(line, "snapshot 0\n");
            if (!taken)
                diag("the program says: %s", line);
        } else if (sscanf(line, "%31s %31s %llx", kind, name, &v) == 3) {
            snprintf(o->key[o->nr], sizeof o->key[0], "%s %s", kind, name);
            o->val[o->nr++] = v;
        }
    }
    if (!taken)
        rc = -1;
    if (f)
        fclose(f);
    free(txt);
    return rc == 0;
}

/* Block number of the block starting at a, or HG_NONE. */
static uint32_t block(const struct heap_graph *g, uint64_t a)
{
    uint32_t k = hg_block_at(g, a);
    return k != HG_NONE && g->addr[k] == a ? k : HG_NONE;
}

/* The class dv_vtable_class names for block k's vptr, through the module that holds it. */
static const char *class_of(struct symbolizer *s, const struct heap_graph *g, uint32_t m, uint32_t k)
{
    uint64_t v = k == HG_NONE ? 0 : hg_vptr(g, k);
    if (!v || m == HG_NONE)
        return NULL;
    return dv_vtable_class(s, g->modules[m].path, v - g->modules[m].bias);
}

/* The root edge out of the word at runtime address a, or NULL. */
static const struct hg_root_edge *root_edge_at(const struct heap_graph *g, uint64_t a)
{
    for (size_t i = 0; i < g->nr_root_edges; i++) {
        const struct hg_root_edge *e = &g->root_edges[i];
        if (g->roots[e->root].start + e->offset == a)
            return e;
    }
    return NULL;
}

/* The pointer out of block src at byte offset off: its index in edge_target, or -1. */
static long edge_at(const struct heap_graph *g, uint32_t src, uint64_t off)
{
    if (src == HG_NONE)
        return -1;
    for (uint32_t e = g->edge_first[src]; e < g->edge_first[src + 1]; e++)
        if ((uint64_t)g->edge_word[e] * 8 == off)
            return e;
    return -1;
}

static bool streq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

static void check_snapshot(struct symbolizer *s, const char *what, const char *prog, const char *dbpath,
                           const struct out *o)
{
    struct hwdb *db = db_open(dbpath);
    struct heap_graph g;
    CHECK(db->version == HW_SCHEMA_VERSION, "%s: the database is the current schema", what);
    if (!CHECK(heap_graph_load(&g, db, 1), "%s: its snapshot loads as a heap graph", what)) {
        db_close(db);
        return;
    }
    char real[PATH_MAX];
    uint32_t m = HG_NONE;
    if (realpath(prog, real))
        for (uint32_t i = 0; i < g.nr_modules; i++)
            if (!strcmp(g.modules[i].path, real))
                m = i;
    CHECK(m != HG_NONE, "%s: the program is among the modules", what);
    uint32_t d1 = block(&g, get(o, "block g_d1")), d2 = block(&g, get(o, "block g_d2"));
    uint32_t base = block(&g, get(o, "block g_base")), pl = block(&g, get(o, "block g_plain"));
    uint32_t holder = block(&g, get(o, "block g_holder"));
    CHECK(d1 != HG_NONE && d2 != HG_NONE && base != HG_NONE && pl != HG_NONE && holder != HG_NONE,
          "%s: every block the program printed is in the snapshot", what);
    CHECK(g.vptr && d1 != HG_NONE && g.vptr[d1] == get(o, "vptr g_d1"),
          "%s: Derived1's block keeps its first word, the vtable pointer", what);
    CHECK(streq(class_of(s, &g, m, d1), "ns::Derived1"), "%s: its vptr names ns::Derived1 (%s)", what,
          class_of(s, &g, m, d1) ? class_of(s, &g, m, d1) : "none");
    CHECK(streq(class_of(s, &g, m, d2), "ns::Derived2"), "%s: Derived2's names ns::Derived2", what);
    CHECK(streq(class_of(s, &g, m, base), "ns::Base"), "%s: Base's names ns::Base", what);
    bool run_ok = true;
    for (int i = 0; i < 8; i++) {
        char key[32];
        snprintf(key, sizeof key, "block g_run%d", i);
        uint32_t k = block(&g, get(o, key));
        run_ok &= k != HG_NONE && d1 != HG_NONE && hg_vptr(&g, k) == hg_vptr(&g, d1);
    }
    CHECK(run_ok, "%s: eight more Derived1 have the same vptr (the chunk's delta 0)", what);
    CHECK(pl != HG_NONE && holder != HG_NONE && !class_of(s, &g, m, pl) && !class_of(s, &g, m, holder),
          "%s: a plain C struct has no vptr, or one that names no class (vptrs %#llx %#llx)", what,
          pl == HG_NONE ? 0ull : (unsigned long long)hg_vptr(&g, pl),
          holder == HG_NONE ? 0ull : (unsigned long long)hg_vptr(&g, holder));

    const struct hg_root_edge *in = root_edge_at(&g, get(o, "addr g_interior"));
    const struct hg_root_edge *start = root_edge_at(&g, get(o, "addr g_holder"));
    CHECK(in && in->target == holder && in->target_offset == 16,
          "%s: a global holding &obj->member: a root pointer 16 bytes into obj's block (%u)", what,
          in ? in->target_offset : 0);
    CHECK(start && start->target == holder && start->target_offset == 0,
          "%s: a global holding obj: a root pointer with target offset 0", what);
    long next = edge_at(&g, pl, 24), inner = edge_at(&g, pl, 32);
    CHECK(next >= 0 && g.edge_target[next] == holder && hg_edge_toff(&g, (size_t)next) == 0,
          "%s: a block's pointer to another's start: target offset 0", what);
    CHECK(inner >= 0 && g.edge_target[inner] == holder && g.edge_toff && hg_edge_toff(&g, (size_t)inner) == 16,
          "%s: a block's pointer 16 bytes into another: target offset 16", what);
    heap_graph_release(&g);
    db_close(db);
}

/* ---- the same database in schema 4's format ---- */

static void exec(sqlite3 *sql, const char *s)
{
    char *err = NULL;
    if (sqlite3_exec(sql, s, NULL, NULL, &err) != SQLITE_OK) {
        printf("Bail out! %s: %s\n", s, err);
        exit(1);
    }
}

/* Re-encode every chunk of table (object_chunk or edge_chunk) as schema 4 wrote it. */
static bool downgrade_table(sqlite3 *sql, bool objects)
{
    sqlite3_stmt *rd, *wr;
    sqlite3_prepare_v2(sql, objects ? "SELECT rowid, count, data FROM object_chunk" : "SELECT rowid, count, data FROM edge_chunk",
                       -1, &rd, NULL);
    sqlite3_prepare_v2(sql, objects ? "UPDATE object_chunk SET data = ? WHERE rowid = ?"
                                    : "UPDATE edge_chunk SET data = ? WHERE rowid = ?", -1, &wr, NULL);
    bool ok = rd && wr;
    while (ok && sqlite3_step(rd) == SQLITE_ROW) {
        int64_t rowid = sqlite3_column_int64(rd, 0), count = sqlite3_column_int64(rd, 1);
        const uint8_t *p = sqlite3_column_blob(rd, 2), *end = p + sqlite3_column_bytes(rd, 2);
        uint8_t *buf = xmalloc((size_t)count * HW_CHUNK_BLOCK_MAX + 1), *q = buf;
        struct hw_chunk_cursor in = { 0, 0 }, out = { 0, 0 };
        struct hw_chunk_edge_cursor edges_in = { 0, 0, 0 };
        for (int64_t i = 0; ok && i < count; i++) {
            if (objects) {
                struct hw_chunk_block b = { 0 };
                ok = hw_chunk_get_block(&p, end, &in, &b);
                b.vptr = 0;
                q = hw_chunk_put_block(q, &out, &b);
            } else {
                struct hw_chunk_edge e = { 0 };
                ok = hw_chunk_get_edge_at(&p, end, HW_SCHEMA_VERSION, &edges_in, &e);
                q = hw_varint_put(q, 2 * e.source + e.from_root);
                q = hw_varint_put(q, e.offset / 8);
                q = hw_varint_put(q, e.target);
            }
        }
        ok = ok && p == end;
        sqlite3_bind_blob(wr, 1, buf, (int)(q - buf), SQLITE_TRANSIENT);
        sqlite3_bind_int64(wr, 2, rowid);
        ok = ok && sqlite3_step(wr) == SQLITE_DONE;
        sqlite3_reset(wr);
        free(buf);
    }
    sqlite3_finalize(rd);
    sqlite3_finalize(wr);
    return ok;
}

static void check_schema4(const char *what, const char *db5, const char *db4)
{
    sh("cp '%s' '%s'", db5, db4);
    sqlite3 *sql;
    if (sqlite3_open(db4, &sql) != SQLITE_OK) {
        printf("Bail out! cannot open %s\n", db4);
        exit(1);
    }
    exec(sql, "BEGIN");
    bool ok = downgrade_table(sql, true) && downgrade_table(sql, false);
    exec(sql, "UPDATE meta SET value = '4' WHERE key = 'schema_version'; PRAGMA user_version = 4; COMMIT");
    sqlite3_close(sql);
    CHECK(ok, "%s: the snapshot's chunks rewritten in schema 4's format", what);

    struct hwdb *a = db_open(db5), *b = db_open(db4);
    struct heap_graph g5, g4;
    bool l5 = heap_graph_load(&g5, a, 1), l4 = heap_graph_load(&g4, b, 1);
    CHECK(b->version == 4 && l4 && l5, "%s: a schema 4 database loads", what);
    if (!l4 || !l5)
        return;
    bool same = g4.nr_blocks == g5.nr_blocks && g4.nr_edges == g5.nr_edges && g4.nr_root_edges == g5.nr_root_edges;
    for (uint32_t k = 0; same && k < g5.nr_blocks; k++)
        same = g4.addr[k] == g5.addr[k] && g4.size[k] == g5.size[k] && g4.cls[k] == g5.cls[k] &&
               g4.edge_first[k] == g5.edge_first[k];
    for (size_t e = 0; same && e < g5.nr_edges; e++)
        same = g4.edge_target[e] == g5.edge_target[e] && g4.edge_word[e] == g5.edge_word[e];
    bool roots_same = same, zero = true;
    for (size_t e = 0; roots_same && e < g5.nr_root_edges; e++) {
        roots_same = g4.root_edges[e].root == g5.root_edges[e].root && g4.root_edges[e].target == g5.root_edges[e].target &&
                     g4.root_edges[e].offset == g5.root_edges[e].offset;
        zero &= g4.root_edges[e].target_offset == 0;
    }
    CHECK(same && roots_same, "%s: schema 4: the same blocks and pointers, at the same word offsets", what);
    CHECK(!g4.vptr && !g4.edge_toff && zero && g5.vptr && g5.edge_toff,
          "%s: schema 4: no vtable pointers (NULL), target offsets 0 (NULL, and 0 out of roots)", what);
    CHECK(g4.nr_blocks && hg_vptr(&g4, 0) == 0 && (!g4.nr_edges || hg_edge_toff(&g4, 0) == 0),
          "%s: schema 4: hg_vptr and hg_edge_toff read 0", what);
    heap_graph_release(&g5);
    heap_graph_release(&g4);
    db_close(a);
    db_close(b);
}

int main(void)
{
    char exe[PATH_MAX - 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    if (strrchr(exe, '/'))
        *strrchr(exe, '/') = '\0';   /* tests/unit/bin */
    snprintf(top, sizeof top, "%s/../../..", exe);
    char *shim = xasprintf("%s/libheapwatch.so", top);
    if (access(shim, R_OK)) {
        printf("Bail out! %s missing: run make all first\n", shim);
        return 1;
    }
    if (!make_workdir(work, sizeof work, "hw-t-heapgraph"))
        return 1;
    struct symbolizer *s = sym_new();
    static const char *const opts[] = { "O0", "O2" }, *const modes[] = { "fork", "inplace" };
    for (int i = 0; i < 2; i++) {
        char *prog = xasprintf("%s/tests/progs/bin/vptrs-%s", top, opts[i]);
        if (access(prog, X_OK)) {
            printf("Bail out! %s missing: run make -C tests progs first\n", prog);
            return 1;
        }
        for (int j = 0; j < 2; j++) {
            char *what = xasprintf("-%s %s", opts[i], modes[j]);
            char *db = xasprintf("%s/vptrs-%s-%s.db", work, opts[i], modes[j]);
            struct out o;
            if (CHECK(run(prog, db, modes[j], &o), "%s: the program runs under the shim and takes its snapshot", what)) {
                check_snapshot(s, what, prog, db, &o);
                if (j == 0) {
                    char *db4 = xasprintf("%s/vptrs-%s-v4.db", work, opts[i]);
                    check_schema4(what, db, db4);
                    free(db4);
                }
            }
            free(db);
            free(what);
        }
        free(prog);
    }
    sym_free(s);
    free(shim);
    if (!getenv("T_HEAPGRAPH_KEEP"))
        sh("rm -rf '%s'", work);
    else
        diag("kept %s", work);
    return done();
}
