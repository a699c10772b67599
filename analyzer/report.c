/* This file implements aggregation into report rows. A sample's flat value goes to its leaf
 * frame (the innermost inlined frame of the first kept location); its cum value goes once to
 * every distinct key on its stack, so recursion is not counted twice (pprof's rule). */
#define _GNU_SOURCE
#include "report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "usage.h"

const char *const report_by_names[] = { "function", "line", "stack", "owner", "type" };

int report_by_parse(const char *s)
{
    for (int i = 0; i <= BY_TYPE; i++)
        if (!strcmp(s, report_by_names[i]))
            return i;
    return -1;
}

static uint64_t str_hash(const char *s, uint64_t seed)
{
    uint64_t h = seed ^ 0x9e3779b97f4a7c15ull;
    if (s)
        h ^= hash_bytes(s, strlen(s));
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t frame_key(const struct frame *f, enum report_by by)
{
    uint64_t h = str_hash(f->function, 1);
    if (by == BY_LINE)
        h = str_hash(f->file, h) ^ ((uint64_t)f->line * 0xc2b2ae3d27d4eb4full);
    return h ? h : 1;
}

static uint64_t stack_key(const struct sample *s)
{
    uint64_t h = 7;
    for (int i = 0; i < s->depth; i++)
        for (int k = 0; k < s->locs[i]->nframes; k++)
            h = frame_key(&s->locs[i]->frames[k], BY_LINE) ^ (h * 31);
    return h ? h : 1;
}

uint64_t report_flat_key(const struct sample *s, enum report_by by, const struct frame **f)
{
    if (!s->depth)
        return 0;
    *f = &s->locs[0]->frames[0];
    return by == BY_STACK ? stack_key(s) : frame_key(*f, by);
}

struct row *report_find(struct rows *rows, uint64_t key)
{
    uintptr_t i = (uintptr_t)hmap_get(&rows->index, key);
    return i ? &rows->v[i - 1] : NULL;
}

static struct row *get_row(struct rows *rows, uint64_t key, const struct frame *f, const struct sample *s)
{
    struct row *r = report_find(rows, key);
    if (r)
        return r;
    ALLOC_GROW(rows->v, rows->nr + 1, rows->alloc);
    r = &rows->v[rows->nr++];
    memset(r, 0, sizeof *r);
    r->key = key;
    if (f) {
        r->function = f->function;
        r->file = f->file;
        r->line = f->line;
    }
    r->sample = s;
    hmap_put(&rows->index, key, (void *)(uintptr_t)rows->nr);
    return r;
}

static void add(int64_t *dst, const int64_t *v)
{
    for (int i = 0; i < NV; i++)
        dst[i] += v[i];
}

/* A set of keys seen on the current stack, cleared in O(1) by bumping a generation. */
struct seen_set {
    uint64_t *keys;
    uint32_t *gen;
    uint32_t cur, mask;
};

/* Insert key; true if it was already there. */
static bool seen_add(struct seen_set *s, uint64_t key)
{
    for (uint32_t i = (uint32_t)(key ^ key >> 29) & s->mask;; i = (i + 1) & s->mask) {
        if (s->gen[i] != s->cur) {
            s->gen[i] = s->cur;
            s->keys[i] = key;
            return false;
        }
        if (s->keys[i] == key)
            return true;
    }
}

/* A location's frames as rows of one aggregation: each frame's key and row, found once per
 * location (a location is one pc, shared by every sample through it: a profile of millions
 * of deep stacks hashed each frame's strings and looked its row up millions of times). */
struct frame_row {
    uint64_t key;
    size_t row;   /* index in rows->v, which moves as it grows */
};

static const struct frame_row *location_rows(struct frame_row ***cache, size_t *ncache, const struct location *l,
                                             enum report_by by, struct rows *rows)
{
    if (l->id >= *ncache) {
        size_t n = *ncache ? *ncache : 64;
        while (n <= l->id)
            n *= 2;
        *cache = xrealloc(*cache, n * sizeof **cache);
        memset(*cache + *ncache, 0, (n - *ncache) * sizeof **cache);
        *ncache = n;
    }
    struct frame_row *fr = (*cache)[l->id];
    if (!fr && l->nframes) {
        fr = (*cache)[l->id] = xcalloc((size_t)l->nframes, sizeof *fr);
        for (int k = 0; k < l->nframes; k++) {
            fr[k].key = frame_key(&l->frames[k], by);
            fr[k].row = (size_t)(get_row(rows, fr[k].key, &l->frames[k], NULL) - rows->v);
        }
    }
    return fr;
}

void report_aggregate(const struct profile *p, enum report_by by, struct rows *rows)
{
    if (by > BY_STACK)
        BUG("report_aggregate by %s: a heap-walk grouping (groupings.h)", report_by_names[by]);
    struct seen_set seen = { .mask = 16383, .cur = 0 };
    seen.keys = xcalloc(seen.mask + 1, sizeof *seen.keys);
    seen.gen = xcalloc(seen.mask + 1, sizeof *seen.gen);
    struct frame_row **cache = NULL;
    size_t ncache = 0;
    for (size_t i = 0; i < p->nr; i++) {
        const struct sample *s = &p->samples[i];
        if (!s->depth)
            continue;
        if (by == BY_STACK) {
            struct row *r = get_row(rows, stack_key(s), &s->locs[0]->frames[0], s);
            add(r->flat, s->v);
            add(r->cum, s->v);
            continue;
        }
        seen.cur++;  /* at most 256 locations x 32 frames = 8192 keys: half full at worst */
        for (int d = 0; d < s->depth; d++) {
            const struct location *l = s->locs[d];
            const struct frame_row *fr = location_rows(&cache, &ncache, l, by, rows);
            for (int k = 0; k < l->nframes; k++) {
                struct row *r = &rows->v[fr[k].row];
                if (d == 0 && k == 0)
                    add(r->flat, s->v);
                if (!seen_add(&seen, fr[k].key))
                    add(r->cum, s->v);
            }
        }
    }
    for (size_t i = 0; i < ncache; i++)
        free(cache[i]);
    free(cache);
    free(seen.keys);
    free(seen.gen);
}

static int sort_idx;
static bool sort_cum;

static int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

static int cmp_rows(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    int64_t vx = abs64(sort_cum ? x->cum[sort_idx] : x->flat[sort_idx]);
    int64_t vy = abs64(sort_cum ? y->cum[sort_idx] : y->flat[sort_idx]);
    if (vx != vy)
        return vx > vy ? -1 : 1;
    int64_t cx = abs64(x->cum[sort_idx]), cy = abs64(y->cum[sort_idx]);
    if (cx != cy)
        return cx > cy ? -1 : 1;
    int c = strcmp(x->function ? x->function : "", y->function ? y->function : "");
    if (c)
        return c;
    c = strcmp(x->file ? x->file : "", y->file ? y->file : "");
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

void report_sort(struct rows *rows, int idx, bool by_cum)
{
    sort_idx = idx;
    sort_cum = by_cum;
    if (rows->nr)   /* v is NULL without rows: qsort's pointer must not be */
        qsort(rows->v, rows->nr, sizeof *rows->v, cmp_rows);
    hmap_clear(&rows->index);
    for (size_t i = 0; i < rows->nr; i++)
        hmap_put(&rows->index, rows->v[i].key, (void *)(uintptr_t)(i + 1));
}

void report_rows_release(struct rows *rows)
{
    free(rows->v);
    hmap_clear(&rows->index);
    memset(rows, 0, sizeof *rows);
}

const char *fmt_value(char *buf, size_t size, int64_t v, int idx)
{
    if (value_units[idx][0] == 'c') {
        snprintf(buf, size, "%" PRId64, v);
        return buf;
    }
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double d = (double)v;
    int u = 0;
    while ((d >= 1024 || d <= -1024) && u < 4) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRId64 "B", v);
    else
        snprintf(buf, size, "%.2f%s", d, units[u]);
    return buf;
}

static const char *base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path;
}

