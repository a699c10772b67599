/* This file implements diff_by_group (group_reports.h): which owners (or types) and which
 * sites of unreachable memory changed between two walked snapshots, largest change first,
 * with each row's bytes and objects in A and in B. Rows line up by key (groupings.h): the
 * two snapshots may come from different runs of the same program, whose globals, main
 * thread's owners and leaking sites line up (group_owners.c says which owners do not). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db.h"
#include "group_reports.h"
#include "groupings.h"
#include "profile.h"
#include "symbolize.h"
#include "symcache.h"
#include "usage.h"

struct side {
    struct hwdb *db;
    struct symcache *sc;
    struct snapshot_info si;
    struct group_rows rows;
    uint64_t bytes, objects;   /* every row: the walked heap (heapwatch_ignore()d leaks aside) */
};

struct delta_row {
    const struct group_row *id;
    int64_t a_bytes, a_objects, b_bytes, b_objects;
};

/* Open and group one side; a second side in the same database shares the first's symcache. */
static void load_side(struct side *s, const char *spec, const struct grouping *gr, struct symbolizer *sym,
                      struct strpool *pool, const struct side *other)
{
    int64_t snap;
    memset(s, 0, sizeof *s);
    s->db = db_open_snapshot_spec(spec, &snap);
    s->sc = other && other->db == s->db ? other->sc : symcache_open(s->db);
    if (!db_snapshot_info(s->db, snap, &s->si))
        die(EXIT_INPUT, "no snapshot %lld in '%s'", (long long)snap, s->db->path);
    db_require_heap_walk(s->db, &s->si);
    struct group_ctx ctx = { .db = s->db, .sc = s->sc, .sym = sym, .pool = pool };
    if (!group_snapshot(gr, &ctx, &s->si, &s->rows))
        die(EXIT_INPUT, "snapshot %lld of '%s' has no stored pointers (written by an older heapwatch)", (long long)snap,
            s->db->path);
    for (size_t i = 0; i < s->rows.nr; i++) {
        s->bytes += s->rows.v[i].bytes;
        s->objects += s->rows.v[i].objects;
    }
}

static void release_side(struct side *s, const struct side *other)
{
    group_rows_release(&s->rows);
    snapshot_info_release(&s->si);
    if (!other || s->sc != other->sc)
        symcache_close(s->sc);
}

/* The rows of B, then those only in A, with both sides' values. */
static struct delta_row *build_delta(const struct side *a, const struct side *b, size_t *nr)
{
    struct delta_row *d = xcalloc(a->rows.nr + b->rows.nr + 1, sizeof *d);
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        const struct group_rows *src = pass ? &a->rows : &b->rows;
        for (size_t i = 0; i < src->nr; i++) {
            const struct group_row *r = &src->v[i];
            const struct group_row *ra = group_rows_find(&a->rows, r->key), *rb = group_rows_find(&b->rows, r->key);
            if (pass && rb)
                continue;   /* in B too: done in the first pass */
            d[n++] = (struct delta_row){
                .id = r,
                .a_bytes = ra ? (int64_t)ra->bytes : 0, .a_objects = ra ? (int64_t)ra->objects : 0,
                .b_bytes = rb ? (int64_t)rb->bytes : 0, .b_objects = rb ? (int64_t)rb->objects : 0,
            };
        }
    }
    *nr = n;
    return d;
}

static int sort_index;

static int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

/* Largest change of the chosen value first, then of the other, then by key. */
static int cmp_delta(const void *p, const void *q)
{
    const struct delta_row *x = p, *y = q;
    int64_t xb = abs64(x->b_bytes - x->a_bytes), yb = abs64(y->b_bytes - y->a_bytes);
    int64_t xo = abs64(x->b_objects - x->a_objects), yo = abs64(y->b_objects - y->a_objects);
    int64_t x1 = sort_index == V_INUSE_OBJECTS ? xo : xb, y1 = sort_index == V_INUSE_OBJECTS ? yo : yb;
    int64_t x2 = sort_index == V_INUSE_OBJECTS ? xb : xo, y2 = sort_index == V_INUSE_OBJECTS ? yb : yo;
    if (x1 != y1)
        return x1 > y1 ? -1 : 1;
    if (x2 != y2)
        return x2 > y2 ? -1 : 1;
    return strcmp(x->id->key, y->id->key);
}

static bool changed(const struct delta_row *r)
{
    return r->a_bytes != r->b_bytes || r->a_objects != r->b_objects;
}

static void bytes_objects_json(struct json *j, int64_t bytes, int64_t objects)
{
    json_begin_object(j);
    json_key(j, "bytes"); json_int(j, bytes);
    json_key(j, "objects"); json_int(j, objects);
    json_end_object(j);
}

static void side_json(struct json *j, const struct side *s)
{
    json_begin_object(j);
    json_key(j, "db"); json_str(j, s->db->path);
    json_key(j, "snapshot"); json_int(j, s->si.id);
    json_key(j, "label"); json_str(j, s->si.label);
    json_key(j, "mode"); json_str(j, s->si.mode);
    json_key(j, "total"); bytes_objects_json(j, (int64_t)s->bytes, (int64_t)s->objects);
    json_end_object(j);
}

