/* snapmodel.h: one walked snapshot loaded for the reports that follow pointers (owners,
 * types, path): its graph (heapgraph.h), its owners with the dominator tree (owners.h) and,
 * when asked, its blocks' types (heaptypes.h). Context: analyzer only. */
#ifndef HW_SNAPMODEL_H
#define HW_SNAPMODEL_H

#include <stdbool.h>
#include "db.h"
#include "heapgraph.h"
#include "heaptypes.h"
#include "owners.h"

struct symbolizer;

struct snap_model {
    struct hwdb *db;
    int64_t snap;
    struct snapshot_info si;
    struct heap_graph g;
    struct symbolizer *sym;
    struct owner_set os;
    struct heap_types ht;
    bool typed;
};

enum {
    SNAP_RETAINED = 1,   /* the dominator tree: owners' retained sizes (owners_compute) */
    SNAP_TYPES = 2,      /* every block's type (from the database's cache when it has them) */
    SNAP_OWNERS = 4,     /* the owners and their pointers, without the tree (owners_collect) */
};

/* Open the snapshot named by spec ("[DB:]ID", as the report commands take it), load its
 * graph, name its owners and compute what `what` (SNAP_*) asks for. Dies (3) with one message
 * on a snapshot without a heap walk or without stored pointers. */
void snap_model_open(struct snap_model *m, const char *spec, unsigned what);
void snap_model_close(struct snap_model *m);
/* A warning on stderr for each module that holds owners but has no DWARF (its variables are
 * then ELF symbols without types, or ranges). */
void snap_model_warn_missing_debug(struct snap_model *m);
/* g's block types into ht: from the database's cache, else inferred (naming os's owners
 * first unless os has them: os zeroed, or owners_collect'ed or owners_compute'd) and
 * cached. The caller releases ht and os. */
void snap_types(struct heap_types *ht, const struct heap_graph *g, struct symbolizer *sym, struct owner_set *os);

#endif
