/* symbolize.c: link-time address -> function, file, line and inline chain.
 *
 * This file implements the analyzer's symbolizer. Each ELF file asked about becomes one
 * struct sym_module, read completely on first use and kept until sym_free; lookups are binary
 * searches over arrays built at that point.
 *
 * Design notes:
 *  1. Where the ELF symbols and the DWARF come from: symbolize_elf.c.
 *  2. DWARF is flattened into scopes: one per subprogram or inlined subroutine that owns code.
 *     Inlined subroutines hang below their subprogram (first_child/next_sibling); lexical
 *     blocks are looked through. Subprograms go into a span index (sorted by start, with a
 *     running maximum of ends) so a lookup finds the innermost one even when ranges nest
 *     (GNU C nested functions). The ELF symbols use the same span index.
 *  3. The line rows of all CUs form one array sorted by address. An end_sequence row sorts
 *     before a row starting at the same address, so the last row <= addr describes addr unless
 *     it is an end row. Sequences and ranges starting at 0 or at a tombstone (-1, -2) belong to
 *     code the linker discarded and are dropped, or they would shadow real code.
 *  4. Names are resolved and demangled on first use, because most functions of a big module
 *     are never asked about; the Dwarf_Debug therefore stays open until sym_free.
 *  5. libdwarf is called through symbolize_dwarf.c, which keeps its errors from aborting.
 *     Recursion depth and reference chains are bounded, so corrupt DWARF cannot loop or
 *     overflow the stack.
 *  6. All strings handed out live in a per-module string pool (struct strpool of hmap.h).
 *
 * Context: analyzer only, single-threaded.
 */
#define _GNU_SOURCE
#include "symbolize.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gelf.h>
#include <libdwarf/dwarf.h>
#include <libdwarf/libdwarf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hmap.h"
#include "symbolize_internal.h"
#include "usage.h"

/* From libstdc++ (CXXABI_1.3); link with -lstdc++. The result is malloc'd. */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

#define SYM_MAX_DEPTH 128  /* DIE nesting we follow; real code stays far below */
#define SYM_MAX_HOPS  8    /* abstract_origin/specification links per name */
#define SYM_MAX_CHAIN 64   /* inline frames per address */
#define SYM_MAX_STAB  4096 /* spans examined per stabbing query (bounds corrupt input) */

/* ---- span index: which [lo, hi) ranges contain an address (design note 2) ---- */

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

/* ---- module ---- */

struct symbolizer {
    struct sym_module **mods;
    size_t nr, alloc;
    struct sym_module *last; /* lookups come in runs per module */
    char err[512];
};

/* ---- ELF symbol names ---- */

/* The demangled form of raw, pooled. Only _Z names are demangled: __cxa_demangle also
 * decodes bare type codes, and would turn a C function "f" into "float". */
static const char *demangle_intern(struct sym_module *m, const char *raw)
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
        sym->name = demangle_intern(m, sym->raw);
    return sym->name;
}

/* ---- DWARF: build scopes and rows ---- */

struct cu_ctx {
    struct sym_module *m;
    Dwarf_Debug dbg;
    Dwarf_Half version;
    Dwarf_Addr base;    /* CU base address, for DWARF 2-4 .debug_ranges */
    const char **files; /* pooled; index = file number - files_base */
    Dwarf_Signed files_nr, files_base;
    uint32_t row_order;
};

static bool addr_is_real(uint64_t lo)
{
    /* 0 and -1/-2 mark code the linker discarded (design note 3). */
    return lo != 0 && lo < UINT64_MAX - 1;
}

static const char *cu_file(const struct cu_ctx *c, Dwarf_Unsigned fileno)
{
    Dwarf_Signed i = (Dwarf_Signed)fileno - c->files_base;

    return i >= 0 && i < c->files_nr ? c->files[i] : NULL;
}

static void range_add(struct cu_ctx *c, uint64_t lo, uint64_t hi)
{
    struct sym_module *m = c->m;

    if (!addr_is_real(lo) || hi <= lo)
        return;
    ALLOC_GROW(m->ranges, m->ranges_nr + 1, m->ranges_alloc);
    m->ranges[m->ranges_nr++] = (struct sym_range){ lo, hi };
}

