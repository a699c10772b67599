/* glibcheap.c: the walk of glibc's own arenas (glibcheap.h says what it reports and why).
 * The layouts below are glibc 2.35..2.41's on x86-64 (malloc/malloc.c, malloc/arena.c);
 * each is checked, by the probe against the running libc and by the walk as it goes.
 * Context: the probe is normal context; the rest SIGSAFE (hw.h). */
#define _GNU_SOURCE
#include "glibcheap.h"

#include <errno.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "sys.h"

/* struct malloc_state (malloc.c): int mutex; int flags; int have_fastchunks;
 * mfastbinptr fastbinsY[10]; mchunkptr top, last_remainder, bins[254];
 * unsigned binmap[4]; next, next_free; attached_threads, system_mem, max_system_mem. */
#define MS_MUTEX 0
#define MS_FLAGS 4
#define MS_FASTBINS 16
#define NFASTBINS 10
#define MS_TOP 96
#define MS_BINS 112
#define NBINS 128
#define MS_NEXT 2160
#define MS_SYSTEM_MEM 2184
#define MS_MAX_SYSTEM_MEM 2192
#define MS_SIZEOF 2200
#define NONCONTIGUOUS_BIT 2
/* heap_info (arena.c): ar_ptr, prev, size, mprotect_size, pagesize, pad[8]. */
#define HI_AR_PTR 0
#define HI_PREV 8
#define HI_SIZE 16
#define HI_SIZEOF 48
#define HEAP_MAX_DEFAULT (64ul << 20)   /* 2 * DEFAULT_MMAP_THRESHOLD_MAX */
/* struct malloc_par (malloc.c), with the huge page fields of 2.35+. */
#define MP_HP_PAGESIZE 48
#define MP_N_MMAPS 60
#define MP_MAX_N_MMAPS 68
#define MP_MMAPPED_MEM 80
#define MP_MAX_MMAPPED_MEM 88
#define MP_SBRK_BASE 96
#define MP_TCACHE_BINS 104
#define MP_TCACHE_MAX_BYTES 112
#define MP_TCACHE_COUNT 120
#define MP_SIZEOF 136
#define MAX_MP_CANDIDATES 64   /* places in libc's data that pass mp_plausible: glibc has one */
/* tcache_perthread_struct: uint16_t counts[64]; tcache_entry *entries[64]. */
#define TCACHE_MAX_BINS 64
#define TC_ENTRIES 128
#define TC_CHUNK 656            /* request2size(640) */
/* Chunks. */
#define SIZE_SZ 8
#define HDR 16                  /* CHUNK_HDR_SZ */
#define MINSIZE 32
#define PREV_INUSE 1
#define IS_MMAPPED 2
#define NON_MAIN_ARENA 4
#define SIZE_BITS 7

#define W(a) (*(const uintptr_t *)(uintptr_t)(a))
#define ALIGN16(x) (((x) + 15) & ~(uintptr_t)15)
#define CSIZE2TIDX(s) (((s) - MINSIZE + 15) / 16)
#define FASTBIN_INDEX(s) (((unsigned)(s) >> 4) - 2)
#define REVEAL(pos, v) (((uintptr_t)(pos) >> 12) ^ (v))
#define MAX_ARENAS (1u << 16)

static struct {
    bool done, ok;
    char why[200];
    uintptr_t main_arena, mp;
    uintptr_t key;
    intptr_t tpoff;
    uintptr_t rw_lo[8], rw_hi[8];
    int nrw;
    uintptr_t tls_lo;
    size_t tls_len;
    int pipe[2];
} G = { .pipe = { -1, -1 } };

static struct hw_glibcheap_stats last;

static inline uintptr_t thread_pointer(void)
{
    uintptr_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return tp;
}

static inline uintptr_t heap_max(void)
{
    uintptr_t hp = W(G.mp + MP_HP_PAGESIZE);
    return hp ? 4 * hp : HEAP_MAX_DEFAULT;
}

/* ---------------------------------------------------------------- probe ---------- */

__attribute__((format(printf, 1, 2))) static bool fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(G.why, sizeof G.why, fmt, ap);
    va_end(ap);
    return false;
}

/* Copy len bytes from addr, or false if any of them is not readable: write(2) to a pipe
 * reports EFAULT instead of faulting. Probe only. */
