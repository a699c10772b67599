/* heaptypes.h: the type of every block of a walked snapshot, inferred from DWARF, as viewcore
 * types a Go heap (and chap a C++ one from its vtables).
 *
 * Sources, in the order a conflict is resolved (the first one wins):
 *   1. vtable: a block whose first word points into a C++ vtable (a `_ZTV` symbol) is an
 *      object of that class: its dynamic type, more exact than any declaration;
 *   2. declared: a pointer's declared type types its target: a variable `T *p` types the
 *      block p points at, a member `T *next` of a typed block types the block it points at,
 *      following struct and union members and array elements by the pointer's offset
 *      (DWARF's member offsets). Breadth-first from the owners (owners.h): the type that the
 *      shortest chain of pointers from a variable gives wins; a later pointer that
 *      disagrees is counted in `conflicts`, except that an outer type that embeds the
 *      first at offset 0 (a C++ derived class, or C's "struct derived { struct base b; }")
 *      replaces it. Only pointers to a block's start type it (an interior pointer's target
 *      is some member, not the block), when the snapshot recorded the pointers' target
 *      offsets (schema 5);
 *   3. site: blocks allocated from the same stack as typed blocks that all agree take
 *      their type (an allocation site allocates one type); a stack whose typed blocks
 *      disagree lends nothing and is counted in `sites_mixed`. Then the same with sites
 *      said by the 4, 3 and 2 innermost return addresses of the stack (an unrolled loop or
 *      an inlined caller gives one site several stacks), never fewer: the innermost one
 *      alone is often a wrapper (xmalloc) that allocates every type. Blocks typed so type
 *      what they point at in turn (rule 2 again).
 * A block of T whose size holds several T (remainder under 16 bytes, an allocator's
 * rounding) is an array T[n]; a struct ending in a flexible array member, or a C++ class
 * with a vtable (a larger block is an object of a derived class), stays one T.
 * Targets of `char *` (any one-byte type) are `char[]`, counted without a length; `void *`
 * types nothing. A union member is the first member (in declaration order) that holds a
 * pointer at the offset. The rest is "(unknown)".
 *
 * Context: analyzer only, single-threaded. */
#ifndef HW_HEAPTYPES_H
#define HW_HEAPTYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "heapgraph.h"
#include "hmap.h"

struct owner_set;
struct symbolizer;

enum ht_how { HT_NONE, HT_VTABLE, HT_DECLARED, HT_SITE, HT_NR_HOW };
extern const char *const ht_how_names[HT_NR_HOW];   /* "unknown", "vtable", "declared", "site" */

struct ht_type {
    const char *name;     /* the element type's spelling ("struct node", "ns::Derived",
                           * "struct entry *", "char"); interned: equal names, equal pointers */
    uint32_t module;      /* the module whose DWARF defines it (index into g->modules) */
    uint32_t id;          /* its dv_type_id there (typedefs stripped unless the type is an
                           * anonymous struct named only by its typedef); 0 until first needed
                           * for a type read from the database's cache */
    uint64_t key;         /* read from the cache: its dv_type_key, until id is looked up */
    uint64_t size;        /* sizeof */
    bool bytes;           /* a one-byte type: its blocks are "char[]" */
    bool flexible;        /* a struct ending in a flexible array member */
    bool polymorphic;     /* a C++ class with a vtable: a larger block is a derived object,
                           * never an array */
};

struct heap_types {
    const struct heap_graph *g;
    uint32_t *type_of;    /* by block: index into types; 0 = unknown */
    uint8_t *how;         /* by block: enum ht_how */
    struct ht_type *types;   /* types[0] is the unknown type, name "(unknown)" */
    uint32_t nr_types;
    uint64_t by_how[HT_NR_HOW];    /* blocks typed each way (HT_NONE: untyped) */
    uint64_t conflicts;   /* pointers that typed an already typed block differently */
    uint64_t sites_lent;  /* stacks that lent their type (at any level) */
    uint64_t sites_mixed; /* stacks whose typed blocks disagree */
    void *internal;
};

/* Type every block of os's graph (owners_compute'd). Dies on out of memory. */
void heap_types_infer(struct heap_types *ht, const struct owner_set *os, struct symbolizer *sym);
void heap_types_release(struct heap_types *ht);
/* The inference's result as a blob (zlib-compressed) for the database's cache, malloc'd; and
 * back: false (ht zeroed) when the blob is not one for g (another snapshot, corrupt). */
void *heap_types_encode(const struct heap_types *ht, size_t *len);
bool heap_types_decode(struct heap_types *ht, const struct heap_graph *g, struct symbolizer *sym, const void *blob,
                       size_t len);

/* Elements of type t that a block of `size` bytes holds: 1 for a single object (or a type of
 * unknown size, or a flexible struct), n for an array T[n]. */
uint64_t ht_count(const struct ht_type *t, uint64_t size);
/* Block k's type as shown: "struct node", "struct node[4]", "char[]", "(unknown)". */
const char *ht_block_type(const struct heap_types *ht, uint32_t k, char *buf, size_t size);
/* The group block k is counted in by `types`: the element type, with "[]" for arrays and
 * one-byte types ("struct node", "struct node[]", "char[]", "(unknown)"); interned in ht. */
const char *ht_block_group(const struct heap_types *ht, uint32_t k);

/* The field of block k that holds the word at byte offset off, in C: "->next",
 * "[3].val", "->buckets[17]" (array blocks index first); "+0x18" when untyped or no member
 * of the type lies there. */
const char *ht_block_field(const struct heap_types *ht, uint32_t k, uint64_t off, char *buf, size_t size);
/* The same within a variable of declared type `type` (module m): ".log.buf", "[3]", "" for
 * the variable itself; "+0x18" when no member lies there. */
const char *ht_var_field(const struct heap_types *ht, uint32_t m, uint32_t type, uint64_t off, char *buf, size_t size);

#endif
