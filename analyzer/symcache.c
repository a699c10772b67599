/* This file implements symbolization for one database: runtime PCs are mapped to their module
 * (module table), turned into link-time addresses (pc - load_bias - 1: every stored PC is a
 * return address) and resolved with symbolize.c. Results are kept per PC and, when the
 * database is writable, stored in the cache_frame_v2 table so the next report starts warm.
 * The cache is the analyzer's own and may be dropped at any time. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "profile.h"
#include "symcache.h"
#include "symbolize.h"
#include "usage.h"

#define MAX_INLINE 32

struct symcache {
    struct hwdb *db;
    struct symbolizer *sym;
    struct strpool strings;
    struct module_info *mods;   /* sorted by start */
    size_t nr_mods, alloc_mods;
    struct hmap by_pc;          /* pc -> struct location */
    struct location **locs;
    size_t nr_locs, alloc_locs;
    size_t first_new;           /* locations from here on are not in cache_frame_v2 yet */
    const char *missing_debug;  /* a module without debug info, for one warning */
    struct hmap no_debug;       /* pc -> that module, for locations resolved here (not cached) */
};

static int cmp_module(const void *a, const void *b)
{
    const struct module_info *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int take_module(void *ctx, const struct db_module *row)
{
    struct symcache *sc = ctx;
    ALLOC_GROW(sc->mods, sc->nr_mods + 1, sc->alloc_mods);
    struct module_info *m = &sc->mods[sc->nr_mods++];
    m->id = row->id;
    m->path = strpool_intern(&sc->strings, row->path);
    m->build_id = strpool_intern(&sc->strings, row->build_id);
    m->bias = row->bias;
    m->start = row->start;
    m->end = row->end;
    m->load_seq = row->load_seq;
    return 0;
}

static void load_modules(struct symcache *sc)
{
    if (db_each_module(sc->db, take_module, sc) < 0)
        exit(EXIT_INPUT);
    if (sc->nr_mods)
        qsort(sc->mods, sc->nr_mods, sizeof *sc->mods, cmp_module);
}

/* System libraries rarely have debug info installed: only the program's own modules are worth
 * a "no debug information" warning. */
static bool worth_debug_warning(const struct module_info *m)
{
    return m && strcmp(m->path, "[vdso]") && strncmp(m->path, "/lib", 4) && strncmp(m->path, "/usr/lib", 8);
}

static struct module_info *module_of(struct symcache *sc, uint64_t pc)
{
    size_t lo = 0, hi = sc->nr_mods;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sc->mods[mid].start <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Of the modules whose range holds pc (several, when libraries were unloaded and others
     * loaded where they were), the one loaded last: a pc is resolved once, for every stack
     * (cache_frame_v2 is keyed by pc), so frames of an unloaded library whose range another
     * took later read as the later one's. */
    struct module_info *best = NULL;
    for (size_t i = lo; i-- > 0;)
        if (pc < sc->mods[i].end && (!best || sc->mods[i].load_seq > best->load_seq))
            best = &sc->mods[i];
    return best;
}

static struct location *new_location(struct symcache *sc, uint64_t pc, int nframes)
{
    struct location *l = xcalloc(1, sizeof *l);
    l->pc = pc;
    l->nframes = nframes;
    l->frames = xcalloc((size_t)nframes, sizeof *l->frames);
    ALLOC_GROW(sc->locs, sc->nr_locs + 1, sc->alloc_locs);
    sc->locs[sc->nr_locs++] = l;
    l->id = (uint32_t)sc->nr_locs;
    hmap_put(&sc->by_pc, pc, l);
    return l;
}

/* Cached rows come ordered by (pc, idx); consecutive rows of one pc form one location. */
struct cache_reader {
    struct symcache *sc;
    struct frame tmp[MAX_INLINE];
    int n;
    uint64_t cur;
    bool have;
};

/* The location gathered so far, if any, as a location of the cache. */
static void flush_cached(struct cache_reader *r)
{
    if (!r->have)
        return;
    struct location *l = new_location(r->sc, r->cur, r->n);
    l->module = module_of(r->sc, r->cur);
    memcpy(l->frames, r->tmp, (size_t)r->n * sizeof *r->tmp);
    r->n = 0;
    r->have = false;
}

static int take_cached_frame(void *ctx, uint64_t pc, const char *function, const char *file, int line)
{
    struct cache_reader *r = ctx;
    struct symcache *sc = r->sc;
    if (r->have && pc != r->cur)
        flush_cached(r);
    r->cur = pc;
    r->have = true;
    if (r->n < MAX_INLINE) {
        struct frame *f = &r->tmp[r->n++];
        f->function = strpool_intern(&sc->strings, function ? function : "??");
        f->file = strpool_intern(&sc->strings, file);
        f->line = line;
    }
    return 0;
}

static void load_cache(struct symcache *sc)
{
    struct cache_reader r = { .sc = sc };
    if (db_each_cached_frame(sc->db, take_cached_frame, &r) < 0)
        exit(EXIT_INPUT);
    flush_cached(&r);
    sc->first_new = sc->nr_locs;
}

struct symcache *symcache_open(struct hwdb *db)
{
    struct symcache *sc = xcalloc(1, sizeof *sc);
    sc->db = db;
    sc->sym = sym_new();
    load_modules(sc);
    load_cache(sc);
    return sc;
}

struct location *symcache_location(struct symcache *sc, uint64_t pc)
{
    struct location *l = hmap_get(&sc->by_pc, pc);
    if (l) {
        /* Only after symcache_forget_missing_debug: resolving l set missing_debug already. */
        if (!sc->missing_debug)
            sc->missing_debug = hmap_get(&sc->no_debug, pc);
        return l;
    }
    struct module_info *m = module_of(sc, pc);
    struct sym_frame out[MAX_INLINE];
    const char *no_debug = NULL;
    int n = -1;
    if (m && strcmp(m->path, "[vdso]"))
        n = sym_lookup(sc->sym, m->path, m->build_id, pc - m->bias - 1, out, MAX_INLINE);
    if (n == 1 && !out[0].file && (!out[0].function || !strcmp(out[0].function, "??")))
        n = 0;
    if (n < 1) {
        /* Unknown: name it after its module and offset, as pprof does. */
        char name[512];
        if (m) {
            const char *base = strrchr(m->path, '/');
            snprintf(name, sizeof name, "%s+0x%llx", base ? base + 1 : m->path, (unsigned long long)(pc - m->bias));
        } else {
            snprintf(name, sizeof name, "0x%llx", (unsigned long long)pc);
        }
        l = new_location(sc, pc, 1);
        l->frames[0].function = strpool_intern(&sc->strings, name);
        if (worth_debug_warning(m))
            no_debug = m->path;
    } else {
        l = new_location(sc, pc, n);
        for (int i = 0; i < n; i++) {
            const char *fn = out[i].function ? out[i].function : "??";
            if (!strncmp(fn, "__GI_", 5) && fn[5])
                fn += 5;  /* glibc's internal alias of a public function */
            l->frames[i].function = strpool_intern(&sc->strings, fn);
            l->frames[i].file = strpool_intern(&sc->strings, out[i].file);
            l->frames[i].line = out[i].line;
        }
        if (worth_debug_warning(m) && !out[0].file && !sym_has_debug_info(sc->sym, m->path))
            no_debug = m->path;
    }
    l->module = m;
    if (no_debug) {
        hmap_put(&sc->no_debug, pc, (void *)no_debug);
        if (!sc->missing_debug)
            sc->missing_debug = no_debug;
    }
    return l;
}

bool symcache_missing_debug(struct symcache *sc, const char **example)
{
    *example = sc->missing_debug;
    return sc->missing_debug != NULL;
}

void symcache_forget_missing_debug(struct symcache *sc)
{
    sc->missing_debug = NULL;
}

static void store_cache(struct symcache *sc)
{
    if (sc->first_new == sc->nr_locs)
        return;
    struct db_cache_writer *w = db_cache_begin(sc->db);
    if (!w)
        return;   /* read-only, or the traced process is writing: the cache can wait */
    for (size_t i = sc->first_new; i < sc->nr_locs; i++) {
        const struct location *l = sc->locs[i];
        for (int k = 0; k < l->nframes; k++)
            db_cache_put(w, l->pc, k, l->frames[k].function, l->frames[k].file, l->frames[k].line);
    }
    db_cache_commit(w);
}

void symcache_close(struct symcache *sc)
{
    if (!sc)
        return;
    store_cache(sc);
    for (size_t i = 0; i < sc->nr_locs; i++) {
        free(sc->locs[i]->frames);
        free(sc->locs[i]);
    }
    free(sc->locs);
    free(sc->mods);
    hmap_clear(&sc->by_pc);
    hmap_clear(&sc->no_debug);
    strpool_clear(&sc->strings);
    sym_free(sc->sym);
    free(sc);
}
