/* This file implements the owner grouping of groupings.h: a walked snapshot's memory by the
 * variable that retains it (owners.h), one row for memory shared by several owners, and the
 * unreachable memory by allocation site.
 *
 * Identity across snapshots: an owner is the same when its kind, name, function, module and
 * thread are. Left out on purpose:
 *   - the frame depth of a local: `buf in handle` is the same variable whether handle runs at
 *     depth 3 or 5 (called through another path); the locals of recursive calls of one
 *     function in one thread are summed into one row;
 *   - the register a local is in: a variable moves between a stack slot and registers;
 *   - the address and declared type (shown as first seen).
 * Kept: the thread of a per-thread owner (tls, local, register, stack): two threads' copies
 * of a __thread variable are different memory, and tids do not change over a process's life.
 * The main thread (tid = pid) is keyed as "main", so that its owners line up between two
 * runs (diff of two databases); other threads' owners only line up within one process. 
 * Owners that no variable names are keyed by their description (".data of lib.so+0x40",
 * "stack of thread 12 in f (frame 3)"), which is as stable as the range it names.
 *
 * Summing two owners merged by identity is exact: each block is retained by at most one
 * owner node of the dominator tree, so the retained sets of distinct owners are disjoint. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include "groupings.h"
#include "heapgraph.h"
#include "owners.h"
#include "usage.h"

/* Interned "owner␟kind␟name␟function␟module␟thread" (␟: the ASCII unit separator), the
 * thread "main", a tid, or empty. */
static const char *owner_key(struct group_ctx *ctx, const struct owner *o)
{
    char thread[16] = "";
    if (o->tid && o->tid == ctx->db->pid)
        snprintf(thread, sizeof thread, "main");
    else if (o->tid)
        snprintf(thread, sizeof thread, "%d", o->tid);
    char *k = xasprintf("owner\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", owner_kind_names[o->kind], o->name,
                        o->function ? o->function : "", o->module ? o->module : "", thread);
    const char *key = strpool_intern(ctx->pool, k);
    free(k);
    return key;
}

static void add_total(struct group_ctx *ctx, struct group_rows *out, const char *kind, const char *name,
                      uint64_t bytes, uint64_t objects)
{
    if (!objects)
        return;
    struct group_row r = {
        .key = strpool_intern(ctx->pool, kind), .kind = strpool_intern(ctx->pool, kind),
        .name = strpool_intern(ctx->pool, name), .bytes = bytes, .objects = objects,
    };
    group_rows_add(out, &r);
}

void group_owners(const struct heap_graph *g, struct group_ctx *ctx, struct group_rows *out)
{
    struct owner_set os;
    owners_compute(&os, g, ctx->sym);
    for (uint32_t i = 0; i < os.nr_owners; i++) {
        const struct owner *o = &os.owners[i];
        if (!o->retained_objects)
            continue;   /* as absent: its memory is counted where it is retained */
        struct group_row r = {
            .key = owner_key(ctx, o),
            .kind = owner_kind_names[o->kind],   /* static strings */
            .name = strpool_intern(ctx->pool, o->name),
            .function = strpool_intern(ctx->pool, o->function),
            .module = strpool_intern(ctx->pool, o->module),
            .type = strpool_intern(ctx->pool, o->type),
            .tid = o->tid,
            .bytes = o->retained_bytes,
            .objects = o->retained_objects,
        };
        group_rows_add(out, &r);
    }
    add_total(ctx, out, "shared", "(shared by several owners)", os.shared_bytes, os.shared_objects);
    add_total(ctx, out, "unattributed", "(reachable, but from no stored root pointer)", os.unattributed_bytes,
              os.unattributed_objects);
    owners_release(&os);
    group_unreachable_sites(g, ctx, out);
}
