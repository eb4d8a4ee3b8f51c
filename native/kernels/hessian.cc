// Hessian accumulation (tiled SYRK) and the damped inverse's upper Cholesky factor in place.
//
// Why one Cholesky + one triangular inverse gives the reference's factor: the reference computes
// L = chol(H_d) (lower), H_d⁻¹ = cholesky_inverse(L), U = chol(H_d⁻¹, upper), i.e. H_d⁻¹ = UᵀU with U
// upper and a positive diagonal. Factor H_d "upside down" instead: H_d = V·Vᵀ with V upper (the
// Cholesky factor of the row/column-reversed matrix, computed here from the bottom-right corner).
// Then H_d⁻¹ = V⁻ᵀ·V⁻¹ = (V⁻¹)ᵀ(V⁻¹), and V⁻¹ is upper with a positive diagonal, so by uniqueness of
// the Cholesky factor U = V⁻¹. Cost: n³/3 (factor) + n³/3 (inverse) flops instead of the reference's
// n³/3 + 2n³/3 + n³/3 — half the arithmetic, and no second n² buffer.
//
// Threads: OpenBLAS runs single-threaded in this process (executor/ops/gemm.h explains why), so the
// Hessian accumulation is cut into row blocks that run on our pool, one single-threaded BLAS call
// each. The factor of a large Hessian (> 2,048 columns) goes through OpenBLAS's own threaded potrf +
// trtri (set to the pool's size for the call, then back to 1; ~1.5× the tiled route's speed on 2
// cores); smaller ones, and the portable build, through the tiled route below (pool-parallel,
// bit-identical for any thread count, workspace bounded by its tiles rather than by n).
#include "hessian.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "../executor/ops/gemm.h"
#include "../linalg/blas.h"
#include "../util/error.h"
#include "../util/free_memory.h"

namespace cmo::kernels {

namespace {

constexpr int64_t kTile = 256;

using PoolRef = PoolOrGlobal;

int64_t tile_count(int64_t n) { return (n + kTile - 1) / kTile; }
int64_t tile_begin(int64_t t) { return t * kTile; }
int64_t tile_end(int64_t t, int64_t n) { return std::min(n, (t + 1) * kTile); }

// Tile pairs (i, j) with j <= i (lower) — the same list serves the upper triangle as (j, i).
std::vector<std::pair<int64_t, int64_t>> lower_pairs(int64_t tiles) {
  std::vector<std::pair<int64_t, int64_t>> out;
  out.reserve(static_cast<size_t>(tiles * (tiles + 1) / 2));
  for (int64_t i = 0; i < tiles; ++i)
    for (int64_t j = 0; j <= i; ++j) out.emplace_back(i, j);
  return out;
}

// Lower triangle of the diagonal tile C[t×t] = alpha·XᵀX + beta·C (X [k×t], row stride ldx), single-threaded.
// Where the executor prefers the portable AVX-512 SGEMM (OpenBLAS 0.3.21 runs Haswell kernels on Zen 4,
// ~1.4x slower per flop), the tile goes through it in strips of kStrip rows, each up to its own
// diagonal: the strict upper part of each kStrip×kStrip diagonal block is written too, but the strict
// upper triangle of a Hessian's buffer is scratch (see hessian.h), so only ~kStrip/2 columns per row
// are wasted. Otherwise the BLAS's ssyrk.
void syrk_lower_tile(float* c, int64_t ldc, int64_t t, const float* x, int64_t k, int64_t ldx, float alpha, float beta) {
  if (!linalg::executor_prefers_portable_gemm()) {
    linalg::ssyrk(false, true, t, k, alpha, x, ldx, beta, c, ldc);
    return;
  }
  constexpr int64_t kStrip = 64;
  for (int64_t s0 = 0; s0 < t; s0 += kStrip) {
    const int64_t s1 = std::min(t, s0 + kStrip);
    exec::gemm(1, true, false, s1 - s0, s1, k, alpha, x + s0, ldx, x, ldx, beta, c + s0 * ldc, ldc);
  }
}

// Lower triangle of C[n×n] (ldc = n) = alpha·XᵀX + beta·C, X [k×n] with row stride ldx. One task per
// row block of kTile rows: SYRK on its diagonal tile + one GEMM for everything left of it (few, large
// BLAS calls); the widest row blocks go first so the pool's threads finish together.
void syrk_lower_tiled(const PoolRef& pool, float* c, int64_t n, const float* x, int64_t k, int64_t ldx, float alpha,
                      float beta) {
  const int64_t tiles = tile_count(n);
  pool.run(static_cast<size_t>(tiles), [&](size_t t) {
    const int64_t ti = tiles - 1 - static_cast<int64_t>(t);
    const int64_t i0 = tile_begin(ti), i1 = tile_end(ti, n), iw = i1 - i0;
    if (k == 0) {  // only the running-mean rescale
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j <= i; ++j) c[i * n + j] *= beta;
      return;
    }
    if (i0 > 0) exec::gemm(1, true, false, iw, i0, k, alpha, x + i0, ldx, x, ldx, beta, c + i0 * n, n);
    syrk_lower_tile(c + i0 * n + i0, n, iw, x + i0, k, ldx, alpha, beta);
  });
}

// In-place "upside-down" Cholesky of one diagonal tile: A = V·Vᵀ, V upper. Reversing rows and
// columns (J·A·J) turns it into an ordinary lower Cholesky (J·V·J is lower), so the tile goes through
// LAPACK's potrf on a reversed copy; only the tile's upper triangle is written back (the strict lower
// one holds H).
void chol_ul_tile(float* a, int64_t t, int64_t lda, int64_t offset, float* tmp) {
  std::fill(tmp, tmp + t * t, 0.0f);
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = i; j < t; ++j) tmp[(t - 1 - i) * t + (t - 1 - j)] = a[i * lda + j];
  const int info = linalg::spotrf(false, t, tmp, t);
  if (info != 0)
    throw Error("ENOTPD", "Hessian is not positive definite after dampening (at column " + std::to_string(offset + t - info) +
                              "): increase hessian_dampening");
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = i; j < t; ++j) a[i * lda + j] = tmp[(t - 1 - i) * t + (t - 1 - j)];
}

