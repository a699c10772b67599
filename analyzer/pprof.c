/* This file implements the pprof exporter: a small hand-written encoder for google/pprof's
 * proto/profile.proto (the shape of google/pprof profile/proto.go) and the gzip wrapper that
 * `go tool pprof` expects on disk.
 *
 * The profile is encoded into one memory buffer, then deflated (gzip framing, windowBits
 * 15 + 16) to the output. Invariants:
 *   1. Every id is dense and 1-based in order of first use: locations as the samples meet
 *      them, mappings as the locations meet them, functions as the Lines meet them. They are
 *      the encoder's own, keyed by pointer (location, module) or by (name, file) string
 *      indexes (function); struct location's id and struct module_info's id are not used,
 *      so hand-built profiles with zero ids still give a valid profile (CheckValid rejects 0
 *      and duplicates).
 *   2. String index 0 is "", and NULL strings map to it; the string table is written last,
 *      once every other message has interned its strings.
 *   3. A nested message is written in place and its length prefixed when it ends
 *      (msg_begin/msg_end), as pprof's own encoder does. */
#define _GNU_SOURCE
#include "pprof.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "../schema/chunk.h"
#include "hmap.h"
#include "usage.h"


/* profile.proto field numbers (github.com/google/pprof, proto/profile.proto). */
enum {
    PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE = 2, PROFILE_MAPPING = 3, PROFILE_LOCATION = 4,
    PROFILE_FUNCTION = 5, PROFILE_STRING_TABLE = 6, PROFILE_TIME_NANOS = 9,
    PROFILE_PERIOD_TYPE = 11, PROFILE_PERIOD = 12, PROFILE_COMMENT = 13,
    PROFILE_DEFAULT_SAMPLE_TYPE = 14,
    VALUETYPE_TYPE = 1, VALUETYPE_UNIT = 2,
    SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE = 2, SAMPLE_LABEL = 3,
    LABEL_KEY = 1, LABEL_NUM = 3,
    MAPPING_ID = 1, MAPPING_MEMORY_START = 2, MAPPING_MEMORY_LIMIT = 3, MAPPING_FILENAME = 5,
    MAPPING_BUILD_ID = 6, MAPPING_HAS_FUNCTIONS = 7, MAPPING_HAS_FILENAMES = 8,
    MAPPING_HAS_LINE_NUMBERS = 9, MAPPING_HAS_INLINE_FRAMES = 10,
    LOCATION_ID = 1, LOCATION_MAPPING_ID = 2, LOCATION_ADDRESS = 3, LOCATION_LINE = 4,
    LINE_FUNCTION_ID = 1, LINE_LINE = 2,
    FUNCTION_ID = 1, FUNCTION_NAME = 2, FUNCTION_SYSTEM_NAME = 3, FUNCTION_FILENAME = 4,
};

enum { WIRE_VARINT = 0, WIRE_BYTES = 2 };

struct pbuf {
    unsigned char *b;
    size_t len, alloc;
};

struct fn {
    uint64_t name, file;   /* string indexes */
};

struct enc {
    struct pbuf out;
    const char **strs;                     /* the string table: interned copies, by index */
    size_t nr_strs, alloc_strs;
    struct strpool pool;
    struct hmap str_ids;                   /* interned string -> index (never 0) */
    const struct location **locs;          /* by id - 1 */
    size_t nr_locs, alloc_locs;
    struct hmap loc_ids;                   /* struct location * -> id */
    const struct module_info **mods;       /* by id - 1 */
    size_t nr_mods, alloc_mods;
    struct hmap mod_ids;                   /* struct module_info * -> id */
    struct fn *fns;                        /* by id - 1 */
    size_t nr_fns, alloc_fns;
    struct hmap fn_ids;                    /* name index << 32 | file index -> id */
};

static void put_raw(struct pbuf *b, const void *p, size_t n)
{
    ALLOC_GROW(b->b, b->len + n, b->alloc);
    memcpy(b->b + b->len, p, n);
    b->len += n;
}

/* Protobuf's varint is the database's (schema/chunk.h): one encoder for both. */
static void put_varint(struct pbuf *b, uint64_t v)
{
    uint8_t tmp[HW_VARINT_MAX];
    put_raw(b, tmp, (size_t)(hw_varint_put(tmp, v) - tmp));
}

