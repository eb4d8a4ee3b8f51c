// Portable SGEMM: the classic blocked algorithm (Goto / BLIS). op(A) is cut into blocks of mc×kc and
// op(B) into kc×ncols blocks, both packed into contiguous micro-panels (MR rows / NR columns, zero-padded
// at the edges) so the micro-kernel streams them with unit stride; the B micro-panel (kc·NR floats)
// stays in L1 while the A block (mc·kc) stays in L2. Work is split into independent (row block ×
// column range) tasks over the package pool; each task packs what it reads, so one parallel_for per
// call and no shared buffers. The micro-kernel is chosen at run time (AVX-512, AVX2+FMA, NEON, scalar).
#include <algorithm>
#include <cstring>
#include <memory>

#include "../util/free_memory.h"
#include "../util/thread_pool.h"
#include "blas.h"
#include "sgemm_kernels.h"

namespace cmo::linalg {
namespace detail {

std::vector<const GemmKernel*> runnable_kernels() {
  std::vector<const GemmKernel*> out;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the wider registers (XGETBV).
  if (avx512_kernel() && __builtin_cpu_supports("avx512f")) out.push_back(avx512_kernel());
  if (avx2_kernel() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out.push_back(avx2_kernel());
#endif
  if (neon_kernel()) out.push_back(neon_kernel());
  out.push_back(&scalar_kernel());
  return out;
}

const GemmKernel& best_kernel() {
  static const GemmKernel* k = runnable_kernels().front();
  return *k;
}

}  // namespace detail

namespace {

using detail::GemmKernel;

// Packing buffers, one per thread. Safe because a task body never calls parallel_for (the pool's
// waiting caller may run other queued tasks, but only between task bodies, never inside one).
// Mapped straight from the system (ScratchFloats): pages count in the resident set only once a pack
// writes them (a k < kc product touches k rows of its kc-row buffer, not all of them), and a buffer
// outgrown is unmapped rather than left in the thread's malloc arena.
struct PackBuffers {
  std::unique_ptr<ScratchFloats> a, b;
  size_t a_cap = 0, b_cap = 0;
  float* get_a(size_t n) { return grow(a, a_cap, n); }
  float* get_b(size_t n) { return grow(b, b_cap, n); }
  static float* grow(std::unique_ptr<ScratchFloats>& v, size_t& cap, size_t n) {
    if (cap < n) {
      v.reset();
      v = std::make_unique<ScratchFloats>(n);  // page-aligned on Linux; the micro-kernels load unaligned anyway
      cap = n;
    }
    return v->data();
  }
};
thread_local PackBuffers t_buffers;

// Tests only (detail::use_scalar_pack_a): > 0 makes pack_a use its scalar loop, the SIMD packer's oracle.
thread_local int t_scalar_pack_a = 0;

// op(A)[i0 .. i0+mc) × [p0 .. p0+kc) → micro-panels of MR rows: panel r holds, for each p, MR values.
void pack_a(bool ta, const float* a, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, float* dst) {
  for (int64_t r0 = 0; r0 < mc; r0 += mr) {
    const int64_t rows = std::min<int64_t>(mr, mc - r0);
    float* d = dst + r0 * kc;
    if (!ta) {
      static const detail::PackRows simd = detail::pack_rows_simd();
      if (simd && t_scalar_pack_a == 0) {
        simd(a + (i0 + r0) * lda + p0, lda, static_cast<int>(rows), kc, mr, d);
      } else {
        for (int64_t i = 0; i < rows; ++i) {
          const float* src = a + (i0 + r0 + i) * lda + p0;
          for (int64_t p = 0; p < kc; ++p) d[p * mr + i] = src[p];
        }
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) std::memcpy(d + p * mr, a + (p0 + p) * lda + i0 + r0, static_cast<size_t>(rows) * 4);
    }
    if (rows < mr)
      for (int64_t p = 0; p < kc; ++p) std::fill(d + p * mr + rows, d + (p + 1) * mr, 0.0f);
  }
}

// op(B)[p0 .. p0+kc) × [j0 .. j0+nc) → micro-panels of NR columns: panel q holds, for each p, NR values.
void pack_b(bool tb, const float* b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* dst) {
  for (int64_t q0 = 0; q0 < nc; q0 += nr) {
    const int64_t cols = std::min<int64_t>(nr, nc - q0);
    float* d = dst + q0 * kc;
    if (!tb) {
      for (int64_t p = 0; p < kc; ++p) {
        std::memcpy(d + p * nr, b + (p0 + p) * ldb + j0 + q0, static_cast<size_t>(cols) * 4);
        if (cols < nr) std::fill(d + p * nr + cols, d + (p + 1) * nr, 0.0f);
      }
    } else {
      for (int64_t j = 0; j < cols; ++j) {
        const float* src = b + (j0 + q0 + j) * ldb + p0;
        for (int64_t p = 0; p < kc; ++p) d[p * nr + j] = src[p];
      }
      if (cols < nr)
        for (int64_t p = 0; p < kc; ++p) std::fill(d + p * nr + cols, d + (p + 1) * nr, 0.0f);
    }
  }
}

void scale_c(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) std::fill(ci, ci + n, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
  }
}

constexpr int64_t kMcMax = 144;   // A block mc·kc ≈ 144 KiB at kc 256: well inside L2
constexpr int64_t kNcMax = 3072;  // a task's column range (B read from L3)
// B is packed about this many columns at a time (a multiple of NR; kc·256 floats = 192 KiB at kc 192,
// L2-resident): the per-thread B buffer is sized by the blocking, not by a task's column range.
constexpr int64_t kNcPack = 256;

// One MR×NR block of C from packed panels: straight into C when full, else through `tile` (NR wide)
// and merged, so the micro-kernel never writes past C's edges.
inline void micro_tile(const detail::GemmKernel& kern, int64_t kc, const float* ap, const float* bp, float* cp, int64_t ldc,
                       int64_t rows, int64_t cols, float alpha, float beta, float* tile) {
  const int64_t mr = kern.mr, nr = kern.nr;
  if (rows == mr && cols == nr) {
    kern.fn(kc, ap, bp, cp, ldc, alpha, beta);
    return;
  }
  kern.fn(kc, ap, bp, tile, nr, alpha, 0.0f);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      float& dst = cp[i * ldc + j];
      dst = beta == 0.0f ? tile[i * nr + j] : tile[i * nr + j] + beta * dst;
    }
}

}  // namespace

