/* This file implements the unit test of preload/depot.c, the prefix tree of frames: interning
 * (same PCs give the same id, any difference in a PC or in the depth gives another), node ids
 * dense from 1 with every parent created before its children, a stack read back through
 * hw_depot_node equal to what was put, shared outer frames stored once, counters zeroed and
 * created only for ids handed out, many random stacks (growing the edge index and colliding
 * in the hash cache), and threads putting overlapping stack sets, with cache hits racing
 * evictions. Prints TAP. */
// LINK: preload/depot.c preload/forkgate.c preload/threads.c preload/sys.c
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "depot.h"
#include "harness.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void)  /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static bool counters_zero(const struct hw_stack_counters *c)
{
    return c && !atomic_load(&c->alloc_samples) && !atomic_load(&c->free_samples) &&
           !atomic_load(&c->alloc_weight) && !atomic_load(&c->free_weight) &&
           !atomic_load(&c->alloc_bytes) && !atomic_load(&c->free_bytes);
}

/* Read stack id back, innermost first, by following parents; its depth, or -1 if the chain
 * is malformed (a parent not older than its child, or too deep). */
static int stack_of(uint32_t id, uintptr_t *out, int max)
{
    int n = 0;
    while (id) {
        uintptr_t pc;
        uint32_t parent;
        if (id > hw_depot_count() || n >= max)
            return -1;
        hw_depot_node(id, &pc, &parent);
        if (parent >= id)
            return -1;
        out[n++] = pc;
        id = parent;
    }
    return n;
}

/* Stack id is exactly pcs[0..depth-1]. */
static bool holds(uint32_t id, const uintptr_t *pcs, uint32_t depth)
{
    uintptr_t got[HW_MAX_DEPTH + 1];
    int n = stack_of(id, got, HW_MAX_DEPTH + 1);
    return id && n == (int)depth && !memcmp(got, pcs, depth * sizeof *pcs);
}

static uint32_t parent_of(uint32_t id)
{
    uintptr_t pc;
    uint32_t parent;
    hw_depot_node(id, &pc, &parent);
    return parent;
}

/* Every node's parent is older, and no two nodes share (parent, pc): the tree has no
 * duplicate edges. */
