/* symbolize.c: link-time address -> function, file, line and inline chain.
 *
 * This file implements the analyzer's symbolizer (symbolize.h): the cache of modules and the
 * lookup. Each ELF file asked about becomes one struct sym_module, read completely on first
 * lookup (symbolize_elf.c, then symbolize_lines.c when it has DWARF) and kept until sym_free;
 * lookups are binary searches over the arrays built at that point. Modules opened first for
 * their variables (dwarfvars.h) read their lines on their first lookup.
 *
 * Design notes:
 *  1. Function ranges and ELF symbols each go into a span index (sorted by start, with a
 *     running maximum of ends), so a stabbing query finds the innermost function even when
 *     ranges nest (GNU C nested functions), or the biggest ELF symbol rather than a label
 *     inside it.
 *  2. An address's frames: the innermost function containing it, then the inlined
 *     subroutines below it that contain it; the innermost frame's line is the last line row
 *     <= addr (unless that is an end_sequence row), each outer frame's is the call site
 *     recorded on the frame inside it. Without a function, the ELF symbol names the address.
 *  3. Names are resolved and demangled on first use (symlines_scope_name, module_demangle),
 *     because most functions of a big module are never asked about.
 *
 * Context: analyzer only, single-threaded.
 */
#define _GNU_SOURCE
#include "symbolize.h"

#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "symbolize_internal.h"
#include "usage.h"

/* From libstdc++ (CXXABI_1.3); link with -lstdc++. The result is malloc'd. */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

#define SYM_MAX_CHAIN 64   /* inline frames per address */
#define SYM_MAX_STAB  4096 /* spans examined per stabbing query (bounds corrupt input) */

/* ---- span index: which [lo, hi) ranges contain an address (design note 1) ---- */

void span_add(struct span_index *x, uint64_t lo, uint64_t hi, uint32_t idx, uint32_t rank)
{
    ALLOC_GROW(x->v, x->nr + 1, x->alloc);
    x->v[x->nr++] = (struct sym_span){ lo, hi, idx, rank };
}

