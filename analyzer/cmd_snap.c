/* This file implements `heapwatch snap PID`: ask a running traced process for a snapshot and
 * wait until it is stored.
 *
 * The request is the shim's own stop-the-world signal, SIGRTMAX-3, queued with the value
 * SNAP_REQUEST (the shim tells a request from its own suspend signals by si_code SI_QUEUE, a
 * foreign si_pid and that value). Any other process would die of that signal, so nothing is
 * sent unless the process has a handler for it (the SigCgt mask of /proc/PID/status) and has
 * a heapwatch database of its own pid open (the shim keeps it open for the process's life) or,
 * a fork child that has not written a snapshot yet, libheapwatch.so loaded: the request then
 * creates its database, which is awaited.
 * The signal goes through a pidfd when the kernel has them, so a pid reused after our checks
 * is never signalled.
 *
 * Done means: the database holds a snapshot newer than the newest before the request and
 * taken after it (its time_ns, the shim's clock when the snapshot began, is not older than
 * the request): a snapshot already under way when the request came commits later but shows
 * the heap as it was before. Another trigger (interval, SIGUSR2) racing ours may be the one
 * seen; it is as new, which is all a caller can ask. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "cmd.h"
#include "db.h"
#include "json.h"
#include "options.h"
#include "report.h"
#include "usage.h"

static const struct cmd_usage usage_snap = {
    "snap", "PID", "Ask process PID, running under libheapwatch.so, for a snapshot and wait until it is\n"
    "stored; print where.", NULL, NULL,
};

#define SNAP_REQUEST 0x68770001   /* "hw", request 1 */
#define POLL_MS 20

struct target {
    int pid;
    int pidfd;        /* -1 without pidfd support: fall back to kill(2) and /proc */
    int sig;          /* SIGRTMAX - 3 */
};

/* /proc/PID/status: dies (3) unless PID is a process whose SigCgt mask has our signal. */
static void check_process(struct target *t)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", t->pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT || errno == ESRCH)
            die(EXIT_INPUT, "no process %d", t->pid);
        die(EXIT_INPUT, "cannot read '%s': %s", path, strerror(errno));
    }
    unsigned long long caught = 0;
    long tgid = t->pid;
    bool have_mask = false;
    char state = '?';
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "SigCgt:", 7))
            have_mask = sscanf(line + 7, "%llx", &caught) == 1;
        else if (!strncmp(line, "Tgid:", 5))
            tgid = strtol(line + 5, NULL, 10);
        else if (!strncmp(line, "State:", 6))
            sscanf(line + 6, " %c", &state);
    }
    fclose(f);
    if (state == 'Z' || state == 'X')
        die(EXIT_INPUT, "no process %d (it has exited)", t->pid);
    if (tgid != t->pid)
        die(EXIT_INPUT, "%d is a thread of process %ld: snap that process", t->pid, tgid);
    if (!have_mask)
        die(EXIT_INPUT, "cannot read the signal handlers of process %d from '%s'", t->pid, path);
    if (!(caught >> (t->sig - 1) & 1))
        die(EXIT_INPUT, "process %d is not running under heapwatch (or the shim is inert in it)", t->pid);
}

static bool starts_sqlite(const char *path)
{
    char head[16];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return false;
    bool ok = read(fd, head, sizeof head) == (ssize_t)sizeof head && !memcmp(head, "SQLite format 3", 16);
    close(fd);
    return ok;
}

/* The path at which we reach the file open as /proc/PID/fd/NAME (same device and inode), or
 * NULL: the process may live in another mount namespace, which /proc/PID/root shows us. */
