/* This file implements `heapwatch leaks`: a marked snapshot's unreachable objects grouped by
 * allocation stack, direct leaks first, reported in LeakSanitizer's shape (text) or as JSON,
 * with LSan-style suppressions (suppress.h). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "json.h"
#include "leaks.h"
#include "options.h"
#include "report.h"
#include "symcache.h"
#include "usage.h"

static const struct cmd_usage usage_leaks = {
    "leaks", "[SNAP]", "Unreachable blocks of a walked snapshot by allocation stack, direct leaks first, then\n"
    "indirect ones (reachable only from leaks), as LeakSanitizer reports them.",
    SNAP_OPERAND_HELP, NULL,
};

#define UNSAMPLED_TEXT "(allocation not sampled: run with HEAPWATCH_SAMPLE_RATE=1 for stacks)"

struct leaks_opts {
    bool json, exit_code, defaults;
    const char *suppressions;   /* NULL: none */
};

/* Parse options; returns the snapshot spec (default "latest"). */
static const char *parse(int argc, char **argv, struct leaks_opts *o)
{
    memset(o, 0, sizeof *o);
    o->defaults = true;
    const struct opt opts[] = {
        OPT_JSON(&o->json),
        OPT_BOOL(0, "exit-code", &o->exit_code, "exit 1 when an unsuppressed leak remains"),
        OPT_STRING(0, "suppressions", &o->suppressions, "FILE",
                   "LeakSanitizer syntax: 'leak:PATTERN' lines, '#' comments; a pattern\n"
                   "('*' wildcard, '^' '$' anchors) matched against every frame's\n"
                   "function, file and module suppresses the stack\n"
                   "(default: $HEAPWATCH_SUPPRESSIONS when set)"),
        OPT_CLEAR(0, "no-default-suppressions", &o->defaults,
                  "report glibc's own allocations too (leak:*tls_get_addr*, blocks\n"
                  "allocated by the dynamic linker)"),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_leaks, 0);
    if (argc > 1)
        die_with_usage(opts, &usage_leaks, "too many arguments");
    if (!o->suppressions) {
        const char *env = getenv("HEAPWATCH_SUPPRESSIONS");
        o->suppressions = env && *env ? env : NULL;
    }
    return argc ? argv[0] : "latest";
}

/* "    #3 0x401136 in leak_some /src/leak.c:12", inlined frames sharing their location's pc. */
static void print_stack(const struct sample *s)
{
    int n = 0;
    for (int d = 0; d < s->depth; d++) {
        const struct location *l = s->locs[d];
        for (int k = 0; k < l->nframes; k++) {
            const struct frame *f = &l->frames[k];
            printf("    #%d 0x%llx in %s", n++, (unsigned long long)l->pc, f->function);
            if (f->file && f->line)
                printf(" %s:%d\n", f->file, f->line);
            else if (f->file)
                printf(" %s\n", f->file);
            else if (l->module)
                printf(" (%s+0x%llx)\n", l->module->path, (unsigned long long)(l->pc - l->module->bias));
            else
                putchar('\n');
        }
    }
}

static void print_text(const struct leak_report *r, const struct suppressions *sup)
{
    const struct snapshot_info *si = &r->info;
    const struct leak_totals *t = &r->total;
    for (size_t i = 0; i < r->nr; i++) {
        const struct leak_row *row = &r->rows[i];
        printf("%s leak of %lld byte(s) in %lld object(s) allocated from:\n", row->kind == LEAK_DIRECT ? "Direct" : "Indirect",
               (long long)row->bytes, (long long)row->objects);
        if (row->stack_id)
            print_stack(&row->stack);
        else
            printf("    " UNSAMPLED_TEXT "\n");
        putchar('\n');
    }
    bool used = false;
    for (size_t i = 0; i < sup->nr; i++)
        used = used || sup->v[i].objects;
    if (used) {
        printf("-----------------------------------------------------\n"
               "Suppressions used:\n  %9s %12s %s\n", "count", "bytes", "template");
        for (size_t i = 0; i < sup->nr; i++)
            if (sup->v[i].objects)
                printf("  %9lld %12lld %s\n", (long long)sup->v[i].objects, (long long)sup->v[i].bytes, sup->v[i].pattern);
        printf("-----------------------------------------------------\n\n");
    }
    if (t->possible_objects)
        printf("Possibly lost (reachable only through interior pointers, memcheck's category): "
               "%lld byte(s) in %lld object(s).\n\n", (long long)t->possible_bytes, (long long)t->possible_objects);
    char suppressed[64] = "";
    if (t->suppressed_objects)
        snprintf(suppressed, sizeof suppressed, "; %lld suppressed", (long long)t->suppressed_objects);
    if (r->nr)
        printf("SUMMARY: heapwatch: %lld byte(s) leaked in %lld allocation(s) (snapshot %lld%s).\n",
               (long long)(t->leaked_bytes + t->indirect_bytes), (long long)(t->leaked_objects + t->indirect_objects),
               (long long)si->id, suppressed);
    else
        printf("SUMMARY: heapwatch: no leaks (snapshot %lld: %lld live object(s), %lld reachable%s).\n", (long long)si->id,
               (long long)t->live_objects, (long long)t->reachable_objects, suppressed);
}

