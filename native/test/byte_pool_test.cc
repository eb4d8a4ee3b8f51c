// BytePool: recycled storage comes back (same memory), bounds on what is kept, trim().
#include <vector>

#include "check.h"
#include "util/byte_pool.h"

using cmo::BytePool;

TEST(a_given_buffer_is_taken_again) {
  BytePool pool;
  std::vector<uint8_t> v = pool.take(3 << 20);
  CHECK(v.empty());
  CHECK(v.capacity() >= size_t{3} << 20);
  v.assign(3 << 20, 7);
  const uint8_t* storage = v.data();
  pool.give(std::move(v));
  CHECK_EQ(pool.pooled_bytes(), size_t{3} << 20);
  std::vector<uint8_t> again = pool.take(2 << 20);  // smaller request: the pooled one fits
  CHECK(again.data() == storage);
  CHECK(again.empty());
  CHECK_EQ(pool.pooled_bytes(), size_t{0});
  std::vector<uint8_t> fresh = pool.take(1 << 20);  // pool empty: a new buffer
  CHECK(fresh.data() != storage);
}

TEST(smallest_fitting_buffer_is_chosen) {
  BytePool pool;
  std::vector<uint8_t> small = pool.take(2 << 20), big = pool.take(8 << 20);
  small.resize(2 << 20);
  big.resize(8 << 20);
  const uint8_t *small_at = small.data(), *big_at = big.data();
  pool.give(std::move(big));
  pool.give(std::move(small));
  CHECK(pool.take(1 << 20).data() == small_at);
  CHECK(pool.take(1 << 20).data() == big_at);
}

TEST(small_buffers_overflow_and_trimmed_ones_are_freed) {
  BytePool pool;
  std::vector<uint8_t> tiny(1000);
  pool.give(std::move(tiny));
  CHECK_EQ(pool.pooled_bytes(), size_t{0});
  std::vector<std::vector<uint8_t>> held;
  for (int i = 0; i < 40; ++i) {  // 40 × 8 MB: more than the 256 MB the pool keeps
    held.push_back(pool.take(8 << 20));
    held.back().resize(8 << 20);
  }
  for (auto& v : held) pool.give(std::move(v));
  CHECK_EQ(pool.pooled_bytes(), BytePool::kMaxBytes);  // 32 kept, 8 freed
  pool.trim(BytePool::kIdleBytes);  // what a finished job leaves
  CHECK_EQ(pool.pooled_bytes(), BytePool::kIdleBytes);
  pool.trim();
  CHECK_EQ(pool.pooled_bytes(), size_t{0});
}

CMO_TEST_MAIN()
