/* This file implements `heapwatch owners`: the variables that hold a walked snapshot's heap,
 * largest retained size first (owners.h), as viewcore and Eclipse MAT's dominator tree show
 * it. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "dominators.h"
#include "json.h"
#include "options.h"
#include "report.h"
#include "snapmodel.h"
#include "usage.h"

/* Reachable sizes take a walk per owner: done for this many owners at most. */
#define MAX_REACHABLE_WALKS 200

static const struct cmd_usage usage_owners = {
    "owners", "[SNAP]", "The variables that hold a walked snapshot's heap, largest retained size first: globals,\n"
    "static locals, __thread variables, locals and parameters of each thread's frames (stack\n"
    "slots and saved registers), registered regions; ranges no variable claims are described\n"
    "as precisely as known. retained = what would become unreachable if the owner were cleared\n"
    "(dominator tree); reachable = everything it reaches. Memory reachable from several owners\n"
    "is retained by none of them and shown as one 'shared' row. --by type splits each owner's\n"
    "retained memory by the types of its objects (as `types` infers them).",
    SNAP_OPERAND_HELP, NULL,
};

struct owners_opts {
    bool json, by_type;
    size_t nodecount;
};

static const char *parse_by(const struct opt *opt, const char *arg)
{
    if (strcmp(arg, "type"))
        return xasprintf("owners are split by 'type' only, not '%s'", arg);
    *(bool *)opt->value = true;
    return NULL;
}

/* --by type: an owner's retained objects by type, largest first. */
struct type_share {
    const char *type;
    uint64_t bytes, objects;
};
struct type_split {
    struct type_share *v;
    size_t nr, alloc;
    struct hmap index;   /* type name (interned) -> index + 1 */
};

static int by_share(const void *a, const void *b)
{
    const struct type_share *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    return strcmp(x->type, y->type);
}

/* splits[i] for owners[i] shown (i < shown), splits[shown] for the shared memory. */
static struct type_split *split_by_type(struct snap_model *m, size_t shown)
{
    struct owner_set *os = &m->os;
    struct type_split *splits = xcalloc(shown + 1, sizeof *splits);
    uint32_t *shown_at = xmalloc(((size_t)os->nr_owners + 1) * sizeof *shown_at);   /* by node */
    for (uint32_t v = 0; v <= os->nr_owners; v++)
        shown_at[v] = UINT32_MAX;
    for (size_t i = 0; i < shown; i++)
        shown_at[os->owners[i].node] = (uint32_t)i;
    shown_at[0] = (uint32_t)shown;
    for (uint32_t k = 0; k < m->g.nr_blocks; k++) {
        uint32_t r = owners_retainer(os, os->first_block + k);
        if (r == DOM_NONE || shown_at[r] == UINT32_MAX)
            continue;
        struct type_split *sp = &splits[shown_at[r]];
        const char *type = ht_block_group(&m->ht, k);   /* interned: the pointer is the key */
        uintptr_t i = (uintptr_t)hmap_get(&sp->index, (uint64_t)(uintptr_t)type);
        if (!i) {
            ALLOC_GROW(sp->v, sp->nr + 1, sp->alloc);
            sp->v[sp->nr++] = (struct type_share){ type, 0, 0 };
            hmap_put(&sp->index, (uint64_t)(uintptr_t)type, (void *)(uintptr_t)(i = sp->nr));
        }
        sp->v[i - 1].bytes += m->g.size[k];
        sp->v[i - 1].objects++;
    }
    free(shown_at);
    for (size_t i = 0; i <= shown; i++) {
        hmap_clear(&splits[i].index);
        if (splits[i].nr)
            qsort(splits[i].v, splits[i].nr, sizeof *splits[i].v, by_share);
    }
    return splits;
}

static void free_splits(struct type_split *splits, size_t shown)
{
    for (size_t i = 0; splits && i <= shown; i++)
        free(splits[i].v);
    free(splits);
}