void detail::use_scalar_pack_a(bool on) { t_scalar_pack_a = on ? 1 : 0; }

size_t packed_a_floats(const detail::GemmKernel& kern, int64_t m, int64_t k) {
  return static_cast<size_t>((m + kern.mr - 1) / kern.mr * kern.mr * k);
}

void pack_a_full(const detail::GemmKernel& kern, bool ta, int64_t m, int64_t k, const float* a, int64_t lda, float* dst) {
  // Panel by panel (MR rows, all of k): the layout the driver's per-block packing produces, kc = k.
  for (int64_t r0 = 0; r0 < m; r0 += kern.mr)
    pack_a(ta, a, lda, r0, std::min<int64_t>(kern.mr, m - r0), 0, k, kern.mr, dst + r0 * k);
}

void sgemm_portable_with(const detail::GemmKernel& kern, unsigned threads, bool ta, bool tb, int64_t m, int64_t n,
                         int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                         float* c, int64_t ldc) {
  sgemm_portable_packed_a(kern, threads, tb, m, n, k, alpha, nullptr, ta, a, lda, b, ldb, beta, c, ldc);
}

void sgemm_portable_packed_a(const detail::GemmKernel& kern, unsigned threads, bool tb, int64_t m, int64_t n, int64_t k,
                             float alpha, const float* packed_a, bool ta, const float* a, int64_t lda, const float* b,
                             int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  const int mr = kern.mr, nr = kern.nr;
  const int64_t kcmax = kern.kc;
  const unsigned pool = threads ? threads : ThreadPool::global()->size();
  // Row blocks of equal height (a multiple of MR), then enough column ranges for every thread.
  const int64_t row_blocks = (m + kMcMax - 1) / kMcMax;
  const int64_t mc = (((m + row_blocks - 1) / row_blocks + mr - 1) / mr) * mr;
  const int64_t n_panels = (n + nr - 1) / nr;
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  // Small products stay on one thread (hand-off ≈ tens of µs); big ones get ~3 tasks per thread
  // so a thread slowed by other work on the machine does not hold up the rest.
  const int64_t want_tasks = pool <= 1 || flops < 2e6 ? 1 : static_cast<int64_t>(pool) * (flops < 5e7 ? 1 : 3);
  int64_t col_splits = std::max<int64_t>((n + kNcMax - 1) / kNcMax, (want_tasks + row_blocks - 1) / row_blocks);
  col_splits = std::max<int64_t>(1, std::min<int64_t>(col_splits, n_panels / 2 > 0 ? n_panels / 2 : 1));
  col_splits = std::max<int64_t>(col_splits, (n + kNcMax - 1) / kNcMax);
  const int64_t panels_per_split = (n_panels + col_splits - 1) / col_splits;
  const int64_t tasks = row_blocks * col_splits;

  auto task = [&](size_t t) {
    const int64_t rb = static_cast<int64_t>(t) / col_splits, cs = static_cast<int64_t>(t) % col_splits;
    const int64_t i0 = rb * mc, mcur = std::min(mc, m - i0);
    const int64_t j0 = cs * panels_per_split * nr;
    if (mcur <= 0 || j0 >= n) return;
    const int64_t ncur = std::min(panels_per_split * nr, n - j0);
    const int64_t mpad = (mcur + mr - 1) / mr * mr, npad = (ncur + nr - 1) / nr * nr;
    PackBuffers& buf = t_buffers;
    float* pa = packed_a ? nullptr : buf.get_a(static_cast<size_t>(mpad * kcmax));
    const int64_t ncpack = std::max<int64_t>(1, kNcPack / nr) * nr;
    float* pb = buf.get_b(static_cast<size_t>(std::min(npad, ncpack) * kcmax));
    alignas(64) float tile[16 * 32];  // edge tiles: computed here, then merged into C
    for (int64_t p0 = 0; p0 < k; p0 += kcmax) {
      const int64_t kc = std::min(kcmax, k - p0);
      const float beta_here = p0 == 0 ? beta : 1.0f;
      if (!packed_a) pack_a(ta, a, lda, i0, mcur, p0, kc, mr, pa);
      for (int64_t jq = 0; jq < ncur; jq += nr) {
        const int64_t cols = std::min<int64_t>(nr, ncur - jq);
        // B is packed kNcPack columns at a time (same kernel calls per C element, so the same bits).
        if (jq % ncpack == 0) pack_b(tb, b, ldb, p0, kc, j0 + jq, std::min(ncpack, ncur - jq), nr, pb);
        const float* bp = pb + (jq % ncpack) * kc;
        for (int64_t ir = 0; ir < mcur; ir += mr) {
          const int64_t rows = std::min<int64_t>(mr, mcur - ir);
          // Row panel (i0 + ir) / MR: i0 is a multiple of MR (mc is), so panels line up with the prepacked ones.
          const float* ap = packed_a ? packed_a + (i0 + ir) * k + p0 * mr : pa + ir * kc;
          float* cp = c + (i0 + ir) * ldc + j0 + jq;
          micro_tile(kern, kc, ap, bp, cp, ldc, rows, cols, alpha, beta_here, tile);
        }
      }
    }
  };
  if (tasks == 1) task(0);
  else parallel_for(static_cast<size_t>(tasks), task, 1, pool);
}

