/* This file implements the unit test of analyzer/pprof.c: a profile built by hand (fake
 * modules and locations, no database) is written with pprof_write, checked by decoding its
 * top level here, then read back with `go tool pprof` (-raw and -top), which runs the
 * vendored google/pprof parser and its CheckValid. Prints TAP.
 *
 * Build and run from the top directory:
 *   gcc -std=gnu11 -Wall -Wextra -Werror -Ianalyzer -o build/t-pprof tests/unit/t-pprof.c \
 *       analyzer/pprof.c analyzer/usage.c analyzer/hmap.c -lz && build/t-pprof
 * T_PPROF_KEEP=1 keeps the written profile for a look with `go tool pprof`. */
// LINK: analyzer/pprof.c analyzer/values.c analyzer/usage.c analyzer/hmap.c
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "../schema/chunk.h"
#include "pprof.h"
#include "usage.h"

static int tests, failures;

static void check(bool ok, const char *what)
{
    tests++;
    if (!ok)
        failures++;
    printf("%sok %d - %s\n", ok ? "" : "not ", tests, what);
    fflush(stdout);
}

static void skip(const char *what, const char *why)
{
    printf("ok %d - %s # SKIP %s\n", ++tests, what, why);
}

/* ---- the profile under test ---- */

static struct module_info mods[] = {
    { 7, "/usr/bin/demo", "abcdef0123456789", 0, 0x400000, 0x500000, 7 },
    { 9, "/usr/lib/libfoo.so", NULL, 0x7f0000000000, 0x7f0000001000, 0x7f0000100000, 9 },
};

static struct frame f_inlined[] = {   /* innermost first */
    { "inner_inlined", "/src/demo.c", 12 },
    { "middle_inlined", "/src/demo.c", 30 },
    { "make_buffer", "/src/demo.c", 45 },
};
static struct frame f_main1[] = { { "main", "/src/demo.c", 80 } };
static struct frame f_main2[] = { { "main", "/src/demo.c", 82 } };
static struct frame f_foo[] = { { "foo_alloc", "/src/foo.c", 7 } };
static struct frame f_unknown[] = { { "0xdeadbeef", NULL, 0 } };
static struct frame f_unsampled[] = { { "(unsampled)", NULL, 0 } };

/* Location ids are all zero on purpose: the encoder must assign its own. */
static struct location l_inlined = { 0, 0x401010, &mods[0], 3, f_inlined };
static struct location l_main1 = { 0, 0x402020, &mods[0], 1, f_main1 };
static struct location l_main2 = { 0, 0x402040, &mods[0], 1, f_main2 };
static struct location l_foo = { 0, 0x7f0000001234, &mods[1], 1, f_foo };
static struct location l_unknown = { 0, 0xdeadbeef, NULL, 1, f_unknown };
static struct location l_unsampled = { 0, 0, NULL, 1, f_unsampled };   /* as profile.c makes it */

static struct location *s1[] = { &l_inlined, &l_main1 };
static struct location *s2[] = { &l_foo, &l_main2 };
static struct location *s3[] = { &l_unknown, &l_main1 };
static struct location *s4[] = { &l_foo, &l_main1 };
static struct location *s5[] = { &l_unsampled };

static struct sample samples[] = {
    { 1, 2, s1, { 10, 10240, 4, 4096, 2, 2048 } },   /* two of the four live blocks leaked */
    { 2, 2, s2, { 3, 300, 3, 300, 0, 0 } },
    { 3, 2, s3, { 0, 0, 0, 0, 0, 0 } },       /* left out */
    { 4, 2, s4, { 7, 700, 0, 0, 0, 0 } },     /* freed since */
    { 0, 1, s5, { 0, 0, 0, 0, 1, 16 } },      /* a leaked block whose allocation was not sampled */
};

static void make_profile(struct profile *p)
{
    memset(p, 0, sizeof *p);
    p->snapshot = 3;
    p->time_ns = 1700000000123456789;
    p->sample_rate = 524288;
    p->label = "warm";
    p->trigger = "api";
    p->samples = samples;
    p->nr = p->alloc = sizeof samples / sizeof samples[0];
}

/* ---- a minimal reader of the top level, independent of Go ---- */

struct decoded {
    int sample_types, samples, mappings, locations, functions, strings;
    char first_string[16];
    bool string0_empty, ok;
};

