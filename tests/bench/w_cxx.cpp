// w_cxx.cpp: a mix of C++ standard containers.
// Each round fills a std::map<std::string, std::vector<int>>, a std::unordered_map<uint64_t,
// std::string>, a std::vector<std::shared_ptr<Item>> and builds strings by concatenation, then
// drops them all. About 5 million allocations (x scale).
// Usage: w_cxx [scale]   Prints a checksum on stdout. Built with -DBENCH_COUNT_ALLOCS it also
// counts every operator new and prints "allocs=N" (the benchmark builds that variant once to
// learn the count and measures the plain build, whose operator new is libstdc++'s own).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench.h"

#ifdef BENCH_COUNT_ALLOCS
static long g_allocs;

static void *counted_alloc(std::size_t n)
{
    g_allocs++;
    void *p = std::malloc(n ? n : 1);
    if (!p)
        throw std::bad_alloc();
    return p;
}
void *operator new(std::size_t n) { return counted_alloc(n); }
void *operator new[](std::size_t n) { return counted_alloc(n); }
void *operator new(std::size_t n, const std::nothrow_t &) noexcept
{
    g_allocs++;
    return std::malloc(n ? n : 1);
}
void *operator new[](std::size_t n, const std::nothrow_t &) noexcept
{
    g_allocs++;
    return std::malloc(n ? n : 1);
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t) noexcept { std::free(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { std::free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { std::free(p); }
#endif

namespace {

const int kDefaultRounds = 250;
const int kPerRound = 2000;

std::uint64_t g_seed = 0xA4093822299F31D0ULL;

std::uint64_t rnd()
{
    return bench_rnd(&g_seed);
}

struct Item {
    std::uint64_t id;
    double weight;
    char tag[40];
    Item(std::uint64_t i, double w) : id(i), weight(w), tag{} { tag[0] = char('a' + i % 26); }
};

std::uint64_t round_work(int round)
{
    std::uint64_t h = 0;

    // Ordered map keyed by heap-allocated strings (longer than the small-string buffer),
    // each value a vector grown element by element.
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < kPerRound; i++) {
        std::string key = "component/subsystem/" + std::to_string(rnd() % 100000);
        std::vector<int> &v = m[key];
        int n = 1 + int(rnd() % 8);
        for (int k = 0; k < n; k++)
            v.push_back(i + k);
    }
    for (const auto &kv : m)
        h = h * 131 + kv.first.size() + kv.second.size() + std::uint64_t(kv.second.back());

    // Hash map of long strings, rehashing as it grows.
    std::unordered_map<std::uint64_t, std::string> u;
    for (int i = 0; i < kPerRound; i++) {
        std::uint64_t k = rnd();
        u[k] = "value-of-" + std::to_string(k % 1000003) + "-in-round-" + std::to_string(round);
    }
    for (int i = 0; i < kPerRound / 4; i++) {
        auto it = u.begin();
        if (it == u.end())
            break;
        h += it->second.size();
        u.erase(it);
    }
    h += u.size();

    // Shared ownership: make_shared objects in a growing vector, some copied into a second one.
    std::vector<std::shared_ptr<Item>> items;
    std::vector<std::shared_ptr<Item>> picked;
    for (int i = 0; i < kPerRound; i++) {
        items.push_back(std::make_shared<Item>(rnd(), double(i) * 0.5));
        if (rnd() % 4 == 0)
            picked.push_back(items.back());
    }
    for (const auto &p : picked)
        h += p->id % 1000 + std::uint64_t(p.use_count()) + std::uint64_t(p->tag[0]);

    // String concatenation: temporaries and one string grown by appends.
    std::string acc;
    for (int i = 0; i < kPerRound; i++) {
        std::string piece = std::string("segment-") + std::to_string(i) + "/" +
                            std::to_string(rnd() % 977) + ";";
        acc += piece;
        if (acc.size() > 4096) {
            h += std::uint64_t(acc[acc.size() / 2]) + acc.size();
            acc = std::string();
        }
    }
    h += acc.size();
    return h;
}

} // namespace

int main(int argc, char **argv)
{
    int rounds = int(kDefaultRounds * bench_parse_scale(argc, argv));
    if (rounds < 1)
        rounds = 1;
    std::uint64_t sum = 0;
    for (int r = 0; r < rounds; r++)
        sum = sum * 1099511628211ULL + round_work(r);
#ifdef BENCH_COUNT_ALLOCS
    std::printf("w_cxx: allocs=%ld rounds=%d checksum=%016llx\n", g_allocs, rounds,
                (unsigned long long)sum);
#else
    std::printf("w_cxx: rounds=%d checksum=%016llx\n", rounds, (unsigned long long)sum);
#endif
    return 0;
}
