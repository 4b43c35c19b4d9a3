// containers.cc: C++ containers. Each thread builds and tears down a std::map<int, std::string>,
// a std::unordered_map<std::string, std::vector<int>> and long std::strings built by appending,
// with lookups, erasures and re-insertions in between.
#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common.h"

static std::string make_text(uint64_t* seed, size_t len) {
    std::string s;
    for (size_t i = 0; i < len; i++) s += static_cast<char>('a' + rng_next(seed) % 26);
    return s;
}

static unsigned long one_pass(uint64_t seed, long n) {
    unsigned long sum = 0;
    {
        std::map<int, std::string> m;
        for (long i = 0; i < n; i++)
            m.emplace(static_cast<int>(rng_next(&seed) % (uint64_t)(n * 4)), make_text(&seed, 8 + i % 40));
        for (long i = 0; i < n; i++) {
            auto it = m.find(static_cast<int>(rng_next(&seed) % (uint64_t)(n * 4)));
            if (it != m.end()) sum += it->second.size();
        }
        for (auto it = m.begin(); it != m.end();) it = (it->first & 1) ? m.erase(it) : std::next(it);
        for (long i = 0; i < n / 2; i++)
            m[static_cast<int>(rng_next(&seed) % (uint64_t)(n * 4))] = make_text(&seed, 20 + i % 60);
        sum += m.size();
    }
    {
        std::unordered_map<std::string, std::vector<int>> u;
        for (long i = 0; i < n; i++) {
            auto& v = u[make_text(&seed, 6 + i % 24)];
            for (int k = 0; k < 1 + static_cast<int>(i % 7); k++) v.push_back(k);
        }
        for (long i = 0; i < n; i += 3) u.erase(make_text(&seed, 6 + i % 24));
        sum += u.size();
    }
    {
        std::vector<std::string> lines;
        for (long i = 0; i < n / 8; i++) {
            std::string line;
            for (int k = 0; k < 32; k++) line += std::to_string(rng_next(&seed) % 100000) + ",";
            lines.push_back(std::move(line));
        }
        std::string all;
        for (const auto& l : lines) all += l;
        sum += all.size();
    }
    return sum;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    long n = bench_scaled(150000, a.scale);
    std::vector<unsigned long> sums(a.threads);
    double t0 = now_s();
    {
        std::vector<std::thread> ts;
        for (int i = 0; i < a.threads; i++) ts.emplace_back([&, i] { sums[i] = one_pass(6000 + i, n); });
        for (auto& t : ts) t.join();
    }
    double el = now_s() - t0;
    unsigned long sum = 0;
    for (auto s : sums) sum += s;
    printf("result workload=containers threads=%d n=%ld elapsed_s=%.4f rss_end_kb=%ld check=%lu\n",
           a.threads, n, el, rss_kb(), sum % 1000);
    return 0;
}
