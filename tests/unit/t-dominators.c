/* This file implements the unit test of analyzer/dominators.c: immediate dominators, the DFS
 * preorder and subtree sums of hand-built graphs whose dominator trees are known (the
 * Lengauer-Tarjan paper's 13-node example, a diamond, a cycle back to the root, self loops,
 * duplicate edges, unreachable nodes, a block held from two owners, the empty and the
 * one-node graph); then 2,000 random graphs of up to 60 nodes in three shapes, each checked
 * against the definition by brute force (d dominates v iff v is unreachable from 0 once d is
 * removed); then 3,000,000-node graphs: a linked list (a recursive DFS would overflow the
 * stack), the same list with its tail pointing back at its third node (a recursive path
 * compression would), and a random graph of 6,000,000 edges compared with the simpler
 * Cooper-Harvey-Kennedy algorithm, written here; their times are TAP comments, not checks.
 * Last, out of memory: dom_build under growing address-space limits fails cleanly or
 * succeeds. Prints TAP.
 *
 * Under valgrind (LD_PRELOAD names vgpreload) or with T_DOMINATORS_SMALL set, the big graphs
 * have 30,000 nodes and the out-of-memory test is skipped:
 *   make -C tests units && tests/unit/bin/t-dominators
 *   valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=all \
 *       tests/unit/bin/t-dominators */
// LINK: analyzer/dominators.c
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "dominators.h"
#include "harness.h"

struct graph {
    uint32_t n, m;
    uint32_t *first, *succ;
};

/* CSR from an edge list (pairs src, dst), keeping each node's edges in list order. */
static struct graph graph_from_edges(uint32_t n, const uint32_t *edges, uint32_t m)
{
    struct graph g = { n, m, calloc((size_t)n + 1, sizeof(uint32_t)), malloc((size_t)m * sizeof(uint32_t) + 1) };
    for (uint32_t e = 0; e < m; e++)
        g.first[edges[2 * e] + 1]++;
    for (uint32_t v = 0; v < n; v++)
        g.first[v + 1] += g.first[v];
    uint32_t *pos = malloc(((size_t)n + 1) * sizeof *pos);
    memcpy(pos, g.first, ((size_t)n + 1) * sizeof *pos);
    for (uint32_t e = 0; e < m; e++)
        g.succ[pos[edges[2 * e]]++] = edges[2 * e + 1];
    free(pos);
    return g;
}

