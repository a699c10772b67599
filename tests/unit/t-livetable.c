/* This file implements the unit test of preload/livetable.c: insert/remove semantics, totals,
 * replacing an entry at the same address, removal of absent keys, long clusters that wrap
 * around the end of a shard (backward-shift deletion), growth, visit() and its early stop,
 * copy_shard, lock_all/unlock_all, a randomized check against a reference model, and threads
 * inserting and removing disjoint address sets concurrently. The table has no lookup call: a
 * lookup is remove() (which walks the probe chain) followed by insert() of what it returned.
 * Prints TAP. */
// LINK: preload/livetable.c preload/forkgate.c preload/threads.c preload/sys.c
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness.h"
#include "livetable.h"

/* A copy of livetable.c's hash, shard choice and geometry, to craft colliding addresses and
 * to check where entries are. */
#define SHARD_BITS 7
#define INITIAL_SLOTS 128u
static uint64_t hash_addr(uintptr_t a)
{
    uint64_t h = (uint64_t)a >> 4;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}
static unsigned shard_of(uintptr_t a)   /* by the 4 KiB page */
{
    return (unsigned)(((uint64_t)a >> 12) * 0x9e3779b97f4a7c15ull >> (64 - SHARD_BITS));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)  /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static struct hw_live_entry entry(uintptr_t addr, uint64_t size, uint32_t stack, uint32_t seq,
                                  uint32_t thread)
{
    struct hw_live_entry e;
    memset(&e, 0, sizeof e);
    e.addr = addr;
    e.size = size;
    e.stack = stack;
    e.seq = seq;
    e.thread = thread;
    return e;
}

static bool same_entry(const struct hw_live_entry *a, const struct hw_live_entry *b)
{
    return a->addr == b->addr && a->size == b->size && a->stack == b->stack && a->seq == b->seq &&
           a->thread == b->thread;
}

static bool totals_are(uint64_t objects, uint64_t bytes)
{
    uint64_t o, b;
    hw_livetable_totals(&o, &b);
    if (o != objects || b != bytes)
        diag("totals: %llu objects %llu bytes, want %llu and %llu", (unsigned long long)o,
             (unsigned long long)b, (unsigned long long)objects, (unsigned long long)bytes);
    return o == objects && b == bytes;
}

/* Lookup through the probe chain: remove, then put back what was removed. */
static bool lookup(uintptr_t addr, struct hw_live_entry *out)
{
    if (!hw_livetable_remove(addr, out))
        return false;
    return hw_livetable_insert(out);
}

/* ---- visit helpers ---- */

struct find { uintptr_t addr; int found; struct hw_live_entry e; };
static bool find_cb(const struct hw_live_entry *e, void *arg)
{
    struct find *f = arg;
    if (e->addr == f->addr) {
        f->found++;
        f->e = *e;
    }
    return true;
}

struct tally { uint64_t n, bytes; unsigned stop_after; };
static bool tally_cb(const struct hw_live_entry *e, void *arg)
{
    struct tally *t = arg;
    t->n++;
    t->bytes += e->size;
    return !t->stop_after || t->n < t->stop_after;
}

