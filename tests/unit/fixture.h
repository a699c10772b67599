/* fixture.h: what the unit tests that build and read fixture programs share (t-symbolize,
 * t-dwarfvars, t-heapgraph): running a shell command, a clock, finding libc and a .dynsym
 * value, finding the directory of the fixture sources, a fresh directory for the builds. Header-only, like harness.h (include that first). */
#ifndef HW_TEST_FIXTURE_H
#define HW_TEST_FIXTURE_H

#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A fresh directory $TMPDIR/NAME.XXXXXX (TMPDIR defaults to /tmp) in work[size]; false, with
 * a TAP "Bail out!", when it cannot be made. */
__attribute__((unused)) static bool make_workdir(char *work, size_t size, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(work, size, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (mkdtemp(work))
        return true;
    printf("Bail out! cannot create a temporary directory %s\n", work);
    return false;
}

/* system() of the formatted command; says which failed. */
__attribute__((format(printf, 1, 2), unused)) static int sh(const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0)
        abort();
    va_end(ap);
    int rc = system(cmd);
    if (rc)
        diag("command failed (%d): %s", rc, cmd);
    free(cmd);
    return rc;
}

__attribute__((unused)) static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* dl_iterate_phdr callback: libc.so.6's path into arg (PATH_MAX bytes). */
__attribute__((unused)) static int find_libc(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    if (info->dlpi_name && strstr(info->dlpi_name, "/libc.so.6")) {
        snprintf(arg, PATH_MAX, "%s", info->dlpi_name);
        return 1;
    }
    return 0;
}

/* st_value of `name` in the .dynsym of path (through nm), 0 if absent. */
__attribute__((unused)) static uint64_t dynsym_value(const char *path, const char *name)
{
    char cmd[PATH_MAX + 64], line[512], sym[256];
    snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s'", path);
    FILE *f = popen(cmd, "r");
    uint64_t v = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a;
        char type;
        if (sscanf(line, "%lx %c %255s", &a, &type, sym) != 3)
            continue;
        sym[strcspn(sym, "@")] = '\0'; /* nm -D prints "malloc@@GLIBC_2.2.5" */
        if (!strcmp(sym, name))
            v = a;
    }
    if (f)
        pclose(f);
    return v;
}

/* The directory holding the fixture source `probe` into srcdir (PATH_MAX bytes): arg, then
 * $env, then the usual places relative to the test binary and the working directory. */
__attribute__((unused)) static bool find_srcdir(char *srcdir, const char *arg, const char *env, const char *probe)
{
    char here[PATH_MAX], exe[PATH_MAX], up[PATH_MAX + 16], top[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    if (strrchr(exe, '/'))
        *strrchr(exe, '/') = '\0';
    snprintf(up, sizeof up, "%s/..", exe);
    snprintf(top, sizeof top, "%s/../tests/unit", exe);
    snprintf(here, sizeof here, "%s", __FILE__);
    if (strrchr(here, '/'))
        *strrchr(here, '/') = '\0';
    else
        snprintf(here, sizeof here, ".");
    const char *cands[] = { arg, getenv(env), "tests/unit", "unit", up, top, here };
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        char path[PATH_MAX * 2];
        if (!cands[i])
            continue;
        snprintf(path, sizeof path, "%s/%s", cands[i], probe);
        if (!access(path, R_OK) && realpath(cands[i], srcdir))
            return true;
    }
    return false;
}

#endif
