/* phases.c: a program that asks for its own snapshots with signals, the way a service would
 * from its code or a script with kill: `phases N` runs N phases; phase i allocates i blocks
 * of 1000 + i bytes (kept) and then raises SIGUSR2 (i odd) or sends it with
 * kill(getpid(), SIGUSR2) (i even). Each signal must give a snapshot of that moment: the
 * snapshot for phase i holds exactly the blocks of phases 1..i.
 * `phases wait`: allocates, prints "ready" and exits as soon as its standard input closes,
 * for a signal sent from outside just before it exits. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *kept[64][64];

__attribute__((noipa)) static void phase(int i)
{
    for (int k = 0; k < i; k++) {
        kept[i][k] = malloc(1000 + (size_t)i);
        memset(kept[i][k], i, 1000 + (size_t)i);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "wait")) {
        phase(3);
        puts("ready");
        fflush(stdout);
        char c;
        while (read(0, &c, 1) > 0)
            ;
        return 0;
    }
    int n = argc > 1 ? atoi(argv[1]) : 8;
    for (int i = 1; i <= n && i < 64; i++) {
        phase(i);
        if (i % 2)
            raise(SIGUSR2);
        else
            kill(getpid(), SIGUSR2);
    }
    printf("phases %d\n", n);
    return 0;
}
