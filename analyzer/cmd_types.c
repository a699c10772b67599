/* This file implements `heapwatch types`: a walked snapshot's blocks by inferred type
 * (heaptypes.h), count and bytes, largest first, as viewcore's histogram; what stays
 * untyped is grouped by allocation site. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "json.h"
#include "options.h"
#include "report.h"
#include "sites.h"
#include "snapmodel.h"
#include "symcache.h"
#include "usage.h"

static const struct cmd_usage usage_types = {
    "types", "[SNAP]", "A walked snapshot's heap objects by type, inferred from DWARF: declared pointer types\n"
    "followed from the variables that hold the heap through struct members and array\n"
    "elements, C++ vtables, and allocation sites that allocate one type. Objects left untyped\n"
    "are grouped by allocation site.",
    SNAP_OPERAND_HELP, NULL,
};

struct type_row {
    const char *type;     /* group name (heaptypes.h ht_block_group) */
    struct site site;     /* for (unknown): where they were allocated */
    uint64_t objects, bytes, reachable_bytes;
    uint64_t by_how[HT_NR_HOW];
};

struct type_rows {
    struct type_row *v;
    size_t nr, alloc;
    struct hmap index;
};

static struct type_row *row_for(struct type_rows *rows, const char *type, const struct site *site)
{
    uint64_t key = hash_bytes(&type, sizeof type);
    if (site) {
        uint32_t ids[2] = { site->key_at, site->key_caller };
        key ^= hash_bytes(ids, sizeof ids) * 31;
    }
    key = key ? key : 1;
    for (;; key = key + 1 ? key + 1 : 1) {
        uintptr_t at = (uintptr_t)hmap_get(&rows->index, key);
        if (!at)
            break;
        struct type_row *r = &rows->v[at - 1];
        if (r->type == type && (!site || (r->site.key_at == site->key_at && r->site.key_caller == site->key_caller &&
                                          r->site.at == site->at)))
            return r;
    }
    ALLOC_GROW(rows->v, rows->nr + 1, rows->alloc);
    struct type_row *r = &rows->v[rows->nr];
    memset(r, 0, sizeof *r);
    r->type = type;
    if (site)
        r->site = *site;
    hmap_put(&rows->index, key, (void *)(uintptr_t)++rows->nr);
    return r;
}

static int by_bytes(const void *a, const void *b)
{
    const struct type_row *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    if (x->objects != y->objects)
        return x->objects > y->objects ? -1 : 1;
    return strcmp(x->type, y->type);
}

static void collect(struct snap_model *m, struct symcache *sc, struct type_rows *rows)
{
    const struct heap_graph *g = &m->g;
    struct hmap sites = { 0 };   /* stack id -> struct site * */
    for (uint32_t k = 0; k < g->nr_blocks; k++) {
        const char *type = ht_block_group(&m->ht, k);
        const struct site *site = NULL;
        if (!m->ht.type_of[k]) {
            site = hmap_get(&sites, (uint64_t)g->stack[k]);
            if (!site) {
                struct site *s = xmalloc(sizeof *s);
                site_of_stack(m->db, sc, g->stack[k], s);
                hmap_put(&sites, (uint64_t)g->stack[k], s);
                site = s;
            }
        }
        struct type_row *r = row_for(rows, type, site);
        r->objects++;
        r->bytes += g->size[k];
        if (!hg_unreachable(g, k))
            r->reachable_bytes += g->size[k];
        r->by_how[m->ht.type_of[k] ? m->ht.how[k] : HT_NONE]++;
    }
    HMAP_FOR_EACH(&sites, i)
        free(sites.vals[i]);
    if (sites.has_zero)
        free(sites.zero_val);
    hmap_clear(&sites);
    hmap_clear(&rows->index);
    if (rows->nr)
        qsort(rows->v, rows->nr, sizeof *rows->v, by_bytes);
}

static uint64_t typed_bytes(const struct snap_model *m)
{
    uint64_t b = 0;
    for (uint32_t k = 0; k < m->g.nr_blocks; k++)
        if (m->ht.type_of[k])
            b += m->g.size[k];
    return b;
}

static uint64_t total_bytes(const struct snap_model *m)
{
    uint64_t b = 0;
    for (uint32_t k = 0; k < m->g.nr_blocks; k++)
        b += m->g.size[k];
    return b;
}

