/* groupings.h: the heap-walk groupings of `diff --by` and `growth --by`: ways to cut one
 * walked snapshot's heap into rows that line up across snapshots. `owner` (group_owners.c)
 * gives a row per variable that retains memory, one `shared` row, and a row per allocation
 * site of unreachable memory (group_sites.c); `type` (group_types.c) gives a row per
 * inferred type (heaptypes.h), its reachable and its unreachable memory apart.
 *
 * A grouping is one function: given a loaded snapshot graph, it adds rows to a set. A row is
 * an identity key (a string: equal keys in two snapshots are the same owner, type or site),
 * the fields it is displayed with, and its bytes and objects in that snapshot. Rows never
 * point into the graph: their strings are interned in the caller's pool, which outlives the
 * snapshot, so that a report can load, group and release one snapshot at a time and keep
 * only the rows (one snapshot's graph in memory, however many snapshots).
 *
 * To add a grouping: 1. write group_<name>.c with a grouping_fn that adds its rows with
 *    group_rows_add (its own keys: start them with the grouping's name); 2. put it in the
 *    table of groupings.c under its enum report_by value (report.h), which options.c's
 *    parse_report_by_walk then accepts; 3. document it in README.md (diff, growth);
 *    4. test it through diff and growth (tests/t2100-owner-growth.sh shows how).
 *
 * Context: analyzer only, single-threaded. */
#ifndef HW_GROUPINGS_H
#define HW_GROUPINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hmap.h"
#include "json.h"
#include "report.h"

struct heap_graph;
struct hwdb;
struct snapshot_info;
struct symbolizer;
struct symcache;

struct group_row {
    const char *key;        /* identity across snapshots; interned, so equal keys are equal pointers */
    const char *kind;       /* an owner kind (owners.h: "global", "local"...), "shared",
                             * "unattributed", "leak" (unreachable memory by site), or the
                             * grouping's own */
    const char *name;       /* the variable, the type, or the site's function */
    const char *function;   /* a local's or static local's function, a site's function; NULL */
    const char *module;     /* a variable's module (full path); NULL */
    const char *type;       /* a variable's declared type; NULL when unknown */
    const char *file;       /* a site's source file; NULL */
    int line;               /* a site's line; 0 when unknown */
    int tid;                /* a per-thread owner's thread; 0 */
    bool unreachable;       /* no root reaches this memory: its growth is a leak */
    uint64_t bytes, objects;
};

/* Rows by key; v[i] keeps the display fields of the first row added with its key. */
struct group_rows {
    struct group_row *v;
    size_t nr, alloc;
    struct hmap index;      /* key pointer -> index + 1 */
};

/* What a grouping may use besides the graph: the database (stack tree), symbolization of
 * stacks (sc) and of variables (sym), and the pool its rows' strings go to. */
struct group_ctx {
    struct hwdb *db;
    struct symcache *sc;
    struct symbolizer *sym;
    struct strpool *pool;
};

/* Add g's rows to out (g is released after the call). Dies on out of memory. */
typedef void grouping_fn(const struct heap_graph *g, struct group_ctx *ctx, struct group_rows *out);

struct grouping {
    enum report_by by;
    const char *name;       /* "owner" */
    grouping_fn *fn;
};

/* The grouping of by, or NULL when by groups a profile's stacks (function, line, stack). */
const struct grouping *grouping_of(enum report_by by);

/* Load snapshot si->id of ctx->db, group it with gr into out and release the graph. False
 * (out untouched) when the snapshot has no heap walk stored (mode 'counters', or written
 * before pointers were stored); dies (3) on a corrupt one, as db_require_heap_walk does. */
bool group_snapshot(const struct grouping *gr, struct group_ctx *ctx, const struct snapshot_info *si,
                    struct group_rows *out);

/* Add r's bytes and objects to the row with r's key, or add a copy of r. r's strings must
 * live as long as rows (interned in the grouping's pool). */
void group_rows_add(struct group_rows *rows, const struct group_row *r);
/* The row with this (interned) key, or NULL. */
struct group_row *group_rows_find(const struct group_rows *rows, const char *key);
void group_rows_release(struct group_rows *rows);

/* The rows of every grouping: unreachable blocks (class 1 and 2, heapwatch_ignore()d ones
 * left out, as in every report) by allocation site, named as `top --by line` names a site
 * (allocator wrappers dropped; "(unsampled)" for blocks without a stack), kind "leak". */
void group_unreachable_sites(const struct heap_graph *g, struct group_ctx *ctx, struct group_rows *out);
/* The owner grouping (group_owners.c) and the type grouping (group_types.c). */
grouping_fn group_owners;
grouping_fn group_types;

/* The row as text: "g_cache [struct cache *] in prog", "p in worker (thread 12) [char *] in
 * prog", "leak_site prog.c:42", "(shared by several owners)". */
const char *group_row_text(const struct group_row *r, char *buf, size_t size);
/* The row's identity fields into an open JSON object: "kind", "name", "function", "module",
 * "type", "thread", "file", "line" (null when not known). */
void group_row_json_identity(struct json *j, const struct group_row *r);

#endif