static void print_json(const struct side *a, const struct side *b, const struct delta_row *d, size_t nr,
                       const struct grouping *gr, const struct report_opts *o)
{
    struct json j;
    json_init(&j, stdout);
    json_begin_object(&j);
    json_key(&j, "a"); side_json(&j, a);
    json_key(&j, "b"); side_json(&j, b);
    json_key(&j, "sample_index"); json_str(&j, value_names[o->index]);
    json_key(&j, "by"); json_str(&j, gr->name);
    json_key(&j, "delta");
    bytes_objects_json(&j, (int64_t)b->bytes - (int64_t)a->bytes, (int64_t)b->objects - (int64_t)a->objects);
    json_key(&j, "rows");
    json_begin_array(&j);
    size_t shown = 0;
    for (size_t i = 0; i < nr && shown < o->nodecount; i++) {
        if (!changed(&d[i]))
            continue;
        shown++;
        json_begin_object(&j);
        group_row_json_identity(&j, d[i].id);
        json_key(&j, "a"); bytes_objects_json(&j, d[i].a_bytes, d[i].a_objects);
        json_key(&j, "b"); bytes_objects_json(&j, d[i].b_bytes, d[i].b_objects);
        json_key(&j, "delta"); bytes_objects_json(&j, d[i].b_bytes - d[i].a_bytes, d[i].b_objects - d[i].a_objects);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_end_object(&j);
    json_finish(&j);
}

/* "+1.50KiB", "-3", "0B": a signed change. */
static const char *fmt_change(char *buf, size_t size, int64_t v, int idx)
{
    char tmp[32];
    snprintf(buf, size, "%s%s", v > 0 ? "+" : "", fmt_value(tmp, sizeof tmp, v, idx));
    return buf;
}

static void print_text(const struct side *a, const struct side *b, const struct delta_row *d, size_t nr,
                       const struct grouping *gr, const struct report_opts *o)
{
    char x[40], y[40], z[40], objs[64], name[4096];
    bool objects = o->index == V_INUSE_OBJECTS;
    int64_t ta = objects ? (int64_t)a->objects : (int64_t)a->bytes, tb = objects ? (int64_t)b->objects : (int64_t)b->bytes;
    printf("Diff %s:%lld -> %s:%lld by %s, %s: %s -> %s (%s)\n", a->db->path, (long long)a->si.id, b->db->path,
           (long long)b->si.id, gr->name, value_names[o->index], fmt_value(x, sizeof x, ta, o->index),
           fmt_value(y, sizeof y, tb, o->index), fmt_change(z, sizeof z, tb - ta, o->index));
    printf("%12s %12s %12s %19s  %-12s  %s\n", "delta", "A", "B", "objects A -> B", "kind", gr->name);
    size_t shown = 0;
    for (size_t i = 0; i < nr && shown < o->nodecount; i++) {
        const struct delta_row *r = &d[i];
        if (!changed(r))
            continue;
        shown++;
        int64_t va = objects ? r->a_objects : r->a_bytes, vb = objects ? r->b_objects : r->b_bytes;
        snprintf(objs, sizeof objs, "%lld -> %lld", (long long)r->a_objects, (long long)r->b_objects);
        printf("%12s %12s %12s %19s  %-12s  %s\n", fmt_change(z, sizeof z, vb - va, o->index),
               fmt_value(x, sizeof x, va, o->index), fmt_value(y, sizeof y, vb, o->index), objs, r->id->kind,
               group_row_text(r->id, name, sizeof name));
    }
    if (!shown)
        printf("(no change)\n");
}

int diff_by_group(const char *spec_a, const char *spec_b, const struct report_opts *o)
{
    const struct grouping *gr = grouping_of(o->by);
    if (!gr || !gr->fn)
        BUG("diff by %s: not a heap-walk grouping", report_by_names[o->by]);
    struct strpool pool = { 0 };
    struct symbolizer *sym = sym_new();
    struct side a, b;
    load_side(&a, spec_a, gr, sym, &pool, NULL);
    load_side(&b, spec_b, gr, sym, &pool, &a);
    size_t nr;
    struct delta_row *d = build_delta(&a, &b, &nr);
    sort_index = o->index;
    if (nr)
        qsort(d, nr, sizeof *d, cmp_delta);
    if (o->json)
        print_json(&a, &b, d, nr, gr, o);
    else
        print_text(&a, &b, d, nr, gr, o);
    bool objects = o->index == V_INUSE_OBJECTS;
    int rc = o->exit_code && (objects ? b.objects > a.objects : b.bytes > a.bytes) ? EXIT_FINDINGS : 0;
    warn_missing_debug(a.sc);
    if (b.sc != a.sc)
        warn_missing_debug(b.sc);
    free(d);
    release_side(&b, &a);
    release_side(&a, NULL);
    sym_free(sym);
    strpool_clear(&pool);
    return rc;
}
