/* symbolize_locals.c: the locals and parameters of a function, and where each lives at a pc
 * (dwarfvars.h dv_locals_at).
 *
 * This file implements reading the subtree of one function's DIE, on the first question
 * about a pc inside it, into a flat table: its scopes (the function, lexical blocks, inlined
 * subroutines) with their code ranges, its variables with the scope they belong to, and for
 * each variable the pc ranges and simple locations its location list gives. A question is
 * then a filter over that table.
 *
 * Design notes:
 *  1. The function at a pc is the innermost subprogram of the line reader's index (m->funcs,
 *     symbolize_lines.c); its variables are read once and kept per function DIE.
 *  2. Locations: DW_OP_fbreg(n) is relative to the function's DW_AT_frame_base, which GCC
 *     makes DW_OP_call_frame_cfa (-> DV_L_CFA n) and clang a register (DW_OP_reg6 -> DV_L_BREG
 *     6, n; at -O2 often DW_OP_reg7 rsp). DW_OP_bregN(n) is DV_L_BREG, DW_OP_regN DV_L_REG,
 *     DW_OP_addr DV_L_ADDR, and so is clang's DW_OP_addrx, whose operand libdwarf leaves an
 *     index into .debug_addr (dw_addrx). An entry with any other expression or with more than
 *     one operation is dropped, and so is every fbreg entry when the frame base is itself a
 *     location list.
 *  3. libdwarf (20210528) hands out location list entries with their pc range already cooked
 *     (base address entries, CU base, DW_LLE_offset_pair) for DWARF 5 .debug_loclists and
 *     DWARF 2-4 .debug_loc alike; entries without an expression (base address, end of list)
 *     are skipped. That includes the entries that name addresses by their .debug_addr index
 *     (DW_LLE_base_addressx, which clang puts before its offset pairs, startx_length and
 *     startx_endx: checked on hand-made lists), reached through DW_FORM_loclistx. A single
 *     expression (DW_LKIND_expression) holds at every pc of its scope.
 *  4. A variable is live at pc when pc is in its scope and in all scopes around it (a
 *     lexical block without ranges is as wide as its parent) and in one of its entries.
 *     Results are sorted by scope depth, innermost first, stable otherwise.
 *  5. The subtree walk is bounded in depth, so corrupt DWARF cannot overflow the stack.
 *
 * Context: analyzer only, single-threaded.
 */
#define _GNU_SOURCE
#include "symbolize_internal.h"

#include <stdlib.h>
#include <string.h>

#include "usage.h"

#define LOCALS_MAX_DEPTH 128

struct lscope {
    uint32_t range_first, range_nr; /* into fnlocals.ranges; 0 ranges: as its parent */
    int32_t parent;
    uint32_t depth;
    const char *function;           /* the subprogram's or inlined subroutine's name */
};

struct lloc {
    uint64_t lo, hi;
    struct dv_loc loc;
};

struct lent {
    const struct dv_var *var;
    uint32_t scope, loc_first, loc_nr, inline_depth;
};

struct fnlocals {
    struct sym_range *ranges;
    size_t ranges_nr, ranges_alloc;
    struct lscope *scopes;
    size_t scopes_nr, scopes_alloc;
    struct lent *ents;
    size_t ents_nr, ents_alloc;
    struct lloc *locs;
    size_t locs_nr, locs_alloc;
};

struct dv_locals {
    struct hmap fns; /* subprogram DIE offset -> struct fnlocals */
};

struct build {
    struct sym_module *m;
    Dwarf_Debug dbg;
    struct fnlocals *f;
    Dwarf_Half version;
    Dwarf_Addr cu_base;
    struct dv_loc fb; /* frame base as a place: CFA or BREG; NONE when unusable */
};

/* ---- expressions ---- */

static bool uleb(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    int shift = 0;

    *v = 0;
    while (*p < end && shift < 64) {
        unsigned char b = *(*p)++;

        *v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

static bool sleb(const unsigned char **p, const unsigned char *end, int64_t *v)
{
    uint64_t u = 0;
    int shift = 0;

    while (*p < end && shift < 64) {
        unsigned char b = *(*p)++;

        u |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40))
                u |= ~(uint64_t)0 << shift;
            *v = (int64_t)u;
            return true;
        }
    }
    return false;
}

/* The function's frame base as a place (design note 2). */
static struct dv_loc frame_base(struct build *b, Dwarf_Die die)
{
    unsigned char e[32];
    size_t len = sizeof(e);
    const unsigned char *p = e + 1, *end;
    struct dv_loc fb = { DV_L_NONE, 0, 0 };
    uint64_t reg = 0;

