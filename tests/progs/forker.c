/* forker.c: fork and exec children with known allocations.
 *   parent: 10 blocks of 1000 bytes before fork, then 5 blocks of 3000 after
 *   fork child: inherits the 10, adds 7 blocks of 2000, exits normally
 *   exec child: this program again with "child" argument: 3 blocks of 5000 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void *before[10], *after[5], *in_child[7], *exec_child[3];

__attribute__((noinline)) static void alloc_n(void **v, int n, size_t size)
{
    for (int i = 0; i < n; i++)
        v[i] = malloc(size);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "child")) {
        alloc_n(exec_child, 3, 5000);
        printf("exec child %d\n", getpid());
        return 4;
    }
    alloc_n(before, 10, 1000);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alloc_n(in_child, 7, 2000);
        exit(3);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("fork child %d exited %d\n", pid, WEXITSTATUS(status));
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], "child", (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    printf("exec child %d exited %d\n", pid, WEXITSTATUS(status));
    alloc_n(after, 5, 3000);
    return 0;
}
