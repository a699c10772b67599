// html_names.cpp: a heap whose allocating function's name has HTML's special characters
// (a template of a reference type: '<', '>' and '&'), for t6500-html.sh. The test compiles it
// as a file whose path has a quote.
#include <cstdio>
#include <cstdlib>

template <typename T> struct Box { T v; };

template <typename T> __attribute__((noinline)) void *make_box(int n)
{
    void *p = std::malloc(sizeof(Box<T>) * (size_t)n);
    std::printf("%p\n", p);
    return p;
}

int x;
void *kept[4];

int main()
{
    kept[0] = make_box<int &>(8);
    kept[1] = make_box<int &>(8);
    return 0;
}
