#include "byte_pool.h"

#include <algorithm>
#include <utility>

#include "free_memory.h"


namespace cmo {

BytePool& BytePool::global() {
  static BytePool pool;
  return pool;
}

std::vector<uint8_t> BytePool::take(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Smallest pooled buffer that fits: big ones stay for big requests.
    size_t best = free_.size();
    for (size_t i = 0; i < free_.size(); ++i)
      if (free_[i].capacity() >= bytes && (best == free_.size() || free_[i].capacity() < free_[best].capacity())) best = i;
    if (best != free_.size()) {
      std::vector<uint8_t> v = std::move(free_[best]);
      free_[best] = std::move(free_.back());
      free_.pop_back();
      bytes_ -= v.capacity();
      v.clear();
      return v;
    }
  }
  std::vector<uint8_t> v;
  v.reserve(bytes);
  advise_huge_pages(v.data(), bytes);  // most of it, where the allocation is big enough
  return v;
}

void BytePool::give(std::vector<uint8_t>&& v) {
  std::vector<uint8_t> dropped = std::move(v);  // freed on return unless pooled
  if (dropped.capacity() < kMinBytes) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (bytes_ + dropped.capacity() > kMaxBytes) return;
  bytes_ += dropped.capacity();
  free_.push_back(std::move(dropped));
}

void BytePool::trim(size_t keep_bytes) {
  std::vector<std::vector<uint8_t>> freed;  // freed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  std::sort(free_.begin(), free_.end(), [](const auto& a, const auto& b) { return a.capacity() < b.capacity(); });
  while (bytes_ > keep_bytes) {
    bytes_ -= free_.back().capacity();
    freed.push_back(std::move(free_.back()));
    free_.pop_back();
  }
}

size_t BytePool::pooled_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace cmo
