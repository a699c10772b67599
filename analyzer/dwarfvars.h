/* dwarfvars.h: variables and types of a module from its DWARF (and ELF symbols where DWARF
 * is missing), for naming what holds heap memory. Same struct symbolizer as symbolize.h;
 * modules are opened and cached the same way (path, build id, debug files). All strings and
 * structs stay valid until sym_free. Context: analyzer only, single-threaded.
 *
 * Every function opens the module on first use, like sym_lookup (with no build id unless
 * dv_open or sym_lookup gave one first), and reads its variables then: one pass over all of
 * its DWARF (~0.2 s for libc.so.6 with its debug file). Types are read when first asked for,
 * locals per function on the first dv_locals_at in it. A module that cannot be opened gives
 * NULL / 0 everywhere. Addresses are link-time addresses (runtime - load bias), as for
 * sym_lookup.
 *
 * Link with analyzer/symbolize*.c, analyzer/arena.c and what symbolize.h names.
 */
#ifndef HW_DWARFVARS_H
#define HW_DWARFVARS_H

#include <stdbool.h>
#include <stdint.h>

struct symbolizer;

typedef uint32_t dv_type_id; /* 0 = unknown / void */

enum dv_type_kind { DV_T_UNKNOWN, DV_T_BASE, DV_T_ENUM, DV_T_POINTER, DV_T_STRUCT,
                    DV_T_UNION, DV_T_CLASS, DV_T_ARRAY, DV_T_FUNCTION };

struct dv_member {
    const char *name; /* "next"; a base class: its type name; anonymous: "" */
    uint64_t offset;  /* bytes from the start of the struct (a bit-field: of the byte holding
                       * its first bit) */
    dv_type_id type;  /* declared type (typedefs and cv kept, see dv_type_strip) */
};

struct dv_type {
    enum dv_type_kind kind; /* of the type with typedefs/const/volatile stripped; C++
                             * references (T &, T &&) are POINTER */
    const char *name;       /* C/C++ spelling as declared: "struct cache *", "cache_t",
                             * "struct entry *[512]", "char *", "void (*)(int)",
                             * templates as DW_AT_name gives them: "std::vector<Foo*,
                             * std::allocator<Foo*> >"; anonymous: "struct {...}" */
    uint64_t size;          /* bytes; 0 when unknown or incomplete */
    dv_type_id target;      /* POINTER: pointee; ARRAY: element (declared types); 0 for void */
    uint64_t count;         /* ARRAY: elements (0 = unknown or flexible); multi-dim arrays
                             * are arrays of arrays */
    const struct dv_member *members; /* STRUCT/UNION/CLASS, in offset order, bases included;
                                      * static members and virtual bases left out */
    uint32_t nr_members;
};

enum dv_var_kind { DV_V_GLOBAL, DV_V_STATIC_LOCAL, DV_V_TLS, DV_V_LOCAL, DV_V_PARAM };

struct dv_var {
    const char *name;     /* "g_cache"; C++ qualified "ns::Cls::s_inst" (ABI tags such as
                           * [abi:cxx11] dropped); from .symtab when there is no DWARF */
    const char *function; /* STATIC_LOCAL, LOCAL, PARAM, and TLS declared in a function:
                           * the enclosing function (as sym_lookup names functions, an
                           * inlined one included; for a static whose function clang
                           * dropped, from its symbol "fn.var"); NULL otherwise, or when
                           * nothing names the function */
    enum dv_var_kind kind;
    uint64_t addr;        /* GLOBAL, STATIC_LOCAL: link-time address; TLS: offset in
                           * the module's TLS block; LOCAL, PARAM: 0 (see dv_locals_at) */
    uint64_t size;        /* from the type, else the ELF symbol's st_size */
    dv_type_id type;      /* 0 when unknown (no DWARF) */
};

