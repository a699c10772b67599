/* This file implements `heapwatch export`: one snapshot written out for other tools, as a
 * gzip'd pprof profile (pprof.c), as folded stacks for Brendan Gregg's flamegraph.pl (the
 * stackcollapse format: "outer;...;inner VALUE", one line per distinct stack, sorted), or as
 * JSON holding every sample with its frames (innermost first, like pprof) and its values (Go's
 * four heap sample types, then leaked_objects and leaked_space: null when not marked).
 *
 * To add a format: write a renderer with the signature of struct format's fn, add it to
 * formats[] and to the --format help in parse(), and cover it in a tests/t6*.sh script. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmd.h"
#include "hmap.h"
#include "evprofile.h"
#include "json.h"
#include "options.h"
#include "pprof.h"
#include "profile.h"
#include "report.h"
#include "symcache.h"
#include "usage.h"

static const struct cmd_usage usage_export = {
    "export", "[SNAP]", "Write one snapshot out for other tools: a gzip'd pprof profile.proto (go tool pprof,\n"
    "Pyroscope, Parca), folded stacks for flamegraph.pl, or JSON with every sample.",
    SNAP_OPERAND_HELP, NULL,
};

struct export_opts {
    const char *output;   /* NULL or "-": standard output */
    int index;            /* sample index */
    const char *at;       /* --at: a moment of the event log, or NULL */
};

struct format {
    const char *name;
    /* Render p to out; output errors are checked by the caller. pprof writes its file itself. */
    void (*fn)(const struct profile *p, FILE *out, const struct export_opts *o);
};

/* ---- folded ---- */

struct folded {
    char *stack;
    int64_t v;
};

/* Append a function name; ';' separates frames, so a name keeps none. */
static void put_name(FILE *f, const char *name)
{
    for (const char *s = name ? name : "??"; *s; s++)
        fputc(*s == ';' ? ':' : *s == '\n' ? ' ' : *s, f);
}

/* "outer;...;inner" for one sample: locations reversed, each one's inlined frames expanded. */
static char *fold_stack(const struct sample *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        die(EXIT_SYSTEM, "out of memory folding a stack");
    bool first = true;
    for (int i = s->depth; i-- > 0;) {
        const struct location *l = s->locs[i];
        if (!l->nframes) {
            fprintf(f, "%s0x%llx", first ? "" : ";", (unsigned long long)l->pc);
            first = false;
        }
        for (int k = l->nframes; k-- > 0;) {
            if (!first)
                fputc(';', f);
            put_name(f, l->frames[k].function);
            first = false;
        }
    }
    if (first)
        fputs("[unknown]", f);
    if (fclose(f))
        die(EXIT_SYSTEM, "out of memory folding a stack");
    return buf;
}

static int cmp_folded(const void *a, const void *b)
{
    return strcmp(((const struct folded *)a)->stack, ((const struct folded *)b)->stack);
}

/* Stacks that fold to the same names (different PCs, same functions) become one line. */
static void render_folded(const struct profile *p, FILE *out, const struct export_opts *o)
{
    struct folded *v = xcalloc(p->nr, sizeof *v);
    size_t nr = 0;
    for (size_t i = 0; i < p->nr; i++) {
        if (!p->samples[i].v[o->index])
            continue;
        v[nr].stack = fold_stack(&p->samples[i]);
        v[nr++].v = p->samples[i].v[o->index];
    }
    qsort(v, nr, sizeof *v, cmp_folded);
    for (size_t i = 0; i < nr;) {
        size_t j = i;
        int64_t sum = 0;
        for (; j < nr && !strcmp(v[j].stack, v[i].stack); j++)
            sum += v[j].v;
        if (sum)
            fprintf(out, "%s %lld\n", v[i].stack, (long long)sum);
        i = j;
    }
    for (size_t i = 0; i < nr; i++)
        free(v[i].stack);
    free(v);
}

/* ---- json ---- */

