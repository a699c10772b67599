/* symbolize_objsyms.c: a module's ELF data symbols, for what DWARF does not name
 * (dwarfvars.h dv_vtable_class; dv_var_at and dv_tls_var_at where no DWARF variable holds
 * the address).
 *
 * This file implements reading the STT_OBJECT and STT_TLS symbols of a module on first need,
 * indexing them by address, and turning them into variables (type 0), for C++ vtables
 * (_ZTV...) into class names, and for a function's static into the function's name.
 *
 * Design notes:
 *  1. Symbols come from the module's .symtab, else its debug file's .symtab (a stripped
 *     library keeps only .dynsym; libc6-dbg's file has the full table), else its .dynsym.
 *  2. Function symbols are read by symbolize_elf.c for every lookup; data symbols are read
 *     apart from them, on first need, because most modules are never asked about data.
 *     Among aliases (same address and size) the best ranked names the variable: global
 *     before weak before local, then fewer leading underscores ("environ" over "__environ").
 *  3. Variables and class names are made when first asked for and kept, so the pointers
 *     handed out stay valid until sym_free.
 *  4. clang names a function's static "fn.var" (C) or mangles it as a local name of fn
 *     (C++: "_ZZ4mainE4list", "main::list"); GCC as "var.N". When clang drops a function
 *     whose static lives on (its one use folded into the callers), the DWARF subprogram that
 *     holds the static's DIE has no name left, and this symbol is all that still says
 *     whose static it is (dvobj_static_function).
 *
 * Context: analyzer only, single-threaded.
 */
#define _GNU_SOURCE
#include "symbolize_internal.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "usage.h"

struct objsym {
    const char *raw;   /* as in the table, version cut */
    uint64_t addr, size;
    struct dv_var *var;
    const char *cls;   /* vtables: the class, once asked for */
};

struct dv_objsyms {
    struct objsym *v;
    size_t nr, alloc;
    struct span_index objs, tls; /* idx: into v */
};

/* Lower is better among aliases (design note 2). */
static uint32_t rank(const GElf_Sym *sym, const char *name)
{
    int bind = GELF_ST_BIND(sym->st_info);
    uint32_t u = 0;

    while (name[u] == '_' && u < 3)
        u++;
    return (bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2) * 4 + u;
}

/* Read the symbols of the first section of type `type` in file; false if it has none. */
static bool read_table(struct sym_module *m, struct dv_objsyms *o, const char *file,
                       Elf64_Word type)
{
    Elf_Scn *scn = NULL;
    bool found = false;
    Elf *elf;
    int fd = open(file, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return false;
    elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    while (elf && elf_kind(elf) == ELF_K_ELF && !found && (scn = elf_nextscn(elf, scn))) {
        Elf_Data *data;
        GElf_Shdr sh;

        if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || !sh.sh_entsize ||
            !(data = elf_getdata(scn, NULL)))
            continue;
        found = true;
        for (size_t i = 0; i < sh.sh_size / sh.sh_entsize && o->nr < UINT32_MAX; i++) {
            const char *name;
            GElf_Sym sym;
            int t;

            if (!gelf_getsym(data, (int)i, &sym))
                break;
            t = GELF_ST_TYPE(sym.st_info);
            if ((t != STT_OBJECT && t != STT_TLS) || sym.st_shndx == SHN_UNDEF || !sym.st_size ||
                sym.st_value + sym.st_size < sym.st_value)
                continue;
            name = elf_strptr(elf, sh.sh_link, sym.st_name);
            if (!name || !*name)
                continue;
            ALLOC_GROW(o->v, o->nr + 1, o->alloc);
            o->v[o->nr] = (struct objsym){
                strpool_intern_n(&m->strings, name, strcspn(name, "@")), sym.st_value,
                sym.st_size, NULL, NULL
            };
            span_add(t == STT_TLS ? &o->tls : &o->objs, sym.st_value, sym.st_value + sym.st_size,
                     (uint32_t)o->nr, rank(&sym, name));
            o->nr++;
        }
    }
    elf_end(elf);
    close(fd);
    return found;
}

