// counters.cpp: storage of the process-wide counters.
#include "stats/counters.hpp"

namespace mallard::stats {

std::atomic<std::int64_t> g_active_bytes{0};
std::atomic<std::int64_t> g_peak_active_bytes{0};

}  // namespace mallard::stats
