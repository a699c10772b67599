// vptrs.cpp: what type inference reads from a heap walk (schema 5), for tests/unit/t-heapgraph.c.
// A polymorphic hierarchy in a namespace (Base with a virtual destructor, Derived1, Derived2)
// allocated with new and held in globals, a run of Derived1 side by side, and a plain C struct
// whose first word points at a string literal (a false vtable candidate); interior pointers
// 16 bytes into a block, from a global and from another block, beside pointers to its start.
// Takes the snapshot "vptrs", then prints "name value" lines (runtime addresses, hex) for the
// test to check the snapshot against.
#include <cstdio>
#include <cstddef>
#include "heapwatch.h"

namespace ns {
struct Base {
    virtual ~Base() {}
    long tag = 1;
};
struct Derived1 : Base {
    ~Derived1() override {}
    long a = 2, b[4] = {};
};
struct Derived2 : Base {
    ~Derived2() override {}
    char name[40] = "derived2";
};
}  // namespace ns

// A C struct: no vtable. member sits at offset 16.
struct plain {
    const char *name;
    long id;
    long member;
    struct plain *next;   // a pointer to a block's start
    long *inner;          // a pointer 16 bytes into a block
    long pad[3];
};
static_assert(offsetof(plain, member) == 16, "member at offset 16");

constexpr int RUN = 8;
// Globals with external linkage: the compiler may not drop what they hold.
ns::Base *g_d1, *g_d2, *g_base;
ns::Derived1 *g_run[RUN];
plain *g_plain, *g_holder;
long *g_interior;   // &g_holder->member: 16 bytes into g_holder's block

int main()
{
    g_d1 = new ns::Derived1();
    g_d2 = new ns::Derived2();
    g_base = new ns::Base();
    for (int i = 0; i < RUN; i++)
        g_run[i] = new ns::Derived1();
    g_holder = new plain{ "holder", 1, 42, nullptr, nullptr, {} };
    g_plain = new plain{ "plain", 2, 7, g_holder, &g_holder->member, {} };
    g_interior = &g_holder->member;
    int rc = HEAPWATCH_SNAPSHOT("vptrs");
    std::printf("snapshot %d\n", rc);
    std::printf("block g_d1 %p\nblock g_d2 %p\nblock g_base %p\nblock g_plain %p\nblock g_holder %p\n",
                (void *)g_d1, (void *)g_d2, (void *)g_base, (void *)g_plain, (void *)g_holder);
    for (int i = 0; i < RUN; i++)
        std::printf("block g_run%d %p\n", i, (void *)g_run[i]);
    std::printf("addr g_interior %p\naddr g_holder %p\n", (void *)&g_interior, (void *)&g_holder);
    std::printf("vptr g_d1 %p\n", *(void **)g_d1);
    return 0;
}
