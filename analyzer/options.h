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
    bool json, cum, exit_code;
    int index;             /* sample index, default inuse_space */
    enum report_by by;     /* default line */
    size_t nodecount;      /* rows shown; default 20 in text, all in JSON */
};

/* Parse argv; returns the index of the first operand. Dies (2) on a bad option, printing
 * the usage; exits 0 after printing it for --help. */
int report_opts_parse(struct report_opts *o, int argc, char **argv, const char *usage);
__attribute__((noreturn)) void die_usage(const char *usage, const char *fmt, ...);
/* "sampled every 512 KiB" / "every allocation recorded". */
const char *report_rate_text(int64_t rate, char *buf, size_t size);
/* One warning if a module had no debug information. */
void warn_missing_debug(struct symcache *sc);

#endif