static void put_tag(struct pbuf *b, int field, int wire)
{
    put_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

/* An optional int64 field: proto3 leaves zero out. Negative values take ten bytes. */
static void put_int(struct pbuf *b, int field, int64_t v)
{
    if (!v)
        return;
    put_tag(b, field, WIRE_VARINT);
    put_varint(b, (uint64_t)v);
}

static void put_bool(struct pbuf *b, int field, bool v)
{
    put_int(b, field, v);
}

static void put_bytes(struct pbuf *b, int field, const void *p, size_t n)
{
    put_tag(b, field, WIRE_BYTES);
    put_varint(b, n);
    put_raw(b, p, n);
}

/* Start a length-delimited field (submessage or packed run); pass the result to msg_end. */
static size_t msg_begin(struct pbuf *b, int field)
{
    put_tag(b, field, WIRE_BYTES);
    return b->len;
}

/* Prefix the bytes written since msg_begin with their length. */
static void msg_end(struct pbuf *b, size_t start)
{
    uint8_t tmp[HW_VARINT_MAX];
    size_t body = b->len - start, n = (size_t)(hw_varint_put(tmp, body) - tmp);
    ALLOC_GROW(b->b, b->len + n, b->alloc);
    memmove(b->b + start + n, b->b + start, body);
    memcpy(b->b + start, tmp, n);
    b->len += n;
}

/* The string table index of s, adding it on first use; NULL and "" are index 0. */
static uint64_t str_id(struct enc *e, const char *s)
{
    if (!s || !*s)
        return 0;
    s = strpool_intern(&e->pool, s);
    uint64_t idx = (uintptr_t)hmap_get(&e->str_ids, (uintptr_t)s);
    if (idx)
        return idx;
    idx = e->nr_strs;   /* >= 1: encode put "" at index 0 first */
    ALLOC_GROW(e->strs, e->nr_strs + 1, e->alloc_strs);
    e->strs[e->nr_strs++] = s;
    hmap_put(&e->str_ids, (uintptr_t)s, (void *)(uintptr_t)idx);
    return idx;
}

static uint64_t loc_id(struct enc *e, const struct location *l)
{
    uint64_t id = (uintptr_t)hmap_get(&e->loc_ids, (uintptr_t)l);
    if (id)
        return id;
    ALLOC_GROW(e->locs, e->nr_locs + 1, e->alloc_locs);
    e->locs[e->nr_locs++] = l;
    hmap_put(&e->loc_ids, (uintptr_t)l, (void *)(uintptr_t)e->nr_locs);
    return e->nr_locs;
}

static uint64_t mod_id(struct enc *e, const struct module_info *m)
{
    uint64_t id = (uintptr_t)hmap_get(&e->mod_ids, (uintptr_t)m);
    if (id)
        return id;
    ALLOC_GROW(e->mods, e->nr_mods + 1, e->alloc_mods);
    e->mods[e->nr_mods++] = m;
    hmap_put(&e->mod_ids, (uintptr_t)m, (void *)(uintptr_t)e->nr_mods);
    return e->nr_mods;
}

/* Functions are one per (name, file), as Go's profileBuilder keys them. */
static uint64_t fn_id(struct enc *e, const struct frame *f)
{
    struct fn fn = { str_id(e, f->function ? f->function : "??"), str_id(e, f->file) };
    uint64_t key = fn.name << 32 | fn.file;
    uint64_t id = (uintptr_t)hmap_get(&e->fn_ids, key);
    if (id)
        return id;
    ALLOC_GROW(e->fns, e->nr_fns + 1, e->alloc_fns);
    e->fns[e->nr_fns++] = fn;
    hmap_put(&e->fn_ids, key, (void *)(uintptr_t)e->nr_fns);
    return e->nr_fns;
}

static void put_value_type(struct enc *e, int field, const char *type, const char *unit)
{
    uint64_t t = str_id(e, type), u = str_id(e, unit);
    size_t m = msg_begin(&e->out, field);
    put_int(&e->out, VALUETYPE_TYPE, (int64_t)t);
    put_int(&e->out, VALUETYPE_UNIT, (int64_t)u);
    msg_end(&e->out, m);
}

/* One Sample: location ids leaf first, its values, and Go's "bytes" label. */
static void put_sample(struct enc *e, const struct sample *s, int nv)
{
    struct pbuf *b = &e->out;
    size_t m = msg_begin(b, PROFILE_SAMPLE);
    if (s->depth > 0) {
        size_t packed = msg_begin(b, SAMPLE_LOCATION_ID);
        for (int i = 0; i < s->depth; i++)
            put_varint(b, loc_id(e, s->locs[i]));
        msg_end(b, packed);
    }
    size_t packed = msg_begin(b, SAMPLE_VALUE);
    for (int i = 0; i < nv; i++)
        put_varint(b, (uint64_t)s->v[i]);
    msg_end(b, packed);
    /* runtime/pprof protomem.go: blockSize = AllocBytes / AllocObjects, labelled when nonzero. */
    int64_t block = s->v[V_ALLOC_OBJECTS] > 0 ? s->v[V_ALLOC_SPACE] / s->v[V_ALLOC_OBJECTS] : 0;
    if (block) {
        uint64_t key = str_id(e, "bytes");
        size_t label = msg_begin(b, SAMPLE_LABEL);
        put_int(b, LABEL_KEY, (int64_t)key);
        put_int(b, LABEL_NUM, block);
        msg_end(b, label);
    }
    msg_end(b, m);
}

/* Mappings say everything is symbolized already, so pprof never looks for the binaries. */
static void put_mapping(struct enc *e, uint64_t id, const struct module_info *mod)
{
    uint64_t file = str_id(e, mod->path), build_id = str_id(e, mod->build_id);
    struct pbuf *b = &e->out;
    size_t m = msg_begin(b, PROFILE_MAPPING);
    put_int(b, MAPPING_ID, (int64_t)id);
    put_int(b, MAPPING_MEMORY_START, (int64_t)mod->start);
    put_int(b, MAPPING_MEMORY_LIMIT, (int64_t)mod->end);
    put_int(b, MAPPING_FILENAME, (int64_t)file);
    put_int(b, MAPPING_BUILD_ID, (int64_t)build_id);
    put_bool(b, MAPPING_HAS_FUNCTIONS, true);
    put_bool(b, MAPPING_HAS_FILENAMES, true);
    put_bool(b, MAPPING_HAS_LINE_NUMBERS, true);
    put_bool(b, MAPPING_HAS_INLINE_FRAMES, true);
    msg_end(b, m);
}

/* One Location with a Line per frame, innermost (inlined) first, as in struct location. */
static void put_location(struct enc *e, uint64_t id, const struct location *l)
{
    struct pbuf *b = &e->out;
    size_t m = msg_begin(b, PROFILE_LOCATION);
    put_int(b, LOCATION_ID, (int64_t)id);
    if (l->module)
        put_int(b, LOCATION_MAPPING_ID, (int64_t)mod_id(e, l->module));
    put_int(b, LOCATION_ADDRESS, (int64_t)l->pc);
    for (int i = 0; i < l->nframes; i++) {
        uint64_t fn = fn_id(e, &l->frames[i]);
        size_t line = msg_begin(b, LOCATION_LINE);
        put_int(b, LINE_FUNCTION_ID, (int64_t)fn);
        put_int(b, LINE_LINE, l->frames[i].line > 0 ? l->frames[i].line : 0);
        msg_end(b, line);
    }
    msg_end(b, m);
}

static void put_function(struct enc *e, uint64_t id, const struct fn *fn)
{
    struct pbuf *b = &e->out;
    size_t m = msg_begin(b, PROFILE_FUNCTION);
    put_int(b, FUNCTION_ID, (int64_t)id);
    put_int(b, FUNCTION_NAME, (int64_t)fn->name);
    put_int(b, FUNCTION_SYSTEM_NAME, (int64_t)fn->name);
    put_int(b, FUNCTION_FILENAME, (int64_t)fn->file);
    msg_end(b, m);
}

/* "heapwatch snapshot 3, label 'warm', trigger 'signal'" for pprof's comments. */
static char *comment_text(const struct profile *p)
{
    bool label = p->label && *p->label, trigger = p->trigger && *p->trigger;
    if (!p->snapshot)
        return xasprintf("heapwatch event log at %s", label ? p->label : "a moment");
    return xasprintf("heapwatch snapshot %lld%s%s%s%s%s%s", (long long)p->snapshot,
                     label ? ", label '" : "", label ? p->label : "", label ? "'" : "",
                     trigger ? ", trigger '" : "", trigger ? p->trigger : "", trigger ? "'" : "");
}

/* Encode the whole Profile message into e->out, in the field order Go's runtime uses. */
static void encode(struct enc *e, const struct profile *p, int sample_index, const char *comment)
{
    ALLOC_GROW(e->strs, 1, e->alloc_strs);
    e->strs[e->nr_strs++] = "";   /* index 0, never looked up: str_id maps "" to it */
    int nv = profile_nv(p);
    for (int i = 0; i < nv; i++)
        put_value_type(e, PROFILE_SAMPLE_TYPE, value_names[i], value_units[i]);
    for (size_t i = 0; i < p->nr; i++)
        if (!sample_all_zero(&p->samples[i]))
            put_sample(e, &p->samples[i], nv);
    for (size_t i = 0; i < e->nr_locs; i++)
        if (e->locs[i]->module)
            mod_id(e, e->locs[i]->module);
    for (size_t i = 0; i < e->nr_mods; i++)
        put_mapping(e, i + 1, e->mods[i]);
    for (size_t i = 0; i < e->nr_locs; i++)
        put_location(e, i + 1, e->locs[i]);
    for (size_t i = 0; i < e->nr_fns; i++)
        put_function(e, i + 1, &e->fns[i]);
    put_int(&e->out, PROFILE_TIME_NANOS, p->time_ns);
    put_value_type(e, PROFILE_PERIOD_TYPE, "space", "bytes");
    put_int(&e->out, PROFILE_PERIOD, p->sample_rate > 1 ? p->sample_rate : 1);
    put_int(&e->out, PROFILE_COMMENT, (int64_t)str_id(e, comment));
    put_int(&e->out, PROFILE_DEFAULT_SAMPLE_TYPE, (int64_t)str_id(e, value_names[sample_index]));
    for (size_t i = 0; i < e->nr_strs; i++)
        put_bytes(&e->out, PROFILE_STRING_TABLE, e->strs[i], strlen(e->strs[i]));
}

static void enc_release(struct enc *e)
{
    strpool_clear(&e->pool);
    hmap_clear(&e->str_ids);
    hmap_clear(&e->loc_ids);
    hmap_clear(&e->mod_ids);
    hmap_clear(&e->fn_ids);
    free(e->out.b);
    free(e->strs);
    free(e->locs);
    free(e->mods);
    free(e->fns);
}

/* Gzip data into f. Returns 0, -1 with errno set on a write error, or -2 on a zlib error. */
static int gzip_to(FILE *f, const unsigned char *data, size_t len)
{
    z_stream z;
    unsigned char out[65536];
    int ret, status = 0;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -2;
    do {
        if (!z.avail_in && len) {
            /* avail_in is a uInt: feed big buffers in slices. */
            size_t n = len < (1u << 30) ? len : (1u << 30);
            z.next_in = (unsigned char *)data;
            z.avail_in = (uInt)n;
            data += n;
            len -= n;
        }
        z.next_out = out;
        z.avail_out = sizeof out;
        ret = deflate(&z, z.avail_in || len ? Z_NO_FLUSH : Z_FINISH);
        if (ret == Z_STREAM_ERROR) {
            status = -2;
            break;
        }
        size_t have = sizeof out - z.avail_out;
        if (have && fwrite(out, 1, have, f) != have) {
            status = -1;
            break;
        }
    } while (ret != Z_STREAM_END);
    deflateEnd(&z);
    return status;
}

/* Gzip the encoded profile to path ("-": stdout), reporting failures through error(). */
static int write_out(const struct pbuf *b, const char *path)
{
    bool to_stdout = !strcmp(path, "-");
    FILE *f = to_stdout ? stdout : fopen(path, "wb");
    if (!f)
        return error("cannot write '%s': %s", path, strerror(errno));
    int status = gzip_to(f, b->b, b->len);
    int saved = errno;
    if (to_stdout) {
        if (fflush(f) && !status) {
            status = -1;
            saved = errno;
        }
    } else if (fclose(f) && !status) {
        status = -1;
        saved = errno;
    }
    if (status == -2)
        return error("cannot compress the profile for '%s'", path);
    if (status)
        return error("cannot write '%s': %s", to_stdout ? "standard output" : path, strerror(saved));
    return 0;
}

int pprof_write_index(const struct profile *p, const char *path, int sample_index)
{
    if (sample_index < 0 || sample_index >= profile_nv(p))
        BUG("bad sample index %d", sample_index);
    struct enc e;
    memset(&e, 0, sizeof e);
    char *comment = comment_text(p);
    encode(&e, p, sample_index, comment);
    int ret = write_out(&e.out, path);
    enc_release(&e);
    free(comment);
    return ret;
}

int pprof_write(const struct profile *p, const char *path)
{
    return pprof_write_index(p, path, V_INUSE_SPACE);
}
