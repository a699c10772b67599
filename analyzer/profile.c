/* This file implements loading one snapshot into the report model: the per-stack counters
 * of that snapshot joined with their stacks, each PC resolved through the symcache. Leading
 * frames of allocator wrappers (strdup, operator new of a library, libc internals) are dropped,
 * as pprof's heap profiles drop runtime.malloc frames, so a row names the code that asked. */
#define _GNU_SOURCE
#include "profile.h"

#include <stdlib.h>
#include <string.h>
#include "usage.h"

/* Functions that only pass an allocation on: a stack starting in them is charged to its caller. */
static bool is_allocator_frame(const char *fn)
{
    /* glibc's internal aliases (__GI___strdup, __strdup) name the same functions. */
    if (!strncmp(fn, "__GI_", 5))
        fn += 5;
    while (fn[0] == '_' && fn[1] == '_' && strncmp(fn, "__libc_", 7))
        fn += 2;
    static const char *const exact[] = {
        "malloc", "calloc", "realloc", "reallocarray", "free", "memalign", "aligned_alloc",
        "posix_memalign", "valloc", "pvalloc", "strdup", "strndup", "__strdup", "__strndup",
        "wcsdup", "asprintf", "vasprintf", "__asprintf", "__vasprintf", "__vasprintf_internal",
        "__asprintf_chk", "__vasprintf_chk", "open_memstream", "getline", "getdelim", "__getdelim",
        "realpath", "__realpath", "tempnam", "get_current_dir_name",
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (!strcmp(fn, exact[i]))
            return true;
    return !strncmp(fn, "operator new", 12) || !strncmp(fn, "__libc_", 7) || !strncmp(fn, "_int_", 5);
}

static void add_sample(struct profile *p, int64_t stack_id, const int64_t v[NV])
{
    const struct stack_tree *t = db_stack_tree(p->db, (uint64_t)stack_id);
    struct location *locs[256];
    int depth = 0;
    for (uint64_t id = (uint64_t)stack_id; id && depth < 256; id = t->parent[id])
        locs[depth++] = symcache_location(p->sc, t->pc[id]);
    int skip = 0;
    while (skip + 1 < depth && is_allocator_frame(locs[skip]->frames[locs[skip]->nframes - 1].function))
        skip++;
    ALLOC_GROW(p->samples, p->nr + 1, p->alloc);
    struct sample *s = &p->samples[p->nr++];
    s->stack_id = stack_id;
    s->depth = depth - skip;
    s->locs = xmalloc((size_t)(s->depth ? s->depth : 1) * sizeof *s->locs);
    memcpy(s->locs, locs + skip, (size_t)s->depth * sizeof *s->locs);
    memcpy(s->v, v, sizeof s->v);
    for (int i = 0; i < NV; i++)
        p->total[i] += v[i];
}

void profile_load(struct profile *p, struct hwdb *db, struct symcache *sc, int64_t snap)
{
    memset(p, 0, sizeof *p);
    p->db = db;
    p->sc = sc;
    p->snapshot = snap;
    p->sample_rate = db->sample_rate;
    sqlite3_stmt *st = db_prepare(db, "SELECT time_ns, coalesce(label, ''), trigger FROM snapshot WHERE id = ?");
    sqlite3_bind_int64(st, 1, snap);
    if (!db_step(db, st))
        die(EXIT_INPUT, "no snapshot %lld in '%s'", (long long)snap, db->path);
    p->time_ns = sqlite3_column_int64(st, 0);
    p->label = xstrdup((const char *)sqlite3_column_text(st, 1));
    p->trigger = xstrdup((const char *)sqlite3_column_text(st, 2));
    sqlite3_finalize(st);
    st = db_prepare(db, "SELECT stack_id, alloc_objects, alloc_bytes, alloc_objects - free_objects,"
                        " alloc_bytes - free_bytes FROM snapshot_stack WHERE snapshot_id = ? ORDER BY stack_id");
    sqlite3_bind_int64(st, 1, snap);
    while (db_step(db, st)) {
        int64_t v[NV];
        for (int i = 0; i < NV; i++)
            v[i] = sqlite3_column_int64(st, 1 + i);
        int64_t stack = sqlite3_column_int64(st, 0);
        if (stack <= 0)
            die(EXIT_INPUT, "cannot read '%s': bad stack id %lld (corrupt database)", db->path, (long long)stack);
        add_sample(p, stack, v);
    }
    sqlite3_finalize(st);
}

void profile_release(struct profile *p)
{
    for (size_t i = 0; i < p->nr; i++)
        free(p->samples[i].locs);
    free(p->samples);
    free(p->label);
    free(p->trigger);
    memset(p, 0, sizeof *p);
}
