/* This file implements the unit test of analyzer/symbolize*.c. It builds the target program
 * tests/unit/symtest_prog.c (+ symtest_prog.cpp) several ways into a temporary directory, runs
 * each build to learn the link-time addresses of known call sites, and checks what sym_lookup
 * makes of them: function names (C, inlined, C++ member and namespace function, demangled),
 * files and lines (the lines carrying "@mark" comments in the sources), the inline chain, for
 * DWARF 5 non-PIE, DWARF 4 PIE, a stripped file with a .gnu_debuglink debug file, a build
 * without -g, and a stripped build. Then libc.so.6 (malloc from its .dynsym; its debug file
 * when libc6-dbg is installed; a stripped copy), files that cannot be opened, truncated and
 * corrupted copies (no crash, no abort), and the time of 10,000 lookups. Prints TAP.
 *
 * Build and run from the top directory (these are the commands it was developed with):
 *   gcc -std=gnu11 -Wall -Wextra -Werror -O2 -g -Ianalyzer -o build/t-symbolize \
 *       tests/unit/t-symbolize.c analyzer/symbolize*.c analyzer/arena.c analyzer/usage.c \
 *       analyzer/hmap.c -ldwarf -lelf -lstdc++ && build/t-symbolize
 *   valgrind --leak-check=full --errors-for-leak-kinds=all --error-exitcode=1 build/t-symbolize
 * (tests/Makefile builds it as unit/bin/t-symbolize from the LINK lines below as well.) Under
 * valgrind the timing check is skipped; the whole run takes about 35 s there, 3 s without.
 * symtest_prog.c is looked for in argv[1], $T_SYMBOLIZE_SRCDIR, tests/unit, unit, next to
 * this binary (tests/unit/bin/.. or build/../tests/unit) and where this file was compiled.
 * Needs gcc, g++, strip, objcopy, nm, head and cp on PATH. T_SYMBOLIZE_KEEP=1 keeps the
 * temporary directory. */
// LINK: analyzer/symbolize.c analyzer/symbolize_elf.c analyzer/symbolize_dwarf.c
// LINK: analyzer/symbolize_lines.c analyzer/symbolize_vars.c analyzer/symbolize_types.c
// LINK: analyzer/symbolize_typenames.c analyzer/symbolize_locals.c analyzer/symbolize_objsyms.c
// LINK: analyzer/arena.c analyzer/usage.c analyzer/hmap.c
#define _GNU_SOURCE
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"
#include "fixture.h"
#include "symbolize.h"
#include "usage.h"

#define MAXF 16

static char srcdir[PATH_MAX], work[PATH_MAX];

/* A build of symtest_prog: where it is and what it printed. */
struct prog {
    char *path;
    uint64_t slot[8]; /* return addresses recorded by symtest_record, link-time */
    uint64_t outer;   /* &symtest_outer, link-time */
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = s ? strlen(s) : 0, m = strlen(suffix);
    return s && n >= m && !strcmp(s + n - m, suffix);
}

/* The line of `path` that carries "@mark name", or -1. */
static int marker_line(const char *file, const char *name)
{
    char *path = xasprintf("%s/%s", srcdir, file), buf[512], key[128];
    FILE *f = fopen(path, "r");
    int line = 0, found = -1;
    snprintf(key, sizeof key, "@mark %s ", name);
    while (f && fgets(buf, sizeof buf, f)) {
        line++;
        if (strstr(buf, key)) {
            found = line;
            break;
        }
    }
    if (f)
        fclose(f);
    free(path);
    return found;
}

/* Run the build at p->path and parse "slot N ADDR" and "func symtest_outer ADDR". */
static bool prog_run(struct prog *p)
{
    char *cmd = xasprintf("'%s'", p->path), line[256];
    FILE *f = popen(cmd, "r");
    int slots = 0;
    free(cmd);
    if (!f)
        return false;
    while (fgets(line, sizeof line, f)) {
        int i;
        unsigned long a;
        if (sscanf(line, "slot %d %lx", &i, &a) == 2 && i >= 0 && i < 8) {
            p->slot[i] = a;
            slots++;
        } else if (sscanf(line, "func symtest_outer %lx", &a) == 1) {
            p->outer = a;
        }
    }
    return pclose(f) == 0 && slots == 4 && p->outer;
}