static unsigned char *gunzip(const char *path, size_t *len)
{
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return NULL;
    size_t alloc = 4096;
    unsigned char *b = xmalloc(alloc);
    int n;
    *len = 0;
    while ((n = gzread(gz, b + *len, (unsigned)(alloc - *len))) > 0) {
        *len += (size_t)n;
        if (*len == alloc)
            b = xrealloc(b, alloc *= 2);
    }
    gzclose(gz);
    return b;
}

/* Profile's varints are the database's (schema/chunk.h checks the codec byte by byte). */
static bool get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    return hw_varint_get(p, end, v);
}

/* Walk Profile's fields: every one must be a varint or a length-delimited field in bounds. */
static void decode(const unsigned char *p, size_t len, struct decoded *d)
{
    const unsigned char *end = p + len;
    memset(d, 0, sizeof *d);
    while (p < end) {
        uint64_t key, v;
        if (!get_varint(&p, end, &key))
            return;
        if ((key & 7) == 0) {
            if (!get_varint(&p, end, &v))
                return;
            continue;
        }
        if ((key & 7) != 2 || !get_varint(&p, end, &v) || v > (uint64_t)(end - p))
            return;
        switch (key >> 3) {
        case 1: d->sample_types++; break;
        case 2: d->samples++; break;
        case 3: d->mappings++; break;
        case 4: d->locations++; break;
        case 5: d->functions++; break;
        case 6:
            if (!d->strings++)
                d->string0_empty = v == 0;
            break;
        }
        p += v;
    }
    d->ok = true;
}

/* ---- go tool pprof ---- */

static char *run(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return xstrdup("");
    size_t len = 0, alloc = 4096;
    char *b = xmalloc(alloc);
    size_t n;
    while ((n = fread(b + len, 1, alloc - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == alloc)
            b = xrealloc(b, alloc *= 2);
    }
    b[len] = 0;
    pclose(f);
    return b;
}

/* Collapse runs of blanks into one space, so column widths do not matter. */
static char *squeeze(const char *s)
{
    char *out = xmalloc(strlen(s) + 1), *o = out;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t') {
            if (o > out && o[-1] != ' ' && o[-1] != '\n')
                *o++ = ' ';
        } else {
            if (*s == '\n' && o > out && o[-1] == ' ')
                o--;
            *o++ = *s;
        }
    }
    *o = 0;
    return out;
}

/* `go tool pprof ARGS -symbolize=none file` run in dir, with its caches there: the output. */
static char *pprof(const char *dir, const char *file, const char *args)
{
    char *cmd = xasprintf("cd %s && HOME=%s GOCACHE=%s/gocache PPROF_TMPDIR=%s GOFLAGS= "
                          "go tool pprof %s -symbolize=none %s 2>&1", dir, dir, dir, dir, args, file);
    char *out = run(cmd);
    return out;
}

static bool has(const char *out, const char *s)
{
    return strstr(out, s) != NULL;
}

/* a appears before b, and both appear. */
static bool ordered(const char *out, const char *a, const char *b)
{
    const char *x = strstr(out, a), *y = strstr(out, b);
    return x && y && x < y;
}