static char *reach(int pid, const char *fdpath, const struct stat *want)
{
    char target[PATH_MAX];
    ssize_t n = readlink(fdpath, target, sizeof target - 1);
    if (n <= 0 || target[0] != '/')
        return NULL;
    target[n] = '\0';
    char *candidates[2] = { xstrdup(target), xasprintf("/proc/%d/root%s", pid, target) };
    char *found = NULL;
    for (int i = 0; i < 2; i++) {
        struct stat sb;
        if (!found && stat(candidates[i], &sb) == 0 && sb.st_dev == want->st_dev && sb.st_ino == want->st_ino)
            found = candidates[i];
        else
            free(candidates[i]);
    }
    return found;
}

/* Whether process pid has libheapwatch.so mapped. */
static bool shim_loaded(int pid)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        const char *slash = strrchr(line, '/');
        found = slash && !strncmp(slash + 1, "libheapwatch", 12);
    }
    fclose(f);
    return found;
}

/* The heapwatch database of process pid among its open files, or NULL. */
static char *find_database(int pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            die(EXIT_INPUT, "no process %d", pid);
        die(EXIT_INPUT, "cannot list the open files of process %d: %s (run as its user or as root)", pid, strerror(errno));
    }
    char *found = NULL;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *fdpath = xasprintf("%s/%s", dir, e->d_name);
        struct stat sb;
        int dbpid = 0;
        if (stat(fdpath, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= 100 && starts_sqlite(fdpath)) {
            char *path = reach(pid, fdpath, &sb);
            if (path && db_probe(path, &dbpid) && dbpid == pid)
                found = path;
            else
                free(path);
        }
        free(fdpath);
    }
    closedir(d);
    return found;
}

static int pidfd_open_(int pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Queue the request; dies (3) when the process is gone or may not be signalled by us. */
static void send_request(struct target *t)
{
    int rc;
    if (t->pidfd >= 0) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        info.si_signo = t->sig;
        info.si_code = SI_QUEUE;   /* what sigqueue(3) sends */
        info.si_pid = getpid();
        info.si_uid = getuid();
        info.si_value.sival_int = SNAP_REQUEST;
        rc = (int)syscall(SYS_pidfd_send_signal, t->pidfd, t->sig, &info, 0);
    } else {
        rc = sigqueue(t->pid, t->sig, (union sigval){ .sival_int = SNAP_REQUEST });
    }
    if (rc == 0)
        return;
    if (errno == ESRCH)
        die(EXIT_INPUT, "no process %d (it has exited)", t->pid);
    if (errno == EPERM)
        die(EXIT_INPUT, "cannot signal process %d: %s (run heapwatch snap as its user or as root)", t->pid, strerror(errno));
    die(EXIT_SYSTEM, "cannot signal process %d: %s", t->pid, strerror(errno));
}

/* Wait up to POLL_MS; false once the process has exited (a zombie included). */
static bool wait_alive(struct target *t)
{
    if (t->pidfd >= 0) {
        struct pollfd p = { .fd = t->pidfd, .events = POLLIN };
        return poll(&p, 1, POLL_MS) == 0;   /* readable: it exited */
    }
    struct timespec ts = { 0, POLL_MS * 1000000L };
    nanosleep(&ts, NULL);
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", t->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');   /* the command name may hold anything */
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print(const struct snapshot_info *si, int pid, const char *path, bool json, double waited)
{
    if (json) {
        struct json j;
        json_init(&j, stdout);
        json_begin_object(&j);
        json_key(&j, "pid"); json_int(&j, pid);
        json_key(&j, "db"); json_str(&j, path);
        json_key(&j, "snapshot"); json_int(&j, si->id);
        snapshot_info_json(&j, si);
        json_key(&j, "waited_ns"); json_int(&j, (int64_t)(waited * 1e9));
        json_end_object(&j);
        json_finish(&j);
        return;
    }
    printf("snapshot %lld of %d stored in %s (pause %.1f ms, ", (long long)si->id, pid, path, (double)si->pause_ns / 1e6);
    if (si->marked)
        printf("leaked %lld bytes)\n", (long long)(si->leaked_bytes + si->indirect_bytes));
    else
        printf("no heap walk)\n");
}

static const char *parse_timeout(const struct opt *opt, const char *arg)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !(v > 0) || v > 1e6)
        return xasprintf("--timeout wants a positive number of seconds, not '%s'", arg);
    *(double *)opt->value = v;
    return NULL;
}

