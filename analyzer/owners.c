/* This file implements owners.h: attribute every root pointer to an owner (owner_names.c),
 * build the graph virtual root -> owners -> blocks in CSR form, and sum block sizes over its
 * dominator tree (dominators.c). */
#define _GNU_SOURCE
#include "owners.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dominators.h"
#include "hmap.h"
#include "json.h"
#include "owner_names.h"
#include "usage.h"

const char *const owner_kind_names[] = { "global", "static_local", "tls", "local", "register", "stack",
                                         "data", "thread", "region", "ignored", "other" };

struct owners_internal {
    struct strpool pool;
    struct dom_tree dom;
    uint32_t *first, *succ;   /* the graph the tree was built from (owners_reachable walks it) */
    uint64_t *var_offset;     /* by owner edge, in succ order (owners.h) */
    uint32_t *target_offset;  /* the same order: where the pointer points in its target */
    uint32_t *seen;           /* owners_reachable's visit stamps by node */
    uint32_t stamp;
    uint32_t *retainer;       /* owners_retainer's answers by node, computed on first use */
};

/* Owner edges (owner, target block) as the roots are named, and the owners themselves. */
struct collect {
    struct owner_set *os;
    size_t owners_alloc;
    struct hmap index;        /* identity hash -> owner index + 1 (chained by probing below) */
    uint32_t *edge_owner, *edge_target;
    uint64_t *edge_offset;    /* the word's offset in the owner's variable (owners.h) */
    uint32_t *edge_toff;      /* the pointer's offset in its target */
    size_t nr_edges, edges_alloc;
};

static uint64_t identity_hash(const struct owner *o)
{
    struct { const void *name, *function, *module, *reg; int64_t kind, tid, frame; } id = {
        o->name, o->function, o->module, o->reg, o->kind, o->tid, o->frame };
    uint64_t h = hash_bytes(&id, sizeof id);
    return h ? h : 1;
}

static bool same_owner(const struct owner *a, const struct owner *b)
{
    return a->kind == b->kind && a->name == b->name && a->function == b->function && a->module == b->module &&
           a->reg == b->reg && a->tid == b->tid && a->frame == b->frame;
}

/* The index of the owner with o's identity, added if new. Strings are interned, so equal
 * names are equal pointers. Collisions of the hash go to the next key (h + 1, ...). */
static uint32_t owner_index(struct collect *c, const struct owner *o)
{
    struct owner_set *os = c->os;
    for (uint64_t h = identity_hash(o);; h = h + 1 ? h + 1 : 1) {
        uintptr_t at = (uintptr_t)hmap_get(&c->index, h);
        if (!at) {
            ALLOC_GROW(os->owners, os->nr_owners + 1, c->owners_alloc);
            os->owners[os->nr_owners] = *o;
            hmap_put(&c->index, h, (void *)(uintptr_t)(os->nr_owners + 1));
            return os->nr_owners++;
        }
        if (same_owner(&os->owners[at - 1], o))
            return (uint32_t)(at - 1);
    }
}

static void add_edge(struct collect *c, uint32_t owner, uint32_t target, uint64_t offset, uint32_t toff)
{
    if (c->nr_edges == c->edges_alloc) {
        c->edges_alloc = c->edges_alloc ? 2 * c->edges_alloc : 1024;
        c->edge_owner = xrealloc(c->edge_owner, c->edges_alloc * sizeof *c->edge_owner);
        c->edge_target = xrealloc(c->edge_target, c->edges_alloc * sizeof *c->edge_target);
        c->edge_offset = xrealloc(c->edge_offset, c->edges_alloc * sizeof *c->edge_offset);
        c->edge_toff = xrealloc(c->edge_toff, c->edges_alloc * sizeof *c->edge_toff);
    }
    c->edge_owner[c->nr_edges] = owner;
    c->edge_offset[c->nr_edges] = offset;
    c->edge_toff[c->nr_edges] = toff;
    c->edge_target[c->nr_edges++] = target;
}

/* A dlopen'd module's TLS block of one thread: its pointers belong to __thread variables. */
struct tls_block {
    uint32_t block, module;
    int tid;
};

