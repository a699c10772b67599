/* symbolize_internal.h: what the parts of the symbolizer share; the rest of the analyzer uses
 * symbolize.h. The parts:
 *   symbolize_dwarf.c  libdwarf access shared by every reader of a module's DWARF: opening,
 *                      errors, attributes, the loop over compilation units
 *   symbolize.c        everything else, for now
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
/* Attribute `at` of die as a string owned by libdwarf (valid until dw_close), or NULL. */
const char *dw_string(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at);
/* Attribute `at` of die as an unsigned number into *val; false if absent, not a constant or
 * negative. */
bool dw_udata(Dwarf_Debug dbg, Dwarf_Die die, Dwarf_Half at, Dwarf_Unsigned *val);

#endif