static void test_basic(void)
{
    CHECK(hw_livetable_init(), "init");
    CHECK(totals_are(0, 0), "empty table: totals 0");
    CHECK(hw_livetable_footprint() == (1u << SHARD_BITS) * INITIAL_SLOTS * sizeof(struct hw_live_entry),
          "initial footprint %llu bytes", (unsigned long long)hw_livetable_footprint());

    struct hw_live_entry out = entry(1, 2, 3, 4, 5), keep = out;
    CHECK(!hw_livetable_remove(0x1000, &out), "remove from an empty table fails");
    CHECK(same_entry(&out, &keep), "failed remove leaves *out alone");

    struct hw_live_entry a = entry(0x7f0000001000, 100, 7, 42, 3);
    CHECK(hw_livetable_insert(&a), "insert");
    CHECK(totals_are(1, 100), "totals 1 object, 100 bytes");
    struct find f = { .addr = a.addr };
    hw_livetable_visit(find_cb, &f);
    CHECK(f.found == 1 && same_entry(&f.e, &a), "visit sees the entry with every field");

    CHECK(!hw_livetable_remove(0x7f0000001010, &out), "remove of a neighbouring address fails");
    CHECK(!hw_livetable_remove(0x7f0000001008, &out), "remove of an interior address fails");
    CHECK(totals_are(1, 100), "failed removes leave totals alone");
    CHECK(lookup(a.addr, &out) && same_entry(&out, &a), "lookup finds it");
    CHECK(totals_are(1, 100), "lookup leaves totals alone");

    CHECK(hw_livetable_remove(a.addr, &out) && same_entry(&out, &a), "remove returns the entry");
    CHECK(totals_are(0, 0), "totals back to 0");
    CHECK(!hw_livetable_remove(a.addr, &out), "second remove fails");

    /* Same address inserted again (a free the shim missed): the entry is replaced. */
    struct hw_live_entry b1 = entry(0x5000, 64, 1, 10, 1), b2 = entry(0x5000, 4000, 2, 11, 2);
    CHECK(hw_livetable_insert(&b1) && hw_livetable_insert(&b2), "insert the same address twice");
    CHECK(totals_are(1, 4000), "a reinsert replaces: 1 object, the new size");
    f = (struct find){ .addr = 0x5000 };
    hw_livetable_visit(find_cb, &f);
    CHECK(f.found == 1 && same_entry(&f.e, &b2), "visit sees one entry, the newer one");
    CHECK(hw_livetable_remove(0x5000, &out) && same_entry(&out, &b2), "remove returns the newer entry");
    CHECK(!hw_livetable_remove(0x5000, &out) && totals_are(0, 0), "and then it is gone");

    /* Field widths: 40-bit size, 22-bit thread, full 32-bit stack and seq. */
    struct hw_live_entry w = entry(0xfffffffffff0, (1ull << 40) - 1, UINT32_MAX, UINT32_MAX,
                                   (1u << 22) - 1);
    CHECK(hw_livetable_insert(&w) && totals_are(1, (1ull << 40) - 1), "largest field values");
    CHECK(hw_livetable_remove(w.addr, &out) && same_entry(&out, &w), "round trip of the widest entry");
    CHECK(totals_are(0, 0), "empty again");

    struct hw_live_entry z = entry(0x10, 0, 0, 0, 0);
    CHECK(hw_livetable_insert(&z) && totals_are(1, 0), "zero-size block counts as an object");
    CHECK(hw_livetable_remove(0x10, &out) && out.size == 0 && totals_are(0, 0), "and is removed");
}

/* Addresses that all land in shard 0 with home slots in the last and first few slots, so they
 * form one long cluster that wraps around the end of the shard. Deleting from its middle and
 * from both sides of the wrap exercises every branch of the backward shift. */
#define NCLUSTER 400
static uintptr_t cluster[NCLUSTER];

static void make_cluster(void)
{
    unsigned n = 0;
    for (uintptr_t a = 0x10000000; n < NCLUSTER; a += 16) {
        uint64_t h = hash_addr(a);
        uint32_t home = (uint32_t)h & (INITIAL_SLOTS - 1);
        if (shard_of(a) == 0 && (home >= INITIAL_SLOTS - 24 || home < 8))
            cluster[n++] = a;
    }
}

