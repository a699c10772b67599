/* This file implements `heapwatch top --by type`: one walked snapshot's live objects by
 * inferred type (heaptypes.h), as pprof's top shows sites: inuse and leaked values, flat
 * (a type has no callees: cum = flat). The values are the walk's exact counts, not the
 * sampled estimates of the stack profile. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "json.h"
#include "options.h"
#include "report.h"
#include "snapmodel.h"
#include "top_types.h"
#include "usage.h"

struct type_total {
    const char *type;
    int64_t v[NV];
};

static int sort_index;

static int by_value(const void *a, const void *b)
{
    const struct type_total *x = a, *y = b;
    if (x->v[sort_index] != y->v[sort_index])
        return x->v[sort_index] > y->v[sort_index] ? -1 : 1;
    return strcmp(x->type, y->type);
}

static void total_json(struct json *j, const int64_t v[NV])
{
    json_begin_object(j);
    for (int i = V_INUSE_OBJECTS; i < NV; i++) {
        json_key(j, value_names[i]);
        json_int(j, v[i]);
    }
    json_end_object(j);
}

int top_by_type(const char *spec, const struct report_opts *o)
{
    if (o->index != V_INUSE_SPACE && o->index != V_INUSE_OBJECTS && o->index != V_LEAKED_SPACE &&
        o->index != V_LEAKED_OBJECTS)
        die(EXIT_USAGE, "--by type shows what a heap walk holds: use --sample-index inuse_space, inuse_objects, "
            "leaked_space or leaked_objects, not %s", value_names[o->index]);
    struct snap_model m;
    snap_model_open(&m, spec, SNAP_TYPES);
    struct hmap at = { 0 };
    struct type_total *rows = NULL, total = { "total", { 0 } };
    size_t nr = 0, alloc = 0;
    for (uint32_t k = 0; k < m.g.nr_blocks; k++) {
        if (m.g.cls[k] >> 2 & 2)
            continue;   /* heapwatch_ignore()d */
        const char *type = ht_block_group(&m.ht, k);
        uintptr_t i = (uintptr_t)hmap_get(&at, (uint64_t)(uintptr_t)type);
        if (!i) {
            ALLOC_GROW(rows, nr + 1, alloc);
            rows[nr++] = (struct type_total){ type, { 0 } };
            hmap_put(&at, (uint64_t)(uintptr_t)type, (void *)(uintptr_t)(i = nr));
        }
        int64_t *v[2] = { rows[i - 1].v, total.v };
        for (int t = 0; t < 2; t++) {
            v[t][V_INUSE_OBJECTS]++;
            v[t][V_INUSE_SPACE] += (int64_t)m.g.size[k];
            if (hg_unreachable(&m.g, k)) {
                v[t][V_LEAKED_OBJECTS]++;
                v[t][V_LEAKED_SPACE] += (int64_t)m.g.size[k];
            }
        }
    }
    hmap_clear(&at);
    sort_index = o->index;
    if (nr)
        qsort(rows, nr, sizeof *rows, by_value);
    size_t shown = nr < o->nodecount ? nr : o->nodecount;
    while (shown && !rows[shown - 1].v[o->index])
        shown--;   /* as pprof: types with nothing of this value are not rows */
    if (o->json) {
        struct json j;
        json_init(&j, stdout);
        json_begin_object(&j);
        json_key(&j, "db"); json_str(&j, m.db->path);
        json_key(&j, "snapshot"); json_int(&j, m.snap);
        json_key(&j, "label"); json_str(&j, m.si.label);
        json_key(&j, "sample_index"); json_str(&j, value_names[o->index]);
        json_key(&j, "by"); json_str(&j, "type");
        json_key(&j, "total"); total_json(&j, total.v);
        json_key(&j, "rows");
        json_begin_array(&j);
        for (size_t i = 0; i < shown; i++) {
            json_begin_object(&j);
            json_key(&j, "type"); json_str(&j, rows[i].type);
            json_key(&j, "flat"); total_json(&j, rows[i].v);
            json_end_object(&j);
        }
        json_end_array(&j);
        json_end_object(&j);
        json_finish(&j);
    } else {
        char a[32], b[32];
        int64_t all = total.v[o->index], sum = 0;
        printf("Snapshot %lld of %s (%s%s%s), %s by type (the heap walk's objects, exact)\n", (long long)m.snap,
               m.db->path, m.si.trigger, m.si.label ? ": " : "", m.si.label ? m.si.label : "", value_names[o->index]);
        printf("Showing %zu of %zu types, %s total\n", shown, nr, fmt_value(a, sizeof a, all, o->index));
        printf("%12s %7s %7s  %s\n", "flat", "flat%", "sum%", "type");
        for (size_t i = 0; i < shown; i++) {
            sum += rows[i].v[o->index];
            printf("%12s %6.2f%% %6.2f%%  %s\n", fmt_value(b, sizeof b, rows[i].v[o->index], o->index),
                   all ? 100.0 * (double)rows[i].v[o->index] / (double)all : 0.0,
                   all ? 100.0 * (double)sum / (double)all : 0.0, rows[i].type);
        }
    }
    free(rows);
    snap_model_close(&m);
    return 0;
}
