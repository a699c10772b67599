/* This file implements loading one snapshot into the report model: the per-stack counters
 * of that snapshot joined with their stacks, each PC resolved through the symcache, plus the
 * unreachable objects of a marked snapshot counted per stack. Leading frames of allocator
 * wrappers (strdup, operator new of a library, libc internals) are dropped, as pprof's heap
 * profiles drop runtime.malloc frames, so a row names the code that asked. */
#define _GNU_SOURCE
#include "profile.h"

#include <stdlib.h>
#include <string.h>
#include "eventlog.h"
#include "symcache.h"
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

int profile_wrapper_frames(struct location *const *locs, int depth)
{
    int skip = 0;
    while (skip + 1 < depth && is_allocator_frame(locs[skip]->frames[locs[skip]->nframes - 1].function))
        skip++;
    return skip;
}

int profile_stack(struct hwdb *db, struct symcache *sc, int64_t stack_id, struct location **out, int max)
{
    if (stack_id <= 0)
        return 0;
    const struct stack_tree *t = db_stack_tree(db, (uint64_t)stack_id);
    int depth = 0;
    for (uint64_t id = (uint64_t)stack_id; id && depth < max; id = t->parent[id])
        out[depth++] = symcache_location(sc, t->pc[id]);
    return depth;
}

/* The one location of the unsampled objects' pseudo-sample: no module, no address. */
static struct frame unsampled_frame = { "(unsampled)", NULL, 0 };
static struct location unsampled_location = { .nframes = 1, .frames = &unsampled_frame };

/* *dst += v, or one message and exit 3 if the sum does not fit (a crafted database). */
static void add_checked(const struct profile *p, int64_t *dst, int64_t v)
{
    if (__builtin_add_overflow(*dst, v, dst))
        die(EXIT_INPUT, "cannot read '%s': snapshot %lld's totals do not fit in 64 bits (corrupt database)",
            p->db->path, (long long)p->snapshot);
}

static void add_sample(struct profile *p, int64_t stack_id, const int64_t v[NV])
{
    struct location *locs[PROFILE_MAX_DEPTH];
    int depth = profile_stack(p->db, p->sc, stack_id, locs, PROFILE_MAX_DEPTH);
    if (!stack_id) {
        locs[0] = &unsampled_location;
        depth = 1;
    }
    int skip = profile_wrapper_frames(locs, depth);
    ALLOC_GROW(p->samples, p->nr + 1, p->alloc);
    struct sample *s = &p->samples[p->nr++];
    s->stack_id = stack_id;
    s->depth = depth - skip;
    s->locs = xmalloc((size_t)(s->depth ? s->depth : 1) * sizeof *s->locs);
    memcpy(s->locs, locs + skip, (size_t)s->depth * sizeof *s->locs);
    memcpy(s->v, v, sizeof s->v);
    for (int i = 0; i < NV; i++)
        add_checked(p, &p->total[i], v[i]);
}

static int cmp_stack_id(const void *a, const void *b)
{
    const struct sample *x = a, *y = b;
    return (x->stack_id > y->stack_id) - (x->stack_id < y->stack_id);
}

/* The sample of stack_id among the first nr (sorted by stack id), or NULL. */
static struct sample *find_sample(struct profile *p, size_t nr, int64_t stack_id)
{
    struct sample key = { .stack_id = stack_id };
    return nr ? bsearch(&key, p->samples, nr, sizeof *p->samples, cmp_stack_id) : NULL;
}

/* Unreachable objects per stack, into the leaked values. Skipped when the snapshot's own
 * totals say there are none: the scan reads every object row of the snapshot. */
struct leaks_ctx {
    struct profile *p;
    size_t sampled;   /* samples from the counters, sorted by stack id */
};

static int add_leaked_stack(void *ctx, const struct db_object_group *g)
{
    struct leaks_ctx *c = ctx;
    struct profile *p = c->p;
    int64_t v[NV] = { 0 };
    v[V_LEAKED_OBJECTS] = g->objects;
    v[V_LEAKED_SPACE] = g->bytes;
    if (g->stack < 0)
        die(EXIT_INPUT, "cannot read '%s': bad stack id %lld (corrupt database)", p->db->path, (long long)g->stack);
    struct sample *s = find_sample(p, c->sampled, g->stack);
    if (!s) {
        add_sample(p, g->stack, v);
        return 0;
    }
    add_checked(p, &s->v[V_LEAKED_OBJECTS], v[V_LEAKED_OBJECTS]);
    add_checked(p, &s->v[V_LEAKED_SPACE], v[V_LEAKED_SPACE]);
    add_checked(p, &p->total[V_LEAKED_OBJECTS], v[V_LEAKED_OBJECTS]);
    add_checked(p, &p->total[V_LEAKED_SPACE], v[V_LEAKED_SPACE]);
    return 0;
}

