#include <cstdint>
#include <vector>

#include "check.h"
#include "util/free_memory.h"

using cmo::ScratchFloats;

// Each size class: new[] below the mapping threshold, a plain mapping, a 2 MiB-aligned huge-page mapping.
TEST(scratch_floats_are_zero_and_writable_in_every_size_class) {
  const std::vector<size_t> counts = {1, 1000, ScratchFloats::kMapMinBytes / 4 + 3, ScratchFloats::kHugePageBytes / 4 + 17,
                                      3 * ScratchFloats::kHugePageBytes / 4};
  for (size_t n : counts) {
    ScratchFloats s(n);
    CHECK_EQ(s.size(), n);
    for (size_t i = 0; i < n; ++i) CHECK_EQ(s.data()[i], 0.f);
    for (size_t i = 0; i < n; ++i) s.data()[i] = static_cast<float>(i);  // the whole range is ours to write
    CHECK_EQ(s.data()[n - 1], static_cast<float>(n - 1));
  }
}

TEST(scratch_floats_of_huge_page_size_start_on_a_2mib_boundary) {
#if defined(__linux__) && !defined(__SANITIZE_ADDRESS__)
  ScratchFloats s(ScratchFloats::kHugePageBytes / 4 * 3 + 5);
  CHECK_EQ(reinterpret_cast<uintptr_t>(s.data()) % ScratchFloats::kHugePageBytes, uintptr_t{0});
#endif
}

TEST(empty_scratch_floats_hold_nothing) {
  ScratchFloats s(0);
  CHECK_EQ(s.size(), size_t{0});
  CHECK(s.data() == nullptr);
}

CMO_TEST_MAIN()
