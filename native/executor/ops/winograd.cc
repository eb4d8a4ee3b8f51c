#include "winograd.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>


#include "../../linalg/blas.h"
#include "../../linalg/sgemm_kernels.h"
#include "../../util/error.h"
#include "../../util/free_memory.h"
#include "../../util/thread_pool.h"

#if defined(__GNUC__) || defined(__clang__)
#define CMO_WINO_INLINE inline __attribute__((always_inline))
#else
#define CMO_WINO_INLINE inline
#endif

namespace cmo::exec::winograd {
namespace {

// ---- the transforms, vectorized over NR lanes (one tile per lane) ---------------------------------
// Points 0, ±1, ±2, ∞ for m = 4 and 0, ±1, ∞ for m = 2 (the usual choice: smallest coefficients).
// Written out term by term: the matrices have many zeros and ones that the compiler may not drop
// (x·0 is not 0 for x = NaN), and -ffp-contract=off keeps the arithmetic exactly as written.

template <int M, int NR>
struct Tf;

template <int NR>
struct Tf<4, NR> {
  // V = Bᵀ d B, Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
  static CMO_WINO_INLINE void input(const float (&d)[6][6][NR], float (&v)[36][NR]) {
    float t[6][6][NR];
    for (int c = 0; c < 6; ++c)
      for (int l = 0; l < NR; ++l) {
        const float d0 = d[0][c][l], d1 = d[1][c][l], d2 = d[2][c][l], d3 = d[3][c][l], d4 = d[4][c][l], d5 = d[5][c][l];
        t[0][c][l] = 4.0f * d0 - 5.0f * d2 + d4;
        t[1][c][l] = (d3 + d4) - 4.0f * (d1 + d2);
        t[2][c][l] = (d4 - d3) + 4.0f * (d1 - d2);
        t[3][c][l] = (d4 - d2) + 2.0f * (d3 - d1);
        t[4][c][l] = (d4 - d2) - 2.0f * (d3 - d1);
        t[5][c][l] = 4.0f * d1 - 5.0f * d3 + d5;
      }
    for (int k = 0; k < 6; ++k)
      for (int l = 0; l < NR; ++l) {
        const float d0 = t[k][0][l], d1 = t[k][1][l], d2 = t[k][2][l], d3 = t[k][3][l], d4 = t[k][4][l], d5 = t[k][5][l];
        v[k * 6 + 0][l] = 4.0f * d0 - 5.0f * d2 + d4;
        v[k * 6 + 1][l] = (d3 + d4) - 4.0f * (d1 + d2);
        v[k * 6 + 2][l] = (d4 - d3) + 4.0f * (d1 - d2);
        v[k * 6 + 3][l] = (d4 - d2) + 2.0f * (d3 - d1);
        v[k * 6 + 4][l] = (d4 - d2) - 2.0f * (d3 - d1);
        v[k * 6 + 5][l] = 4.0f * d1 - 5.0f * d3 + d5;
      }
  }
  // Y = Aᵀ M A, Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
  static CMO_WINO_INLINE void output(const float (&mm)[36][NR], float (&o)[4][4][NR]) {
    float s[4][6][NR];
    for (int j = 0; j < 6; ++j)
      for (int l = 0; l < NR; ++l) {
        const float m0 = mm[j][l], m1 = mm[6 + j][l], m2 = mm[12 + j][l], m3 = mm[18 + j][l], m4 = mm[24 + j][l],
                    m5 = mm[30 + j][l];
        const float p12 = m1 + m2, n12 = m1 - m2, p34 = m3 + m4, n34 = m3 - m4;
        s[0][j][l] = m0 + p12 + p34;
        s[1][j][l] = n12 + 2.0f * n34;
        s[2][j][l] = p12 + 4.0f * p34;
        s[3][j][l] = n12 + 8.0f * n34 + m5;
      }
    for (int i = 0; i < 4; ++i)
      for (int l = 0; l < NR; ++l) {
        const float m0 = s[i][0][l], m1 = s[i][1][l], m2 = s[i][2][l], m3 = s[i][3][l], m4 = s[i][4][l], m5 = s[i][5][l];
        const float p12 = m1 + m2, n12 = m1 - m2, p34 = m3 + m4, n34 = m3 - m4;
        o[i][0][l] = m0 + p12 + p34;
        o[i][1][l] = n12 + 2.0f * n34;
        o[i][2][l] = p12 + 4.0f * p34;
        o[i][3][l] = n12 + 8.0f * n34 + m5;
      }
  }
};

template <int NR>
struct Tf<2, NR> {
  // Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
  static CMO_WINO_INLINE void input(const float (&d)[4][4][NR], float (&v)[16][NR]) {
    float t[4][4][NR];
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < NR; ++l) {
        const float d0 = d[0][c][l], d1 = d[1][c][l], d2 = d[2][c][l], d3 = d[3][c][l];
        t[0][c][l] = d0 - d2;
        t[1][c][l] = d1 + d2;
        t[2][c][l] = d2 - d1;
        t[3][c][l] = d1 - d3;
      }
    for (int k = 0; k < 4; ++k)
      for (int l = 0; l < NR; ++l) {
        const float d0 = t[k][0][l], d1 = t[k][1][l], d2 = t[k][2][l], d3 = t[k][3][l];
        v[k * 4 + 0][l] = d0 - d2;
        v[k * 4 + 1][l] = d1 + d2;
        v[k * 4 + 2][l] = d2 - d1;
        v[k * 4 + 3][l] = d1 - d3;
      }
  }
  // Aᵀ = [1 1 1 0; 0 1 -1 -1]
  static CMO_WINO_INLINE void output(const float (&mm)[16][NR], float (&o)[2][2][NR]) {
    float s[2][4][NR];
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < NR; ++l) {
        const float m0 = mm[j][l], m1 = mm[4 + j][l], m2 = mm[8 + j][l], m3 = mm[12 + j][l];
        s[0][j][l] = m0 + m1 + m2;
        s[1][j][l] = m1 - m2 - m3;
      }
    for (int i = 0; i < 2; ++i)
      for (int l = 0; l < NR; ++l) {
        const float m0 = s[i][0][l], m1 = s[i][1][l], m2 = s[i][2][l], m3 = s[i][3][l];
        o[i][0][l] = m0 + m1 + m2;
        o[i][1][l] = m1 - m2 - m3;
      }
  }
};

