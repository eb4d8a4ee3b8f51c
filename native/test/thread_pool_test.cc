#include <atomic>
#include <chrono>
#include <thread>
#include <stdexcept>
#include <vector>

#include "check.h"
#include "util/fp16.h"
#include "util/thread_pool.h"

TEST(parallel_for_visits_every_index_once) {
  cmo::ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(10007);
  pool.parallel_for(hits.size(), [&](size_t i) { hits[i]++; }, 13);
  for (auto& h : hits) CHECK_EQ(h.load(), 1);
}

TEST(parallel_for_nested_does_not_deadlock) {
  cmo::ThreadPool pool(2);
  std::atomic<int> total{0};
  pool.parallel_for(8, [&](size_t) { pool.parallel_for(8, [&](size_t) { total++; }); });
  CHECK_EQ(total.load(), 64);
}

TEST(back_to_back_small_loops_see_every_index_once) {
  // An executor's pattern: thousands of 2-chunk loops a few µs apart, which the workers take while still
  // spinning from the previous one (ThreadPool::spin_us) or after sleeping; every index runs once, and
  // a loop returns only when all its chunks are done (the sums are read right after each call).
  cmo::ThreadPool pool(2);
  std::vector<int64_t> part(2);
  int64_t wrong = 0;
  for (int round = 0; round < 5000; ++round) {
    pool.parallel_for(2, [&](size_t i) { part[i] = round + static_cast<int64_t>(i); });
    if (part[0] != round || part[1] != round + 1) ++wrong;
    if (round % 1000 == 999) std::this_thread::sleep_for(std::chrono::microseconds(500));  // let the workers fall asleep
  }
  CHECK_EQ(wrong, 0);
}

TEST(parallel_for_rethrows_first_error) {
  cmo::ThreadPool pool(3);
  CHECK_THROWS(pool.parallel_for(100, [&](size_t i) {
    if (i == 57) throw std::runtime_error("boom");
  }));
}

TEST(fp16_round_trips_every_bit_pattern) {
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = cmo::half_to_float(static_cast<uint16_t>(h));
    uint16_t back = cmo::float_to_half(f);
    bool nan = ((h >> 10) & 0x1F) == 0x1F && (h & 0x3FF) != 0;
    if (!nan && back != h) ++bad;
  }
  CHECK_EQ(bad, 0);
}

TEST(fp16_rounds_half_to_even) {
  CHECK_EQ(cmo::float_to_half(1.0f), 0x3C00);
  CHECK_EQ(cmo::float_to_half(-2.0f), 0xC000);
  CHECK_EQ(cmo::float_to_half(65520.0f), 0x7C00);  // rounds to Inf
  CHECK_EQ(cmo::float_to_half(65504.0f), 0x7BFF);
  CHECK_EQ(cmo::float_to_half(1.0f + 1.0f / 2048.0f), 0x3C00);  // tie -> even
  CHECK_EQ(cmo::float_to_half(1.0f + 3.0f / 2048.0f), 0x3C02);  // tie -> even (up)
  CHECK_EQ(cmo::float_to_half(5.960464477539063e-08f), 0x0001);  // smallest subnormal
  CHECK_EQ(cmo::float_to_half(2.98023223876953125e-08f), 0x0000);  // exactly half of it: tie -> 0
}

CMO_TEST_MAIN()