/* Compile and link one flavour of the target program; NULL on failure. */
static struct prog *prog_build(const char *name, const char *cflags, const char *ldflags)
{
    struct prog *p = xcalloc(1, sizeof *p);
    p->path = xasprintf("%s/%s", work, name);
    if (sh("gcc -std=gnu11 -O2 %s -c '%s/symtest_prog.c' -o '%s-c.o'", cflags, srcdir, p->path) ||
        sh("g++ -O0 %s -c '%s/symtest_prog.cpp' -o '%s-cxx.o'", cflags, srcdir, p->path) ||
        sh("g++ %s '%s-c.o' '%s-cxx.o' -o '%s'", ldflags, p->path, p->path, p->path) ||
        !prog_run(p)) {
        diag("cannot build or run %s", name);
        free(p->path);
        free(p);
        return NULL;
    }
    return p;
}

/* A copy of p's binary made by a shell command template with %1$s = source, %2$s = dest. */
static struct prog *prog_derive(const struct prog *p, const char *name, const char *cmd_fmt)
{
    struct prog *d = xcalloc(1, sizeof *d);
    *d = *p;
    d->path = xasprintf("%s/%s", work, name);
    char *cmd = xasprintf(cmd_fmt, p->path, d->path);
    int rc = sh("%s", cmd);
    free(cmd);
    if (rc) {
        free(d->path);
        free(d);
        return NULL;
    }
    return d;
}

static void prog_free(struct prog *p)
{
    if (p) {
        free(p->path);
        free(p);
    }
}

static bool frame_is(const struct sym_frame *f, const char *fn, const char *file_suffix, int line)
{
    bool ok = f->function && !strcmp(f->function, fn) &&
              (file_suffix ? ends_with(f->file, file_suffix) : !f->file) && f->line == line;
    if (!ok)
        diag("  got %s at %s:%d, want %s at *%s:%d", f->function ? f->function : "(null)",
             f->file ? f->file : "(null)", f->line, fn, file_suffix ? file_suffix : "(null)",
             line);
    return ok;
}

/* Everything a build with debug info (in the file or next to it) must resolve. */
static void check_debug_build(struct symbolizer *s, const struct prog *p, const char *what)
{
    struct sym_frame f[MAXF];
    int leaf = marker_line("symtest_prog.c", "inl_leaf_call");
    int mid = marker_line("symtest_prog.c", "inl_mid_call");
    int outer = marker_line("symtest_prog.c", "outer_call");
    int n;

    n = sym_lookup(s, p->path, NULL, p->slot[0] - 1, f, MAXF);
    CHECK(n == 3, "%s: inline chain has 3 frames (got %d)", what, n);
    if (n == 3) {
        CHECK(frame_is(&f[0], "inl_leaf", "/symtest_prog.c", leaf),
              "%s: innermost frame is the inlined leaf, line from the line table", what);
        CHECK(frame_is(&f[1], "inl_mid", "/symtest_prog.c", mid),
              "%s: middle frame is the inlined caller at its call site", what);
        CHECK(frame_is(&f[2], "symtest_outer", "/symtest_prog.c", outer),
              "%s: outermost frame is the real function at the call site", what);
    }
    CHECK(sym_has_debug_info(s, p->path), "%s: has debug info", what);

    n = sym_lookup(s, p->path, NULL, p->slot[2] - 1, f, MAXF);
    CHECK(n == 1 && frame_is(&f[0], "hwtest::Widget::poke(int)", "/symtest_prog.cpp",
                             marker_line("symtest_prog.cpp", "cpp_method_call")),
          "%s: C++ member function (DW_AT_specification), demangled", what);
    n = sym_lookup(s, p->path, NULL, p->slot[4] - 1, f, MAXF);
    CHECK(n == 1 && frame_is(&f[0], "hwtest::free_fn(int)", "/symtest_prog.cpp",
                             marker_line("symtest_prog.cpp", "cpp_free_call")),
          "%s: C++ function in a namespace, demangled", what);
    n = sym_lookup(s, p->path, NULL, p->slot[3] - 1, f, MAXF);
    CHECK(n == 1 && frame_is(&f[0], "symtest_plain_o0", "/symtest_prog.cpp",
                             marker_line("symtest_prog.cpp", "plain_call")),
          "%s: plain -O0 function", what);

    n = sym_lookup(s, p->path, NULL, p->outer, f, MAXF);
    CHECK(n >= 1 && !strcmp(f[n - 1].function, "symtest_outer") && f[n - 1].line > 0,
          "%s: function entry is in symtest_outer", what);
    n = sym_lookup(s, p->path, NULL, p->slot[0] - 1, f, 1);
    CHECK(n == 1 && !strcmp(f[0].function, "inl_leaf"), "%s: max 1 keeps the innermost frame",
          what);
    CHECK(sym_lookup(s, p->path, NULL, p->slot[0] - 1, f, 0) == 0, "%s: max 0 returns 0", what);
    n = sym_lookup(s, p->path, NULL, 0x10, f, MAXF);
    CHECK(n == 1 && !strcmp(f[0].function, "??") && !f[0].file && !f[0].line,
          "%s: an address outside everything is one \"??\" frame", what);
}

