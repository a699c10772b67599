/* This file implements the heapwatch command: global options and dispatch to cmd_*.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "../schema/schema.h"
#include "cmd.h"
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
    { "diff", cmd_diff, "what grew and shrank between two snapshots" },
    { "growth", cmd_growth, "which sites grow steadily over all snapshots" },
    { "leaks", cmd_leaks, "unreachable objects by allocation stack, direct and indirect (LeakSanitizer's report)" },
    { "export", cmd_export, "write a snapshot as pprof (gzip'd profile.proto), folded stacks or JSON" },
};

static void usage(FILE *out)
{
    fprintf(out, "usage: heapwatch COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nA snapshot is named [DB:]ID: ID is a number, first, latest or -N; DB defaults to the\n"
                 "newest heapwatch.*.db in the current directory. Every report takes --json.\n"
                 "'heapwatch COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("heapwatch %s (database schema %d)\n", HW_VERSION, HW_SCHEMA_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name))
            continue;
        int rc = commands[i].fn(argc - 1, argv + 1);
        if (fflush(stdout) != 0 || ferror(stdout))
            die(EXIT_SYSTEM, "cannot write the output: %s", strerror(errno));
        return rc;
    }
    error("unknown command '%s'", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
