/* arena.h: the shim's private allocator, for its own SQLite copy.
 *
 * Why not the real malloc: a snapshot's child process (see snapshot.c) is forked while the
 * application's threads are stopped, possibly inside malloc holding an arena lock it will
 * never release in the child. Everything the child does must therefore allocate from memory
 * the shim owns. Size classes of powers of two carved from anonymous mappings, one spin lock
 * (only the snapshot writer uses it), blocks above 128 KiB mapped on their own.
 * Context: HOOKSAFE (never calls the libc allocator). */
#ifndef HW_ARENA_H
#define HW_ARENA_H

#include <stddef.h>
#include "hw.h"

void *hw_arena_alloc(size_t n) HW_HOOKSAFE;
void hw_arena_free(void *p) HW_HOOKSAFE;
void *hw_arena_realloc(void *p, size_t n) HW_HOOKSAFE;
/* Usable bytes of a block returned by hw_arena_alloc. */
size_t hw_arena_size(const void *p) HW_HOOKSAFE;
/* Held by the fork prepare handler (hw_sink_fork_prepare) until the parent's or child's. */
void hw_arena_lock(void) HW_SIGSAFE;
void hw_arena_unlock(void) HW_SIGSAFE;
/* In a snapshot's walk child: the lock may have been copied held. */
void hw_arena_reset_lock(void) HW_SIGSAFE;

#endif
