// Keeping freed memory out of the resident set. The layer loop frees large buffers (Hessians, weight
// copies, im2col chunks) on several threads; glibc keeps freed chunks below its dynamic mmap threshold
// (up to 32 MB) in per-thread arenas, so they stayed resident next to the next wave's Hessians.
#pragma once
#include <cstddef>

namespace cmo {

// Hands memory the allocator holds after free() back to the system (glibc: malloc_trim; no-op elsewhere).
void release_free_memory();

// A float scratch buffer mapped straight from the system (Linux: mmap, so freeing it unmaps it
// whatever glibc's threshold; elsewhere new[]). Contents are zero on creation.
class ScratchFloats {
 public:
  explicit ScratchFloats(size_t count);
  ~ScratchFloats();
  ScratchFloats(const ScratchFloats&) = delete;
  ScratchFloats& operator=(const ScratchFloats&) = delete;
  float* data() { return p_; }

 private:
  float* p_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace cmo
