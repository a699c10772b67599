/* symbolize_vars.c: a module's variables with a fixed place (dwarfvars.h dv_open, dv_var_at,
 * dv_tls_var_at): globals, function-static locals and TLS variables, from its DWARF.
 *
 * This file implements the one pass over all of a module's DWARF that dwarfvars.h makes on
 * first use: it collects every variable whose location is a link address (DW_OP_addr,
 * DW_OP_addrx) or a TLS offset, and feeds the names of struct, class, union, enum and typedef
 * DIEs to symbolize_types.c (its name index and the qualified names of nested C++ types).
 * Then it names the variables, gives them types and sizes, and indexes them by address.
 *
 * Design notes:
 *  1. The pass only notes offsets; names, types and sizes come after it, because a variable's
 *     type may be a declaration whose definition lies in a later unit, and type ids resolve
 *     declarations through the name index the pass completes (symbolize_types.c note 1).
 *  2. A variable is named by the first DIE on its specification / abstract_origin chain with
 *     a C++ linkage name (demangled: "ns::Cls::s_inst", ABI tags dropped), else by its
 *     DW_AT_name; static locals always by DW_AT_name, with the function beside it.
 *  3. Locations are read from the expression bytes, not through libdwarf's location lists:
 *     only a lone DW_OP_addr, or a constant followed by DW_OP_GNU_push_tls_address /
 *     DW_OP_form_tls_address, is a fixed place, and the pass meets every local's location
 *     too, so it must be cheap to say no. DWARF 5 from clang gives the address as
 *     DW_OP_addrx (an index into .debug_addr from the unit's DW_AT_addr_base), which
 *     libdwarf 20210528 does not resolve in its location operands either: dw_addrx looks it
 *     up. Split DWARF's DW_OP_constx (GNU: DW_OP_GNU_const_index) likewise holds a TLS
 *     offset; DW_OP_GNU_addr_index is DW_OP_addrx before DWARF 5.
 *  4. Variables go into span indexes like functions (symbolize.c note 1): the smallest that
 *     holds an address names it. Where none does, ELF object symbols do (symbolize_objsyms.c).
 *  5. DIE nesting and reference chains are bounded, so corrupt DWARF cannot loop or overflow
 *     the stack.
 *
 * Context: analyzer only, single-threaded.
 */
#define _GNU_SOURCE
#include "symbolize_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usage.h"

#define VARS_MAX_DEPTH 128 /* DIE nesting followed */
#define VARS_MAX_HOPS  8   /* specification/abstract_origin links per name */
#define VARS_MAX_QNAME 1024 /* qualified name prefix kept for nested C++ types */

/* A variable seen by the pass (design note 1). */
struct rawvar {
    Dwarf_Off die;
    Dwarf_Off fn; /* enclosing subprogram or inlined subroutine; 0 at file scope */
    uint64_t addr;
    bool tls;
};

struct dv_vars {
    struct dv_var **v;
    size_t nr, alloc;
    struct span_index globals, tls; /* idx: into v */
};

struct pass {
    struct sym_module *m;
    Dwarf_Debug dbg;
    bool cxx;
    Dwarf_Half addr_size;
    struct rawvar *raw;
    size_t raw_nr, raw_alloc;
    char prefix[VARS_MAX_QNAME]; /* C++: "ns::Cls::" of the DIEs being visited */
};

/* ---- the pass ---- */

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;

    while (n-- > 0)
        v = v << 8 | p[n];
    return v;
}

