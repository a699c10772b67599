/* options.h: the options the report commands share (--json, --sample-index, --by, --cum,
 * --nodecount), parsed with getopt_long, and small helpers around them. */
#ifndef HW_ANA_OPTIONS_H
#define HW_ANA_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "profile.h"
#include "report.h"

struct report_opts {
    bool json, cum, exit_code, all;   /* all: growth lists every class */
    int index;             /* sample index, default inuse_space */
    enum report_by by;     /* default line */
    size_t nodecount;      /* rows shown; default 20 in text, all in JSON */
};

/* Parse argv; returns the index of the first operand. Dies (2) on a bad option, printing
 * the usage; exits 0 after printing it for --help. */
int report_opts_parse(struct report_opts *o, int argc, char **argv, const char *usage);
/* "-2" names a snapshot (two before the latest), not an option: getopt_long would reject it
 * and permute argv. Hide such operands behind markers while it runs (values of options that
 * take one are left alone), then put them back where it left them. */
struct option;
struct negative_operands {
    char text[64][2];
    char *orig[64];
    size_t nr;
};
void negative_operands_hide(struct negative_operands *g, int argc, char **argv,
                            const struct option *longopts, const char *shortopts);
void negative_operands_restore(struct negative_operands *g, int argc, char **argv);

/* "heapwatch: error: ..." and the usage on stderr, then exit(2). */
__attribute__((noreturn, format(printf, 2, 3))) void die_usage(const char *usage, const char *fmt, ...);
/* The database named by the one optional operand argv[first] (default: the newest
 * heapwatch.*.db here), opened; dies on a second operand. */
struct hwdb;
struct hwdb *open_db_operand(int argc, char **argv, int first, const char *usage);
/* "sampled every 512 KiB" / "every allocation recorded". */
const char *report_rate_text(int64_t rate, char *buf, size_t size);
/* One warning if a module had no debug information. */
void warn_missing_debug(struct symcache *sc);

#endif
