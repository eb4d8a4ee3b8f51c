// Micro-kernels of the portable blocked SGEMM (sgemm_blocked.cc). Each computes one MR×NR tile of C
// from packed panels:  C = alpha · Σ_p a[p·MR + i] · b[p·NR + j] + beta · C   (beta == 0: C is not read,
// so NaNs in an uninitialised C do not leak through). The driver picks the best kernel the CPU runs,
// at run time (not the compile baseline), and keeps the scalar kernel as the fallback.
#pragma once
#include <cstdint>
#include <vector>

namespace cmo::linalg::detail {

using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta);

struct GemmKernel {
  const char* name;  // "avx512", "avx2+fma", "neon", "scalar"
  int mr, nr;        // tile rows / columns
  int kc;            // depth of one packed block (B micro-panel kc·nr floats sized for L1)
  MicroKernel fn;
};

const GemmKernel& scalar_kernel();
// Kernels compiled into this build for this architecture (null when absent).
const GemmKernel* avx2_kernel();
const GemmKernel* avx512_kernel();
const GemmKernel* neon_kernel();

// Packs `rows` (<= mr) rows of a row-major A into an A micro-panel: dst[p·mr + i] = src[i·lda + p],
// p < kc. The SIMD version this CPU runs (x86 AVX2), or null: the driver's scalar loop then.
using PackRows = void (*)(const float* src, int64_t lda, int rows, int64_t kc, int mr, float* dst);
PackRows pack_rows_simd();
// Tests: on makes this thread's A packing take the scalar loop (the SIMD packer's oracle).
void use_scalar_pack_a(bool on);

// Every kernel this CPU can run, best first (the scalar kernel last).
std::vector<const GemmKernel*> runnable_kernels();
// runnable_kernels().front(), chosen once.
const GemmKernel& best_kernel();

}  // namespace cmo::linalg::detail