static void collect_owners(struct collect *c, const struct heap_graph *g, struct owner_namer *namer,
                           uint8_t *is_tls_block)
{
    struct tls_block *tls = NULL;
    size_t nr_tls = 0, tls_alloc = 0;
    for (size_t i = 0; i < g->nr_root_edges; i++) {
        const struct hg_root_edge *e = &g->root_edges[i];
        struct owner o;
        uint32_t m = owner_dtv_module(namer, e->root, e->offset);
        if (m != HG_NONE && !is_tls_block[e->target]) {
            is_tls_block[e->target] = 1;
            ALLOC_GROW(tls, nr_tls + 1, tls_alloc);
            tls[nr_tls++] = (struct tls_block){ e->target, m, g->roots[e->root].tid };
        }
        uint64_t off = owner_name_root_word(namer, e->root, e->offset, &o);
        add_edge(c, owner_index(c, &o), e->target, off, e->target_offset);
    }
    for (size_t i = 0; i < nr_tls; i++) {
        uint32_t b = tls[i].block;
        for (uint32_t e = g->edge_first[b]; e < g->edge_first[b + 1]; e++) {
            struct owner o;
            uint64_t off = owner_name_tls_block_word(namer, tls[i].module, tls[i].tid, (uint64_t)g->edge_word[e] * 8, &o);
            o.address += g->addr[b];
            add_edge(c, owner_index(c, &o), g->edge_target[e], off, hg_edge_toff(g, e));
        }
    }
    free(tls);
    /* A heapwatch_ignore()d block is a root of the mark: it owns itself. */
    for (uint32_t k = 0; k < g->nr_blocks; k++) {
        if ((g->cls[k] & 3) || !(g->cls[k] >> 2 & 2))
            continue;
        char name[64];
        snprintf(name, sizeof name, "ignored block 0x%llx", (unsigned long long)g->addr[k]);
        struct owner o = { .kind = OWNER_IGNORED, .name = strpool_intern(&((struct owners_internal *)c->os->internal)->pool, name),
                           .frame = -1, .address = g->addr[k] };
        add_edge(c, owner_index(c, &o), k, OWNER_NO_OFFSET, 0);
    }
}

/* The CSR graph: node 0 -> every owner; owner i (node 1 + i) -> its targets; block k (node
 * first_block + k) -> the blocks it points at, but for dynamic TLS blocks, whose pointers
 * went to their variables. */
static void build_graph(struct owner_set *os, struct collect *c, const uint8_t *is_tls_block)
{
    const struct heap_graph *g = os->g;
    struct owners_internal *in = os->internal;
    uint32_t K = os->nr_owners, fb = 1 + K;
    uint64_t n = (uint64_t)fb + g->nr_blocks;
    uint64_t m = K + c->nr_edges + g->nr_edges;
    if (n >= UINT32_MAX || m >= UINT32_MAX)
        die(EXIT_SYSTEM, "snapshot %lld is too large for the owners report", (long long)g->snap);
    os->first_block = fb;
    uint32_t *first = xcalloc(n + 1, sizeof *first);
    uint32_t *succ = xmalloc((m ? m : 1) * sizeof *succ);
    first[1] = K;
    for (size_t e = 0; e < c->nr_edges; e++)
        first[2 + c->edge_owner[e]]++;
    for (uint32_t i = 1; i <= K; i++)
        first[i + 1] += first[i];
    uint32_t *fill = xmalloc(((size_t)K + 1) * sizeof *fill);
    for (uint32_t i = 0; i < K; i++) {
        succ[i] = 1 + i;
        fill[i] = first[1 + i];
    }
    in->var_offset = xmalloc((c->nr_edges ? c->nr_edges : 1) * sizeof *in->var_offset);
    in->target_offset = xmalloc((c->nr_edges ? c->nr_edges : 1) * sizeof *in->target_offset);
    for (size_t e = 0; e < c->nr_edges; e++) {
        uint32_t at = fill[c->edge_owner[e]]++;
        succ[at] = fb + c->edge_target[e];
        in->var_offset[at - K] = c->edge_offset[e];
        in->target_offset[at - K] = c->edge_toff[e];
    }
    free(fill);
    uint32_t at = first[fb];
    for (uint32_t k = 0; k < g->nr_blocks; k++) {
        first[fb + k] = at;
        if (!is_tls_block[k])
            for (uint32_t e = g->edge_first[k]; e < g->edge_first[k + 1]; e++)
                succ[at++] = fb + g->edge_target[e];
    }
    first[n] = at;
    in->first = first;
    in->succ = succ;
    os->first = first;
    os->succ = succ;
    os->var_offset = in->var_offset;
    os->target_offset = in->target_offset;
    os->nr_nodes = (uint32_t)n;
}

void owners_collect(struct owner_set *os, const struct heap_graph *g, struct symbolizer *sym)
{
    memset(os, 0, sizeof *os);
    os->g = g;
    struct owners_internal *in = xcalloc(1, sizeof *in);
    os->internal = in;
    struct collect c = { .os = os };
    uint8_t *is_tls_block = xcalloc(g->nr_blocks + 1, 1);
    struct owner_namer *namer = owner_namer_new(g, sym, &in->pool);
    collect_owners(&c, g, namer, is_tls_block);
    owner_namer_free(namer);
    hmap_clear(&c.index);
    build_graph(os, &c, is_tls_block);
    free(is_tls_block);
    free(c.edge_owner);
    free(c.edge_target);
    free(c.edge_offset);
    free(c.edge_toff);
    for (uint32_t i = 0; i < os->nr_owners; i++)
        os->owners[i].node = 1 + i;
}

