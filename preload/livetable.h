/* livetable.h: the live blocks that their shadow byte (shadow.h) cannot describe alone:
 * sampled blocks (with their stack), blocks whose slack does not fit the byte, blocks that do
 * not start on a 16-byte granule or lie above the shadowed addresses (record.c).
 *
 * A sharded open-addressing hash table from block address to {size, stack, sequence, thread},
 * 24 bytes an entry, living in anonymous mappings (never the real malloc). Inserts and
 * removals take one shard's spin lock for a few dozen nanoseconds. Snapshots copy it out
 * shard by shard; hw_livetable_lock_all/unlock_all hold it still (fork, stop-the-world). */
#ifndef HW_LIVETABLE_H
#define HW_LIVETABLE_H

#include <stdbool.h>
#include <stdint.h>
#include "hw.h"
#include "sys.h"

struct hw_live_entry {
    uintptr_t addr;           /* 0 = empty slot */
    uint64_t size : 40;       /* requested size */
    uint64_t thread : 22;     /* allocating thread's index (threads.c) */
    uint64_t ignored : 1;     /* heapwatch_ignore(): never a leak, and its contents are a root */
    uint64_t uncounted : 1;   /* has a stack, but is not a sample: not in the profile's counters
                               * (the dynamic linker's blocks, record.c) */
    uint32_t stack;           /* stack id, 0 = not sampled */
    uint32_t seq;             /* allocation sequence number */
};
_Static_assert(sizeof(struct hw_live_entry) == 24, "live entry must stay compact");

/* Whether an entry's block counts in its stack's counters: it has a stack, and it is not
 * the dynamic linker's. The same rule wherever the record lives (the table, cookie.h). */
static inline bool hw_live_entry_counted(const struct hw_live_entry *e)
{
    return e->stack && !e->uncounted;
}

/* An entry built from whole words: GCC fills the bit fields of a designated initializer with
 * partial stores, and the next read of the whole word (a copy, a record in a block's header)
 * then waits for them (a failed store forward, a tenth of full mode's time in track on
 * cxx_mix). The layout is x86-64's (the first field in the low bits); t-cookie checks it. */
static inline struct hw_live_entry hw_live_entry_make(uintptr_t addr, uint64_t size, uint32_t thread, bool uncounted,
                                                      uint32_t stack, uint32_t seq)
{
    struct hw_live_entry e;
    uint64_t w[3] = { addr, (size & ((1ull << 40) - 1)) | (uint64_t)(thread & ((1u << 22) - 1)) << 40 | (uint64_t)uncounted << 63,
                      stack | (uint64_t)seq << 32 };
    __builtin_memcpy(&e, w, sizeof e);
    return e;
}

/* Set up the shards; false if memory could not be mapped. */
bool hw_livetable_init(void) HW_HOOKSAFE;
/* Counters kept with the table (record.c): called with the shard's lock held, so that a
 * block's entry and its counts change together for whoever holds every lock (fork). */
void hw_livetable_set_counters(void (*alloc)(const struct hw_live_entry *),
                               void (*freed)(const struct hw_live_entry *)) HW_HOOKSAFE;
/* Record a new block. Returns false only if the table could not grow (block then untracked). */
bool hw_livetable_insert(const struct hw_live_entry *e) HW_HOOKSAFE;
/* Remove the block at addr, copying its entry to *out. False if it was not tracked. */
bool hw_livetable_remove(uintptr_t addr, struct hw_live_entry *out) HW_HOOKSAFE;
/* Visit every entry, one shard locked at a time; fn returns false to stop. */
void hw_livetable_visit(bool (*fn)(const struct hw_live_entry *, void *), void *arg);
/* Shards are numbered 0..hw_livetable_shards()-1; copy shard k's entries into out (appended),
 * holding only that shard's lock. (Snapshots read a stopped world's slots instead:
 * hw_livetable_slots_stopped.) */
unsigned hw_livetable_shards(void) HW_SIGSAFE;
bool hw_livetable_copy_shard(unsigned k, struct hw_vec *out) HW_HOOKSAFE;
/* Shard k's slots (*nr of them; an empty slot has address 0), without its lock: for a
 * stopped world (or a fork child of one), where no thread is inside the table.
 * Context: SIGSAFE. */
const struct hw_live_entry *hw_livetable_slots_stopped(unsigned k, size_t *nr) HW_SIGSAFE;
/* Flag the live block that starts at addr as ignored; false if there is none. */
bool hw_livetable_set_ignored(uintptr_t addr) HW_HOOKSAFE;
/* Number of entries and total bytes of tracked live blocks (approximate while threads run). */
void hw_livetable_totals(uint64_t *objects, uint64_t *bytes) HW_SIGSAFE;
/* Metadata bytes currently mapped by the table. */
uint64_t hw_livetable_footprint(void) HW_SIGSAFE;
void hw_livetable_lock_all(void) HW_HOOKSAFE;
/* Also in a fork child, whose copies of the locks lock_all took are held. */
void hw_livetable_unlock_all(void) HW_HOOKSAFE;

#endif
