/* This file implements arena mode (record_arena.h): recording with no record per unsampled
 * block. The hooks' fast paths (interpose.c) hand an unsampled request below hw_arena_small
 * straight to glibc: the heap walk finds such blocks in glibc's own arenas (glibcheap.h).
 * Everything else comes here:
 *   - a recorded block (sampled; every block in full mode; a dynamic linker's block, which
 *     gets a stack too) is allocated 32 bytes (or its alignment) larger, behind a cookie
 *     (cookie.h) that holds its record (INLINE): its free finds the cookie in the header
 *     glibc's free reads anyway, and the walk reads the record as it meets the chunk. One in
 *     a chunk glibc mmapped, which no arena lists, keeps its record in the live table (TABLE);
 *   - a block of an unsampled request at or above hw_arena_small may be a chunk glibc
 *     mmapped: such a chunk gets a table entry (its free finds glibc's IS_MMAPPED bit in the
 *     same header);
 *   - the shim's own allocations (the guard is set) get an internal cookie, so that the walk
 *     leaves them out.
 * Unsampled blocks are walked with their usable size, not the requested one: nothing records
 * it (README.md says so). Recorded blocks keep their requested size. glibc's own calls are
 * made outside record sections (a stop of the world need not wait for them) but inside the
 * block's fork window (forkgate.h).
 * Context: HOOKSAFE. */
#define _GNU_SOURCE
#include "record_arena.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include "cookie.h"
#include "events.h"
#include "forkgate.h"
#include "glibcheap.h"
#include "livetable.h"
#include "maps.h"
#include "stw.h"
#include "threadhooks.h"
#include "trigger.h"
#include "options.h"
#include "real.h"
#include "record.h"
#include "sys.h"
#include "threads.h"

#define SMALL_MAX (128 * 1024)   /* glibc's smallest mmap threshold (M_MMAP_THRESHOLD's default) */

bool hw_arena_mode;
size_t hw_arena_small;

void hw_arena_init(void)
{
    const char *want = hw_opt.blocks;
    bool forced = !strcmp(want, "arena");
    if (strcmp(want, "auto") && !forced) {
        if (!strcmp(want, "shadow"))
            return;
        hw_log("HEAPWATCH_BLOCKS=%s: expected auto, arena or shadow; using auto", want);
    }
    const char *why = NULL;
    if (hw_real_usable != HW_USABLE_GLIBC)
        why = "the allocator is not glibc's";
    else if (!hw_opt.sample_rate)
        why = "HEAPWATCH_SAMPLE_RATE=0";
    else if (!hw_opt.objects)
        why = "HEAPWATCH_OBJECTS=0 counts live blocks as they come and go";
    else if (!hw_glibcheap_probe())
        why = hw_glibcheap_failure();
    if (why) {
        if (forced)
            hw_log("HEAPWATCH_BLOCKS=arena: %s; using the shadow map", why);
        hw_opt.blocks = "shadow";
        return;
    }
    size_t threshold = hw_glibcheap_mmap_threshold();
    hw_arena_small = threshold && threshold < SMALL_MAX ? threshold : SMALL_MAX;
    hw_arena_mode = true;
    hw_opt.blocks = "arena";   /* the database's settings say which mode ran */
}

void hw_arena_threshold_changed(size_t threshold)
{
    if (hw_arena_mode && threshold < hw_arena_small)
        hw_arena_small = threshold;
}

/* The real allocator's block of `size` bytes aligned to `align` (0: malloc's), zeroed if
 * asked. */
static void *real_alloc(size_t size, size_t align, bool zero)
{
    if (!align)
        return zero ? hw_real.calloc(1, size) : hw_real.malloc(size);
    void *p = hw_real.memalign(align, size);
    if (p && zero)
        memset(p, 0, size);
    return p;
}

/* A block of `size` bytes behind a cookie of `kind`, base_off bytes into its real block (16
 * or HW_COOKIE_RECORD_OFF), or for an alignment above 16 a multiple of it that is larger than
 * base_off, so that an offset of base_off says the block is not aligned (realloc); NULL when
 * the real allocator has none, or when the offset would not fit the cookie (an alignment
 * above HW_COOKIE_OFF_MAX; errno untouched: the caller falls back). */
