/* This file implements the unit test of analyzer/dwarfvars.h (symbolize_vars.c, _types.c,
 * _typenames.c, _locals.c, _objsyms.c). It builds the target program tests/unit/varstest_prog.c
 * (+ varstest_opaque.c, varstest_prog.cpp) at -O0 and -O2 (DWARF 5), and at -O2 with DWARF 4,
 * with gcc, and at -O0 and -O2 with clang when it is on PATH (its DWARF 5 reaches addresses,
 * strings, ranges and location lists through indexes: DW_OP_addrx, DW_FORM_strx,
 * DW_FORM_loclistx), into a temporary directory, runs each build to learn the link-time addresses, TLS offsets,
 * member offsets, sizes and frame offsets it prints, and checks what the DWARF reader makes
 * of them: globals of pointer, array, nested struct and typedef types with their members, a
 * linked-list struct, a pointer to a struct defined in another unit, function-static locals,
 * __thread variables, stack locals at -O0 (frame offsets, lexical scopes, inlined functions),
 * locals in registers at -O2, a C++ class hierarchy (bases as members, vtables, namespaces, a
 * static member, a template, an ABI-tagged name); then copies without DWARF (objcopy
 * --strip-debug, strip --strip-all), libc.so.6 (time to open, a few of its variables), and
 * copies of a gcc and a clang build with corrupted DWARF (no crash). Prints TAP.
 *
 * Build and run from the top directory:
 *   make -C tests units && tests/unit/bin/t-dwarfvars
 *   valgrind --error-exitcode=1 --leak-check=full tests/unit/bin/t-dwarfvars
 * varstest_prog.c is looked for in argv[1], $T_DWARFVARS_SRCDIR, tests/unit, unit, and next
 * to this binary (tests/unit/bin/..). Needs gcc, g++, strip, objcopy, nm and cp on PATH.
 * T_DWARFVARS_KEEP=1 keeps the temporary directory. Under valgrind the timing check of libc
 * is skipped. */
// LINK: analyzer/symbolize.c analyzer/symbolize_elf.c analyzer/symbolize_dwarf.c
// LINK: analyzer/symbolize_lines.c analyzer/symbolize_vars.c analyzer/symbolize_types.c
// LINK: analyzer/symbolize_typenames.c analyzer/symbolize_locals.c analyzer/symbolize_objsyms.c
// LINK: analyzer/arena.c analyzer/usage.c analyzer/hmap.c
#define _GNU_SOURCE
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "dwarfvars.h"
#include "harness.h"
#include "fixture.h"
#include "symbolize.h"
#include "usage.h"

#define MAXL 64

static char srcdir[PATH_MAX], work[PATH_MAX];

/* A build of varstest_prog and the "kind name value" lines it printed. */
struct prog {
    char *path;
    char **keys;
    long long *vals;
    size_t nr;
};

static bool under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload");
}

/* The value printed as "key value" (key = "addr g_cache"); dies when missing, since every
 * key the test asks for is one the fixture prints. */
static long long val(const struct prog *p, const char *key)
{
    for (size_t i = 0; i < p->nr; i++)
        if (!strcmp(p->keys[i], key))
            return p->vals[i];
    printf("Bail out! the fixture printed no '%s'\n", key);
    exit(1);
}

static bool prog_run(struct prog *p)
{
    char *cmd = xasprintf("'%s'", p->path), line[512];
    FILE *f = popen(cmd, "r");
    size_t alloc = 0;
    free(cmd);
    if (!f)
        return false;
    while (fgets(line, sizeof line, f)) {
        char kind[64], name[256], num[64];
        if (sscanf(line, "%63s %255s %63s", kind, name, num) != 3)
            continue;
        ALLOC_GROW(p->keys, p->nr + 1, alloc);
        p->vals = xrealloc(p->vals, alloc * sizeof(*p->vals));
        p->keys[p->nr] = xasprintf("%s %s", kind, name);
        p->vals[p->nr++] = strtoll(num, NULL, 0);
    }
    return pclose(f) == 0 && p->nr > 30;
}

/* Compile and link the fixture with `opt` (-O0, -O2) by gcc/g++ or (clang) clang/clang++;
 * NULL on failure. */
static struct prog *prog_build_cc(const char *name, const char *opt, bool clang)
{
    struct prog *p = xcalloc(1, sizeof *p);
    const char *cc = clang ? "clang" : "gcc", *cxx = clang ? "clang++" : "g++";
    /* clang 14 knows no noipa: noinline keeps varstest_record's return address in its
     * caller (an inlined copy would report its caller's caller). */
    const char *copt = clang ? "-Dnoipa=noinline -Wno-unknown-attributes" : "";
    p->path = xasprintf("%s/%s", work, name);
    if (sh("%s -std=gnu11 -g %s %s -c '%s/varstest_prog.c' -o '%s-c.o'", cc, opt, copt, srcdir,
           p->path) ||
        sh("%s -std=gnu11 -g %s -c '%s/varstest_opaque.c' -o '%s-o.o'", cc, opt, srcdir, p->path) ||
        sh("%s -g %s -c '%s/varstest_prog.cpp' -o '%s-x.o'", cxx, opt, srcdir, p->path) ||
        sh("%s '%s-c.o' '%s-o.o' '%s-x.o' -o '%s'", cxx, p->path, p->path, p->path, p->path) ||
        !prog_run(p)) {
        diag("cannot build or run %s", name);
        free(p->path);
        free(p);
        return NULL;
    }
    return p;
}

