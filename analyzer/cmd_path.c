/* This file implements `heapwatch path`: how one block of a walked snapshot is reached, as
 * the shortest chain of pointers from an owner (owners.h), each step said as the field or
 * element that holds the pointer, typed by heaptypes.h: g_cache->buckets[17]->next->val.
 * For an unreachable block: the shortest chain from a direct leak (an unreachable block no
 * other unreachable block points at), the one that holds it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "dominators.h"
#include "json.h"
#include "options.h"
#include "report.h"
#include "sites.h"
#include "snapmodel.h"
#include "symcache.h"
#include "usage.h"

static const struct cmd_usage usage_path = {
    "path", "[SNAP] ADDR | [SNAP] --site FUNC[:LINE] | [SNAP] --type TYPE",
    "How a block is reached: the shortest chain of pointers from a variable (an owner, as\n"
    "`owners` names them) to the block holding ADDR, each step the field or element that\n"
    "holds the pointer, with its block's type, size and allocation site. --site takes the\n"
    "largest block allocated with FUNC (at LINE) on its stack, --type the largest block of\n"
    "TYPE (as `types` shows it). For an unreachable block, the chain from the leaked block\n"
    "that holds it.",
    SNAP_OPERAND_HELP "\nADDR is hexadecimal (0x...) or decimal, any address inside the block.", NULL,
};

struct path_opts {
    bool json;
    const char *site, *type;
};

/* One step of the chain: block `block`, reached through the word at byte `offset` of the
 * previous step (of the owner's variable for the first). */
struct step {
    uint32_t block;
    uint64_t offset;   /* of the word holding the pointer, in the previous step */
    uint32_t into;     /* where the pointer points in this step's block (interior: > 0) */
};

struct chain {
    const struct owner *owner;   /* NULL for an unreachable block */
    struct step *steps;
    size_t nr;
};

static bool parse_address(const char *s, uint64_t *a)
{
    char *end;
    errno = 0;
    *a = strtoull(s, &end, 0);
    return !errno && end != s && !*end && *s != '-';
}

static uint32_t block_of_address(struct snap_model *m, uint64_t a)
{
    uint32_t k = hg_block_at(&m->g, a);
    if (k == HG_NONE)
        die(EXIT_INPUT, "path: no live block of snapshot %lld holds address 0x%llx", (long long)m->snap,
            (unsigned long long)a);
    return k;
}

/* Whether stack `stack` has a frame of function fn (at line, when line > 0). */
static bool stack_has(struct snap_model *m, struct symcache *sc, int64_t stack, const char *fn, int line)
{
    struct location *locs[PROFILE_MAX_DEPTH];
    int depth = profile_stack(m->db, sc, stack, locs, PROFILE_MAX_DEPTH);
    for (int i = 0; i < depth; i++)
        for (int f = 0; f < locs[i]->nframes; f++)
            if (!strcmp(locs[i]->frames[f].function, fn) && (line <= 0 || locs[i]->frames[f].line == line))
                return true;
    return false;
}

/* The largest block (lowest address among equals) allocated with FUNC[:LINE] on its stack. */
static uint32_t find_by_site(struct snap_model *m, struct symcache *sc, const char *spec)
{
    char fn[1024];
    snprintf(fn, sizeof fn, "%s", spec);
    int line = 0;
    char *colon = strrchr(fn, ':');
    if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
        line = atoi(colon + 1);
        *colon = 0;
    }
    struct hmap match = { 0 };   /* stack id -> 1 match, 2 no match */
    uint32_t best = HG_NONE;
    for (uint32_t k = 0; k < m->g.nr_blocks; k++) {
        int64_t st = m->g.stack[k];
        if (!st || (best != HG_NONE && m->g.size[k] <= m->g.size[best]))
            continue;
        uintptr_t v = (uintptr_t)hmap_get(&match, (uint64_t)st);
        if (!v) {
            v = stack_has(m, sc, st, fn, line) ? 1 : 2;
            hmap_put(&match, (uint64_t)st, (void *)v);
        }
        if (v == 1)
            best = k;
    }
    hmap_clear(&match);
    if (best == HG_NONE)
        die(EXIT_INPUT, "path: no live block of snapshot %lld was allocated in %s%s%s (of the sampled ones)",
            (long long)m->snap, fn, line ? " at line " : "", line ? colon + 1 : "");
    return best;
}

/* "struct node" matches blocks shown as "struct node", "struct node[4]" or grouped as
 * "struct node[]"; "node" matches "struct node" too. */
static bool type_matches(const char *want, const char *have)
{
    if (!strcmp(want, have))
        return true;
    for (const char *kw = "struct \0class \0union \0"; *kw; kw += strlen(kw) + 1)
        if (!strncmp(have, kw, strlen(kw)) && !strcmp(want, have + strlen(kw)))
            return true;
    return false;
}

