/* This file implements the options shared by the report commands and their helpers. */
#define _GNU_SOURCE
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db.h"
#include "groupings.h"
#include "symcache.h"
#include "usage.h"

void report_opts_init(struct report_opts *o)
{
    memset(o, 0, sizeof *o);
    o->index = V_INUSE_SPACE;
    o->by = BY_LINE;
}

void report_opts_finish(struct report_opts *o)
{
    if (!o->nodecount)
        o->nodecount = o->json ? SIZE_MAX : 20;
}

const char *parse_sample_index(const struct opt *opt, const char *arg)
{
    int index = value_index(arg);
    if (index < 0)
        return xasprintf("unknown sample index '%s'", arg);
    *(int *)opt->value = index;
    return NULL;
}

const char *parse_report_by(const struct opt *opt, const char *arg)
{
    int by = report_by_parse(arg);
    if (by < 0)
        return xasprintf("unknown grouping '%s' for --by", arg);
    if (by == BY_OWNER)
        return xasprintf("--by %s is for diff and growth (one snapshot's owners: heapwatch owners)", arg);
    *(enum report_by *)opt->value = (enum report_by)by;
    return NULL;
}

const char *parse_report_by_walk(const struct opt *opt, const char *arg)
{
    int by = report_by_parse(arg);
    if (by < 0)
        return xasprintf("unknown grouping '%s' for --by", arg);
    *(enum report_by *)opt->value = (enum report_by)by;
    return NULL;
}

void check_walk_options(const struct opt *opts, const struct cmd_usage *usage, const struct report_opts *o)
{
    if (o->index != V_INUSE_SPACE && o->index != V_INUSE_OBJECTS)
        die_with_usage(opts, usage, "--by %s measures what is held at each snapshot: use --sample-index "
                       "inuse_space or inuse_objects, not %s", report_by_names[o->by], value_names[o->index]);
}

const char *parse_nodecount(const struct opt *opt, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || v <= 0)
        return xasprintf("--nodecount wants a positive number, not '%s'", arg);
    *(size_t *)opt->value = (size_t)v;
    return NULL;
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

struct hwdb *open_db_operand(int nr_operands, char **operands, const struct opt *opts,
                             const struct cmd_usage *usage)
{
    if (nr_operands > 1)
        die_with_usage(opts, usage, "too many arguments");
    char *path = nr_operands ? xstrdup(operands[0]) : db_default_path();
    struct hwdb *db = db_open(path);
    free(path);
    return db;
}
