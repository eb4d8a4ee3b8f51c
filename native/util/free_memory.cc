#include "free_memory.h"

#include <new>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
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
#if defined(__linux__)
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  p_ = static_cast<float*>(p);
#else
  p_ = new float[count]();
#endif
}

ScratchFloats::~ScratchFloats() {
  if (!p_) return;
#if defined(__linux__)
  munmap(p_, bytes_);
#else
  delete[] p_;
#endif
}

}  // namespace cmo
