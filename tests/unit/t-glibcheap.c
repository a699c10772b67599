/* This file implements the unit test of preload/glibcheap.c, the walk of glibc's arenas that
 * finds the live blocks without any record per malloc or free. Ground truth is exact: this
 * program interposes malloc, free, calloc, realloc, memalign, posix_memalign, aligned_alloc,
 * valloc and pvalloc itself (forwarding to glibc's __libc_* entry points, as the shim
 * forwards to the real allocator), keeping every live block in a hash set in its own mapping,
 * so that libc's and ld.so's internal allocations (stdio buffers, thread DTVs) are known too.
 * Each check is set equality of (pointer, usable size) between the walk and that set (minus
 * mmapped blocks, which the walk cannot see), in address order:
 *   1. one thread: random malloc/calloc/realloc/free of 1..2000 bytes, memalign,
 *      posix_memalign and aligned_alloc at alignments 32..4096, with the tcache bins full and
 *      with them drained, several seeds, walked at several points;
 *   2. 8 threads (non-main arenas), blocks freed by other threads than their own, parked at
 *      a barrier, several rounds;
 *   3. threads that exited (their tcache structs freed), and the stale tcache key: a chunk
 *      that an exiting thread flushed from its tcache into a fastbin keeps the key in user
 *      word 1, and malloc hands it out again from the fastbin with the key still there;
 *   4. after malloc_trim(0), with M_MXFAST 0 and M_MXFAST 160, each in a fork child;
 *   5. the walk in a child made by a raw clone(SIGCHLD) (no fork handlers: glibc's arena
 *      locks are copied as they are) and by fork(), while the threads are parked;
 *   6. hw_glibcheap_busy: false when quiescent, true while an arena mutex is held (taken by
 *      hand for each arena; and seen held by a thread calling malloc_trim in a loop).
 * Then it times the walk of ~3 million blocks against the shadow map's scan of as many
 * (TAP comments).
 * Not under valgrind: valgrind replaces malloc, so there are no glibc arenas to walk; the
 * probe fails and the test skips (1..0 # SKIP). Prints TAP. */
// LINK: preload/glibcheap.c preload/shadow.c preload/sys.c
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"
#include "glibcheap.h"
#include "shadow.h"

/* ------------------------------------------------------------ the interposer ---------- */

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

#define HBITS 23
#define HCAP (1ul << HBITS)
static uintptr_t *live;          /* open addressing, linear probing, 0 = empty */
static size_t live_n;
static atomic_flag live_lock = ATOMIC_FLAG_INIT;

static void lock(void)
{
    while (atomic_flag_test_and_set_explicit(&live_lock, memory_order_acquire))
        sched_yield();
}
static void unlock(void) { atomic_flag_clear_explicit(&live_lock, memory_order_release); }

static size_t slot_of(uintptr_t p) { return (size_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> (64 - HBITS)); }