static void test_cluster(void)
{
    make_cluster();
    bool ok = true;
    for (unsigned i = 0; i < NCLUSTER; i++) {
        struct hw_live_entry e = entry(cluster[i], i + 1, i, i, 1);
        ok = ok && hw_livetable_insert(&e);
    }
    uint64_t bytes = (uint64_t)NCLUSTER * (NCLUSTER + 1) / 2;
    CHECK(ok && totals_are(NCLUSTER, bytes), "%d colliding addresses inserted in one shard", NCLUSTER);

    unsigned missing = 0;
    struct hw_live_entry out;
    for (unsigned i = 0; i < NCLUSTER; i++)
        if (!lookup(cluster[i], &out) || out.size != i + 1)
            missing++;
    CHECK(!missing, "all of the cluster found (%u missing)", missing);

    /* Remove in a shuffled order; after each removal every remaining address must be found. */
    unsigned order[NCLUSTER];
    for (unsigned i = 0; i < NCLUSTER; i++)
        order[i] = i;
    for (unsigned i = NCLUSTER - 1; i > 0; i--) {
        unsigned j = (unsigned)(rnd() % (i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    static bool gone[NCLUSTER];
    unsigned bad_remove = 0, lost = 0;
    for (unsigned k = 0; k < NCLUSTER; k++) {
        unsigned i = order[k];
        if (!hw_livetable_remove(cluster[i], &out) || out.size != i + 1)
            bad_remove++;
        gone[i] = true;
        bytes -= i + 1;
        if (k % 8 == 0 || k > NCLUSTER - 16)
            for (unsigned m = 0; m < NCLUSTER; m++)
                if (!gone[m] && (!lookup(cluster[m], &out) || out.size != m + 1))
                    lost++;
        if (hw_livetable_remove(cluster[i], &out))
            bad_remove++;
    }
    CHECK(!bad_remove, "every removal from the cluster returned its entry once (%u bad)", bad_remove);
    CHECK(!lost, "no entry lost by backward shifts across the wrap (%u lost)", lost);
    CHECK(totals_are(0, 0), "cluster empty: totals 0");
    struct tally t = { 0 };
    hw_livetable_visit(tally_cb, &t);
    CHECK(t.n == 0, "visit sees nothing (%llu)", (unsigned long long)t.n);
}

/* Randomized model check: a small address space (so inserts hit present keys and removes hit
 * absent ones), half of it the colliding cluster, against a direct-indexed reference array. */
#define MODEL_KEYS 2048
static void model_check(unsigned ops, const char *phase)
{
    static uintptr_t keys[MODEL_KEYS];
    static struct hw_live_entry ref[MODEL_KEYS];  /* addr 0 = absent */
    memset(ref, 0, sizeof ref);
    for (unsigned i = 0; i < MODEL_KEYS; i++)
        keys[i] = i < NCLUSTER ? cluster[i] : 0x200000000000 + (uintptr_t)i * 48;
    uint64_t objects = 0, bytes = 0;
    unsigned mismatches = 0, total_mismatches = 0, seq = 0;
    for (unsigned op = 0; op < ops; op++) {
        unsigned k = (unsigned)(rnd() % MODEL_KEYS);
        unsigned kind = (unsigned)(rnd() % 10);
        struct hw_live_entry out;
        if (kind < 4) {  /* insert or replace */
            struct hw_live_entry e = entry(keys[k], rnd() % 100000, (uint32_t)rnd(), ++seq,
                                           (uint32_t)(rnd() & 0xffffff));
            if (!hw_livetable_insert(&e))
                mismatches++;
            if (ref[k].addr) {
                bytes -= ref[k].size;
            } else {
                objects++;
            }
            bytes += e.size;
            ref[k] = e;
        } else if (kind < 8) {  /* remove */
            bool got = hw_livetable_remove(keys[k], &out);
            if (got != (ref[k].addr != 0) || (got && !same_entry(&out, &ref[k])))
                mismatches++;
            if (ref[k].addr) {
                objects--;
                bytes -= ref[k].size;
                ref[k].addr = 0;
            }
        } else {  /* lookup */
            bool got = lookup(keys[k], &out);
            if (got != (ref[k].addr != 0) || (got && !same_entry(&out, &ref[k])))
                mismatches++;
        }
        if (op % 1024 == 0 && !totals_are(objects, bytes))
            mismatches++;
        if (mismatches && !total_mismatches)
            diag("%s: first mismatch at op %u (key %u)", phase, op, k);
        total_mismatches += mismatches;
        mismatches = 0;
    }
    CHECK(!total_mismatches, "%s: %u random ops agree with the model (%u mismatches)", phase, ops,
          total_mismatches);
    CHECK(totals_are(objects, bytes), "%s: totals agree with the model", phase);

    struct tally t = { 0 };
    hw_livetable_visit(tally_cb, &t);
    CHECK(t.n == objects && t.bytes == bytes, "%s: visit sees the model's %llu entries", phase,
          (unsigned long long)objects);
    unsigned wrong = 0;
    for (unsigned k = 0; k < MODEL_KEYS; k++) {
        struct hw_live_entry out;
        bool got = hw_livetable_remove(keys[k], &out);
        if (got != (ref[k].addr != 0) || (got && !same_entry(&out, &ref[k])))
            wrong++;
    }
    CHECK(!wrong && totals_are(0, 0), "%s: draining matches the model (%u wrong)", phase, wrong);
}

/* Growth: many entries force every shard to double several times. */
#define NGROW 400000
struct vis { unsigned char *seen; uintptr_t base; unsigned bad; };
static bool visit_seen(const struct hw_live_entry *e, void *arg)
{
    struct vis *v = arg;
    uintptr_t off = e->addr - v->base;
    if (e->addr < v->base || off % 32 || off / 32 >= NGROW || v->seen[off / 32]++)
        v->bad++;
    return true;
}

static void test_growth(void)
{
    uint64_t before = hw_livetable_footprint();
    const uintptr_t base = 0x500000000000;
    bool ok = true;
    uint64_t bytes = 0;
    for (unsigned i = 0; i < NGROW; i++) {
        struct hw_live_entry e = entry(base + (uintptr_t)i * 32, i % 1000 + 1, i, i, i & 0xff);
        ok = ok && hw_livetable_insert(&e);
        bytes += i % 1000 + 1;
    }
    CHECK(ok, "%d inserts succeed", NGROW);
    CHECK(totals_are(NGROW, bytes), "totals after growth");
    uint64_t after = hw_livetable_footprint();
    CHECK(after > before && after >= (uint64_t)NGROW * sizeof(struct hw_live_entry) * 4 / 3,
          "footprint grew from %llu to %llu bytes", (unsigned long long)before,
          (unsigned long long)after);
    CHECK(after <= (uint64_t)NGROW * sizeof(struct hw_live_entry) * 8,
          "footprint stays below 8x the entries (%.1f bytes an entry)", (double)after / NGROW);

    /* visit sees each address exactly once */
    static unsigned char seen[NGROW];
    struct vis v = { seen, base, 0 };
    hw_livetable_visit(visit_seen, &v);
    unsigned twice = v.bad, never = 0;
    for (unsigned i = 0; i < NGROW; i++)
        if (seen[i] != 1)
            never += seen[i] == 0;
    CHECK(!twice && !never, "visit sees each of %d entries once (%u unexpected, %u unseen)", NGROW,
          twice, never);

    /* Shard by shard into one vector (how snapshots copy the table): every entry once, each
     * in the shard its hash names, appended after what the vector already held. */
    struct hw_vec vec = { .elem = sizeof(struct hw_live_entry) };
    *(struct hw_live_entry *)hw_vec_push(&vec) = entry(1, 1, 1, 1, 1);  /* a sentinel first */
    memset(seen, 0, sizeof seen);
    unsigned misplaced = 0, copied_ok = 0;
    for (unsigned k = 0; k < hw_livetable_shards(); k++) {
        size_t from = vec.nr;
        copied_ok += hw_livetable_copy_shard(k, &vec);
        for (size_t i = from; i < vec.nr; i++)
            misplaced += shard_of(((struct hw_live_entry *)vec.data)[i].addr) != k;
    }
    v.bad = 0;
    for (size_t i = 1; i < vec.nr; i++)
        visit_seen((struct hw_live_entry *)vec.data + i, &v);
    never = 0;
    for (unsigned i = 0; i < NGROW; i++)
        never += seen[i] == 0;
    CHECK(hw_livetable_shards() == 1u << SHARD_BITS && copied_ok == hw_livetable_shards(),
          "copy_shard succeeds for all %u shards", hw_livetable_shards());
    CHECK(vec.nr == NGROW + 1 && ((struct hw_live_entry *)vec.data)->addr == 1 && !v.bad && !never,
          "copy_shard appends each entry once (%zu copied, %u unexpected, %u missing)", vec.nr - 1,
          v.bad, never);
    CHECK(!misplaced, "each shard holds only its own addresses (%u misplaced)", misplaced);
    hw_vec_release(&vec);

    struct tally t = { .stop_after = 5 };
    hw_livetable_visit(tally_cb, &t);
    CHECK(t.n == 5, "visit stops when the callback returns false (%llu calls)",
          (unsigned long long)t.n);

    /* Remove in a strided order, verifying each entry. */
    unsigned bad = 0;
    const unsigned stride = 7919;  /* prime, coprime with NGROW */
    for (unsigned k = 0, i = 0; k < NGROW; k++, i = (i + stride) % NGROW) {
        struct hw_live_entry out;
        if (!hw_livetable_remove(base + (uintptr_t)i * 32, &out) || out.size != i % 1000 + 1 ||
            out.seq != i || out.stack != i)
            bad++;
    }
    CHECK(!bad, "all %d removed with their own entries (%u bad)", NGROW, bad);
    CHECK(totals_are(0, 0), "totals 0 after draining a grown table");
    CHECK(hw_livetable_footprint() == after, "the table does not shrink");
}

/* ---- locks ---- */

static _Atomic int inserted;
static void *insert_one(void *arg)
{
    struct hw_live_entry e = entry((uintptr_t)arg, 8, 0, 0, 2);
    hw_livetable_insert(&e);
    atomic_store(&inserted, 1);
    return NULL;
}

static void test_locks(void)
{
    pthread_t th;
    hw_livetable_lock_all();
    pthread_create(&th, NULL, insert_one, (void *)0x9990);
    struct timespec ts = { 0, 100 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    CHECK(!atomic_load(&inserted), "lock_all holds an inserting thread");
    hw_livetable_unlock_all();
    pthread_join(th, NULL);
    CHECK(atomic_load(&inserted) && totals_are(1, 8), "unlock_all lets it through");

    hw_livetable_lock_all();
    hw_livetable_unlock_all();  /* what a fork child does */
    struct hw_live_entry out;
    CHECK(hw_livetable_remove(0x9990, &out) && out.size == 8, "reset_locks releases every shard");
    struct tally t = { 0 };
    hw_livetable_visit(tally_cb, &t);
    CHECK(t.n == 0 && totals_are(0, 0), "visit runs after unlock (nothing left)");
}

/* ---- concurrency ---- */

#define NTHREADS 8
#define PER_THREAD 40000
static pthread_barrier_t barrier;
static _Atomic unsigned thread_errors;

static uintptr_t thread_addr(unsigned t, unsigned i)
{
    /* Interleaved so that threads share shards and cache lines of the table. */
    return 0x300000000000 + ((uintptr_t)i * NTHREADS + t) * 16;
}

static void *worker(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg, errors = 0;
    struct hw_live_entry out;
    /* Phase 1: churn. Insert in batches, remove every other one, then the rest. */
    for (unsigned round = 0; round < 4; round++) {
        for (unsigned i = 0; i < PER_THREAD; i++) {
            struct hw_live_entry e = entry(thread_addr(t, i), t * 1000 + i % 100 + 1, round, i, t);
            errors += !hw_livetable_insert(&e);
            if (i % 2 && (!hw_livetable_remove(thread_addr(t, i - 1), &out) || out.thread != t ||
                          out.seq != i - 1))
                errors++;
        }
        for (unsigned i = 1; i < PER_THREAD; i += 2)
            if (!hw_livetable_remove(thread_addr(t, i), &out) || out.thread != t || out.seq != i ||
                out.stack != round)
                errors++;
        for (unsigned i = 0; i < PER_THREAD; i += 997)
            errors += hw_livetable_remove(thread_addr(t, i), &out);  /* absent */
    }
    /* Phase 2: everyone inserts everything; the main thread checks totals in between. */
    for (unsigned i = 0; i < PER_THREAD; i++) {
        struct hw_live_entry e = entry(thread_addr(t, i), t + 1, 9, i, t);
        errors += !hw_livetable_insert(&e);
    }
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier);
    for (unsigned i = PER_THREAD; i-- > 0;)
        if (!hw_livetable_remove(thread_addr(t, i), &out) || out.thread != t || out.size != t + 1)
            errors++;
    atomic_fetch_add(&thread_errors, errors);
    return NULL;
}

static void test_threads(void)
{
    pthread_t th[NTHREADS];
    pthread_barrier_init(&barrier, NULL, NTHREADS + 1);
    for (unsigned t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t);
    pthread_barrier_wait(&barrier);
    uint64_t bytes = 0;
    for (unsigned t = 0; t < NTHREADS; t++)
        bytes += (uint64_t)(t + 1) * PER_THREAD;
    CHECK(totals_are((uint64_t)NTHREADS * PER_THREAD, bytes), "%d threads: all inserted",
          NTHREADS);
    struct tally tl = { 0 };
    hw_livetable_visit(tally_cb, &tl);
    CHECK(tl.n == (uint64_t)NTHREADS * PER_THREAD && tl.bytes == bytes, "visit agrees");
    pthread_barrier_wait(&barrier);
    for (unsigned t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    CHECK(!atomic_load(&thread_errors), "%d threads churning disjoint addresses: %u errors",
          NTHREADS, atomic_load(&thread_errors));
    CHECK(totals_are(0, 0), "totals exactly 0 after the threads removed everything");
    pthread_barrier_destroy(&barrier);
}

int main(void)
{
    test_basic();
    test_cluster();
    model_check(200000, "small table");
    test_growth();
    model_check(200000, "grown table");
    test_locks();
    test_threads();
    return done();
}
