/* owner_names.h: who owns one word of a root: the variable (DWARF, else ELF symbols) or the
 * most precise description of the range (owners.h says what kinds there are). The part of
 * owners.c that reads debug info.
 *
 * Context: analyzer only, single-threaded. */
#ifndef HW_OWNER_NAMES_H
#define HW_OWNER_NAMES_H

#include <stdint.h>
#include "heapgraph.h"
#include "hmap.h"
#include "owners.h"

struct symbolizer;
struct owner_namer;

/* Strings of the owners it names are interned in pool (the same string, the same pointer). */
struct owner_namer *owner_namer_new(const struct heap_graph *g, struct symbolizer *sym, struct strpool *pool);
void owner_namer_free(struct owner_namer *n);

/* Fill o's identity (kind, name, function, module, type, tid, frame, reg, address) for the
 * word at byte offset `offset` of root `root` (an index into g->roots). Returns the word's byte
 * offset from the owner's address (within its variable, or 0 for a described range, whose
 * address is the word's), 0 for a local in a register, OWNER_NO_OFFSET when the owner has no
 * address (a register no local claims, a thread's DTV...). */
uint64_t owner_name_root_word(struct owner_namer *n, uint32_t root, uint64_t offset, struct owner *o);

/* For a word of a 'dtv' root: the module (index into g->modules) whose dynamic TLS block that
 * DTV slot points at; HG_NONE for other words (the length, static TLS modules' slots). */
uint32_t owner_dtv_module(struct owner_namer *n, uint32_t root, uint64_t offset);

/* Fill o for the word at byte offset `offset` of thread tid's dynamic TLS block of module m
 * (the block glibc malloc'd for a dlopen'd module; its TLS image starts at the block).
 * o->address is the variable's offset in the block (the caller adds the block's address).
 * Returns as owner_name_root_word. */
uint64_t owner_name_tls_block_word(struct owner_namer *n, uint32_t m, int tid, uint64_t offset, struct owner *o);

#endif
