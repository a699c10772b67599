/* This file implements leak suppressions: parsing LeakSanitizer's suppression file syntax,
 * its template matching, and heapwatch's built-in suppressions.
 *
 * Matching differs from LSan's TemplateMatch only where LSan gives up too early: LSan takes
 * the first occurrence of each literal piece and never backtracks, so "a*b$" fails on "abxb"
 * there and matches here. Whatever LSan matches, this matches too, so a suppression file
 * written for LSan suppresses at least as much. */
#define _GNU_SOURCE
#include "suppress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "usage.h"

/* Compile a template into a plain glob: unanchored ends become '*'. */
static char *compile(const char *templ)
{
    size_t len = strlen(templ);
    bool start = templ[0] == '^';
    if (start) {
        templ++;
        len--;
    }
    bool end = len && templ[len - 1] == '$';
    if (end)
        len--;
    char *g = xmalloc(len + 3), *p = g;
    if (!start)
        *p++ = '*';
    memcpy(p, templ, len);
    p += len;
    if (!end)
        *p++ = '*';
    *p = '\0';
    return g;
}

/* Whether glob (only '*' special) matches all of str: the classic single-star backtracking
 * walk, linear in practice, never recursive. */
static bool glob_match(const char *g, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*g == '*') {
            star = g++;
            resume = s;
        } else if (*g == *s) {
            g++;
            s++;
        } else if (star) {
            g = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*g == '*')
        g++;
    return !*g;
}

bool suppress_match(const char *templ, const char *str)
{
    if (!str || !*str)
        return false;
    char *g = compile(templ);
    bool ok = glob_match(g, str);
    free(g);
    return ok;
}

static void add(struct suppressions *s, const char *pattern, size_t len, const char *origin)
{
    ALLOC_GROW(s->v, s->nr + 1, s->alloc);
    struct suppression *x = &s->v[s->nr++];
    memset(x, 0, sizeof *x);
    x->pattern = xstrndup(pattern, len);
    x->glob = compile(x->pattern);
    x->origin = xstrdup(origin);
}

int suppressions_parse(struct suppressions *s, const char *text, const char *origin)
{
    int lineno = 0;
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        if (!eol)
            eol = line + strlen(line);
        lineno++;
        const char *b = line, *e = eol;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        line = *eol ? eol + 1 : eol;
        if (b == e || *b == '#')
            continue;
        const char *colon = memchr(b, ':', (size_t)(e - b));
        if (!colon)
            return error("%s:%d: expected 'leak:PATTERN', not '%.*s'", origin, lineno, (int)(e - b), b);
        if (colon - b != 4 || memcmp(b, "leak", 4))
            return error("%s:%d: unknown suppression type '%.*s' (heapwatch knows 'leak')", origin, lineno,
                         (int)(colon - b), b);
        if (colon + 1 == e)
            return error("%s:%d: empty pattern after 'leak:' (it would suppress every leak; write 'leak:*')",
                         origin, lineno);
        char *where = xasprintf("%s:%d", origin, lineno);
        add(s, colon + 1, (size_t)(e - colon - 1), where);
        free(where);
    }
    return 0;
}

int suppressions_read(struct suppressions *s, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return error("cannot read suppressions '%s': %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, alloc = 0, n;
    char buf[65536];
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        ALLOC_GROW(text, len + n + 1, alloc);
        memcpy(text + len, buf, n);
        len += n;
    }
    int failed = ferror(f), saved = errno;
    fclose(f);
    if (failed) {
        free(text);
        return error("cannot read suppressions '%s': %s", path, strerror(saved));
    }
    if (!text)
        return 0;
    text[len] = '\0';
    if (memchr(text, '\0', len)) {
        free(text);
        return error("cannot read suppressions '%s': a binary file, not 'leak:PATTERN' lines", path);
    }
    int ret = suppressions_parse(s, text, path);
    free(text);
    return ret;
}

void suppressions_add_defaults(struct suppressions *s)
{
    /* LSan's kStdSuppressions (lsan_common.cpp): the dynamic TLS blocks that __tls_get_addr
     * allocates for dlopen'ed modules can be left behind by some glibc versions
     * (https://sourceware.org/bugzilla/show_bug.cgi?id=12650). */
    static const char std_suppressions[] = "leak:*tls_get_addr*\n";
    size_t first = s->nr;
    if (suppressions_parse(s, std_suppressions, "default") < 0)
        BUG("bad built-in suppressions");
    for (size_t i = first; i < s->nr; i++) {
        free(s->v[i].origin);
        s->v[i].origin = xstrdup("default");
    }
    /* LSan treats every block whose allocating caller is ld.so as reachable
     * (LeakSuppressionContext::SuppressInvalid): the loader's own bookkeeping, which glibc
     * reaches through places no root covers. One heapwatch meets: an exited thread's DTV
     * (_dl_allocate_tls) stays allocated while glibc caches its stack for reuse, and only
     * that cached stack, which is no longer any thread's, points at it. Leaf frame only: a
     * library constructor that leaks under dlopen still has ld.so further up its stack. */
    ALLOC_GROW(s->v, s->nr + 1, s->alloc);
    struct suppression *x = &s->v[s->nr++];
    memset(x, 0, sizeof *x);
    x->pattern = xstrdup("<allocated by the dynamic linker>");
    x->origin = xstrdup("default");
    x->linker_leaf = true;
}

/* The glibc dynamic linker: ld-linux-x86-64.so.2, ld-linux-aarch64.so.1, ld-linux.so.2,
 * ld64.so.2, ld.so.1. (musl's loader is libc itself, so it is never meant.) */
static bool is_dynamic_linker(const char *path)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path;
    return base && (!strncmp(base, "ld-linux", 8) || !strncmp(base, "ld64.so.", 8) || !strncmp(base, "ld.so.", 6));
}

static struct suppression *match_string(struct suppressions *s, const char *str)
{
    if (!str || !*str)
        return NULL;
    for (size_t i = 0; i < s->nr; i++)
        if (!s->v[i].linker_leaf && glob_match(s->v[i].glob, str))
            return &s->v[i];
    return NULL;
}

struct suppression *suppressions_match_stack(struct suppressions *s, struct location *const *locs, int depth)
{
    if (depth > 0 && locs[0]->module && is_dynamic_linker(locs[0]->module->path))
        for (size_t i = 0; i < s->nr; i++)
            if (s->v[i].linker_leaf)
                return &s->v[i];
    for (int d = 0; d < depth; d++) {
        const struct location *l = locs[d];
        struct suppression *x = match_string(s, l->module ? l->module->path : NULL);
        for (int k = 0; !x && k < l->nframes; k++) {
            x = match_string(s, l->frames[k].function);
            if (!x)
                x = match_string(s, l->frames[k].file);
        }
        if (x)
            return x;
    }
    return NULL;
}

void suppressions_release(struct suppressions *s)
{
    for (size_t i = 0; i < s->nr; i++) {
        free(s->v[i].pattern);
        free(s->v[i].glob);
        free(s->v[i].origin);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}
