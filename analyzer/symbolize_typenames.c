/* symbolize_typenames.c: the C/C++ spelling of a module's DWARF types ("struct entry *[512]",
 * "const char *", "void (*)(int)", "ns::Widget"), made when a type is first asked for.
 *
 * This file implements spelling a type as a C declarator: each type wraps the declarator
 * built so far around its own part, so "struct entry *[512]" comes out of array -> pointer ->
 * struct with the declarators "", "[512]", "*[512]". A suffix ("[N]", "(params)") binds
 * tighter than a pointer, so a pointer declarator gets parentheses before one: "(*)[4]".
 * Struct, union and enum names get their keyword in C units only; C++ units spell classes
 * qualified with their namespaces and classes, as noted by the pass over the DWARF
 * (symbolize_vars.c). Anonymous types are "struct {...}" and the like.
 *
 * Spelling follows reference chains at most DVT_MAX_DEPTH deep (then "?"), so corrupt DWARF
 * cannot loop.
 *
 * Context: analyzer only, single-threaded.
 */
#define _GNU_SOURCE
#include "symbolize_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usage.h"

#define TYPE_MAX_PARAMS 32 /* parameters spelled per function type */

/* "a inner", or a alone when inner is empty; malloc'd. */
static char *join(const char *a, const char *inner)
{
    return xasprintf("%s%s%s", a, *inner ? " " : "", inner);
}

/* The name a struct, union, enum, class, typedef or base type goes by. */
static char *base_name(struct sym_module *m, const struct dv_tslot *t, Dwarf_Die die)
{
    const char *kw = t->tag == DW_TAG_structure_type   ? "struct"
                     : t->tag == DW_TAG_union_type       ? "union"
                     : t->tag == DW_TAG_enumeration_type ? "enum"
                     : t->tag == DW_TAG_class_type       ? "class"
                                                         : NULL;
    const char *name = dvtypes_qname(m, die, t->die);

    if (!name || !*name)
        return kw ? xasprintf("%s {...}", kw) : xstrdup("?");
    if (kw && !t->cxx)
        return xasprintf("%s %s", kw, name);
    return xstrdup(name);
}

/* The tag of t after any qualifiers (not typedefs): whether a qualifier applies to a
 * pointer ("char *const") or to what a declarator names ("const char"). */
static Dwarf_Half tag_under_cv(struct sym_module *m, dv_type_id id)
{
    for (int i = 0; i < DVT_MAX_DEPTH; i++) {
        struct dv_tslot *t = dvtypes_basic(m, id, 0);

        if (!t)
            return 0;
        if (t->tag != DW_TAG_const_type && t->tag != DW_TAG_volatile_type &&
            t->tag != DW_TAG_restrict_type && t->tag != DW_TAG_atomic_type)
            return t->tag;
        id = t->next;
    }
    return 0;
}

static char *spell(struct sym_module *m, dv_type_id id, const char *inner, int depth);

/* "(int, char *)" for the function type die; "(void)" for a C prototype without any. */
static char *params(struct sym_module *m, Dwarf_Die die, bool cxx, int depth)
{
    char *out = xstrdup("("), *tmp;
    int n = 0;

    for (Dwarf_Die c = dw_child(m->dbg, die); c; c = dw_next(m->dbg, c)) {
        Dwarf_Half tag = dw_tag(m->dbg, c);
        char *p;

        if (tag != DW_TAG_formal_parameter && tag != DW_TAG_unspecified_parameters)
            continue;
        if (n++ == TYPE_MAX_PARAMS)
            p = xstrdup("...");
        else if (n > TYPE_MAX_PARAMS)
            continue;
        else
            p = tag == DW_TAG_unspecified_parameters ? xstrdup("...")
                                                     : spell(m, dvtypes_of(m, c), "", depth + 1);
        tmp = xasprintf("%s%s%s", out, n > 1 ? ", " : "", p);
        free(p);
        free(out);
        out = tmp;
    }
    if (!n && !cxx && dw_has(m->dbg, die, DW_AT_prototyped)) {
        free(out);
        return xstrdup("(void)");
    }
    tmp = xasprintf("%s)", out);
    free(out);
    return tmp;
}

/* The spelling of a declarator `inner` of type id, malloc'd: spell(int, "*") = "int *". */
static char *spell(struct sym_module *m, dv_type_id id, const char *inner, int depth)
{
    struct dv_tslot *t = dvtypes_basic(m, id, 0);
    char *r, *s, *w;
    const char *q;
    Dwarf_Die die;

    if (!id)
        return join("void", inner);
    if (!t || depth > DVT_MAX_DEPTH || !(die = dw_offdie(m->dbg, t->die)))
        return join("?", inner);
    /* A suffix binds tighter than a pointer: "(*)[4]", "(*)(int)". */
    w = *inner == '*' || *inner == '&' ? xasprintf("(%s)", inner) : xstrdup(inner);
    switch (t->tag) {
    case DW_TAG_pointer_type:
    case DW_TAG_reference_type:
    case DW_TAG_rvalue_reference_type:
        q = t->tag == DW_TAG_pointer_type ? "*" : t->tag == DW_TAG_reference_type ? "&" : "&&";
        s = xasprintf("%s%s", q, inner);
        r = spell(m, t->next, s, depth + 1);
        free(s);
        break;
    case DW_TAG_const_type:
    case DW_TAG_volatile_type:
    case DW_TAG_restrict_type:
    case DW_TAG_atomic_type: {
        Dwarf_Half under = tag_under_cv(m, t->next);

        q = t->tag == DW_TAG_const_type      ? "const"
            : t->tag == DW_TAG_volatile_type ? "volatile"
            : t->tag == DW_TAG_restrict_type ? "restrict"
                                             : "_Atomic";
        if (under == DW_TAG_pointer_type || under == DW_TAG_reference_type ||
            under == DW_TAG_rvalue_reference_type) {
            s = join(q, inner); /* the pointer's declarator: "*const p" */
            r = spell(m, t->next, s, depth + 1);
        } else {
            /* A qualified array is an array of qualified elements, which GCC also says:
             * "const char [14]" once, not "const const char [14]". */
            s = spell(m, t->next, inner, depth + 1);
            r = !strncmp(s, q, strlen(q)) && s[strlen(q)] == ' ' ? xstrdup(s)
                                                                   : xasprintf("%s %s", q, s);
        }
        free(s);
        break;
    }
    case DW_TAG_array_type:
        s = t->t.count ? xasprintf("%s[%llu]", w, (unsigned long long)t->t.count)
                       : xasprintf("%s[]", w);
        r = spell(m, t->t.target, s, depth + 1);
        free(s);
        break;
    case DW_TAG_subroutine_type: {
        char *p = params(m, die, t->cxx, depth);

        s = xasprintf("%s%s", w, p);
        free(p);
        r = spell(m, t->next, s, depth + 1);
        free(s);
        break;
    }
    default:
        s = base_name(m, t, die);
        r = join(s, inner);
        free(s);
        break;
    }
    free(w);
    dwarf_dealloc(m->dbg, die, DW_DLA_DIE);
    return r;
}

void dvtypes_name(struct sym_module *m, struct dv_tslot *t, dv_type_id id)
{
    char *s;

    if (t->state & DVT_NAMED)
        return;
    t->state |= DVT_NAMED;
    s = spell(m, id, "", 0);
    t->t.name = strpool_intern(&m->strings, s);
    free(s);
}
