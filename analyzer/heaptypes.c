/* This file implements heaptypes.h: seed block types from the owners' declared types (and
 * vtables), then propagate them breadth-first through pointer members, then lend the types
 * of agreeing allocation sites to their untyped blocks and propagate again. */
#define _GNU_SOURCE
#include "heaptypes.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dominators.h"
#include <zlib.h>
#include "../schema/chunk.h"
#include "dwarfvars.h"
#include "typewalk.h"
#include "owners.h"
#include "usage.h"

const char *const ht_how_names[HT_NR_HOW] = { "unknown", "vtable", "declared", "site" };

#define ARRAY_SLACK 16      /* bytes an allocator may add to n * sizeof(T) */
#define MAX_WORDS_MEMO 65536   /* element words memoized in an array (larger: a hash) */

struct ht_internal {
    struct symbolizer *sym;
    struct strpool pool;
    struct hmap index;    /* module << 32 | type id -> type index + 1 */
    struct hmap memo;     /* type index << 32 | offset in element -> pointee type index + 1,
                           * for types too large for a words array */
    int32_t **words;      /* by type index: by word of the element, the pointee type index, -1
                           * not known yet (NULL: not made yet) */
    size_t words_alloc;
    struct hmap groups;   /* type index -> interned group name (arrays: index | 1 << 63) */
    size_t types_alloc;
    uint32_t *queue;      /* blocks whose pointers are still to follow */
    size_t head, tail, queue_alloc;
    uint8_t *retyped;     /* by block: already replaced by an embedding type once */
};

static struct ht_internal *in_of(const struct heap_types *ht) { return ht->internal; }

static const char *module_path(const struct heap_types *ht, uint32_t m) { return ht->g->modules[m].path; }

static const struct dv_type *type_of_id(const struct heap_types *ht, uint32_t m, dv_type_id id)
{
    return id ? dv_type(in_of(ht)->sym, module_path(ht, m), id) : NULL;
}

static dv_type_id strip(const struct heap_types *ht, uint32_t m, dv_type_id id)
{
    return id ? dv_type_strip(in_of(ht)->sym, module_path(ht, m), id) : 0;
}

/* The index of the type a pointer declared to `declared` (module m) gives its target; 0 when
 * it types nothing (void, a function, an incomplete or zero-sized type). */
static uint32_t intern_type(struct heap_types *ht, uint32_t m, dv_type_id declared)
{
    struct ht_internal *in = in_of(ht);
    dv_type_id id = strip(ht, m, declared);
    const struct dv_type *t = type_of_id(ht, m, id);
    if (!t || !t->size || t->kind == DV_T_FUNCTION || t->kind == DV_T_UNKNOWN)
        return 0;
    uint64_t key = (uint64_t)m << 32 | id;
    uintptr_t at = (uintptr_t)hmap_get(&in->index, key);
    if (at)
        return (uint32_t)(at - 1);
    const char *name = t->name;
    if (!name || strstr(name, "{...}")) {   /* an anonymous struct: its typedef's name is better */
        const struct dv_type *d = type_of_id(ht, m, declared);
        if (d && d->name && !strstr(d->name, "{...}"))
            name = d->name;
    }
    ALLOC_GROW(ht->types, ht->nr_types + 1, in->types_alloc);
    ht->types[ht->nr_types] = (struct ht_type){
        .name = strpool_intern(&in->pool, name ? name : "(anonymous)"),
        .module = m,
        .id = id,
        .size = t->size,
        .bytes = (t->kind == DV_T_BASE || t->kind == DV_T_ENUM) && t->size == 1,
        .flexible = tw_flexible(in->sym, module_path(ht, m), t),
        .polymorphic = tw_polymorphic(in->sym, module_path(ht, m), t),
    };
    hmap_put(&in->index, key, (void *)(uintptr_t)(ht->nr_types + 1));
    return ht->nr_types++;
}

uint64_t ht_count(const struct ht_type *t, uint64_t size)
{
    if (!t->size || t->flexible || t->polymorphic || t->bytes || size < 2 * t->size)
        return 1;
    uint64_t n = size / t->size;
    return size - n * t->size < ARRAY_SLACK ? n : 1;
}

