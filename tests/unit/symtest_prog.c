/* symtest_prog.c: target program for tests/unit/t-symbolize.c.
 *
 * This file implements a tiny program whose functions sit at known source lines (the lines
 * carrying "@mark NAME" comments, which the test greps for). Each interesting spot calls
 * symtest_record(slot), which stores its return address; main prints "slot N ADDR" with
 * ADDR = return address - load bias, i.e. a link-time address the symbolizer can resolve.
 * Built at -O2 so that inl_leaf and inl_mid are inlined into symtest_outer; the C++ half
 * (symtest_prog.cpp) is built at -O0.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <stdio.h>

uintptr_t symtest_pcs[8];

int symtest_cpp(int x);
int symtest_plain_o0(int x);

__attribute__((noinline)) void symtest_record(int slot)
{
	symtest_pcs[slot] = (uintptr_t)__builtin_return_address(0);
	__asm__ volatile("" ::: "memory");
}

static inline __attribute__((always_inline)) int inl_leaf(int x)
{
	symtest_record(0); /* @mark inl_leaf_call */
	return x * 3;
}

static inline __attribute__((always_inline)) int inl_mid(int x)
{
	return inl_leaf(x + 1) + 7; /* @mark inl_mid_call */
}

__attribute__((noinline)) int symtest_outer(int x)
{
	int r = inl_mid(x ^ 5); /* @mark outer_call */
	return r * 2;
}

/* The first object dl_iterate_phdr reports is the main program: its dlpi_addr is the bias. */
static int first_bias(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	*(uintptr_t *)arg = info->dlpi_addr;
	return 1;
}

int main(int argc, char **argv)
{
	uintptr_t bias = 0;
	int sum;

	(void)argv;
	sum = symtest_outer(argc) + symtest_cpp(argc) + symtest_plain_o0(argc);
	dl_iterate_phdr(first_bias, &bias);
	for (int i = 0; i < 8; i++)
		if (symtest_pcs[i])
			printf("slot %d %#lx\n", i, (unsigned long)(symtest_pcs[i] - bias));
	printf("func symtest_outer %#lx\n", (unsigned long)((uintptr_t)&symtest_outer - bias));
	printf("sum %d\n", sum);
	return 0;
}
