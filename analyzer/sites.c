/* This file implements sites.h. */
#define _GNU_SOURCE
#include "sites.h"

#include <stdio.h>
#include <string.h>
#include "symcache.h"

void site_of_stack(struct hwdb *db, struct symcache *sc, int64_t stack_id, struct site *out)
{
    memset(out, 0, sizeof *out);
    struct location *locs[PROFILE_MAX_DEPTH];
    int depth = profile_stack(db, sc, stack_id, locs, PROFILE_MAX_DEPTH);
    if (!depth)
        return;
    int skip = profile_wrapper_frames(locs, depth);
    const struct location *l = locs[skip];
    out->at = &l->frames[0];
    out->key_at = l->id;
    if (l->nframes > 1) {
        out->caller = &l->frames[1];   /* the function the allocating one was inlined into */
    } else if (skip + 1 < depth) {
        out->caller = &locs[skip + 1]->frames[0];
        out->key_caller = locs[skip + 1]->id;
    }
}

const char *site_text(const struct site *s, char *buf, size_t size)
{
    if (!s->at) {
        snprintf(buf, size, "(unsampled)");
        return buf;
    }
    int n;
    if (s->at->file) {
        const char *base = strrchr(s->at->file, '/');
        n = snprintf(buf, size, "%s %s:%d", s->at->function, base ? base + 1 : s->at->file, s->at->line);
    } else {
        n = snprintf(buf, size, "%s", s->at->function);
    }
    if (s->caller && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, " < %s", s->caller->function);
    return buf;
}

void site_json(struct json *j, const struct site *s)
{
    if (!s->at) {
        json_null(j);
        return;
    }
    json_begin_object(j);
    json_key(j, "function"); json_str(j, s->at->function);
    json_key(j, "file"); json_str(j, s->at->file);
    json_key(j, "line");
    if (s->at->line) json_int(j, s->at->line); else json_null(j);
    json_key(j, "caller"); json_str(j, s->caller ? s->caller->function : NULL);
    json_end_object(j);
}