static void live_add(void *ptr)
{
    if (!ptr)
        return;
    lock();
    if (!live) {
        live = mmap(NULL, HCAP * sizeof *live, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (live == MAP_FAILED)
            abort();
    }
    uintptr_t p = (uintptr_t)ptr;
    size_t i = slot_of(p);
    while (live[i] && live[i] != p)
        i = (i + 1) & (HCAP - 1);
    if (!live[i])
        live_n++;
    live[i] = p;
    unlock();
}

static void live_del(void *ptr)
{
    if (!ptr)
        return;
    lock();
    uintptr_t p = (uintptr_t)ptr;
    size_t i = live ? slot_of(p) : 0;
    while (live && live[i] && live[i] != p)
        i = (i + 1) & (HCAP - 1);
    if (live && live[i]) {
        /* backward-shift deletion: no tombstones */
        live_n--;
        size_t j = i;
        for (;;) {
            live[i] = 0;
            for (;;) {
                j = (j + 1) & (HCAP - 1);
                if (!live[j]) {
                    unlock();
                    return;
                }
                size_t k = slot_of(live[j]);
                if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                    continue;
                break;
            }
            live[i] = live[j];
            i = j;
        }
    }
    unlock();
}

static bool live_has(uintptr_t p)
{
    size_t i = slot_of(p);
    while (live[i] && live[i] != p)
        i = (i + 1) & (HCAP - 1);
    return live[i] == p;
}

void *malloc(size_t n) { void *p = __libc_malloc(n); live_add(p); return p; }
void free(void *p) { live_del(p); __libc_free(p); }
void *calloc(size_t a, size_t b) { void *p = __libc_calloc(a, b); live_add(p); return p; }
void *realloc(void *old, size_t n)
{
    /* the old block stays live if realloc fails */
    void *p = __libc_realloc(old, n);
    if (p || !n) {
        live_del(old);
        live_add(p);
    }
    return p;
}
void *memalign(size_t al, size_t n) { void *p = __libc_memalign(al, n); live_add(p); return p; }
void *aligned_alloc(size_t al, size_t n) { return memalign(al, n); }
void *valloc(size_t n) { void *p = __libc_valloc(n); live_add(p); return p; }
void *pvalloc(size_t n) { void *p = __libc_pvalloc(n); live_add(p); return p; }
int posix_memalign(void **out, size_t al, size_t n)
{
    if (al < sizeof(void *) || (al & (al - 1)))
        return EINVAL;
    void *p = memalign(al, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

/* ------------------------------------------------------------ threads' tcaches ------- */

#define MAXT 64
static uintptr_t *_Atomic tslot[MAXT];   /* &tcache of each live thread */

static uintptr_t tp(void)
{
    uintptr_t t;
    __asm__("mov %%fs:0, %0" : "=r"(t));
    return t;
}

static int register_thread(void)
{
    uintptr_t *s = (uintptr_t *)(tp() + (uintptr_t)hw_glibcheap_tcache_tpoff());
    for (int i = 0; i < MAXT; i++) {
        uintptr_t *expect = NULL;
        if (atomic_compare_exchange_strong(&tslot[i], &expect, s))
            return i;
    }
    abort();
}

static size_t tcaches(uintptr_t *out)
{
    size_t n = 0;
    for (int i = 0; i < MAXT; i++) {
        uintptr_t *s = atomic_load(&tslot[i]);
        if (s)
            out[n++] = *s;
    }
    return n;
}

/* ------------------------------------------------------------ the check ------------- */

struct seen {
    uintptr_t *block;
    size_t *usable;
    size_t n, cap;
};
static struct seen walked;

static void *map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        abort();
    return p;
}

static bool collect(uintptr_t block, size_t usable, void *arg)
{
    struct seen *s = arg;
    if (s->n < s->cap) {
        s->block[s->n] = block;
        s->usable[s->n] = usable;
    }
    s->n++;
    return true;
}

static bool is_mmapped(uintptr_t p) { return ((uintptr_t *)p)[-1] & 2; }

static bool found(uintptr_t p)
{
    size_t lo = 0, hi = walked.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (walked.block[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < walked.n && walked.block[lo] == p;
}

static struct hw_glibcheap_stats stats, stats_max;

/* Walk and compare with the live set; msg (if not NULL) says how it went. Allocates nothing
 * between the walk and the end of the comparison. Usable in a fork child. */
static bool verify(char *msg, size_t msz)
{
    uintptr_t tcs[MAXT];
    size_t ntc = tcaches(tcs);
    walked.n = 0;
    int r = hw_glibcheap_walk(tcs, ntc, collect, &walked);
    hw_glibcheap_last_stats(&stats);
    size_t *mx = (size_t *)&stats_max, *cur = (size_t *)&stats;
    for (size_t i = 0; i < sizeof stats / sizeof(size_t); i++)
        if (cur[i] > mx[i])
            mx[i] = cur[i];
    if (r < 0) {
        if (msg)
            snprintf(msg, msz, "walk failed: %s", hw_glibcheap_strerror(r));
        return false;
    }
    size_t extra = 0, badsize = 0, order = 0, missing = 0, expect = 0;
    uintptr_t first_extra = 0, first_missing = 0;
    for (size_t i = 0; i < walked.n; i++) {
        uintptr_t p = walked.block[i];
        if (i && p <= walked.block[i - 1])
            order++;
        if (!live_has(p)) {
            if (!extra++)
                first_extra = p;
        } else if (walked.usable[i] != malloc_usable_size((void *)p)) {
            badsize++;
        }
    }
    for (size_t i = 0; i < HCAP; i++) {
        uintptr_t p = live[i];
        if (!p || is_mmapped(p))
            continue;
        expect++;
        if (!found(p) && !missing++)
            first_missing = p;
    }
    bool ok = (size_t)r == walked.n && walked.n <= walked.cap && !extra && !badsize && !order && !missing &&
              expect == walked.n;
    if (msg)
        snprintf(msg, msz,
                 "%zu blocks walked, %zu live; %zu extra (first %#lx), %zu missing (first %#lx), "
                 "%zu wrong sizes, %zu out of order; arenas %zu heaps %zu free %zu fastbin %zu "
                 "tcache %zu+%zu structs (%zu skipped), stale keys %zu",
                 walked.n, expect, extra, (unsigned long)first_extra, missing, (unsigned long)first_missing,
                 badsize, order, stats.arenas, stats.heaps, stats.free, stats.fastbin, stats.tcache,
                 stats.tcache_structs, stats.tcache_skipped, stats.stale_key);
    return ok;
}

static void check_walk(const char *what)
{
    char msg[512];
    bool ok = verify(msg, sizeof msg);
    CHECK(ok, "%s: walk == live set", what);
    if (!ok || getenv("T_VERBOSE"))
        diag("%s: %s", what, msg);
}

/* ------------------------------------------------------------ workloads ------------- */

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

#define SLOTS 2048
struct table {
    void *p[SLOTS];
};

/* One random operation on a random slot of t. */
static void rand_op(struct table *t, uint64_t *x)
{
    size_t i = rnd(x) % SLOTS;
    size_t n = 1 + rnd(x) % 2000;
    size_t al = (size_t)32 << rnd(x) % 8;   /* 32..4096 */
    if (t->p[i]) {
        if (rnd(x) % 4 == 0) {
            t->p[i] = realloc(t->p[i], n) ?: t->p[i];
        } else {
            free(t->p[i]);
            t->p[i] = NULL;
        }
        return;
    }
    switch (rnd(x) % 10) {
    case 0: t->p[i] = calloc(1 + n / 16, 16); break;
    case 1: t->p[i] = memalign(al, n); break;
    case 2: if (posix_memalign(&t->p[i], al, n)) t->p[i] = NULL; break;
    case 3: t->p[i] = aligned_alloc(al, (n + al - 1) / al * al); break;
    case 4: t->p[i] = malloc(1 + rnd(x) % 128); break;   /* fastbin sizes */
    default: t->p[i] = malloc(n); break;
    }
    if (t->p[i] && rnd(x) % 2)
        memset(t->p[i], (int)(rnd(x) & 0xff), n < 8 ? 1 : 8);
}

static void free_all(struct table *t)
{
    for (size_t i = 0; i < SLOTS; i++) {
        free(t->p[i]);
        t->p[i] = NULL;
    }
}

/* Fill every tcache bin and the fastbins: 20 blocks of each size, all freed, the largest
 * first (a request of 1024 bytes and more consolidates the fastbins). */
static void fill_tcache(void)
{
    void *b[20];
    for (long sz = 1032; sz >= 8; sz -= 16) {
        for (int i = 0; i < 20; i++)
            b[i] = malloc(sz);
        for (int i = 0; i < 20; i++)
            free(b[i]);
    }
}

/* Drain every tcache bin: 8 blocks of each size, kept in t's first slots. */
static void drain_tcache(struct table *t)
{
    size_t k = 0;
    for (size_t sz = 8; sz <= 1032; sz += 16)
        for (int i = 0; i < 8; i++) {
            free(t->p[k]);
            t->p[k++] = malloc(sz);
        }
}

static struct table main_table;

static void scenario_single(void)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        uint64_t x = seed * 0x9e3779b97f4a7c15ull;
        char what[64];
        for (int round = 0; round < 4; round++) {
            for (int k = 0; k < 20000; k++)
                rand_op(&main_table, &x);
            snprintf(what, sizeof what, "single thread, seed %lu, after %d ops", (unsigned long)seed, 20000 * (round + 1));
            check_walk(what);
        }
        fill_tcache();
        snprintf(what, sizeof what, "single thread, seed %lu, tcache bins full", (unsigned long)seed);
        check_walk(what);
        drain_tcache(&main_table);
        snprintf(what, sizeof what, "single thread, seed %lu, tcache bins drained", (unsigned long)seed);
        check_walk(what);
        if (seed % 2)
            free_all(&main_table);
    }
    CHECK(stats_max.tcache > 0 && stats_max.fastbin > 0 && stats_max.free > 0,
          "single thread: the walks met tcache (%zu), fastbin (%zu) and free (%zu) chunks",
          stats_max.tcache, stats_max.fastbin, stats_max.free);
}

/* ------------------------------------------------------------ threads --------------- */

#define NT 8
static pthread_barrier_t ready, resume;
static atomic_int rounds_left;

/* Blocks handed from one thread to another, which frees them. */
static void *mailbox[4096];
static size_t mail_n;
static atomic_flag mail_lock = ATOMIC_FLAG_INIT;

static void post(void *p)
{
    while (atomic_flag_test_and_set(&mail_lock))
        sched_yield();
    if (mail_n < 4096)
        mailbox[mail_n++] = p, p = NULL;
    atomic_flag_clear(&mail_lock);
    free(p);
}

static void *take(void)
{
    void *p = NULL;
    while (atomic_flag_test_and_set(&mail_lock))
        sched_yield();
    if (mail_n)
        p = mailbox[--mail_n];
    atomic_flag_clear(&mail_lock);
    return p;
}

struct worker {
    pthread_t th;
    int id, slot;
    uint64_t seed;
    struct table t;
};
static struct worker workers[NT];

static void *worker(void *arg)
{
    struct worker *w = arg;
    w->slot = register_thread();
    uint64_t x = w->seed;
    for (;;) {
        for (int k = 0; k < 20000; k++) {
            rand_op(&w->t, &x);
            if (rnd(&x) % 8 == 0) {
                size_t i = rnd(&x) % SLOTS;
                if (w->t.p[i]) {
                    post(w->t.p[i]);   /* another thread frees it */
                    w->t.p[i] = NULL;
                }
            }
            if (rnd(&x) % 8 == 0)
                free(take());
        }
        pthread_barrier_wait(&ready);   /* parked while main walks */
        pthread_barrier_wait(&resume);
        if (atomic_load(&rounds_left) <= 0)
            break;
    }
    return NULL;
}

static void start_workers(uint64_t seed)
{
    pthread_barrier_init(&ready, NULL, NT + 1);
    pthread_barrier_init(&resume, NULL, NT + 1);
    for (int i = 0; i < NT; i++) {
        workers[i].id = i;
        workers[i].seed = seed * 1000 + (uint64_t)i + 1;
        pthread_create(&workers[i].th, NULL, worker, &workers[i]);
    }
}

static void stop_workers(bool keep_blocks)
{
    for (int i = 0; i < NT; i++) {
        pthread_join(workers[i].th, NULL);
        atomic_store(&tslot[workers[i].slot], NULL);
        if (!keep_blocks)
            free_all(&workers[i].t);
    }
    pthread_barrier_destroy(&ready);
    pthread_barrier_destroy(&resume);
}

/* A walk in a child made by clone(SIGCHLD) straight through the system call, as the shim
 * makes its snapshot children: no fork handlers run, the copy is frozen as it was. */
static int walk_in_raw_child(void)
{
    fflush(stdout);
    long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        syscall(SYS_exit_group, verify(NULL, 0) ? 0 : 1);
    int st = 0;
    if (pid < 0 || waitpid((pid_t)pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int walk_in_fork_child(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(verify(NULL, 0) ? 0 : 1);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void scenario_threads(void)
{
    const int rounds = 3;
    atomic_store(&rounds_left, rounds);
    start_workers(7);
    size_t nonmain = 0;
    for (int r = 0; r < rounds; r++) {
        pthread_barrier_wait(&ready);   /* all workers parked */
        char what[96];
        snprintf(what, sizeof what, "8 threads parked, round %d", r + 1);
        check_walk(what);
        if (stats.arenas > nonmain + 1)
            nonmain = stats.arenas - 1;
        if (r == rounds - 1) {
            int rc = walk_in_raw_child();
            CHECK(rc == 0, "8 threads parked: walk in a raw clone(SIGCHLD) child == live set (status %d)", rc);
            rc = walk_in_fork_child();
            CHECK(rc == 0, "8 threads parked: walk in a fork() child == live set (status %d)", rc);
            CHECK(!hw_glibcheap_busy(), "8 threads parked: no arena busy");
        }
        atomic_fetch_sub(&rounds_left, 1);
        pthread_barrier_wait(&resume);
    }
    CHECK(nonmain >= 1, "8 threads: %zu non-main arenas walked", nonmain);
    /* The workers' blocks stay live after they exit; their tcache structs are freed. */
    stop_workers(true);
    check_walk("8 threads exited, their blocks still live");
    for (int i = 0; i < NT; i++)
        free_all(&workers[i].t);
    void *p;
    while ((p = take()))
        free(p);
    check_walk("8 threads exited, their blocks freed by main");
}

/* The stale key: thread A fills its tcache bin of 24-byte blocks and the fastbin behind it,
 * then exits (tcache_thread_shutdown frees the cached chunks into the fastbin without
 * clearing the key); thread B, on A's arena, mallocs 24 bytes: malloc takes the chunk from
 * the fastbin and returns it with the key still in user word 1. */
static void *stale_victim;
static uintptr_t stale_arena_a, stale_arena_b;
static pthread_barrier_t stale_park;

static uintptr_t arena_of(void *p)
{
    uintptr_t hdr = ((uintptr_t *)p)[-1];
    return hdr & 4 ? *(uintptr_t *)((uintptr_t)p & ~((64ul << 20) - 1)) : 0;
}

static void *stale_a(void *arg)
{
    (void)arg;
    void *b[14];
    for (int i = 0; i < 14; i++)
        b[i] = malloc(24);
    stale_arena_a = arena_of(b[0]);
    for (int i = 0; i < 14; i++)
        free(b[i]);
    return NULL;
}

static void *stale_b(void *arg)
{
    (void)arg;
    int slot = register_thread();
    stale_victim = malloc(24);
    stale_arena_b = arena_of(stale_victim);
    pthread_barrier_wait(&stale_park);
    pthread_barrier_wait(&stale_park);
    free(stale_victim);
    atomic_store(&tslot[slot], NULL);
    return NULL;
}

/* User word 1 of a block, freed or not (out of line: gcc would flag a read after free). */
__attribute__((noipa)) static uintptr_t word1(uintptr_t block)
{
    return ((const uintptr_t *)block)[1];
}

/* The tcache key, read the probe's way: user word 1 of a block just freed into the tcache. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
__attribute__((noipa)) static uintptr_t key_now(void)
{
    void *k = malloc(1000);
    free(k);
    uintptr_t key = word1((uintptr_t)k);
    free(malloc(1000));
    return key;
}
#pragma GCC diagnostic pop

static void scenario_stale_key(void)
{
    pthread_t a, b;
    pthread_create(&a, NULL, stale_a, NULL);
    pthread_join(a, NULL);
    pthread_barrier_init(&stale_park, NULL, 2);
    pthread_create(&b, NULL, stale_b, NULL);
    pthread_barrier_wait(&stale_park);
    bool keyed = false;
    uintptr_t key_seen = ((uintptr_t *)stale_victim)[1];
    /* compare with a tcache key read the probe's way */
    keyed = key_seen && key_seen == key_now();
    diag("stale key: A's arena %#lx, B's arena %#lx, B's block carries the key: %s",
         (unsigned long)stale_arena_a, (unsigned long)stale_arena_b, keyed ? "yes" : "no");
    CHECK(keyed, "stale key: a block malloc returned from a fastbin has the tcache key in word 1");
    check_walk("stale key: thread parked holding the keyed block");
    walked.n = 0;
    verify(NULL, 0);
    CHECK(found((uintptr_t)stale_victim) && stats.stale_key >= 1,
          "stale key: the walk reports the keyed block (stale keys %zu)", stats.stale_key);
    pthread_barrier_wait(&stale_park);
    pthread_join(b, NULL);
    pthread_barrier_destroy(&stale_park);
    check_walk("stale key: thread exited");
}

/* Threads that exit with blocks live and full tcaches. */
static void *exiter(void *arg)
{
    struct worker *w = arg;
    uint64_t x = w->seed;
    for (int k = 0; k < 20000; k++)
        rand_op(&w->t, &x);
    fill_tcache();
    return NULL;
}

static void scenario_exited(void)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        for (int i = 0; i < NT; i++) {
            workers[i].seed = seed * 77 + (uint64_t)i;
            pthread_create(&workers[i].th, NULL, exiter, &workers[i]);
        }
        for (int i = 0; i < NT; i++)
            pthread_join(workers[i].th, NULL);
        char what[64];
        snprintf(what, sizeof what, "8 threads exited, seed %lu", (unsigned long)seed);
        check_walk(what);
        for (int i = 0; i < NT; i++)
            free_all(&workers[i].t);
    }
    scenario_stale_key();
}

/* ------------------------------------------------------------ fork children --------- */

static int in_child(int how, uint64_t seed)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (how == 1)
            mallopt(M_MXFAST, 0);
        else if (how == 2)
            mallopt(M_MXFAST, 160);
        uint64_t x = seed * 0x2545f4914f6cdd1dull;
        bool ok = true;
        for (int round = 0; round < 3 && ok; round++) {
            for (int k = 0; k < 20000; k++)
                rand_op(&main_table, &x);
            fill_tcache();
            if (how == 0) {
                for (size_t i = 0; i < SLOTS; i += 2) {
                    free(main_table.p[i]);
                    main_table.p[i] = NULL;
                }
                malloc_trim(0);
            }
            char msg[512];
            ok = verify(msg, sizeof msg);
            if (!ok)
                diag("child %d seed %lu round %d: %s", how, (unsigned long)seed, round, msg);
        }
        /* M_MXFAST 0 consolidates only the main arena: the others keep their fastbin
         * chunks, which malloc no longer looks at. */
        if (ok)
            diag("child %d seed %lu: %zu blocks, %zu in fastbins, %zu in tcaches, %zu free",
                 how, (unsigned long)seed, stats.in_use, stats.fastbin, stats.tcache, stats.free);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void scenario_children(void)
{
    static const char *const name[] = { "after malloc_trim(0)", "with M_MXFAST 0", "with M_MXFAST 160" };
    for (int how = 0; how < 3; how++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            int rc = in_child(how, seed);
            CHECK(rc == 0, "fork child %s, seed %lu: walk == live set (status %d)", name[how], (unsigned long)seed, rc);
        }
}

/* ------------------------------------------------------------ busy ------------------ */

static atomic_bool trimming;

static void *trimmer(void *arg)
{
    (void)arg;
    while (atomic_load(&trimming))
        malloc_trim(0);
    return NULL;
}

static void scenario_busy(void)
{
    CHECK(!hw_glibcheap_busy(), "busy: false when quiescent");
    uintptr_t ar[256];
    int n = hw_glibcheap_arenas(ar, 256);
    CHECK(n >= 2, "busy: %d arenas listed", n);
    int right = 0;
    for (int i = 0; i < n && i < 256; i++) {
        int *m = (int *)ar[i], zero = 0;
        if (!__atomic_compare_exchange_n(m, &zero, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue;
        right += hw_glibcheap_busy();
        __atomic_store_n(m, 0, __ATOMIC_RELEASE);
        right += !hw_glibcheap_busy();
    }
    CHECK(right == 2 * n, "busy: true while each arena's mutex is held by hand, false after (%d of %d)", right, 2 * n);
    /* A real holder: a thread in malloc_trim, which locks each arena in turn. */
    pthread_t t;
    atomic_store(&trimming, true);
    pthread_create(&t, NULL, trimmer, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long polls = 0, busy = 0;
    do {
        busy += hw_glibcheap_busy();
        polls++;
        clock_gettime(CLOCK_MONOTONIC, &t1);
    } while (busy < 100 && t1.tv_sec - t0.tv_sec < 3);
    atomic_store(&trimming, false);
    pthread_join(t, NULL);
    CHECK(busy > 0, "busy: seen true %ld times in %ld polls while a thread loops on malloc_trim", busy, polls);
    CHECK(!hw_glibcheap_busy(), "busy: false again once it stopped");
}

/* ------------------------------------------------------------ timing ---------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool count_byte(uintptr_t addr, uint8_t byte, void *arg)
{
    (void)addr, (void)byte;
    ++*(size_t *)arg;
    return true;
}

static bool count_block(uintptr_t block, size_t usable, void *arg)
{
    (void)block, (void)usable;
    ++*(size_t *)arg;
    return true;
}

static void timing(void)
{
    const size_t N = 3200000;
    void **b = map(N * sizeof *b);
    uint64_t x = 99;
    for (size_t i = 0; i < N; i++)
        b[i] = malloc(1 + rnd(&x) % 120);
    for (size_t i = 0; i < N; i += 16) {   /* some holes, in bins and tcache */
        free(b[i]);
        b[i] = NULL;
    }
    check_walk("3 million blocks");
    uintptr_t tcs[MAXT];
    size_t ntc = tcaches(tcs), n = 0;
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        n = 0;
        double t0 = now();
        int r = hw_glibcheap_walk(tcs, ntc, count_block, &n);
        double dt = now() - t0;
        if (r < 0)
            diag("timing walk failed: %s", hw_glibcheap_strerror(r));
        if (dt < best)
            best = dt;
    }
    hw_glibcheap_last_stats(&stats);
    diag("glibc arena walk: %zu blocks (%zu chunks) in %.1f ms (%.1f ns a block), %zu bytes of scratch",
         n, stats.chunks, best * 1e3, best * 1e9 / (double)n, stats.scratch_bytes);
    /* The shadow map, as the shim keeps it today: one byte per block start. */
    size_t m = 0;
    for (size_t i = 0; i < HCAP; i++)
        if (live[i] && hw_shadow_covers(live[i]) && (m++, true))
            *hw_shadow_make(live[i]) = HW_SHADOW_LIVE;
    double sbest = 1e9;
    size_t s = 0;
    for (int rep = 0; rep < 3; rep++) {
        s = 0;
        double t0 = now();
        hw_shadow_scan(count_byte, &s);
        double dt = now() - t0;
        if (dt < sbest)
            sbest = dt;
    }
    diag("shadow map scan: %zu blocks in %.1f ms (%.1f ns a block), %lu bytes of shadow",
         s, sbest * 1e3, sbest * 1e9 / (double)s, (unsigned long)hw_shadow_footprint());
    CHECK(s == m, "timing: the shadow scan found the %zu blocks it was given", m);
    for (size_t i = 0; i < N; i++)
        free(b[i]);
    munmap(b, N * sizeof *b);
}

int main(void)
{
    if (!hw_glibcheap_probe()) {
        printf("1..0 # SKIP probe failed: %s\n", hw_glibcheap_failure());
        return 0;
    }
    walked.cap = 8u << 20;
    walked.block = map(walked.cap * sizeof *walked.block);
    walked.usable = map(walked.cap * sizeof *walked.usable);
    register_thread();
    diag("probe: tcache pointer at tp%+ld", (long)hw_glibcheap_tcache_tpoff());
    check_walk("at start");
    scenario_single();
    scenario_threads();
    scenario_exited();
    scenario_children();
    scenario_busy();
    if (!getenv("T_NO_TIMING"))
        timing();
    return done();
}
