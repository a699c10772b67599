/* This file implements the dominator tree of dominators.h with the semi-NCA algorithm
 * (Georgiadis, "Linear-Time Algorithms for Dominators and Related Problems", 2005; the one
 * LLVM's GenericDomTreeConstruction.h runs). Reachable nodes are numbered in DFS preorder
 * ("indices"; node ids only serve to read the graph), and indices decrease towards the root
 * along any tree path. Four passes:
 *
 *   1. DFS from 0: numbers the nodes and records each one's DFS tree parent.
 *   2. Over every edge v -> w (indices i -> j), in node order: a tree or forward edge
 *      (j > i) makes i a candidate semidominator of j, kept as a running minimum in semi[j];
 *      a back or cross edge (j < i) is stored, reversed, in j's bucket of preds (a counting
 *      sort by target: one half-pass counts, the other fills).
 *   3. Semidominators, from the last index down to 1: semi(w) = the minimum over the edges
 *      v -> w of v when v < w (done by pass 2), and else of the smallest semi on the tree
 *      path from v up to, excluded, its first ancestor below w: eval(v) in a link-eval
 *      forest where every index above w is linked to its parent, kept shallow by path
 *      halving.
 *   4. idom(w) = the nearest common ancestor of parent(w) and semi(w) in the dominator tree
 *      built so far: in increasing index order, walk up from the parent while above semi(w).
 *
 * Nothing recurses and no stack grows with the graph: the DFS goes back up through the
 * parent indices it records (the tree path from 0 to the current node is its stack), and
 * eval halves the path as it climbs, in one pass; heap graphs hold linked lists of millions
 * of blocks, so either would otherwise need a stack as deep as the list.
 *
 * Memory, in 32-bit words per node: the result's idom (which holds the node -> index map
 * until the end) and order, then by index link (2), semi, dom and bucket; plus one word per
 * back or cross edge. Arrays rather than one struct per index: each pass touches one or two
 * of them at random, and a random read costs 45 ns in a 12 MB array but 150 ns in a 48 MB
 * one on the machine this was measured on (3M nodes: 10% faster). The time goes to cache
 * misses, which the DFS and pass 3 hide in part with prefetches; the DFS's chain of them
 * (succ[] of a node, then pre[] and first[] of its successor, then succ[] of that one...)
 * costs half the time. A caller that allocates first and succ on huge pages (2 MB aligned,
 * madvise MADV_HUGEPAGE before filling them) saves a tenth of it in TLB misses; the arrays
 * here are not, as faulting huge pages in was slower than what it saved.
 * Context: analyzer only. */
#include "dominators.h"

#include <stdlib.h>
#include <string.h>

/* The link-eval forest, per index. During pass 1, best is the DFS cursor: the next edge to
 * follow when the DFS comes back to the node. */
struct link {
    uint32_t anc;   /* the DFS parent, then an ancestor further up after path halving */
    uint32_t best;  /* once linked: the smallest semi on the path from here up to anc, anc excluded */
};

/* How many edges ahead the DFS and pass 3 prefetch: enough to hide a cache miss behind the
 * work on the edges before, few enough that a block holding a million pointers does not
 * flush the cache with its own prefetches. */
#define PREFETCH_AHEAD 16

/* Pass 1: DFS from node 0 over the CSR graph. Fills pre (node -> index, DOM_NONE when not
 * reached), order (index -> node), link[].anc and semi[] (both the DFS parent) and dom[]
 * (scratch: the end of the node's edges). Returns the number of reachable nodes.
 *
 * The walk is a chain of cache misses: pre[] and first[] of a successor, then its edges in
 * succ[], then pre[] and first[] of their targets... On entering (or coming back to) a node,
 * pre[] and first[] of its next successors are prefetched, then those PREFETCH_AHEAD edges on
 * as it goes: a quarter faster on a random graph of 3M nodes. */