static void frame_json(struct json *j, const struct location *l, int k)
{
    char pc[32];
    const struct frame *f = &l->frames[k];
    snprintf(pc, sizeof pc, "0x%llx", (unsigned long long)l->pc);
    json_begin_object(j);
    json_key(j, "function");
    json_str(j, f->function);
    json_key(j, "file");
    json_str(j, f->file);
    json_key(j, "line");
    json_int(j, f->line);
    json_key(j, "pc");
    json_str(j, pc);
    json_key(j, "module");
    json_str(j, l->module ? l->module->path : NULL);
    json_key(j, "inlined");   /* inlined into the next frame, at the same pc */
    json_bool(j, k + 1 < l->nframes);
    json_end_object(j);
}

static void sample_json(struct json *j, const struct sample *s, unsigned walked)
{
    json_begin_object(j);
    json_key(j, "stack_id");
    json_int(j, s->stack_id);
    json_key(j, "values");
    values_json_known(j, s->v, walked);
    json_key(j, "frames");
    json_begin_array(j);
    for (int i = 0; i < s->depth; i++)
        for (int k = 0; k < s->locs[i]->nframes; k++)
            frame_json(j, s->locs[i], k);
    json_end_array(j);
    json_end_object(j);
}

static void render_json(const struct profile *p, FILE *out, const struct export_opts *o)
{
    struct json j;
    (void)o;
    json_init(&j, out);
    json_begin_object(&j);
    json_key(&j, "db");
    json_str(&j, p->db ? p->db->path : NULL);
    json_key(&j, "snapshot");
    json_int(&j, p->snapshot);
    json_key(&j, "label");
    json_str(&j, p->label);
    json_key(&j, "trigger");
    json_str(&j, p->trigger);
    json_key(&j, "time_ns");
    json_int(&j, p->time_ns);
    json_key(&j, "sample_rate");
    json_int(&j, p->sample_rate);
    json_key(&j, "mode");
    json_str(&j, p->mode);
    json_key(&j, "sample_types");
    json_begin_array(&j);
    for (int i = 0; i < profile_nv(p); i++) {
        json_begin_object(&j);
        json_key(&j, "type");
        json_str(&j, value_names[i]);
        json_key(&j, "unit");
        json_str(&j, value_units[i]);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_key(&j, "total");
    values_json_known(&j, p->total, profile_known(p));
    json_key(&j, "samples");
    json_begin_array(&j);
    for (size_t i = 0; i < p->nr; i++)
        if (!sample_all_zero(&p->samples[i]))
            sample_json(&j, &p->samples[i], profile_known(p));
    json_end_array(&j);
    json_end_object(&j);
    json_finish(&j);
}

/* ---- tree: the json format's numbers with the stacks as a tree of frames ----
 * {"sample_types": [...], "total": {...}, "frames": [[function, file, line], ...],
 *  "nodes": [[parent, frame], ...], "samples": [[node, v0, v1, ...], ...]}: node 0 is the
 * root; a node is one frame (inlined frames are nodes of their own, as json lists them) below
 * its parent; a sample is the node of its innermost frame and its values in sample_types'
 * order (null for an unknown one). Identical paths share their nodes, so a profile of many
 * deep stacks stays small: what `heapwatch html` embeds. */
struct tree {
    struct hmap frame_ids, node_ids;   /* hash -> id + 1 */
    const struct frame **frames;
    size_t nr_frames, alloc_frames;
    uint32_t (*nodes)[2];
    size_t nr_nodes, alloc_nodes;
};

static uint32_t frame_id(struct tree *t, const struct frame *f)
{
    /* function and file are interned: their addresses identify them */
    uint64_t key = (uint64_t)(uintptr_t)f->function * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)f->file * 31 ^ (uint64_t)f->line;
    for (;; key++) {
        uintptr_t at = (uintptr_t)hmap_get(&t->frame_ids, key ? key : 1);
        if (!at)
            break;
        const struct frame *g = t->frames[at - 1];
        if (g->function == f->function && g->file == f->file && g->line == f->line)
            return (uint32_t)(at - 1);
    }
    ALLOC_GROW(t->frames, t->nr_frames + 1, t->alloc_frames);
    t->frames[t->nr_frames] = f;
    hmap_put(&t->frame_ids, key ? key : 1, (void *)(uintptr_t)(t->nr_frames + 1));
    return (uint32_t)t->nr_frames++;
}