static struct dv_objsyms *objsyms(struct sym_module *m)
{
    struct dv_objsyms *o = m->objsyms;

    if (o)
        return o;
    o = m->objsyms = xcalloc(1, sizeof(*o));
    if (!read_table(m, o, m->path, SHT_SYMTAB) &&
        !(m->debug_file && strcmp(m->debug_file, m->path) &&
          read_table(m, o, m->debug_file, SHT_SYMTAB)))
        read_table(m, o, m->path, SHT_DYNSYM);
    span_finish(&o->objs);
    span_finish(&o->tls);
    return o;
}

/* The symbol holding a, the smallest when they nest, the best ranked of its aliases; NULL if
 * none. */
static struct objsym *objsym_at(struct sym_module *m, uint64_t a, bool tls)
{
    struct dv_objsyms *o = objsyms(m);
    struct span_index *x = tls ? &o->tls : &o->objs;
    long j = span_find(x, a, false), best = j;

    if (j < 0)
        return NULL;
    /* Spans at one address are sorted by rank. */
    for (long k = j - 1; k >= 0 && x->v[k].lo == x->v[j].lo; k--)
        if (x->v[k].hi == x->v[j].hi)
            best = k;
    return &o->v[x->v[best].idx];
}

const struct dv_var *dvobj_var_at(struct sym_module *m, uint64_t a, bool tls)
{
    struct objsym *sym = objsym_at(m, a, tls);

    if (!sym)
        return NULL;
    if (!sym->var) {
        sym->var = arena_alloc(&m->arena, sizeof(*sym->var));
        sym->var->name = dvvars_untag(m, module_demangle(m, sym->raw));
        sym->var->kind = tls ? DV_V_TLS : DV_V_GLOBAL;
        sym->var->addr = sym->addr;
        sym->var->size = sym->size;
    }
    return sym->var;
}

uint64_t dvobj_size_at(struct sym_module *m, uint64_t a, bool tls)
{
    struct objsym *sym = objsym_at(m, a, tls);

    return sym && sym->addr == a ? sym->size : 0;
}

const char *dvobj_static_function(struct sym_module *m, uint64_t a, const char *var)
{
    struct objsym *sym = objsym_at(m, a, false);
    const char *d;
    size_t dlen, vlen = strlen(var);
    char *fn;

    if (!sym || sym->addr != a || !vlen)
        return NULL;
    d = module_demangle(m, sym->raw);
    dlen = strlen(d);
    if (dlen <= vlen + 1 || strcmp(d + dlen - vlen, var))
        return NULL;
    dlen -= vlen;
    if (d[dlen - 1] == '.')
        dlen -= 1; /* C: "get_list.list" */
    else if (dlen > 2 && !strncmp(d + dlen - 2, "::", 2))
        dlen -= 2; /* C++: "_ZZ4mainE4list", "main::list" */
    else
        return NULL;
    fn = xstrndup(d, dlen);
    d = strpool_intern(&m->strings, fn);
    free(fn);
    return d;
}

const char *dv_vtable_class(struct symbolizer *s, const char *path, uint64_t a)
{
    static const char prefix[] = "vtable for ";
    struct sym_module *m = sym_module(s, path, NULL);
    struct objsym *sym = m ? objsym_at(m, a, false) : NULL;

    if (!sym || strncmp(sym->raw, "_ZTV", 4))
        return NULL;
    if (!sym->cls) {
        const char *d = module_demangle(m, sym->raw);

        sym->cls = strncmp(d, prefix, sizeof(prefix) - 1)
                           ? d : strpool_intern(&m->strings, d + sizeof(prefix) - 1);
    }
    return sym->cls;
}

void dvobj_free(struct sym_module *m)
{
    if (!m->objsyms)
        return;
    free(m->objsyms->v);
    span_clear(&m->objsyms->objs);
    span_clear(&m->objsyms->tls);
    free(m->objsyms);
    m->objsyms = NULL;
}
