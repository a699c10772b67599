/* This file implements the option parsing shared by the report commands. */
#define _GNU_SOURCE
#include "options.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "usage.h"

void die_usage(const char *usage, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("heapwatch: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s\n", usage);
    exit(EXIT_USAGE);
}

/* "-2" names a snapshot, not an option. getopt would reject it and permutes argv, so hide such
 * operands behind a marker while it runs and put them back where it left them. */
struct hidden_operand {
    char *marker, *orig;
};
static char marker_text[64][2];

static size_t hide_negative_operands(int argc, char **argv, struct hidden_operand *h)
{
    size_t n = 0;
    for (int i = 1; i < argc && n < 64; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            break;
        if (a[0] == '-' && a[1] >= '0' && a[1] <= '9' && !a[1 + strspn(a + 1, "0123456789")]) {
            marker_text[n][0] = '\x01';
            h[n].marker = marker_text[n];
            h[n].orig = argv[i];
            argv[i] = h[n].marker;
            n++;
        }
    }
    return n;
}

static void restore_operands(int argc, char **argv, const struct hidden_operand *h, size_t n)
{
    for (int i = 1; i < argc; i++)
        for (size_t k = 0; k < n; k++)
            if (argv[i] == h[k].marker)
                argv[i] = h[k].orig;
}

int report_opts_parse(struct report_opts *o, int argc, char **argv, const char *usage)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "sample-index", required_argument, NULL, 'i' },
        { "sample_index", required_argument, NULL, 'i' },
        { "by", required_argument, NULL, 'b' },
        { "cum", no_argument, NULL, 'c' },
        { "nodecount", required_argument, NULL, 'n' },
        { "exit-code", no_argument, NULL, 'e' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    memset(o, 0, sizeof *o);
    o->index = V_INUSE_SPACE;
    o->by = BY_LINE;
    bool nodecount_set = false;
    int c;
    struct hidden_operand hidden[64];
    size_t nhidden = hide_negative_operands(argc, argv, hidden);
    optind = 0;  /* glibc: full reinitialisation */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': o->json = true; break;
        case 'c': o->cum = true; break;
        case 'e': o->exit_code = true; break;
        case 'i':
            if ((o->index = value_index(optarg)) < 0)
                die_usage(usage, "unknown sample index '%s'", optarg);
            break;
        case 'b': {
            int by = report_by_parse(optarg);
            if (by < 0)
                die_usage(usage, "unknown grouping '%s' for --by", optarg);
            o->by = (enum report_by)by;
            break;
        }
        case 'n': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v <= 0)
                die_usage(usage, "--nodecount wants a positive number, not '%s'", optarg);
            o->nodecount = (size_t)v;
            nodecount_set = true;
            break;
        }
        case 'h':
            puts(usage);
            exit(0);
        case ':':
            die_usage(usage, "option '%s' needs a value", argv[optind - 1]);
        default:
            die_usage(usage, "unknown option '%s'", argv[optind - 1]);
        }
    }
    restore_operands(argc, argv, hidden, nhidden);
    if (!nodecount_set)
        o->nodecount = o->json ? SIZE_MAX : 20;
    return optind;
}

const char *report_rate_text(int64_t rate, char *buf, size_t size)
{
    if (rate <= 1)
        snprintf(buf, size, "%s", rate == 1 ? "every allocation recorded" : "no stacks recorded");
    else
        snprintf(buf, size, "sampled every %lld bytes on average (unbiased estimates)", (long long)rate);
    return buf;
}

void warn_missing_debug(struct symcache *sc)
{
    const char *mod;
    if (symcache_missing_debug(sc, &mod))
        warning("no debug information for '%s': its frames show function names only", mod);
}
