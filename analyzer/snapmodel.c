/* This file implements snapmodel.h. */
#define _GNU_SOURCE
#include "snapmodel.h"

#include <string.h>
#include "symbolize.h"
#include "usage.h"

void snap_model_open(struct snap_model *m, const char *spec, unsigned what)
{
    memset(m, 0, sizeof *m);
    m->db = db_open_snapshot_spec(spec, &m->snap);
    db_snapshot_info(m->db, m->snap, &m->si);
    db_require_heap_walk(m->db, &m->si);
    if (!heap_graph_load(&m->g, m->db, m->snap))
        die(EXIT_INPUT, "snapshot %lld of '%s' has no stored pointers (written by an older heapwatch)",
            (long long)m->snap, m->db->path);
    m->sym = sym_new();
    if (what & SNAP_RETAINED)
        owners_compute(&m->os, &m->g, m->sym);
    else
        owners_collect(&m->os, &m->g, m->sym);
    if (what & SNAP_TYPES) {
        heap_types_infer(&m->ht, &m->os, m->sym);
        m->typed = true;
    }
}

void snap_model_close(struct snap_model *m)
{
    if (m->typed)
        heap_types_release(&m->ht);
    owners_release(&m->os);
    sym_free(m->sym);
    heap_graph_release(&m->g);
    snapshot_info_release(&m->si);
    db_close(m->db);
    memset(m, 0, sizeof *m);
}
