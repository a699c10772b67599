/* parse_options.h: command-line options as data (after git's parse-options.h). A command
 * lists its options in one table: names, a kind, a target and a help line. From that table
 * come the parsing, the usage line, the `--help` text and the error messages, so they cannot
 * drift apart.
 *
 *     bool json = false;
 *     const char *out = NULL;
 *     const struct opt opts[] = {
 *         OPT_STRING('o', "output", &out, "FILE", "write to FILE instead of standard output"),
 *         OPT_BOOL(0, "json", &json, "rows and totals as JSON"),
 *         OPT_END(),
 *     };
 *     static const struct cmd_usage usage = { "export", "[SNAP]", "what it does", NULL };
 *     argc = parse_options(argc, argv, opts, &usage, 0);   // argv[0..argc) are the operands
 *
 * Rules, as getopt_long's and git's: options and operands mix freely (unless
 * PARSE_STOP_AT_OPERAND); "--" ends the options; a long name may be shortened to any prefix
 * that names one option; a value follows as "--name=V", "--name V", "-xV" or "-x V"; "-h" and
 * "--help" print the help. Unlike getopt, "-2" is an operand (a snapshot two before the
 * latest), never an option. */
#ifndef HW_ANA_PARSE_OPTIONS_H
#define HW_ANA_PARSE_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

enum opt_kind {
    OPT_KIND_END,
    OPT_KIND_BOOL,       /* no value; *(bool *)value = defval */
    OPT_KIND_STRING,     /* *(const char **)value = the value */
    OPT_KIND_CALLBACK,   /* callback(opt, value); value is NULL when argh is NULL */
};

enum {
    OPT_HIDDEN = 1,      /* accepted, not shown: an old spelling kept for scripts */
};

struct opt;
/* Returns NULL when arg was taken, else the error message (from xasprintf or static). */
typedef const char *opt_callback(const struct opt *opt, const char *arg);

struct opt {
    enum opt_kind kind;
    char short_name;          /* 0: none */
    const char *long_name;    /* NULL: none */
    void *value;
    const char *argh;         /* the value's name in help ("FILE"); NULL: takes no value */
    const char *help;         /* may hold '\n': continuation lines are indented */
    unsigned flags;
    opt_callback *callback;
    int defval;
};

#define OPT_END() { .kind = OPT_KIND_END }
#define OPT_BOOL(s, l, v, h) { .kind = OPT_KIND_BOOL, .short_name = (s), .long_name = (l), .value = (v), .help = (h), .defval = 1 }
/* A flag that sets its target to false: --no-default-suppressions. */
#define OPT_CLEAR(s, l, v, h) { .kind = OPT_KIND_BOOL, .short_name = (s), .long_name = (l), .value = (v), .help = (h), .defval = 0 }
#define OPT_STRING(s, l, v, a, h) { .kind = OPT_KIND_STRING, .short_name = (s), .long_name = (l), .value = (v), .argh = (a), .help = (h) }
#define OPT_CALLBACK(s, l, v, a, h, f) { .kind = OPT_KIND_CALLBACK, .short_name = (s), .long_name = (l), .value = (v), .argh = (a), .help = (h), .callback = (f) }
/* An old spelling of an option, accepted and not shown in help. */
#define OPT_HIDDEN_CALLBACK(l, v, a, f) { .kind = OPT_KIND_CALLBACK, .long_name = (l), .value = (v), .argh = (a), .callback = (f), .flags = OPT_HIDDEN }

/* What a command's help says around its options. */
struct cmd_usage {
    const char *name;         /* "top" */
    const char *operands;     /* "[SNAP]"; NULL or "" when it takes none */
    const char *summary;      /* one line: what the command answers */
    const char *details;      /* NULL or more lines after the summary */
    /* NULL or a printer for more help after the options (run lists HEAPWATCH_* there). */
    void (*more_help)(FILE *out);
};

enum {
    PARSE_STOP_AT_OPERAND = 1,   /* the first operand and all after it are operands (run -- CMD) */
};

/* Parses argv[1..argc) (argv[0] is the command's name). Returns the number of operands,
 * moved to argv[0..n) in their order. On a bad option prints "heapwatch: error: ..." and the
 * usage line and exits 2; on -h/--help prints the help and exits 0. */
int parse_options(int argc, char **argv, const struct opt *opts, const struct cmd_usage *usage,
                  unsigned flags);

/* The parser without exits, for tests: returns the number of operands, or -1 with *error
 * set (xasprintf'd) on a bad option, or -2 for -h/--help. */
int parse_options_step(int argc, char **argv, const struct opt *opts, unsigned flags, char **error);

void usage_with_options(FILE *out, const struct opt *opts, const struct cmd_usage *usage);
/* "heapwatch: error: MSG", the usage line, and where the full help is; then exit(2). */
__attribute__((noreturn, format(printf, 3, 4))) void
die_with_usage(const struct opt *opts, const struct cmd_usage *usage, const char *fmt, ...);

/* text as lines of at most 92 columns, broken between words; the first line continues the
 * current one (already `indent` wide), the next ones are indented by `indent`. */
void print_wrapped(FILE *out, const char *text, int indent);

/* The name among names[0..nr) closest to `typed` when one is close enough to be a likely
 * typo (edit distance, as git's help.c), else NULL. */
const char *closest_name(const char *typed, const char *const *names, size_t nr);

#endif