static uint32_t find_by_type(struct snap_model *m, const char *type)
{
    uint32_t best = HG_NONE;
    char buf[1024];
    for (uint32_t k = 0; k < m->g.nr_blocks; k++) {
        if (best != HG_NONE && m->g.size[k] <= m->g.size[best])
            continue;
        const char *group = ht_block_group(&m->ht, k);
        size_t len = strlen(group);
        char elem[1024];
        snprintf(elem, sizeof elem, "%.*s", (int)(len > 2 && !strcmp(group + len - 2, "[]") ? len - 2 : len), group);
        if (type_matches(type, group) || type_matches(type, elem) ||
            type_matches(type, ht_block_type(&m->ht, k, buf, sizeof buf)))
            best = k;
    }
    if (best == HG_NONE)
        die(EXIT_INPUT, "path: no live block of snapshot %lld has type '%s' (see `heapwatch types`)", (long long)m->snap,
            type);
    return best;
}

/* Shortest chain from the virtual root through an owner to block k (breadth-first over the
 * owners' graph). */
static bool chain_from_owner(struct snap_model *m, uint32_t k, struct chain *c)
{
    const struct owner_set *os = &m->os;
    uint32_t n = os->first_block + m->g.nr_blocks, target = os->first_block + k;
    uint32_t *via = xmalloc((size_t)n * sizeof *via);   /* the succ index that reached a node */
    uint32_t *queue = xmalloc((size_t)n * sizeof *queue), head = 0, tail = 0;
    memset(via, 0xff, (size_t)n * sizeof *via);
    queue[tail++] = 0;
    via[0] = 0;
    while (head < tail && via[target] == UINT32_MAX) {
        uint32_t u = queue[head++];
        for (uint32_t e = os->first[u]; e < os->first[u + 1]; e++) {
            uint32_t w = os->succ[e];
            if (via[w] == UINT32_MAX) {
                via[w] = e;
                queue[tail++] = w;
            }
        }
    }
    free(queue);
    if (via[target] == UINT32_MAX) {
        free(via);
        return false;
    }
    /* Walk back: the nodes from the target up to its owner. */
    size_t nr = 0, alloc = 0;
    for (uint32_t v = target; v >= os->first_block;) {
        uint32_t e = via[v], u;
        /* u: the node whose successor range holds e (first[] is ascending) */
        uint32_t lo = 0, hi = n;
        while (hi - lo > 1) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (os->first[mid] <= e) lo = mid; else hi = mid;
        }
        u = lo;   /* the last node whose range starts at or before e: the one holding e */
        uint64_t off;
        uint32_t into;
        if (u >= os->first_block) {
            uint32_t b = u - os->first_block;
            size_t ge = m->g.edge_first[b] + (e - os->first[u]);
            off = (uint64_t)m->g.edge_word[ge] * 8;
            into = hg_edge_toff(&m->g, ge);
        } else {
            off = os->var_offset[e - os->nr_owners];
            into = os->target_offset[e - os->nr_owners];
            for (uint32_t i = 0; i < os->nr_owners; i++)
                if (os->owners[i].node == u)
                    c->owner = &os->owners[i];
        }
        ALLOC_GROW(c->steps, nr + 1, alloc);
        c->steps[nr++] = (struct step){ v - os->first_block, off, into };
        v = u;
    }
    c->nr = nr;
    for (size_t i = 0; i < nr / 2; i++) {   /* owner first */
        struct step t = c->steps[i];
        c->steps[i] = c->steps[nr - 1 - i];
        c->steps[nr - 1 - i] = t;
    }
    free(via);
    return true;
}

/* For an unreachable block: the shortest chain from a direct leak (breadth-first from all
 * of them over the blocks' pointers). */