enum dv_loc_kind { DV_L_NONE, DV_L_CFA, DV_L_BREG, DV_L_REG, DV_L_ADDR };
struct dv_loc {            /* where a local lives at one pc */
    enum dv_loc_kind kind; /* CFA: at cfa + offset; BREG: at reg + offset; REG: the value is
                            * in DWARF register reg; ADDR: at link address offset */
    int reg;               /* DWARF register number (x86-64: 0 rax, 3 rbx, 6 rbp, 7 rsp, ...) */
    int64_t offset;
};
struct dv_local {
    const struct dv_var *var;
    struct dv_loc loc;
    int inline_depth; /* 0: the function's own; n: of the inlined call n levels down */
};

/* Open the module's variables and types (reads the module on first use, like sym_lookup).
 * False when the module cannot be opened (sym_error says why); true for a module without
 * DWARF, whose variables then come from its ELF symbols. */
bool dv_open(struct symbolizer *s, const char *path, const char *build_id_hex);
/* Whether the module has DWARF (its own, or a debug file found for it). */
bool dv_has_dwarf(struct symbolizer *s, const char *path);
/* The global or static-local variable whose [addr, addr + size) holds link address a, or
 * NULL; the smallest one when they nest. DWARF first; where no DWARF variable holds a, an
 * ELF STT_OBJECT symbol (.symtab, else the debug file's .symtab, else .dynsym) as a GLOBAL
 * with type 0. */
const struct dv_var *dv_var_at(struct symbolizer *s, const char *path, uint64_t a);
/* The TLS variable whose [addr, addr + size) holds offset o of the module's TLS block: DWARF
 * first, else an ELF STT_TLS symbol. */
const struct dv_var *dv_tls_var_at(struct symbolizer *s, const char *path, uint64_t o);
/* Locals and parameters of the function (and inlined functions) at link pc that have a
 * location at that pc, innermost lexical scope first; at most max (the innermost ones);
 * returns the count. pc is the instruction's address: for a caller's frame pass the return
 * address - 1, as for sym_lookup. Function-static locals come as DV_L_ADDR, with the
 * dv_var that dv_var_at gives for their address. Locals whose location at pc is more than
 * one register or stack slot (DW_OP_piece, entry values, computed values), or relative to a
 * frame base given as a location list, are left out. */
int dv_locals_at(struct symbolizer *s, const char *path, uint64_t pc, struct dv_local *out,
                 int max);
/* The type t, or NULL for 0 or an id this module never gave out. A struct/class/union
 * declaration (an incomplete type) that has a definition of the same name in the module
 * has the id of that definition: every id naming it, a pointer's target included, leads to
 * the complete type. */
const struct dv_type *dv_type(struct symbolizer *s, const char *path, dv_type_id t);
/* t with typedefs, const, volatile (and restrict, atomic) stripped; 0 for 0 or void. */
dv_type_id dv_type_strip(struct symbolizer *s, const char *path, dv_type_id t);
/* A struct/class/union type by its qualified name ("Derived", "ns::Derived"; a leading
 * "struct ", "class " or "union " is ignored, so "struct cache" and "cache" are the same),
 * preferring a definition over a declaration; 0 if none. Types local to a function are
 * not found. */
dv_type_id dv_type_by_name(struct symbolizer *s, const char *path, const char *name);
/* A key of type t that stays the same for the same module file in another process (ids are
 * given out in the order types are asked for): its DIE and array dimension; 0 for 0 or an
 * unknown id. dv_type_of_key turns it back into this process's id (0 if it names no type). */
uint64_t dv_type_key(struct symbolizer *s, const char *path, dv_type_id t);
dv_type_id dv_type_of_key(struct symbolizer *s, const char *path, uint64_t key);
/* When link address a lies inside a C++ vtable symbol (_ZTV...), the demangled class name
 * ("ns::Derived"); else NULL. */
const char *dv_vtable_class(struct symbolizer *s, const char *path, uint64_t a);

#endif
