/* cookie.h: the header of a block the shim allocates itself in arena mode (record_arena.c):
 * a recorded block (sampled, every block in full mode, or a dynamic linker's block: it has a
 * stack), or one of the shim's own allocations (internal: never a program block).
 *
 * Such a block is a real block q of glibc with the user's block p = q + off after it (off =
 * 16 for an internal block, at least 32 for a recorded one, or the alignment asked for when
 * that is larger). The cookie word M says so, in two places: q[1], where the arena walk
 * looks, and p[-1], where free looks:
 *     M = HW_COOKIE_MAGIC | (off / 16) << 8 | kind << 4
 * p[-1] is where glibc keeps a chunk's size, always a multiple of 16 plus three flag bits:
 * bit 3 is never set there, so a free that finds it set knows the block is the shim's (the
 * rest of the magic makes a corrupt header fail loudly in glibc rather than pass as ours).
 *
 * Kinds:
 *   - INLINE: the block's record (struct hw_live_entry but its address: size, thread, flags,
 *     stack, sequence) is in the header itself, in q[0] and p[-2]. A malloc and a free touch
 *     only the lines the program's own block and glibc's chunk header share, where an entry
 *     in a hash table cost a random cache miss each (half of full mode's time on a big heap).
 *     Used for a recorded block in an arena chunk: the arena walk finds it.
 *   - TABLE: the record (if any) is in the live table: a recorded block in a chunk glibc
 *     mmapped (which no arena lists, so only the table finds it), or one whose record is being
 *     moved (a realloc between taking it out and putting it back). The walk skips its chunk.
 *   - INTERNAL: the shim's own block; the walk skips it.
 * The cookie is cleared before q is freed, so that a plain block glibc hands out later at the
 * same address never shows a stale one.
 * Context: SIGSAFE (inline reads and writes of the block's own words). */
#ifndef HW_COOKIE_H
#define HW_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "livetable.h"

#define HW_COOKIE_MAGIC 0x6877636b00000008ull   /* "hwck", and bit 3 */
#define HW_COOKIE_MAGIC_MASK 0xffffffff0000000full
enum { HW_COOKIE_TABLE = 1, HW_COOKIE_INTERNAL = 2, HW_COOKIE_INLINE = 3 };
/* The largest offset M can say: 24 bits of 16-byte units. */
#define HW_COOKIE_OFF_MAX ((size_t)0xffffff << 4)
/* The header a recorded block is allocated with (an INLINE record needs q[0] and p[-2]). */
#define HW_COOKIE_RECORD_OFF 32

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

static inline size_t hw_cookie_off(uintptr_t word)
{
    return (size_t)((word >> 8) & 0xffffff) << 4;
}

static inline uintptr_t hw_cookie_word(size_t off, unsigned kind)
{
    return HW_COOKIE_MAGIC | (uintptr_t)(off >> 4) << 8 | (uintptr_t)kind << 4;
}

/* Write the cookie into the real block q for a user block at q + off (16 <= off <=
 * HW_COOKIE_OFF_MAX, a multiple of 16); returns the user block. */
static inline void *hw_cookie_put(void *q, size_t off, unsigned kind)
{
    uintptr_t *w = q, *p = (uintptr_t *)((char *)q + off);
    w[1] = p[-1] = hw_cookie_word(off, kind);
    return p;
}

/* The real block under user block p (whose p[-1] is a cookie). */
static inline void *hw_cookie_base(const void *p)
{
    return (char *)p - hw_cookie_off(((const uintptr_t *)p)[-1]);
}

/* Change the kind of p's cookie (its offset stays). */
static inline void hw_cookie_set_kind(void *p, unsigned kind)
{
    uintptr_t *q = hw_cookie_base(p);
    q[1] = ((uintptr_t *)p)[-1] = hw_cookie_word(hw_cookie_off(((uintptr_t *)p)[-1]), kind);
}

/* Before freeing the real block: no cookie may outlive it. */
static inline void hw_cookie_clear(void *p)
{
    uintptr_t *q = hw_cookie_base(p);
    ((uintptr_t *)p)[-1] = 0;
    q[1] = 0;
}

/* An INLINE record: e but its address, in q[0] (size, thread, flags) and p[-2] (stack,
 * sequence); the offset must be at least HW_COOKIE_RECORD_OFF. */
_Static_assert(offsetof(struct hw_live_entry, stack) == 16 && sizeof(struct hw_live_entry) == 24,
               "an INLINE record is the entry's second and third words");

static inline void hw_cookie_put_record(void *p, const struct hw_live_entry *e)
{
    uintptr_t *q = hw_cookie_base(p);
    memcpy(&q[0], (const char *)e + 8, 8);
    memcpy(&((uintptr_t *)p)[-2], (const char *)e + 16, 8);
}

/* The record of user block p (whose cookie is INLINE). */
static inline struct hw_live_entry hw_cookie_record(const void *p)
{
    struct hw_live_entry e;
    const uintptr_t *q = hw_cookie_base(p);
    e.addr = (uintptr_t)p;
    memcpy((char *)&e + 8, &q[0], 8);
    memcpy((char *)&e + 16, &((const uintptr_t *)p)[-2], 8);
    return e;
}

#endif
