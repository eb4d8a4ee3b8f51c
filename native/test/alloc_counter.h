// Counts heap allocations of at least kBigAllocation bytes, so a test can check that warm runs make no large
// allocation. It replaces the global operator new/delete: include it FIRST, from one file per test binary.
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
// The replacement operator new/delete pair malloc with free; GCC cannot see that they replace the global
// ones and warns at every inlined delete.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> g_big_allocs{0};
constexpr size_t kBigAllocation = 16 * 1024;  // bytes; below the smallest intermediate the tests' networks make
}  // namespace

void* operator new(size_t n) {
  if (n >= kBigAllocation) g_big_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