static void parse(int argc, char **argv, struct target *t, double *timeout, bool *json)
{
    *timeout = 60;
    *json = false;
    const struct opt opts[] = {
        OPT_CALLBACK(0, "timeout", timeout, "SECONDS", "give up after SECONDS (default 60; exit 4)", parse_timeout),
        OPT_BOOL(0, "json", json, "the stored snapshot's row as JSON"),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_snap, 0);
    if (argc != 1)
        die_with_usage(opts, &usage_snap, argc ? "too many arguments" : "snap needs the PID of a traced process");
    char *end;
    errno = 0;
    long pid = strtol(argv[0], &end, 10);
    if (errno || end == argv[0] || *end || pid <= 0 || pid > INT_MAX)
        die_with_usage(opts, &usage_snap, "bad PID '%s': expected a process id", argv[0]);
    t->pid = (int)pid;
}

/* The newest snapshot with an id above `above` that began at or after time_ns, or 0. */
static int64_t snapshot_since(struct hwdb *db, int64_t above, int64_t time_ns)
{
    int64_t id;
    if (db_snapshot_since(db, above, time_ns, &id) < 0)
        exit(EXIT_INPUT);
    return id;
}

int cmd_snap(int argc, char **argv)
{
    struct target t = { .pidfd = -1, .sig = SIGRTMAX - 3 };
    double timeout;
    bool json;
    parse(argc, argv, &t, &timeout, &json);
    /* Pin the process first: every check below is then about the process we will signal. */
    t.pidfd = pidfd_open_(t.pid);
    if (t.pidfd < 0 && errno == ESRCH)
        die(EXIT_INPUT, "no process %d", t.pid);
    check_process(&t);
    char *path = find_database(t.pid);
    /* A fork child creates its database at its first snapshot, which the request is: it is
     * reachable if it has the shim loaded (and catches the signal, checked above). */
    if (!path && !shim_loaded(t.pid))
        die(EXIT_INPUT, "process %d has no heapwatch database open and no libheapwatch.so loaded (it was not"
                        " started under heapwatch, or by an older one)", t.pid);
    double start = now();
    struct timespec asked;
    clock_gettime(CLOCK_REALTIME, &asked);
    int64_t before = 0, after;
    struct hwdb *db = NULL;
    if (path) {
        db = db_open_readonly(path);
        before = db_max_snapshot(db);
    }
    send_request(&t);
    bool alive = true;
    while (!path) {
        if (!alive)
            die(EXIT_INPUT, "process %d exited before creating its database", t.pid);
        if (now() - start >= timeout)
            die(EXIT_SYSTEM, "timed out after %g s waiting for process %d to create its database", timeout, t.pid);
        alive = wait_alive(&t);
        if ((path = find_database(t.pid)))
            db = db_open_readonly(path);
    }
    while ((after = snapshot_since(db, before, (int64_t)asked.tv_sec * 1000000000 + asked.tv_nsec)) == 0) {
        if (!alive)
            die(EXIT_INPUT, "process %d exited before storing a snapshot in '%s'", t.pid, path);
        if (now() - start >= timeout)
            die(EXIT_SYSTEM, "timed out after %g s waiting for process %d to store a snapshot in '%s'", timeout, t.pid,
                path);
        alive = wait_alive(&t);   /* once it has exited, look one last time */
    }
    struct snapshot_info si;
    if (!db_snapshot_info(db, after, &si))
        die(EXIT_INPUT, "cannot read '%s': snapshot %lld vanished", path, (long long)after);
    print(&si, t.pid, path, json, now() - start);
    snapshot_info_release(&si);
    db_close(db);
    free(path);
    if (t.pidfd >= 0)
        close(t.pidfd);
    return 0;
}