static void check_raw(const char *dir, const char *file)
{
    char *raw = pprof(dir, file, "-raw"), *out = squeeze(raw);
    bool parsed = has(out, "Samples:");
    check(parsed, "go tool pprof -raw parses the profile");
    if (!parsed)
        fprintf(stderr, "# %s\n", raw);
    check(has(out, "PeriodType: space bytes") && has(out, "Period: 524288"), "period type space/bytes, period = sample rate");
    check(has(out, "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes[dflt]"
                   " leaked_objects/count leaked_space/bytes"),
          "Go's four sample types in Go's order, inuse_space the default, then the two leaked ones");
    check(has(out, "10 10240 4 4096 2 2048: 1 2") && has(out, "3 300 3 300 0 0: 3 4") && has(out, "7 700 0 0 0 0: 3 2"),
          "sample values and leaf-first location ids");
    check(has(out, "0 0 0 0 1 16: 5") && has(out, "5: 0x0 (unsampled) :0"),
          "the unsampled pseudo-location: no address, no mapping");
    check(has(out, "bytes:[1024]") && has(out, "bytes:[100]"), "numeric label bytes = average block size");
    check(!has(out, "0xdeadbeef"), "all-zero sample and its location left out");
    check(ordered(out, "inner_inlined /src/demo.c:12", "middle_inlined /src/demo.c:30") &&
              ordered(out, "middle_inlined /src/demo.c:30", "make_buffer /src/demo.c:45"),
          "inlined frames in one location, innermost first");
    check(has(out, "1: 0x401010 M=1 inner_inlined") && has(out, "3: 0x7f0000001234 M=2 foo_alloc"),
          "location addresses and mapping ids");
    check(has(out, "main /src/demo.c:80") && has(out, "main /src/demo.c:82"), "both lines of main");
    check(has(out, "/usr/bin/demo abcdef0123456789 [FN][FL][LN][IN]") && has(out, "/usr/lib/libfoo.so [FN][FL][LN][IN]"),
          "mappings with file, build id and has_* flags");
    free(raw);
    free(out);

    raw = pprof(dir, file, "-top -sample_index=inuse_space");
    out = squeeze(raw);
    check(has(out, "Type: inuse_space") && has(out, "100% of 4396B total"), "-top: inuse_space total 4396 bytes");
    check(has(out, "4096B 93.18% 93.18% 4096B 93.18% inner_inlined (inline)") &&
              has(out, "300B 6.82% 100% 300B 6.82% foo_alloc"),
          "-top: flat values of the leaf functions, inlined one marked");
    check(has(out, "0 0% 100% 4396B 100% main") && has(out, "0 0% 100% 4096B 93.18% middle_inlined (inline)"),
          "-top: cum values through inlined and outer frames");
    check(has(out, "heapwatch snapshot 3, label 'warm', trigger 'api'"), "comment names the snapshot and label");
    if (!has(out, "inner_inlined"))
        fprintf(stderr, "# %s\n", raw);
    free(raw);
    free(out);

    raw = pprof(dir, file, "-top -sample_index=alloc_objects");
    out = squeeze(raw);
    check(has(out, "100% of 20 total") && has(out, "0 0% 100% 20 100% main"),
          "-top: alloc_objects counts");
    free(raw);
    free(out);

    raw = pprof(dir, file, "-top -sample_index=leaked_space -unit=B");
    out = squeeze(raw);
    check(has(out, "100% of 2064B total") && has(out, "2048B 99.22% 99.22% 2048B 99.22% inner_inlined (inline)") &&
              has(out, "16B 0.78% 100% 16B 0.78% (unsampled)"),
          "-top: leaked_space by leaf function, unsampled leaks under (unsampled)");
    if (!has(out, "(unsampled)"))
        fprintf(stderr, "# %s\n", raw);
    free(raw);
    free(out);
}

int main(void)
{
    char dir[] = "/tmp/t-pprof.XXXXXX";
    if (!mkdtemp(dir))
        die(1, "mkdtemp failed");
    char *file = xasprintf("%s/heap.pb.gz", dir);
    struct profile p;
    make_profile(&p);

    check(pprof_write(&p, file) == 0, "pprof_write succeeds");
    FILE *f = fopen(file, "rb");
    unsigned char magic[2] = { 0, 0 };
    check(f && fread(magic, 1, 2, f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b, "output is gzip");
    if (f)
        fclose(f);

    size_t len = 0;
    unsigned char *raw = gunzip(file, &len);
    struct decoded d;
    decode(raw, len, &d);
    check(d.ok, "top-level fields decode");
    check(d.string0_empty && d.strings > 1, "string table starts with \"\"");
    check(d.sample_types == 6 && d.samples == 4, "6 sample types, 4 non-zero samples");
    check(d.mappings == 2 && d.locations == 5 && d.functions == 6, "2 mappings, 5 locations, 6 functions (main once)");
    free(raw);

    if (system("command -v go >/dev/null 2>&1") == 0)
        check_raw(dir, file);
    else
        skip("go tool pprof checks", "go not installed");

    fprintf(stderr, "# expect two errors:\n");
    check(pprof_write(&p, "/nonexistent-dir/x.pb.gz") == -1, "unwritable path gives -1");
    if (access("/dev/full", W_OK) == 0)
        check(pprof_write(&p, "/dev/full") == -1, "write error (ENOSPC) gives -1");
    else
        skip("write error on /dev/full", "no /dev/full");

    if (getenv("T_PPROF_KEEP")) {
        fprintf(stderr, "# kept %s\n", file);
    } else {
        char *rm = xasprintf("rm -rf %s", dir);
        if (system(rm) != 0)
            fprintf(stderr, "# could not remove %s\n", dir);
        free(rm);
    }
    free(file);
    printf("1..%d\n", tests);
    return failures ? 1 : 0;
}
