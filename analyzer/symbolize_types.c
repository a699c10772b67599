/* symbolize_types.c: a module's DWARF types (dwarfvars.h dv_type, dv_type_strip,
 * dv_type_by_name), read when first asked for.
 *
 * This file implements type ids and what they stand for. An id is given out for a DIE when
 * something first refers to it (a variable's or member's DW_AT_type, a pointer's target);
 * its slot is read in three steps, each on first need: the basics (kind, size, target,
 * count, the stripped id), the C/C++ spelling, and the members; and the name index of
 * struct, class and union types.
 *
 * Design notes:
 *  1. Ids are 1 + an index into types->v; types->ids maps (DIE offset, array dimension) to
 *     them. A struct/class/union declaration whose name has a definition in the module gets
 *     the definition's id (the name index comes from the pass over the DWARF, which ends
 *     before the first id is given out), so a pointer to an incomplete type leads to the
 *     complete one. Same-named definitions in different units are not told apart: the first
 *     one wins.
 *  2. A multi-dimensional array is one DIE with a subrange per dimension; dimension d > 0 is
 *     a slot of its own keyed by (DIE, d), so arrays of arrays need no DIE each.
 *  3. Names are spelled by symbolize_typenames.c. Members are read in declaration order and
 *     sorted by offset (stable) only when that order differs.
 *  4. Every step is bounded: reference chains by DVT_MAX_DEPTH (a slot being read is marked
 *     busy, so a cycle in corrupt DWARF ends early), members and dimensions by count.
 *
 * The slots (struct dv_tslot) are shared with symbolize_typenames.c.
 *
 * Context: analyzer only, single-threaded.
 */
#define _GNU_SOURCE
#include "symbolize_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usage.h"

#define TYPE_MAX_DIMS    16      /* array dimensions read */
#define TYPE_MAX_MEMBERS 65536   /* members read per struct */

struct name_ent {
    const char *qname; /* interned: compared by address */
    Dwarf_Off def, decl;
    struct name_ent *next;
};

struct cu_lang {
    Dwarf_Off off;
    bool cxx;
};

struct dv_types {
    struct dv_tslot **v;
    size_t nr, alloc;
    struct hmap ids;    /* DIE offset | dimension << 56 -> id */
    struct hmap byname; /* hash of a qualified name -> struct name_ent chain */
    struct hmap qnames; /* DIE offset -> qualified name of a nested type */
    struct cu_lang *cus;
    size_t cus_nr, cus_alloc;
};

static struct dv_types *types_of(struct sym_module *m)
{
    if (!m->types)
        m->types = xcalloc(1, sizeof(*m->types));
    return m->types;
}

/* ---- the pass over the DWARF feeds names in (symbolize_vars.c) ---- */

void dvtypes_note_cu(struct sym_module *m, Dwarf_Off cu_off, bool cxx)
{
    struct dv_types *ts = types_of(m);

    ALLOC_GROW(ts->cus, ts->cus_nr + 1, ts->cus_alloc);
    ts->cus[ts->cus_nr++] = (struct cu_lang){ cu_off, cxx };
}

static struct name_ent *name_find(struct dv_types *ts, const char *name)
{
    struct name_ent *e = hmap_get(&ts->byname, hash_bytes(name, strlen(name)));

    while (e && strcmp(e->qname, name))
        e = e->next;
    return e;
}

void dvtypes_note(struct sym_module *m, Dwarf_Off off, Dwarf_Half tag, const char *qname,
                  bool nested, bool decl)
{
    struct dv_types *ts = types_of(m);
    struct name_ent *e;
    uint64_t h;

    if (nested)
        hmap_put(&ts->qnames, off, (void *)qname);
    if (tag != DW_TAG_structure_type && tag != DW_TAG_class_type && tag != DW_TAG_union_type)
        return;
    h = hash_bytes(qname, strlen(qname));
    for (e = hmap_get(&ts->byname, h); e && e->qname != qname; e = e->next)
        ;
    if (!e) {
        e = arena_alloc(&m->arena, sizeof(*e));
        e->qname = qname;
        e->next = hmap_get(&ts->byname, h);
        hmap_put(&ts->byname, h, e);
    }
    if (decl && !e->decl)
        e->decl = off;
    else if (!decl && !e->def)
        e->def = off;
}