static struct prog *prog_build(const char *name, const char *opt)
{
    return prog_build_cc(name, opt, false);
}

static void prog_free(struct prog *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nr; i++)
        free(p->keys[i]);
    free(p->keys);
    free(p->vals);
    free(p->path);
    free(p);
}

static bool streq(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* The member called name of type t (typedefs followed by dv_type), or NULL. */
static const struct dv_member *member(struct symbolizer *s, const char *path, dv_type_id t,
                                      const char *name)
{
    const struct dv_type *ty = dv_type(s, path, t);
    for (uint32_t i = 0; ty && i < ty->nr_members; i++)
        if (streq(ty->members[i].name, name))
            return &ty->members[i];
    return NULL;
}

static const char *type_name(struct symbolizer *s, const char *path, dv_type_id t)
{
    const struct dv_type *ty = dv_type(s, path, t);
    return ty ? ty->name : "(none)";
}

/* The global at the address the fixture printed as "addr <name>", checked for its name and
 * kind; NULL (after a failed check) if absent. */
static const struct dv_var *global(struct symbolizer *s, const struct prog *p, const char *what,
                                   const char *name, enum dv_var_kind kind)
{
    char key[128];
    snprintf(key, sizeof key, "addr %s", name);
    uint64_t a = (uint64_t)val(p, key);
    const struct dv_var *v = dv_var_at(s, p->path, a);
    if (!CHECK(v && streq(v->name, name) && v->kind == kind && v->addr == a,
               "%s: %s found at its address %#lx as kind %d (got %s, kind %d, addr %#lx)", what,
               name, (unsigned long)a, kind, v ? v->name : "NULL", v ? (int)v->kind : -1,
               v ? (unsigned long)v->addr : 0))
        return NULL;
    return v;
}

static void check_members(struct symbolizer *s, const struct prog *p, const char *what,
                          dv_type_id t, const char *tname, const char *const *names, int n)
{
    char key[128];
    int ok = 0;
    for (int i = 0; i < n; i++) {
        const struct dv_member *mb = member(s, p->path, t, names[i]);
        snprintf(key, sizeof key, "off %s.%s", tname, names[i]);
        if (mb && mb->offset == (uint64_t)val(p, key))
            ok++;
        else
            diag("  member %s.%s: offset %ld, want %lld", tname, names[i],
                 mb ? (long)mb->offset : -1L, val(p, key));
    }
    CHECK(ok == n, "%s: members of %s at their offsetof (%d of %d)", what, tname, ok, n);
}

static const struct dv_local *local(const struct dv_local *l, int n, const char *name);

static void check_c_globals(struct symbolizer *s, const struct prog *p, const char *what)
{
    static const char *const cache_members[] = { "nr", "flags", "head", "slots", "name", "label" };
    static const char *const outer_members[] = { "in", "pair", "cb", "grid" };
    const char *path = p->path;
    const struct dv_var *v;
    const struct dv_type *t, *u;
    dv_type_id cache, entry;

    cache = dv_type_by_name(s, path, "struct cache");
    entry = dv_type_by_name(s, path, "entry");
    CHECK(cache && cache == dv_type_by_name(s, path, "cache") &&
              streq(type_name(s, path, cache), "struct cache") && entry,
          "%s: dv_type_by_name finds struct cache with or without \"struct\", and entry", what);
    CHECK(!dv_type_by_name(s, path, "no_such_type"), "%s: dv_type_by_name of an unknown name: 0",
          what);

    /* struct cache *g_cache */
    if ((v = global(s, p, what, "g_cache", DV_V_GLOBAL))) {
        t = dv_type(s, path, v->type);
        CHECK(t && t->kind == DV_T_POINTER && streq(t->name, "struct cache *") && t->size == 8 &&
                  v->size == 8,
              "%s: g_cache is a \"struct cache *\" of 8 bytes (%s)", what, t ? t->name : "-");
        u = t ? dv_type(s, path, t->target) : NULL;
        CHECK(u && u->kind == DV_T_STRUCT && u->size == (uint64_t)val(p, "size cache") &&
                  u->nr_members == 6 && dv_type_strip(s, path, t->target) == cache,
              "%s: its pointee is struct cache, %lld bytes, 6 members", what, val(p, "size cache"));
        if (t)
            check_members(s, p, what, t->target, "cache", cache_members, 6);
        CHECK(dv_var_at(s, path, v->addr + 7) == v, "%s: the last byte of g_cache is g_cache",
              what);
    }

    /* struct entry *g_table[512] */
    if ((v = global(s, p, what, "g_table", DV_V_GLOBAL))) {
        t = dv_type(s, path, v->type);
        CHECK(t && t->kind == DV_T_ARRAY && streq(t->name, "struct entry *[512]") &&
                  t->count == 512 && t->size == 4096 && v->size == 4096,
              "%s: g_table is a \"struct entry *[512]\" of 4096 bytes (%s)", what,
              t ? t->name : "-");
        u = t ? dv_type(s, path, t->target) : NULL;
        CHECK(u && u->kind == DV_T_POINTER && dv_type_strip(s, path, u->target) == entry,
              "%s: its elements point to struct entry", what);
        CHECK(dv_var_at(s, path, v->addr + 8 * 300) == v, "%s: element 300 is in g_table", what);
    }

    /* the list: struct entry's next points to struct entry */
    const struct dv_member *next = member(s, path, entry, "next");
    t = next ? dv_type(s, path, next->type) : NULL;
    CHECK(next && next->offset == (uint64_t)val(p, "off entry.next") && t &&
              t->kind == DV_T_POINTER && dv_type_strip(s, path, t->target) == entry,
          "%s: struct entry's next (offset %lld) points to its own type", what,
          val(p, "off entry.next"));

    /* struct outer g_outer: nested struct, array of structs, function pointer, 2-d array */
    if ((v = global(s, p, what, "g_outer", DV_V_GLOBAL))) {
        t = dv_type(s, path, v->type);
        CHECK(t && t->kind == DV_T_STRUCT && streq(t->name, "struct outer") &&
                  v->size == (uint64_t)val(p, "size outer"),
              "%s: g_outer is a struct outer of %lld bytes", what, val(p, "size outer"));
        check_members(s, p, what, v->type, "outer", outer_members, 4);
        const struct dv_member *in = member(s, path, v->type, "in");
        const struct dv_member *b = in ? member(s, path, in->type, "b") : NULL;
        CHECK(in && streq(type_name(s, path, in->type), "struct inner") && b &&
                  b->offset == (uint64_t)val(p, "off inner.b"),
              "%s: g_outer.in is a struct inner with b at %lld", what, val(p, "off inner.b"));
        const struct dv_member *pair = member(s, path, v->type, "pair");
        CHECK(pair && streq(type_name(s, path, pair->type), "struct inner [2]"),
              "%s: g_outer.pair is \"struct inner [2]\" (%s)", what,
              pair ? type_name(s, path, pair->type) : "-");
        const struct dv_member *cb = member(s, path, v->type, "cb");
        CHECK(cb && streq(type_name(s, path, cb->type), "void (*)(int)"),
              "%s: g_outer.cb is \"void (*)(int)\" (%s)", what,
              cb ? type_name(s, path, cb->type) : "-");
        const struct dv_member *grid = member(s, path, v->type, "grid");
        t = grid ? dv_type(s, path, grid->type) : NULL;
        u = t ? dv_type(s, path, t->target) : NULL;
        CHECK(t && streq(t->name, "int [3][4]") && t->count == 3 && t->size == 48 && u &&
                  u->kind == DV_T_ARRAY && u->count == 4 && u->size == 16,
              "%s: g_outer.grid is \"int [3][4]\", an array of 3 arrays of 4", what);
    }

    /* cache_t g_cache_obj: a typedef keeps its name, strips to the struct */
    if ((v = global(s, p, what, "g_cache_obj", DV_V_GLOBAL))) {
        t = dv_type(s, path, v->type);
        CHECK(t && streq(t->name, "cache_t") && t->kind == DV_T_STRUCT && t->nr_members == 6 &&
                  dv_type_strip(s, path, v->type) == cache &&
                  v->size == (uint64_t)val(p, "size cache"),
              "%s: g_cache_obj is a cache_t, a struct cache with its members", what);
    }

    /* struct opaque *g_opaque: only declared in this unit */
    if ((v = global(s, p, what, "g_opaque", DV_V_GLOBAL))) {
        t = dv_type(s, path, v->type);
        u = t ? dv_type(s, path, t->target) : NULL;
        CHECK(t && streq(t->name, "struct opaque *") && u && u->kind == DV_T_STRUCT &&
                  u->size == 32 && u->nr_members == 3 &&
                  t->target == dv_type_by_name(s, path, "struct opaque"),
              "%s: g_opaque's pointee, declared only, leads to the definition in another unit",
              what);
    }

    /* function-static locals */
    if ((v = global(s, p, what, "counter", DV_V_STATIC_LOCAL)))
        CHECK(streq(v->function, "bump") && v->size == 4 &&
                  streq(type_name(s, path, v->type), "int"),
              "%s: counter is bump's static int (%s)", what, v->function ? v->function : "-");
    if ((v = global(s, p, what, "last_made", DV_V_STATIC_LOCAL)))
        CHECK(streq(v->function, "bump") && v->size == 8 &&
                  streq(type_name(s, path, v->type), "struct entry *"),
              "%s: last_made is bump's static struct entry *", what);

    struct dv_local l[MAXL];
    int n = dv_locals_at(s, path, (uint64_t)val(p, "slot 4") - 1, l, MAXL);
    const struct dv_local *c = local(l, n, "counter");
    CHECK(c && c->loc.kind == DV_L_ADDR && c->loc.offset == val(p, "addr counter") &&
              c->var == dv_var_at(s, path, (uint64_t)val(p, "addr counter")),
          "%s: in bump, dv_locals_at gives counter at its address, as dv_var_at's variable", what);

    /* __thread */
    uint64_t o = (uint64_t)val(p, "tls tls_entry");
    v = dv_tls_var_at(s, path, o);
    CHECK(v && streq(v->name, "tls_entry") && v->kind == DV_V_TLS && v->addr == o && v->size == 8 &&
              streq(type_name(s, path, v->type), "struct entry *"),
          "%s: tls_entry at TLS offset %lu, a struct entry *", what, (unsigned long)o);
    o = (uint64_t)val(p, "tls tls_count");
    v = dv_tls_var_at(s, path, o);
    CHECK(v && streq(v->name, "tls_count") && v->addr == o && v->size == 8,
          "%s: tls_count at TLS offset %lu", what, (unsigned long)o);

    CHECK(!dv_type(s, path, 0) && !dv_type(s, path, 0x7fffffff) && !dv_type_strip(s, path, 0),
          "%s: dv_type of 0 or an id never given out: NULL", what);
}

static void check_cxx(struct symbolizer *s, const struct prog *p, const char *what)
{
    const char *path = p->path;
    const struct dv_var *v;
    const struct dv_type *t;
    dv_type_id derived = dv_type_by_name(s, path, "ns::Derived");
    dv_type_id base = dv_type_by_name(s, path, "ns::Base");

    t = dv_type(s, path, derived);
    CHECK(t && t->kind == DV_T_CLASS && streq(t->name, "ns::Derived") &&
              t->size == (uint64_t)val(p, "size Derived") && base,
          "%s: dv_type_by_name(\"ns::Derived\") is the class, %lld bytes", what,
          val(p, "size Derived"));
    CHECK(t && t->nr_members == 3 && streq(t->members[0].name, "ns::Base") &&
              t->members[0].offset == 0 && dv_type_strip(s, path, t->members[0].type) == base,
          "%s: its first member is its base class ns::Base at 0", what);
    const struct dv_member *d = member(s, path, derived, "d");
    const struct dv_member *peer = member(s, path, derived, "peer");
    const struct dv_member *b = member(s, path, base, "b");
    CHECK(d && d->offset == (uint64_t)val(p, "off Derived.d") && peer &&
              peer->offset == (uint64_t)val(p, "off Derived.peer") &&
              streq(type_name(s, path, peer->type), "ns::Base *") && b &&
              b->offset == (uint64_t)val(p, "off Base.b"),
          "%s: Derived::d, Derived::peer and Base::b at their offsets", what);

    if ((v = global(s, p, what, "g_obj", DV_V_GLOBAL))) {
        CHECK(streq(type_name(s, path, v->type), "ns::Base *") && v->size == 8,
              "%s: g_obj is a ns::Base *", what);
        const char *cls = dv_vtable_class(s, path, (uint64_t)val(p, "vptr g_obj"));
        CHECK(streq(cls, "ns::Derived") && dv_type_by_name(s, path, cls) == derived,
              "%s: *g_obj's vtable pointer names its dynamic class ns::Derived (%s)", what,
              cls ? cls : "NULL");
    }
    CHECK(!dv_vtable_class(s, path, (uint64_t)val(p, "addr g_obj")),
          "%s: dv_vtable_class of a non-vtable address: NULL", what);
    global(s, p, what, "ns::Cls::s_inst", DV_V_GLOBAL);
    if ((v = global(s, p, what, "g_box", DV_V_GLOBAL))) {
        const struct dv_member *item = member(s, path, v->type, "item");
        t = item ? dv_type(s, path, item->type) : NULL;
        CHECK(streq(type_name(s, path, v->type), "ns::Box<ns::Derived>") && t &&
                  streq(t->name, "ns::Derived *") && dv_type_strip(s, path, t->target) == derived,
              "%s: g_box is a ns::Box<ns::Derived> whose item points to ns::Derived (%s)", what,
              type_name(s, path, v->type));
    }
    if ((v = global(s, p, what, "g_label", DV_V_GLOBAL)))
        CHECK(streq(type_name(s, path, v->type), "std::string") &&
                  dv_type(s, path, v->type)->kind == DV_T_CLASS && v->size == 32,
              "%s: g_label, named without its ABI tag, is a std::string (%s)", what,
              type_name(s, path, v->type));
}

/* The local called name among l[0..n), or NULL. */
static const struct dv_local *local(const struct dv_local *l, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (streq(l[i].var->name, name))
            return &l[i];
    return NULL;
}

static void dump_locals(const struct dv_local *l, int n)
{
    for (int i = 0; i < n; i++)
        diag("  local %s (%s) kind %d loc %d reg %d offset %ld depth %d", l[i].var->name,
             l[i].var->function ? l[i].var->function : "-", l[i].var->kind, l[i].loc.kind,
             l[i].loc.reg, (long)l[i].loc.offset, l[i].inline_depth);
}

/* Whether x is in the stack slot at frame offset `off` (from rbp): GCC's frame base is the
 * CFA (DW_OP_call_frame_cfa), 16 bytes above rbp; clang's is rbp itself (DW_OP_reg6). */
static bool in_slot(const struct dv_local *x, long long off, bool clang)
{
    if (clang)
        return x->loc.kind == DV_L_BREG && x->loc.reg == 6 && x->loc.offset == off;
    return x->loc.kind == DV_L_CFA && x->loc.offset == off - 16;
}

/* -O0: every local in its stack slot (in_slot). */
static void check_locals_o0(struct symbolizer *s, const struct prog *p, const char *what,
                            bool clang)
{
    struct dv_local l[MAXL];
    const struct dv_local *x;
    int n = dv_locals_at(s, p->path, (uint64_t)val(p, "slot 0") - 1, l, MAXL);
    bool ok = n > 0;
    static const char *const names[] = { "local_ptr", "param", "total" };

    for (int i = 0; i < 3; i++) {
        char key[64];
        snprintf(key, sizeof key, "frame %s", names[i]);
        x = local(l, n, names[i]);
        if (!x || !in_slot(x, val(p, key), clang) || !streq(x->var->function, "frame_fn") ||
            x->inline_depth)
            ok = false;
    }
    x = local(l, n, "param");
    if (!CHECK(ok && x && x->var->kind == DV_V_PARAM &&
                   local(l, n, "local_ptr")->var->kind == DV_V_LOCAL,
               "%s: frame_fn's local_ptr, total and param at their frame offsets (%s)", what,
               clang ? "rbp + offset" : "cfa + offset - 16"))
        dump_locals(l, n);
    CHECK(n > 0 && !local(l, n, "inner_only") && !local(l, n, "after"),
          "%s: locals of blocks not around the pc are left out", what);
    x = local(l, n, "local_ptr");
    CHECK(x && streq(type_name(s, p->path, x->var->type), "struct entry *") && x->var->size == 8,
          "%s: local_ptr's type is struct entry *", what);

    n = dv_locals_at(s, p->path, (uint64_t)val(p, "slot 3") - 1, l, MAXL);
    if (!CHECK(n >= 4 && streq(l[0].var->name, "after") &&
                   in_slot(&l[0], val(p, "frame after"), clang) && local(l, n, "local_ptr"),
               "%s: in the inner block, its local after comes first, then the function's", what))
        dump_locals(l, n);
    CHECK(dv_locals_at(s, p->path, (uint64_t)val(p, "slot 3") - 1, l, 1) == 1 &&
              streq(l[0].var->name, "after"),
          "%s: max 1 keeps the innermost local", what);

    n = dv_locals_at(s, p->path, (uint64_t)val(p, "slot 2") - 1, l, MAXL);
    x = local(l, n, "held");
    if (!CHECK(x && x->inline_depth == 1 && streq(x->var->function, "inl_hold") &&
                   x->loc.kind == (clang ? DV_L_BREG : DV_L_CFA) && local(l, n, "n"),
               "%s: the always-inline inl_hold's local held, inline depth 1, in the frame",
               what))
        dump_locals(l, n);
}

/* -O2: a pointer kept across a call lives in a callee-saved register. */
static void check_locals_o2(struct symbolizer *s, const struct prog *p, const char *what)
{
    struct dv_local l[MAXL];
    const struct dv_local *x;
    int n = dv_locals_at(s, p->path, (uint64_t)val(p, "slot 1") - 1, l, MAXL);

    x = local(l, n, "keep");
    if (!CHECK(x && x->loc.kind == DV_L_REG &&
                   (x->loc.reg == 3 || x->loc.reg == 6 || (x->loc.reg >= 12 && x->loc.reg <= 15)) &&
                   streq(x->var->function, "reg_fn") &&
                   streq(type_name(s, p->path, x->var->type), "struct entry *"),
               "%s: reg_fn's keep is in a callee-saved register across the call (reg %d)",
               what, x ? x->loc.reg : -1))
        dump_locals(l, n);
    n = dv_locals_at(s, p->path, (uint64_t)val(p, "slot 2") - 1, l, MAXL);
    x = local(l, n, "held");
    if (!CHECK(x && x->inline_depth == 1 && streq(x->var->function, "inl_hold") &&
                   x->loc.kind != DV_L_NONE,
               "%s: inl_hold's held, inlined into outer_fn, has a location (depth 1)", what))
        dump_locals(l, n);
    CHECK(dv_locals_at(s, p->path, 0x10, l, MAXL) == 0, "%s: no locals outside any function",
          what);
}

/* The same module looked up for its lines after dv_open read only its variables. */
static void check_lines_after(struct symbolizer *s, const struct prog *p, const char *what)
{
    struct sym_frame f[4];
    int n = sym_lookup(s, p->path, NULL, (uint64_t)val(p, "slot 1") - 1, f, 4);
    CHECK(n >= 1 && streq(f[n - 1].function, "reg_fn") && f[0].line > 0,
          "%s: sym_lookup after dv_open still finds reg_fn with a line", what);
}

/* objcopy --strip-debug keeps .symtab: variables by symbol name, no types. */
static void check_no_dwarf(struct symbolizer *s, const struct prog *p, const char *path)
{
    struct dv_local l[MAXL];
    const struct dv_var *v;

    CHECK(dv_open(s, path, NULL) && !sym_has_debug_info(s, path),
          "no DWARF: dv_open succeeds, no debug info");
    v = dv_var_at(s, path, (uint64_t)val(p, "addr g_cache") + 3);
    CHECK(v && streq(v->name, "g_cache") && v->kind == DV_V_GLOBAL && v->type == 0 &&
              v->size == 8 &&
              v->addr == (uint64_t)val(p, "addr g_cache"),
          "no DWARF: g_cache from .symtab, 8 bytes, type 0");
    v = dv_var_at(s, path, (uint64_t)val(p, "addr counter"));
    CHECK(v && !strncmp(v->name, "counter", 7) && v->size == 4,
          "no DWARF: the static counter from .symtab (%s)", v ? v->name : "NULL");
    v = dv_tls_var_at(s, path, (uint64_t)val(p, "tls tls_entry"));
    CHECK(v && streq(v->name, "tls_entry") && v->kind == DV_V_TLS && v->size == 8,
          "no DWARF: tls_entry from .symtab's STT_TLS");
    CHECK(streq(dv_vtable_class(s, path, (uint64_t)val(p, "vptr g_obj")), "ns::Derived"),
          "no DWARF: the vtable still names ns::Derived");
    v = dv_var_at(s, path, (uint64_t)val(p, "addr g_label"));
    CHECK(v && streq(v->name, "g_label"), "no DWARF: g_label from .symtab without its ABI tag");
    CHECK(!dv_type_by_name(s, path, "struct cache") && !dv_type(s, path, 1) &&
              dv_locals_at(s, path, (uint64_t)val(p, "slot 0") - 1, l, MAXL) == 0,
          "no DWARF: no types, no locals");
}

/* strip --strip-all keeps .dynsym only: what it names, or nothing, and no crash. */
static void check_stripped(struct symbolizer *s, const struct prog *p, const char *path)
{
    struct dv_local l[MAXL];
    const struct dv_var *v;
    const char *cls;

    CHECK(dv_open(s, path, NULL), "stripped: dv_open succeeds");
    v = dv_var_at(s, path, (uint64_t)val(p, "addr g_cache"));
    CHECK(!v || streq(v->name, "g_cache"), "stripped: g_cache NULL or by name (%s)",
          v ? v->name : "NULL");
    cls = dv_vtable_class(s, path, (uint64_t)val(p, "vptr g_obj"));
    CHECK(!cls || streq(cls, "ns::Derived"), "stripped: vtable class NULL or ns::Derived (%s)",
          cls ? cls : "NULL");
    CHECK(!dv_tls_var_at(s, path, 1u << 30) &&
              dv_locals_at(s, path, (uint64_t)val(p, "slot 0") - 1, l, MAXL) == 0,
          "stripped: nothing at a far TLS offset, no locals");
}

static void test_libc(void)
{
    struct symbolizer *s = sym_new();
    struct dv_local l[MAXL];
    char libc[PATH_MAX] = "";
    const struct dv_var *v;
    uint64_t environ_addr, malloc_addr;

    dl_iterate_phdr(find_libc, libc);
    environ_addr = libc[0] ? dynsym_value(libc, "__environ") : 0;
    malloc_addr = libc[0] ? dynsym_value(libc, "malloc") : 0;
    if (!CHECK(environ_addr && malloc_addr, "libc found (%s) with __environ and malloc", libc)) {
        sym_free(s);
        return;
    }
    double t0 = now();
    bool ok = dv_open(s, libc, NULL);
    double t = now() - t0;
    diag("libc: dv_open in %.3f s (DWARF from %s)", t,
         sym_debug_file(s, libc) ? sym_debug_file(s, libc) : "nowhere");
    if (under_valgrind())
        CHECK(ok, "libc: dv_open # SKIP timing under valgrind");
    else
        CHECK(ok && t < 1.0, "libc: dv_open in under 1 s");
    v = dv_var_at(s, libc, environ_addr);
    CHECK(v && (streq(v->name, "__environ") || streq(v->name, "environ") ||
                streq(v->name, "_environ")) && v->size == 8,
          "libc: __environ's address is environ (%s)", v ? v->name : "NULL");
    if (!sym_has_debug_info(s, libc)) {
        diag("libc has no debug info (libc6-dbg not installed): ELF symbols only");
        sym_free(s);
        return;
    }
    CHECK(v && streq(type_name(s, libc, v->type), "char **"), "libc: environ is a char **");
    dv_type_id ms = dv_type_by_name(s, libc, "malloc_state");
    const struct dv_member *top = member(s, libc, ms, "top");
    CHECK(ms && top && dv_type(s, libc, ms)->size > 1000,
          "libc: struct malloc_state has a member top, and is over 1000 bytes");
    t0 = now();
    int n = dv_locals_at(s, libc, malloc_addr + 8, l, MAXL);
    diag("libc: locals at malloc+8 in %.3f s (lines read first)", now() - t0);
    if (!CHECK(local(l, n, "bytes") && local(l, n, "bytes")->var->kind == DV_V_PARAM,
               "libc: malloc's parameter bytes at malloc+8"))
        dump_locals(l, n);
    sym_free(s);
}

/* Overwrite `count` pseudo-random bytes of section `sec` in a copy of path. */
static char *corrupt_copy(const char *src, const char *sec, int count, unsigned seed)
{
    char *path = xasprintf("%s/corrupt-%s-%u", work, sec + 1, seed);
    int fd = open(src, O_RDONLY);
    Elf *elf = fd < 0 ? NULL : elf_begin(fd, ELF_C_READ, NULL);
    Elf_Scn *scn = NULL;
    size_t shstrndx;
    uint64_t off = 0, size = 0;
    if (elf && !elf_getshdrstrndx(elf, &shstrndx)) {
        while ((scn = elf_nextscn(elf, scn))) {
            GElf_Shdr sh;
            const char *n;
            if (gelf_getshdr(scn, &sh) && (n = elf_strptr(elf, shstrndx, sh.sh_name)) &&
                !strcmp(n, sec)) {
                off = sh.sh_offset;
                size = sh.sh_size;
            }
        }
    }
    elf_end(elf);
    if (fd >= 0)
        close(fd);
    if (!size || sh("cp '%s' '%s'", src, path)) {
        free(path);
        return NULL;
    }
    fd = open(path, O_WRONLY);
    for (int i = 0; fd >= 0 && i < count; i++) {
        seed = seed * 1103515245 + 12345;
        unsigned char b = (unsigned char)(seed >> 16);
        if (pwrite(fd, &b, 1, (off_t)(off + (seed >> 8) % size)) != 1)
            break;
    }
    if (fd >= 0)
        close(fd);
    return path;
}

/* Every question about a corrupted copy: any answer but a crash. */
static void ask_everything(struct symbolizer *s, const struct prog *p, const char *path)
{
    static const char *const names[] = { "addr g_cache", "addr g_table", "addr g_outer",
                                         "addr g_opaque", "addr counter", "addr g_obj" };
    struct dv_local l[MAXL];

    if (!dv_open(s, path, NULL))
        return;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const struct dv_var *v = dv_var_at(s, path, (uint64_t)val(p, names[i]));
        const struct dv_type *t = v ? dv_type(s, path, v->type) : NULL;
        for (int depth = 0; t && depth < 8; depth++) {
            for (uint32_t k = 0; k < t->nr_members; k++)
                dv_type(s, path, t->members[k].type);
            t = dv_type(s, path, t->target);
        }
    }
    dv_tls_var_at(s, path, (uint64_t)val(p, "tls tls_entry"));
    for (int i = 0; i < 4; i++) {
        char key[16];
        snprintf(key, sizeof key, "slot %d", i);
        int n = dv_locals_at(s, path, (uint64_t)val(p, key) - 1, l, MAXL);
        for (int k = 0; k < n; k++)
            dv_type(s, path, l[k].var->type);
    }
    dv_type_by_name(s, path, "ns::Derived");
    dv_vtable_class(s, path, (uint64_t)val(p, "vptr g_obj"));
}