static void graph_free(struct graph *g)
{
    free(g->first);
    free(g->succ);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static uint32_t below(uint32_t k)
{
    return (uint32_t)((next64() >> 32) * k >> 32);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- brute force, from the definition (n <= 64: node sets are bit masks) ---------------- */

/* The nodes reachable from 0 without going through `removed` (64: none removed). */
static uint64_t reach_without(const struct graph *g, uint32_t removed)
{
    if (removed == 0)
        return 0;
    uint64_t seen = 1;
    uint32_t queue[64], head = 0, tail = 0;
    queue[tail++] = 0;
    while (head < tail) {
        uint32_t v = queue[head++];
        for (uint32_t c = g->first[v]; c < g->first[v + 1]; c++) {
            uint32_t w = g->succ[c];
            if (w != removed && !(seen >> w & 1)) {
                seen |= 1ull << w;
                queue[tail++] = w;
            }
        }
    }
    return seen;
}

struct brute {
    uint64_t reach;
    uint64_t dom[64];     /* dom[v]: the dominators of v, v included */
    uint32_t idom[64];
    uint64_t sum[64];
};

static void brute_force(const struct graph *g, const uint64_t *weight, struct brute *b)
{
    uint32_t n = g->n;
    b->reach = reach_without(g, 64);
    for (uint32_t v = 0; v < n; v++)
        b->dom[v] = b->reach >> v & 1 ? 1ull << v : 0;
    for (uint32_t d = 0; d < n; d++) {
        if (!(b->reach >> d & 1))
            continue;
        uint64_t lost = b->reach & ~reach_without(g, d);
        for (uint32_t v = 0; v < n; v++)
            if (lost >> v & 1)
                b->dom[v] |= 1ull << d;
    }
    /* The immediate dominator is the strict dominator that has the most dominators. */
    for (uint32_t v = 0; v < n; v++) {
        b->idom[v] = v == 0 ? 0 : DOM_NONE;
        int most = -1;
        for (uint32_t d = 0; v && d < n; d++)
            if (d != v && (b->dom[v] >> d & 1) && __builtin_popcountll(b->dom[d]) > most) {
                most = __builtin_popcountll(b->dom[d]);
                b->idom[v] = d;
            }
        b->sum[v] = 0;
        for (uint32_t u = 0; u < n; u++)
            if (b->dom[u] >> v & 1)
                b->sum[v] += weight[u];
    }
}

/* ---- checks of one result ------------------------------------------------------------- */

/* Is order exactly the DFS preorder from 0 that takes successors in CSR order? Replays the
 * DFS: the next node must be the first unvisited successor of the deepest node that still
 * has one. Also: order holds every reachable node once, each after its immediate dominator. */
static bool order_ok(const struct graph *g, const struct dom_tree *t, char *why, size_t len)
{
    uint32_t n = g->n, nr = t->nr_reachable, depth = 0;
    uint32_t *stack = malloc(((size_t)n + 1) * sizeof *stack), *cur = malloc(((size_t)n + 1) * sizeof *cur);
    uint32_t *pos = malloc(((size_t)n + 1) * sizeof *pos);
    bool ok = false;
    for (uint32_t v = 0; v < n; v++)
        pos[v] = DOM_NONE;
    if (nr == 0 || nr > n || t->order[0] != 0) {
        snprintf(why, len, "nr_reachable %u, order[0] %u", nr, nr ? t->order[0] : DOM_NONE);
        goto out;
    }
    pos[0] = 0;
    stack[depth] = 0;
    cur[depth++] = g->first[0];
    for (uint32_t k = 1; k <= nr; k++) {
        /* Find the next tree edge: the first unvisited successor of the deepest open node. */
        uint32_t next = DOM_NONE;
        while (depth && next == DOM_NONE) {
            uint32_t v = stack[depth - 1];
            while (cur[depth - 1] < g->first[v + 1] && pos[g->succ[cur[depth - 1]]] != DOM_NONE)
                cur[depth - 1]++;
            if (cur[depth - 1] < g->first[v + 1])
                next = g->succ[cur[depth - 1]];
            else
                depth--;
        }
        if (k == nr) {
            if (next != DOM_NONE) {
                snprintf(why, len, "order ends at %u nodes, node %u is reachable too", nr, next);
                goto out;
            }
            break;
        }
        if (next != t->order[k]) {
            snprintf(why, len, "order[%u] = %u, DFS preorder has %u", k, t->order[k], next);
            goto out;
        }
        pos[next] = k;
        stack[depth] = next;
        cur[depth++] = g->first[next];
    }
    for (uint32_t k = 1; k < nr; k++) {
        uint32_t v = t->order[k], d = t->idom[v];
        if (d >= n || pos[d] >= k) {
            snprintf(why, len, "order[%u] = %u comes before its immediate dominator %u", k, v, d);
            goto out;
        }
    }
    ok = true;
out:
    free(stack);
    free(cur);
    free(pos);
    return ok;
}

/* Bit flags of what went wrong for one graph. */
enum { BAD_IDOM = 1, BAD_ORDER = 2, BAD_SUM = 4, BAD_BUILD = 8 };

static int check_graph(const struct graph *g, const uint64_t *weight, char *why, size_t len)
{
    struct brute b;
    struct dom_tree t;
    uint64_t sum[64];
    int bad = 0;
    brute_force(g, weight, &b);
    if (dom_build(&t, g->n, g->first, g->succ) || t.n != g->n) {
        snprintf(why, len, "dom_build failed");
        return BAD_BUILD;
    }
    for (uint32_t v = 0; v < g->n && !bad; v++)
        if (t.idom[v] != b.idom[v]) {
            snprintf(why, len, "idom[%u] = %u, brute force %u", v, t.idom[v], b.idom[v]);
            bad |= BAD_IDOM;
        }
    if ((uint32_t)__builtin_popcountll(b.reach) != t.nr_reachable) {
        snprintf(why, len, "nr_reachable %u, brute force %d", t.nr_reachable, __builtin_popcountll(b.reach));
        bad |= BAD_ORDER;
    } else if (!order_ok(g, &t, why, len)) {
        bad |= BAD_ORDER;
    }
    dom_subtree_sums(&t, weight, sum);
    for (uint32_t v = 0; v < g->n; v++)
        if (sum[v] != b.sum[v]) {
            if (!bad)
                snprintf(why, len, "sum[%u] = %llu, brute force %llu", v, (unsigned long long)sum[v],
                         (unsigned long long)b.sum[v]);
            bad |= BAD_SUM;
            break;
        }
    dom_free(&t);
    return bad;
}

/* ---- hand-built graphs ---------------------------------------------------------------- */

#define NE(a) (uint32_t)(sizeof(a) / sizeof((a)[0]) / 2)

/* Build, compare idom with `want` (n entries) and the sums with `want_sum` (NULL: skip),
 * then the whole result with brute force. weight[v] = v + 1 unless given. */
static void known(const char *name, uint32_t n, const uint32_t *edges, uint32_t m, const uint32_t *want,
                  const uint64_t *want_sum, const uint64_t *weight)
{
    struct graph g = graph_from_edges(n, edges, m);
    uint64_t w[64], sum[64];
    for (uint32_t v = 0; v < n; v++)
        w[v] = weight ? weight[v] : v + 1;
    struct dom_tree t;
    char why[160] = "";
    int rc = dom_build(&t, n, g.first, g.succ);
    if (rc)
        snprintf(why, sizeof why, ": dom_build failed");
    for (uint32_t v = 0; !rc && !why[0] && v < n; v++)
        if (t.idom[v] != want[v])
            snprintf(why, sizeof why, ": idom[%u] = %u, expected %u", v, t.idom[v], want[v]);
    CHECK(!why[0], "%s: immediate dominators%s", name, why);
    if (want_sum && !rc) {
        why[0] = '\0';
        dom_subtree_sums(&t, w, sum);
        for (uint32_t v = 0; !why[0] && v < n; v++)
            if (sum[v] != want_sum[v])
                snprintf(why, sizeof why, ": sum[%u] = %llu, expected %llu", v, (unsigned long long)sum[v],
                         (unsigned long long)want_sum[v]);
        CHECK(!why[0], "%s: subtree sums%s", name, why);
    }
    int bad = check_graph(&g, w, why, sizeof why);
    CHECK(!bad, "%s: order is the DFS preorder; all agrees with brute force%s%s", name, bad ? ": " : "", why);
    dom_free(&t);
    graph_free(&g);
}

static void test_known(void)
{
    /* Lengauer and Tarjan, "A fast algorithm for finding dominators in a flowgraph" (1979),
     * figure 1: R=0, A..L = 1..12. */
    enum { R, A, B, C, D, E, F, G, H, I, J, K, L };
    static const uint32_t lt[] = {
        R, A, R, B, R, C, A, D, B, A, B, D, B, E, C, F, C, G, D, L, E, H, F, I,
        G, I, G, J, H, E, H, K, I, K, J, I, K, I, K, R, L, H,
    };
    static const uint32_t lt_idom[] = { R, R, R, R, R, R, C, C, R, R, G, R, D };
    /* weight v + 1: C retains C, F, G, J = 4 + 7 + 8 + 11; D retains D, L = 5 + 13. */
    static const uint64_t lt_sum[] = { 91, 2, 3, 30, 18, 6, 7, 19, 9, 10, 11, 12, 13 };
    known("Lengauer-Tarjan figure 1", 13, lt, NE(lt), lt_idom, lt_sum, NULL);

    static const uint32_t diamond[] = { 0, 1, 0, 2, 1, 3, 2, 3, 3, 4 };
    static const uint32_t diamond_idom[] = { 0, 0, 0, 0, 3 };
    static const uint64_t diamond_sum[] = { 15, 2, 3, 9, 5 };
    known("diamond", 5, diamond, NE(diamond), diamond_idom, diamond_sum, NULL);

    /* 0 -> 1 -> 2 -> 3 -> 0: the edge back to the root changes nothing. */
    static const uint32_t cycle[] = { 0, 1, 1, 2, 2, 3, 3, 0 };
    static const uint32_t cycle_idom[] = { 0, 0, 1, 2 };
    static const uint64_t cycle_sum[] = { 10, 9, 7, 4 };
    known("cycle back to the root", 4, cycle, NE(cycle), cycle_idom, cycle_sum, NULL);

    static const uint32_t loops[] = { 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 1 };
    static const uint32_t loops_idom[] = { 0, 0, 1 };
    static const uint64_t loops_sum[] = { 6, 5, 3 };
    known("self loops", 3, loops, NE(loops), loops_idom, loops_sum, NULL);

    /* Each edge twice: 2 is still reached from 0 directly. */
    static const uint32_t dup[] = { 0, 1, 0, 1, 1, 2, 1, 2, 0, 2, 0, 2, 2, 3, 2, 3 };
    static const uint32_t dup_idom[] = { 0, 0, 0, 2 };
    static const uint64_t dup_sum[] = { 10, 2, 7, 4 };
    known("duplicate edges", 4, dup, NE(dup), dup_idom, dup_sum, NULL);

    /* 2, 3 and 4 are not reached from 0 (2 and 4 point into the reachable part). */
    static const uint32_t unr[] = { 0, 1, 2, 1, 3, 2, 4, 4, 4, 0, 1, 5 };
    static const uint32_t unr_idom[] = { 0, 0, DOM_NONE, DOM_NONE, DOM_NONE, 1 };
    static const uint64_t unr_sum[] = { 9, 8, 0, 0, 0, 6 };
    known("unreachable nodes", 6, unr, NE(unr), unr_idom, unr_sum, NULL);

    /* The virtual root 0 and two owners 1 and 2. 5 is reached from both owners' subtrees:
     * retained by neither, its immediate dominator is 0; 6 hangs off 5 alone. */
    static const uint32_t owners[] = { 0, 1, 0, 2, 1, 3, 2, 4, 3, 5, 4, 5, 5, 6 };
    static const uint32_t owners_idom[] = { 0, 0, 0, 1, 2, 0, 5 };
    static const uint64_t owners_w[] = { 0, 8, 8, 100, 200, 1000, 5000 };
    static const uint64_t owners_sum[] = { 6316, 108, 208, 100, 200, 6000, 5000 };
    known("block held from two owners", 7, owners, NE(owners), owners_idom, owners_sum, owners_w);

    static const uint32_t none[] = { 0, 0 };
    static const uint32_t one_idom[] = { 0 };
    static const uint64_t one_sum[] = { 1 };
    known("one node", 1, none, 0, one_idom, one_sum, NULL);
    known("one node, a self loop", 1, none, 1, one_idom, one_sum, NULL);

    struct dom_tree t;
    uint32_t first0 = 0;
    int rc = dom_build(&t, 0, &first0, NULL);
    CHECK(rc == 0 && t.n == 0 && t.nr_reachable == 0 && !t.idom && !t.order, "empty graph: empty tree");
    dom_free(&t);
    dom_free(&t);
    CHECK(!t.idom && !t.order && !t.n, "dom_free twice: the second frees nothing");
}

/* ---- random graphs against brute force ------------------------------------------------ */

/* Shapes: 0 uniform random edges; 1 mostly short forward edges with some anywhere (deep
 * dominator trees, loops); 2 a random spanning tree plus extra edges (all reachable). */
static struct graph random_graph(int shape, uint32_t n, uint32_t *edges)
{
    static const double degrees[] = { 0.5, 1, 1.5, 2, 3, 5 };
    double deg = degrees[below(6)];
    uint32_t m = 0, want = (uint32_t)(deg * n + 0.5);
    if (shape == 2)
        for (uint32_t v = 1; v < n; v++) {
            edges[2 * m] = below(v);
            edges[2 * m++ + 1] = v;
        }
    while (m < want + (shape == 2 ? n / 2 : 0) && m < 400) {
        uint32_t s = below(n), d = shape == 1 && below(10) < 8 ? s + 1 + below(3) : n;
        if (d >= n)
            d = below(n);
        edges[2 * m] = s;
        edges[2 * m++ + 1] = d;
    }
    /* Shuffle so that tree edges are not all first. */
    for (uint32_t e = m; e > 1; e--) {
        uint32_t k = below(e), s = edges[2 * k], d = edges[2 * k + 1];
        edges[2 * k] = edges[2 * (e - 1)];
        edges[2 * k + 1] = edges[2 * (e - 1) + 1];
        edges[2 * (e - 1)] = s;
        edges[2 * (e - 1) + 1] = d;
    }
    return graph_from_edges(n, edges, m);
}

static void test_random(void)
{
    static const char *const shapes[] = { "uniform", "mostly forward", "spanning tree + extra" };
    static uint32_t edges[2 * 400];
    for (int shape = 0; shape < 3; shape++) {
        int graphs = shape == 0 ? 700 : 650, bad_idom = 0, bad_order = 0, bad_sum = 0;
        uint64_t nodes = 0, reached = 0, deep = 0;
        char why[160], first_why[200] = "";
        for (int k = 0; k < graphs; k++) {
            uint32_t n = k < 60 ? (uint32_t)k % 8 + 1 : 1 + below(60);
            struct graph g = random_graph(shape, n, edges);
            uint64_t weight[64];
            for (uint32_t v = 0; v < n; v++)
                weight[v] = next64() >> 24;
            int bad = check_graph(&g, weight, why, sizeof why);
            bad_idom += !!(bad & (BAD_IDOM | BAD_BUILD));
            bad_order += !!(bad & BAD_ORDER);
            bad_sum += !!(bad & BAD_SUM);
            if (bad && !first_why[0])
                snprintf(first_why, sizeof first_why, ": graph %d (n %u, m %u): %s", k, n, g.m, why);
            /* What the graphs exercise: reachable nodes whose immediate dominator is not the root. */
            struct brute b;
            brute_force(&g, weight, &b);
            nodes += n;
            reached += __builtin_popcountll(b.reach);
            for (uint32_t v = 1; v < n; v++)
                deep += b.idom[v] != DOM_NONE && b.idom[v] != 0;
            graph_free(&g);
        }
        diag("%s: %d graphs, %llu nodes, %llu reachable, %llu dominated by another than the root", shapes[shape],
             graphs, (unsigned long long)nodes, (unsigned long long)reached, (unsigned long long)deep);
        CHECK(!bad_idom, "%s: %d random graphs, immediate dominators as brute force (%d differ)%s", shapes[shape],
              graphs, bad_idom, first_why);
        CHECK(!bad_order, "%s: order is the DFS preorder, each node after its idom (%d differ)", shapes[shape],
              bad_order);
        CHECK(!bad_sum, "%s: subtree sums as brute force (%d differ)", shapes[shape], bad_sum);
    }
}

/* ---- 3,000,000 nodes ------------------------------------------------------------------- */

/* The size of the big graphs, and its name in messages: 30,000 nodes when small. */
static uint32_t big = 3000000;
static const char *big_name = "3M";

static bool under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload");
}

/* 0 -> 1 -> ... -> big-1, and if `lasso` big-1 -> 2 as well. The lasso's edge makes the
 * semidominator of 2 depend on the whole list below it: eval walks the list up the forest
 * (not from 1: the root's child has the root as semidominator, and its edges are skipped). */
static void test_list(bool lasso)
{
    const char *name = lasso ? "lasso" : "list";
    struct graph g = { big, big - 1 + lasso, malloc(((size_t)big + 1) * sizeof(uint32_t)),
                       malloc((size_t)big * sizeof(uint32_t)) };
    for (uint32_t v = 0; v < big; v++) {
        g.first[v] = v;
        g.succ[v] = v + 1;
    }
    g.succ[big - 1] = 2;
    g.first[big] = g.m;
    struct dom_tree t;
    double t0 = now();
    int rc = dom_build(&t, g.n, g.first, g.succ);
    double t1 = now();
    diag("dom_build %s-node %s%s: %.3f s", big_name, name, lasso ? " (list + tail -> 2)" : "", t1 - t0);
    bool ok = rc == 0 && t.nr_reachable == big && t.idom[0] == 0;
    for (uint32_t v = 1; ok && v < big; v++)
        ok = t.idom[v] == v - 1 && t.order[v] == v;
    CHECK(ok, "%s-node %s: idom[v] = v - 1, order[v] = v", big_name, name);
    if (rc == 0) {
        uint64_t *sum = malloc(big * sizeof *sum);
        for (uint32_t v = 0; v < big; v++)
            sum[v] = 1;
        t0 = now();
        dom_subtree_sums(&t, sum, sum);
        t1 = now();
        if (!lasso)
            diag("dom_subtree_sums %s-node list: %.3f s", big_name, t1 - t0);
        ok = true;
        for (uint32_t v = 0; ok && v < big; v++)
            ok = sum[v] == big - v;
        CHECK(ok, "%s-node %s: sums in place, sum[v] = %s - v", big_name, name, big_name);
        free(sum);
    }
    dom_free(&t);
    graph_free(&g);
}

/* A heap-like random graph: the root points at 1% of the nodes (the owners), every other
 * node at 0 to 4 random nodes (2 on average): ~6,000,000 edges for 3M nodes. */
static struct graph big_random(void)
{
    struct graph g = { big, 0, malloc(((size_t)big + 1) * sizeof(uint32_t)),
                       malloc(((size_t)big * 4 + big / 100) * sizeof(uint32_t)) };
    for (uint32_t v = 0; v < big; v++) {
        g.first[v] = g.m;
        uint32_t k = v == 0 ? big / 100 : below(5);
        for (uint32_t i = 0; i < k; i++)
            g.succ[g.m++] = 1 + below(big - 1);
    }
    g.first[big] = g.m;
    g.succ = realloc(g.succ, (size_t)g.m * sizeof(uint32_t));
    return g;
}

/* Cooper, Harvey and Kennedy, "A Simple, Fast Dominance Algorithm" (2001): iterate
 * idom(b) = the intersection of b's processed predecessors' dominator chains, in reverse
 * postorder, until nothing changes. Independent of dom_build; returns the number of passes. */
static int chk_dominators(const struct graph *g, uint32_t *idom)
{
    uint32_t n = g->n, nr = 0;
    uint32_t *po = malloc((size_t)n * sizeof *po);   /* node -> postorder number */
    uint32_t *post = malloc((size_t)n * sizeof *post); /* postorder number -> node */
    uint32_t *stack = malloc((size_t)n * sizeof *stack), *cur = malloc((size_t)n * sizeof *cur);
    uint32_t *pfirst = calloc((size_t)n + 1, sizeof *pfirst), *pred = malloc((size_t)g->m * sizeof *pred + 1);
    for (uint32_t v = 0; v < n; v++)
        po[v] = idom[v] = DOM_NONE;
    uint32_t depth = 0;
    stack[depth] = 0;
    cur[depth++] = g->first[0];
    po[0] = DOM_NONE - 1; /* on the stack */
    while (depth) {
        uint32_t v = stack[depth - 1];
        if (cur[depth - 1] < g->first[v + 1]) {
            uint32_t w = g->succ[cur[depth - 1]++];
            if (po[w] == DOM_NONE) {
                po[w] = DOM_NONE - 1;
                stack[depth] = w;
                cur[depth++] = g->first[w];
            }
        } else {
            po[v] = nr;
            post[nr++] = v;
            depth--;
        }
    }
    /* Predecessors: count, prefix sums (pfirst[w] = the end of w's slice), fill downwards. */
    for (uint32_t v = 0; v < n; v++)
        for (uint32_t c = g->first[v]; po[v] != DOM_NONE && c < g->first[v + 1]; c++)
            pfirst[g->succ[c]]++;
    for (uint32_t v = 1; v <= n; v++)
        pfirst[v] += pfirst[v - 1];
    for (uint32_t v = 0; v < n; v++)
        for (uint32_t c = g->first[v]; po[v] != DOM_NONE && c < g->first[v + 1]; c++)
            pred[--pfirst[g->succ[c]]] = v;
    idom[0] = 0;
    int passes = 0;
    for (bool changed = true; changed; passes++) {
        changed = false;
        for (uint32_t k = nr - 1; k-- > 0;) {
            uint32_t b = post[k], new_idom = DOM_NONE;
            for (uint32_t c = pfirst[b]; c < pfirst[b + 1]; c++) {
                uint32_t p = pred[c];
                if (idom[p] == DOM_NONE)
                    continue;
                if (new_idom == DOM_NONE) {
                    new_idom = p;
                    continue;
                }
                uint32_t x = p, y = new_idom;
                while (x != y) {
                    while (po[x] < po[y])
                        x = idom[x];
                    while (po[y] < po[x])
                        y = idom[y];
                }
                new_idom = x;
            }
            if (idom[b] != new_idom) {
                idom[b] = new_idom;
                changed = true;
            }
        }
    }
    free(po);
    free(post);
    free(stack);
    free(cur);
    free(pfirst);
    free(pred);
    return passes;
}

/* Out of memory: dom_build in a child whose address space may grow by `extra` bytes only.
 * Returns 0 if it failed cleanly (-1, t zeroed), 1 if it succeeded with the expected result,
 * 2 on anything else (wrong result, crash). */
static int build_limited(const struct graph *g, const uint32_t *want, size_t extra)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f || fscanf(f, "%ld", &pages) != 1)
            _exit(3);
        fclose(f);
        struct rlimit rl = { .rlim_cur = (rlim_t)pages * sysconf(_SC_PAGESIZE) + extra };
        rl.rlim_max = rl.rlim_cur;
        if (setrlimit(RLIMIT_AS, &rl))
            _exit(3);
        struct dom_tree t;
        if (dom_build(&t, g->n, g->first, g->succ))
            _exit(t.idom || t.order || t.n || t.nr_reachable ? 2 : 0);
        _exit(memcmp(t.idom, want, (size_t)g->n * sizeof *want) ? 2 : 1);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return 2;
    return WEXITSTATUS(status);
}