/* A build whose symbols are all there is: names, no files. */
static void check_symbols_only(struct symbolizer *s, const struct prog *p, const char *what)
{
    struct sym_frame f[MAXF];
    int n;

    n = sym_lookup(s, p->path, NULL, p->slot[0] - 1, f, MAXF);
    CHECK(n == 1 && frame_is(&f[0], "symtest_outer", NULL, 0),
          "%s: inlined call site named after the ELF symbol, no file", what);
    n = sym_lookup(s, p->path, NULL, p->slot[2] - 1, f, MAXF);
    CHECK(n == 1 && frame_is(&f[0], "hwtest::Widget::poke(int)", NULL, 0),
          "%s: C++ symbol demangled", what);
    n = sym_lookup(s, p->path, NULL, p->slot[3] - 1, f, MAXF);
    CHECK(n == 1 && frame_is(&f[0], "symtest_plain_o0", NULL, 0), "%s: C symbol", what);
    CHECK(!sym_has_debug_info(s, p->path), "%s: no debug info", what);
}

static bool is_malloc(const char *fn)
{
    return fn && (!strcmp(fn, "malloc") || !strcmp(fn, "__libc_malloc") || !strcmp(fn, "__malloc"));
}

/* Section `name` of the ELF file at path: file offset and size, via libelf. */
static bool section_of(const char *path, const char *name, uint64_t *off, uint64_t *size,
                       uint64_t *addr)
{
    int fd = open(path, O_RDONLY);
    Elf *elf = fd < 0 ? NULL : elf_begin(fd, ELF_C_READ, NULL);
    Elf_Scn *scn = NULL;
    size_t shstrndx;
    bool found = false;
    if (elf && !elf_getshdrstrndx(elf, &shstrndx)) {
        while (!found && (scn = elf_nextscn(elf, scn))) {
            GElf_Shdr sh;
            const char *n;
            if (gelf_getshdr(scn, &sh) && (n = elf_strptr(elf, shstrndx, sh.sh_name)) &&
                !strcmp(n, name)) {
                *off = sh.sh_offset;
                *size = sh.sh_size;
                if (addr)
                    *addr = sh.sh_addr;
                found = true;
            }
        }
    }
    elf_end(elf);
    if (fd >= 0)
        close(fd);
    return found;
}

static void test_libc(struct symbolizer *s)
{
    char libc[PATH_MAX] = "";
    struct sym_frame f[MAXF];
    uint64_t malloc_addr, off, size, text;
    int n;

    dl_iterate_phdr(find_libc, libc);
    malloc_addr = libc[0] ? dynsym_value(libc, "malloc") : 0;
    if (!CHECK(malloc_addr, "libc found (%s) and malloc in its .dynsym", libc))
        return;
    double t0 = now();
    n = sym_lookup(s, libc, NULL, malloc_addr + 8, f, MAXF);
    diag("libc: opened and read in %.3f s", now() - t0);
    CHECK(n >= 1 && is_malloc(f[n - 1].function), "libc: malloc+8 is in malloc or an alias (%s)",
          n >= 1 ? f[n - 1].function : "-");
    if (sym_has_debug_info(s, libc)) {
        diag("libc debug info: %s", sym_debug_file(s, libc));
        CHECK(n >= 1 && ends_with(f[n - 1].file, "malloc.c") && f[n - 1].line > 0,
              "libc with debug info: malloc is in malloc.c (%s:%d)",
              n >= 1 && f[n - 1].file ? f[n - 1].file : "-", n >= 1 ? f[n - 1].line : 0);
    } else {
        diag("libc has no debug info (libc6-dbg not installed): names only");
    }

    /* Without build id and debuglink nothing leads to debug info: .dynsym names only. */
    char *bare = xasprintf("%s/libc-bare.so", work);
    if (!sh("strip -R .note.gnu.build-id -R .gnu_debuglink -o '%s' '%s'", bare, libc)) {
        n = sym_lookup(s, bare, NULL, malloc_addr + 8, f, MAXF);
        CHECK(n == 1 && is_malloc(f[0].function) && !f[0].file && !f[0].line,
              "stripped libc copy: malloc from .dynsym, no file (%s)",
              n >= 1 ? f[0].function : "-");
        CHECK(!sym_has_debug_info(s, bare), "stripped libc copy: no debug info");
    }
    free(bare);

    /* A stripped copy that keeps its build id finds /usr/lib/debug/.build-id/xx/yyyy.debug. */
    if (sym_has_debug_info(s, libc)) {
        char *bid = xasprintf("%s/libc-bid.so", work);
        if (!sh("strip -R .gnu_debuglink -o '%s' '%s'", bid, libc)) {
            n = sym_lookup(s, bid, NULL, malloc_addr + 8, f, MAXF);
            CHECK(n >= 1 && ends_with(f[n - 1].file, "malloc.c") && sym_debug_file(s, bid) &&
                      strstr(sym_debug_file(s, bid), "/.build-id/"),
                  "stripped libc copy with build id: debug file found by build id");
        }
        free(bid);
    }

    /* 10,000 distinct addresses across .text, after the module is loaded. */
    if (!section_of(libc, ".text", &off, &size, &text) || size < 10000)
        return;
    double t1 = now();
    long frames = 0;
    for (int i = 0; i < 10000; i++) {
        n = sym_lookup(s, libc, NULL, text + size * (uint64_t)i / 10000, f, MAXF);
        frames += n > 0 ? n : 0;
    }
    double t2 = now();
    diag("libc: 10000 lookups in %.3f s, %ld frames", t2 - t1, frames);
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload"))
        CHECK(frames >= 10000, "libc: 10000 lookups resolve # SKIP timing under valgrind");
    else
        CHECK(frames >= 10000 && t2 - t1 < 1.0, "libc: 10000 lookups resolve in under 1 s");
}