/* secs: the sections to corrupt, 6 of them (clang's builds add .debug_addr and
 * .debug_str_offsets, which DW_OP_addrx and DW_FORM_strx index). */
static void test_corrupt(const struct prog *p, const char *what, const char *const secs[6])
{
    struct symbolizer *s = sym_new();
    int tried = 0;

    for (unsigned seed = 1; seed <= 18; seed++) {
        char *path = corrupt_copy(p->path, secs[seed % 6], 1 + (int)(seed * 7 % 40), seed);
        if (!path)
            continue;
        tried++;
        ask_everything(s, p, path);
        free(path);
    }
    CHECK(tried > 0, "%s: %d copies with corrupted DWARF sections: no crash", what, tried);
    sym_free(s);
}

/* The same checks on the fixture built by clang: DWARF 5 with every address in .debug_addr
 * (DW_OP_addrx, DW_FORM_addrx), strings by DW_FORM_strx, ranges and location lists by
 * DW_FORM_rnglistx / DW_FORM_loclistx with DW_LLE_base_addressx and DW_LLE_offset_pair
 * entries, frame base rbp at -O0 and rsp at -O2, TLS as DW_OP_const8u
 * DW_OP_GNU_push_tls_address. */
static void test_clang(void)
{
    static const char *const secs[6] = { ".debug_info", ".debug_addr", ".debug_loclists",
                                         ".debug_str_offsets", ".debug_rnglists", ".debug_abbrev" };
    struct prog *c0, *c2;
    struct symbolizer *s;

    if (sh("command -v clang >/dev/null && command -v clang++ >/dev/null")) {
        CHECK(true, "clang builds # SKIP clang or clang++ not installed");
        return;
    }
    c0 = prog_build_cc("vars-clang-O0", "-O0", true);
    c2 = prog_build_cc("vars-clang-O2", "-O2", true);
    if (CHECK(c0 && c2, "target program built by clang at -O0 and -O2")) {
        s = sym_new();
        check_c_globals(s, c0, "clang -O0");
        check_c_globals(s, c2, "clang -O2");
        check_cxx(s, c0, "clang -O0");
        check_cxx(s, c2, "clang -O2");
        check_locals_o0(s, c0, "clang -O0", true);
        check_locals_o2(s, c2, "clang -O2");
        check_lines_after(s, c2, "clang -O2");
        sym_free(s);
        test_corrupt(c2, "clang -O2", secs);
    }
    prog_free(c0);
    prog_free(c2);
}