// Upper triangle of A (lda = n) holds H_d on entry and V (H_d = V·Vᵀ, V upper) on return.
void chol_ul_blocked(const PoolRef& pool, float* a, int64_t n) {
  const int64_t tiles = tile_count(n);
  ScratchFloats tmp(static_cast<size_t>(kTile * kTile));  // mapped: gone on return, not kept by an arena
  for (int64_t tk = tiles - 1; tk >= 0; --tk) {
    const int64_t k0 = tile_begin(tk), k1 = tile_end(tk, n), kw = k1 - k0;
    chol_ul_tile(a + k0 * n + k0, kw, n, k0, tmp.data());
    if (tk == 0) break;
    // Panel above the diagonal tile: V_IK = H_IK · V_KK⁻ᵀ.
    pool.run(static_cast<size_t>(tk), [&](size_t ti) {
      const int64_t i0 = tile_begin(static_cast<int64_t>(ti)), i1 = tile_end(static_cast<int64_t>(ti), n);
      linalg::strsm_right_upper(true, i1 - i0, kw, a + k0 * n + k0, n, a + i0 * n + k0, n);
    });
    // Trailing update of the leading block's upper triangle, H_IJ −= V_IK · V_JKᵀ (I <= J < K): one
    // task per row block I — SYRK on its diagonal tile, one GEMM for the rest of its row.
    pool.run(static_cast<size_t>(tk), [&](size_t tis) {
      const int64_t ti = static_cast<int64_t>(tis);
      const int64_t i0 = tile_begin(ti), i1 = tile_end(ti, n), iw = i1 - i0;
      linalg::ssyrk(true, false, iw, kw, -1.0f, a + i0 * n + k0, n, 1.0f, a + i0 * n + i0, n);
      if (i1 < k0)  // the executor's GEMM: its packing buffers are bounded per thread (see trtri below)
        exec::gemm(1, false, true, iw, k0 - i1, kw, -1.0f, a + i0 * n + k0, n, a + i1 * n + k0, n, 1.0f, a + i0 * n + i1, n);
    });
  }
}