static void test_big_random(bool oom)
{
    struct graph g = big_random();
    struct dom_tree t;
    double t0 = now();
    int rc = dom_build(&t, g.n, g.first, g.succ);
    double t1 = now();
    diag("dom_build %s nodes %.*fM edges: %.3f s", big_name, big < 1000000 ? 2 : 1, g.m / 1e6, t1 - t0);
    CHECK(rc == 0, "%s-node random graph: built", big_name);
    if (rc) {
        graph_free(&g);
        return;
    }
    /* Out of memory at each of dom_build's allocations in turn (12 MB each for 3M nodes, 24
     * for link, 8 for preds): the address space may grow by nothing, then by up to 160 MB,
     * where it succeeds. Memory the test has freed may serve some of them (hence this runs
     * before the checks below allocate and free theirs), so how many fail is not checked. */
    static const size_t mb[] = { 0, 6, 18, 36, 54, 66, 78, 88, 160 };
    int failed = 0, succeeded = 0, wrong = 0;
    for (size_t i = 0; oom && i < sizeof mb / sizeof mb[0]; i++) {
        int r = build_limited(&g, t.idom, mb[i] << 20);
        failed += r == 0;
        succeeded += r == 1;
        wrong += r > 1;
    }
    if (oom) {
        diag("address space limited: %d builds out of memory, %d complete", failed, succeeded);
        CHECK(!wrong && failed && succeeded,
              "out of memory: -1 with the tree zeroed, or the right tree (%d failed, %d complete, %d wrong)",
              failed, succeeded, wrong);
    }

    uint32_t *ref = malloc(big * sizeof *ref);
    t0 = now();
    int passes = chk_dominators(&g, ref);
    t1 = now();
    diag("Cooper-Harvey-Kennedy on the same graph (the test's reference): %.3f s, %d passes", t1 - t0, passes);
    uint32_t diff = 0, deep = 0;
    char why[160] = "";
    for (uint32_t v = 0; v < big; v++) {
        if (t.idom[v] != ref[v] && !diff++)
            snprintf(why, sizeof why, ", first idom[%u] = %u, not %u", v, t.idom[v], ref[v]);
        deep += t.idom[v] != DOM_NONE && t.idom[v] != 0;
    }
    diag("%s-node random graph: %u of %u nodes reachable, %u dominated by another than the root", big_name,
         t.nr_reachable, big, deep);
    CHECK(!diff, "%s-node random graph: idom as Cooper-Harvey-Kennedy (%u differ%s)", big_name, diff, why);

    /* order: reachable nodes once each, each after its immediate dominator. */
    uint32_t *pos = malloc(big * sizeof *pos), bad = 0, reachable = 0;
    for (uint32_t v = 0; v < big; v++) {
        pos[v] = DOM_NONE;
        reachable += ref[v] != DOM_NONE;
    }
    for (uint32_t k = 0; k < t.nr_reachable; k++) {
        uint32_t v = t.order[k];
        if (v >= big || pos[v] != DOM_NONE)
            bad++;
        else
            pos[v] = k;
    }
    for (uint32_t k = 1; !bad && k < t.nr_reachable; k++)
        bad += pos[t.idom[t.order[k]]] >= k;
    CHECK(!bad && t.nr_reachable == reachable && t.order[0] == 0,
          "%s-node random graph: order holds the %u reachable nodes once each, each after its idom (%u bad)",
          big_name, reachable, bad);

    /* Sums against the reference tree, summed bottom up in BFS order of its own. */
    uint64_t *w = malloc(big * sizeof *w), *sum = malloc(big * sizeof *sum), *want = calloc(big, sizeof *want);
    for (uint32_t v = 0; v < big; v++)
        w[v] = 16 + (v & 255);
    t0 = now();
    dom_subtree_sums(&t, w, sum);
    t1 = now();
    diag("dom_subtree_sums %s nodes: %.3f s", big_name, t1 - t0);
    uint32_t *kids = calloc((size_t)big + 1, sizeof *kids), *kid = malloc(big * sizeof *kid), nq = 0;
    for (uint32_t v = 1; v < big; v++)
        if (ref[v] != DOM_NONE)
            kids[ref[v]]++;
    for (uint32_t v = 1; v <= big; v++)
        kids[v] += kids[v - 1];
    for (uint32_t v = 1; v < big; v++)
        if (ref[v] != DOM_NONE)
            kid[--kids[ref[v]]] = v;
    pos[nq++] = 0; /* pos is now the BFS queue */
    for (uint32_t k = 0; k < nq; k++)
        for (uint32_t c = kids[pos[k]]; c < kids[pos[k] + 1]; c++)
            pos[nq++] = kid[c];
    for (uint32_t k = nq; k-- > 0;) {
        want[pos[k]] += w[pos[k]];
        if (k)
            want[ref[pos[k]]] += want[pos[k]];
    }
    bad = 0;
    for (uint32_t v = 0; v < big; v++)
        bad += sum[v] != want[v];
    CHECK(!bad && nq == reachable, "%s-node random graph: subtree sums as the reference tree's (%u differ)", big_name,
          bad);
    free(kids);
    free(kid);
    free(want);
    free(pos);

    free(w);
    free(sum);
    free(ref);
    dom_free(&t);
    graph_free(&g);
}

int main(void)
{
    test_known();
    test_random();
    bool small = getenv("T_DOMINATORS_SMALL") || under_valgrind();
    if (small) {
        big = 30000;
        big_name = "30k";
        diag("small run (T_DOMINATORS_SMALL or valgrind): 30,000 nodes, not 3M; no out-of-memory test");
    }
    test_list(false);
    test_list(true);
    test_big_random(!small);
    return done();
}
