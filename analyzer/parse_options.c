/* This file implements the table-driven option parser of parse_options.h: parsing, the usage
 * line, the --help text and the "did you mean" of every heapwatch command. */
#define _GNU_SOURCE
#include "parse_options.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "usage.h"

#define HELP_COLUMN 28   /* where option help starts in --help */
#define USAGE_WIDTH 96   /* usage lines wrap before this column */

static bool takes_value(const struct opt *o)
{
    return o->kind == OPT_KIND_STRING || (o->kind == OPT_KIND_CALLBACK && o->argh);
}

/* "--name" or "-x": how a message names the option. */
static char *display_name(const struct opt *o)
{
    return o->long_name ? xasprintf("--%s", o->long_name) : xasprintf("-%c", o->short_name);
}

/* Stores arg in the option's target; NULL or the error message. */
static char *apply(const struct opt *o, const char *arg)
{
    switch (o->kind) {
    case OPT_KIND_BOOL:
        *(bool *)o->value = o->defval != 0;
        return NULL;
    case OPT_KIND_STRING:
        *(const char **)o->value = arg;
        return NULL;
    case OPT_KIND_CALLBACK: {
        const char *msg = o->callback(o, arg);
        return msg ? xstrdup(msg) : NULL;
    }
    case OPT_KIND_END:
        break;
    }
    BUG("option kind %d", (int)o->kind);
}

/* Two entries are the same option when they set the same target the same way (an option
 * and its hidden old spelling). */
static bool same_option(const struct opt *a, const struct opt *b)
{
    return a->kind == b->kind && a->value == b->value && a->callback == b->callback && a->defval == b->defval;
}

static size_t count_visible_long(const struct opt *opts, const char **names)
{
    size_t n = 0;
    for (const struct opt *o = opts; o->kind != OPT_KIND_END; o++)
        if (o->long_name && !(o->flags & OPT_HIDDEN))
            names[n++] = o->long_name;
    names[n++] = "help";
    return n;
}

static size_t count_options(const struct opt *opts)
{
    size_t n = 0;
    while (opts[n].kind != OPT_KIND_END)
        n++;
    return n;
}

/* "unknown option '--X'", with the closest long name when one is a likely typo. */
static char *unknown_long(const struct opt *opts, const char *name, size_t len)
{
    const char **names = xcalloc(count_options(opts) + 1, sizeof *names);
    size_t nr = count_visible_long(opts, names);
    char *typed = xstrndup(name, len);
    const char *near = closest_name(typed, names, nr);
    char *msg = near ? xasprintf("unknown option '--%s'; did you mean '--%s'?", typed, near)
                     : xasprintf("unknown option '--%s'", typed);
    free(typed);
    free(names);
    return msg;
}

/* The option named by the first len bytes of name: an exact name, or a prefix of exactly one
 * option. NULL with *error set when none or several; NULL without error for --help. */
static const struct opt *find_long(const struct opt *opts, const char *name, size_t len, char **error)
{
    const struct opt *found = NULL;
    char *ambiguous = NULL;
    *error = NULL;
    if (len == 0) {
        *error = xasprintf("unknown option '%s'", name - 2);
        return NULL;
    }
    for (const struct opt *o = opts; o->kind != OPT_KIND_END; o++)
        if (o->long_name && strlen(o->long_name) == len && !memcmp(o->long_name, name, len))
            return o;
    if (len == 4 && !memcmp(name, "help", 4))
        return NULL;
    for (const struct opt *o = opts; o->kind != OPT_KIND_END; o++) {
        if (!o->long_name || strncmp(o->long_name, name, len))
            continue;
        if (!found) {
            found = o;
        } else if (!same_option(found, o)) {
            char *more = xasprintf("%s%s--%s", ambiguous ? ambiguous : "", ambiguous ? ", " : "", o->long_name);
            free(ambiguous);
            ambiguous = more;
        }
    }
    bool help_matches = len > 0 && !strncmp("help", name, len);
    if (found && (ambiguous || help_matches)) {
        *error = xasprintf("option '--%.*s' is ambiguous: --%s, %s%s", (int)len, name, found->long_name,
                           ambiguous ? ambiguous : "--help", ambiguous && help_matches ? ", --help" : "");
        free(ambiguous);
        return NULL;
    }
    if (!found && !help_matches)
        *error = unknown_long(opts, name, len);
    return found;
}

