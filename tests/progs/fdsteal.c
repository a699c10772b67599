/* fdsteal.c: a program that closes descriptors it does not own, as daemons do with
 * closefrom(3) and as bash does when it closes a pipe end twice, while the shim's helper keeps
 * its database open (the event log's writer keeps its connection from one chunk to the next).
 * It then writes files of its own while it allocates, so that the writer writes again, and
 * checks that each file holds exactly what it wrote: a shim descriptor left at a number the
 * program reuses would write the database's pages into the program's file.
 * Usage: fdsteal   Prints "files ok" (exit 0) or the first file that differs (exit 1).
 *        fdsteal all   closes every descriptor from 3 up to the soft limit instead, then allocates
 *                      for a second and prints "done": the shim's own are gone too. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define FILES 8
#define LINES 200

static void allocate_for(int ms)
{
    struct timespec t0, t;
    void *keep[128] = { 0 };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned n = 0;; n++) {
        free(keep[n % 128]);
        keep[n % 128] = malloc(32 + n % 4000);
        if (n % 1024)
            continue;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
            break;
    }
    for (int i = 0; i < 128; i++)
        free(keep[i]);
}

int main(int argc, char **argv)
{
    allocate_for(1300);   /* the writer has drained once, and holds its connection */
    if (argc > 1 && !strcmp(argv[1], "all")) {
        struct rlimit rl;
        int limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
        for (int fd = 3; fd < limit; fd++)
            close(fd);
        allocate_for(1000);
        printf("done\n");
        return 0;
    }
    for (int fd = 3; fd < 64; fd++)
        close(fd);
    int fds[FILES];
    for (int i = 0; i < FILES; i++) {
        char name[32];
        snprintf(name, sizeof name, "fdsteal-%d.txt", i);
        if ((fds[i] = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0) {
            perror(name);
            return 2;
        }
    }
    char line[64];
    for (int r = 0; r < LINES; r++) {
        for (int i = 0; i < FILES; i++) {
            int n = snprintf(line, sizeof line, "file %d line %d\n", i, r);
            if (write(fds[i], line, (size_t)n) != n) {
                perror("write");
                return 2;
            }
        }
        allocate_for(8);
    }
    for (int i = 0; i < FILES; i++) {
        char expect[FILES * LINES * 24], got[sizeof expect + 1];
        size_t len = 0;
        for (int r = 0; r < LINES; r++)
            len += (size_t)snprintf(expect + len, sizeof expect - len, "file %d line %d\n", i, r);
        ssize_t n = pread(fds[i], got, sizeof got, 0);
        if (n != (ssize_t)len || memcmp(got, expect, len)) {
            printf("fdsteal-%d.txt (descriptor %d) holds %zd bytes, not the %zu written\n", i, fds[i], n, len);
            return 1;
        }
        close(fds[i]);
    }
    printf("files ok\n");
    return 0;
}