    if (!dw_expr(b->dbg, die, DW_AT_frame_base, e, &len) || !len)
        return fb;
    end = e + len;
    if (e[0] == DW_OP_call_frame_cfa && len == 1) {
        fb.kind = DV_L_CFA;
    } else if (e[0] >= DW_OP_breg0 && e[0] <= DW_OP_breg31) {
        fb.reg = e[0] - DW_OP_breg0;
        if (sleb(&p, end, &fb.offset) && p == end)
            fb.kind = DV_L_BREG;
    } else if (e[0] >= DW_OP_reg0 && e[0] <= DW_OP_reg31 && len == 1) {
        fb.kind = DV_L_BREG; /* the frame base is the register's value */
        fb.reg = e[0] - DW_OP_reg0;
    } else if (e[0] == DW_OP_regx && uleb(&p, end, &reg) && p == end && reg < 0x10000) {
        fb.kind = DV_L_BREG;
        fb.reg = (int)reg;
    } else if (e[0] == DW_OP_bregx && uleb(&p, end, &reg) && reg < 0x10000 &&
               sleb(&p, end, &fb.offset) && p == end) {
        fb.kind = DV_L_BREG;
        fb.reg = (int)reg;
    }
    return fb;
}

/* One location operation as a place; NONE when it is not a simple one. */
static struct dv_loc op_place(const struct build *b, Dwarf_Small atom, Dwarf_Unsigned op1,
                              Dwarf_Unsigned op2)
{
    struct dv_loc l = { DV_L_NONE, 0, 0 };

    if (atom == DW_OP_fbreg && b->fb.kind != DV_L_NONE) {
        l = b->fb;
        l.offset += (int64_t)op1; /* libdwarf keeps signed operands in unsigned fields */
    } else if (atom >= DW_OP_breg0 && atom <= DW_OP_breg31) {
        l = (struct dv_loc){ DV_L_BREG, atom - DW_OP_breg0, (int64_t)op1 };
    } else if (atom == DW_OP_bregx && op1 < 0x10000) {
        l = (struct dv_loc){ DV_L_BREG, (int)op1, (int64_t)op2 };
    } else if (atom >= DW_OP_reg0 && atom <= DW_OP_reg31) {
        l = (struct dv_loc){ DV_L_REG, atom - DW_OP_reg0, 0 };
    } else if (atom == DW_OP_regx && op1 < 0x10000) {
        l = (struct dv_loc){ DV_L_REG, (int)op1, 0 };
    } else if (atom == DW_OP_addr) {
        l = (struct dv_loc){ DV_L_ADDR, 0, (int64_t)op1 };
    }
    return l;
}

/* Append the simple entries of die's location list to b->f->locs; returns how many. */
static uint32_t read_locs(struct build *b, Dwarf_Die die)
{
    struct fnlocals *f = b->f;
    size_t before = f->locs_nr;
    Dwarf_Loc_Head_c head = NULL;
    Dwarf_Unsigned count = 0;
    Dwarf_Error err = NULL;
    Dwarf_Attribute attr;
    unsigned kind = DW_LKIND_unknown;

    if (dwarf_attr(die, DW_AT_location, &attr, &err) != DW_DLV_OK) {
        dw_drop_err(b->dbg, &err);
        return 0;
    }
    if (dwarf_get_loclist_c(attr, &head, &count, &err) != DW_DLV_OK) {
        dw_drop_err(b->dbg, &err);
        dwarf_dealloc(b->dbg, attr, DW_DLA_ATTR);
        return 0;
    }
    if (dwarf_get_loclist_head_kind(head, &kind, &err) != DW_DLV_OK)
        kind = DW_LKIND_unknown;
    dw_drop_err(b->dbg, &err);
    for (Dwarf_Unsigned i = 0; i < count && kind != DW_LKIND_unknown; i++) {
        Dwarf_Small lle = 0, src = 0, atom = 0;
        Dwarf_Unsigned rawlo = 0, rawhi = 0, nops = 0, eoff = 0, doff = 0, op1, op2, op3, br;
        Dwarf_Bool unavailable = 0;
        Dwarf_Addr lo = 0, hi = 0;
        Dwarf_Locdesc_c desc = NULL;
        struct dv_loc l;
        uint64_t a;

        if (dwarf_get_locdesc_entry_d(head, i, &lle, &rawlo, &rawhi, &unavailable, &lo, &hi,
                                      &nops, &desc, &src, &eoff, &doff, &err) != DW_DLV_OK) {
            dw_drop_err(b->dbg, &err);
            break;
        }
        if (nops != 1 || unavailable ||
            dwarf_get_location_op_value_c(desc, 0, &atom, &op1, &op2, &op3, &br, &err) !=
                    DW_DLV_OK) {
            dw_drop_err(b->dbg, &err);
            continue;
        }
        /* clang's DWARF 5: a static's address as an index into .debug_addr (design note 2). */
        if ((atom == DW_OP_addrx || atom == DW_OP_GNU_addr_index) &&
            dw_addrx(b->dbg, die, op1, &a)) {
            atom = DW_OP_addr;
            op1 = a;
        }
        l = op_place(b, atom, op1, op2);
        if (l.kind == DV_L_NONE)
            continue;
        if (kind == DW_LKIND_expression) {
            lo = 0;
            hi = UINT64_MAX;
        } else if (hi <= lo) {
            continue;
        }
        ALLOC_GROW(f->locs, f->locs_nr + 1, f->locs_alloc);
        f->locs[f->locs_nr++] = (struct lloc){ lo, hi, l };
    }
    dwarf_loc_head_c_dealloc(head);
    dwarf_dealloc(b->dbg, attr, DW_DLA_ATTR);
    return (uint32_t)(f->locs_nr - before);
}

