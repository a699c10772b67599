/* This file implements `heapwatch run`: start a program under libheapwatch.so and report where
 * its database went. The program's exit status becomes ours (128+N for a signal), so run can
 * stand in for the program in scripts. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cmd.h"
#include "options.h"
#include "usage.h"

static const char usage_run[] =
    "usage: heapwatch run [-o PATH] [--rate BYTES|--full] [--interval SECONDS] [--signal SIG] -- CMD [ARGS...]\n"
    "  -o PATH           database path (%p = pid, %e = program name); default heapwatch.%p.db\n"
    "  --rate BYTES      mean bytes between sampled allocations (default 524288)\n"
    "  --full            record the stack of every allocation (same as --rate 1)\n"
    "  --interval SECS   take a snapshot every SECS seconds\n"
    "  --signal SIG      signal that takes a snapshot (default SIGUSR2)\n"
    "  other settings: HEAPWATCH_* environment variables (see README.md)";

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

/* Expand %p and %e of the output pattern for the message we print. */
static char *expand(const char *pattern, pid_t pid, const char *prog)
{
    char buf[PATH_MAX];
    size_t n = 0;
    for (const char *p = pattern; *p && n + 32 < sizeof buf; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%d", pid);
            p++;
        } else if (p[0] == '%' && p[1] == 'e') {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", prog);
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            buf[n++] = '%';
            p++;
        } else {
            buf[n++] = *p;
        }
    }
    buf[n] = '\0';
    return xstrdup(buf);
}

int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "output", required_argument, NULL, 'o' }, { "rate", required_argument, NULL, 'r' },
        { "full", no_argument, NULL, 'f' },         { "interval", required_argument, NULL, 'i' },
        { "signal", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *out = getenv("HEAPWATCH_OUT") ? getenv("HEAPWATCH_OUT") : "heapwatch.%p.db";
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+o:", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; setenv_checked("HEAPWATCH_OUT", optarg); break;
        case 'r': setenv_checked("HEAPWATCH_SAMPLE_RATE", optarg); break;
        case 'f': setenv_checked("HEAPWATCH_SAMPLE_RATE", "1"); break;
        case 'i': setenv_checked("HEAPWATCH_INTERVAL", optarg); break;
        case 's': setenv_checked("HEAPWATCH_SIGNAL", optarg); break;
        case 'h': puts(usage_run); return 0;
        default: die_usage(usage_run, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        die_usage(usage_run, "no command to run");
    char *shim = find_shim();
    const char *old = getenv("LD_PRELOAD");
    char *preload = old && *old ? xasprintf("%s:%s", shim, old) : xstrdup(shim);
    setenv_checked("LD_PRELOAD", preload);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die(EXIT_SYSTEM, "cannot fork: %s", strerror(errno));
    if (pid == 0) {
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "heapwatch: error: cannot run '%s': %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    /* Like a shell: the child takes the terminal's signals, we wait it out. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die(EXIT_SYSTEM, "cannot wait for '%s': %s", argv[optind], strerror(errno));
    const char *slash = strrchr(argv[optind], '/');
    char *db = expand(out, pid, slash ? slash + 1 : argv[optind]);
    if (access(db, F_OK) == 0)
        fprintf(stderr, "heapwatch: profile written to %s\n", db);
    free(db);
    free(preload);
    free(shim);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