static void *cookie_alloc(size_t size, size_t align, bool zero, size_t base_off, unsigned kind)
{
    size_t off = align <= 16 ? base_off : align > base_off ? align : 2 * base_off;
    if (off > HW_COOKIE_OFF_MAX)
        return NULL;
    if (size > SIZE_MAX - off) {
        errno = ENOMEM;
        return NULL;
    }
    void *q = real_alloc(size + off, align > 16 ? align : 0, zero);
    return q ? hw_cookie_put(q, off, kind) : NULL;
}

static bool chunk_mmapped(const void *p)
{
    return ((const uintptr_t *)p)[-1] & 2;
}

/* The stack of a block to record: sampled, or the dynamic linker's; else none. Taken before
 * the block's fork window opens (forkgate.h): unwinding may take the loader's lock. */
static uint32_t stack_of(bool sampled, bool loader)
{
    return sampled || loader ? hw_record_capture() : 0;
}

/* Record block p of `size` bytes with its stack (stack_of): sampled, the dynamic linker's
 * (a stack, not counted), or neither (stack 0: a chunk glibc mmapped, or a block no longer a
 * sample). A cookie'd block in an arena chunk keeps its record in its header (INLINE); any
 * other block in the live table. Inside a record section, and for a cookie'd block inside
 * the fork window that allocated it. */
static void track(void *p, size_t size, bool sampled, bool loader, uint32_t stack)
{
    struct hw_live_entry e = hw_live_entry_make((uintptr_t)p, size, hw_thread_index(), !sampled && loader, stack, hw_seq_next());
    uintptr_t h = ((uintptr_t *)p)[-1];
    if (hw_is_cookie(h) && hw_cookie_off(h) >= HW_COOKIE_RECORD_OFF && !chunk_mmapped(hw_cookie_base(p))) {
        if (hw_live_entry_counted(&e))
            hw_record_count_alloc(&e);   /* counts a sample, logs its event */
        hw_cookie_put_record(p, &e);
        hw_cookie_set_kind(p, HW_COOKIE_INLINE);
        return;
    }
    if (hw_is_cookie(h))
        hw_cookie_set_kind(p, HW_COOKIE_TABLE);
    hw_livetable_insert(&e);   /* counts a sample, logs its event */
}

/* An allocation whose sampling is decided: sampled (or the dynamic linker's) behind a cookie
 * with its record, else glibc's own block. Not inside a record section: glibc's call is made
 * outside one, where a stop of the world need not wait for it (a thread blocked on an arena
 * lock that a stopped thread holds could not stop); the record is made inside one. */
static void *alloc_decided(size_t size, size_t align, bool zero, bool sampled, bool loader)
{
    void *p = NULL;
    uint32_t stack = 0;
    if (sampled || loader) {
        hw_record_enter();
        stack = stack_of(sampled, loader);
        hw_record_leave();
        hw_window_open();
        p = cookie_alloc(size, align, zero, HW_COOKIE_RECORD_OFF, HW_COOKIE_TABLE);
        if (p) {
            hw_record_enter();
            track(p, size, sampled, loader, stack);   /* a full table loses the block */
            hw_record_leave();
        }
        hw_window_close();
        if (p || align <= HW_COOKIE_OFF_MAX)
            return p;
        /* an alignment no cookie can say: glibc's block, recorded if it is an mmapped chunk */
    }
    /* No window: a fork between glibc's mmap of a chunk and its table entry leaves the child
     * a chunk that no walk sees and no count has. */
    p = real_alloc(size, align, zero);
    if (p && chunk_mmapped(p) && (size >= hw_arena_small || sampled || loader)) {   /* no arena lists it */
        hw_record_enter();
        track(p, size, sampled, loader, stack);
        hw_record_leave();
    }
    return p;
}

void *hw_arena_mode_alloc(size_t size, size_t align, bool zero, const void *caller)
{
    hw_trigger_at_allocation(hw_from_loader(caller));
    if (!hw_recording()) {
        if (!hw_self.guard)
            return real_alloc(size, align, zero);
        void *p = cookie_alloc(size, align, zero, 16, HW_COOKIE_INTERNAL);
        return p || align <= HW_COOKIE_OFF_MAX ? p : real_alloc(size, align, zero);
    }
    hw_record_enter();
    hw_event_note_allocation();
    bool sampled = hw_record_should_sample(size), loader = hw_from_loader(caller);
    hw_record_leave();
    void *p = alloc_decided(size, align, zero, sampled, loader);
    return p;
}

/* Take cookie'd block p's record out (counting a sampled free) into *e; whether it had one.
 * An INLINE block's cookie becomes TABLE, so that while the record is out the walk skips it
 * as it skips a TABLE block whose entry is gone. Inside a record section. */
