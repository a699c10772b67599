/* owners.h: which variables hold a walked snapshot's heap, with retained and reachable
 * sizes, as Go's viewcore and Eclipse MAT answer it.
 *
 * Every pointer out of a root is attributed to an owner (owner_names.c): a global or
 * function-static variable, a __thread variable of a thread, a local or parameter of a
 * thread's frame (in its stack slot, or in a saved register), a registered region, a thread
 * descriptor slot, a heapwatch_ignore()d block, or, when nothing names it, the range as
 * precisely as known (".bss of libfoo.so+0x1234", "stack of thread 12 in parse (frame 3)").
 * Pointers stored in a dlopen'd module's dynamic TLS block (a heap block the thread's DTV
 * points at) are attributed to that module's __thread variables.
 *
 * Retained size (MAT's): the dominator tree of the graph whose virtual root points at every
 * owner, whose owners point at the blocks their words point at, and whose blocks point at
 * each other; an owner retains its subtree: what would become unreachable if the variable
 * were cleared. A block reachable from two owners is retained by neither: its subtree hangs
 * under the virtual root, and is summed as `shared`, so that the owners' retained sizes plus
 * shared is every reachable block counted once. Reachable size: every block reachable from
 * the owner (blocks shared with other owners included), computed for the owners asked for.
 *
 * Context: analyzer only. */
#ifndef HW_OWNERS_H
#define HW_OWNERS_H

#include <stdbool.h>
#include <stdint.h>
#include "heapgraph.h"

struct symbolizer;

#define OWNER_NO_OFFSET UINT64_MAX

enum owner_kind {
    OWNER_GLOBAL,        /* a global or file-static variable */
    OWNER_STATIC_LOCAL,  /* a function's static variable */
    OWNER_TLS,           /* a __thread variable of one thread */
    OWNER_LOCAL,         /* a local or parameter in a thread's frame (stack slot or register) */
    OWNER_REGISTER,      /* a saved register of a stopped thread that no local claims */
    OWNER_STACK,         /* a stack slot of a frame that no local claims */
    OWNER_DATA,          /* a module's writable data that no variable claims */
    OWNER_THREAD,        /* a thread's descriptor, TLS block or DTV that no variable claims */
    OWNER_REGION,        /* heapwatch_register_root() */
    OWNER_IGNORED,       /* a heapwatch_ignore()d block: a root of its own */
    OWNER_OTHER,         /* thread start arguments, exited threads' results, altstacks */
};
extern const char *const owner_kind_names[];   /* "global", "static_local", ... */

struct owner {
    enum owner_kind kind;
    const char *name;        /* the variable's name, or a description of the range */
    const char *function;    /* static locals and locals: the function; NULL otherwise */
    const char *module;      /* the module of a variable or data range, NULL otherwise */
    const char *type;        /* the declared type ("struct cache *"), NULL when unknown */
    int tid;                 /* per-thread kinds, 0 otherwise */
    int frame;               /* OWNER_LOCAL, OWNER_STACK: frame depth (0 = innermost); -1 */
    const char *reg;         /* in a register: its name ("rbx"); NULL otherwise */
    uint64_t address;        /* the variable's (or range's) runtime address; 0 for a register */
    uint32_t type_module;    /* the module whose DWARF declares type_id (index into g->modules) */
    uint32_t type_id;        /* the declared type's dv_type_id; 0 when unknown */
    uint64_t retained_bytes, retained_objects;
    uint64_t reachable_bytes, reachable_objects;   /* owners_reachable() */
    bool reachable_known;
    uint32_t node;           /* its node in the dominator tree */
};

struct owner_set {
    const struct heap_graph *g;
    struct owner *owners;
    uint32_t nr_owners;
    uint64_t reachable_bytes, reachable_objects;   /* every block some owner reaches, once */
    uint64_t shared_bytes, shared_objects;         /* reached from several, retained by none */
    uint64_t unattributed_bytes, unattributed_objects;  /* reachable blocks (class 0) no owner
                                                   * reaches: should be none, said if not */
    /* The dominator tree over nodes: 0 the virtual root, 1 .. nr_owners the owners (owner i
     * is node i + 1), then the blocks (block k is node first_block + k). */
    uint32_t first_block;
    uint32_t *idom;          /* DOM_NONE for nodes no owner reaches */
    uint64_t *retained;      /* bytes by node */
    uint32_t *retained_objects_of;   /* objects by node */
    /* The graph the tree was built from, in CSR form (node v's successors are succ[first[v]]
     * .. succ[first[v + 1] - 1]). The successors of owner nodes come with var_offset[e - K]
     * (K = nr_owners: the root's edges come first): the byte offset from the owner's address
     * (within its variable) of the word that holds the pointer, OWNER_NO_OFFSET when the
     * owner has no address. A block's successors are its pointers in g's order (edge_first), but
     * for a dynamic TLS block's, which became its variables' owner edges. */
    const uint32_t *first, *succ;
    const uint64_t *var_offset;
    const uint32_t *target_offset;   /* the same edges: the pointer's byte offset in its target
                                      * block (0 at its start; 0 before schema 5) */
    uint32_t nr_nodes;       /* of that graph: 1 + nr_owners + g->nr_blocks */
    void *internal;
};

/* Attribute and build the dominator tree of g. Dies on out of memory. */
void owners_compute(struct owner_set *os, const struct heap_graph *g, struct symbolizer *sym);
/* Only attribute: owners and the graph (first, succ, var_offset), no tree (retained sizes 0,
 * idom NULL, no owners_retainer): what types and paths need. */
void owners_collect(struct owner_set *os, const struct heap_graph *g, struct symbolizer *sym);
/* Fill reachable_* of owners[i] (a walk from it). */
void owners_reachable(struct owner_set *os, uint32_t i);
void owners_release(struct owner_set *os);
/* o's identity into an open JSON object: "name", "kind", "function", "module", "type",
 * "thread", "frame", "register", "address" (null when not known). */
struct json;
void owner_json_identity(struct json *j, const struct owner *o);
/* The node (1 .. nr_owners) of the owner whose dominator subtree holds node v (its
 * retainer); 0 for shared nodes (under the virtual root directly), DOM_NONE (UINT32_MAX) for
 * nodes no owner reaches. Computed once for all
 * nodes on first use (one pass over the tree in preorder). */
uint32_t owners_retainer(struct owner_set *os, uint32_t v);

#endif
