/* typewalk.h: what lies at a byte offset of an object of a DWARF type (dwarfvars.h): the
 * pointer there and the C path to it (".log.buf", "[3].next"), for typing the heap
 * (heaptypes.h) and naming the words of roots (owner_names.h). Types are of the module at
 * `path`, as dwarfvars.h takes them. Context: analyzer only, single-threaded. */
#ifndef HW_TYPEWALK_H
#define HW_TYPEWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dwarfvars.h"

/* Whether a pointer lies at byte offset off of an object of type t: its declared target in
 * *pointee (0 for void *; pointee may be NULL), the members and indexes passed in field
 * (".a.b[3]"; field may be NULL). A union's member is the first, in declaration order, that
 * holds a pointer there; a flexible array member runs to the object's end. */
bool tw_pointer_at(struct symbolizer *s, const char *path, dv_type_id t, uint64_t off, dv_type_id *pointee, char *field,
                   size_t size);
/* Whether type t holds a member of the type named `name` at offset 0, at any depth: a
 * derived class's base, or C's embedded header struct. */
bool tw_embeds(struct symbolizer *s, const char *path, dv_type_id t, const char *name);
/* Whether t is a struct ending in a flexible array member. */
bool tw_flexible(struct symbolizer *s, const char *path, const struct dv_type *t);
/* Whether t is a C++ polymorphic class: its vtable pointer (GCC's and clang's artificial
 * `_vptr.Base` member) at offset 0, its own or a first base's. */
bool tw_polymorphic(struct symbolizer *s, const char *path, const struct dv_type *t);

#endif