static const char *parse(int argc, char **argv, struct owners_opts *o)
{
    memset(o, 0, sizeof *o);
    const struct opt opts[] = {
        OPT_NODECOUNT(&o->nodecount),
        OPT_CALLBACK(0, "by", &o->by_type, "type", "split each owner's retained memory by type", parse_by),
        OPT_JSON(&o->json),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_owners, 0);
    if (argc > 1)
        die_with_usage(opts, &usage_owners, "too many arguments");
    if (!o->nodecount)
        o->nodecount = o->json ? SIZE_MAX : 20;
    return argc ? argv[0] : "latest";
}

static int by_retained(const void *a, const void *b)
{
    const struct owner *x = a, *y = b;
    if (x->retained_bytes != y->retained_bytes)
        return x->retained_bytes > y->retained_bytes ? -1 : 1;
    if (x->retained_objects != y->retained_objects)
        return x->retained_objects > y->retained_objects ? -1 : 1;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->tid > y->tid) - (x->tid < y->tid);
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

/* "g_cache", "list in get_list", "p in worker (thread 12, frame 2)", "rbx"... */
static const char *owner_text(const struct owner *o, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s", o->name);
    if (o->function && (o->kind == OWNER_STATIC_LOCAL || o->kind == OWNER_LOCAL))
        n += snprintf(buf + n, size > (size_t)n ? size - (size_t)n : 0, " in %s", o->function);
    if (o->kind == OWNER_LOCAL && o->reg)
        n += snprintf(buf + n, size > (size_t)n ? size - (size_t)n : 0, " (thread %d, frame %d, register %s)", o->tid,
                      o->frame, o->reg);
    else if (o->kind == OWNER_LOCAL)
        n += snprintf(buf + n, size > (size_t)n ? size - (size_t)n : 0, " (thread %d, frame %d)", o->tid, o->frame);
    else if (o->kind == OWNER_TLS)
        n += snprintf(buf + n, size > (size_t)n ? size - (size_t)n : 0, " (thread %d)", o->tid);
    if (o->type)
        n += snprintf(buf + n, size > (size_t)n ? size - (size_t)n : 0, " [%s]", o->type);
    if (o->module && o->kind != OWNER_DATA && o->kind != OWNER_THREAD)
        snprintf(buf + n, size > (size_t)n ? size - (size_t)n : 0, " in %s", base_name(o->module));
    return buf;
}

static void print_split(const struct type_split *sp)
{
    char a[32];
    for (size_t t = 0; sp && t < sp->nr; t++)
        printf("%12s %9llu %12s  %-12s    %s\n", fmt_value(a, sizeof a, (int64_t)sp->v[t].bytes, V_INUSE_SPACE),
               (unsigned long long)sp->v[t].objects, "", "", sp->v[t].type);
}

static void print_text(const struct owner_set *os, const struct snapshot_info *si, const char *path, size_t shown,
                       const struct type_split *splits)
{
    char a[32], b[32], c[32], name[1024];
    printf("Snapshot %lld of %s (%s%s%s): %s reachable in %llu object(s), held by %u owner(s)\n", (long long)si->id,
           path, si->trigger, si->label ? ": " : "", si->label ? si->label : "",
           fmt_value(a, sizeof a, (int64_t)os->reachable_bytes, V_INUSE_SPACE), (unsigned long long)os->reachable_objects,
           os->nr_owners);
    printf("%12s %9s %12s  %-12s  %s\n", "retained", "objects", "reachable", "kind", "owner");
    for (size_t i = 0; i < shown; i++) {
        const struct owner *o = &os->owners[i];
        printf("%12s %9llu %12s  %-12s  %s\n", fmt_value(a, sizeof a, (int64_t)o->retained_bytes, V_INUSE_SPACE),
               (unsigned long long)o->retained_objects,
               o->reachable_known ? fmt_value(b, sizeof b, (int64_t)o->reachable_bytes, V_INUSE_SPACE) : "-",
               owner_kind_names[o->kind], owner_text(o, name, sizeof name));
        print_split(splits ? &splits[i] : NULL);
    }
    if (shown < os->nr_owners)
        printf("%12s %9s %12s  %-12s  (%u more owner(s); -n to show them)\n", "", "", "", "", os->nr_owners - (unsigned)shown);
    if (os->shared_objects)
        printf("%12s %9llu %12s  %-12s  %s\n", fmt_value(c, sizeof c, (int64_t)os->shared_bytes, V_INUSE_SPACE),
               (unsigned long long)os->shared_objects, "", "shared", "(reachable from several owners, retained by none)");
    if (os->shared_objects)
        print_split(splits ? &splits[shown] : NULL);
    if (os->unattributed_objects)
        printf("%12s %9llu %12s  %-12s  %s\n", fmt_value(c, sizeof c, (int64_t)os->unattributed_bytes, V_INUSE_SPACE),
               (unsigned long long)os->unattributed_objects, "", "unattributed",
               "(reachable in the walk, but from no root pointer stored: a bug, please report it)");
}