static bool take_record(void *p, struct hw_live_entry *e)
{
    uintptr_t h = ((uintptr_t *)p)[-1];
    if (hw_is_cookie(h) && hw_cookie_kind(h) == HW_COOKIE_INLINE) {
        *e = hw_cookie_record(p);
        hw_cookie_set_kind(p, HW_COOKIE_TABLE);
        if (hw_live_entry_counted(e))
            hw_record_count_free(e);   /* counts the sample's free, logs its event */
        return true;
    }
    return hw_livetable_remove((uintptr_t)p, e);   /* counts the sample's free, logs its event */
}

void hw_arena_mode_free(void *p)
{
    uintptr_t h = ((uintptr_t *)p)[-1];
    if (hw_is_cookie(h)) {
        /* The record is taken out in a record section (its cookie becomes TABLE, which a walk
         * skips), glibc's free is called outside one (see alloc_decided). A walk between the
         * two takes the chunk, its cookie cleared, for a plain block: full mode's walk leaves
         * plain chunks out, sampled mode's shows it for that one snapshot. The fork window
         * (forkgate.h) spans it all: a fork child would keep the chunk for good. */
        if (hw_cookie_kind(h) == HW_COOKIE_INTERNAL) {
            void *q = hw_cookie_base(p);
            hw_cookie_clear(p);
            hw_real.free(q);
            hw_self.arena_frees++;
            return;
        }
        hw_window_open();
        if (hw_forgetting()) {
            struct hw_live_entry e;
            hw_record_enter();
            take_record(p, &e);
            hw_record_leave();
        }
        void *q = hw_cookie_base(p);
        hw_cookie_clear(p);
        hw_real.free(q);
        hw_self.arena_frees++;   /* after the event log looked at the count (events.c) */
        hw_window_close();
        return;
    }
    /* glibc's mmapped chunk (or no chunk of glibc at all: glibc says so as it would without us) */
    if ((h & 2) && hw_forgetting()) {
        struct hw_live_entry e;
        hw_record_enter();
        hw_livetable_remove((uintptr_t)p, &e);
        hw_record_leave();
    }
    hw_real.free(p);
    hw_self.arena_frees++;
}

size_t hw_arena_mode_usable(const void *p)
{
    uintptr_t h = ((const uintptr_t *)p)[-1];
    if (!hw_is_cookie(h))
        return hw_real_usable_size(p);
    const void *q = hw_cookie_base(p);
    return hw_real_usable_size(q) - (size_t)((const char *)p - (const char *)q);
}

/* glibc's realloc of its own block (no cookie), an mmapped chunk's table entry taken out first
 * and put back if glibc fails; NULL when it does. */
static void *glibc_realloc(void *old, size_t size)
{
    struct hw_live_entry e;
    bool had = false;
    if ((((uintptr_t *)old)[-1] & 2) && hw_forgetting()) {
        hw_record_enter();
        had = hw_livetable_remove((uintptr_t)old, &e);
        hw_record_leave();
    }
    void *p = hw_real.realloc(old, size);
    if (!p && had) {
        hw_record_enter();
        hw_livetable_insert(&e);
        hw_record_leave();
    }
    return p;
}

/* realloc, in place wherever glibc can: a block grown a page at a time must not be copied
 * whole every time (a sampled realloc of a big block is almost sure, size for size). A
 * cookie'd block is realloc'd whole, its header moving with it; glibc's own block stays
 * glibc's, and gets a table entry when it is (or becomes) a chunk glibc mmapped. Only a
 * sampled realloc of a block in an arena, which needs a cookie in front, and a cookie'd block
 * with a larger alignment, are copied. */