static const struct opt *find_short(const struct opt *opts, char c)
{
    for (const struct opt *o = opts; o->kind != OPT_KIND_END; o++)
        if (o->short_name == c)
            return o;
    return NULL;
}

static bool is_negative_number(const char *a)
{
    return a[0] == '-' && a[1] >= '0' && a[1] <= '9' && !a[1 + strspn(a + 1, "0123456789")];
}

/* One "--name[=value]" at argv[*i]; *i moves past a separate value. 0, -1 (error), -2 (help). */
static int parse_long(int argc, char **argv, int *i, const struct opt *opts, char **error)
{
    const char *name = argv[*i] + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct opt *o = find_long(opts, name, len, error);
    if (!o)
        return *error ? -1 : -2;
    char *shown = display_name(o);
    const char *arg = NULL;
    if (!takes_value(o)) {
        if (eq) {
            *error = xasprintf("option '%s' takes no value", shown);
            free(shown);
            return -1;
        }
    } else if (eq) {
        arg = eq + 1;
    } else if (*i + 1 < argc) {
        arg = argv[++*i];
    } else {
        *error = xasprintf("option '%s' needs a value", shown);
        free(shown);
        return -1;
    }
    free(shown);
    *error = apply(o, arg);
    return *error ? -1 : 0;
}

/* One cluster "-abV" at argv[*i]. */
static int parse_short(int argc, char **argv, int *i, const struct opt *opts, char **error)
{
    for (const char *p = argv[*i] + 1; *p; p++) {
        const struct opt *o = find_short(opts, *p);
        if (!o) {
            if (*p == 'h')
                return -2;
            *error = xasprintf("unknown option '-%c'", *p);
            return -1;
        }
        const char *arg = NULL;
        if (takes_value(o)) {
            if (p[1])
                arg = p + 1;
            else if (*i + 1 < argc)
                arg = argv[++*i];
            else {
                *error = xasprintf("option '-%c' needs a value", *p);
                return -1;
            }
        }
        if ((*error = apply(o, arg)))
            return -1;
        if (arg)
            break;
    }
    return 0;
}

int parse_options_step(int argc, char **argv, const struct opt *opts, unsigned flags, char **error)
{
    char **operands = xcalloc((size_t)argc + 1, sizeof *operands);
    int n = 0, rc = 0;
    *error = NULL;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            while (++i < argc)
                operands[n++] = argv[i];
        } else if (a[0] != '-' || !a[1] || is_negative_number(a)) {
            operands[n++] = argv[i];
            if (flags & PARSE_STOP_AT_OPERAND)
                while (++i < argc)
                    operands[n++] = argv[i];
        } else if (a[1] == '-') {
            rc = parse_long(argc, argv, &i, opts, error);
        } else {
            rc = parse_short(argc, argv, &i, opts, error);
        }
    }
    if (rc == 0) {
        memcpy(argv, operands, (size_t)n * sizeof *argv);
        argv[n] = NULL;
        rc = n;
    }
    free(operands);
    return rc;
}

/* The usage line(s): "usage: heapwatch NAME [OPERANDS] [--opt V]...", wrapped. Operands that
 * start with "--" (run's "-- CMD") come after the options, others before. */
static void print_usage_line(FILE *out, const struct opt *opts, const struct cmd_usage *u)
{
    char *head = xasprintf("usage: heapwatch %s", u->name);
    size_t indent = strlen(head) + 1, col = strlen(head);
    fputs(head, out);
    free(head);
    const char *operands = u->operands && *u->operands ? u->operands : NULL;
    bool operands_last = operands && !strncmp(operands, "--", 2);
    if (operands && !operands_last) {
        fprintf(out, " %s", operands);
        col += 1 + strlen(operands);
    }
    for (const struct opt *o = opts; o->kind != OPT_KIND_END; o++) {
        if (o->flags & OPT_HIDDEN)
            continue;
        char *name = display_name(o);
        char *item = takes_value(o) ? xasprintf("[%s %s]", name, o->argh) : xasprintf("[%s]", name);
        if (col + 1 + strlen(item) > USAGE_WIDTH) {
            fprintf(out, "\n%*s", (int)indent - 1, "");
            col = indent - 1;
        }
        fprintf(out, " %s", item);
        col += 1 + strlen(item);
        free(item);
        free(name);
    }
    if (operands_last) {
        if (col + 1 + strlen(operands) > USAGE_WIDTH)
            fprintf(out, "\n%*s", (int)indent - 1, "");
        fprintf(out, " %s", operands);
    }
    fputc('\n', out);
}

