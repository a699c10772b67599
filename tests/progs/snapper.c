/* snapper.c: takes snapshots when told, for tests that change the world between them (a disk
 * that fills up and empties). Reads commands from standard input, one a line:
 *   s  take a snapshot (prints "snapshot 0" on success, "snapshot -1" on failure)
 *   a  allocate 100 blocks of 1000 bytes (kept)
 *   q  exit 0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapwatch.h"

int main(void)
{
    char line[64];
    void *kept[100000];
    int n = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 's') {
            printf("snapshot %d\n", HEAPWATCH_SNAPSHOT("snapper"));
        } else if (line[0] == 'a') {
            for (int i = 0; i < 100 && n < 100000; i++) {
                kept[n] = malloc(1000);
                memset(kept[n++], 1, 1000);
            }
            puts("allocated");
        } else if (line[0] == 'q') {
            break;
        }
    }
    return 0;
}