/* ---- the function's subtree ---- */

static void range_add(void *arg, uint64_t lo, uint64_t hi)
{
    struct fnlocals *f = arg;

    if (hi <= lo || !lo)
        return;
    ALLOC_GROW(f->ranges, f->ranges_nr + 1, f->ranges_alloc);
    f->ranges[f->ranges_nr++] = (struct sym_range){ lo, hi };
}

static int32_t scope_new(struct build *b, Dwarf_Die die, int32_t parent, const char *function)
{
    struct fnlocals *f = b->f;
    size_t first = f->ranges_nr;

    dw_ranges(b->dbg, die, b->version, b->cu_base, range_add, f);
    ALLOC_GROW(f->scopes, f->scopes_nr + 1, f->scopes_alloc);
    f->scopes[f->scopes_nr] = (struct lscope){
        (uint32_t)first, (uint32_t)(f->ranges_nr - first), parent,
        parent >= 0 ? f->scopes[parent].depth + 1 : 0, function
    };
    return (int32_t)f->scopes_nr++;
}

static void var_add(struct build *b, Dwarf_Die die, Dwarf_Half tag, int32_t scope,
                    uint32_t inline_depth)
{
    struct fnlocals *f = b->f;
    size_t first = f->locs_nr;
    uint32_t n = read_locs(b, die);
    const struct dv_var *g = NULL;
    struct dv_var *v;

    if (!n)
        return;
    /* A function's static is the variable dv_var_at gives for its address. */
    if (n == 1 && f->locs[first].loc.kind == DV_L_ADDR)
        g = dvvars_at(b->m, (uint64_t)f->locs[first].loc.offset, false);
    if (!g || g->addr != (uint64_t)f->locs[first].loc.offset) {
        g = v = arena_alloc(&b->m->arena, sizeof(*v));
        v->kind = tag == DW_TAG_formal_parameter ? DV_V_PARAM : DV_V_LOCAL;
        if (n == 1 && f->locs[first].loc.kind == DV_L_ADDR) {
            v->kind = DV_V_STATIC_LOCAL;
            v->addr = (uint64_t)f->locs[first].loc.offset;
        }
        v->function = f->scopes[scope].function;
        dvvars_describe(b->m, dw_off(b->dbg, die), true, v);
        v->size = dvtypes_size(b->m, v->type);
    }
    ALLOC_GROW(f->ents, f->ents_nr + 1, f->ents_alloc);
    f->ents[f->ents_nr++] = (struct lent){ g, (uint32_t)scope, (uint32_t)first, n, inline_depth };
}

static void walk(struct build *b, Dwarf_Die die, int32_t scope, uint32_t inline_depth)
{
    if (b->f->scopes[scope].depth > LOCALS_MAX_DEPTH)
        return;
    for (Dwarf_Die c = dw_child(b->dbg, die); c; c = dw_next(b->dbg, c)) {
        Dwarf_Half tag = dw_tag(b->dbg, c);
        const char *fn;

        switch (tag) {
        case DW_TAG_formal_parameter:
        case DW_TAG_variable:
            var_add(b, c, tag, scope, inline_depth);
            break;
        case DW_TAG_lexical_block:
        case DW_TAG_try_block:
        case DW_TAG_catch_block:
            walk(b, c, scope_new(b, c, scope, b->f->scopes[scope].function), inline_depth);
            break;
        case DW_TAG_inlined_subroutine:
            fn = symlines_die_name(b->m, dw_off(b->dbg, c));
            walk(b, c, scope_new(b, c, scope, *fn ? fn : NULL), inline_depth + 1);
            break;
        default: /* nested functions are functions of their own (design note 1) */
            break;
        }
    }
}