const char *row_name(const struct row *r, enum report_by by, char *buf, size_t size)
{
    if (by == BY_FUNCTION || !r->file) {
        snprintf(buf, size, "%s", r->function);
    } else if (by == BY_LINE) {
        snprintf(buf, size, "%s %s:%d", r->function, base_name(r->file), r->line);
    } else {
        size_t n = 0;
        buf[0] = '\0';
        const struct sample *s = r->sample;
        for (int d = 0; d < s->depth && n + 4 < size; d++)
            for (int k = 0; k < s->locs[d]->nframes && n + 4 < size; k++) {
                const struct frame *f = &s->locs[d]->frames[k];
                n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? " < " : "", f->function);
                if (f->file && n < size)
                    n += (size_t)snprintf(buf + n, size - n, " (%s:%d)", base_name(f->file), f->line);
            }
    }
    return buf;
}

static void frame_json(struct json *j, const char *function, const char *file, int line)
{
    json_key(j, "function");
    json_str(j, function);
    json_key(j, "file");
    json_str(j, file);
    json_key(j, "line");
    json_int(j, line);
}

void row_json_identity(struct json *j, const struct row *r, enum report_by by)
{
    if (by != BY_STACK) {
        frame_json(j, r->function, r->file, by == BY_LINE ? r->line : 0);
        return;
    }
    sample_frames_json(j, r->sample);
}

