// hugenew.cpp: operator new with an alignment and a size near SIZE_MAX. The standard says it
// throws std::bad_alloc, but libstdc++ 12 rounds the size up to the alignment for
// aligned_alloc, which wraps to a small block that it returns; the shim's operator new does
// the same rounding. The program must see the same outcome with and without the shim:
// tests/t1000-exact.sh compares them.
#include <cstdint>
#include <cstdio>
#include <new>

int main()
{
    volatile std::size_t unknown = SIZE_MAX - 10;   // a size the compiler cannot see
    const std::size_t huge = unknown;
    try {
        void *p = ::operator new(huge, std::align_val_t(64));
        std::printf("aligned new: no exception (%p)\n", p);
    } catch (const std::bad_alloc &) {
        std::printf("aligned new: bad_alloc\n");
    }
    void *q = ::operator new[](huge, std::align_val_t(64), std::nothrow);
    std::printf("aligned nothrow new[]: %s\n", q ? "a block" : "null");
    return 0;
}