/* DWARF 5 DW_AT_ranges: an offset or index into .debug_rnglists; entries come cooked. */
static void ranges_read_rnglists(struct cu_ctx *c, Dwarf_Attribute attr, Dwarf_Half form)
{
    Dwarf_Rnglists_Head head = NULL;
    Dwarf_Unsigned val = 0, count = 0, off = 0;
    Dwarf_Error err = NULL;
    int res;

    res = form == DW_FORM_rnglistx ? dwarf_formudata(attr, &val, &err)
                                   : dwarf_global_formref(attr, &val, &err);
    if (res == DW_DLV_OK)
        res = dwarf_rnglists_get_rle_head(attr, form, val, &head, &count, &off, &err);
    dw_drop_err(c->dbg, &err);
    if (res != DW_DLV_OK)
        return;
    for (Dwarf_Unsigned i = 0; i < count; i++) {
        unsigned len = 0, code = 0;
        Dwarf_Unsigned raw1, raw2, lo, hi;
        Dwarf_Bool unavailable = 0;

        res = dwarf_get_rnglists_entry_fields_a(head, i, &len, &code, &raw1, &raw2, &unavailable,
                                                &lo, &hi, &err);
        dw_drop_err(c->dbg, &err);
        if (res != DW_DLV_OK)
            break;
        if (code == DW_RLE_end_of_list)
            break;
        if (code != DW_RLE_base_address && code != DW_RLE_base_addressx && !unavailable)
            range_add(c, lo, hi);
    }
    dwarf_dealloc_rnglists_head(head);
}

/* DWARF 2-4 DW_AT_ranges: entries are relative to the CU base unless a base selection entry
 * changes it; libdwarf hands them out raw. */
static void ranges_read_debug_ranges(struct cu_ctx *c, Dwarf_Die die, Dwarf_Attribute attr)
{
    Dwarf_Ranges *r = NULL;
    Dwarf_Signed n = 0;
    Dwarf_Unsigned bytes = 0;
    Dwarf_Off off = 0;
    Dwarf_Error err = NULL;
    Dwarf_Addr base = c->base;
    int res;

    res = dwarf_global_formref(attr, &off, &err);
    if (res == DW_DLV_ERROR) {
        Dwarf_Unsigned u = 0;

        dw_drop_err(c->dbg, &err);
        res = dwarf_formudata(attr, &u, &err);
        off = u;
    }
    if (res == DW_DLV_OK)
        res = dwarf_get_ranges_a(c->dbg, off, die, &r, &n, &bytes, &err);
    dw_drop_err(c->dbg, &err);
    if (res != DW_DLV_OK)
        return;
    for (Dwarf_Signed i = 0; i < n; i++) {
        if (r[i].dwr_type == DW_RANGES_END)
            break;
        if (r[i].dwr_type == DW_RANGES_ADDRESS_SELECTION)
            base = r[i].dwr_addr2;
        else
            range_add(c, base + r[i].dwr_addr1, base + r[i].dwr_addr2);
    }
    dwarf_ranges_dealloc(c->dbg, r, n);
}

/* Append the code ranges of die to m->ranges; returns how many. */
static uint32_t die_ranges(struct cu_ctx *c, Dwarf_Die die)
{
    size_t before = c->m->ranges_nr;
    Dwarf_Error err = NULL;
    Dwarf_Attribute attr;
    Dwarf_Addr lo, hi;
    Dwarf_Half form;
    enum Dwarf_Form_Class cls;

    if (dwarf_lowpc(die, &lo, &err) == DW_DLV_OK &&
        dwarf_highpc_b(die, &hi, &form, &cls, &err) == DW_DLV_OK) {
        range_add(c, lo, cls == DW_FORM_CLASS_ADDRESS ? hi : lo + hi);
        return (uint32_t)(c->m->ranges_nr - before);
    }
    /* Else DW_AT_ranges (a DW_AT_low_pc next to it is only a base address). */
    dw_drop_err(c->dbg, &err);
    if (dwarf_attr(die, DW_AT_ranges, &attr, &err) != DW_DLV_OK) {
        dw_drop_err(c->dbg, &err);
        return 0;
    }
    if (dwarf_whatform(attr, &form, &err) == DW_DLV_OK) {
        if (form == DW_FORM_rnglistx || c->version >= 5)
            ranges_read_rnglists(c, attr, form);
        else
            ranges_read_debug_ranges(c, die, attr);
    }
    dw_drop_err(c->dbg, &err);
    dwarf_dealloc(c->dbg, attr, DW_DLA_ATTR);
    return (uint32_t)(c->m->ranges_nr - before);
}

