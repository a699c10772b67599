/* cmd.h: the heapwatch subcommands.
 *
 * To add a subcommand: 1. write cmd_<name>.c with its struct cmd_usage and its table of
 *    options (parse_options.h), from which its --help and errors come;
 * 2. declare cmd_<name> here; 3. add it to the table in main.c; 4. document it in README.md;
 * 5. add a tests/tNNNN-*.sh that runs it. Each returns the process exit status. */
#ifndef HW_CMD_H
#define HW_CMD_H

int cmd_run(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_growth(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_leaks(int argc, char **argv);
int cmd_snap(int argc, char **argv);
int cmd_owners(int argc, char **argv);
int cmd_types(int argc, char **argv);
int cmd_path(int argc, char **argv);
int cmd_peak(int argc, char **argv);
int cmd_timeline(int argc, char **argv);
int cmd_lifetimes(int argc, char **argv);
int cmd_html(int argc, char **argv);
int cmd_web(int argc, char **argv);

#endif
