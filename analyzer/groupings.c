/* This file implements groupings.h: the table of groupings, loading one snapshot into rows,
 * the row set, and how a row is shown. */
#define _GNU_SOURCE
#include "groupings.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db.h"
#include "heapgraph.h"
#include "usage.h"

static const struct grouping groupings[] = {
    { BY_OWNER, "owner", group_owners },
    { BY_TYPE, "type", group_types },
};

const struct grouping *grouping_of(enum report_by by)
{
    for (size_t i = 0; i < sizeof groupings / sizeof groupings[0]; i++)
        if (groupings[i].by == by)
            return &groupings[i];
    return NULL;
}

bool group_snapshot(const struct grouping *gr, struct group_ctx *ctx, const struct snapshot_info *si,
                    struct group_rows *out)
{
    if (!si->marked && !strcmp(si->mode, "counters"))
        return false;
    db_require_heap_walk(ctx->db, si);   /* dies on missing blocks: every row would be wrong */
    struct heap_graph g;
    if (!heap_graph_load(&g, ctx->db, si->id))
        return false;
    gr->fn(&g, ctx, out);
    heap_graph_release(&g);
    return true;
}

struct group_row *group_rows_find(const struct group_rows *rows, const char *key)
{
    uintptr_t i = (uintptr_t)hmap_get(&rows->index, (uint64_t)(uintptr_t)key);
    return i ? &rows->v[i - 1] : NULL;
}

void group_rows_add(struct group_rows *rows, const struct group_row *r)
{
    struct group_row *have = group_rows_find(rows, r->key);
    if (have) {
        have->bytes += r->bytes;
        have->objects += r->objects;
        return;
    }
    ALLOC_GROW(rows->v, rows->nr + 1, rows->alloc);
    rows->v[rows->nr++] = *r;
    hmap_put(&rows->index, (uint64_t)(uintptr_t)r->key, (void *)(uintptr_t)rows->nr);
}

void group_rows_release(struct group_rows *rows)
{
    free(rows->v);
    hmap_clear(&rows->index);
    memset(rows, 0, sizeof *rows);
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

/* Appends to buf[0..size) after its first *n bytes, as snprintf would, keeping *n. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t size, size_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + (*n < size ? *n : size), *n < size ? size - *n : 0, fmt, ap);
    va_end(ap);
    *n += k > 0 ? (size_t)k : 0;
}

const char *group_row_text(const struct group_row *r, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    append(buf, size, &n, "%s", r->name);
    if (!strcmp(r->kind, "leak")) {
        if (r->file && r->line)
            append(buf, size, &n, " %s:%d", base_name(r->file), r->line);
        else if (r->file)
            append(buf, size, &n, " %s", base_name(r->file));
        return buf;
    }
    if (r->function && (!strcmp(r->kind, "static_local") || !strcmp(r->kind, "local")))
        append(buf, size, &n, " in %s", r->function);
    if (r->tid && (!strcmp(r->kind, "tls") || !strcmp(r->kind, "local")))
        append(buf, size, &n, " (thread %d)", r->tid);   /* the other kinds' names say it */
    if (r->type)
        append(buf, size, &n, " [%s]", r->type);
    if (r->module && strcmp(r->kind, "data") && strcmp(r->kind, "thread"))
        append(buf, size, &n, " in %s", base_name(r->module));
    return buf;
}

void group_row_json_identity(struct json *j, const struct group_row *r)
{
    json_key(j, "kind"); json_str(j, r->kind);
    json_key(j, "name"); json_str(j, r->name);
    json_key(j, "function"); json_str(j, r->function);
    json_key(j, "module"); json_str(j, r->module);
    json_key(j, "type"); json_str(j, r->type);
    json_key(j, "thread");
    if (r->tid) json_int(j, r->tid); else json_null(j);
    json_key(j, "file"); json_str(j, r->file);
    json_key(j, "line");
    if (r->line) json_int(j, r->line); else json_null(j);
}