void owners_compute(struct owner_set *os, const struct heap_graph *g, struct symbolizer *sym)
{
    owners_collect(os, g, sym);
    struct owners_internal *in = os->internal;
    if (dom_build(&in->dom, os->nr_nodes, os->first, os->succ) < 0)
        die(EXIT_SYSTEM, "out of memory building the dominator tree of snapshot %lld", (long long)g->snap);
    uint32_t n = in->dom.n, fb = os->first_block;
    uint64_t *bytes = xcalloc(n ? n : 1, sizeof *bytes);
    uint64_t *objects = xcalloc(n ? n : 1, sizeof *objects);
    for (uint32_t k = 0; k < g->nr_blocks; k++) {
        bytes[fb + k] = g->size[k];
        objects[fb + k] = 1;
    }
    dom_subtree_sums(&in->dom, bytes, bytes);
    dom_subtree_sums(&in->dom, objects, objects);
    os->idom = in->dom.idom;
    os->retained = bytes;
    os->retained_objects_of = xmalloc((n ? n : 1) * sizeof *os->retained_objects_of);
    for (uint32_t v = 0; v < n; v++)
        os->retained_objects_of[v] = objects[v] > UINT32_MAX ? UINT32_MAX : (uint32_t)objects[v];
    for (uint32_t i = 0; i < os->nr_owners; i++) {
        struct owner *o = &os->owners[i];
        o->retained_bytes = bytes[o->node];
        o->retained_objects = objects[o->node];
    }
    os->reachable_bytes = n ? bytes[0] : 0;
    os->reachable_objects = n ? objects[0] : 0;
    for (uint32_t k = 0; k < g->nr_blocks; k++) {
        uint32_t v = fb + k;
        if (os->idom[v] == 0) {
            os->shared_bytes += bytes[v];
            os->shared_objects += objects[v];
        } else if (os->idom[v] == DOM_NONE && !(g->cls[k] & 3)) {
            os->unattributed_bytes += g->size[k];
            os->unattributed_objects++;
        }
    }
    free(objects);
}

void owners_reachable(struct owner_set *os, uint32_t i)
{
    struct owners_internal *in = os->internal;
    const struct heap_graph *g = os->g;
    uint32_t n = os->nr_nodes, fb = os->first_block;
    if (!in->seen)
        in->seen = xcalloc(n, sizeof *in->seen);
    if (++in->stamp == 0) {
        memset(in->seen, 0, (size_t)n * sizeof *in->seen);
        in->stamp = 1;
    }
    uint32_t *stack = xmalloc((size_t)n * sizeof *stack), top = 0;
    struct owner *o = &os->owners[i];
    o->reachable_bytes = o->reachable_objects = 0;
    stack[top++] = o->node;
    in->seen[o->node] = in->stamp;
    while (top) {
        uint32_t v = stack[--top];
        if (v >= fb) {
            o->reachable_bytes += g->size[v - fb];
            o->reachable_objects++;
        }
        for (uint32_t e = in->first[v]; e < in->first[v + 1]; e++) {
            uint32_t w = in->succ[e];
            if (in->seen[w] != in->stamp) {
                in->seen[w] = in->stamp;
                stack[top++] = w;
            }
        }
    }
    free(stack);
    o->reachable_known = true;
}

void owners_release(struct owner_set *os)
{
    struct owners_internal *in = os->internal;
    if (in) {
        dom_free(&in->dom);
        free(in->first);
        free(in->succ);
        free(in->seen);
        free(in->var_offset);
        free(in->target_offset);
        free(in->retainer);
        strpool_clear(&in->pool);
        free(in);
    }
    free(os->owners);
    free(os->retained);
    free(os->retained_objects_of);
    memset(os, 0, sizeof *os);
}

uint32_t owners_retainer(struct owner_set *os, uint32_t v)
{
    struct owners_internal *in = os->internal;
    if (!in->retainer) {
        /* Preorder puts every node after its immediate dominator. */
        in->retainer = xmalloc((in->dom.n ? in->dom.n : 1) * sizeof *in->retainer);
        for (uint32_t i = 0; i < in->dom.n; i++)
            in->retainer[i] = i ? UINT32_MAX : 0;
        for (uint32_t i = 1; i < in->dom.nr_reachable; i++) {
            uint32_t w = in->dom.order[i], up = in->dom.idom[w];
            in->retainer[w] = w <= os->nr_owners ? w : up ? in->retainer[up] : 0;
        }
    }
    return v < in->dom.n ? in->retainer[v] : DOM_NONE;
}

void owner_json_identity(struct json *j, const struct owner *o)
{
    json_key(j, "name"); json_str(j, o->name);
    json_key(j, "kind"); json_str(j, owner_kind_names[o->kind]);
    json_key(j, "function"); json_str(j, o->function);
    json_key(j, "module"); json_str(j, o->module);
    json_key(j, "type"); json_str(j, o->type);
    json_key(j, "thread");
    if (o->tid) json_int(j, o->tid); else json_null(j);
    json_key(j, "frame");
    if (o->frame >= 0) json_int(j, o->frame); else json_null(j);
    json_key(j, "register"); json_str(j, o->reg);
    json_key(j, "address");
    if (o->address) json_int(j, (int64_t)o->address); else json_null(j);
}