/* The ULEB128 number at e[*n] (e[0..len)) into *v; false if it runs past the end. */
static bool get_uleb(const unsigned char *e, size_t len, size_t *n, uint64_t *v)
{
    int shift = 0;

    *v = 0;
    for (; *n < len && shift < 64; shift += 7) {
        unsigned char b = e[(*n)++];

        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* Whether die's DW_AT_location is a fixed place (design note 3): *addr and *tls. */
static bool fixed_location(struct pass *p, Dwarf_Die die, uint64_t *addr, bool *tls)
{
    unsigned char e[32];
    size_t len = sizeof(e), n = 1;
    uint64_t idx;
    bool is_addr = false;

    if (!dw_expr(p->dbg, die, DW_AT_location, e, &len) || !len)
        return false;
    switch (e[0]) {
    case DW_OP_addr:
        n = 1 + p->addr_size;
        if (len < n || (p->addr_size != 4 && p->addr_size != 8))
            return false;
        *addr = get_le(e + 1, p->addr_size);
        is_addr = true;
        break;
    case DW_OP_addrx: /* DWARF 5 (clang): an index into the unit's .debug_addr */
    case DW_OP_GNU_addr_index:
        if (!get_uleb(e, len, &n, &idx) || !dw_addrx(p->dbg, die, idx, addr))
            return false;
        is_addr = true;
        break;
    case DW_OP_const4u:
    case DW_OP_const8u:
        n = e[0] == DW_OP_const4u ? 5 : 9;
        if (len < n)
            return false;
        *addr = get_le(e + 1, (int)n - 1);
        break;
    case DW_OP_constu:
        if (!get_uleb(e, len, &n, addr))
            return false;
        break;
    case DW_OP_constx: /* a TLS offset kept in .debug_addr (split DWARF) */
    case DW_OP_GNU_const_index:
        if (!get_uleb(e, len, &n, &idx) || !dw_addrx(p->dbg, die, idx, addr))
            return false;
        break;
    default:
        return false;
    }
    *tls = len == n + 1 && (e[n] == DW_OP_GNU_push_tls_address || e[n] == DW_OP_form_tls_address);
    return len == n ? is_addr : *tls;
}

static void visit_children(struct pass *p, Dwarf_Die die, Dwarf_Off fn, int depth);

/* A type's name for the index: "ns::Cls::Name" in C++, else its name as is. */
static void note_type(struct pass *p, Dwarf_Die die, Dwarf_Half tag, Dwarf_Off fn, int depth)
{
    const char *name = dw_string(p->dbg, die, DW_AT_name), *q;
    size_t plen = strlen(p->prefix);
    Dwarf_Off off = dw_off(p->dbg, die);
    bool nested = p->cxx && plen;

    /* Types local to a function are left out: their names may clash with file-scope ones. */
    if (!name || !*name || fn || !off)
        return;
    if (nested) {
        char *s = xasprintf("%s%s", p->prefix, name);

        q = strpool_intern(&p->m->strings, s);
        free(s);
    } else {
        q = strpool_intern(&p->m->strings, name);
    }
    dvtypes_note(p->m, off, tag, q, nested, dw_has(p->dbg, die, DW_AT_declaration));
    /* C++ nests types (and their names) in classes. */
    if (p->cxx && tag != DW_TAG_typedef && tag != DW_TAG_enumeration_type &&
        strlen(q) + 2 < sizeof(p->prefix)) {
        snprintf(p->prefix, sizeof(p->prefix), "%s::", q);
        visit_children(p, die, fn, depth + 1);
        p->prefix[plen] = '\0';
    }
}

static void visit(struct pass *p, Dwarf_Die die, Dwarf_Off fn, int depth)
{
    Dwarf_Half tag = dw_tag(p->dbg, die);
    struct rawvar rv = { 0 };
    size_t plen;

    switch (tag) {
    case DW_TAG_variable:
        if (!fixed_location(p, die, &rv.addr, &rv.tls) || !(rv.die = dw_off(p->dbg, die)))
            break;
        rv.fn = fn;
        ALLOC_GROW(p->raw, p->raw_nr + 1, p->raw_alloc);
        p->raw[p->raw_nr++] = rv;
        break;
    case DW_TAG_namespace: {
        const char *name = dw_string(p->dbg, die, DW_AT_name);

        plen = strlen(p->prefix);
        if (!name)
            name = "(anonymous namespace)"; /* as __cxa_demangle spells it */
        if (plen + strlen(name) + 3 > sizeof(p->prefix))
            break;
        snprintf(p->prefix + plen, sizeof(p->prefix) - plen, "%s::", name);
        visit_children(p, die, fn, depth + 1);
        p->prefix[plen] = '\0';
        break;
    }
    case DW_TAG_structure_type:
    case DW_TAG_class_type:
    case DW_TAG_union_type:
    case DW_TAG_enumeration_type:
    case DW_TAG_typedef:
        note_type(p, die, tag, fn, depth);
        break;
    case DW_TAG_subprogram:
        /* Declarations (class members) hold no variables. */
        if (!dw_has(p->dbg, die, DW_AT_declaration))
            visit_children(p, die, dw_off(p->dbg, die), depth + 1);
        break;
    case DW_TAG_inlined_subroutine:
        visit_children(p, die, dw_off(p->dbg, die), depth + 1);
        break;
    case DW_TAG_lexical_block:
    case DW_TAG_try_block:
    case DW_TAG_catch_block:
    case DW_TAG_module:
        visit_children(p, die, fn, depth + 1);
        break;
    default:
        break;
    }
}

static void visit_children(struct pass *p, Dwarf_Die die, Dwarf_Off fn, int depth)
{
    if (depth > VARS_MAX_DEPTH)
        return;
    for (Dwarf_Die c = dw_child(p->dbg, die); c; c = dw_next(p->dbg, c))
        visit(p, c, fn, depth);
}

static bool lang_is_cxx(Dwarf_Unsigned lang)
{
    return lang == DW_LANG_C_plus_plus || lang == DW_LANG_C_plus_plus_03 ||
           lang == DW_LANG_C_plus_plus_11 || lang == DW_LANG_C_plus_plus_14 ||
           lang == 0x2a /* C_plus_plus_17, DWARF 6 */ || lang == 0x2b /* C_plus_plus_20 */ ||
           lang == DW_LANG_ObjC_plus_plus;
}

static void pass_cu(Dwarf_Die cu, Dwarf_Half version, void *arg)
{
    struct pass *p = arg;
    Dwarf_Unsigned lang = 0;
    Dwarf_Error err = NULL;
    Dwarf_Half tag = dw_tag(p->dbg, cu);

    (void)version;
    if (tag != DW_TAG_compile_unit && tag != DW_TAG_partial_unit)
        return;
    if (dwarf_get_die_address_size(cu, &p->addr_size, &err) != DW_DLV_OK)
        p->addr_size = 8;
    dw_drop_err(p->dbg, &err);
    p->cxx = dw_udata(p->dbg, cu, DW_AT_language, &lang) && lang_is_cxx(lang);
    p->prefix[0] = '\0';
    dvtypes_note_cu(p->m, dw_off(p->dbg, cu), p->cxx);
    visit_children(p, cu, 0, 0);
}

/* ---- naming and indexing (design notes 1, 2, 4) ---- */

const char *dvvars_untag(struct sym_module *m, const char *name)
{
    const char *tag = strstr(name, "[abi:"), *end;
    char *s, *w;

    if (!tag)
        return name;
    w = s = xstrdup(name);
    for (const char *r = name; *r;) {
        if (!strncmp(r, "[abi:", 5) && (end = strchr(r, ']'))) {
            r = end + 1;
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
    name = strpool_intern(&m->strings, s);
    free(s);
    return name;
}

void dvvars_describe(struct sym_module *m, Dwarf_Off off, bool local, struct dv_var *v)
{
    Dwarf_Die die = dw_offdie(m->dbg, off), next;
    const char *plain = NULL;

    for (int hop = 0; die && hop < VARS_MAX_HOPS; hop++) {
        const char *s = local ? NULL : dw_string(m->dbg, die, DW_AT_linkage_name);

        if (!v->name && s && !strncmp(s, "_Z", 2))
            v->name = dvvars_untag(m, module_demangle(m, s));
        if (!plain && (s = dw_string(m->dbg, die, DW_AT_name)) && *s)
            plain = s;
        if (!v->type)
            v->type = dvtypes_of(m, die);
        if (v->name && v->type)
            break;
        next = dw_ref(m->dbg, die, DW_AT_specification);
        if (!next)
            next = dw_ref(m->dbg, die, DW_AT_abstract_origin);
        dwarf_dealloc(m->dbg, die, DW_DLA_DIE);
        die = next;
    }
    if (die)
        dwarf_dealloc(m->dbg, die, DW_DLA_DIE);
    if (!v->name)
        v->name = strpool_intern(&m->strings, plain ? plain : "?");
}

static void vars_index(struct sym_module *m, struct dv_vars *vs, struct pass *p)
{
    struct hmap fn_names = { 0 }; /* fn DIE offset -> its name */

    for (size_t i = 0; i < p->raw_nr; i++) {
        const struct rawvar *raw = &p->raw[i];
        struct dv_var *v = arena_alloc(&m->arena, sizeof(*v));
        uint64_t size;

        v->kind = raw->tls ? DV_V_TLS : raw->fn ? DV_V_STATIC_LOCAL : DV_V_GLOBAL;
        v->addr = raw->addr;
        if (raw->fn && !(v->function = hmap_get(&fn_names, raw->fn))) {
            v->function = symlines_die_name(m, raw->fn);
            hmap_put(&fn_names, raw->fn, (void *)v->function);
        }
        dvvars_describe(m, raw->die, raw->fn != 0, v);
        /* clang -O2 may drop the function and keep its static under a nameless DIE. */
        if (raw->fn && !*v->function && !raw->tls)
            v->function = dvobj_static_function(m, v->addr, v->name);
        if (raw->fn && (!v->function || !*v->function))
            v->function = NULL;
        v->size = dvtypes_size(m, v->type);
        if (!v->size)
            v->size = dvobj_size_at(m, v->addr, raw->tls);
        if (vs->nr >= UINT32_MAX)
            break;
        ALLOC_GROW(vs->v, vs->nr + 1, vs->alloc);
        vs->v[vs->nr] = v;
        /* A variable of unknown size still names its first byte. */
        size = v->size ? v->size : 1;
        span_add(raw->tls ? &vs->tls : &vs->globals, v->addr,
                 v->addr + size > v->addr ? v->addr + size : UINT64_MAX, (uint32_t)vs->nr, 0);
        vs->nr++;
    }
    hmap_clear(&fn_names);
    span_finish(&vs->globals);
    span_finish(&vs->tls);
}

struct sym_module *dvvars_module(struct symbolizer *s, const char *path, const char *build_id_hex)
{
    struct sym_module *m = sym_module(s, path, build_id_hex);
    struct pass *p;

    if (!m || m->vars)
        return m;
    m->vars = xcalloc(1, sizeof(*m->vars));
    if (!m->dbg) {
        span_finish(&m->vars->globals);
        span_finish(&m->vars->tls);
        return m;
    }
    p = xcalloc(1, sizeof(*p));
    p->m = m;
    p->dbg = m->dbg;
    dw_for_each_cu(m->dbg, pass_cu, p);
    vars_index(m, m->vars, p);
    free(p->raw);
    free(p);
    return m;
}

/* ---- dwarfvars.h ---- */

bool dv_open(struct symbolizer *s, const char *path, const char *build_id_hex)
{
    return dvvars_module(s, path, build_id_hex) != NULL;
}

const struct dv_var *dvvars_at(struct sym_module *m, uint64_t a, bool tls)
{
    struct span_index *x = tls ? &m->vars->tls : &m->vars->globals;
    long j = span_find(x, a, false);

    return j >= 0 ? m->vars->v[x->v[j].idx] : NULL;
}

static const struct dv_var *var_at(struct symbolizer *s, const char *path, uint64_t a, bool tls)
{
    struct sym_module *m = dvvars_module(s, path, NULL);
    const struct dv_var *v;

    if (!m)
        return NULL;
    v = dvvars_at(m, a, tls);
    return v ? v : dvobj_var_at(m, a, tls);
}

const struct dv_var *dv_var_at(struct symbolizer *s, const char *path, uint64_t a)
{
    return var_at(s, path, a, false);
}

const struct dv_var *dv_tls_var_at(struct symbolizer *s, const char *path, uint64_t o)
{
    return var_at(s, path, o, true);
}

bool dv_has_dwarf(struct symbolizer *s, const char *path)
{
    struct sym_module *m = dvvars_module(s, path, NULL);
    return m && m->dbg;
}

void dvvars_free(struct sym_module *m)
{
    if (!m->vars)
        return;
    free(m->vars->v);
    span_clear(&m->vars->globals);
    span_clear(&m->vars->tls);
    free(m->vars);
    m->vars = NULL;
}