int main(int argc, char **argv)
{
    static const char *const gcc_secs[6] = { ".debug_info", ".debug_abbrev", ".debug_loclists",
                                             ".debug_str", ".debug_rnglists", ".debug_line" };
    struct symbolizer *s;
    struct prog *o0, *o2, *d4;
    char *nodwarf = NULL, *stripped = NULL;

    if (!find_srcdir(srcdir, argc > 1 ? argv[1] : NULL, "T_DWARFVARS_SRCDIR", "varstest_prog.cpp")) {
        printf("Bail out! varstest_prog.c not found: pass its directory as argv[1]\n");
        return 1;
    }
    if (!make_workdir(work, sizeof work, "t-dwarfvars"))
        return 1;
    elf_version(EV_CURRENT);
    diag("sources in %s, builds in %s", srcdir, work);

    o0 = prog_build("vars-O0", "-O0");
    o2 = prog_build("vars-O2", "-O2");
    d4 = prog_build("vars-O2-dwarf4", "-O2 -gdwarf-4"); /* .debug_loc, .debug_ranges */
    if (!CHECK(o0 && o2 && d4, "target program built at -O0, -O2, and -O2 with DWARF 4"))
        return done();
    nodwarf = xasprintf("%s/vars-nodwarf", work);
    stripped = xasprintf("%s/vars-stripped", work);
    CHECK(!sh("objcopy --strip-debug '%s' '%s'", o0->path, nodwarf) &&
              !sh("strip --strip-all -o '%s' '%s'", stripped, o0->path),
          "copies made without DWARF and without any symbols");

    s = sym_new();
    double t0 = now();
    bool opened = dv_open(s, o0->path, NULL);
    diag("fixture -O0: dv_open in %.4f s", now() - t0);
    CHECK(opened && dv_open(s, o2->path, NULL), "dv_open of both builds");
    check_c_globals(s, o0, "-O0");
    check_c_globals(s, o2, "-O2");
    check_cxx(s, o0, "-O0");
    check_cxx(s, o2, "-O2");
    check_locals_o0(s, o0, "-O0", false);
    check_locals_o2(s, o2, "-O2");
    check_c_globals(s, d4, "DWARF 4");
    check_cxx(s, d4, "DWARF 4");
    check_locals_o2(s, d4, "DWARF 4");
    check_lines_after(s, o2, "-O2");
    check_no_dwarf(s, o0, nodwarf);
    check_stripped(s, o0, stripped);
    CHECK(!dv_open(s, "/nonexistent/heapwatch/x.so", NULL) && strstr(sym_error(s), "x.so") &&
              !dv_var_at(s, "/nonexistent/heapwatch/x.so", 0x1000) &&
              !dv_type_by_name(s, "/nonexistent/heapwatch/x.so", "x"),
          "a missing file: dv_open false with an error, NULL everywhere");
    sym_free(s);

    test_clang();
    test_libc();
    test_corrupt(o0, "gcc -O0", gcc_secs);

    prog_free(o0);
    prog_free(o2);
    prog_free(d4);
    free(nodwarf);
    free(stripped);
    if (!getenv("T_DWARFVARS_KEEP"))
        sh("rm -rf '%s'", work);
    return done();
}