static uint32_t node_id(struct tree *t, uint32_t parent, uint32_t frame)
{
    uint64_t key = ((uint64_t)parent << 32 | frame) + 1;
    uintptr_t at = (uintptr_t)hmap_get(&t->node_ids, key);
    if (at)
        return (uint32_t)(at - 1);
    ALLOC_GROW(t->nodes, t->nr_nodes + 1, t->alloc_nodes);
    t->nodes[t->nr_nodes][0] = parent;
    t->nodes[t->nr_nodes][1] = frame;
    hmap_put(&t->node_ids, key, (void *)(uintptr_t)(t->nr_nodes + 1));
    return (uint32_t)t->nr_nodes++;
}

static void render_tree(const struct profile *p, FILE *out, const struct export_opts *o)
{
    (void)o;
    struct tree t = { 0 };
    node_id(&t, 0, UINT32_MAX);   /* the root, node 0 */
    uint32_t *leaf = xmalloc((p->nr ? p->nr : 1) * sizeof *leaf);
    for (size_t i = 0; i < p->nr; i++) {
        const struct sample *s = &p->samples[i];
        uint32_t n = 0;
        for (int d = s->depth - 1; d >= 0; d--)   /* outermost first */
            for (int k = s->locs[d]->nframes - 1; k >= 0; k--)
                n = node_id(&t, n, frame_id(&t, &s->locs[d]->frames[k]));
        leaf[i] = n;
    }
    struct json j;
    json_init(&j, out);
    json_begin_object(&j);
    json_key(&j, "snapshot");
    json_int(&j, p->snapshot);
    json_key(&j, "sample_types");
    json_begin_array(&j);
    for (int i = 0; i < profile_nv(p); i++)
        json_str(&j, value_names[i]);
    json_end_array(&j);
    json_key(&j, "total");
    values_json_known(&j, p->total, profile_known(p));
    json_key(&j, "frames");
    json_begin_array(&j);
    for (size_t i = 0; i < t.nr_frames; i++) {
        json_begin_array(&j);
        json_str(&j, t.frames[i]->function);
        json_str(&j, t.frames[i]->file);
        json_int(&j, t.frames[i]->line);
        json_end_array(&j);
    }
    json_end_array(&j);
    json_key(&j, "nodes");
    json_begin_array(&j);
    for (size_t i = 1; i < t.nr_nodes; i++) {   /* node i is the array's (i - 1)th */
        json_begin_array(&j);
        json_int(&j, t.nodes[i][0]);
        json_int(&j, t.nodes[i][1]);
        json_end_array(&j);
    }
    json_end_array(&j);
    json_key(&j, "samples");
    json_begin_array(&j);
    unsigned known = profile_known(p);
    for (size_t i = 0; i < p->nr; i++) {
        if (sample_all_zero(&p->samples[i]))
            continue;
        json_begin_array(&j);
        json_int(&j, leaf[i]);
        for (int k = 0; k < profile_nv(p); k++) {
            if (VALUE_NEEDS_WALK(k) && !(known & VALUES_WALKED))
                json_null(&j);
            else
                json_int(&j, p->samples[i].v[k]);
        }
        json_end_array(&j);
    }
    json_end_array(&j);
    json_end_object(&j);
    json_finish(&j);
    free(leaf);
    free(t.frames);
    free(t.nodes);
    hmap_clear(&t.frame_ids);
    hmap_clear(&t.node_ids);
}

static const struct format formats[] = {
    { "pprof", NULL },
    { "folded", render_folded },
    { "json", render_json },
    { "tree", render_tree },
};

/* ---- command ---- */

static const struct format *find_format(const char *name)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (!strcmp(formats[i].name, name))
            return &formats[i];
    return NULL;
}

static const char *parse_format(const struct opt *opt, const char *arg)
{
    const struct format *fmt = find_format(arg);
    if (!fmt)
        return xasprintf("unknown format '%s' (pprof, folded, json or tree)", arg);
    *(const struct format **)opt->value = fmt;
    return NULL;
}

