// Keeping freed memory out of the resident set. The layer loop frees large buffers (Hessians, weight
// copies, im2col chunks) on several threads; glibc keeps freed chunks below its dynamic mmap threshold
// (up to 32 MB) in per-thread arenas, so they stayed resident next to the next wave's Hessians.
#pragma once
#include <cstddef>

namespace cmo {

// Hands memory the allocator holds after free() back to the system (glibc: malloc_trim; no-op elsewhere).
void release_free_memory();

// Asks for transparent huge pages on the 2 MiB-aligned part of [p, p + bytes), before its first touch
// (best effort: a no-op where MADV_HUGEPAGE does not exist). A fresh multi-megabyte buffer then faults
// once per 2 MiB instead of once per 4 KiB page.
void advise_huge_pages(void* p, size_t bytes);

// A float scratch buffer mapped straight from the system (Linux: mmap, so freeing it unmaps it
// whatever glibc's threshold; elsewhere, and below kMapMinBytes, new[]). Contents are zero on creation.
// Mappings of 2 MiB and more are 2 MiB-aligned and advised as transparent huge pages: first touch then
// faults once per 2 MiB instead of once per 4 KiB, which is most of a cold executor run's cost in a VM.
class ScratchFloats {
 public:
  static constexpr size_t kMapMinBytes = size_t{64} << 10;
  static constexpr size_t kHugePageBytes = size_t{2} << 20;
  explicit ScratchFloats(size_t count);
  ~ScratchFloats();
  ScratchFloats(const ScratchFloats&) = delete;
  ScratchFloats& operator=(const ScratchFloats&) = delete;
  float* data() { return p_; }
  size_t size() const { return count_; }

 private:
  float* p_ = nullptr;
  size_t count_ = 0;
  void* map_ = nullptr;  // the mapping when mapped (p_ may sit past its start, at a 2 MiB boundary)
  size_t map_bytes_ = 0;
};

}  // namespace cmo