/* Text with '\n' continuation lines, each indented to `indent` after the first. */
static void print_indented(FILE *out, const char *text, int indent)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(out, "%.*s\n", (int)len, p);
        if (!nl)
            break;
        p = nl + 1;
        fprintf(out, "%*s", indent, "");
    }
}

static void print_option_help(FILE *out, const struct opt *o)
{
    int width;
    if (o->short_name && o->long_name)
        width = fprintf(out, "  -%c, --%s", o->short_name, o->long_name);
    else if (o->long_name)
        width = fprintf(out, "      --%s", o->long_name);
    else
        width = fprintf(out, "  -%c", o->short_name);
    if (takes_value(o))
        width += fprintf(out, " %s", o->argh);
    if (width >= HELP_COLUMN - 1)
        fprintf(out, "\n%*s", HELP_COLUMN, "");
    else
        fprintf(out, "%*s", HELP_COLUMN - width, "");
    print_indented(out, o->help, HELP_COLUMN);
}

void usage_with_options(FILE *out, const struct opt *opts, const struct cmd_usage *u)
{
    print_usage_line(out, opts, u);
    fprintf(out, "\n%s\n", u->summary);
    if (u->details)
        fprintf(out, "\n%s\n", u->details);
    fprintf(out, "\noptions:\n");
    for (const struct opt *o = opts; o->kind != OPT_KIND_END; o++)
        if (!(o->flags & OPT_HIDDEN))
            print_option_help(out, o);
    print_option_help(out, &(struct opt)OPT_BOOL('h', "help", NULL, "this help"));
    if (u->more_help) {
        fputc('\n', out);
        u->more_help(out);
    }
}

void die_with_usage(const struct opt *opts, const struct cmd_usage *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(fmt, ap);
    va_end(ap);
    print_usage_line(stderr, opts, u);
    fprintf(stderr, "'heapwatch help %s' describes every option.\n", u->name);
    exit(EXIT_USAGE);
}

int parse_options(int argc, char **argv, const struct opt *opts, const struct cmd_usage *u, unsigned flags)
{
    char *error;
    int n = parse_options_step(argc, argv, opts, flags, &error);
    if (n == -2) {
        usage_with_options(stdout, opts, u);
        exit(0);
    }
    if (n < 0)
        die_with_usage(opts, u, "%s", error);
    return n;
}

void print_wrapped(FILE *out, const char *text, int indent)
{
    int col = indent;
    const char *p = text;
    while (*p) {
        size_t word = strcspn(p, " ");
        if (col > indent && col + 1 + (int)word > 92) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        col += fprintf(out, "%.*s", (int)word, p);
        p += word;
        p += strspn(p, " ");
    }
    fputc('\n', out);
}

/* Optimal string alignment distance: insertions, deletions, substitutions and transpositions
 * of neighbours ("tpo" is one edit from "top") each cost 1. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *d = xcalloc((la + 1) * (lb + 1), sizeof *d);
#define D(i, j) d[(i) * (lb + 1) + (j)]
    for (size_t i = 0; i <= la; i++)
        D(i, 0) = i;
    for (size_t j = 0; j <= lb; j++)
        D(0, j) = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t best = D(i - 1, j - 1) + (a[i - 1] != b[j - 1]);
            if (D(i - 1, j) + 1 < best)
                best = D(i - 1, j) + 1;
            if (D(i, j - 1) + 1 < best)
                best = D(i, j - 1) + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && D(i - 2, j - 2) + 1 < best)
                best = D(i - 2, j - 2) + 1;
            D(i, j) = best;
        }
    size_t r = D(la, lb);
#undef D
    free(d);
    return r;
}

const char *closest_name(const char *typed, const char *const *names, size_t nr)
{
    size_t limit = 1 + strlen(typed) / 4, best = SIZE_MAX;
    const char *found = NULL;
    if (limit > 3)
        limit = 3;
    for (size_t i = 0; i < nr; i++) {
        size_t d = edit_distance(typed, names[i]);
        if (d <= limit && d < best && d < strlen(names[i])) {
            best = d;
            found = names[i];
        }
    }
    return found;
}
