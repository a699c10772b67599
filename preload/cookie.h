/* cookie.h: the header of a block the shim allocates itself in arena mode (record_arena.c):
 * a sampled block (or a dynamic linker's block, which also has a table entry and a stack), or
 * one of the shim's own allocations (internal: never a program block).
 *
 * Such a block is a real block q of glibc with the user's block p = q + off after it (off =
 * 16, or the alignment asked for when that is larger). Two words before p, and the first two
 * words of q (the same words when off is 16), say so:
 *     q[0] = p[-2] = off              q[1] = p[-1] = HW_COOKIE_MAGIC | kind << 4
 * p[-1] is where glibc keeps a chunk's size, always a multiple of 16 plus three flag bits:
 * bit 3 is never set there, so a free that finds it set knows the block is the shim's (the
 * rest of the magic makes a corrupt header fail loudly in glibc rather than pass as ours).
 * The arena walk finds q as an in-use chunk and q[1] tells it to leave it to the live table
 * (sampled) or out (internal). The cookie is cleared before q is freed, so that a plain block
 * glibc hands out later at the same address never shows a stale one.
 * Context: SIGSAFE (inline reads and writes of the block's own words). */
#ifndef HW_COOKIE_H
#define HW_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HW_COOKIE_MAGIC 0x6877636b00000008ull   /* "hwck", and bit 3 */
#define HW_COOKIE_MAGIC_MASK 0xffffffff0000000full
enum { HW_COOKIE_SAMPLED = 1, HW_COOKIE_INTERNAL = 2 };

/* The header bits that send a free or a realloc to the slow path: ours (bit 3), or a chunk
 * glibc mmapped (bit 1), which no arena lists and the live table tracks. */
#define HW_COOKIE_SLOW_BITS 0xaull

static inline bool hw_is_cookie(uintptr_t word)
{
    return (word & HW_COOKIE_MAGIC_MASK) == HW_COOKIE_MAGIC;
}

static inline unsigned hw_cookie_kind(uintptr_t word)
{
    return (unsigned)(word >> 4) & 0xf;
}

/* Write the headers into the real block q for a user block at q + off; returns the user block. */
static inline void *hw_cookie_put(void *q, size_t off, unsigned kind)
{
    uintptr_t *w = q, *p = (uintptr_t *)((char *)q + off);
    w[0] = p[-2] = off;
    w[1] = p[-1] = HW_COOKIE_MAGIC | (uintptr_t)kind << 4;
    return p;
}

/* The real block under user block p (whose p[-1] is a cookie). */
static inline void *hw_cookie_base(const void *p)
{
    return (char *)p - ((const uintptr_t *)p)[-2];
}

/* Before freeing the real block: no cookie may outlive it. */
static inline void hw_cookie_clear(void *p)
{
    uintptr_t *q = hw_cookie_base(p);
    ((uintptr_t *)p)[-1] = 0;
    q[1] = 0;
}

#endif
