/* options.h: the options the report commands share (--json, --sample-index, --by, --cum,
 * --nodecount, --exit-code, --all) as entries for their parse_options tables, and small
 * helpers around them. */
#ifndef HW_ANA_OPTIONS_H
#define HW_ANA_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "parse_options.h"
#include "profile.h"
#include "report.h"

struct report_opts {
    bool json, cum, exit_code, all;   /* all: growth lists every class */
    int index;             /* sample index, default inuse_space */
    enum report_by by;     /* default line */
    size_t nodecount;      /* rows shown; default 20 in text, all in JSON */
};

/* The defaults, before parsing. */
void report_opts_init(struct report_opts *o);
/* After parsing: the row count left unset becomes 20 in text, every row in JSON. */
void report_opts_finish(struct report_opts *o);

opt_callback parse_sample_index;   /* value: int * */
opt_callback parse_report_by;      /* value: enum report_by *; function, line, stack or type */
opt_callback parse_report_by_walk; /* the same, and the heap-walk groupings (groupings.h) */
opt_callback parse_nodecount;      /* value: size_t * */

/* What the [SNAP] operand of top, leaks and export means. */
#define SNAP_OPERAND_HELP                                                              \
    "SNAP is [DB:]ID: ID is a number, first, latest or -N (N before the latest); DB defaults\n" \
    "to the newest heapwatch.*.db in the current directory. Default: latest."

#define SAMPLE_INDEX_HELP                                                               \
    "inuse_space (default), inuse_objects, alloc_space, alloc_objects,\n"             \
    "leaked_space, leaked_objects, temporary_space or temporary_objects: the value reported"
#define OPT_SAMPLE_INDEX(v, help)                                                      \
    OPT_CALLBACK(0, "sample-index", (v), "NAME", (help), parse_sample_index),         \
    OPT_HIDDEN_CALLBACK("sample_index", (v), "NAME", parse_sample_index)
#define OPT_REPORT_BY(v)                                                               \
    OPT_CALLBACK(0, "by", (v), "function|line|stack|type",                            \
                 "group by function, by function and line (default), by whole stack, or by the type of\n" \
                 "the objects (inferred from DWARF; a heap walk's inuse and leaked values)", parse_report_by)
/* diff and growth: the stack groupings and those of a walked snapshot's heap. */
#define OPT_REPORT_BY_WALK(v)                                                          \
    OPT_CALLBACK(0, "by", (v), "function|line|stack|owner|type",                      \
                 "group by function, by function and line (default), by whole stack, by\n" \
                 "owner: the variables that retain the memory, and unreachable memory by\n" \
                 "allocation site, or by type (snapshots with a heap walk)", parse_report_by_walk)
#define OPT_NODECOUNT(v)                                                               \
    OPT_CALLBACK('n', "nodecount", (v), "N", "show the first N rows (default 20; every row with --json)", \
                 parse_nodecount)
#define OPT_JSON(v) OPT_BOOL(0, "json", (v), "the report as JSON")

/* Dies with the usage unless the options suit a heap-walk grouping (o->by is one): the
 * sample index must be inuse_space or inuse_objects, what a walk measures. */
void check_walk_options(const struct opt *opts, const struct cmd_usage *usage, const struct report_opts *o);

/* The database named by the one optional operand argv[0] (default: the newest
 * heapwatch.*.db here), opened; dies on a second operand. */
struct hwdb;
struct hwdb *open_db_operand(int nr_operands, char **operands, const struct opt *opts,
                             const struct cmd_usage *usage);
/* "sampled every 512 KiB" / "every allocation recorded". */
const char *report_rate_text(int64_t rate, char *buf, size_t size);
/* One warning if a module had no debug information. */
struct symcache;
void warn_missing_debug(struct symcache *sc);

#endif
