/* heapgraph.h: one walked snapshot's heap as a graph in memory, for the reports that follow
 * pointers (owners, types, path): every block by block number (address order), the pointers
 * between blocks by source block, the pointers out of roots, the roots themselves, the
 * threads with their unwound frames, and the process's modules.
 *
 * Memory: about 25 bytes per block and 8 per pointer between blocks, so that the bench's 3
 * million blocks (and 6 million pointers) fit in well under 200 bytes a block with the
 * dominator tree built on top (owners.c). What type inference reads costs only where the
 * snapshot has it: 8 bytes per block when any block has a vtable pointer candidate, 4 per
 * pointer when any pointer points inside its target (schema 5).
 *
 * Context: analyzer only. */
#ifndef HW_HEAPGRAPH_H
#define HW_HEAPGRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "db.h"

#define HG_NONE UINT32_MAX

enum hg_root_kind {
    HG_ROOT_GLOBAL, HG_ROOT_TLS, HG_ROOT_DTV, HG_ROOT_STACK, HG_ROOT_REGISTERS, HG_ROOT_ALTSTACK,
    HG_ROOT_REGION, HG_ROOT_EXITED_THREAD, HG_ROOT_THREAD_START, HG_ROOT_OTHER
};

struct hg_root {
    enum hg_root_kind kind;
    uint32_t module;         /* index into modules for a global root; HG_NONE otherwise */
    int tid;                 /* per-thread kinds; 0 otherwise */
    uint64_t start, end;
};

/* A pointer out of a root: the word at roots[root].start + offset points into block target,
 * target_offset bytes from its start (0: at its start; saturated at UINT32_MAX; always 0 in
 * databases before schema 5, which did not record it). */
struct hg_root_edge {
    uint32_t root, target;
    uint64_t offset;
    uint32_t target_offset;
};

struct hg_module {
    int64_t id;
    char *path, *build_id;   /* build_id NULL when none */
    uint64_t bias, text_start, text_end, tls_modid, tls_size, tls_offset;
};

struct hg_frame {
    uint64_t pc, cfa;        /* pc: where it stopped (depth 0) or a return address */
};

struct hg_thread {
    int tid;
    char *state;             /* 'stopped' | 'caller' | 'unstopped' */
    uint64_t sp, tp, stack_start, stack_end;
    struct hg_frame *frames; /* innermost first */
    uint32_t nr_frames;
};

struct heap_graph {
    struct hwdb *db;
    int64_t snap;
    uint32_t nr_blocks;
    uint64_t *addr, *size;   /* by block number, addr ascending */
    int64_t *stack;          /* allocation stack id, 0 = not sampled */
    uint8_t *cls;            /* class (0 reachable, 1 indirect, 2 direct leak) | flags << 2 */
    /* By block number: the block's first word when the walk found it pointing into a loaded
     * module's non-executable segments (schema 5): a C++ polymorphic object's vtable pointer
     * (a runtime address: subtract its module's load bias before dv_vtable_class), or a
     * false candidate such as a pointer to a global, which dv_vtable_class rejects; 0 = none.
     * NULL when no block has one (always before schema 5): read it with hg_vptr. */
    uint64_t *vptr;
    /* Pointers between blocks: those out of block k are edge_target[edge_first[k] ..
     * edge_first[k + 1]), found at word offsets edge_word[...] of block k, in offset order.
     * edge_toff[e] is where pointer e points in its target, in bytes from the target's start
     * (0: the start; interior pointers > 0; saturated at UINT32_MAX). NULL when every pointer
     * points at its target's start (always before schema 5): read it with hg_edge_toff. */
    uint32_t *edge_first, *edge_target, *edge_word;
    uint32_t *edge_toff;
    size_t nr_edges;
    struct hg_root_edge *root_edges;   /* in root, then offset order */
    size_t nr_root_edges;
    struct hg_root *roots;   /* roots[i] is the root of id i + 1 */
    uint32_t nr_roots;
    struct hg_module *modules;
    uint32_t nr_modules;
    struct hg_thread *threads;   /* by tid */
    uint32_t nr_threads;
};

/* Load snapshot snap. False (g empty) when the snapshot has no packed blocks and pointers
 * (a counters snapshot, or one written before pointers were stored); dies (3) on corrupt
 * data, as the other readers of the packed tables do. */
bool heap_graph_load(struct heap_graph *g, struct hwdb *db, int64_t snap);
void heap_graph_release(struct heap_graph *g);

/* The block whose [addr, addr + size) holds a, or HG_NONE. */
uint32_t hg_block_at(const struct heap_graph *g, uint64_t a);
/* The thread with this tid, or NULL. */
const struct hg_thread *hg_thread(const struct heap_graph *g, int tid);
/* The module whose text holds pc (the newest load when an unloaded one shared the range), or
 * HG_NONE. */
uint32_t hg_module_of_pc(const struct heap_graph *g, uint64_t pc);
/* Block numbers of a class: whether the block is unreachable (class 1 or 2). */
static inline bool hg_unreachable(const struct heap_graph *g, uint32_t k) { return (g->cls[k] & 3) != 0; }
/* Block k's vtable pointer candidate (runtime address), 0 if none. */
static inline uint64_t hg_vptr(const struct heap_graph *g, uint32_t k) { return g->vptr ? g->vptr[k] : 0; }
/* Pointer e's byte offset within its target (index into edge_target), 0 at the start. */
static inline uint32_t hg_edge_toff(const struct heap_graph *g, size_t e) { return g->edge_toff ? g->edge_toff[e] : 0; }

#endif
