#include "free_memory.h"

#include <cstdint>
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

void advise_huge_pages(void* p, size_t bytes) {
#if defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = ScratchFloats::kHugePageBytes;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

ScratchFloats::ScratchFloats(size_t count) : count_(count) {
  if (count == 0) return;
#if CMO_SCRATCH_MMAP
  const size_t bytes = count * sizeof(float);
  if (bytes >= kMapMinBytes) {
    const bool huge = bytes >= kHugePageBytes;
    const size_t span = huge ? (bytes + kHugePageBytes - 1) & ~(kHugePageBytes - 1) : bytes;
    map_bytes_ = huge ? span + kHugePageBytes : bytes;  // room to start at a 2 MiB boundary
    map_ = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
      throw std::bad_alloc();
    }
    auto addr = reinterpret_cast<uintptr_t>(map_);
    if (huge) {
      addr = (addr + kHugePageBytes - 1) & ~(uintptr_t{kHugePageBytes} - 1);
      advise_huge_pages(reinterpret_cast<void*>(addr), span);
    }
    p_ = reinterpret_cast<float*>(addr);
    return;
  }
#endif
  p_ = new float[count]();
}

ScratchFloats::~ScratchFloats() {
  if (map_) {
#if CMO_SCRATCH_MMAP
    munmap(map_, map_bytes_);
#endif
    return;
  }
  delete[] p_;
}

}  // namespace cmo
