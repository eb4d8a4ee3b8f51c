// Winograd convolution F(m×m, 3×3) (Lavin & Gray 2016) for 3×3 stride-1 dilation-1 ungrouped convs:
// each m×m output tile comes from an (m+2)×(m+2) input tile through a² = (m+2)² independent
// [C_out × C_in] products instead of 9·m² — 2.25× fewer multiplies for m = 2, 4× for m = 4.
//
//   U_ξ = (G g Gᵀ)_ξ     per (output, input) channel: the weights, transformed once per executor
//   V_ξ = (Bᵀ d B)_ξ     per (input channel, tile)
//   M_ξ = U_ξ · V_ξ      a² GEMMs over the channels, run by the portable SGEMM's micro-kernels
//   Y   = Aᵀ M A         per (output channel, tile), plus the bias
//
// The tiles are processed in blocks sized so that a block's V and M stay in cache; V is written
// straight into the micro-kernel's packed-B layout (no packing pass) and U is kept in its packed-A
// layout. The transforms are vectorized across the NR tiles of one micro-panel. The test oracle is a
// float64 direct convolution (native/test/winograd_test.cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace cmo::linalg::detail {
struct GemmKernel;
}

namespace cmo::exec::winograd {

using linalg::detail::GemmKernel;

// Transformed weights for one micro-kernel and tile size.
struct Weights {
  int m = 0;  // output tile: 2 or 4
  const GemmKernel* kernel = nullptr;
  int64_t cout = 0, cin = 0, cout_pad = 0;  // cout_pad: cout rounded up to the kernel's MR
  // [a²][cout_pad / MR][cin][MR]: for each point ξ, U_ξ in the micro-kernel's packed-A layout
  // (panels of MR output channels, zero rows past cout).
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> u;  // from alloc_uninitialized (malloc / aligned_alloc): every element written by transform_weights
  size_t len = 0;               // floats in u
  size_t bytes() const { return len * sizeof(float); }
};

// w [cout, cin, 3, 3] → Weights (G g Gᵀ computed in float64 and rounded once). `out.u` is reused
// when large enough (no allocation for a per-call transform in steady state).
void transform_weights(const float* w, int64_t cout, int64_t cin, int m, const GemmKernel& kernel, Weights& out,
                       unsigned threads);
// n floats, not zero-filled (std::free releases them); big ones on transparent huge pages (Linux).
float* alloc_uninitialized(size_t n);
// Bytes transform_weights will hold for these sizes.
size_t weights_bytes(int64_t cout, int64_t cin, int m, const GemmKernel& kernel);

struct Geometry {
  int64_t N, C, H, W;         // input [N, C, H, W]
  int64_t O, OH, OW;          // output [N, O, OH, OW]
  int64_t pad_top, pad_left;  // leading padding (the trailing padding follows from OH / OW)
};

// 2 or 4 when F(m×m, 3×3) on `kernel` is estimated cheaper than im2col + GEMM for this conv (the
// cheaper of the two), else 0. Counts the padding of tiles to NR and of channels to MR.
int choose_tile(const Geometry& g, const GemmKernel& kernel);

// y = conv3x3(x) + bias (bias null: none). `u` must come from transform_weights with u.cin == g.C
// and u.cout == g.O. threads 0 = pool size. block_bytes: the V + M budget of one block of tiles
// (0 = the default, 3 MiB; tests make it small to run many blocks on small images).
void conv3x3(const Geometry& g, const float* x, const Weights& u, const float* bias, float* y, unsigned threads,
             size_t block_bytes = 0);

// The micro-kernel conv uses (the portable SGEMM's best on this CPU).
const GemmKernel& default_kernel();
// Whether the executor's conv takes this path: off with COREML_OPTIMIZE_WINOGRAD=0 (A/B benchmarks,
// read once; =2 keeps F(2×2) only, =4 forces F(4×4)), and on Accelerate builds whose GEMM is not the
// portable one (Apple's AMX GEMM wins).
bool enabled();

}  // namespace cmo::exec::winograd
