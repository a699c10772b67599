/* getenv_spy_dso.c: a getenv for LD_PRELOAD, ahead of the shim, that reports on stderr when
 * SQLite's environment lookups (SQLITE_TMPDIR, TMPDIR) run, and whether on the main thread
 * or another. glibc's getenv may read an environ array that the program's setenv is freeing at that
 * moment: the shim must not read the environment on its own threads (a git under the shim
 * crashed in its helper thread this way). Allocates nothing, calls nothing that could. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

char *getenv(const char *name)
{
    if (!strcmp(name, "SQLITE_TMPDIR") || !strcmp(name, "TMPDIR")) {
        static const char off[] = "getenv_spy: SQLite read the environment off the main thread\n";
        static const char on[] = "getenv_spy: SQLite read the environment on the main thread\n";
        bool main_thread = syscall(SYS_gettid) == getpid();
        ssize_t w = write(2, main_thread ? on : off, main_thread ? sizeof on - 1 : sizeof off - 1);
        (void)w;
    }
    size_t n = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}