static int cmp_edge(const void *a, const void *b)
{
    const uintptr_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

static bool tree_is_sound(void)
{
    uint32_t n = hw_depot_count();
    uintptr_t (*e)[2] = malloc((n + 1) * sizeof *e);
    bool ok = e != NULL;
    for (uint32_t id = 1; ok && id <= n; id++) {
        uint32_t parent;
        hw_depot_node(id, &e[id - 1][1], &parent);
        e[id - 1][0] = parent;
        ok = parent < id;
    }
    if (ok && n) {
        qsort(e, n, sizeof *e, cmp_edge);
        for (uint32_t i = 1; ok && i < n; i++)
            ok = cmp_edge(e[i - 1], e[i]) != 0;
    }
    free(e);
    return ok;
}

static void test_basic(void)
{
    CHECK(hw_depot_init(), "init");
    CHECK(hw_depot_count() == 0 && hw_depot_counters_count() == 0, "empty depot: no nodes, no counters");
    CHECK(!hw_depot_counters(0) && !hw_depot_counters(1) && !hw_depot_counters_at(0),
          "no counters for ids 0 and 1, none at index 0");

    /* innermost frame first */
    uintptr_t a[] = { 0x401000, 0x402000, 0x403000 };
    uintptr_t a_copy[] = { 0x401000, 0x402000, 0x403000 };
    uintptr_t b[] = { 0x401001, 0x402000, 0x403000 };  /* innermost differs */
    uintptr_t c[] = { 0x401000, 0x402000, 0x503000 };  /* outermost differs */
    uintptr_t d[] = { 0x402000, 0x401000, 0x403000 };  /* two frames swapped */

    CHECK(hw_depot_put(a, 0) == 0 && hw_depot_count() == 0, "the empty stack is not interned (id 0)");
    uint32_t ia = hw_depot_put(a, 3);
    CHECK(ia == 3 && hw_depot_count() == 3, "first 3-frame stack: nodes 1..3, id 3 (got %u)", ia);
    CHECK(parent_of(3) == 2 && parent_of(2) == 1 && parent_of(1) == 0,
          "its nodes chain 3 -> 2 -> 1 -> root");
    CHECK(holds(ia, a, 3), "read back through hw_depot_node");
    CHECK(hw_depot_put(a, 3) == ia && hw_depot_put(a_copy, 3) == ia, "same PCs, same id");
    CHECK(hw_depot_count() == 3 && hw_depot_counters_count() == 1, "no new nodes or counters");

    uint32_t ib = hw_depot_put(b, 3);
    CHECK(ib == 4 && parent_of(ib) == parent_of(ia) && hw_depot_count() == 4,
          "other innermost frame: one new node under the shared caller (id %u)", ib);
    uint32_t ic = hw_depot_put(c, 3);
    CHECK(ic == 7 && hw_depot_count() == 7, "other outermost frame: a new branch of 3 nodes (id %u)", ic);
    uint32_t id = hw_depot_put(d, 3);
    CHECK(id == 9 && parent_of(parent_of(id)) == parent_of(parent_of(ia)) && hw_depot_count() == 9,
          "swapped frames: 2 new nodes below the shared outermost (id %u)", id);

    /* a + 1 is a's two outer frames: an interior node of a, now a stack of its own. */
    uint32_t outer = hw_depot_put(a + 1, 2);
    CHECK(outer == parent_of(ia) && hw_depot_count() == 9,
          "a stack that is a caller chain of another is that interior node (id %u)", outer);
    uint32_t inner2 = hw_depot_put(a, 2);
    CHECK(inner2 == 11 && holds(inner2, a, 2), "a's two inner frames are another stack (id %u)", inner2);
    CHECK(holds(ia, a, 3) && holds(ib, b, 3) && holds(ic, c, 3) && holds(id, d, 3) &&
          holds(outer, a + 1, 2), "every stack reads back as put");
    CHECK(hw_depot_put(b, 3) == ib && hw_depot_put(c, 3) == ic && hw_depot_put(d, 3) == id &&
          hw_depot_put(a + 1, 2) == outer && hw_depot_put(a, 2) == inner2 && hw_depot_put(a, 3) == ia,
          "every stack keeps its id when put again");
    CHECK(tree_is_sound(), "parents are older than children; no duplicate edges");

    /* Counters: one set per id handed out, zeroed, in creation order. */
    uint32_t handed[] = { ia, ib, ic, id, outer, inner2 };
    bool ok = hw_depot_counters_count() == 6;
    for (uint32_t i = 0; i < 6; i++)
        ok = ok && hw_depot_counters(handed[i]) == hw_depot_counters_at(i) &&
             hw_depot_counters_at(i)->stack == handed[i] && counters_zero(hw_depot_counters_at(i));
    CHECK(ok, "6 counter sets, zeroed, naming their stack, in creation order");
    CHECK(!hw_depot_counters(1) && !hw_depot_counters(parent_of(ic)) && !hw_depot_counters_at(6) &&
          !hw_depot_counters(hw_depot_count() + 1) && !hw_depot_counters(UINT32_MAX),
          "no counters for interior nodes never put, past the end, or for unknown ids");

    struct hw_stack_counters *cb = hw_depot_counters(ib);
    atomic_fetch_add(&cb->alloc_samples, 3);
    atomic_fetch_add(&cb->alloc_bytes, 300);
    CHECK(atomic_load(&hw_depot_counters(ib)->alloc_samples) == 3 &&
          counters_zero(hw_depot_counters(ia)) && counters_zero(hw_depot_counters(ic)),
          "counters are per stack");
    CHECK(hw_depot_put(b, 3) == ib && atomic_load(&hw_depot_counters(ib)->alloc_bytes) == 300,
          "put again does not reset them");

    uintptr_t deep[HW_MAX_DEPTH];
    for (unsigned i = 0; i < HW_MAX_DEPTH; i++)
        deep[i] = 0x7f0000000000 + i * 0x10;
    uint32_t before = hw_depot_count();
    uint32_t idp = hw_depot_put(deep, HW_MAX_DEPTH);
    CHECK(idp == before + HW_MAX_DEPTH && holds(idp, deep, HW_MAX_DEPTH) &&
          hw_depot_put(deep, HW_MAX_DEPTH) == idp, "a %d-frame stack round-trips", HW_MAX_DEPTH);
    deep[0]++;
    uint32_t idq = hw_depot_put(deep, HW_MAX_DEPTH);
    CHECK(idq == idp + 1 && parent_of(idq) == parent_of(idp), "differing in the innermost frame: 1 node");
    deep[HW_MAX_DEPTH - 1]++;
    uint32_t idr = hw_depot_put(deep, HW_MAX_DEPTH);
    CHECK(idr == idq + HW_MAX_DEPTH && holds(idr, deep, HW_MAX_DEPTH),
          "differing in the outermost frame: %d new nodes", HW_MAX_DEPTH);
    CHECK(hw_depot_footprint() > 0, "footprint %llu bytes", (unsigned long long)hw_depot_footprint());
}

/* Two stacks built to share the 64-bit hash of depot.c (each step of the hash is a bijection
 * of its state, so the second PC can cancel a difference in the first). */
static uint64_t step(uint64_t h, uintptr_t pc)
{
    h ^= pc;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static void test_collision(void)
{
    uint64_t h0 = 0x9e3779b97f4a7c15ull ^ 2;
    uintptr_t x[2] = { 0x401111, 0x402222 }, y[2];
    y[0] = 0x409999;
    y[1] = (uintptr_t)(step(h0, x[0]) ^ x[1] ^ step(h0, y[0]));
    uint32_t ix = hw_depot_put(x, 2), iy = hw_depot_put(y, 2);
    CHECK(holds(ix, x, 2), "first of two colliding stacks reads back");
    CHECK_TODO(ix != iy && holds(iy, y, 2),
               "depot.c invariant 3: the hash cache merges stacks with equal 64-bit hashes",
               "second of two stacks with one 64-bit hash gets its own id (%u, %u)", ix, iy);
}

/* Many random stacks over a small set of functions: shared callers, duplicate stacks, edge
 * index growth and cache slots shared by different stacks. Checked against the stacks
 * themselves: each id reads back as its stack, equal stacks share an id, distinct ones don't. */
#define NMANY 100000
#define MAXD 12
static uintptr_t many_pcs[NMANY][MAXD];
static uint32_t many_depth[NMANY], many_id[NMANY];
static unsigned many_order[NMANY];

static int cmp_stack(const void *a, const void *b)
{
    unsigned i = *(const unsigned *)a, j = *(const unsigned *)b;
    if (many_depth[i] != many_depth[j])
        return many_depth[i] < many_depth[j] ? -1 : 1;
    return memcmp(many_pcs[i], many_pcs[j], many_depth[i] * sizeof(uintptr_t));
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void test_many(void)
{
    for (unsigned i = 0; i < NMANY; i++) {
        many_depth[i] = 1 + (uint32_t)(rnd() % MAXD);
        for (unsigned k = 0; k < many_depth[i]; k++)  /* 3 callers at the top, 40 functions below */
            many_pcs[i][k] = k + 1 == many_depth[i] ? 0x400000 + rnd() % 3 : 0x500000 + (rnd() % 40) * 8;
        many_id[i] = hw_depot_put(many_pcs[i], many_depth[i]);
        many_order[i] = i;
    }
    unsigned wrong = 0;
    for (unsigned i = 0; i < NMANY; i++)
        if (hw_depot_put(many_pcs[i], many_depth[i]) != many_id[i] ||
            !holds(many_id[i], many_pcs[i], many_depth[i]))
            wrong++;
    CHECK(!wrong, "%d random stacks keep their ids and read back (%u wrong)", NMANY, wrong);

    /* Sorted by content: equal stacks are neighbours. One id per group, none shared. */
    qsort(many_order, NMANY, sizeof *many_order, cmp_stack);
    static uint32_t group_id[NMANY];
    unsigned split = 0, groups = 0;
    for (unsigned k = 0; k < NMANY; k++) {
        unsigned i = many_order[k];
        if (k && !cmp_stack(&many_order[k - 1], &i)) {
            split += many_id[i] != group_id[groups - 1];
            continue;
        }
        group_id[groups++] = many_id[i];
    }
    qsort(group_id, groups, sizeof *group_id, cmp_u32);
    unsigned shared = 0;
    for (unsigned g = 1; g < groups; g++)
        shared += group_id[g] == group_id[g - 1];
    CHECK(!split, "equal stacks share one id (%u split)", split);
    CHECK(!shared, "%u distinct stacks have %u distinct ids (%u shared)", groups, groups - shared, shared);
    diag("%u distinct stacks in %u nodes", groups, hw_depot_count());
    CHECK(tree_is_sound(), "tree still sound after %u nodes", hw_depot_count());
}

/* One caller with 200 callees: the first 8 children are found through the parent's list, the
 * rest after the move to the edge index (depot.c, FANOUT_LIST); the move keeps every id. */
static void test_fanout(void)
{
    enum { KIDS = 200 };
    uintptr_t st[KIDS][2];
    uint32_t ids[KIDS];
    unsigned wrong = 0;
    for (unsigned i = 0; i < KIDS; i++) {
        st[i][0] = 0x700000 + 16 * i;   /* innermost: the callee */
        st[i][1] = 0x6ff000;            /* the one caller */
        ids[i] = hw_depot_put(st[i], 2);
        for (unsigned j = 0; j <= i; j++)   /* every earlier sibling, before and after the move */
            wrong += hw_depot_put(st[j], 2) != ids[j] || !holds(ids[j], st[j], 2);
    }
    uint32_t caller = parent_of(ids[0]);
    unsigned other_parent = 0, lost = 0;
    for (unsigned i = 0; i < KIDS; i++) {
        other_parent += parent_of(ids[i]) != caller;
        /* a stack one frame deeper is new to the hash cache: its path is found frame by frame */
        uintptr_t deeper[3] = { 0x800000, st[i][0], st[i][1] };
        uint32_t d = hw_depot_put(deeper, 3);
        lost += !d || parent_of(d) != ids[i];
    }
    CHECK(!wrong && !other_parent, "200 callees of one caller keep their ids through the move to the edge index"
          " (%u wrong, %u under another parent)", wrong, other_parent);
    CHECK(!lost, "a deeper stack finds each callee's node, listed or indexed (%u lost)", lost);
    CHECK(tree_is_sound(), "tree sound after the fan-out");
}

/* Threads putting overlapping sets: the shared stacks in different orders, plus private ones. */
#define NTHREADS 4
#define NSHARED 3000  /* 2^3 * 3 * 5^3 */
#define NPRIVATE 1000
static uintptr_t shared_pcs[NSHARED][8];
static uint32_t shared_id[NTHREADS][NSHARED];
static uint32_t private_id[NTHREADS][NPRIVATE];
static pthread_barrier_t barrier;

static void private_stack(unsigned t, unsigned i, uintptr_t pcs[3])
{
    pcs[0] = 0x20000000 + t;   /* innermost: the thread's own function */
    pcs[1] = 0x30000000 + i;
    pcs[2] = 0x40000000;       /* one shared outermost caller */
}

static void *worker(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    pthread_barrier_wait(&barrier);
    for (unsigned k = 0; k < NSHARED; k++) {
        /* thread 0 forwards, 1 backwards, others strided (multipliers coprime with NSHARED) */
        static const unsigned mult[] = { 1, 1, 7, 11, 13, 17, 19, 23 };
        unsigned i = t == 0 ? k : t == 1 ? NSHARED - 1 - k : (k * mult[t % 8] + t) % NSHARED;
        shared_id[t][i] = hw_depot_put(shared_pcs[i], 1 + i % 8);
        if (k % 3 == 0) {
            uintptr_t pcs[3];
            private_stack(t, k / 3, pcs);
            private_id[t][k / 3] = hw_depot_put(pcs, 3);
        }
    }
    return NULL;
}

static void test_threads(void)
{
    uint32_t nodes0 = hw_depot_count(), counters0 = hw_depot_counters_count(), nodes = 0;
    for (unsigned i = 0; i < NSHARED; i++) {
        for (unsigned k = 0; k < 8; k++)
            shared_pcs[i][k] = 0x50000000 + i * 64 + k;  /* no frame shared between stacks */
        nodes += 1 + i % 8;
    }
    nodes += 1 + NPRIVATE + NTHREADS * NPRIVATE;
    pthread_t th[NTHREADS];
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    for (unsigned t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t);
    for (unsigned t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&barrier);

    uint32_t stacks = NSHARED + NTHREADS * NPRIVATE;
    CHECK(hw_depot_count() - nodes0 == nodes && hw_depot_counters_count() - counters0 == stacks,
          "%d threads: %u new nodes, %u new counter sets (got %u, %u)", NTHREADS, nodes, stacks,
          hw_depot_count() - nodes0, hw_depot_counters_count() - counters0);
    unsigned disagree = 0, bad = 0;
    for (unsigned i = 0; i < NSHARED; i++) {
        for (unsigned t = 1; t < NTHREADS; t++)
            disagree += shared_id[t][i] != shared_id[0][i];
        uint32_t id = shared_id[0][i];
        if (id <= nodes0 || !holds(id, shared_pcs[i], 1 + i % 8) || !counters_zero(hw_depot_counters(id)) ||
            hw_depot_counters(id)->stack != id)
            bad++;
    }
    for (unsigned t = 0; t < NTHREADS; t++)
        for (unsigned i = 0; i < NPRIVATE; i++) {
            uintptr_t pcs[3];
            private_stack(t, i, pcs);
            uint32_t id = private_id[t][i];
            if (id <= nodes0 || !holds(id, pcs, 3) || hw_depot_put(pcs, 3) != id ||
                !counters_zero(hw_depot_counters(id)))
                bad++;
        }
    CHECK(!disagree, "every thread got the same id for each shared stack (%u disagreements)", disagree);
    CHECK(!bad, "each id reads back as its stack, with zeroed counters (%u bad)", bad);
    CHECK(tree_is_sound(), "tree sound after concurrent inserts");
}

/* Cache hits racing evictions: readers re-put known stacks (mostly lock-free hits) while a
 * writer adds new stacks whose cache slots evict theirs. Every id read must be right. */
#define NKNOWN 4000
#define NREADERS 3
#define NFRESH 150000
static uintptr_t known_pcs[NKNOWN][4];
static uint32_t known_id[NKNOWN];
static _Atomic int writer_done;
static _Atomic unsigned race_errors, reader_rounds;

static void *cache_reader(void *arg)
{
    unsigned r = (unsigned)(uintptr_t)arg, errors = 0, rounds = 0;
    pthread_barrier_wait(&barrier);
    do {
        for (unsigned k = 0; k < NKNOWN; k++) {
            unsigned i = (k * 7 + r * 1000) % NKNOWN;
            errors += hw_depot_put(known_pcs[i], 4) != known_id[i];
        }
        rounds++;
    } while (!atomic_load(&writer_done) || rounds < 2);
    atomic_fetch_add(&race_errors, errors);
    atomic_fetch_add(&reader_rounds, rounds);
    return NULL;
}

static void *cache_writer(void *arg)
{
    (void)arg;
    unsigned errors = 0;
    pthread_barrier_wait(&barrier);
    for (unsigned i = 0; i < NFRESH; i++) {
        uintptr_t pcs[2] = { 0x70000000 + i, 0x6fffffff };
        uint32_t id = hw_depot_put(pcs, 2);
        errors += !holds(id, pcs, 2);
    }
    atomic_store(&writer_done, 1);
    atomic_fetch_add(&race_errors, errors);
    return NULL;
}

static void test_cache_race(void)
{
    for (unsigned i = 0; i < NKNOWN; i++) {
        for (unsigned k = 0; k < 4; k++)
            known_pcs[i][k] = 0x60000000 + i * 16 + k;
        known_id[i] = hw_depot_put(known_pcs[i], 4);
    }
    pthread_t th[NREADERS + 1];
    pthread_barrier_init(&barrier, NULL, NREADERS + 1);
    for (unsigned r = 0; r < NREADERS; r++)
        pthread_create(&th[r], NULL, cache_reader, (void *)(uintptr_t)r);
    pthread_create(&th[NREADERS], NULL, cache_writer, NULL);
    for (unsigned t = 0; t <= NREADERS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&barrier);
    CHECK(!atomic_load(&race_errors), "%d readers (%u rounds) racing a writer of %d stacks: %u wrong ids",
          NREADERS, atomic_load(&reader_rounds), NFRESH, atomic_load(&race_errors));
}

int main(void)
{
    test_basic();
    test_collision();
    test_many();
    test_fanout();
    test_threads();
    test_cache_race();
    return done();
}
