/* This file implements `heapwatch run`: start a program under libheapwatch.so and report where
 * its database went. The program's exit status becomes ours (128+N for a signal), so run can
 * stand in for the program in scripts. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cmd.h"
#include "db.h"
#include "options.h"
#include "usage.h"

static void print_settings(FILE *out);

static const struct cmd_usage usage_run = {
    "run", "-- CMD [ARGS...]", "Run a program under libheapwatch.so; its exit status is run's (128+N for a signal). Says\n"
    "which databases the run wrote, its children's too, and which one is the command's.",
    NULL, print_settings,
};

/* libheapwatch.so next to this binary, or in ../lib/heapwatch/, or $HEAPWATCH_LIB. */
static char *find_shim(void)
{
    const char *env = getenv("HEAPWATCH_LIB");
    if (env && *env) {
        if (access(env, R_OK) < 0)
            die(EXIT_INPUT, "cannot use HEAPWATCH_LIB '%s': %s", env, strerror(errno));
        return realpath(env, NULL);
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        const char *candidates[] = { "%s/libheapwatch.so", "%s/../lib/heapwatch/libheapwatch.so" };
        for (size_t i = 0; i < 2; i++) {
            char *p = xasprintf(candidates[i], self);
            if (access(p, R_OK) == 0) {
                char *real = realpath(p, NULL);
                free(p);
                return real;
            }
            free(p);
        }
    }
    die(EXIT_INPUT, "cannot find libheapwatch.so next to heapwatch; set HEAPWATCH_LIB");
}

static void setenv_checked(const char *name, const char *value)
{
    if (setenv(name, value, 1) < 0)
        die(EXIT_SYSTEM, "cannot set %s: %s", name, strerror(errno));
}

/* An option that stands for a setting: its value is the variable's name. The shim checks
 * the value (a bad one is reported once and the default kept), as it does for the variable. */
static const char *set_variable(const struct opt *opt, const char *arg)
{
    setenv_checked(opt->value, arg ? arg : "1");
    return NULL;
}

/* How settings.def's defaults read in the help, by kind. */
static const char *shown_SIZE(uint64_t v, char *buf, size_t size)
{
    snprintf(buf, size, "%llu", (unsigned long long)v);
    return buf;
}
#define shown_UINT shown_SIZE
#define shown_BOOL shown_SIZE
static const char *shown_SIGNAL(int sig, char *buf, size_t size)
{
    const char *abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;
    if (abbrev)
        snprintf(buf, size, "SIG%s", abbrev);
    else
        snprintf(buf, size, "%d", sig);
    return buf;
}
static const char *shown_STRING(const char *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s", *s ? s : "none");
    return buf;
}

/* Every HEAPWATCH_* setting of schema/settings.def, its default and what it does. */
static void print_settings(FILE *out)
{
    char buf[64];
    fprintf(out, "settings (environment variables, read once when the traced program starts):\n");
#define HW_OPT(kind, field, name, def, help)                                                          \
    fprintf(out, "  HEAPWATCH_%s (default %s)\n      ", name, shown_##kind(def, buf, sizeof buf));   \
    print_wrapped(out, help, 6);
#include "../schema/settings.def"
#undef HW_OPT
}

/* One line of the manifest: a database a process of the run created. */
struct made {
    int pid, ppid, forked_from;
    char *path, *exe;
    int64_t snapshots;
};

/* Read the manifest the shim appended to; the latest entry for a path wins (an image that
 * exec'd another without a snapshot removed its file, and the next may have taken the name). */
static struct made *read_manifest(const char *path, size_t *nr)
{
    FILE *f = fopen(path, "r");
    struct made *v = NULL;
    size_t alloc = 0;
    *nr = 0;
    if (!f)
        return NULL;
    char line[2 * PATH_MAX + 64];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *fields[5], *save = NULL, *p = line;
        int k = 0;
        for (char *t; k < 5 && (t = strtok_r(p, "\t", &save)); p = NULL)
            fields[k++] = t;
        if (k < 4)
            continue;
        for (size_t i = 0; i < *nr; i++) {
            if (!strcmp(v[i].path, fields[3])) {
                free(v[i].path);
                free(v[i].exe);
                memmove(&v[i], &v[i + 1], (*nr - i - 1) * sizeof *v);  /* keep the order of creation */
                --*nr;
                break;
            }
        }
        ALLOC_GROW(v, *nr + 1, alloc);
        v[*nr] = (struct made){ atoi(fields[0]), atoi(fields[1]), atoi(fields[2]), xstrdup(fields[3]),
                                xstrdup(k > 4 ? fields[4] : ""), 0 };
        (*nr)++;
    }
    fclose(f);
    return v;
}

/* Say which databases the run wrote, and which one is the command's: the last image of the
 * process we started (a wrapper that exec'd the real program left nothing of its own). */