static void test_unopenable(struct symbolizer *s)
{
    struct sym_frame f[MAXF];
    char *src = xasprintf("%s/symtest_prog.c", srcdir);
    char *empty = xasprintf("%s/empty", work);

    CHECK(sym_lookup(s, "/nonexistent/heapwatch/x.so", NULL, 0x1000, f, MAXF) == -1 &&
              strstr(sym_error(s), "/nonexistent/heapwatch/x.so"),
          "missing file: -1 and an error naming it (%s)", sym_error(s));
    CHECK(sym_lookup(s, "/nonexistent/heapwatch/x.so", NULL, 0x1000, f, MAXF) == -1,
          "missing file: still -1 from the cache");
    CHECK(!sym_has_debug_info(s, "/nonexistent/heapwatch/x.so"), "missing file: no debug info");
    CHECK(!sym_has_debug_info(s, "/never/asked"), "module never asked about: no debug info");
    CHECK(sym_lookup(s, src, NULL, 0x1000, f, MAXF) == -1 && strstr(sym_error(s), "not an ELF"),
          "non-ELF file: -1 (%s)", sym_error(s));
    if (!sh("cp /dev/null '%s'", empty))
        CHECK(sym_lookup(s, empty, NULL, 0x1000, f, MAXF) == -1, "empty file: -1");
    free(src);
    free(empty);
}

/* Any result is fine except a crash: -1, or n frames with names. */
static bool sane_result(struct symbolizer *s, const struct prog *p, const char *path)
{
    struct sym_frame f[MAXF];
    for (int i = 0; i < 8; i++) {
        if (!p->slot[i])
            continue;
        int n = sym_lookup(s, path, NULL, p->slot[i] - 1, f, MAXF);
        if (n < -1 || n == 0 || n > MAXF)
            return false;
        for (int k = 0; k < n; k++)
            if (!f[k].function)
                return false;
    }
    return true;
}

/* Overwrite `count` pseudo-random bytes of section `sec` in a copy of p's file. */
static char *corrupt_copy(const struct prog *p, const char *sec, int count, unsigned seed,
                          int at, int value)
{
    uint64_t off, size;
    char *path = xasprintf("%s/corrupt-%s-%u", work, sec + 1, seed);
    if (!section_of(p->path, sec, &off, &size, NULL) || !size ||
        sh("cp '%s' '%s'", p->path, path)) {
        free(path);
        return NULL;
    }
    int fd = open(path, O_WRONLY);
    for (int i = 0; fd >= 0 && i < count; i++) {
        seed = seed * 1103515245 + 12345;
        unsigned char b = at >= 0 ? (unsigned char)value : (unsigned char)(seed >> 16);
        uint64_t where = at >= 0 ? (uint64_t)at : (seed >> 8) % size;
        if (pwrite(fd, &b, 1, (off_t)(off + where)) != 1)
            break;
    }
    if (fd >= 0)
        close(fd);
    return path;
}