/* The type of the block a pointer at byte offset b of block k points at; 0 when unknown. */
static uint32_t pointee_of_block(struct heap_types *ht, uint32_t k, uint64_t b)
{
    const struct ht_type *t = &ht->types[ht->type_of[k]];
    uint64_t n = ht_count(t, ht->g->size[k]), off = b;
    if (n > 1) {
        off = b % t->size;
        if (b / t->size >= n)
            return 0;
    } else if (!t->flexible && b >= t->size) {
        return 0;
    }
    struct ht_internal *in = in_of(ht);
    uint32_t c = ht->type_of[k];
    int32_t *words = NULL;
    if (t->size <= MAX_WORDS_MEMO * 8 && off < t->size) {
        if (c >= in->words_alloc) {
            size_t was = in->words_alloc;
            in->words_alloc = c + 64;
            in->words = xrealloc(in->words, in->words_alloc * sizeof *in->words);
            memset(in->words + was, 0, (in->words_alloc - was) * sizeof *in->words);
        }
        if (!in->words[c]) {
            in->words[c] = xmalloc((t->size / 8 + 1) * sizeof **in->words);
            memset(in->words[c], 0xff, (t->size / 8 + 1) * sizeof **in->words);
        }
        words = in->words[c];
        if (words[off / 8] >= 0)
            return (uint32_t)words[off / 8];
    }
    uint64_t key = (uint64_t)c << 32 | (off & 0xffffffffu);
    if (!words && off <= 0xffffffffu) {
        uintptr_t memo = (uintptr_t)hmap_get(&in->memo, key);
        if (memo)
            return (uint32_t)(memo - 1);
    }
    dv_type_id pointee = 0;
    uint32_t to = tw_pointer_at(in_of(ht)->sym, module_path(ht, t->module), t->id, off, &pointee, NULL, 0) ? intern_type(ht, t->module, pointee) : 0;
    if (words)
        words[off / 8] = (int32_t)to;
    else if (off <= 0xffffffffu)
        hmap_put(&in->memo, key, (void *)(uintptr_t)(to + 1));
    return to;
}

/* ---- propagation ---- */

static void enqueue(struct heap_types *ht, uint32_t k)
{
    struct ht_internal *in = in_of(ht);
    ALLOC_GROW(in->queue, in->tail + 1, in->queue_alloc);
    in->queue[in->tail++] = k;
}

/* Give block k type c (the conflict rules of heaptypes.h). */
static void assign(struct heap_types *ht, uint32_t k, uint32_t c, enum ht_how how)
{
    if (!c || ht->types[c].size > ht->g->size[k])
        return;
    uint32_t old = ht->type_of[k];
    if (!old) {
        ht->type_of[k] = c;
        ht->how[k] = (uint8_t)how;
        enqueue(ht, k);
        return;
    }
    const struct ht_type *a = &ht->types[old], *b = &ht->types[c];
    if (a->name == b->name || tw_embeds(in_of(ht)->sym, module_path(ht, a->module), a->id, b->name))
        return;
    struct ht_internal *in = in_of(ht);
    if (!in->retyped[k] && tw_embeds(in_of(ht)->sym, module_path(ht, b->module), b->id, a->name)) {
        in->retyped[k] = 1;
        ht->type_of[k] = c;
        enqueue(ht, k);
        return;
    }
    ht->conflicts++;
}

/* Follow the pointers of every queued block. */
static void propagate(struct heap_types *ht)
{
    const struct heap_graph *g = ht->g;
    struct ht_internal *in = in_of(ht);
    while (in->head < in->tail) {
        uint32_t k = in->queue[in->head++];
        if (ht->types[ht->type_of[k]].bytes)
            continue;
        for (uint32_t e = g->edge_first[k]; e < g->edge_first[k + 1]; e++)
            if (!hg_edge_toff(g, e))   /* an interior pointer types a member, not the block */
                assign(ht, g->edge_target[e], pointee_of_block(ht, k, (uint64_t)g->edge_word[e] * 8), HT_DECLARED);
    }
}

/* The module whose image holds runtime address a: the one loaded highest at or below it
 * (the newest of equals), HG_NONE if none. A guess that dv_vtable_class then checks. */
static uint32_t module_below(const struct heap_graph *g, uint64_t a)
{
    uint32_t best = HG_NONE;
    for (uint32_t m = 0; m < g->nr_modules; m++)
        if (g->modules[m].bias <= a && g->modules[m].path[0] != '[' &&
            (best == HG_NONE || g->modules[m].bias >= g->modules[best].bias))
            best = m;
    return best;
}

/* The type a vtable pointer v gives (its class, from the module that defines the vtable, else
 * the first module whose DWARF has the class), 0 when v is no vtable. */
