/* This file implements output.h: naming, creating and giving up this process's database.
 *
 * Names. HEAPWATCH_OUT is expanded (%p, %e, %%); its directory is resolved with realpath, so
 * that a symlinked directory (/var/run -> /run) is followed, as the user's shell would, while
 * the file itself is created O_EXCL|O_NOFOLLOW and SQLite opens the resolved path: the
 * database is never a symlink planted in its place, and creating the file and opening it
 * agree on the path. A taken name is never overwritten (output.h says what is tried next).
 * Exec. An image that execs another without having written a snapshot (a wrapper script)
 * removes its empty database first, so the final program of a chain of execs in one pid
 * gets the name the user asked for; `heapwatch run` reports what is left.
 * Context: guarded. */
#define _GNU_SOURCE
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "options.h"
#include "sink.h"
#include "sys.h"

static int db_pid;          /* pid the database belongs to (0: none yet) */
static int db_fd = -1;      /* kept open read-only: `heapwatch snap PID` finds it in /proc/PID/fd */
static char db_path[PATH_MAX];
static int forked_from;     /* parent's pid in a fork child, else 0 */
static unsigned written;    /* snapshots this image committed to it */
static int failed_pid;      /* creation failed in this process: said once, not tried again */

const char *hw_output_path(void) { return db_path; }
void hw_output_note_snapshot(void) { written++; }
int hw_output_forked_from(void) { return forked_from; }

/* Expand %p, %e and %% of pattern; whether the name holds the pid. */
static bool expand(char *out, size_t size, const char *pattern)
{
    char comm[PATH_MAX] = "", *slash;
    size_t n = 0;
    hw_self_exe(comm, sizeof comm);
    slash = strrchr(comm, '/');
    const char *prog = slash ? slash + 1 : comm;
    bool has_pid = false;
    for (const char *p = pattern; *p && n + 1 < size; p++) {
        if (*p == '%' && p[1] == 'p') {
            n += hw_fmt(out + n, size - n, "%d", getpid());
            has_pid = true;
            p++;
        } else if (*p == '%' && p[1] == 'e') {
            n += hw_fmt(out + n, size - n, "%s", prog);
            p++;
        } else if (*p == '%' && p[1] == '%') {
            out[n++] = '%';
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n < size ? n : size - 1] = '\0';
    return has_pid;
}

/* path with its directory resolved (symlinks followed); false with errno if it cannot be. */
static bool resolve_dir(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX], real[PATH_MAX];
    if (!slash)
        hw_fmt(dir, sizeof dir, ".");
    else if (slash == path)
        hw_fmt(dir, sizeof dir, "/");
    else
        hw_fmt(dir, sizeof dir, "%s", path);
    if (slash && slash != path)
        dir[slash - path] = '\0';
    if (!realpath(dir, real))
        return false;
    const char *base = slash ? slash + 1 : path;
    if (!*base) {
        errno = EISDIR;
        return false;
    }
    return hw_fmt(out, size, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base) < size - 1;
}

/* name with `insert` before a trailing ".db" (or at the end). */
static void with_suffix(char *out, size_t size, const char *name, const char *insert)
{
    size_t len = strlen(name);
    bool db = len > 3 && !strcmp(name + len - 3, ".db");
    hw_fmt(out, size, "%s", name);
    if (db)
        out[len - 3] = '\0';
    size_t n = strlen(out);
    hw_fmt(out + n, size - n, "%s%s", insert, db ? ".db" : "");
}

/* Append this process's database to `heapwatch run`'s manifest: one line, one write. */
static void to_manifest(void)
{
    if (!hw_opt.manifest || !*hw_opt.manifest)
        return;
    int fd = open(hw_opt.manifest, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    char exe[PATH_MAX] = "", line[PATH_MAX * 2 + 64];
    hw_self_exe(exe, sizeof exe);
    size_t n = hw_fmt(line, sizeof line, "%d\t%d\t%d\t%s\t%s\n", getpid(), getppid(), forked_from, db_path, exe);
    hw_write_all(fd, line, n);
    close(fd);
}

/* The value of `name` in an environment read from /proc (NUL-separated, n bytes); NULL if
 * absent. */
static const char *env_value(const char *env, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t at = 0; at < n; at += strlen(env + at) + 1)
        if (!strncmp(env + at, name, len) && env[at + len] == '=')
            return env + at + len + 1;
    return NULL;
}

