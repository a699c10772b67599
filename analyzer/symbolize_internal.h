/* symbolize_internal.h: what the parts of the symbolizer share; the rest of the analyzer uses
 * symbolize.h and dwarfvars.h. Each ELF file asked about is one struct sym_module, read on
 * first use (its line tables on its first sym_lookup, its variables on its first dwarfvars.h
 * call) and kept until sym_free. The parts:
 *   symbolize_elf.c    ELF symbols, executable sections, build id, debuglink; finds the file
 *                      with the module's DWARF and opens it (m->dbg)
 *   symbolize_dwarf.c  libdwarf access shared by every reader of a module's DWARF: opening,
 *                      errors, attributes, the loop over compilation units
 *   symbolize_lines.c  DWARF lines and inlines: function scopes, their inline trees, line rows
 *   symbolize.c        the module cache, the span index and the lookup (symbolize.h)
 *   symbolize_vars.c   DWARF variables: globals, static locals, TLS; the pass over the DWARF
 *                      that also indexes the types by name (dwarfvars.h)
 *   symbolize_types.c  DWARF types, read on first use (dwarfvars.h); symbolize_typenames.c
 *                      spells their names
 *   symbolize_locals.c locals and parameters of a function and where they live at a pc
 *   symbolize_objsyms.c ELF object symbols: variables without DWARF, vtables
 * Every string of a module lives in its m->strings until sym_free, every struct handed out by
 * dwarfvars.h in its m->arena.
 *
 * To add another reader of a module's DWARF (as symbolize_vars.c reads variables):
 *  1. give it a file of its own beside symbolize_lines.c that reads m->dbg (open from
 *     module_open until sym_free) through the dw_* helpers below; its entry points find the
 *     module with sym_module;
 *  2. keep what it builds in struct sym_module (a pointer to a struct of its own, NULL until
 *     first needed), and free that in module_free (symbolize.c);
 *  3. declare its entry points in symbolize.h or a header of its own (dwarfvars.h), and add
 *     the file to the LINK lines of tests/unit/t-symbolize.c and t-dwarfvars.c (the
 *     Makefile builds every analyzer .c file).
 *
 * Context: analyzer only, single-threaded.
 */
#ifndef HW_SYMBOLIZE_INTERNAL_H
#define HW_SYMBOLIZE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libdwarf/dwarf.h>
#include <libdwarf/libdwarf.h>
#include "arena.h"
#include "dwarfvars.h"
#include "hmap.h"

/* ---- the module ---- */

/* A span index: which [lo, hi) ranges contain an address (symbolize.c). */
struct sym_span {
    uint64_t lo, hi;
    uint32_t idx;  /* scope or symbol index */
    uint32_t rank; /* tie-break between equal symbols: lower is preferred */
};

struct span_index {
    struct sym_span *v;
    uint64_t *maxhi; /* maxhi[i] = max(v[0..i].hi) */
    size_t nr, alloc;
};

/* A subprogram or an inlined subroutine that owns code. */
struct sym_scope {
    Dwarf_Off die;         /* global .debug_info offset of the scope's DIE */
    const char *name;      /* NULL until resolved; "" if DWARF has none */
    const char *call_file; /* inlined subroutines: where the caller calls it */
    uint32_t call_line;
    int32_t first_child, next_sibling; /* inlined subroutines below; -1 ends */
    uint32_t range_first, range_nr;    /* into sym_module.ranges */
};

struct sym_range {
    uint64_t lo, hi;
};

struct sym_row {
    uint64_t addr;
    const char *file;
    uint32_t line;
    uint32_t key; /* bit 31: not an end_sequence row; bits 0-30: order of appearance */
};

struct sym_elfsym {
    const char *raw;  /* as in the symbol table */
    const char *name; /* demangled, on first use */
};

struct sym_module {
    const char *path;
    bool ok;           /* opened; false caches a failure */
    const char *error; /* why not ok */
    bool syms_from_dynsym;
    Dwarf_Debug dbg; /* NULL without DWARF */
    const char *debug_file;
    const char *build_id;  /* hex, from the file's NT_GNU_BUILD_ID note */
    const char *debuglink; /* .gnu_debuglink file name */
    struct strpool strings; /* all its strings */

    /* From the DWARF (symbolize_lines.c): functions and their inline trees, line rows. */
    struct sym_scope *scopes;
    size_t scopes_nr, scopes_alloc;
    struct sym_range *ranges;
    size_t ranges_nr, ranges_alloc;
    struct span_index funcs; /* top-level scopes */
    struct sym_row *rows;
    size_t rows_nr, rows_alloc;

