/* manystacks.c: 131072 allocations, each from a stack of its own (a binary tree of calls 17
 * deep, through two call sites a level), and a marker string in the heap that no report may
 * show (t6500-html.sh: a report of 100k stacks stays small and quick, and shows no heap
 * contents). */
#include <stdlib.h>
#include <string.h>

#define DEPTH 17
static void *keep[1 << DEPTH];
static int n;

__attribute__((noinline)) static void leaf(void)
{
    keep[n] = malloc(16 + (size_t)(n % 4) * 16);
    memcpy(keep[n], "HEAP_SECRET_7f3a", 16);
    n++;
}

static void down(int d);
__attribute__((noinline)) static void left(int d) { down(d - 1); __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) static void right(int d) { down(d - 1); __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) static void down(int d)
{
    if (!d) {
        leaf();
        return;
    }
    left(d);
    right(d);
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    down(DEPTH);
    return n == 1 << DEPTH ? 0 : 1;
}