static uint32_t dfs(const uint32_t *first, const uint32_t *succ, uint32_t *pre, uint32_t *order,
                    struct link *link, uint32_t *semi, uint32_t *dom)
{
    uint32_t nr = 1, i = 0, c = first[0], end = first[1];
    pre[0] = 0;
    order[0] = 0;
    link[0].anc = semi[0] = 0;
    for (;;) {
        for (uint32_t k = c; k < end && k < c + PREFETCH_AHEAD; k++) {
            __builtin_prefetch(&pre[succ[k]]);
            __builtin_prefetch(&first[succ[k]]);
        }
        uint32_t w = DOM_NONE;
        while (c < end) {
            if (c + PREFETCH_AHEAD < end) {
                __builtin_prefetch(&pre[succ[c + PREFETCH_AHEAD]]);
                __builtin_prefetch(&first[succ[c + PREFETCH_AHEAD]]);
            }
            uint32_t x = succ[c++];
            if (pre[x] == DOM_NONE) {
                w = x;
                break;
            }
        }
        if (w != DOM_NONE) {
            /* A tree edge: descend; i's edges resume at c when the DFS is back. */
            link[i].best = c;
            dom[i] = end;
            uint32_t j = nr++;
            pre[w] = j;
            order[j] = w;
            link[j].anc = semi[j] = i;
            i = j;
            c = first[w];
            end = first[w + 1];
        } else if (i == 0) {
            return nr;
        } else {
            i = link[i].anc;
            c = link[i].best;
            end = dom[i];
        }
    }
}

/* The smallest semi (best) on the forest path from v, linked (v >= last), up to its first
 * ancestor below last (not linked yet), excluded. Path halving on the way: a node whose
 * grandparent is linked too is pointed at it, its best updated to match, so the next eval
 * of the path takes half the steps; Tarjan and van Leeuwen (1984) show halving has the
 * bounds of full compression, in one pass up and without a stack. */
static uint32_t eval(struct link *link, uint32_t v, uint32_t last)
{
    uint32_t min = DOM_NONE;
    for (uint32_t x = v;;) {
        uint32_t p = link[x].anc;
        if (p < last)
            return link[x].best < min ? link[x].best : min;
        uint32_t g = link[p].anc;
        if (g >= last) {
            if (link[p].best < link[x].best)
                link[x].best = link[p].best;
            link[x].anc = g;
        }
        if (link[x].best < min)
            min = link[x].best;
        x = link[x].anc;
    }
}