// Upper triangle of A holds V on entry and U = V⁻¹ on return (LAPACK trtri's column-block order:
// U_{:J,J} = −U_{:J,:J} · V_{:J,J} · V_JJ⁻¹ with the leading block already inverted).
// Row tile I of the new panel reads the old panel's rows >= i0 only, so the panel is rewritten in
// waves of one tile per thread, top down: a wave's tiles go to a pool-sized buffer and are written
// back once the whole wave has read (workspace = threads·kTile² floats, not j0·kTile). The GEMMs go
// through the executor's SGEMM, whose per-thread packing buffers are bounded by its blocking (the
// BLAS's own would grow with the panel height: MBs above a small Hessian).
void trtri_upper_blocked(const PoolRef& pool, float* a, int64_t n) {
  const int64_t tiles = tile_count(n);
  const int64_t wave = std::max<int64_t>(1, static_cast<int64_t>(pool.p->size()));
  // [wave × kTile × kTile], mapped: unmapped on return rather than kept by the thread's malloc arena
  // (the layer's outputs are allocated after the factor, so this never adds to its peak).
  ScratchFloats buf(static_cast<size_t>(std::min(wave, std::max<int64_t>(1, tiles - 1)) * kTile * kTile));
  for (int64_t tj = 0; tj < tiles; ++tj) {
    const int64_t j0 = tile_begin(tj), j1 = tile_end(tj, n), jw = j1 - j0;
    for (int64_t w0 = 0; w0 < tj; w0 += wave) {
      const int64_t w1 = std::min(tj, w0 + wave);
      pool.run(static_cast<size_t>(w1 - w0), [&](size_t t) {
        const int64_t ti = w0 + static_cast<int64_t>(t);
        const int64_t i0 = tile_begin(ti), i1 = tile_end(ti, n), iw = i1 - i0;
        float* y = buf.data() + static_cast<int64_t>(t) * kTile * jw;
        for (int64_t i = i0; i < i1; ++i) std::memcpy(y + (i - i0) * jw, a + i * n + j0, sizeof(float) * static_cast<size_t>(jw));
        linalg::strmm_left_upper(iw, jw, a + i0 * n + i0, n, y, jw);  // U_II · X_I
        if (i1 < j0)  // + U_{I, i1:j0} · X_{i1:j0} in one call
          exec::gemm(1, false, false, iw, jw, j0 - i1, 1.0f, a + i0 * n + i1, n, a + i1 * n + j0, n, 1.0f, y, jw);
        linalg::strsm_right_upper(false, iw, jw, a + j0 * n + j0, n, y, jw);
        for (int64_t e = 0; e < iw * jw; ++e) y[e] = -y[e];
      });
      for (int64_t ti = w0; ti < w1; ++ti) {
        const float* y = buf.data() + (ti - w0) * kTile * jw;
        for (int64_t i = tile_begin(ti); i < tile_end(ti, n); ++i)
          std::memcpy(a + i * n + j0, y + (i - tile_begin(ti)) * jw, sizeof(float) * static_cast<size_t>(jw));
      }
    }
    if (linalg::strtri_upper(jw, a + j0 * n + j0, n) != 0) throw Error("ENOTPD", "Hessian factor is singular");
  }
}

// The same factor through the BLAS's own threaded LAPACK (potrf + trtri): with M = J·H_d·J (J reverses
// rows and columns), M = Rᵀ·R with R = J·Vᵀ·J upper, and R⁻¹ = J·V⁻ᵀ·J = J·Uᵀ·J. Reflecting the upper
// triangle across the anti-diagonal ((i, j) ↔ (n−1−j, n−1−i)) maps J·Xᵀ·J to X and keeps it upper, so
// U is one in-place reflection of R⁻¹. The caller stores M's upper triangle (a reversed gather).
void reflect_upper_antidiagonal(const PoolRef& pool, float* a, int64_t n) {
  // Swap pairs with i + j < n − 1 (the other member has i' + j' > n − 1); rows split across the pool.
  const int64_t tiles = tile_count(n);
  pool.run(static_cast<size_t>(tiles), [&](size_t t) {
    for (int64_t i = tile_begin(static_cast<int64_t>(t)); i < tile_end(static_cast<int64_t>(t), n); ++i)
      for (int64_t j = i; j < n - 1 - i; ++j) std::swap(a[i * n + j], a[(n - 1 - j) * n + (n - 1 - i)]);
  });
}

// Below this many columns the factor (2n³/3 flops: ~0.1 s at 2048) runs on one BLAS thread: waking
// OpenBLAS's own threads costs more than it saves there, and on a loaded machine their hand-offs
// stretched a 1280-column factor from ~30 ms to over a second.
constexpr int64_t kThreadedFactorColumns = 2048;