static bool safe_read(uintptr_t addr, void *buf, size_t len)
{
    char *out = buf;
    while (len) {
        size_t n = len > 4096 ? 4096 : len;
        ssize_t w = write(G.pipe[1], (const void *)addr, n);
        if (w <= 0)
            return false;
        ssize_t r = read(G.pipe[0], out, (size_t)w);
        if (r != w)
            return false;
        addr += (size_t)w, out += w, len -= (size_t)w;
    }
    return true;
}

/* safe_read, but a plain copy inside libc's own writable segments, which are mapped for as
 * long as libc is: the scan for main_arena and mp_ reads every word of them, and two system
 * calls a word cost every program about 10 ms at start. */
static bool probe_read(uintptr_t addr, void *buf, size_t len)
{
    for (int s = 0; s < G.nrw; s++)
        if (addr >= G.rw_lo[s] && addr + len <= G.rw_hi[s] && addr + len >= addr) {
            memcpy(buf, (const void *)addr, len);
            return true;
        }
    return safe_read(addr, buf, len);
}

static bool safe_word(uintptr_t addr, uintptr_t *v)
{
    return !(addr & 7) && probe_read(addr, v, sizeof *v);
}

static int find_libc(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t errno_at = (uintptr_t)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_TLS || !info->dlpi_tls_data)
            continue;
        uintptr_t lo = (uintptr_t)info->dlpi_tls_data;
        if (errno_at < lo || errno_at >= lo + ph->p_memsz)
            return 0;
        G.tls_lo = lo;
        G.tls_len = ph->p_memsz;
        G.nrw = 0;
        for (int j = 0; j < info->dlpi_phnum; j++) {
            const ElfW(Phdr) *l = &info->dlpi_phdr[j];
            if (l->p_type == PT_LOAD && (l->p_flags & PF_W) && G.nrw < 8) {
                G.rw_lo[G.nrw] = (info->dlpi_addr + l->p_vaddr) & ~(uintptr_t)7;
                G.rw_hi[G.nrw] = info->dlpi_addr + l->p_vaddr + l->p_memsz;
                G.nrw++;
            }
        }
        return 1;
    }
    return 0;
}

/* Whether m looks like mp_: its fields hold glibc's own invariants. */
static bool mp_plausible(uintptr_t m)
{
    uintptr_t f[MP_SIZEOF / 8];
    /* Two words first, which most places in the segment fail, before copying the struct
     * (m lies in libc's writable segment: plain loads). */
    if (!W(m + MP_TCACHE_BINS) || W(m + MP_TCACHE_BINS) > TCACHE_MAX_BINS || !W(m + MP_SBRK_BASE))
        return false;
    if (!probe_read(m, f, sizeof f))
        return false;
    uintptr_t hp = f[MP_HP_PAGESIZE / 8];
    int32_t i32[MP_SIZEOF / 4];
    memcpy(i32, f, sizeof i32);
    uintptr_t bins = f[MP_TCACHE_BINS / 8], maxb = f[MP_TCACHE_MAX_BYTES / 8];
    uintptr_t cnt = f[MP_TCACHE_COUNT / 8];
    if (hp && (hp < 4096 || (hp & (hp - 1))))
        return false;
    if (i32[MP_N_MMAPS / 4] < 0 || i32[MP_MAX_N_MMAPS / 4] < i32[MP_N_MMAPS / 4])
        return false;
    if (f[MP_MMAPPED_MEM / 8] > f[MP_MAX_MMAPPED_MEM / 8])
        return false;
    if (!f[MP_SBRK_BASE / 8] || !bins || bins > TCACHE_MAX_BINS || maxb > 1032 || !cnt || cnt > 65535)
        return false;
    /* do_set_tcache_max: tcache_bins = csize2tidx(request2size(tcache_max_bytes)) + 1 */
    uintptr_t req = (maxb + SIZE_SZ + 15) & ~(uintptr_t)15;
    if (req < MINSIZE)
        req = MINSIZE;
    return CSIZE2TIDX(req) + 1 == bins;
}

/* Walk the main heap from sbrk_base's first chunk with safe reads: true if it lands exactly
 * on top and passes the chunk `want` (0: none). */
static bool main_heap_reaches(uintptr_t sbrk_base, uintptr_t top, uintptr_t want)
{
    uintptr_t p = ALIGN16(sbrk_base);
    bool seen = !want;
    for (size_t n = 0; p < top && n < (1u << 22); n++) {
        uintptr_t hdr;
        if (!safe_word(p + SIZE_SZ, &hdr))
            return false;
        uintptr_t size = hdr & ~(uintptr_t)SIZE_BITS;
        if (size < MINSIZE || (size & 15) || (hdr & (IS_MMAPPED | NON_MAIN_ARENA)) || p + size > top)
            return false;
        seen |= p == want;
        p += size;
    }
    return p == top && seen;
}