/* Parse options; returns the snapshot spec (default "latest") and sets *fmt. */
static const char *parse(int argc, char **argv, struct export_opts *o, const struct format **fmt)
{
    memset(o, 0, sizeof *o);
    o->index = V_INUSE_SPACE;
    *fmt = NULL;
    const struct opt opts[] = {
        OPT_CALLBACK('f', "format", fmt, "pprof|folded|json|tree",
                     "pprof: gzip'd profile.proto for `go tool pprof` (needs -o on a terminal)\n"
                     "folded: \"outer;...;inner VALUE\" lines for flamegraph.pl\n"
                     "json: every sample with its frames and its values\n"
                     "tree: the same, the stacks as a tree of frames (compact)", parse_format),
        OPT_STRING('o', "output", &o->output, "FILE", "write to FILE instead of standard output"),
        OPT_SAMPLE_INDEX(&o->index, SAMPLE_INDEX_HELP "\n(of folded lines; pprof's default sample type)"),
        OPT_STRING(0, "at", &o->at, "WHEN", "the heap at a moment, from the event log: peak, a time since its start"
                   " (2.5s, 300ms) or a snapshot; SNAP then names the database only"),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_export, 0);
    if (!*fmt)
        die_with_usage(opts, &usage_export, "missing --format (pprof, folded, json or tree)");
    if (argc > 1)
        die_with_usage(opts, &usage_export, "too many arguments");
    return argc ? argv[0] : "latest";
}

static bool to_stdout(const struct export_opts *o)
{
    return !o->output || !strcmp(o->output, "-");
}

/* Render a text format to -o FILE or stdout; dies (4) when the output cannot be written. */
static void write_text(const struct format *fmt, const struct profile *p, const struct export_opts *o)
{
    FILE *out = to_stdout(o) ? stdout : fopen(o->output, "w");
    if (!out)
        die(EXIT_SYSTEM, "cannot write '%s': %s", o->output, strerror(errno));
    fmt->fn(p, out, o);
    if (out == stdout) {
        if (fflush(out) || ferror(out))
            die(EXIT_SYSTEM, "cannot write to standard output: %s", strerror(errno));
    } else {
        bool failed = ferror(out);
        int saved = errno;
        if (fclose(out)) {
            failed = true;
            saved = errno;
        }
        if (failed)
            die(EXIT_SYSTEM, "cannot write '%s': %s", o->output, strerror(saved));
    }
}

int cmd_export(int argc, char **argv)
{
    struct export_opts o;
    const struct format *fmt;
    const char *spec = parse(argc, argv, &o, &fmt);
    bool pprof = !fmt->fn;
    if (pprof && to_stdout(&o) && isatty(STDOUT_FILENO))
        die(EXIT_USAGE, "not writing a binary pprof profile to a terminal: use -o FILE");
    struct hwdb *db;
    struct symcache *sc;
    struct profile p;
    if (o.at) {
        if (VALUE_NEEDS_WALK(o.index))
            die(EXIT_USAGE, "--at exports from the event log, which has no %s: only a snapshot's heap walk does",
                value_names[o.index]);
        char *path = strcmp(spec, "latest") ? xstrdup(spec) : db_default_path();
        db = db_open(path);
        free(path);
        char *label;
        int64_t max_events, t = ev_resolve_at(db, o.at, &label, &max_events);
        sc = symcache_open(db);
        profile_load_at(&p, db, sc, t, max_events, label);
        free(label);
    } else {
        int64_t snap;
        db = db_open_snapshot_spec(spec, &snap);
        sc = symcache_open(db);
        profile_load(&p, db, sc, snap);
        profile_add_temporaries(&p, VALUE_NEEDS_EVENTS(o.index));   /* when the database has a readable event log */
    }
    if (o.at || VALUE_NEEDS_EVENTS(o.index))
        profile_require_index(&p, o.index);
    int status = 0;
    if (pprof)
        status = pprof_write_index(&p, to_stdout(&o) ? "-" : o.output, o.index) ? EXIT_SYSTEM : 0;
    else
        write_text(fmt, &p, &o);
    warn_missing_debug(sc);
    profile_release(&p);
    symcache_close(sc);
    return status;
}
