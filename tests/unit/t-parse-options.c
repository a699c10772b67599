/* This file implements the unit test of analyzer/parse_options.c: each way of giving an
 * option and its value, operands mixed with options, "--", "-N" as an operand, stopping at
 * the first operand, shortened long names and their ambiguity, hidden spellings, errors and
 * their "did you mean". Prints TAP. */
// LINK: analyzer/parse_options.c analyzer/usage.c
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "parse_options.h"

static bool json, cum, defaults;
static const char *output;
static int level;

static const char *parse_level(const struct opt *opt, const char *arg)
{
    if (strcmp(arg, "1") && strcmp(arg, "2"))
        return "level wants 1 or 2";
    *(int *)opt->value = atoi(arg);
    return NULL;
}

static const struct opt opts[] = {
    OPT_BOOL(0, "json", &json, "json"),
    OPT_BOOL('c', "cum", &cum, "cum"),
    OPT_CLEAR(0, "no-defaults", &defaults, "no defaults"),
    OPT_STRING('o', "output", &output, "FILE", "output"),
    OPT_CALLBACK('l', "level", &level, "N", "level", parse_level),
    OPT_HIDDEN_CALLBACK("old_level", &level, "N", parse_level),
    OPT_CALLBACK(0, "nodecount", &level, "N", "rows", parse_level),
    OPT_END(),
};

/* Parse the words of `line` (space-separated, argv[0] "cmd" added); the operands joined by
 * ',' into out, or the error, or "HELP". */
static int parse(const char *line, unsigned flags, char *out, size_t size)
{
    static char copy[256];   /* values point into it until the next parse */
    char *words[32] = { "cmd" }, *error = NULL;
    snprintf(copy, sizeof copy, "%s", line);
    int argc = 1;
    for (char *w = strtok(copy, " "); w; w = strtok(NULL, " "))
        words[argc++] = w;
    json = cum = false;
    defaults = true;
    output = NULL;
    level = 0;
    int n = parse_options_step(argc, words, opts, flags, &error);
    out[0] = '\0';
    if (n == -2)
        snprintf(out, size, "HELP");
    else if (n < 0)
        snprintf(out, size, "%s", error);
    else
        for (int i = 0; i < n; i++)
            snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? "," : "", words[i]);
    free(error);
    return n;
}

#define EXPECT(line, flags, want)                                                             \
    do {                                                                                      \
        char got_[256];                                                                       \
        parse((line), (flags), got_, sizeof got_);                                            \
        if (!CHECK(!strcmp(got_, (want)), "'%s' -> '%s'", (line), (want)))                    \
            diag("got '%s'", got_);                                                           \
    } while (0)

int main(void)
{
    char out[256];
    EXPECT("a --json b", 0, "a,b");
    CHECK(json && !cum, "--json set, --cum not");
    EXPECT("--cum -2 x", 0, "-2,x");
    CHECK(cum, "-2 is an operand, not an option");
    EXPECT("-c", 0, "");
    CHECK(cum, "short flag");
    EXPECT("--no-defaults", 0, "");
    CHECK(!defaults, "OPT_CLEAR sets false");
    EXPECT("-o f1 a", 0, "a");
    CHECK(output && !strcmp(output, "f1"), "-o VALUE");
    EXPECT("-of2", 0, "");
    CHECK(output && !strcmp(output, "f2"), "-oVALUE");
    EXPECT("--output=f3", 0, "");
    CHECK(output && !strcmp(output, "f3"), "--output=VALUE");
    EXPECT("--output f4", 0, "");
    CHECK(output && !strcmp(output, "f4"), "--output VALUE");
    EXPECT("--output=", 0, "");
    CHECK(output && !strcmp(output, ""), "--output= gives an empty value");
    EXPECT("-co f5", 0, "");
    CHECK(cum && output && !strcmp(output, "f5"), "a cluster -co VALUE");
    EXPECT("--out -3", 0, "");
    CHECK(output && !strcmp(output, "-3"), "a value that looks like an operand is the value");
    EXPECT("--lev 2", 0, "");
    CHECK(level == 2, "a unique prefix names the option");
    EXPECT("--old_level 1", 0, "");
    CHECK(level == 1, "a hidden spelling is accepted");
    EXPECT("-- --json -x", 0, "--json,-x");
    CHECK(!json, "after --, options are operands");
    EXPECT("a - b", 0, "a,-,b");
    EXPECT("--json prog --cum -x", PARSE_STOP_AT_OPERAND, "prog,--cum,-x");
    CHECK(json && !cum, "PARSE_STOP_AT_OPERAND: options before the first operand only");
    EXPECT("--help", 0, "HELP");
    EXPECT("-h", 0, "HELP");
    EXPECT("--he", 0, "HELP");
    EXPECT("x --nodecont 3", 0, "unknown option '--nodecont'; did you mean '--nodecount'?");
    EXPECT("--frobnicate", 0, "unknown option '--frobnicate'");
    EXPECT("-x", 0, "unknown option '-x'");
    EXPECT("--no", 0, "option '--no' is ambiguous: --no-defaults, --nodecount");
    EXPECT("--json=1", 0, "option '--json' takes no value");
    EXPECT("--output", 0, "option '--output' needs a value");
    EXPECT("-o", 0, "option '-o' needs a value");
    EXPECT("--level 3", 0, "level wants 1 or 2");
    EXPECT("--=x", 0, "unknown option '--=x'");
    CHECK(parse("a b c", 0, out, sizeof out) == 3, "returns the number of operands");

    static const char *const names[] = { "run", "snap", "ls", "top", "diff", "growth", "leaks", "export" };
    CHECK(closest_name("tpo", names, 8) && !strcmp(closest_name("tpo", names, 8), "top"), "tpo -> top");
    CHECK(closest_name("leak", names, 8) && !strcmp(closest_name("leak", names, 8), "leaks"), "leak -> leaks");
    CHECK(closest_name("grwoth", names, 8) && !strcmp(closest_name("grwoth", names, 8), "growth"), "grwoth -> growth");
    CHECK(!closest_name("frobnicate", names, 8), "frobnicate: no suggestion");
    CHECK(!closest_name("x", names, 8), "one letter: no suggestion");
    return done();
}
