/* symbolize_lines.c: a module's DWARF lines and inlines: the functions, inlined subroutines
 * and source lines that own its addresses.
 *
 * This file implements reading every compilation unit of m->dbg into the arrays of struct
 * sym_module that the lookup (symbolize.c) searches: the function scopes with their code
 * ranges and inline trees, and the line rows; and naming a scope when it is first asked for.
 *
 * Design notes:
 *  1. DWARF is flattened into scopes: one per subprogram or inlined subroutine that owns code.
 *     Inlined subroutines hang below their subprogram (first_child/next_sibling); lexical
 *     blocks are looked through. Subprograms go into the span index m->funcs, so a lookup
 *     finds the innermost one even when ranges nest (GNU C nested functions).
 *  2. The line rows of all CUs form one array sorted by address. An end_sequence row sorts
 *     before a row starting at the same address, so the last row <= addr describes addr unless
 *     it is an end row. Sequences and ranges starting at 0 or at a tombstone (-1, -2) belong to
 *     code the linker discarded and are dropped, or they would shadow real code.
 *  3. Names are resolved and demangled on first use, because most functions of a big module
 *     are never asked about; the Dwarf_Debug therefore stays open until sym_free.
 *  4. Recursion depth and reference chains are bounded, so corrupt DWARF cannot loop or
 *     overflow the stack.
 *
 * Context: analyzer only, single-threaded.
 */
#define _GNU_SOURCE
#include "symbolize_internal.h"

#include <stdlib.h>
#include <string.h>

#include "usage.h"

#define SYM_MAX_DEPTH 128  /* DIE nesting we follow; real code stays far below */
#define SYM_MAX_HOPS  8    /* abstract_origin/specification links per name */

/* ---- scopes and rows ---- */

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
    /* 0 and -1/-2 mark code the linker discarded (design note 2). */
    return lo != 0 && lo < UINT64_MAX - 1;
}

static const char *cu_file(const struct cu_ctx *c, Dwarf_Unsigned fileno)
{
    Dwarf_Signed i = (Dwarf_Signed)fileno - c->files_base;

    return i >= 0 && i < c->files_nr ? c->files[i] : NULL;
}

/* Keep one range of a scope (a dw_ranges callback; arg is the struct cu_ctx). */
static void range_add(void *arg, uint64_t lo, uint64_t hi)
{
    struct sym_module *m = ((struct cu_ctx *)arg)->m;

    if (!addr_is_real(lo) || hi <= lo)
        return;
    ALLOC_GROW(m->ranges, m->ranges_nr + 1, m->ranges_alloc);
    m->ranges[m->ranges_nr++] = (struct sym_range){ lo, hi };
}

/* Append the code ranges of die to m->ranges; returns how many. */
static uint32_t die_ranges(struct cu_ctx *c, Dwarf_Die die)
{
    size_t before = c->m->ranges_nr;

    dw_ranges(c->dbg, die, c->version, c->base, range_add, c);
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

/* Append the CU's line rows, dropping sequences of discarded code (design note 2). */
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

/* What symlines_read carries from one CU to the next. */
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

void symlines_read(struct sym_module *m)
{
    struct build_ctx b = { .m = m };

    dw_for_each_cu(m->dbg, cu_build, &b);
    if (m->rows_nr)  /* qsort of NULL, even of nothing, is undefined */
        qsort(m->rows, m->rows_nr, sizeof(*m->rows), row_cmp);
    span_finish(&m->funcs);
}

/* ---- names ---- */

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
            result = module_demangle(m, s);
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

const char *symlines_die_name(struct sym_module *m, Dwarf_Off off)
{
    return die_function_name(m, off);
}

const char *symlines_scope_name(struct sym_module *m, struct sym_scope *sc)
{
    if (!sc->name)
        sc->name = die_function_name(m, sc->die);
    return sc->name;
}