static void chain_from_leak(struct snap_model *m, uint32_t k, struct chain *c)
{
    const struct heap_graph *g = &m->g;
    uint32_t *via = xmalloc((size_t)g->nr_blocks * sizeof *via);   /* edge index, or UINT32_MAX - 1 for a start */
    uint32_t *queue = xmalloc((size_t)g->nr_blocks * sizeof *queue), head = 0, tail = 0;
    uint32_t *from = xmalloc((size_t)g->nr_blocks * sizeof *from);
    memset(via, 0xff, (size_t)g->nr_blocks * sizeof *via);
    for (uint32_t b = 0; b < g->nr_blocks; b++)
        if ((g->cls[b] & 3) == 2) {
            via[b] = UINT32_MAX - 1;
            queue[tail++] = b;
        }
    while (head < tail && via[k] == UINT32_MAX) {
        uint32_t u = queue[head++];
        for (uint32_t e = g->edge_first[u]; e < g->edge_first[u + 1]; e++) {
            uint32_t w = g->edge_target[e];
            if (via[w] == UINT32_MAX) {
                via[w] = e;
                from[w] = u;
                queue[tail++] = w;
            }
        }
    }
    size_t nr = 0, alloc = 0;
    for (uint32_t v = k; via[v] != UINT32_MAX;) {
        ALLOC_GROW(c->steps, nr + 1, alloc);
        if (via[v] == UINT32_MAX - 1) {
            c->steps[nr++] = (struct step){ v, 0, 0 };
            break;
        }
        c->steps[nr++] = (struct step){ v, (uint64_t)g->edge_word[via[v]] * 8, hg_edge_toff(g, via[v]) };
        v = from[v];
    }
    if (!nr) {   /* in a cycle of indirect leaks no direct leak reaches: the block alone */
        ALLOC_GROW(c->steps, 1, alloc);
        c->steps[nr++] = (struct step){ k, 0, 0 };
    }
    c->nr = nr;
    for (size_t i = 0; i < nr / 2; i++) {
        struct step t = c->steps[i];
        c->steps[i] = c->steps[nr - 1 - i];
        c->steps[nr - 1 - i] = t;
    }
    free(via);
    free(queue);
    free(from);
}

/* The C expression of the chain: "g_cache->buckets[2]->val". */
static void expression(struct snap_model *m, const struct chain *c, char *buf, size_t size)
{
    char field[1024];
    size_t n = 0;
    const struct owner *o = c->owner;
    if (o) {
        uint64_t off = c->steps[0].offset;
        const char *f = o->type_id ? ht_var_field(&m->ht, o->type_module, o->type_id, off, field, sizeof field)
                        : off && off != OWNER_NO_OFFSET
                            ? (snprintf(field, sizeof field, "+0x%llx", (unsigned long long)off), field) : "";
        n = (size_t)snprintf(buf, size, "%s%s", o->name, f);
    } else {
        n = (size_t)snprintf(buf, size, "leaked block 0x%llx", (unsigned long long)m->g.addr[c->steps[0].block]);
    }
    for (size_t i = 1; i < c->nr && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s",
                              ht_block_field(&m->ht, c->steps[i - 1].block, c->steps[i].offset, field, sizeof field));
}

static const char *class_name(const struct heap_graph *g, uint32_t k)
{
    static const char *const names[] = { "reachable", "indirect leak", "direct leak", "?" };
    return names[g->cls[k] & 3];
}

static void print_text(struct snap_model *m, struct symcache *sc, uint32_t k, const struct chain *c)
{
    char type[1024], expr[4096], site_buf[1024], field[1024], a[32];
    struct site site;
    site_of_stack(m->db, sc, m->g.stack[k], &site);
    printf("Block 0x%llx of snapshot %lld: %s, %s, allocated at %s, %s\n", (unsigned long long)m->g.addr[k],
           (long long)m->snap, fmt_value(a, sizeof a, (int64_t)m->g.size[k], V_INUSE_SPACE),
           ht_block_type(&m->ht, k, type, sizeof type), site_text(&site, site_buf, sizeof site_buf), class_name(&m->g, k));
    expression(m, c, expr, sizeof expr);
    if (c->owner)
        printf("Reached as %s\n\n", expr);
    else if (c->nr == 1 && (m->g.cls[k] & 3) == 2)
        printf("Unreachable: a direct leak, no pointer to it is left\n\n");
    else if (c->nr == 1)
        printf("Unreachable: held only by a cycle of leaked blocks\n\n");
    else
        printf("Unreachable; held by a leaked block as %s\n\n", expr);
    if (c->owner) {
        const struct owner *o = c->owner;
        printf("  %-28s %s %s%s%s\n", o->name, owner_kind_names[o->kind], o->type ? o->type : "", o->function ? " in " : "",
               o->function ? o->function : "");
    }
    for (size_t i = 0; i < c->nr; i++) {
        uint32_t b = c->steps[i].block;
        const char *f;
        if (i)
            f = ht_block_field(&m->ht, c->steps[i - 1].block, c->steps[i].offset, field, sizeof field);
        else if (c->owner && c->owner->type_id)
            f = ht_var_field(&m->ht, c->owner->type_module, c->owner->type_id, c->steps[0].offset, field, sizeof field);
        else
            f = "";
        site_of_stack(m->db, sc, m->g.stack[b], &site);
        char label[1100];
        snprintf(label, sizeof label, "%s", *f ? f : (c->owner ? "(the variable)" : "(the leak)"));
        if (c->steps[i].into)   /* an interior pointer: to a member of the block */
            snprintf(label + strlen(label), sizeof label - strlen(label), " (+0x%x into)", c->steps[i].into);
        printf("  %-28s 0x%-14llx %10s  %-24s %s\n", label,
               (unsigned long long)m->g.addr[b], fmt_value(a, sizeof a, (int64_t)m->g.size[b], V_INUSE_SPACE),
               ht_block_type(&m->ht, b, type, sizeof type), site_text(&site, site_buf, sizeof site_buf));
    }
}