    /* From the ELF file (symbolize_elf.c). */
    struct sym_elfsym *syms;
    size_t syms_nr, syms_alloc;
    struct span_index symspans;
    struct sym_range *xsecs; /* executable sections of the file */
    size_t xsecs_nr, xsecs_alloc;
    bool lines_read; /* the line and scope arrays above are read on first need */

    /* For dwarfvars.h, each owned by its file and NULL until first needed. */
    struct arena arena;          /* every struct handed out */
    struct dv_vars *vars;        /* symbolize_vars.c */
    struct dv_types *types;      /* symbolize_types.c */
    struct dv_locals *locals;    /* symbolize_locals.c */
    struct dv_objsyms *objsyms;  /* symbolize_objsyms.c */
};

/* ---- symbolize.c: the module cache, span index, names ---- */

struct symbolizer;

/* The module at path, opened and cached on first use (build_id_hex as for sym_lookup); NULL
 * when it cannot be opened, with sym_error saying why. For the readers with entry points of
 * their own (dwarfvars.h). */
struct sym_module *sym_module(struct symbolizer *s, const char *path, const char *build_id_hex);
/* Read m's DWARF lines and function scopes (symlines_read) unless done already. */
void sym_module_lines(struct sym_module *m);

/* Add [lo, hi) for scope or symbol idx; rank breaks ties between equal symbols, lower first.
 * Call span_finish before searching. */
void span_add(struct span_index *x, uint64_t lo, uint64_t hi, uint32_t idx, uint32_t rank);
/* Sort the spans and compute the running maximum of their ends. */
void span_finish(struct span_index *x);
/* Number of spans with lo <= addr (the upper bound). */
size_t span_upper(const struct span_index *x, uint64_t addr);
/* The span containing addr: the smallest (innermost function), or with `biggest` the largest
 * (an ELF symbol rather than a label inside it), ties to the better rank. -1 if none. */
long span_find(const struct span_index *x, uint64_t addr, bool biggest);
void span_clear(struct span_index *x);

/* The demangled form of raw, in m->strings. Only _Z names are demangled: __cxa_demangle also
 * decodes bare type codes, and would turn a C function "f" into "float". */
const char *module_demangle(struct sym_module *m, const char *raw);

/* ---- symbolize_elf.c: ELF symbols and debug-file search ---- */

/* Read what the symbolizer needs from the ELF file at path into m. `primary` is the module's
 * own file (sections, notes, and .symtab or .dynsym); otherwise a debug file, read only to
 * replace a .dynsym by its .symtab. -1 if the file cannot be read as ELF, with the reason in
 * err[0..errlen). The symbols' span index m->symspans is left for the caller to finish. */
int symelf_scan(struct sym_module *m, const char *path, bool primary, char *err, size_t errlen);
/* Find the file with m's DWARF (build_id_hex, else m->build_id, and m->debuglink guide the
 * search; see symbolize_elf.c) and open it: sets m->dbg and m->debug_file, or leaves them
 * NULL. m->dbg then stays open for every reader of the module's DWARF until sym_free. */
void symelf_find_dwarf(struct sym_module *m, const char *build_id_hex);

/* ---- symbolize_lines.c: DWARF lines and inlines ---- */

/* Read every compilation unit of m->dbg (not NULL) into m->scopes, m->ranges, m->rows (sorted
 * by address) and m->funcs (finished), dropping what is unreadable. */
void symlines_read(struct sym_module *m);
/* The name of scope sc: the demangled C++ linkage name, else the source name; "" if DWARF has
 * none. Resolved on the first call and kept in sc->name. */
const char *symlines_scope_name(struct sym_module *m, struct sym_scope *sc);
/* The name of the subprogram or inlined subroutine whose DIE is at global offset off, as
 * symlines_scope_name names it; not cached. */
const char *symlines_die_name(struct sym_module *m, Dwarf_Off off);

/* ---- dwarfvars.h's parts: what symbolize.c and the parts use of each other ---- */

/* symbolize_vars.c: the module at path with its variables read (the pass over its DWARF that
 * also feeds dvtypes_note), opened with build_id_hex if not yet open; NULL if it cannot be
 * opened. Every dwarfvars.h entry point starts here. */
