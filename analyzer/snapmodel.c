/* This file implements snapmodel.h. */
#define _GNU_SOURCE
#include "snapmodel.h"

#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../schema/schema.h"
#include "dwarfvars.h"
#include "symbolize.h"
#include "usage.h"

/* The heapwatch binary's own build id (hex), from its NT_GNU_BUILD_ID note: any rebuild
 * changes it. */
static int note_of_self(struct dl_phdr_info *info, size_t size, void *out)
{
    (void)size;
    if (info->dlpi_name && *info->dlpi_name)
        return 0;   /* the executable comes first, with an empty name */
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const uint8_t *desc = p + sizeof *n + ((n->n_namesz + 3) & ~3u);
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && desc + n->n_descsz <= end) {
                char *hex = out;
                for (uint32_t j = 0; j < n->n_descsz && j < 32; j++)
                    sprintf(hex + 2 * j, "%02x", desc[j]);
                return 1;
            }
            p = desc + ((n->n_descsz + 3) & ~3u);
        }
    }
    return 1;
}

/* The version of the code whose types a cache holds: a rebuilt analyzer infers again. */
static const char *types_version(void)
{
    static char version[128];
    if (!*version) {
        char id[65] = "";
        dl_iterate_phdr(note_of_self, id);
        snprintf(version, sizeof version, "%s %s", HW_VERSION, *id ? id : __DATE__ " " __TIME__);
    }
    return version;
}

void snap_types(struct heap_types *ht, const struct heap_graph *g, struct symbolizer *sym, struct owner_set *os)
{
    void *blob;
    size_t len;
    if (db_cache_blob_get(g->db, "types", g->snap, types_version(), &blob, &len)) {
        bool ok = heap_types_decode(ht, g, sym, blob, len);
        free(blob);
        if (ok)
            return;
    }
    if (!os->owners && !os->internal)
        owners_collect(os, g, sym);
    heap_types_infer(ht, os, sym);
    blob = heap_types_encode(ht, &len);
    db_cache_blob_put(g->db, "types", g->snap, types_version(), blob, len);
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
    if (what & SNAP_TYPES) {
        snap_types(&m->ht, &m->g, m->sym, &m->os);
        m->typed = true;
    }
}

void snap_model_warn_missing_debug(struct snap_model *m)
{
    struct hmap said = { 0 };   /* module path (interned: the pointer) -> 1 */
    for (uint32_t i = 0; i < m->os.nr_owners; i++) {
        const struct owner *o = &m->os.owners[i];
        if ((o->kind != OWNER_GLOBAL && o->kind != OWNER_DATA) || !o->module || o->module[0] == '[' ||
            hmap_get(&said, (uint64_t)(uintptr_t)o->module))
            continue;
        hmap_put(&said, (uint64_t)(uintptr_t)o->module, (void *)1);
        if (!dv_has_dwarf(m->sym, o->module))
            warning("no debug information for '%s': its variables are named by their ELF symbols, without "
                    "types, or described as ranges", o->module);
    }
    hmap_clear(&said);
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
