// sanitizer.h: whether the test program is built with a sanitizer that maps memory of its own
// (TSan and ASan: shadow memory for every mapping, memory for new threads), so that VmSize and the
// map count say nothing about the allocator. Shared by the unit and robustness tests.
#pragma once

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizerMapsMemory = true;
#elif defined(__has_feature)
inline constexpr bool kSanitizerMapsMemory =
    __has_feature(thread_sanitizer) || __has_feature(address_sanitizer);
#else
inline constexpr bool kSanitizerMapsMemory = false;
#endif
