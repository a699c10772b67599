/* This file implements snapmodel.h. */
#define _GNU_SOURCE
#include "snapmodel.h"

#include <stdlib.h>
#include <string.h>
#include "../schema/schema.h"
#include "symbolize.h"
#include "usage.h"

/* The version of the code whose types a cache holds: a rebuilt analyzer infers again. */
static const char types_version[] = HW_VERSION " " __DATE__ " " __TIME__;

static void load_types(struct snap_model *m)
{
    void *blob;
    size_t len;
    m->typed = true;
    if (db_cache_blob_get(m->db, "types", m->snap, types_version, &blob, &len)) {
        bool ok = heap_types_decode(&m->ht, &m->g, m->sym, blob, len);
        free(blob);
        if (ok)
            return;
    }
    if (!m->os.owners && !m->os.internal)
        owners_collect(&m->os, &m->g, m->sym);
    heap_types_infer(&m->ht, &m->os, m->sym);
    blob = heap_types_encode(&m->ht, &len);
    db_cache_blob_put(m->db, "types", m->snap, types_version, blob, len);
    free(blob);
}

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
    else if (what & SNAP_OWNERS)
        owners_collect(&m->os, &m->g, m->sym);
    if (what & SNAP_TYPES)
        load_types(m);
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
