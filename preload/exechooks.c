/* This file implements the wrappers of the calls that end an image without exit(): exec, and
 * _exit and _Exit. The exec wrappers: before an image execs another, a database it
 * created but wrote no snapshot to is removed (output.h), so that a wrapper script that execs
 * the real program leaves nothing behind and the program gets the name the user asked for;
 * one with snapshots leaves WAL mode. No snapshot is taken from then until the exec returns,
 * which it does only when it failed. Every public exec function is wrapped (execveat
 * included), since glibc's call __execve internally, not through the wrapped symbol;
 * posix_spawn and system() start new processes and are left alone.
 * A vfork child (the parent's memory, the parent's locks) does nothing here but call the real
 * function: its pid is not the database's, and the real functions were resolved at start, so
 * not even dlsym runs in it.
 * _exit and _Exit (a shell's exit builtin, a forked worker, a signal handler) take no exit
 * snapshot, as exit() would, but wait for a database creation or write under way, which the
 * end would otherwise cut short (hw_snapshot_before_quick_exit). glibc's exit() calls its own
 * _exit internally, not this one.
 * Context: the application's thread, about to exec or end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "hw.h"
#include "output.h"
#include "real.h"
#include "snapshot.h"

typedef int (*exec_path_env)(const char *, char *const[], char *const[]);
typedef int (*exec_path)(const char *, char *const[]);
typedef int (*exec_fd_env)(int, char *const[], char *const[]);
typedef int (*exec_at)(int, const char *, char *const[], char *const[], int);

static struct {
    exec_path_env execve, execvpe;
    exec_path execv, execvp;
    exec_fd_env fexecve;
    exec_at execveat;
    void (*exit_now)(int);   /* _exit (_Exit is the same function in glibc) */
} real;

void hw_exechooks_init(void)
{
    real.execve = (exec_path_env)hw_real_next("execve");
    real.execvpe = (exec_path_env)hw_real_next("execvpe");
    real.execv = (exec_path)hw_real_next("execv");
    real.execvp = (exec_path)hw_real_next("execvp");
    real.fexecve = (exec_fd_env)hw_real_next("fexecve");
    real.execveat = (exec_at)hw_real_next("execveat");
    real.exit_now = (void (*)(int))hw_real_next("_exit");
}

static __attribute__((noreturn)) void end_now(int status)
{
    hw_snapshot_before_quick_exit();
    if (real.exit_now)
        real.exit_now(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

HW_EXPORT __attribute__((noreturn)) void _exit(int status) { end_now(status); }
HW_EXPORT __attribute__((noreturn)) void _Exit(int status) { end_now(status); }

/* Whether this exec leaves the database behind: the caller tells the shim again if the exec
 * comes back (it failed). */
static bool before_exec(void)
{
    if (atomic_load(&hw_state) != HW_ACTIVE || hw_self.guard)
        return false;
    hw_snapshot_pending_before_exec();
    /* Also while no database is ready: the helper may be creating it (the event log makes it
     * at start-up), and the exec would cut that short, leaving a file without its tables;
     * this waits for it, removes it, and keeps any other from starting. */
    return hw_snapshot_before_exec();
}

static int after_failed_exec(bool prepared, int rc)
{
    if (prepared) {
        int saved = errno;
        hw_snapshot_exec_failed();
        errno = saved;
    }
    return rc;
}

/* The real function, or the error an exec without it would give. */
#define CALL(fn, ...)                                                   \
    do {                                                                \
        if (!real.fn) {                                                 \
            errno = ENOSYS;                                             \
            return -1;                                                  \
        }                                                               \
        bool prepared = before_exec();                                  \
        return after_failed_exec(prepared, real.fn(__VA_ARGS__));       \
    } while (0)

HW_EXPORT int execve(const char *path, char *const argv[], char *const envp[]) { CALL(execve, path, argv, envp); }
HW_EXPORT int execv(const char *path, char *const argv[]) { CALL(execv, path, argv); }
HW_EXPORT int execvp(const char *file, char *const argv[]) { CALL(execvp, file, argv); }
HW_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) { CALL(execvpe, file, argv, envp); }
HW_EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) { CALL(fexecve, fd, argv, envp); }
HW_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
    CALL(execveat, dirfd, path, argv, envp, flags);
}

/* The variadic forms gather their arguments on the stack, as glibc's do, and go on as the
 * vector forms (wrapped above). */
#define GATHER(arg, ap, argv, extra)                              \
    size_t n = 1;                                                 \
    va_start(ap, arg);                                            \
    while (va_arg(ap, const char *))                              \
        n++;                                                      \
    va_end(ap);                                                   \
    char *argv[n + 1];                                            \
    argv[0] = (char *)arg;                                        \
    va_start(ap, arg);                                            \
    for (size_t i = 1; i <= n; i++)                               \
        argv[i] = va_arg(ap, char *);                             \
    extra;                                                        \
    va_end(ap)

HW_EXPORT int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    GATHER(arg, ap, argv, (void)0);
    return execv(path, argv);
}

HW_EXPORT int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    GATHER(arg, ap, argv, (void)0);
    return execvp(file, argv);
}

HW_EXPORT int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    char **envp;
    GATHER(arg, ap, argv, envp = va_arg(ap, char **));
    return execve(path, argv, envp);
}
