/* This file implements the exec wrappers: before an image execs another, a database it
 * created but wrote no snapshot to is removed (output.h), so that a wrapper script that execs
 * the real program leaves nothing behind and the program gets the name the user asked for.
 * Every public exec function is wrapped, since glibc's call __execve internally, not through
 * the wrapped symbol; posix_spawn and system() start new processes and are left alone.
 * A vfork child (the parent's memory, the parent's locks) does nothing here: its pid is not
 * the database's. Context: the application's thread, about to exec; guarded inside. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>
#include "hw.h"
#include "output.h"
#include "snapshot.h"

static void *next(const char *name)
{
    hw_guard_enter();
    void *f = dlsym(RTLD_NEXT, name);
    hw_guard_leave();
    return f;
}

static void before_exec(void)
{
    if (atomic_load(&hw_state) == HW_ACTIVE && !hw_self.guard && hw_output_ready())
        hw_snapshot_before_exec();
}

#define REAL(type, name)                           \
    static type real;                              \
    if (!real && !(real = (type)next(#name))) {    \
        errno = ENOSYS;                            \
        return -1;                                 \
    }

typedef int (*exec_path_env)(const char *, char *const[], char *const[]);
typedef int (*exec_path)(const char *, char *const[]);
typedef int (*exec_fd_env)(int, char *const[], char *const[]);

HW_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    REAL(exec_path_env, execve);
    before_exec();
    return real(path, argv, envp);
}

HW_EXPORT int execv(const char *path, char *const argv[])
{
    REAL(exec_path, execv);
    before_exec();
    return real(path, argv);
}

HW_EXPORT int execvp(const char *file, char *const argv[])
{
    REAL(exec_path, execvp);
    before_exec();
    return real(file, argv);
}

HW_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    REAL(exec_path_env, execvpe);
    before_exec();
    return real(file, argv, envp);
}

HW_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    REAL(exec_fd_env, fexecve);
    before_exec();
    return real(fd, argv, envp);
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
