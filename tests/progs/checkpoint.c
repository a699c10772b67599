/* checkpoint.c: a program whose snapshots the tests read while it runs.
 * Allocates 20000 blocks, held by a global array, takes a snapshot labelled "one" through the
 * API, prints "one ID" and waits for a line on stdin; then takes "two", prints "two ID" and
 * exits 0 (the exit snapshot follows). The tests look at the database in between, while the
 * process still runs. */
#include <stdio.h>
#include <stdlib.h>
#include "heapwatch.h"

void *kept[20000]; /* not static: the stores and so the mallocs must stay */

int main(void)
{
    for (int i = 0; i < 20000; i++)
        kept[i] = malloc(32 + i % 200);
    printf("one %d\n", HEAPWATCH_SNAPSHOT("one"));
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 1;
    printf("two %d\n", HEAPWATCH_SNAPSHOT("two"));
    return 0;
}