static void print_text(const struct snap_model *m, const struct type_rows *rows, size_t shown)
{
    char a[32], b[32], name[2048], site[1024];
    const struct heap_types *ht = &m->ht;
    uint64_t total = total_bytes(m), typed = typed_bytes(m);
    printf("Snapshot %lld of %s (%s%s%s): %u object(s), %s; %.1f%% of the bytes typed\n", (long long)m->snap,
           m->db->path, m->si.trigger, m->si.label ? ": " : "", m->si.label ? m->si.label : "", m->g.nr_blocks,
           fmt_value(a, sizeof a, (int64_t)total, V_INUSE_SPACE), total ? 100.0 * (double)typed / (double)total : 0.0);
    printf("Typed objects: %llu by vtable, %llu by declared pointer types, %llu by allocation site; %llu conflict(s)\n",
           (unsigned long long)ht->by_how[HT_VTABLE], (unsigned long long)ht->by_how[HT_DECLARED],
           (unsigned long long)ht->by_how[HT_SITE], (unsigned long long)ht->conflicts);
    printf("%12s %9s %12s  %s\n", "bytes", "objects", "reachable", "type");
    for (size_t i = 0; i < shown; i++) {
        const struct type_row *r = &rows->v[i];
        if (r->type == ht->types[0].name)
            snprintf(name, sizeof name, "%s from %s", r->type, site_text(&r->site, site, sizeof site));
        else
            snprintf(name, sizeof name, "%s", r->type);
        printf("%12s %9llu %12s  %s\n", fmt_value(a, sizeof a, (int64_t)r->bytes, V_INUSE_SPACE),
               (unsigned long long)r->objects, fmt_value(b, sizeof b, (int64_t)r->reachable_bytes, V_INUSE_SPACE), name);
    }
    if (shown < rows->nr)
        printf("%12s %9s %12s  (%zu more row(s); -n to show them)\n", "", "", "", rows->nr - shown);
}

static void json_u64(struct json *j, const char *key, uint64_t v)
{
    json_key(j, key);
    json_int(j, (int64_t)v);
}

static void print_json(const struct snap_model *m, const struct type_rows *rows, size_t shown)
{
    const struct heap_types *ht = &m->ht;
    struct json j;
    json_init(&j, stdout);
    json_begin_object(&j);
    json_key(&j, "db"); json_str(&j, m->db->path);
    json_key(&j, "snapshot"); json_int(&j, m->snap);
    json_key(&j, "label"); json_str(&j, m->si.label);
    json_u64(&j, "objects", m->g.nr_blocks);
    json_u64(&j, "bytes", total_bytes(m));
    json_u64(&j, "typed_bytes", typed_bytes(m));
    json_key(&j, "typed_objects");
    json_begin_object(&j);
    for (int h = HT_VTABLE; h < HT_NR_HOW; h++)
        json_u64(&j, ht_how_names[h], ht->by_how[h]);
    json_end_object(&j);
    json_u64(&j, "untyped_objects", ht->by_how[HT_NONE]);
    json_u64(&j, "conflicts", ht->conflicts);
    json_u64(&j, "sites_lent", ht->sites_lent);
    json_u64(&j, "sites_mixed", ht->sites_mixed);
    json_u64(&j, "nr_rows", rows->nr);
    json_key(&j, "types");
    json_begin_array(&j);
    for (size_t i = 0; i < shown; i++) {
        const struct type_row *r = &rows->v[i];
        bool unknown = r->type == ht->types[0].name;
        json_begin_object(&j);
        json_key(&j, "type"); json_str(&j, r->type);
        json_u64(&j, "objects", r->objects);
        json_u64(&j, "bytes", r->bytes);
        json_u64(&j, "reachable_bytes", r->reachable_bytes);
        json_key(&j, "typed_by");
        json_begin_object(&j);
        for (int h = HT_VTABLE; h < HT_NR_HOW; h++)
            json_u64(&j, ht_how_names[h], r->by_how[h]);
        json_end_object(&j);
        json_key(&j, "site");
        if (unknown) site_json(&j, &r->site); else json_null(&j);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_end_object(&j);
    json_finish(&j);
}

int cmd_types(int argc, char **argv)
{
    bool json = false;
    size_t nodecount = 0;
    const struct opt opts[] = {
        OPT_NODECOUNT(&nodecount),
        OPT_JSON(&json),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_types, 0);
    if (argc > 1)
        die_with_usage(opts, &usage_types, "too many arguments");
    if (!nodecount)
        nodecount = json ? SIZE_MAX : 20;
    struct snap_model m;
    snap_model_open(&m, argc ? argv[0] : "latest", SNAP_TYPES);
    struct symcache *sc = symcache_open(m.db);
    struct type_rows rows = { 0 };
    collect(&m, sc, &rows);
    size_t shown = rows.nr < nodecount ? rows.nr : nodecount;
    if (json)
        print_json(&m, &rows, shown);
    else
        print_text(&m, &rows, shown);
    free(rows.v);
    symcache_close(sc);
    snap_model_close(&m);
    return 0;
}
