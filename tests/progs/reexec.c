/* reexec.c: takes a snapshot, then execs itself N more times in the same process (same pid),
 * each image taking its own. Usage: reexec N. Under the shim with a pid-named
 * HEAPWATCH_OUT, each image must get a database of its own: name.db, name-2.db, name-3.db ... */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "heapwatch.h"

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 0;
    if (HEAPWATCH_SNAPSHOT("image") != 0)
        fprintf(stderr, "reexec: snapshot failed\n");
    if (n <= 0)
        return 0;
    char next[16];
    snprintf(next, sizeof next, "%d", n - 1);
    execl("/proc/self/exe", argv[0], next, (char *)NULL);
    perror("reexec: exec");
    return 1;
}