void *hw_arena_mode_realloc(void *old, size_t size, const void *caller)
{
    uintptr_t h = ((uintptr_t *)old)[-1];
    bool ours = hw_is_cookie(h), recording = hw_recording();
    if (!size) {   /* glibc: realloc(p, 0) frees p and returns NULL */
        hw_arena_mode_free_any(old);
        return NULL;
    }
    if (!ours && !recording)   /* the shim's own call, or no recording: glibc's, untracked */
        return glibc_realloc(old, size);
    bool internal = ours && hw_cookie_kind(h) == HW_COOKIE_INTERNAL;
    size_t off = ours ? hw_cookie_off(h) : 0;
    /* A cookie'd block realloc'd whole, its header moving with it: its record out first (its
     * free before the new allocation, as without the shim: a block realloc'd again at once is a
     * temporary), the cookie off the old chunk, which glibc may free, and put back on whichever
     * chunk holds the block after; glibc's call outside a record section, the whole in one fork
     * window (see hw_arena_mode_free). An offset other than its kind's own is an alignment's,
     * which glibc's realloc keeps not. */
    if (ours && off == (internal ? 16 : HW_COOKIE_RECORD_OFF) && size <= SIZE_MAX - off && (recording || internal)) {
        struct hw_live_entry e;
        bool was_inline = !internal && hw_cookie_kind(h) == HW_COOKIE_INLINE;
        bool sampled = false, loader = false, had = false;
        uint32_t stack = 0;
        /* The new block's sampling is decided first (its stack is taken outside the window),
         * but the old block's free must see the countdown as it was, and precede the new
         * allocation's count, as without the shim: a block realloc'd right after it was made
         * is a temporary (events.c). */
        int64_t countdown = hw_self.until_sample, countdown_after = countdown;
        hw_record_enter();
        if (recording) {
            loader = hw_from_loader(caller);
            sampled = hw_record_should_sample(size);
            stack = internal ? 0 : stack_of(sampled, loader);
            countdown_after = hw_self.until_sample;
            hw_self.until_sample = countdown;
        }
        hw_record_leave();
        if (!internal)
            hw_window_open();
        hw_record_enter();
        had = !internal && hw_forgetting() && take_record(old, &e);
        hw_self.until_sample = countdown_after;
        if (recording)
            hw_event_note_allocation();
        hw_record_leave();
        void *q_old = hw_cookie_base(old);
        hw_cookie_clear(old);
        char *q = hw_real.realloc(q_old, size + off);
        void *p = NULL;
        hw_record_enter();
        if (!q) {
            hw_cookie_put(q_old, off, internal ? HW_COOKIE_INTERNAL : HW_COOKIE_TABLE);
            if (had && was_inline) {
                if (hw_live_entry_counted(&e))
                    hw_record_count_alloc(&e);
                hw_cookie_set_kind(old, HW_COOKIE_INLINE);
            } else if (had) {
                hw_livetable_insert(&e);
            }
        } else {
            hw_self.arena_frees++;
            p = hw_cookie_put(q, off, internal ? HW_COOKIE_INTERNAL : HW_COOKIE_TABLE);
            if (!internal)
                track(p, size, sampled, loader, stack);
        }
        hw_record_leave();
        if (!internal)
            hw_window_close();
        return p;
    }
    bool sampled = false, loader = false;
    if (recording) {
        hw_record_enter();
        hw_event_note_allocation();
        sampled = hw_record_should_sample(size);
        loader = hw_from_loader(caller);
        hw_record_leave();
    }
    if (!ours) {
        void *p = glibc_realloc(old, size);
        if (!p)
            return NULL;
        hw_self.arena_frees++;
        if (chunk_mmapped(p)) {   /* its free takes the slow path: a table entry is enough */
            hw_record_enter();
            track(p, size, sampled, loader, stack_of(sampled, loader));
            hw_record_leave();
            return p;
        }
        if (!sampled && !loader)
            return p;
        /* a sample in an arena needs its cookie: the one case copied */
        void *s = alloc_decided(size, 0, false, sampled, loader);
        if (!s)
            return p;   /* keep glibc's block, unsampled */
        memcpy(s, p, size);
        hw_self.arena_frees++;
        hw_real.free(p);
        return s;
    }
    /* a cookie'd block with a larger alignment, or one of the shim's own under no recording */
    size_t have = hw_arena_mode_usable(old);
    void *p;
    if (recording) {
        p = alloc_decided(size, 0, false, sampled, loader);
    } else {
        p = hw_arena_mode_alloc(size, 0, false, caller);
    }
    if (!p)
        return NULL;   /* old stays as it was */
    memcpy(p, old, have < size ? have : size);
    hw_arena_mode_free_any(old);
    return p;
}

void hw_arena_mode_free_any(void *p)
{
    if (((uintptr_t *)p)[-1] & HW_COOKIE_SLOW_BITS) {
        hw_arena_mode_free(p);
    } else {
        hw_self.arena_frees++;
        hw_real.free(p);
    }
}

struct tcache_list {
    uintptr_t *tc;
    size_t n, cap;
    const struct hw_vec *maps;
};

