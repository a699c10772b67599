/* record_arena.h: arena mode, the way of knowing live blocks without a record per
 * unsampled block: glibc's own arenas are walked at a snapshot (glibcheap.h) and only recorded
 * blocks (sampled, or every block in full mode), mmapped chunks and the shim's own blocks are
 * marked (cookie.h, the live table). Chosen at start-up by HEAPWATCH_BLOCKS (auto: with glibc
 * 2.35 to 2.41, with heap walks and a sample rate other than 0; otherwise the shadow map,
 * shadow.h). record_arena.c says how.
 * Context: HOOKSAFE. */
#ifndef HW_RECORD_ARENA_H
#define HW_RECORD_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include "hw.h"

/* Whether arena mode is on; set once at initialisation. */
extern HW_INTERNAL bool hw_arena_mode;
/* Unsampled requests below this go straight to glibc (0 unless arena mode): glibc never
 * mmaps them, so the arena walk finds them all. */
extern HW_INTERNAL size_t hw_arena_small;

/* Decide the mode (after the options, the real allocator and hw_real_usable are known). */
void hw_arena_init(void) HW_HOOKSAFE;
/* The program set M_MMAP_THRESHOLD. */
void hw_arena_threshold_changed(size_t threshold) HW_HOOKSAFE;

/* Everything an allocation does but the fast path: align 0 is malloc's, zero for calloc;
 * caller is the hook's return address (the dynamic linker's blocks get a stack). */
void *hw_arena_mode_alloc(size_t size, size_t align, bool zero, const void *caller) HW_HOOKSAFE;
/* A free whose header has HW_COOKIE_SLOW_BITS; the second takes any block. */
void hw_arena_mode_free(void *p) HW_HOOKSAFE;
void hw_arena_mode_free_any(void *p) HW_HOOKSAFE;
/* A realloc that the fast path did not take (old is not NULL and not the bootstrap pool's). */
void *hw_arena_mode_realloc(void *old, size_t size, const void *caller) HW_HOOKSAFE;
/* malloc_usable_size of a block of the real allocator or of ours. */
size_t hw_arena_mode_usable(const void *p) HW_HOOKSAFE;
/* The tcache structs to leave out of an arena walk (glibcheap.h): of every thread of the
 * stopped world w, of the calling thread, of the helper thread, and of every thread the
 * registry knew here or in a parent that forked this process (a fork child inherits their
 * structs and cached chunks, which no thread of its own can free): sorted, without zeros or
 * duplicates, read only where maps says memory is readable. *n of them, in a new mapping of
 * *len bytes. Context: SIGSAFE (a stopped world or its fork child). */
struct hw_world;
struct hw_vec;
uintptr_t *hw_arena_tcaches(const struct hw_world *w, const struct hw_vec *maps, size_t *n, size_t *len) HW_SIGSAFE;
/* In a fork child, before it starts a thread: note the tcache structs of the parent's threads
 * while their thread control blocks still hold them. A thread the child starts may be given
 * such a block again (glibc's stack cache), and then the struct, with the chunks it caches,
 * is in no thread's TLS: a walk would take them for live blocks. */
void hw_arena_keep_parent_tcaches(void);

/* heapwatch_ignore(p) in arena mode. */
bool hw_arena_mode_ignore(const void *p) HW_HOOKSAFE;

#endif
