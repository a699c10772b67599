// types_cxx.cpp: C++ objects whose types are known exactly, for `heapwatch types`
// (t2010-types.sh): polymorphic objects typed by their vtables whatever pointer holds them,
// and a std::vector<T *>'s elements typed through its buffer. Run in full mode; it takes one
// snapshot, "types", and exits 0.
//
// Variable              holds                                         types
// g_shapes              std::vector<shapes::Shape *>, 5 elements        shapes::Shape *[] (40 B buffer)
//                       reserved exactly: 3 Circle, 2 Square            shapes::Circle (vtable) x3,
//                                                                       shapes::Square (vtable) x2
// g_one                 shapes::Shape * to a Square                   shapes::Square (vtable)
// g_opaque              void * to a Circle                            shapes::Circle (vtable)
// g_items               std::vector<Item *>, 4 elements reserved      Item *[] (32 B buffer), Item x4
//                       exactly
#include <heapwatch.h>
#include <cstdio>
#include <vector>

namespace shapes {
struct Shape {
    long id = 0;
    virtual ~Shape() {}
    virtual double area() const = 0;
};
struct Circle : Shape {
    double r = 1;
    double area() const override { return 3.14159 * r * r; }
};
struct Square : Shape {
    double side = 2;
    char pad[40] = {};
    double area() const override { return side * side; }
};
}  // namespace shapes

struct Item {
    long a, b, c;
};

std::vector<shapes::Shape *> g_shapes;
shapes::Shape *g_one;
void *g_opaque;
std::vector<Item *> g_items;

__attribute__((noinline)) static void build()
{
    g_shapes.reserve(5);
    for (int i = 0; i < 5; i++)
        g_shapes.push_back(i < 3 ? static_cast<shapes::Shape *>(new shapes::Circle) : new shapes::Square);
    g_one = new shapes::Square;
    g_opaque = new shapes::Circle;
    g_items.reserve(4);
    for (int i = 0; i < 4; i++)
        g_items.push_back(new Item{ i, i, i });
}

int main()
{
    static_assert(sizeof(shapes::Circle) == 24 && sizeof(shapes::Square) == 64 && sizeof(Item) == 24, "sizes");
    build();
    heapwatch_snapshot("types");
    double sum = 0;
    for (auto *s : g_shapes)
        sum += s->area();
    std::printf("%.1f\n", sum);
    return 0;
}