size_t packed_b_floats(const detail::GemmKernel& kern, int64_t k, int64_t n) {
  return static_cast<size_t>((n + kern.nr - 1) / kern.nr * kern.nr * k);
}

void pack_b_full(const detail::GemmKernel& kern, bool tb, int64_t k, int64_t n, const float* b, int64_t ldb, float* dst,
                 unsigned threads) {
  // The driver's per-block layout, every block at once: block p0 (kc = min(KC, k - p0) rows) starts at
  // p0·npad, its panel q at + q·NR·kc. Split by panel groups: a big weight packs on every thread.
  const int64_t npad = static_cast<int64_t>(packed_b_floats(kern, 1, n));
  const int64_t panels = npad / kern.nr, per_task = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(k, 1));
  const int64_t tasks = (panels + per_task - 1) / per_task;
  auto body = [&](size_t t) {
    const int64_t q0 = static_cast<int64_t>(t) * per_task, q1 = std::min(panels, q0 + per_task);
    for (int64_t p0 = 0; p0 < k; p0 += kern.kc) {
      const int64_t kc = std::min<int64_t>(kern.kc, k - p0);
      const int64_t j0 = q0 * kern.nr;  // < n: every panel holds at least one column
      pack_b(tb, b, ldb, p0, kc, j0, std::min(q1 * kern.nr, n) - j0, kern.nr, dst + p0 * npad + j0 * kc);
    }
  };
  if (tasks <= 1 || threads == 1) {
    for (int64_t t = 0; t < tasks; ++t) body(static_cast<size_t>(t));
  } else {
    parallel_for(static_cast<size_t>(tasks), body, 1, threads);
  }
}