int dom_build(struct dom_tree *t, uint32_t n, const uint32_t *first, const uint32_t *succ)
{
    memset(t, 0, sizeof *t);
    if (!n)
        return 0;
    uint32_t *idom = malloc((size_t)n * sizeof *idom);
    uint32_t *order = malloc((size_t)n * sizeof *order);
    struct link *link = malloc((size_t)n * sizeof *link);
    uint32_t *semi = malloc((size_t)n * sizeof *semi);
    uint32_t *dom = malloc((size_t)n * sizeof *dom);
    uint32_t *bucket = calloc((size_t)n + 1, sizeof *bucket);
    uint32_t *preds = NULL, *pre = idom, nr;
    if (!idom || !order || !link || !semi || !dom || !bucket)
        goto out_free;

    /* Pass 1. idom holds the node -> index map until the end. */
    memset(pre, 0xff, (size_t)n * sizeof *pre);
    nr = dfs(first, succ, pre, order, link, semi, dom);

    /* Pass 2, in node order (which streams the CSR arrays), first counting then filling.
     * Skips j = i + 1: the node numbered right after i is its first DFS child, whose semi is
     * i already (that saves half the cache misses on semi[]). Self loops and edges to the
     * root change nothing. After the prefix sums bucket[j] is the end of j's slice of preds,
     * filled downwards so that it ends as the start, and bucket[nr] is the total. */
    for (uint32_t v = 0; v < n; v++) {
        uint32_t i = pre[v];
        for (uint32_t c = first[v]; i != DOM_NONE && c < first[v + 1]; c++) {
            uint32_t j = pre[succ[c]];
            if (j == i + 1)
                continue;
            if (j > i) {
                if (i < semi[j])
                    semi[j] = i;
            } else if (j < i && j != 0) {
                bucket[j]++;
            }
        }
    }
    for (uint32_t j = 1; j <= nr; j++)
        bucket[j] += bucket[j - 1];
    if (bucket[nr]) {
        preds = malloc((size_t)bucket[nr] * sizeof *preds);
        if (!preds)
            goto out_free;
    }
    for (uint32_t v = 0; v < n; v++) {
        uint32_t i = pre[v];
        for (uint32_t c = first[v]; i != DOM_NONE && c < first[v + 1]; c++) {
            uint32_t j = pre[succ[c]];
            if (j < i && j != 0)
                preds[--bucket[j]] = i;
        }
    }

    /* Pass 3: semidominators, in decreasing index. Every index above w is linked to its
     * parent, which is how eval tells linked from not linked; w's own link is still its DFS
     * parent, copied to dom for pass 4. The root is the smallest semidominator there is, so
     * once semi reaches it the other edges cannot lower it: the blocks that owners point at
     * directly skip their other edges. preds is read from its end backwards, so the link of
     * the source of each edge PREFETCH_AHEAD on is prefetched (`ahead`: where prefetching
     * has got to), skipped nodes' edges included: which nodes skip is not known ahead. */
    dom[0] = 0;
    uint32_t ahead = bucket[nr];
    for (uint32_t w = nr - 1; w >= 1; w--) {
        uint32_t s = semi[w];
        uint32_t stop = bucket[w] > PREFETCH_AHEAD ? bucket[w] - PREFETCH_AHEAD : 0;
        while (ahead > stop)
            __builtin_prefetch(&link[preds[--ahead]]);
        for (uint32_t k = bucket[w + 1]; k > bucket[w] && s;) {
            uint32_t b = eval(link, preds[--k], w + 1);
            if (b < s)
                s = b;
        }
        semi[w] = link[w].best = s;
        dom[w] = link[w].anc;
    }
    free(preds);
    preds = NULL;

    /* Pass 4: idom(w) = NCA(parent(w), semi(w)) in the tree built so far (every index below
     * w is done), walking up from the parent. Then back to node ids. */
    for (uint32_t w = 1; w < nr; w++) {
        uint32_t x = dom[w];
        while (x > semi[w])
            x = dom[x];
        dom[w] = x;
    }
    for (uint32_t w = 0; w < nr; w++)
        idom[order[w]] = order[dom[w]];

    free(bucket);
    free(dom);
    free(semi);
    free(link);
    uint32_t *shrunk = realloc(order, (size_t)nr * sizeof *order);
    t->n = n;
    t->idom = idom;
    t->order = shrunk ? shrunk : order;
    t->nr_reachable = nr;
    return 0;

out_free:
    free(preds);
    free(bucket);
    free(dom);
    free(semi);
    free(link);
    free(order);
    free(idom);
    return -1;
}

void dom_subtree_sums(const struct dom_tree *t, const uint64_t *weight, uint64_t *sum)
{
    /* Every node comes after its immediate dominator in order, so in reverse order a node's
     * sum is complete (all its children added) before it is added to its own dominator. */
    for (uint32_t v = 0; v < t->n; v++)
        sum[v] = t->idom[v] == DOM_NONE ? 0 : weight[v];
    for (uint32_t i = t->nr_reachable; i-- > 1;) {
        uint32_t v = t->order[i];
        sum[t->idom[v]] += sum[v];
    }
}

void dom_free(struct dom_tree *t)
{
    free(t->idom);
    free(t->order);
    memset(t, 0, sizeof *t);
}
