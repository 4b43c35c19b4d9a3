// sized_delete_threshold.cpp: sized and aligned operator delete must accept every block that new
// returned, wherever the mmap threshold put it: small pages, large blocks and huge blocks (found
// by review: with MALLOC_MMAP_THRESHOLD_=1000, new(1000) is a huge block of one kernel page, and
// the sized delete's check refused it). Sizes 0..5000 and a few large ones, plain and aligned,
// with the threshold as the environment set it, then at 100, 1000 and 3000 by mallopt, with
// blocks allocated before each change deleted after it; then standard containers.
#include <malloc.h>

#include <cstdio>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct alignas(64) Wide {
  char bytes[100];
};

void sizes_round_trip() {
  std::vector<std::pair<void*, std::size_t>> kept;
  for (std::size_t n = 0; n <= 5000; ++n) {
    void* p = ::operator new(n);
    ::operator delete(p, n);
    void* q = ::operator new (n, std::align_val_t{64});
    ::operator delete (q, n, std::align_val_t{64});
    if (n % 97 == 0) kept.emplace_back(::operator new(n), n);
  }
  for (std::size_t n : {70000ul, 200000ul, 1ul << 20, 5ul << 20}) {
    void* p = ::operator new(n);
    ::operator delete(p, n);
    kept.emplace_back(::operator new(n), n);
  }
  // Deleted after the next threshold change.
  static std::vector<std::pair<void*, std::size_t>> previous;
  for (auto& [p, n] : previous) ::operator delete(p, n);
  previous = std::move(kept);
}

void containers() {
  std::map<int, std::string> m;
  std::unordered_map<std::string, std::vector<int>> u;
  std::list<std::string> l;
  std::deque<Wide> d;
  for (int i = 0; i < 20000; ++i) {
    m[i] = std::string(static_cast<std::size_t>(i % 300), 'x');
    u[std::to_string(i)].resize(static_cast<std::size_t>(i % 50));
    l.push_back(std::to_string(i));
    d.emplace_back();
    if (i % 3 == 0) m.erase(i / 2);
  }
  auto shared = std::make_shared<std::vector<Wide>>(1000);
  std::unique_ptr<Wide[]> array(new Wide[333]);
  std::unique_ptr<std::string[]> strings(new std::string[77]);
}

}  // namespace

int main() {
  sizes_round_trip();
  containers();
  for (int threshold : {100, 1000, 3000}) {
    mallopt(M_MMAP_THRESHOLD, threshold);
    sizes_round_trip();
    containers();
  }
  sizes_round_trip();
  std::puts("RESULT: PASS");
  return 0;
}