/* Make a scope for a subprogram (parent -1) or an inlined subroutine with code; -1 when the
 * DIE owns no code. */
static int32_t scope_new(struct cu_ctx *c, Dwarf_Die die, int32_t parent, bool inlined)
{
    struct sym_module *m = c->m;
    size_t first = m->ranges_nr;
    uint32_t nr = die_ranges(c, die);
    Dwarf_Error err = NULL;
    Dwarf_Unsigned u;
    struct sym_scope *sc;
    int32_t idx;

    if (!nr || m->scopes_nr >= INT32_MAX)
        return -1;
    ALLOC_GROW(m->scopes, m->scopes_nr + 1, m->scopes_alloc);
    idx = (int32_t)m->scopes_nr++;
    sc = &m->scopes[idx];
    *sc = (struct sym_scope){
        .first_child = -1, .next_sibling = -1, .range_first = (uint32_t)first, .range_nr = nr
    };
    if (dwarf_dieoffset(die, &sc->die, &err) != DW_DLV_OK)
        sc->name = ""; /* unnamed: the caller falls back to the ELF symbol */
    dw_drop_err(c->dbg, &err);
    if (inlined) {
        if (dw_udata(c->dbg, die, DW_AT_call_file, &u))
            sc->call_file = cu_file(c, u);
        if (dw_udata(c->dbg, die, DW_AT_call_line, &u))
            sc->call_line = u > INT32_MAX ? 0 : (uint32_t)u;
    }
    if (parent >= 0) {
        sc->next_sibling = m->scopes[parent].first_child;
        m->scopes[parent].first_child = idx;
    } else {
        for (uint32_t i = 0; i < nr; i++)
            span_add(&m->funcs, m->ranges[first + i].lo, m->ranges[first + i].hi, (uint32_t)idx, 0);
    }
    return idx;
}

static bool die_is_declaration(Dwarf_Debug dbg, Dwarf_Die die)
{
    Dwarf_Bool has = 0;
    Dwarf_Error err = NULL;

    if (dwarf_hasattr(die, DW_AT_declaration, &has, &err) != DW_DLV_OK)
        dw_drop_err(dbg, &err);
    return has;
}

static void die_walk(struct cu_ctx *c, Dwarf_Die parent, int32_t scope, int depth);

/* Scopes for one DIE and the code-owning DIEs below it. */
static void die_visit(struct cu_ctx *c, Dwarf_Die die, int32_t scope, int depth)
{
    Dwarf_Error err = NULL;
    Dwarf_Half tag;
    int32_t s;

    if (dwarf_tag(die, &tag, &err) != DW_DLV_OK) {
        dw_drop_err(c->dbg, &err);
        return;
    }
    switch (tag) {
    case DW_TAG_subprogram:
        /* Declarations (class members) own neither code nor nested definitions. */
        if (die_is_declaration(c->dbg, die))
            break;
        s = scope_new(c, die, -1, false);
        die_walk(c, die, s, depth + 1);
        break;
    case DW_TAG_inlined_subroutine:
        /* Without a parent (corrupt input) it becomes a top-level function. */
        s = scope_new(c, die, scope, scope >= 0);
        if (s >= 0)
            die_walk(c, die, s, depth + 1);
        break;
    case DW_TAG_lexical_block:
    case DW_TAG_try_block:
    case DW_TAG_catch_block:
    case DW_TAG_namespace:
    case DW_TAG_module:
    case DW_TAG_class_type:
    case DW_TAG_structure_type:
    case DW_TAG_union_type:
        die_walk(c, die, scope, depth + 1);
        break;
    default:
        break;
    }
}

static void die_walk(struct cu_ctx *c, Dwarf_Die parent, int32_t scope, int depth)
{
    Dwarf_Error err = NULL;
    Dwarf_Die child = NULL, next;
    int res;

    if (depth > SYM_MAX_DEPTH)
        return;
    res = dwarf_child(parent, &child, &err);
    while (res == DW_DLV_OK) {
        die_visit(c, child, scope, depth);
        res = dwarf_siblingof_b(c->dbg, child, 1, &next, &err);
        dwarf_dealloc(c->dbg, child, DW_DLA_DIE);
        child = next;
    }
    dw_drop_err(c->dbg, &err);
}

