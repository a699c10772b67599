/* symbolize.h: resolve link-time addresses of ELF modules to source frames, with libdwarf
 * (line tables, inlined subroutines) and the ELF symbol tables (.symtab, else .dynsym),
 * C++ names demangled. One struct symbolizer caches every module it opened.
 *
 * Context: analyzer only. Not thread-safe: use one struct symbolizer per thread.
 * Link with analyzer/symbolize.c and its parts analyzer/symbolize_*.c (symbolize_internal.h;
 * dwarfvars.h reads variables and types through the same modules), analyzer/arena.c,
 * analyzer/usage.c (xmalloc), analyzer/hmap.c (the string pool) and -ldwarf -lelf -lstdc++
 * (__cxa_demangle).
 */
#ifndef HW_SYMBOLIZE_H
#define HW_SYMBOLIZE_H

#include <stdint.h>
#include <stdbool.h>

struct sym_frame {
    const char *function; /* demangled; never NULL ("??" when unknown) */
    const char *file;     /* source path as recorded in DWARF (comp dir joined if relative),
                           * NULL if unknown */
    int line;             /* 0 if unknown */
};

struct symbolizer;

/* A new, empty symbolizer. Dies on out of memory, like every allocation in this module. */
struct symbolizer *sym_new(void);

/* Close every cached module and free all strings handed out by sym_lookup. NULL is a no-op. */
void sym_free(struct symbolizer *);

/* Resolve one address of the module at `path` (build_id_hex may be NULL; when the file at path
 * has no debug info, look for /usr/lib/debug/.build-id/xx/yyyy.debug and .gnu_debuglink files).
 * `addr` is a link-time address (runtime pc - load bias) of the *instruction* to describe (caller
 * already subtracted 1 from return addresses). Fills out[0..n-1] innermost first: inlined
 * frames first, the containing real function last. Returns n >= 1 on success (at least the
 * ELF symbol name, or "??" frame with file NULL when nothing is known), or -1 if the module cannot
 * be opened at all (sym_error() says why; the failure is cached, so later calls for the same
 * path fail fast). With max < 1 nothing is written and 0 is returned. When the inline chain is
 * deeper than max, the innermost max frames are returned. Strings stay valid until sym_free.
 * Names: C++ functions by their demangled linkage name ("ns::Widget::poke(int)"), C functions
 * by their source name (DW_AT_name), else the ELF symbol (versions like "@@GLIBC_2.2.5" cut).
 * Modules are cached by path: build_id_hex only matters on the first call for a path.
 * The first call for a path reads the whole module (ELF symbols, DWARF line tables and
 * function ranges; ~0.5 s for libc.so.6 with its debug file); later calls are binary searches.
 * Function names are demangled on first use and cached. */
int sym_lookup(struct symbolizer *s, const char *path, const char *build_id_hex,
               uint64_t addr, struct sym_frame *out, int max);

/* Whether the module has DWARF debug info (after sym_lookup opened it); false if not opened. */
bool sym_has_debug_info(struct symbolizer *s, const char *path);

/* The file the DWARF of `path` was read from (path itself, or a separate debug file), or NULL
 * when the module was not opened or has no debug info. Valid until sym_free. */
const char *sym_debug_file(struct symbolizer *s, const char *path);

/* Why the last sym_lookup returned -1, e.g. "cannot open '/x': No such file or directory";
 * "" if no failure happened yet. Valid until the next call into the symbolizer. */
const char *sym_error(struct symbolizer *s);

#endif