static uint32_t vtable_type(struct heap_types *ht, uint64_t v)
{
    const struct heap_graph *g = ht->g;
    struct ht_internal *in = in_of(ht);
    uint32_t m = module_below(g, v);
    const char *cls = m != HG_NONE ? dv_vtable_class(in->sym, module_path(ht, m), v - g->modules[m].bias) : NULL;
    if (!cls)
        return 0;
    dv_type_id id = dv_type_by_name(in->sym, module_path(ht, m), cls);
    for (uint32_t o = 0; !id && o < g->nr_modules; o++)
        if (o != m && g->modules[o].path[0] != '[' && (id = dv_type_by_name(in->sym, module_path(ht, o), cls)))
            m = o;
    return id ? intern_type(ht, m, id) : 0;
}

/* Rule 1: blocks whose first word points into a C++ vtable. */
static void seed_from_vtables(struct heap_types *ht)
{
    const struct heap_graph *g = ht->g;
    if (!g->vptr)
        return;
    struct hmap memo = { 0 };   /* vtable pointer -> type index + 1 (1: none) */
    for (uint32_t k = 0; k < g->nr_blocks; k++) {
        uint64_t v = hg_vptr(g, k);
        if (!v)
            continue;
        uintptr_t c = (uintptr_t)hmap_get(&memo, v);
        if (!c) {
            c = vtable_type(ht, v) + 1;
            hmap_put(&memo, v, (void *)c);
        }
        if (c > 1)
            assign(ht, k, (uint32_t)(c - 1), HT_VTABLE);
    }
    hmap_clear(&memo);
}

/* Rule 2's seeds: what the owners' words point at. */
static void seed_from_owners(struct heap_types *ht, const struct owner_set *os)
{
    const struct owner **at_node = xcalloc((size_t)os->nr_owners + 1, sizeof *at_node);
    for (uint32_t i = 0; i < os->nr_owners; i++)
        at_node[os->owners[i].node] = &os->owners[i];
    uint32_t K = os->nr_owners;
    for (uint32_t v = 1; v <= K; v++) {
        const struct owner *o = at_node[v];
        if (!o || !o->type_id)
            continue;
        for (uint32_t e = os->first[v]; e < os->first[v + 1]; e++) {
            uint64_t off = os->var_offset[e - K];
            dv_type_id pointee = 0;
            if (off == OWNER_NO_OFFSET || os->target_offset[e - K] || !tw_pointer_at(in_of(ht)->sym, module_path(ht, o->type_module), o->type_id, off, &pointee, NULL, 0))
                continue;
            assign(ht, os->succ[e] - os->first_block, intern_type(ht, o->type_module, pointee), HT_DECLARED);
        }
    }
    free(at_node);
}

#define SITE_NONE 0
#define SITE_MIXED UINT32_MAX

/* The key of stack id's allocation site at a level: the stack itself (depth 0), else a hash
 * of the return addresses of its `depth` innermost frames. */
static uint64_t site_key(const struct stack_tree *tree, uint64_t id, int depth)
{
    if (!depth)
        return id;
    uint64_t pcs[8];
    int n = 0;
    for (; id && id <= tree->nr && n < depth; id = tree->parent[id])
        pcs[n++] = tree->pc[id];
    uint64_t h = hash_bytes(pcs, (size_t)n * sizeof *pcs);
    return h ? h : 1;
}

/* Agreement of two sites' types: SITE_NONE (no typed block yet), a type index + 1, or
 * SITE_MIXED. */
static uint32_t agree(const struct heap_types *ht, uint32_t a, uint32_t b)
{
    if (a == SITE_NONE || a == b)
        return b;
    if (b == SITE_NONE)
        return a;
    if (a == SITE_MIXED || b == SITE_MIXED || ht->types[a - 1].name != ht->types[b - 1].name)
        return SITE_MIXED;
    return a;
}

/* Rule 3 at one level: sites whose typed blocks agree lend their type to their untyped
 * blocks. Works per stack id (arrays indexed by it), then merges the stacks of one site.
 * Returns the sites that lent; counts the stacks whose blocks disagree in *mixed. */
