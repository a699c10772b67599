/* This file implements the option parsing shared by the report commands. */
#define _GNU_SOURCE
#include "options.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db.h"
#include "symcache.h"
#include "usage.h"

void die_usage(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", usage);
    exit(EXIT_USAGE);
}

/* Whether argv element a is an option that consumes the next element as its value. */
static bool takes_value(const char *a, const struct option *longopts, const char *shortopts)
{
    if (a[0] != '-' || !a[1])
        return false;
    if (a[1] == '-') {
        if (strchr(a, '='))
            return false;
        for (const struct option *o = longopts; o->name; o++)
            if (!strcmp(a + 2, o->name))
                return o->has_arg == required_argument;
        return false;
    }
    const char *c = a[2] ? NULL : strchr(shortopts, a[1]);
    return c && c[1] == ':';
}

void negative_operands_hide(struct negative_operands *g, int argc, char **argv,
                            const struct option *longopts, const char *shortopts)
{
    g->nr = 0;
    for (int i = 1; i < argc && g->nr < 64; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            break;
        if (takes_value(a, longopts, shortopts)) {
            i++;
            continue;
        }
        if (a[0] == '-' && a[1] >= '0' && a[1] <= '9' && !a[1 + strspn(a + 1, "0123456789")]) {
            g->text[g->nr][0] = '\x01';
            g->orig[g->nr] = argv[i];
            argv[i] = g->text[g->nr++];
        }
    }
}

void negative_operands_restore(struct negative_operands *g, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        for (size_t k = 0; k < g->nr; k++)
            if (argv[i] == g->text[k])
                argv[i] = g->orig[k];
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
        { "all", no_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    memset(o, 0, sizeof *o);
    o->index = V_INUSE_SPACE;
    o->by = BY_LINE;
    bool nodecount_set = false;
    int c;
    struct negative_operands hidden;
    negative_operands_hide(&hidden, argc, argv, longopts, ":n:");
    optind = 0;  /* glibc: full reinitialisation */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': o->json = true; break;
        case 'c': o->cum = true; break;
        case 'e': o->exit_code = true; break;
        case 'a': o->all = true; break;
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
    negative_operands_restore(&hidden, argc, argv);
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

struct hwdb *open_db_operand(int argc, char **argv, int first, const char *usage)
{
    if (argc - first > 1)
        die_usage(usage, "too many arguments");
    char *path = first < argc ? xstrdup(argv[first]) : db_default_path();
    struct hwdb *db = db_open(path);
    free(path);
    return db;
}