static void load_leaks(struct profile *p, const struct snapshot_info *si)
{
    if (!si->marked || si->leaked_objects + si->indirect_objects == 0)
        return;
    struct leaks_ctx c = { p, p->nr };
    if (db_each_leaked_stack(p->db, p->snapshot, add_leaked_stack, &c) < 0)
        exit(EXIT_INPUT);
    if (p->nr)
        qsort(p->samples, p->nr, sizeof *p->samples, cmp_stack_id);
}

/* One snapshot_stack row as a sample; the leaked values come from load_leaks. */
static int add_counters(void *ctx, const struct db_counters *r)
{
    struct profile *p = ctx;
    int64_t v[NV] = { 0 };
    v[V_ALLOC_OBJECTS] = r->alloc_objects;
    v[V_ALLOC_SPACE] = r->alloc_bytes;
    v[V_INUSE_OBJECTS] = r->inuse_objects;
    v[V_INUSE_SPACE] = r->inuse_bytes;
    if (r->stack <= 0)
        die(EXIT_INPUT, "cannot read '%s': bad stack id %lld (corrupt database)", p->db->path, (long long)r->stack);
    for (int i = V_ALLOC_OBJECTS; i <= V_INUSE_SPACE; i++)
        if (v[i] < 0)   /* the shim reads frees before allocations: never negative */
            die(EXIT_INPUT, "cannot read '%s': negative counters for stack %lld in snapshot %lld (corrupt database)",
                p->db->path, (long long)r->stack, (long long)p->snapshot);
    add_sample(p, r->stack, v);
    return 0;
}

void profile_load(struct profile *p, struct hwdb *db, struct symcache *sc, int64_t snap)
{
    memset(p, 0, sizeof *p);
    p->db = db;
    p->sc = sc;
    p->snapshot = snap;
    p->sample_rate = db->sample_rate;
    struct snapshot_info si;
    if (!db_snapshot_info(db, snap, &si))
        die(EXIT_INPUT, "no snapshot %lld in '%s'", (long long)snap, db->path);
    p->time_ns = si.time_ns;
    p->label = xstrdup(si.label ? si.label : "");
    p->trigger = xstrdup(si.trigger);
    p->mode = xstrdup(si.mode);
    p->marked = si.marked;
    if (db_each_stack_counters(db, snap, add_counters, p) < 0)
        exit(EXIT_INPUT);
    /* load_leaks looks samples up by stack id. */
    for (size_t i = 1; i < p->nr; i++)
        if (p->samples[i - 1].stack_id > p->samples[i].stack_id) {
            qsort(p->samples, p->nr, sizeof *p->samples, cmp_stack_id);
            break;
        }
    load_leaks(p, &si);
    snapshot_info_release(&si);
}

void profile_add_values(struct profile *p, size_t sorted, int64_t stack_id, const int64_t v[NV])
{
    struct sample *s = find_sample(p, sorted, stack_id);
    if (!s) {
        add_sample(p, stack_id, v);
        return;
    }
    for (int i = 0; i < NV; i++) {
        add_checked(p, &s->v[i], v[i]);
        add_checked(p, &p->total[i], v[i]);
    }
}

void profile_sort(struct profile *p)
{
    if (p->nr)
        qsort(p->samples, p->nr, sizeof *p->samples, cmp_stack_id);
}

void profile_require_index(const struct profile *p, int index)
{
    if (VALUE_NEEDS_EVENTS(index) && !p->temporaries)
        ev_no_log(p->db, value_names[index]);
    if (!VALUE_NEEDS_WALK(index) || p->marked)
        return;
    struct snapshot_info si;
    if (!db_snapshot_info(p->db, p->snapshot, &si))
        die(EXIT_INPUT, "no snapshot %lld in '%s'", (long long)p->snapshot, p->db->path);
    db_require_heap_walk(p->db, &si);
    snapshot_info_release(&si);
}

void profile_release(struct profile *p)
{
    for (size_t i = 0; i < p->nr; i++)
        free(p->samples[i].locs);
    free(p->samples);
    free(p->label);
    free(p->trigger);
    free(p->mode);
    memset(p, 0, sizeof *p);
}
