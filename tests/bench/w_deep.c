/* w_deep.c: allocations from deep call stacks.
 * Mutually recursive functions descend 30..60 frames, then build a binary tree of malloc'd
 * nodes (itself recursive, 6..9 levels), walk it and free it; on the way back up some frames
 * build and free a small tree as well. Each tree is walked three times, hashing every node's
 * payload. About 2.5 million allocations (x scale).
 * Usage: w_deep [scale]   Prints "allocs=N" and a checksum on stdout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

#define DEFAULT_ALLOCS 2500000.0
#define NOINLINE __attribute__((noinline))

struct node {
    struct node *left, *right;
    uint32_t val;
    uint32_t len;
    unsigned char payload[];
};

static uint64_t seed = 0x243F6A8885A308D3ULL;
static long allocs;

static uint64_t rnd(void)
{
    return bench_rnd(&seed);
}

static struct node *new_node(uint32_t val)
{
    uint32_t len = 16 + (uint32_t)(rnd() % 177); /* 16..192 bytes of payload */
    struct node *n = malloc(sizeof *n + len);
    if (!n) {
        fprintf(stderr, "w_deep: out of memory\n");
        exit(1);
    }
    allocs++;
    n->left = n->right = NULL;
    n->val = val;
    n->len = len;
    memset(n->payload, (int)(val & 0xff), len);
    return n;
}

static struct node *build_b(int depth, uint32_t val);

static NOINLINE struct node *build_a(int depth, uint32_t val)
{
    struct node *n = new_node(val);
    if (depth > 1) {
        n->left = (rnd() & 1) ? build_a(depth - 1, val * 2 + 1) : build_b(depth - 1, val * 2 + 1);
        n->right = build_b(depth - 1, val * 2 + 2);
    }
    return n;
}

static NOINLINE struct node *build_b(int depth, uint32_t val)
{
    struct node *n = new_node(val ^ 0x5a5a);
    if (depth > 1) {
        n->right = (rnd() & 1) ? build_b(depth - 1, val * 3 + 1) : build_a(depth - 1, val * 3 + 1);
        n->left = build_a(depth - 1, val * 3 + 2);
    }
    return n;
}

static NOINLINE uint64_t walk(const struct node *n)
{
    if (!n)
        return 0;
    /* Some per-node work (FNV-1a over the payload), as a real traversal would do. */
    uint64_t h = 0xcbf29ce484222325ULL ^ n->val;
    for (uint32_t i = 0; i < n->len; i++)
        h = (h ^ n->payload[i]) * 0x100000001b3ULL;
    return h + 3 * walk(n->left) + 7 * walk(n->right);
}

static NOINLINE void free_tree(struct node *n)
{
    if (!n)
        return;
    free_tree(n->left);
    free_tree(n->right);
    free(n);
}

static NOINLINE uint64_t tree_work(int depth, uint32_t val)
{
    struct node *t = (val & 1) ? build_a(depth, val) : build_b(depth, val);
    uint64_t h = walk(t);
    h ^= walk(t) >> 1;
    h += walk(t) >> 2;
    free_tree(t);
    return h;
}

static uint64_t dive_b(int left, uint32_t val);
static uint64_t dive_c(int left, uint32_t val);

static NOINLINE uint64_t dive_a(int left, uint32_t val)
{
    uint64_t h;
    if (left == 0)
        h = tree_work(6 + (int)(rnd() % 4), val);
    else
        h = (rnd() & 1) ? dive_b(left - 1, val + 1) : dive_c(left - 1, val + 3);
    if ((rnd() & 7) == 0)
        h += tree_work(3, val);
    return h * 33 + val;
}

static NOINLINE uint64_t dive_b(int left, uint32_t val)
{
    uint64_t h;
    if (left == 0)
        h = tree_work(6 + (int)(rnd() % 4), val ^ 0xb);
    else
        h = (rnd() & 1) ? dive_c(left - 1, val + 5) : dive_a(left - 1, val + 7);
    if ((rnd() & 7) == 0)
        h += tree_work(3, val);
    return h * 31 + (val ^ 0xbb);
}

static NOINLINE uint64_t dive_c(int left, uint32_t val)
{
    uint64_t h;
    if (left == 0)
        h = tree_work(6 + (int)(rnd() % 4), val ^ 0xc);
    else
        h = (rnd() & 1) ? dive_a(left - 1, val + 11) : dive_b(left - 1, val + 13);
    if ((rnd() & 7) == 0)
        h += tree_work(3, val);
    return h * 37 + (val ^ 0xcc);
}

int main(int argc, char **argv)
{
    long target = (long)(DEFAULT_ALLOCS * bench_parse_scale(argc, argv));
    uint64_t sum = 0;
    long dives = 0;
    while (allocs < target) {
        int depth = 30 + (int)(rnd() % 31); /* 30..60 frames before the tree */
        sum = sum * 1099511628211ULL + dive_a(depth, (uint32_t)dives);
        dives++;
    }
    printf("w_deep: allocs=%ld dives=%ld checksum=%016llx\n", allocs, dives,
           (unsigned long long)sum);
    return 0;
}