static void json_count(struct json *j, const char *key, int64_t v)
{
    json_key(j, key);
    json_int(j, v);
}

static void print_json(const struct leak_report *r, const struct suppressions *sup, const char *path)
{
    const struct snapshot_info *si = &r->info;
    const struct leak_totals *t = &r->total;
    struct json j;
    json_init(&j, stdout);
    json_begin_object(&j);
    json_key(&j, "db"); json_str(&j, path);
    json_count(&j, "snapshot", si->id);
    json_key(&j, "label"); json_str(&j, si->label);
    json_key(&j, "mode"); json_str(&j, si->mode);
    json_count(&j, "threads_unstopped", si->threads_unstopped);
    json_key(&j, "total");
    json_begin_object(&j);
    json_count(&j, "live_objects", t->live_objects);
    json_count(&j, "live_bytes", t->live_bytes);
    json_count(&j, "reachable_objects", t->reachable_objects);
    json_count(&j, "reachable_bytes", t->reachable_bytes);
    json_count(&j, "indirect_objects", t->indirect_objects);
    json_count(&j, "indirect_bytes", t->indirect_bytes);
    json_count(&j, "leaked_objects", t->leaked_objects);
    json_count(&j, "leaked_bytes", t->leaked_bytes);
    json_count(&j, "suppressed_objects", t->suppressed_objects);
    json_count(&j, "suppressed_bytes", t->suppressed_bytes);
    json_count(&j, "possible_objects", t->possible_objects);
    json_count(&j, "possible_bytes", t->possible_bytes);
    json_end_object(&j);
    json_key(&j, "rows");
    json_begin_array(&j);
    for (size_t i = 0; i < r->nr; i++) {
        const struct leak_row *row = &r->rows[i];
        json_begin_object(&j);
        json_key(&j, "kind"); json_str(&j, leak_kind_names[row->kind]);
        json_count(&j, "objects", row->objects);
        json_count(&j, "bytes", row->bytes);
        json_count(&j, "stack_id", row->stack_id);
        sample_frames_json(&j, &row->stack);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_key(&j, "suppressions_used");
    json_begin_array(&j);
    for (size_t i = 0; i < sup->nr; i++) {
        if (!sup->v[i].objects)
            continue;
        json_begin_object(&j);
        json_key(&j, "pattern"); json_str(&j, sup->v[i].pattern);
        json_key(&j, "origin"); json_str(&j, sup->v[i].origin);
        json_count(&j, "objects", sup->v[i].objects);
        json_count(&j, "bytes", sup->v[i].bytes);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_end_object(&j);
    json_finish(&j);
}

int cmd_leaks(int argc, char **argv)
{
    struct leaks_opts o;
    const char *spec = parse(argc, argv, &o);
    /* Suppressions first: a bad file is a usage error, whatever the database says. */
    struct suppressions sup = { 0 };
    if (o.suppressions && suppressions_read(&sup, o.suppressions) < 0)
        exit(EXIT_USAGE);
    if (o.defaults)
        suppressions_add_defaults(&sup);
    int64_t snap;
    struct hwdb *db = db_open_snapshot_spec(spec, &snap);
    struct symcache *sc = symcache_open(db);
    struct leak_report r;
    leaks_load(&r, db, sc, snap, &sup);
    if (r.info.threads_unstopped)
        warning("snapshot %lld: %lld thread(s) did not stop in time and were scanned running; false leaks are possible",
                (long long)snap, (long long)r.info.threads_unstopped);
    if (o.json)
        print_json(&r, &sup, db->path);
    else
        print_text(&r, &sup);
    warn_missing_debug(sc);
    int rc = o.exit_code && r.nr ? EXIT_FINDINGS : 0;
    leaks_release(&r);
    suppressions_release(&sup);
    symcache_close(sc);
    return rc;
}
