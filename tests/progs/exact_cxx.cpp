// exact_cxx.cpp: C++ allocations with exactly known counts, sizes and lines through every
// operator new/delete form (plain, array, nothrow, aligned, sized delete). Sites are marked
// "SITE:name" for tests/t1000-exact.sh.
#include <cstdio>
#include <new>
#include "heapwatch.h"

struct Obj {
    char bytes[40];
};
struct alignas(64) Aligned {
    char bytes[128];
};

constexpr int N = 100;
// Globals with external linkage: the compiler may not drop allocations it cannot prove unused.
Obj *objs[N], *nothrow_objs[N];
char *arrays[N];
Aligned *aligned[N], *aligned_arrays[N];

__attribute__((noinline)) static void plain()
{
    for (int i = 0; i < N; i++)
        objs[i] = new Obj(); // SITE:new
    for (int i = 0; i < 25; i++)
        delete objs[i];  // sized delete
}

__attribute__((noinline)) static void arrays_and_nothrow()
{
    for (int i = 0; i < N; i++)
        arrays[i] = new char[100]; // SITE:new_array
    for (int i = 0; i < 50; i++)
        delete[] arrays[i];
    for (int i = 0; i < N; i++)
        nothrow_objs[i] = new (std::nothrow) Obj(); // SITE:new_nothrow
}

__attribute__((noinline)) static void over_aligned()
{
    for (int i = 0; i < N; i++)
        aligned[i] = new Aligned(); // SITE:new_aligned
    for (int i = 0; i < N; i++)
        delete aligned[i];  // aligned sized delete
    for (int i = 0; i < N; i++)
        aligned_arrays[i] = new Aligned[4]; // SITE:new_aligned_array
}

int main()
{
    plain();
    arrays_and_nothrow();
    over_aligned();
    int rc = HEAPWATCH_SNAPSHOT("done");
    std::printf("snapshot %s\n", rc == 0 ? "taken" : "unavailable");
    return 0;
}
