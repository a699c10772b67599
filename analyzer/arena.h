/* arena.h: a bump allocator whose memory is freed all at once, for many small objects that
 * live as long as their owner (a symbolizer module's variables and types). Pointers into it
 * stay valid until arena_clear, unlike elements of an array that grows.
 *
 * Context: analyzer only; not thread-safe. */
#ifndef HW_ARENA_H
#define HW_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
    struct arena_block *head; /* the block being filled; it links to the older ones */
    size_t used, cap;         /* bytes of head's data */
};

/* n zeroed bytes aligned for any object; dies on out of memory (xmalloc). A zero-initialized
 * struct arena is empty and ready. */
void *arena_alloc(struct arena *a, size_t n);
/* A copy of p[0..n) in the arena. */
void *arena_dup(struct arena *a, const void *p, size_t n);
/* Free every block; the arena is empty and ready again. */
void arena_clear(struct arena *a);

#endif
