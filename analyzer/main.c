/* This file implements the heapwatch command: global options, `help`, and dispatch to
 * cmd_*.c. Each command parses its own options (parse_options.h), so `heapwatch help CMD` is
 * `heapwatch CMD --help`, word for word. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "../schema/schema.h"
#include "cmd.h"
#include "parse_options.h"
#include "usage.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    { "run", cmd_run, "run a program under the shim: heapwatch run [opts] -- CMD..." },
    { "snap", cmd_snap, "take a snapshot of a running traced process and wait until it is stored" },
    { "ls", cmd_ls, "list the snapshots of a database" },
    { "top", cmd_top, "who holds (inuse) or allocated (alloc) the most, by function, line or stack" },
    { "diff", cmd_diff, "what grew and shrank between two snapshots, by site or by owner" },
    { "growth", cmd_growth, "which sites or owners grow steadily over all snapshots (leak, accumulation, cache)" },
    { "leaks", cmd_leaks, "unreachable objects by allocation stack, direct and indirect (LeakSanitizer's report)" },
    { "owners", cmd_owners, "the variables that hold the heap, largest retained size first (dominator tree)" },
    { "types", cmd_types, "heap objects by type inferred from DWARF (declared pointers, vtables, sites)" },
    { "path", cmd_path, "how a block is reached: the chain of fields from a variable to it" },
    { "timeline", cmd_timeline, "memory in use over the run, total and by site, from the event log" },
    { "peak", cmd_peak, "when memory in use peaked and who held it then, from the event log" },
    { "lifetimes", cmd_lifetimes, "how long each site's allocations live, from the event log" },
    { "html", cmd_html, "one self-contained HTML file: flame graphs, top, diff, growth, leaks, timeline" },
    { "web", cmd_web, "serve the html report on 127.0.0.1, with snapshot pickers (as go tool pprof -http)" },
    { "export", cmd_export, "write a snapshot as pprof (gzip'd profile.proto), folded stacks or JSON" },
};
#define NR_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: heapwatch COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < NR_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nA snapshot is named [DB:]ID: ID is a number, first, latest or -N; DB defaults to the\n"
                 "newest heapwatch.*.db in the current directory. Every report takes --json.\n"
                 "'heapwatch help COMMAND' (or 'heapwatch COMMAND --help') describes one command.\n");
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NR_COMMANDS; i++)
        if (!strcmp(name, commands[i].name))
            return &commands[i];
    return NULL;
}

/* "unknown command 'X'", the closest command when X looks like a typo of one, the usage. */
static int unknown_command(const char *name)
{
    const char *names[NR_COMMANDS];
    for (size_t i = 0; i < NR_COMMANDS; i++)
        names[i] = commands[i].name;
    const char *near = closest_name(name, names, NR_COMMANDS);
    if (near)
        error("unknown command '%s'; did you mean '%s'?", name, near);
    else
        error("unknown command '%s'", name);
    usage(stderr);
    return EXIT_USAGE;
}

static int run_command(const struct command *c, int argc, char **argv)
{
    int rc = c->fn(argc, argv);
    if (fflush(stdout) != 0 || ferror(stdout))
        die(EXIT_SYSTEM, "cannot write the output: %s", strerror(errno));
    return rc;
}

/* heapwatch help [COMMAND]: the overview, or the command's own --help. */
static int help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    if (argc > 2) {
        error("help takes one command");
        return EXIT_USAGE;
    }
    const struct command *c = find_command(argv[1]);
    if (!c)
        return unknown_command(argv[1]);
    char *args[] = { argv[1], "--help", NULL };
    return run_command(c, 2, args);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "help"))
        return help(argc - 1, argv + 1);
    if (!strcmp(argv[1], "--version")) {
        printf("heapwatch %s (database schema %d)\n", HW_VERSION, HW_SCHEMA_VERSION);
        return 0;
    }
    const struct command *c = find_command(argv[1]);
    if (!c)
        return unknown_command(argv[1]);
    return run_command(c, argc - 1, argv + 1);
}