static void test_corrupt(struct symbolizer *s, const struct prog *p)
{
    static const char *const secs[] = { ".debug_info", ".debug_line", ".debug_abbrev",
                                        ".debug_str", ".debug_rnglists", ".debug_line_str" };
    struct sym_frame f[MAXF];
    char *path;
    bool ok = true;
    int tried = 0;

    /* A truncated file: libelf and libdwarf see sections that run past its end. */
    path = xasprintf("%s/truncated", work);
    if (!sh("head -c 6000 '%s' > '%s'", p->path, path))
        CHECK(sane_result(s, p, path), "truncated copy: no crash");
    free(path);

    /* A bad .debug_rnglists header makes libdwarf 20210528 double-free; we must not let it. */
    path = corrupt_copy(p, ".debug_rnglists", 1, 0, 4, 9);
    if (path) {
        int n = sym_lookup(s, path, NULL, p->slot[0] - 1, f, MAXF);
        CHECK(n == 1 && !strcmp(f[0].function, "symtest_outer") && !sym_has_debug_info(s, path),
              "bad .debug_rnglists header: DWARF skipped, ELF symbols used");
        free(path);
    }
    for (unsigned seed = 1; seed <= 24; seed++) {
        path = corrupt_copy(p, secs[seed % 6], 1 + (int)(seed * 7 % 40), seed, -1, 0);
        if (!path)
            continue;
        tried++;
        if (!sane_result(s, p, path)) {
            diag("bad result for %s", path);
            ok = false;
        }
        free(path);
    }
    CHECK(ok && tried > 0, "%d copies with corrupted DWARF sections: no crash, sane results",
          tried);
}

int main(int argc, char **argv)
{
    struct symbolizer *s;
    struct prog *p5, *p4, *nodebug, *stripped = NULL, *split = NULL;

    if (!find_srcdir(srcdir, argc > 1 ? argv[1] : NULL, "T_SYMBOLIZE_SRCDIR", "symtest_prog.cpp")) {
        printf("Bail out! symtest_prog.c not found: pass its directory as argv[1]\n");
        return 1;
    }
    if (!make_workdir(work, sizeof work, "t-symbolize"))
        return 1;
    elf_version(EV_CURRENT);
    diag("sources in %s, builds in %s", srcdir, work);

    p5 = prog_build("dwarf5-nopie", "-g", "-no-pie -rdynamic");
    p4 = prog_build("dwarf4-pie", "-gdwarf-4 -fPIE", "-pie -rdynamic");
    nodebug = prog_build("nodebug", "", "-no-pie -rdynamic");
    if (p5) {
        stripped = prog_derive(p5, "stripped", "strip -o '%2$s' '%1$s'");
        /* The debug file goes where gdb looks for a debuglink: <dir>/.debug/<name>. */
        char *cmd = xasprintf("mkdir -p '%s/.debug' && "
                              "objcopy --only-keep-debug '%%1$s' '%s/.debug/split.debug' && "
                              "strip -o '%%2$s' '%%1$s' && "
                              "objcopy --add-gnu-debuglink='%s/.debug/split.debug' '%%2$s'",
                              work, work, work);
        split = prog_derive(p5, "split", cmd);
        free(cmd);
    }
    CHECK(p5 && p4 && nodebug && stripped && split, "target program built in 5 flavours");

    s = sym_new();
    if (p5)
        check_debug_build(s, p5, "DWARF 5 non-PIE");
    if (p4)
        check_debug_build(s, p4, "DWARF 4 PIE");
    if (split) {
        check_debug_build(s, split, "stripped + .gnu_debuglink");
        CHECK(ends_with(sym_debug_file(s, split->path), "/.debug/split.debug"),
              "stripped + .gnu_debuglink: DWARF read from %s", sym_debug_file(s, split->path));
    }
    if (nodebug)
        check_symbols_only(s, nodebug, "no -g");
    if (stripped)
        check_symbols_only(s, stripped, "stripped (.dynsym only)");
    test_libc(s);
    test_unopenable(s);
    if (p5)
        test_corrupt(s, p5);
    sym_free(s);
    sym_free(NULL);

    prog_free(p5);
    prog_free(p4);
    prog_free(nodebug);
    prog_free(stripped);
    prog_free(split);
    if (!getenv("T_SYMBOLIZE_KEEP"))
        sh("rm -rf '%s'", work);
    return done();
}