/* The table of the subprogram at off, read on first use. */
static struct fnlocals *fn_get(struct sym_module *m, Dwarf_Off off)
{
    struct dv_locals *ls = m->locals;
    struct build b = { .m = m, .dbg = m->dbg };
    Dwarf_Off cu_off = 0;
    Dwarf_Error err = NULL;
    Dwarf_Half offsize;
    Dwarf_Die die, cu;
    const char *fn;

    if (!ls)
        ls = m->locals = xcalloc(1, sizeof(*ls));
    if ((b.f = hmap_get(&ls->fns, off)))
        return b.f;
    b.f = xcalloc(1, sizeof(*b.f));
    hmap_put(&ls->fns, off, b.f);
    if (!(die = dw_offdie(m->dbg, off)))
        return b.f;
    if (dwarf_get_version_of_die(die, &b.version, &offsize) != DW_DLV_OK)
        b.version = 5;
    if (dwarf_CU_dieoffset_given_die(die, &cu_off, &err) == DW_DLV_OK &&
        (cu = dw_offdie(m->dbg, cu_off))) {
        if (dwarf_lowpc(cu, &b.cu_base, &err) != DW_DLV_OK)
            b.cu_base = 0;
        dwarf_dealloc(m->dbg, cu, DW_DLA_DIE);
    }
    dw_drop_err(m->dbg, &err);
    b.fb = frame_base(&b, die);
    fn = symlines_die_name(m, off);
    walk(&b, die, scope_new(&b, die, -1, *fn ? fn : NULL), 0);
    dwarf_dealloc(m->dbg, die, DW_DLA_DIE);
    return b.f;
}

/* ---- questions ---- */

/* Whether pc is in scope s and every scope around it (design note 4). */
static bool scope_has(const struct fnlocals *f, int32_t s, uint64_t pc)
{
    for (; s >= 0; s = f->scopes[s].parent) {
        const struct lscope *sc = &f->scopes[s];
        bool in = !sc->range_nr;

        for (uint32_t i = 0; i < sc->range_nr && !in; i++)
            in = pc >= f->ranges[sc->range_first + i].lo && pc < f->ranges[sc->range_first + i].hi;
        if (!in)
            return false;
    }
    return true;
}

struct hit {
    struct dv_local l;
    uint32_t depth;
    size_t order;
};

static int hit_cmp(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;

    if (x->depth != y->depth)
        return x->depth > y->depth ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

int dv_locals_at(struct symbolizer *s, const char *path, uint64_t pc, struct dv_local *out,
                 int max)
{
    struct sym_module *m = dvvars_module(s, path, NULL);
    struct fnlocals *f;
    struct hit *hits;
    size_t n = 0;
    long j;

    if (!m || !m->dbg || max < 1)
        return 0;
    sym_module_lines(m);
    j = span_find(&m->funcs, pc, false);
    if (j < 0 || !m->scopes[m->funcs.v[j].idx].die)
        return 0;
    f = fn_get(m, m->scopes[m->funcs.v[j].idx].die);
    hits = xmalloc((f->ents_nr ? f->ents_nr : 1) * sizeof(*hits));
    for (size_t i = 0; i < f->ents_nr; i++) {
        const struct lent *e = &f->ents[i];

        if (!scope_has(f, (int32_t)e->scope, pc))
            continue;
        for (uint32_t k = 0; k < e->loc_nr; k++) {
            const struct lloc *l = &f->locs[e->loc_first + k];

            if (pc >= l->lo && pc < l->hi) {
                hits[n++] = (struct hit){ { e->var, l->loc, (int)e->inline_depth },
                                          f->scopes[e->scope].depth, i };
                break;
            }
        }
    }
    if (n)
        qsort(hits, n, sizeof(*hits), hit_cmp);
    if (n > (size_t)max)
        n = (size_t)max;
    for (size_t i = 0; i < n; i++)
        out[i] = hits[i].l;
    free(hits);
    return (int)n;
}

void dvlocals_free(struct sym_module *m)
{
    struct dv_locals *ls = m->locals;

    if (!ls)
        return;
    HMAP_FOR_EACH(&ls->fns, i) {
        struct fnlocals *f = ls->fns.vals[i];

        free(f->ranges);
        free(f->scopes);
        free(f->ents);
        free(f->locs);
        free(f);
    }
    hmap_clear(&ls->fns);
    free(ls);
    m->locals = NULL;
}