void factor_lapack(const PoolRef& pool, float* a, int64_t n) {
  const bool threaded = n > kThreadedFactorColumns;
  if (threaded) linalg::set_blas_threads(static_cast<int>(pool.p->size()));
  int info = linalg::spotrf(true, n, a, n);
  if (info == 0) info = linalg::strtri_upper(n, a, n) == 0 ? 0 : -1;
  if (threaded) linalg::set_blas_threads(1);
  if (info > 0)
    throw Error("ENOTPD", "Hessian is not positive definite after dampening (at column " + std::to_string(n - info) +
                              "): increase hessian_dampening");
  if (info < 0) throw Error("ENOTPD", "Hessian factor is singular");
  reflect_upper_antidiagonal(pool, a, n);
}

std::atomic<bool> g_lapack_factor{linalg::has_lapack()};
std::atomic<int64_t> g_lapack_min_columns{Hessian::kLapackFactorMinColumns};

}  // namespace

void Hessian::use_lapack_factor(bool on, int64_t min_columns) {
  g_lapack_factor = on && linalg::has_lapack();
  g_lapack_min_columns = min_columns;
}


int64_t ConvGeometry::out_height(int64_t height) const {
  return (height + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
}
int64_t ConvGeometry::out_width(int64_t width) const {
  return (width + pad_left + pad_right - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
}

void ConvGeometry::validate(int64_t height, int64_t width) const {
  auto bad = [](const std::string& what) { throw Error("EINVAL", "conv Hessian: " + what); };
  if (in_channels <= 0 || groups <= 0 || in_channels % groups != 0)
    bad("in_channels " + std::to_string(in_channels) + " must be a positive multiple of groups " + std::to_string(groups));
  if (kernel_h <= 0 || kernel_w <= 0 || stride_h <= 0 || stride_w <= 0 || dilation_h <= 0 || dilation_w <= 0)
    bad("kernel, stride and dilation must be positive");
  if (pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0) bad("padding must be >= 0");
  if (height <= 0 || width <= 0) bad("input height and width must be positive");
  if (height + pad_top + pad_bottom < dilation_h * (kernel_h - 1) + 1 ||
      width + pad_left + pad_right < dilation_w * (kernel_w - 1) + 1)
    bad("the dilated kernel is larger than the padded input (empty output)");
}

Hessian::Hessian(int64_t columns) : columns_(columns) {
  if (columns <= 0 || columns > (int64_t{1} << 17))
    throw Error("EINVAL", "Hessian: columns must be in [1, 131072], got " + std::to_string(columns));
  buf_.assign(static_cast<size_t>(columns * columns), 0.0f);
}

size_t Hessian::bytes() const { return (buf_.capacity() + diag_.capacity()) * sizeof(float) + dead_.capacity(); }

void Hessian::unfactor() {
  if (!factored_) return;
  for (int64_t i = 0; i < columns_; ++i) buf_[static_cast<size_t>(i * columns_ + i)] = diag_[static_cast<size_t>(i)];
  factored_ = false;
  factored_perm_.clear();
}

void Hessian::scale_for_batch(int64_t tmp, float& alpha, float& beta) {
  if (tmp <= 0) throw Error("EINVAL", "Hessian: samples_in_batch must be >= 1, got " + std::to_string(tmp));
  // H *= n/(n+tmp); n += tmp; H += (sqrt(2/n)·X)ᵀ(sqrt(2/n)·X)  (the reference's add_batch)
  const double n_old = static_cast<double>(samples_), n_new = n_old + static_cast<double>(tmp);
  beta = static_cast<float>(n_old / n_new);
  alpha = static_cast<float>(2.0 / n_new);
  samples_ += tmp;
}

void Hessian::add_rows(const float* x, int64_t rows, int64_t samples_in_batch, ThreadPool* pool) {
  if (rows < 0 || (rows > 0 && x == nullptr)) throw Error("EINVAL", "Hessian.add_rows: bad rows");
  std::lock_guard<std::mutex> lock(mutex_);
  exec::use_single_threaded_blas();
  unfactor();
  float alpha, beta;
  scale_for_batch(samples_in_batch, alpha, beta);
  syrk_lower_tiled(PoolRef(pool), buf_.data(), columns_, x, rows, columns_, alpha, beta);
}

void Hessian::add_conv_input(const float* x, int64_t batch, int64_t height, int64_t width, const ConvGeometry& g,
                             int64_t group, ThreadPool* pool) {
  g.validate(height, width);
  if (g.columns() != columns_)
    throw Error("EINVAL", "conv Hessian: the geometry has " + std::to_string(g.columns()) + " columns, the Hessian " +
                              std::to_string(columns_));
  if (group < 0 || group >= g.groups) throw Error("EINVAL", "conv Hessian: group " + std::to_string(group) + " out of range");
  if (batch <= 0 || x == nullptr) throw Error("EINVAL", "conv Hessian: batch must be >= 1");
  std::lock_guard<std::mutex> lock(mutex_);
  exec::use_single_threaded_blas();
  unfactor();
  PoolRef pr(pool);
  const int64_t oh = g.out_height(height), ow = g.out_width(width), per_image = oh * ow;
  const int64_t positions = batch * per_image;
  const int64_t n = columns_, cg = g.group_channels(), kh = g.kernel_h, kw = g.kernel_w;
  // Unfold in chunks of rows: ~16 MB of im2col at a time (>= 256 rows so the tiles' GEMMs stay
  // efficient; 48 MB before, over a third of a 5,760-column Hessian on top of it).
  const int64_t chunk = std::min(positions, std::clamp<int64_t>((int64_t{4} << 20) / n, 256, 4096));
  ScratchFloats cols(static_cast<size_t>(chunk * n));  // unmapped on return (not kept by malloc's arenas)
  float alpha, beta;
  scale_for_batch(batch, alpha, beta);
  for (int64_t p0 = 0; p0 < positions; p0 += chunk) {
    const int64_t rows = std::min(chunk, positions - p0);
    pr.run(static_cast<size_t>(rows), [&](size_t rr) {
      const int64_t p = p0 + static_cast<int64_t>(rr);
      const int64_t b = p / per_image, oy = (p % per_image) / ow, ox = p % ow;
      float* dst = cols.data() + static_cast<int64_t>(rr) * n;
      for (int64_t c = 0; c < cg; ++c) {
        const float* plane = x + ((b * g.in_channels + group * cg + c) * height) * width;
        for (int64_t ky = 0; ky < kh; ++ky) {
          const int64_t iy = oy * g.stride_h - g.pad_top + ky * g.dilation_h;
          for (int64_t kx = 0; kx < kw; ++kx) {
            const int64_t ix = ox * g.stride_w - g.pad_left + kx * g.dilation_w;
            *dst++ = (iy >= 0 && iy < height && ix >= 0 && ix < width) ? plane[iy * width + ix] : 0.0f;
          }
        }
      }
    });
    syrk_lower_tiled(pr, buf_.data(), n, cols.data(), rows, n, alpha, p0 == 0 ? beta : 1.0f);
  }
}

float Hessian::at(int64_t i, int64_t j) const {
  const int64_t n = columns_;
  if (i == j) return factored_ ? diag_[static_cast<size_t>(i)] : buf_[static_cast<size_t>(i * n + i)];
  const int64_t a = std::max(i, j), b = std::min(i, j);
  return buf_[static_cast<size_t>(a * n + b)];
}

std::vector<float> Hessian::dense() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t n = columns_;
  std::vector<float> out(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) out[static_cast<size_t>(i * n + j)] = at(i, j);
  return out;
}

std::vector<float> Hessian::diagonal() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<float> d(static_cast<size_t>(columns_));
  for (int64_t i = 0; i < columns_; ++i) d[static_cast<size_t>(i)] = at(i, i);
  return d;
}

