#include "free_memory.h"

#include <new>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
// Under AddressSanitizer the buffers come from new[] instead, so an overrun is reported (a mapping is
// not instrumented).
#if defined(__SANITIZE_ADDRESS__)
#define CMO_SCRATCH_MMAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CMO_SCRATCH_MMAP 0
#endif
#endif
#if !defined(CMO_SCRATCH_MMAP)
#if defined(__linux__)
#define CMO_SCRATCH_MMAP 1
#else
#define CMO_SCRATCH_MMAP 0
#endif
#endif
#if CMO_SCRATCH_MMAP
#include <sys/mman.h>
#endif

namespace cmo {

void release_free_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

ScratchFloats::ScratchFloats(size_t count) : bytes_(count * sizeof(float)) {
  if (count == 0) return;
#if CMO_SCRATCH_MMAP
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  p_ = static_cast<float*>(p);
#else
  p_ = new float[count]();
#endif
}

ScratchFloats::~ScratchFloats() {
  if (!p_) return;
#if CMO_SCRATCH_MMAP
  munmap(p_, bytes_);
#else
  delete[] p_;
#endif
}

}  // namespace cmo