static bool same_value(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

/* Whether the parent process was started with this process's HEAPWATCH_OUT and LD_PRELOAD,
 * as the environments the two were exec'd with say: then it is traced too, and its database
 * is to have the fixed name. Without this, a child that exits first (seq in bash's
 * `$(seq 3)`) took the name, and the program the user traced wrote NAME.PID.db and said so
 * on its stderr. An environment too large for the buffer, or one that cannot be read (the
 * parent gone, another user's), says no: the name goes to whoever creates it first. */
static bool parent_traced_alike(void)
{
    enum { ENV_MAX = 256 * 1024 };
    char *mine = hw_map(2 * ENV_MAX), *theirs = mine + ENV_MAX, path[64];
    if (!mine)
        return false;
    hw_fmt(path, sizeof path, "/proc/%d/environ", getppid());
    size_t n_mine = hw_read_file("/proc/self/environ", mine, ENV_MAX);
    size_t n_theirs = hw_read_file(path, theirs, ENV_MAX);
    bool alike = n_mine && n_theirs && n_mine < ENV_MAX - 1 && n_theirs < ENV_MAX - 1;
    const char *out = alike ? env_value(mine, n_mine, "HEAPWATCH_OUT") : NULL;
    alike = out && same_value(out, env_value(theirs, n_theirs, "HEAPWATCH_OUT")) &&
            same_value(env_value(mine, n_mine, "LD_PRELOAD"), env_value(theirs, n_theirs, "LD_PRELOAD"));
    hw_unmap(mine, 2 * ENV_MAX);
    return alike;
}

bool hw_output_ensure(void)
{
    if (db_pid == getpid())
        return true;
    if (failed_pid == getpid())
        return false;
    char expanded[PATH_MAX], first[PATH_MAX], name[PATH_MAX], pid[32];
    bool has_pid = expand(expanded, sizeof expanded, hw_opt.out);
    if (!resolve_dir(expanded, first, sizeof first)) {
        hw_log("cannot create '%s': %s; no snapshots will be written", expanded, strerror(errno));
        failed_pid = getpid();
        return false;
    }
    hw_fmt(pid, sizeof pid, ".%d", getpid());
    /* A fork child must not collide with its parent's fixed name, nor a program its parent
     * (traced with the same name) runs. */
    if (!has_pid && (forked_from || parent_traced_alike())) {
        with_suffix(name, sizeof name, first, pid);
        hw_fmt(first, sizeof first, "%s", name);
        has_pid = true;
    }
    hw_fmt(name, sizeof name, "%s", first);
    int rc = hw_sink_create(name, forked_from, false);
    if (rc == -2 && !has_pid) {
        /* The user's fixed name is taken (an earlier run, or another process of this one):
         * this process writes NAME.PID.db, and says so unless `heapwatch run` reports it. */
        char second[PATH_MAX];
        with_suffix(second, sizeof second, first, pid);
        hw_fmt(name, sizeof name, "%s", second);
        rc = hw_sink_create(name, forked_from, false);
        if (rc != -2 && (!hw_opt.manifest || !*hw_opt.manifest))
            hw_log("'%s' exists; this process (%d) writes '%s'", first, getpid(), name);
        hw_fmt(first, sizeof first, "%s", second);
    }
    /* A pid name taken: an image exec'd in the same pid, after one that wrote snapshots. */
    for (int n = 2; rc == -2 && n < 100; n++) {
        char num[32];
        hw_fmt(num, sizeof num, "-%d", n);
        with_suffix(name, sizeof name, first, num);
        rc = hw_sink_create(name, forked_from, n == 99);
    }
    if (rc < 0) {
        failed_pid = getpid();
        return false;
    }
    hw_fmt(db_path, sizeof db_path, "%s", name);
    if (db_fd >= 0)
        close(db_fd);
    db_fd = hw_fd_high(open(db_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    db_pid = getpid();
    written = 0;
    to_manifest();
    return true;
}

bool hw_output_ready(void)
{
    return db_pid == getpid();
}

bool hw_output_droppable(void)
{
    return db_pid == getpid() && !written;
}

void hw_output_before_exec(void)
{
    if (!hw_output_droppable())
        return;  /* a vfork child (the parent's memory), or a database with snapshots */
    if (db_fd >= 0)
        close(db_fd);
    db_fd = -1;
    hw_sink_remove(db_path);
    db_pid = 0;  /* if the exec fails, the database is created again when needed */
}

void hw_output_forget_in_child(void)
{
    forked_from = db_pid ? db_pid : getppid();
    db_pid = 0;
    failed_pid = 0;
    written = 0;
    if (db_fd >= 0) {
        close(db_fd);
        db_fd = -1;
    }
}
