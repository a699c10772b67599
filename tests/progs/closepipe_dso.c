/* closepipe_dso.c: preloaded before libheapwatch.so, it closes the read end of every pipe made
 * with pipe2(O_CLOEXEC) (the flags of a snapshot's pipes to and from its walk child) as soon as
 * it is made: what a double close of the program's, in another thread, does in the moment
 * before the shim moves a new descriptor out of its reach (sys.h, hw_fd_high). The shim must
 * then give the snapshot up, never wait on a descriptor of -1. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

int pipe2(int fds[2], int flags)
{
    int rc = (int)syscall(SYS_pipe2, fds, flags);
    if (rc == 0 && flags == O_CLOEXEC)
        close(fds[0]);
    return rc;
}