static void row_add(struct cu_ctx *c, uint64_t addr, const char *file, uint32_t line, bool end)
{
    struct sym_module *m = c->m;

    ALLOC_GROW(m->rows, m->rows_nr + 1, m->rows_alloc);
    m->rows[m->rows_nr++] =
            (struct sym_row){ addr, file, line,
                              (end ? 0 : 1u << 31) | (c->row_order++ & 0x7fffffff) };
}

/* Append the CU's line rows, dropping sequences of discarded code (design note 3). */
static void cu_read_lines(struct cu_ctx *c, Dwarf_Line_Context ctx)
{
    Dwarf_Line *lines = NULL;
    Dwarf_Signed n = 0;
    Dwarf_Error err = NULL;
    size_t seq_start = 0;
    bool seq_real = true, seq_open = false;

    if (dwarf_srclines_from_linecontext(ctx, &lines, &n, &err) != DW_DLV_OK) {
        dw_drop_err(c->dbg, &err);
        return;
    }
    for (Dwarf_Signed i = 0; i < n; i++) {
        Dwarf_Addr addr = 0;
        Dwarf_Unsigned line = 0, fileno = 0;
        Dwarf_Bool end = 0;

        if (dwarf_lineaddr(lines[i], &addr, &err) != DW_DLV_OK ||
            dwarf_lineendsequence(lines[i], &end, &err) != DW_DLV_OK) {
            dw_drop_err(c->dbg, &err);
            continue;
        }
        if (dwarf_lineno(lines[i], &line, &err) != DW_DLV_OK || line > INT32_MAX)
            line = 0;
        dw_drop_err(c->dbg, &err);
        if (dwarf_line_srcfileno(lines[i], &fileno, &err) != DW_DLV_OK)
            fileno = (Dwarf_Unsigned)-1;
        dw_drop_err(c->dbg, &err);
        if (!seq_open) {
            seq_open = true;
            seq_real = addr_is_real(addr);
            seq_start = c->m->rows_nr;
        }
        /* Rows at the end address of their sequence cover no bytes; kept, they would win
         * over the end row and claim the padding after the sequence. */
        while (end && seq_real && c->m->rows_nr > seq_start &&
               c->m->rows[c->m->rows_nr - 1].addr == addr)
            c->m->rows_nr--;
        if (seq_real)
            row_add(c, addr, cu_file(c, fileno), (uint32_t)line, end);
        if (end)
            seq_open = false;
    }
}

/* The CU's file table (dwarf_srcfiles joins the directories) and its line rows. */
static void cu_read_line_table(struct cu_ctx *c, Dwarf_Die cu)
{
    Dwarf_Line_Context ctx = NULL;
    Dwarf_Unsigned version = 0;
    Dwarf_Small tables = 0;
    Dwarf_Signed base = 0, count = 0, end = 0, nfiles = 0;
    Dwarf_Error err = NULL;
    char **files = NULL;

    if (dwarf_srclines_b(cu, &version, &tables, &ctx, &err) != DW_DLV_OK) {
        dw_drop_err(c->dbg, &err);
        return;
    }
    /* File numbers start at 1 in DWARF 2-4 and at 0 in DWARF 5; libdwarf says which. */
    if (dwarf_srclines_files_indexes(ctx, &base, &count, &end, &err) != DW_DLV_OK)
        base = version >= 5 ? 0 : 1;
    dw_drop_err(c->dbg, &err);
    if (dwarf_srcfiles(cu, &files, &nfiles, &err) == DW_DLV_OK) {
        c->files = xmalloc((nfiles ? nfiles : 1) * sizeof(*c->files));
        for (Dwarf_Signed i = 0; i < nfiles; i++) {
            c->files[i] = files[i] ? strpool_intern(&c->m->strings, files[i]) : NULL;
            dwarf_dealloc(c->dbg, files[i], DW_DLA_STRING);
        }
        dwarf_dealloc(c->dbg, files, DW_DLA_LIST);
        c->files_nr = nfiles;
        c->files_base = base;
    }
    dw_drop_err(c->dbg, &err);
    if (tables == 1)
        cu_read_lines(c, ctx);
    dwarf_srclines_dealloc_b(ctx);
}

/* What dwarf_build carries from one CU to the next. */
struct build_ctx {
    struct sym_module *m;
    uint32_t row_order;
};