static uint64_t lend_site_types(struct heap_types *ht, const struct stack_tree *tree, int depth, uint64_t *mixed)
{
    const struct heap_graph *g = ht->g;
    size_t nr = tree->nr + 1;
    uint8_t *wants = xcalloc(nr, 1);   /* by stack: has untyped blocks */
    bool any = false;
    for (uint32_t k = 0; k < g->nr_blocks; k++) {
        uint64_t id = (uint64_t)g->stack[k];
        if (id && id < nr && !ht->type_of[k]) {
            wants[id] = 1;
            any = true;
        }
    }
    if (!any) {
        free(wants);
        return 0;
    }
    uint32_t *type = xcalloc(nr, sizeof *type);   /* by stack: its typed blocks' agreement */
    for (uint32_t k = 0; k < g->nr_blocks; k++) {
        uint64_t id = (uint64_t)g->stack[k];
        if (id && id < nr && ht->type_of[k])
            type[id] = agree(ht, type[id], ht->type_of[k] + 1);
    }
    if (mixed)
        for (size_t id = 1; id < nr; id++)
            *mixed += type[id] == SITE_MIXED;
    uint64_t *key = NULL;
    if (depth) {   /* merge the stacks of one site */
        struct hmap site = { 0 };   /* key -> agreement + 1 */
        key = xmalloc(nr * sizeof *key);
        for (size_t id = 1; id < nr; id++) {
            if (!type[id] && !wants[id])
                continue;
            key[id] = site_key(tree, id, depth);
            uintptr_t was = (uintptr_t)hmap_get(&site, key[id]);
            hmap_put(&site, key[id], (void *)(uintptr_t)((uint64_t)agree(ht, was ? (uint32_t)(was - 1) : 0, type[id]) + 1));
        }
        for (size_t id = 1; id < nr; id++)
            if (wants[id])
                type[id] = (uint32_t)((uintptr_t)hmap_get(&site, key[id]) - 1);
        hmap_clear(&site);
    }
    uint64_t lent = 0;
    for (uint32_t k = 0; k < g->nr_blocks; k++) {
        uint64_t id = (uint64_t)g->stack[k];
        if (!id || id >= nr || ht->type_of[k] || type[id] == SITE_NONE || type[id] == SITE_MIXED)
            continue;
        assign(ht, k, type[id] - 1, HT_SITE);
        if (ht->type_of[k] && wants[id] == 1) {
            wants[id] = 2;   /* count each stack (at depth 0) or each stack that lent */
            lent++;
        }
    }
    free(key);
    free(type);
    free(wants);
    return lent;
}

void heap_types_infer(struct heap_types *ht, const struct owner_set *os, struct symbolizer *sym)
{
    memset(ht, 0, sizeof *ht);
    const struct heap_graph *g = os->g;
    ht->g = g;
    struct ht_internal *in = xcalloc(1, sizeof *in);
    ht->internal = in;
    in->sym = sym;
    ALLOC_GROW(ht->types, 1, in->types_alloc);
    ht->types[0] = (struct ht_type){ .name = strpool_intern(&in->pool, "(unknown)"), .module = HG_NONE };
    ht->nr_types = 1;
    ht->type_of = xcalloc(g->nr_blocks + 1, sizeof *ht->type_of);
    ht->how = xcalloc(g->nr_blocks + 1, 1);
    in->retyped = xcalloc(g->nr_blocks + 1, 1);

    seed_from_vtables(ht);
    seed_from_owners(ht, os);
    propagate(ht);
    /* Sites from the most specific (the whole stack) to its innermost frames only: an
     * unrolled loop or an inlined caller gives one site several stacks. */
    static const int depths[] = { 0, 4, 3, 2 };
    const struct stack_tree *tree = db_stack_tree(g->db, 0);
    for (size_t i = 0; i < sizeof depths / sizeof *depths; i++) {
        ht->sites_lent += lend_site_types(ht, tree, depths[i], i ? NULL : &ht->sites_mixed);
        propagate(ht);
    }

    for (uint32_t k = 0; k < g->nr_blocks; k++)
        ht->by_how[ht->type_of[k] ? ht->how[k] : HT_NONE]++;
    free(in->queue);
    in->queue = NULL;
    free(in->retyped);
    in->retyped = NULL;
}

void heap_types_release(struct heap_types *ht)
{
    struct ht_internal *in = ht->internal;
    if (in) {
        strpool_clear(&in->pool);
        hmap_clear(&in->index);
        hmap_clear(&in->memo);
        hmap_clear(&in->groups);
        for (size_t i = 0; i < in->words_alloc; i++)
            free(in->words[i]);
        free(in->words);
        free(in->queue);
        free(in->retyped);
        free(in);
    }
    free(ht->type_of);
    free(ht->how);
    free(ht->types);
    memset(ht, 0, sizeof *ht);
}

/* ---- names ---- */

