/* owner_growth.c: four kinds of memory growth whose sizes are known exactly, for `growth
 * --by owner` and `diff --by owner` (t2100-owner-growth.sh). Run in full mode
 * (HEAPWATCH_SAMPLE_RATE=1) so that every block keeps its requested size. `owner_growth [N]`
 * runs N phases (default 8) and takes a snapshot "phase i" after each; at phase i:
 *
 * Owner / site   what it does                                  after phase i        class
 * g_sessions     a list that gains 10 sessions (64 B) a phase, 640 i B, 10 i obj.    accumulation
 *                never freed
 * g_cache        a cache (256 B) of up to 30 entries (96 B):   256 + 96 min(10 i,30) cache
 *                10 more a phase until full, then one evicted  B, 1 + min(10 i, 30)
 *                and one added a phase                         objects
 * g_batch        a batch (160 B) of 20 items (200 B) made at   4160 B, 21 obj. when  churn
 *                odd phases, freed at even ones                i is odd; else none
 * leak_site      a list of 4 nodes (48 B) a phase whose only   192 i B, 4 i obj.     leak
 *                pointer is dropped: 1 direct leak, 3 indirect  (unreachable)
 *
 * Nothing else holds a pointer to these blocks: lists are prepended (no tail pointer), work
 * happens in functions that have returned before the snapshot, and clear_stack() wipes their
 * dead frames and the caller-saved registers. Prints "phases N" at the end, exits 0. */
#define _GNU_SOURCE
#include <heapwatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clear_stack.h"

#define SESSIONS_PER_PHASE 10
#define CACHE_SLOTS 31
#define CACHE_CAP 30
#define BATCH_ITEMS 20
#define LEAK_NODES 4

struct session { struct session *next; long id; char name[48]; };
struct centry { long key; char val[88]; };
struct cache { long count; struct centry *slot[CACHE_SLOTS]; };
struct batch { void *item[BATCH_ITEMS]; };
struct lnode { struct lnode *next; char pad[40]; };

_Static_assert(sizeof(struct session) == 64, "session");
_Static_assert(sizeof(struct centry) == 96, "centry");
_Static_assert(sizeof(struct cache) == 256, "cache");
_Static_assert(sizeof(struct batch) == 160, "batch");
_Static_assert(sizeof(struct lnode) == 48, "lnode");

struct session *g_sessions;
struct cache *g_cache;
struct batch *g_batch;

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fputs("owner_growth: out of memory\n", stderr);
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

__attribute__((noinline)) static void sessions_grow(int phase)
{
    for (int k = 0; k < SESSIONS_PER_PHASE; k++) {
        struct session *s = xmalloc(sizeof *s);
        s->id = phase * 100 + k;
        s->next = g_sessions;
        g_sessions = s;
    }
}

/* Fill up to CACHE_CAP entries, 10 a phase; once full, replace the oldest slot's entry. */
__attribute__((noinline)) static void cache_fill(int phase)
{
    if (!g_cache)
        g_cache = xmalloc(sizeof *g_cache);
    if (g_cache->count == CACHE_CAP) {
        int victim = phase % CACHE_CAP;
        free(g_cache->slot[victim]);
        g_cache->slot[victim] = xmalloc(sizeof(struct centry));
        g_cache->slot[victim]->key = phase;
        return;
    }
    for (int k = 0; k < 10 && g_cache->count < CACHE_CAP; k++) {
        struct centry *e = xmalloc(sizeof *e);
        e->key = phase * 100 + k;
        g_cache->slot[g_cache->count++] = e;
    }
}

/* A sawtooth: a batch at odd phases, gone at even ones. */
__attribute__((noinline)) static void batch_cycle(int phase)
{
    if (phase % 2) {
        g_batch = xmalloc(sizeof *g_batch);
        for (int k = 0; k < BATCH_ITEMS; k++)
            g_batch->item[k] = xmalloc(200);
        return;
    }
    for (int k = 0; k < BATCH_ITEMS; k++)
        free(g_batch->item[k]);
    free(g_batch);
    g_batch = NULL;
}

/* Builds a list and forgets it: every node comes from this function's malloc call. */
__attribute__((noinline)) static void leak_site(void)
{
    struct lnode *head = NULL;
    for (int k = 0; k < LEAK_NODES; k++) {
        struct lnode *n = malloc(sizeof *n);
        if (!n)
            exit(1);
        memset(n, 0, sizeof *n);
        n->next = head;
        head = n;
    }
    __asm__ volatile("" ::"r"(head) : "memory");   /* the list is built, then dropped */
}

int main(int argc, char **argv)
{
    int phases = argc > 1 ? atoi(argv[1]) : 8;
    for (int phase = 1; phase <= phases; phase++) {
        sessions_grow(phase);
        cache_fill(phase);
        batch_cycle(phase);
        leak_site();
        char label[32];
        snprintf(label, sizeof label, "phase %d", phase);
        clear_stack();
        heapwatch_snapshot(label);
    }
    printf("phases %d\n", phases);
    return 0;
}
