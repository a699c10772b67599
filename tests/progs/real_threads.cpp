// real_threads.cpp: an ordinary threaded C++ program for t1400-real-programs.sh. Four
// std::threads each build a std::map, a std::vector and std::strings, then the main thread
// joins them and prints a checksum that does not depend on scheduling. Nothing in it knows
// about heapwatch: it must behave the same with and without the shim.
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

static uint64_t work(int id, int n) {
    std::map<int, std::string> m;
    std::vector<uint64_t> v;
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        // Long enough to leave the small-string buffer, so every string allocates.
        std::string s = "thread-" + std::to_string(id) + "-item-" + std::to_string(i) +
                        "-padding-padding";
        m[i * 7 % n] = s;
        v.push_back(static_cast<uint64_t>(s.size()) * static_cast<uint64_t>(i + id));
    }
    for (const auto &kv : m) {
        sum = sum * 31 + static_cast<uint64_t>(kv.first);
        for (char c : kv.second) sum = sum * 131 + static_cast<unsigned char>(c);
    }
    for (uint64_t x : v) sum ^= x + 0x9e3779b97f4a7c15ULL + (sum << 6) + (sum >> 2);
    // Erase half of the map: the other half and the vector go away at scope exit.
    for (int i = 0; i < n; i += 2) m.erase(i);
    sum += m.size();
    return sum;
}

int main() {
    const int nthreads = 4, n = 20000;
    std::vector<uint64_t> results(nthreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < nthreads; t++)
        threads.emplace_back([t, &results] { results[t] = work(t, n); });
    for (auto &th : threads) th.join();
    uint64_t total = 0;
    for (int t = 0; t < nthreads; t++) {
        std::printf("thread %d: %016llx\n", t, static_cast<unsigned long long>(results[t]));
        total ^= results[t] * (t + 1);
    }
    std::printf("checksum %016llx\n", static_cast<unsigned long long>(total));
    return 0;
}