static void json_u64(struct json *j, const char *key, uint64_t v)
{
    json_key(j, key);
    json_int(j, (int64_t)v);
}

static void split_json(struct json *j, const struct type_split *sp)
{
    json_key(j, "types");
    json_begin_array(j);
    for (size_t t = 0; t < sp->nr; t++) {
        json_begin_object(j);
        json_key(j, "type"); json_str(j, sp->v[t].type);
        json_u64(j, "bytes", sp->v[t].bytes);
        json_u64(j, "objects", sp->v[t].objects);
        json_end_object(j);
    }
    json_end_array(j);
}

static void print_json(const struct owner_set *os, const struct snapshot_info *si, const char *path, size_t shown,
                       const struct type_split *splits)
{
    struct json j;
    json_init(&j, stdout);
    json_begin_object(&j);
    json_key(&j, "db"); json_str(&j, path);
    json_key(&j, "snapshot"); json_int(&j, si->id);
    json_key(&j, "label"); json_str(&j, si->label);
    json_u64(&j, "reachable_bytes", os->reachable_bytes);
    json_u64(&j, "reachable_objects", os->reachable_objects);
    json_u64(&j, "shared_bytes", os->shared_bytes);
    json_u64(&j, "shared_objects", os->shared_objects);
    if (splits) {
        json_key(&j, "shared");
        json_begin_object(&j);
        split_json(&j, &splits[shown]);
        json_end_object(&j);
    }
    json_u64(&j, "unattributed_bytes", os->unattributed_bytes);
    json_u64(&j, "unattributed_objects", os->unattributed_objects);
    json_u64(&j, "nr_owners", os->nr_owners);
    json_key(&j, "owners");
    json_begin_array(&j);
    for (size_t i = 0; i < shown; i++) {
        const struct owner *o = &os->owners[i];
        json_begin_object(&j);
        owner_json_identity(&j, o);
        json_u64(&j, "retained_bytes", o->retained_bytes);
        json_u64(&j, "retained_objects", o->retained_objects);
        json_key(&j, "reachable_bytes");
        if (o->reachable_known) json_int(&j, (int64_t)o->reachable_bytes); else json_null(&j);
        json_key(&j, "reachable_objects");
        if (o->reachable_known) json_int(&j, (int64_t)o->reachable_objects); else json_null(&j);
        if (splits)
            split_json(&j, &splits[i]);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_end_object(&j);
    json_finish(&j);
}

int cmd_owners(int argc, char **argv)
{
    struct owners_opts o;
    const char *spec = parse(argc, argv, &o);
    struct snap_model m;
    snap_model_open(&m, spec, SNAP_RETAINED | (o.by_type ? SNAP_TYPES : 0));
    struct owner_set *os = &m.os;
    /* The tree is indexed by owner node numbers, kept in each owner: sorting is safe. */
    qsort(os->owners, os->nr_owners, sizeof *os->owners, by_retained);
    size_t shown = os->nr_owners < o.nodecount ? os->nr_owners : o.nodecount;
    for (size_t i = 0; i < shown && i < MAX_REACHABLE_WALKS; i++)
        owners_reachable(os, (uint32_t)i);
    struct type_split *splits = o.by_type ? split_by_type(&m, shown) : NULL;
    if (o.json)
        print_json(os, &m.si, m.db->path, shown, splits);
    else
        print_text(os, &m.si, m.db->path, shown, splits);
    free_splits(splits, shown);
    snap_model_warn_missing_debug(&m);
    snap_model_close(&m);
    return 0;
}