void sample_frames_json(struct json *j, const struct sample *s)
{
    json_key(j, "frames");
    json_begin_array(j);
    for (int d = 0; d < s->depth; d++)
        for (int k = 0; k < s->locs[d]->nframes; k++) {
            const struct frame *f = &s->locs[d]->frames[k];
            json_begin_object(j);
            frame_json(j, f->function, f->file, f->line);
            json_end_object(j);
        }
    json_end_array(j);
}

void values_json_known(struct json *j, const int64_t v[NV], unsigned known)
{
    json_begin_object(j);
    for (int i = 0; i < NV; i++) {
        if (VALUE_NEEDS_EVENTS(i) && !(known & VALUES_TEMPORARIES))
            continue;
        json_key(j, value_names[i]);
        if (VALUE_NEEDS_WALK(i) && !(known & VALUES_WALKED))
            json_null(j);
        else
            json_int(j, v[i]);
    }
    json_end_object(j);
}

static void int_or_null(struct json *j, const char *key, int64_t v, bool known)
{
    json_key(j, key);
    if (known)
        json_int(j, v);
    else
        json_null(j);
}

void snapshot_info_json(struct json *j, const struct snapshot_info *si)
{
    json_key(j, "time_ns"); json_int(j, si->time_ns);
    json_key(j, "label"); json_str(j, si->label);
    json_key(j, "trigger"); json_str(j, si->trigger);
    json_key(j, "mode"); json_str(j, si->mode);
    json_key(j, "threads"); json_int(j, si->threads);
    json_key(j, "threads_unstopped"); json_int(j, si->threads_unstopped);
    json_key(j, "live_objects"); json_int(j, si->live_objects);
    json_key(j, "live_bytes"); json_int(j, si->live_bytes);
    int_or_null(j, "reachable_objects", si->reachable_objects, si->marked);
    int_or_null(j, "reachable_bytes", si->reachable_bytes, si->marked);
    int_or_null(j, "indirect_objects", si->indirect_objects, si->marked);
    int_or_null(j, "indirect_bytes", si->indirect_bytes, si->marked);
    int_or_null(j, "leaked_objects", si->leaked_objects, si->marked);
    int_or_null(j, "leaked_bytes", si->leaked_bytes, si->marked);
    int_or_null(j, "scanned_bytes", si->scanned_bytes, si->has_scanned);
    json_key(j, "pause_ns"); json_int(j, si->pause_ns);
    json_key(j, "walk_ns"); json_int(j, si->walk_ns);
    json_key(j, "write_ns"); json_int(j, si->write_ns);
}