/* Whether a looks like a malloc_state: each bin empty (fd == bk == the bin itself) or not
 * (neither), enough of them empty, the next list a cycle through a. */
static bool arena_plausible(uintptr_t a)
{
    uintptr_t bins[NBINS * 2 - 2];
    int32_t head[4];
    /* Most of libc's writable segment is zeroed .bss, which fails at the first bin: test the
     * mutex and that bin before copying all the bins (2 KiB a candidate, 19 MB over the
     * segment, a fifth of a short program's time under the shim). a lies in the segment:
     * plain loads. */
    uintptr_t fd = W(a + MS_BINS), bk = W(a + MS_BINS + 8), self = a + MS_BINS - HDR;
    if ((uint32_t)W(a) > 2 || (fd == self) != (bk == self) || !fd || !bk || ((fd | bk) & 15))
        return false;
    if (!probe_read(a, head, sizeof head) || (uint32_t)head[0] > 2)
        return false;
    if (!probe_read(a + MS_BINS, bins, sizeof bins))
        return false;
    int empty = 0;
    for (int i = 1; i < NBINS; i++) {
        uintptr_t self = a + MS_BINS + 16 * (uintptr_t)(i - 1) - HDR;
        uintptr_t fd = bins[2 * (i - 1)], bk = bins[2 * (i - 1) + 1];
        if ((fd == self) != (bk == self) || !fd || !bk || ((fd | bk) & 15))
            return false;
        empty += fd == self;
    }
    if (empty < 8)
        return false;
    uintptr_t x = a;
    for (unsigned n = 0; n < MAX_ARENAS; n++) {
        if (!safe_word(x + MS_NEXT, &x) || !x)
            return false;
        if (x == a)
            return true;
    }
    return false;
}

struct probe_seen {
    uintptr_t want[8];
    size_t usable[8], n, total;
};

static bool probe_collect(uintptr_t block, size_t usable, void *arg)
{
    struct probe_seen *s = arg;
    s->total++;
    for (size_t i = 0; i < s->n; i++)
        if (s->want[i] == block)
            s->usable[i] = usable;
    return true;
}