static int span_cmp(const void *a, const void *b)
{
    const struct sym_span *x = a, *y = b;

    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

void span_finish(struct span_index *x)
{
    uint64_t max = 0;

    if (x->nr)  /* qsort of NULL, even of nothing, is undefined */
        qsort(x->v, x->nr, sizeof(*x->v), span_cmp);
    x->maxhi = xmalloc((x->nr ? x->nr : 1) * sizeof(*x->maxhi));
    for (size_t i = 0; i < x->nr; i++) {
        if (x->v[i].hi > max)
            max = x->v[i].hi;
        x->maxhi[i] = max;
    }
}

size_t span_upper(const struct span_index *x, uint64_t addr)
{
    size_t lo = 0, hi = x->nr;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (x->v[mid].lo <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

long span_find(const struct span_index *x, uint64_t addr, bool biggest)
{
    size_t j = span_upper(x, addr);
    long best = -1;
    uint64_t best_size = 0;
    int steps = 0;

    while (j-- > 0 && x->maxhi[j] > addr && steps++ < SYM_MAX_STAB) {
        const struct sym_span *sp = &x->v[j];
        uint64_t size = sp->hi - sp->lo;

        if (addr >= sp->hi)
            continue;
        if (best < 0 ||
            (biggest ? size > best_size || (size == best_size && sp->rank <= x->v[best].rank)
                     : size < best_size)) {
            best = (long)j;
            best_size = size;
        }
    }
    return best;
}

void span_clear(struct span_index *x)
{
    free(x->v);
    free(x->maxhi);
}

/* ---- names ---- */

const char *module_demangle(struct sym_module *m, const char *raw)
{
    int status = -1;
    char *d = strncmp(raw, "_Z", 2) ? NULL : __cxa_demangle(raw, NULL, NULL, &status);
    const char *r = strpool_intern(&m->strings, status == 0 && d ? d : raw);

    free(d);
    return r;
}

/* The symbol naming addr: the biggest one containing it, else the nearest preceding one without
 * a size in the same executable section (assembly often has st_size 0). NULL if none. */
static const char *elf_name(struct sym_module *m, uint64_t addr)
{
    long j = span_find(&m->symspans, addr, true);
    struct sym_elfsym *sym;

    if (j < 0) {
        size_t ub = span_upper(&m->symspans, addr), i;

        for (i = 0; i < m->xsecs_nr; i++)
            if (addr >= m->xsecs[i].lo && addr < m->xsecs[i].hi)
                break;
        if (!ub || i == m->xsecs_nr || m->symspans.v[ub - 1].lo < m->xsecs[i].lo)
            return NULL;
        /* Aliases at one address are sorted best rank first. Only a symbol without a size
         * may stretch to addr: a sized one ended before it, and naming addr after it would
         * charge unrelated code (stripped libraries) to it; module+offset is more honest. */
        for (j = (long)ub - 1; j > 0 && m->symspans.v[j - 1].lo == m->symspans.v[j].lo; j--)
            ;
        while (j < (long)ub && m->symspans.v[j].hi != m->symspans.v[j].lo)
            j++;
        if (j == (long)ub)
            return NULL;
    }
    sym = &m->syms[m->symspans.v[j].idx];
    if (!sym->name)
        sym->name = module_demangle(m, sym->raw);
    return sym->name;
}

/* ---- lookup ---- */

static bool scope_contains(const struct sym_module *m, const struct sym_scope *sc, uint64_t addr)
{
    for (uint32_t i = 0; i < sc->range_nr; i++) {
        const struct sym_range *r = &m->ranges[sc->range_first + i];

        if (addr >= r->lo && addr < r->hi)
            return true;
    }
    return false;
}

/* Scopes containing addr, outermost (the subprogram) first; returns how many. */
static int scope_chain(const struct sym_module *m, uint64_t addr, int32_t *chain)
{
    long top = span_find(&m->funcs, addr, false);
    int n = 0;
    int32_t cur;

    if (top < 0)
        return 0;
    cur = (int32_t)m->funcs.v[top].idx;
    chain[n++] = cur;
    while (n < SYM_MAX_CHAIN) {
        int32_t c = m->scopes[cur].first_child;

        while (c >= 0 && !scope_contains(m, &m->scopes[c], addr))
            c = m->scopes[c].next_sibling;
        if (c < 0)
            break;
        chain[n++] = cur = c;
    }
    return n;
}

/* The line row describing addr, or NULL. */
static const struct sym_row *row_find(const struct sym_module *m, uint64_t addr)
{
    size_t lo = 0, hi = m->rows_nr;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (m->rows[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo || !(m->rows[lo - 1].key >> 31))
        return NULL;
    return &m->rows[lo - 1];
}

/* ---- the module cache and the public API ---- */

struct symbolizer {
    struct sym_module **mods;
    size_t nr, alloc;
    struct sym_module *last; /* lookups come in runs per module */
    char err[512];
};

static struct sym_module *module_find(struct symbolizer *s, const char *path)
{
    if (s->last && !strcmp(s->last->path, path))
        return s->last;
    for (size_t i = 0; i < s->nr; i++)
        if (!strcmp(s->mods[i]->path, path))
            return s->last = s->mods[i];
    return NULL;
}

static struct sym_module *module_open(struct symbolizer *s, const char *path,
                                      const char *build_id_hex)
{
    struct sym_module *m = xcalloc(1, sizeof(*m));

    m->path = strpool_intern(&m->strings, path);
    ALLOC_GROW(s->mods, s->nr + 1, s->alloc);
    s->mods[s->nr++] = s->last = m;
    if (symelf_scan(m, path, true, s->err, sizeof(s->err))) {
        m->error = strpool_intern(&m->strings, s->err);
        return m; /* cached failure */
    }
    m->ok = true;
    symelf_find_dwarf(m, build_id_hex);
    /* A stripped file keeps only .dynsym; its debug file has the full .symtab. */
    if (m->dbg && m->syms_from_dynsym && strcmp(m->debug_file, path)) {
        char ignored[64];

        symelf_scan(m, m->debug_file, false, ignored, sizeof(ignored));
    }
    span_finish(&m->symspans);
    return m;
}

/* The lines wait for their first use: a module opened for its variables (dwarfvars.h) may
 * never be asked for one. */
void sym_module_lines(struct sym_module *m)
{
    if (m->lines_read)
        return;
    m->lines_read = true;
    if (m->dbg)
        symlines_read(m);
    else
        span_finish(&m->funcs);
}

struct symbolizer *sym_new(void)
{
    struct symbolizer *s = xcalloc(1, sizeof(*s));

    /* libelf refuses every call until the version is set; harmless to repeat. */
    elf_version(EV_CURRENT);
    return s;
}

static void module_free(struct sym_module *m)
{
    dvlocals_free(m);
    dvvars_free(m);
    dvtypes_free(m);
    dvobj_free(m);
    arena_clear(&m->arena);
    dw_close(m->dbg);
    free(m->scopes);
    free(m->ranges);
    span_clear(&m->funcs);
    free(m->rows);
    free(m->syms);
    span_clear(&m->symspans);
    free(m->xsecs);
    strpool_clear(&m->strings);
    free(m);
}

void sym_free(struct symbolizer *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nr; i++)
        module_free(s->mods[i]);
    free(s->mods);
    free(s);
}

struct sym_module *sym_module(struct symbolizer *s, const char *path, const char *build_id_hex)
{
    struct sym_module *m = module_find(s, path);

    if (!m)
        m = module_open(s, path, build_id_hex);
    if (!m->ok) {
        snprintf(s->err, sizeof(s->err), "%s", m->error);
        return NULL;
    }
    return m;
}

int sym_lookup(struct symbolizer *s, const char *path, const char *build_id_hex, uint64_t addr,
               struct sym_frame *out, int max)
{
    struct sym_module *m = sym_module(s, path, build_id_hex);
    int32_t chain[SYM_MAX_CHAIN];
    const struct sym_row *row;
    int n, k = 0;

    if (!m)
        return -1;
    sym_module_lines(m);
    if (max < 1)
        return 0;
    row = row_find(m, addr);
    n = scope_chain(m, addr, chain);
    if (!n) {
        const char *name = elf_name(m, addr);

        out[0] = (struct sym_frame){ name ? name : "??", row ? row->file : NULL,
                                     row ? (int)row->line : 0 };
        return 1;
    }
    /* Innermost first: its line comes from the line table, each outer frame's from the
     * call site recorded on the frame inside it. */
    for (int i = n - 1; i >= 0 && k < max; i--, k++) {
        struct sym_scope *sc = &m->scopes[chain[i]];
        const char *name = symlines_scope_name(m, sc);

        if (!*name)
            name = i == 0 ? elf_name(m, addr) : NULL;
        out[k].function = name && *name ? name : "??";
        if (i == n - 1) {
            out[k].file = row ? row->file : NULL;
            out[k].line = row ? (int)row->line : 0;
        } else {
            out[k].file = m->scopes[chain[i + 1]].call_file;
            out[k].line = (int)m->scopes[chain[i + 1]].call_line;
        }
    }
    return k;
}

bool sym_has_debug_info(struct symbolizer *s, const char *path)
{
    struct sym_module *m = module_find(s, path);

    return m && m->dbg;
}

const char *sym_debug_file(struct symbolizer *s, const char *path)
{
    struct sym_module *m = module_find(s, path);

    return m && m->dbg ? m->debug_file : NULL;
}

const char *sym_error(struct symbolizer *s)
{
    return s->err;
}