const char *ht_block_type(const struct heap_types *ht, uint32_t k, char *buf, size_t size)
{
    const struct ht_type *t = &ht->types[ht->type_of[k]];
    uint64_t n = ht_count(t, ht->g->size[k]);
    if (t->bytes)
        snprintf(buf, size, "%s[]", t->name);
    else if (n > 1)
        snprintf(buf, size, "%s[%llu]", t->name, (unsigned long long)n);
    else
        snprintf(buf, size, "%s", t->name);
    return buf;
}

const char *ht_block_group(const struct heap_types *ht, uint32_t k)
{
    struct ht_internal *in = in_of(ht);
    uint32_t c = ht->type_of[k];
    const struct ht_type *t = &ht->types[c];
    bool array = t->bytes || ht_count(t, ht->g->size[k]) > 1;
    uint64_t key = (uint64_t)c | (array ? 1ull << 63 : 0);
    const char *name = hmap_get(&in->groups, key);
    if (!name) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s%s", t->name, array ? "[]" : "");
        name = strpool_intern(&in->pool, buf);
        hmap_put(&in->groups, key, (void *)name);
    }
    return name;
}

/* Type c's id in this process (a type read from the cache has only its key until asked). */
static const struct ht_type *with_id(const struct heap_types *ht, uint32_t c)
{
    struct ht_type *t = &ht->types[c];
    if (c && !t->id && t->key) {
        t->id = dv_type_of_key(in_of(ht)->sym, module_path(ht, t->module), t->key);
        t->key = 0;
    }
    return t;
}

const char *ht_block_field(const struct heap_types *ht, uint32_t k, uint64_t off, char *buf, size_t size)
{
    const struct ht_type *t = with_id(ht, ht->type_of[k]);
    uint64_t n = ht->type_of[k] ? ht_count(t, ht->g->size[k]) : 0;
    char path[512];
    path[0] = 0;
    dv_type_id pointee;
    if (n > 1 && off / t->size < n) {
        uint64_t i = off / t->size;
        if (tw_pointer_at(in_of(ht)->sym, module_path(ht, t->module), t->id, off - i * t->size, &pointee, path, sizeof path)) {
            snprintf(buf, size, "[%llu]%s", (unsigned long long)i, path);
            return buf;
        }
    } else if (n == 1 && !t->bytes && tw_pointer_at(in_of(ht)->sym, module_path(ht, t->module), t->id, off, &pointee, path, sizeof path)) {
        if (path[0] == '.')
            snprintf(buf, size, "->%s", path + 1);
        else
            snprintf(buf, size, "[0]%s", path);
        return buf;
    }
    snprintf(buf, size, "+0x%llx", (unsigned long long)off);
    return buf;
}

const char *ht_var_field(const struct heap_types *ht, uint32_t m, uint32_t type, uint64_t off, char *buf, size_t size)
{
    char path[512];
    path[0] = 0;
    dv_type_id pointee;
    if (type && tw_pointer_at(in_of(ht)->sym, module_path(ht, m), type, off, &pointee, path, sizeof path))
        snprintf(buf, size, "%s", path);
    else if (off)
        snprintf(buf, size, "+0x%llx", (unsigned long long)off);
    else
        buf[0] = 0;
    return buf;
}

/* ---- the cache's blob ---- */

#define BLOB_MAGIC 0x48575431u   /* "HWT1" */

void *heap_types_encode(const struct heap_types *ht, size_t *len)
{
    size_t cap = 16 * HW_VARINT_MAX + (size_t)ht->g->nr_blocks * HW_VARINT_MAX;
    for (uint32_t i = 1; i < ht->nr_types; i++)
        cap += 6 * HW_VARINT_MAX + strlen(ht->types[i].name);
    uint8_t *raw = xmalloc(cap), *p = raw;
    p = hw_varint_put(p, BLOB_MAGIC);
    p = hw_varint_put(p, ht->nr_types);
    for (uint32_t i = 1; i < ht->nr_types; i++) {
        const struct ht_type *t = &ht->types[i];
        size_t n = strlen(t->name);
        p = hw_varint_put(p, (uint64_t)t->module + 1);
        p = hw_varint_put(p, dv_type_key(in_of(ht)->sym, module_path(ht, t->module), t->id));
        p = hw_varint_put(p, t->size);
        p = hw_varint_put(p, (uint64_t)t->bytes | (uint64_t)t->flexible << 1 | (uint64_t)t->polymorphic << 2);
        p = hw_varint_put(p, n);
        memcpy(p, t->name, n);
        p += n;
    }
    p = hw_varint_put(p, ht->conflicts);
    p = hw_varint_put(p, ht->sites_lent);
    p = hw_varint_put(p, ht->sites_mixed);
    p = hw_varint_put(p, ht->g->nr_blocks);
    for (uint32_t k = 0; k < ht->g->nr_blocks; k++)
        p = hw_varint_put(p, (uint64_t)ht->type_of[k] << 2 | ht->how[k]);
    uLongf zlen = compressBound((uLong)(p - raw));
    uint8_t *out = xmalloc(8 + zlen);
    uint64_t rawlen = (uint64_t)(p - raw);
    memcpy(out, &rawlen, 8);
    if (compress2(out + 8, &zlen, raw, (uLong)rawlen, 1) != Z_OK)
        zlen = 0;   /* stored as an empty blob: decoded as "not cached" */
    free(raw);
    *len = 8 + zlen;
    return out;
}

