/* dominators.h: immediate dominators of a directed graph from one root, and subtree sums
 * over the dominator tree (retained sizes).
 *
 * Graph in CSR form: nodes 0..n-1, root 0, the successors of v are succ[first[v]] ..
 * succ[first[v + 1] - 1] (so first has n + 1 entries, and every succ[] is below n).
 * Edges may repeat, may be self loops and may point back at the root. d dominates v when
 * every path from 0 to v goes through d; the immediate dominator of v != 0 is its closest
 * strict dominator. `heapwatch owners` makes 0 a virtual root whose successors are the
 * owners (roots), so that a block held from two owners is retained by neither: its immediate
 * dominator is 0. Context: analyzer only. */
#ifndef HW_DOMINATORS_H
#define HW_DOMINATORS_H

#include <stdint.h>

#define DOM_NONE UINT32_MAX

struct dom_tree {
    uint32_t n;
    uint32_t *idom;          /* n entries; idom[0] = 0; DOM_NONE for a node not reachable from 0 */
    uint32_t *order;         /* nr_reachable entries: the reachable nodes in DFS preorder from 0
                              * (order[0] = 0), successors taken in CSR order: every node comes
                              * after its immediate dominator (a DFS tree ancestor) */
    uint32_t nr_reachable;
};

/* Compute the dominator tree of the graph (n nodes, first[n] edges). Returns 0, or -1 when out
 * of memory (t zeroed; nothing printed: the caller says what it was doing). n = 0 gives an
 * empty tree (no root, nothing reachable). No recursion: the graph may be a linked list of
 * millions of nodes. Time O(m log n), near linear in practice. Peak memory: 7 words per node
 * (the result's 2 included) and one per edge that goes back to an earlier node in DFS
 * preorder. */
int dom_build(struct dom_tree *t, uint32_t n, const uint32_t *first, const uint32_t *succ);

/* sum[v] = weight[v] + the sums of v's children in the dominator tree, for reachable v (the
 * retained size of v when weight is the block sizes); 0 for unreachable ones. One pass over
 * order in reverse. Both arrays have t->n entries; sum may be weight (summed in place). */
void dom_subtree_sums(const struct dom_tree *t, const uint64_t *weight, uint64_t *sum);

/* Free t's arrays and zero it; t may be zeroed already. */
void dom_free(struct dom_tree *t);

#endif