InverseFactor Hessian::factor(double dampening, const std::vector<int32_t>* perm, ThreadPool* pool) {
  if (!(dampening >= 0.0) || !std::isfinite(dampening))
    throw Error("EINVAL", "hessian_dampening must be a finite number >= 0, got " + std::to_string(dampening));
  const int64_t n = columns_;
  if (perm) {
    if (static_cast<int64_t>(perm->size()) != n) throw Error("EINVAL", "Hessian.factor: permutation has the wrong size");
    std::vector<uint8_t> seen(static_cast<size_t>(n), 0);
    for (int32_t p : *perm) {
      if (p < 0 || p >= n || seen[static_cast<size_t>(p)]) throw Error("EINVAL", "Hessian.factor: not a permutation");
      seen[static_cast<size_t>(p)] = 1;
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  const std::vector<int32_t> no_perm;
  const std::vector<int32_t>& want = perm ? *perm : no_perm;
  if (!(factored_ && factored_damp_ == dampening && factored_perm_ == want)) {
    exec::use_single_threaded_blas();
    unfactor();
    PoolRef pr(pool);
    float* a = buf_.data();
    diag_.resize(static_cast<size_t>(n));
    dead_.assign(static_cast<size_t>(n), 0);
    dead_count_ = 0;
    for (int64_t i = 0; i < n; ++i) {
      diag_[static_cast<size_t>(i)] = a[i * n + i];
      if (a[i * n + i] == 0.0f) {
        dead_[static_cast<size_t>(i)] = 1;
        ++dead_count_;
      }
    }
    auto src = [&](int64_t i) { return perm ? static_cast<int64_t>((*perm)[static_cast<size_t>(i)]) : i; };
    // The LAPACK path factors M = J·H_d·J: gather row/column n−1−i instead of i.
    const bool lapack = g_lapack_factor.load() && n >= g_lapack_min_columns.load();
    auto at_pos = [&](int64_t i) { return src(lapack ? n - 1 - i : i); };
    // Mirror (and permute) H's lower triangle into the upper one, tile by tile (cache-friendly transpose).
    const auto pairs = lower_pairs(tile_count(n));
    pr.run(pairs.size(), [&](size_t t) {
      const int64_t tj = pairs[t].first, ti = pairs[t].second;  // upper tile (ti, tj), ti <= tj
      for (int64_t i = tile_begin(ti); i < tile_end(ti, n); ++i)
        for (int64_t j = std::max(i + 1, tile_begin(tj)); j < tile_end(tj, n); ++j) {
          const int64_t pi = at_pos(i), pj = at_pos(j);
          a[i * n + j] = a[std::max(pi, pj) * n + std::min(pi, pj)];
        }
    });
    // Dead columns get H_ii = 1, then damp = dampening · mean(diag) is added to every diagonal entry.
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += dead_[static_cast<size_t>(i)] ? 1.0 : static_cast<double>(diag_[static_cast<size_t>(i)]);
    const float damp = static_cast<float>(dampening * static_cast<float>(sum / static_cast<double>(n)));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t p = at_pos(i);
      const float d = dead_[static_cast<size_t>(p)] ? 1.0f : diag_[static_cast<size_t>(p)];
      a[i * n + i] = d + damp;
    }
    factored_ = true;  // the buffer's diagonal now belongs to the factor: unfactor() restores H's
    factored_damp_ = dampening;
    factored_perm_ = want;
    try {
      if (lapack) {
        factor_lapack(pr, a, n);
      } else {
        chol_ul_blocked(pr, a, n);
        trtri_upper_blocked(pr, a, n);
      }
    } catch (...) {
      unfactor();
      throw;
    }
  }
  InverseFactor f;
  f.u = buf_.data();
  f.columns = n;
  f.dead = dead_;
  f.dead_count = dead_count_;
  return f;
}

void hessian_add_rows_ref(std::vector<double>& h, int64_t n, int64_t& nsamples, const float* x, int64_t rows,
                          int64_t tmp) {
  const double scale = static_cast<double>(nsamples) / static_cast<double>(nsamples + tmp);
  for (double& v : h) v *= scale;
  nsamples += tmp;
  const double s = std::sqrt(2.0 / static_cast<double>(nsamples));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        h[static_cast<size_t>(i * n + j)] += (s * x[r * n + i]) * (s * x[r * n + j]);
}

std::vector<float> conv_unfold_ref(const float* x, int64_t batch, int64_t height, int64_t width, const ConvGeometry& g,
                                   int64_t group) {
  const int64_t oh = g.out_height(height), ow = g.out_width(width), n = g.columns(), cg = g.group_channels();
  std::vector<float> out(static_cast<size_t>(batch * oh * ow * n), 0.0f);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t c = 0; c < cg; ++c)
          for (int64_t ky = 0; ky < g.kernel_h; ++ky)
            for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
              const int64_t row = (b * oh + oy) * ow + ox, col = (c * g.kernel_h + ky) * g.kernel_w + kx;
              const int64_t iy = oy * g.stride_h + ky * g.dilation_h - g.pad_top;
              const int64_t ix = ox * g.stride_w + kx * g.dilation_w - g.pad_left;
              if (iy < 0 || iy >= height || ix < 0 || ix >= width) continue;
              out[static_cast<size_t>(row * n + col)] = x[((b * g.in_channels + group * cg + c) * height + iy) * width + ix];
            }
  return out;
}

}  // namespace cmo::kernels