static int count_threads(void)
{
    char buf[4096];
    FILE *f = fopen("/proc/self/status", "r");
    int n = -1;
    if (!f)
        return -1;
    while (fgets(buf, sizeof buf, f))
        if (sscanf(buf, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

static bool probe(void)
{
    unsigned major, minor;
    const char *v = gnu_get_libc_version();
    if (sscanf(v, "%u.%u", &major, &minor) != 2 || major != 2 || minor < 35 || minor > 41)
        return fail("glibc %s: only 2.35 to 2.41 have the layouts this walker knows", v);
    if (pipe(G.pipe))
        return fail("pipe: %s", strerror(errno));
    if (!dl_iterate_phdr(find_libc, (void *)__errno_location()) || !G.nrw)
        return fail("libc's TLS block (the one holding errno) or its writable segment not found");

    /* tcache_key: a block freed into the tcache has it in user word 1, and loses it when
     * malloc takes the block back out. Drain the bin of 1000-byte requests first (8 >
     * the default tcache_count of 7) so that the free goes to the tcache. */
    enum { S = 1000, TIDX = CSIZE2TIDX(1008) };
    void *q[8];
    for (int i = 0; i < 8; i++)
        if (!(q[i] = malloc(S))) {
            while (i--)
                free(q[i]);
            return fail("malloc failed");
        }
    uintptr_t p = (uintptr_t)q[7];
    free(q[7]);
    G.key = ((uintptr_t *)p)[1];
    bool ok = true;
    if (!G.key) {
        ok = fail("no tcache key in a block just freed: tcache disabled?");
        goto out;
    }
    /* The tcache pointer: the one word of libc's TLS block that points to a struct whose
     * bin TIDX starts with p. */
    uintptr_t tp = thread_pointer(), slot = 0;
    int slots = 0;
    for (uintptr_t w = ALIGN16(G.tls_lo) - 16; w + 8 <= G.tls_lo + G.tls_len; w += 8) {
        if (w < G.tls_lo)
            continue;
        uintptr_t t = W(w), hdr, e;
        uint16_t c;
        if (!t || (t & 15) || !safe_word(t - SIZE_SZ, &hdr) || (hdr & ~(uintptr_t)SIZE_BITS) != TC_CHUNK)
            continue;
        if (!safe_read(t + 2 * TIDX, &c, 2) || !safe_word(t + TC_ENTRIES + 8 * TIDX, &e))
            continue;
        if (c >= 1 && e == p)
            slot = w, slots++;
    }
    if (slots != 1) {
        ok = fail("%d words of libc's TLS point to a tcache holding the block just freed", slots);
        goto out;
    }
    G.tpoff = (intptr_t)(slot - tp);
    uintptr_t tc = W(slot);
    q[7] = malloc(S);
    if ((uintptr_t)q[7] != p || ((uintptr_t *)p)[1] != 0 || W(tc + TC_ENTRIES + 8 * TIDX) == p) {
        ok = fail("malloc after free did not take the block back out of the tcache");
        goto out;
    }

    /* main_arena and mp_: in libc's writable segment, the only pair where mp_.sbrk_base's
     * first chunk leads chunk by chunk exactly to main_arena.top (through the probe block if
     * it is in the main arena). */
    uintptr_t hdr = ((uintptr_t *)p)[-1];
    uintptr_t want = (hdr & NON_MAIN_ARENA) ? 0 : p - HDR;
    int arenas = 0, pairs = 0;
    /* The mp_ candidates once, not once per arena candidate (the segment is 9k words). */
    uintptr_t mps[MAX_MP_CANDIDATES];
    int nr_mps = 0;
    for (int t = 0; t < G.nrw; t++)
        for (uintptr_t m = G.rw_lo[t]; m + MP_SIZEOF <= G.rw_hi[t]; m += 8)
            if (mp_plausible(m) && nr_mps < MAX_MP_CANDIDATES)
                mps[nr_mps++] = m;
    for (int s = 0; s < G.nrw; s++)
        for (uintptr_t a = G.rw_lo[s]; a + MS_SIZEOF <= G.rw_hi[s]; a += 8) {
            if (!arena_plausible(a))
                continue;
            arenas++;
            uintptr_t top = W(a + MS_TOP);
            if (W(a + MS_FLAGS) & NONCONTIGUOUS_BIT)
                continue;
            for (int j = 0; j < nr_mps; j++) {
                uintptr_t m = mps[j];
                if (m + MP_SIZEOF > a && m < a + MS_SIZEOF)
                    continue;
                if (main_heap_reaches(W(m + MP_SBRK_BASE), top, want)) {
                    pairs++;
                    G.main_arena = a;
                    G.mp = m;
                }
            }
        }
    if (pairs != 1) {
        ok = fail("%d candidates for main_arena, %d (main_arena, mp_) pairs whose heap walks to top", arenas, pairs);
        goto out;
    }
    uintptr_t top = W(G.main_arena + MS_TOP), tsize = W(top + SIZE_SZ) & ~(uintptr_t)SIZE_BITS;
    if (W(G.main_arena + MS_SYSTEM_MEM) < tsize || W(G.main_arena + MS_SYSTEM_MEM) > W(G.main_arena + MS_MAX_SYSTEM_MEM)) {
        ok = fail("main_arena.system_mem inconsistent with its top chunk");
        goto out;
    }
    if (W(G.mp + MP_TCACHE_MAX_BYTES) < S) {
        ok = fail("tcache_max_bytes below the probe's request");
        goto out;
    }
    uintptr_t hm = heap_max();
    if (hm & (hm - 1)) {
        ok = fail("heap size limit %lu not a power of two", (unsigned long)hm);
        goto out;
    }

    /* Check the walk itself when nothing else can change the heap meanwhile: the 7 live
     * probe blocks reported with their usable size, a freed one not, the walk error-free. */
    G.ok = true;
    if (count_threads() == 1) {
        free(q[0]);
        struct probe_seen seen = { .n = 8 };
        for (int i = 0; i < 8; i++)
            seen.want[i] = (uintptr_t)q[i];
        uintptr_t mine = hw_glibcheap_my_tcache();
        int r = hw_glibcheap_walk(&mine, 1, probe_collect, &seen);
        q[0] = NULL;
        if (r < 0) {
            ok = fail("the check walk failed: %s", hw_glibcheap_strerror(r));
        } else if (seen.usable[0]) {
            ok = fail("the check walk reported a block in the tcache");
        } else {
            for (int i = 1; i < 8; i++)
                if (seen.usable[i] != malloc_usable_size(q[i]))
                    ok = fail("the check walk missed a live block, or its size");
        }
        G.ok = ok;
    }
out:
    for (int i = 0; i < 8; i++)
        free(q[i]);
    close(G.pipe[0]);
    close(G.pipe[1]);
    G.pipe[0] = G.pipe[1] = -1;
    return ok;
}

bool hw_glibcheap_probe(void)
{
    if (!G.done) {
        G.ok = probe();
        G.done = true;
    }
    return G.ok;
}

const char *hw_glibcheap_failure(void)
{
    return G.ok ? "" : G.done ? G.why : "not probed";
}

size_t hw_glibcheap_mmap_threshold(void)
{
    return G.ok ? (size_t)W(G.mp + 16) : 0;   /* malloc_par.mmap_threshold */
}

intptr_t hw_glibcheap_tcache_tpoff(void)
{
    return G.tpoff;
}

uintptr_t hw_glibcheap_my_tcache(void)
{
    return G.tpoff ? W(thread_pointer() + (uintptr_t)G.tpoff) : 0;
}

/* ---------------------------------------------------------------- walk ----------- */

bool hw_glibcheap_main_arena(uintptr_t *lo, uintptr_t *hi)
{
    if (!G.ok)
        return false;
    *lo = G.main_arena;
    *hi = G.main_arena + MS_SIZEOF;
    return true;
}

int hw_glibcheap_arenas(uintptr_t *out, size_t max)
{
    if (!G.ok)
        return HW_GLIBCHEAP_ENOPROBE;
    uintptr_t a = G.main_arena;
    unsigned n = 0;
    do {
        if (n < max)
            out[n] = a;
        if (++n > MAX_ARENAS)
            return HW_GLIBCHEAP_EARENA;
        a = W(a + MS_NEXT);
        if (!a || (a & 15))
            return HW_GLIBCHEAP_EARENA;
        if (a != G.main_arena) {
            uintptr_t h = a & ~(heap_max() - 1);
            if (h + HI_SIZEOF != a || W(h + HI_AR_PTR) != a)
                return HW_GLIBCHEAP_EARENA;
        }
    } while (a != G.main_arena);
    return (int)n;
}

bool hw_glibcheap_busy(void)
{
    if (!G.ok)
        return false;
    uintptr_t a = G.main_arena;
    unsigned n = 0;
    do {
        if (__atomic_load_n((const int *)a, __ATOMIC_ACQUIRE) != 0)
            return true;
        a = W(a + MS_NEXT);
    } while (a && !(a & 15) && a != G.main_arena && ++n < MAX_ARENAS);
    return false;
}

/* A growable array in its own mapping. */
struct vec {
    char *p;
    size_t n, cap, elem;
};

static bool vec_push(struct vec *v, const void *x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 4096 / v->elem;
        void *np = v->p ? mremap(v->p, v->cap * v->elem, cap * v->elem, MREMAP_MAYMOVE)
                        : mmap(NULL, cap * v->elem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (np == MAP_FAILED)
            return false;
        v->p = np;
        v->cap = cap;
    }
    memcpy(v->p + v->n++ * v->elem, x, v->elem);
    return true;
}

static void vec_free(struct vec *v)
{
    if (v->p) {
        last.scratch_bytes += v->cap * v->elem;
        munmap(v->p, v->cap * v->elem);
    }
}

static void sort_vec(struct vec *v) { hw_sort_by_first_word(v->p, v->n, v->elem); }

struct heap {
    uintptr_t start;   /* first chunk (sort key) */
    uintptr_t stop;    /* top chunk, or the closing fencepost (size 0) of an older heap */
    uintptr_t arena;
    bool main, top;
};

static const struct heap *heap_of(const struct vec *heaps, uintptr_t chunk)
{
    const struct heap *h = (const struct heap *)heaps->p;
    size_t lo = 0, hi = heaps->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h[mid].start <= chunk)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo || chunk >= h[lo - 1].stop)
        return NULL;
    return &h[lo - 1];
}

/* The heaps of arena a, into heaps. */
static int collect_heaps(uintptr_t a, struct vec *heaps)
{
    uintptr_t top = W(a + MS_TOP);
    if (!top || (top & 15))
        return HW_GLIBCHEAP_EARENA;
    if (a == G.main_arena) {
        if (W(a + MS_FLAGS) & NONCONTIGUOUS_BIT)
            return HW_GLIBCHEAP_ENONCONTIG;
        struct heap h = { ALIGN16(W(G.mp + MP_SBRK_BASE)), top, a, true, true };
        if (h.start > top)
            return HW_GLIBCHEAP_EHEAP;
        return vec_push(heaps, &h) ? 0 : HW_GLIBCHEAP_ENOMEM;
    }
    uintptr_t hmax = heap_max(), first = a - HI_SIZEOF;
    uintptr_t h = top & ~(hmax - 1);
    for (unsigned n = 0; h; n++) {
        uintptr_t size = W(h + HI_SIZE), prev = W(h + HI_PREV);
        if (n > (1u << 20) || W(h + HI_AR_PTR) != a || size > hmax || size < HI_SIZEOF + MINSIZE || (size & 15))
            return HW_GLIBCHEAP_EHEAP;
        struct heap r = { h == first ? ALIGN16(a + MS_SIZEOF) : h + HI_SIZEOF, 0, a, false, n == 0 };
        if (r.top) {
            uintptr_t tsize = W(top + SIZE_SZ) & ~(uintptr_t)SIZE_BITS;
            if (top < r.start || top + tsize != h + size)
                return HW_GLIBCHEAP_EHEAP;
            r.stop = top;
        } else {
            r.stop = h + size - HDR;
            if (r.stop < r.start || W(r.stop + SIZE_SZ) != PREV_INUSE)
                return HW_GLIBCHEAP_EHEAP;
        }
        if (!vec_push(heaps, &r))
            return HW_GLIBCHEAP_ENOMEM;
        if (!prev && h != first)
            return HW_GLIBCHEAP_EHEAP;
        if (prev & (hmax - 1))
            return HW_GLIBCHEAP_EHEAP;
        h = prev;
    }
    return 0;
}

static int collect_fastbins(uintptr_t a, const struct vec *heaps, struct vec *ex)
{
    for (unsigned i = 0; i < NFASTBINS; i++) {
        uintptr_t p = W(a + MS_FASTBINS + 8 * i);
        for (size_t n = 0; p; n++) {
            const struct heap *h = heap_of(heaps, p);
            if ((p & 15) || !h || h->arena != a || p + MINSIZE > h->stop || n > (1u << 28))
                return HW_GLIBCHEAP_EFASTBIN;
            uintptr_t size = W(p + SIZE_SZ) & ~(uintptr_t)SIZE_BITS;
            if (size < MINSIZE || FASTBIN_INDEX(size) != i || p + size > h->stop)
                return HW_GLIBCHEAP_EFASTBIN;
            if (!vec_push(ex, &p))
                return HW_GLIBCHEAP_ENOMEM;
            last.fastbin++;
            p = REVEAL(p + HDR, W(p + HDR));
        }
    }
    return 0;
}

static int collect_tcache_strict(uintptr_t t, const struct vec *heaps, struct vec *ex);

/* A tcache that does not check out (a thread stopped inside tcache_put or tcache_get, or a
 * pointer read from a thread of a parent process that forked us, long reused) is left out:
 * its struct and cached chunks then show as live, a few blocks, rather than the whole walk
 * failing. */
static int collect_tcache(uintptr_t t, const struct vec *heaps, struct vec *ex)
{
    size_t before = ex->n, structs = last.tcache_structs, cached = last.tcache;
    int r = collect_tcache_strict(t, heaps, ex);
    if (r == HW_GLIBCHEAP_ETCACHE) {
        ex->n = before;
        last.tcache_structs = structs;
        last.tcache = cached;
        last.tcache_skipped++;
        return 0;
    }
    return r;
}

static int collect_tcache_strict(uintptr_t t, const struct vec *heaps, struct vec *ex)
{
    uintptr_t c = t - HDR;
    const struct heap *h = heap_of(heaps, c);
    /* tcache_init's chunk is TC_CHUNK bytes, or up to MINSIZE - 16 more when malloc gave it a
     * whole free chunk whose remainder would have been too small to split off */
    uintptr_t size = h && c + SIZE_SZ + 8 <= h->stop ? W(c + SIZE_SZ) & ~(uintptr_t)SIZE_BITS : 0;
    if ((t & 15) || !h || size < TC_CHUNK || size >= TC_CHUNK + MINSIZE || c + size > h->stop)
        return HW_GLIBCHEAP_ETCACHE;
    if (!vec_push(ex, &c))
        return HW_GLIBCHEAP_ENOMEM;
    last.tcache_structs++;
    for (unsigned i = 0; i < TCACHE_MAX_BINS; i++) {
        unsigned count = ((const uint16_t *)t)[i];
        uintptr_t e = W(t + TC_ENTRIES + 8 * i);
        for (unsigned k = 0; k < count; k++) {
            uintptr_t ec = e - HDR;
            const struct heap *eh = heap_of(heaps, ec);
            if (!e || (e & 15) || !eh || ec + MINSIZE > eh->stop)
                return HW_GLIBCHEAP_ETCACHE;
            uintptr_t size = W(ec + SIZE_SZ) & ~(uintptr_t)SIZE_BITS;
            if (size < MINSIZE || CSIZE2TIDX(size) != i || ec + size > eh->stop || W(e + 8) != G.key)
                return HW_GLIBCHEAP_ETCACHE;
            if (!vec_push(ex, &ec))
                return HW_GLIBCHEAP_ENOMEM;
            last.tcache++;
            e = REVEAL(e, W(e));
        }
        if (e)
            return HW_GLIBCHEAP_ETCACHE;
    }
    return 0;
}

/* Walk one heap; *k is the cursor into the sorted exclusions. Returns calls made, or error;
 * *stop set when fn asked to stop. */
static int walk_heap(const struct heap *h, const uintptr_t *ex, size_t nex, size_t *k,
                     bool (*fn)(uintptr_t, size_t, void *), void *arg, bool *stop)
{
    int calls = 0;
    uintptr_t p = h->start;
    uintptr_t want_a = h->main ? 0 : NON_MAIN_ARENA;
    /* Every cache line of the heap, in order, is asked for as its chunk is met. The walk
     * itself reads one header every few lines, each found through the one before; the
     * hardware's stream prefetcher runs ahead of a dense ascending stream better than of that
     * sparse one (the 3M-chunk walk of w_bigheap's snapshot: 598 -> 536 ms, walk and mark;
     * prefetching 256 to 4096 bytes further ahead gained less). */
    uintptr_t fetched = p & ~(uintptr_t)63;
    while (p < h->stop) {
        uintptr_t hdr = W(p + SIZE_SZ), size = hdr & ~(uintptr_t)SIZE_BITS;
        uintptr_t next = p + size;
        for (; fetched < next && fetched < h->stop; fetched += 64)
            __builtin_prefetch((const void *)fetched);
        if (size < HDR || (size & 15) || next > h->stop)
            return h->main && size == HDR ? HW_GLIBCHEAP_ENONCONTIG : HW_GLIBCHEAP_ECHUNK;
        if (!h->top && next == h->stop) {
            /* the fencepost before the closing one of an older heap (sysmalloc) */
            if (size > MINSIZE)
                return HW_GLIBCHEAP_ECHUNK;
            p = next;
            break;
        }
        if (size < MINSIZE)
            return h->main && size == HDR ? HW_GLIBCHEAP_ENONCONTIG : HW_GLIBCHEAP_ECHUNK;
        bool inuse = W(next + SIZE_SZ) & PREV_INUSE;
        last.chunks++;
        if (*k < nex && ex[*k] < p)
            return HW_GLIBCHEAP_EEXCLUDED;   /* an excluded address is not a chunk */
        if (*k < nex && ex[*k] == p) {
            if (!inuse)
                return HW_GLIBCHEAP_EEXCLUDED;
            ++*k;
        } else if (inuse) {
            if ((hdr & (IS_MMAPPED | NON_MAIN_ARENA)) != want_a)
                return HW_GLIBCHEAP_ECHUNK;
            last.in_use++;
            if (W(p + HDR + 8) == G.key)
                last.stale_key++;
            calls++;
            if (!fn(p + HDR, size - SIZE_SZ, arg)) {
                *stop = true;
                return calls;
            }
        } else {
            last.free++;
        }
        p = next;
    }
    if (p != h->stop)
        return HW_GLIBCHEAP_ECHUNK;
    return calls;
}

int hw_glibcheap_walk(const uintptr_t *tcache_structs, size_t n,
                      bool (*fn)(uintptr_t block, size_t usable, void *arg), void *arg)
{
    memset(&last, 0, sizeof last);
    if (!G.ok)
        return HW_GLIBCHEAP_ENOPROBE;
    struct vec heaps = { .elem = sizeof(struct heap) }, ex = { .elem = sizeof(uintptr_t) };
    int r = 0, total = 0;
    uintptr_t a = G.main_arena;
    do {
        if (++last.arenas > MAX_ARENAS) {
            r = HW_GLIBCHEAP_EARENA;
            goto out;
        }
        if ((r = collect_heaps(a, &heaps)) < 0)
            goto out;
        a = W(a + MS_NEXT);
        if (!a || (a & 15)) {
            r = HW_GLIBCHEAP_EARENA;
            goto out;
        }
        if (a != G.main_arena) {
            uintptr_t h = a & ~(heap_max() - 1);
            if (h + HI_SIZEOF != a || W(h + HI_AR_PTR) != a) {
                r = HW_GLIBCHEAP_EARENA;
                goto out;
            }
        }
    } while (a != G.main_arena);
    last.heaps = heaps.n;
    sort_vec(&heaps);
    const struct heap *hs = (const struct heap *)heaps.p;
    for (size_t i = 1; i < heaps.n; i++)
        if (hs[i].start < hs[i - 1].stop) {
            r = HW_GLIBCHEAP_EHEAP;
            goto out;
        }
    a = G.main_arena;
    do {
        if ((r = collect_fastbins(a, &heaps, &ex)) < 0)
            goto out;
        a = W(a + MS_NEXT);
    } while (a != G.main_arena);
    for (size_t i = 0; i < n; i++)
        if (tcache_structs[i] && (r = collect_tcache(tcache_structs[i], &heaps, &ex)) < 0)
            goto out;
    sort_vec(&ex);
    const uintptr_t *xs = (const uintptr_t *)ex.p;
    for (size_t i = 1; i < ex.n; i++)
        if (xs[i] == xs[i - 1]) {
            r = HW_GLIBCHEAP_EEXCLUDED;
            goto out;
        }
    size_t k = 0;
    bool stop = false;
    for (size_t i = 0; i < heaps.n && !stop; i++) {
        if ((r = walk_heap(&hs[i], xs, ex.n, &k, fn, arg, &stop)) < 0)
            goto out;
        total += r;
    }
    r = !stop && k != ex.n ? HW_GLIBCHEAP_EEXCLUDED : total;
out:
    vec_free(&heaps);
    vec_free(&ex);
    return r;
}

int hw_glibcheap_release(void)
{
    if (!G.ok)
        return HW_GLIBCHEAP_ENOPROBE;
    struct vec heaps = { .elem = sizeof(struct heap) };
    int r = 0;
    uintptr_t a = G.main_arena;
    unsigned arenas = 0;
    do {
        if (++arenas > MAX_ARENAS || (r = collect_heaps(a, &heaps)) < 0)
            goto out;
        a = W(a + MS_NEXT);
        if (!a || (a & 15)) {
            r = HW_GLIBCHEAP_EARENA;
            goto out;
        }
    } while (a != G.main_arena);
    const struct heap *hs = (const struct heap *)heaps.p;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < heaps.n; i++) {
        uintptr_t lo = (hs[i].start + page - 1) & ~(page - 1), hi = hs[i].stop & ~(page - 1);
        if (hi > lo)
            madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    r = (int)heaps.n;
out:
    vec_free(&heaps);
    return r;
}

const char *hw_glibcheap_strerror(int err)
{
    switch (err) {
    case HW_GLIBCHEAP_ENOPROBE: return "not probed, or the probe failed";
    case HW_GLIBCHEAP_EARENA: return "arena list inconsistent";
    case HW_GLIBCHEAP_EHEAP: return "heap_info chain or heap bounds inconsistent";
    case HW_GLIBCHEAP_ECHUNK: return "chunk header inconsistent";
    case HW_GLIBCHEAP_EFASTBIN: return "fastbin list inconsistent";
    case HW_GLIBCHEAP_ETCACHE: return "tcache inconsistent (a thread inside tcache_put/get?)";
    case HW_GLIBCHEAP_ENOMEM: return "no scratch mapping";
    case HW_GLIBCHEAP_ENONCONTIG: return "main heap not contiguous";
    case HW_GLIBCHEAP_EEXCLUDED: return "a fastbin or tcache entry is not a chunk of the heaps";
    default: return err >= 0 ? "no error" : "unknown error";
    }
}

void hw_glibcheap_last_stats(struct hw_glibcheap_stats *out)
{
    *out = last;
}