GemmSplit gemm_split(unsigned threads, int64_t m, int64_t n, int64_t k, int mr, int nr) {
  GemmSplit s;
  const unsigned pool = threads ? threads : ThreadPool::global()->size();
  s.row_blocks = (m + kMcMax - 1) / kMcMax;
  s.mc = (((m + s.row_blocks - 1) / s.row_blocks + mr - 1) / mr) * mr;
  const int64_t n_panels = (n + nr - 1) / nr;
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  // One task per thread for mid-size products (a second round of tasks repacks A for nothing on an idle
  // machine); two per thread past ~0.2 GFLOP so that a thread slowed by other work on the machine does
  // not hold up the rest. Below ~1 MFLOP (a few µs) the hand-off is not worth it.
  const int64_t want = pool <= 1 || flops < 1e6 ? 1 : static_cast<int64_t>(pool) * (flops < 2e8 ? 1 : 2);
  // Row blocks first (each packs its own A block, all read the shared packed B); the columns are split
  // only when there are fewer row blocks than tasks wanted (small M: a text encoder's 77 tokens).
  s.col_splits = s.row_blocks >= want ? 1 : std::min<int64_t>(n_panels, (want + s.row_blocks - 1) / s.row_blocks);
  s.col_splits = std::max<int64_t>(1, s.col_splits);
  s.n_panels = n_panels;
  return s;
}

void sgemm_portable_packed_b(const detail::GemmKernel& kern, unsigned threads, bool ta, int64_t m, int64_t n, int64_t k,
                             float alpha, const float* a, int64_t lda, const float* packed_b, float beta, float* c,
                             int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  const int mr = kern.mr, nr = kern.nr;
  const int64_t kcmax = kern.kc;
  const unsigned pool = threads ? threads : ThreadPool::global()->size();
  const GemmSplit s = gemm_split(pool, m, n, k, mr, nr);
  const int64_t npad = s.n_panels * nr;
  const int64_t tasks = s.row_blocks * s.col_splits;
  auto task = [&](size_t t) {
    const int64_t rb = static_cast<int64_t>(t) / s.col_splits, cs = static_cast<int64_t>(t) % s.col_splits;
    const int64_t i0 = rb * s.mc, mcur = std::min(s.mc, m - i0);
    // Panels [q0, q1): an even share (± one panel) of the column panels.
    const int64_t q0 = cs * s.n_panels / s.col_splits, q1 = (cs + 1) * s.n_panels / s.col_splits;
    if (mcur <= 0 || q0 >= q1) return;
    const int64_t mpad = (mcur + mr - 1) / mr * mr;
    float* pa = t_buffers.get_a(static_cast<size_t>(mpad * kcmax));
    alignas(64) float tile[16 * 32];  // edge tiles: computed here, then merged into C
    for (int64_t p0 = 0; p0 < k; p0 += kcmax) {
      const int64_t kc = std::min(kcmax, k - p0);
      const float beta_here = p0 == 0 ? beta : 1.0f;
      pack_a(ta, a, lda, i0, mcur, p0, kc, mr, pa);
      const float* block = packed_b + p0 * npad;
      for (int64_t q = q0; q < q1; ++q) {
        const int64_t jq = q * nr, cols = std::min<int64_t>(nr, n - jq);
        const float* bp = block + jq * kc;
        for (int64_t ir = 0; ir < mcur; ir += mr) {
          const int64_t rows = std::min<int64_t>(mr, mcur - ir);
          float* cp = c + (i0 + ir) * ldc + jq;
          micro_tile(kern, kc, pa + ir * kc, bp, cp, ldc, rows, cols, alpha, beta_here, tile);
        }
      }
    }
  };
  if (tasks == 1) task(0);
  else parallel_for(static_cast<size_t>(tasks), task, 1, pool);
}

void sgemm_portable(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                    const float* b, int64_t ldb, float beta, float* c, int64_t ldc, unsigned threads) {
  sgemm_portable_with(detail::best_kernel(), threads, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

const char* portable_kernel_name() { return detail::best_kernel().name; }

void sgemm_reference(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                     const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p)
        acc += static_cast<double>(ta ? a[p * lda + i] : a[i * lda + p]) * static_cast<double>(tb ? b[j * ldb + p] : b[p * ldb + j]);
      float& dst = c[i * ldc + j];
      dst = beta == 0.0f ? static_cast<float>(alpha * acc) : static_cast<float>(alpha * acc + static_cast<double>(beta) * dst);
    }
}

}  // namespace cmo::linalg