static void block_json(struct json *j, struct snap_model *m, struct symcache *sc, uint32_t b)
{
    char type[1024];
    struct site site;
    site_of_stack(m->db, sc, m->g.stack[b], &site);
    json_key(j, "address"); json_int(j, (int64_t)m->g.addr[b]);
    json_key(j, "size"); json_int(j, (int64_t)m->g.size[b]);
    json_key(j, "type"); json_str(j, ht_block_type(&m->ht, b, type, sizeof type));
    json_key(j, "typed_by"); json_str(j, ht_how_names[m->ht.type_of[b] ? m->ht.how[b] : HT_NONE]);
    json_key(j, "class"); json_str(j, class_name(&m->g, b));
    json_key(j, "site"); site_json(j, &site);
}

static void print_json(struct snap_model *m, struct symcache *sc, uint32_t k, const struct chain *c)
{
    char expr[4096], field[1024];
    struct json j;
    json_init(&j, stdout);
    json_begin_object(&j);
    json_key(&j, "db"); json_str(&j, m->db->path);
    json_key(&j, "snapshot"); json_int(&j, m->snap);
    json_key(&j, "target");
    json_begin_object(&j);
    block_json(&j, m, sc, k);
    json_end_object(&j);
    json_key(&j, "reachable"); json_bool(&j, c->owner != NULL);
    expression(m, c, expr, sizeof expr);
    json_key(&j, "expression"); json_str(&j, expr);
    json_key(&j, "owner");
    if (c->owner) {
        json_begin_object(&j);
        owner_json_identity(&j, c->owner);
        json_end_object(&j);
    } else {
        json_null(&j);
    }
    json_key(&j, "steps");
    json_begin_array(&j);
    for (size_t i = 0; i < c->nr; i++) {
        json_begin_object(&j);
        json_key(&j, "field");
        if (i)
            json_str(&j, ht_block_field(&m->ht, c->steps[i - 1].block, c->steps[i].offset, field, sizeof field));
        else if (c->owner && c->owner->type_id)
            json_str(&j, ht_var_field(&m->ht, c->owner->type_module, c->owner->type_id, c->steps[0].offset, field,
                                      sizeof field));
        else
            json_null(&j);
        json_key(&j, "offset");
        if (i || (c->owner && c->steps[0].offset != OWNER_NO_OFFSET))
            json_int(&j, (int64_t)c->steps[i].offset);
        else
            json_null(&j);
        json_key(&j, "target_offset");
        json_int(&j, c->steps[i].into);
        block_json(&j, m, sc, c->steps[i].block);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_end_object(&j);
    json_finish(&j);
}

int cmd_path(int argc, char **argv)
{
    struct path_opts o = { 0 };
    const struct opt opts[] = {
        OPT_STRING(0, "site", &o.site, "FUNC[:LINE]", "the largest block allocated with FUNC (at LINE) on its stack"),
        OPT_STRING(0, "type", &o.type, "TYPE", "the largest block of TYPE"),
        OPT_JSON(&o.json),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_path, 0);
    int want = (o.site || o.type) ? 1 : 2;
    if ((o.site && o.type) || argc > want)
        die_with_usage(opts, &usage_path, "give one of ADDR, --site or --type");
    if (want == 2 && argc < 1)
        die_with_usage(opts, &usage_path, "which block? give ADDR, --site or --type");
    const char *spec = "latest";
    uint64_t addr = 0;
    if (want == 2) {
        if (!parse_address(argv[argc - 1], &addr))
            die_with_usage(opts, &usage_path, argc == 1 ? "which block? give ADDR, --site or --type"
                                                        : "'%s' is not an address (0x... or a decimal number)",
                           argv[argc - 1]);
        if (argc == 2)
            spec = argv[0];
    } else if (argc == 1) {
        spec = argv[0];
    }
    struct snap_model m;
    snap_model_open(&m, spec, SNAP_OWNERS | SNAP_TYPES);
    struct symcache *sc = symcache_open(m.db);
    uint32_t k = want == 2 ? block_of_address(&m, addr) : o.site ? find_by_site(&m, sc, o.site) : find_by_type(&m, o.type);
    struct chain c = { 0 };
    if (hg_unreachable(&m.g, k) || !chain_from_owner(&m, k, &c))
        chain_from_leak(&m, k, &c);
    if (o.json)
        print_json(&m, sc, k, &c);
    else
        print_text(&m, sc, k, &c);
    free(c.steps);
    snap_model_warn_missing_debug(&m);
    symcache_close(sc);
    snap_model_close(&m);
    return 0;
}