static void cu_build(Dwarf_Die cu, Dwarf_Half version, void *arg)
{
    struct build_ctx *b = arg;
    struct sym_module *m = b->m;
    struct cu_ctx c = { .m = m, .dbg = m->dbg, .version = version, .row_order = b->row_order };
    Dwarf_Error err = NULL;
    Dwarf_Half tag = 0;

    if (dwarf_tag(cu, &tag, &err) != DW_DLV_OK ||
        (tag != DW_TAG_compile_unit && tag != DW_TAG_partial_unit)) {
        dw_drop_err(m->dbg, &err);
        return;
    }
    if (dwarf_lowpc(cu, &c.base, &err) != DW_DLV_OK)
        c.base = 0;
    dw_drop_err(m->dbg, &err);
    cu_read_line_table(&c, cu);
    die_walk(&c, cu, -1, 0);
    free(c.files);
    b->row_order = c.row_order;
}

static int row_cmp(const void *a, const void *b)
{
    const struct sym_row *x = a, *y = b;

    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key;
}

static void dwarf_build(struct sym_module *m)
{
    struct build_ctx b = { .m = m };

    dw_for_each_cu(m->dbg, cu_build, &b);
    qsort(m->rows, m->rows_nr, sizeof(*m->rows), row_cmp);
    span_finish(&m->funcs);
}

/* ---- DWARF: names ---- */

/* A function's name: the demangled C++ linkage name if any DIE on the abstract_origin /
 * specification chain has one (it carries namespaces and parameters), else the first
 * DW_AT_name, else a non-C++ linkage name. "" if none. A C function's linkage name is an asm
 * label at best (glibc's "__GI___libc_malloc" for __libc_malloc), so its source name wins. */
static const char *die_function_name(struct sym_module *m, Dwarf_Off off)
{
    Dwarf_Error err = NULL;
    Dwarf_Die die = NULL, next;
    const char *plain = NULL, *result = NULL, *label = NULL;

    if (dwarf_offdie_b(m->dbg, off, 1, &die, &err) != DW_DLV_OK) {
        dw_drop_err(m->dbg, &err);
        return "";
    }
    for (int hop = 0; die && hop < SYM_MAX_HOPS; hop++) {
        const char *s = dw_string(m->dbg, die, DW_AT_linkage_name);

        if (!s)
            s = dw_string(m->dbg, die, DW_AT_MIPS_linkage_name);
        if (s && !strncmp(s, "_Z", 2)) {
            result = demangle_intern(m, s);
            break;
        }
        if (s && *s && !label)
            label = strpool_intern(&m->strings, s);
        if (!plain && (s = dw_string(m->dbg, die, DW_AT_name)) && *s)
            plain = strpool_intern(&m->strings, s);
        next = dw_ref(m->dbg, die, DW_AT_abstract_origin);
        if (!next)
            next = dw_ref(m->dbg, die, DW_AT_specification);
        dwarf_dealloc(m->dbg, die, DW_DLA_DIE);
        die = next;
    }
    if (die)
        dwarf_dealloc(m->dbg, die, DW_DLA_DIE);
    return result ? result : plain ? plain : label ? label : "";
}

static const char *scope_name(struct sym_module *m, struct sym_scope *sc)
{
    if (!sc->name)
        sc->name = die_function_name(m, sc->die);
    return sc->name;
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
    if (m->dbg) {
        /* A stripped file keeps only .dynsym; its debug file has the full .symtab. */
        if (m->syms_from_dynsym && strcmp(m->debug_file, path)) {
            char ignored[64];

            symelf_scan(m, m->debug_file, false, ignored, sizeof(ignored));
        }
        dwarf_build(m);
    }
    span_finish(&m->symspans);
    return m;
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

int sym_lookup(struct symbolizer *s, const char *path, const char *build_id_hex, uint64_t addr,
               struct sym_frame *out, int max)
{
    struct sym_module *m = module_find(s, path);
    int32_t chain[SYM_MAX_CHAIN];
    const struct sym_row *row;
    int n, k = 0;

    if (!m)
        m = module_open(s, path, build_id_hex);
    if (!m->ok) {
        snprintf(s->err, sizeof(s->err), "%s", m->error);
        return -1;
    }
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
        const char *name = scope_name(m, sc);

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