// G of F(m×m, 3×3) (a×3): the points' rows [1, p, p²] / Π_{q≠p}(p − q), and [0, 0, 1] for ∞.
struct GMatrix {
  double g[6][3];
  explicit GMatrix(int m) {
    const double g4[6][3] = {{1.0 / 4, 0, 0},          {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                             {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
    const double g2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    if (m == 4) std::memcpy(g, g4, sizeof g4);
    else std::memcpy(g, g2, sizeof g2);
  }
};

constexpr int kMaxMr = 16;

// U for one panel of MR output channels: u = G g Gᵀ in float64 across the lanes (vectorizable),
// rounded once. Input channels go in blocks of kCb so that each point's stretch of U is written as
// one contiguous run (kCb·MR floats) rather than 36 scattered 48-byte pieces per channel.
constexpr int kCb = 16;
void weight_panel(int m, const GMatrix& G, const float* w, int64_t cout, int64_t cin, int MR, int64_t panels, int64_t cp,
                  float* U) {
  const int a = m + 2, P = a * a;
  double g[9][kMaxMr], t[6][3][kMaxMr], u[36][kMaxMr];
  float out[36][kCb * kMaxMr];
  for (int64_t c0 = 0; c0 < cin; c0 += kCb) {
    const int64_t cb = std::min<int64_t>(kCb, cin - c0);
    for (int64_t cc = 0; cc < cb; ++cc) {
      const int64_t ci = c0 + cc;
      for (int l = 0; l < kMaxMr; ++l) {
        const int64_t co = cp * MR + l;
        for (int k = 0; k < 9; ++k) g[k][l] = l < MR && co < cout ? static_cast<double>(w[(co * cin + ci) * 9 + k]) : 0.0;
      }
      for (int i = 0; i < a; ++i)
        for (int c = 0; c < 3; ++c)
          for (int l = 0; l < kMaxMr; ++l) t[i][c][l] = G.g[i][0] * g[c][l] + G.g[i][1] * g[3 + c][l] + G.g[i][2] * g[6 + c][l];
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j)
          for (int l = 0; l < kMaxMr; ++l) u[i * a + j][l] = t[i][0][l] * G.g[j][0] + t[i][1][l] * G.g[j][1] + t[i][2][l] * G.g[j][2];
      for (int xi = 0; xi < P; ++xi)
        for (int l = 0; l < MR; ++l) out[xi][cc * MR + l] = static_cast<float>(u[xi][l]);
    }
    for (int xi = 0; xi < P; ++xi)
      std::memcpy(U + ((xi * panels + cp) * cin + c0) * MR, out[xi], static_cast<size_t>(cb * MR) * sizeof(float));
  }
}

// ---- the blocked driver ----------------------------------------------------------------------------

struct Ctx {
  Geometry g;
  int m, a, P;            // tile, input tile, points
  int64_t th, tw, T;      // tiles per column / row / in total
  int64_t Tb, TPb;        // tiles per block (a multiple of NR), micro-panels per block
  int64_t mc;             // output-channel rows per GEMM task (a multiple of MR)
  const float* x;
  const float* bias;
  float* y;
  const Weights* w;
  const GemmKernel* k;
};

struct Block {
  int64_t t0;      // first tile
  int64_t panels;  // micro-panels holding at least one tile
  float* V;        // [P][TPb][C][NR]
  float* M;        // [cout_pad][P][Tb]: the GEMM writes rows P·Tb apart, the output transform reads one stretch
};

// The lanes of one micro-panel: which tile each holds, grouped into runs of consecutive tiles of
// one tile row (their input / output pixels are contiguous along x, so the compiler can load and
// store a whole run with vector shuffles instead of one scalar per pixel).
template <int NR>
struct Lanes {
  int64_t n[NR], ty[NR], tx[NR];
  int count = 0;  // lanes holding a tile (the rest are padding: zero input, output dropped)
  int run_start[NR + 1];
  int runs = 0;

  Lanes(const Ctx& c, int64_t t0) {
    const int64_t tiles_per_image = c.th * c.tw;
    for (int l = 0; l < NR; ++l) {
      const int64_t t = t0 + l;
      if (t >= c.T) break;
      n[l] = t / tiles_per_image;
      ty[l] = (t % tiles_per_image) / c.tw;
      tx[l] = t % c.tw;
      if (l == 0 || n[l] != n[l - 1] || ty[l] != ty[l - 1]) run_start[runs++] = l;
      count = l + 1;
    }
    run_start[runs] = count;
  }
};

// V for input channels [c0, c1) of micro-panel tp: gather each lane's a×a input tile (zero outside
// the image), transform, store the a² values into their points' packed-B panels.
template <int M, int NR>
CMO_WINO_INLINE void input_impl(const Ctx& c, const Block& b, int64_t tp, int64_t c0, int64_t c1) {
  constexpr int A = M + 2, P = A * A;
  const Geometry& g = c.g;
  const int64_t HW = g.H * g.W;
  const Lanes<NR> lanes(c, b.t0 + tp * NR);
  float d[A][A][NR];
  float v[P][NR];
  if (lanes.count < NR)  // padding lanes: zero tiles (their products are computed and dropped)
    for (int r = 0; r < A; ++r)
      for (int q = 0; q < A; ++q)
        for (int l = lanes.count; l < NR; ++l) d[r][q][l] = 0.0f;
  for (int64_t ci = c0; ci < c1; ++ci) {
    for (int ri = 0; ri < lanes.runs; ++ri) {
      const int l0 = lanes.run_start[ri], l1 = lanes.run_start[ri + 1];
      const int64_t iy0 = lanes.ty[l0] * M - g.pad_top, ix0 = lanes.tx[l0] * M - g.pad_left;
      const int64_t ix_end = lanes.tx[l1 - 1] * M - g.pad_left + A;  // one past the run's last input column
      const float* xc = c.x + (lanes.n[l0] * g.C + ci) * HW;
      for (int r = 0; r < A; ++r) {
        const int64_t iy = iy0 + r;
        if (iy < 0 || iy >= g.H) {
          for (int q = 0; q < A; ++q)
            for (int l = l0; l < l1; ++l) d[r][q][l] = 0.0f;
          continue;
        }
        const float* row = xc + iy * g.W;
        if (ix0 >= 0 && ix_end <= g.W) {
          const float* src = row + ix0;
          for (int q = 0; q < A; ++q)
            for (int l = l0; l < l1; ++l) d[r][q][l] = src[(l - l0) * M + q];
        } else {
          for (int q = 0; q < A; ++q)
            for (int l = l0; l < l1; ++l) {
              const int64_t ix = ix0 + (l - l0) * M + q;
              d[r][q][l] = ix >= 0 && ix < g.W ? row[ix] : 0.0f;
            }
        }
      }
    }
    Tf<M, NR>::input(d, v);
    for (int xi = 0; xi < P; ++xi) {
      float* dst = b.V + ((xi * c.TPb + tp) * g.C + ci) * NR;
      for (int l = 0; l < NR; ++l) dst[l] = v[xi][l];
    }
  }
}

// Output channels [o0, o1) of micro-panel tp: read the a² GEMM results of each lane, transform, add
// the bias, write the m×m tiles (clipped at the image's bottom / right edge).
template <int M, int NR>
CMO_WINO_INLINE void output_impl(const Ctx& c, const Block& b, int64_t tp, int64_t o0, int64_t o1) {
  constexpr int A = M + 2, P = A * A;
  const Geometry& g = c.g;
  const int64_t OHW = g.OH * g.OW;
  const Lanes<NR> lanes(c, b.t0 + tp * NR);
  float mm[P][NR];
  float o[M][M][NR];
  for (int64_t oc = o0; oc < o1; ++oc) {
    const float* src = b.M + oc * P * c.Tb + tp * NR;  // M is [cout_pad][P][Tb]: one contiguous stretch
    for (int xi = 0; xi < P; ++xi)
      for (int l = 0; l < NR; ++l) mm[xi][l] = src[xi * c.Tb + l];
    Tf<M, NR>::output(mm, o);
    const float bv = c.bias ? c.bias[oc] : 0.0f;
    for (int ri = 0; ri < lanes.runs; ++ri) {
      const int l0 = lanes.run_start[ri], l1 = lanes.run_start[ri + 1];
      const int64_t oy = lanes.ty[l0] * M, ox = lanes.tx[l0] * M;
      float* yc = c.y + (lanes.n[l0] * g.O + oc) * OHW + oy * g.OW + ox;
      const int64_t rows = std::min<int64_t>(M, g.OH - oy);
      const int64_t width = std::min<int64_t>((l1 - l0) * M, g.OW - ox);  // the last tile may stick out
      if (width == (l1 - l0) * M) {
        for (int64_t i = 0; i < rows; ++i) {
          float* dst = yc + i * g.OW;
          for (int l = l0; l < l1; ++l)
            for (int j = 0; j < M; ++j) dst[(l - l0) * M + j] = o[i][j][l] + bv;
        }
      } else {
        for (int64_t i = 0; i < rows; ++i) {
          float* dst = yc + i * g.OW;
          for (int l = l0; l < l1; ++l)
            for (int j = 0; j < M; ++j)
              if ((l - l0) * M + j < width) dst[(l - l0) * M + j] = o[i][j][l] + bv;
        }
      }
    }
  }
}

using InputFn = void (*)(const Ctx&, const Block&, int64_t, int64_t, int64_t);
using OutputFn = void (*)(const Ctx&, const Block&, int64_t, int64_t, int64_t);
struct PhaseFns {
  InputFn input = nullptr;
  OutputFn output = nullptr;
};

template <int M, int NR>
void input_plain(const Ctx& c, const Block& b, int64_t tp, int64_t c0, int64_t c1) {
  input_impl<M, NR>(c, b, tp, c0, c1);
}
template <int M, int NR>
void output_plain(const Ctx& c, const Block& b, int64_t tp, int64_t o0, int64_t o1) {
  output_impl<M, NR>(c, b, tp, o0, o1);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// Clones for the x86 micro-kernels' ISA (the baseline build is SSE2): the transforms then run on
// the same vector width as the GEMM. Only called when that kernel, hence that ISA, was chosen.
template <int M>
__attribute__((target("avx512f"))) void input_avx512(const Ctx& c, const Block& b, int64_t tp, int64_t c0, int64_t c1) {
  input_impl<M, 32>(c, b, tp, c0, c1);
}
template <int M>
__attribute__((target("avx512f"))) void output_avx512(const Ctx& c, const Block& b, int64_t tp, int64_t o0, int64_t o1) {
  output_impl<M, 32>(c, b, tp, o0, o1);
}
template <int M>
__attribute__((target("avx2,fma"))) void input_avx2(const Ctx& c, const Block& b, int64_t tp, int64_t c0, int64_t c1) {
  input_impl<M, 16>(c, b, tp, c0, c1);
}
template <int M>
__attribute__((target("avx2,fma"))) void output_avx2(const Ctx& c, const Block& b, int64_t tp, int64_t o0, int64_t o1) {
  output_impl<M, 16>(c, b, tp, o0, o1);
}
#endif

template <int M>
PhaseFns phase_fns_m(const GemmKernel& k) {
  const std::string name = k.name;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (name == "avx512" && k.nr == 32) return {input_avx512<M>, output_avx512<M>};
  if (name == "avx2+fma" && k.nr == 16) return {input_avx2<M>, output_avx2<M>};
#endif
  switch (k.nr) {
    case 8: return {input_plain<M, 8>, output_plain<M, 8>};
    case 12: return {input_plain<M, 12>, output_plain<M, 12>};
    case 16: return {input_plain<M, 16>, output_plain<M, 16>};
    case 32: return {input_plain<M, 32>, output_plain<M, 32>};
    default: return {};
  }
}

PhaseFns phase_fns(int m, const GemmKernel& k) { return m == 4 ? phase_fns_m<4>(k) : phase_fns_m<2>(k); }

// M_ξ[rows of task mb] = U_ξ · V_ξ for every micro-panel of the block, in kc-deep slices: the B
// micro-panel slice (kc·NR) stays in L1 while the task's U rows (mc·kc) stream from L2.
void gemm_task(const Ctx& c, const Block& b, int64_t xi, int64_t mb) {
  const GemmKernel& k = *c.k;
  const int64_t C = c.g.C, Opad = c.w->cout_pad, MR = k.mr, NR = k.nr;
  const int64_t r0 = mb * c.mc, r1 = std::min(Opad, r0 + c.mc), ldc = c.P * c.Tb;
  const float* U = c.w->u.get() + xi * Opad * C;
  const float* V = b.V + xi * c.TPb * C * NR;
  float* Mx = b.M + xi * c.Tb;
  for (int64_t p0 = 0; p0 < C; p0 += k.kc) {
    const int64_t kc = std::min<int64_t>(k.kc, C - p0);
    const float beta = p0 == 0 ? 0.0f : 1.0f;
    for (int64_t tp = 0; tp < b.panels; ++tp) {
      const float* bp = V + (tp * C + p0) * NR;
      for (int64_t r = r0; r < r1; r += MR) k.fn(kc, U + r * C + p0 * MR, bp, Mx + r * ldc + tp * NR, ldc, 1.0f, beta);
    }
  }
}

constexpr size_t kBlockBytes = size_t{1} << 20;  // V + M of one block: within L2 for small channel counts

// Buffers of kernel-level code (used across a parallel_for by its workers) and of task bodies (one
// whole block on one thread) are separate: a thread waiting in parallel_for may run another
// conv's block task in between.
thread_local std::vector<float> t_caller_v, t_caller_m, t_task_v, t_task_m;

float* grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace

float* alloc_uninitialized(size_t n) {
  const size_t bytes = std::max<size_t>(n, 1) * sizeof(float);
#if defined(__linux__)
  // Transformed weights run to hundreds of MB on a VAE or UNet: ask for transparent huge pages, so
  // that first touch faults 2 MiB at a time (page faults were half the cost of transforming them).
  constexpr size_t kHuge = size_t{2} << 20;
  if (bytes >= 2 * kHuge) {
    const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
    if (void* p = std::aligned_alloc(kHuge, rounded)) {
      advise_huge_pages(p, rounded);  // advice only: without THP it is plain memory
      return static_cast<float*>(p);
    }
  }
#endif
  if (void* p = std::malloc(bytes)) return static_cast<float*>(p);
  throw std::bad_alloc();
}

size_t weights_bytes(int64_t cout, int64_t cin, int m, const GemmKernel& k) {
  const int64_t a = m + 2, cout_pad = (cout + k.mr - 1) / k.mr * k.mr;
  return static_cast<size_t>(a * a * cout_pad * cin) * sizeof(float);
}

void transform_weights(const float* w, int64_t cout, int64_t cin, int m, const GemmKernel& k, Weights& out,
                       unsigned threads) {
  if (m != 2 && m != 4) throw Error("EINVAL", "winograd: tile size must be 2 or 4");
  const int a = m + 2, P = a * a, MR = k.mr;
  out.m = m;
  out.kernel = &k;
  out.cout = cout;
  out.cin = cin;
  out.cout_pad = (cout + MR - 1) / MR * MR;
  const size_t n = static_cast<size_t>(P * out.cout_pad * cin);
  if (out.len < n) {
    out.u.reset(alloc_uninitialized(n));  // every element is written below
    out.len = n;
  }
  if (MR > kMaxMr) throw Error("EINVAL", "winograd: micro-kernel rows exceed 16");
  float* U = out.u.get();
  const int64_t panels = out.cout_pad / MR;
  const GMatrix G(m);
  parallel_for(
      static_cast<size_t>(panels), [&](size_t pi) { weight_panel(m, G, w, cout, cin, MR, panels, static_cast<int64_t>(pi), U); }, 1,
      threads);
}

// COREML_OPTIMIZE_WINOGRAD: "2" limits the path to F(2×2, 3×3) (the cost model still chooses
// im2col where it is cheaper); "4" forces F(4×4, 3×3) wherever the path applies (benchmarks).
static const std::string& winograd_env() {
  static const std::string v = [] {
    const char* env = std::getenv("COREML_OPTIMIZE_WINOGRAD");
    return std::string(env ? env : "");
  }();
  return v;
}

int choose_tile(const Geometry& g, const GemmKernel& k) {
  if (phase_fns(2, k).input == nullptr) return 0;
  if (winograd_env() == "4") return 4;
  // Multiply-adds, counting the micro-kernels' padding (channels to MR, tiles to NR) on both paths.
  // The transforms are costed in multiply-add equivalents per point and channel (about 25 on the
  // input side, 20 on the output side: their loads, shuffles and stores, fitted on this machine's
  // AVX-512 runs at C = 3...1280), and im2col's GEMM runs ~1.4× slower per multiply-add than the
  // Winograd one (its im2col copy and per-call packing), also measured.
  const double MR = k.mr, NR = k.nr, C = static_cast<double>(g.C);
  const double opad = std::ceil(static_cast<double>(g.O) / MR) * MR;
  const double direct = 9.0 * static_cast<double>(g.N * g.OH * g.OW) * C * opad;
  double cost[5] = {};
  for (int m : {2, 4}) {
    const double a2 = (m + 2) * (m + 2);
    const double tiles = static_cast<double>(g.N) * std::ceil(static_cast<double>(g.OH) / m) * std::ceil(static_cast<double>(g.OW) / m);
    const double tpad = std::ceil(tiles / NR) * NR;
    cost[m] = a2 * tpad * (C * opad + 25.0 * C + 20.0 * static_cast<double>(g.O));
  }
  // F(4×4)'s rounding error is ~8× F(2×2)'s (its transforms scale by up to 8 and 1/24; see
  // winograd_test.cc): taken only for a clear gain, and never with COREML_OPTIMIZE_WINOGRAD=2.
  const bool four = winograd_env() != "2" && cost[4] < 0.75 * cost[2];
  const int m = four ? 4 : 2;
  return cost[m] < 1.4 * direct ? m : 0;
}

void conv3x3(const Geometry& g, const float* x, const Weights& w, const float* bias, float* y, unsigned threads,
             size_t block_bytes) {
  if (w.cin != g.C || w.cout != g.O || !w.kernel) throw Error("EINVAL", "winograd: weights do not match the conv");
  Ctx c{};
  c.g = g;
  c.m = w.m;
  c.a = w.m + 2;
  c.P = c.a * c.a;
  c.th = (g.OH + c.m - 1) / c.m;
  c.tw = (g.OW + c.m - 1) / c.m;
  c.T = g.N * c.th * c.tw;
  c.x = x;
  c.bias = bias;
  c.y = y;
  c.w = &w;
  c.k = w.kernel;
  const PhaseFns fns = phase_fns(c.m, *c.k);
  if (!fns.input) throw Error("EINVAL", "winograd: no transform for this micro-kernel");
  const int64_t NR = c.k->nr, MR = c.k->mr, Opad = w.cout_pad;
  const int64_t per_tile = c.P * (g.C + Opad);  // floats of V and M per tile
  const int64_t t_all = (c.T + NR - 1) / NR * NR;
  const size_t budget = block_bytes ? block_bytes : kBlockBytes;
  c.Tb = std::clamp<int64_t>(static_cast<int64_t>(budget / sizeof(float)) / per_tile / NR * NR, NR, t_all);
  c.TPb = c.Tb / NR;
  const int64_t row_blocks = (Opad + 143) / 144;
  c.mc = ((Opad + row_blocks - 1) / row_blocks + MR - 1) / MR * MR;
  const int64_t n_mb = (Opad + c.mc - 1) / c.mc;
  const int64_t nblocks = (c.T + c.Tb - 1) / c.Tb;
  const size_t v_len = static_cast<size_t>(c.P * c.TPb * g.C * NR), m_len = static_cast<size_t>(c.P * Opad * c.Tb);

  const unsigned pool = threads ? threads : ThreadPool::global()->size();
  const double macs = static_cast<double>(c.P) * static_cast<double>(t_all) * static_cast<double>(g.C) * static_cast<double>(Opad);
  auto block_at = [&](int64_t bi, float* V, float* M) {
    Block b;
    b.t0 = bi * c.Tb;
    b.panels = (std::min(c.Tb, c.T - b.t0) + NR - 1) / NR;
    b.V = V;
    b.M = M;
    return b;
  };
  auto run_serial = [&](const Block& b) {
    for (int64_t tp = 0; tp < b.panels; ++tp) fns.input(c, b, tp, 0, g.C);
    for (int64_t xi = 0; xi < c.P; ++xi)
      for (int64_t mb = 0; mb < n_mb; ++mb) gemm_task(c, b, xi, mb);
    for (int64_t tp = 0; tp < b.panels; ++tp) fns.output(c, b, tp, 0, g.O);
  };

  // Below ~8 M multiply-adds (a 64-channel 16×16 or 32×32 VAE conv, ~0.1 ms) one thread: the split
  // path below syncs three times per block and moves V / M between cores, which cost more than the
  // second thread gained (measured 0.5 -> 0.8 ms for the VAE block's convs at 2 threads).
  if (pool <= 1 || macs < 8e6) {
    float* V = grow(t_caller_v, v_len);
    float* M = grow(t_caller_m, m_len);
    for (int64_t bi = 0; bi < nblocks; ++bi) run_serial(block_at(bi, V, M));
    return;
  }
  if (nblocks >= 2 * static_cast<int64_t>(pool)) {
    // Many blocks: each thread takes whole blocks (its transforms and GEMMs stay in its own cache).
    parallel_for(
        static_cast<size_t>(nblocks),
        [&](size_t bi) { run_serial(block_at(static_cast<int64_t>(bi), grow(t_task_v, v_len), grow(t_task_m, m_len))); }, 1,
        pool);
    return;
  }
  // Few blocks: each phase of a block is split over the threads.
  float* V = grow(t_caller_v, v_len);
  float* M = grow(t_caller_m, m_len);
  const int64_t want = 4 * static_cast<int64_t>(pool);
  for (int64_t bi = 0; bi < nblocks; ++bi) {
    const Block b = block_at(bi, V, M);
    const int64_t cch = std::max<int64_t>(1, (b.panels * g.C + want - 1) / want);  // channels per input task
    const int64_t n_cch = (g.C + cch - 1) / cch;
    parallel_for(
        static_cast<size_t>(b.panels * n_cch),
        [&](size_t t) {
          const int64_t tp = static_cast<int64_t>(t) / n_cch, c0 = (static_cast<int64_t>(t) % n_cch) * cch;
          fns.input(c, b, tp, c0, std::min(g.C, c0 + cch));
        },
        1, pool);
    parallel_for(
        static_cast<size_t>(c.P * n_mb), [&](size_t t) { gemm_task(c, b, static_cast<int64_t>(t) / n_mb, static_cast<int64_t>(t) % n_mb); },
        1, pool);
    const int64_t och = std::max<int64_t>(1, (b.panels * g.O + want - 1) / want);
    const int64_t n_och = (g.O + och - 1) / och;
    parallel_for(
        static_cast<size_t>(b.panels * n_och),
        [&](size_t t) {
          const int64_t tp = static_cast<int64_t>(t) / n_och, o0 = (static_cast<int64_t>(t) % n_och) * och;
          fns.output(c, b, tp, o0, std::min(g.O, o0 + och));
        },
        1, pool);
  }
}

const GemmKernel& default_kernel() { return linalg::detail::best_kernel(); }

bool enabled() {
  static const bool on = [] {
    const char* env = std::getenv("COREML_OPTIMIZE_WINOGRAD");
    if (env && std::string(env) == "0") return false;
#if defined(CMO_USE_ACCELERATE)
    return linalg::executor_prefers_portable_gemm();
#else
    return true;
#endif
  }();
  return on;
}

}  // namespace cmo::exec::winograd