struct sym_module *dvvars_module(struct symbolizer *s, const char *path, const char *build_id_hex);
/* v->name and v->type (when not set yet) of the variable DIE at off, from the first DIE on
 * its specification / abstract_origin chain that has them. The name is the demangled C++
 * linkage name unless local (a function's variable), else DW_AT_name, else "?". */
void dvvars_describe(struct sym_module *m, Dwarf_Off off, bool local, struct dv_var *v);
/* The DWARF variable (tls: TLS variable) holding a, as dv_var_at finds it without ELF
 * symbols; NULL if none. m's variables must be read (dvvars_module). */
const struct dv_var *dvvars_at(struct sym_module *m, uint64_t a, bool tls);
/* A demangled variable name without its ABI tags ("g_map[abi:cxx11]" is g_map in the
 * source), in m->strings. */
const char *dvvars_untag(struct sym_module *m, const char *name);

/* symbolize_types.c. During the pass over the DWARF, before any type id is given out: the
 * unit whose DIE is at cu_off is C++ or not (C++ spells types without "struct"); units come
 * in increasing order of offset. */
void dvtypes_note_cu(struct sym_module *m, Dwarf_Off cu_off, bool cxx);
/* ... and a struct/class/union/enum/typedef DIE at off named qname (in m->strings; qualified
 * with its namespaces and classes in C++). nested: inside a namespace or class, so qname
 * differs from its DW_AT_name; decl: a declaration. */
void dvtypes_note(struct sym_module *m, Dwarf_Off off, Dwarf_Half tag, const char *qname,
                  bool nested, bool decl);
/* The id of the type that die's DW_AT_type names; 0 if none (void) or unreadable. */
dv_type_id dvtypes_of(struct sym_module *m, Dwarf_Die die);
/* The size of type t with typedefs and qualifiers followed; 0 if unknown. */
uint64_t dvtypes_size(struct sym_module *m, dv_type_id t);

/* symbolize_types.c and symbolize_typenames.c: one type id's slot, read in steps on first
 * need (DVT_*): basics (kind, size, target, count, strip), name, members. */
enum { DVT_BASIC = 1, DVT_NAMED = 2, DVT_MEMBERS = 4 };
#define DVT_MAX_DEPTH 32 /* typedef/qualifier/array/pointer links followed per step */
struct dv_tslot {
    struct dv_type t; /* handed out by dv_type */
    Dwarf_Off die;
    uint32_t dim;     /* arrays: the dimension this slot is (symbolize_types.c note 2) */
    Dwarf_Half tag;
    uint8_t state;    /* DVT_* steps done */
    bool busy;        /* being read: a reference cycle in corrupt DWARF stops here */
    bool cxx;         /* from a C++ unit */
    dv_type_id next;  /* the DIE's own DW_AT_type: typedef, qualifier, pointer, function */
    dv_type_id strip; /* with typedefs and qualifiers stripped */
};
/* The slot of id; NULL for 0 or an id never given out. */
struct dv_tslot *dvtypes_slot(struct sym_module *m, dv_type_id id);
/* ... with its basics read, following at most DVT_MAX_DEPTH - depth links; a slot in a
 * cycle or too deep keeps what it has. */
struct dv_tslot *dvtypes_basic(struct sym_module *m, dv_type_id id, int depth);
/* The qualified name the pass noted for the type DIE die at off, else its DW_AT_name; NULL
 * if none. */
const char *dvtypes_qname(struct sym_module *m, Dwarf_Die die, Dwarf_Off off);
/* symbolize_typenames.c: set t->t.name (t is id's slot, its basics read) unless done. */
void dvtypes_name(struct sym_module *m, struct dv_tslot *t, dv_type_id id);

/* symbolize_objsyms.c: the ELF object (tls: STT_TLS) symbol holding a as a variable, or
 * NULL; the size of the object symbol starting at a, 0 if none. */
const struct dv_var *dvobj_var_at(struct sym_module *m, uint64_t a, bool tls);
uint64_t dvobj_size_at(struct sym_module *m, uint64_t a, bool tls);
/* The function whose static local called var starts at a, from the symbol there as clang
 * names it ("fn.var", C++ "fn::var" demangled), in m->strings; NULL if no symbol starts at a
 * or its name is not of that form (GCC's "var.N"). For statics whose DWARF function has no
 * name (symbolize_objsyms.c note 4). */
const char *dvobj_static_function(struct sym_module *m, uint64_t a, const char *var);

