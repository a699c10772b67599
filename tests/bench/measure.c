/* measure.c: run a command and append one line of resource figures to a file.
 *
 *   measure OUTFILE -- cmd args...
 *
 * Appends "wall_s cpu_s maxrss_kb exit_status\n" to OUTFILE, where
 *   wall_s      seconds of CLOCK_MONOTONIC from fork until the whole process tree is reaped;
 *   cpu_s       user+sys seconds of the command and of every descendant that was waited for
 *               (by its parent or, for orphans, by measure itself: measure is a child subreaper,
 *               so a background helper that its parent never waits for is still counted);
 *   maxrss_kb   the largest peak RSS of any single process in that tree (ru_maxrss semantics:
 *               the maximum, not the sum);
 *   exit_status the command's exit code, or 128+signal if it was killed by a signal
 *               (127 if it could not be executed).
 * The command's stdout goes to /dev/null; stdin and stderr are inherited.
 * measure exits 0 once the line is written (whatever the command's status), 2 on its own errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: %s OUTFILE -- cmd [args...]\n", argv[0]);
        return 2;
    }
    const char *outfile = argv[1];
    char **cmd = argv + 3;

    int outfd = open(outfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (outfd < 0) {
        fprintf(stderr, "measure: cannot open %s: %s\n", outfile, strerror(errno));
        return 2;
    }
    /* Become the reaper of orphaned descendants, so their CPU time is not lost. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        fprintf(stderr, "measure: PR_SET_CHILD_SUBREAPER: %s (orphans not counted)\n",
                strerror(errno));

    double t0 = bench_now_s();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "measure: fork: %s\n", strerror(errno));
        return 2;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            if (devnull != STDOUT_FILENO)
                close(devnull);
        }
        execvp(cmd[0], cmd);
        fprintf(stderr, "measure: cannot execute %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }

    int status = 0, exit_status = -1;
    for (;;) {
        int st;
        pid_t w = wait4(-1, &st, 0, NULL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECHILD)
                break;
            fprintf(stderr, "measure: wait4: %s\n", strerror(errno));
            return 2;
        }
        if (w == pid) {
            status = st;
            if (WIFEXITED(status))
                exit_status = WEXITSTATUS(status);
            else if (WIFSIGNALED(status))
                exit_status = 128 + WTERMSIG(status);
        }
    }
    double wall = bench_now_s() - t0;

    struct rusage ru;
    if (getrusage(RUSAGE_CHILDREN, &ru) != 0) {
        fprintf(stderr, "measure: getrusage: %s\n", strerror(errno));
        return 2;
    }
    double cpu = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);

    char line[128];
    int n = snprintf(line, sizeof line, "%.4f %.4f %ld %d\n", wall, cpu, ru.ru_maxrss,
                     exit_status);
    if (n <= 0 || (size_t)n >= sizeof line || write(outfd, line, (size_t)n) != n) {
        fprintf(stderr, "measure: cannot write %s: %s\n", outfile, strerror(errno));
        return 2;
    }
    close(outfd);
    return 0;
}