static bool cu_is_cxx(const struct dv_types *ts, Dwarf_Off off)
{
    size_t lo = 0, hi = ts->cus_nr;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (ts->cus[mid].off <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && ts->cus[lo - 1].cxx;
}

static bool is_record(Dwarf_Half tag)
{
    return tag == DW_TAG_structure_type || tag == DW_TAG_class_type || tag == DW_TAG_union_type;
}

/* ---- ids (design note 1) ---- */

struct dv_tslot *dvtypes_slot(struct sym_module *m, dv_type_id id)
{
    return m->types && id && id <= m->types->nr ? m->types->v[id - 1] : NULL;
}

const char *dvtypes_qname(struct sym_module *m, Dwarf_Die die, Dwarf_Off off)
{
    const char *q = m->types ? hmap_get(&m->types->qnames, off) : NULL;

    return q ? q : dw_string(m->dbg, die, DW_AT_name);
}

static dv_type_id id_for(struct sym_module *m, Dwarf_Off off, uint32_t dim)
{
    struct dv_types *ts = types_of(m);
    uint64_t key = off | (uint64_t)dim << 56;
    dv_type_id id = (dv_type_id)(uintptr_t)hmap_get(&ts->ids, key);
    Dwarf_Half tag = DW_TAG_array_type;
    struct dv_tslot *t;

    if (id || off >> 56 || ts->nr >= UINT32_MAX - 1)
        return id;
    if (!dim) {
        Dwarf_Die die = dw_offdie(m->dbg, off);

        if (!die)
            return 0;
        tag = dw_tag(m->dbg, die);
        if (is_record(tag) && dw_has(m->dbg, die, DW_AT_declaration)) {
            const char *name = dvtypes_qname(m, die, off);
            struct name_ent *e = name ? name_find(ts, name) : NULL;

            if (e && e->def && e->def != off && !(e->def >> 56))
                id = id_for(m, e->def, 0); /* a definition: no further hop */
        }
        dwarf_dealloc(m->dbg, die, DW_DLA_DIE);
        if (id) {
            hmap_put(&ts->ids, key, (void *)(uintptr_t)id);
            return id;
        }
    }
    t = arena_alloc(&m->arena, sizeof(*t));
    t->die = off;
    t->dim = dim;
    t->tag = tag;
    t->cxx = cu_is_cxx(ts, off);
    ALLOC_GROW(ts->v, ts->nr + 1, ts->alloc);
    ts->v[ts->nr++] = t;
    id = (dv_type_id)ts->nr;
    hmap_put(&ts->ids, key, (void *)(uintptr_t)id);
    return id;
}

dv_type_id dvtypes_of(struct sym_module *m, Dwarf_Die die)
{
    Dwarf_Off off;

    return dw_ref_off(m->dbg, die, DW_AT_type, &off) ? id_for(m, off, 0) : 0;
}

/* ---- basics: kind, size, target, count, strip ---- */

/* Element counts of the array die's dimensions into counts[]; returns how many (>= 1). */
static int array_dims(struct sym_module *m, Dwarf_Die die, uint64_t *counts)
{
    int n = 0;

    for (Dwarf_Die c = dw_child(m->dbg, die); c; c = dw_next(m->dbg, c)) {
        Dwarf_Unsigned v = 0, lower = 0;
        Dwarf_Half tag = dw_tag(m->dbg, c);

        if ((tag != DW_TAG_subrange_type && tag != DW_TAG_enumeration_type) || n == TYPE_MAX_DIMS)
            continue;
        counts[n] = 0;
        if (dw_udata(m->dbg, c, DW_AT_count, &v)) {
            counts[n] = v;
        } else if (dw_udata(m->dbg, c, DW_AT_upper_bound, &v)) {
            /* C's lower bound is 0; an upper bound of -1 ([0]) or an expression (a VLA)
             * reads as no count at all. */
            dw_udata(m->dbg, c, DW_AT_lower_bound, &lower);
            counts[n] = v >= lower && v - lower < UINT64_MAX ? v - lower + 1 : 0;
        }
        n++;
    }
    if (!n)
        counts[n++] = 0;
    return n;
}

/* The basics of t from its DIE. */
static void basic_read(struct sym_module *m, struct dv_tslot *t, dv_type_id id, Dwarf_Die die,
                       int depth)
{
    Dwarf_Unsigned size = 0;
    bool has_size = dw_udata(m->dbg, die, DW_AT_byte_size, &size);
    struct dv_tslot *n;

    t->strip = id;
    t->t.size = has_size ? size : 0;
    switch (t->tag) {
    case DW_TAG_base_type:
        t->t.kind = DV_T_BASE;
        break;
    case DW_TAG_enumeration_type:
        t->t.kind = DV_T_ENUM;
        break;
    case DW_TAG_structure_type:
        t->t.kind = DV_T_STRUCT;
        break;
    case DW_TAG_class_type:
        t->t.kind = DV_T_CLASS;
        break;
    case DW_TAG_union_type:
        t->t.kind = DV_T_UNION;
        break;
    case DW_TAG_pointer_type:
    case DW_TAG_reference_type:
    case DW_TAG_rvalue_reference_type: {
        Dwarf_Half asize = 8;
        Dwarf_Error err = NULL;

        t->t.kind = DV_T_POINTER;
        t->t.target = t->next = dvtypes_of(m, die);
        if (!has_size && dwarf_get_die_address_size(die, &asize, &err) == DW_DLV_OK)
            t->t.size = asize;
        else if (!has_size)
            t->t.size = 8;
        dw_drop_err(m->dbg, &err);
        break;
    }
    case DW_TAG_subroutine_type:
        t->t.kind = DV_T_FUNCTION;
        t->next = dvtypes_of(m, die);
        break;
    case DW_TAG_array_type: {
        uint64_t counts[TYPE_MAX_DIMS];
        int dims = array_dims(m, die, counts);

        t->t.kind = DV_T_ARRAY;
        t->t.count = counts[t->dim < (uint32_t)dims ? t->dim : 0];
        t->t.target = t->dim + 1 < (uint32_t)dims ? id_for(m, t->die, t->dim + 1)
                                                  : dvtypes_of(m, die);
        if (t->dim || !has_size) {
            n = dvtypes_basic(m, t->t.target, depth + 1);
            t->t.size = n && n->t.size && t->t.count <= UINT64_MAX / n->t.size
                                ? t->t.count * n->t.size : 0;
        }
        break;
    }
    case DW_TAG_typedef:
    case DW_TAG_const_type:
    case DW_TAG_volatile_type:
    case DW_TAG_restrict_type:
    case DW_TAG_atomic_type:
    case DW_TAG_immutable_type:
    case DW_TAG_packed_type:
    case DW_TAG_shared_type:
        t->next = dvtypes_of(m, die);
        n = dvtypes_basic(m, t->next, depth + 1);
        t->strip = n && !n->busy ? n->strip : 0;
        if (t->strip && (n = dvtypes_slot(m, t->strip)) && (n->state & DVT_BASIC)) {
            t->t.kind = n->t.kind;
            t->t.size = n->t.size;
            t->t.target = n->t.target;
            t->t.count = n->t.count;
        }
        break;
    default: /* unspecified (nullptr_t), pointer to member, ...: a name and a size only */
        t->t.kind = DV_T_UNKNOWN;
        break;
    }
}

struct dv_tslot *dvtypes_basic(struct sym_module *m, dv_type_id id, int depth)
{
    struct dv_tslot *t = dvtypes_slot(m, id);
    Dwarf_Die die;

    if (!t || (t->state & DVT_BASIC) || t->busy || depth > DVT_MAX_DEPTH)
        return t;
    die = dw_offdie(m->dbg, t->die);
    if (die) {
        t->busy = true;
        basic_read(m, t, id, die, depth);
        t->busy = false;
        dwarf_dealloc(m->dbg, die, DW_DLA_DIE);
    }
    t->state |= DVT_BASIC;
    return t;
}

uint64_t dvtypes_size(struct sym_module *m, dv_type_id t)
{
    struct dv_tslot *s = dvtypes_basic(m, t, 0);

    return s ? s->t.size : 0;
}

/* ---- members ---- */

/* The byte offset of member die: DW_AT_data_member_location as a constant or (DWARF 2-3) a
 * DW_OP_plus_uconst expression, DW_AT_data_bit_offset / 8, else 0 (unions, first members).
 * False for any other expression (a virtual base). */
static bool member_offset(struct sym_module *m, Dwarf_Die die, uint64_t *off)
{
    unsigned char e[16];
    size_t len = sizeof(e);
    Dwarf_Unsigned v = 0;

    *off = 0;
    if (dw_udata(m->dbg, die, DW_AT_data_member_location, &v)) {
        *off = v;
        return true;
    }
    if (dw_expr(m->dbg, die, DW_AT_data_member_location, e, &len)) {
        int shift = 0;

        if (len < 2 || e[0] != DW_OP_plus_uconst)
            return false;
        for (size_t i = 1; i < len && shift < 64; i++, shift += 7) {
            *off |= (uint64_t)(e[i] & 0x7f) << shift;
            if (!(e[i] & 0x80))
                return i == len - 1;
        }
        return false;
    }
    if (dw_has(m->dbg, die, DW_AT_data_member_location))
        return false; /* a location list: nothing a struct layout can use */
    if (dw_udata(m->dbg, die, DW_AT_data_bit_offset, &v))
        *off = v / 8;
    return true;
}

struct member_ord {
    struct dv_member mb;
    size_t order;
};

static int member_cmp(const void *a, const void *b)
{
    const struct member_ord *x = a, *y = b;

    if (x->mb.offset != y->mb.offset)
        return x->mb.offset < y->mb.offset ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order; /* bit-fields sharing a byte */
}

static void members_read(struct sym_module *m, struct dv_tslot *t)
{
    struct member_ord *v = NULL;
    size_t nr = 0, alloc = 0;
    Dwarf_Die die = dw_offdie(m->dbg, t->die);
    struct dv_member *out;
    bool sorted = true;

    if (!die)
        return;
    for (Dwarf_Die c = dw_child(m->dbg, die); c; c = dw_next(m->dbg, c)) {
        Dwarf_Half tag = dw_tag(m->dbg, c);
        struct dv_member mb = { "", 0, 0 };
        const char *name;

        /* Static members are declarations (DWARF 5: DW_TAG_variable, so not seen here). */
        if ((tag != DW_TAG_member && tag != DW_TAG_inheritance) || nr == TYPE_MAX_MEMBERS ||
            dw_has(m->dbg, c, DW_AT_declaration) || dw_has(m->dbg, c, DW_AT_external) ||
            !member_offset(m, c, &mb.offset))
            continue;
        mb.type = dvtypes_of(m, c);
        if (tag == DW_TAG_inheritance) {
            struct dv_tslot *b = dvtypes_basic(m, mb.type, 0);

            if (b)
                dvtypes_name(m, b, mb.type);
            mb.name = b ? b->t.name : "?";
        } else if ((name = dw_string(m->dbg, c, DW_AT_name))) {
            mb.name = strpool_intern(&m->strings, name);
        }
        if (nr && v[nr - 1].mb.offset > mb.offset)
            sorted = false;
        ALLOC_GROW(v, nr + 1, alloc);
        v[nr] = (struct member_ord){ mb, nr };
        nr++;
    }
    dwarf_dealloc(m->dbg, die, DW_DLA_DIE);
    if (!sorted) /* C++ may declare a base after members it precedes; C never */
        qsort(v, nr, sizeof(*v), member_cmp);
    out = nr ? arena_alloc(&m->arena, nr * sizeof(*out)) : NULL;
    for (size_t i = 0; i < nr; i++)
        out[i] = v[i].mb;
    t->t.members = out;
    t->t.nr_members = (uint32_t)nr;
    free(v);
}

/* t complete: basics, name and, for a struct, class or union (or a typedef of one), its
 * members. */
static struct dv_tslot *full(struct sym_module *m, dv_type_id id)
{
    struct dv_tslot *t = dvtypes_basic(m, id, 0), *s;

    if (!t)
        return NULL;
    dvtypes_name(m, t, id);
    if (t->state & DVT_MEMBERS)
        return t;
    t->state |= DVT_MEMBERS;
    s = dvtypes_slot(m, t->strip);
    if (!s || (t->t.kind != DV_T_STRUCT && t->t.kind != DV_T_UNION && t->t.kind != DV_T_CLASS))
        return t;
    if (s != t)
        s = full(m, t->strip);
    else
        members_read(m, t);
    t->t.members = s->t.members;
    t->t.nr_members = s->t.nr_members;
    return t;
}

/* ---- dwarfvars.h ---- */

const struct dv_type *dv_type(struct symbolizer *s, const char *path, dv_type_id t)
{
    struct sym_module *m = dvvars_module(s, path, NULL);
    struct dv_tslot *ts = m ? full(m, t) : NULL;

    return ts ? &ts->t : NULL;
}

dv_type_id dv_type_strip(struct symbolizer *s, const char *path, dv_type_id t)
{
    struct sym_module *m = dvvars_module(s, path, NULL);
    struct dv_tslot *ts = m ? dvtypes_basic(m, t, 0) : NULL;

    return ts ? ts->strip : 0;
}

uint64_t dv_type_key(struct symbolizer *s, const char *path, dv_type_id t)
{
    struct sym_module *m = dvvars_module(s, path, NULL);
    struct dv_tslot *ts = m ? dvtypes_slot(m, t) : NULL;

    return ts ? (uint64_t)ts->die | (uint64_t)ts->dim << 56 : 0;
}

dv_type_id dv_type_of_key(struct symbolizer *s, const char *path, uint64_t key)
{
    struct sym_module *m = dvvars_module(s, path, NULL);

    return m && m->dbg && key ? id_for(m, key & ((1ull << 56) - 1), (uint32_t)(key >> 56)) : 0;
}

dv_type_id dv_type_by_name(struct symbolizer *s, const char *path, const char *name)
{
    struct sym_module *m = dvvars_module(s, path, NULL);
    static const char *const kw[] = { "struct ", "class ", "union " };
    struct name_ent *e;

    if (!m || !m->types || !name)
        return 0;
    for (size_t i = 0; i < sizeof(kw) / sizeof(*kw); i++)
        if (!strncmp(name, kw[i], strlen(kw[i])))
            name += strlen(kw[i]);
    e = name_find(m->types, name);
    return !e ? 0 : id_for(m, e->def ? e->def : e->decl, 0);
}

void dvtypes_free(struct sym_module *m)
{
    struct dv_types *ts = m->types;

    if (!ts)
        return;
    free(ts->v);
    hmap_clear(&ts->ids);
    hmap_clear(&ts->byname);
    hmap_clear(&ts->qnames);
    free(ts->cus);
    free(ts);
    m->types = NULL;
}