/* Free what each part keeps in m (module_free); safe when the part never ran. */
void dvvars_free(struct sym_module *m);
void dvtypes_free(struct sym_module *m);
void dvlocals_free(struct sym_module *m);
void dvobj_free(struct sym_module *m);

/* ---- symbolize_dwarf.c: libdwarf access ---- */

/* Free *err if set and clear it. libdwarf calls here all take &err with no handler (whose
 * default aborts), and an error only means "no data here". dbg may be NULL for errors of
 * dwarf_init_path and dwarf_finish. */
void dw_drop_err(Dwarf_Debug dbg, Dwarf_Error *err);

/* The DWARF of the file at path, or NULL when it has no .debug_info (libdwarf also opens a
 * file whose only DWARF is .eh_frame, which every stripped binary has) or has list headers
 * libdwarf 20210528 would crash on. With a buffer true_path (true_path_len bytes), libdwarf
 * also looks for a separate debug file itself (build id, .gnu_debuglink) and leaves there the
 * path of the file it opened, "" when that is path. Close with dw_close. */
Dwarf_Debug dw_open(const char *path, char *true_path, unsigned true_path_len);
/* dwarf_finish; NULL is a no-op. */
void dw_close(Dwarf_Debug dbg);

/* Call fn for the DIE of each compilation unit of dbg's .debug_info in order, with the unit's
 * DWARF version; the DIE is freed when fn returns. Stops at the first header libdwarf cannot
 * read. libdwarf keeps the position in dbg, so two loops over one dbg must not nest. */
void dw_for_each_cu(Dwarf_Debug dbg, void (*fn)(Dwarf_Die cu, Dwarf_Half version, void *arg),
                    void *arg);

/* The DIE that attribute `at` of die refers to, in this file's .debug_info; NULL if none.
 * References into a dwz supplementary file or a type unit cannot be followed here. Free it
 * with dwarf_dealloc(dbg, die, DW_DLA_DIE). */
Dwarf_Die dw_ref(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at);
/* dw_ref's target as a global .debug_info offset in *off, without reading that DIE. */
bool dw_ref_off(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at, Dwarf_Off *off);
/* The DIE at global .debug_info offset off, or NULL; free as for dw_ref. */
Dwarf_Die dw_offdie(Dwarf_Debug dbg, Dwarf_Off off);
/* die's tag, 0 if unreadable; its global offset, 0 if unreadable; whether it has `at`. */
Dwarf_Half dw_tag(Dwarf_Debug dbg, Dwarf_Die die);
Dwarf_Off dw_off(Dwarf_Debug dbg, Dwarf_Die die);
bool dw_has(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at);
/* Walking children: for (c = dw_child(dbg, d); c; c = dw_next(dbg, c)) visits each child;
 * dw_next frees the DIE it is given, so a loop left early must free c itself. */
Dwarf_Die dw_child(Dwarf_Debug dbg, Dwarf_Die die);
Dwarf_Die dw_next(Dwarf_Debug dbg, Dwarf_Die die);
/* Attribute `at` of die as a DWARF expression (exprloc, or a DWARF 2-3 block) copied into
 * buf[0..*len); sets *len to its length. False if absent, another form (a location list)
 * or longer than *len. */
bool dw_expr(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at, unsigned char *buf, size_t *len);
/* The address at index idx of the .debug_addr table of die's unit (DW_OP_addrx,
 * DW_OP_constx, DW_FORM_addrx: DWARF 5 from clang keeps every address there, from the unit's
 * DW_AT_addr_base), into *addr; false if the unit has no such entry. */
bool dw_addrx(Dwarf_Debug dbg, Dwarf_Die die, uint64_t idx, uint64_t *addr);
/* Attribute `at` of die as a string owned by libdwarf (valid until dw_close), or NULL. */
const char *dw_string(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at);
/* Attribute `at` of die as an unsigned number into *val; false if absent, not a constant or
 * negative. */
bool dw_udata(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at, Dwarf_Unsigned *val);

/* Call fn(arg, lo, hi) for each code range of die: its low_pc/high_pc, else its DW_AT_ranges
 * (.debug_rnglists from DWARF 5 on; before, .debug_ranges entries relative to cu_base, the
 * CU's low_pc, unless a base selection entry changes it). The caller filters the ranges of
 * discarded code. Returns how many ranges fn was given. version: the unit's DWARF version. */
int dw_ranges(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half version, Dwarf_Addr cu_base,
              void (*fn)(void *arg, uint64_t lo, uint64_t hi), void *arg);

#endif
