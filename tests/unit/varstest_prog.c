/* varstest_prog.c: target program for tests/unit/t-dwarfvars.c.
 *
 * This file implements a tiny program with the variables and types the test asks the DWARF
 * reader about: globals of struct, pointer, array, nested struct and typedef types, a
 * linked-list struct, a pointer to a struct defined only in another unit
 * (varstest_opaque.c), function-static locals, __thread variables, stack locals in nested
 * blocks, a local kept in a register across a call at -O2, and a local of an inlined
 * function. The C++ half (varstest_prog.cpp) adds classes. It prints what the test compares
 * against, one "key value" line each, addresses as link-time addresses (runtime address -
 * load bias):
 *   addr NAME A     where global or static NAME lives
 *   tls NAME O      offset of __thread NAME in this module's TLS block
 *   off T.M N       offsetof(T, M)        size T N    sizeof(T)
 *   frame NAME D    &NAME - __builtin_frame_address(0) in frame_fn (valid at -O0)
 *   slot N A        return address of varstest_record(N), inside the function that called it
 */
#define _GNU_SOURCE
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct entry {
	uint64_t key;
	char *val;
	struct entry *next; /* a list of its own type */
};

struct cache {
	int nr;
	unsigned flags;
	struct entry *head;
	struct entry **slots;
	char name[24];
	const char *label;
};
typedef struct cache cache_t;

struct inner {
	short a;
	double b;
};

struct outer {
	char tag;
	struct inner in;
	struct inner pair[2];
	void (*cb)(int);
	int grid[3][4];
};

struct opaque; /* defined in varstest_opaque.c only */
struct opaque *varstest_opaque_new(void);

struct cache *g_cache;
struct entry *g_table[512];
struct outer g_outer = { .tag = 'o' };
cache_t g_cache_obj;
struct opaque *g_opaque;
__thread struct entry *tls_entry;
__thread long tls_count = 7;

uintptr_t varstest_pcs[8];
uintptr_t varstest_bias;

/* Link-time addresses of two function-static locals, for main to print. */
static uintptr_t static_addr[2];

void varstest_cpp(void);

__attribute__((noipa)) void varstest_record(int slot)
{
	varstest_pcs[slot] = (uintptr_t)__builtin_return_address(0);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noipa)) struct entry *make_entry(int n)
{
	struct entry *e = calloc(1, sizeof(*e));

	e->key = (uint64_t)n;
	return e;
}

__attribute__((noinline)) int bump(void)
{
	static int counter;
	static struct entry *last_made;

	last_made = make_entry(++counter);
	static_addr[0] = (uintptr_t)&counter;
	static_addr[1] = (uintptr_t)&last_made;
	varstest_record(4);
	return counter;
}

/* Stack locals at known frame offsets (-O0): local_ptr across the call of slot 0, and
 * inner_only in a block that has ended by then; after in a block around slot 3. */
__attribute__((noinline)) void frame_fn(int param)
{
	struct entry *local_ptr = make_entry(param);
	long total = 0;

	{
		struct entry *inner_only = make_entry(param + 1);

		total += (long)inner_only->key;
		free(inner_only);
	}
	varstest_record(0);
	{
		struct entry *after = make_entry(param + 2);

		varstest_record(3);
		total += (long)after->key;
		printf("frame after %ld\n", (long)((char *)&after - (char *)__builtin_frame_address(0)));
		free(after);
	}
	printf("frame local_ptr %ld\n",
	       (long)((char *)&local_ptr - (char *)__builtin_frame_address(0)));
	printf("frame param %ld\n", (long)((char *)&param - (char *)__builtin_frame_address(0)));
	printf("frame total %ld\n", (long)((char *)&total - (char *)__builtin_frame_address(0)));
	free(local_ptr);
}

/* At -O2, keep lives in a callee-saved register across the call of slot 1. */
__attribute__((noinline)) long reg_fn(int n)
{
	struct entry *keep = make_entry(n);
	long r;

	varstest_record(1);
	r = (long)keep->key + n;
	free(keep);
	return r;
}

static inline __attribute__((always_inline)) long inl_hold(int n)
{
	struct entry *held = make_entry(n);
	long r;

	varstest_record(2);
	r = (long)held->key;
	free(held);
	return r;
}

__attribute__((noinline)) long outer_fn(int n)
{
	return inl_hold(n) * 3;
}

static int first_obj(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	*(struct dl_phdr_info *)arg = *info;
	return 1;
}

#define ADDR(name, p) \
	printf("addr %s %#lx\n", name, (unsigned long)((uintptr_t)(p) - varstest_bias))
#define OFF(T, M) printf("off %s.%s %zu\n", #T, #M, offsetof(struct T, M))

int main(int argc, char **argv)
{
	struct dl_phdr_info self;

	(void)argv;
	dl_iterate_phdr(first_obj, &self);
	varstest_bias = self.dlpi_addr;
	g_cache = calloc(1, sizeof(*g_cache));
	g_table[3] = make_entry(3);
	g_opaque = varstest_opaque_new();
	tls_entry = make_entry(4);
	bump();
	frame_fn(argc);
	reg_fn(argc);
	outer_fn(argc);
	varstest_cpp();

	ADDR("g_cache", &g_cache);
	ADDR("g_table", &g_table);
	ADDR("g_outer", &g_outer);
	ADDR("g_cache_obj", &g_cache_obj);
	ADDR("g_opaque", &g_opaque);
	ADDR("counter", static_addr[0]);
	ADDR("last_made", static_addr[1]);
	printf("tls tls_entry %ld\n", (long)((char *)&tls_entry - (char *)self.dlpi_tls_data));
	printf("tls tls_count %ld\n", (long)((char *)&tls_count - (char *)self.dlpi_tls_data));
	OFF(cache, nr);
	OFF(cache, flags);
	OFF(cache, head);
	OFF(cache, slots);
	OFF(cache, name);
	OFF(cache, label);
	OFF(entry, next);
	OFF(outer, in);
	OFF(outer, pair);
	OFF(outer, cb);
	OFF(outer, grid);
	OFF(inner, b);
	printf("size cache %zu\n", sizeof(struct cache));
	printf("size outer %zu\n", sizeof(struct outer));
	for (int i = 0; i < 8; i++)
		if (varstest_pcs[i])
			printf("slot %d %#lx\n", i, (unsigned long)(varstest_pcs[i] - varstest_bias));
	return 0;
}