bool heap_types_decode(struct heap_types *ht, const struct heap_graph *g, struct symbolizer *sym, const void *blob,
                       size_t len)
{
    memset(ht, 0, sizeof *ht);
    uint64_t rawlen;
    if (len <= 8)
        return false;
    memcpy(&rawlen, blob, 8);
    if (rawlen > (uint64_t)g->nr_blocks * HW_VARINT_MAX + (64u << 20))
        return false;
    uint8_t *raw = xmalloc(rawlen ? rawlen : 1);
    uLongf got = (uLongf)rawlen;
    if (uncompress(raw, &got, (const uint8_t *)blob + 8, (uLong)(len - 8)) != Z_OK || got != rawlen) {
        free(raw);
        return false;
    }
    const uint8_t *p = raw, *end = raw + rawlen;
    uint64_t v, nr_types;
    struct ht_internal *in = xcalloc(1, sizeof *in);
    in->sym = sym;
    ht->internal = in;
    ht->g = g;
    bool ok = hw_varint_get(&p, end, &v) && v == BLOB_MAGIC && hw_varint_get(&p, end, &nr_types) && nr_types >= 1 &&
              nr_types < UINT32_MAX && nr_types <= rawlen;
    if (ok) {
        ht->types = xcalloc(nr_types, sizeof *ht->types);
        in->types_alloc = nr_types;
        ht->types[0] = (struct ht_type){ .name = strpool_intern(&in->pool, "(unknown)"), .module = HG_NONE };
        ht->nr_types = 1;
    }
    for (uint64_t i = 1; ok && i < nr_types; i++) {
        uint64_t m, id, size, flags, n;
        ok = hw_varint_get(&p, end, &m) && m >= 1 && m <= g->nr_modules && hw_varint_get(&p, end, &id) &&
             hw_varint_get(&p, end, &size) && hw_varint_get(&p, end, &flags) &&
             hw_varint_get(&p, end, &n) && n < 4096 && n <= (uint64_t)(end - p);
        if (!ok)
            break;
        char name[4096];
        memcpy(name, p, n);
        name[n] = 0;
        p += n;
        /* The type's id in this process: looked up when a field name is asked for. */
        ht->types[ht->nr_types++] = (struct ht_type){ .name = strpool_intern(&in->pool, name), .module = (uint32_t)(m - 1),
                                                      .key = id, .size = size, .bytes = flags & 1,
                                                      .flexible = (flags >> 1) & 1, .polymorphic = (flags >> 2) & 1 };
    }
    uint64_t nr_blocks = 0;
    ok = ok && hw_varint_get(&p, end, &ht->conflicts) && hw_varint_get(&p, end, &ht->sites_lent) &&
         hw_varint_get(&p, end, &ht->sites_mixed) && hw_varint_get(&p, end, &nr_blocks) && nr_blocks == g->nr_blocks;
    if (ok) {
        ht->type_of = xcalloc(g->nr_blocks + 1, sizeof *ht->type_of);
        ht->how = xcalloc(g->nr_blocks + 1, 1);
    }
    for (uint32_t k = 0; ok && k < g->nr_blocks; k++) {
        ok = hw_varint_get(&p, end, &v) && (v >> 2) < ht->nr_types && (v & 3) < HT_NR_HOW;
        if (ok) {
            ht->type_of[k] = (uint32_t)(v >> 2);
            ht->how[k] = (uint8_t)(v & 3);
            ht->by_how[ht->type_of[k] ? ht->how[k] : HT_NONE]++;
        }
    }
    free(raw);
    if (!ok || p != end) {
        heap_types_release(ht);
        return false;
    }
    return true;
}