static void add_tcache_of(uintptr_t tp, void *arg)
{
    struct tcache_list *l = arg;
    uintptr_t slot = tp + (uintptr_t)hw_glibcheap_tcache_tpoff(), next;
    if (l->n < l->cap && tp && hw_maps_readable_end(l->maps, slot, &next) >= slot + sizeof(uintptr_t))
        l->tc[l->n++] = *(const uintptr_t *)slot;
}

/* The tcache structs of threads this process inherited only the memory of (fork), and their
 * number: kept for the life of the process, since nothing can free them. */
static uintptr_t *inherited;
static size_t nr_inherited, inherited_len;

/* add_tcache_of but for the calling thread: its tcache is its own while it lives, and freed
 * when it ends (the walk takes it from its TLS). */
static void add_other_tcache(uintptr_t tp, void *arg)
{
    if (tp != (uintptr_t)pthread_self())
        add_tcache_of(tp, arg);
}

void hw_arena_keep_parent_tcaches(void)
{
    if (!hw_arena_mode)
        return;
    struct hw_vec maps = { .elem = sizeof(struct hw_mapping) };
    hw_maps_read(&maps);
    size_t cap = nr_inherited + hw_threads_registry_size();
    struct tcache_list l = { hw_map(cap * sizeof(uintptr_t)), 0, cap, &maps };
    if (l.tc) {
        if (nr_inherited)   /* a grandchild keeps its parent's inherited ones too */
            memcpy(l.tc, inherited, nr_inherited * sizeof *inherited);
        l.n = nr_inherited;
        hw_threads_each_tp(add_other_tcache, &l);
        hw_unmap(inherited, inherited_len);
        inherited = l.tc;
        nr_inherited = l.n;
        inherited_len = cap * sizeof(uintptr_t);
    }
    hw_vec_release(&maps);
}

uintptr_t *hw_arena_tcaches(const struct hw_world *w, const struct hw_vec *maps, size_t *n, size_t *len)
{
    size_t cap = (w ? w->nr : 0) + 2 + hw_threads_registry_size() + nr_inherited;
    *len = cap * sizeof(uintptr_t);
    struct tcache_list l = { hw_map(*len), 0, cap, maps };
    if (!l.tc)
        return NULL;
    for (uint32_t i = 0; w && i < w->nr; i++)
        if (atomic_load(&w->threads[i].state) != HW_T_GONE)
            add_tcache_of(w->threads[i].tp, &l);
    if (l.n < l.cap)
        l.tc[l.n++] = hw_glibcheap_my_tcache();
    add_tcache_of(hw_trigger_helper_tp(), &l);   /* not in w when another thread stopped the world */
    hw_threads_each_tp(add_tcache_of, &l);
    for (size_t i = 0; i < nr_inherited && l.n < l.cap; i++)
        l.tc[l.n++] = inherited[i];
    hw_sort_by_first_word(l.tc, l.n, sizeof *l.tc);
    size_t kept = 0;
    for (size_t i = 0; i < l.n; i++)
        if (l.tc[i] && (!kept || l.tc[kept - 1] != l.tc[i]))
            l.tc[kept++] = l.tc[i];
    *n = kept;
    return l.tc;
}

bool hw_arena_mode_ignore(const void *p)
{
    if (hw_livetable_set_ignored((uintptr_t)p))
        return true;
    /* A block with its record in its header: the flag goes there. p[-1] is read with a system
     * call, which fails on memory that is not mapped, since p may be anything. */
    uintptr_t h, q1;
    if (!((uintptr_t)p & 15) && (uintptr_t)p >= 4096 && hw_read_word_checked((uintptr_t)p - sizeof h, &h) &&
        hw_is_cookie(h) && hw_cookie_kind(h) == HW_COOKIE_INLINE && hw_cookie_off(h) <= (uintptr_t)p &&
        hw_read_word_checked((uintptr_t)hw_cookie_base(p) + sizeof q1, &q1) && q1 == h) {   /* both words */
        hw_record_enter();
        struct hw_live_entry e = hw_cookie_record(p);
        e.ignored = 1;
        hw_cookie_put_record((void *)p, &e);
        hw_record_leave();
        return true;
    }
    /* A plain block, which only the arenas know: an entry with no size that the walk merges
     * into its chunk (and drops once no chunk starts there). */
    struct hw_live_entry e = { .addr = (uintptr_t)p, .thread = hw_thread_index(), .ignored = 1, .uncounted = 1 };
    hw_record_enter();
    bool ok = hw_livetable_insert(&e);
    hw_record_leave();
    return ok;
}