static void report(const char *manifest, pid_t pid)
{
    size_t nr, kept = 0;
    struct made *v = read_manifest(manifest, &nr);
    long command = -1;
    for (size_t i = 0; i < nr; i++) {
        int dbpid;
        if (access(v[i].path, F_OK) != 0 || !db_probe(v[i].path, &dbpid)) {
            free(v[i].path);
            free(v[i].exe);
            continue;
        }
        struct hwdb *db = db_open_readonly(v[i].path);
        v[i].snapshots = db_max_snapshot(db);
        db_close(db);
        v[kept] = v[i];
        if (v[kept].pid == pid)
            command = (long)kept;
        kept++;
    }
    if (!kept) {
        fprintf(stderr, "heapwatch: no database was written (see the messages above)\n");
    } else if (kept == 1) {
        fprintf(stderr, "heapwatch: profile written to %s%s%s\n", v[0].path,
                command == 0 ? "" : " (by a child process; the command itself wrote none)",
                v[0].snapshots ? "" : " (no snapshot: the process ended without exit(), or by a signal)");
    } else {
        fprintf(stderr, "heapwatch: %zu databases written%s:\n", kept,
                command >= 0 ? "" : " (the command itself wrote none)");
        for (size_t i = 0; i < kept; i++) {
            const char *slash = strrchr(v[i].exe, '/');
            char rel[64];
            if ((long)i == command)
                snprintf(rel, sizeof rel, "the command");
            else if (v[i].forked_from)
                snprintf(rel, sizeof rel, "fork of %d", v[i].forked_from);
            else
                snprintf(rel, sizeof rel, "child of %d", v[i].ppid);
            fprintf(stderr, "  %s  (pid %d, %s; %s%s)\n", v[i].path, v[i].pid, slash ? slash + 1 : v[i].exe, rel,
                    v[i].snapshots ? "" : "; no snapshot: it ended without exit(), or by a signal");
        }
    }
    for (size_t i = 0; i < kept; i++) {
        free(v[i].path);
        free(v[i].exe);
    }
    free(v);
}

/* An empty file for the manifest, in $TMPDIR or /tmp; NULL (with a warning) if neither works. */
static char *make_manifest(void)
{
    const char *dirs[] = { getenv("TMPDIR"), "/tmp" };
    for (size_t i = 0; i < 2; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        char *path = xasprintf("%s/heapwatch-run.XXXXXX", dirs[i]);
        int fd = mkstemp(path);
        if (fd >= 0) {
            close(fd);
            return path;
        }
        free(path);
    }
    fprintf(stderr, "heapwatch: warning: no writable temporary directory: the databases written will not be listed\n");
    return NULL;
}

int cmd_run(int argc, char **argv)
{
    const struct opt opts[] = {
        OPT_CALLBACK('o', "output", (void *)"HEAPWATCH_OUT", "PATH",
                     "database path (%p = pid, %e = program name); default heapwatch.%p.db", set_variable),
        OPT_CALLBACK(0, "rate", (void *)"HEAPWATCH_SAMPLE_RATE", "BYTES",
                     "mean bytes between sampled allocations (default 524288)", set_variable),
        OPT_CALLBACK(0, "full", (void *)"HEAPWATCH_SAMPLE_RATE", NULL,
                     "record the stack of every allocation (same as --rate 1)", set_variable),
        OPT_CALLBACK('e', "events", (void *)"HEAPWATCH_EVENTS", NULL,
                     "log every sampled allocation and free, for timeline, peak and lifetimes", set_variable),
        OPT_CALLBACK(0, "interval", (void *)"HEAPWATCH_INTERVAL", "SECONDS",
                     "take a snapshot every SECONDS seconds", set_variable),
        OPT_CALLBACK(0, "signal", (void *)"HEAPWATCH_SIGNAL", "SIG",
                     "signal that takes a snapshot (default SIGUSR2)", set_variable),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_run, PARSE_STOP_AT_OPERAND);
    if (argc == 0)
        die_with_usage(opts, &usage_run, "no command to run");
    char *shim = find_shim();
    /* Each traced process appends the database it creates to this file (HEAPWATCH_MANIFEST);
     * without one (no writable temporary directory) the command still runs, unreported. */
    char *manifest = make_manifest();
    if (manifest)
        setenv_checked("HEAPWATCH_MANIFEST", manifest);
    const char *old = getenv("LD_PRELOAD");
    char *preload = old && *old ? xasprintf("%s:%s", shim, old) : xstrdup(shim);
    setenv_checked("LD_PRELOAD", preload);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die(EXIT_SYSTEM, "cannot fork: %s", strerror(errno));
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "heapwatch: error: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    /* Like a shell: the child takes the terminal's signals, we wait it out. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die(EXIT_SYSTEM, "cannot wait for '%s': %s", argv[0], strerror(errno));
    if (manifest) {
        report(manifest, pid);
        unlink(manifest);
        free(manifest);
    }
    free(preload);
    free(shim);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
