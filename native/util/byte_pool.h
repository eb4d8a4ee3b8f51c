// Recycles multi-megabyte byte buffers (a weight's indices, which become its output blob) between
// the weights of a compression job.
//
// Why: a fresh buffer's pages are faulted in on first touch; a recycled one's already are. In this
// project's Linux VM each 4 KB first touch costs ~10 µs, which for 4-bit palettization was ~5 % of
// the CPU time. The pool is bounded (kMaxBytes while a job runs); when a job ends the weight stream
// trims it to kIdleBytes, which a following job in the same process (a script compressing several
// variants, a benchmark's repeats) takes again.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace cmo {

class BytePool {
 public:
  static BytePool& global();

  // An empty vector with capacity >= bytes: a pooled one when there is one, else a new one.
  std::vector<uint8_t> take(size_t bytes);
  // Keeps `v`'s storage for a later take() when it is large enough to matter and the pool has room;
  // frees it otherwise.
  void give(std::vector<uint8_t>&& v);
  // Frees pooled buffers, largest first, until at most `keep_bytes` are pooled.
  void trim(size_t keep_bytes = 0);
  size_t pooled_bytes() const;

  static constexpr size_t kMinBytes = size_t{1} << 20;    // smaller buffers are cheap to fault in
  static constexpr size_t kMaxBytes = size_t{256} << 20;  // bound on what the pool holds
  static constexpr size_t kIdleBytes = size_t{64} << 20;  // what it keeps between jobs

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<uint8_t>> free_;
  size_t bytes_ = 0;
};

}  // namespace cmo
